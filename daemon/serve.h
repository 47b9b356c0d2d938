// `gatehouse serve`: the daemon's lifecycle.
//
//   Daemon::Start  load + compile the policy (refuse to start on problems), open the store,
//                  open the audit log, listen (or adopt systemd's fd 3), start the workers,
//                  start the metrics endpoint.
//   Daemon::Run    control loop on the calling thread: SIGHUP and policy-dir changes (inotify,
//                  debounced) reload the policy off the request path; SIGTERM/SIGINT or Stop()
//                  end it.
//   shutdown       stop accepting, answer in-flight requests (writes commit), close the store,
//                  remove the socket file.
//
// Thread-safety: Stop() and accessors may be called from any thread; Start/Run/destruction
// from one thread.
#ifndef GATEHOUSE_DAEMON_SERVE_H_
#define GATEHOUSE_DAEMON_SERVE_H_

#include <memory>
#include <string>

#include "daemon/config.h"

namespace gatehouse::store {
class Store;
}

namespace gatehouse::daemon {

class Service;

class Daemon {
 public:
  // Returns nullptr and sets *err if anything fails to come up. With handle_signals false,
  // the control loop ignores process signals (tests run several daemons in one process).
  static std::unique_ptr<Daemon> Start(const Config& config, std::string* err,
                                       bool handle_signals = true);
  ~Daemon();  // Stop()s and shuts down.
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Runs the control loop until Stop() or a termination signal, then shuts down.
  void Run();
  // Asks Run() to return (thread-safe, idempotent). If Run() is not running, the destructor
  // shuts down.
  void Stop();

  Service* service();
  store::Store* store();
  const Config& config() const;

 private:
  Daemon() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// LoadServeConfig + Daemon::Start + Run. Returns the process exit code.
int RunServe(const Config& config);

// Help text for `gatehouse serve` (same as ServeUsage in config.h).
}  // namespace gatehouse::daemon

#endif  // GATEHOUSE_DAEMON_SERVE_H_
