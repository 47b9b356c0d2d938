// Policy engine benchmarks (docs/policy.md §11). Run with
//   policy_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// and read the median rows (p50 of the repetition means).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include "policy/memory_facts.h"
#include "policy/policy.h"

// The example policy lives in the source tree: found relative to this file.
std::string SourceDir() {
  std::string f = __FILE__;  // .../bench/policy_bench.cc
  size_t slash = f.rfind('/');
  f = slash == std::string::npos ? "." : f.substr(0, slash);
  slash = f.rfind('/');
  return slash == std::string::npos ? ".." : f.substr(0, slash);
}

namespace gatehouse::policy {
namespace {

std::shared_ptr<const CompiledPolicy> Must(std::shared_ptr<const CompiledPolicy> p,
                                           const std::vector<Issue>& issues) {
  if (!p) {
    for (const Issue& i : issues) std::fprintf(stderr, "%s\n", i.ToString().c_str());
    std::abort();
  }
  return p;
}

// The example policy (policy/testdata/example) and facts for a typical workspace request.
struct Typical {
  std::shared_ptr<const CompiledPolicy> policy;
  MemoryFacts facts;
  KeyValue attrs[2] = {{"assignee", Value::String("zoe")}, {"team", Value::String("t1")}};
  Request req;

  Typical() {
    std::vector<Issue> issues;
    policy = Must(LoadPolicyDir(SourceDir() + "/policy/testdata/example",
                                &issues),
                  issues);
    auto& o = facts.orgs["o1"];
    o.features = {"sso", "webhooks"};
    o.sso_idp = "idp-1";
    for (int k = 0; k < 50; ++k) o.members["user" + std::to_string(k)] = "member";
    o.members["bob"] = "member";
    o.members["alice"] = "org_admin";
    auto& w = facts.workspaces["w1"];
    w.org = "o1";
    w.members["bob"] = {"agent", "t1", {}, "assigned_or_team", {}};
    facts.Finalize();
    req.user = "bob";
    req.action = "conversation.reply";
    req.workspace = "w1";
    req.resource_type = "conversation";
    req.resource_id = "c9";
    req.resource_attrs = attrs;
    req.auth_method = "sso";
    req.auth_idp = "idp-1";
    req.auth_age_s = 600;
  }
};

Typical& GetTypical() {
  static Typical t;
  return t;
}

void BM_DecisionTypical(benchmark::State& state) {
  Typical& t = GetTypical();
  Decision d = Evaluate(*t.policy, t.req, t.facts);
  if (!d.allow || d.rule != "agent-visible") state.SkipWithError("unexpected decision");
  for (auto _ : state) {
    Decision d = Evaluate(*t.policy, t.req, t.facts);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_DecisionTypical);

// Facts already resolved (what an adapter over an open store view returns): isolates the
// engine's own cost from the fixture maps of MemoryFacts.
class FixedFacts final : public Facts {
 public:
  explicit FixedFacts(MemoryFacts& m, std::string_view user, std::string_view org,
                      std::string_view ws) {
    m.User(user, &user_);
    m.Org(org, &org_);
    m.Workspace(ws, &ws_);
    m.OrgMembership(user, org, &om_);
    m.WorkspaceMembership(user, ws, &wm_);
  }
  OrgFacts& org() { return org_; }
  Lookup User(std::string_view, UserFacts* o) noexcept override { *o = user_; return Lookup::kFound; }
  Lookup Org(std::string_view, OrgFacts* o) noexcept override { *o = org_; return Lookup::kFound; }
  Lookup Workspace(std::string_view, WorkspaceFacts* o) noexcept override {
    *o = ws_;
    return Lookup::kFound;
  }
  Lookup OrgMembership(std::string_view, std::string_view, OrgMembershipFacts* o) noexcept override {
    *o = om_;
    return Lookup::kFound;
  }
  Lookup WorkspaceMembership(std::string_view, std::string_view,
                             WorkspaceMembershipFacts* o) noexcept override {
    *o = wm_;
    return Lookup::kFound;
  }
  Lookup Attr(Entity, std::string_view, std::string_view, Value*) noexcept override {
    return Lookup::kNotFound;
  }

 private:
  UserFacts user_;
  OrgFacts org_;
  WorkspaceFacts ws_;
  OrgMembershipFacts om_;
  WorkspaceMembershipFacts wm_;
};

void BM_DecisionTypicalFixedFacts(benchmark::State& state) {
  Typical& t = GetTypical();
  FixedFacts facts(t.facts, "bob", "o1", "w1");
  if (!Evaluate(*t.policy, t.req, facts).allow) state.SkipWithError("unexpected decision");
  for (auto _ : state) {
    Decision d = Evaluate(*t.policy, t.req, facts);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_DecisionTypicalFixedFacts);

// SSO enforced: both SSO gate rules evaluate their whole condition on every request.
void BM_DecisionTypicalSsoEnforced(benchmark::State& state) {
  Typical& t = GetTypical();
  FixedFacts facts(t.facts, "bob", "o1", "w1");
  facts.org().sso_enabled = facts.org().sso_enforced = true;
  if (!Evaluate(*t.policy, t.req, facts).allow) state.SkipWithError("unexpected decision");
  for (auto _ : state) {
    Decision d = Evaluate(*t.policy, t.req, facts);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_DecisionTypicalSsoEnforced);

void BM_DecisionGrantOnly(benchmark::State& state) {
  Typical& t = GetTypical();
  Request r = t.req;
  r.user = "alice";
  r.action = "org.billing.view";
  r.workspace = {};
  r.org = "o1";
  for (auto _ : state) {
    Decision d = Evaluate(*t.policy, r, t.facts);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_DecisionGrantOnly);

void BM_ListAllowedActionsTypical(benchmark::State& state) {
  Typical& t = GetTypical();
  std::vector<uint32_t> out(ActionCount(*t.policy));
  Request r = t.req;
  r.user = "alice";  // implied owner: every action, every rule list walked
  FixedFacts facts(t.facts, "alice", "o1", "w1");
  if (ListAllowedActions(*t.policy, r, facts, out.data(), out.size()) != out.size()) {
    state.SkipWithError("unexpected list");
  }
  for (auto _ : state) {
    size_t n = ListAllowedActions(*t.policy, r, facts, out.data(), out.size());
    benchmark::DoNotOptimize(n);
  }
  state.counters["actions"] = static_cast<double>(ActionCount(*t.policy));
}
BENCHMARK(BM_ListAllowedActionsTypical);

// The shipped respond.io policy (policies/respondio), if present: same request shapes.
struct Respondio {
  std::shared_ptr<const CompiledPolicy> policy;
  MemoryFacts facts;
  KeyValue attrs[2] = {{"assignee", Value::String("zoe")}, {"team", Value::String("t1")}};
  Request req;
  Respondio() {
    std::vector<Issue> issues;
    policy = LoadPolicyDir(SourceDir() + "/policies/respondio", &issues);
    auto& o = facts.orgs["o1"];
    o.features = {"sso", "webhooks"};
    o.members["bob"] = "member";
    o.members["alice"] = "org_admin";
    auto& w = facts.workspaces["w1"];
    w.org = "o1";
    w.members["bob"] = {"agent", "t1", {}, "assigned_or_team", {}};
    facts.Finalize();
    req.user = "bob";
    req.action = "conversation.reply";
    req.workspace = "w1";
    req.resource_type = "conversation";
    req.resource_attrs = attrs;
    req.auth_method = "password";
  }
};

Respondio& GetRespondio() {
  static Respondio r;
  return r;
}

void BM_DecisionRespondioFixedFacts(benchmark::State& state) {
  Respondio& t = GetRespondio();
  if (!t.policy) {
    state.SkipWithError("policies/respondio did not load");
    return;
  }
  FixedFacts facts(t.facts, "bob", "o1", "w1");
  Decision d = Evaluate(*t.policy, t.req, facts);
  if (!d.allow) state.SkipWithError("unexpected decision");
  for (auto _ : state) {
    Decision d = Evaluate(*t.policy, t.req, facts);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_DecisionRespondioFixedFacts);

void BM_ListAllowedActionsRespondio(benchmark::State& state) {
  Respondio& t = GetRespondio();
  if (!t.policy) {
    state.SkipWithError("policies/respondio did not load");
    return;
  }
  std::vector<uint32_t> out(ActionCount(*t.policy));
  Request r = t.req;
  r.user = "alice";
  FixedFacts facts(t.facts, "alice", "o1", "w1");
  for (auto _ : state) {
    size_t n = ListAllowedActions(*t.policy, r, facts, out.data(), out.size());
    benchmark::DoNotOptimize(n);
  }
  state.counters["actions"] = static_cast<double>(ActionCount(*t.policy));
}
BENCHMARK(BM_ListAllowedActionsRespondio);

// Synthetic policy: 40 resource groups x 12 actions (480 actions), 100 org + 100 workspace
// roles (include chains, wildcard grants), 1,000 rules with conditions (10 global gates).
std::string SyntheticPolicy() {
  const int kGroups = 40, kPerGroup = 12;
  std::string s = "version: 1\nname: synthetic\nactions:\n  org:\n";
  for (int g = 0; g < kGroups / 2; ++g) {
    for (int a = 0; a < kPerGroup; ++a) {
      s += "    - org.g" + std::to_string(g) + ".a" + std::to_string(a) + "\n";
    }
  }
  s += "  workspace:\n";
  for (int g = kGroups / 2; g < kGroups; ++g) {
    for (int a = 0; a < kPerGroup; ++a) {
      s += "    - ws.g" + std::to_string(g) + ".a" + std::to_string(a) + "\n";
    }
  }
  s += "roles:\n  org:\n";
  for (int r = 0; r < 100; ++r) {
    s += "    orole" + std::to_string(r) + ":\n";
    if (r > 0) s += "      includes: [orole" + std::to_string(r - 1) + "]\n";
    s += "      grants: [org.g" + std::to_string(r % (kGroups / 2)) + ".*]\n";
  }
  s += "  workspace:\n";
  for (int r = 0; r < 100; ++r) {
    s += "    wrole" + std::to_string(r) + ":\n      rank: " + std::to_string(r) + "\n";
    if (r > 0 && r % 10 != 0) s += "      includes: [wrole" + std::to_string(r - 1) + "]\n";
    s += "      grants: [ws.g" + std::to_string(kGroups / 2 + r % (kGroups / 2)) + ".a" +
         std::to_string(r % kPerGroup) + "]\n";
  }
  s += "implied:\n  - {org_role: orole99, workspace_role: wrole99}\n";
  s += "rules:\n";
  for (int k = 0; k < 1000; ++k) {
    std::string id = "rule" + std::to_string(k);
    bool deny = k % 3 != 0;
    s += "  - id: " + id + "\n    effect: " + (deny ? "deny" : "allow") + "\n";
    if (k < 10) {
      s += "    actions: [\"*\"]\n";
      s += "    condition: org.attrs.gate" + std::to_string(k) +
           " == true || (org.status == \"X" + std::to_string(k) + "\" && !org.suspended)\n";
    } else {
      int g = k % kGroups;
      std::string prefix = g < kGroups / 2 ? "org" : "ws";
      s += "    actions: [" + prefix + ".g" + std::to_string(g) + ".*]\n";
      s += "    except: [" + prefix + ".g" + std::to_string(g) + ".a" +
           std::to_string(k % kPerGroup) + "]\n";
      if (k % 4 == 0) s += "    roles: [wrole" + std::to_string(k % 100) + ", orole" +
                           std::to_string(k % 100) + "]\n";
      s += "    condition: >\n      resource.attrs.k" + std::to_string(k % 7) + " == \"v" +
           std::to_string(k) + "\" && (\"f" + std::to_string(k % 5) +
           "\" in org.features || context.auth.age_s > " + std::to_string(k) + ")\n";
    }
    if (deny) s += "    reason: r" + std::to_string(k) + "\n";
  }
  return s;
}

struct Synthetic {
  std::string text = SyntheticPolicy();
  std::shared_ptr<const CompiledPolicy> policy;
  MemoryFacts facts;
  KeyValue attrs[3] = {{"k0", Value::String("x")}, {"k1", Value::String("y")},
                       {"k3", Value::String("z")}};
  Request req;
  Synthetic() {
    std::vector<Issue> issues;
    policy = Must(LoadPolicySources({{"synthetic.yaml", text}}, &issues), issues);
    auto& o = facts.orgs["o1"];
    o.features = {"f1", "f2"};
    o.members["u"] = "orole50";
    auto& w = facts.workspaces["w1"];
    w.org = "o1";
    w.members["u"] = {"wrole39", "", {}, "", {}};
    facts.Finalize();
    req.user = "u";
    req.action = "ws.g39.a5";
    req.workspace = "w1";
    req.resource_attrs = attrs;
    req.auth_age_s = 5000;
  }
};

Synthetic& GetSynthetic() {
  static Synthetic s;
  return s;
}

void BM_DecisionSynthetic1000Rules(benchmark::State& state) {
  Synthetic& s = GetSynthetic();
  for (auto _ : state) {
    Decision d = Evaluate(*s.policy, s.req, s.facts);
    benchmark::DoNotOptimize(d);
  }
  state.counters["rules"] = static_cast<double>(Info(*s.policy).rules);
  state.counters["roles"] = static_cast<double>(Info(*s.policy).roles);
}
BENCHMARK(BM_DecisionSynthetic1000Rules);

void BM_DecisionSynthetic1000RulesFixedFacts(benchmark::State& state) {
  Synthetic& s = GetSynthetic();
  FixedFacts facts(s.facts, "u", "o1", "w1");
  for (auto _ : state) {
    Decision d = Evaluate(*s.policy, s.req, facts);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_DecisionSynthetic1000RulesFixedFacts);

void BM_CompileSynthetic(benchmark::State& state) {
  Synthetic& s = GetSynthetic();
  for (auto _ : state) {
    std::vector<Issue> issues;
    auto p = LoadPolicySources({{"synthetic.yaml", s.text}}, &issues);
    if (!p) state.SkipWithError("compile failed");
    benchmark::DoNotOptimize(p);
  }
  state.counters["bytes"] = static_cast<double>(s.text.size());
  const PolicyInfo info = Info(*s.policy);
  state.counters["program_steps"] = static_cast<double>(info.program_steps);
  state.counters["program_actions"] = static_cast<double>(info.program_actions);
}
BENCHMARK(BM_CompileSynthetic)->Unit(benchmark::kMillisecond);

void BM_ListAllowedActionsSynthetic(benchmark::State& state) {
  Synthetic& s = GetSynthetic();
  std::vector<uint32_t> out(ActionCount(*s.policy));
  for (auto _ : state) {
    size_t n = ListAllowedActions(*s.policy, s.req, s.facts, out.data(), out.size());
    benchmark::DoNotOptimize(n);
  }
  state.counters["actions"] = static_cast<double>(ActionCount(*s.policy));
}
BENCHMARK(BM_ListAllowedActionsSynthetic)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace gatehouse::policy

BENCHMARK_MAIN();
