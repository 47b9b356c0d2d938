#include "tests/reliability/daemon_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "daemon/serve.h"

namespace gatehouse::reliability {

TempDir::TempDir() {
  char tmpl[] = "/tmp/ghrel-XXXXXX";
  const char* p = ::mkdtemp(tmpl);
  path_ = p ? p : "";
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

daemon::Config TestConfig(const std::string& dir) {
  daemon::Config c;
  c.socket_path = dir + "/s.sock";
  c.data_dir = dir + "/data";
  c.policy_dir = GATEHOUSE_SOURCE_DIR "/policies/respondio";
  c.threads = 2;
  c.watch_policy = false;
  c.shutdown_grace_ms = 2000;
  c.log_level = "info";
  return c;
}

ChildDaemon::~ChildDaemon() {
  if (pid_ > 0) Kill9();
}

bool ChildDaemon::Start(const daemon::Config& config, const std::string& stderr_path,
                        std::string* err, int timeout_ms) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    *err = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) {
    if (!stderr_path.empty()) {
      int fd = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (fd >= 0) {
        ::dup2(fd, 2);
        ::close(fd);
      }
    }
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_PID");
    // Die with the parent (a crashed test must not leave daemons behind).
    std::string e;
    auto d = daemon::Daemon::Start(config, &e, /*handle_signals=*/true);
    if (!d) {
      std::fprintf(stderr, "child daemon failed to start: %s\n", e.c_str());
      ::_exit(3);
    }
    d->Run();
    d.reset();
    ::_exit(0);
  }
  pid_ = pid;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!Alive()) {
      *err = "daemon child exited during startup (see its stderr)";
      return false;
    }
    std::string r = Call(config.socket_path, R"({"op":"health"})", 2000);
    if (r.find("\"ok\":true") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  *err = "daemon did not answer health in time";
  return false;
}

bool ChildDaemon::Alive() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

void ChildDaemon::Kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

int ChildDaemon::Stop(int timeout_ms) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill9();
  return -1;
}

int64_t ChildDaemon::RssKiB() const {
  if (pid_ <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

RawConn::RawConn(const std::string& socket_path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return;
  }
  fd_ = fd;
}

RawConn::~RawConn() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConn::Write(std::string_view data, int timeout_ms) {
  while (!data.empty()) {
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool RawConn::ReadLine(std::string* line, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      line->assign(buf_, 0, nl);
      buf_.erase(0, nl + 1);
      return true;
    }
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) return false;
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
  }
}

bool RawConn::WaitEof(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) < 0) return false;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char tmp[65536];
      ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
      if (n == 0) return true;
      if (n < 0 && errno != EINTR && errno != EAGAIN) return true;  // reset counts as closed
    }
  }
  return false;
}

void RawConn::ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

std::string Call(const std::string& socket_path, std::string_view line, int timeout_ms) {
  RawConn c(socket_path);
  if (!c.ok()) return "";
  std::string req(line);
  if (req.empty() || req.back() != '\n') req += '\n';
  if (!c.Write(req, timeout_ms)) return "";
  std::string reply;
  if (!c.ReadLine(&reply, timeout_ms)) return "";
  return reply;
}

}  // namespace gatehouse::reliability
