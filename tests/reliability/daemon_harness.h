// Test harness: runs a Gatehouse daemon (daemon/serve.h Daemon, the same code as `gatehouse
// serve`) in a forked child process, so a test can kill -9 it, read its VmRSS, capture its
// stderr (logs) and see it crash without taking the test down. Plus small socket helpers.
//
// REQUIRES: the calling process has no other threads alive when Start() forks (join client
// threads first).
// Thread-safety: a ChildDaemon is used by one thread; RawConn by one thread.
#ifndef GATEHOUSE_TESTS_RELIABILITY_DAEMON_HARNESS_H_
#define GATEHOUSE_TESTS_RELIABILITY_DAEMON_HARNESS_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "daemon/config.h"

namespace gatehouse::reliability {

// A fresh temp directory (mkdtemp under /tmp: socket paths must stay short). Removed by the
// destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Config for a test daemon in `dir`: socket dir/s.sock, data dir/data, the shipped policy,
// 2 threads, no inotify, no metrics.
daemon::Config TestConfig(const std::string& dir);

class ChildDaemon {
 public:
  ChildDaemon() = default;
  ~ChildDaemon();  // kills the child (SIGKILL) if still running
  ChildDaemon(const ChildDaemon&) = delete;
  ChildDaemon& operator=(const ChildDaemon&) = delete;

  // Forks; the child redirects stderr to stderr_path (if not empty), starts the daemon with
  // `config` and serves until SIGTERM. The parent waits until the socket answers `health`
  // (up to timeout_ms). Returns false (with *err) if the child died or never answered.
  bool Start(const daemon::Config& config, const std::string& stderr_path, std::string* err,
             int timeout_ms = 30000);
  pid_t pid() const { return pid_; }
  // True iff the child process is still alive (reaps it if it exited).
  bool Alive();
  // SIGKILL + reap.
  void Kill9();
  // SIGTERM + wait (up to timeout_ms, then SIGKILL). Returns the exit status from waitpid.
  int Stop(int timeout_ms = 10000);
  // VmRSS of the child in KiB (0 if unknown).
  int64_t RssKiB() const;

 private:
  pid_t pid_ = -1;
};

// A raw connection to the socket (no framing help), for abuse tests.
class RawConn {
 public:
  explicit RawConn(const std::string& socket_path);
  ~RawConn();
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Writes all of data (blocking, up to timeout_ms). Returns false on error/timeout.
  bool Write(std::string_view data, int timeout_ms = 10000);
  // Reads one line (without '\n'). Returns false on EOF, error or timeout.
  bool ReadLine(std::string* line, int timeout_ms = 10000);
  // True iff the peer closed the connection (EOF) within timeout_ms (after draining input).
  bool WaitEof(int timeout_ms = 10000);
  void ShutdownWrite();

 private:
  int fd_ = -1;
  std::string buf_;
};

// One request/reply on a fresh connection; returns the reply line or "" on failure.
std::string Call(const std::string& socket_path, std::string_view line, int timeout_ms = 10000);

}  // namespace gatehouse::reliability

#endif  // GATEHOUSE_TESTS_RELIABILITY_DAEMON_HARNESS_H_
