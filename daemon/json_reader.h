// A strict, allocation-free (after warm-up) JSON reader for the request path.
//
// Parse() turns one request line into a flat array of nodes (jsmn-style): containers record
// their child count and the index one past their subtree, so walking an object is a linear scan
// without recursion. Strings without escapes are views into the line; escaped strings are
// unescaped into the document's scratch buffer, which is reserved to the line's size before
// parsing so views into it never move.
//
// Strictness: RFC 8259 grammar only (no comments, trailing commas, NaN, leading zeros), UTF-8
// validated (no overlong forms, surrogates or code points above U+10FFFF), raw control
// characters in strings rejected, an escaped NUL (\u0000) rejected, lone surrogate escapes
// rejected, nesting depth and node count bounded.
//
// Lifetime: every string_view a Document hands out points into the parsed line or into the
// document's scratch buffer; valid until the next Parse() or destruction, and only while the
// line's storage is unchanged.
//
// Thread-safety: a Document is used by one thread at a time (one per connection). Parse() is
// noexcept: when growing its node array fails to allocate the process terminates (OOM).
#ifndef GATEHOUSE_DAEMON_JSON_READER_H_
#define GATEHOUSE_DAEMON_JSON_READER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::daemon::json {

enum class Type : uint8_t { kNull, kFalse, kTrue, kNumber, kString, kArray, kObject };

const char* TypeName(Type t) noexcept;  // "null", "boolean", "number", "string", ...

struct Node {
  Type type = Type::kNull;
  bool number_is_int = false;  // kNumber: no fraction or exponent part
  uint32_t size = 0;           // kArray: elements; kObject: members (key/value pairs)
  uint32_t end = 0;            // index one past this node's subtree
  std::string_view raw;        // exact source text (strings include their quotes)
  std::string_view str;        // kString: the unescaped value
};

struct Limits {
  uint32_t max_depth = 32;
  uint32_t max_nodes = 1u << 20;
};

class Document {
 public:
  static constexpr int kNone = -1;

  Document() = default;
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  // Pre-sizes internal buffers so parsing lines up to `line_bytes` with up to `nodes` nodes
  // does not allocate.
  void Reserve(size_t line_bytes, size_t nodes);

  // Parses `text` (one JSON value, surrounding whitespace allowed). Returns true on success;
  // otherwise error() describes the first problem (with its byte offset).
  bool Parse(std::string_view text, const Limits& limits = Limits()) noexcept;

  std::string_view error() const noexcept { return std::string_view(error_, error_len_); }

  size_t node_count() const noexcept { return count_; }
  const Node& node(int i) const noexcept { return nodes_[static_cast<size_t>(i)]; }
  // The root value is node 0.
  const Node& root() const noexcept { return nodes_[0]; }

  // For an object node: index of the value of the first member named `key`, or kNone.
  int Find(int object, std::string_view key) const noexcept;
  // For an array node: index of the first element (kNone if empty); Next(i): the sibling after
  // element/value i (only meaningful while inside the parent's range).
  int FirstChild(int container) const noexcept;
  int Next(int i) const noexcept { return static_cast<int>(nodes_[static_cast<size_t>(i)].end); }

  // Iterates the members of an object: fn(std::string_view key, int value_index).
  template <typename Fn>
  void ForEachMember(int object, Fn&& fn) const noexcept {
    const Node& o = node(object);
    int i = object + 1;
    for (uint32_t k = 0; k < o.size; ++k) {
      int v = i + 1;
      fn(node(i).str, v);
      i = Next(v);
    }
  }

 private:
  friend struct ParserImpl;
  bool Fail(const char* what, size_t offset) noexcept;

  std::vector<Node> nodes_;  // the first count_ entries are the parsed document
  size_t count_ = 0;
  std::string scratch_;
  char error_[160] = {};
  size_t error_len_ = 0;
};

// Validates that `s` is well-formed UTF-8 (same rules as the parser). Returns true iff valid.
bool IsValidUtf8(std::string_view s) noexcept;

}  // namespace gatehouse::daemon::json

#endif  // GATEHOUSE_DAEMON_JSON_READER_H_
