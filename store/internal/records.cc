#include "store/internal/records.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "store/internal/coding.h"

namespace gatehouse::store::internal {
namespace {

void PutBool(std::string* d, bool b) { d->push_back(b ? 1 : 0); }

struct In {
  std::string_view s;
  bool ok = true;
  std::string_view Str() {
    std::string_view out;
    if (ok && !GetLengthPrefixed(&s, &out)) ok = false;
    return out;
  }
  uint32_t U32() {
    uint32_t v = 0;
    if (ok && !GetVarint32(&s, &v)) ok = false;
    return v;
  }
  uint8_t Byte() {
    uint8_t v = 0;
    if (ok && !GetByte(&s, &v)) ok = false;
    return v;
  }
  int64_t I64() {
    uint64_t v = 0;
    if (ok && !GetFixed64(&s, &v)) ok = false;
    return static_cast<int64_t>(v);
  }
  bool Header() { return Byte() == kRecordFormat && ok; }
};

void AppendInt(std::string* out, int64_t v) {
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%" PRId64, v);
  out->append(buf, n);
}

// Length of a valid UTF-8 sequence starting at s[i], or 0.
size_t Utf8Len(std::string_view s, size_t i) {
  const uint8_t c = static_cast<uint8_t>(s[i]);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const uint8_t cc = static_cast<uint8_t>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
    return 0;
  }
  return n;
}

class Obj {
 public:
  explicit Obj(std::string* out) : out_(out) { out_->push_back('{'); }
  Obj& Key(std::string_view k) {
    if (!first_) out_->push_back(',');
    first_ = false;
    AppendJsonString(out_, k);
    out_->push_back(':');
    return *this;
  }
  Obj& Str(std::string_view k, std::string_view v) {
    Key(k);
    AppendJsonString(out_, v);
    return *this;
  }
  Obj& Int(std::string_view k, int64_t v) {
    Key(k);
    AppendInt(out_, v);
    return *this;
  }
  Obj& Bool(std::string_view k, bool v) {
    Key(k);
    out_->append(v ? "true" : "false");
    return *this;
  }
  Obj& Raw(std::string_view k, std::string_view json) {
    Key(k);
    out_->append(json);
    return *this;
  }
  void End() { out_->push_back('}'); }

 private:
  std::string* out_;
  bool first_ = true;
};

}  // namespace

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string EncodeUser(const UserRec& r) {
  std::string d;
  d.push_back(kRecordFormat);
  PutLengthPrefixed(&d, r.email);
  PutBool(&d, r.verified);
  PutVarint32(&d, r.allowance);
  PutVarint32(&d, r.orgs_created);
  return d;
}

std::string EncodeOrg(const OrgRec& r) {
  std::string d;
  d.push_back(kRecordFormat);
  PutLengthPrefixed(&d, r.name);
  PutLengthPrefixed(&d, r.creator);
  d.push_back(static_cast<char>((r.suspended ? 1 : 0) | (r.sso_enabled ? 2 : 0) | (r.sso_enforced ? 4 : 0)));
  PutLengthPrefixed(&d, r.plan);
  PutLengthPrefixed(&d, r.status);
  PutVarint32(&d, r.seats);
  PutVarint32(&d, r.workspace_limit);
  PutLengthPrefixed(&d, r.features);
  PutLengthPrefixed(&d, r.billing);
  PutLengthPrefixed(&d, r.sso_idp);
  PutLengthPrefixed(&d, r.sso_exempt);
  PutLengthPrefixed(&d, r.attrs);
  PutVarint32(&d, r.members);
  PutVarint32(&d, r.pending);
  PutVarint32(&d, r.workspaces);
  PutVarint32(&d, r.admins);
  return d;
}

std::string EncodeWorkspace(const WorkspaceRec& r) {
  std::string d;
  d.push_back(kRecordFormat);
  PutLengthPrefixed(&d, r.org);
  PutLengthPrefixed(&d, r.name);
  PutLengthPrefixed(&d, r.attrs);
  PutVarint32(&d, r.members);
  return d;
}

std::string EncodeOrgMember(const OrgMemberRec& r) {
  std::string d;
  d.push_back(kRecordFormat);
  PutLengthPrefixed(&d, r.role);
  return d;
}

std::string EncodeWsMember(const WsMemberRec& r) {
  std::string d;
  d.push_back(kRecordFormat);
  PutLengthPrefixed(&d, r.org);
  PutLengthPrefixed(&d, r.role);
  PutLengthPrefixed(&d, r.team);
  PutLengthPrefixed(&d, r.flags);
  PutLengthPrefixed(&d, r.visibility);
  PutLengthPrefixed(&d, r.org_role);  // schema 2; absent in schema-1 rows
  return d;
}

std::string EncodeInvitation(const InvitationRec& r) {
  std::string d;
  d.push_back(kRecordFormat);
  PutLengthPrefixed(&d, r.org);
  PutLengthPrefixed(&d, r.email);
  PutLengthPrefixed(&d, r.role);
  PutLengthPrefixed(&d, r.state);
  PutFixed64(&d, static_cast<uint64_t>(r.expires_at));
  PutFixed64(&d, static_cast<uint64_t>(r.created_at));
  PutLengthPrefixed(&d, r.invited_by);
  PutLengthPrefixed(&d, r.accepted_by);
  PutLengthPrefixed(&d, r.grants);
  PutLengthPrefixed(&d, r.token_hash);
  return d;
}

std::string EncodeStringList(const std::vector<std::string>& items) {
  std::string d;
  for (const auto& s : items) PutLengthPrefixed(&d, s);
  return d;
}

std::string EncodeAttrs(const AttrMap& attrs) {
  std::string d;
  for (const auto& [k, v] : attrs) {
    PutLengthPrefixed(&d, k);
    d.push_back(static_cast<char>(v.kind));
    switch (v.kind) {
      case AttrValue::Kind::kNull:
        break;
      case AttrValue::Kind::kBool:
        PutBool(&d, v.b);
        break;
      case AttrValue::Kind::kInt:
        PutFixed64(&d, static_cast<uint64_t>(v.i));
        break;
      case AttrValue::Kind::kDouble: {
        uint64_t bits;
        std::memcpy(&bits, &v.d, 8);
        PutFixed64(&d, bits);
        break;
      }
      case AttrValue::Kind::kString:
        PutLengthPrefixed(&d, v.s);
        break;
    }
  }
  return d;
}

void AppendGrant(std::string* grants, std::string_view ws, std::string_view role) {
  PutLengthPrefixed(grants, ws);
  PutLengthPrefixed(grants, role);
}

bool DecodeUser(std::string_view id, std::string_view v, UserView* out) noexcept {
  In in{v};
  if (!in.Header()) return false;
  out->id = id;
  out->email = in.Str();
  out->email_verified = in.Byte() != 0;
  out->org_allowance = in.U32();
  out->orgs_created = in.U32();
  return in.ok;
}

bool DecodeOrg(std::string_view id, std::string_view v, OrgView* out, uint32_t* admins) noexcept {
  In in{v};
  if (!in.Header()) return false;
  out->id = id;
  out->name = in.Str();
  out->creator = in.Str();
  const uint8_t flags = in.Byte();
  out->suspended = flags & 1;
  out->sso.enabled = flags & 2;
  out->sso.enforced = flags & 4;
  out->plan = in.Str();
  out->status = in.Str();
  out->seats = in.U32();
  out->workspace_limit = in.U32();
  out->features = StringListView(in.Str());
  out->billing = AttrsView(in.Str());
  out->sso.idp = in.Str();
  out->sso.exempt_roles = StringListView(in.Str());
  out->attrs = AttrsView(in.Str());
  out->members = in.U32();
  out->pending_invitations = in.U32();
  out->workspaces = in.U32();
  const uint32_t a = in.U32();
  if (admins) *admins = a;
  return in.ok;
}

bool DecodeWorkspace(std::string_view id, std::string_view v, WorkspaceView* out) noexcept {
  In in{v};
  if (!in.Header()) return false;
  out->id = id;
  out->org = in.Str();
  out->name = in.Str();
  out->attrs = AttrsView(in.Str());
  out->members = in.U32();
  return in.ok;
}

bool DecodeOrgMember(std::string_view org, std::string_view user, std::string_view v,
                     OrgMemberView* out) noexcept {
  In in{v};
  if (!in.Header()) return false;
  out->org = org;
  out->user = user;
  out->role = in.Str();
  return in.ok;
}

bool DecodeWsMember(std::string_view ws, std::string_view user, std::string_view v,
                    WorkspaceMemberView* out) noexcept {
  In in{v};
  if (!in.Header()) return false;
  out->workspace = ws;
  out->user = user;
  out->org = in.Str();
  out->role = in.Str();
  out->team = in.Str();
  out->flags = StringListView(in.Str());
  out->contact_visibility = in.Str();
  out->org_role = in.s.empty() ? std::string_view() : in.Str();
  return in.ok;
}

bool DecodeInvitation(std::string_view id, std::string_view v, InvitationView* out,
                      std::string_view* token_hash) noexcept {
  In in{v};
  if (!in.Header()) return false;
  out->id = id;
  out->org = in.Str();
  out->email = in.Str();
  out->role = in.Str();
  out->state = in.Str();
  out->expires_at = in.I64();
  out->created_at = in.I64();
  out->invited_by = in.Str();
  out->accepted_by = in.Str();
  out->grants_encoded = in.Str();
  std::string_view h = in.Str();
  if (token_hash) *token_hash = h;
  return in.ok;
}

UserRec ToRec(const UserView& v) {
  return UserRec{std::string(v.id), std::string(v.email), v.email_verified, v.org_allowance,
                 v.orgs_created};
}

OrgRec ToRec(const OrgView& v, uint32_t admins) {
  OrgRec r;
  r.id = v.id;
  r.name = v.name;
  r.creator = v.creator;
  r.suspended = v.suspended;
  r.plan = v.plan;
  r.status = v.status;
  r.seats = v.seats;
  r.workspace_limit = v.workspace_limit;
  r.features = v.features.encoded();
  r.billing = v.billing.encoded();
  r.sso_enabled = v.sso.enabled;
  r.sso_enforced = v.sso.enforced;
  r.sso_idp = v.sso.idp;
  r.sso_exempt = v.sso.exempt_roles.encoded();
  r.attrs = v.attrs.encoded();
  r.members = v.members;
  r.pending = v.pending_invitations;
  r.workspaces = v.workspaces;
  r.admins = admins;
  return r;
}

WorkspaceRec ToRec(const WorkspaceView& v) {
  return WorkspaceRec{std::string(v.id), std::string(v.org), std::string(v.name),
                      std::string(v.attrs.encoded()), v.members};
}

OrgMemberRec ToRec(const OrgMemberView& v) {
  return OrgMemberRec{std::string(v.user), std::string(v.org), std::string(v.role)};
}

WsMemberRec ToRec(const WorkspaceMemberView& v) {
  return WsMemberRec{std::string(v.user), std::string(v.workspace), std::string(v.org),
                     std::string(v.role), std::string(v.team), std::string(v.flags.encoded()),
                     std::string(v.contact_visibility), std::string(v.org_role)};
}

InvitationRec ToRec(const InvitationView& v, std::string_view token_hash) {
  InvitationRec r;
  r.id = v.id;
  r.org = v.org;
  r.email = v.email;
  r.role = v.role;
  r.state = v.state;
  r.expires_at = v.expires_at;
  r.created_at = v.created_at;
  r.invited_by = v.invited_by;
  r.accepted_by = v.accepted_by;
  r.grants = v.grants_encoded;
  r.token_hash = token_hash;
  return r;
}

void AppendJsonString(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    // A run of characters that need no escaping is appended at once (most of a change record).
    size_t j = i;
    while (j < s.size()) {
      const unsigned char d = static_cast<unsigned char>(s[j]);
      if (d < 0x20 || d >= 0x7f || d == '"' || d == '\\') break;
      ++j;
    }
    if (j > i) {
      out->append(s.data() + i, j - i);
      i = j;
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8Len(s, i);
      if (n == 0) {
        out->append("\\ufffd");
        ++i;
      } else {
        out->append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

std::string StringListJson(std::string_view encoded) {
  std::string out = "[";
  bool first = true;
  StringListView(encoded).ForEach([&](std::string_view s) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(&out, s);
  });
  out.push_back(']');
  return out;
}

std::string AttrsJson(std::string_view encoded) {
  std::string out;
  Obj o(&out);
  AttrsView(encoded).ForEach([&](std::string_view k, const AttrValue& v) {
    switch (v.kind) {
      case AttrValue::Kind::kNull:
        o.Raw(k, "null");
        break;
      case AttrValue::Kind::kBool:
        o.Bool(k, v.b);
        break;
      case AttrValue::Kind::kInt:
        o.Int(k, v.i);
        break;
      case AttrValue::Kind::kDouble: {
        if (!std::isfinite(v.d)) {
          o.Raw(k, "null");
        } else {
          char buf[40];
          int n = std::snprintf(buf, sizeof buf, "%.17g", v.d);
          o.Raw(k, std::string_view(buf, n));
        }
        break;
      }
      case AttrValue::Kind::kString:
        o.Str(k, v.s);
        break;
    }
  });
  o.End();
  return out;
}

std::string ToJson(const UserRec& r) {
  std::string out;
  Obj(&out)
      .Str("id", r.id)
      .Str("email", r.email)
      .Bool("email_verified", r.verified)
      .Int("org_allowance", r.allowance)
      .Int("orgs_created", r.orgs_created)
      .End();
  return out;
}

std::string ToJson(const OrgRec& r) {
  std::string out;
  std::string sso;
  Obj(&sso)
      .Bool("enabled", r.sso_enabled)
      .Bool("enforced", r.sso_enforced)
      .Str("idp", r.sso_idp)
      .Raw("exempt_roles", StringListJson(r.sso_exempt))
      .End();
  Obj(&out)
      .Str("id", r.id)
      .Str("name", r.name)
      .Str("creator", r.creator)
      .Bool("suspended", r.suspended)
      .Str("plan", r.plan)
      .Str("status", r.status)
      .Int("seats", r.seats)
      .Int("workspace_limit", r.workspace_limit)
      .Raw("features", StringListJson(r.features))
      .Raw("billing", AttrsJson(r.billing))
      .Raw("sso", sso)
      .Raw("attrs", AttrsJson(r.attrs))
      .Int("members", r.members)
      .Int("pending_invitations", r.pending)
      .Int("workspaces", r.workspaces)
      .End();
  return out;
}

std::string ToJson(const WorkspaceRec& r) {
  std::string out;
  Obj(&out)
      .Str("id", r.id)
      .Str("org", r.org)
      .Str("name", r.name)
      .Raw("attrs", AttrsJson(r.attrs))
      .Int("members", r.members)
      .End();
  return out;
}

std::string ToJson(const OrgMemberRec& r) {
  std::string out;
  Obj(&out).Str("user", r.user).Str("org", r.org).Str("role", r.role).End();
  return out;
}

std::string ToJson(const WsMemberRec& r) {
  std::string out;
  Obj o(&out);
  o.Str("user", r.user).Str("workspace", r.workspace).Str("org", r.org).Str("role", r.role);
  if (!r.team.empty()) o.Str("team", r.team);
  o.Raw("flags", StringListJson(r.flags));
  if (!r.visibility.empty()) o.Str("contact_visibility", r.visibility);
  o.End();
  return out;
}

std::string ToJson(const InvitationRec& r) {
  std::string grants = "[";
  bool first = true;
  InvitationView v;
  v.grants_encoded = r.grants;
  v.ForEachGrant([&](std::string_view ws, std::string_view role) {
    if (!first) grants.push_back(',');
    first = false;
    Obj(&grants).Str("workspace", ws).Str("role", role).End();
  });
  grants.push_back(']');
  std::string out;
  Obj o(&out);
  o.Str("id", r.id)
      .Str("org", r.org)
      .Str("email", r.email)
      .Str("role", r.role)
      .Str("state", r.state)
      .Int("expires_at", r.expires_at)
      .Int("created_at", r.created_at)
      .Str("invited_by", r.invited_by);
  if (!r.accepted_by.empty()) o.Str("accepted_by", r.accepted_by);
  o.Raw("workspaces", grants).End();
  return out;
}

}  // namespace gatehouse::store::internal
