#include "daemon/json_reader.h"

#include <cstdio>
#include <cstring>

namespace gatehouse::daemon::json {

const char* TypeName(Type t) noexcept {
  switch (t) {
    case Type::kNull: return "null";
    case Type::kFalse:
    case Type::kTrue: return "boolean";
    case Type::kNumber: return "number";
    case Type::kString: return "string";
    case Type::kArray: return "array";
    case Type::kObject: return "object";
  }
  return "?";
}

namespace {

// Returns the length of the UTF-8 sequence starting at p (p < end), or 0 if invalid.
inline size_t Utf8SeqLen(const unsigned char* p, const unsigned char* end) noexcept {
  unsigned c = p[0];
  if (c < 0x80) return 1;
  size_t n;
  unsigned min;
  unsigned cp;
  if (c >= 0xC2 && c <= 0xDF) { n = 2; min = 0x80; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { n = 3; min = 0x800; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { n = 4; min = 0x10000; cp = c & 0x07; }
  else return 0;
  if (static_cast<size_t>(end - p) < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

inline bool IsWs(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

inline int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Word-at-a-time scanning (SWAR): 8 bytes per step. SpecialMask() sets the high bit of every
// byte that may end the fast path of a string: '"', '\\', a control character (< 0x20) or a
// non-ASCII byte (>= 0x80). Borrows of the subtractions only propagate upwards from a byte that
// is itself special, so the lowest set bit always marks the first special byte exactly (higher
// bits may be false positives and are never used).
constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHigh = 0x8080808080808080ULL;

inline uint64_t Load8(const char* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline uint64_t SpecialMask(uint64_t v) noexcept {
  uint64_t q = v ^ (kOnes * '"');
  uint64_t b = v ^ (kOnes * '\\');
  uint64_t is_q = (q - kOnes) & ~q;
  uint64_t is_b = (b - kOnes) & ~b;
  uint64_t is_ctl = (v - kOnes * 0x20) & ~v;
  return (is_q | is_b | is_ctl | v) & kHigh;
}

}  // namespace

bool IsValidUtf8(std::string_view s) noexcept {
  auto* p = reinterpret_cast<const unsigned char*>(s.data());
  auto* end = p + s.size();
  while (p < end) {
    size_t n = Utf8SeqLen(p, end);
    if (n == 0) return false;
    p += n;
  }
  return true;
}

struct ParserImpl {
  Document* doc;
  const char* begin;
  const char* p;
  const char* end;
  Limits limits;

  size_t Off() const { return static_cast<size_t>(p - begin); }
  bool Fail(const char* what) { return doc->Fail(what, Off()); }

  void SkipWs() {
    // Compact JSON has no whitespace: one compare in the common case.
    while (p < end && static_cast<unsigned char>(*p) <= ' ' && IsWs(*p)) ++p;
  }

  // Appends a node with its final type, and returns it (nullptr when max_nodes is reached).
  // nodes_ is used as a growable array whose first count_ entries are live (grows by doubling;
  // callers hold indices, not pointers, across NewNode calls).
  Node* NewNode(Type t, const char* start) {
    size_t i = doc->count_;
    if (i >= limits.max_nodes) return nullptr;
    if (i == doc->nodes_.size()) doc->nodes_.resize(i < 64 ? 64 : i * 2);
    Node* n = &doc->nodes_[i];
    n->type = t;
    n->number_is_int = false;
    n->size = 0;
    n->end = static_cast<uint32_t>(i + 1);
    n->raw = std::string_view(start, 0);
    n->str = std::string_view();
    doc->count_ = i + 1;
    return n;
  }

  // Continues a string whose fast ASCII scan (String below) stopped at p: escapes, control
  // characters, UTF-8, and the last 7 bytes of the input, byte by byte.
  __attribute__((noinline)) bool ParseStringRest(const char* start, std::string_view* out) {
    bool escaped = false;
    for (;;) {
      while (end - p >= 8) {
        uint64_t m = SpecialMask(Load8(p));
        if (m != 0) {
          p += static_cast<unsigned>(__builtin_ctzll(m)) >> 3;
          break;
        }
        p += 8;
      }
      if (p >= end) break;
      unsigned char c = static_cast<unsigned char>(*p);
      if (c == '"') break;
      if (c == '\\') { escaped = true; break; }
      if (c < 0x20) return Fail("control character in string");
      if (c < 0x80) { ++p; continue; }
      size_t n = Utf8SeqLen(reinterpret_cast<const unsigned char*>(p),
                            reinterpret_cast<const unsigned char*>(end));
      if (n == 0) return Fail("invalid UTF-8 in string");
      p += n;
    }
    if (p >= end) return Fail("unterminated string");
    if (!escaped) {
      *out = std::string_view(start, static_cast<size_t>(p - start));
      ++p;
      return true;
    }
    // Slow path: unescape into scratch (reserved to the input size; never reallocates).
    std::string& s = doc->scratch_;
    size_t out_start = s.size();
    s.append(start, static_cast<size_t>(p - start));
    while (p < end) {
      unsigned char c = static_cast<unsigned char>(*p);
      if (c == '"') break;
      if (c < 0x20) return Fail("control character in string");
      if (c == '\\') {
        ++p;
        if (p >= end) return Fail("unterminated string");
        char e = *p++;
        switch (e) {
          case '"': s.push_back('"'); break;
          case '\\': s.push_back('\\'); break;
          case '/': s.push_back('/'); break;
          case 'b': s.push_back('\b'); break;
          case 'f': s.push_back('\f'); break;
          case 'n': s.push_back('\n'); break;
          case 'r': s.push_back('\r'); break;
          case 't': s.push_back('\t'); break;
          case 'u': {
            unsigned cp;
            if (!Hex4(&cp)) return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (end - p < 6 || p[0] != '\\' || p[1] != 'u') return Fail("lone surrogate escape");
              p += 2;
              unsigned lo;
              if (!Hex4(&lo)) return false;
              if (lo < 0xDC00 || lo > 0xDFFF) return Fail("lone surrogate escape");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              return Fail("lone surrogate escape");
            }
            if (cp == 0) return Fail("NUL character in string");
            AppendUtf8(&s, cp);
            break;
          }
          default:
            --p;
            return Fail("invalid escape in string");
        }
        continue;
      }
      if (c < 0x80) { s.push_back(static_cast<char>(c)); ++p; continue; }
      size_t n = Utf8SeqLen(reinterpret_cast<const unsigned char*>(p),
                            reinterpret_cast<const unsigned char*>(end));
      if (n == 0) return Fail("invalid UTF-8 in string");
      s.append(p, n);
      p += n;
    }
    if (p >= end) return Fail("unterminated string");
    ++p;
    *out = std::string_view(s.data() + out_start, s.size() - out_start);
    return true;
  }

  bool Hex4(unsigned* cp) {
    if (end - p < 4) return Fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      int h = HexVal(p[i]);
      if (h < 0) return Fail("invalid \\u escape");
      v = (v << 4) | static_cast<unsigned>(h);
    }
    p += 4;
    *cp = v;
    return true;
  }

  static void AppendUtf8(std::string* s, unsigned cp) {
    if (cp < 0x80) {
      s->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      s->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      s->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      s->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      s->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      s->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      s->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool ParseNumber(Node* n) {
    const char* start = p;
    if (p < end && *p == '-') ++p;
    if (p >= end) return Fail("invalid number");
    if (*p == '0') {
      ++p;
    } else if (*p >= '1' && *p <= '9') {
      while (p < end && *p >= '0' && *p <= '9') ++p;
    } else {
      return Fail("invalid number");
    }
    bool is_int = true;
    if (p < end && *p == '.') {
      is_int = false;
      ++p;
      if (p >= end || *p < '0' || *p > '9') return Fail("invalid number");
      while (p < end && *p >= '0' && *p <= '9') ++p;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
      is_int = false;
      ++p;
      if (p < end && (*p == '+' || *p == '-')) ++p;
      if (p >= end || *p < '0' || *p > '9') return Fail("invalid number");
      while (p < end && *p >= '0' && *p <= '9') ++p;
    }
    n->number_is_int = is_int;
    n->raw = std::string_view(start, static_cast<size_t>(p - start));
    n->str = n->raw;
    return true;
  }

  bool Literal(const char* word, size_t len) {
    if (static_cast<size_t>(end - p) < len || std::memcmp(p, word, len) != 0)
      return Fail("invalid literal");
    p += len;
    return true;
  }

  // Grows nodes_ (doubling); the caller refreshes its data pointer.
  __attribute__((noinline)) void Grow(size_t count) {
    doc->nodes_.resize(count < 64 ? 64 : count * 2);
  }

  // The whole document, iteratively: an explicit stack of open containers instead of recursion
  // (same grammar, limits, error messages and offsets as a recursive descent). The cursor, the
  // node array and the node count live in locals (the member p is synced around the out-of-line
  // helpers and before every Fail), so stores into nodes don't force reloads of the cursor.
  bool Run() {
    const char* const e = end;
    const char* q = p;
    Node* nodes = doc->nodes_.data();
    size_t count = 0;
    size_t room = doc->nodes_.size() < limits.max_nodes ? doc->nodes_.size() : limits.max_nodes;
    uint32_t stack[129];  // node index of each open container; depth <= max_depth <= 128
    uint32_t depth = 0;
    bool in_object = false;  // the innermost open container is an object
    Node* n;

#define GH_JSON_FAIL(msg) \
  do {                    \
    p = q;                \
    return Fail(msg);     \
  } while (0)
// Appends a node of type T starting at START into n (fails with "too many values" at max_nodes).
#define GH_JSON_NODE(T, START)                                                           \
  do {                                                                                   \
    if (count == room) {                                                                 \
      if (count >= limits.max_nodes) GH_JSON_FAIL("too many values");                    \
      Grow(count);                                                                       \
      nodes = doc->nodes_.data();                                                        \
      room = doc->nodes_.size() < limits.max_nodes ? doc->nodes_.size() : limits.max_nodes; \
    }                                                                                    \
    n = nodes + count;                                                                   \
    n->type = (T);                                                                       \
    n->number_is_int = false;                                                            \
    n->size = 0;                                                                         \
    n->end = static_cast<uint32_t>(++count);                                             \
    n->raw = std::string_view((START), 0);                                               \
    n->str = std::string_view();                                                         \
  } while (0)
// Whitespace (compact JSON has none: one compare).
#define GH_JSON_WS() \
  while (q < e && static_cast<unsigned char>(*q) <= ' ' && IsWs(*q)) ++q

  value:
    GH_JSON_WS();
    if (q >= e) GH_JSON_FAIL("unexpected end of input");
    {
      const char* start = q;
      char c = *q;
      switch (c) {
        case '{':
        case '[': {
          if (depth >= limits.max_depth) GH_JSON_FAIL("nesting too deep");
          bool obj = c == '{';
          GH_JSON_NODE(obj ? Type::kObject : Type::kArray, start);
          stack[depth++] = static_cast<uint32_t>(count - 1);
          in_object = obj;
          ++q;
          GH_JSON_WS();
          if (q < e && *q == (obj ? '}' : ']')) {
            ++q;
            goto close;
          }
          if (obj) goto key;
          goto value;
        }
        case '"': {
          GH_JSON_NODE(Type::kString, start);
          if (!String(&q, &n->str)) return false;
          nodes[count - 1].raw = std::string_view(start, static_cast<size_t>(q - start));
          goto after_value;
        }
        case 't':
        case 'f':
        case 'n': {
          Type t = c == 't' ? Type::kTrue : c == 'f' ? Type::kFalse : Type::kNull;
          GH_JSON_NODE(t, start);
          const char* word = c == 't' ? "true" : c == 'f' ? "false" : "null";
          size_t len = c == 'f' ? 5 : 4;
          if (static_cast<size_t>(e - q) < len || std::memcmp(q, word, len) != 0)
            GH_JSON_FAIL("invalid literal");
          q += len;
          n->raw = std::string_view(start, len);
          goto after_value;
        }
        default: {
          if (c != '-' && (c < '0' || c > '9')) GH_JSON_FAIL("unexpected character");
          GH_JSON_NODE(Type::kNumber, start);
          p = q;
          if (!ParseNumber(n)) return false;
          q = p;
          goto after_value;
        }
      }
    }
  key:
    GH_JSON_WS();
    if (q >= e || *q != '"') GH_JSON_FAIL("expected string key");
    {
      const char* ks = q;
      GH_JSON_NODE(Type::kString, ks);
      if (!String(&q, &n->str)) return false;
      nodes[count - 1].raw = std::string_view(ks, static_cast<size_t>(q - ks));
    }
    GH_JSON_WS();
    if (q >= e || *q != ':') GH_JSON_FAIL("expected ':'");
    ++q;
    goto value;
  after_value:
    if (depth == 0) {
      doc->count_ = count;
      p = q;
      return true;
    }
    ++nodes[stack[depth - 1]].size;
    GH_JSON_WS();
    if (q >= e) GH_JSON_FAIL("unexpected end of input");
    if (*q == ',') {
      ++q;
      if (in_object) goto key;
      goto value;
    }
    if (*q == (in_object ? '}' : ']')) {
      ++q;
      goto close;
    }
    GH_JSON_FAIL(in_object ? "expected ',' or '}'" : "expected ',' or ']'");
  close: {
    // The innermost container ends at q.
    Node& c = nodes[stack[--depth]];
    c.raw = std::string_view(c.raw.data(), static_cast<size_t>(q - c.raw.data()));
    c.end = static_cast<uint32_t>(count);
    if (depth != 0) in_object = nodes[stack[depth - 1]].type == Type::kObject;
    goto after_value;
  }
#undef GH_JSON_WS
#undef GH_JSON_NODE
#undef GH_JSON_FAIL
  }

  // *q == '"': scans a string at the local cursor *q (advanced past the closing quote). Runs of
  // plain ASCII go eight bytes at a time; anything else continues in ParseStringRest (member
  // cursor). `out` may point into a node: the helpers never grow the node array.
  __attribute__((always_inline)) bool String(const char** qp, std::string_view* out) {
    const char* q = *qp + 1;
    const char* start = q;
    while (end - q >= 8) {
      uint64_t m = SpecialMask(Load8(q));
      if (m != 0) {
        q += static_cast<unsigned>(__builtin_ctzll(m)) >> 3;
        if (*q == '"') {
          *out = std::string_view(start, static_cast<size_t>(q - start));
          *qp = q + 1;
          return true;
        }
        break;
      }
      q += 8;
    }
    p = q;
    std::string_view s;
    if (!ParseStringRest(start, &s)) return false;
    *out = s;
    *qp = p;
    return true;
  }
};

void Document::Reserve(size_t line_bytes, size_t nodes) {
  if (scratch_.capacity() < line_bytes) scratch_.reserve(line_bytes);
  if (nodes_.size() < nodes) nodes_.resize(nodes);
}

bool Document::Fail(const char* what, size_t offset) noexcept {
  int n = std::snprintf(error_, sizeof(error_), "%s at byte %zu", what, offset);
  error_len_ = n < 0 ? 0 : (static_cast<size_t>(n) >= sizeof(error_) ? sizeof(error_) - 1
                                                                        : static_cast<size_t>(n));
  return false;
}

bool Document::Parse(std::string_view text, const Limits& limits) noexcept {
  count_ = 0;
  scratch_.clear();
  error_len_ = 0;
  if (scratch_.capacity() < text.size()) scratch_.reserve(text.size());
  ParserImpl ps{this, text.data(), text.data(), text.data() + text.size(), limits};
  if (ps.limits.max_depth > 128) ps.limits.max_depth = 128;
  if (!ps.Run()) {
    count_ = 0;
    return false;
  }
  ps.SkipWs();
  if (ps.p != ps.end) {
    count_ = 0;
    return ps.Fail("trailing characters after JSON value");
  }
  return true;
}

int Document::Find(int object, std::string_view key) const noexcept {
  const Node& o = node(object);
  if (o.type != Type::kObject) return kNone;
  int i = object + 1;
  for (uint32_t k = 0; k < o.size; ++k) {
    int v = i + 1;
    std::string_view s = node(i).str;
    if (s.size() == key.size()) {
      // Keys are short: an inline byte compare beats a memcmp call.
      size_t j = 0;
      while (j < key.size() && s[j] == key[j]) ++j;
      if (j == key.size()) return v;
    }
    i = Next(v);
  }
  return kNone;
}

int Document::FirstChild(int container) const noexcept {
  const Node& o = node(container);
  if (o.size == 0) return kNone;
  return o.type == Type::kObject ? container + 2 : container + 1;
}

}  // namespace gatehouse::daemon::json
