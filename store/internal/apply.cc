#include "store/internal/apply.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <numeric>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "store/internal/coding.h"
#include "store/internal/records.h"
#include "store/internal/sha256.h"

namespace gatehouse::store::internal {
namespace {

constexpr std::string_view kOrgRoles[] = {"org_admin", "billing_admin", "user_admin", "member"};
constexpr std::string_view kWsRoles[] = {"owner", "manager", "agent"};
constexpr std::string_view kManagerFlags[] = {"no_ws_settings", "no_contact_delete",
                                              "no_data_export", "no_integrations"};
constexpr std::string_view kVisibilities[] = {"all", "assigned_only", "assigned_or_unassigned",
                                              "assigned_or_team"};
constexpr std::string_view kStatuses[] = {"TRIAL",           "ACTIVE",      "DOWNGRADING", "CANCELING",
                                          "PENDING_PAYMENT", "TRIAL_ENDED", "FROZEN",      "CANCELED"};
constexpr uint32_t kMaxSeats = 10'000'000;
constexpr uint32_t kMaxWorkspaceLimit = 1'000'000;
constexpr uint32_t kMaxAllowance = 1'000'000;

template <size_t N>
bool In(std::string_view s, const std::string_view (&set)[N]) {
  return std::find(std::begin(set), std::end(set), s) != std::end(set);
}

Status Bad(std::string msg, int inv = 0) { return Status(Code::kBadRequest, std::move(msg), inv); }
Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
Status Conflict(std::string msg, int inv = 0) { return Status(Code::kConflict, std::move(msg), inv); }
Status Limit(std::string msg, int inv) { return Status(Code::kLimitExceeded, std::move(msg), inv); }
Status Forbidden(std::string msg, int inv = 0) { return Status(Code::kForbidden, std::move(msg), inv); }
Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }

std::string Q(std::string_view s) {  // quoted for messages
  std::string out = "'";
  for (char c : s.substr(0, 160)) out.push_back(static_cast<unsigned char>(c) < 0x20 ? '?' : c);
  if (s.size() > 160) out += "...";
  out += "'";
  return out;
}

bool ValidUtf8NoControl(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 || c == 0x7f) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || c > 0xF4 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

Status CheckText(std::string_view field, std::string_view value, size_t max) {
  if (value.size() > max) return Bad("field '" + std::string(field) + "' is longer than " + std::to_string(max) + " bytes");
  if (!ValidUtf8NoControl(value)) {
    return Bad("field '" + std::string(field) + "' must be UTF-8 without control characters");
  }
  return Status::Ok();
}

Status CheckEmail(std::string_view email) {
  if (email.empty()) return Bad("field 'email' is required");
  Status s = CheckText("email", email, 254);
  if (!s.ok()) return s;
  const size_t at = email.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == email.size() ||
      email.find(' ') != std::string_view::npos) {
    return Bad("field 'email' is not an email address: " + Q(email));
  }
  return Status::Ok();
}

bool IsOrgRole(const Options& o, std::string_view r) {
  return In(r, kOrgRoles) || std::find(o.extra_org_roles.begin(), o.extra_org_roles.end(), r) != o.extra_org_roles.end();
}
bool IsWsRole(const Options& o, std::string_view r) {
  return In(r, kWsRoles) ||
         std::find(o.extra_workspace_roles.begin(), o.extra_workspace_roles.end(), r) != o.extra_workspace_roles.end();
}
bool Locked(const OrgRec& o) {
  return o.status == "TRIAL_ENDED" || o.status == "FROZEN" || o.status == "CANCELED";
}

std::string KP(std::string_view a) {
  std::string k;
  PutKeyPart(&k, a);
  return k;
}
std::string KP2(std::string_view a, std::string_view b) {
  std::string k;
  PutKeyPart(&k, a);
  k.append(b);
  return k;
}
std::string KP3(std::string_view a, std::string_view b, std::string_view c) {
  std::string k;
  PutKeyPart(&k, a);
  PutKeyPart(&k, b);
  k.append(c);
  return k;
}

std::string KeyJson(std::initializer_list<std::pair<std::string_view, std::string_view>> kv) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : kv) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(&out, k);
    out.push_back(':');
    AppendJsonString(&out, v);
  }
  out.push_back('}');
  return out;
}

// The state of one write: typed loads/saves over the KvTxn plus the change list.
class Ctx {
 public:
  Ctx(KvTxn& t, const Options& o) : t_(t), o_(o) {}

  KvTxn& txn() { return t_; }
  const Options& opt() { return o_; }
  bool failed() const { return t_.error() || corrupt_; }

  bool LoadUser(std::string_view id, UserRec* r) {
    std::string_view k, v;
    UserView view;
    if (!t_.Get(Table::kUsers, id, &k, &v)) return false;
    if (!DecodeUser(k, v, &view)) return Corrupt();
    *r = ToRec(view);
    return true;
  }
  bool LoadUserByEmail(std::string_view lower_email, UserRec* r) {
    std::string_view k, v;
    if (!t_.Get(Table::kEmails, lower_email, &k, &v)) return false;
    std::string id(v);
    return LoadUser(id, r) || Corrupt();
  }
  bool LoadOrg(std::string_view id, OrgRec* r) {
    std::string_view k, v;
    OrgView view;
    uint32_t admins = 0;
    if (!t_.Get(Table::kOrgs, id, &k, &v)) return false;
    if (!DecodeOrg(k, v, &view, &admins)) return Corrupt();
    *r = ToRec(view, admins);
    return true;
  }
  bool LoadWs(std::string_view id, WorkspaceRec* r) {
    std::string_view k, v;
    WorkspaceView view;
    if (!t_.Get(Table::kWorkspaces, id, &k, &v)) return false;
    if (!DecodeWorkspace(k, v, &view)) return Corrupt();
    *r = ToRec(view);
    return true;
  }
  bool LoadOrgMember(std::string_view org, std::string_view user, OrgMemberRec* r) {
    std::string_view k, v;
    OrgMemberView view;
    if (!t_.Get(Table::kOrgMembers, KP2(org, user), &k, &v)) return false;
    if (!DecodeOrgMember(org, user, v, &view)) return Corrupt();
    *r = ToRec(view);
    return true;
  }
  bool LoadWsMember(std::string_view ws, std::string_view user, WsMemberRec* r) {
    std::string_view k, v;
    WorkspaceMemberView view;
    if (!t_.Get(Table::kWsMembers, KP2(ws, user), &k, &v)) return false;
    if (!DecodeWsMember(ws, user, v, &view)) return Corrupt();
    *r = ToRec(view);
    return true;
  }
  bool LoadInv(std::string_view id, InvitationRec* r) {
    std::string_view k, v, hash;
    InvitationView view;
    if (!t_.Get(Table::kInvitations, id, &k, &v)) return false;
    if (!DecodeInvitation(k, v, &view, &hash)) return Corrupt();
    *r = ToRec(view, hash);
    return true;
  }
  // Keys after the prefix, collected (so callers may write while iterating the copy).
  std::vector<std::string> ScanSuffixes(Table t, const std::string& prefix) {
    std::vector<std::string> out;
    t_.Scan(t, prefix, {}, [&](std::string_view k, std::string_view) {
      out.emplace_back(k.substr(prefix.size()));
      return true;
    });
    return out;
  }

  void SaveUser(const UserRec* before, const UserRec& after) {
    t_.Put(Table::kUsers, after.id, EncodeUser(after));
    if (!before) t_.Put(Table::kEmails, AsciiLower(after.email), after.id);
    Log("user", KeyJson({{"user", after.id}}), before, &after);
  }
  void SaveOrg(const OrgRec* before, const OrgRec& after) {
    t_.Put(Table::kOrgs, after.id, EncodeOrg(after));
    Log("org", KeyJson({{"org", after.id}}), before, &after);
  }
  void DeleteOrg(const OrgRec& before) {
    t_.Del(Table::kOrgs, before.id);
    Log<OrgRec>("org", KeyJson({{"org", before.id}}), &before, nullptr);
  }
  void SaveWs(const WorkspaceRec* before, const WorkspaceRec& after) {
    t_.Put(Table::kWorkspaces, after.id, EncodeWorkspace(after));
    if (!before) t_.Put(Table::kOrgWorkspaces, KP2(after.org, after.id), {});
    Log("workspace", KeyJson({{"workspace", after.id}}), before, &after);
  }
  void DeleteWs(const WorkspaceRec& before) {
    t_.Del(Table::kWorkspaces, before.id);
    t_.Del(Table::kOrgWorkspaces, KP2(before.org, before.id));
    Log<WorkspaceRec>("workspace", KeyJson({{"workspace", before.id}}), &before, nullptr);
  }
  void SaveOrgMember(const OrgMemberRec* before, const OrgMemberRec& after) {
    t_.Put(Table::kOrgMembers, KP2(after.org, after.user), EncodeOrgMember(after));
    if (!before) t_.Put(Table::kUserOrgs, KP2(after.user, after.org), {});
    Log("org_member", KeyJson({{"org", after.org}, {"user", after.user}}), before, &after);
  }
  void DeleteOrgMember(const OrgMemberRec& before) {
    t_.Del(Table::kOrgMembers, KP2(before.org, before.user));
    t_.Del(Table::kUserOrgs, KP2(before.user, before.org));
    Log<OrgMemberRec>("org_member", KeyJson({{"org", before.org}, {"user", before.user}}), &before, nullptr);
  }
  void SaveWsMember(const WsMemberRec* before, const WsMemberRec& after) {
    t_.Put(Table::kWsMembers, KP2(after.workspace, after.user), EncodeWsMember(after));
    if (!before) t_.Put(Table::kUserWorkspaces, KP3(after.user, after.org, after.workspace), {});
    Log("workspace_member", KeyJson({{"workspace", after.workspace}, {"user", after.user}}), before, &after);
  }
  // Rewrites the row only (no index, no change record): for derived fields.
  void PutWsMemberRow(const WsMemberRec& m) {
    t_.Put(Table::kWsMembers, KP2(m.workspace, m.user), EncodeWsMember(m));
  }
  void DeleteWsMember(const WsMemberRec& before) {
    t_.Del(Table::kWsMembers, KP2(before.workspace, before.user));
    t_.Del(Table::kUserWorkspaces, KP3(before.user, before.org, before.workspace));
    Log<WsMemberRec>("workspace_member", KeyJson({{"workspace", before.workspace}, {"user", before.user}}),
                     &before, nullptr);
  }
  void SaveInv(const InvitationRec* before, const InvitationRec& after) {
    t_.Put(Table::kInvitations, after.id, EncodeInvitation(after));
    if (!before) t_.Put(Table::kOrgInvitations, KP2(after.org, after.id), {});
    Log("invitation", KeyJson({{"invitation", after.id}}), before, &after);
  }
  void DeleteInv(const InvitationRec& before) {
    t_.Del(Table::kInvitations, before.id);
    t_.Del(Table::kOrgInvitations, KP2(before.org, before.id));
    if (!before.token_hash.empty()) t_.Del(Table::kInvTokens, before.token_hash);
    DropPendingIndex(before);
    Log<InvitationRec>("invitation", KeyJson({{"invitation", before.id}}), &before, nullptr);
  }
  void DropPendingIndex(const InvitationRec& inv) {
    std::string_view k, v;
    const std::string key = KP2(inv.org, inv.email);
    if (t_.Get(Table::kInvPending, key, &k, &v) && v == inv.id) t_.Del(Table::kInvPending, key);
  }

  template <typename R>
  void Log(const char* entity, const std::string& key_json, const R* before, const R* after) {
    std::string c = "{\"entity\":\"";
    c += entity;
    c += "\",\"key\":";
    c += key_json;
    c += ",\"before\":";
    c += before ? ToJson(*before) : "null";
    c += ",\"after\":";
    c += after ? ToJson(*after) : "null";
    c += "}";
    changes_.push_back(std::move(c));
  }
  const std::vector<std::string>& changes() const { return changes_; }

 private:
  bool Corrupt() {
    corrupt_ = true;
    return false;
  }
  KvTxn& t_;
  const Options& o_;
  std::vector<std::string> changes_;
  bool corrupt_ = false;
};

// ----- argument JSON (never the token) -----
std::string ArgsJson(const WriteRequest& r) {
  std::string out = "{";
  bool first = true;
  auto key = [&](std::string_view k) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(&out, k);
    out.push_back(':');
  };
  auto str = [&](std::string_view k, std::string_view v) {
    if (v.empty()) return;
    key(k);
    AppendJsonString(&out, v);
  };
  auto num = [&](std::string_view k, const std::optional<int64_t>& v) {
    if (!v) return;
    key(k);
    char buf[32];
    out.append(buf, std::snprintf(buf, sizeof buf, "%" PRId64, *v));
  };
  str("user", r.user);
  str("org", r.org);
  str("workspace", r.workspace);
  str("invitation", r.invitation);
  str("email", r.email);
  str("name", r.name);
  str("role", r.role);
  str("team", r.team);
  if (r.workspace_name) str("workspace_name", *r.workspace_name);
  if (r.plan) str("plan", *r.plan);
  if (r.status) str("status", *r.status);
  num("seats", r.seats);
  num("workspace_limit", r.workspace_limit);
  num("allowance", r.allowance);
  num("ttl_s", r.ttl_s);
  if (r.restrictions) {
    key("restrictions");
    out.push_back('{');
    bool f = true;
    for (const auto& [k, v] : *r.restrictions) {
      if (!f) out.push_back(',');
      f = false;
      AppendJsonString(&out, k);
      out.push_back(':');
      AppendJsonString(&out, v);
    }
    out.push_back('}');
  }
  if (r.features) {
    key("features");
    out += StringListJson(EncodeStringList(*r.features));
  }
  if (r.billing) {
    key("billing");
    out += AttrsJson(EncodeAttrs(*r.billing));
  }
  if (r.attrs) {
    key("attrs");
    out += AttrsJson(EncodeAttrs(*r.attrs));
  }
  if (r.sso) {
    key("sso");
    out += "{\"enabled\":";
    out += r.sso->enabled ? "true" : "false";
    out += ",\"enforced\":";
    out += r.sso->enforced ? "true" : "false";
    out += ",\"idp\":";
    AppendJsonString(&out, r.sso->idp);
    if (r.sso->exempt_roles) {
      out += ",\"exempt_roles\":";
      out += StringListJson(EncodeStringList(*r.sso->exempt_roles));
    }
    out += "}";
  }
  if (r.grants) {
    key("workspaces");
    out.push_back('[');
    bool f = true;
    for (const auto& g : *r.grants) {
      if (!f) out.push_back(',');
      f = false;
      out += KeyJson({{"workspace", g.workspace}, {"role", g.role}});
    }
    out.push_back(']');
  }
  out.push_back('}');
  return out;
}

std::string ChangeJson(uint64_t rev, std::string_view op, std::string_view actor, int64_t now,
                       const std::string& args, const std::vector<std::string>& changes) {
  std::string out = "{\"rev\":";
  out += std::to_string(rev);
  out += ",\"op\":";
  AppendJsonString(&out, op);
  out += ",\"actor\":";
  if (actor.empty()) {
    out += "null";
  } else {
    AppendJsonString(&out, actor);
  }
  out += ",\"time\":";
  out += std::to_string(now);
  out += ",\"args\":";
  out += args;
  out += ",\"changes\":[";
  for (size_t i = 0; i < changes.size(); ++i) {
    if (i) out.push_back(',');
    out += changes[i];
  }
  out += "]}";
  return out;
}

// ----- shared rules -----

#define RETURN_IF_ERROR(expr)      \
  do {                             \
    Status _s = (expr);            \
    if (!_s.ok()) return _s;       \
  } while (0)

Status Require(std::string_view field, std::string_view value) { return CheckId(field, value); }

Status MustLoadUser(Ctx& c, std::string_view id, UserRec* u) {
  if (!c.LoadUser(id, u)) return c.failed() ? Internal("storage error reading user") : NotFound("user " + Q(id) + " not found");
  return Status::Ok();
}
Status MustLoadOrg(Ctx& c, std::string_view id, OrgRec* o) {
  if (!c.LoadOrg(id, o)) return c.failed() ? Internal("storage error reading org") : NotFound("org " + Q(id) + " not found");
  return Status::Ok();
}
Status MustLoadWs(Ctx& c, std::string_view id, WorkspaceRec* w) {
  if (!c.LoadWs(id, w)) {
    return c.failed() ? Internal("storage error reading workspace") : NotFound("workspace " + Q(id) + " not found");
  }
  return Status::Ok();
}
Status MustLoadInv(Ctx& c, std::string_view id, InvitationRec* inv) {
  if (!c.LoadInv(id, inv)) {
    return c.failed() ? Internal("storage error reading invitation") : NotFound("invitation " + Q(id) + " not found");
  }
  return Status::Ok();
}

// Applies role + restrictions to a workspace membership (invariant 8). `m` holds the previous
// state (role/flags/visibility), or is fresh.
Status ApplyRoleAndRestrictions(const Options& o, const std::string& new_role,
                                const std::optional<std::map<std::string, std::string>>& restr,
                                WsMemberRec* m) {
  if (!IsWsRole(o, new_role)) return Bad("field 'role': unknown workspace role " + Q(new_role), 8);
  std::vector<std::string> flags;
  std::string vis;
  if (m->role == new_role) {
    StringListView(m->flags).ForEach([&](std::string_view f) { flags.emplace_back(f); });
    vis = m->visibility;
  }
  if (new_role == "agent" && vis.empty()) vis = "all";
  if (new_role != "agent") vis.clear();
  if (new_role != "manager") flags.clear();
  if (restr) {
    for (const auto& [k, v] : *restr) {
      const std::string field = "restrictions." + k;
      if (In(k, kManagerFlags)) {
        if (new_role != "manager") return Bad("field '" + field + "' applies to managers only (role is " + Q(new_role) + ")", 8);
        if (v != "true" && v != "false") return Bad("field '" + field + "' must be true or false");
        auto it = std::find(flags.begin(), flags.end(), k);
        if (v == "true" && it == flags.end()) flags.push_back(k);
        if (v == "false" && it != flags.end()) flags.erase(it);
      } else if (k == "contact_visibility") {
        if (new_role != "agent") return Bad("field '" + field + "' applies to agents only (role is " + Q(new_role) + ")", 8);
        if (!In(v, kVisibilities)) return Bad("field '" + field + "': unknown visibility " + Q(v));
        vis = v;
      } else {
        return Bad("field '" + field + "': unknown restriction");
      }
    }
  }
  // Canonical order: as in kManagerFlags.
  std::vector<std::string> sorted;
  for (auto f : kManagerFlags) {
    if (std::find(flags.begin(), flags.end(), f) != flags.end()) sorted.emplace_back(f);
  }
  m->role = new_role;
  m->flags = EncodeStringList(sorted);
  m->visibility = vis;
  return Status::Ok();
}

// Removes all of a user's workspace memberships in org (invariant 4). Saves touched workspaces.
Status CascadeUserWorkspaces(Ctx& c, std::string_view user, std::string_view org) {
  for (const std::string& ws : c.ScanSuffixes(Table::kUserWorkspaces, KP(user) + KP(org))) {
    WsMemberRec m;
    WorkspaceRec w;
    if (!c.LoadWsMember(ws, user, &m) || !c.LoadWs(ws, &w)) return Internal("index refers to a missing workspace membership");
    c.DeleteWsMember(m);
    WorkspaceRec before = w;
    if (w.members > 0) --w.members;
    c.SaveWs(&before, w);
  }
  return Status::Ok();
}

// Rewrites the denormalized org role in all of a user's workspace memberships in org, after the
// org_members row changed to `role`. Derived data: not a change-log entry of its own.
Status RewriteWsOrgRole(Ctx& c, std::string_view user, std::string_view org, std::string_view role) {
  for (const std::string& ws : c.ScanSuffixes(Table::kUserWorkspaces, KP(user) + KP(org))) {
    WsMemberRec m;
    if (!c.LoadWsMember(ws, user, &m)) return Internal("index refers to a missing workspace membership");
    m.org_role = role;
    c.PutWsMemberRow(m);
  }
  return Status::Ok();
}

// Lazily expires the org's stored-PENDING invitations whose time is up (keeps seat usage exact).
// Walks the pending index only, so historical invitations cost nothing.
void ExpireInvitations(Ctx& c, OrgRec* org, int64_t now) {
  std::vector<std::string> ids;
  c.txn().Scan(Table::kInvPending, KP(org->id), {}, [&](std::string_view, std::string_view v) {
    ids.emplace_back(v);
    return true;
  });
  for (const std::string& id : ids) {
    InvitationRec inv;
    if (!c.LoadInv(id, &inv) || inv.state != "PENDING" || inv.expires_at > now) continue;
    InvitationRec before = inv;
    inv.state = "EXPIRED";
    c.DropPendingIndex(inv);
    c.SaveInv(&before, inv);
    if (org->pending > 0) --org->pending;
  }
}

// Deterministic generated ids that stay valid ids (<= 128 bytes).
std::string GeneratedId(const std::string& base, const std::string& suffix) {
  std::string id = base + suffix;
  if (id.size() <= 128) return id;
  return "id-" + HexEncode(Sha256Of(base)).substr(0, 40) + suffix;
}

Status RemoveMember(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("org", r.org));
  RETURN_IF_ERROR(Require("user", r.user));
  OrgRec org;
  RETURN_IF_ERROR(MustLoadOrg(c, r.org, &org));
  OrgMemberRec m;
  if (!c.LoadOrgMember(r.org, r.user, &m)) {
    return c.failed() ? Internal("storage error") : NotFound("user " + Q(r.user) + " is not a member of org " + Q(r.org));
  }
  if (m.role == "org_admin" && org.admins <= 1) {
    return Conflict("user " + Q(r.user) + " is the last org_admin of org " + Q(r.org) +
                        "; assign another org_admin first",
                    2);
  }
  RETURN_IF_ERROR(CascadeUserWorkspaces(c, r.user, r.org));
  c.DeleteOrgMember(m);
  OrgRec before = org;
  if (org.members > 0) --org.members;
  if (m.role == "org_admin" && org.admins > 0) --org.admins;
  c.SaveOrg(&before, org);
  return Status::Ok();
}

std::string NewToken(const ApplyInputs& in) { return HexEncode(in.random); }

Status CheckTtl(const WriteRequest& r, const Options& o, int64_t* ttl) {
  *ttl = r.ttl_s ? *r.ttl_s : o.default_invite_ttl_s;
  if (*ttl <= 0 || *ttl > 366 * 86400) return Bad("field 'ttl_s' must be between 1 and 31622400 seconds");
  return Status::Ok();
}

Status SeatCheck(const OrgRec& org, uint32_t adding, const char* what) {
  const uint64_t usage = uint64_t{org.members} + org.pending + adding;
  if (usage > org.seats) {
    return Limit(std::string(what) + ": org " + Q(org.id) + " uses " + std::to_string(org.members) +
                     " members + " + std::to_string(org.pending) + " pending invitations of " +
                     std::to_string(org.seats) + " seats",
                 5);
  }
  return Status::Ok();
}

Status LockCheck(const OrgRec& org, const char* what) {
  if (org.suspended) return Conflict(std::string(what) + ": org " + Q(org.id) + " is suspended", 7);
  if (Locked(org)) return Conflict(std::string(what) + ": org " + Q(org.id) + " is locked (status " + org.status + ")", 7);
  return Status::Ok();
}

// ----- ops -----

Status OpUserRegister(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("user", r.user));
  RETURN_IF_ERROR(CheckEmail(r.email));
  UserRec u;
  if (c.LoadUser(r.user, &u)) return Conflict("user " + Q(r.user) + " already exists");
  const std::string lower = AsciiLower(r.email);
  std::string_view k, v;
  if (c.txn().Get(Table::kEmails, lower, &k, &v)) return Conflict("field 'email': " + Q(r.email) + " is already registered");
  u = UserRec{r.user, r.email, false, 1, 0};
  c.SaveUser(nullptr, u);
  return Status::Ok();
}

Status OpUserVerify(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("user", r.user));
  UserRec u;
  RETURN_IF_ERROR(MustLoadUser(c, r.user, &u));
  UserRec before = u;
  u.verified = true;
  c.SaveUser(&before, u);
  return Status::Ok();
}

Status OpUserAllowance(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("user", r.user));
  if (!r.allowance) return Bad("field 'allowance' is required");
  if (*r.allowance < 0 || *r.allowance > kMaxAllowance) return Bad("field 'allowance' must be between 0 and 1000000");
  UserRec u;
  RETURN_IF_ERROR(MustLoadUser(c, r.user, &u));
  UserRec before = u;
  u.allowance = static_cast<uint32_t>(*r.allowance);
  c.SaveUser(&before, u);
  return Status::Ok();
}

Status OpOrgCreate(Ctx& c, const WriteRequest& r, WriteResult* res) {
  RETURN_IF_ERROR(Require("user", r.user));
  RETURN_IF_ERROR(Require("org", r.org));
  if (r.name.empty()) return Bad("field 'name' is required");
  RETURN_IF_ERROR(CheckText("name", r.name, 256));
  std::string ws_id = r.workspace.empty() ? GeneratedId(r.org, "-default") : r.workspace;
  if (!r.workspace.empty()) RETURN_IF_ERROR(Require("workspace", r.workspace));
  std::string ws_name = r.workspace_name ? *r.workspace_name : c.opt().default_workspace_name;
  if (ws_name.empty()) return Bad("field 'workspace_name' must not be empty");
  RETURN_IF_ERROR(CheckText("workspace_name", ws_name, 256));
  UserRec u;
  RETURN_IF_ERROR(MustLoadUser(c, r.user, &u));
  if (!u.verified) return Forbidden("user " + Q(r.user) + " must verify their email before creating an org", 1);
  if (u.orgs_created >= u.allowance) {
    return Limit("user " + Q(r.user) + " has created " + std::to_string(u.orgs_created) + " of " +
                     std::to_string(u.allowance) + " allowed orgs (org_allowance); contact support",
                 1);
  }
  OrgRec org;
  if (c.LoadOrg(r.org, &org)) return Conflict("org " + Q(r.org) + " already exists");
  WorkspaceRec ws;
  if (c.LoadWs(ws_id, &ws)) return Conflict("field 'workspace': workspace " + Q(ws_id) + " already exists");
  if (r.seats && (*r.seats < 1 || *r.seats > kMaxSeats)) return Bad("field 'seats' must be between 1 and 10000000");
  if (r.workspace_limit && (*r.workspace_limit < 1 || *r.workspace_limit > kMaxWorkspaceLimit)) {
    return Bad("field 'workspace_limit' must be between 1 and 1000000");
  }
  org = OrgRec{};
  org.id = r.org;
  org.name = r.name;
  org.creator = r.user;
  org.plan = r.plan ? *r.plan : c.opt().default_plan;
  org.status = "TRIAL";
  org.seats = r.seats ? static_cast<uint32_t>(*r.seats) : c.opt().default_seats;
  org.workspace_limit = r.workspace_limit ? static_cast<uint32_t>(*r.workspace_limit) : c.opt().default_workspace_limit;
  if (org.seats < 1) org.seats = 1;
  if (org.workspace_limit < 1) org.workspace_limit = 1;
  org.sso_exempt = EncodeStringList({"org_admin", "user_admin"});
  if (r.attrs) org.attrs = EncodeAttrs(*r.attrs);
  org.members = 1;
  org.admins = 1;
  org.workspaces = 1;
  c.SaveOrg(nullptr, org);
  c.SaveOrgMember(nullptr, OrgMemberRec{r.user, r.org, "org_admin"});
  ws = WorkspaceRec{ws_id, r.org, ws_name, {}, 1};
  c.SaveWs(nullptr, ws);
  c.SaveWsMember(nullptr, WsMemberRec{r.user, ws_id, r.org, "owner", {}, {}, {}, "org_admin"});
  UserRec before = u;
  ++u.orgs_created;
  c.SaveUser(&before, u);
  res->workspace = ws_id;
  return Status::Ok();
}

Status OpOrgUpdate(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("org", r.org));
  if (!r.name.empty()) RETURN_IF_ERROR(CheckText("name", r.name, 256));
  OrgRec org;
  RETURN_IF_ERROR(MustLoadOrg(c, r.org, &org));
  OrgRec before = org;
  if (!r.name.empty()) org.name = r.name;
  if (r.attrs) org.attrs = EncodeAttrs(*r.attrs);
  c.SaveOrg(&before, org);
  return Status::Ok();
}

Status OpOrgDelete(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("org", r.org));
  OrgRec org;
  RETURN_IF_ERROR(MustLoadOrg(c, r.org, &org));
  for (const std::string& ws_id : c.ScanSuffixes(Table::kOrgWorkspaces, KP(r.org))) {
    WorkspaceRec ws;
    if (!c.LoadWs(ws_id, &ws)) return Internal("index refers to missing workspace " + Q(ws_id));
    for (const std::string& user : c.ScanSuffixes(Table::kWsMembers, KP(ws_id))) {
      WsMemberRec m;
      if (!c.LoadWsMember(ws_id, user, &m)) return Internal("storage error");
      c.DeleteWsMember(m);
    }
    c.DeleteWs(ws);
  }
  for (const std::string& user : c.ScanSuffixes(Table::kOrgMembers, KP(r.org))) {
    OrgMemberRec m;
    if (!c.LoadOrgMember(r.org, user, &m)) return Internal("storage error");
    c.DeleteOrgMember(m);
  }
  for (const std::string& id : c.ScanSuffixes(Table::kOrgInvitations, KP(r.org))) {
    InvitationRec inv;
    if (!c.LoadInv(id, &inv)) return Internal("index refers to missing invitation " + Q(id));
    c.DeleteInv(inv);
  }
  c.DeleteOrg(org);
  return Status::Ok();
}

Status OpOrgSubscription(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("org", r.org));
  if (r.status && !In(*r.status, kStatuses)) {
    return Bad("field 'status': unknown subscription status " + Q(*r.status) +
               " (TRIAL, ACTIVE, DOWNGRADING, CANCELING, PENDING_PAYMENT, TRIAL_ENDED, FROZEN, CANCELED)");
  }
  if (r.seats && (*r.seats < 0 || *r.seats > kMaxSeats)) return Bad("field 'seats' must be between 0 and 10000000");
  if (r.workspace_limit && (*r.workspace_limit < 0 || *r.workspace_limit > kMaxWorkspaceLimit)) {
    return Bad("field 'workspace_limit' must be between 0 and 1000000");
  }
  if (r.plan) RETURN_IF_ERROR(CheckText("plan", *r.plan, 128));
  std::vector<std::string> features;
  if (r.features) {
    for (const auto& f : *r.features) {
      if (f.empty()) return Bad("field 'features' contains an empty name");
      RETURN_IF_ERROR(CheckText("features", f, 128));
      if (std::find(features.begin(), features.end(), f) == features.end()) features.push_back(f);
    }
  }
  OrgRec org;
  RETURN_IF_ERROR(MustLoadOrg(c, r.org, &org));
  OrgRec before = org;
  if (r.plan) org.plan = *r.plan;
  if (r.status) org.status = *r.status;
  if (r.seats) org.seats = static_cast<uint32_t>(*r.seats);
  if (r.workspace_limit) org.workspace_limit = static_cast<uint32_t>(*r.workspace_limit);
  if (r.features) org.features = EncodeStringList(features);
  if (r.billing) org.billing = EncodeAttrs(*r.billing);
  c.SaveOrg(&before, org);
  return Status::Ok();
}

Status OpOrgSecurity(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("org", r.org));
  if (!r.sso) return Bad("field 'sso' is required");
  const SsoSettings& s = *r.sso;
  if (s.enforced && !s.enabled) return Bad("field 'sso.enforced' requires 'sso.enabled'");
  if (s.enabled && s.idp.empty()) return Bad("field 'sso.idp' is required when sso is enabled");
  if (!s.idp.empty()) RETURN_IF_ERROR(CheckId("sso.idp", s.idp));
  if (s.exempt_roles) {
    for (const auto& role : *s.exempt_roles) {
      if (!IsOrgRole(c.opt(), role)) return Bad("field 'sso.exempt_roles': unknown org role " + Q(role));
    }
  }
  OrgRec org;
  RETURN_IF_ERROR(MustLoadOrg(c, r.org, &org));
  OrgRec before = org;
  org.sso_enabled = s.enabled;
  org.sso_enforced = s.enforced;
  org.sso_idp = s.idp;
  if (s.exempt_roles) org.sso_exempt = EncodeStringList(*s.exempt_roles);
  c.SaveOrg(&before, org);
  return Status::Ok();
}

Status OpOrgSuspend(Ctx& c, const WriteRequest& r, bool suspend) {
  RETURN_IF_ERROR(Require("org", r.org));
  OrgRec org;
  RETURN_IF_ERROR(MustLoadOrg(c, r.org, &org));
  OrgRec before = org;
  org.suspended = suspend;
  c.SaveOrg(&before, org);
  return Status::Ok();
}

Status OpOrgInvite(Ctx& c, const WriteRequest& r, const ApplyInputs& in, WriteResult* res) {
  RETURN_IF_ERROR(Require("org", r.org));
  RETURN_IF_ERROR(CheckEmail(r.email));
  if (r.role.empty()) return Bad("field 'role' is required");
  if (!IsOrgRole(c.opt(), r.role)) return Bad("field 'role': unknown org role " + Q(r.role), 8);
  int64_t ttl;
  RETURN_IF_ERROR(CheckTtl(r, c.opt(), &ttl));
  if (!r.invitation.empty()) RETURN_IF_ERROR(Require("invitation", r.invitation));
  if (in.random.size() != 32) return Internal("no random bytes for the invitation token");
  OrgRec org;
  RETURN_IF_ERROR(MustLoadOrg(c, r.org, &org));
  RETURN_IF_ERROR(LockCheck(org, "cannot invite"));
  std::string grants;
  if (r.grants) {
    for (const auto& g : *r.grants) {
      RETURN_IF_ERROR(Require("workspaces.workspace", g.workspace));
      if (!IsWsRole(c.opt(), g.role)) return Bad("field 'workspaces.role': unknown workspace role " + Q(g.role), 8);
      WorkspaceRec ws;
      RETURN_IF_ERROR(MustLoadWs(c, g.workspace, &ws));
      if (ws.org != r.org) {
        return Conflict("field 'workspaces': workspace " + Q(g.workspace) + " belongs to another org", 9);
      }
      AppendGrant(&grants, g.workspace, g.role);
    }
  }
  const std::string email = AsciiLower(r.email);
  UserRec existing;
  if (c.LoadUserByEmail(email, &existing)) {
    OrgMemberRec m;
    if (c.LoadOrgMember(r.org, existing.id, &m)) {
      return Conflict("field 'email': " + Q(r.email) + " is already a member of org " + Q(r.org));
    }
  }
  OrgRec before = org;
  ExpireInvitations(c, &org, in.now);
  std::string_view k, v;
  if (c.txn().Get(Table::kInvPending, KP2(r.org, email), &k, &v)) {
    return Conflict("field 'email': a PENDING invitation for " + Q(r.email) + " already exists in org " + Q(r.org) +
                        " (invitation " + Q(v) + "); resend it instead",
                    7);
  }
  RETURN_IF_ERROR(SeatCheck(org, 1, "cannot invite"));
  InvitationRec inv;
  inv.id = r.invitation.empty() ? GeneratedId(r.org, "-inv-" + std::to_string(in.rev)) : r.invitation;
  InvitationRec clash;
  if (c.LoadInv(inv.id, &clash)) {
    return Conflict("field 'invitation': invitation " + Q(inv.id) + " already exists");
  }
  const std::string inv_id = inv.id;
  inv = InvitationRec{};
  inv.id = inv_id;
  const std::string token = NewToken(in);
  inv.org = r.org;
  inv.email = email;
  inv.role = r.role;
  inv.state = "PENDING";
  inv.created_at = in.now;
  inv.expires_at = in.now + ttl;
  inv.invited_by = r.actor;
  inv.grants = grants;
  inv.token_hash = Sha256Of(token);
  c.SaveInv(nullptr, inv);
  c.txn().Put(Table::kInvTokens, inv.token_hash, inv.id);
  c.txn().Put(Table::kInvPending, KP2(r.org, email), inv.id);
  ++org.pending;
  c.SaveOrg(&before, org);
  res->invitation = inv.id;
  res->token = token;
  return Status::Ok();
}

Status FindByToken(Ctx& c, const std::string& token, InvitationRec* inv) {
  if (token.empty()) return Bad("field 'token' is required");
  if (token.size() > 256) return NotFound("no invitation matches this token");
  const std::string hash = Sha256Of(token);
  std::string_view k, v;
  if (!c.txn().Get(Table::kInvTokens, hash, &k, &v)) {
    return c.failed() ? Internal("storage error") : NotFound("no invitation matches this token");
  }
  const std::string id(v);
  RETURN_IF_ERROR(MustLoadInv(c, id, inv));
  if (!ConstantTimeEqual(inv->token_hash, hash)) return NotFound("no invitation matches this token");
  return Status::Ok();
}

Status OpInviteAccept(Ctx& c, const WriteRequest& r, const ApplyInputs& in) {
  RETURN_IF_ERROR(Require("user", r.user));
  InvitationRec inv;
  RETURN_IF_ERROR(FindByToken(c, r.token, &inv));
  if (inv.state != "PENDING") return Conflict("invitation " + Q(inv.id) + " is " + inv.state + ", not PENDING", 7);
  if (inv.expires_at <= in.now) return Conflict("invitation " + Q(inv.id) + " has expired; ask for a resend", 7);
  UserRec u;
  RETURN_IF_ERROR(MustLoadUser(c, r.user, &u));
  if (!u.verified) return Forbidden("user " + Q(r.user) + " must verify their email before accepting", 7);
  if (AsciiLower(u.email) != inv.email) {
    return Forbidden("user " + Q(r.user) + "'s verified email does not match the invitation's email", 7);
  }
  OrgRec org;
  RETURN_IF_ERROR(MustLoadOrg(c, inv.org, &org));
  RETURN_IF_ERROR(LockCheck(org, "cannot accept"));
  OrgMemberRec existing;
  if (c.LoadOrgMember(inv.org, r.user, &existing)) {
    return Conflict("user " + Q(r.user) + " is already a member of org " + Q(inv.org));
  }
  // The invitation's pending seat becomes a member seat: usage must fit (invariant 5).
  RETURN_IF_ERROR(SeatCheck(org, 0, "cannot accept"));
  OrgRec org_before = org;
  c.SaveOrgMember(nullptr, OrgMemberRec{r.user, inv.org, inv.role});
  ++org.members;
  if (inv.role == "org_admin") ++org.admins;
  if (org.pending > 0) --org.pending;
  InvitationView view;
  view.grants_encoded = inv.grants;
  Status st = Status::Ok();
  std::vector<std::pair<std::string, std::string>> grants;
  view.ForEachGrant([&](std::string_view ws, std::string_view role) { grants.emplace_back(ws, role); });
  for (const auto& [ws_id, role] : grants) {
    WorkspaceRec ws;
    if (!c.LoadWs(ws_id, &ws) || ws.org != inv.org) continue;  // deleted since the invite: skipped
    WsMemberRec m{r.user, ws_id, inv.org, {}, {}, {}, {}, inv.role};
    RETURN_IF_ERROR(ApplyRoleAndRestrictions(c.opt(), role, std::nullopt, &m));
    c.SaveWsMember(nullptr, m);
    WorkspaceRec ws_before = ws;
    ++ws.members;
    c.SaveWs(&ws_before, ws);
  }
  InvitationRec before = inv;
  inv.state = "ACCEPTED";
  inv.accepted_by = r.user;
  c.DropPendingIndex(inv);
  c.SaveInv(&before, inv);
  c.SaveOrg(&org_before, org);
  return Status::Ok();
}

Status OpInviteRevoke(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("invitation", r.invitation));
  InvitationRec inv;
  RETURN_IF_ERROR(MustLoadInv(c, r.invitation, &inv));
  if (inv.state != "PENDING") return Conflict("invitation " + Q(inv.id) + " is " + inv.state + ", not PENDING", 7);
  OrgRec org;
  RETURN_IF_ERROR(MustLoadOrg(c, inv.org, &org));
  InvitationRec before = inv;
  inv.state = "REVOKED";
  c.DropPendingIndex(inv);
  c.SaveInv(&before, inv);
  OrgRec org_before = org;
  if (org.pending > 0) --org.pending;
  c.SaveOrg(&org_before, org);
  return Status::Ok();
}

Status OpInviteResend(Ctx& c, const WriteRequest& r, const ApplyInputs& in, WriteResult* res) {
  RETURN_IF_ERROR(Require("invitation", r.invitation));
  int64_t ttl;
  RETURN_IF_ERROR(CheckTtl(r, c.opt(), &ttl));
  if (in.random.size() != 32) return Internal("no random bytes for the invitation token");
  InvitationRec inv;
  RETURN_IF_ERROR(MustLoadInv(c, r.invitation, &inv));
  if (inv.state != "PENDING" && inv.state != "EXPIRED") {
    return Conflict("invitation " + Q(inv.id) + " is " + inv.state + "; only PENDING or EXPIRED invitations can be resent", 7);
  }
  OrgRec org;
  RETURN_IF_ERROR(MustLoadOrg(c, inv.org, &org));
  RETURN_IF_ERROR(LockCheck(org, "cannot resend"));
  OrgRec org_before = org;
  if (inv.state == "EXPIRED") {
    std::string_view k, v;
    if (c.txn().Get(Table::kInvPending, KP2(inv.org, inv.email), &k, &v)) {
      return Conflict("another PENDING invitation (" + Q(v) + ") exists for this email in org " + Q(inv.org), 7);
    }
    RETURN_IF_ERROR(SeatCheck(org, 1, "cannot resend"));
    ++org.pending;
    c.txn().Put(Table::kInvPending, KP2(inv.org, inv.email), inv.id);
  }
  InvitationRec before = inv;
  c.txn().Del(Table::kInvTokens, inv.token_hash);  // the old token stops working
  const std::string token = NewToken(in);
  inv.token_hash = Sha256Of(token);
  inv.state = "PENDING";
  inv.expires_at = in.now + ttl;
  c.txn().Put(Table::kInvTokens, inv.token_hash, inv.id);
  c.SaveInv(&before, inv);
  if (org.pending != org_before.pending) c.SaveOrg(&org_before, org);
  res->invitation = inv.id;
  res->token = token;
  return Status::Ok();
}

Status OpOrgSetRole(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("org", r.org));
  RETURN_IF_ERROR(Require("user", r.user));
  if (r.role.empty()) return Bad("field 'role' is required");
  if (!IsOrgRole(c.opt(), r.role)) return Bad("field 'role': unknown org role " + Q(r.role), 8);
  OrgRec org;
  RETURN_IF_ERROR(MustLoadOrg(c, r.org, &org));
  OrgMemberRec m;
  if (!c.LoadOrgMember(r.org, r.user, &m)) {
    return c.failed() ? Internal("storage error") : NotFound("user " + Q(r.user) + " is not a member of org " + Q(r.org));
  }
  if (m.role == r.role) return Status::Ok();
  if (m.role == "org_admin" && org.admins <= 1) {
    return Conflict("user " + Q(r.user) + " is the last org_admin of org " + Q(r.org) + "; assign another org_admin first", 2);
  }
  OrgRec org_before = org;
  if (m.role == "org_admin") --org.admins;
  if (r.role == "org_admin") ++org.admins;
  OrgMemberRec before = m;
  m.role = r.role;
  c.SaveOrgMember(&before, m);
  RETURN_IF_ERROR(RewriteWsOrgRole(c, r.user, r.org, r.role));
  c.SaveOrg(&org_before, org);
  return Status::Ok();
}

Status OpWsCreate(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("org", r.org));
  RETURN_IF_ERROR(Require("workspace", r.workspace));
  if (!r.name.empty()) RETURN_IF_ERROR(CheckText("name", r.name, 256));
  OrgRec org;
  RETURN_IF_ERROR(MustLoadOrg(c, r.org, &org));
  WorkspaceRec ws;
  if (c.LoadWs(r.workspace, &ws)) return Conflict("workspace " + Q(r.workspace) + " already exists");
  if (org.workspaces + 1 > org.workspace_limit) {
    return Limit("org " + Q(r.org) + " has " + std::to_string(org.workspaces) + " of " +
                     std::to_string(org.workspace_limit) + " workspaces (workspace_limit)",
                 6);
  }
  ws = WorkspaceRec{r.workspace, r.org, r.name.empty() ? r.workspace : r.name, {}, 0};
  if (r.attrs) ws.attrs = EncodeAttrs(*r.attrs);
  c.SaveWs(nullptr, ws);
  OrgRec before = org;
  ++org.workspaces;
  c.SaveOrg(&before, org);
  return Status::Ok();
}

Status OpWsUpdate(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("workspace", r.workspace));
  if (!r.name.empty()) RETURN_IF_ERROR(CheckText("name", r.name, 256));
  WorkspaceRec ws;
  RETURN_IF_ERROR(MustLoadWs(c, r.workspace, &ws));
  if (!r.org.empty() && r.org != ws.org) {
    return Conflict("field 'org': workspace " + Q(r.workspace) + " belongs to org " + Q(ws.org) + " and cannot move", 9);
  }
  WorkspaceRec before = ws;
  if (!r.name.empty()) ws.name = r.name;
  if (r.attrs) ws.attrs = EncodeAttrs(*r.attrs);
  c.SaveWs(&before, ws);
  return Status::Ok();
}

Status OpWsDelete(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("workspace", r.workspace));
  WorkspaceRec ws;
  RETURN_IF_ERROR(MustLoadWs(c, r.workspace, &ws));
  if (!r.org.empty() && r.org != ws.org) return Conflict("field 'org': workspace " + Q(r.workspace) + " belongs to another org", 9);
  OrgRec org;
  RETURN_IF_ERROR(MustLoadOrg(c, ws.org, &org));
  if (org.workspaces <= 1) return Conflict("workspace " + Q(r.workspace) + " is the last workspace of org " + Q(ws.org), 6);
  for (const std::string& user : c.ScanSuffixes(Table::kWsMembers, KP(ws.id))) {
    WsMemberRec m;
    if (!c.LoadWsMember(ws.id, user, &m)) return Internal("storage error");
    c.DeleteWsMember(m);
  }
  c.DeleteWs(ws);
  OrgRec before = org;
  --org.workspaces;
  c.SaveOrg(&before, org);
  return Status::Ok();
}

Status OpWsSetMember(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("workspace", r.workspace));
  RETURN_IF_ERROR(Require("user", r.user));
  if (r.role.empty()) return Bad("field 'role' is required");
  if (!r.team.empty()) RETURN_IF_ERROR(Require("team", r.team));
  WorkspaceRec ws;
  RETURN_IF_ERROR(MustLoadWs(c, r.workspace, &ws));
  if (!r.org.empty() && r.org != ws.org) return Conflict("field 'org': workspace " + Q(r.workspace) + " belongs to another org", 9);
  UserRec u;
  RETURN_IF_ERROR(MustLoadUser(c, r.user, &u));
  WsMemberRec m{r.user, r.workspace, ws.org, {}, {}, {}, {}};
  const bool existed = c.LoadWsMember(r.workspace, r.user, &m);
  const WsMemberRec before = m;
  RETURN_IF_ERROR(ApplyRoleAndRestrictions(c.opt(), r.role, r.restrictions, &m));
  m.team = r.team;
  OrgMemberRec om;
  if (c.LoadOrgMember(ws.org, r.user, &om)) {
    m.org_role = om.role;
  } else {
    if (c.failed()) return Internal("storage error");
    if (!r.actor.empty()) {
      return Conflict("user " + Q(r.user) + " is not a member of org " + Q(ws.org) + "; invite them to the org first", 3);
    }
    OrgRec org;
    RETURN_IF_ERROR(MustLoadOrg(c, ws.org, &org));
    RETURN_IF_ERROR(SeatCheck(org, 1, "cannot add the user to the org"));
    OrgRec org_before = org;
    c.SaveOrgMember(nullptr, OrgMemberRec{r.user, ws.org, "member"});
    m.org_role = "member";
    ++org.members;
    c.SaveOrg(&org_before, org);
  }
  c.SaveWsMember(existed ? &before : nullptr, m);
  if (!existed) {
    WorkspaceRec ws_before = ws;
    ++ws.members;
    c.SaveWs(&ws_before, ws);
  }
  return Status::Ok();
}

Status OpWsRemoveMember(Ctx& c, const WriteRequest& r) {
  RETURN_IF_ERROR(Require("workspace", r.workspace));
  RETURN_IF_ERROR(Require("user", r.user));
  WorkspaceRec ws;
  RETURN_IF_ERROR(MustLoadWs(c, r.workspace, &ws));
  WsMemberRec m;
  if (!c.LoadWsMember(r.workspace, r.user, &m)) {
    return c.failed() ? Internal("storage error")
                      : NotFound("user " + Q(r.user) + " is not a member of workspace " + Q(r.workspace));
  }
  c.DeleteWsMember(m);
  WorkspaceRec before = ws;
  if (ws.members > 0) --ws.members;
  c.SaveWs(&before, ws);
  return Status::Ok();
}

std::string DescribeKey(Table t, std::string_view key) {
  std::string_view a, b = key;
  switch (t) {
    case Table::kUsers:
      return "user " + Q(key);
    case Table::kEmails:
      return "email " + Q(key);
    case Table::kOrgMembers:
      if (!GetKeyPart(&b, &a)) break;
      return "membership of user " + Q(b) + " in org " + Q(a);
    case Table::kWsMembers:
      if (!GetKeyPart(&b, &a)) break;
      return "membership of user " + Q(b) + " in workspace " + Q(a);
    default:
      break;
  }
  return std::string("key in ") + TableName(t);
}

}  // namespace

Status CheckId(std::string_view field, std::string_view value) {
  if (value.empty()) return Bad("field '" + std::string(field) + "' is required");
  if (value.size() > 128) return Bad("field '" + std::string(field) + "' must be 1-128 bytes (got " + std::to_string(value.size()) + ")");
  if (!ValidUtf8NoControl(value)) {
    return Bad("field '" + std::string(field) + "' must be UTF-8 without control characters");
  }
  return Status::Ok();
}

bool NeedsRandom(std::string_view op) { return op == "org.invite" || op == "invite.resend"; }

Status ApplyWrite(KvTxn& txn, const Options& options, const WriteRequest& r, const ApplyInputs& in,
                  WriteResult* res) {
  Ctx c(txn, options);
  if (!r.actor.empty()) RETURN_IF_ERROR(CheckId("actor", r.actor));
  Status s;
  const std::string& op = r.op;
  if (op == "user.register") s = OpUserRegister(c, r);
  else if (op == "user.verify_email") s = OpUserVerify(c, r);
  else if (op == "user.set_org_allowance") s = OpUserAllowance(c, r);
  else if (op == "org.create") s = OpOrgCreate(c, r, res);
  else if (op == "org.update") s = OpOrgUpdate(c, r);
  else if (op == "org.delete") s = OpOrgDelete(c, r);
  else if (op == "org.set_subscription") s = OpOrgSubscription(c, r);
  else if (op == "org.set_security") s = OpOrgSecurity(c, r);
  else if (op == "org.suspend") s = OpOrgSuspend(c, r, true);
  else if (op == "org.unsuspend") s = OpOrgSuspend(c, r, false);
  else if (op == "org.invite") s = OpOrgInvite(c, r, in, res);
  else if (op == "invite.accept") s = OpInviteAccept(c, r, in);
  else if (op == "invite.revoke") s = OpInviteRevoke(c, r);
  else if (op == "invite.resend") s = OpInviteResend(c, r, in, res);
  else if (op == "org.set_role") s = OpOrgSetRole(c, r);
  else if (op == "org.remove_member" || op == "org.leave") s = RemoveMember(c, r);
  else if (op == "workspace.create") s = OpWsCreate(c, r);
  else if (op == "workspace.update") s = OpWsUpdate(c, r);
  else if (op == "workspace.delete") s = OpWsDelete(c, r);
  else if (op == "workspace.set_member") s = OpWsSetMember(c, r);
  else if (op == "workspace.remove_member") s = OpWsRemoveMember(c, r);
  else s = Bad("field 'op': unknown write op " + Q(op));
  if (s.ok() && c.failed()) s = Internal("storage error while applying " + op);
  if (!s.ok()) {
    res->token.clear();
    res->invitation.clear();
    res->workspace.clear();
    return s;
  }
  if (!txn.AppendChange(in.rev, ChangeJson(in.rev, op, r.actor, in.now, ArgsJson(r), c.changes()))) {
    return Internal("storage error writing the change record");
  }
  return Status::Ok();
}

// ----- import -----

Status ApplyImport(KvTxn& txn, const Options& o, const ImportRecord* recs, size_t n, uint64_t rev,
                   int64_t now, uint64_t* memberships) {
  Ctx c(txn, o);
  // Dependency order, then key order (LMDB writes sequential pages faster).
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto primary = [&](const ImportRecord& r) -> std::pair<const std::string&, const std::string&> {
    switch (r.kind) {
      case ImportRecord::Kind::kUser: return {r.fields.user, r.fields.user};
      case ImportRecord::Kind::kOrg: return {r.fields.org, r.fields.org};
      case ImportRecord::Kind::kOrgMember: return {r.fields.org, r.fields.user};
      case ImportRecord::Kind::kWorkspace: return {r.fields.workspace, r.fields.workspace};
      case ImportRecord::Kind::kWorkspaceMember: return {r.fields.workspace, r.fields.user};
    }
    return {r.fields.user, r.fields.user};
  };
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const ImportRecord& x = recs[a];
    const ImportRecord& y = recs[b];
    if (x.kind != y.kind) return x.kind < y.kind;
    auto px = primary(x), py = primary(y);
    if (px.first.size() != py.first.size()) return px.first.size() < py.first.size();
    if (px.first != py.first) return px.first < py.first;
    return px.second < py.second;
  });
  // Counters are kept in these caches and written once at the end of the batch.
  std::unordered_map<std::string, OrgRec> orgs;
  std::unordered_map<std::string, WorkspaceRec> wss;
  auto org_of = [&](const std::string& id) -> OrgRec* {
    auto it = orgs.find(id);
    if (it != orgs.end()) return &it->second;
    OrgRec r;
    if (!c.LoadOrg(id, &r)) return nullptr;
    return &orgs.emplace(id, std::move(r)).first->second;
  };
  auto ws_of = [&](const std::string& id) -> WorkspaceRec* {
    auto it = wss.find(id);
    if (it != wss.end()) return &it->second;
    WorkspaceRec r;
    if (!c.LoadWs(id, &r)) return nullptr;
    return &wss.emplace(id, std::move(r)).first->second;
  };
  // Puts are staged per table and written at the end in key order (each B-tree page is
  // dirtied once per batch; appends when the batch sorts after the table's last key).
  std::vector<std::pair<std::string, std::string>> staged[kTableCount];
  std::unordered_set<std::string> staged_users;
  std::unordered_map<std::string, std::string> staged_org_roles;  // kp(org) user -> role
  auto put = [&](Table t, std::string k, std::string v) {
    if (t == Table::kUsers) staged_users.insert(k);  // looked up below
    staged[static_cast<int>(t)].emplace_back(std::move(k), std::move(v));
  };
  auto user_exists = [&](const std::string& id) {
    return staged_users.count(id) > 0 || txn.Exists(Table::kUsers, id);
  };
  // The org role of (org, user) from this batch or the store; "" if not a member.
  auto org_role = [&](const std::string& key, std::string* role) {
    auto it = staged_org_roles.find(key);
    if (it != staged_org_roles.end()) {
      *role = it->second;
      return true;
    }
    std::string_view sk, sv;
    OrgMemberView view;
    if (!txn.Get(Table::kOrgMembers, key, &sk, &sv)) return false;
    if (!DecodeOrgMember({}, {}, sv, &view)) return false;
    role->assign(view.role);
    return true;
  };
  uint64_t members = 0;
  std::string key;
  for (uint32_t idx : order) {
    const ImportRecord& rec = recs[idx];
    const WriteRequest& f = rec.fields;
    auto fail = [&](const Status& s) {
      return Status(s.code(), "import record " + std::to_string(idx) + ": " + s.message(), s.invariant());
    };
    std::string_view k, v;
    switch (rec.kind) {
      case ImportRecord::Kind::kUser: {
        Status s = CheckId("user", f.user);
        if (s.ok()) s = CheckEmail(f.email);
        if (!s.ok()) return fail(s);
        // Duplicate users and emails are caught when the sorted run is written (unique puts).
        const std::string lower = AsciiLower(f.email);
        UserRec u{f.user, f.email, rec.email_verified, 1, 0};
        if (f.allowance) {
          if (*f.allowance < 0 || *f.allowance > kMaxAllowance) return fail(Bad("field 'allowance' out of range"));
          u.allowance = static_cast<uint32_t>(*f.allowance);
        }
        put(Table::kUsers, u.id, EncodeUser(u));
        put(Table::kEmails, lower, u.id);
        break;
      }
      case ImportRecord::Kind::kOrg: {
        Status s = CheckId("org", f.org);
        if (!s.ok()) return fail(s);
        if (orgs.count(f.org) || txn.Get(Table::kOrgs, f.org, &k, &v)) return fail(Conflict("org " + Q(f.org) + " already exists"));
        if (f.status && !In(*f.status, kStatuses)) return fail(Bad("field 'status': unknown subscription status " + Q(*f.status)));
        if (!f.user.empty() && !user_exists(f.user)) return fail(NotFound("creator user " + Q(f.user) + " not found"));
        OrgRec r;
        r.id = f.org;
        r.name = f.name.empty() ? f.org : f.name;
        r.creator = f.user;
        r.plan = f.plan ? *f.plan : o.default_plan;
        r.status = f.status ? *f.status : "ACTIVE";
        r.seats = f.seats ? static_cast<uint32_t>(std::clamp<int64_t>(*f.seats, 0, kMaxSeats)) : o.default_seats;
        r.workspace_limit = f.workspace_limit
                                ? static_cast<uint32_t>(std::clamp<int64_t>(*f.workspace_limit, 0, kMaxWorkspaceLimit))
                                : o.default_workspace_limit;
        if (f.features) r.features = EncodeStringList(*f.features);
        if (f.billing) r.billing = EncodeAttrs(*f.billing);
        r.sso_exempt = EncodeStringList({"org_admin", "user_admin"});
        if (f.sso) {
          r.sso_enabled = f.sso->enabled;
          r.sso_enforced = f.sso->enforced;
          r.sso_idp = f.sso->idp;
          if (f.sso->exempt_roles) r.sso_exempt = EncodeStringList(*f.sso->exempt_roles);
        }
        if (f.attrs) r.attrs = EncodeAttrs(*f.attrs);
        orgs.emplace(r.id, std::move(r));
        break;
      }
      case ImportRecord::Kind::kOrgMember: {
        Status s = CheckId("org", f.org);
        if (s.ok()) s = CheckId("user", f.user);
        if (s.ok() && !IsOrgRole(o, f.role)) s = Bad("field 'role': unknown org role " + Q(f.role), 8);
        if (!s.ok()) return fail(s);
        OrgRec* org = org_of(f.org);
        if (!org) return fail(NotFound("org " + Q(f.org) + " not found"));
        if (!user_exists(f.user)) return fail(NotFound("user " + Q(f.user) + " not found"));
        key = KP2(f.org, f.user);
        staged_org_roles[key] = f.role;
        put(Table::kOrgMembers, key, EncodeOrgMember(OrgMemberRec{f.user, f.org, f.role}));
        put(Table::kUserOrgs, KP2(f.user, f.org), {});
        ++org->members;
        if (f.role == "org_admin") ++org->admins;
        ++members;
        break;
      }
      case ImportRecord::Kind::kWorkspace: {
        Status s = CheckId("workspace", f.workspace);
        if (s.ok()) s = CheckId("org", f.org);
        if (!s.ok()) return fail(s);
        OrgRec* org = org_of(f.org);
        if (!org) return fail(NotFound("org " + Q(f.org) + " not found"));
        if (wss.count(f.workspace) || txn.Get(Table::kWorkspaces, f.workspace, &k, &v)) {
          return fail(Conflict("workspace " + Q(f.workspace) + " already exists"));
        }
        WorkspaceRec w{f.workspace, f.org, f.name.empty() ? f.workspace : f.name, {}, 0};
        if (f.attrs) w.attrs = EncodeAttrs(*f.attrs);
        put(Table::kOrgWorkspaces, KP2(f.org, f.workspace), {});
        wss.emplace(w.id, std::move(w));
        ++org->workspaces;
        break;
      }
      case ImportRecord::Kind::kWorkspaceMember: {
        Status s = CheckId("workspace", f.workspace);
        if (s.ok()) s = CheckId("user", f.user);
        if (s.ok() && !f.team.empty()) s = CheckId("team", f.team);
        if (!s.ok()) return fail(s);
        WorkspaceRec* ws = ws_of(f.workspace);
        if (!ws) return fail(NotFound("workspace " + Q(f.workspace) + " not found"));
        WsMemberRec m{f.user, f.workspace, ws->org, {}, {}, {}, {}, {}};
        if (!org_role(KP2(ws->org, f.user), &m.org_role)) {
          if (txn.error()) return Internal("import record " + std::to_string(idx) + ": storage error");
          return fail(Conflict("user " + Q(f.user) + " is not a member of org " + Q(ws->org), 3));
        }
        key = KP2(f.workspace, f.user);
        s = ApplyRoleAndRestrictions(o, f.role, f.restrictions, &m);
        if (!s.ok()) return fail(s);
        m.team = f.team;
        put(Table::kWsMembers, key, EncodeWsMember(m));
        put(Table::kUserWorkspaces, KP3(f.user, ws->org, f.workspace), {});
        ++ws->members;
        ++members;
        break;
      }
    }
    if (c.failed()) return Internal("import record " + std::to_string(idx) + ": storage error");
  }
  for (auto& [id, w] : wss) put(Table::kWorkspaces, id, EncodeWorkspace(w));
  for (auto& [id, org] : orgs) put(Table::kOrgs, id, EncodeOrg(org));
  for (int i = 0; i < kTableCount; ++i) {
    auto& v = staged[i];
    if (v.empty()) continue;
    const Table t = static_cast<Table>(i);
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    // Entity tables must not get duplicates, within the batch or against the store.
    const bool unique = t == Table::kUsers || t == Table::kEmails || t == Table::kOrgMembers || t == Table::kWsMembers;
    std::string dup;
    for (size_t j = 1; unique && j < v.size() && dup.empty(); ++j) {
      if (v[j].first == v[j - 1].first) dup = v[j].first;
    }
    if (dup.empty() && !txn.PutSorted(t, v, unique, &dup) && dup.empty()) {
      return Internal("storage error during import");
    }
    if (!dup.empty()) return Conflict("import: duplicate " + DescribeKey(t, dup));
  }
  std::string args = "{\"records\":" + std::to_string(n) + ",\"memberships\":" + std::to_string(members) + "}";
  if (!txn.AppendChange(rev, ChangeJson(rev, "import", {}, now, args, {}))) return Internal("storage error writing the change record");
  if (c.failed()) return Internal("storage error during import");
  *memberships += members;
  return Status::Ok();
}

}  // namespace gatehouse::store::internal
