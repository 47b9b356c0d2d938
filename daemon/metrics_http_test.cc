#include "daemon/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "gtest/gtest.h"

namespace gatehouse::daemon {
namespace {

int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    ASSERT_GT(n, 0);
    off += static_cast<size_t>(n);
  }
}

std::string ReadToEof(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

// One request with Connection: close; returns the whole raw response.
std::string Request(uint16_t port, const std::string& method, const std::string& path) {
  int fd = Connect(port);
  EXPECT_GE(fd, 0);
  if (fd < 0) return "";
  SendAll(fd, method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  std::string r = ReadToEof(fd);
  ::close(fd);
  return r;
}

std::string Body(const std::string& response) {
  size_t p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

TEST(MetricsServerTest, ServesMetricsWithPrometheusContentType) {
  std::atomic<int> calls{0};
  std::string err;
  auto server = MetricsServer::Start(
      "127.0.0.1:0",
      [&] { return "gatehouse_checks_total " + std::to_string(++calls) + "\n"; }, &err);
  ASSERT_NE(server, nullptr) << err;
  ASSERT_NE(server->port(), 0);

  std::string r = Request(server->port(), "GET", "/metrics");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << r;
  EXPECT_EQ(Body(r), "gatehouse_checks_total 1\n");
  // render() runs per scrape.
  EXPECT_EQ(Body(Request(server->port(), "GET", "/metrics?x=1")), "gatehouse_checks_total 2\n");
  server->Stop();
}

TEST(MetricsServerTest, OtherPathsAre404AndOtherMethods405) {
  std::string err;
  auto server = MetricsServer::Start("localhost:0", [] { return std::string("m 1\n"); }, &err);
  ASSERT_NE(server, nullptr) << err;
  EXPECT_EQ(Request(server->port(), "GET", "/").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(Request(server->port(), "GET", "/metricsx").rfind("HTTP/1.1 404", 0), 0u);
  std::string post = Request(server->port(), "POST", "/metrics");
  EXPECT_EQ(post.rfind("HTTP/1.1 405", 0), 0u) << post;
  std::string head = Request(server->port(), "HEAD", "/metrics");
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Length: 4"), std::string::npos) << head;
  EXPECT_EQ(Body(head), "");
}

TEST(MetricsServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  std::string err;
  auto server = MetricsServer::Start("127.0.0.1:0", [] { return std::string("up 1\n"); }, &err);
  ASSERT_NE(server, nullptr) << err;
  int fd = Connect(server->port());
  ASSERT_GE(fd, 0);
  SendAll(fd,
          "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string r = ReadToEof(fd);
  ::close(fd);
  size_t first = r.find("HTTP/1.1 200");
  ASSERT_NE(first, std::string::npos) << r;
  EXPECT_NE(r.find("HTTP/1.1 200", first + 1), std::string::npos) << r;
}

TEST(MetricsServerTest, RenderExceptionIs500AndServerSurvives) {
  std::atomic<bool> fail{true};
  std::string err;
  auto server = MetricsServer::Start(
      "127.0.0.1:0",
      [&]() -> std::string {
        if (fail) throw std::runtime_error("boom");
        return "ok 1\n";
      },
      &err);
  ASSERT_NE(server, nullptr) << err;
  EXPECT_EQ(Request(server->port(), "GET", "/metrics").rfind("HTTP/1.1 500", 0), 0u);
  fail = false;
  EXPECT_EQ(Body(Request(server->port(), "GET", "/metrics")), "ok 1\n");
}

TEST(MetricsServerTest, GarbageRequestClosesConnectionWithoutCrash) {
  std::string err;
  auto server = MetricsServer::Start("127.0.0.1:0", [] { return std::string("a 1\n"); }, &err);
  ASSERT_NE(server, nullptr) << err;
  int fd = Connect(server->port());
  ASSERT_GE(fd, 0);
  SendAll(fd, "\x01\x02 not http at all\r\n\r\n");
  ReadToEof(fd);
  ::close(fd);
  EXPECT_EQ(Body(Request(server->port(), "GET", "/metrics")), "a 1\n");
}

TEST(MetricsServerTest, StopClosesListenerAndIsIdempotent) {
  std::string err;
  auto server = MetricsServer::Start("127.0.0.1:0", [] { return std::string(); }, &err);
  ASSERT_NE(server, nullptr) << err;
  uint16_t port = server->port();
  server->Stop();
  server->Stop();
  EXPECT_EQ(Connect(port), -1);
}

TEST(MetricsServerTest, RefusesNonLoopbackAndMalformedAddresses) {
  for (const char* bad : {"0.0.0.0:9464", "10.1.2.3:9464", "[::]:9464", "example.com:80",
                          "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:http",
                          "[::1", "[::1]9464", ""}) {
    std::string err;
    EXPECT_EQ(MetricsServer::Start(bad, [] { return std::string(); }, &err), nullptr) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
  std::string err;
  EXPECT_EQ(MetricsServer::Start("0.0.0.0:0", [] { return std::string(); }, &err), nullptr);
  EXPECT_NE(err.find("non-loopback"), std::string::npos) << err;
}

TEST(MetricsServerTest, ParseListenAcceptsLoopbackForms) {
  std::string host, err;
  uint16_t port = 0;
  ASSERT_TRUE(MetricsServer::ParseListen("127.0.0.1:9464", &host, &port, &err)) << err;
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 9464);
  ASSERT_TRUE(MetricsServer::ParseListen("127.8.9.10:1", &host, &port, &err)) << err;
  ASSERT_TRUE(MetricsServer::ParseListen("[::1]:9000", &host, &port, &err)) << err;
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 9000);
  ASSERT_TRUE(MetricsServer::ParseListen("localhost:80", &host, &port, &err)) << err;
  EXPECT_EQ(host, "127.0.0.1");
}

}  // namespace
}  // namespace gatehouse::daemon
