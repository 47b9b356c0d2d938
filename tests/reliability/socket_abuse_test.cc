// Abuse through the socket: garbage bytes, invalid UTF-8, NUL bytes, deeply nested JSON,
// oversized lines, wrong types in every field, thousands of pipelined requests, 1,000
// connections, slow readers and clients that never read, half-closed sockets. The daemon (a
// forked child) must stay up, its memory must stay bounded (VmRSS), and a well-behaved client
// must keep getting answers. No timing assertions beyond generous timeouts.
#include <sys/resource.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/reliability/daemon_harness.h"

namespace gatehouse::reliability {
namespace {

using Json = nlohmann::json;
using namespace std::string_literals;

class SocketAbuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_ = TestConfig(dir_.path());
    cfg_.durable = false;
    cfg_.max_line = 64 * 1024;
    cfg_.max_connections = 1100;
    cfg_.max_output_bytes = 1 << 20;
    std::string err;
    ASSERT_TRUE(d_.Start(cfg_, dir_.path() + "/daemon.log", &err)) << err;
    // A small world: u1 owns o1/w1.
    for (const char* l : {R"({"op":"user.register","user":"u1","email":"u1@example.com"})",
                          R"({"op":"user.verify_email","user":"u1"})",
                          R"({"op":"org.create","user":"u1","org":"o1","name":"O","workspace":"w1"})"}) {
      ASSERT_NE(Call(cfg_.socket_path, l).find("\"ok\":true"), std::string::npos) << l;
    }
  }
  void TearDown() override {
    EXPECT_TRUE(d_.Alive()) << "daemon died";
    d_.Stop();
  }
  // A well-behaved client on a fresh connection still gets a correct answer.
  void ExpectHealthy() {
    std::string r = Call(cfg_.socket_path,
                         R"({"id":7,"op":"check","user":"u1","action":"org.view","org":"o1"})");
    EXPECT_NE(r.find("\"allow\":true"), std::string::npos) << "well-behaved client: " << r;
    EXPECT_TRUE(d_.Alive());
  }
  // Sends one line on `c`; expects one error reply with ok:false (connection stays up).
  void ExpectError(RawConn& c, const std::string& line) {
    ASSERT_TRUE(c.Write(line + "\n")) << line;
    std::string reply;
    ASSERT_TRUE(c.ReadLine(&reply)) << "no reply to: " << line;
    Json j = Json::parse(reply, nullptr, false);
    ASSERT_TRUE(j.is_object()) << reply;
    EXPECT_EQ(j.value("ok", true), false) << "for " << line << ": " << reply;
  }

  TempDir dir_;
  daemon::Config cfg_;
  ChildDaemon d_;
};

TEST_F(SocketAbuseTest, GarbageInvalidUtf8NulAndNesting) {
  RawConn c(cfg_.socket_path);
  ASSERT_TRUE(c.ok());
  std::vector<std::string> bad = {
      "garbage", "{", "}", "[]", "null", "\"str\"", "12", "{\"op\":}", "{'op':'health'}",
      std::string("{\"op\":\"check\",\"user\":\"\xff\xfe\",\"action\":\"org.view\",\"org\":\"o1\"}"),
      std::string("{\"op\":\"check\",\"user\":\"\xc0\xaf\",\"action\":\"org.view\",\"org\":\"o1\"}"),
      std::string("{\"op\":\"check\",\"user\":\"\xed\xa0\x80\",\"action\":\"org.view\",\"org\":\"o1\"}"),
      "{\"op\":\"health\"\0}"s,
      "{\"op\":\"check\",\"user\":\"u1\0x\",\"action\":\"org.view\",\"org\":\"o1\"}"s,
      "{\"op\":\"check\",\"user\":\"u1\\u0000\",\"action\":\"org.view\",\"org\":\"o1\"}",
      "{\"op\":\"check\",\"user\":\"\\ud800\",\"action\":\"org.view\",\"org\":\"o1\"}",
      "{\"a\":" + std::string(100000 / 2, '[') ,  // over max_line? no: 50k < 64k, deep nesting
      "{\"a\":" + std::string(1000, '[') + std::string(1000, ']') + ",\"op\":\"health\"}",
      "{\"op\":\"health\",\"x\":" + std::string(5000, '{') + "}",
      std::string(1000, '\0'),
      "\x1b[31m{\"op\":\"health\"}",
      "{\"op\":\"check\",\"user\":\"u1\",\"action\":\"org.view\",\"org\":\"o1\",\"min_rev\":1e999}",
      "{\"op\":\"nope\"}", "{\"op\":\"\"}", "{\"op\":null}", "{\"id\":{\"x\":1},\"op\":\"health\"}",
  };
  for (const auto& l : bad) {
    if (l.find('\n') != std::string::npos) continue;
    ExpectError(c, l);
  }
  ExpectHealthy();
}

TEST_F(SocketAbuseTest, WrongTypesInEveryField) {
  // Each op with its fields; each field in turn replaced by each wrong type.
  const std::vector<std::pair<std::string, std::vector<std::string>>> ops = {
      {"check", {"user", "action", "org", "workspace", "resource", "context", "explain", "min_rev"}},
      {"check_batch", {"checks"}},
      {"list_actions", {"user", "org", "workspace", "resource", "context"}},
      {"list_workspaces", {"user", "org", "action"}},
      {"list_orgs", {"user"}},
      {"list_users", {"org", "action", "limit", "cursor"}},
      {"user.get", {"user"}}, {"org.get", {"org"}}, {"workspace.get", {"workspace"}},
      {"invitation.get", {"invitation"}}, {"changes", {"since", "limit"}},
      {"user.register", {"user", "email"}}, {"user.set_org_allowance", {"user", "allowance"}},
      {"org.create", {"user", "org", "name", "workspace"}},
      {"org.update", {"org", "name", "attrs", "actor"}},
      {"org.set_subscription", {"org", "plan", "status", "seats", "workspace_limit", "features",
                                "billing"}},
      {"org.set_security", {"org", "sso"}},
      {"org.invite", {"org", "email", "role", "workspaces", "ttl_s"}},
      {"invite.accept", {"user", "token"}}, {"invite.resend", {"invitation"}},
      {"org.set_role", {"org", "user", "role"}}, {"org.remove_member", {"org", "user"}},
      {"workspace.create", {"org", "workspace", "name"}},
      {"workspace.set_member", {"workspace", "user", "role", "team", "restrictions"}},
  };
  const std::vector<std::string> wrong = {"123", "-1", "1.5", "true", "null", "[]", "[1,\"a\"]",
                                          "{}", "{\"a\":{\"b\":1}}", "\"\"",
                                          "\"" + std::string(300, 'x') + "\""};
  RawConn c(cfg_.socket_path);
  ASSERT_TRUE(c.ok());
  int sent = 0, errors = 0;
  for (const auto& [op, fields] : ops) {
    for (const auto& f : fields) {
      for (const auto& w : wrong) {
        Json base = {{"op", op}, {"user", "u1"}, {"org", "o1"}, {"action", "org.view"}};
        std::string line = base.dump();
        line.pop_back();
        line += ",\"" + f + "\":" + w + "}";
        ASSERT_TRUE(c.Write(line + "\n"));
        std::string reply;
        ASSERT_TRUE(c.ReadLine(&reply)) << "no reply to " << line;
        Json j = Json::parse(reply, nullptr, false);
        ASSERT_TRUE(j.is_object() && j["ok"].is_boolean()) << line << " -> " << reply;
        ++sent;
        errors += !j["ok"].get<bool>();
        EXPECT_NE(j.value("error", Json::object()).value("code", ""), "internal")
            << line << " -> " << reply;
      }
    }
  }
  std::printf("wrong types: %d requests, %d errors\n", sent, errors);
  ExpectHealthy();
}

TEST_F(SocketAbuseTest, OversizedLineGetsTooLargeAndClose) {
  RawConn c(cfg_.socket_path);
  std::string huge = "{\"op\":\"health\",\"x\":\"" + std::string(cfg_.max_line + 10, 'a') + "\"}\n";
  c.Write(huge, 10000);  // the daemon may close before reading it all
  std::string reply;
  ASSERT_TRUE(c.ReadLine(&reply));
  EXPECT_NE(reply.find("too_large"), std::string::npos) << reply;
  EXPECT_TRUE(c.WaitEof());
  // A line with no newline at all, longer than the limit.
  RawConn c2(cfg_.socket_path);
  c2.Write(std::string(cfg_.max_line * 2, 'z'), 10000);
  ASSERT_TRUE(c2.ReadLine(&reply));
  EXPECT_NE(reply.find("too_large"), std::string::npos) << reply;
  ExpectHealthy();
}

TEST_F(SocketAbuseTest, ThousandsOfPipelinedRequestsAnsweredInOrder) {
  RawConn c(cfg_.socket_path);
  const int n = 5000;
  std::string batch;
  for (int i = 0; i < n; ++i) {
    batch += "{\"id\":" + std::to_string(i) +
             ",\"op\":\"check\",\"user\":\"u1\",\"action\":\"org.view\",\"org\":\"o1\"}\n";
  }
  ASSERT_TRUE(c.Write(batch, 30000));
  for (int i = 0; i < n; ++i) {
    std::string reply;
    ASSERT_TRUE(c.ReadLine(&reply, 30000)) << "reply " << i;
    ASSERT_EQ(reply.rfind("{\"id\":" + std::to_string(i) + ",", 0), 0u) << reply;
  }
  ExpectHealthy();
}

TEST_F(SocketAbuseTest, ThousandConnections) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 2100) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 4096);
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < 1100) GTEST_SKIP() << "RLIMIT_NOFILE too low: " << rl.rlim_cur;
  // The daemon child inherited the limit at fork; it was started in SetUp, before the raise,
  // so restart it with the higher limit.
  d_.Stop();
  std::string err;
  ASSERT_TRUE(d_.Start(cfg_, dir_.path() + "/daemon.log", &err)) << err;
  std::vector<std::unique_ptr<RawConn>> conns;
  for (int i = 0; i < 1000; ++i) {
    conns.push_back(std::make_unique<RawConn>(cfg_.socket_path));
    ASSERT_TRUE(conns.back()->ok()) << "connection " << i;
  }
  for (auto& c : conns) ASSERT_TRUE(c->Write("{\"op\":\"health\"}\n"));
  int answered = 0;
  for (auto& c : conns) {
    std::string reply;
    answered += c->ReadLine(&reply, 20000) && reply.find("\"ok\":true") != std::string::npos;
  }
  EXPECT_EQ(answered, 1000);
  ExpectHealthy();
  std::printf("1000 connections: daemon VmRSS %lld KiB\n", static_cast<long long>(d_.RssKiB()));
}

TEST_F(SocketAbuseTest, ClientsThatNeverReadKeepMemoryBounded) {
  const int64_t rss0 = d_.RssKiB();
  // 8 clients each pipeline ~40 MB of replies' worth of requests and never read.
  std::string batch;
  for (int i = 0; i < 2000; ++i) {
    batch += R"({"op":"list_actions","user":"u1","workspace":"w1"})" "\n";
  }
  std::vector<std::unique_ptr<RawConn>> hogs;
  for (int k = 0; k < 8; ++k) {
    hogs.push_back(std::make_unique<RawConn>(cfg_.socket_path));
    // Writing stops succeeding once the daemon stops reading (its output bound): that is the
    // point. Ignore the failure.
    for (int r = 0; r < 20; ++r) {
      if (!hogs.back()->Write(batch, 500)) break;
    }
  }
  ExpectHealthy();
  const int64_t rss1 = d_.RssKiB();
  std::printf("never-reading clients: VmRSS %lld KiB -> %lld KiB\n",
              static_cast<long long>(rss0), static_cast<long long>(rss1));
  // Bounded by max_output_bytes (1 MiB) + socket buffers per connection; generous margin.
  EXPECT_LT(rss1 - rss0, 256 * 1024) << "daemon memory grew by " << (rss1 - rss0) << " KiB";
  // Slow reader: reads a little at a time, still gets everything in order.
  RawConn slow(cfg_.socket_path);
  std::string req;
  for (int i = 0; i < 300; ++i) {
    req += "{\"id\":" + std::to_string(i) +
           ",\"op\":\"list_actions\",\"user\":\"u1\",\"workspace\":\"w1\"}\n";
  }
  ASSERT_TRUE(slow.Write(req));
  for (int i = 0; i < 300; ++i) {
    std::string reply;
    ASSERT_TRUE(slow.ReadLine(&reply, 20000));
    ASSERT_EQ(reply.rfind("{\"id\":" + std::to_string(i) + ",", 0), 0u);
  }
  hogs.clear();
  ExpectHealthy();
}

TEST_F(SocketAbuseTest, HalfClosedSocketsStillGetTheirReplies) {
  for (int i = 0; i < 20; ++i) {
    RawConn c(cfg_.socket_path);
    ASSERT_TRUE(c.Write(R"({"id":1,"op":"check","user":"u1","action":"org.view","org":"o1"})" "\n"
                        R"({"id":2,"op":"health"})" "\n"));
    c.ShutdownWrite();
    std::string r1, r2;
    ASSERT_TRUE(c.ReadLine(&r1));
    ASSERT_TRUE(c.ReadLine(&r2));
    EXPECT_NE(r1.find("\"allow\":true"), std::string::npos) << r1;
    EXPECT_NE(r2.find("\"id\":2"), std::string::npos) << r2;
    EXPECT_TRUE(c.WaitEof());
  }
  // Connect and close immediately; connect, send half a line, close.
  for (int i = 0; i < 50; ++i) {
    RawConn c(cfg_.socket_path);
    if (i % 2) c.Write("{\"op\":\"hea");
  }
  ExpectHealthy();
}

}  // namespace
}  // namespace gatehouse::reliability
