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

template <size_t N>
inline bool Is(const char* s, const char (&lit)[N]) noexcept {
  return std::memcmp(s, lit, N - 1) == 0;  // fixed size: compiled to a few loads
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

// Converts a scalar node to a policy value. Returns false for containers.
bool ScalarValue(const Node& n, policy::Value* v) noexcept {
  switch (n.type) {
    case Type::kNull: *v = policy::Value::Null(); return true;
    case Type::kTrue: *v = policy::Value::Bool(true); return true;
    case Type::kFalse: *v = policy::Value::Bool(false); return true;
    case Type::kString: *v = policy::Value::String(n.str); return true;
    case Type::kNumber: {
      if (n.number_is_int) {
        int64_t i;
        if (IntToI64(n.raw, &i)) {
          *v = policy::Value::Int(i);
          return true;
        }
      }
      double d = 0;
      auto r = std::from_chars(n.raw.data(), n.raw.data() + n.raw.size(), d);
      if (r.ec != std::errc()) return false;
      *v = policy::Value::Double(d);
      return true;
    }
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

bool RequestArena::DecodeMinRev(bool* present, uint64_t* out, Error* err) const noexcept {
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
  // Repeated decodes of one line (the fuzzer, list ops) start from empty kv/key buffers, so
  // their capacity bound per decode holds.
  kvs_.clear();
  keys_.clear();
  keys_used_ = 0;
  return DecodeCheckAt(0, root_, "", out, require_action, err);
}

bool RequestArena::DecodeRootContext(policy::Request* req, Error* err) noexcept {
  kvs_.clear();
  keys_.clear();
  keys_used_ = 0;
  int ctx = root_[kFContext];
  return ctx == Document::kNone || DecodeContext(ctx, "", req, err);
}

bool RequestArena::DecodeCheckBatch(CheckArgs* top, Error* err) noexcept {
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
