// StoreFacts: the org membership of a decision is answered from the workspace membership row it
// just read (denormalized org role) — only for the same user, org, Reader and snapshot.
#include "daemon/facts_adapter.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "store/memory_store.h"
#include "store/store.h"

namespace gatehouse::daemon {
namespace {

using policy::Lookup;

class FactsAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(store::OpenMemoryStore({}, &st_).ok());
    Ok("user.register", "alice", "", "", "alice@x.io");
    Ok("user.verify_email", "alice");
    Ok("user.register", "bob", "", "", "bob@x.io");
    Ok("user.verify_email", "bob");
    store::WriteRequest c;
    c.op = "org.create";
    c.user = "alice";
    c.org = "acme";
    c.name = "Acme";
    c.workspace = "w1";
    ASSERT_TRUE(st_->Write(c).status.ok());
    c.user = "bob";
    c.org = "beta";
    c.workspace = "w2";
    ASSERT_TRUE(st_->Write(c).status.ok());
    // bob: member of acme (operator add), agent in w1.
    store::WriteRequest m;
    m.op = "workspace.set_member";
    m.workspace = "w1";
    m.user = "bob";
    m.role = "agent";
    ASSERT_TRUE(st_->Write(m).status.ok());
  }
  void Ok(const char* op, const std::string& user, const std::string& org = "",
          const std::string& role = "", const std::string& email = "") {
    store::WriteRequest r;
    r.op = op;
    r.user = user;
    r.org = org;
    r.role = role;
    r.email = email;
    auto res = st_->Write(r);
    ASSERT_TRUE(res.status.ok()) << op << ": " << res.status.ToString();
  }

  std::unique_ptr<store::Store> st_;
};

TEST_F(FactsAdapterTest, OrgMembershipAfterWorkspaceMembershipNeedsNoRead) {
  auto txn = st_->NewReadTxn();
  ASSERT_TRUE(txn->Renew());
  StoreFacts f(txn.get());
  policy::WorkspaceMembershipFacts wm;
  policy::OrgMembershipFacts om;
  ASSERT_EQ(f.WorkspaceMembership("bob", "w1", &wm), Lookup::kFound);
  EXPECT_EQ(wm.org, "acme");
  EXPECT_EQ(wm.role, "agent");
  ASSERT_EQ(f.OrgMembership("bob", "acme", &om), Lookup::kFound);
  EXPECT_EQ(om.role, "member");
  EXPECT_EQ(f.org_role_hits(), 1u);
  // Another org or user: read from the store (bob is org_admin of beta; alice of acme).
  ASSERT_EQ(f.OrgMembership("bob", "beta", &om), Lookup::kFound);
  EXPECT_EQ(om.role, "org_admin");
  ASSERT_EQ(f.OrgMembership("alice", "acme", &om), Lookup::kFound);
  EXPECT_EQ(om.role, "org_admin");
  EXPECT_EQ(f.org_role_hits(), 1u);
  // Not a member: still not found (fail closed), no memo.
  EXPECT_EQ(f.OrgMembership("alice", "beta", &om), Lookup::kNotFound);
  // A missed workspace membership clears the memo.
  EXPECT_EQ(f.WorkspaceMembership("bob", "w2", &wm), Lookup::kFound);  // bob owns w2 (beta)
  EXPECT_EQ(f.WorkspaceMembership("alice", "w2", &wm), Lookup::kNotFound);
  EXPECT_EQ(f.OrgMembership("alice", "beta", &om), Lookup::kNotFound);
  EXPECT_EQ(f.org_role_hits(), 1u);
}

TEST_F(FactsAdapterTest, MemoDiesWithTheSnapshot) {
  auto txn = st_->NewReadTxn();
  ASSERT_TRUE(txn->Renew());
  StoreFacts f(txn.get());
  policy::WorkspaceMembershipFacts wm;
  policy::OrgMembershipFacts om;
  ASSERT_EQ(f.WorkspaceMembership("bob", "w1", &wm), Lookup::kFound);
  txn->Reset();
  Ok("org.set_role", "bob", "acme", "user_admin");
  ASSERT_TRUE(txn->Renew());
  // New snapshot: the memo of the old one must not answer (it said member).
  ASSERT_EQ(f.OrgMembership("bob", "acme", &om), Lookup::kFound);
  EXPECT_EQ(om.role, "user_admin");
  EXPECT_EQ(f.org_role_hits(), 0u);
  // Within the new snapshot the row carries the new role.
  ASSERT_EQ(f.WorkspaceMembership("bob", "w1", &wm), Lookup::kFound);
  ASSERT_EQ(f.OrgMembership("bob", "acme", &om), Lookup::kFound);
  EXPECT_EQ(om.role, "user_admin");
  EXPECT_EQ(f.org_role_hits(), 1u);
  // Another Reader: no memo across readers.
  auto other = st_->NewReadTxn();
  ASSERT_TRUE(other->Renew());
  f.set_reader(other.get());
  ASSERT_EQ(f.OrgMembership("bob", "acme", &om), Lookup::kFound);
  EXPECT_EQ(f.org_role_hits(), 1u);
  EXPECT_NE(txn->SnapshotId(), other->SnapshotId());
  EXPECT_NE(txn->SnapshotId(), 0u);
}

}  // namespace
}  // namespace gatehouse::daemon
