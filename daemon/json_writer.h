// Hand-written JSON output for the hot replies: appends to a caller-owned std::string whose
// capacity is reused across requests (no allocation once it has grown to the largest reply).
//
// Thread-safety: free functions over the caller's buffer; no shared state.
#ifndef GATEHOUSE_DAEMON_JSON_WRITER_H_
#define GATEHOUSE_DAEMON_JSON_WRITER_H_

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace gatehouse::daemon::json {

// Appends s as a JSON string literal (with quotes). REQUIRES: s is valid UTF-8 (all strings the
// daemon echoes come from the validated request, the store or the policy).
inline void AppendString(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default: {
        char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out->append(u, 6);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

inline void AppendUint(std::string* out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, static_cast<size_t>(r.ptr - buf));
}

inline void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, static_cast<size_t>(r.ptr - buf));
}

inline void AppendBool(std::string* out, bool v) { out->append(v ? "true" : "false"); }

}  // namespace gatehouse::daemon::json

#endif  // GATEHOUSE_DAEMON_JSON_WRITER_H_
