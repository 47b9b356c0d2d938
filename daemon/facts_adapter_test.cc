// StoreFacts: the org membership of a decision is answered from the workspace membership row it
// just read (denormalized org role) — only for the same user, org, Reader and snapshot; and org
// rows are served from the per-adapter org cache — only under the same ReaderId and revision.
//
// This binary replaces the global operator new to count allocations (the adapter's lookups must
// not allocate, hit or miss), like daemon_server_alloc_test and store_alloc_test.
#include "daemon/facts_adapter.h"

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "policy/policy.h"
#include "store/memory_store.h"
#include "store/store.h"
#include "store/store_test_util.h"

#include "daemon/counting_new_test.h"  // counts global operator new (g_counting, g_allocs)

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

// ---------------------------------------------------------------------------------------------
// Org cache over a fake Reader: exact control of ReaderId, revision, errors and row contents,
// and a count of the store reads.
// ---------------------------------------------------------------------------------------------

struct FakeOrg {
  std::string id, plan = "pro", status = "ACTIVE", features, idp, exempt, attrs;
  bool suspended = false, sso_enabled = false, sso_enforced = false;
  uint32_t seats = 10, members = 3;
};

// Packs strings the way store views expect (varint length prefix; all short here).
std::string Packed(std::initializer_list<std::string> items) {
  std::string out;
  for (const auto& s : items) {
    EXPECT_LT(s.size(), 128u);
    out.push_back(static_cast<char>(s.size()));
    out += s;
  }
  return out;
}
// One string attr entry: [prefixed key][kind=kString][prefixed value].
std::string StringAttr(const std::string& key, const std::string& value) {
  std::string out = Packed({key});
  out.push_back(static_cast<char>(store::AttrValue::Kind::kString));
  out += Packed({value});
  return out;
}

class FakeReader : public store::Reader {
 public:
  explicit FakeReader(uint64_t id) : id_(id) {}
  uint64_t id_ = 0, rev_ = 1;
  bool error_ = false;
  int org_reads = 0;
  std::map<std::string, FakeOrg, std::less<>> orgs;

  uint64_t Revision() const noexcept override { return rev_; }
  uint64_t ReaderId() const noexcept override { return id_; }
  bool error() const noexcept override { return error_; }
  bool GetOrg(std::string_view org, store::OrgView* out) noexcept override {
    ++org_reads;
    if (error_) return false;
    auto it = orgs.find(org);
    if (it == orgs.end()) return false;
    const FakeOrg& o = it->second;
    *out = store::OrgView();
    out->id = o.id;
    out->name = "not cached";
    out->plan = o.plan;
    out->status = o.status;
    out->suspended = o.suspended;
    out->seats = o.seats;
    out->members = o.members;
    out->features = store::StringListView(o.features);
    out->sso.enabled = o.sso_enabled;
    out->sso.enforced = o.sso_enforced;
    out->sso.idp = o.idp;
    out->sso.exempt_roles = store::StringListView(o.exempt);
    out->attrs = store::AttrsView(o.attrs);
    return true;
  }
  FakeOrg& Add(const std::string& id) {
    FakeOrg& o = orgs[id];
    o.id = id;
    return o;
  }

  bool GetUser(std::string_view, store::UserView*) noexcept override { return false; }
  bool FindUserByEmail(std::string_view, store::UserView*) noexcept override { return false; }
  bool GetWorkspace(std::string_view, store::WorkspaceView*) noexcept override { return false; }
  bool GetOrgMember(std::string_view, std::string_view, store::OrgMemberView*) noexcept override {
    return false;
  }
  bool GetWorkspaceMember(std::string_view, std::string_view,
                          store::WorkspaceMemberView*) noexcept override {
    return false;
  }
  bool GetInvitation(std::string_view, store::InvitationView*) noexcept override { return false; }
  bool ListOrgsOfUser(std::string_view, std::vector<store::OrgMemberView>*) override { return false; }
  bool ListOrgMembers(std::string_view, std::string_view, size_t, std::vector<store::OrgMemberView>*,
                      std::string*) override {
    return false;
  }
  bool ListWorkspaceMembers(std::string_view, std::string_view, size_t,
                            std::vector<store::WorkspaceMemberView>*, std::string*) override {
    return false;
  }
  bool ListWorkspacesOfOrg(std::string_view, std::vector<store::WorkspaceView>*) override {
    return false;
  }
  bool ListWorkspacesOfUserInOrg(std::string_view, std::string_view,
                                 std::vector<store::WorkspaceMemberView>*) override {
    return false;
  }
  bool ListInvitationsOfOrg(std::string_view, std::vector<store::InvitationView>*) override {
    return false;
  }
  bool ReadChanges(uint64_t, size_t, std::vector<store::ChangeView>*) override { return false; }
};

std::string Join(policy::StringList l) {
  std::string out;
  for (auto s : l) out += (out.empty() ? "" : ",") + std::string(s);
  return out;
}

TEST(OrgCacheTest, OffByDefault) {
  FakeReader r(7);
  r.Add("acme");
  StoreFacts f(&r);
  EXPECT_EQ(f.org_cache_entries(), 0u);
  policy::OrgFacts o;
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  EXPECT_EQ(r.org_reads, 2);
  EXPECT_EQ(f.org_cache_hits(), 0u);
  EXPECT_EQ(f.org_cache_misses(), 0u);
}

TEST(OrgCacheTest, SizeIsRoundedAndCapped) {
  StoreFacts f;
  f.SetOrgCacheEntries(1);
  EXPECT_EQ(f.org_cache_entries(), 2u);
  f.SetOrgCacheEntries(1000);
  EXPECT_EQ(f.org_cache_entries(), 1024u);
  f.SetOrgCacheEntries(size_t{1} << 30);
  EXPECT_EQ(f.org_cache_entries(), StoreFacts::kMaxOrgCacheEntries);
  f.SetOrgCacheEntries(0);
  EXPECT_EQ(f.org_cache_entries(), 0u);
}

TEST(OrgCacheTest, HitsWithinARevisionAndCopiesEveryField) {
  FakeReader r(7);
  FakeOrg& a = r.Add("acme");
  a.plan = "enterprise";
  a.status = "CANCELING";
  a.suspended = true;
  a.features = Packed({"sso", "webhooks"});
  a.sso_enabled = true;
  a.sso_enforced = true;
  a.idp = "idp-1";
  a.exempt = Packed({"org_admin"});
  a.seats = 42;
  a.members = 17;
  StoreFacts f(&r);
  f.SetOrgCacheEntries(64);
  for (int i = 0; i < 3; ++i) {
    policy::OrgFacts o;
    ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
    EXPECT_EQ(o.id, "acme");
    EXPECT_EQ(o.plan, "enterprise");
    EXPECT_EQ(o.status, "CANCELING");
    EXPECT_TRUE(o.suspended);
    EXPECT_EQ(Join(o.features), "sso,webhooks");
    EXPECT_TRUE(o.sso_enabled);
    EXPECT_TRUE(o.sso_enforced);
    EXPECT_EQ(o.sso_idp, "idp-1");
    EXPECT_EQ(Join(o.sso_exempt_roles), "org_admin");
    EXPECT_EQ(o.seats, 42);
    EXPECT_EQ(o.members, 17);
  }
  EXPECT_EQ(r.org_reads, 1);
  EXPECT_EQ(f.org_cache_misses(), 1u);
  EXPECT_EQ(f.org_cache_hits(), 2u);
  // The entry owns its bytes: changing (or freeing) the Reader's row does not change a hit at
  // the same revision (which, for a real store, means the row cannot have changed).
  a.plan = "XXXXXXXXXX";
  policy::OrgFacts o;
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  EXPECT_EQ(o.plan, "enterprise");
  EXPECT_EQ(r.org_reads, 1);
}

TEST(OrgCacheTest, ANewRevisionReadsTheStore) {
  FakeReader r(7);
  r.Add("acme").status = "ACTIVE";
  StoreFacts f(&r);
  f.SetOrgCacheEntries(64);
  policy::OrgFacts o;
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  r.orgs["acme"].status = "FROZEN";
  r.orgs["acme"].features = Packed({"sso"});
  r.rev_ = 2;
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  EXPECT_EQ(o.status, "FROZEN");
  EXPECT_EQ(Join(o.features), "sso");
  EXPECT_EQ(r.org_reads, 2);
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);  // cached again at revision 2
  EXPECT_EQ(r.org_reads, 2);
  EXPECT_EQ(f.org_cache_hits(), 1u);
}

TEST(OrgCacheTest, AnotherReaderNeverHits) {
  // Two Readers (say, of two stores) at the same revision, with different rows for one org id.
  FakeReader r1(7), r2(8);
  r1.Add("acme").plan = "one";
  r2.Add("acme").plan = "two";
  StoreFacts f(&r1);
  f.SetOrgCacheEntries(64);
  policy::OrgFacts o;
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  EXPECT_EQ(o.plan, "one");
  f.set_reader(&r2);
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  EXPECT_EQ(o.plan, "two");
  EXPECT_EQ(r2.org_reads, 1);
  EXPECT_EQ(f.org_cache_hits(), 0u);
}

TEST(OrgCacheTest, NotUsedWithoutReaderIdOrRevision) {
  FakeReader r(0);  // a Reader that can't say who it is
  r.Add("acme");
  StoreFacts f(&r);
  f.SetOrgCacheEntries(64);
  policy::OrgFacts o;
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  EXPECT_EQ(r.org_reads, 2);
  FakeReader empty(9);  // revision 0: not a committed state
  empty.rev_ = 0;
  empty.Add("acme");
  f.set_reader(&empty);
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  EXPECT_EQ(empty.org_reads, 2);
  EXPECT_EQ(f.org_cache_hits() + f.org_cache_misses(), 0u);
}

TEST(OrgCacheTest, ErrorsAndNotFoundComeFromTheStore) {
  FakeReader r(7);
  r.Add("acme");
  StoreFacts f(&r);
  f.SetOrgCacheEntries(64);
  policy::OrgFacts o;
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);  // cached
  // A storage error in the snapshot: the cache is bypassed, the store fails, the lookup fails.
  r.error_ = true;
  EXPECT_EQ(f.Org("acme", &o), Lookup::kError);
  policy::Value v;
  EXPECT_EQ(f.Attr(policy::Facts::Entity::kOrg, "acme", "tier", &v), Lookup::kError);
  EXPECT_EQ(r.org_reads, 3);
  r.error_ = false;
  // Not found is never cached.
  EXPECT_EQ(f.Org("nope", &o), Lookup::kNotFound);
  EXPECT_EQ(f.Org("nope", &o), Lookup::kNotFound);
  EXPECT_EQ(r.org_reads, 5);
  EXPECT_EQ(f.org_cache_hits(), 0u);
}

TEST(OrgCacheTest, OversizeRowsAreReadEachTime) {
  FakeReader r(7);
  FakeOrg& big = r.Add("big");
  std::initializer_list<std::string> many = {std::string(100, 'a'), std::string(100, 'b')};
  big.features = Packed(many);  // 202 bytes of strings: more than an entry holds
  StoreFacts f(&r);
  f.SetOrgCacheEntries(64);
  for (int i = 0; i < 2; ++i) {
    policy::OrgFacts o;
    ASSERT_EQ(f.Org("big", &o), Lookup::kFound);
    ASSERT_EQ(o.features.size(), 2u);
    EXPECT_EQ(o.features[1], std::string(100, 'b'));
  }
  EXPECT_EQ(r.org_reads, 2);
  EXPECT_EQ(f.org_cache_oversize(), 2u);
  EXPECT_EQ(f.org_cache_hits(), 0u);
  // An id of the maximum length (128 bytes) still fits.
  const std::string long_id(128, 'o');
  r.Add(long_id);
  policy::OrgFacts o;
  ASSERT_EQ(f.Org(long_id, &o), Lookup::kFound);
  ASSERT_EQ(f.Org(long_id, &o), Lookup::kFound);
  EXPECT_EQ(o.id, long_id);
  EXPECT_EQ(f.org_cache_hits(), 1u);
}

TEST(OrgCacheTest, AttrsFromTheEntryOrTheStore) {
  FakeReader r(7);
  r.Add("small").attrs = StringAttr("tier", "gold");
  FakeOrg& large = r.Add("large");
  large.attrs = StringAttr("tier", "silver") + StringAttr("note", std::string(120, 'n')) +
                StringAttr("more", std::string(60, 'm'));  // attrs alone exceed the entry
  StoreFacts f(&r);
  f.SetOrgCacheEntries(64);
  policy::OrgFacts o;
  policy::Value v;
  ASSERT_EQ(f.Org("small", &o), Lookup::kFound);
  ASSERT_EQ(f.Attr(policy::Facts::Entity::kOrg, "small", "tier", &v), Lookup::kFound);
  EXPECT_EQ(v.s, "gold");
  EXPECT_EQ(f.Attr(policy::Facts::Entity::kOrg, "small", "nope", &v), Lookup::kNotFound);
  EXPECT_EQ(r.org_reads, 1);  // attrs came with the entry
  // The rest of "large" is cached without its attrs; an attribute is read from the store.
  ASSERT_EQ(f.Org("large", &o), Lookup::kFound);
  ASSERT_EQ(f.Org("large", &o), Lookup::kFound);
  EXPECT_EQ(r.org_reads, 2);
  ASSERT_EQ(f.Attr(policy::Facts::Entity::kOrg, "large", "tier", &v), Lookup::kFound);
  EXPECT_EQ(v.s, "silver");
  EXPECT_EQ(r.org_reads, 3);
  // Attr() never fills an entry (it would overwrite the one an Org() answer points into).
  r.Add("other").attrs = StringAttr("tier", "bronze");
  ASSERT_EQ(f.Attr(policy::Facts::Entity::kOrg, "other", "tier", &v), Lookup::kFound);
  ASSERT_EQ(f.Org("other", &o), Lookup::kFound);
  EXPECT_EQ(r.org_reads, 5);
}

TEST(OrgCacheTest, TwoWaysLeastRecentlyUsedIsReplaced) {
  FakeReader r(7);
  for (const char* id : {"a", "b", "c"}) r.Add(id).plan = std::string("plan-") + id;
  StoreFacts f(&r);
  f.SetOrgCacheEntries(2);  // one set of two ways: every org competes for it
  policy::OrgFacts o;
  ASSERT_EQ(f.Org("a", &o), Lookup::kFound);
  ASSERT_EQ(f.Org("b", &o), Lookup::kFound);
  ASSERT_EQ(f.Org("a", &o), Lookup::kFound);  // hit; b is now the less recent
  EXPECT_EQ(r.org_reads, 2);
  ASSERT_EQ(f.Org("c", &o), Lookup::kFound);  // replaces b
  EXPECT_EQ(o.plan, "plan-c");
  ASSERT_EQ(f.Org("a", &o), Lookup::kFound);
  EXPECT_EQ(o.plan, "plan-a");
  EXPECT_EQ(r.org_reads, 3);
  ASSERT_EQ(f.Org("b", &o), Lookup::kFound);  // was replaced: read again
  EXPECT_EQ(o.plan, "plan-b");
  EXPECT_EQ(r.org_reads, 4);
  // A new revision makes both ways stale: they are refilled before anything is "replaced".
  r.rev_ = 2;
  ASSERT_EQ(f.Org("a", &o), Lookup::kFound);
  ASSERT_EQ(f.Org("b", &o), Lookup::kFound);
  ASSERT_EQ(f.Org("a", &o), Lookup::kFound);
  ASSERT_EQ(f.Org("b", &o), Lookup::kFound);
  EXPECT_EQ(r.org_reads, 6);
}

// ---------------------------------------------------------------------------------------------
// Org cache over real stores (both backends): committed writes are seen by the next decision.
// ---------------------------------------------------------------------------------------------

class OrgCacheStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ts_ = store::testing::TestStore::Open(GetParam());
    ASSERT_TRUE(ts_.store);
    Seed(*ts_.store, "pro");
    std::vector<policy::Issue> issues;
    policy_ = policy::LoadPolicyDir(std::string(GATEHOUSE_SOURCE_DIR) + "/policies/respondio",
                                    &issues);
    ASSERT_TRUE(policy_) << (issues.empty() ? "" : issues[0].ToString());
  }
  static void W(store::Store& st, store::WriteRequest r) {
    auto res = st.Write(std::move(r));
    ASSERT_TRUE(res.status.ok()) << res.status.ToString();
  }
  // alice: org_admin of acme (workspace w1); bob: agent in w1 (member of acme).
  static void Seed(store::Store& st, const std::string& plan) {
    for (const char* u : {"alice", "bob"}) {
      W(st, store::testing::R("user.register", {{"user", u}, {"email", std::string(u) + "@x.io"}}));
      W(st, store::testing::R("user.verify_email", {{"user", u}}));
    }
    W(st, store::testing::R("org.create",
                            {{"user", "alice"}, {"org", "acme"}, {"name", "Acme"}, {"workspace", "w1"}}));
    W(st, store::testing::R("workspace.set_member",
                            {{"workspace", "w1"}, {"user", "bob"}, {"role", "agent"}}));
    store::WriteRequest s = store::testing::R("org.set_subscription", {{"org", "acme"}});
    s.plan = plan;
    s.status = "ACTIVE";
    s.features = std::vector<std::string>{};
    W(st, std::move(s));
  }
  // One decision in a fresh snapshot, asked twice (the second answer comes from the cache).
  std::string Decide(StoreFacts& f, store::ReadTxn& txn, std::string_view user,
                     std::string_view action) {
    EXPECT_TRUE(txn.Renew());
    policy::Request req;
    req.user = user;
    req.action = action;
    req.workspace = "w1";
    policy::Decision d1 = policy::Evaluate(*policy_, req, f);
    policy::Decision d2 = policy::Evaluate(*policy_, req, f);
    EXPECT_EQ(d1.allow, d2.allow);
    EXPECT_EQ(d1.reason, d2.reason);
    txn.Reset();
    return d1.allow ? "allow" : std::string(d1.reason);
  }

  store::testing::TestStore ts_;
  std::shared_ptr<const policy::CompiledPolicy> policy_;
};

TEST_P(OrgCacheStoreTest, CommittedOrgWritesAreSeenByTheNextDecision) {
  store::Store& st = *ts_.store;
  auto txn = st.NewReadTxn();
  StoreFacts f(txn.get());
  f.SetOrgCacheEntries(64);

  EXPECT_EQ(Decide(f, *txn, "bob", "conversation.view"), "allow");
  EXPECT_GE(f.org_cache_hits(), 1u);  // the second evaluation was served by the cache
  // Status.
  store::WriteRequest s = store::testing::R("org.set_subscription", {{"org", "acme"}});
  s.status = "FROZEN";
  W(st, s);
  EXPECT_EQ(Decide(f, *txn, "bob", "conversation.view"), "org_locked");
  s.status = "ACTIVE";
  W(st, s);
  EXPECT_EQ(Decide(f, *txn, "bob", "conversation.view"), "allow");
  // Features: webhook.manage needs `webhooks`.
  EXPECT_EQ(Decide(f, *txn, "alice", "webhook.manage"), "feature_disabled");
  store::WriteRequest feat = store::testing::R("org.set_subscription", {{"org", "acme"}});
  feat.features = std::vector<std::string>{"webhooks"};
  W(st, feat);
  EXPECT_EQ(Decide(f, *txn, "alice", "webhook.manage"), "allow");
  feat.features = std::vector<std::string>{};
  W(st, feat);
  EXPECT_EQ(Decide(f, *txn, "alice", "webhook.manage"), "feature_disabled");
  // SSO enforcement (bob, an agent, is not exempt; he has no SSO session).
  store::WriteRequest sso = store::testing::R("org.set_security", {{"org", "acme"}});
  sso.sso = store::SsoSettings{true, true, "idp-1", std::nullopt};
  W(st, sso);
  EXPECT_EQ(Decide(f, *txn, "bob", "conversation.view"), "sso_required");
  sso.sso = store::SsoSettings{false, false, "", std::nullopt};
  W(st, sso);
  EXPECT_EQ(Decide(f, *txn, "bob", "conversation.view"), "allow");
  // Suspension.
  W(st, store::testing::R("org.suspend", {{"org", "acme"}}));
  EXPECT_EQ(Decide(f, *txn, "bob", "conversation.view"), "org_suspended");
  W(st, store::testing::R("org.unsuspend", {{"org", "acme"}}));
  EXPECT_EQ(Decide(f, *txn, "bob", "conversation.view"), "allow");
  // Org deletion: not found, never a stale allow.
  W(st, store::testing::R("org.delete", {{"org", "acme"}}));
  EXPECT_EQ(Decide(f, *txn, "bob", "conversation.view"), "not_found");
}

TEST_P(OrgCacheStoreTest, EntriesOutliveTheSnapshotTheyWereReadFrom) {
  store::Store& st = *ts_.store;
  auto txn = st.NewReadTxn();
  StoreFacts f(txn.get());
  f.SetOrgCacheEntries(64);
  policy::OrgFacts o;
  ASSERT_TRUE(txn->Renew());
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  txn->Reset();
  // A new snapshot at the same revision: the entry (an owned copy) answers.
  ASSERT_TRUE(txn->Renew());
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);  // same revision, new snapshot: hit
  EXPECT_EQ(o.plan, "pro");
  EXPECT_EQ(f.org_cache_hits(), 1u);
  txn->Reset();
  // A write ends the old state (the memory backend frees it; under ASan a view into it would
  // fault) and moves the revision: the entry is stale, the new row is read.
  store::WriteRequest s = store::testing::R("org.set_subscription", {{"org", "acme"}});
  s.plan = "enterprise";
  W(st, s);
  ASSERT_TRUE(txn->Renew());
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  EXPECT_EQ(o.plan, "enterprise");
  EXPECT_EQ(f.org_cache_hits(), 1u);
  txn->Reset();
}

TEST_P(OrgCacheStoreTest, AnotherStoreAtTheSameRevisionNeverHits) {
  // Same writes except the plan: both stores are at the same revision, with different rows.
  auto other = store::testing::TestStore::Open(GetParam());
  Seed(*other.store, "other-plan");
  auto t1 = ts_.store->NewReadTxn();
  auto t2 = other.store->NewReadTxn();
  ASSERT_TRUE(t1->Renew());
  ASSERT_TRUE(t2->Renew());
  ASSERT_EQ(t1->Revision(), t2->Revision());
  StoreFacts f(t1.get());
  f.SetOrgCacheEntries(64);
  policy::OrgFacts o;
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  EXPECT_EQ(o.plan, "pro");
  f.set_reader(t2.get());
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  EXPECT_EQ(o.plan, "other-plan");
  // A second reader of the same store does not share entries either (its own id).
  auto t3 = ts_.store->NewReadTxn();
  ASSERT_TRUE(t3->Renew());
  f.set_reader(t3.get());
  ASSERT_EQ(f.Org("acme", &o), Lookup::kFound);
  EXPECT_EQ(o.plan, "pro");
  EXPECT_EQ(f.org_cache_hits(), 0u);
}

TEST_P(OrgCacheStoreTest, NoAllocationOnHitOrMiss) {
#ifdef GATEHOUSE_SANITIZER
  GTEST_SKIP() << "the sanitizer owns operator new";
#endif
  store::Store& st = *ts_.store;
  auto txn = st.NewReadTxn();
  StoreFacts f(txn.get());
  f.SetOrgCacheEntries(64);
  policy::Request req;
  req.user = "bob";
  req.action = "conversation.view";
  req.workspace = "w1";
  ASSERT_TRUE(txn->Renew());  // warm up (cursors, first snapshot)
  policy::Evaluate(*policy_, req, f);
  txn->Reset();
  store::WriteRequest s = store::testing::R("org.set_subscription", {{"org", "acme"}});
  s.plan = "next";
  W(st, s);  // the next decision misses and fills
  ASSERT_TRUE(txn->Renew());
  const uint64_t misses = f.org_cache_misses(), hits = f.org_cache_hits();
  g_allocs = 0;
  g_counting = true;
  policy::OrgFacts o;
  policy::Value v;
  const Lookup miss = f.Org("acme", &o);
  const Lookup hit = f.Org("acme", &o);
  const Lookup attr = f.Attr(policy::Facts::Entity::kOrg, "acme", "tier", &v);
  const policy::Decision d = policy::Evaluate(*policy_, req, f);
  g_counting = false;
  txn->Reset();
  EXPECT_EQ(g_allocs.load(), 0u);
  EXPECT_EQ(miss, Lookup::kFound);
  EXPECT_EQ(hit, Lookup::kFound);
  EXPECT_EQ(attr, Lookup::kNotFound);
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(f.org_cache_misses(), misses + 1);
  EXPECT_EQ(f.org_cache_hits(), hits + 3);
}

// One adapter (and cache) per worker, as in the daemon: readers on two threads while org rows
// change; each answer matches its snapshot's revision. Run under TSan to check there's no sharing.
TEST_P(OrgCacheStoreTest, OneCachePerWorkerThread) {
  store::Store& st = *ts_.store;
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  auto worker = [&] {
    auto txn = st.NewReadTxn();
    StoreFacts f(txn.get());
    f.SetOrgCacheEntries(16);
    while (!stop.load()) {
      if (!txn->Renew()) {
        ++bad;
        break;
      }
      policy::OrgFacts a, b;
      if (f.Org("acme", &a) != Lookup::kFound) ++bad;
      const std::string plan(a.plan);
      // Same snapshot: the second answer (a hit) equals the first, and both equal the row of
      // this snapshot.
      store::OrgView row;
      if (f.Org("acme", &b) != Lookup::kFound || b.plan != plan) ++bad;
      if (!txn->GetOrg("acme", &row) || row.plan != plan) ++bad;
      txn->Reset();
    }
  };
  std::thread t1(worker), t2(worker);
  for (int i = 0; i < 50; ++i) {
    store::WriteRequest s = store::testing::R("org.set_subscription", {{"org", "acme"}});
    s.plan = "p" + std::to_string(i);
    W(st, s);
  }
  stop = true;
  t1.join();
  t2.join();
  EXPECT_EQ(bad.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, OrgCacheStoreTest, ::testing::Values("memory", "lmdb"));

}  // namespace
}  // namespace gatehouse::daemon
