// The socket server: Asio over a Unix stream socket, N worker threads each running its own
// io_context (the Asio "server2" shape), newline framing, pipelining, in-order replies coalesced
// into one write per read, and per-connection limits. It knows nothing about the protocol's ops:
// each complete line goes to a Handler.
//
// Request flow on a connection (all on its worker thread):
//   read -> split lines -> Handler::OnLine(line, &out) for each line, in order
//        -> one write of everything appended to `out` during that read.
// A handler may defer a line (a write waiting for its commit, a min_rev wait): the connection
// then processes no further line until the handler calls Finish() (with the reply) or Retry()
// (OnLine runs again for the same line). Replies therefore stay in request order. The line's
// bytes stay valid until then.
//
// Limits: a line longer than max_line gets `too_large` and the connection is closed after the
// reply is written; at most max_connections connections (others get `unavailable` and are
// closed); connections idle for idle_timeout_s (no request in progress, not streaming) are
// closed; when a connection's pending output exceeds max_output_bytes, it stops processing and
// reading until the client has read enough (a client that never reads cannot grow memory).
//
// Thread-safety: Server's public methods may be called from any thread, except that Shutdown()
// must not race with itself or with destruction. Connection methods are marked.
#ifndef GATEHOUSE_DAEMON_SERVER_H_
#define GATEHOUSE_DAEMON_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/config.h"

namespace gatehouse::daemon {

struct Peer {
  uint32_t uid = 0;
  uint32_t gid = 0;
  int32_t pid = 0;
  Tier tier = Tier::kNone;
};

// Handler-owned per-connection state (reusable buffers, watch cursor, ...).
class ConnectionState {
 public:
  virtual ~ConnectionState() = default;
};

class Connection {
 public:
  virtual ~Connection() = default;

  // Any thread (immutable after accept).
  virtual const Peer& peer() const noexcept = 0;
  virtual int worker() const noexcept = 0;
  virtual uint64_t id() const noexcept = 0;

  // Worker thread only: the handler's state for this connection (from Handler::OnOpen).
  virtual ConnectionState* state() noexcept = 0;

  // Any thread. Completes the deferred request with `reply` (one or more complete lines) and
  // resumes the connection's next lines. No effect once the connection is closed.
  virtual void Finish(std::string reply) = 0;
  // Any thread. Runs Handler::OnLine again, on the worker, for the deferred request's line.
  virtual void Retry() = 0;
  // Worker thread only. Schedules fn on the worker after `delay` (fn runs even if the
  // connection closed meanwhile; check closed()).
  virtual void RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) = 0;

  // Worker thread only. Appends unsolicited output (watch events) and starts writing it.
  virtual void Push(std::string_view data) = 0;
  // Worker thread only. Bytes appended but not yet written to the socket.
  virtual size_t pending_output() const noexcept = 0;
  // Worker thread only. A streaming connection is exempt from the idle timeout.
  virtual void SetStreaming(bool streaming) noexcept = 0;
  virtual bool closed() const noexcept = 0;
};

class Handler {
 public:
  enum class Disposition : uint8_t { kDone, kDeferred };

  virtual ~Handler() = default;
  // Worker thread; once per accepted connection, before its first line.
  virtual std::unique_ptr<ConnectionState> OnOpen(Connection& conn) = 0;
  // Worker thread; for each complete line (without its '\n'). Either appends the complete
  // reply to *out and returns kDone, or returns kDeferred and later calls conn->Finish() or
  // conn->Retry(). Must not throw.
  virtual Disposition OnLine(const std::shared_ptr<Connection>& conn, std::string_view line,
                             std::string* out) noexcept = 0;
  // Worker thread; all pending output of conn has been written.
  virtual void OnDrained(const std::shared_ptr<Connection>& conn) noexcept { (void)conn; }
  // Worker thread; the connection closed (its state is destroyed right after).
  virtual void OnClose(Connection& conn) noexcept { (void)conn; }
  // Worker thread; a line over max_line arrived. Appends the too_large reply.
  virtual void OnTooLarge(Connection& conn, std::string* out) noexcept;
  // Worker thread; a connection was refused because of max_connections.
  virtual std::string RefusalLine() { return ""; }
};

struct ServerOptions {
  unsigned threads = 1;
  size_t max_line = size_t{1} << 20;
  size_t max_connections = 1024;
  unsigned idle_timeout_s = 300;
  size_t max_output_bytes = size_t{4} << 20;
  unsigned socket_mode = 0660;
  unsigned shutdown_grace_ms = 5000;
  // After handling work, a worker polls for this long before sleeping (0: sleep at once).
  // Trades CPU for latency: a request that arrives within the window skips a thread wake-up.
  unsigned busy_poll_us = 0;
  std::function<Tier(uint32_t uid, uint32_t gid)> tier_for;  // default: kNone for everyone
};

class Server {
 public:
  // `handler` must outlive the server.
  Server(const ServerOptions& options, Handler* handler);
  ~Server();  // Shutdown()s.
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens on `path` (file mode from options). A stale socket file nobody listens
  // on is replaced; a live one is an error. Returns false and sets *err on failure.
  bool Listen(const std::string& path, std::string* err);
  // Uses an already listening socket (systemd socket activation, fd 3). The socket file is not
  // removed on shutdown.
  bool Adopt(int fd, std::string* err);
  // Starts the worker threads and accepting.
  void Start();

  int workers() const noexcept;
  // Runs fn on worker w's thread.
  void Post(int worker, std::function<void()> fn);
  size_t connections() const noexcept;

  // Stops accepting; lets connections finish the lines they have received (deferred ones
  // included) and flush their replies, for up to shutdown_grace_ms; closes everything; joins
  // the workers; removes the socket file it created. Idempotent.
  void Shutdown();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gatehouse::daemon

#endif  // GATEHOUSE_DAEMON_SERVER_H_
