// The ten invariants of shared/spec/model.md, each with an accepted and a refused write; a
// refused write changes nothing (revision and data). Runs against both backends.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "store/store.h"
#include "store/store_test_util.h"

namespace gatehouse::store {
namespace {

using testing::Dump;
using testing::R;
using testing::S;
using testing::TestStore;

class InvariantsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { Reopen({}); }
  void Reopen(Options o) { ts_ = TestStore::Open(GetParam(), std::move(o)); }
  Store& st() { return *ts_.store; }

  WriteResult W(WriteRequest r) { return st().Write(std::move(r)); }
  void Ok(WriteRequest r, WriteResult* out = nullptr) {
    const std::string op = r.op;
    WriteResult res = W(std::move(r));
    ASSERT_TRUE(res.status.ok()) << op << ": " << res.status.ToString();
    EXPECT_GT(res.rev, 0u);
    EXPECT_EQ(testing::OrgRoleMismatches(st(), orgs_), "") << "after " << op;
    if (out) *out = res;
  }
  // Expects a refusal with the code (and invariant) and that nothing changed.
  void Refused(WriteRequest r, Code code, int invariant = -1, std::string_view needle = {}) {
    const std::string before = Dump(st(), users_, orgs_);
    const uint64_t rev = st().Revision();
    const std::string op = r.op;
    WriteResult res = W(std::move(r));
    EXPECT_EQ(res.status.code(), code) << op << ": " << res.status.ToString();
    if (invariant >= 0) {
      EXPECT_EQ(res.status.invariant(), invariant) << res.status.ToString();
    }
    if (!needle.empty()) {
      EXPECT_NE(res.status.message().find(needle), std::string::npos) << res.status.message();
    }
    EXPECT_EQ(res.rev, 0u);
    EXPECT_TRUE(res.token.empty());
    EXPECT_EQ(st().Revision(), rev) << op;
    EXPECT_EQ(Dump(st(), users_, orgs_), before) << op;
    EXPECT_EQ(testing::OrgRoleMismatches(st(), orgs_), "") << "after refused " << op;
  }
  void User(const std::string& id, bool verify = true) {
    Ok(R("user.register", {{"user", id}, {"email", id + "@Example.com"}}));
    if (verify) Ok(R("user.verify_email", {{"user", id}}));
    users_.push_back(id);
  }
  std::string Org(const std::string& id, const std::string& creator) {
    WriteResult res;
    Ok(R("org.create", {{"user", creator}, {"org", id}, {"name", id + " Inc"}}), &res);
    orgs_.push_back(id);
    return res.workspace;
  }
  void Seats(const std::string& org, int64_t seats, int64_t ws_limit = 5) {
    WriteRequest r = R("org.set_subscription", {{"org", org}});
    r.seats = seats;
    r.workspace_limit = ws_limit;
    Ok(r);
  }
  void AddMember(const std::string& org, const std::string& user, const std::string& role) {
    // Operator path: invite + accept.
    WriteRequest inv = R("org.invite", {{"org", org}, {"email", user + "@example.COM"}, {"role", role}});
    WriteResult res;
    Ok(inv, &res);
    Ok(R("invite.accept", {{"user", user}, {"token", res.token}}));
  }
  std::string OrgRole(const std::string& org, const std::string& user) {
    auto t = st().NewReadTxn();
    EXPECT_TRUE(t->Renew());
    OrgMemberView m;
    return t->GetOrgMember(user, org, &m) ? S(m.role) : "";
  }
  bool WsMember(const std::string& ws, const std::string& user, WorkspaceMemberView* out = nullptr,
                std::string* flags = nullptr, std::string* cv = nullptr) {
    auto t = st().NewReadTxn();
    EXPECT_TRUE(t->Renew());
    WorkspaceMemberView m;
    bool found = t->GetWorkspaceMember(user, ws, &m);
    if (found && flags) *flags = testing::ListStr(m.flags);
    if (found && cv) *cv = S(m.contact_visibility);
    (void)out;
    return found;
  }
  OrgView org_copy_;
  uint32_t Counter(const std::string& org, char which) {
    auto t = st().NewReadTxn();
    EXPECT_TRUE(t->Renew());
    OrgView v;
    if (!t->GetOrg(org, &v)) return 9999;
    return which == 'm' ? v.members : which == 'p' ? v.pending_invitations : v.workspaces;
  }

  TestStore ts_;
  std::vector<std::string> users_, orgs_;
};

TEST_P(InvariantsTest, RegisterAndEmailUniqueCaseInsensitive) {
  User("alice");
  Refused(R("user.register", {{"user", "alice2"}, {"email", "ALICE@example.com"}}), Code::kConflict, -1, "email");
  Refused(R("user.register", {{"user", "alice"}, {"email", "other@example.com"}}), Code::kConflict);
  auto t = st().NewReadTxn();
  ASSERT_TRUE(t->Renew());
  UserView u;
  ASSERT_TRUE(t->FindUserByEmail("Alice@EXAMPLE.com", &u));
  EXPECT_EQ(u.id, "alice");
  EXPECT_TRUE(u.email_verified);
}

TEST_P(InvariantsTest, IdsAreValidated) {
  Refused(R("user.register", {{"user", ""}, {"email", "a@b.c"}}), Code::kBadRequest, -1, "'user'");
  Refused(R("user.register", {{"user", std::string(129, 'x')}, {"email", "a@b.c"}}), Code::kBadRequest, -1, "'user'");
  Refused(R("user.register", {{"user", "a\nb"}, {"email", "a@b.c"}}), Code::kBadRequest, -1, "'user'");
  Refused(R("user.register", {{"user", "bad\xff"}, {"email", "a@b.c"}}), Code::kBadRequest, -1, "'user'");
  Refused(R("user.register", {{"user", "ok"}, {"email", "no-at-sign"}}), Code::kBadRequest, -1, "'email'");
  Refused(R("no.such_op"), Code::kBadRequest, -1, "op");
  Ok(R("user.register", {{"user", std::string(128, 'x')}, {"email", "x@b.c"}}));
  Ok(R("user.verify_email", {{"user", std::string(128, 'x')}}));
  // Generated ids stay valid ids even for a 128-byte org id.
  WriteResult res;
  Ok(R("org.create", {{"user", std::string(128, 'x')}, {"org", std::string(128, 'o')}, {"name", "Long"}}), &res);
  EXPECT_LE(res.workspace.size(), 128u);
  Ok(R("workspace.update", {{"workspace", res.workspace}, {"name", "Renamed"}}));
  Ok(R("org.invite", {{"org", std::string(128, 'o')}, {"email", "q@b.c"}, {"role", "member"}}), &res);
  EXPECT_LE(res.invitation.size(), 128u);
  Ok(R("invite.revoke", {{"invitation", res.invitation}}));
}

TEST_P(InvariantsTest, Inv1SignUpCreatesOrgAtomically) {
  User("alice");
  const std::string ws = Org("acme", "alice");
  EXPECT_EQ(ws, "acme-default");
  auto t = st().NewReadTxn();
  ASSERT_TRUE(t->Renew());
  OrgView o;
  ASSERT_TRUE(t->GetOrg("acme", &o));
  EXPECT_EQ(o.status, "TRIAL");
  EXPECT_EQ(o.creator, "alice");
  EXPECT_EQ(o.members, 1u);
  EXPECT_EQ(o.workspaces, 1u);
  EXPECT_TRUE(o.sso.exempt_roles.Contains("org_admin"));
  EXPECT_TRUE(o.sso.exempt_roles.Contains("user_admin"));
  OrgMemberView om;
  ASSERT_TRUE(t->GetOrgMember("alice", "acme", &om));
  EXPECT_EQ(om.role, "org_admin");
  WorkspaceView w;
  ASSERT_TRUE(t->GetWorkspace(ws, &w));
  EXPECT_EQ(w.name, "My Workspace");
  EXPECT_EQ(w.org, "acme");
  WorkspaceMemberView wm;
  ASSERT_TRUE(t->GetWorkspaceMember("alice", ws, &wm));
  EXPECT_EQ(wm.role, "owner");
  EXPECT_EQ(wm.org, "acme");
  UserView u;
  ASSERT_TRUE(t->GetUser("alice", &u));
  EXPECT_EQ(u.orgs_created, 1u);
}

TEST_P(InvariantsTest, Inv1Refusals) {
  User("bob", /*verify=*/false);
  Refused(R("org.create", {{"user", "bob"}, {"org", "b1"}, {"name", "B"}}), Code::kForbidden, 1, "verify");
  Ok(R("user.verify_email", {{"user", "bob"}}));
  WriteResult res;
  WriteRequest named = R("org.create", {{"user", "bob"}, {"org", "b1"}, {"name", "B"}, {"workspace", "main"}});
  named.workspace_name = "Main";
  Ok(named, &res);
  orgs_.push_back("b1");
  EXPECT_EQ(res.workspace, "main");
  Refused(R("org.create", {{"user", "bob"}, {"org", "b2"}, {"name", "B2"}}), Code::kLimitExceeded, 1, "allowance");
  WriteRequest allow = R("user.set_org_allowance", {{"user", "bob"}});
  allow.allowance = 2;
  Ok(allow);
  Refused(R("org.create", {{"user", "bob"}, {"org", "b1"}, {"name", "again"}}), Code::kConflict);
  Refused(R("org.create", {{"user", "nobody"}, {"org", "b3"}, {"name", "N"}}), Code::kNotFound);
  Ok(R("org.create", {{"user", "bob"}, {"org", "b2"}, {"name", "B2"}}));
}

TEST_P(InvariantsTest, Inv2LastOrgAdmin) {
  User("alice");
  User("bob");
  Org("acme", "alice");
  Refused(R("org.set_role", {{"org", "acme"}, {"user", "alice"}, {"role", "member"}}), Code::kConflict, 2, "last org_admin");
  Refused(R("org.remove_member", {{"org", "acme"}, {"user", "alice"}}), Code::kConflict, 2);
  Refused(R("org.leave", {{"org", "acme"}, {"user", "alice"}}), Code::kConflict, 2);
  AddMember("acme", "bob", "org_admin");
  Ok(R("org.set_role", {{"org", "acme"}, {"user", "alice"}, {"role", "member"}}));
  EXPECT_EQ(OrgRole("acme", "alice"), "member");
  Refused(R("org.leave", {{"org", "acme"}, {"user", "bob"}}), Code::kConflict, 2);
  Ok(R("org.leave", {{"org", "acme"}, {"user", "alice"}}));
  EXPECT_EQ(OrgRole("acme", "alice"), "");
}

TEST_P(InvariantsTest, Inv3WorkspaceMembershipNeedsOrgMembership) {
  User("alice");
  User("carol");
  const std::string ws = Org("acme", "alice");
  WriteRequest with_actor = R("workspace.set_member", {{"workspace", ws}, {"user", "carol"}, {"role", "agent"}, {"actor", "alice"}});
  Refused(with_actor, Code::kConflict, 3, "invite");
  // Operator direct add: joins the org as member.
  Ok(R("workspace.set_member", {{"workspace", ws}, {"user", "carol"}, {"role", "agent"}}));
  EXPECT_EQ(OrgRole("acme", "carol"), "member");
  EXPECT_TRUE(WsMember(ws, "carol"));
  EXPECT_EQ(Counter("acme", 'm'), 2u);
}

TEST_P(InvariantsTest, Inv3OperatorAddIsSubjectToSeats) {
  User("alice");
  User("carol");
  const std::string ws = Org("acme", "alice");
  Seats("acme", 1);
  Refused(R("workspace.set_member", {{"workspace", ws}, {"user", "carol"}, {"role", "agent"}}), Code::kLimitExceeded, 5);
}

TEST_P(InvariantsTest, Inv4RemovalCascadesInThatOrgOnly) {
  User("alice");
  User("bob");
  User("dave");
  const std::string w1 = Org("acme", "alice");
  const std::string w3 = Org("beta", "bob");
  Ok(R("workspace.create", {{"org", "acme"}, {"workspace", "acme-2"}, {"name", "Second"}}));
  AddMember("acme", "dave", "member");
  AddMember("beta", "dave", "member");
  Ok(R("workspace.set_member", {{"workspace", w1}, {"user", "dave"}, {"role", "agent"}}));
  Ok(R("workspace.set_member", {{"workspace", "acme-2"}, {"user", "dave"}, {"role", "manager"}}));
  Ok(R("workspace.set_member", {{"workspace", w3}, {"user", "dave"}, {"role", "agent"}}));
  {
    auto t = st().NewReadTxn();
    ASSERT_TRUE(t->Renew());
    std::vector<WorkspaceMemberView> mine;
    ASSERT_TRUE(t->ListWorkspacesOfUserInOrg("dave", "acme", &mine));
    EXPECT_EQ(mine.size(), 2u);
  }
  Refused(R("org.remove_member", {{"org", "acme"}, {"user", "nobody"}}), Code::kNotFound);
  Ok(R("org.remove_member", {{"org", "acme"}, {"user", "dave"}}));
  EXPECT_FALSE(WsMember(w1, "dave"));
  EXPECT_FALSE(WsMember("acme-2", "dave"));
  EXPECT_TRUE(WsMember(w3, "dave"));
  EXPECT_EQ(OrgRole("beta", "dave"), "member");
  auto t = st().NewReadTxn();
  ASSERT_TRUE(t->Renew());
  std::vector<WorkspaceMemberView> left;
  ASSERT_TRUE(t->ListWorkspacesOfUserInOrg("dave", "acme", &left));
  EXPECT_TRUE(left.empty());
  WorkspaceView w;
  ASSERT_TRUE(t->GetWorkspace(w1, &w));
  EXPECT_EQ(w.members, 1u);  // alice only
  OrgView o;
  ASSERT_TRUE(t->GetOrg("acme", &o));
  EXPECT_EQ(o.members, 1u);
}

TEST_P(InvariantsTest, Inv5Seats) {
  User("alice");
  User("bob");
  User("carol");
  Org("acme", "alice");
  Seats("acme", 2);
  WriteResult res;
  Ok(R("org.invite", {{"org", "acme"}, {"email", "bob@example.com"}, {"role", "member"}}), &res);
  EXPECT_EQ(Counter("acme", 'p'), 1u);
  Refused(R("org.invite", {{"org", "acme"}, {"email", "carol@example.com"}, {"role", "member"}}), Code::kLimitExceeded, 5, "seats");
  // Lowering seats below usage is allowed; it blocks acceptance until usage fits.
  Seats("acme", 1);
  Refused(R("invite.accept", {{"user", "bob"}, {"token", res.token}}), Code::kLimitExceeded, 5);
  Seats("acme", 2);
  Ok(R("invite.accept", {{"user", "bob"}, {"token", res.token}}));
  EXPECT_EQ(Counter("acme", 'm'), 2u);
  EXPECT_EQ(Counter("acme", 'p'), 0u);
}

TEST_P(InvariantsTest, Inv6WorkspaceLimitAndLastWorkspace) {
  User("alice");
  User("bob");
  const std::string w1 = Org("acme", "alice");
  Seats("acme", 10, 2);
  Ok(R("workspace.create", {{"org", "acme"}, {"workspace", "w2"}, {"name", "Two"}}));
  Refused(R("workspace.create", {{"org", "acme"}, {"workspace", "w3"}, {"name", "Three"}}), Code::kLimitExceeded, 6);
  Refused(R("workspace.create", {{"org", "acme"}, {"workspace", "w2"}, {"name", "dup"}}), Code::kConflict);
  AddMember("acme", "bob", "member");
  Ok(R("workspace.set_member", {{"workspace", "w2"}, {"user", "bob"}, {"role", "agent"}}));
  Ok(R("workspace.delete", {{"workspace", "w2"}}));
  EXPECT_FALSE(WsMember("w2", "bob"));
  EXPECT_EQ(OrgRole("acme", "bob"), "member");
  EXPECT_EQ(Counter("acme", 'w'), 1u);
  {
    auto t = st().NewReadTxn();
    ASSERT_TRUE(t->Renew());
    std::vector<WorkspaceMemberView> v;
    ASSERT_TRUE(t->ListWorkspacesOfUserInOrg("bob", "acme", &v));
    EXPECT_TRUE(v.empty());
  }
  Refused(R("workspace.delete", {{"workspace", w1}}), Code::kConflict, 6, "last workspace");
}

TEST_P(InvariantsTest, Inv7InvitationStateMachine) {
  User("alice");
  User("bob");
  const std::string ws = Org("acme", "alice");
  WriteRequest inv = R("org.invite", {{"org", "acme"}, {"email", "Bob@Example.com"}, {"role", "user_admin"}, {"actor", "alice"}});
  inv.grants = std::vector<WorkspaceGrant>{{ws, "manager"}};
  WriteResult res;
  Ok(inv, &res);
  EXPECT_EQ(res.token.size(), 64u);
  EXPECT_FALSE(res.invitation.empty());
  // One PENDING per (org, email), case-insensitively.
  Refused(R("org.invite", {{"org", "acme"}, {"email", "BOB@example.com"}, {"role", "member"}}), Code::kConflict, 7, "PENDING");
  // Resend: new token, the old one stops working.
  WriteResult res2;
  Ok(R("invite.resend", {{"invitation", res.invitation}}), &res2);
  EXPECT_NE(res2.token, res.token);
  Refused(R("invite.accept", {{"user", "bob"}, {"token", res.token}}), Code::kNotFound);
  Refused(R("invite.accept", {{"user", "bob"}, {"token", "garbage"}}), Code::kNotFound);
  Refused(R("invite.accept", {{"user", "bob"}}), Code::kBadRequest, -1, "token");
  Ok(R("invite.accept", {{"user", "bob"}, {"token", res2.token}}));
  EXPECT_EQ(OrgRole("acme", "bob"), "user_admin");
  EXPECT_TRUE(WsMember(ws, "bob"));
  auto t = st().NewReadTxn();
  ASSERT_TRUE(t->Renew());
  InvitationView iv;
  ASSERT_TRUE(t->GetInvitation(res.invitation, &iv));
  EXPECT_EQ(iv.state, "ACCEPTED");
  EXPECT_EQ(iv.accepted_by, "bob");
  EXPECT_EQ(iv.invited_by, "alice");
  t->Reset();
  // ACCEPTED is terminal.
  Refused(R("invite.accept", {{"user", "bob"}, {"token", res2.token}}), Code::kConflict, 7);
  Refused(R("invite.revoke", {{"invitation", res.invitation}}), Code::kConflict, 7);
  Refused(R("invite.resend", {{"invitation", res.invitation}}), Code::kConflict, 7);
}

TEST_P(InvariantsTest, Inv7RevokeExpireAndEmailMatch) {
  User("alice");
  User("bob");
  User("eve");
  User("unverified", false);
  Org("acme", "alice");
  WriteResult res;
  Ok(R("org.invite", {{"org", "acme"}, {"email", "bob@example.com"}, {"role", "member"}}), &res);
  Refused(R("invite.accept", {{"user", "eve"}, {"token", res.token}}), Code::kForbidden, 7, "email");
  Ok(R("invite.revoke", {{"invitation", res.invitation}}));
  EXPECT_EQ(Counter("acme", 'p'), 0u);
  Refused(R("invite.accept", {{"user", "bob"}, {"token", res.token}}), Code::kConflict, 7, "REVOKED");
  // Unverified email.
  Ok(R("org.invite", {{"org", "acme"}, {"email", "unverified@example.com"}, {"role", "member"}}), &res);
  Refused(R("invite.accept", {{"user", "unverified"}, {"token", res.token}}), Code::kForbidden, 7);
  // Expiry by clock.
  WriteRequest shortlived = R("org.invite", {{"org", "acme"}, {"email", "bob@example.com"}, {"role", "member"}});
  shortlived.ttl_s = 60;
  Ok(shortlived, &res);
  *ts_.now += 61;
  Refused(R("invite.accept", {{"user", "bob"}, {"token", res.token}}), Code::kConflict, 7, "expired");
  {
    auto t = st().NewReadTxn();
    ASSERT_TRUE(t->Renew());
    InvitationView iv;
    ASSERT_TRUE(t->GetInvitation(res.invitation, &iv));
    EXPECT_EQ(iv.state, "EXPIRED");
  }
  // An expired invitation does not block a new one; resend revives it.
  WriteResult res2;
  Ok(R("invite.resend", {{"invitation", res.invitation}}), &res2);
  Ok(R("invite.accept", {{"user", "bob"}, {"token", res2.token}}));
  EXPECT_EQ(OrgRole("acme", "bob"), "member");
  Refused(R("org.invite", {{"org", "acme"}, {"email", "bob@example.com"}, {"role", "member"}}), Code::kConflict, -1, "already a member");
}

TEST_P(InvariantsTest, Inv7LockedOrSuspendedOrg) {
  User("alice");
  User("bob");
  Org("acme", "alice");
  WriteResult res;
  Ok(R("org.invite", {{"org", "acme"}, {"email", "bob@example.com"}, {"role", "member"}}), &res);
  WriteRequest freeze = R("org.set_subscription", {{"org", "acme"}});
  freeze.status = "FROZEN";
  Ok(freeze);
  Refused(R("org.invite", {{"org", "acme"}, {"email", "x@example.com"}, {"role", "member"}}), Code::kConflict, 7, "locked");
  Refused(R("invite.accept", {{"user", "bob"}, {"token", res.token}}), Code::kConflict, 7, "locked");
  WriteRequest active = R("org.set_subscription", {{"org", "acme"}});
  active.status = "ACTIVE";
  Ok(active);
  Ok(R("org.suspend", {{"org", "acme"}}));
  Refused(R("invite.accept", {{"user", "bob"}, {"token", res.token}}), Code::kConflict, 7, "suspended");
  Ok(R("org.unsuspend", {{"org", "acme"}}));
  Ok(R("invite.accept", {{"user", "bob"}, {"token", res.token}}));
}

TEST_P(InvariantsTest, Inv8RolesFitScope) {
  User("alice");
  User("bob");
  const std::string ws = Org("acme", "alice");
  AddMember("acme", "bob", "member");
  WriteRequest mgr = R("workspace.set_member", {{"workspace", ws}, {"user", "bob"}, {"role", "manager"}});
  mgr.restrictions = std::map<std::string, std::string>{{"no_data_export", "true"}, {"no_ws_settings", "true"}};
  Ok(mgr);
  std::string flags, cv;
  ASSERT_TRUE(WsMember(ws, "bob", nullptr, &flags, &cv));
  EXPECT_EQ(flags, "no_ws_settings,no_data_export");
  EXPECT_EQ(cv, "");
  WriteRequest bad = R("workspace.set_member", {{"workspace", ws}, {"user", "bob"}, {"role", "manager"}});
  bad.restrictions = std::map<std::string, std::string>{{"contact_visibility", "assigned_only"}};
  Refused(bad, Code::kBadRequest, 8, "restrictions.contact_visibility");
  WriteRequest bad2 = R("workspace.set_member", {{"workspace", ws}, {"user", "bob"}, {"role", "agent"}});
  bad2.restrictions = std::map<std::string, std::string>{{"no_data_export", "true"}};
  Refused(bad2, Code::kBadRequest, 8, "restrictions.no_data_export");
  Refused(R("workspace.set_member", {{"workspace", ws}, {"user", "bob"}, {"role", "wizard"}}), Code::kBadRequest, -1, "role");
  Refused(R("org.set_role", {{"org", "acme"}, {"user", "bob"}, {"role", "wizard"}}), Code::kBadRequest, -1, "role");
  // Role change clears flags that no longer apply.
  WriteRequest agent = R("workspace.set_member", {{"workspace", ws}, {"user", "bob"}, {"role", "agent"}});
  Ok(agent);
  ASSERT_TRUE(WsMember(ws, "bob", nullptr, &flags, &cv));
  EXPECT_EQ(flags, "");
  EXPECT_EQ(cv, "all");
  WriteRequest vis = R("workspace.set_member", {{"workspace", ws}, {"user", "bob"}, {"role", "agent"}, {"team", "t1"}});
  vis.restrictions = std::map<std::string, std::string>{{"contact_visibility", "assigned_or_team"}};
  Ok(vis);
  ASSERT_TRUE(WsMember(ws, "bob", nullptr, &flags, &cv));
  EXPECT_EQ(cv, "assigned_or_team");
  Ok(R("workspace.set_member", {{"workspace", ws}, {"user", "bob"}, {"role", "manager"}}));
  ASSERT_TRUE(WsMember(ws, "bob", nullptr, &flags, &cv));
  EXPECT_EQ(cv, "");
  EXPECT_EQ(flags, "");
}

TEST_P(InvariantsTest, Inv9TenancyImmutable) {
  User("alice");
  User("bob");
  const std::string wa = Org("acme", "alice");
  const std::string wb = Org("beta", "bob");
  WriteRequest inv = R("org.invite", {{"org", "acme"}, {"email", "x@example.com"}, {"role", "member"}});
  inv.grants = std::vector<WorkspaceGrant>{{wb, "agent"}};
  Refused(inv, Code::kConflict, 9, "another org");
  Refused(R("workspace.update", {{"workspace", wa}, {"org", "beta"}, {"name", "moved"}}), Code::kConflict, 9);
  Ok(R("workspace.update", {{"workspace", wa}, {"name", "Renamed"}}));
  auto t = st().NewReadTxn();
  ASSERT_TRUE(t->Renew());
  WorkspaceView w;
  ASSERT_TRUE(t->GetWorkspace(wa, &w));
  EXPECT_EQ(w.name, "Renamed");
  EXPECT_EQ(w.org, "acme");
}

TEST_P(InvariantsTest, Inv10ChangeLog) {
  User("alice");
  Org("acme", "alice");
  WriteResult res;
  Ok(R("org.invite", {{"org", "acme"}, {"email", "bob@example.com"}, {"role", "member"}, {"actor", "alice"}}), &res);
  const uint64_t rev = st().Revision();
  Refused(R("org.set_role", {{"org", "acme"}, {"user", "alice"}, {"role", "member"}}), Code::kConflict, 2);
  auto t = st().NewReadTxn();
  ASSERT_TRUE(t->Renew());
  std::vector<ChangeView> changes;
  ASSERT_TRUE(t->ReadChanges(0, 100, &changes));
  ASSERT_EQ(changes.size(), rev);
  for (size_t i = 0; i < changes.size(); ++i) EXPECT_EQ(changes[i].rev, i + 1);
  const ChangeView& last = changes.back();
  EXPECT_EQ(last.op, "org.invite");
  const std::string json(last.json);
  EXPECT_EQ(json.rfind("{\"rev\":" + std::to_string(rev) + ",\"op\":\"org.invite\",\"actor\":\"alice\",\"time\":", 0), 0u) << json;
  EXPECT_NE(json.find("\"entity\":\"invitation\""), std::string::npos);
  EXPECT_NE(json.find("\"before\":null"), std::string::npos);
  EXPECT_NE(json.find("\"entity\":\"org\""), std::string::npos);
  EXPECT_EQ(json.find(res.token), std::string::npos);
  EXPECT_EQ(json.find("token"), std::string::npos);
  // org.create records every entity it touches.
  const std::string create(changes[2].json);
  EXPECT_EQ(changes[2].op, "org.create");
  for (const char* e : {"\"org\"", "\"org_member\"", "\"workspace\"", "\"workspace_member\"", "\"user\""}) {
    EXPECT_NE(create.find(std::string("\"entity\":") + e), std::string::npos) << e;
  }
  EXPECT_NE(create.find("\"actor\":null"), std::string::npos);
  std::vector<ChangeView> tail;
  ASSERT_TRUE(t->ReadChanges(rev - 1, 10, &tail));
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].rev, rev);
}

TEST_P(InvariantsTest, OrgDeleteRemovesEverything) {
  User("alice");
  User("bob");
  const std::string ws = Org("acme", "alice");
  const std::string wb = Org("beta", "bob");
  AddMember("acme", "bob", "member");
  Ok(R("workspace.set_member", {{"workspace", ws}, {"user", "bob"}, {"role", "agent"}}));
  WriteResult res;
  Ok(R("org.invite", {{"org", "acme"}, {"email", "zed@example.com"}, {"role", "member"}}), &res);
  Refused(R("org.delete", {{"org", "nope"}}), Code::kNotFound);
  Ok(R("org.delete", {{"org", "acme"}}));
  auto t = st().NewReadTxn();
  ASSERT_TRUE(t->Renew());
  OrgView o;
  EXPECT_FALSE(t->GetOrg("acme", &o));
  WorkspaceView w;
  EXPECT_FALSE(t->GetWorkspace(ws, &w));
  OrgMemberView m;
  EXPECT_FALSE(t->GetOrgMember("bob", "acme", &m));
  EXPECT_TRUE(t->GetOrgMember("bob", "beta", &m));
  InvitationView iv;
  EXPECT_FALSE(t->GetInvitation(res.invitation, &iv));
  std::vector<OrgMemberView> orgs;
  ASSERT_TRUE(t->ListOrgsOfUser("bob", &orgs));
  ASSERT_EQ(orgs.size(), 1u);
  EXPECT_EQ(orgs[0].org, "beta");
  t->Reset();
  Refused(R("invite.accept", {{"user", "bob"}, {"token", res.token}}), Code::kNotFound);
  // The id is free again (orgs_created is a history count: deleting does not refund it).
  WriteRequest allow = R("user.set_org_allowance", {{"user", "bob"}});
  allow.allowance = 2;
  Ok(allow);
  Ok(R("org.create", {{"user", "bob"}, {"org", "acme"}, {"name", "New"}}), nullptr);
}

TEST_P(InvariantsTest, SubscriptionAndSecurityValidation) {
  User("alice");
  Org("acme", "alice");
  WriteRequest bad = R("org.set_subscription", {{"org", "acme"}});
  bad.status = "GOLD";
  Refused(bad, Code::kBadRequest, -1, "status");
  WriteRequest neg = R("org.set_subscription", {{"org", "acme"}});
  neg.seats = -1;
  Refused(neg, Code::kBadRequest, -1, "seats");
  WriteRequest good = R("org.set_subscription", {{"org", "acme"}});
  good.plan = "pro";
  good.status = "ACTIVE";
  good.features = std::vector<std::string>{"sso", "webhooks", "sso"};
  good.billing = AttrMap{{"waba_account", OwnedAttr{AttrValue::Kind::kString, false, 0, 0, "W-1"}}};
  Ok(good);
  WriteRequest sso = R("org.set_security", {{"org", "acme"}});
  sso.sso = SsoSettings{true, true, "", std::nullopt};
  Refused(sso, Code::kBadRequest, -1, "sso.idp");
  sso.sso->idp = "idp-1";
  sso.sso->exempt_roles = std::vector<std::string>{"org_admin", "wizard"};
  Refused(sso, Code::kBadRequest, -1, "exempt_roles");
  sso.sso->exempt_roles = std::vector<std::string>{"org_admin"};
  Ok(sso);
  auto t = st().NewReadTxn();
  ASSERT_TRUE(t->Renew());
  OrgView o;
  ASSERT_TRUE(t->GetOrg("acme", &o));
  EXPECT_EQ(o.plan, "pro");
  EXPECT_EQ(testing::ListStr(o.features), "sso,webhooks");
  AttrValue v;
  ASSERT_TRUE(o.billing.Find("waba_account", &v));
  EXPECT_EQ(v.s, "W-1");
  EXPECT_TRUE(o.sso.enforced);
  EXPECT_EQ(o.sso.idp, "idp-1");
  EXPECT_EQ(testing::ListStr(o.sso.exempt_roles), "org_admin");
}

TEST_P(InvariantsTest, AuthorizeHookSeesTxnStateAndCanRefuse) {
  User("alice");
  const std::string ws = Org("acme", "alice");
  WriteRequest r = R("workspace.update", {{"workspace", ws}, {"name", "X"}, {"actor", "alice"}});
  bool saw_admin = false;
  r.authorize = [&](Reader& rd, const WriteRequest&) {
    OrgMemberView m;
    saw_admin = rd.GetOrgMember("alice", "acme", &m) && m.role == "org_admin";
    return Status(Code::kForbidden, "policy says no");
  };
  Refused(r, Code::kForbidden, 0, "policy says no");
  EXPECT_TRUE(saw_admin);
  r.authorize = [](Reader&, const WriteRequest&) { return Status::Ok(); };
  Ok(r);
}

TEST_P(InvariantsTest, ImportChecksInvariants) {
  auto rec = [](ImportRecord::Kind k, std::initializer_list<std::pair<const char*, std::string>> f) {
    ImportRecord r;
    r.kind = k;
    r.fields = R("import", f);
    r.email_verified = true;
    return r;
  };
  using K = ImportRecord::Kind;
  std::vector<ImportRecord> good = {
      rec(K::kWorkspaceMember, {{"workspace", "iw"}, {"user", "iu"}, {"role", "agent"}}),
      rec(K::kUser, {{"user", "iu"}, {"email", "iu@example.com"}}),
      rec(K::kOrg, {{"org", "io"}, {"name", "Imported"}, {"user", "iu"}}),
      rec(K::kOrgMember, {{"org", "io"}, {"user", "iu"}, {"role", "org_admin"}}),
      rec(K::kWorkspace, {{"workspace", "iw"}, {"org", "io"}, {"name", "W"}}),
  };
  ImportStats stats;
  Status s = st().Import(good, &stats, 100);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(stats.records, 5u);
  EXPECT_EQ(stats.memberships, 2u);
  users_ = {"iu"};
  orgs_ = {"io"};
  {
    auto t = st().NewReadTxn();
    ASSERT_TRUE(t->Renew());
    WorkspaceMemberView m;
    ASSERT_TRUE(t->GetWorkspaceMember("iu", "iw", &m));
    EXPECT_EQ(m.org, "io");
    EXPECT_EQ(m.org_role, "org_admin");  // from the org membership imported in the same batch
    EXPECT_EQ(m.contact_visibility, "all");
    OrgView o;
    ASSERT_TRUE(t->GetOrg("io", &o));
    EXPECT_EQ(o.members, 1u);
    EXPECT_EQ(o.workspaces, 1u);
  }
  const std::string before = Dump(st(), users_, orgs_);
  const uint64_t rev = st().Revision();
  std::vector<ImportRecord> bad = {
      rec(K::kUser, {{"user", "iv"}, {"email", "iv@example.com"}}),
      rec(K::kWorkspaceMember, {{"workspace", "iw"}, {"user", "iv"}, {"role", "agent"}}),
  };
  s = st().Import(bad, &stats, 100);
  EXPECT_EQ(s.code(), Code::kConflict) << s.ToString();
  EXPECT_EQ(s.invariant(), 3);
  EXPECT_EQ(st().Revision(), rev);
  EXPECT_EQ(Dump(st(), {"iu", "iv"}, orgs_), before);
  // Duplicates, within a batch or against the store, refuse the batch.
  std::vector<ImportRecord> dups = {
      rec(K::kUser, {{"user", "iw"}, {"email", "IU@example.com"}}),
  };
  s = st().Import(dups, &stats, 100);
  EXPECT_EQ(s.code(), Code::kConflict) << s.ToString();
  EXPECT_NE(s.message().find("email"), std::string::npos) << s.message();
  dups = {
      rec(K::kOrgMember, {{"org", "io"}, {"user", "iu"}, {"role", "member"}}),
  };
  s = st().Import(dups, &stats, 100);
  EXPECT_EQ(s.code(), Code::kConflict) << s.ToString();
  EXPECT_NE(s.message().find("membership of user 'iu' in org 'io'"), std::string::npos) << s.message();
  dups = {
      rec(K::kUser, {{"user", "ix"}, {"email", "ix@example.com"}}),
      rec(K::kUser, {{"user", "ix"}, {"email", "ix2@example.com"}}),
  };
  s = st().Import(dups, &stats, 100);
  EXPECT_EQ(s.code(), Code::kConflict) << s.ToString();
  EXPECT_EQ(st().Revision(), rev);
  EXPECT_EQ(Dump(st(), {"iu", "iv", "ix"}, orgs_), before);
}

// The member's org role is denormalized into every workspace membership row of that org, and
// every kind of write keeps it equal to the org_members row (Ok() and Refused() check the whole
// store after each write; this test walks the writes that change org roles explicitly).
TEST_P(InvariantsTest, OrgRoleDenormalizedInWorkspaceMemberships) {
  User("alice");
  User("bob");
  User("carol");
  const std::string w1 = Org("acme", "alice");
  const std::string w3 = Org("beta", "bob");
  Ok(R("workspace.create", {{"org", "acme"}, {"workspace", "acme-2"}, {"name", "Second"}}));
  auto org_role = [&](const std::string& ws, const std::string& user) {
    auto t = st().NewReadTxn();
    EXPECT_TRUE(t->Renew());
    WorkspaceMemberView m;
    return t->GetWorkspaceMember(user, ws, &m) ? S(m.org_role) : "<none>";
  };
  EXPECT_EQ(org_role(w1, "alice"), "org_admin");  // org.create
  // invite.accept with workspace grants.
  WriteRequest inv = R("org.invite", {{"org", "acme"}, {"email", "bob@example.com"}, {"role", "user_admin"}});
  inv.grants = std::vector<WorkspaceGrant>{{w1, "agent"}, {"acme-2", "manager"}};
  WriteResult res;
  Ok(inv, &res);
  Ok(R("invite.accept", {{"user", "bob"}, {"token", res.token}}));
  EXPECT_EQ(org_role(w1, "bob"), "user_admin");
  EXPECT_EQ(org_role("acme-2", "bob"), "user_admin");
  EXPECT_EQ(org_role(w3, "bob"), "org_admin");  // his own org is another row
  // org.set_role rewrites the rows in that org only.
  Ok(R("org.set_role", {{"org", "acme"}, {"user", "bob"}, {"role", "org_admin"}}));
  EXPECT_EQ(org_role(w1, "bob"), "org_admin");
  EXPECT_EQ(org_role("acme-2", "bob"), "org_admin");
  Ok(R("org.set_role", {{"org", "acme"}, {"user", "bob"}, {"role", "billing_admin"}}));
  EXPECT_EQ(org_role(w1, "bob"), "billing_admin");
  EXPECT_EQ(org_role("acme-2", "bob"), "billing_admin");
  EXPECT_EQ(org_role(w3, "bob"), "org_admin");
  // Refused role change (last org_admin): nothing changes, rows included.
  Refused(R("org.set_role", {{"org", "acme"}, {"user", "alice"}, {"role", "member"}}), Code::kConflict, 2);
  EXPECT_EQ(org_role(w1, "alice"), "org_admin");
  // Refused in the authorize hook after nothing was applied; and in a batch with accepted writes.
  WriteRequest denied = R("org.set_role", {{"org", "acme"}, {"user", "bob"}, {"role", "member"}});
  denied.authorize = [](Reader&, const WriteRequest&) { return Status(Code::kForbidden, "no"); };
  Refused(denied, Code::kForbidden);
  EXPECT_EQ(org_role(w1, "bob"), "billing_admin");
  // workspace.set_member: existing member keeps their org role; operator add makes them member.
  Ok(R("workspace.set_member", {{"workspace", w1}, {"user", "bob"}, {"role", "owner"}}));
  EXPECT_EQ(org_role(w1, "bob"), "billing_admin");
  Ok(R("workspace.set_member", {{"workspace", "acme-2"}, {"user", "carol"}, {"role", "agent"}}));
  EXPECT_EQ(org_role("acme-2", "carol"), "member");
  Ok(R("org.set_role", {{"org", "acme"}, {"user", "carol"}, {"role", "user_admin"}}));
  EXPECT_EQ(org_role("acme-2", "carol"), "user_admin");
  // Removal cascades the rows away; re-adding starts from the new org role.
  Ok(R("org.remove_member", {{"org", "acme"}, {"user", "carol"}}));
  EXPECT_EQ(org_role("acme-2", "carol"), "<none>");
  Ok(R("workspace.set_member", {{"workspace", w1}, {"user", "carol"}, {"role", "agent"}}));
  EXPECT_EQ(org_role(w1, "carol"), "member");
  EXPECT_EQ(testing::OrgRoleMismatches(st(), orgs_), "");
}

// Concurrent batches: role changes and refused writes interleaved in one group commit keep the
// denormalized role exact (a refused write in the middle of a batch rolls back its own rows only).
TEST_P(InvariantsTest, OrgRoleDenormalizedAcrossABatch) {
  User("alice");
  User("bob");
  const std::string w1 = Org("acme", "alice");
  Ok(R("workspace.create", {{"org", "acme"}, {"workspace", "acme-2"}, {"name", "Second"}}));
  AddMember("acme", "bob", "member");
  Ok(R("workspace.set_member", {{"workspace", w1}, {"user", "bob"}, {"role", "agent"}}));
  Ok(R("workspace.set_member", {{"workspace", "acme-2"}, {"user", "bob"}, {"role", "agent"}}));
  const char* roles[] = {"user_admin", "billing_admin", "org_admin", "member"};
  std::atomic<int> done{0};
  std::vector<Status> statuses(40);
  for (int i = 0; i < 40; ++i) {
    WriteRequest r = R("org.set_role", {{"org", "acme"}, {"user", "bob"}, {"role", roles[i % 4]}});
    if (i % 3 == 1) {  // refused by the authorize hook
      r.authorize = [](Reader&, const WriteRequest&) { return Status(Code::kForbidden, "no"); };
    }
    if (i % 5 == 2) r.role = "no_such_role";  // refused by validation
    st().Submit(std::move(r), [&, i](WriteResult res) {
      statuses[i] = res.status;
      ++done;
    });
  }
  while (done.load() < 40) std::this_thread::yield();
  std::string last;
  for (int i = 0; i < 40; ++i) {
    if (statuses[i].ok()) last = roles[i % 4];
  }
  ASSERT_FALSE(last.empty());
  EXPECT_EQ(OrgRole("acme", "bob"), last);
  EXPECT_EQ(testing::OrgRoleMismatches(st(), orgs_), "");
}

// A write refused after it already changed rows (here: invite.accept adds the org membership,
// then meets a grant whose role the reopened store no longer knows) is undone completely — in the
// middle of a group-commit batch whose other writes commit. LMDB only (needs a reopen).
TEST(UndoTest, WriteRefusedMidwayInABatchChangesNothing) {
  testing::TempDir dir;
  Options o;
  o.path = dir.path();
  o.durable = false;
  o.map_size = size_t{64} << 20;
  o.extra_workspace_roles = {"auditor"};
  std::string token, ws;
  {
    std::unique_ptr<Store> st;
    ASSERT_TRUE(Store::Open(o, &st).ok());
    for (const char* u : {"alice", "bob"}) {
      ASSERT_TRUE(st->Write(R("user.register", {{"user", u}, {"email", std::string(u) + "@x.io"}})).status.ok());
      ASSERT_TRUE(st->Write(R("user.verify_email", {{"user", u}})).status.ok());
    }
    WriteResult res = st->Write(R("org.create", {{"user", "alice"}, {"org", "acme"}, {"name", "Acme"}}));
    ASSERT_TRUE(res.status.ok());
    ws = res.workspace;
    WriteRequest inv = R("org.invite", {{"org", "acme"}, {"email", "bob@x.io"}, {"role", "member"}});
    inv.grants = std::vector<WorkspaceGrant>{{ws, "agent"}, {ws, "auditor"}};
    res = st->Write(inv);
    ASSERT_TRUE(res.status.ok()) << res.status.ToString();
    token = res.token;
  }
  o.extra_workspace_roles.clear();
  std::unique_ptr<Store> st;
  ASSERT_TRUE(Store::Open(o, &st).ok());
  const std::string before = Dump(*st, {"alice", "bob"}, {"acme"});
  const uint64_t rev0 = st->Revision();
  // The first write holds the writer thread so that the next three form one batch.
  std::atomic<int> done{0};
  std::vector<WriteResult> results(4);
  WriteRequest hold = R("org.update", {{"org", "acme"}, {"name", "Acme 1"}});
  hold.authorize = [](Reader&, const WriteRequest&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return Status::Ok();
  };
  std::vector<WriteRequest> reqs = {hold, R("org.update", {{"org", "acme"}, {"name", "Acme 2"}}),
                                    R("invite.accept", {{"user", "bob"}, {"token", token}}),
                                    R("workspace.create", {{"org", "acme"}, {"workspace", "w9"}})};
  for (size_t i = 0; i < reqs.size(); ++i) {
    st->Submit(reqs[i], [&, i](WriteResult r) {
      results[i] = std::move(r);
      ++done;
    });
  }
  while (done.load() < 4) std::this_thread::yield();
  EXPECT_TRUE(results[0].status.ok());
  EXPECT_TRUE(results[1].status.ok());
  EXPECT_EQ(results[2].status.code(), Code::kBadRequest) << results[2].status.ToString();
  EXPECT_NE(results[2].status.message().find("auditor"), std::string::npos);
  EXPECT_TRUE(results[3].status.ok()) << results[3].status.ToString();
  EXPECT_EQ(results[3].rev, results[1].rev + 1);  // the refused write took no revision
  EXPECT_EQ(st->Revision(), rev0 + 3);
  auto t = st->NewReadTxn();
  ASSERT_TRUE(t->Renew());
  OrgMemberView om;
  EXPECT_FALSE(t->GetOrgMember("bob", "acme", &om));
  WorkspaceMemberView wm;
  EXPECT_FALSE(t->GetWorkspaceMember("bob", ws, &wm));
  OrgView org;
  ASSERT_TRUE(t->GetOrg("acme", &org));
  EXPECT_EQ(org.name, "Acme 2");
  EXPECT_EQ(org.members, 1u);
  EXPECT_EQ(org.pending_invitations, 1u);
  EXPECT_EQ(org.workspaces, 2u);
  std::vector<ChangeView> changes;
  ASSERT_TRUE(t->ReadChanges(rev0, 10, &changes));
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[2].op, "workspace.create");
  t->Reset();
  // Back to the state before the batch, apart from the three accepted writes.
  ASSERT_TRUE(st->Write(R("org.update", {{"org", "acme"}, {"name", "Acme"}})).status.ok());
  ASSERT_TRUE(st->Write(R("workspace.delete", {{"workspace", "w9"}})).status.ok());
  std::string after = Dump(*st, {"alice", "bob"}, {"acme"});
  after = after.substr(after.find('\n'));  // the revision line differs
  EXPECT_EQ(after, before.substr(before.find('\n')));
}

INSTANTIATE_TEST_SUITE_P(Backends, InvariantsTest, ::testing::Values("memory", "lmdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace gatehouse::store
