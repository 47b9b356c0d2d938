// Service handler tests that need the store and the policy in process (no socket): check_batch
// answers equal per-item check answers (the batch facts memo never leaks facts across users,
// orgs or workspaces) and consecutive items with one principal share their lookups; list_users
// with `action` honours `context`.
#include "daemon/service.h"

#include <stdlib.h>

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "daemon/config.h"
#include "daemon/server.h"
#include "daemon/test_connection.h"
#include "policy/policy.h"
#include "store/store.h"

namespace gatehouse::daemon {
namespace {

// Two orgs: acme (alice org_admin; bob member, agent in a1 and manager in a2; dave member
// without workspaces; a1 and a2) and beta (carol org_admin; bob member, agent in b1; b1).
// beta enforces SSO.
class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gh_svc_XXXXXX";
    dir_ = mkdtemp(tmpl);
    store::Options so;
    so.path = dir_;
    so.durable = false;
    ASSERT_TRUE(store::Store::Open(so, &store_).ok());
    std::vector<store::ImportRecord> recs;
    auto rec = [&](store::ImportRecord::Kind k) {
      recs.emplace_back();
      recs.back().kind = k;
      recs.back().email_verified = true;
      return &recs.back().fields;
    };
    for (const char* u : {"alice", "bob", "carol", "dave"}) {
      auto* f = rec(store::ImportRecord::Kind::kUser);
      f->user = u;
      f->email = std::string(u) + "@example.com";
    }
    auto org = [&](const char* o, const char* creator, bool sso) {
      auto* f = rec(store::ImportRecord::Kind::kOrg);
      f->org = o;
      f->user = creator;
      if (sso) {
        store::SsoSettings s;
        s.enabled = true;
        s.enforced = true;
        s.idp = "idp-1";
        f->sso = s;
      }
    };
    auto om = [&](const char* o, const char* u, const char* role) {
      auto* f = rec(store::ImportRecord::Kind::kOrgMember);
      f->org = o;
      f->user = u;
      f->role = role;
    };
    auto ws = [&](const char* w, const char* o) {
      auto* f = rec(store::ImportRecord::Kind::kWorkspace);
      f->workspace = w;
      f->org = o;
    };
    auto wm = [&](const char* w, const char* u, const char* role) {
      auto* f = rec(store::ImportRecord::Kind::kWorkspaceMember);
      f->workspace = w;
      f->user = u;
      f->role = role;
      f->team = "t1";
    };
    org("acme", "alice", false);
    om("acme", "alice", "org_admin");
    om("acme", "bob", "member");
    om("acme", "dave", "member");
    ws("a1", "acme");
    ws("a2", "acme");
    wm("a1", "bob", "agent");
    wm("a2", "bob", "manager");
    org("beta", "carol", true);
    om("beta", "carol", "org_admin");
    om("beta", "bob", "member");
    ws("b1", "beta");
    wm("b1", "bob", "agent");
    store::ImportStats stats;
    store::Status s = store_->Import(recs, &stats);
    ASSERT_TRUE(s.ok()) << s.ToString();

    std::vector<policy::Issue> issues;
    auto pol = policy::LoadPolicyDir(std::string(GATEHOUSE_SOURCE_DIR) + "/policies/respondio",
                                     &issues);
    ASSERT_TRUE(pol) << (issues.empty() ? "" : issues[0].ToString());
    svc_ = std::make_unique<Service>(Config(), store_.get());
    svc_->SetPolicy(pol);
    svc_->PrepareWorkers(1);
    conn_ = std::make_shared<LocalConnection>();
    conn_->peer_.tier = Tier::kReader;
    conn_->state_ = svc_->OnOpen(*conn_);
  }

  void TearDown() override {
    if (conn_) conn_->state_.reset();
    svc_.reset();
    if (store_) store_->Close();
    std::string cmd = "rm -rf " + dir_;
    (void)system(cmd.c_str());
  }

  std::string Call(const std::string& line) {
    std::string out;
    std::shared_ptr<Connection> c = conn_;
    EXPECT_EQ(svc_->OnLine(c, line, &out), Handler::Disposition::kDone);
    return out;
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Service> svc_;
  std::shared_ptr<LocalConnection> conn_;
};

// The decision part of a single check reply, in check_batch's result shape:
// {"id":null,"ok":true,"allow":X,"rev":N,"rule":..,"reason":..}\n -> {"allow":X,"rule":..,"reason":..}
std::string DecisionOf(const std::string& reply) {
  size_t a = reply.find("\"allow\":");
  size_t rev = reply.find(",\"rev\":");
  EXPECT_NE(a, std::string::npos) << reply;
  EXPECT_NE(rev, std::string::npos) << reply;
  if (a == std::string::npos || rev == std::string::npos) return reply;
  size_t after_rev = reply.find_first_of(",}", rev + 7);
  std::string allow = reply.substr(a, rev - a);
  std::string rest = reply.substr(after_rev, reply.rfind('}') - after_rev);
  return "{" + allow + rest + "}";
}

TEST_F(ServiceTest, BatchAnswersEqualSingleChecksInAnyOrder) {
  // Items chosen so that a memo keyed on too little (only the user, only the workspace, only the
  // org, or by pointer) would hand one item another item's facts: same user in two orgs, same
  // workspace for two users, members vs non-members, SSO-enforced org vs not.
  const std::vector<std::string> items = {
      R"({"user":"bob","action":"conversation.reply","workspace":"a1"})",
      R"({"user":"bob","action":"conversation.reply","workspace":"a1"})",
      R"({"user":"dave","action":"conversation.reply","workspace":"a1"})",
      R"({"user":"bob","action":"conversation.reply","workspace":"b1"})",
      R"({"user":"bob","action":"conversation.reply","workspace":"b1","context":{"auth":{"method":"sso","idp":"idp-1","age_s":10}}})",
      R"({"user":"bob","action":"workspace.users.role.change","workspace":"a2"})",
      R"({"user":"bob","action":"workspace.users.role.change","workspace":"a1"})",
      R"({"user":"alice","action":"workspace.access","workspace":"a1"})",
      R"({"user":"alice","action":"workspace.access","workspace":"b1"})",
      R"({"user":"alice","action":"org.delete","org":"acme"})",
      R"({"user":"alice","action":"org.delete","org":"beta"})",
      R"({"user":"carol","action":"org.delete","org":"beta"})",
      R"({"user":"carol","action":"org.delete","org":"acme"})",
      R"({"user":"nobody","action":"workspace.access","workspace":"a1"})",
      R"({"user":"bob","action":"workspace.access","workspace":"nowhere"})",
      R"({"user":"bob","action":"workspace.access","workspace":"a1"})",
      R"({"user":"bob","action":"org.view","org":"acme"})",
      R"({"user":"bob","action":"org.view","org":"beta"})",
  };
  std::vector<std::string> single;
  for (const auto& it : items) {
    std::string line = R"({"op":"check","explain":true,)" + it.substr(1);
    single.push_back(DecisionOf(Call(line)));
  }
  // Sanity: the set mixes allows and denies.
  int allows = 0;
  for (const auto& s : single) allows += s.find("\"allow\":true") != std::string::npos;
  EXPECT_GT(allows, 3);
  EXPECT_LT(allows, static_cast<int>(items.size()) - 3);

  // Several orders: as listed, reversed, and interleaved (each item after every other).
  std::vector<std::vector<size_t>> orders;
  std::vector<size_t> fwd, rev, inter;
  for (size_t i = 0; i < items.size(); ++i) fwd.push_back(i);
  for (size_t i = items.size(); i-- > 0;) rev.push_back(i);
  for (size_t i = 0; i < items.size(); ++i)
    for (size_t j = 0; j < items.size(); ++j) inter.insert(inter.end(), {i, j, i});
  orders = {fwd, rev, inter};
  for (const auto& order : orders) {
    for (size_t start = 0; start < order.size(); start += 900) {
      size_t n = std::min<size_t>(900, order.size() - start);
      std::string line = R"({"op":"check_batch","explain":true,"checks":[)";
      std::string want = "[";
      for (size_t k = 0; k < n; ++k) {
        if (k) line += ",", want += ",";
        line += items[order[start + k]];
        want += single[order[start + k]];
      }
      line += "]}";
      want += "]";
      std::string out = Call(line);
      size_t r = out.find("\"results\":");
      ASSERT_NE(r, std::string::npos) << out;
      std::string got = out.substr(r + 10, out.rfind('}') - (r + 10));
      ASSERT_EQ(got, want);
    }
  }
}

TEST_F(ServiceTest, BatchWithOnePrincipalSharesLookups) {
  uint64_t before = svc_->counters().batch_memo_hits.load();
  std::string line = R"({"op":"check_batch","checks":[)";
  const char* actions[] = {"conversation.reply", "conversation.view", "workspace.access",
                           "contact.view"};
  for (int k = 0; k < 8; ++k) {
    if (k) line += ",";
    line += std::string(R"({"user":"bob","workspace":"a1","action":")") + actions[k % 4] + "\"}";
  }
  line += "]}";
  std::string out = Call(line);
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos) << out;
  // Items 2..8 reuse the membership (and org) lookups of item 1.
  EXPECT_GE(svc_->counters().batch_memo_hits.load() - before, 7u) << out;
}

// The workers' org-cache counters reach stats: the second check of the same org in the same
// snapshot is answered from the cache.
TEST_F(ServiceTest, OrgCacheCountersInStats) {
  const Service::OrgCacheTotals before = svc_->OrgCacheCounts();
  const std::string check = R"({"op":"check","user":"bob","workspace":"a1","action":"workspace.access"})";
  Call(check);
  Call(check);
  const Service::OrgCacheTotals after = svc_->OrgCacheCounts();
  EXPECT_GE(after.hits + after.misses - before.hits - before.misses, 2u);
  EXPECT_GE(after.hits - before.hits, 1u);
  conn_->peer_.tier = Tier::kOperator;  // stats is operator-only
  const std::string stats = Call(R"({"op":"stats"})");
  EXPECT_NE(stats.find("\"org_cache_hits\":" + std::to_string(after.hits)), std::string::npos)
      << stats;
  EXPECT_NE(stats.find("\"org_cache_misses\":" + std::to_string(after.misses)), std::string::npos)
      << stats;
  EXPECT_NE(svc_->RenderPrometheus().find("gatehouse_org_cache_hits_total " +
                                           std::to_string(after.hits)),
            std::string::npos);
}

TEST_F(ServiceTest, ListUsersWithActionHonoursContext) {
  // beta enforces SSO (org_admin exempt by default): without an SSO context only carol may
  // act; with one, bob (member) may too.
  std::string without = Call(R"({"op":"list_users","org":"beta","action":"org.view"})");
  std::string with = Call(
      R"({"op":"list_users","org":"beta","action":"org.view",)"
      R"("context":{"auth":{"method":"sso","idp":"idp-1","age_s":10}}})");
  EXPECT_NE(without.find("\"carol\""), std::string::npos) << without;
  EXPECT_EQ(without.find("\"bob\""), std::string::npos) << without;
  EXPECT_NE(with.find("\"carol\""), std::string::npos) << with;
  EXPECT_NE(with.find("\"bob\""), std::string::npos) << with;
  // Same for a workspace listing.
  std::string ws_without =
      Call(R"({"op":"list_users","workspace":"b1","action":"conversation.reply"})");
  std::string ws_with = Call(
      R"({"op":"list_users","workspace":"b1","action":"conversation.reply",)"
      R"("context":{"auth":{"method":"sso","idp":"idp-1","age_s":10}}})");
  EXPECT_NE(ws_without.find("\"users\":[]"), std::string::npos) << ws_without;
  EXPECT_NE(ws_with.find("\"bob\""), std::string::npos) << ws_with;
  // A mistyped context is refused like in check.
  std::string bad = Call(R"({"op":"list_users","org":"beta","action":"org.view","context":[]})");
  EXPECT_NE(bad.find("field 'context' must be an object"), std::string::npos) << bad;
}

TEST_F(ServiceTest, WriteContextAgeIsRangeChecked) {
  // The actor-write context decoder (nlohmann path) follows the hot decoder's rules: a double or
  // uint64 outside int64 is refused before any conversion (UB / wrap), negatives are refused.
  const char* kBad[][2] = {
      {"6.2e19", "is too large"},
      {"18446744073709551615", "is too large"},
      {"-1", "must be >= 0"},
      {"-0.5", "must be >= 0"},
  };
  conn_->peer_.tier = Tier::kWriter;  // actor writes need the writer tier
  conn_->state_ = svc_->OnOpen(*conn_);
  for (const auto& c : kBad) {
    std::string reply = Call(std::string(R"({"op":"org.update","org":"beta","name":"x",)") +
                             R"("actor":"carol","context":{"auth":{"method":"sso","age_s":)" +
                             c[0] + "}}}");
    EXPECT_NE(reply.find(c[1]), std::string::npos) << c[0] << " -> " << reply;
    EXPECT_NE(reply.find("\"ok\":false"), std::string::npos) << reply;
  }
}

}  // namespace
}  // namespace gatehouse::daemon
