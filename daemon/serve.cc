#include "daemon/serve.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <boost/asio.hpp>

#include "daemon/audit_log.h"
#include "daemon/log.h"
#include "daemon/metrics_http.h"
#include "daemon/server.h"
#include "daemon/service.h"
#include "policy/policy.h"
#include "store/store.h"

namespace gatehouse::daemon {

namespace asio = boost::asio;

struct Daemon::Impl {
  Config config;
  bool handle_signals = true;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<AuditLog> audit;
  std::unique_ptr<Service> service;
  std::unique_ptr<Server> server;
  std::unique_ptr<MetricsServer> metrics;

  asio::io_context control{1};
  std::unique_ptr<asio::signal_set> signals;
  std::unique_ptr<asio::posix::stream_descriptor> inotify;
  std::unique_ptr<asio::steady_timer> debounce;
  char inotify_buf[4096];
  bool shut_down = false;

  void WatchInotify() {
    inotify->async_read_some(asio::buffer(inotify_buf), [this](const boost::system::error_code& ec,
                                                               size_t) {
      if (ec) return;
      // Debounce: editors write several events per save; reload 200 ms after the last one.
      debounce->expires_after(std::chrono::milliseconds(200));
      debounce->async_wait([this](const boost::system::error_code& e) {
        if (e) return;
        Log(LogLevel::kInfo, "policy directory changed; reloading", {{"dir", config.policy_dir}});
        service->ReloadPolicy(nullptr);
      });
      WatchInotify();
    });
  }

  void WaitSignals() {
    signals->async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        Log(LogLevel::kInfo, "SIGHUP: reloading policy", {{"dir", config.policy_dir}});
        service->ReloadPolicy(nullptr);
        if (audit) audit->RequestReopen();
        WaitSignals();
        return;
      }
      Log(LogLevel::kInfo, "shutting down", {{"signal", sig}});
      control.stop();
    });
  }

  void Shutdown() {
    if (shut_down) return;
    shut_down = true;
    if (metrics) metrics->Stop();
    if (service) service->Detach();
    if (server) server->Shutdown();  // in-flight requests answered, deferred writes included
    if (store) store->Close();       // queued writes commit
    if (audit) audit->Close();
    Log(LogLevel::kInfo, "stopped", nullptr);
  }
};

namespace {
bool MakeDirs(const std::string& path, std::string* err) {
  std::string cur;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (!cur.empty() && ::mkdir(cur.c_str(), 0750) != 0 && errno != EEXIST) {
        *err = "mkdir " + cur + ": " + std::strerror(errno);
        return false;
      }
    }
    if (i < path.size()) cur.push_back(path[i]);
  }
  return true;
}

// systemd socket activation: LISTEN_PID must be us, LISTEN_FDS >= 1; the socket is fd 3.
int SystemdListenFd() {
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  if (!pid || !fds) return -1;
  char* end = nullptr;
  long p = std::strtol(pid, &end, 10);
  if (*end != '\0' || p != static_cast<long>(::getpid())) return -1;
  long n = std::strtol(fds, &end, 10);
  if (*end != '\0' || n < 1) return -1;
  return 3;
}
}  // namespace

std::unique_ptr<Daemon> Daemon::Start(const Config& config, std::string* err,
                                      bool handle_signals) {
  // Startup phases, reported in the "serving" log line (where start-up wall time goes).
  using SteadyClock = std::chrono::steady_clock;
  const auto t_start = SteadyClock::now();
  auto ms_since = [](SteadyClock::time_point t) {
    return std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count();
  };
  std::unique_ptr<Daemon> d(new Daemon());
  d->impl_ = std::make_unique<Impl>();
  Impl& m = *d->impl_;
  m.config = config;
  m.handle_signals = handle_signals;
  SetLogLevel(ParseLogLevel(config.log_level));
  // Catch termination signals before anything is served: a SIGTERM that arrives while starting
  // is handled (queued until Run) instead of killing the process mid-way.
  if (handle_signals) {
    m.signals = std::make_unique<asio::signal_set>(m.control, SIGHUP, SIGTERM, SIGINT);
  }

  // Policy first: a daemon with an invalid policy must not start.
  std::vector<policy::Issue> issues;
  auto t_phase = SteadyClock::now();
  auto pol = policy::LoadPolicyDir(config.policy_dir, &issues);
  const double policy_ms = ms_since(t_phase);
  if (!pol) {
    *err = "policy " + config.policy_dir + " is invalid:";
    for (const auto& i : issues) *err += "\n  " + i.ToString();
    if (issues.empty()) *err += " (no policy files?)";
    return nullptr;
  }

  t_phase = SteadyClock::now();
  if (!MakeDirs(config.data_dir, err)) return nullptr;
  store::Options so;
  so.path = config.data_dir;
  so.durable = config.durable;
  so.map_size = config.map_size;
  so.default_workspace_name = config.default_workspace_name;
  store::Status s = store::Store::Open(so, &m.store);
  if (!s.ok()) {
    *err = "store " + config.data_dir + ": " + s.ToString();
    return nullptr;
  }

  const double store_ms = ms_since(t_phase);

  t_phase = SteadyClock::now();
  if (!config.audit_log.empty()) {
    m.audit = AuditLog::Open(config.audit_log, 65536, err);
    if (!m.audit) return nullptr;
  }

  m.service = std::make_unique<Service>(config, m.store.get(), m.audit.get());
  m.service->SetPolicy(pol);

  ServerOptions opt;
  opt.threads = config.threads ? config.threads : std::max(1u, std::thread::hardware_concurrency());
  opt.max_line = config.max_line;
  opt.max_connections = config.max_connections;
  opt.idle_timeout_s = config.idle_timeout_s;
  opt.max_output_bytes = config.max_output_bytes;
  opt.socket_mode = config.socket_mode;
  opt.shutdown_grace_ms = config.shutdown_grace_ms;
  opt.busy_poll_us = config.busy_poll_us;
  Config tiers = config;
  opt.tier_for = [tiers](uint32_t uid, uint32_t gid) { return tiers.TierFor(uid, gid); };
  m.server = std::make_unique<Server>(opt, m.service.get());
  int fd = SystemdListenFd();
  if (fd >= 0) {
    if (!m.server->Adopt(fd, err)) return nullptr;
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    Log(LogLevel::kInfo, "using the socket passed by systemd", {{"fd", fd}});
  } else if (!m.server->Listen(config.socket_path, err)) {
    return nullptr;
  }
  m.service->Attach(m.server.get());
  m.server->Start();
  const double listen_ms = ms_since(t_phase);

  if (!config.metrics_listen.empty()) {
    Service* svc = m.service.get();
    m.metrics = MetricsServer::Start(config.metrics_listen,
                                     [svc] { return svc->RenderPrometheus(); }, err);
    if (!m.metrics) return nullptr;
  }

  m.debounce = std::make_unique<asio::steady_timer>(m.control);
  if (config.watch_policy) {
    int ifd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ifd >= 0 &&
        ::inotify_add_watch(ifd, config.policy_dir.c_str(),
                            IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE) >=
            0) {
      m.inotify = std::make_unique<asio::posix::stream_descriptor>(m.control, ifd);
      m.WatchInotify();
    } else {
      if (ifd >= 0) ::close(ifd);
      Log(LogLevel::kWarn, "cannot watch the policy directory; reload with SIGHUP",
          {{"dir", config.policy_dir}, {"error", std::strerror(errno)}});
    }
  }
  if (handle_signals) m.WaitSignals();
  policy::PolicyInfo info = policy::Info(*pol);
  Log(LogLevel::kInfo, "serving",
      {{"socket", fd >= 0 ? std::string("fd:3") : config.socket_path},
       {"data", config.data_dir},
       {"policy", config.policy_dir},
       {"policy_digest", info.digest},
       {"threads", opt.threads},
       {"rev", m.store->Revision()},
       {"policy_ms", policy_ms},
       {"store_open_ms", store_ms},
       {"listen_ms", listen_ms},
       {"start_ms", ms_since(t_start)}});
  return d;
}

Daemon::~Daemon() {
  if (impl_) impl_->Shutdown();
}

void Daemon::Run() {
  auto guard = asio::make_work_guard(impl_->control);
  impl_->control.run();
  if (impl_->signals) {
    boost::system::error_code ec;
    impl_->signals->cancel(ec);
  }
  impl_->Shutdown();
}

void Daemon::Stop() { impl_->control.stop(); }

Service* Daemon::service() { return impl_->service.get(); }
store::Store* Daemon::store() { return impl_->store.get(); }
const Config& Daemon::config() const { return impl_->config; }

int RunServe(const Config& config) {
  std::string err;
  auto d = Daemon::Start(config, &err);
  if (!d) {
    Log(LogLevel::kError, "cannot start", {{"error", err}});
    return 1;
  }
  d->Run();
  return 0;
}

}  // namespace gatehouse::daemon
