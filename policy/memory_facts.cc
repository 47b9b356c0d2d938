#include "policy/memory_facts.h"

namespace gatehouse::policy {

Value OwnedValue::View() const {
  switch (kind) {
    case Value::Kind::kMissing: return Value();
    case Value::Kind::kNull: return Value::Null();
    case Value::Kind::kBool: return Value::Bool(b);
    case Value::Kind::kInt: return Value::Int(i);
    case Value::Kind::kDouble: return Value::Double(d);
    case Value::Kind::kString: return Value::String(s);
  }
  return Value();
}

void MemoryFacts::Finalize() {
  for (auto& [id, o] : orgs) {
    o.feature_views.assign(o.features.begin(), o.features.end());
    o.exempt_views.assign(o.sso_exempt_roles.begin(), o.sso_exempt_roles.end());
    o.workspaces_counted = 0;
  }
  for (auto& [id, w] : workspaces) {
    auto it = orgs.find(w.org);
    if (it != orgs.end()) ++it->second.workspaces_counted;
    for (auto& [user, m] : w.members) m.flag_views.assign(m.flags.begin(), m.flags.end());
  }
}

Lookup MemoryFacts::User(std::string_view user, UserFacts* out) noexcept {
  ++lookups;
  if (fail) return Lookup::kError;
  auto it = users.find(user);
  if (it == users.end()) return Lookup::kNotFound;
  out->id = it->first;
  out->email = it->second.email;
  out->email_verified = it->second.email_verified;
  return Lookup::kFound;
}

Lookup MemoryFacts::Org(std::string_view org, OrgFacts* out) noexcept {
  ++lookups;
  if (fail) return Lookup::kError;
  auto it = orgs.find(org);
  if (it == orgs.end()) return Lookup::kNotFound;
  const MemoryFacts::OrgRec& o = it->second;
  out->id = it->first;
  out->plan = o.plan;
  out->status = o.status;
  out->suspended = o.suspended;
  out->features = o.feature_views;
  out->seats = o.seats;
  out->members = o.member_count >= 0 ? o.member_count : static_cast<int64_t>(o.members.size());
  out->pending_invitations = o.pending_invitations;
  out->workspaces = o.workspace_count >= 0 ? o.workspace_count : o.workspaces_counted;
  out->workspace_limit = o.workspace_limit;
  out->sso_enabled = o.sso_enabled;
  out->sso_enforced = o.sso_enforced;
  out->sso_idp = o.sso_idp;
  out->sso_exempt_roles = o.exempt_views;
  return Lookup::kFound;
}

Lookup MemoryFacts::Workspace(std::string_view ws, WorkspaceFacts* out) noexcept {
  ++lookups;
  if (fail) return Lookup::kError;
  auto it = workspaces.find(ws);
  if (it == workspaces.end()) return Lookup::kNotFound;
  out->id = it->first;
  out->org = it->second.org;
  return Lookup::kFound;
}

Lookup MemoryFacts::OrgMembership(std::string_view user, std::string_view org,
                                  OrgMembershipFacts* out) noexcept {
  ++lookups;
  if (fail) return Lookup::kError;
  auto it = orgs.find(org);
  if (it == orgs.end()) return Lookup::kNotFound;
  auto m = it->second.members.find(user);
  if (m == it->second.members.end()) return Lookup::kNotFound;
  out->role = m->second;
  return Lookup::kFound;
}

Lookup MemoryFacts::WorkspaceMembership(std::string_view user, std::string_view ws,
                                        WorkspaceMembershipFacts* out) noexcept {
  ++lookups;
  if (fail) return Lookup::kError;
  auto it = workspaces.find(ws);
  if (it == workspaces.end()) return Lookup::kNotFound;
  auto m = it->second.members.find(user);
  if (m == it->second.members.end()) return Lookup::kNotFound;
  out->role = m->second.role;
  out->team = m->second.team;
  out->flags = m->second.flag_views;
  out->contact_visibility = m->second.contact_visibility;
  out->org = it->second.org;
  return Lookup::kFound;
}

Lookup MemoryFacts::Attr(Entity entity, std::string_view id, std::string_view key,
                         Value* out) noexcept {
  ++lookups;
  if (fail) return Lookup::kError;
  const OwnedAttrs* attrs = nullptr;
  switch (entity) {
    case Entity::kUser: {
      auto it = users.find(id);
      if (it != users.end()) attrs = &it->second.attrs;
      break;
    }
    case Entity::kOrg: {
      auto it = orgs.find(id);
      if (it != orgs.end()) attrs = &it->second.attrs;
      break;
    }
    case Entity::kWorkspace: {
      auto it = workspaces.find(id);
      if (it != workspaces.end()) attrs = &it->second.attrs;
      break;
    }
  }
  if (!attrs) return Lookup::kNotFound;
  auto a = attrs->find(key);
  if (a == attrs->end()) return Lookup::kNotFound;
  *out = a->second.View();
  return Lookup::kFound;
}

}  // namespace gatehouse::policy
