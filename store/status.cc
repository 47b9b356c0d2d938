// Status, CodeName and the packed view types of store.h.
#include <cstring>

#include "store/internal/kv.h"
#include "store/store.h"

namespace gatehouse::store {

const char* CodeName(Code c) noexcept {
  switch (c) {
    case Code::kOk:
      return "ok";
    case Code::kBadRequest:
      return "bad_request";
    case Code::kNotFound:
      return "not_found";
    case Code::kConflict:
      return "conflict";
    case Code::kLimitExceeded:
      return "limit_exceeded";
    case Code::kForbidden:
      return "forbidden";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kInternal:
      return "internal";
  }
  return "internal";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s = CodeName(code_);
  if (invariant_ != 0) s += " (invariant " + std::to_string(invariant_) + ")";
  s += ": ";
  s += message_;
  return s;
}

bool StringListView::Contains(std::string_view s) const noexcept {
  bool found = false;
  ForEach([&](std::string_view x) {
    if (x == s) found = true;
  });
  return found;
}

size_t StringListView::size() const noexcept {
  size_t n = 0;
  ForEach([&](std::string_view) { ++n; });
  return n;
}

namespace view_detail {
bool NextAttr(std::string_view* in, std::string_view* key, AttrValue* v) noexcept {
  if (!Prefixed(in, key) || in->empty()) return false;
  const uint8_t kind = static_cast<uint8_t>((*in)[0]);
  in->remove_prefix(1);
  *v = AttrValue();
  uint64_t bits = 0;
  switch (kind) {
    case static_cast<uint8_t>(AttrValue::Kind::kNull):
      v->kind = AttrValue::Kind::kNull;
      return true;
    case static_cast<uint8_t>(AttrValue::Kind::kBool):
      if (in->empty()) return false;
      v->kind = AttrValue::Kind::kBool;
      v->b = (*in)[0] != 0;
      in->remove_prefix(1);
      return true;
    case static_cast<uint8_t>(AttrValue::Kind::kInt):
      if (!Fixed64(in, &bits)) return false;
      v->kind = AttrValue::Kind::kInt;
      v->i = static_cast<int64_t>(bits);
      return true;
    case static_cast<uint8_t>(AttrValue::Kind::kDouble):
      if (!Fixed64(in, &bits)) return false;
      v->kind = AttrValue::Kind::kDouble;
      std::memcpy(&v->d, &bits, 8);
      return true;
    case static_cast<uint8_t>(AttrValue::Kind::kString):
      v->kind = AttrValue::Kind::kString;
      return Prefixed(in, &v->s);
    default:
      return false;
  }
}
}  // namespace view_detail

bool AttrsView::Find(std::string_view key, AttrValue* out) const noexcept {
  bool found = false;
  ForEach([&](std::string_view k, const AttrValue& v) {
    if (!found && k == key) {
      found = true;
      if (out) *out = v;
    }
  });
  return found;
}

namespace internal {
const char* TableName(Table t) noexcept {
  static const char* const kNames[kTableCount] = {
      "gh.meta",       "gh.users",          "gh.emails",      "gh.orgs",
      "gh.org_members", "gh.user_orgs",     "gh.workspaces",  "gh.org_workspaces",
      "gh.ws_members", "gh.user_workspaces", "gh.invitations", "gh.org_invitations",
      "gh.inv_tokens", "gh.inv_pending",    "gh.changes"};
  const int i = static_cast<int>(t);
  return i >= 0 && i < kTableCount ? kNames[i] : "gh.unknown";
}
}  // namespace internal

}  // namespace gatehouse::store
