// Proves the socket server's steady-state request path allocates nothing: with a handler that
// answers without allocating, N requests over one connection (one at a time, then pipelined)
// cost zero calls to the global operator new on any thread (read, line split, dispatch,
// coalesced write, Asio's operations and handlers). A separate binary because it replaces the
// global operator new.
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include <gtest/gtest.h>

#include "daemon/server.h"

#include "daemon/counting_new_test.h"  // counts global operator new (g_counting, g_allocs)

namespace gatehouse::daemon {
namespace {

// Echoes each line into the (reserved) output buffer: no allocation of its own.
class EchoHandler : public Handler {
 public:
  std::unique_ptr<ConnectionState> OnOpen(Connection&) override { return nullptr; }
  Disposition OnLine(const std::shared_ptr<Connection>&, std::string_view line,
                     std::string* out) noexcept override {
    out->append(line);
    out->push_back('\n');
    return Disposition::kDone;
  }
};

// Raw blocking socket client with fixed buffers (the client side must not allocate either).
int ConnectRaw(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Reads until `lines` newlines arrived; returns false on EOF/error.
bool ReadLines(int fd, int lines) {
  char buf[8192];
  while (lines > 0) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r <= 0) return false;
    for (ssize_t i = 0; i < r; ++i) lines -= buf[i] == '\n';
  }
  return true;
}

TEST(ServerAlloc, SteadyStateRequestsDoNotAllocate) {
#ifdef GATEHOUSE_SANITIZER
  GTEST_SKIP() << "allocation counting needs the plain allocator";
#endif
  char tmpl[] = "/tmp/gh_salloc_XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string path = dir + "/s.sock";
  EchoHandler handler;
  ServerOptions opt;
  opt.threads = 1;
  opt.idle_timeout_s = 0;
  {
    Server server(opt, &handler);
    std::string err;
    ASSERT_TRUE(server.Listen(path, &err)) << err;
    server.Start();
    int fd = ConnectRaw(path);
    ASSERT_GE(fd, 0);
    static const char kReq[] = "{\"id\":1,\"op\":\"check\",\"user\":\"u1\",\"action\":\"x\"}\n";
    const size_t kLen = sizeof(kReq) - 1;
    char pipelined[16 * sizeof(kReq)];
    for (int i = 0; i < 16; ++i) std::memcpy(pipelined + i * kLen, kReq, kLen);
    // Warm up: buffers reach their steady size, Asio's per-thread handler caches fill.
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(WriteAll(fd, kReq, kLen));
      ASSERT_TRUE(ReadLines(fd, 1));
      ASSERT_TRUE(WriteAll(fd, pipelined, 16 * kLen));
      ASSERT_TRUE(ReadLines(fd, 16));
    }
    g_allocs = 0;
    g_counting = true;
    bool ok = true;
    for (int i = 0; i < 200 && ok; ++i) {
      ok = WriteAll(fd, kReq, kLen) && ReadLines(fd, 1);
    }
    for (int i = 0; i < 100 && ok; ++i) {
      ok = WriteAll(fd, pipelined, 16 * kLen) && ReadLines(fd, 16);
    }
    g_counting = false;
    EXPECT_TRUE(ok);
    EXPECT_EQ(g_allocs.load(), 0u) << "allocations on the socket request path";
    ::close(fd);
  }
  std::string cmd = "rm -rf " + dir;
  (void)system(cmd.c_str());
}

}  // namespace
}  // namespace gatehouse::daemon
