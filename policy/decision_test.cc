// Decision programs (policy/internal/decision.h) against the rule loop they replace: the same
// Decision (allow, rule, reason) for random worlds, requests and failing facts, whether every
// action, some or none has a program; and the jump threading leaves no step whose successor
// repeats its test.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "policy/internal/compiled.h"
#include "policy/internal/decision.h"
#include "policy/memory_facts.h"
#include "policy/policy.h"

namespace gatehouse::policy {
namespace {

using internal::FOp;
using internal::FStep;
using internal::kEndRule;
using internal::kNone;

// Facts that fail (kError) on the n-th call (n < 0: never): reaches every failure point of a
// decision, including user and attribute loads in the middle of a condition.
class FailingFacts final : public Facts {
 public:
  FailingFacts(MemoryFacts* base, int fail_at) : base_(base), fail_at_(fail_at) {}
  Lookup User(std::string_view u, UserFacts* o) noexcept override {
    return Fail() ? Lookup::kError : base_->User(u, o);
  }
  Lookup Org(std::string_view g, OrgFacts* o) noexcept override {
    return Fail() ? Lookup::kError : base_->Org(g, o);
  }
  Lookup Workspace(std::string_view w, WorkspaceFacts* o) noexcept override {
    return Fail() ? Lookup::kError : base_->Workspace(w, o);
  }
  Lookup OrgMembership(std::string_view u, std::string_view g,
                       OrgMembershipFacts* o) noexcept override {
    return Fail() ? Lookup::kError : base_->OrgMembership(u, g, o);
  }
  Lookup WorkspaceMembership(std::string_view u, std::string_view w,
                             WorkspaceMembershipFacts* o) noexcept override {
    return Fail() ? Lookup::kError : base_->WorkspaceMembership(u, w, o);
  }
  Lookup Attr(Entity e, std::string_view id, std::string_view k, Value* o) noexcept override {
    return Fail() ? Lookup::kError : base_->Attr(e, id, k, o);
  }

 private:
  bool Fail() { return calls_++ == fail_at_; }
  MemoryFacts* base_;
  int fail_at_;
  int calls_ = 0;
};

// A policy exercising every rule-loop feature: 70 workspace roles (rule roles on both sides of
// id 64), implied roles, wildcard and excepted actions, deny and allow rules with and without
// roles and conditions, generic leaves (user.email, org.attrs, action.name, ordering), request
// attributes, and an overlay for org o1 with its own role and rules.
std::vector<SourceFile> TestPolicy() {
  std::string y =
      "actions:\n"
      "  org: [o.view, o.manage, o.billing.view, o.billing.manage]\n"
      "  workspace: [w.view, w.edit, w.delete, w.export, w.admin.x, w.admin.y]\n"
      "roles:\n"
      "  org:\n"
      "    member: {grants: [o.view]}\n"
      "    billing: {includes: [member], grants: [o.billing.*]}\n"
      "    admin: {includes: [billing], grants: [o.*]}\n"
      "  workspace:\n"
      "    viewer: {rank: 1, grants: [w.view]}\n"
      "    editor: {rank: 2, includes: [viewer], grants: [w.edit]}\n"
      "    boss: {rank: 3, includes: [editor], grants: ['*']}\n";
  for (int i = 0; i < 67; ++i) y += "    x" + std::to_string(i) + ": {rank: 0}\n";
  y +=
      "implied:\n"
      "  - {org_role: admin, workspace_role: boss}\n"
      "rules:\n"
      "  - {id: susp, effect: deny, actions: ['*'], condition: org.suspended, reason: s}\n"
      "  - {id: lock, effect: deny, actions: ['*'], except: [o.view, o.billing.*],\n"
      "     condition: 'org.status in [\"FROZEN\", \"CANCELED\"]', reason: l}\n"
      "  - {id: sso1, effect: deny, actions: ['*'], reason: sso,\n"
      "     condition: 'org.sso.enforced && !(membership.org_role in org.sso.exempt_roles)"
      " && (context.auth.method != \"sso\" || context.auth.idp != org.sso.idp)'}\n"
      "  - {id: sso2, effect: deny, actions: ['*'], reason: age,\n"
      "     condition: 'org.sso.enforced && (!has(context.auth.age_s) || context.auth.age_s >= 100)'}\n"
      "  - {id: self, effect: deny, actions: [w.delete, o.manage], reason: self,\n"
      "     condition: 'resource.attrs.target == user.id'}\n"
      "  - {id: mail, effect: deny, roles: [editor, x66], actions: [w.export], reason: mail,\n"
      "     condition: 'user.email == \"bad@x\" || !user.email_verified'}\n"
      "  - {id: tier, effect: deny, actions: [w.admin.*], reason: tier,\n"
      "     condition: 'org.attrs.tier != \"gold\"'}\n"
      "  - {id: flags, effect: deny, roles: [editor], actions: [w.edit, w.delete], reason: flag,\n"
      "     condition: '\"ro\" in membership.flags'}\n"
      "  - {id: seats, effect: deny, actions: [o.manage], reason: seats,\n"
      "     condition: 'org.members_and_pending >= org.seats'}\n"
      "  - {id: act, effect: allow, roles: [viewer, x63, x64], actions: [w.*], reason: act,\n"
      "     condition: 'action.name == \"w.delete\" && resource.attrs.n > 3'}\n"
      "  - {id: vis, effect: allow, roles: [viewer], actions: [w.edit, w.export], reason: vis,\n"
      "     condition: '!has(membership.contact_visibility) || membership.contact_visibility == \"all\"\n"
      "       || (membership.contact_visibility == \"team\" && has(membership.team)\n"
      "           && resource.attrs.team == membership.team)'}\n"
      "  - {id: any, effect: allow, actions: [w.admin.y], reason: any}\n"
      "  - {id: dyn, effect: deny, actions: [w.edit, o.billing.view], reason: dyn,\n"
      "     condition: '!resource.attrs.ok && (resource.attrs.ok || has(resource.attrs.n))'}\n"
      "  - {id: x65, effect: allow, roles: [x65, member], actions: [w.view, o.billing.view],\n"
      "     reason: x, condition: 'context.client < \"m\"'}\n";
  std::string overlay =
      "overlay: {org: o1}\n"
      "roles:\n"
      "  workspace:\n"
      "    auditor: {rank: 0, grants: [w.view]}\n"
      "rules:\n"
      "  - {id: o1-no-export, effect: deny, actions: [w.export], reason: o1}\n"
      "  - {id: o1-audit, effect: allow, roles: [auditor], actions: [w.edit],\n"
      "     condition: 'workspace.id == \"w1\"'}\n";
  return {{"p.yaml", y}, {"o1.yaml", overlay}};
}

std::shared_ptr<const CompiledPolicy> Load(const std::vector<SourceFile>& src) {
  std::vector<Issue> issues;
  auto p = LoadPolicySources(src, &issues);
  for (const Issue& i : issues) ADD_FAILURE() << i.ToString();
  return p;
}

// A copy of p whose decision programs are rebuilt with at most max_steps steps (0: none, so
// every action goes through the rule loop). The copy's views point into p's strings.
std::shared_ptr<CompiledPolicy> Rebuilt(const CompiledPolicy& p, size_t max_steps) {
  auto c = std::make_shared<CompiledPolicy>(p);
  internal::BuildDecisionPrograms(c.get(), max_steps);
  return c;
}

bool SameTest(const FStep& x, const FStep& y) {
  return x.op == y.op && x.cmp == y.cmp && x.abase == y.abase && x.bbase == y.bbase &&
         x.aoff == y.aoff && x.boff == y.boff && x.arg == y.arg && x.arg2 == y.arg2 &&
         (x.op != FOp::kRoleList && x.op != FOp::kOverlay ? true : x.rule == y.rule);
}

void RandomWorld(std::mt19937_64& r, MemoryFacts* w) {
  static const char* kOrgRoles[] = {"member", "billing", "admin", "nobody"};
  static const char* kWsRoles[] = {"viewer", "editor", "boss", "x63", "x64", "x65", "x66",
                                   "auditor", "x0"};
  static const char* kVis[] = {"", "all", "team", "none"};
  *w = MemoryFacts();
  for (const char* o : {"o1", "o2"}) {
    auto& org = w->orgs[o];
    org.status = r() % 4 ? "ACTIVE" : (r() % 2 ? "FROZEN" : "TRIAL");
    org.suspended = r() % 10 == 0;
    org.seats = static_cast<int64_t>(r() % 6);
    org.sso_enabled = org.sso_enforced = r() % 3 == 0;
    org.sso_idp = "idp";
    org.sso_exempt_roles = {"admin"};
    if (r() % 2) org.attrs["tier"] = OwnedValue{Value::Kind::kString, false, 0, 0, "gold"};
    for (int u = 0; u < 5; ++u) {
      if (r() % 5) org.members["u" + std::to_string(u)] = kOrgRoles[r() % 4];
    }
  }
  for (int k = 0; k < 3; ++k) {
    auto& ws = w->workspaces["w" + std::to_string(k)];
    ws.org = k == 2 ? "o2" : "o1";
    for (int u = 0; u < 5; ++u) {
      if (r() % 3 == 0) continue;
      MemoryFacts::WorkspaceMember m;
      m.role = kWsRoles[r() % 9];
      m.team = r() % 2 ? "t1" : "";
      if (r() % 3 == 0) m.flags.push_back("ro");
      m.contact_visibility = kVis[r() % 4];
      ws.members["u" + std::to_string(u)] = m;
    }
  }
  for (int u = 0; u < 5; ++u) {
    auto& rec = w->users["u" + std::to_string(u)];
    rec.email = r() % 4 ? "ok@x" : "bad@x";
    rec.email_verified = r() % 5 != 0;
  }
  w->Finalize();
}

TEST(DecisionProgramTest, MatchesTheRuleLoop) {
  auto p = Load(TestPolicy());
  ASSERT_TRUE(p);
  for (uint32_t a = 0; a < p->actions.size(); ++a) EXPECT_NE(p->decision_entry[a], kNone);
  auto loop = Rebuilt(*p, 0);
  for (uint32_t a = 0; a < loop->actions.size(); ++a) EXPECT_EQ(loop->decision_entry[a], kNone);
  auto partial = Rebuilt(*p, p->decision_steps.size() / 2);
  int with_program = 0;
  for (uint32_t e : partial->decision_entry) with_program += e != kNone;
  EXPECT_GT(with_program, 0);
  EXPECT_LT(with_program, static_cast<int>(partial->actions.size()));

  static const char* kActions[] = {"o.view", "o.manage", "o.billing.view", "o.billing.manage",
                                   "w.view", "w.edit", "w.delete", "w.export", "w.admin.x",
                                   "w.admin.y", "nope"};
  static const char* kUsers[] = {"u0", "u1", "u2", "u3", "u4", "u9"};
  static const char* kScopes[][2] = {{"o1", ""}, {"o2", ""}, {"", "w0"}, {"", "w1"},
                                     {"", "w2"}, {"o1", "w2"}, {"", "w7"}};
  std::mt19937_64 r(20261129);
  MemoryFacts world;
  int allows = 0, internals = 0, rules_decided = 0;
  for (int iter = 0; iter < 400; ++iter) {
    RandomWorld(r, &world);
    for (int q = 0; q < 50; ++q) {
      Request req;
      req.user = kUsers[r() % 6];
      req.action = kActions[r() % 11];
      const auto& sc = kScopes[r() % 7];
      req.org = sc[0];
      req.workspace = sc[1];
      static const Value kOk[] = {Value::Bool(true), Value::Bool(false), Value::String("y"),
                                  Value::Int(1)};
      KeyValue attrs[4] = {{"target", Value::String(kUsers[r() % 6])},
                           {"n", Value::Int(static_cast<int64_t>(r() % 6))},
                           {"team", Value::String(r() % 2 ? "t1" : "t2")},
                           {"ok", kOk[r() % 4]}};
      req.resource_attrs = AttrList(attrs, r() % 5);
      req.auth_method = r() % 2 ? "sso" : "password";
      req.auth_idp = "idp";
      req.auth_age_s = static_cast<int64_t>(r() % 200) - 20;
      req.client = r() % 2 ? "app" : "web";
      const int fail_at = r() % 4 == 0 ? static_cast<int>(r() % 6) : -1;
      Decision want, got;
      {
        FailingFacts f(&world, fail_at);
        want = Evaluate(*loop, req, f);
      }
      for (const CompiledPolicy* c : {p.get(), static_cast<const CompiledPolicy*>(partial.get())}) {
        FailingFacts f(&world, fail_at);
        got = Evaluate(*c, req, f);
        ASSERT_EQ(got.allow, want.allow) << req.user << " " << req.action << " " << req.org
                                         << "/" << req.workspace << " fail " << fail_at;
        ASSERT_EQ(got.rule, want.rule) << req.user << " " << req.action;
        ASSERT_EQ(got.reason, want.reason) << req.user << " " << req.action;
      }
      allows += want.allow;
      internals += want.reason == "internal" && !want.rule.empty();
      rules_decided += !want.rule.empty() && want.rule.substr(0, 5) != "role:";
    }
  }
  // The cases reach allows, rule decisions and failures inside conditions.
  EXPECT_GT(allows, 1000);
  EXPECT_GT(rules_decided, 2000);
  EXPECT_GT(internals, 20);
}

TEST(DecisionProgramTest, JumpThreadingSkipsRepeatedTests) {
  auto p = Load(TestPolicy());
  ASSERT_TRUE(p);
  auto unthreaded = std::make_shared<CompiledPolicy>(*p);
  internal::BuildDecisionPrograms(unthreaded.get(), internal::kMaxDecisionSteps,
                                  /*thread_jumps=*/false);
  auto repeats = [](const CompiledPolicy& c) {
    int n = 0;
    for (const FStep& x : c.decision_steps) {
      for (uint32_t t : x.next) {
        n += x.op != FOp::kGeneric && t < kEndRule && SameTest(x, c.decision_steps[t]);
      }
    }
    return n;
  };
  // sso1 and sso2 both start with org.sso.enforced: unthreaded, sso1's first step continues
  // at an identical test when it is false.
  EXPECT_GT(repeats(*unthreaded), 0);
  EXPECT_EQ(repeats(*p), 0);
}

}  // namespace
}  // namespace gatehouse::policy
