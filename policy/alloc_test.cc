// Proves the decision path allocates nothing: a counting global operator new (this binary
// only) around Evaluate and ListAllowedActions over the example policy.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "policy/memory_facts.h"
#include "policy/policy.h"

namespace {
std::atomic<long> g_allocs{0};
}

// Sanitizer runtimes interpose operator new/delete themselves (and shared libraries bind to
// theirs), so the counting replacement only runs in plain builds.
#ifndef GATEHOUSE_SANITIZER

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop
#define GATEHOUSE_COUNTING_NEW 1
#endif

namespace gatehouse::policy {
namespace {

TEST(AllocTest, CountingAllocatorWorks) {
#ifndef GATEHOUSE_COUNTING_NEW
  GTEST_SKIP() << "sanitizer build: allocation counting disabled";
#endif
  long before = g_allocs.load();
  void* p = ::operator new(16);  // a direct call: not elidable like a new-expression
  ::operator delete(p);
  EXPECT_EQ(g_allocs.load() - before, 1);
}

TEST(AllocTest, DecisionsDoNotAllocate) {
#ifndef GATEHOUSE_COUNTING_NEW
  GTEST_SKIP() << "sanitizer build: allocation counting disabled";
#endif
  std::vector<Issue> issues;
  auto policy = LoadPolicyDir(std::string(GATEHOUSE_POLICY_TESTDATA) + "/example", &issues);
  ASSERT_TRUE(policy);
  MemoryFacts facts;
  auto& o1 = facts.orgs["o1"];
  o1.features = {"sso", "webhooks"};
  o1.sso_enabled = o1.sso_enforced = true;
  o1.sso_idp = "idp-1";
  o1.attrs["region"] = OwnedValue{Value::Kind::kString, false, 0, 0, "eu"};
  o1.members = {{"admin", "org_admin"}, {"agent", "member"}, {"ua", "user_admin"}};
  auto& w1 = facts.workspaces["w1"];
  w1.org = "o1";
  w1.members["agent"] = {"agent", "t1", {}, "assigned_or_team", {}};
  facts.users["agent"].email = "a@x";
  facts.Finalize();
  const KeyValue attrs[] = {{"assignee", Value::String("zz")}, {"team", Value::String("t1")},
                            {"target_user", Value::String("agent")},
                            {"new_role", Value::String("org_admin")}};
  Request r;
  r.workspace = "w1";
  r.resource_type = "conversation";
  r.resource_attrs = attrs;
  r.auth_method = "sso";
  r.auth_idp = "idp-1";
  r.auth_age_s = 60;
  std::vector<uint32_t> out(ActionCount(*policy));
  const char* users[] = {"agent", "admin", "ua", "nobody"};
  const char* actions[] = {"conversation.reply", "conversation.view_all", "org.users.remove",
                           "org.users.role.assign", "contact.export", "org.nope",
                           "workspace.settings.manage", "org.security.sso.manage"};
  long before = g_allocs.load();
  int allowed = 0;
  for (const char* u : users) {
    for (const char* a : actions) {
      r.user = u;
      r.action = a;
      allowed += Evaluate(*policy, r, facts).allow;
    }
    allowed += static_cast<int>(ListAllowedActions(*policy, r, facts, out.data(), out.size()));
  }
  r.workspace = "wx";  // not found
  allowed += Evaluate(*policy, r, facts).allow;
  long after = g_allocs.load();
  EXPECT_EQ(after - before, 0);
  EXPECT_GT(allowed, 0);
}

}  // namespace
}  // namespace gatehouse::policy
