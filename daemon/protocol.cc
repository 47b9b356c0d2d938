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
}

bool IsValidId(std::string_view s) noexcept {
  if (s.empty() || s.size() > kMaxIdBytes) return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

namespace {

bool GetStringP(const Document& d, int obj, std::string_view key, const char* prefix,
                const char* field, bool required, std::string_view* out, Error* err) noexcept {
  int i = d.Find(obj, key);
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

bool GetIdP(const Document& d, int obj, std::string_view key, const char* prefix,
            const char* field, bool required, std::string_view* out, Error* err) noexcept {
  if (!GetStringP(d, obj, key, prefix, field, required, out, err)) return false;
  if (out->empty() && d.Find(obj, key) == Document::kNone) return true;
  if (!IsValidId(*out)) {
    err->Set(ErrorCode::kBadRequest,
             "field '%s%s' must be an identifier of 1-128 bytes without control characters",
             prefix, field);
    return false;
  }
  return true;
}

bool GetUintP(const Document& d, int obj, std::string_view key, const char* prefix,
              const char* field, bool* present, uint64_t* out, Error* err) noexcept {
  int i = d.Find(obj, key);
  *present = i != Document::kNone;
  if (!*present) return true;
  const Node& n = d.node(i);
  if (n.type != Type::kNumber || !n.number_is_int || n.raw[0] == '-') {
    err->Set(ErrorCode::kBadRequest, "field '%s%s' must be a non-negative integer", prefix,
             field);
    return false;
  }
  auto r = std::from_chars(n.raw.data(), n.raw.data() + n.raw.size(), *out);
  if (r.ec != std::errc()) {
    err->Set(ErrorCode::kBadRequest, "field '%s%s' is out of range", prefix, field);
    return false;
  }
  return true;
}

bool GetBoolP(const Document& d, int obj, std::string_view key, const char* prefix,
              const char* field, bool* out, Error* err) noexcept {
  int i = d.Find(obj, key);
  if (i == Document::kNone) return true;
  const Node& n = d.node(i);
  if (n.type != Type::kTrue && n.type != Type::kFalse) {
    err->Set(ErrorCode::kBadRequest, "field '%s%s' must be a boolean", prefix, field);
    return false;
  }
  *out = n.type == Type::kTrue;
  return true;
}

}  // namespace

bool GetString(const Document& d, int obj, std::string_view key, const char* field, bool required,
               std::string_view* out, Error* err) noexcept {
  return GetStringP(d, obj, key, "", field, required, out, err);
}
bool GetId(const Document& d, int obj, std::string_view key, const char* field, bool required,
           std::string_view* out, Error* err) noexcept {
  return GetIdP(d, obj, key, "", field, required, out, err);
}
bool GetUint(const Document& d, int obj, std::string_view key, const char* field, bool* present,
             uint64_t* out, Error* err) noexcept {
  return GetUintP(d, obj, key, "", field, present, out, err);
}
bool GetBool(const Document& d, int obj, std::string_view key, const char* field, bool* out,
             Error* err) noexcept {
  return GetBoolP(d, obj, key, "", field, out, err);
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
        auto r = std::from_chars(n.raw.data(), n.raw.data() + n.raw.size(), i);
        if (r.ec == std::errc()) {
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
}

bool RequestArena::ParseLine(std::string_view line, Error* err) noexcept {
  if (!doc_.Parse(line)) {
    err->Set(ErrorCode::kBadRequest, "invalid JSON: %.*s", static_cast<int>(doc_.error().size()),
             doc_.error().data());
    return false;
  }
  kvs_.clear();
  keys_.clear();
  // Every decoded key/value corresponds to at least one node, so this bound keeps spans stable.
  if (kvs_.capacity() < doc_.node_count()) kvs_.reserve(doc_.node_count());
  if (keys_.capacity() < line.size() * 2 + 256) keys_.reserve(line.size() * 2 + 256);
  return true;
}

bool RequestArena::DecodeEnvelope(Envelope* env, Error* err) noexcept {
  env->id_raw = "null";
  env->op = {};
  if (doc_.root().type != Type::kObject) {
    err->Set(ErrorCode::kBadRequest, "request must be a JSON object");
    return false;
  }
  int id = doc_.Find(0, "id");
  if (id != Document::kNone) {
    const Node& n = doc_.node(id);
    if (n.type == Type::kObject || n.type == Type::kArray) {
      err->Set(ErrorCode::kBadRequest, "field 'id' must be a scalar");
      return false;
    }
    env->id_raw = n.raw;
  }
  return GetString(doc_, 0, "op", "op", true, &env->op, err);
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

bool RequestArena::FlattenContext(int obj, std::string_view parent, const char* prefix,
                                  int depth, Error* err) noexcept {
  bool ok = true;
  doc_.ForEachMember(obj, [&](std::string_view key, int v) {
    if (!ok) return;
    const Node& n = doc_.node(v);
    size_t base = keys_.size();
    size_t need = parent.size() + 1 + key.size();
    if (keys_.size() + need > keys_.capacity()) {
      err->Set(ErrorCode::kBadRequest, "field '%scontext' is too large", prefix);
      ok = false;
      return;
    }
    // The new key = parent + "." + key, written after base (no realloc: capacity checked, so
    // `parent`, which points into keys_, stays valid).
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
    if (n.type == Type::kArray) return;  // lists are not usable as context attributes
    // Known keys handled by DecodeContext are skipped.
    if (full == "auth.method" || full == "auth.idp" || full == "auth.age_s" || full == "client")
      return;
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
    if (!GetStringP(doc_, auth, "method", prefix, "context.auth.method", false, &req->auth_method, err)) return false;
    if (!GetStringP(doc_, auth, "idp", prefix, "context.auth.idp", false, &req->auth_idp, err)) return false;
    int age = doc_.Find(auth, "age_s");
    if (age != Document::kNone) {
      const Node& n = doc_.node(age);
      policy::Value v;
      if (n.type != Type::kNumber || !ScalarValue(n, &v)) {
        err->Set(ErrorCode::kBadRequest, "field '%scontext.auth.age_s' must be a number", prefix);
        return false;
      }
      int64_t a = v.kind == policy::Value::Kind::kInt ? v.i : static_cast<int64_t>(v.d);
      if (a < 0) {
        err->Set(ErrorCode::kBadRequest, "field '%scontext.auth.age_s' must be >= 0", prefix);
        return false;
      }
      req->auth_age_s = a;
    }
  }
  if (!GetStringP(doc_, obj, "client", prefix, "context.client", false, &req->client, err)) return false;
  size_t start = kvs_.size();
  if (!FlattenContext(obj, std::string_view(), prefix, 0, err)) return false;
  req->context_attrs = policy::AttrList(kvs_.data() + start, kvs_.size() - start);
  return true;
}

bool RequestArena::DecodeCheckAt(int obj, const char* prefix, CheckArgs* out, bool require_action,
                                 Error* err) noexcept {
  *out = CheckArgs();
  policy::Request& r = out->req;
  if (doc_.node(obj).type != Type::kObject) {
    err->Set(ErrorCode::kBadRequest, "field '%.*s' must be an object",
             static_cast<int>(std::strlen(prefix) ? std::strlen(prefix) - 1 : 0), prefix);
    return false;
  }
  if (!GetIdP(doc_, obj, "user", prefix, "user", true, &r.user, err)) return false;
  if (!GetStringP(doc_, obj, "action", prefix, "action", require_action, &r.action, err)) return false;
  if (require_action && r.action.empty()) {
    err->Set(ErrorCode::kBadRequest, "field '%saction' must not be empty", prefix);
    return false;
  }
  if (!GetIdP(doc_, obj, "org", prefix, "org", false, &r.org, err)) return false;
  if (!GetIdP(doc_, obj, "workspace", prefix, "workspace", false, &r.workspace, err)) return false;
  if (r.org.empty() && r.workspace.empty()) {
    err->Set(ErrorCode::kBadRequest, "missing field '%sorg' or '%sworkspace'", prefix, prefix);
    return false;
  }
  int res = doc_.Find(obj, "resource");
  if (res != Document::kNone) {
    if (doc_.node(res).type != Type::kObject) {
      err->Set(ErrorCode::kBadRequest, "field '%sresource' must be an object", prefix);
      return false;
    }
    if (!GetStringP(doc_, res, "type", prefix, "resource.type", false, &r.resource_type, err)) return false;
    if (!GetStringP(doc_, res, "id", prefix, "resource.id", false, &r.resource_id, err)) return false;
    int attrs = doc_.Find(res, "attrs");
    if (attrs != Document::kNone) {
      if (!DecodeAttrs(attrs, prefix, &r.resource_attrs, err)) return false;
    }
  }
  int ctx = doc_.Find(obj, "context");
  if (ctx != Document::kNone && !DecodeContext(ctx, prefix, &r, err)) return false;
  if (!GetBoolP(doc_, obj, "explain", prefix, "explain", &out->explain, err)) return false;
  if (!GetUintP(doc_, obj, "min_rev", prefix, "min_rev", &out->has_min_rev, &out->min_rev, err)) return false;
  return true;
}

bool RequestArena::DecodeCheck(CheckArgs* out, bool require_action, Error* err) noexcept {
  return DecodeCheckAt(0, "", out, require_action, err);
}

bool RequestArena::DecodeCheckBatch(CheckArgs* top, Error* err) noexcept {
  checks_.clear();
  *top = CheckArgs();
  if (!GetBool(doc_, 0, "explain", "explain", &top->explain, err)) return false;
  if (!GetUint(doc_, 0, "min_rev", "min_rev", &top->has_min_rev, &top->min_rev, err)) return false;
  int arr = doc_.Find(0, "checks");
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
  for (uint32_t k = 0; k < a.size; ++k) {
    std::snprintf(prefix, sizeof(prefix), "checks[%u].", k);
    CheckArgs c;
    if (doc_.node(i).type != Type::kObject) {
      err->Set(ErrorCode::kBadRequest, "field 'checks[%u]' must be an object", k);
      return false;
    }
    if (!DecodeCheckAt(i, prefix, &c, true, err)) return false;
    if (top->explain) c.explain = true;
    checks_.push_back(c);
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
