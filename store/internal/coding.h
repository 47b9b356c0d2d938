// Byte layouts used by the store's keys and values (LevelDB util/coding.h naming).
//
// Keys: integers big-endian (LMDB compares keys with memcmp); ids are length-prefixed with one
// byte (ids are 1..255 bytes). Values: varint32 lengths/counters, fixed64 little-endian times.
//
// Thread-safety: stateless free functions; safe from any thread.
#ifndef GATEHOUSE_STORE_INTERNAL_CODING_H_
#define GATEHOUSE_STORE_INTERNAL_CODING_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace gatehouse::store::internal {

inline void PutVarint32(std::string* dst, uint32_t v) {
  while (v >= 0x80) {
    dst->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  dst->push_back(static_cast<char>(v));
}

// Returns true iff a complete varint32 was read from the front of *in (which is advanced).
inline bool GetVarint32(std::string_view* in, uint32_t* v) noexcept {
  uint32_t result = 0;
  for (int shift = 0; shift <= 28 && !in->empty(); shift += 7) {
    const uint8_t byte = static_cast<uint8_t>((*in)[0]);
    in->remove_prefix(1);
    result |= static_cast<uint32_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

inline void PutLengthPrefixed(std::string* dst, std::string_view s) {
  PutVarint32(dst, static_cast<uint32_t>(s.size()));
  dst->append(s.data(), s.size());
}

inline bool GetLengthPrefixed(std::string_view* in, std::string_view* out) noexcept {
  uint32_t n = 0;
  if (!GetVarint32(in, &n) || n > in->size()) return false;
  *out = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

inline void PutFixed64(std::string* dst, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (8 * i));
  dst->append(buf, 8);
}

inline bool GetFixed64(std::string_view* in, uint64_t* v) noexcept {
  if (in->size() < 8) return false;
  uint64_t r = 0;
  for (int i = 0; i < 8; ++i) r |= static_cast<uint64_t>(static_cast<uint8_t>((*in)[i])) << (8 * i);
  in->remove_prefix(8);
  *v = r;
  return true;
}

inline bool GetByte(std::string_view* in, uint8_t* v) noexcept {
  if (in->empty()) return false;
  *v = static_cast<uint8_t>((*in)[0]);
  in->remove_prefix(1);
  return true;
}

// Big-endian 64-bit, for keys (revision numbers sort numerically).
inline void PutBigEndian64(std::string* dst, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (56 - 8 * i));
  dst->append(buf, 8);
}
inline void EncodeBigEndian64(char* buf, uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (56 - 8 * i));
}
inline uint64_t DecodeBigEndian64(const char* p) noexcept {
  uint64_t r = 0;
  for (int i = 0; i < 8; ++i) r = (r << 8) | static_cast<uint8_t>(p[i]);
  return r;
}

// One-byte length-prefixed id inside a composite key. REQUIRES: id.size() <= 255.
inline void PutKeyPart(std::string* dst, std::string_view id) {
  dst->push_back(static_cast<char>(static_cast<uint8_t>(id.size())));
  dst->append(id.data(), id.size());
}
inline bool GetKeyPart(std::string_view* in, std::string_view* out) noexcept {
  if (in->empty()) return false;
  const size_t n = static_cast<uint8_t>((*in)[0]);
  if (n + 1 > in->size()) return false;
  *out = in->substr(1, n);
  in->remove_prefix(n + 1);
  return true;
}

// A composite key built in a caller-provided buffer without allocating.
// Returns the key, or an empty view if it does not fit (callers treat that as "not found").
class KeyBuf {
 public:
  static constexpr size_t kCap = 600;
  KeyBuf& Part(std::string_view id) noexcept {
    if (!ok_ || id.size() > 255 || len_ + 1 + id.size() > kCap) {
      ok_ = false;
      return *this;
    }
    buf_[len_++] = static_cast<char>(static_cast<uint8_t>(id.size()));
    std::memcpy(buf_ + len_, id.data(), id.size());
    len_ += id.size();
    return *this;
  }
  KeyBuf& Raw(std::string_view s) noexcept {
    if (!ok_ || len_ + s.size() > kCap) {
      ok_ = false;
      return *this;
    }
    std::memcpy(buf_ + len_, s.data(), s.size());
    len_ += s.size();
    return *this;
  }
  bool ok() const noexcept { return ok_; }
  std::string_view view() const noexcept { return ok_ ? std::string_view(buf_, len_) : std::string_view(); }

 private:
  char buf_[kCap];
  size_t len_ = 0;
  bool ok_ = true;
};

}  // namespace gatehouse::store::internal

#endif  // GATEHOUSE_STORE_INTERNAL_CODING_H_
