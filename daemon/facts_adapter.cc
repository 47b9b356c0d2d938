#include "daemon/facts_adapter.h"

namespace gatehouse::daemon {

using policy::Lookup;

Lookup StoreFacts::Miss() noexcept {
  return reader_->error() ? Lookup::kError : Lookup::kNotFound;
}

size_t StoreFacts::Unpack(const store::StringListView& list, std::string_view* dst) noexcept {
  size_t n = 0;
  list.ForEach([&](std::string_view s) {
    if (n < kMaxList) {
      dst[n++] = s;
    } else {
      ++truncated_;
    }
  });
  return n;
}

Lookup StoreFacts::User(std::string_view user, policy::UserFacts* out) noexcept {
  store::UserView v;
  if (!reader_->GetUser(user, &v)) return Miss();
  out->id = v.id;
  out->email = v.email;
  out->email_verified = v.email_verified;
  return Lookup::kFound;
}

Lookup StoreFacts::Org(std::string_view org, policy::OrgFacts* out) noexcept {
  store::OrgView v;
  if (!reader_->GetOrg(org, &v)) return Miss();
  out->id = v.id;
  out->plan = v.plan;
  out->status = v.status;
  out->suspended = v.suspended;
  out->features = policy::StringList(features_.data(), Unpack(v.features, features_.data()));
  out->seats = v.seats;
  out->members = v.members;
  out->pending_invitations = v.pending_invitations;
  out->workspaces = v.workspaces;
  out->workspace_limit = v.workspace_limit;
  out->sso_enabled = v.sso.enabled;
  out->sso_enforced = v.sso.enforced;
  out->sso_idp = v.sso.idp;
  out->sso_exempt_roles =
      policy::StringList(exempt_.data(), Unpack(v.sso.exempt_roles, exempt_.data()));
  return Lookup::kFound;
}

Lookup StoreFacts::Workspace(std::string_view ws, policy::WorkspaceFacts* out) noexcept {
  store::WorkspaceView v;
  if (!reader_->GetWorkspace(ws, &v)) return Miss();
  out->id = v.id;
  out->org = v.org;
  return Lookup::kFound;
}

Lookup StoreFacts::OrgMembership(std::string_view user, std::string_view org,
                                 policy::OrgMembershipFacts* out) noexcept {
  if (memo_snapshot_ != 0 && memo_reader_ == reader_ && memo_snapshot_ == reader_->SnapshotId() &&
      user == memo_user_ && org == memo_org_) {
    ++org_role_hits_;
    out->role = memo_org_role_;
    return Lookup::kFound;
  }
  store::OrgMemberView v;
  if (!reader_->GetOrgMember(user, org, &v)) return Miss();
  out->role = v.role;
  return Lookup::kFound;
}

Lookup StoreFacts::WorkspaceMembership(std::string_view user, std::string_view ws,
                                       policy::WorkspaceMembershipFacts* out) noexcept {
  store::WorkspaceMemberView v;
  memo_snapshot_ = 0;
  if (!reader_->GetWorkspaceMember(user, ws, &v)) return Miss();
  if (!v.org_role.empty() && !v.org.empty()) {
    memo_reader_ = reader_;
    memo_snapshot_ = reader_->SnapshotId();
    memo_user_ = v.user;
    memo_org_ = v.org;
    memo_org_role_ = v.org_role;
  }
  out->role = v.role;
  out->team = v.team;
  out->flags = policy::StringList(flags_.data(), Unpack(v.flags, flags_.data()));
  out->contact_visibility = v.contact_visibility;
  out->org = v.org;  // denormalized by the store; saves the evaluator a workspace read
  return Lookup::kFound;
}

namespace {
policy::Value FromAttr(const store::AttrValue& a) {
  switch (a.kind) {
    case store::AttrValue::Kind::kNull: return policy::Value::Null();
    case store::AttrValue::Kind::kBool: return policy::Value::Bool(a.b);
    case store::AttrValue::Kind::kInt: return policy::Value::Int(a.i);
    case store::AttrValue::Kind::kDouble: return policy::Value::Double(a.d);
    case store::AttrValue::Kind::kString: return policy::Value::String(a.s);
  }
  return policy::Value();
}
}  // namespace

Lookup StoreFacts::Attr(Entity entity, std::string_view id, std::string_view key,
                        policy::Value* out) noexcept {
  store::AttrsView attrs;
  switch (entity) {
    case Entity::kUser:
      // Users carry no free-form attributes in the store (model.md); absent.
      return reader_->error() ? Lookup::kError : Lookup::kNotFound;
    case Entity::kOrg: {
      store::OrgView v;
      if (!reader_->GetOrg(id, &v)) return Miss();
      attrs = v.attrs;
      break;
    }
    case Entity::kWorkspace: {
      store::WorkspaceView v;
      if (!reader_->GetWorkspace(id, &v)) return Miss();
      attrs = v.attrs;
      break;
    }
  }
  store::AttrValue a;
  if (!attrs.Find(key, &a)) return Lookup::kNotFound;
  *out = FromAttr(a);
  return Lookup::kFound;
}

}  // namespace gatehouse::daemon
