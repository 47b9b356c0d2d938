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
    while (p < end && IsWs(*p)) ++p;
  }

  int NewNode(Type t, const char* start) {
    if (doc->nodes_.size() >= limits.max_nodes) return -1;
    Node n;
    n.type = t;
    n.raw = std::string_view(start, 0);
    doc->nodes_.push_back(n);
    return static_cast<int>(doc->nodes_.size() - 1);
  }

  bool ParseString(std::string_view* out) {
    // *p == '"'
    ++p;
    const char* start = p;
    bool escaped = false;
    // Fast scan for the common case: no escapes.
    while (p < end) {
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

  bool ParseValue(uint32_t depth) {
    SkipWs();
    if (p >= end) return Fail("unexpected end of input");
    const char* start = p;
    char c = *p;
    int idx;
    switch (c) {
      case '{':
      case '[': {
        if (depth >= limits.max_depth) return Fail("nesting too deep");
        bool obj = c == '{';
        idx = NewNode(obj ? Type::kObject : Type::kArray, start);
        if (idx < 0) return Fail("too many values");
        ++p;
        uint32_t count = 0;
        SkipWs();
        if (p < end && *p == (obj ? '}' : ']')) {
          ++p;
        } else {
          for (;;) {
            if (obj) {
              SkipWs();
              if (p >= end || *p != '"') return Fail("expected string key");
              int k = NewNode(Type::kString, p);
              if (k < 0) return Fail("too many values");
              const char* ks = p;
              std::string_view key;
              if (!ParseString(&key)) return false;
              Node& kn = doc->nodes_[static_cast<size_t>(k)];
              kn.str = key;
              kn.raw = std::string_view(ks, static_cast<size_t>(p - ks));
              kn.end = static_cast<uint32_t>(k + 1);
              SkipWs();
              if (p >= end || *p != ':') return Fail("expected ':'");
              ++p;
            }
            if (!ParseValue(depth + 1)) return false;
            ++count;
            SkipWs();
            if (p >= end) return Fail("unexpected end of input");
            if (*p == ',') { ++p; continue; }
            if (*p == (obj ? '}' : ']')) { ++p; break; }
            return Fail(obj ? "expected ',' or '}'" : "expected ',' or ']'");
          }
        }
        Node& n = doc->nodes_[static_cast<size_t>(idx)];
        n.size = count;
        n.raw = std::string_view(start, static_cast<size_t>(p - start));
        n.end = static_cast<uint32_t>(doc->nodes_.size());
        return true;
      }
      case '"': {
        idx = NewNode(Type::kString, start);
        if (idx < 0) return Fail("too many values");
        std::string_view s;
        if (!ParseString(&s)) return false;
        Node& n = doc->nodes_[static_cast<size_t>(idx)];
        n.str = s;
        n.raw = std::string_view(start, static_cast<size_t>(p - start));
        n.end = static_cast<uint32_t>(idx + 1);
        return true;
      }
      case 't':
      case 'f':
      case 'n': {
        Type t = c == 't' ? Type::kTrue : c == 'f' ? Type::kFalse : Type::kNull;
        idx = NewNode(t, start);
        if (idx < 0) return Fail("too many values");
        bool ok = c == 't' ? Literal("true", 4) : c == 'f' ? Literal("false", 5) : Literal("null", 4);
        if (!ok) return false;
        Node& n = doc->nodes_[static_cast<size_t>(idx)];
        n.raw = std::string_view(start, static_cast<size_t>(p - start));
        n.end = static_cast<uint32_t>(idx + 1);
        return true;
      }
      default: {
        if (c != '-' && (c < '0' || c > '9')) return Fail("unexpected character");
        idx = NewNode(Type::kNumber, start);
        if (idx < 0) return Fail("too many values");
        Node tmp;
        if (!ParseNumber(&tmp)) return false;
        Node& n = doc->nodes_[static_cast<size_t>(idx)];
        n.raw = tmp.raw;
        n.str = tmp.str;
        n.number_is_int = tmp.number_is_int;
        n.end = static_cast<uint32_t>(idx + 1);
        return true;
      }
    }
  }
};

void Document::Reserve(size_t line_bytes, size_t nodes) {
  if (scratch_.capacity() < line_bytes) scratch_.reserve(line_bytes);
  if (nodes_.capacity() < nodes) nodes_.reserve(nodes);
}

bool Document::Fail(const char* what, size_t offset) noexcept {
  int n = std::snprintf(error_, sizeof(error_), "%s at byte %zu", what, offset);
  error_len_ = n < 0 ? 0 : (static_cast<size_t>(n) >= sizeof(error_) ? sizeof(error_) - 1
                                                                        : static_cast<size_t>(n));
  return false;
}

bool Document::Parse(std::string_view text, const Limits& limits) noexcept {
  nodes_.clear();
  scratch_.clear();
  error_len_ = 0;
  if (scratch_.capacity() < text.size()) scratch_.reserve(text.size());
  ParserImpl ps{this, text.data(), text.data(), text.data() + text.size(), limits};
  if (ps.limits.max_depth > 128) ps.limits.max_depth = 128;
  if (!ps.ParseValue(0)) {
    nodes_.clear();
    return false;
  }
  ps.SkipWs();
  if (ps.p != ps.end) {
    nodes_.clear();
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
    if (node(i).str == key) return v;
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
