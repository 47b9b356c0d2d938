// Proves the hot path allocates nothing: decode -> evaluate -> encode of `check`,
// `check_batch` and `list_actions` through Service::OnLine, with a counting global operator new,
// over the LMDB store and the shipped policy.
#include <stdlib.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include <gtest/gtest.h>

#include "daemon/config.h"
#include "daemon/server.h"
#include "daemon/service.h"
#include "daemon/test_connection.h"
#include "policy/policy.h"
#include "store/store.h"

#include "daemon/counting_new_test.h"  // counts global operator new (g_counting, g_allocs)

namespace gatehouse::daemon {
namespace {

store::WriteResult MustWrite(store::Store* s, store::WriteRequest r) {
  auto res = s->Write(std::move(r));
  EXPECT_TRUE(res.status.ok()) << res.status.ToString();
  return res;
}

TEST(DaemonAlloc, HotOpsDoNotAllocate) {
#ifdef GATEHOUSE_SANITIZER
  GTEST_SKIP() << "allocation counting needs the plain allocator";
#endif
  char tmpl[] = "/tmp/gh_alloc_XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::unique_ptr<store::Store> st;
  store::Options so;
  so.path = dir;
  so.durable = false;
  ASSERT_TRUE(store::Store::Open(so, &st).ok());
  {
    store::WriteRequest r;
    r.op = "user.register"; r.user = "alice"; r.email = "alice@example.com";
    MustWrite(st.get(), r);
    r = {}; r.op = "user.verify_email"; r.user = "alice";
    MustWrite(st.get(), r);
    r = {}; r.op = "org.create"; r.user = "alice"; r.org = "acme"; r.name = "Acme";
    r.workspace = "ws1";
    MustWrite(st.get(), r);
  }
  std::vector<policy::Issue> issues;
  auto pol = policy::LoadPolicyDir(std::string(GATEHOUSE_SOURCE_DIR) + "/policies/respondio", &issues);
  ASSERT_TRUE(pol) << (issues.empty() ? "" : issues[0].ToString());

  Config cfg;
  Service svc(cfg, st.get());
  svc.SetPolicy(pol);
  svc.PrepareWorkers(1);
  auto conn = std::make_shared<LocalConnection>();
  conn->peer_.tier = Tier::kReader;
  conn->state_ = svc.OnOpen(*conn);
  std::shared_ptr<Connection> c = conn;

  const std::string lines[] = {
      R"({"id":1,"op":"check","user":"alice","action":"conversation.reply","workspace":"ws1",)"
      R"("resource":{"type":"conversation","id":"c9","attrs":{"assignee":"alice","team":"t\u00e9"}},)"
      R"("context":{"auth":{"method":"sso","idp":"idp-1","age_s":600},"client":"web","x":{"y":1}},"explain":true})",
      R"({"id":"d","op":"check","user":"mallory","action":"org.view","org":"acme"})",
      R"({"op":"check_batch","checks":[{"user":"alice","action":"org.delete","org":"acme"},)"
      R"({"user":"alice","action":"workspace.access","workspace":"ws1"}]})",
      R"({"op":"list_actions","user":"alice","workspace":"ws1"})",
      // single-pass shapes with attributes, context scalars, min_rev and whitespace
      R"({ "id" : 7 , "op":"check","user":"alice","action":"conversation.reply","workspace":"ws1",)"
      R"("resource":{"type":"conversation","attrs":{"assignee":"alice","n":3,"b":true}},)"
      R"("context":{"auth":{"method":"sso","age_s":5},"ip":"10.0.0.1"},"min_rev":0})",
      R"({"op":"check_batch","explain":true,"checks":[{"user":"alice","action":"org.view","org":"acme",)"
      R"("resource":{"attrs":{"team":"t1"}}},{"user":"bob","action":"workspace.access","workspace":"ws1"}]})",
      R"({"op":"check","user":5})",
  };
  std::string out;
  out.reserve(1 << 16);
  for (int i = 0; i < 3; ++i) {  // warm up: buffers grow to their working size
    for (const auto& l : lines) {
      out.clear();
      ASSERT_EQ(svc.OnLine(c, l, &out), Handler::Disposition::kDone);
    }
  }
  EXPECT_NE(out.find("bad_request"), std::string::npos) << out;
  g_allocs = 0;
  g_counting = true;
  for (int i = 0; i < 200; ++i) {
    for (const auto& l : lines) {
      out.clear();
      svc.OnLine(c, l, &out);
    }
  }
  g_counting = false;
  EXPECT_EQ(g_allocs.load(), 0u) << "the hot path allocated";
  // The replies are real decisions.
  out.clear();
  svc.OnLine(c, lines[0], &out);
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos) << out;
  out.clear();
  svc.OnLine(c, lines[1], &out);
  EXPECT_NE(out.find("\"allow\":false"), std::string::npos) << out;
  EXPECT_NE(out.find("not_member"), std::string::npos) << out;

  // The counter itself works (the test can fail).
  g_counting = true;
  auto* leak = new std::string(100, 'x');
  g_counting = false;
  delete leak;
  EXPECT_GE(g_allocs.load(), 1u);
  conn->state_.reset();
  st->Close();
  std::string cmd = "rm -rf " + dir;
  (void)system(cmd.c_str());
}

}  // namespace
}  // namespace gatehouse::daemon
