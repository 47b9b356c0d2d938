// Inline equality for short byte strings (names, ids, attribute keys): avoids a libc memcmp
// call per comparison on the decision path.
//
// Thread-safety: pure functions.
#ifndef GATEHOUSE_POLICY_INTERNAL_BYTES_H_
#define GATEHOUSE_POLICY_INTERNAL_BYTES_H_

#include <cstdint>
#include <cstring>
#include <string_view>

namespace gatehouse::policy::internal {

// Loads 1..8 bytes at p as a little-endian-ish word (bytes past n are zero). No libc call:
// the branches pick fixed-size loads.
inline uint64_t LoadTail(const char* p, size_t n) noexcept {
  uint64_t w = 0;
  if (n >= 4) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + n - 4, 4);  // overlaps lo when n < 8
    w = lo | (static_cast<uint64_t>(hi) << ((n - 4) * 8));
  } else if (n > 0) {
    w = static_cast<uint8_t>(p[0]) | (static_cast<uint64_t>(static_cast<uint8_t>(p[n / 2])) << 8) |
        (static_cast<uint64_t>(static_cast<uint8_t>(p[n - 1])) << 16);
  }
  return w;
}

// A string's head word: LoadTail of up to 8 bytes (injective for a given length), else its
// first 8 bytes. Equal strings have equal head words; for strings of one length up to 8 bytes
// the converse holds too.
[[gnu::always_inline]] inline uint64_t HeadWord(std::string_view s) noexcept {
  if (s.size() <= 8) return LoadTail(s.data(), s.size());
  uint64_t w;
  std::memcpy(&w, s.data(), 8);
  return w;
}

inline bool BytesEqual(const char* a, const char* b, size_t n) noexcept {
  if (n >= 8) {
    // Whole words, then the last 8 bytes (overlapping): no byte loop.
    uint64_t x, y;
    while (n > 8) {
      std::memcpy(&x, a, 8);
      std::memcpy(&y, b, 8);
      if (x != y) return false;
      a += 8;
      b += 8;
      n -= 8;
    }
    std::memcpy(&x, a + n - 8, 8);
    std::memcpy(&y, b + n - 8, 8);
    return x == y;
  }
  return LoadTail(a, n) == LoadTail(b, n);
}

inline bool SvEqual(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && BytesEqual(a.data(), b.data(), a.size());
}

// Hash of a name (ids, action and role names): up to 16 bytes, the first and the last 8
// bytes (overlapping for 8..16 bytes) with no loop; longer names also fold in their middle
// words, one multiply each. Mixed with the length by two multiplies and a xorshift.
inline uint64_t HashName(std::string_view s) noexcept {
  const size_t n = s.size();
  uint64_t a, b = 0;
  if (n >= 8) {
    std::memcpy(&a, s.data(), 8);
    std::memcpy(&b, s.data() + n - 8, 8);
    for (size_t i = 8; i + 8 < n; i += 8) {
      uint64_t m;
      std::memcpy(&m, s.data() + i, 8);
      a = (a ^ m) * 0x9fb21c651e98df25ull;
    }
  } else {
    a = LoadTail(s.data(), n);
  }
  uint64_t h = (a ^ (n * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
  h = (h ^ (h >> 32) ^ b) * 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 29);
}

}  // namespace gatehouse::policy::internal

#endif  // GATEHOUSE_POLICY_INTERNAL_BYTES_H_
