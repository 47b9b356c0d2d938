// Fuzzes the policy YAML loader + compiler: LoadPolicySources over 1..8 documents.
//
// Input format: documents separated by a line "--- file: NAME\n" (the first document is named
// "a.yaml"); plain YAML text otherwise, so seeds are readable policy files. When the policy
// compiles, a few evaluations run over a small MemoryFacts world to exercise the compiled
// program (Evaluate must never crash on any compiled policy), and every decision is checked
// against the rule loop (the same policy without decision programs) and against
// ListAllowedActions.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "policy/internal/compiled.h"
#include "policy/internal/decision.h"
#include "policy/memory_facts.h"
#include "policy/policy.h"

namespace gp = gatehouse::policy;

namespace {

gp::MemoryFacts& World() {
  static gp::MemoryFacts* f = [] {
    auto* m = new gp::MemoryFacts();
    m->users["u1"].email = "u1@x";
    m->users["u1"].email_verified = true;
    auto& o = m->orgs["o1"];
    o.members = {{"u1", "org_admin"}, {"u2", "member"}, {"u3", "billing_admin"}};
    o.features = {"sso"};
    auto& w = m->workspaces["w1"];
    w.org = "o1";
    w.members["u2"].role = "agent";
    w.members["u2"].contact_visibility = "assigned_only";
    w.members["u3"].role = "manager";
    w.members["u3"].flags = {"no_ws_settings"};
    m->Finalize();
    return m;
  }();
  return *f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<gp::SourceFile> files;
  auto parts = gatehouse::fuzz::SplitOn(in, "--- file: ");
  for (size_t i = 0; i < parts.size() && files.size() < 8; ++i) {
    std::string_view p = parts[i];
    std::string name = "a.yaml";
    if (i > 0) {
      size_t nl = p.find('\n');
      name = std::string(p.substr(0, nl == std::string_view::npos ? p.size() : nl));
      p.remove_prefix(nl == std::string_view::npos ? p.size() : nl + 1);
    }
    files.push_back({name, std::string(p)});
  }
  std::vector<gp::Issue> issues;
  gp::LoadOptions opts;
  opts.max_file_bytes = 64 * 1024;
  auto policy = gp::LoadPolicySources(files, &issues, opts);
  if (!policy) {
    if (issues.empty()) __builtin_trap();  // contract: nullptr implies issues
    for (const auto& i : issues) (void)i.ToString();
    return 0;
  }
  (void)gp::Info(*policy);
  // The same policy deciding through the rule loop only (views point into *policy).
  gp::CompiledPolicy loop(*policy);
  gp::internal::BuildDecisionPrograms(&loop, 0);
  const size_t n = gp::ActionCount(*policy);
  std::vector<uint32_t> out(n + 1);
  gp::KeyValue attrs[] = {{"assignee", gp::Value::String("u2")},
                          {"target_user", gp::Value::String("u2")},
                          {"new_role", gp::Value::String("org_admin")}};
  for (const char* user : {"u1", "u2", "u3", "u4"}) {
    for (const char* ws : {"", "w1", "w9"}) {
      gp::Request r;
      r.user = user;
      r.org = "o1";
      r.workspace = ws;
      r.resource_attrs = attrs;
      r.auth_method = "sso";
      r.auth_age_s = 5;
      size_t k = gp::ListAllowedActions(*policy, r, World(), out.data(), n);
      if (k > n) __builtin_trap();
      size_t listed = 0;  // out[] is in catalog order
      for (size_t a = 0; a < n && a < 64; ++a) {
        r.action = gp::ActionName(*policy, static_cast<uint32_t>(a));
        gp::Decision d = gp::Evaluate(*policy, r, World());
        if (d.allow && std::string_view(user) == "u4") __builtin_trap();  // not a member
        gp::Decision l = gp::Evaluate(loop, r, World());
        if (d.allow != l.allow || d.rule != l.rule || d.reason != l.reason) __builtin_trap();
        const bool in_list = listed < k && out[listed] == a;
        listed += in_list;
        if (in_list != d.allow) __builtin_trap();  // list_actions agrees with check
      }
    }
  }
  return 0;
}
