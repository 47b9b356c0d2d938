#include "daemon/protocol.h"

#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "daemon/json_writer.h"

namespace gatehouse::daemon {

using json::Document;
using json::Node;
using json::Type;

const char* ErrorCodeName(ErrorCode c) noexcept {
  switch (c) {
    case ErrorCode::kBadRequest: return "bad_request";
    case ErrorCode::kUnknownOp: return "unknown_op";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kConflict: return "conflict";
    case ErrorCode::kLimitExceeded: return "limit_exceeded";
    case ErrorCode::kForbidden: return "forbidden";
    case ErrorCode::kStale: return "stale";
    case ErrorCode::kTooLarge: return "too_large";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kInternal: return "internal";
  }
  return "internal";
}

void Error::Set(ErrorCode c, const char* fmt, ...) noexcept {
  code = c;
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(message, sizeof(message), fmt, ap);
  va_end(ap);
  len = n < 0 ? 0 : (static_cast<size_t>(n) >= sizeof(message) ? sizeof(message) - 1
                                                                 : static_cast<size_t>(n));
  // Messages quote field names cut to a bounded length ("%.*s") and are themselves cut to the
  // buffer: a cut inside a UTF-8 sequence would make the reply invalid UTF-8 (found by
  // fuzz_protocol_codec). Every incomplete or stray sequence byte becomes '?'.
  for (size_t i = 0; i < len;) {
    const unsigned char c = static_cast<unsigned char>(message[i]);
    const size_t need = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    size_t k = 1;
    while (need > 1 && k < need && i + k < len &&
           (static_cast<unsigned char>(message[i + k]) & 0xC0) == 0x80) {
      ++k;
    }
    if (need == 0 || (need > 1 && k < need)) {
      for (size_t j = 0; j < (need == 0 ? 1 : k); ++j) message[i + j] = '?';
    }
    i += need == 0 ? 1 : k;
  }
}

bool IsValidId(std::string_view s) noexcept {
  if (s.empty() || s.size() > kMaxIdBytes) return false;
  // Eight bytes per step: a byte < 0x20 or == 0x7f sets its high bit in `bad` (borrows only
  // propagate upwards from such a byte, so `bad != 0` iff one exists).
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  const char* p = s.data();
  size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    uint64_t del = v ^ (kOnes * 0x7f);
    uint64_t bad = (((v - kOnes * 0x20) & ~v) | ((del - kOnes) & ~del)) & kHigh;
    if (bad != 0) return false;
  }
  for (; n > 0; ++p, --n) {
    unsigned char c = static_cast<unsigned char>(*p);
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

namespace {

// ---- Field access by node index (Document::kNone: absent) ----

bool StringAt(const Document& d, int i, const char* prefix, const char* field, bool required,
              std::string_view* out, Error* err) noexcept {
  if (i == Document::kNone) {
    if (required) {
      err->Set(ErrorCode::kBadRequest, "missing field '%s%s'", prefix, field);
      return false;
    }
    *out = {};
    return true;
  }
  const Node& n = d.node(i);
  if (n.type != Type::kString) {
    err->Set(ErrorCode::kBadRequest, "field '%s%s' must be a string", prefix, field);
    return false;
  }
  *out = n.str;
  return true;
}

bool IdAt(const Document& d, int i, const char* prefix, const char* field, bool required,
          std::string_view* out, Error* err) noexcept {
  if (!StringAt(d, i, prefix, field, required, out, err)) return false;
  if (i == Document::kNone) return true;
  if (!IsValidId(*out)) {
    err->Set(ErrorCode::kBadRequest,
             "field '%s%s' must be an identifier of 1-128 bytes without control characters",
             prefix, field);
    return false;
  }
  return true;
}

// Decimal digits (as validated by the JSON reader) to uint64; false on overflow.
inline bool DigitsToU64(std::string_view s, uint64_t* out) noexcept {
  uint64_t v = 0;
  for (char ch : s) {
    if (__builtin_mul_overflow(v, uint64_t{10}, &v) ||
        __builtin_add_overflow(v, static_cast<uint64_t>(ch - '0'), &v))
      return false;
  }
  *out = v;
  return true;
}

// An integer literal (optional '-', digits) to int64; false when out of range.
inline bool IntToI64(std::string_view s, int64_t* out) noexcept {
  bool neg = !s.empty() && s[0] == '-';
  uint64_t m;
  if (!DigitsToU64(neg ? s.substr(1) : s, &m)) return false;
  if (neg) {
    if (m > uint64_t{1} << 63) return false;
    *out = static_cast<int64_t>(0 - m);
  } else {
    if (m > static_cast<uint64_t>(INT64_MAX)) return false;
    *out = static_cast<int64_t>(m);
  }
  return true;
}

bool UintAt(const Document& d, int i, const char* prefix, const char* field, bool* present,
            uint64_t* out, Error* err) noexcept {
  *present = i != Document::kNone;
  if (!*present) return true;
  const Node& n = d.node(i);
  if (n.type != Type::kNumber || !n.number_is_int || n.raw[0] == '-') {
    err->Set(ErrorCode::kBadRequest, "field '%s%s' must be a non-negative integer", prefix,
             field);
    return false;
  }
  if (!DigitsToU64(n.raw, out)) {
    err->Set(ErrorCode::kBadRequest, "field '%s%s' is out of range", prefix, field);
    return false;
  }
  return true;
}

bool BoolAt(const Document& d, int i, const char* prefix, const char* field, bool* out,
            Error* err) noexcept {
  if (i == Document::kNone) return true;
  const Node& n = d.node(i);
  if (n.type != Type::kTrue && n.type != Type::kFalse) {
    err->Set(ErrorCode::kBadRequest, "field '%s%s' must be a boolean", prefix, field);
    return false;
  }
  *out = n.type == Type::kTrue;
  return true;
}

// ---- Known member names: one pass over an object, a switch on the key's length ----

enum Field : int {
  kFId, kFOp, kFUser, kFAction, kFOrg, kFWorkspace, kFResource, kFContext, kFExplain,
  kFMinRev, kFChecks,
};
static_assert(kFChecks + 1 == RequestArena::kFields);

// The first n <= 8 bytes at p as a little-endian word (constant-folded for literals).
template <size_t n>
inline uint64_t Word(const char* p) noexcept {
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  return v;
}

// The N-1 bytes at s equal lit (s has that many bytes), in word compares: memcmp of a constant
// size other than 1, 2, 4 or 8 is a library call.
// Two overlapping loads of a power-of-two size cover every length.
template <size_t N>
inline bool Is(const char* s, const char (&lit)[N]) noexcept {
  constexpr size_t n = N - 1;
  static_assert(n <= 16);
  if constexpr (n >= 8) {
    return Word<8>(s) == Word<8>(lit) && Word<8>(s + n - 8) == Word<8>(lit + n - 8);
  } else if constexpr (n >= 4) {
    return Word<4>(s) == Word<4>(lit) && Word<4>(s + n - 4) == Word<4>(lit + n - 4);
  } else if constexpr (n >= 2) {
    return Word<2>(s) == Word<2>(lit) && s[n - 1] == lit[n - 1];
  } else {
    return n == 0 || s[0] == lit[0];
  }
}

inline int Classify(std::string_view k) noexcept {
  const char* s = k.data();
  switch (k.size()) {
    case 2:
      if (Is(s, "id")) return kFId;
      if (Is(s, "op")) return kFOp;
      break;
    case 3:
      if (Is(s, "org")) return kFOrg;
      break;
    case 4:
      if (Is(s, "user")) return kFUser;
      break;
    case 6:
      if (Is(s, "action")) return kFAction;
      if (Is(s, "checks")) return kFChecks;
      break;
    case 7:
      if (Is(s, "context")) return kFContext;
      if (Is(s, "explain")) return kFExplain;
      if (Is(s, "min_rev")) return kFMinRev;
      break;
    case 8:
      if (Is(s, "resource")) return kFResource;
      break;
    case 9:
      if (Is(s, "workspace")) return kFWorkspace;
      break;
    default:
      break;
  }
  return -1;
}

// Records the value index of the FIRST member with each known name (duplicate keys: the first
// wins, exactly like Document::Find), in one pass. `obj` must be an object node.
void IndexFields(const Document& d, int obj, int* idx) noexcept {
  for (int f = 0; f < RequestArena::kFields; ++f) idx[f] = Document::kNone;
  d.ForEachMember(obj, [&](std::string_view key, int v) {
    int f = Classify(key);
    if (f >= 0 && idx[f] == Document::kNone) idx[f] = v;
  });
}

// "checks[k]." without snprintf (k < kMaxBatch); returns prefix.
const char* BatchPrefix(char* buf, uint32_t k) noexcept {
  char digits[10];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + k % 10);
    k /= 10;
  } while (k != 0);
  char* p = buf;
  std::memcpy(p, "checks[", 7);
  p += 7;
  while (n > 0) *p++ = digits[--n];
  *p++ = ']';
  *p++ = '.';
  *p = '\0';
  return buf;
}

}  // namespace

bool GetString(const Document& d, int obj, std::string_view key, const char* field, bool required,
               std::string_view* out, Error* err) noexcept {
  return StringAt(d, d.Find(obj, key), "", field, required, out, err);
}
bool GetId(const Document& d, int obj, std::string_view key, const char* field, bool required,
           std::string_view* out, Error* err) noexcept {
  return IdAt(d, d.Find(obj, key), "", field, required, out, err);
}
bool GetUint(const Document& d, int obj, std::string_view key, const char* field, bool* present,
             uint64_t* out, Error* err) noexcept {
  return UintAt(d, d.Find(obj, key), "", field, present, out, err);
}
bool GetBool(const Document& d, int obj, std::string_view key, const char* field, bool* out,
             Error* err) noexcept {
  return BoolAt(d, d.Find(obj, key), "", field, out, err);
}

namespace {

// A number literal's policy value: an int64 when it is an integer in range, else a double;
// false when it is out of double's range. Shared by both decoders.
inline bool NumberValue(std::string_view raw, bool is_int, policy::Value* v) noexcept {
  int64_t i;
  if (is_int && IntToI64(raw, &i)) {
    *v = policy::Value::Int(i);
    return true;
  }
  double d = 0;
  auto r = std::from_chars(raw.data(), raw.data() + raw.size(), d);
  if (r.ec != std::errc()) return false;
  *v = policy::Value::Double(d);
  return true;
}

// Converts a scalar node to a policy value. Returns false for containers.
bool ScalarValue(const Node& n, policy::Value* v) noexcept {
  switch (n.type) {
    case Type::kNull: *v = policy::Value::Null(); return true;
    case Type::kTrue: *v = policy::Value::Bool(true); return true;
    case Type::kFalse: *v = policy::Value::Bool(false); return true;
    case Type::kString: *v = policy::Value::String(n.str); return true;
    case Type::kNumber: return NumberValue(n.raw, n.number_is_int, v);
    default: return false;
  }
}

}  // namespace

RequestArena::RequestArena() {
  doc_.Reserve(4096, 256);
  kvs_.reserve(256);
  keys_.reserve(4096);
  checks_.reserve(kMaxBatch);
  for (int& i : root_) i = Document::kNone;
}

bool RequestArena::ParseLine(std::string_view line, Error* err) noexcept {
  fast_ = FastOp::kNone;
  for (int& i : root_) i = Document::kNone;
  if (!doc_.Parse(line)) {
    err->Set(ErrorCode::kBadRequest, "invalid JSON: %.*s", static_cast<int>(doc_.error().size()),
             doc_.error().data());
    return false;
  }
  kvs_.clear();
  keys_.clear();
  keys_used_ = 0;
  // Every decoded key/value corresponds to at least one node, so this bound keeps spans stable.
  if (kvs_.capacity() < doc_.node_count()) kvs_.reserve(doc_.node_count());
  if (keys_.capacity() < line.size() * 2 + 256) keys_.reserve(line.size() * 2 + 256);
  if (doc_.root().type == Type::kObject) IndexFields(doc_, 0, root_);
  return true;
}

bool RequestArena::DecodeEnvelope(Envelope* env, Error* err) noexcept {
  EnsureParsed();
  env->id_raw = "null";
  env->op = {};
  if (doc_.root().type != Type::kObject) {
    err->Set(ErrorCode::kBadRequest, "request must be a JSON object");
    return false;
  }
  int id = root_[kFId];
  if (id != Document::kNone) {
    const Node& n = doc_.node(id);
    if (n.type == Type::kObject || n.type == Type::kArray) {
      err->Set(ErrorCode::kBadRequest, "field 'id' must be a scalar");
      return false;
    }
    env->id_raw = n.raw;
  }
  return StringAt(doc_, root_[kFOp], "", "op", true, &env->op, err);
}

bool RequestArena::DecodeMinRev(bool* present, uint64_t* out, Error* err) noexcept {
  if (fast_ != FastOp::kNone) {
    // The single pass decoded (and checked) the root's min_rev.
    *present = fast_args_.has_min_rev;
    if (*present) *out = fast_args_.min_rev;
    return true;
  }
  return UintAt(doc_, root_[kFMinRev], "", "min_rev", present, out, err);
}

bool RequestArena::DecodeAttrs(int obj, const char* prefix, policy::AttrList* out,
                               Error* err) noexcept {
  const Node& n = doc_.node(obj);
  if (n.type != Type::kObject) {
    err->Set(ErrorCode::kBadRequest, "field '%sresource.attrs' must be an object", prefix);
    return false;
  }
  size_t start = kvs_.size();
  bool ok = true;
  doc_.ForEachMember(obj, [&](std::string_view key, int v) {
    if (!ok) return;
    policy::KeyValue kv;
    kv.key = key;
    if (!ScalarValue(doc_.node(v), &kv.value)) {
      err->Set(ErrorCode::kBadRequest, "field '%sresource.attrs.%.*s' must be a scalar", prefix,
               static_cast<int>(key.size() > 64 ? 64 : key.size()), key.data());
      ok = false;
      return;
    }
    kvs_.push_back(kv);
  });
  if (!ok) return false;
  *out = policy::AttrList(kvs_.data() + start, kvs_.size() - start);
  return true;
}

namespace {

// True iff parent + "." + key (or key alone when parent is empty) equals lit, without building it.
template <size_t N>
inline bool FullKeyIs(std::string_view parent, std::string_view key, const char (&lit)[N]) noexcept {
  constexpr size_t n = N - 1;
  if (parent.empty()) return key.size() == n && std::memcmp(key.data(), lit, n) == 0;
  return parent.size() + 1 + key.size() == n && std::memcmp(parent.data(), lit, parent.size()) == 0 &&
         lit[parent.size()] == '.' &&
         std::memcmp(key.data(), lit + parent.size() + 1, key.size()) == 0;
}

}  // namespace

bool RequestArena::FlattenContext(int obj, std::string_view parent, const char* prefix,
                                  int depth, Error* err) noexcept {
  bool ok = true;
  doc_.ForEachMember(obj, [&](std::string_view key, int v) {
    if (!ok) return;
    const Node& n = doc_.node(v);
    // keys_used_ counts every flattened key (parent + "." + key, or key at the top), as if each
    // were written to keys_; only the keys that are kept (objects as parents, attributes) are
    // written. The size limit therefore does not depend on which keys are kept.
    size_t need = parent.size() + 1 + key.size();
    if (keys_used_ + need > keys_.capacity()) {
      err->Set(ErrorCode::kBadRequest, "field '%scontext' is too large", prefix);
      ok = false;
      return;
    }
    keys_used_ += parent.empty() ? key.size() : need;
    if (n.type == Type::kArray) return;  // lists are not usable as context attributes
    // Known keys handled by DecodeContext are skipped.
    if (n.type != Type::kObject &&
        (FullKeyIs(parent, key, "auth.method") || FullKeyIs(parent, key, "auth.idp") ||
         FullKeyIs(parent, key, "auth.age_s") || FullKeyIs(parent, key, "client")))
      return;
    // Written after the current end (keys_.size() <= keys_used_ <= capacity: no realloc, so
    // `parent`, which points into keys_, stays valid).
    size_t base = keys_.size();
    if (!parent.empty()) {
      keys_.append(parent);
      keys_.push_back('.');
    }
    keys_.append(key);
    std::string_view full(keys_.data() + base, keys_.size() - base);
    if (n.type == Type::kObject) {
      if (depth > 8) {
        err->Set(ErrorCode::kBadRequest, "field '%scontext' is nested too deeply", prefix);
        ok = false;
        return;
      }
      if (!FlattenContext(v, full, prefix, depth + 1, err)) ok = false;
      return;
    }
    policy::KeyValue kv;
    kv.key = full;
    if (!ScalarValue(n, &kv.value)) return;
    kvs_.push_back(kv);
  });
  return ok;
}

bool RequestArena::DecodeContext(int obj, const char* prefix, policy::Request* req,
                                 Error* err) noexcept {
  if (doc_.node(obj).type != Type::kObject) {
    err->Set(ErrorCode::kBadRequest, "field '%scontext' must be an object", prefix);
    return false;
  }
  int auth = doc_.Find(obj, "auth");
  if (auth != Document::kNone) {
    if (doc_.node(auth).type != Type::kObject) {
      err->Set(ErrorCode::kBadRequest, "field '%scontext.auth' must be an object", prefix);
      return false;
    }
    if (!StringAt(doc_, doc_.Find(auth, "method"), prefix, "context.auth.method", false,
                  &req->auth_method, err))
      return false;
    if (!StringAt(doc_, doc_.Find(auth, "idp"), prefix, "context.auth.idp", false,
                  &req->auth_idp, err))
      return false;
    int age = doc_.Find(auth, "age_s");
    if (age != Document::kNone) {
      const Node& n = doc_.node(age);
      policy::Value v;
      if (n.type != Type::kNumber || !ScalarValue(n, &v)) {
        err->Set(ErrorCode::kBadRequest, "field '%scontext.auth.age_s' must be a number", prefix);
        return false;
      }
      // A double is range-checked before the conversion: casting one outside int64's range
      // is undefined behaviour (found by fuzz_protocol_codec: "age_s":6.2e19).
      const bool is_int = v.kind == policy::Value::Kind::kInt;
      if (is_int ? v.i < 0 : !(v.d >= 0)) {
        err->Set(ErrorCode::kBadRequest, "field '%scontext.auth.age_s' must be >= 0", prefix);
        return false;
      }
      if (!is_int && v.d >= 9223372036854775808.0) {
        err->Set(ErrorCode::kBadRequest, "field '%scontext.auth.age_s' is too large", prefix);
        return false;
      }
      req->auth_age_s = is_int ? v.i : static_cast<int64_t>(v.d);
    }
  }
  if (!StringAt(doc_, doc_.Find(obj, "client"), prefix, "context.client", false, &req->client,
                err))
    return false;
  size_t start = kvs_.size();
  if (!FlattenContext(obj, std::string_view(), prefix, 0, err)) return false;
  req->context_attrs = policy::AttrList(kvs_.data() + start, kvs_.size() - start);
  return true;
}

bool RequestArena::DecodeCheckAt(int obj, const int* f, const char* prefix, CheckArgs* out,
                                 bool require_action, Error* err) noexcept {
  *out = CheckArgs();
  policy::Request& r = out->req;
  if (doc_.node(obj).type != Type::kObject) {
    err->Set(ErrorCode::kBadRequest, "field '%.*s' must be an object",
             static_cast<int>(std::strlen(prefix) ? std::strlen(prefix) - 1 : 0), prefix);
    return false;
  }
  // Fields are checked in this fixed order (not document order), so the reported error of a
  // request with several problems does not depend on member order.
  if (!IdAt(doc_, f[kFUser], prefix, "user", true, &r.user, err)) return false;
  if (!StringAt(doc_, f[kFAction], prefix, "action", require_action, &r.action, err)) return false;
  if (require_action && r.action.empty()) {
    err->Set(ErrorCode::kBadRequest, "field '%saction' must not be empty", prefix);
    return false;
  }
  if (!IdAt(doc_, f[kFOrg], prefix, "org", false, &r.org, err)) return false;
  if (!IdAt(doc_, f[kFWorkspace], prefix, "workspace", false, &r.workspace, err)) return false;
  if (r.org.empty() && r.workspace.empty()) {
    err->Set(ErrorCode::kBadRequest, "missing field '%sorg' or '%sworkspace'", prefix, prefix);
    return false;
  }
  int res = f[kFResource];
  if (res != Document::kNone) {
    if (doc_.node(res).type != Type::kObject) {
      err->Set(ErrorCode::kBadRequest, "field '%sresource' must be an object", prefix);
      return false;
    }
    if (!StringAt(doc_, doc_.Find(res, "type"), prefix, "resource.type", false,
                  &r.resource_type, err))
      return false;
    if (!StringAt(doc_, doc_.Find(res, "id"), prefix, "resource.id", false, &r.resource_id,
                  err))
      return false;
    int attrs = doc_.Find(res, "attrs");
    if (attrs != Document::kNone) {
      if (!DecodeAttrs(attrs, prefix, &r.resource_attrs, err)) return false;
    }
  }
  int ctx = f[kFContext];
  if (ctx != Document::kNone && !DecodeContext(ctx, prefix, &r, err)) return false;
  if (!BoolAt(doc_, f[kFExplain], prefix, "explain", &out->explain, err)) return false;
  if (!UintAt(doc_, f[kFMinRev], prefix, "min_rev", &out->has_min_rev, &out->min_rev, err))
    return false;
  return true;
}

bool RequestArena::DecodeCheck(CheckArgs* out, bool require_action, Error* err) noexcept {
  // A check decoded with require_action decodes identically without it.
  if (fast_ == FastOp::kCheck || (fast_ == FastOp::kListActions && !require_action)) {
    *out = fast_args_;
    return true;
  }
  EnsureParsed();
  // Repeated decodes of one line (the fuzzer, list ops) start from empty kv/key buffers, so
  // their capacity bound per decode holds.
  kvs_.clear();
  keys_.clear();
  keys_used_ = 0;
  return DecodeCheckAt(0, root_, "", out, require_action, err);
}

bool RequestArena::DecodeRootContext(policy::Request* req, Error* err) noexcept {
  EnsureParsed();
  kvs_.clear();
  keys_.clear();
  keys_used_ = 0;
  int ctx = root_[kFContext];
  return ctx == Document::kNone || DecodeContext(ctx, "", req, err);
}

bool RequestArena::DecodeCheckBatch(CheckArgs* top, Error* err) noexcept {
  if (fast_ == FastOp::kBatch) {  // checks_ holds the items
    *top = CheckArgs();
    top->explain = fast_args_.explain;
    top->has_min_rev = fast_args_.has_min_rev;
    top->min_rev = fast_args_.min_rev;
    return true;
  }
  EnsureParsed();
  checks_.clear();
  kvs_.clear();
  keys_.clear();
  keys_used_ = 0;
  *top = CheckArgs();
  // root_ is all kNone unless the root is an object (then: "missing field 'checks'").
  if (!BoolAt(doc_, root_[kFExplain], "", "explain", &top->explain, err)) return false;
  if (!UintAt(doc_, root_[kFMinRev], "", "min_rev", &top->has_min_rev, &top->min_rev, err))
    return false;
  int arr = root_[kFChecks];
  if (arr == Document::kNone) {
    err->Set(ErrorCode::kBadRequest, "missing field 'checks'");
    return false;
  }
  const Node& a = doc_.node(arr);
  if (a.type != Type::kArray) {
    err->Set(ErrorCode::kBadRequest, "field 'checks' must be an array");
    return false;
  }
  if (a.size > kMaxBatch) {
    err->Set(ErrorCode::kBadRequest, "field 'checks' has %u items; at most %zu allowed", a.size,
             kMaxBatch);
    return false;
  }
  int i = doc_.FirstChild(arr);
  char prefix[32];
  int f[kFields];
  for (uint32_t k = 0; k < a.size; ++k) {
    if (doc_.node(i).type != Type::kObject) {
      err->Set(ErrorCode::kBadRequest, "field 'checks[%u]' must be an object", k);
      return false;
    }
    IndexFields(doc_, i, f);
    checks_.emplace_back();
    CheckArgs& c = checks_.back();
    if (!DecodeCheckAt(i, f, BatchPrefix(prefix, k), &c, true, err)) {
      checks_.pop_back();
      return false;
    }
    if (top->explain) c.explain = true;
    i = doc_.Next(i);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// The single pass (DecodeRequest): the line is scanned once, members are dispatched on their
// name as they come, and values are stored straight into CheckArgs. It accepts a subset of the
// language, and for that subset the same values as the general path:
//   - the root is an object of known members only (id, op, user, action, org, workspace,
//     resource, context, explain, min_rev, checks), each at most once (a duplicate would make
//     "first wins" matter); op is check, check_batch or list_actions;
//   - check_batch items: objects of user .. min_rev only, each at most once, and each a valid
//     check; at most kMaxBatch items;
//   - resource: type, id, attrs (scalars) at most once each; context: auth (method, idp,
//     age_s at most once each), client, and other members with scalar values;
//   - strings without escapes (valid UTF-8, no control characters); numbers with the reader's
//     grammar and the same conversions (NumberValue; min_rev an integer in uint64, age_s >= 0
//     and below 2^63); whitespace anywhere the grammar allows it.
// Anything else (including every error) returns false and the general path decides. The single
// pass never allocates: kvs_ and checks_ are used within their capacity (full: general path).
// ---------------------------------------------------------------------------------------------

struct FastCursor {
  const char* q;
  const char* e;
};

namespace {

using Cur = FastCursor;

// Lines this long or longer go to the general path. Every node of the reader's tree takes at
// least one byte of the line, so a shorter line cannot reach Limits::max_nodes; the depth of
// the accepted shapes is at most 5 (root, checks, item, resource, attrs) < Limits::max_depth.
constexpr size_t kFastMaxLine = size_t{1} << 20;
static_assert(json::Limits().max_nodes == kFastMaxLine);
static_assert(json::Limits().max_depth >= 5);

constexpr uint32_t Bit(int f) { return uint32_t{1} << f; }


inline void SkipWs(Cur* c) noexcept {
  while (c->q < c->e && static_cast<unsigned char>(*c->q) <= ' ' &&
         (*c->q == ' ' || *c->q == '\t' || *c->q == '\n' || *c->q == '\r'))
    ++c->q;
}

// Skips whitespace, then consumes `ch` iff it is next (compact JSON: one compare).
inline bool Eat(Cur* c, char ch) noexcept {
  if (c->q < c->e && *c->q == ch) {
    ++c->q;
    return true;
  }
  if (c->q >= c->e || static_cast<unsigned char>(*c->q) > ' ') return false;
  SkipWs(c);
  if (c->q < c->e && *c->q == ch) {
    ++c->q;
    return true;
  }
  return false;
}

// Skips whitespace before a value or name (compact JSON: one compare).
inline void SkipWsFast(Cur* c) noexcept {
  if (c->q < c->e && static_cast<unsigned char>(*c->q) <= ' ') SkipWs(c);
}

// As json_reader.cc: the high bit of every byte that is '"', '\\', < 0x20 or >= 0x80 (the
// lowest set bit marks the first such byte exactly).
constexpr uint64_t kOnes8 = 0x0101010101010101ULL;
constexpr uint64_t kHigh8 = 0x8080808080808080ULL;
inline uint64_t SpecialMask(const char* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, 8);
  uint64_t q = v ^ (kOnes8 * '"');
  uint64_t b = v ^ (kOnes8 * '\\');
  return (((q - kOnes8) & ~q) | ((b - kOnes8) & ~b) | ((v - kOnes8 * 0x20) & ~v) | v) & kHigh8;
}

// A string without escapes at the cursor (after whitespace); *out: its contents, a view into
// the line. False for escapes, control characters, invalid UTF-8 or no string.
__attribute__((always_inline)) inline bool FastString(Cur* c, std::string_view* out) noexcept {
  SkipWsFast(c);
  if (c->q >= c->e || *c->q != '"') return false;
  const char* s = c->q + 1;
  const char* q = s;
  while (c->e - q >= 8) {
    uint64_t m = SpecialMask(q);
    if (m != 0) {
      q += static_cast<unsigned>(__builtin_ctzll(m)) >> 3;
      if (*q == '"') {
        *out = std::string_view(s, static_cast<size_t>(q - s));
        c->q = q + 1;
        return true;
      }
      break;
    }
    q += 8;
  }
  bool high = false;
  for (; q < c->e; ++q) {
    unsigned char ch = static_cast<unsigned char>(*q);
    if (ch == '"') {
      *out = std::string_view(s, static_cast<size_t>(q - s));
      c->q = q + 1;
      return !high || json::IsValidUtf8(*out);  // the reader's rules, byte for byte
    }
    if (ch == '\\' || ch < 0x20) return false;
    if (ch >= 0x80) high = true;
  }
  return false;
}

// An identifier (user, org, workspace) at the cursor: exactly FastString + IsValidId. Plain
// ASCII without DEL is checked in the same eight-byte steps that find the closing quote.
__attribute__((always_inline)) inline bool FastId(Cur* c, std::string_view* out) noexcept {
  SkipWsFast(c);
  if (c->q < c->e && *c->q == '"') {
    const char* s = c->q + 1;
    const char* q = s;
    while (c->e - q >= 8) {
      uint64_t v;
      std::memcpy(&v, q, 8);
      uint64_t d = v ^ (kOnes8 * 0x7f);
      uint64_t m = SpecialMask(q) | ((d - kOnes8) & ~d & kHigh8);  // lowest bit still exact
      if (m != 0) {
        q += static_cast<unsigned>(__builtin_ctzll(m)) >> 3;
        const size_t n = static_cast<size_t>(q - s);
        if (*q == '"' && n != 0 && n <= kMaxIdBytes) {
          *out = std::string_view(s, n);
          c->q = q + 1;
          return true;
        }
        break;
      }
      q += 8;
    }
  }
  return FastString(c, out) && IsValidId(*out);
}

inline bool IsDigit(char ch) noexcept { return ch >= '0' && ch <= '9'; }

// A number at the cursor (after whitespace), in the reader's grammar; *raw: its text, *is_int:
// no fraction or exponent part.
inline bool FastNumber(Cur* c, std::string_view* raw, bool* is_int) noexcept {
  SkipWsFast(c);
  const char* p = c->q;
  const char* const e = c->e;
  const char* start = p;
  if (p < e && *p == '-') ++p;
  if (p >= e) return false;
  if (*p == '0') {
    ++p;
  } else if (*p >= '1' && *p <= '9') {
    while (p < e && IsDigit(*p)) ++p;
  } else {
    return false;
  }
  bool in = true;
  if (p < e && *p == '.') {
    in = false;
    ++p;
    if (p >= e || !IsDigit(*p)) return false;
    while (p < e && IsDigit(*p)) ++p;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    in = false;
    ++p;
    if (p < e && (*p == '+' || *p == '-')) ++p;
    if (p >= e || !IsDigit(*p)) return false;
    while (p < e && IsDigit(*p)) ++p;
  }
  *raw = std::string_view(start, static_cast<size_t>(p - start));
  *is_int = in;
  c->q = p;
  return true;
}

// `word` (true/false/null) at the cursor (after whitespace).
template <size_t N>
inline bool FastWord(Cur* c, const char (&word)[N]) noexcept {
  if (static_cast<size_t>(c->e - c->q) < N - 1 || !Is(c->q, word)) return false;
  c->q += N - 1;
  return true;
}

inline bool FastBool(Cur* c, bool* out) noexcept {
  SkipWsFast(c);
  if (c->q < c->e && *c->q == 't' && FastWord(c, "true")) {
    *out = true;
    return true;
  }
  if (c->q < c->e && *c->q == 'f' && FastWord(c, "false")) {
    *out = false;
    return true;
  }
  return false;
}

// A non-negative integer in uint64 (min_rev: UintAt's accepted values).
inline bool FastUint(Cur* c, uint64_t* out) noexcept {
  std::string_view raw;
  bool is_int;
  return FastNumber(c, &raw, &is_int) && is_int && raw[0] != '-' && DigitsToU64(raw, out);
}

// Any scalar's exact text ("id": a string with its quotes, a number, true/false/null).
inline bool FastScalarRaw(Cur* c, std::string_view* raw) noexcept {
  SkipWsFast(c);
  if (c->q >= c->e) return false;
  const char* start = c->q;
  bool ok;
  switch (*c->q) {
    case '"': {
      std::string_view s;
      ok = FastString(c, &s);
      break;
    }
    case 't': ok = FastWord(c, "true"); break;
    case 'f': ok = FastWord(c, "false"); break;
    case 'n': ok = FastWord(c, "null"); break;
    default: {
      std::string_view num;
      bool is_int;
      ok = FastNumber(c, &num, &is_int);
      break;
    }
  }
  if (!ok) return false;
  *raw = std::string_view(start, static_cast<size_t>(c->q - start));
  return true;
}

// A scalar attribute value as ScalarValue converts it; false for containers and for numbers
// outside double's range.
inline bool FastValue(Cur* c, policy::Value* v) noexcept {
  SkipWsFast(c);
  if (c->q >= c->e) return false;
  switch (*c->q) {
    case '"': {
      std::string_view s;
      if (!FastString(c, &s)) return false;
      *v = policy::Value::String(s);
      return true;
    }
    case 't':
      if (!FastWord(c, "true")) return false;
      *v = policy::Value::Bool(true);
      return true;
    case 'f':
      if (!FastWord(c, "false")) return false;
      *v = policy::Value::Bool(false);
      return true;
    case 'n':
      if (!FastWord(c, "null")) return false;
      *v = policy::Value::Null();
      return true;
    default: {
      std::string_view raw;
      bool is_int;
      return FastNumber(c, &raw, &is_int) && NumberValue(raw, is_int, v);
    }
  }
}

// `lit` (a member name with its closing quote) at q, which has at least kKeyRoom bytes after it:
// then the cursor moves past it. A fixed-size compare, a few loads.
constexpr ptrdiff_t kKeyRoom = 16;

template <size_t n>
constexpr uint64_t kLowBytes = n >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * n)) - 1;

// s == lit (at most 16 bytes), in word compares (string_view's == calls memcmp).
template <size_t N>
inline bool Eq(std::string_view s, const char (&lit)[N]) noexcept {
  constexpr size_t n = N - 1;
  static_assert(n <= 16 && n > 0);
  return s.size() == n && Is(s.data(), lit);
}

template <size_t N>
inline bool TakeKey(Cur* c, const char* q, const char (&lit)[N]) noexcept {
  constexpr size_t n = N - 1;
  static_assert(n <= kKeyRoom && n > 0);
  bool eq;
  if constexpr (n <= 8) {
    eq = (Word<8>(q) & kLowBytes<n>) == Word<n>(lit);  // 8 bytes readable: kKeyRoom
  } else {
    eq = Is(q, lit);
  }
  if (!eq) return false;
  c->q = q + n;
  return true;
}

// The member name at the cursor (after whitespace) when only known names are accepted: names
// are matched with their closing quote in place, not scanned as strings. Returns the name's
// code, or -1 for any other name (also one spelled with escapes: the general path decides).
// `match(c, q)`: q points after the opening quote with kKeyRoom bytes readable; returns the code
// (having moved the cursor with TakeKey) or -1. `classify(name)`: the same for a scanned name
// (near the end of the line).
template <typename Match, typename Classify>
inline int FastKnownKey(Cur* c, Match&& match, Classify&& classify) noexcept {
  SkipWsFast(c);
  if (c->e - c->q > kKeyRoom && *c->q == '"') return match(c, c->q + 1);
  std::string_view name;
  return FastString(c, &name) ? classify(name) : -1;
}

inline int FastField(Cur* c) noexcept {
  return FastKnownKey(
      c,
      [](Cur* c, const char* q) -> int {
        switch (*q) {
          case 'u': return TakeKey(c, q, "user\"") ? kFUser : -1;
          case 'a': return TakeKey(c, q, "action\"") ? kFAction : -1;
          case 'o':
            if (TakeKey(c, q, "org\"")) return kFOrg;
            return TakeKey(c, q, "op\"") ? kFOp : -1;
          case 'w': return TakeKey(c, q, "workspace\"") ? kFWorkspace : -1;
          case 'r': return TakeKey(c, q, "resource\"") ? kFResource : -1;
          case 'c':
            if (TakeKey(c, q, "context\"")) return kFContext;
            return TakeKey(c, q, "checks\"") ? kFChecks : -1;
          case 'e': return TakeKey(c, q, "explain\"") ? kFExplain : -1;
          case 'm': return TakeKey(c, q, "min_rev\"") ? kFMinRev : -1;
          case 'i': return TakeKey(c, q, "id\"") ? kFId : -1;
          default: return -1;
        }
      },
      [](std::string_view name) { return Classify(name); });
}

// An object whose member names are read by key(c) (a code, -1: not accepted); fn(code)
// consumes each member's value.
template <typename Key, typename Fn>
inline bool FastKnownObject(Cur* c, Key&& key, Fn&& fn) noexcept {
  if (!Eat(c, '{')) return false;
  if (Eat(c, '}')) return true;
  do {
    int k = key(c);
    if (k < 0 || !Eat(c, ':') || !fn(k)) return false;
  } while (Eat(c, ','));
  return Eat(c, '}');
}

// An object at the cursor: fn(key) consumes each member's value (after the ':'). False if
// there is no object, a key has escapes, or fn returns false.
template <typename Fn>
inline bool FastObject(Cur* c, Fn&& fn) noexcept {
  if (!Eat(c, '{')) return false;
  if (Eat(c, '}')) return true;
  do {
    std::string_view key;
    if (!FastString(c, &key) || !Eat(c, ':')) return false;
    if (!fn(key)) return false;
  } while (Eat(c, ','));
  return Eat(c, '}');
}

// True iff DecodeCheckAt accepts a check whose members `seen` (bits of Field) were decoded
// into *a (types and values, identifiers included, were checked on the way; this adds the
// cross-field rules).
inline bool FastCheckComplete(uint32_t seen, const CheckArgs& a, bool require_action) noexcept {
  const policy::Request& r = a.req;
  if (!(seen & Bit(kFUser))) return false;  // user, org, workspace: FastId checked IsValidId
  if (require_action && r.action.empty()) return false;  // absent or ""
  return !(r.org.empty() && r.workspace.empty());
}

}  // namespace

bool RequestArena::FastAttrs(Cur* c, policy::AttrList* out) noexcept {
  size_t start = kvs_.size();
  bool ok = FastObject(c, [&](std::string_view key) {
    if (kvs_.size() == kvs_.capacity()) return false;  // never reallocate (spans into kvs_)
    policy::KeyValue kv;
    kv.key = key;
    if (!FastValue(c, &kv.value)) return false;
    kvs_.push_back(kv);
    return true;
  });
  if (!ok) return false;
  *out = policy::AttrList(kvs_.data() + start, kvs_.size() - start);
  return true;
}

bool RequestArena::FastResource(Cur* c, policy::Request* r) noexcept {
  uint32_t seen = 0;
  auto key = [](Cur* c) {
    return FastKnownKey(
        c,
        [](Cur* c, const char* q) {
          if (TakeKey(c, q, "type\"")) return 1;
          if (TakeKey(c, q, "id\"")) return 2;
          return TakeKey(c, q, "attrs\"") ? 4 : -1;
        },
        [](std::string_view k) { return Eq(k, "type") ? 1 : Eq(k, "id") ? 2 : Eq(k, "attrs") ? 4 : -1; });
  };
  return FastKnownObject(c, key, [&](int bit) {
    if (seen & bit) return false;
    seen |= bit;
    if (bit == 1) return FastString(c, &r->resource_type);
    if (bit == 2) return FastString(c, &r->resource_id);
    return FastAttrs(c, &r->resource_attrs);
  });
}

bool RequestArena::FastContext(Cur* c, policy::Request* r) noexcept {
  size_t start = kvs_.size();
  uint32_t seen = 0;  // 1: auth, 2: client, 4/8/16: auth.method/idp/age_s
  bool ok = FastObject(c, [&](std::string_view key) {
    if (Eq(key, "auth")) {
      if (seen & 1) return false;
      seen |= 1;
      auto key = [](Cur* c) {
        return FastKnownKey(
            c,
            [](Cur* c, const char* q) {
              if (TakeKey(c, q, "method\"")) return 4;
              if (TakeKey(c, q, "idp\"")) return 8;
              return TakeKey(c, q, "age_s\"") ? 16 : -1;
            },
            [](std::string_view k) {
              return Eq(k, "method") ? 4 : Eq(k, "idp") ? 8 : Eq(k, "age_s") ? 16 : -1;
            });
      };
      // Other auth members (flattened "auth.x" attributes) are left to the general path.
      return FastKnownObject(c, key, [&](int bit) {
        if (seen & static_cast<uint32_t>(bit)) return false;
        seen |= static_cast<uint32_t>(bit);
        if (bit == 4) return FastString(c, &r->auth_method);
        if (bit == 8) return FastString(c, &r->auth_idp);
        // DecodeContext's rules; any error: the general path.
        std::string_view raw;
        bool is_int;
        policy::Value v;
        if (!FastNumber(c, &raw, &is_int) || !NumberValue(raw, is_int, &v)) return false;
        const bool vi = v.kind == policy::Value::Kind::kInt;
        if (vi ? v.i < 0 : !(v.d >= 0)) return false;
        if (!vi && v.d >= 9223372036854775808.0) return false;
        r->auth_age_s = vi ? v.i : static_cast<int64_t>(v.d);
        return true;
      });
    }
    if (Eq(key, "client")) {
      if (seen & 2) return false;
      seen |= 2;
      return FastString(c, &r->client);
    }
    // Top-level keys spelled like the known flattened ones are skipped by FlattenContext.
    if (Eq(key, "auth.method") || Eq(key, "auth.idp") || Eq(key, "auth.age_s")) return false;
    if (kvs_.size() == kvs_.capacity()) return false;
    policy::KeyValue kv;
    kv.key = key;  // the general path copies it to keys_; equal bytes
    if (!FastValue(c, &kv.value)) return false;
    kvs_.push_back(kv);
    return true;
  });
  if (!ok) return false;
  r->context_attrs = policy::AttrList(kvs_.data() + start, kvs_.size() - start);
  return true;
}

bool RequestArena::FastCheckField(Cur* c, int field, CheckArgs* a) noexcept {
  policy::Request& r = a->req;
  switch (field) {
    case kFUser: return FastId(c, &r.user);
    case kFAction: return FastString(c, &r.action);
    case kFOrg: return FastId(c, &r.org);
    case kFWorkspace: return FastId(c, &r.workspace);
    case kFResource: return FastResource(c, &r);
    case kFContext: return FastContext(c, &r);
    case kFExplain: return FastBool(c, &a->explain);
    case kFMinRev:
      if (!FastUint(c, &a->min_rev)) return false;
      a->has_min_rev = true;
      return true;
    default: return false;
  }
}

bool RequestArena::FastChecks(Cur* c) noexcept {
  if (!Eat(c, '[')) return false;
  if (Eat(c, ']')) return true;
  do {
    // Within the reserved capacity (kMaxBatch): no reallocation; more items: general path.
    if (checks_.size() >= kMaxBatch || checks_.size() == checks_.capacity()) return false;
    checks_.emplace_back();
    CheckArgs& a = checks_.back();
    uint32_t seen = 0;
    bool ok = FastKnownObject(c, [](Cur* c) { return FastField(c); }, [&](int f) {
      if (f < kFUser || f > kFMinRev || (seen & Bit(f))) return false;
      seen |= Bit(f);
      return FastCheckField(c, f, &a);
    });
    if (!ok || !FastCheckComplete(seen, a, true)) return false;
  } while (Eat(c, ','));
  return Eat(c, ']');
}

// flatten: every helper is inlined here, so the cursor lives in a register (no escaping
// FastCursor, no call per member).
__attribute__((flatten)) bool RequestArena::TryFast(std::string_view line,
                                                    Envelope* env) noexcept {
  if (line.size() >= kFastMaxLine) return false;
  Cur cur{line.data(), line.data() + line.size()};
  Cur* c = &cur;
  kvs_.clear();
  checks_.clear();
  fast_args_ = CheckArgs();
  CheckArgs& a = fast_args_;
  std::string_view op;
  std::string_view id_raw = "null";
  uint32_t seen = 0;
  bool ok = FastKnownObject(c, [](Cur* c) { return FastField(c); }, [&](int f) {
    if (seen & Bit(f)) return false;
    seen |= Bit(f);
    switch (f) {
      case kFId: return FastScalarRaw(c, &id_raw);
      case kFOp: return FastString(c, &op);
      case kFChecks: return FastChecks(c);
      default: return FastCheckField(c, f, &a);
    }
  });
  if (!ok) return false;
  SkipWsFast(c);
  if (c->q != c->e || !(seen & Bit(kFOp))) return false;
  const bool has_checks = (seen & Bit(kFChecks)) != 0;
  FastOp kind;
  if (Eq(op, "check_batch")) {
    // Root members other than explain/min_rev/checks are ignored by DecodeCheckBatch (they
    // were only scanned).
    if (!has_checks) return false;
    if (a.explain)
      for (CheckArgs& item : checks_) item.explain = true;
    kind = FastOp::kBatch;
  } else if (has_checks) {
    return false;
  } else if (Eq(op, "check")) {
    if (!FastCheckComplete(seen, a, true)) return false;
    kind = FastOp::kCheck;
  } else if (Eq(op, "list_actions")) {
    if (!FastCheckComplete(seen, a, false)) return false;
    kind = FastOp::kListActions;
  } else {
    return false;
  }
  env->op = op;
  env->id_raw = id_raw;
  line_ = line;
  fast_ = kind;
  return true;
}

bool RequestArena::DecodeRequest(std::string_view line, Envelope* env, Error* err) noexcept {
  if (TryFast(line, env)) return true;
  return ParseLine(line, err) && DecodeEnvelope(env, err);
}

void RequestArena::EnsureParsed() noexcept {
  if (fast_ == FastOp::kNone) return;
  Error unused;
  (void)ParseLine(line_, &unused);  // sets fast_ = kNone; the single pass only accepts valid JSON
}

std::string DebugString(const CheckArgs& a) {
  std::string s;
  char buf[64];
  auto str = [&](const char* name, std::string_view v) {
    s += name;
    s += "=[";
    s.append(v.data() == nullptr ? "" : v.data(), v.size());
    s += "] ";
  };
  auto attrs = [&](const char* name, policy::AttrList l) {
    s += name;
    s += "={";
    for (const policy::KeyValue& kv : l) {
      s += "[";
      s.append(kv.key.data() == nullptr ? "" : kv.key.data(), kv.key.size());
      s += "]:";
      switch (kv.value.kind) {
        case policy::Value::Kind::kMissing: s += "missing"; break;
        case policy::Value::Kind::kNull: s += "null"; break;
        case policy::Value::Kind::kBool: s += kv.value.b ? "true" : "false"; break;
        case policy::Value::Kind::kInt:
          std::snprintf(buf, sizeof(buf), "int:%lld", static_cast<long long>(kv.value.i));
          s += buf;
          break;
        case policy::Value::Kind::kDouble:
          std::snprintf(buf, sizeof(buf), "double:%.17g", kv.value.d);
          s += buf;
          break;
        case policy::Value::Kind::kString:
          s += "str:[";
          s.append(kv.value.s.data() == nullptr ? "" : kv.value.s.data(), kv.value.s.size());
          s += "]";
          break;
      }
      s += " ";
    }
    s += "} ";
  };
  const policy::Request& r = a.req;
  str("user", r.user);
  str("action", r.action);
  str("org", r.org);
  str("workspace", r.workspace);
  str("resource.type", r.resource_type);
  str("resource.id", r.resource_id);
  attrs("resource.attrs", r.resource_attrs);
  str("auth.method", r.auth_method);
  str("auth.idp", r.auth_idp);
  std::snprintf(buf, sizeof(buf), "auth.age_s=%lld ", static_cast<long long>(r.auth_age_s));
  s += buf;
  str("client", r.client);
  attrs("context", r.context_attrs);
  std::snprintf(buf, sizeof(buf), "explain=%d min_rev=%d:%llu", a.explain ? 1 : 0,
                a.has_min_rev ? 1 : 0, static_cast<unsigned long long>(a.min_rev));
  s += buf;
  return s;
}

void AppendReplyStart(std::string* out, std::string_view id_raw) {
  out->append("{\"id\":");
  out->append(id_raw);
  out->append(",\"ok\":true");
}

void AppendError(std::string* out, std::string_view id_raw, ErrorCode code,
                 std::string_view message) {
  out->append("{\"id\":");
  out->append(id_raw);
  out->append(",\"ok\":false,\"error\":{\"code\":\"");
  out->append(ErrorCodeName(code));
  out->append("\",\"message\":");
  json::AppendString(out, message);
  out->append("}}\n");
}

void AppendDecision(std::string* out, const policy::Decision& d, bool explain) {
  out->append(d.allow ? "{\"allow\":true" : "{\"allow\":false");
  if (explain) {
    out->append(",\"rule\":");
    json::AppendString(out, d.rule);
  }
  if (explain || !d.allow) {
    out->append(",\"reason\":");
    json::AppendString(out, d.reason);
  }
  out->push_back('}');
}

void AppendCheckReply(std::string* out, std::string_view id_raw, uint64_t rev,
                      const policy::Decision& d, bool explain) {
  AppendReplyStart(out, id_raw);
  out->append(d.allow ? ",\"allow\":true,\"rev\":" : ",\"allow\":false,\"rev\":");
  json::AppendUint(out, rev);
  if (explain) {
    out->append(",\"rule\":");
    json::AppendString(out, d.rule);
  }
  if (explain || !d.allow) {
    out->append(",\"reason\":");
    json::AppendString(out, d.reason);
  }
  out->append("}\n");
}

}  // namespace gatehouse::daemon
