// End-to-end tests: a real daemon (Daemon::Start: LMDB store in a temp dir, the shipped
// respondio policy or a tiny test policy, Asio server on a temp socket) driven through the
// socket with the blocking client, covering every op, error code and caller tier, pipelining,
// limits, reload, watch, shutdown, and the model.md scenarios.
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include <chrono>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/client.h"
#include "daemon/config.h"
#include "daemon/serve.h"
#include "daemon/service.h"

namespace gatehouse::daemon {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

const std::string kSrc = GATEHOUSE_SOURCE_DIR;

class TestDaemon {
 public:
  TestDaemon(const Config& c, bool signals = false) : config_(c) {
    std::string err;
    d_ = Daemon::Start(c, &err, signals);
    EXPECT_TRUE(d_) << err;
    if (d_) thread_ = std::thread([this] { d_->Run(); });
  }
  ~TestDaemon() { Stop(); }
  void Stop() {
    if (!d_) return;
    d_->Stop();
    if (thread_.joinable()) thread_.join();
    d_.reset();
  }
  bool ok() const { return d_ != nullptr; }
  Daemon* get() { return d_.get(); }

 private:
  Config config_;
  std::unique_ptr<Daemon> d_;
  std::thread thread_;
};

class Conn {
 public:
  explicit Conn(const std::string& path) {
    std::string err;
    c_ = Client::Connect(path, &err);
    EXPECT_TRUE(c_) << err;
  }
  Json Call(const Json& req, int timeout_ms = 5000) {
    std::string line, err;
    if (!c_ || !c_->Call(req.dump(), &line, &err, timeout_ms)) {
      ADD_FAILURE() << "call failed: " << err << " for " << req.dump();
      return Json();
    }
    return Json::parse(line);
  }
  std::string Raw(const std::string& req) {
    std::string line, err;
    if (!c_->Call(req, &line, &err)) return "<" + err + ">";
    return line;
  }
  Client* client() { return c_.get(); }

 private:
  std::unique_ptr<Client> c_;
};

std::string ErrCode(const Json& r) {
  if (!r.is_object() || !r.contains("error")) return "";
  return r["error"]["code"].get<std::string>();
}

class IntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gh_integ_XXXXXX";
    dir_ = mkdtemp(tmpl);
    config_.socket_path = dir_ + "/gh.sock";
    config_.data_dir = dir_ + "/data";
    config_.policy_dir = kSrc + "/policies/respondio";
    config_.threads = 2;
    config_.durable = false;
    config_.watch_policy = false;
    config_.min_rev_wait_ms = 100;
    config_.log_level = "error";
  }
  void TearDown() override {
    daemon_.reset();
    std::string cmd = "rm -rf " + dir_;
    (void)system(cmd.c_str());
  }
  void Start() {
    daemon_ = std::make_unique<TestDaemon>(config_);
    ASSERT_TRUE(daemon_->ok());
  }
  Conn Connect() { return Conn(config_.socket_path); }

  // Operator writes that must succeed.
  Json MustWrite(Conn& c, Json req) {
    Json r = c.Call(req);
    EXPECT_TRUE(r.value("ok", false)) << req.dump() << " -> " << r.dump();
    return r;
  }
  void SignUp(Conn& c, const std::string& user, const std::string& org) {
    MustWrite(c, {{"op", "user.register"}, {"user", user}, {"email", user + "@example.com"}});
    MustWrite(c, {{"op", "user.verify_email"}, {"user", user}});
    Json r = MustWrite(c, {{"op", "org.create"}, {"user", user}, {"org", org},
                           {"name", org + " Inc"}, {"workspace", org + "-ws"}});
    EXPECT_EQ(r.value("workspace", ""), org + "-ws");
  }
  void AddUser(Conn& c, const std::string& user) {
    MustWrite(c, {{"op", "user.register"}, {"user", user}, {"email", user + "@example.com"}});
    MustWrite(c, {{"op", "user.verify_email"}, {"user", user}});
  }
  // Invites and accepts: user joins org with role.
  void Join(Conn& c, const std::string& org, const std::string& user, const std::string& role,
            Json workspaces = Json::array()) {
    Json inv = MustWrite(c, {{"op", "org.invite"}, {"org", org}, {"email", user + "@example.com"},
                             {"role", role}, {"workspaces", workspaces}});
    MustWrite(c, {{"op", "invite.accept"}, {"user", user}, {"token", inv["token"]}});
  }
  bool Allowed(Conn& c, Json check) {
    check["op"] = "check";
    Json r = c.Call(check);
    EXPECT_TRUE(r.value("ok", false)) << r.dump();
    return r.value("allow", false);
  }
  std::string Reason(Conn& c, Json check) {
    check["op"] = "check";
    Json r = c.Call(check);
    return r.value("reason", "");
  }

  std::string dir_;
  Config config_;
  std::unique_ptr<TestDaemon> daemon_;
};

// --- Decisions and the model.md scenarios -----------------------------------------------------

TEST_F(IntegrationTest, SignUpInvitationsSeatsCascadeLastAdmin) {
  Start();
  Conn c = Connect();
  SignUp(c, "alice", "acme");
  // Creator: org_admin + owner of the default workspace.
  Json r = c.Call({{"id", 1}, {"op", "check"}, {"user", "alice"}, {"action", "workspace.access"},
                   {"workspace", "acme-ws"}, {"explain", true}});
  EXPECT_EQ(r["id"], 1);
  EXPECT_TRUE(r["allow"].get<bool>()) << r.dump();
  EXPECT_TRUE(r.contains("rule"));
  EXPECT_EQ(r["reason"], "granted");
  EXPECT_GT(r["rev"].get<uint64_t>(), 0u);

  // An unverified user cannot create an org.
  MustWrite(c, {{"op", "user.register"}, {"user", "mallory"}, {"email", "m@example.com"}});
  EXPECT_EQ(ErrCode(c.Call({{"op", "org.create"}, {"user", "mallory"}, {"org", "evil"},
                            {"name", "Evil"}})),
            "forbidden");
  // Org allowance: alice already created one org.
  EXPECT_EQ(ErrCode(c.Call({{"op", "org.create"}, {"user", "alice"}, {"org", "acme2"},
                            {"name", "Acme 2"}})),
            "limit_exceeded");
  MustWrite(c, {{"op", "user.set_org_allowance"}, {"user", "alice"}, {"allowance", 2}});
  MustWrite(c, {{"op", "org.create"}, {"user", "alice"}, {"org", "acme2"}, {"name", "Acme 2"}});

  // Invitation: a pending invitee has no permissions; acceptance needs the same email.
  AddUser(c, "bob");
  AddUser(c, "carol");
  Json inv = MustWrite(c, {{"op", "org.invite"}, {"org", "acme"}, {"email", "bob@example.com"},
                           {"role", "member"},
                           {"workspaces", {{{"workspace", "acme-ws"}, {"role", "agent"}}}}});
  ASSERT_TRUE(inv.contains("token"));
  ASSERT_TRUE(inv.contains("invitation"));
  EXPECT_EQ(Reason(c, {{"user", "bob"}, {"action", "org.view"}, {"org", "acme"}}), "not_member");
  Json ig = c.Call({{"op", "invitation.get"}, {"invitation", inv["invitation"]}});
  EXPECT_EQ(ig["invitation"]["state"], "PENDING") << ig.dump();
  EXPECT_EQ(ig["invitation"]["org"], "acme");
  EXPECT_EQ(ErrCode(c.Call({{"op", "invite.accept"}, {"user", "carol"}, {"token", inv["token"]}})),
            "forbidden");
  EXPECT_EQ(ErrCode(c.Call({{"op", "invite.accept"}, {"user", "bob"}, {"token", "nope"}})),
            "not_found");
  MustWrite(c, {{"op", "invite.accept"}, {"user", "bob"}, {"token", inv["token"]}});
  EXPECT_TRUE(Allowed(c, {{"user", "bob"}, {"action", "workspace.access"}, {"workspace", "acme-ws"}}));
  EXPECT_FALSE(Allowed(c, {{"user", "bob"}, {"action", "org.users.invite"}, {"org", "acme"}}));
  // Accepting twice: no longer pending.
  EXPECT_EQ(ErrCode(c.Call({{"op", "invite.accept"}, {"user", "bob"}, {"token", inv["token"]}})),
            "conflict");

  // Seats: 2 members now; lower seats to 2 -> inviting is limit_exceeded.
  MustWrite(c, {{"op", "org.set_subscription"}, {"org", "acme"}, {"seats", 2}});
  EXPECT_EQ(ErrCode(c.Call({{"op", "org.invite"}, {"org", "acme"}, {"email", "carol@example.com"},
                            {"role", "member"}})),
            "limit_exceeded");
  // The same through the policy with an actor (seats_exhausted -> limit_exceeded).
  EXPECT_EQ(ErrCode(c.Call({{"op", "org.invite"}, {"actor", "alice"}, {"org", "acme"},
                            {"email", "carol@example.com"}, {"role", "member"}})),
            "limit_exceeded");
  MustWrite(c, {{"op", "org.set_subscription"}, {"org", "acme"}, {"seats", 10}});

  // Cascade: removing bob from the org removes his workspace membership.
  MustWrite(c, {{"op", "org.remove_member"}, {"org", "acme"}, {"user", "bob"}});
  EXPECT_FALSE(Allowed(c, {{"user", "bob"}, {"action", "workspace.access"}, {"workspace", "acme-ws"}}));
  EXPECT_EQ(Reason(c, {{"user", "bob"}, {"action", "workspace.access"}, {"workspace", "acme-ws"}}),
            "not_member");

  // Last org_admin cannot leave or be demoted.
  EXPECT_EQ(ErrCode(c.Call({{"op", "org.leave"}, {"org", "acme"}, {"user", "alice"}})), "conflict");
  EXPECT_EQ(ErrCode(c.Call({{"op", "org.set_role"}, {"org", "acme"}, {"user", "alice"},
                            {"role", "member"}})),
            "conflict");

  // Reads reflect all of this.
  Json og = c.Call({{"op", "org.get"}, {"org", "acme"}});
  EXPECT_EQ(og["org"]["counts"]["members"], 1) << og.dump();
  EXPECT_EQ(og["org"]["subscription"]["seats"], 10);
  Json lo = c.Call({{"op", "list_orgs"}, {"user", "alice"}});
  EXPECT_EQ(lo["orgs"].size(), 2u) << lo.dump();
}

TEST_F(IntegrationTest, CrossTenantLockedSuspendedAndSso) {
  Start();
  Conn c = Connect();
  SignUp(c, "alice", "acme");
  SignUp(c, "zed", "globex");
  // Cross-tenant: alice has no membership in globex; a mismatched org/workspace pair is denied.
  EXPECT_EQ(Reason(c, {{"user", "alice"}, {"action", "org.view"}, {"org", "globex"}}), "not_member");
  EXPECT_EQ(Reason(c, {{"user", "alice"}, {"action", "workspace.access"}, {"org", "acme"},
                       {"workspace", "globex-ws"}}),
            "scope_mismatch");
  EXPECT_EQ(Reason(c, {{"user", "alice"}, {"action", "workspace.access"},
                       {"workspace", "globex-ws"}}),
            "not_member");
  EXPECT_EQ(Reason(c, {{"user", "ghost"}, {"action", "org.view"}, {"org", "acme"}}), "not_member");
  EXPECT_EQ(Reason(c, {{"user", "alice"}, {"action", "no.such"}, {"org", "acme"}}),
            "unknown_action");
  // A writer acting as alice cannot touch globex either.
  EXPECT_EQ(ErrCode(c.Call({{"op", "workspace.create"}, {"actor", "alice"}, {"org", "globex"},
                            {"workspace", "x"}, {"name", "X"}})),
            "forbidden");
  // Locked org: only view / billing / subscription remain.
  MustWrite(c, {{"op", "org.set_subscription"}, {"org", "acme"}, {"status", "FROZEN"}});
  EXPECT_TRUE(Allowed(c, {{"user", "alice"}, {"action", "org.view"}, {"org", "acme"}}));
  EXPECT_EQ(Reason(c, {{"user", "alice"}, {"action", "workspace.access"}, {"workspace", "acme-ws"}}),
            "org_locked");
  EXPECT_EQ(ErrCode(c.Call({{"op", "org.invite"}, {"org", "acme"}, {"email", "x@example.com"},
                            {"role", "member"}})),
            "conflict");
  EXPECT_EQ(ErrCode(c.Call({{"op", "workspace.create"}, {"actor", "alice"}, {"org", "acme"},
                            {"workspace", "w2"}, {"name", "W2"}})),
            "conflict");
  MustWrite(c, {{"op", "org.set_subscription"}, {"org", "acme"}, {"status", "ACTIVE"},
                {"features", {"sso"}}});
  // Suspended: everything denied.
  MustWrite(c, {{"op", "org.suspend"}, {"org", "acme"}});
  EXPECT_EQ(Reason(c, {{"user", "alice"}, {"action", "org.view"}, {"org", "acme"}}), "org_suspended");
  MustWrite(c, {{"op", "org.unsuspend"}, {"org", "acme"}});
  // SSO enforced for everyone (no exempt roles).
  MustWrite(c, {{"op", "org.set_security"}, {"org", "acme"},
                {"sso", {{"enabled", true}, {"enforced", true}, {"idp", "idp-1"},
                         {"exempt_roles", Json::array()}}}});
  Json q = {{"user", "alice"}, {"action", "workspace.access"}, {"workspace", "acme-ws"}};
  EXPECT_EQ(Reason(c, q), "sso_required");
  q["context"] = {{"auth", {{"method", "sso"}, {"idp", "idp-1"}, {"age_s", 100000}}}};
  EXPECT_EQ(Reason(c, q), "sso_session_expired");
  q["context"]["auth"]["age_s"] = 60;
  EXPECT_TRUE(Allowed(c, q));
  q["context"]["auth"]["idp"] = "other";
  EXPECT_EQ(Reason(c, q), "sso_required");
}

TEST_F(IntegrationTest, BatchListsAndReads) {
  config_.audit_log = dir_ + "/audit.log";
  config_.log_decisions = true;
  Start();
  Conn c = Connect();
  SignUp(c, "alice", "acme");
  AddUser(c, "bob");
  MustWrite(c, {{"op", "workspace.create"}, {"actor", "alice"}, {"org", "acme"},
                {"workspace", "w2"}, {"name", "Second"}});
  Join(c, "acme", "bob", "member", Json::array({{{"workspace", "w2"}, {"role", "agent"}}}));
  Json b = c.Call({{"op", "check_batch"},
                   {"checks",
                    {{{"user", "alice"}, {"action", "org.delete"}, {"org", "acme"}},
                     {{"user", "bob"}, {"action", "org.delete"}, {"org", "acme"}},
                     {{"user", "bob"}, {"action", "workspace.access"}, {"workspace", "w2"}}}}});
  ASSERT_TRUE(b["ok"].get<bool>()) << b.dump();
  ASSERT_EQ(b["results"].size(), 3u);
  EXPECT_TRUE(b["results"][0]["allow"].get<bool>());
  EXPECT_FALSE(b["results"][1]["allow"].get<bool>());
  EXPECT_EQ(b["results"][1]["reason"], "no_permission");
  EXPECT_TRUE(b["results"][2]["allow"].get<bool>());

  Json la = c.Call({{"op", "list_actions"}, {"user", "bob"}, {"workspace", "w2"}});
  std::set<std::string> acts(la["actions"].begin(), la["actions"].end());
  EXPECT_TRUE(acts.count("workspace.access")) << la.dump();
  EXPECT_TRUE(acts.count("org.view"));
  EXPECT_FALSE(acts.count("org.delete"));

  Json lw = c.Call({{"op", "list_workspaces"}, {"user", "bob"}, {"org", "acme"}});
  EXPECT_EQ(lw["workspaces"], Json::array({"w2"})) << lw.dump();
  Json lwa = c.Call({{"op", "list_workspaces"}, {"user", "alice"}, {"org", "acme"}});
  EXPECT_EQ(lwa["workspaces"].size(), 2u) << lwa.dump();

  Json lu = c.Call({{"op", "list_users"}, {"org", "acme"}, {"limit", 1}});
  ASSERT_EQ(lu["users"].size(), 1u) << lu.dump();
  ASSERT_TRUE(lu["cursor"].is_string());
  Json lu2 = c.Call({{"op", "list_users"}, {"org", "acme"}, {"limit", 1}, {"cursor", lu["cursor"]}});
  ASSERT_EQ(lu2["users"].size(), 1u) << lu2.dump();
  EXPECT_NE(lu["users"][0]["user"], lu2["users"][0]["user"]);
  Json luw = c.Call({{"op", "list_users"}, {"workspace", "w2"}});
  EXPECT_EQ(luw["users"].size(), 1u) << luw.dump();
  Json lua = c.Call({{"op", "list_users"}, {"org", "acme"}, {"action", "org.delete"}});
  ASSERT_EQ(lua["users"].size(), 1u) << lua.dump();
  EXPECT_EQ(lua["users"][0]["user"], "alice");

  Json ug = c.Call({{"op", "user.get"}, {"user", "bob"}});
  EXPECT_EQ(ug["user"]["email"], "bob@example.com");
  EXPECT_TRUE(ug["user"]["email_verified"].get<bool>());
  Json wg = c.Call({{"op", "workspace.get"}, {"workspace", "w2"}});
  EXPECT_EQ(wg["workspace"]["org"], "acme");
  EXPECT_EQ(wg["workspace"]["name"], "Second");
  Json om = c.Call({{"op", "org.members"}, {"org", "acme"}});
  EXPECT_EQ(om["members"].size(), 2u) << om.dump();

  // Writes with an actor: ceilings, self-modification, workspace members.
  MustWrite(c, {{"op", "workspace.set_member"}, {"actor", "alice"}, {"workspace", "acme-ws"},
                {"user", "bob"}, {"role", "manager"}, {"restrictions", {{"no_data_export", true}}}});
  EXPECT_FALSE(Allowed(c, {{"user", "bob"}, {"action", "data.export"}, {"workspace", "acme-ws"}}));
  EXPECT_EQ(ErrCode(c.Call({{"op", "org.set_role"}, {"actor", "bob"}, {"org", "acme"},
                            {"user", "alice"}, {"role", "member"}})),
            "forbidden");
  Json self = c.Call({{"op", "org.set_role"}, {"actor", "alice"}, {"org", "acme"},
                      {"user", "alice"}, {"role", "member"}});
  EXPECT_EQ(ErrCode(self), "forbidden");
  EXPECT_NE(self["error"]["message"].get<std::string>().find("self_modification"),
            std::string::npos)
      << self.dump();
  MustWrite(c, {{"op", "workspace.remove_member"}, {"actor", "alice"}, {"workspace", "acme-ws"},
                {"user", "bob"}});
  MustWrite(c, {{"op", "workspace.update"}, {"actor", "alice"}, {"workspace", "w2"}, {"name", "Two"}});
  MustWrite(c, {{"op", "org.update"}, {"actor", "alice"}, {"org", "acme"}, {"name", "Acme 2"},
                {"attrs", {{"tier", "gold"}}}});
  Json inv = MustWrite(c, {{"op", "org.invite"}, {"actor", "alice"}, {"org", "acme"},
                           {"email", "dave@example.com"}, {"role", "member"}});
  Json rs = MustWrite(c, {{"op", "invite.resend"}, {"actor", "alice"}, {"invitation", inv["invitation"]}});
  EXPECT_NE(rs["token"], inv["token"]);
  MustWrite(c, {{"op", "invite.revoke"}, {"actor", "alice"}, {"invitation", inv["invitation"]}});
  MustWrite(c, {{"op", "workspace.delete"}, {"actor", "alice"}, {"workspace", "w2"}});
  EXPECT_EQ(ErrCode(c.Call({{"op", "workspace.get"}, {"workspace", "w2"}})), "not_found");

  Json ch = c.Call({{"op", "changes"}, {"since", 0}, {"limit", 1000}});
  ASSERT_TRUE(ch["ok"].get<bool>()) << ch.dump();
  ASSERT_FALSE(ch["changes"].empty());
  EXPECT_EQ(ch["changes"].back()["rev"], ch["rev"]);
  EXPECT_EQ(ch["changes"].back()["op"], "workspace.delete");
  EXPECT_EQ(ch["changes"].back()["actor"], "alice");

  Json h = c.Call({{"op", "health"}});
  EXPECT_EQ(h["status"], "serving");
  EXPECT_EQ(h["policy"]["name"], "respondio");
  Json st = c.Call({{"op", "stats"}});
  EXPECT_GT(st["ops"]["check"]["requests"].get<uint64_t>(), 0u) << st.dump();
  EXPECT_TRUE(st["ops"]["check"]["latency"].contains("p99_us"));
  EXPECT_EQ(ErrCode(c.Call({{"op", "org.delete"}, {"actor", "bob"}, {"org", "acme"}})),
            "forbidden");
  MustWrite(c, {{"op", "org.delete"}, {"actor", "alice"}, {"org", "acme"}});

  // Prometheus exposition of the same counters.
  std::string prom = daemon_->get()->service()->RenderPrometheus();
  EXPECT_NE(prom.find("gatehouse_decisions_allow_total "), std::string::npos);
  EXPECT_NE(prom.find("gatehouse_request_duration_seconds_count{op=\"check\"}"), std::string::npos)
      << prom;
  // The audit log got the writes (with actor) and, with log_decisions, the checks.
  daemon_.reset();
  std::ifstream audit(config_.audit_log);
  std::string all((std::istreambuf_iterator<char>(audit)), std::istreambuf_iterator<char>());
  EXPECT_NE(all.find("\"op\":\"org.delete\""), std::string::npos) << all.substr(0, 500);
  EXPECT_NE(all.find("\"actor\":\"alice\""), std::string::npos);
  EXPECT_NE(all.find("\"type\":\"check\""), std::string::npos);
}

// --- Errors, tiers, framing ----------------------------------------------------------------

TEST_F(IntegrationTest, EveryErrorCode) {
  config_.max_line = 4096;
  config_.max_connections = 3;
  Start();
  Conn c = Connect();
  EXPECT_EQ(ErrCode(Json::parse(c.Raw("not json"))), "bad_request");
  EXPECT_EQ(ErrCode(Json::parse(c.Raw("[1,2]"))), "bad_request");
  Json r = Json::parse(c.Raw(R"({"id":"x","op":"check","user":7,"action":"a","org":"o"})"));
  EXPECT_EQ(ErrCode(r), "bad_request");
  EXPECT_EQ(r["id"], "x");
  EXPECT_EQ(r["error"]["message"], "field 'user' must be a string");
  EXPECT_EQ(ErrCode(Json::parse(c.Raw("{\"op\":\"check\",\"user\":\"\xff\"}"))), "bad_request");
  std::string deep = "{\"op\":\"check\",\"x\":" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_EQ(ErrCode(Json::parse(c.Raw(deep))), "bad_request");
  r = c.Call({{"id", nullptr}, {"op", "frobnicate"}});
  EXPECT_EQ(ErrCode(r), "unknown_op");
  EXPECT_TRUE(r["id"].is_null());
  EXPECT_EQ(ErrCode(c.Call({{"op", "user.get"}, {"user", "nobody"}})), "not_found");
  MustWrite(c, {{"op", "user.register"}, {"user", "u1"}, {"email", "u1@example.com"}});
  EXPECT_EQ(ErrCode(c.Call({{"op", "user.register"}, {"user", "u1"}, {"email", "u1@example.com"}})),
            "conflict");
  EXPECT_EQ(ErrCode(c.Call({{"op", "user.register"}, {"user", "u2"}})), "bad_request");
  MustWrite(c, {{"op", "user.verify_email"}, {"user", "u1"}});
  MustWrite(c, {{"op", "org.create"}, {"user", "u1"}, {"org", "o1"}, {"name", "O"}});
  MustWrite(c, {{"op", "org.set_subscription"}, {"org", "o1"}, {"workspace_limit", 1}});
  EXPECT_EQ(ErrCode(c.Call({{"op", "workspace.create"}, {"org", "o1"}, {"workspace", "w9"},
                            {"name", "W"}})),
            "limit_exceeded");
  // stale: a revision far in the future, waited for min_rev_wait_ms.
  r = c.Call({{"op", "check"}, {"user", "u1"}, {"action", "org.view"}, {"org", "o1"},
              {"min_rev", 1000000}});
  EXPECT_EQ(ErrCode(r), "stale");
  // forbidden: the caller's tier (tested fully below) — a writer needs an actor; here the
  // operator may, so use a self_only op with a mismatched actor.
  EXPECT_EQ(ErrCode(c.Call({{"op", "org.leave"}, {"actor", "u2"}, {"org", "o1"}, {"user", "u1"}})),
            "forbidden");
  // unavailable: too many connections.
  Conn c2 = Connect();
  Conn c3 = Connect();
  ASSERT_TRUE(c3.Call({{"op", "health"}})["ok"].get<bool>());
  Conn c4 = Connect();
  std::string line, err;
  ASSERT_TRUE(c4.client()->ReadLine(&line, &err)) << err;
  EXPECT_EQ(ErrCode(Json::parse(line)), "unavailable");
  // too_large, then the connection is closed.
  std::string big = R"({"op":"health","pad":")" + std::string(5000, 'x') + "\"}";
  r = Json::parse(c.Raw(big));
  EXPECT_EQ(ErrCode(r), "too_large");
  EXPECT_FALSE(c.client()->ReadLine(&line, &err));
}

TEST_F(IntegrationTest, MinRevWaitsForTheWrite) {
  config_.min_rev_wait_ms = 3000;
  Start();
  Conn c = Connect();
  Conn w = Connect();
  uint64_t rev = c.Call({{"op", "health"}})["rev"].get<uint64_t>();
  // Ask for rev+1 before it exists; the write on another connection releases the wait.
  std::string send_err;
  ASSERT_TRUE(c.client()->Send(
      Json({{"id", 5}, {"op", "check"}, {"user", "u"}, {"action", "org.view"}, {"org", "o"},
            {"min_rev", rev + 1}})
          .dump(),
      &send_err));
  std::this_thread::sleep_for(20ms);
  MustWrite(w, {{"op", "user.register"}, {"user", "u"}, {"email", "u@example.com"}});
  std::string line, err;
  ASSERT_TRUE(c.client()->ReadLine(&line, &err, 3000)) << err;
  Json r = Json::parse(line);
  EXPECT_TRUE(r["ok"].get<bool>()) << line;
  EXPECT_GE(r["rev"].get<uint64_t>(), rev + 1);
}

TEST_F(IntegrationTest, Tiers) {
  uint32_t me = static_cast<uint32_t>(geteuid());
  uint32_t nobody = me == 4242424 ? 4242425 : 4242424;
  struct TierCase {
    const char* name;
    std::vector<uint32_t> readers, writers, operators;
  };
  // Seed data as operator first.
  Start();
  {
    Conn c = Connect();
    SignUp(c, "alice", "acme");
  }
  daemon_.reset();
  for (const char* tier : {"none", "reader", "writer", "operator"}) {
    SCOPED_TRACE(tier);
    Config cfg = config_;
    cfg.operators.uids = {nobody};
    if (std::string(tier) == "reader") cfg.readers.uids = {me};
    if (std::string(tier) == "writer") cfg.writers.uids = {me};
    if (std::string(tier) == "operator") cfg.operators.uids = {me};
    TestDaemon d(cfg);
    ASSERT_TRUE(d.ok());
    Conn c(cfg.socket_path);
    Json check = {{"op", "check"}, {"user", "alice"}, {"action", "org.view"}, {"org", "acme"}};
    Json read = {{"op", "org.get"}, {"org", "acme"}};
    Json actor_write = {{"op", "org.update"}, {"actor", "alice"}, {"org", "acme"}, {"name", "N"}};
    Json op_write = {{"op", "org.update"}, {"org", "acme"}, {"name", "M"}};
    Json admin = {{"op", "stats"}};
    Json suspend = {{"op", "org.suspend"}, {"actor", "alice"}, {"org", "acme"}};
    std::string t = tier;
    bool r = t != "none", w = t == "writer" || t == "operator", o = t == "operator";
    EXPECT_EQ(ErrCode(c.Call(check)), r ? "" : "forbidden");
    EXPECT_EQ(ErrCode(c.Call(read)), r ? "" : "forbidden");
    EXPECT_EQ(ErrCode(c.Call(actor_write)), w ? "" : "forbidden");
    EXPECT_EQ(ErrCode(c.Call(op_write)), o ? "" : "forbidden");
    EXPECT_EQ(ErrCode(c.Call(admin)), o ? "" : "forbidden");
    Json s = c.Call(suspend);
    EXPECT_EQ(ErrCode(s), o ? "" : "forbidden") << s.dump();
    if (o) MustWrite(c, {{"op", "org.unsuspend"}, {"org", "acme"}});
  }
}

TEST_F(IntegrationTest, PipelinedRequestsAnsweredInOrder) {
  Start();
  Conn c = Connect();
  SignUp(c, "alice", "acme");
  std::string batch;
  const int kN = 300;
  for (int i = 0; i < kN; ++i) {
    Json req;
    if (i % 50 == 7) {
      req = {{"id", i}, {"op", "user.register"}, {"user", "p" + std::to_string(i)},
             {"email", "p" + std::to_string(i) + "@example.com"}};
    } else {
      req = {{"id", i}, {"op", "check"}, {"user", "alice"}, {"action", "org.view"}, {"org", "acme"}};
    }
    batch += req.dump() + "\n";
  }
  std::string err, line;
  ASSERT_TRUE(c.client()->Send(batch, &err)) << err;
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(c.client()->ReadLine(&line, &err)) << err;
    Json r = Json::parse(line);
    EXPECT_EQ(r["id"], i);
    EXPECT_TRUE(r["ok"].get<bool>()) << line;
  }
}

// --- Reload, watch, shutdown ---------------------------------------------------------------

void CopyTiny(const std::string& dst) {
  ::mkdir(dst.c_str(), 0755);
  std::ifstream in(kSrc + "/tests/integration/testdata/tiny/policy.yaml");
  std::ofstream out(dst + "/policy.yaml");
  out << in.rdbuf();
}

TEST_F(IntegrationTest, ReloadValidAndInvalid) {
  std::string pdir = dir_ + "/policy";
  CopyTiny(pdir);
  config_.policy_dir = pdir;
  config_.watch_policy = true;
  daemon_ = std::make_unique<TestDaemon>(config_, /*signals=*/true);
  ASSERT_TRUE(daemon_->ok());
  Conn c = Connect();
  SignUp(c, "alice", "acme");
  Json h0 = c.Call({{"op", "health"}});
  std::string digest = h0["policy"]["digest"];
  // Every action of a small policy gets a decision program.
  EXPECT_EQ(h0["policy"]["program_actions"], h0["policy"]["actions"]) << h0.dump();
  EXPECT_GT(h0["policy"]["program_steps"].get<int>(), 0) << h0.dump();
  EXPECT_TRUE(Allowed(c, {{"user", "alice"}, {"action", "org.delete"}, {"org", "acme"}}));

  // Invalid policy: the reply lists file:line:col problems; the old policy stays.
  std::ofstream(pdir + "/broken.yaml") << "rules:\n  - id: x\n    effect: maybe\n    actions: [org.view]\n";
  Json r = c.Call({{"op", "policy.reload"}});
  EXPECT_FALSE(r["ok"].get<bool>());
  ASSERT_TRUE(r["error"].contains("problems")) << r.dump();
  EXPECT_NE(r["error"]["problems"][0].get<std::string>().find("broken.yaml:"), std::string::npos)
      << r.dump();
  EXPECT_TRUE(Allowed(c, {{"user", "alice"}, {"action", "org.delete"}, {"org", "acme"}}));
  Json h = c.Call({{"op", "health"}});
  EXPECT_EQ(h["policy"]["digest"], digest);
  EXPECT_FALSE(h["policy"]["last_reload_problems"].empty());

  // Valid change via policy.reload: org_admin loses org.delete.
  ::unlink((pdir + "/broken.yaml").c_str());
  std::ofstream(pdir + "/deny.yaml")
      << "rules:\n  - id: no-delete\n    effect: deny\n    actions: [org.delete]\n"
         "    reason: frozen_by_test\n";
  r = c.Call({{"op", "policy.reload"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_NE(r["policy"]["digest"], digest);
  EXPECT_EQ(Reason(c, {{"user", "alice"}, {"action", "org.delete"}, {"org", "acme"}}),
            "frozen_by_test");

  // inotify: removing the file reloads by itself (debounced).
  ::unlink((pdir + "/deny.yaml").c_str());
  bool reloaded = false;
  for (int i = 0; i < 100 && !reloaded; ++i) {
    std::this_thread::sleep_for(30ms);
    reloaded = Allowed(c, {{"user", "alice"}, {"action", "org.delete"}, {"org", "acme"}});
  }
  EXPECT_TRUE(reloaded);

  // SIGHUP reloads too (a daemon that does not watch the directory).
  daemon_.reset();
  config_.watch_policy = false;
  daemon_ = std::make_unique<TestDaemon>(config_, /*signals=*/true);
  ASSERT_TRUE(daemon_->ok());
  Conn c2 = Connect();
  EXPECT_TRUE(Allowed(c2, {{"user", "alice"}, {"action", "org.delete"}, {"org", "acme"}}));
  std::ofstream(pdir + "/deny.yaml")
      << "rules:\n  - id: no-delete\n    effect: deny\n    actions: [org.delete]\n"
         "    reason: by_sighup\n";
  ::raise(SIGHUP);
  bool hup = false;
  for (int i = 0; i < 100 && !hup; ++i) {
    std::this_thread::sleep_for(30ms);
    hup = Reason(c2, {{"user", "alice"}, {"action", "org.delete"}, {"org", "acme"}}) == "by_sighup";
  }
  EXPECT_TRUE(hup);
}

TEST_F(IntegrationTest, WatchStreamsChangesAndResumesAcrossReconnect) {
  Start();
  Conn w = Connect();
  Conn c = Connect();
  uint64_t rev0 = c.Call({{"op", "health"}})["rev"].get<uint64_t>();
  Json ack = w.Call({{"id", "w"}, {"op", "watch"}, {"since", rev0}});
  ASSERT_TRUE(ack["ok"].get<bool>()) << ack.dump();
  MustWrite(c, {{"op", "user.register"}, {"user", "a"}, {"email", "a@example.com"}});
  MustWrite(c, {{"op", "user.register"}, {"user", "b"}, {"email", "b@example.com"}});
  std::string line, err;
  uint64_t last = rev0;
  for (const char* user : {"a", "b"}) {
    ASSERT_TRUE(w.client()->ReadLine(&line, &err)) << err;
    Json e = Json::parse(line);
    EXPECT_EQ(e["event"], "change");
    EXPECT_EQ(e["op"], "user.register");
    EXPECT_EQ(e["rev"].get<uint64_t>(), last + 1) << line << " " << user;
    last = e["rev"].get<uint64_t>();
  }
  w.client()->Close();
  // Changes while nobody watches...
  MustWrite(c, {{"op", "user.register"}, {"user", "c"}, {"email", "c@example.com"}});
  MustWrite(c, {{"op", "user.verify_email"}, {"user", "c"}});
  // ...are delivered after a reconnect with since = the last seen revision, without a gap.
  Conn w2 = Connect();
  ack = w2.Call({{"op", "watch"}, {"since", last}});
  ASSERT_TRUE(ack["ok"].get<bool>());
  for (const char* op : {"user.register", "user.verify_email"}) {
    ASSERT_TRUE(w2.client()->ReadLine(&line, &err)) << err;
    Json e = Json::parse(line);
    EXPECT_EQ(e["op"], op);
    EXPECT_EQ(e["rev"].get<uint64_t>(), last + 1);
    last = e["rev"].get<uint64_t>();
  }
  MustWrite(c, {{"op", "user.register"}, {"user", "d"}, {"email", "d@example.com"}});
  ASSERT_TRUE(w2.client()->ReadLine(&line, &err)) << err;
  EXPECT_EQ(Json::parse(line)["rev"].get<uint64_t>(), last + 1);
}

TEST_F(IntegrationTest, ShutdownAnswersInFlightWritesAndRemovesSocket) {
  Start();
  Conn c = Connect();
  // Make sure the daemon has accepted the connection (one round trip): connections still in
  // the listen backlog when shutdown begins are refused, not served.
  ASSERT_TRUE(c.Call({{"op", "health"}})["ok"].get<bool>());
  std::string batch;
  const int kN = 50;
  for (int i = 0; i < kN; ++i) {
    batch += Json({{"id", i}, {"op", "user.register"}, {"user", "s" + std::to_string(i)},
                   {"email", "s" + std::to_string(i) + "@example.com"}})
                 .dump() +
             "\n";
  }
  std::string err, line;
  ASSERT_TRUE(c.client()->Send(batch, &err));
  std::this_thread::sleep_for(2ms);
  std::thread stopper([&] { daemon_->Stop(); });
  int answered = 0;
  while (c.client()->ReadLine(&line, &err, 5000)) {
    Json r = Json::parse(line);
    EXPECT_EQ(r["id"], answered);
    EXPECT_TRUE(r["ok"].get<bool>()) << line;
    ++answered;
  }
  stopper.join();
  EXPECT_EQ(err, "eof");
  EXPECT_EQ(answered, kN);  // every line that reached the daemon got its answer
  struct stat st;
  EXPECT_NE(::stat(config_.socket_path.c_str(), &st), 0) << "socket file left behind";
  // What was acknowledged is in the store.
  daemon_ = std::make_unique<TestDaemon>(config_);
  Conn c2 = Connect();
  for (int i = 0; i < answered; ++i) {
    EXPECT_TRUE(c2.Call({{"op", "user.get"}, {"user", "s" + std::to_string(i)}})["ok"].get<bool>());
  }
}

TEST_F(IntegrationTest, RefusesToStartWithInvalidPolicy) {
  std::string pdir = dir_ + "/bad";
  ::mkdir(pdir.c_str(), 0755);
  std::ofstream(pdir + "/p.yaml") << "actions: {org: [Bad Name]}\n";
  config_.policy_dir = pdir;
  std::string err;
  auto d = Daemon::Start(config_, &err, false);
  EXPECT_FALSE(d);
  EXPECT_NE(err.find("p.yaml:"), std::string::npos) << err;
}

}  // namespace
}  // namespace gatehouse::daemon

namespace gatehouse::daemon {
namespace {

// systemd socket activation: the listening socket arrives as fd 3 with LISTEN_PID/LISTEN_FDS;
// SIGTERM shuts the daemon down gracefully. Runs the daemon in a forked child process.
TEST(SocketActivation, ServesFd3AndStopsOnSigterm) {
  char tmpl[] = "/tmp/gh_sd_XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string path = dir + "/activated.sock";
  int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(lfd, 16), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (lfd != 3) {
      ::dup2(lfd, 3);  // dup2 clears FD_CLOEXEC on the new descriptor
      ::close(lfd);
    }
    std::string me = std::to_string(::getpid());
    ::setenv("LISTEN_PID", me.c_str(), 1);
    ::setenv("LISTEN_FDS", "1", 1);
    Config c;
    c.socket_path = dir + "/not-used.sock";
    c.data_dir = dir + "/data";
    c.policy_dir = kSrc + "/policies/respondio";
    c.threads = 1;
    c.durable = false;
    c.watch_policy = false;
    c.log_level = "error";
    std::string err;
    auto d = Daemon::Start(c, &err, /*handle_signals=*/true);
    if (!d) {
      std::fprintf(stderr, "start failed: %s\n", err.c_str());
      ::_exit(2);
    }
    d->Run();
    d.reset();
    ::_exit(0);
  }
  ::close(lfd);
  std::string err, line;
  std::unique_ptr<Client> c = Client::Connect(path, &err);
  ASSERT_TRUE(c) << err;
  ASSERT_TRUE(c->Call(R"({"id":1,"op":"health"})", &line, &err, 10000)) << err;
  EXPECT_EQ(Json::parse(line)["status"], "serving") << line;
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_FALSE(c->ReadLine(&line, &err, 2000));
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << "an adopted socket's file is not the daemon's to remove";
  EXPECT_NE(::stat((dir + "/not-used.sock").c_str(), &st), 0);
  std::string cmd = "rm -rf " + dir;
  (void)system(cmd.c_str());
}

}  // namespace
}  // namespace gatehouse::daemon
