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

inline bool BytesEqual(const char* a, const char* b, size_t n) noexcept {
  while (n >= 8) {
    uint64_t x, y;
    std::memcpy(&x, a, 8);
    std::memcpy(&y, b, 8);
    if (x != y) return false;
    a += 8;
    b += 8;
    n -= 8;
  }
  for (size_t k = 0; k < n; ++k) {
    if (a[k] != b[k]) return false;
  }
  return true;
}

inline bool SvEqual(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && BytesEqual(a.data(), b.data(), a.size());
}

}  // namespace gatehouse::policy::internal

#endif  // GATEHOUSE_POLICY_INTERNAL_BYTES_H_
