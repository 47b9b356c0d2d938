#include "daemon/server.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "daemon/client.h"

namespace gatehouse::daemon {
namespace {

using namespace std::chrono_literals;

// Echoes each line; "defer" completes 30 ms later via Finish; "retry" defers once then answers
// on Retry; "big" answers with 1 KiB.
class FakeHandler : public Handler {
 public:
  std::unique_ptr<ConnectionState> OnOpen(Connection& c) override {
    last_tier = c.peer().tier;
    last_uid = c.peer().uid;
    return nullptr;
  }
  Disposition OnLine(const std::shared_ptr<Connection>& c, std::string_view line,
                     std::string* out) noexcept override {
    lines.fetch_add(1);
    if (line == "defer") {
      std::weak_ptr<Connection> w = c;
      c->RunAfter(30ms, [w] {
        if (auto s = w.lock()) s->Finish("deferred\n");
      });
      return Disposition::kDeferred;
    }
    if (line == "retry") {
      if (!retried_) {
        retried_ = true;
        c->Retry();
        return Disposition::kDeferred;
      }
      retried_ = false;
      out->append("retried\n");
      return Disposition::kDone;
    }
    if (line == "sleep") {  // blocks the worker (and, with one thread, the acceptor)
      std::this_thread::sleep_for(300ms);
      out->append("slept\n");
      return Disposition::kDone;
    }
    if (line == "big") {
      out->append(1023, 'x');
      out->push_back('\n');
      return Disposition::kDone;
    }
    out->append(line);
    out->push_back('\n');
    return Disposition::kDone;
  }
  std::string RefusalLine() override { return "refused\n"; }

  std::atomic<int> lines{0};
  std::atomic<Tier> last_tier{Tier::kNone};
  std::atomic<uint32_t> last_uid{0};
  bool retried_ = false;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gh_server_XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/s.sock";
    opt_.threads = 2;
    opt_.max_line = 1024;
    opt_.tier_for = [](uint32_t uid, uint32_t) {
      return uid == geteuid() ? Tier::kWriter : Tier::kNone;
    };
  }
  void TearDown() override {
    server_.reset();
    std::string cmd = "rm -rf " + dir_;
    (void)system(cmd.c_str());
  }
  void StartServer() {
    server_ = std::make_unique<Server>(opt_, &handler_);
    std::string err;
    ASSERT_TRUE(server_->Listen(path_, &err)) << err;
    server_->Start();
  }
  std::unique_ptr<Client> Connect() {
    std::string err;
    auto c = Client::Connect(path_, &err);
    EXPECT_TRUE(c) << err;
    return c;
  }
  std::string dir_, path_;
  ServerOptions opt_;
  FakeHandler handler_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, PipelinedRepliesComeInOrderAcrossDeferredRequests) {
  StartServer();
  auto c = Connect();
  std::string err, line;
  ASSERT_TRUE(c->Send("a\nb\ndefer\nc\nretry\nd\n\n  \r\ne", &err));
  for (const char* want : {"a", "b", "deferred", "c", "retried", "d"}) {
    ASSERT_TRUE(c->ReadLine(&line, &err)) << err;
    EXPECT_EQ(line, want);
  }
  ASSERT_TRUE(c->Send("\n", &err));  // completes "e"
  ASSERT_TRUE(c->ReadLine(&line, &err)) << err;
  EXPECT_EQ(line, "e");
  EXPECT_EQ(handler_.last_tier.load(), Tier::kWriter);
  EXPECT_EQ(handler_.last_uid.load(), geteuid());
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
}

TEST_F(ServerTest, LastLineWithoutNewlineIsAnsweredAtEof) {
  StartServer();
  auto c = Connect();
  std::string err, line;
  ASSERT_TRUE(c->Send("x\ny", &err));
  c->ShutdownWrite();
  ASSERT_TRUE(c->ReadLine(&line, &err)) << err;
  EXPECT_EQ(line, "x");
  // Client::Send always appends '\n', so "y" arrived as a full line.
  ASSERT_TRUE(c->ReadLine(&line, &err)) << err;
  EXPECT_EQ(line, "y");
  EXPECT_FALSE(c->ReadLine(&line, &err));
  EXPECT_EQ(err, "eof");
}

TEST_F(ServerTest, OversizedLineGetsTooLargeAndClose) {
  StartServer();
  auto c = Connect();
  std::string err, line;
  ASSERT_TRUE(c->Send("ok\n" + std::string(2000, 'z'), &err));
  ASSERT_TRUE(c->ReadLine(&line, &err)) << err;
  EXPECT_EQ(line, "ok");
  ASSERT_TRUE(c->ReadLine(&line, &err)) << err;
  EXPECT_NE(line.find("\"too_large\""), std::string::npos) << line;
  EXPECT_FALSE(c->ReadLine(&line, &err));
  EXPECT_EQ(err, "eof");
  // An oversized line that never ends is caught too (no newline at all).
  auto c2 = Connect();
  ASSERT_TRUE(c2->Send(std::string(5000, 'q'), &err));
  ASSERT_TRUE(c2->ReadLine(&line, &err)) << err;
  EXPECT_NE(line.find("\"too_large\""), std::string::npos);
}

TEST_F(ServerTest, MaxConnectionsRefusesExtraClients) {
  opt_.max_connections = 2;
  StartServer();
  auto a = Connect();
  auto b = Connect();
  std::string err, line;
  ASSERT_TRUE(a->Call("1", &line, &err)) << err;
  ASSERT_TRUE(b->Call("2", &line, &err)) << err;
  auto c = Connect();
  ASSERT_TRUE(c->ReadLine(&line, &err)) << err;
  EXPECT_EQ(line, "refused");
  EXPECT_FALSE(c->ReadLine(&line, &err));
  a.reset();
  // Once a slot frees up, new clients get in.
  for (int i = 0; i < 200 && server_->connections() > 1; ++i) std::this_thread::sleep_for(5ms);
  auto d = Connect();
  ASSERT_TRUE(d->Call("3", &line, &err)) << err;
  EXPECT_EQ(line, "3");
}

TEST_F(ServerTest, ClientThatNeverReadsCannotGrowOutput) {
  opt_.max_output_bytes = 64 * 1024;
  opt_.max_line = 1 << 20;
  StartServer();
  auto c = Connect();
  const int kLines = 20000;  // 20 MB of replies if all were produced
  std::string req;
  for (int i = 0; i < kLines; ++i) req += "big\n";
  std::string err;
  std::thread sender([&] { c->Send(req, &err, 30000); });
  // Wait until the server stalls.
  int last = -1;
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(20ms);
    int now = handler_.lines.load();
    if (now == last && now > 0) break;
    last = now;
  }
  int processed = handler_.lines.load();
  EXPECT_LT(processed, kLines / 4) << "the server kept producing replies nobody reads";
  // Reading everything gets every reply, in order.
  std::string line, rerr;
  for (int i = 0; i < kLines; ++i) {
    ASSERT_TRUE(c->ReadLine(&line, &rerr, 10000)) << i << " " << rerr;
    ASSERT_EQ(line.size(), 1023u);
  }
  sender.join();
}

TEST_F(ServerTest, IdleConnectionsAreClosed) {
  opt_.idle_timeout_s = 1;
  StartServer();
  auto c = Connect();
  std::string err, line;
  ASSERT_TRUE(c->Call("hi", &line, &err)) << err;
  EXPECT_FALSE(c->ReadLine(&line, &err, 5000));
  EXPECT_EQ(err, "eof");
}

TEST_F(ServerTest, ShutdownAnswersInFlightAndRemovesSocket) {
  StartServer();
  auto c = Connect();
  std::string err, line;
  ASSERT_TRUE(c->Send("defer\nafter\n", &err));
  std::this_thread::sleep_for(5ms);
  std::thread stopper([&] { server_->Shutdown(); });
  ASSERT_TRUE(c->ReadLine(&line, &err)) << err;
  EXPECT_EQ(line, "deferred");
  ASSERT_TRUE(c->ReadLine(&line, &err)) << err;
  EXPECT_EQ(line, "after");
  EXPECT_FALSE(c->ReadLine(&line, &err));
  stopper.join();
  struct stat st;
  EXPECT_NE(stat(path_.c_str(), &st), 0);
  EXPECT_FALSE(Client::Connect(path_, &err));
}

TEST_F(ServerTest, ShutdownServesConnectionsWaitingInTheBacklog) {
  opt_.threads = 1;  // the only worker also runs the acceptor
  StartServer();
  auto blocker = Connect();
  std::string err, line;
  ASSERT_TRUE(blocker->Send("sleep", &err));
  for (int i = 0; i < 400 && handler_.lines.load() < 1; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(handler_.lines.load(), 1);
  // These connect (the kernel queues them in the listen backlog) and send while the worker is
  // busy: nobody has accepted them when shutdown begins.
  std::vector<std::unique_ptr<Client>> waiting;
  for (int i = 0; i < 3; ++i) {
    waiting.push_back(Connect());
    ASSERT_TRUE(waiting.back()->Send("q" + std::to_string(i), &err)) << err;
  }
  std::thread stopper([&] { server_->Shutdown(); });
  ASSERT_TRUE(blocker->ReadLine(&line, &err)) << err;
  EXPECT_EQ(line, "slept");
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(waiting[i]->ReadLine(&line, &err)) << i << ": " << err;
    EXPECT_EQ(line, "q" + std::to_string(i));
    EXPECT_FALSE(waiting[i]->ReadLine(&line, &err));  // then closed
  }
  stopper.join();
  EXPECT_FALSE(Client::Connect(path_, &err));  // and nothing new gets in
}

TEST_F(ServerTest, BusyPollWorkersServeAndShutDown) {
  opt_.busy_poll_us = 500;  // workers poll between requests instead of sleeping at once
  StartServer();
  auto c = Connect();
  std::string err, line;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(c->Call("p" + std::to_string(i), &line, &err)) << err;
    ASSERT_EQ(line, "p" + std::to_string(i));
    if (i % 10 == 0) std::this_thread::sleep_for(2ms);  // beyond the window: workers sleep
  }
  ASSERT_TRUE(c->Send("defer\nz\n", &err));  // deferred completion (timer) still fires
  ASSERT_TRUE(c->ReadLine(&line, &err)) << err;
  EXPECT_EQ(line, "deferred");
  ASSERT_TRUE(c->ReadLine(&line, &err)) << err;
  EXPECT_EQ(line, "z");
  server_->Shutdown();  // must return: polling workers notice the stop
  EXPECT_FALSE(c->ReadLine(&line, &err));
}

TEST_F(ServerTest, StaleSocketReplacedLiveSocketRefused) {
  StartServer();
  Server second(opt_, &handler_);
  std::string err;
  EXPECT_FALSE(second.Listen(path_, &err));
  EXPECT_NE(err.find("another process"), std::string::npos) << err;
  server_->Shutdown();
  // Leave a stale socket file behind, as a crashed daemon would: bound, then closed.
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  Server third(opt_, &handler_);
  ASSERT_TRUE(third.Listen(path_, &err)) << err;
}

}  // namespace
}  // namespace gatehouse::daemon
