// The decision skeleton and the example policy end to end, over MemoryFacts.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

#include "policy/memory_facts.h"
#include "policy/policy.h"

namespace gatehouse::policy {
namespace {

std::shared_ptr<const CompiledPolicy> Example() {
  static auto p = [] {
    std::vector<Issue> issues;
    auto p = LoadPolicyDir(std::string(GATEHOUSE_POLICY_TESTDATA) + "/example", &issues);
    for (const Issue& i : issues) ADD_FAILURE() << i.ToString();
    return p;
  }();
  return p;
}

class EvaluatorTest : public testing::Test {
 protected:
  void SetUp() override {
    policy_ = Example();
    ASSERT_TRUE(policy_);
    auto& o1 = facts_.orgs["o1"];
    o1.features = {"sso", "webhooks"};
    o1.seats = 10;
    o1.members = {{"admin", "org_admin"}, {"mem", "member"}, {"ua", "user_admin"},
                  {"ba", "billing_admin"}, {"agent", "member"}, {"mgr", "member"},
                  {"odd", "wizard"}};
    auto& w1 = facts_.workspaces["w1"];
    w1.org = "o1";
    w1.members["agent"] = {"agent", "t1", {}, "assigned_only", {}};
    w1.members["mgr"] = {"manager", "", {"no_contact_delete"}, "", {}};
    w1.members["admin"] = {"agent", "", {}, "assigned_only", {}};
    auto& o2 = facts_.orgs["o2"];
    o2.members = {{"admin", "member"}, {"other", "org_admin"}};
    facts_.workspaces["w2"].org = "o2";
    facts_.Finalize();
  }

  Decision Check(std::string_view user, std::string_view action, std::string_view org,
                 std::string_view ws = {}) {
    Request r;
    r.user = user;
    r.action = action;
    r.org = org;
    r.workspace = ws;
    r.resource_attrs = attrs_;
    r.auth_method = auth_method_;
    r.auth_idp = auth_idp_;
    r.auth_age_s = auth_age_;
    return Evaluate(*policy_, r, facts_);
  }

  std::shared_ptr<const CompiledPolicy> policy_;
  MemoryFacts facts_;
  std::vector<KeyValue> attrs_;
  std::string_view auth_method_, auth_idp_;
  int64_t auth_age_ = -1;
};

TEST_F(EvaluatorTest, SkeletonOrder) {
  EXPECT_EQ(Check("admin", "org.nope", "o1").reason, "unknown_action");
  EXPECT_EQ(Check("nobody", "org.nope", "zz").reason, "unknown_action");
  EXPECT_EQ(Check("admin", "workspace.access", "o1").reason, "scope_required");
  EXPECT_EQ(Check("admin", "org.view", "").reason, "scope_required");
  EXPECT_EQ(Check("admin", "org.view", "zz").reason, "not_found");
  EXPECT_EQ(Check("admin", "workspace.access", "", "wz").reason, "not_found");
  EXPECT_EQ(Check("admin", "workspace.access", "o2", "w1").reason, "scope_mismatch");
  EXPECT_EQ(Check("stranger", "org.view", "o1").reason, "not_member");
  EXPECT_EQ(Check("", "org.view", "o1").reason, "not_member");
  Decision d = Check("mem", "org.delete", "o1");
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(d.reason, "no_permission");
  EXPECT_EQ(d.rule, "");
  d = Check("admin", "org.delete", "o1");
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.rule, "role:org_admin");
  EXPECT_EQ(d.reason, "granted");
}

TEST_F(EvaluatorTest, OrgActionWithWorkspaceIsDecidedInItsOrg) {
  EXPECT_TRUE(Check("admin", "org.delete", "", "w1").allow);
  EXPECT_FALSE(Check("admin", "org.delete", "", "w2").allow);  // only member in o2
  EXPECT_TRUE(Check("other", "org.delete", "", "w2").allow);
}

TEST_F(EvaluatorTest, NonMemberSeesNothingEvenWithWildcardRules) {
  facts_.orgs["o1"].suspended = true;
  EXPECT_EQ(Check("stranger", "org.view", "o1").reason, "not_member");
}

TEST_F(EvaluatorTest, GatesAreRules) {
  facts_.orgs["o1"].suspended = true;
  Decision d = Check("admin", "org.view", "o1");
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(d.reason, "org_suspended");
  EXPECT_EQ(d.rule, "org-suspended");
  facts_.orgs["o1"].suspended = false;
  facts_.orgs["o1"].status = "FROZEN";
  EXPECT_EQ(Check("admin", "org.delete", "o1").reason, "org_locked");
  EXPECT_TRUE(Check("admin", "org.billing.waba.manage", "o1").allow);
  EXPECT_TRUE(Check("admin", "org.view", "o1").allow);
  EXPECT_EQ(Check("admin", "workspace.access", "", "w1").reason, "org_locked");
}

TEST_F(EvaluatorTest, SsoGate) {
  auto& o = facts_.orgs["o1"];
  o.sso_enabled = o.sso_enforced = true;
  o.sso_idp = "idp-1";
  facts_.Finalize();
  EXPECT_EQ(Check("mem", "org.view", "o1").reason, "sso_required");
  EXPECT_TRUE(Check("admin", "org.view", "o1").allow);  // exempt role
  auth_method_ = "sso";
  auth_idp_ = "idp-2";
  EXPECT_EQ(Check("mem", "org.view", "o1").reason, "sso_required");
  auth_idp_ = "idp-1";
  EXPECT_EQ(Check("mem", "org.view", "o1").reason, "sso_session_expired");
  auth_age_ = 86400;
  EXPECT_EQ(Check("mem", "org.view", "o1").reason, "sso_session_expired");
  auth_age_ = 600;
  EXPECT_TRUE(Check("mem", "org.view", "o1").allow);
}

TEST_F(EvaluatorTest, EffectiveRoleAndFlags) {
  // org_admin who is an explicit agent acts as implied owner: no visibility restriction.
  Decision d = Check("admin", "conversation.view_all", "", "w1");
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.rule, "role:owner");
  // Manager flag applies to the explicit membership.
  EXPECT_EQ(Check("mgr", "contact.delete", "", "w1").reason, "restricted");
  EXPECT_TRUE(Check("mgr", "contact.export", "", "w1").allow);
  // Member of the org without workspace membership: no implied role.
  EXPECT_EQ(Check("mem", "workspace.access", "", "w1").reason, "no_permission");
  // A role the policy doesn't know: member, but nothing granted.
  EXPECT_EQ(Check("odd", "org.view", "o1").reason, "no_permission");
}

TEST_F(EvaluatorTest, RolesInRulesMatchExactRoleOnly) {
  // manager-no-ws-settings names [manager]; an owner (who includes manager) is not matched even
  // with a stray flag. admin is implied owner with an explicit agent membership.
  facts_.workspaces["w1"].members["admin"].flags = {"no_ws_settings"};
  facts_.Finalize();
  EXPECT_TRUE(Check("admin", "workspace.settings.manage", "", "w1").allow);
}

TEST_F(EvaluatorTest, AgentVisibilityCondition) {
  attrs_ = {{"assignee", Value::String("agent")}};
  EXPECT_TRUE(Check("agent", "conversation.reply", "", "w1").allow);
  attrs_ = {{"assignee", Value::String("someone")}};
  EXPECT_EQ(Check("agent", "conversation.reply", "", "w1").reason, "no_permission");
  EXPECT_EQ(Check("agent", "conversation.view_all", "", "w1").reason, "no_permission");
}

TEST_F(EvaluatorTest, CeilingsSelfModificationSeats) {
  attrs_ = {{"target_user", Value::String("mem")}, {"new_role", Value::String("org_admin")}};
  EXPECT_EQ(Check("ua", "org.users.role.assign", "o1").reason, "role_ceiling");
  EXPECT_TRUE(Check("admin", "org.users.role.assign", "o1").allow);
  attrs_ = {{"target_user", Value::String("mem")}, {"new_role", Value::String("user_admin")}};
  EXPECT_TRUE(Check("ua", "org.users.role.assign", "o1").allow);
  attrs_ = {{"target_user", Value::String("admin")}};
  Decision d = Check("admin", "org.users.remove", "o1");
  EXPECT_EQ(d.reason, "self_modification");
  EXPECT_EQ(d.rule, "no-self-modification");
  attrs_.clear();
  facts_.orgs["o1"].pending_invitations = 3;  // 7 members + 3 pending = 10 seats
  EXPECT_EQ(Check("admin", "org.users.invite", "o1").reason, "seats_exhausted");
  facts_.orgs["o1"].pending_invitations = 2;
  EXPECT_TRUE(Check("admin", "org.users.invite", "o1").allow);
}

TEST_F(EvaluatorTest, FeatureChecks) {
  EXPECT_TRUE(Check("admin", "webhook.manage", "", "w1").allow);
  facts_.orgs["o1"].features = {"sso"};
  facts_.Finalize();
  EXPECT_EQ(Check("admin", "webhook.manage", "", "w1").reason, "feature_disabled");
}

TEST_F(EvaluatorTest, FactsErrorFailsClosed) {
  facts_.fail = true;
  Decision d = Check("admin", "org.view", "o1");
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(d.reason, "internal");
  d = Check("admin", "workspace.access", "", "w1");
  EXPECT_EQ(d.reason, "internal");
}

// Facts that fail only on attribute lookups (a condition needs one mid-evaluation).
class AttrFailFacts final : public Facts {
 public:
  explicit AttrFailFacts(MemoryFacts* base) : base_(base) {}
  Lookup User(std::string_view u, UserFacts* o) noexcept override { return base_->User(u, o); }
  Lookup Org(std::string_view g, OrgFacts* o) noexcept override { return base_->Org(g, o); }
  Lookup Workspace(std::string_view w, WorkspaceFacts* o) noexcept override {
    return base_->Workspace(w, o);
  }
  Lookup OrgMembership(std::string_view u, std::string_view g,
                       OrgMembershipFacts* o) noexcept override {
    return base_->OrgMembership(u, g, o);
  }
  Lookup WorkspaceMembership(std::string_view u, std::string_view w,
                             WorkspaceMembershipFacts* o) noexcept override {
    return base_->WorkspaceMembership(u, w, o);
  }
  Lookup Attr(Entity, std::string_view, std::string_view, Value*) noexcept override {
    return Lookup::kError;
  }

 private:
  MemoryFacts* base_;
};

TEST(EvaluatorAttrTest, AttrErrorInConditionFailsClosed) {
  std::vector<Issue> issues;
  auto p = LoadPolicySources(
      {{"p.yaml",
        "actions: {org: [org.view]}\n"
        "rules:\n"
        "  - {id: eu-only, effect: allow, actions: [org.view], condition: 'org.attrs.region == \"eu\"'}\n"}},
      &issues);
  ASSERT_TRUE(p);
  MemoryFacts mf;
  mf.orgs["o"].members["u"] = "member";
  mf.orgs["o"].attrs["region"] = OwnedValue{Value::Kind::kString, false, 0, 0, "eu"};
  mf.Finalize();
  Request r;
  r.user = "u";
  r.action = "org.view";
  r.org = "o";
  Decision d = Evaluate(*p, r, mf);
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.rule, "eu-only");
  AttrFailFacts bad(&mf);
  d = Evaluate(*p, r, bad);
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(d.reason, "internal");
}

// Request attribute lookups are memoized per key id in a 16-slot table: keys whose ids share a
// slot (a0 and a16: ids 0 and 16, in order of first mention) must still read their own values
// whichever of them was looked up last.
TEST(EvaluatorAttrTest, AttrMemoKeepsKeysSharingASlotApart) {
  std::string probe;  // reads a0..a16 in order (slot 0 ends up holding a16); never matches
  for (int k = 0; k <= 16; ++k) {
    probe += (k ? " || " : "") + std::string("resource.attrs.a") + std::to_string(k) + " == \"never\"";
  }
  std::vector<Issue> issues;
  auto p = LoadPolicySources(
      {{"p.yaml",
        "actions: {org: [org.view]}\n"
        "rules:\n"
        "  - {id: probe, effect: allow, actions: [org.view], condition: '" + probe + "'}\n"
        "  - {id: a0-x, effect: allow, actions: [org.view], condition: 'resource.attrs.a0 == \"x\"'}\n"
        "  - {id: a16-x, effect: allow, actions: [org.view], condition: 'resource.attrs.a16 == \"x\"'}\n"}},
      &issues);
  ASSERT_TRUE(p) << issues[0].ToString();
  MemoryFacts mf;
  mf.orgs["o"].members["u"] = "member";
  mf.Finalize();
  Request r;
  r.user = "u";
  r.action = "org.view";
  r.org = "o";
  // Short lists, and longer ones (padded with b*) whose search goes past the memoized keys.
  for (bool pad : {false, true}) {
    SCOPED_TRACE(pad ? "padded" : "short");
    std::vector<KeyValue> a0x = {{"a0", Value::String("x")}, {"a16", Value::String("y")}};
    std::vector<KeyValue> a16x = {{"a0", Value::String("y")}, {"a16", Value::String("x")}};
    std::vector<KeyValue> neither = {{"a1", Value::String("x")}};
    if (pad) {
      for (const char* k : {"b1", "b2", "b3", "b4", "b5"}) {
        a0x.push_back({k, Value::String("x")});
        a16x.push_back({k, Value::String("x")});
        neither.push_back({k, Value::String("x")});
      }
    }
    r.resource_attrs = a0x;
    EXPECT_EQ(Evaluate(*p, r, mf).rule, "a0-x");
    r.resource_attrs = a16x;
    EXPECT_EQ(Evaluate(*p, r, mf).rule, "a16-x");
    r.resource_attrs = neither;
    EXPECT_EQ(Evaluate(*p, r, mf).reason, "no_permission");
  }
}

TEST_F(EvaluatorTest, OverlayAppliesOnlyToItsOrg) {
  // acme overlay: role `auditor` and an allow rule for it, and a deny on contact.export.
  auto& acme = facts_.orgs["acme"];
  acme.members = {{"aud", "member"}, {"own", "member"}};
  auto& wa = facts_.workspaces["wa"];
  wa.org = "acme";
  wa.members["aud"].role = "auditor";
  wa.members["own"].role = "owner";
  // The same role name in another org: the overlay must not widen access there.
  facts_.orgs["o1"].members["aud"] = "member";
  facts_.workspaces["w1"].members["aud"].role = "auditor";
  facts_.Finalize();
  Decision d = Check("aud", "conversation.view", "", "wa");
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.rule, "acme-auditors-view");
  EXPECT_TRUE(Check("aud", "report.view", "", "wa").allow);  // overlay role grants
  EXPECT_FALSE(Check("aud", "conversation.view", "", "w1").allow);
  EXPECT_FALSE(Check("aud", "report.view", "", "w1").allow);
  EXPECT_FALSE(Check("aud", "workspace.access", "", "w1").allow);
  // Overlay deny only in acme.
  EXPECT_EQ(Check("own", "contact.export", "", "wa").reason, "org_policy");
  EXPECT_TRUE(Check("admin", "contact.export", "", "w1").allow);
}

TEST_F(EvaluatorTest, ListAllowedActions) {
  std::vector<uint32_t> out(ActionCount(*policy_));
  Request r;
  r.user = "mem";
  r.org = "o1";
  size_t n = ListAllowedActions(*policy_, r, facts_, out.data(), out.size());
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(ActionName(*policy_, out[0]), "org.view");
  r.user = "admin";
  r.workspace = "w1";
  n = ListAllowedActions(*policy_, r, facts_, out.data(), out.size());
  std::set<std::string_view> names;
  for (size_t k = 0; k < n; ++k) names.insert(ActionName(*policy_, out[k]));
  EXPECT_TRUE(names.count("org.delete"));
  EXPECT_TRUE(names.count("conversation.view_all"));
  EXPECT_EQ(n, ActionCount(*policy_));
  // Without a workspace, workspace actions are not listed.
  r.workspace = {};
  n = ListAllowedActions(*policy_, r, facts_, out.data(), out.size());
  for (size_t k = 0; k < n; ++k) EXPECT_NE(ActionName(*policy_, out[k]), "workspace.access");
  // Capacity respected; non-members get nothing.
  EXPECT_EQ(ListAllowedActions(*policy_, r, facts_, out.data(), 2), 2u);
  r.user = "stranger";
  EXPECT_EQ(ListAllowedActions(*policy_, r, facts_, out.data(), out.size()), 0u);
  // Agrees with Evaluate for every action.
  r.user = "mgr";
  r.workspace = "w1";
  n = ListAllowedActions(*policy_, r, facts_, out.data(), out.size());
  std::set<uint32_t> listed(out.begin(), out.begin() + n);
  for (uint32_t a = 0; a < ActionCount(*policy_); ++a) {
    Request q = r;
    q.action = ActionName(*policy_, a);
    EXPECT_EQ(Evaluate(*policy_, q, facts_).allow, listed.count(a) == 1) << q.action;
  }
}

TEST(EvaluatorRankTest, HigherOwnRoleBeatsImpliedRole) {
  std::vector<Issue> issues;
  auto p = LoadPolicySources(
      {{"p.yaml",
        "actions: {workspace: [a.low, a.high]}\n"
        "roles:\n"
        "  org: {boss: {}}\n"
        "  workspace:\n"
        "    low: {rank: 1, grants: [a.low]}\n"
        "    high: {rank: 5, grants: [a.high]}\n"
        "implied: [{org_role: boss, workspace_role: low}]\n"
        "rules:\n"
        "  - {id: implied-flag, effect: allow, actions: [a.high], condition: membership.implied "
        "&& membership.effective_role == 'low' && !has(membership.team)}\n"}},
      &issues);
  ASSERT_TRUE(p) << issues[0].ToString();
  MemoryFacts mf;
  mf.orgs["o"].members = {{"u", "boss"}, {"v", "boss"}};
  mf.workspaces["w"].org = "o";
  mf.workspaces["w"].members["u"] = {"high", "t9", {}, "", {}};
  mf.Finalize();
  Request r;
  r.user = "u";
  r.workspace = "w";
  r.action = "a.high";
  EXPECT_TRUE(Evaluate(*p, r, mf).allow);  // own high beats implied low
  r.action = "a.low";
  EXPECT_FALSE(Evaluate(*p, r, mf).allow);
  r.user = "v";  // no own membership: implied low
  Decision d = Evaluate(*p, r, mf);
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.rule, "role:low");
  r.action = "a.high";  // via the rule that tests membership.implied / effective_role
  d = Evaluate(*p, r, mf);
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.rule, "implied-flag");
  r.user = "u";
  EXPECT_EQ(Evaluate(*p, r, mf).rule, "role:high");
}

}  // namespace
}  // namespace gatehouse::policy

namespace gatehouse::policy {
namespace {

// Rule roles are tested as a 64-bit mask for role ids < 64 and through the rule's role list
// otherwise (CompiledPolicy::rule_list, RuleRef): 70 org and 70 workspace roles, so ids on both
// sides of 64 and ids equal modulo 64 exist. Rule ri (roles [wi], with a condition) allows
// workspace action wa<i>; rule oi (roles [oi], no condition) allows org action oa<i> and
// workspace action ox<i>. Exactly the holder of the rule's role is allowed.
TEST(EvaluatorRoleMaskTest, RuleRolesOnBothSidesOfBit64) {
  constexpr int kRoles = 70;
  std::string y = "actions:\n  org: [";
  for (int i = 0; i < kRoles; ++i) y += (i ? ", oa" : "oa") + std::to_string(i);
  y += "]\n  workspace: [";
  for (int i = 0; i < kRoles; ++i) {
    y += (i ? ", wa" : "wa") + std::to_string(i) + ", ox" + std::to_string(i);
  }
  y += "]\nroles:\n  org:\n";
  for (int i = 0; i < kRoles; ++i) y += "    o" + std::to_string(i) + ": {}\n";
  y += "  workspace:\n";
  for (int i = 0; i < kRoles; ++i) y += "    w" + std::to_string(i) + ": {rank: 1}\n";
  y += "rules:\n";
  for (int i = 0; i < kRoles; ++i) {
    const std::string n = std::to_string(i);
    y += "  - {id: r" + n + ", effect: allow, roles: [w" + n + "], actions: [wa" + n +
         "], condition: 'resource.type == \"t\"'}\n";
    y += "  - {id: o" + n + ", effect: allow, roles: [o" + n + "], actions: [oa" + n + ", ox" +
         n + "]}\n";
  }
  // Two roles in one rule, one on each side of 64 whatever the id order.
  y += "  - {id: pair, effect: allow, roles: [w3, w68], actions: [wa5]}\n";
  std::vector<Issue> issues;
  auto p = LoadPolicySources({{"p.yaml", y}}, &issues);
  ASSERT_TRUE(p) << issues[0].ToString();
  MemoryFacts mf;
  const int holders[] = {0, 1, 3, 5, 63, 64, 65, 68, 69};
  for (int j : holders) {
    const std::string u = "u" + std::to_string(j);
    mf.orgs["o"].members[u] = "o" + std::to_string(j);
    mf.workspaces["w"].members[u] = {"w" + std::to_string(j), "", {}, "", {}};
  }
  mf.workspaces["w"].org = "o";
  mf.Finalize();
  for (int j : holders) {
    const std::string u = "u" + std::to_string(j);
    for (int i = 0; i < kRoles; ++i) {
      const std::string n = std::to_string(i);
      // The request holds views: the action names must outlive each Evaluate.
      const std::string wa = "wa" + n, ox = "ox" + n, oa = "oa" + n;
      Request r;
      r.user = u;
      r.workspace = "w";
      r.resource_type = "t";
      r.action = wa;
      Decision d = Evaluate(*p, r, mf);
      const bool pair = i == 5 && (j == 3 || j == 68);
      EXPECT_EQ(d.allow, i == j || pair) << u << " wa" << n;
      if (d.allow) {
        EXPECT_EQ(d.rule, pair && i != j ? "pair" : "r" + n) << u << " wa" << n;
      }
      r.action = ox;  // workspace action, org role
      d = Evaluate(*p, r, mf);
      EXPECT_EQ(d.allow, i == j) << u << " ox" << n;
      r.workspace = {};
      r.org = "o";
      r.action = oa;
      d = Evaluate(*p, r, mf);
      EXPECT_EQ(d.allow, i == j) << u << " oa" << n;
      if (d.allow) {
        EXPECT_EQ(d.rule, "o" + n);
      }
    }
  }
}

TEST(EvaluatorListTest, ActionDependentConditionsAreNotMemoized) {
  std::vector<Issue> issues;
  auto p = LoadPolicySources(
      {{"p.yaml",
        "actions: {org: [a.x, a.y, a.z]}\n"
        "rules:\n"
        "  - {id: only-x, effect: allow, actions: ['*'], condition: 'action.name == \"a.x\"'}\n"
        "  - {id: gate, effect: deny, actions: [a.z], condition: 'org.seats > 5', reason: g}\n"
        "  - {id: z, effect: allow, actions: [a.z], condition: 'action.scope == \"org\"'}\n"}},
      &issues);
  ASSERT_TRUE(p) << issues[0].ToString();
  MemoryFacts mf;
  mf.orgs["o"].members["u"] = "member";
  mf.orgs["o"].seats = 10;
  mf.Finalize();
  Request r;
  r.user = "u";
  r.org = "o";
  uint32_t out[3];
  size_t n = ListAllowedActions(*p, r, mf, out, 3);
  ASSERT_EQ(n, 1u);  // a.y must not inherit only-x's result; a.z is denied by the gate
  EXPECT_EQ(ActionName(*p, out[0]), "a.x");
  mf.orgs["o"].seats = 1;
  EXPECT_EQ(ListAllowedActions(*p, r, mf, out, 3), 2u);  // gate off: a.z via rule z
}

// Request attribute lookup (length, then head word, then bytes past 8): keys sharing a prefix,
// longer than 8 bytes, of every short length, duplicates (first wins) and long lists.
TEST(EvaluatorAttrTest, ResourceAndContextAttrLookup) {
  std::vector<Issue> issues;
  auto p = LoadPolicySources(
      {{"p.yaml",
        "actions: {org: [a.long, a.short, a.tiny, a.late, a.ctx, a.dup]}\n"
        "rules:\n"
        "  - {id: l, effect: allow, actions: [a.long],\n"
        "     condition: 'resource.attrs.abcdefgh_2 == \"y\"'}\n"
        "  - {id: s, effect: allow, actions: [a.short], condition: 'resource.attrs.abc == \"y\"'}\n"
        "  - {id: t, effect: allow, actions: [a.tiny], condition: 'resource.attrs.q == \"y\"'}\n"
        "  - {id: z, effect: allow, actions: [a.late], condition: 'resource.attrs.k19 == \"y\"'}\n"
        "  - {id: c, effect: allow, actions: [a.ctx],\n"
        "     condition: 'context.region_code_x == \"y\"'}\n"
        "  - {id: d, effect: allow, actions: [a.dup],\n"
        "     condition: 'resource.attrs.dup == \"y\"'}\n"}},
      &issues);
  for (const Issue& i : issues) ADD_FAILURE() << i.ToString();
  ASSERT_TRUE(p);
  MemoryFacts mf;
  mf.orgs["o"].members["u"] = "member";
  mf.Finalize();
  std::vector<std::string> keys = {"abcdefgh_1", "abcdefgh_22", "abcdefgh_2", "abd", "ab", "q",
                                   "dup", "dup"};
  for (int k = 0; k < 20; ++k) keys.push_back("k" + std::to_string(k));
  std::vector<KeyValue> attrs;
  for (const std::string& k : keys) attrs.push_back({k, Value::String("n")});
  attrs[2].value = Value::String("y");  // abcdefgh_2
  attrs[5].value = Value::String("y");  // q
  attrs[6].value = Value::String("y");  // first dup
  attrs.back().value = Value::String("y");  // k19: the list's last key
  KeyValue ctx[] = {{"region_code", Value::String("n")}, {"region_code_x", Value::String("y")}};
  Request r;
  r.user = "u";
  r.org = "o";
  r.resource_attrs = attrs;
  r.context_attrs = ctx;
  for (const char* a : {"a.long", "a.tiny", "a.late", "a.ctx", "a.dup"}) {
    r.action = a;
    EXPECT_TRUE(Evaluate(*p, r, mf).allow) << a;
  }
  r.action = "a.short";  // "abc" absent ("abd", "ab" and "abcdefgh_*" are not it)
  EXPECT_FALSE(Evaluate(*p, r, mf).allow);
  attrs[3].key = "abc";
  attrs[3].value = Value::String("y");
  EXPECT_TRUE(Evaluate(*p, r, mf).allow);
}

// Counts Workspace() reads; can hide WorkspaceMembershipFacts::org (a Facts that doesn't know
// it) and make WorkspaceMembership fail.
class CountingFacts final : public Facts {
 public:
  CountingFacts(MemoryFacts* base, bool hide_wm_org) : base_(base), hide_(hide_wm_org) {}
  int workspace_reads = 0;
  bool wm_error = false;
  Lookup User(std::string_view u, UserFacts* o) noexcept override { return base_->User(u, o); }
  Lookup Org(std::string_view g, OrgFacts* o) noexcept override { return base_->Org(g, o); }
  Lookup Workspace(std::string_view w, WorkspaceFacts* o) noexcept override {
    ++workspace_reads;
    return base_->Workspace(w, o);
  }
  Lookup OrgMembership(std::string_view u, std::string_view g,
                       OrgMembershipFacts* o) noexcept override {
    return base_->OrgMembership(u, g, o);
  }
  Lookup WorkspaceMembership(std::string_view u, std::string_view w,
                             WorkspaceMembershipFacts* o) noexcept override {
    if (wm_error) return Lookup::kError;
    Lookup l = base_->WorkspaceMembership(u, w, o);
    if (hide_) o->org = {};
    return l;
  }
  Lookup Attr(Entity e, std::string_view id, std::string_view k, Value* o) noexcept override {
    return base_->Attr(e, id, k, o);
  }

 private:
  MemoryFacts* base_;
  bool hide_;
};

TEST_F(EvaluatorTest, WorkspaceMembershipOrgSkipsWorkspaceRead) {
  // Found membership with its org: Workspace() is not read.
  CountingFacts with_org(&facts_, false);
  Request r;
  r.user = "agent";
  r.action = "workspace.access";
  r.workspace = "w1";
  EXPECT_TRUE(Evaluate(*policy_, r, with_org).allow);
  EXPECT_EQ(with_org.workspace_reads, 0);
  // Without the org in the membership, it falls back to Workspace().
  CountingFacts without_org(&facts_, true);
  EXPECT_TRUE(Evaluate(*policy_, r, without_org).allow);
  EXPECT_EQ(without_org.workspace_reads, 1);
  // Same decision for every user x action x scope, whether or not the membership carries the
  // org (unknown workspaces, scope mismatches, non-members, implied roles, org actions).
  const char* users[] = {"admin", "mem", "ua", "agent", "mgr", "odd", "other", "stranger", ""};
  const std::pair<const char*, const char*> scopes[] = {
      {"", "w1"}, {"o1", "w1"}, {"o2", "w1"}, {"", "w2"}, {"o2", "w2"}, {"o1", "w2"},
      {"", "nope"}, {"o1", "nope"}, {"o1", ""}, {"", ""}};
  int compared = 0;
  for (const char* u : users) {
    for (const auto& [org, ws] : scopes) {
      for (uint32_t a = 0; a < ActionCount(*policy_); ++a) {
        Request q;
        q.user = u;
        q.action = ActionName(*policy_, a);
        q.org = org;
        q.workspace = ws;
        CountingFacts f1(&facts_, false), f2(&facts_, true);
        Decision d1 = Evaluate(*policy_, q, f1), d2 = Evaluate(*policy_, q, f2);
        EXPECT_EQ(d1.allow, d2.allow) << u << " " << q.action << " " << org << "/" << ws;
        EXPECT_EQ(d1.reason, d2.reason) << u << " " << q.action << " " << org << "/" << ws;
        EXPECT_EQ(d1.rule, d2.rule) << u << " " << q.action << " " << org << "/" << ws;
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 2000);
  // A failing membership read still reports not_found for an unknown workspace (Workspace()
  // is consulted first, as before) and internal for a known one.
  CountingFacts failing(&facts_, false);
  failing.wm_error = true;
  r.workspace = "nope";
  EXPECT_EQ(Evaluate(*policy_, r, failing).reason, "not_found");
  r.workspace = "w1";
  EXPECT_EQ(Evaluate(*policy_, r, failing).reason, "internal");
}

}  // namespace
}  // namespace gatehouse::policy

namespace gatehouse::policy {
namespace {

// Every variable with a fixed place in the request or the facts, read by a condition in every
// way a request can resolve: org only; a workspace where the user has an explicit membership;
// a workspace without one; an org admin whose implied owner role outranks an explicit agent
// membership; an org action asked with a workspace. Pins the values of docs/policy.md §6.2
// (the same expectations hold for the engine before operand resolution, commit e3f959a).
TEST(EvaluatorVariablesTest, EveryVariableInEveryWayARequestResolves) {
  const std::vector<std::string> probes = {
      "has(workspace.id)",
      "workspace.id == \"w1\"",
      "has(membership.workspace_role)",
      "membership.workspace_role == \"agent\"",
      "has(membership.effective_role)",
      "membership.effective_role == \"agent\"",
      "membership.effective_role == \"owner\"",
      "membership.implied",
      "has(membership.team)",
      "membership.team == \"t1\"",
      "\"f1\" in membership.flags",
      "has(membership.contact_visibility)",
      "membership.contact_visibility == \"assigned_only\"",
      "org.id == \"o1\"",
      "has(org.plan)",
      "org.plan == \"pro\"",
      "org.status == \"ACTIVE\"",
      "org.members_and_pending == 5",
      "org.members == 3",
      "org.seats == 7",
      "has(org.sso.idp)",
      "org.sso.enforced",
      "\"sso\" in org.features",
      "membership.org_role in org.sso.exempt_roles",
      "membership.org_role == \"member\"",
      "user.id == \"bob\" || user.id == \"ann\"",
      "has(resource.type)",
      "resource.id == \"r1\"",
      "has(context.auth.age_s)",
      "context.auth.age_s >= 10",
      "context.auth.method == \"sso\"",
      "context.auth.idp != org.sso.idp",
      "has(context.client)",
  };
  std::string y = "actions:\n  org: [";
  for (size_t k = 0; k < probes.size(); ++k) y += (k ? ", o" : "o") + std::to_string(k);
  y += "]\n  workspace: [";
  for (size_t k = 0; k < probes.size(); ++k) y += (k ? ", w" : "w") + std::to_string(k);
  y +=
      "]\nroles:\n  org:\n    member: {}\n    admin: {}\n"
      "  workspace:\n    agent: {rank: 1}\n    owner: {rank: 3}\n"
      "implied:\n  - {org_role: admin, workspace_role: owner}\nrules:\n";
  for (size_t k = 0; k < probes.size(); ++k) {
    const std::string n = std::to_string(k);
    y += "  - {id: p" + n + ", effect: allow, actions: [o" + n + ", w" + n + "], condition: '" +
         probes[k] + "'}\n";
  }
  std::vector<Issue> issues;
  auto p = LoadPolicySources({{"p.yaml", y}}, &issues);
  ASSERT_TRUE(p) << (issues.empty() ? "" : issues[0].ToString());

  MemoryFacts mf;
  auto& o1 = mf.orgs["o1"];
  o1.plan = "pro";
  o1.seats = 7;
  o1.pending_invitations = 2;
  o1.features = {"sso"};
  o1.sso_enabled = o1.sso_enforced = true;
  o1.sso_idp = "idp-1";
  o1.sso_exempt_roles = {"admin"};
  o1.members = {{"bob", "member"}, {"ann", "admin"}, {"cy", "member"}};
  auto& w1 = mf.workspaces["w1"];
  w1.org = "o1";
  w1.members["bob"] = {"agent", "t1", {"f1"}, "assigned_only", {}};
  w1.members["ann"] = {"agent", "t1", {"f1"}, "assigned_only", {}};
  mf.Finalize();

  struct Case {
    const char* name;
    const char* user;
    const char* org;
    const char* ws;
    char prefix;           // 'o' org actions, 'w' workspace actions
    const char* expected;  // one char per probe: 1 allowed (condition true), 0 not
  } cases[] = {
      // probe:                                   0         1         2         3
      //                                          012345678901234567890123456789012
      {"org only", "bob", "o1", "", 'o',         "000000000000011111111110110000010"},
      {"explicit agent", "bob", "", "w1", 'w',   "111111001111111111111110110000010"},
      {"no membership", "cy", "", "w1", 'w',     "110000000000011111111110100000010"},
      {"implied owner", "ann", "", "w1", 'w',    "111110110000011111111111010000010"},
      {"org action, ws", "bob", "", "w1", 'o',   "111111001111111111111110110000010"},
  };
  KeyValue attrs[1] = {{"x", Value::String("y")}};
  for (const Case& c : cases) {
    ASSERT_EQ(std::strlen(c.expected), probes.size()) << c.name;
    for (int ctx = 0; ctx < 2; ++ctx) {
      std::string got;
      for (size_t k = 0; k < probes.size(); ++k) {
        const std::string action = c.prefix + std::to_string(k);
        Request r;
        r.user = c.user;
        r.org = c.org;
        r.workspace = c.ws;
        r.action = action;
        r.resource_attrs = attrs;
        if (ctx == 1) {  // a session with context and a resource
          r.resource_type = "conversation";
          r.resource_id = "r1";
          r.auth_method = "sso";
          r.auth_idp = "idp-2";
          r.auth_age_s = 30;
          r.client = "web";
        }
        got += Evaluate(*p, r, mf).allow ? '1' : '0';
      }
      std::string want = c.expected;
      if (ctx == 1) {  // the probes over the request's resource and context
        for (size_t k : {26, 27, 28, 29, 30, 31, 32}) want[k] = '1';
      }
      EXPECT_EQ(got, want) << c.name << (ctx ? " (with context)" : "");
    }
  }
}

// org.members_and_pending is computed for every request: huge counts saturate instead of
// overflowing (undefined behaviour; an abort under UBSan).
TEST(EvaluatorVariablesTest, MembersAndPendingSaturates) {
  std::vector<Issue> issues;
  auto p = LoadPolicySources(
      {{"p.yaml",
        "actions: {org: [a]}\nroles: {org: {member: {grants: [a]}}}\n"
        "rules:\n  - {id: full, effect: deny, actions: [a], reason: full,\n"
        "     condition: 'org.members_and_pending >= 9223372036854775807'}\n"}},
      &issues);
  ASSERT_TRUE(p) << (issues.empty() ? "" : issues[0].ToString());
  MemoryFacts mf;
  auto& o = mf.orgs["o"];
  o.members["u"] = "member";
  o.member_count = INT64_MAX;
  o.pending_invitations = 5;
  mf.Finalize();
  Request r;
  r.user = "u";
  r.org = "o";
  r.action = "a";
  EXPECT_EQ(Evaluate(*p, r, mf).reason, "full");
  o.member_count = 10;
  EXPECT_TRUE(Evaluate(*p, r, mf).allow);
}

}  // namespace
}  // namespace gatehouse::policy
