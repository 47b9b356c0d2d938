#include "daemon/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <future>
#include <list>
#include <thread>
#include <vector>

#include <boost/asio.hpp>

#include "daemon/log.h"
#include "daemon/protocol.h"

namespace gatehouse::daemon {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;
using Clock = std::chrono::steady_clock;

void Handler::OnTooLarge(Connection& conn, std::string* out) noexcept {
  (void)conn;
  AppendError(out, "null", ErrorCode::kTooLarge, "request line exceeds the maximum size");
}

namespace {

class ConnImpl;

struct Worker {
  int index = 0;
  asio::io_context ioc{1};
  std::unique_ptr<asio::steady_timer> sweep;
  std::list<std::shared_ptr<ConnImpl>> conns;  // open connections (owning); worker thread only
  std::thread thread;
};

struct Shared {
  ServerOptions opt;
  Handler* handler = nullptr;
  std::atomic<size_t> connections{0};
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> draining{false};
};

class ConnImpl : public Connection, public std::enable_shared_from_this<ConnImpl> {
 public:
  ConnImpl(Shared* shared, Worker* worker, stream::socket socket)
      : shared_(shared), worker_(worker), socket_(std::move(socket)) {
    id_ = shared_->next_id.fetch_add(1);
    in_.resize(16384);
    out_.reserve(16384);
    wbuf_.reserve(16384);
  }

  ~ConnImpl() override = default;

  void Start(std::list<std::shared_ptr<ConnImpl>>::iterator self_it) {
    self_it_ = self_it;
    self_ = shared_from_this();
    struct ucred cred {};
    socklen_t len = sizeof(cred);
    if (::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      peer_.uid = cred.uid;
      peer_.gid = cred.gid;
      peer_.pid = cred.pid;
    } else {
      peer_.uid = peer_.gid = 0xFFFFFFFFu;  // unknown peer: no tier
    }
    peer_.tier = shared_->opt.tier_for ? shared_->opt.tier_for(peer_.uid, peer_.gid) : Tier::kNone;
    if (peer_.uid == 0xFFFFFFFFu) peer_.tier = Tier::kNone;
    last_activity_ = Clock::now();
    state_ = shared_->handler->OnOpen(*this);
    DoRead();
  }

  // Connection interface.
  const Peer& peer() const noexcept override { return peer_; }
  int worker() const noexcept override { return worker_->index; }
  uint64_t id() const noexcept override { return id_; }
  ConnectionState* state() noexcept override { return state_.get(); }

  void Finish(std::string reply) override {
    asio::post(worker_->ioc, [self = shared_from_this(), reply = std::move(reply)]() mutable {
      if (self->closed_ || !self->deferred_) return;
      self->out_.append(reply);
      self->deferred_ = false;
      self->Pump();
    });
  }

  void Retry() override {
    asio::post(worker_->ioc, [self = shared_from_this()] {
      if (self->closed_ || !self->deferred_) return;
      self->deferred_ = false;
      self->Dispatch(self->deferred_line_);
      self->Pump();
    });
  }

  void RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) override {
    auto t = std::make_shared<asio::steady_timer>(worker_->ioc, delay);
    t->async_wait([t, fn = std::move(fn)](const boost::system::error_code&) { fn(); });
  }

  void Push(std::string_view data) override {
    if (closed_) return;
    out_.append(data);
    Flush();
  }

  size_t pending_output() const noexcept override {
    return out_.size() + (writing_ ? wbuf_.size() : 0);
  }
  void SetStreaming(bool s) noexcept override { streaming_ = s; }
  bool closed() const noexcept override { return closed_; }

  // Worker-side control.
  void Drain() {
    // Stop the client from sending more (its writes now fail) but keep reading what is already
    // queued in the socket: those requests were sent before shutdown and get answered. Reads
    // then return end-of-stream and the connection closes once its replies are flushed.
    boost::system::error_code ec;
    socket_.shutdown(stream::socket::shutdown_receive, ec);
    if (ec) eof_ = true;
    Pump();
  }

  void Sweep(Clock::time_point now) {
    if (closed_) return;
    unsigned idle = shared_->opt.idle_timeout_s;
    if (idle == 0 || streaming_ || deferred_ || writing_) return;
    if (now - last_activity_ > std::chrono::seconds(idle)) {
      Log(LogLevel::kDebug, "idle connection closed", {{"conn", id_}});
      Close();
    }
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    socket_.close(ec);
    shared_->handler->OnClose(*this);
    state_.reset();
    auto keep = shared_from_this();  // the list entry may be the last owner
    self_.reset();
    worker_->conns.erase(self_it_);
    shared_->connections.fetch_sub(1);
  }

 private:
  bool OutputFull() const { return pending_output() > shared_->opt.max_output_bytes; }

  void DoRead() {
    if (reading_ || closed_ || eof_ || deferred_ || close_after_flush_ || OutputFull()) return;
    // Compact: move unprocessed bytes to the front.
    if (in_start_ > 0) {
      std::memmove(in_.data(), in_.data() + in_start_, in_len_ - in_start_);
      in_len_ -= in_start_;
      in_start_ = 0;
      scan_from_ = 0;
    }
    if (in_.size() - in_len_ < 4096) {
      size_t cap = std::min(in_.size() * 2, shared_->opt.max_line + 65536);
      if (cap <= in_.size()) cap = in_.size() + 4096;
      in_.resize(cap);
    }
    reading_ = true;
    socket_.async_read_some(
        asio::buffer(in_.data() + in_len_, in_.size() - in_len_),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
          self->reading_ = false;
          if (self->closed_) return;
          if (ec) {
            if (ec != asio::error::eof && ec != asio::error::connection_reset &&
                ec != asio::error::operation_aborted) {
              Log(LogLevel::kDebug, "read error", {{"conn", self->id_}, {"error", ec.message()}});
            }
            self->eof_ = true;
          } else {
            self->in_len_ += n;
            self->last_activity_ = Clock::now();
          }
          self->Pump();
        });
  }

  // Handles one line; sets deferred_ if the handler deferred it.
  void Dispatch(std::string_view line) {
    // self_ (not a fresh shared_from_this) keeps the per-line cost free of atomic refcounts.
    Handler::Disposition d = shared_->handler->OnLine(self_, line, &out_);
    if (d == Handler::Disposition::kDeferred) {
      deferred_ = true;
      deferred_line_ = line;
    }
  }

  // Processes complete lines, writes what they produced, reads more when possible.
  void Pump() {
    if (closed_) return;
    while (!deferred_ && !close_after_flush_ && !OutputFull()) {
      const char* base = in_.data();
      size_t avail = in_len_ - in_start_;
      const void* nlp = avail > scan_from_
                            ? std::memchr(base + in_start_ + scan_from_, '\n', avail - scan_from_)
                            : nullptr;
      if (!nlp) {
        scan_from_ = avail;
        if (avail > shared_->opt.max_line) {
          shared_->handler->OnTooLarge(*this, &out_);
          close_after_flush_ = true;
        } else if (eof_ && avail > 0) {
          // A last line without '\n' at end of stream: answer it too.
          std::string_view line(base + in_start_, avail);
          in_start_ = in_len_;
          scan_from_ = 0;
          if (line.find_first_not_of(" \t\r") != std::string_view::npos) Dispatch(line);
          continue;
        }
        break;
      }
      size_t nl = static_cast<size_t>(static_cast<const char*>(nlp) - base);
      std::string_view line(base + in_start_, nl - in_start_);
      in_start_ = nl + 1;
      scan_from_ = 0;
      if (line.size() > shared_->opt.max_line) {
        shared_->handler->OnTooLarge(*this, &out_);
        close_after_flush_ = true;
        break;
      }
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
      Dispatch(line);
    }
    Flush();
    DoRead();
    MaybeClose();
  }

  void Flush() {
    if (writing_ || out_.empty() || closed_) return;
    std::swap(out_, wbuf_);
    out_.clear();
    writing_ = true;
    asio::async_write(socket_, asio::buffer(wbuf_),
                      [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                        self->writing_ = false;
                        if (self->closed_) return;
                        if (ec) {
                          self->Close();
                          return;
                        }
                        self->wbuf_.clear();
                        self->last_activity_ = Clock::now();
                        if (!self->out_.empty()) {
                          self->Flush();
                        } else {
                          self->shared_->handler->OnDrained(self->self_);
                        }
                        self->Pump();
                      });
  }

  void MaybeClose() {
    if (closed_ || writing_ || !out_.empty() || deferred_) return;
    if (close_after_flush_) {
      Close();
      return;
    }
    if (eof_) {
      // Anything still buffered that forms a line has been handled by Pump.
      Close();
    }
  }

  Shared* shared_;
  Worker* worker_;
  // This connection as the handler sees it; set in Start, reset in Close (a deliberate cycle
  // that Close breaks; the worker's list owns the connection too).
  std::shared_ptr<Connection> self_;
  stream::socket socket_;
  std::list<std::shared_ptr<ConnImpl>>::iterator self_it_;
  uint64_t id_ = 0;
  Peer peer_;
  std::unique_ptr<ConnectionState> state_;

  std::vector<char> in_;
  size_t in_len_ = 0;    // bytes in in_
  size_t in_start_ = 0;  // first unprocessed byte
  size_t scan_from_ = 0; // bytes after in_start_ already known to hold no '\n'
  std::string out_;      // replies being collected
  std::string wbuf_;     // replies being written
  std::string_view deferred_line_;

  bool reading_ = false;
  bool writing_ = false;
  bool deferred_ = false;
  bool eof_ = false;
  bool close_after_flush_ = false;
  bool streaming_ = false;
  bool closed_ = false;
  Clock::time_point last_activity_;
};

}  // namespace

class Server::Impl {
 public:
  Impl(const ServerOptions& o, Handler* h) {
    shared_.opt = o;
    shared_.handler = h;
    unsigned n = o.threads ? o.threads : 1;
    for (unsigned i = 0; i < n; ++i) {
      auto w = std::make_unique<Worker>();
      w->index = static_cast<int>(i);
      workers_.push_back(std::move(w));
    }
    acceptor_ = std::make_unique<stream::acceptor>(workers_[0]->ioc);
  }

  bool Listen(const std::string& path, std::string* err) {
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        *err = path + " exists and is not a socket";
        return false;
      }
      // Is someone listening?
      int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      if (path.size() >= sizeof(addr.sun_path)) {
        ::close(fd);
        *err = "socket path too long: " + path;
        return false;
      }
      std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
      bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
      ::close(fd);
      if (live) {
        *err = "another process is listening on " + path;
        return false;
      }
      ::unlink(path.c_str());
    }
    try {
      stream::endpoint ep(path);
      acceptor_->open(ep.protocol());
      acceptor_->bind(ep);
      if (::chmod(path.c_str(), static_cast<mode_t>(shared_.opt.socket_mode)) != 0) {
        *err = "chmod " + path + ": " + std::strerror(errno);
        return false;
      }
      acceptor_->listen(asio::socket_base::max_listen_connections);
    } catch (const boost::system::system_error& e) {
      *err = "listen on " + path + ": " + e.what();
      return false;
    }
    socket_path_ = path;
    return true;
  }

  bool Adopt(int fd, std::string* err) {
    try {
      acceptor_->assign(stream(), fd);
    } catch (const boost::system::system_error& e) {
      *err = std::string("adopt listening fd: ") + e.what();
      return false;
    }
    return true;
  }

  void Start() {
    for (auto& w : workers_) {
      w->sweep = std::make_unique<asio::steady_timer>(w->ioc);
      ArmSweep(w.get());
      Worker* wp = w.get();
      w->thread = std::thread([this, wp] { RunWorker(wp); });
    }
    asio::post(workers_[0]->ioc, [this] { Accept(); });
  }

  // Worker thread body. With busy_poll_us > 0, after each burst of work the worker keeps polling
  // (non-blocking epoll_wait) for that long before it blocks: a request arriving within the
  // window is picked up without a thread wake-up, at the price of CPU spent polling.
  void RunWorker(Worker* w) {
    const auto window = std::chrono::microseconds(shared_.opt.busy_poll_us);
    for (;;) {
      try {
        if (window.count() == 0) {
          w->ioc.run();
          break;
        }
        auto last_work = Clock::now();
        while (!w->ioc.stopped()) {
          if (w->ioc.poll() > 0) {
            last_work = Clock::now();
          } else if (Clock::now() - last_work >= window) {
            if (w->ioc.run_one() == 0) break;  // stopped (shutdown)
            last_work = Clock::now();
          }
        }
        break;
      } catch (const std::exception& e) {
        Log(LogLevel::kError, "worker exception", {{"error", e.what()}});
      }
    }
  }

  void ArmSweep(Worker* w) {
    w->sweep->expires_after(std::chrono::seconds(1));
    w->sweep->async_wait([this, w](const boost::system::error_code& ec) {
      if (ec || stopped_) return;
      auto now = Clock::now();
      for (auto it = w->conns.begin(); it != w->conns.end();) {
        auto c = *it;
        ++it;  // Sweep may erase the current element
        if (c) c->Sweep(now);
      }
      ArmSweep(w);
    });
  }

  // Worker 0. Hands an accepted socket (bound to target's io_context) to its worker, or refuses
  // it when max_connections is reached. While draining, the connection is served in drain mode
  // (its queued requests are answered, then it closes).
  void HandOff(Worker* target, stream::socket socket) {
    if (shared_.connections.load() >= shared_.opt.max_connections) {
      std::string line = shared_.handler->RefusalLine();
      boost::system::error_code wec;
      if (!line.empty()) asio::write(socket, asio::buffer(line), wec);
      socket.close(wec);
      return;
    }
    shared_.connections.fetch_add(1);
    auto holder = std::make_shared<stream::socket>(std::move(socket));
    asio::post(target->ioc, [this, target, holder] {
      auto c = std::make_shared<ConnImpl>(&shared_, target, std::move(*holder));
      target->conns.push_front(c);
      c->Start(target->conns.begin());
      if (shared_.draining) c->Drain();
    });
  }

  Worker* NextWorker() { return workers_[next_worker_++ % workers_.size()].get(); }

  // Worker 0, at shutdown: accepts every connection already waiting in the listen backlog
  // (clients that connected before shutdown began) so their requests are answered instead of
  // refused, then closes the acceptor. Connections arriving after this point are refused.
  void DrainBacklogAndClose() {
    boost::system::error_code ec;
    acceptor_->non_blocking(true, ec);
    for (int i = 0; !ec && i < 65536; ++i) {
      Worker* target = NextWorker();
      stream::socket socket(target->ioc);
      acceptor_->accept(socket, ec);
      if (ec) break;  // would_block: the backlog is empty
      HandOff(target, std::move(socket));
    }
    acceptor_->close(ec);
  }

  void Accept() {
    if (shared_.draining) return;
    Worker* target = NextWorker();
    acceptor_->async_accept(target->ioc, [this, target](const boost::system::error_code& ec,
                                                        stream::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        HandOff(target, std::move(socket));  // also while draining: it was already connected
        if (shared_.draining) return;
      } else {
        if (shared_.draining) return;
        Log(LogLevel::kWarn, "accept failed", {{"error", ec.message()}});
        if (ec == asio::error::no_descriptors) {
          // Back off briefly rather than spinning on EMFILE.
          auto t = std::make_shared<asio::steady_timer>(workers_[0]->ioc,
                                                        std::chrono::milliseconds(50));
          t->async_wait([this, t](const boost::system::error_code&) { Accept(); });
          return;
        }
      }
      Accept();
    });
  }

  void Shutdown() {
    if (shut_) return;
    shut_ = true;
    if (workers_[0]->thread.joinable()) {
      shared_.draining = true;
      // Close the acceptor on its own thread.
      std::promise<void> closed;
      asio::post(workers_[0]->ioc, [this, &closed] {
        DrainBacklogAndClose();
        closed.set_value();
      });
      closed.get_future().wait();
      for (auto& w : workers_) {
        Worker* wp = w.get();
        asio::post(wp->ioc, [wp] {
          for (auto it = wp->conns.begin(); it != wp->conns.end();) {
            auto c = *it;
            ++it;
            if (c) c->Drain();
          }
        });
      }
      auto deadline = Clock::now() + std::chrono::milliseconds(shared_.opt.shutdown_grace_ms);
      while (shared_.connections.load() > 0 && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (shared_.connections.load() > 0) {
        Log(LogLevel::kWarn, "closing connections still busy at the end of the grace period",
            {{"connections", shared_.connections.load()}});
      }
      stopped_ = true;
      for (auto& w : workers_) {
        Worker* wp = w.get();
        asio::post(wp->ioc, [wp] {
          for (auto it = wp->conns.begin(); it != wp->conns.end();) {
            auto c = *it;
            ++it;
            if (c) c->Close();
          }
          if (wp->sweep) wp->sweep->cancel();
          wp->ioc.stop();
        });
      }
      for (auto& w : workers_) {
        if (w->thread.joinable()) w->thread.join();
      }
    } else {
      boost::system::error_code ec;
      acceptor_->close(ec);
    }
    if (!socket_path_.empty()) ::unlink(socket_path_.c_str());
  }

  Shared shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<stream::acceptor> acceptor_;
  std::string socket_path_;
  size_t next_worker_ = 0;
  bool shut_ = false;
  std::atomic<bool> stopped_{false};
};

Server::Server(const ServerOptions& options, Handler* handler)
    : impl_(std::make_unique<Impl>(options, handler)) {}

Server::~Server() { Shutdown(); }

bool Server::Listen(const std::string& path, std::string* err) { return impl_->Listen(path, err); }
bool Server::Adopt(int fd, std::string* err) { return impl_->Adopt(fd, err); }
void Server::Start() { impl_->Start(); }
int Server::workers() const noexcept { return static_cast<int>(impl_->workers_.size()); }
void Server::Post(int worker, std::function<void()> fn) {
  asio::post(impl_->workers_[static_cast<size_t>(worker)]->ioc, std::move(fn));
}
size_t Server::connections() const noexcept { return impl_->shared_.connections.load(); }
void Server::Shutdown() { impl_->Shutdown(); }

}  // namespace gatehouse::daemon
