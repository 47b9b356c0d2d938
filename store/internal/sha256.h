// A small SHA-256 (FIPS 180-4) for invitation token hashes, and a constant-time compare.
// No OpenSSL dependency on purpose: the store links LMDB only.
//
// Thread-safety: Sha256 objects are not shared; the free functions are stateless.
#ifndef GATEHOUSE_STORE_INTERNAL_SHA256_H_
#define GATEHOUSE_STORE_INTERNAL_SHA256_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gatehouse::store::internal {

class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t len);
  std::array<uint8_t, 32> Finish();

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// SHA-256 of s, as 32 raw bytes in a std::string.
std::string Sha256Of(std::string_view s);

// Returns true iff a == b, in time depending only on the sizes.
bool ConstantTimeEqual(std::string_view a, std::string_view b) noexcept;

// Lowercase hex of bytes.
std::string HexEncode(std::string_view bytes);

}  // namespace gatehouse::store::internal

#endif  // GATEHOUSE_STORE_INTERNAL_SHA256_H_
