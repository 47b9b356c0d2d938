#include "daemon/cli/line_client.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>

namespace gatehouse::daemon::cli {

std::unique_ptr<LineClient> LineClient::Connect(const std::string& path, std::string* err) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    *err = "socket path '" + path + "' is empty or too long";
    return nullptr;
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = std::string("socket: ") + strerror(errno);
    return nullptr;
  }
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.data(), path.size());
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    *err = "cannot connect to " + path + ": " + strerror(errno) +
           " (is the daemon running? set --socket or GATEHOUSE_SOCKET)";
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<LineClient>(new LineClient(fd));
}

LineClient::~LineClient() { ::close(fd_); }

bool LineClient::Send(const std::string& line, std::string* err) {
  std::string data = line + "\n";
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      *err = std::string("send: ") + strerror(errno);
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

bool LineClient::ReadLine(std::string* line, int timeout_ms, std::string* err) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  for (;;) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      line->assign(buf_, 0, nl);
      buf_.erase(0, nl + 1);
      return true;
    }
    int wait = -1;
    if (timeout_ms >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        *err = "timed out waiting for the daemon's reply";
        return false;
      }
      wait = static_cast<int>(left.count());
    }
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, wait);
    if (rc < 0) {
      if (errno == EINTR) continue;
      *err = std::string("poll: ") + strerror(errno);
      return false;
    }
    if (rc == 0) continue;  // re-check the deadline
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      *err = std::string("recv: ") + strerror(errno);
      return false;
    }
    if (n == 0) {
      *err = "connection closed by the daemon";
      return false;
    }
    buf_.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace gatehouse::daemon::cli
