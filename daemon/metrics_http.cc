#include "daemon/metrics_http.h"

#include <chrono>
#include <optional>
#include <thread>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace gatehouse::daemon {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr auto kIdleTimeout = std::chrono::seconds(10);
constexpr uint32_t kHeaderLimit = 8 * 1024;
constexpr uint64_t kBodyLimit = 1024;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const std::function<std::string()>* render)
      : stream_(std::move(socket)), render_(render) {}

  void Read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->OnRead(ec);
                     });
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec) {
      Shutdown();
      return;
    }
    const auto& req = parser_->get();
    res_ = {};
    res_.version(req.version());
    res_.keep_alive(req.keep_alive());
    res_.set(http::field::server, "gatehouse");
    std::string_view target(req.target().data(), req.target().size());
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    if (target != "/metrics") {
      res_.result(http::status::not_found);
      res_.set(http::field::content_type, "text/plain; charset=utf-8");
      res_.body() = "not found; try /metrics\n";
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res_.result(http::status::method_not_allowed);
      res_.set(http::field::allow, "GET, HEAD");
      res_.set(http::field::content_type, "text/plain; charset=utf-8");
      res_.body() = "method not allowed\n";
    } else {
      std::string body;
      bool ok = true;
      try {
        body = (*render_)();
      } catch (...) {
        ok = false;
      }
      if (ok) {
        res_.result(http::status::ok);
        res_.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        res_.body() = std::move(body);
      } else {
        res_.result(http::status::internal_server_error);
        res_.set(http::field::content_type, "text/plain; charset=utf-8");
        res_.body() = "metrics rendering failed\n";
      }
    }
    res_.prepare_payload();  // sets Content-Length (also for HEAD)
    if (req.method() == http::verb::head) res_.body().clear();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnWrite(ec);
    });
  }

  void OnWrite(beast::error_code ec) {
    if (ec || !res_.keep_alive()) {
      Shutdown();
      return;
    }
    Read();
  }

  void Shutdown() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  const std::function<std::string()>* render_;
};

class MetricsServerImpl final : public MetricsServer {
 public:
  explicit MetricsServerImpl(std::function<std::string()> render)
      : render_(std::move(render)), acceptor_(ioc_) {}
  ~MetricsServerImpl() override { Stop(); }

  bool Listen(const tcp::endpoint& ep, std::string* err) {
    beast::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      *err = "metrics: cannot listen on " + ep.address().to_string() + ":" +
             std::to_string(ep.port()) + ": " + ec.message();
      return false;
    }
    port_ = acceptor_.local_endpoint(ec).port();
    Accept();
    thread_ = std::thread([this] { ioc_.run(); });
    return true;
  }

  uint16_t port() const override { return port_; }

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    asio::post(ioc_, [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
      ioc_.stop();
    });
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (!ec) std::make_shared<Session>(std::move(s), &render_)->Read();
      Accept();
    });
  }

  // Declaration order matters: sessions pending in ioc_ refer to render_, and acceptor_ must
  // go before ioc_.
  std::function<std::string()> render_;
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_;
  std::thread thread_;
  uint16_t port_ = 0;
  bool stopped_ = false;
};

}  // namespace

bool MetricsServer::ParseListen(const std::string& listen, std::string* host, uint16_t* port,
                                std::string* err) {
  std::string h, p;
  if (!listen.empty() && listen[0] == '[') {
    size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      *err = "metrics listen address '" + listen + "': expected [v6-address]:port";
      return false;
    }
    h = listen.substr(1, close - 1);
    p = listen.substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string::npos) {
      *err = "metrics listen address '" + listen + "': expected host:port";
      return false;
    }
    h = listen.substr(0, colon);
    p = listen.substr(colon + 1);
  }
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(p) > 65535) {
    *err = "metrics listen address '" + listen + "': bad port '" + p + "'";
    return false;
  }
  if (h == "localhost") h = "127.0.0.1";
  beast::error_code ec;
  asio::ip::address addr = asio::ip::make_address(h, ec);
  if (ec) {
    *err = "metrics listen address '" + listen + "': '" + h + "' is not an IP address";
    return false;
  }
  if (!addr.is_loopback()) {
    *err = "metrics listen address '" + listen +
           "': refusing a non-loopback address (the endpoint is unauthenticated; use "
           "127.0.0.1, ::1 or localhost)";
    return false;
  }
  *host = h;
  *port = static_cast<uint16_t>(std::stoul(p));
  return true;
}

std::unique_ptr<MetricsServer> MetricsServer::Start(const std::string& listen,
                                                    std::function<std::string()> render,
                                                    std::string* err) {
  std::string host;
  uint16_t port = 0;
  if (!ParseListen(listen, &host, &port, err)) return nullptr;
  if (!render) {
    *err = "metrics: no render function";
    return nullptr;
  }
  try {
    auto server = std::make_unique<MetricsServerImpl>(std::move(render));
    tcp::endpoint ep(asio::ip::make_address(host), port);
    if (!server->Listen(ep, err)) return nullptr;
    return server;
  } catch (const std::exception& e) {  // thread creation, allocation
    *err = std::string("metrics: ") + e.what();
    return nullptr;
  }
}

}  // namespace gatehouse::daemon
