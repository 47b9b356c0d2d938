// A Connection without a socket, for tests and benchmarks that call Service::OnLine directly:
// worker 0, id 1, a caller tier of your choice (peer_), and a ConnectionState from OnOpen
// (state_). Deferred work (Retry, RunAfter, Push, Finish) is dropped.
//
// Thread-safety: used by one thread at a time, like a real connection on its worker.
#ifndef GATEHOUSE_DAEMON_TEST_CONNECTION_H_
#define GATEHOUSE_DAEMON_TEST_CONNECTION_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/server.h"

namespace gatehouse::daemon {

class LocalConnection : public Connection {
 public:
  const Peer& peer() const noexcept override { return peer_; }
  int worker() const noexcept override { return 0; }
  uint64_t id() const noexcept override { return 1; }
  ConnectionState* state() noexcept override { return state_.get(); }
  void Finish(std::string) override {}
  void Retry() override {}
  void RunAfter(std::chrono::milliseconds, std::function<void()>) override {}
  void Push(std::string_view) override {}
  size_t pending_output() const noexcept override { return 0; }
  void SetStreaming(bool) noexcept override {}
  bool closed() const noexcept override { return false; }

  Peer peer_;
  std::unique_ptr<ConnectionState> state_;
};

}  // namespace gatehouse::daemon

#endif  // GATEHOUSE_DAEMON_TEST_CONNECTION_H_
