// MemoryFacts' flat index (built by Finalize()): every record found through it, keys of every
// length and shape told apart, edits after Finalize() seen, copies independent of the original.
#include "policy/memory_facts.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace gatehouse::policy {
namespace {

// The same id as user, org and workspace, and as both halves of a membership key: each lookup
// returns its own kind's record.
TEST(MemoryFactsTest, KindsWithEqualIdsStayApart) {
  MemoryFacts f;
  f.users["x"].email = "user@x";
  auto& o = f.orgs["x"];
  o.plan = "org-plan";
  o.members["x"] = "org_admin";
  auto& w = f.workspaces["x"];
  w.org = "x";
  w.members["x"].role = "owner";
  f.Finalize();
  UserFacts u;
  ASSERT_EQ(f.User("x", &u), Lookup::kFound);
  EXPECT_EQ(u.email, "user@x");
  OrgFacts of;
  ASSERT_EQ(f.Org("x", &of), Lookup::kFound);
  EXPECT_EQ(of.plan, "org-plan");
  WorkspaceFacts wf;
  ASSERT_EQ(f.Workspace("x", &wf), Lookup::kFound);
  EXPECT_EQ(wf.org, "x");
  OrgMembershipFacts om;
  ASSERT_EQ(f.OrgMembership("x", "x", &om), Lookup::kFound);
  EXPECT_EQ(om.role, "org_admin");
  WorkspaceMembershipFacts wm;
  ASSERT_EQ(f.WorkspaceMembership("x", "x", &wm), Lookup::kFound);
  EXPECT_EQ(wm.role, "owner");
  EXPECT_EQ(wm.org, "x");
  EXPECT_EQ(f.User("y", &u), Lookup::kNotFound);
  EXPECT_EQ(f.OrgMembership("x", "y", &om), Lookup::kNotFound);
  EXPECT_EQ(f.OrgMembership("y", "x", &om), Lookup::kNotFound);
}

// Ids of every length 1..40 and ids differing only in their last byte, their 8th/9th byte or
// their middle: all found with their own record, near misses not found. 600 users in 20
// workspaces (one org each) exercise probe sequences.
TEST(MemoryFactsTest, EveryKeyShapeIsFound) {
  MemoryFacts f;
  std::vector<std::string> users;
  for (int k = 0; k < 600; ++k) users.push_back("u" + std::to_string(k));
  for (size_t len = 1; len <= 40; ++len) users.push_back(std::string(len, 'a'));
  users.push_back("abcdefgh1");
  users.push_back("abcdefgh2");
  users.push_back("abcdefg1h");
  users.push_back("prefix__1__suffix");
  users.push_back("prefix__2__suffix");
  std::vector<std::string> spaces;
  for (int k = 0; k < 20; ++k) {
    spaces.push_back("ws0000" + std::to_string(k % 10) + (k < 10 ? "" : "long-tail"));
  }
  for (size_t k = 0; k < spaces.size(); ++k) {
    const std::string org = "org-" + std::to_string(k);
    auto& w = f.workspaces[spaces[k]];
    w.org = org;
    for (size_t u = k; u < users.size(); u += 3) {
      f.orgs[org].members[users[u]] = "member-" + users[u];
      w.members[users[u]].role = "agent-" + users[u] + "-" + spaces[k];
    }
  }
  f.Finalize();
  for (size_t k = 0; k < spaces.size(); ++k) {
    const std::string org = "org-" + std::to_string(k);
    for (size_t u = 0; u < users.size(); ++u) {
      OrgMembershipFacts om;
      WorkspaceMembershipFacts wm;
      const bool member = u >= k && (u - k) % 3 == 0;
      ASSERT_EQ(f.OrgMembership(users[u], org, &om),
                member ? Lookup::kFound : Lookup::kNotFound) << users[u] << " " << org;
      ASSERT_EQ(f.WorkspaceMembership(users[u], spaces[k], &wm),
                member ? Lookup::kFound : Lookup::kNotFound) << users[u] << " " << spaces[k];
      if (member) {
        EXPECT_EQ(om.role, "member-" + users[u]);
        EXPECT_EQ(wm.role, "agent-" + users[u] + "-" + spaces[k]);
        EXPECT_EQ(wm.org, org);
      }
    }
  }
  OrgMembershipFacts om;
  EXPECT_EQ(f.OrgMembership("abcdefgh3", "org-0", &om), Lookup::kNotFound);
  EXPECT_EQ(f.OrgMembership("prefix__3__suffix", "org-0", &om), Lookup::kNotFound);
  EXPECT_EQ(f.OrgMembership(std::string(41, 'a'), "org-0", &om), Lookup::kNotFound);
  EXPECT_EQ(f.OrgMembership("", "org-0", &om), Lookup::kNotFound);
}

// Scalar edits to records after Finalize() are seen at once; records added after it are found
// (a miss in the index falls back to the maps).
TEST(MemoryFactsTest, EditsAndAdditionsAfterFinalizeAreSeen) {
  MemoryFacts f;
  f.orgs["o1"].members["alice"] = "member";
  f.workspaces["w1"].org = "o1";
  f.Finalize();
  f.orgs["o1"].status = "FROZEN";
  f.orgs["o1"].members["alice"] = "org_admin";
  f.orgs["o1"].members["bob"] = "member";
  f.orgs["o2"].plan = "new";
  f.workspaces["w1"].members["bob"].role = "agent";
  f.users["bob"].email = "b@x";
  OrgFacts o;
  ASSERT_EQ(f.Org("o1", &o), Lookup::kFound);
  EXPECT_EQ(o.status, "FROZEN");
  ASSERT_EQ(f.Org("o2", &o), Lookup::kFound);
  EXPECT_EQ(o.plan, "new");
  OrgMembershipFacts om;
  ASSERT_EQ(f.OrgMembership("alice", "o1", &om), Lookup::kFound);
  EXPECT_EQ(om.role, "org_admin");
  ASSERT_EQ(f.OrgMembership("bob", "o1", &om), Lookup::kFound);
  EXPECT_EQ(om.role, "member");
  WorkspaceMembershipFacts wm;
  ASSERT_EQ(f.WorkspaceMembership("bob", "w1", &wm), Lookup::kFound);
  EXPECT_EQ(wm.role, "agent");
  EXPECT_EQ(wm.org, "o1");
  UserFacts u;
  ASSERT_EQ(f.User("bob", &u), Lookup::kFound);
  EXPECT_EQ(u.email, "b@x");
}

// The index points into the maps: a copy must index its own maps, not the original's.
TEST(MemoryFactsTest, CopiesIndexTheirOwnMaps) {
  auto original = std::make_unique<MemoryFacts>();
  original->orgs["o1"].members["alice"] = "member";
  original->workspaces["w1"].org = "o1";
  original->workspaces["w1"].members["alice"].role = "agent";
  original->Finalize();
  MemoryFacts copy(*original);
  MemoryFacts assigned;
  assigned = *original;
  original->orgs["o1"].status = "FROZEN";
  original->orgs["o1"].members["alice"] = "org_admin";
  for (MemoryFacts* f : {&copy, &assigned}) {
    OrgFacts o;
    ASSERT_EQ(f->Org("o1", &o), Lookup::kFound);
    EXPECT_EQ(o.status, "ACTIVE");
    OrgMembershipFacts om;
    ASSERT_EQ(f->OrgMembership("alice", "o1", &om), Lookup::kFound);
    EXPECT_EQ(om.role, "member");
  }
  original.reset();  // the copies must not read freed maps (ASan builds)
  WorkspaceMembershipFacts wm;
  ASSERT_EQ(copy.WorkspaceMembership("alice", "w1", &wm), Lookup::kFound);
  EXPECT_EQ(wm.role, "agent");
  MemoryFacts moved(std::move(copy));
  ASSERT_EQ(moved.WorkspaceMembership("alice", "w1", &wm), Lookup::kFound);
  EXPECT_EQ(wm.org, "o1");
}

}  // namespace
}  // namespace gatehouse::policy
