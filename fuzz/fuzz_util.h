// Small helpers shared by the fuzz targets: a byte consumer over the fuzzer's input.
//
// Thread-safety: a FuzzInput is used by one thread.
#ifndef GATEHOUSE_FUZZ_FUZZ_UTIL_H_
#define GATEHOUSE_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::fuzz {

// Splits the input at a separator line, so seed files stay human-readable text.
inline std::vector<std::string_view> SplitOn(std::string_view in, std::string_view sep) {
  std::vector<std::string_view> parts;
  while (true) {
    size_t p = in.find(sep);
    if (p == std::string_view::npos) {
      parts.push_back(in);
      return parts;
    }
    parts.push_back(in.substr(0, p));
    in.remove_prefix(p + sep.size());
  }
}

}  // namespace gatehouse::fuzz

#endif  // GATEHOUSE_FUZZ_FUZZ_UTIL_H_
