// Prometheus scrape endpoint: a tiny Boost.Beast HTTP/1.1 server on a loopback address.
//
//   GET /metrics  -> 200, Content-Type: text/plain; version=0.0.4, body = render()
//   HEAD /metrics -> the same headers without a body
//   other paths   -> 404; other methods -> 405
//
// It listens on loopback only (127.0.0.0/8, ::1 or "localhost"); other addresses are refused at
// Start(), because the endpoint has no authentication. It runs one io_context on its own thread,
// so a slow scraper never touches the request path; connections time out after 10 s idle.
//
// Thread-safety: Start() and Stop() may be called from any thread, Stop() at most concurrently
// with nothing else on the same object. `render` runs on the server's thread, one call at a time;
// it must be safe to call concurrently with whatever else reads the counters it renders.
#ifndef GATEHOUSE_DAEMON_METRICS_HTTP_H_
#define GATEHOUSE_DAEMON_METRICS_HTTP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace gatehouse::daemon {

class MetricsServer {
 public:
  // `listen` is "host:port" or "[v6]:port": "127.0.0.1:9464", "localhost:9464", "[::1]:0".
  // Port 0 picks a free port (see port()). Returns nullptr and sets *err on a malformed or
  // non-loopback address, or when the port cannot be bound.
  static std::unique_ptr<MetricsServer> Start(const std::string& listen,
                                              std::function<std::string()> render,
                                              std::string* err);

  // Parses `listen` and checks that it is a loopback address; for config validation.
  // Returns true iff valid; sets *host and *port. Never throws.
  static bool ParseListen(const std::string& listen, std::string* host, uint16_t* port,
                          std::string* err);

  virtual ~MetricsServer() = default;  // implementations Stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The bound port (useful with port 0).
  virtual uint16_t port() const = 0;
  // Closes the listener and all connections and joins the thread. Idempotent.
  virtual void Stop() = 0;

 protected:
  MetricsServer() = default;
};

}  // namespace gatehouse::daemon

#endif  // GATEHOUSE_DAEMON_METRICS_HTTP_H_
