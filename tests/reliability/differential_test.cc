// Differential test: the real engine running the shipped policy (policies/respondio) against
// the reference evaluator (reference_evaluator.h, written from shared/spec/model.md), over
// random worlds and random requests — every action, every role combination, restriction flags,
// visibility, SSO contexts, locked/suspended orgs, mismatched org/workspace pairs, unknown ids.
//
// Also asserts tenant isolation on the engine alone: an allow always has a membership of the
// user in the resolved org.
//
// Cases: 1,000,000 by default; GATEHOUSE_DIFF_CASES=N overrides (the sanitizer builds use
// fewer: 100,000 with GATEHOUSE_SANITIZER_RUN=1); GATEHOUSE_LONG_TESTS=1 runs 10,000,000. GATEHOUSE_DIFF_SEED picks the seed.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "policy/facts.h"
#include "policy/memory_facts.h"
#include "policy/policy.h"
#include "tests/reliability/reference_evaluator.h"

namespace gatehouse::reliability {
namespace {

using policy::MemoryFacts;
using Rng = std::mt19937_64;

// Every id and value a request can carry is a view into these static pools.
const std::string_view kUsers[] = {"u0", "u1", "u2", "u3", "u4", "u5", "u6"};  // u6: unknown
constexpr int kKnownUsers = 6;
const std::string_view kOrgs[] = {"o0", "o1", "o2", "o9"};  // o9: unknown
constexpr int kKnownOrgs = 3;
const std::string_view kWorkspaces[] = {"w0", "w1", "w2", "w3", "w4", "w9"};  // w9: unknown
constexpr int kKnownWorkspaces = 5;
const std::string_view kOrgRoles[] = {"org_admin", "billing_admin", "user_admin", "member"};
const std::string_view kWsRoles[] = {"owner", "manager", "agent"};
const std::string_view kStatuses[] = {"TRIAL", "ACTIVE", "DOWNGRADING", "CANCELING",
                                      "PENDING_PAYMENT", "TRIAL_ENDED", "FROZEN", "CANCELED"};
const std::string_view kFlags[] = {"no_ws_settings", "no_contact_delete", "no_data_export",
                                   "no_integrations"};
const std::string_view kVisibility[] = {"", "all", "assigned_only", "assigned_or_unassigned",
                                        "assigned_or_team"};
const std::string_view kTeams[] = {"", "t1", "t2"};
const std::string_view kIdps[] = {"idp-1", "idp-2"};
const std::string_view kBogusActions[] = {"bogus.action", "org.view.x", "", "org", "ORG.VIEW",
                                          "conversation.*"};

template <typename T, size_t N>
const T& Pick(Rng& r, const T (&a)[N]) {
  return a[r() % N];
}
bool Chance(Rng& r, int percent) { return static_cast<int>(r() % 100) < percent; }

void RandomWorld(Rng& r, MemoryFacts* w) {
  *w = MemoryFacts();
  for (int u = 0; u < kKnownUsers; ++u) {
    auto& rec = w->users[std::string(kUsers[u])];
    rec.email = std::string(kUsers[u]) + "@example.com";
    rec.email_verified = Chance(r, 80);
  }
  for (int o = 0; o < kKnownOrgs; ++o) {
    auto& org = w->orgs[std::string(kOrgs[o])];
    org.status = std::string(Chance(r, 60) ? (Chance(r, 50) ? "ACTIVE" : "TRIAL")
                                           : Pick(r, kStatuses));
    org.suspended = Chance(r, 8);
    if (Chance(r, 60)) org.features.push_back("sso");
    if (Chance(r, 60)) org.features.push_back("webhooks");
    org.seats = static_cast<int64_t>(r() % 9);
    org.pending_invitations = static_cast<int64_t>(r() % 3);
    org.workspace_limit = static_cast<int64_t>(r() % 6);
    org.sso_enabled = Chance(r, 35);
    org.sso_enforced = org.sso_enabled && Chance(r, 60);
    org.sso_idp = org.sso_enabled ? std::string(Pick(r, kIdps)) : "";
    if (Chance(r, 30)) {
      org.sso_exempt_roles.clear();
      for (auto role : kOrgRoles) {
        if (Chance(r, 30)) org.sso_exempt_roles.emplace_back(role);
      }
    }
    for (int u = 0; u < kKnownUsers; ++u) {
      if (!Chance(r, 55)) continue;
      org.members[std::string(kUsers[u])] =
          Chance(r, 3) ? "auditor" : std::string(Pick(r, kOrgRoles));  // auditor: undeclared
    }
  }
  for (int i = 0; i < kKnownWorkspaces; ++i) {
    auto& ws = w->workspaces[std::string(kWorkspaces[i])];
    ws.org = std::string(kOrgs[r() % kKnownOrgs]);
    const auto& org = w->orgs[ws.org];
    for (int u = 0; u < kKnownUsers; ++u) {
      const bool in_org = org.members.count(kUsers[u]) > 0;
      // Mostly members of the org; rarely a stray membership breaking invariant 3 (the engine
      // must still deny: tenant isolation looks at the org membership only).
      if (!(in_org ? Chance(r, 60) : Chance(r, 4))) continue;
      auto& m = ws.members[std::string(kUsers[u])];
      m.role = std::string(Pick(r, kWsRoles));
      m.team = std::string(Pick(r, kTeams));
      if (m.role == "manager") {
        for (auto f : kFlags) {
          if (Chance(r, 25)) m.flags.emplace_back(f);
        }
      }
      if (m.role == "agent") m.contact_visibility = std::string(Pick(r, kVisibility));
    }
  }
  w->Finalize();
}

struct Case {
  policy::Request req;
  policy::KeyValue attrs[5];
};

void RandomRequest(Rng& r, const std::vector<std::string>& actions, Case* c) {
  policy::Request& q = c->req;
  q = policy::Request();
  q.user = Chance(r, 90) ? kUsers[r() % kKnownUsers] : kUsers[kKnownUsers];
  q.action = Chance(r, 96) ? std::string_view(actions[r() % actions.size()])
                           : Pick(r, kBogusActions);
  auto org = [&] { return Chance(r, 92) ? kOrgs[r() % kKnownOrgs] : kOrgs[kKnownOrgs]; };
  auto ws = [&] {
    return Chance(r, 92) ? kWorkspaces[r() % kKnownWorkspaces] : kWorkspaces[kKnownWorkspaces];
  };
  switch (r() % 20) {
    case 0: break;  // neither
    case 1: case 2: case 3: case 4: case 5: case 6: q.org = org(); break;
    case 7: case 8: q.org = org(); q.workspace = ws(); break;  // often mismatched
    default: q.workspace = ws(); break;  // (the runner adds the matching org sometimes)
  }
  size_t n = 0;
  auto any_role = [&]() -> std::string_view {
    return Chance(r, 50) ? Pick(r, kOrgRoles) : Pick(r, kWsRoles);
  };
  if (Chance(r, 60)) {
    c->attrs[n++] = {"target_user", policy::Value::String(Chance(r, 30) ? q.user
                                                                         : Pick(r, kUsers))};
  }
  if (Chance(r, 60)) c->attrs[n++] = {"target_role", policy::Value::String(any_role())};
  if (Chance(r, 60)) c->attrs[n++] = {"new_role", policy::Value::String(any_role())};
  if (Chance(r, 70)) {
    std::string_view a = Chance(r, 40) ? q.user : (Chance(r, 30) ? "" : Pick(r, kUsers));
    c->attrs[n++] = {"assignee", policy::Value::String(a)};
  }
  if (Chance(r, 60)) c->attrs[n++] = {"team", policy::Value::String(Pick(r, kTeams))};
  // Shuffle so lookups by key do not depend on position.
  std::shuffle(c->attrs, c->attrs + n, r);
  q.resource_attrs = policy::AttrList(c->attrs, n);
  if (Chance(r, 50)) q.resource_type = "conversation";
  switch (r() % 4) {
    case 0: break;
    case 1: q.auth_method = "password"; break;
    case 2: q.auth_method = "google"; break;
    default: q.auth_method = "sso"; break;
  }
  if (Chance(r, 70)) q.auth_idp = Chance(r, 80) ? Pick(r, kIdps) : "idp-x";
  static const int64_t kAges[] = {-1, 0, 600, 86399, 86400, 100000};
  q.auth_age_s = Pick(r, kAges);
}

std::string Describe(const MemoryFacts& w) {
  std::ostringstream o;
  for (const auto& [id, org] : w.orgs) {
    o << "  org " << id << ": status=" << org.status << " suspended=" << org.suspended
      << " seats=" << org.seats << " pending=" << org.pending_invitations
      << " ws_limit=" << org.workspace_limit << " features=[";
    for (const auto& f : org.features) o << f << " ";
    o << "] sso{enabled=" << org.sso_enabled << " enforced=" << org.sso_enforced
      << " idp=" << org.sso_idp << " exempt=[";
    for (const auto& e : org.sso_exempt_roles) o << e << " ";
    o << "]} members={";
    for (const auto& [u, role] : org.members) o << u << ":" << role << " ";
    o << "}\n";
  }
  for (const auto& [id, ws] : w.workspaces) {
    o << "  workspace " << id << " (org " << ws.org << "): ";
    for (const auto& [u, m] : ws.members) {
      o << u << ":" << m.role;
      if (!m.team.empty()) o << "/team=" << m.team;
      for (const auto& f : m.flags) o << "/" << f;
      if (!m.contact_visibility.empty()) o << "/vis=" << m.contact_visibility;
      o << " ";
    }
    o << "\n";
  }
  return o.str();
}

std::string Describe(const policy::Request& q) {
  std::ostringstream o;
  o << "user=" << q.user << " action=" << q.action << " org=" << q.org
    << " workspace=" << q.workspace << " attrs={";
  for (const auto& kv : q.resource_attrs) o << kv.key << ":\"" << kv.value.s << "\" ";
  o << "} auth{method=" << q.auth_method << " idp=" << q.auth_idp << " age_s=" << q.auth_age_s
    << "}";
  return o.str();
}

uint64_t EnvU64(const char* name, uint64_t dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : dflt;
}

std::shared_ptr<const policy::CompiledPolicy> LoadShipped(std::string* problems) {
  std::vector<policy::Issue> issues;
  // GATEHOUSE_DIFF_POLICY_DIR: run against another policy (e.g. a mutated copy, to see the
  // test fail).
  const char* dir = std::getenv("GATEHOUSE_DIFF_POLICY_DIR");
  auto p = policy::LoadPolicyDir(dir ? dir : GATEHOUSE_SOURCE_DIR "/policies/respondio", &issues);
  for (const auto& i : issues) *problems += i.ToString() + "\n";
  return p;
}

TEST(ReferenceEvaluatorTest, SpotChecksFromTheSpec) {
  // A hand-built world so the oracle itself is tested against the spec text.
  MemoryFacts w;
  auto& o = w.orgs["o1"];
  o.members = {{"admin", "org_admin"}, {"bill", "billing_admin"}, {"ua", "user_admin"},
               {"mem", "member"}, {"agent", "member"}, {"mgr", "member"}};
  o.seats = 10;
  auto& ws = w.workspaces["w1"];
  ws.org = "o1";
  ws.members["agent"].role = "agent";
  ws.members["agent"].contact_visibility = "assigned_only";
  ws.members["mgr"].role = "manager";
  ws.members["mgr"].flags = {"no_data_export"};
  ws.members["admin"].role = "manager";
  ws.members["admin"].flags = {"no_ws_settings"};
  w.workspaces["w2"].org = "o2";
  w.orgs["o2"];
  w.Finalize();
  auto eval = [&](std::string_view user, std::string_view action, std::string_view org,
                  std::string_view wsid, std::vector<policy::KeyValue> attrs = {}) {
    policy::Request q;
    q.user = user, q.action = action, q.org = org, q.workspace = wsid;
    q.resource_attrs = attrs;
    return ReferenceEvaluate(w, q);
  };
  EXPECT_TRUE(eval("mem", "org.view", "o1", "").allow);
  EXPECT_FALSE(eval("mem", "org.settings.open", "o1", "").allow);
  EXPECT_TRUE(eval("bill", "org.billing.manage", "o1", "").allow);
  EXPECT_FALSE(eval("bill", "workspace.access", "", "w1").allow);  // no implied ws access
  EXPECT_TRUE(eval("admin", "workspace.settings.manage", "", "w1").allow);  // implied owner
  EXPECT_FALSE(eval("mgr", "data.export", "", "w1").allow);
  EXPECT_TRUE(eval("mgr", "contact.export", "", "w1").reason == "restricted");
  EXPECT_TRUE(eval("mgr", "contact.delete", "", "w1").allow);
  EXPECT_EQ(eval("mem", "org.view", "o1", "w2").reason, "scope_mismatch");
  EXPECT_EQ(eval("nobody", "org.view", "o1", "").reason, "not_member");
  EXPECT_EQ(eval("mem", "nope", "o1", "").reason, "unknown_action");
  EXPECT_EQ(eval("mem", "workspace.access", "o1", "").reason, "scope_required");
  policy::KeyValue self[] = {{"target_user", policy::Value::String("ua")},
                             {"new_role", policy::Value::String("member")}};
  EXPECT_FALSE(eval("ua", "org.users.role.assign", "o1", "", {self[0], self[1]}).allow);
  policy::KeyValue up[] = {{"target_user", policy::Value::String("mem")},
                           {"new_role", policy::Value::String("billing_admin")}};
  EXPECT_FALSE(eval("ua", "org.users.role.assign", "o1", "", {up[0], up[1]}).allow);
  EXPECT_TRUE(eval("admin", "org.users.role.assign", "o1", "", {up[0], up[1]}).allow);
  policy::KeyValue mine[] = {{"assignee", policy::Value::String("agent")}};
  policy::KeyValue other[] = {{"assignee", policy::Value::String("x")}};
  EXPECT_TRUE(eval("agent", "conversation.reply", "", "w1", {mine[0]}).allow);
  EXPECT_FALSE(eval("agent", "conversation.reply", "", "w1", {other[0]}).allow);
  EXPECT_FALSE(eval("agent", "conversation.view_all", "", "w1").allow);
}

TEST(DifferentialTest, ShippedPolicyMatchesReference) {
  std::string problems;
  auto policy = LoadShipped(&problems);
  if (!std::filesystem::exists(GATEHOUSE_SOURCE_DIR "/policies/respondio/00_catalog.yaml")) {
    GTEST_SKIP() << "policies/respondio not present";
  }
  ASSERT_TRUE(policy) << "shipped policy does not load:\n" << problems;

  const bool long_run = std::getenv("GATEHOUSE_LONG_TESTS") != nullptr;
  // Sanitizer builds (GATEHOUSE_SANITIZER_RUN=1, set by .ci/run) are ~10x slower.
  const bool sanitized = std::getenv("GATEHOUSE_SANITIZER_RUN") != nullptr;
  const uint64_t cases = EnvU64("GATEHOUSE_DIFF_CASES", long_run    ? 10'000'000
                                                        : sanitized ? 100'000
                                                                    : 1'000'000);
  const uint64_t seed = EnvU64("GATEHOUSE_DIFF_SEED", 20261129);
  Rng rng(seed);

  // Actions: every spec action, plus every catalog action (those not in the spec are only
  // checked for tenant isolation).
  std::vector<std::string> actions = SpecActions();
  std::set<std::string> catalog;
  for (size_t i = 0; i < policy::ActionCount(*policy); ++i) {
    catalog.emplace(policy::ActionName(*policy, static_cast<uint32_t>(i)));
  }
  for (const auto& a : catalog) {
    if (ActionScope(a) == RefScope::kUnknown) actions.push_back(a);
  }

  MemoryFacts world;
  Case c;
  uint64_t mismatches = 0, isolation = 0, allows = 0, compared = 0, reasons_compared = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> per_action;  // allow, deny
  std::map<std::string, uint64_t> categories;  // mismatch kinds
  uint64_t lists_compared = 0, list_mismatches = 0;
  for (uint64_t i = 0; i < cases; ++i) {
    if (i % 256 == 0) RandomWorld(rng, &world);
    RandomRequest(rng, actions, &c);
    // Half of the workspace-only requests also name the workspace's (right) org.
    if (!c.req.workspace.empty() && c.req.org.empty() && Chance(rng, 30)) {
      auto it = world.workspaces.find(c.req.workspace);
      if (it != world.workspaces.end()) c.req.org = it->second.org;
    }
    const policy::Decision got = policy::Evaluate(*policy, c.req, world);

    // Tenant isolation, independent of the reference.
    if (got.allow) {
      ++allows;
      std::string_view org = c.req.org;
      if (!c.req.workspace.empty()) {
        auto it = world.workspaces.find(c.req.workspace);
        org = it == world.workspaces.end() ? std::string_view() : std::string_view(it->second.org);
      }
      auto oit = world.orgs.find(org);
      const bool member = oit != world.orgs.end() && oit->second.members.count(c.req.user);
      const bool consistent = c.req.org.empty() || c.req.org == org;
      if (!member || !consistent) {
        if (++isolation <= 5) {
          ADD_FAILURE() << "TENANT ISOLATION: allow without membership in the resolved org\n"
                        << Describe(world) << "  request: " << Describe(c.req);
        }
      }
    }
    // Every 64th case: list_actions (ListAllowedActions, its own code path) must return
    // exactly the catalog actions the reference allows for this user and scope.
    if (i % 64 == 0) {
      ++lists_compared;
      std::vector<uint32_t> out(policy::ActionCount(*policy));
      const size_t n = policy::ListAllowedActions(*policy, c.req, world, out.data(), out.size());
      std::set<std::string> listed, want_list;
      for (size_t k = 0; k < n; ++k) listed.emplace(policy::ActionName(*policy, out[k]));
      policy::Request q = c.req;
      for (const auto& a : catalog) {
        q.action = a;
        if (ActionScope(a) != RefScope::kUnknown && ReferenceEvaluate(world, q).allow) {
          want_list.insert(a);
        }
      }
      if (listed != want_list && ++list_mismatches <= 5) {
        std::string l1, l2;
        for (const auto& a : listed) l1 += a + " ";
        for (const auto& a : want_list) l2 += a + " ";
        ADD_FAILURE() << "LIST_ACTIONS MISMATCH (case " << i << ")\nworld:\n" << Describe(world)
                      << "request: " << Describe(c.req) << "\nengine:    " << l1
                      << "\nreference: " << l2;
      }
    }
    const bool spec_action = ActionScope(c.req.action) != RefScope::kUnknown;
    const bool bogus = !catalog.count(std::string(c.req.action));
    if (!spec_action && !bogus) continue;  // a catalog extra the spec does not describe
    const RefDecision want = ReferenceEvaluate(world, c.req);
    ++compared;
    auto& pa = per_action[std::string(c.req.action)];
    (want.allow ? pa.first : pa.second)++;
    bool bad = got.allow != want.allow;
    if (!bad && !want.allow && want.reason_is_spec) {
      ++reasons_compared;
      bad = got.reason != want.reason;
    }
    if (bad) {
      categories[std::string(c.req.action) + ": engine " + (got.allow ? "allow" : "deny") + "/" +
                 std::string(got.reason) + " vs reference " + (want.allow ? "allow" : "deny") +
                 "/" + want.reason]++;
    }
    if (bad && ++mismatches <= 10) {
      ADD_FAILURE() << "MISMATCH (case " << i << ", seed " << seed << ")\nworld:\n"
                    << Describe(world) << "request: " << Describe(c.req) << "\nengine:    allow="
                    << got.allow << " rule=" << got.rule << " reason=" << got.reason
                    << "\nreference: allow=" << want.allow << " reason=" << want.reason;
    }
  }
  std::printf("differential: %" PRIu64 " cases, %" PRIu64 " compared, %" PRIu64
              " reasons compared, %" PRIu64 " allows, %" PRIu64 " mismatches, %" PRIu64
              " isolation failures\n",
              cases, compared, reasons_compared, allows, mismatches, isolation);
  for (const auto& [k, n] : categories) std::printf("  mismatch x%" PRIu64 ": %s\n", n, k.c_str());
  std::printf("list_actions: %" PRIu64 " compared, %" PRIu64 " mismatches\n", lists_compared,
              list_mismatches);
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(list_mismatches, 0u);
  EXPECT_EQ(isolation, 0u);
  // The generator must reach both outcomes for (nearly) every spec action, or the test is
  // vacuous for that action.
  if (cases >= 200'000) {
    for (const auto& a : SpecActions()) {
      EXPECT_GT(per_action[a].first, 0u) << "never allowed: " << a;
      EXPECT_GT(per_action[a].second, 0u) << "never denied: " << a;
    }
  }
}

}  // namespace
}  // namespace gatehouse::reliability
