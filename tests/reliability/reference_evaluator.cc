#include "tests/reliability/reference_evaluator.h"

#include <algorithm>
#include <map>
#include <set>

namespace gatehouse::reliability {
namespace {

using policy::MemoryFacts;

// ---- Table A: org-scoped actions -> org roles that have them. ----
// Role letters: a = org_admin, b = billing_admin, u = user_admin, m = member.
const std::map<std::string, std::string, std::less<>>& TableA() {
  static const auto* t = new std::map<std::string, std::string, std::less<>>{
      {"org.view", "abum"},
      {"org.settings.open", "abu"},
      {"org.settings.general.view", "abu"},
      {"org.settings.general.manage", "a"},
      {"org.delete", "a"},
      {"org.users.view", "abu"},
      {"org.users.invite", "au"},
      {"org.users.remove", "au"},
      {"org.users.role.assign", "au"},
      {"org.users.export", "au"},
      {"org.workspaces.view", "abu"},
      {"workspace.create", "au"},
      {"workspace.update", "au"},
      {"workspace.delete", "au"},
      {"org.workspace.members.manage", "au"},
      {"org.billing.view", "ab"},
      {"org.billing.manage", "ab"},
      {"org.billing.waba.manage", "ab"},
      {"org.subscription.change", "ab"},
      {"org.subscription.cancel", "ab"},
      {"org.security.view", "abu"},
      {"org.security.sso.manage", "au"},
      {"org.knowledge.manage", "a"},
      {"org.audit_log.view", "au"},
  };
  return *t;
}

// ---- Table B: workspace-scoped actions -> rule kind. ----
enum class B {
  kAll,            // owner, manager, agent
  kMgrUnless,      // owner; manager unless <flag>
  kOwnerOnly,      // owner
  kMgr,            // owner, manager
  kVisible,        // owner, manager; agent if visible
  kViewAll,        // owner, manager; agent if contact_visibility = all
  kUsers,          // workspace.users.invite / role.change / remove: by target
};
struct BRow {
  B kind;
  const char* flag;  // for kMgrUnless
};
const std::map<std::string, BRow, std::less<>>& TableB() {
  static const auto* t = new std::map<std::string, BRow, std::less<>>{
      {"workspace.access", {B::kAll, nullptr}},
      {"snippet.use", {B::kAll, nullptr}},
      {"workspace.settings.view", {B::kMgrUnless, "no_ws_settings"}},
      {"workspace.settings.manage", {B::kMgrUnless, "no_ws_settings"}},
      {"workspace.users.view", {B::kMgrUnless, "no_ws_settings"}},
      {"workspace.users.invite", {B::kUsers, "no_ws_settings"}},
      {"workspace.users.role.change", {B::kUsers, "no_ws_settings"}},
      {"workspace.users.remove", {B::kUsers, "no_ws_settings"}},
      {"workspace.teams.manage", {B::kMgrUnless, "no_ws_settings"}},
      {"workspace.channels.add", {B::kMgrUnless, "no_ws_settings"}},
      {"workspace.teams.delete", {B::kOwnerOnly, nullptr}},
      {"workspace.channels.delete", {B::kOwnerOnly, nullptr}},
      {"workspace.integrations.delete", {B::kOwnerOnly, nullptr}},
      {"workspace.integrations.manage", {B::kMgrUnless, "no_integrations"}},
      {"developer_api.manage", {B::kMgrUnless, "no_integrations"}},
      {"webhook.manage", {B::kMgrUnless, "no_integrations"}},
      {"contact.delete", {B::kMgrUnless, "no_contact_delete"}},
      {"contact.export", {B::kMgrUnless, "no_data_export"}},
      {"data.export", {B::kMgrUnless, "no_data_export"}},
      {"contact.import", {B::kMgr, nullptr}},
      {"broadcast.manage", {B::kMgr, nullptr}},
      {"workflow.manage", {B::kMgr, nullptr}},
      {"snippet.manage", {B::kMgr, nullptr}},
      {"report.view", {B::kMgr, nullptr}},
      {"knowledge_source.view", {B::kMgr, nullptr}},
      {"knowledge_source.manage", {B::kMgr, nullptr}},
      {"ai_agent.manage", {B::kMgr, nullptr}},
      {"conversation.view", {B::kVisible, nullptr}},
      {"conversation.reply", {B::kVisible, nullptr}},
      {"conversation.assign", {B::kVisible, nullptr}},
      {"conversation.comment", {B::kVisible, nullptr}},
      {"contact.view", {B::kVisible, nullptr}},
      {"contact.edit", {B::kVisible, nullptr}},
      {"conversation.view_all", {B::kViewAll, nullptr}},
  };
  return *t;
}

char RoleLetter(std::string_view org_role) {
  if (org_role == "org_admin") return 'a';
  if (org_role == "billing_admin") return 'b';
  if (org_role == "user_admin") return 'u';
  if (org_role == "member") return 'm';
  return '?';
}

int WsRank(std::string_view role) {
  if (role == "owner") return 3;
  if (role == "manager") return 2;
  if (role == "agent") return 1;
  return 0;
}

// The string value of resource attribute `key`; *present false if absent (or not a string:
// the generator only produces strings).
std::string_view Attr(const policy::Request& r, std::string_view key, bool* present) {
  for (const auto& kv : r.resource_attrs) {
    if (kv.key == key && kv.value.kind == policy::Value::Kind::kString) {
      *present = true;
      return kv.value.s;
    }
  }
  *present = false;
  return {};
}

RefDecision Deny(std::string reason, bool spec) { return RefDecision{false, std::move(reason), spec}; }
RefDecision Allow() { return RefDecision{true, "granted", false}; }

bool IsSelf(const policy::Request& r) {
  bool has = false;
  std::string_view t = Attr(r, "target_user", &has);
  return has && t == r.user;
}

bool Locked(std::string_view status) {
  return status == "TRIAL_ENDED" || status == "FROZEN" || status == "CANCELED";
}

bool StillPossibleWhenLocked(std::string_view a) {
  return a == "org.view" || a == "org.settings.open" || a.starts_with("org.billing.") ||
         a.starts_with("org.subscription.");
}

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

RefScope ActionScope(std::string_view action) {
  if (TableA().count(action)) return RefScope::kOrg;
  if (TableB().count(action)) return RefScope::kWorkspace;
  return RefScope::kUnknown;
}

const std::vector<std::string>& SpecActions() {
  static const auto* v = [] {
    auto* out = new std::vector<std::string>();
    for (const auto& [a, r] : TableA()) out->push_back(a);
    for (const auto& [a, r] : TableB()) out->push_back(a);
    return out;
  }();
  return *v;
}

RefDecision ReferenceEvaluate(const MemoryFacts& world, const policy::Request& req) {
  const RefScope scope = ActionScope(req.action);
  // Order and edge cases: an action missing from the catalog is denied first.
  if (scope == RefScope::kUnknown) return Deny("unknown_action", true);
  // A workspace-scoped action asked without a workspace is denied.
  if (scope == RefScope::kWorkspace && req.workspace.empty()) return Deny("scope_required", true);
  if (req.org.empty() && req.workspace.empty()) return Deny("scope_required", true);

  // 1. Tenant isolation: resolve the scope.
  std::string_view org_id = req.org;
  const MemoryFacts::WorkspaceRec* ws = nullptr;
  if (!req.workspace.empty()) {
    auto wit = world.workspaces.find(req.workspace);
    if (wit == world.workspaces.end()) return Deny("not_found", true);
    ws = &wit->second;
    if (!req.org.empty() && req.org != ws->org) return Deny("scope_mismatch", true);
    org_id = ws->org;
  }
  auto oit = world.orgs.find(org_id);
  if (oit == world.orgs.end()) return Deny("not_found", true);
  const MemoryFacts::OrgRec& org = oit->second;
  auto mit = org.members.find(req.user);
  if (mit == org.members.end()) return Deny("not_member", true);
  const std::string& org_role = mit->second;

  // 2. Platform and subscription gates.
  if (org.suspended) return Deny("org_suspended", true);
  if (Locked(org.status) && !StillPossibleWhenLocked(req.action)) return Deny("org_locked", true);

  // 3. SSO gate.
  if (org.sso_enforced && !Contains(org.sso_exempt_roles, org_role)) {
    // Fails closed: an org without an IdP can never be satisfied.
    if (req.auth_method != "sso" || org.sso_idp.empty() || req.auth_idp != org.sso_idp) {
      return Deny("sso_required", true);
    }
    if (req.auth_age_s < 0 || req.auth_age_s >= 86400) return Deny("sso_session_expired", true);
  }

  bool has_new = false, has_target_role = false;
  const std::string_view new_role = Attr(req, "new_role", &has_new);
  const std::string_view target_role = Attr(req, "target_role", &has_target_role);

  // 4. Org-scoped actions: table A by org role, plus ceilings, self-modification, seats,
  // workspace slots, features.
  if (scope == RefScope::kOrg) {
    const std::string& roles = TableA().find(req.action)->second;
    const char letter = RoleLetter(org_role);
    if (roles.find(letter) == std::string::npos) return Deny("no_permission", false);
    const std::string_view a = req.action;
    // org.workspace.members.manage too: the daemon authorizes workspace membership writes
    // with it as an alternative to workspace.users.* (policies/respondio/README.md).
    if ((a == "org.users.role.assign" || a == "org.users.remove" ||
         a == "org.workspace.members.manage") &&
        IsSelf(req)) {
      return Deny("self_modification", false);
    }
    if (a == "org.users.invite" || a == "org.users.role.assign" || a == "org.users.remove") {
      // Only org_admin may assign or remove org_admin or billing_admin; user_admin may assign
      // member or user_admin only.
      if (letter != 'a') {
        auto high = [](std::string_view r) { return r == "org_admin" || r == "billing_admin"; };
        if ((has_new && high(new_role)) || (has_target_role && high(target_role))) {
          return Deny("role_ceiling", false);
        }
      }
    }
    if (a == "org.users.invite") {
      const int64_t members = org.member_count >= 0 ? org.member_count
                                                    : static_cast<int64_t>(org.members.size());
      if (members + org.pending_invitations >= org.seats) return Deny("seats_exhausted", false);
    }
    if (a == "workspace.create") {
      int64_t n = org.workspace_count;
      if (n < 0) {
        n = 0;
        for (const auto& [id, w] : world.workspaces) n += (w.org == org_id);
      }
      if (n >= org.workspace_limit) return Deny("workspace_limit", false);
    }
    if (a == "org.security.sso.manage" && !Contains(org.features, "sso")) {
      return Deny("feature_disabled", false);
    }
    return Allow();
  }

  // 5. Workspace-scoped actions: effective role = higher of own role and owner if org_admin;
  // flags only from the explicit membership (on equal rank the explicit one counts).
  const MemoryFacts::WorkspaceMember* own = nullptr;
  auto wm = ws->members.find(req.user);
  if (wm != ws->members.end()) own = &wm->second;
  std::string_view eff;
  bool implied = false;
  if (own) eff = own->role;
  if (org_role == "org_admin" && WsRank("owner") > WsRank(eff)) {
    eff = "owner";
    implied = true;
  }
  const int rank = WsRank(eff);
  if (rank == 0) return Deny("no_permission", false);
  auto flag = [&](const char* f) {
    return !implied && own && f != nullptr && Contains(own->flags, f);
  };
  std::string_view visibility = (!implied && own) ? std::string_view(own->contact_visibility) : "";
  if (visibility.empty()) visibility = "all";

  const BRow& row = TableB().find(req.action)->second;
  const std::string_view a = req.action;
  if ((a == "workspace.users.role.change" || a == "workspace.users.remove") && IsSelf(req)) {
    return Deny("self_modification", false);
  }
  if (a == "webhook.manage" && !Contains(org.features, "webhooks")) {
    return Deny("feature_disabled", false);
  }
  switch (row.kind) {
    case B::kAll:
      return Allow();
    case B::kOwnerOnly:
      return rank >= 3 ? Allow() : Deny("no_permission", false);
    case B::kMgr:
      return rank >= 2 ? Allow() : Deny("no_permission", false);
    case B::kMgrUnless:
      if (rank >= 3) return Allow();
      if (rank == 2) return flag(row.flag) ? Deny("restricted", false) : Allow();
      return Deny("no_permission", false);
    case B::kUsers: {
      const bool target_agent = !(has_target_role && WsRank(target_role) > 1) &&
                                !(has_new && WsRank(new_role) > 1);
      if (rank >= 3) return Allow();
      if (rank == 2 && target_agent) return flag(row.flag) ? Deny("restricted", false) : Allow();
      return Deny("no_permission", false);
    }
    case B::kVisible: {
      if (rank >= 2) return Allow();
      bool has_assignee = false, has_team = false;
      std::string_view assignee = Attr(req, "assignee", &has_assignee);
      std::string_view team = Attr(req, "team", &has_team);
      const bool mine = has_assignee && assignee == req.user;
      const bool unassigned = !has_assignee || assignee.empty();
      bool visible = false;
      if (visibility == "all") visible = true;
      else if (visibility == "assigned_only") visible = mine;
      else if (visibility == "assigned_or_unassigned") visible = mine || unassigned;
      else if (visibility == "assigned_or_team")
        visible = mine || (own && !own->team.empty() && has_team && team == own->team);
      return visible ? Allow() : Deny("no_permission", false);
    }
    case B::kViewAll:
      if (rank >= 2) return Allow();
      return visibility == "all" ? Allow() : Deny("no_permission", false);
  }
  return Deny("no_permission", false);
}

}  // namespace gatehouse::reliability
