// gatehouse-bench: synthetic world + in-process and socket load generator (issue 5).
//
//   gatehouse-bench [--memberships N] [--data DIR [--keep]] [--scenarios a,b,...] [--json] ...
//
// Scenarios (default: all but cerbos; see --help):
//   inproc     check over store+policy in this process (ReadTxn Renew/Evaluate/Reset per check)
//   reload     compile time of the policy dir in-process (LoadPolicyDir)
//   startup    start `gatehouse serve` on the world; time to the first answered check
//   floor      AF_UNIX echo server (forked): ping-pong, pipelined and batch-sized echo
//   latency    one connection, one request in flight (ratio to the ping-pong floor)
//   pipelined  single checks, --conns connections × --depth in flight
//   batch      check_batch of --batch, --batch-conns × --batch-depth in flight; each check of a
//              batch is a request of the random stream (a different user each)
//   userbatch  the same, but each batch asks for one user in one session (World::MakeUserRequest:
//              the shape of a UI page asking what a user may do); the batch cache applies
//   reload_load  policy.reload every 100 ms while --conns/4 connections pipeline checks
//   cerbos     16 connections × 1 in flight against Cerbos (--cerbos HOST:PORT, HTTP) and
//              against Gatehouse with the same requests
//
// Every socket number comes with the daemon's CPU time per check (/proc/<pid>/stat utime+stime
// deltas) and this client's own CPU time. Nothing is pinned; the machine has 2 vCPUs shared by
// the client, the daemon and the echo server, so compare ratios within one run.
//
// Thread-safety: single-threaded except the reload_load scenario's reload thread and the forked
// echo server (a separate process with a thread per connection).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/loadgen/histogram.h"
#include "bench/loadgen/world.h"
#include "daemon/config.h"
#include "daemon/facts_adapter.h"
#include "policy/policy.h"
#include "store/store.h"

#ifndef GATEHOUSE_BIN
#define GATEHOUSE_BIN "gatehouse"
#endif
#ifndef GATEHOUSE_POLICY_DIR
#define GATEHOUSE_POLICY_DIR "policies/respondio"
#endif

namespace gb = gatehouse::bench;
namespace gs = gatehouse::store;
namespace gp = gatehouse::policy;
using json = nlohmann::ordered_json;
using gatehouse::bench::Histogram;

namespace {

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

double SelfCpu() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// utime+stime of a process (all threads), seconds; -1 if unreadable.
double ProcCpu(pid_t pid) {
  if (pid <= 0) return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t rp = s.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream in(s.substr(rp + 2));
  std::string tok;
  unsigned long long ut = 0, st = 0;
  for (int field = 3; in >> tok; ++field) {
    if (field == 14) ut = std::stoull(tok);
    if (field == 15) {
      st = std::stoull(tok);
      break;
    }
  }
  return static_cast<double>(ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A line of /proc/<pid>/status in KiB (e.g. "RssAnon"); -1 if absent.
long ProcStatusKb(pid_t pid, const char* key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line)) {
    if (line.rfind(k, 0) == 0) return std::atol(line.c_str() + k.size());
  }
  return -1;
}

double LoadAvg() {
  double l = -1;
  if (FILE* f = fopen("/proc/loadavg", "r")) {
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
  }
  return l;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(dir, ec)) {
    struct stat st;
    if (::stat(e.path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      total += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return total;
}

struct Endpoint {
  bool tcp = false;
  std::string path;
  std::string host = "127.0.0.1";
  int port = 0;
};

int Connect(const Endpoint& ep) {
  if (ep.tcp) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(ep.port));
    inet_pton(AF_INET, ep.host.c_str(), &a.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", ep.path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Echo server (the floor): a forked process, one thread per connection, writes back whatever
// it reads, one write per read (so pipelined requests are echoed coalesced).
// ---------------------------------------------------------------------------------------------
pid_t StartEchoServer(const std::string& path) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  const int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  unlink(path.c_str());
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(lfd, 256) != 0) _exit(1);
  for (;;) {
    const int fd = accept(lfd, nullptr, nullptr);
    if (fd < 0) continue;
    std::thread([fd] {
      std::vector<char> buf(1 << 16);
      for (;;) {
        const ssize_t r = ::read(fd, buf.data(), buf.size());
        if (r <= 0 || !WriteAll(fd, buf.data(), static_cast<size_t>(r))) break;
      }
      close(fd);
    }).detach();
  }
}

bool WaitForSocket(const Endpoint& ep, double seconds) {
  const uint64_t end = NowNs() + static_cast<uint64_t>(seconds * 1e9);
  while (NowNs() < end) {
    const int fd = Connect(ep);
    if (fd >= 0) {
      close(fd);
      return true;
    }
    usleep(200);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Closed-loop load: `conns` connections, each keeping `depth` requests in flight, one epoll
// thread. Replies are matched FIFO per connection.
// ---------------------------------------------------------------------------------------------
enum class Framing { kLine, kHttp };

struct LoadSpec {
  std::string name;
  Endpoint ep;
  int conns = 1;
  int depth = 1;
  Framing framing = Framing::kLine;
  const std::vector<std::string>* reqs = nullptr;
  uint64_t checks_per_req = 1;
  double seconds = 2;
  double warmup = 0.3;
  pid_t server = -1;
  const std::vector<int8_t>* expected = nullptr;  // per request index: 1 allow, 0 deny
  const std::vector<uint32_t>* expected_allows = nullptr;  // per batch line: allows expected
  bool count_allow = true;
};

struct LoadResult {
  Histogram hist;
  uint64_t replies = 0, checks = 0, errors = 0, allows = 0, mismatches = 0, verified = 0;
  double seconds = 0, server_cpu = -1, client_cpu = 0;
  std::string failure;
  double Rate() const { return seconds > 0 ? checks / seconds : 0; }
};

struct ReplyScan {
  bool error = false;
  uint64_t allows = 0;
};

ReplyScan ScanLine(std::string_view line) {
  ReplyScan s;
  s.error = line.find("\"ok\":false") != std::string_view::npos;
  for (size_t p = 0; (p = line.find("\"allow\":true", p)) != std::string_view::npos; p += 12) ++s.allows;
  return s;
}

// Parses complete HTTP responses off the front of buf; returns bytes consumed (0: incomplete).
size_t TakeHttp(std::string_view buf, ReplyScan* s) {
  const size_t he = buf.find("\r\n\r\n");
  if (he == std::string_view::npos) return 0;
  std::string_view head = buf.substr(0, he);
  size_t clen = 0;
  for (size_t p = 0; p < head.size();) {
    size_t e = head.find("\r\n", p);
    if (e == std::string_view::npos) e = head.size();
    std::string_view l = head.substr(p, e - p);
    if (l.size() > 15 && strncasecmp(l.data(), "content-length:", 15) == 0) {
      clen = std::strtoull(std::string(l.substr(15)).c_str(), nullptr, 10);
    }
    p = e + 2;
  }
  if (buf.size() < he + 4 + clen) return 0;
  std::string_view body = buf.substr(he + 4, clen);
  s->error = head.substr(0, 12).find("200") == std::string_view::npos;
  s->allows = body.find("EFFECT_ALLOW") != std::string_view::npos ? 1 : 0;
  return he + 4 + clen;
}

struct ConnState {
  int fd = -1;
  std::vector<std::pair<uint64_t, uint32_t>> ring;  // (send time, request index)
  size_t head = 0, inflight = 0;
  std::string in;   // partial reply bytes
  std::string out;  // batch of requests to write
  bool dead = false;
};

LoadResult RunLoad(const LoadSpec& spec) {
  LoadResult res;
  const auto& reqs = *spec.reqs;
  std::vector<ConnState> cs(spec.conns);
  for (auto& c : cs) {
    c.fd = Connect(spec.ep);
    if (c.fd < 0) {
      res.failure = "connect failed: " + std::string(strerror(errno));
      for (auto& d : cs) if (d.fd >= 0) close(d.fd);
      return res;
    }
    c.ring.resize(spec.depth);
  }
  size_t next = 0;
  auto take = [&]() -> uint32_t {
    const uint32_t i = static_cast<uint32_t>(next % reqs.size());
    ++next;
    return i;
  };
  const uint64_t t_start = NowNs();
  const uint64_t t_rec = t_start + static_cast<uint64_t>(spec.warmup * 1e9);
  const uint64_t t_end = t_rec + static_cast<uint64_t>(spec.seconds * 1e9);
  bool recording = false;
  double cpu0 = 0, scpu0 = 0;
  uint64_t rec_start = 0;
  auto maybe_start = [&](uint64_t now) {
    if (!recording && now >= t_rec) {
      recording = true;
      rec_start = now;
      cpu0 = SelfCpu();
      scpu0 = ProcCpu(spec.server);
    }
  };
  auto complete = [&](ConnState& c, const ReplyScan& s, uint64_t now) {
    auto [sent, idx] = c.ring[c.head];
    c.head = (c.head + 1) % spec.depth;
    --c.inflight;
    if (!recording) return;
    res.hist.Add(now - sent);
    ++res.replies;
    res.checks += spec.checks_per_req;
    if (s.error) ++res.errors;
    res.allows += s.allows;
    if (spec.expected && !s.error && spec.checks_per_req == 1) {
      ++res.verified;
      if ((s.allows > 0) != ((*spec.expected)[idx] == 1)) ++res.mismatches;
    }
    if (spec.expected_allows && !s.error) {  // batch: the number of allows must match
      ++res.verified;
      if (s.allows != (*spec.expected_allows)[idx]) ++res.mismatches;
    }
  };
  auto send_more = [&](ConnState& c, uint64_t now) {
    c.out.clear();
    while (c.inflight < static_cast<size_t>(spec.depth)) {
      const uint32_t i = take();
      c.ring[(c.head + c.inflight) % spec.depth] = {now, i};
      ++c.inflight;
      c.out += reqs[i];
    }
    if (!c.out.empty() && !WriteAll(c.fd, c.out.data(), c.out.size())) c.dead = true;
  };
  // Process buffered bytes of c; returns number of replies completed.
  auto drain = [&](ConnState& c, uint64_t now) {
    for (;;) {
      ReplyScan s;
      size_t used = 0;
      if (spec.framing == Framing::kLine) {
        const size_t nl = c.in.find('\n');
        if (nl == std::string::npos) break;
        s = ScanLine(std::string_view(c.in).substr(0, nl));
        if (!spec.count_allow) s.allows = 0;
        used = nl + 1;
      } else {
        used = TakeHttp(c.in, &s);
        if (used == 0) break;
      }
      c.in.erase(0, used);
      if (c.inflight == 0) {
        ++res.errors;  // unsolicited
        continue;
      }
      complete(c, s, now);
    }
  };

  std::vector<char> buf(1 << 18);
  if (spec.conns == 1 && spec.depth == 1) {
    // Ping-pong: blocking write + read, no epoll in the loop.
    ConnState& c = cs[0];
    for (;;) {
      uint64_t now = NowNs();
      maybe_start(now);
      if (now >= t_end) break;
      send_more(c, now);
      while (c.inflight > 0 && !c.dead) {
        const ssize_t r = ::read(c.fd, buf.data(), buf.size());
        if (r <= 0) {
          c.dead = true;
          break;
        }
        c.in.append(buf.data(), static_cast<size_t>(r));
        drain(c, NowNs());
      }
      if (c.dead) break;
    }
  } else {
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    for (size_t k = 0; k < cs.size(); ++k) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = k;
      epoll_ctl(ep, EPOLL_CTL_ADD, cs[k].fd, &ev);
      send_more(cs[k], NowNs());
    }
    std::vector<epoll_event> evs(cs.size());
    for (;;) {
      uint64_t now = NowNs();
      maybe_start(now);
      if (now >= t_end) break;
      const int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 100);
      now = NowNs();
      for (int e = 0; e < n; ++e) {
        ConnState& c = cs[evs[e].data.u64];
        const ssize_t r = ::read(c.fd, buf.data(), buf.size());
        if (r <= 0) {
          if (!c.dead) {
            c.dead = true;
            res.errors += c.inflight;
            epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
          }
          continue;
        }
        c.in.append(buf.data(), static_cast<size_t>(r));
        drain(c, now);
        if (!c.dead && now < t_end) send_more(c, now);
      }
    }
    close(ep);
  }
  const uint64_t t_stop = NowNs();
  res.seconds = recording ? (t_stop - rec_start) / 1e9 : 0;
  res.client_cpu = SelfCpu() - cpu0;
  if (spec.server > 0 && scpu0 >= 0) res.server_cpu = ProcCpu(spec.server) - scpu0;
  for (auto& c : cs) {
    if (c.dead && res.failure.empty()) res.failure = "connection closed by server";
    close(c.fd);
  }
  return res;
}

json LoadJson(const LoadSpec& s, const LoadResult& r) {
  json j;
  j["conns"] = s.conns;
  j["depth"] = s.depth;
  j["checks_per_request"] = s.checks_per_req;
  j["seconds"] = r.seconds;
  j["requests"] = r.replies;
  j["checks"] = r.checks;
  j["checks_per_s"] = r.Rate();
  j["requests_per_s"] = r.seconds > 0 ? r.replies / r.seconds : 0;
  j["p50_us"] = r.hist.Percentile(0.50) / 1e3;
  j["p90_us"] = r.hist.Percentile(0.90) / 1e3;
  j["p99_us"] = r.hist.Percentile(0.99) / 1e3;
  j["p999_us"] = r.hist.Percentile(0.999) / 1e3;
  j["max_us"] = r.hist.max() / 1e3;
  j["errors"] = r.errors;
  if (s.count_allow && r.checks) j["allow_fraction"] = static_cast<double>(r.allows) / r.checks;
  if (s.expected || s.expected_allows) {
    j["verified"] = r.verified;
    j["mismatches"] = r.mismatches;
  }
  if (r.server_cpu >= 0 && r.checks) {
    j["server_cpu_s"] = r.server_cpu;
    j["server_cpu_us_per_check"] = r.server_cpu / r.checks * 1e6;
  }
  j["client_cpu_s"] = r.client_cpu;
  if (r.checks) j["client_cpu_us_per_check"] = r.client_cpu / r.checks * 1e6;
  if (!r.failure.empty()) j["failure"] = r.failure;
  return j;
}

void PrintLoad(const std::string& name, const json& j, FILE* o) {
  fprintf(o, "  %-22s %10.0f checks/s  p50 %8.2f  p90 %8.2f  p99 %8.2f  p99.9 %8.2f us  err %llu",
          name.c_str(), j.value("checks_per_s", 0.0), j.value("p50_us", 0.0),
          j.value("p90_us", 0.0), j.value("p99_us", 0.0), j.value("p999_us", 0.0),
          static_cast<unsigned long long>(j.value("errors", 0ull)));
  if (j.contains("server_cpu_us_per_check")) {
    fprintf(o, "  srv %.2f us/chk", j["server_cpu_us_per_check"].get<double>());
  }
  if (j.contains("client_cpu_us_per_check")) {
    fprintf(o, "  cli %.2f us/chk", j["client_cpu_us_per_check"].get<double>());
  }
  if (j.contains("mismatches")) {
    fprintf(o, "  mismatch %llu/%llu", static_cast<unsigned long long>(j["mismatches"].get<uint64_t>()),
            static_cast<unsigned long long>(j["verified"].get<uint64_t>()));
  }
  if (j.contains("failure")) fprintf(o, "  FAILED: %s", j["failure"].get<std::string>().c_str());
  fputc('\n', o);
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------
struct Opts {
  uint64_t memberships = 100000;
  uint64_t seed = 1;
  std::string data;
  bool keep = false;
  std::string scenarios =
      "inproc,reload,startup,floor,latency,pipelined,batch,userbatch,reload_load";
  bool json_out = false;
  std::string gatehouse = GATEHOUSE_BIN;
  std::string policy = GATEHOUSE_POLICY_DIR;
  std::string socket;  // connect to a running daemon instead of starting one
  pid_t pid = -1;      // its pid, for CPU / RSS
  double seconds = 2;
  int conns = 32, depth = 16;
  int batch = 100, batch_conns = 2, batch_depth = 2;
  int threads = 2;
  size_t pool = 200000;
  std::string cerbos;  // host:port
  pid_t cerbos_pid = -1;
  int cerbos_conns = 16;
  size_t map_gb = 64;
  long org_cache = -1;  // org cache entries per worker / in-process; -1: the daemon's default
};

const char kUsage[] =
    "usage: gatehouse-bench [options]\n"
    "  --memberships N     world size (default 100000; 4 memberships per user)\n"
    "  --seed N            world seed (default 1)\n"
    "  --data DIR          world directory (reused if it holds the same world); default: temp\n"
    "  --keep              keep the temp world directory\n"
    "  --scenarios LIST    inproc,reload,startup,floor,latency,pipelined,batch,userbatch,\n"
    "                      reload_load,cerbos\n"
    "  --seconds S         measured seconds per socket scenario (default 2; +0.3 s warm-up)\n"
    "  --conns N --depth D pipelined scenario (default 32 x 16)\n"
    "  --batch B --batch-conns N --batch-depth D   check_batch scenario (default 100, 2 x 2)\n"
    "  --threads N         daemon worker threads (default 2)\n"
    "  --pool N            distinct pre-generated requests (default 200000)\n"
    "  --gatehouse PATH    daemon binary (default: the one built with this tool)\n"
    "  --policy DIR        policy directory (default: policies/respondio of the source tree)\n"
    "  --socket PATH       use a running daemon (with --pid PID for CPU/RSS) instead of starting one\n"
    "  --cerbos HOST:PORT  Cerbos HTTP endpoint for the cerbos scenario (--cerbos-pid PID)\n"
    "  --cerbos-conns N    connections for the comparison (default 16, 1 request in flight each)\n"
    "  --map-gb N          LMDB map size of this process (default 64; use 4 under valgrind)\n"
    "  --org-cache N       org cache entries (in-process and daemon workers; 0: off; default:\n"
    "                      the daemon's default)\n"
    "  --json              print one JSON object instead of the table\n";

bool ParseArgs(int argc, char** argv, Opts* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        fprintf(stderr, "missing value for %s\n", a.c_str());
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--memberships") o->memberships = std::stoull(val());
    else if (a == "--seed") o->seed = std::stoull(val());
    else if (a == "--data") o->data = val();
    else if (a == "--keep") o->keep = true;
    else if (a == "--scenarios") o->scenarios = val();
    else if (a == "--seconds") o->seconds = std::stod(val());
    else if (a == "--conns") o->conns = std::stoi(val());
    else if (a == "--depth") o->depth = std::stoi(val());
    else if (a == "--batch") o->batch = std::stoi(val());
    else if (a == "--batch-conns") o->batch_conns = std::stoi(val());
    else if (a == "--batch-depth") o->batch_depth = std::stoi(val());
    else if (a == "--threads") o->threads = std::stoi(val());
    else if (a == "--pool") o->pool = std::stoull(val());
    else if (a == "--gatehouse") o->gatehouse = val();
    else if (a == "--policy") o->policy = val();
    else if (a == "--socket") o->socket = val();
    else if (a == "--pid") o->pid = std::stoi(val());
    else if (a == "--cerbos") o->cerbos = val();
    else if (a == "--cerbos-pid") o->cerbos_pid = std::stoi(val());
    else if (a == "--cerbos-conns") o->cerbos_conns = std::stoi(val());
    else if (a == "--json") o->json_out = true;
    else if (a == "--map-gb") o->map_gb = std::stoull(val());
    else if (a == "--org-cache") o->org_cache = std::stol(val());
    else if (a == "--help" || a == "-h") {
      fputs(kUsage, stdout);
      exit(0);
    } else {
      fprintf(stderr, "unknown option %s\n%s", a.c_str(), kUsage);
      return false;
    }
  }
  if (o->conns < 1 || o->depth < 1 || o->batch < 1 || o->batch > 1000 || o->batch_conns < 1 ||
      o->batch_depth < 1 || o->pool < 1 || o->seconds <= 0) {
    fprintf(stderr, "bad option value\n");
    return false;
  }
  return true;
}

bool Has(const std::string& list, const char* s) {
  std::string l = "," + list + ",";
  return l.find("," + std::string(s) + ",") != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// In-process check loop
// ---------------------------------------------------------------------------------------------
struct Prepared {
  gp::Request req;
  gp::KeyValue kv[5];
};

void Prepare(const gb::Req& q, Prepared* p) {
  gp::Request& r = p->req;
  r = {};
  r.user = q.user;
  r.action = q.action;
  r.org = q.org;
  r.workspace = q.workspace;
  r.resource_type = q.res_type;
  r.resource_id = q.res_id;
  size_t n = 0;
  if (q.has_assignee) p->kv[n++] = {"assignee", gp::Value::String(q.assignee)};
  if (!q.team.empty()) p->kv[n++] = {"team", gp::Value::String(q.team)};
  if (!q.target_user.empty()) p->kv[n++] = {"target_user", gp::Value::String(q.target_user)};
  if (!q.target_role.empty()) p->kv[n++] = {"target_role", gp::Value::String(q.target_role)};
  if (!q.new_role.empty()) p->kv[n++] = {"new_role", gp::Value::String(q.new_role)};
  r.resource_attrs = gp::AttrList(p->kv, n);
  r.auth_method = q.auth_method;
  r.auth_idp = q.auth_idp;
  r.auth_age_s = q.auth_age_s;
}

struct Child {
  pid_t pid = -1;
  void Kill() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      for (int i = 0; i < 200; ++i) {
        if (waitpid(pid, nullptr, WNOHANG) == pid) {
          pid = -1;
          return;
        }
        usleep(10000);
      }
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }
  ~Child() { Kill(); }
};

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  if (!ParseArgs(argc, argv, &o)) return 2;
  signal(SIGPIPE, SIG_IGN);
  FILE* out = o.json_out ? stderr : stdout;  // progress/table goes to stderr with --json
  json J;
  J["tool"] = "gatehouse-bench";
  J["machine"] = {{"vcpus", std::thread::hardware_concurrency()}, {"pinned", false},
                  {"loadavg_1m_at_start", LoadAvg()}};

  // Scratch dir (sockets, logs, and the world unless --data).
  char tmpl[] = "/tmp/gh_bench_XXXXXX";
  const std::string tmp = mkdtemp(tmpl);
  // Removed on every exit path (declared before the children, so they are stopped first).
  struct Cleanup {
    std::string dir;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) std::filesystem::remove_all(dir, ec);
    }
  } cleanup{tmp, o.keep && o.data.empty()};
  const std::string data = o.data.empty() ? tmp + "/data" : o.data;
  const std::string echo_path = tmp + "/echo.sock";
  const std::string gh_path = o.socket.empty() ? tmp + "/gatehouse.sock" : o.socket;

  // Fork the echo server first, while this process has no threads.
  Child echo;
  if (Has(o.scenarios, "floor")) echo.pid = StartEchoServer(echo_path);

  gb::World world(o.memberships, o.seed);
  J["world"] = {{"memberships", world.memberships()}, {"users", world.users()},
                {"orgs", world.orgs()}, {"workspaces", world.orgs() * gb::kWsPerOrg},
                {"seed", o.seed}};
  fprintf(out, "world: %llu memberships, %llu users, %llu orgs, %llu workspaces\n",
          static_cast<unsigned long long>(world.memberships()),
          static_cast<unsigned long long>(world.users()),
          static_cast<unsigned long long>(world.orgs()),
          static_cast<unsigned long long>(world.orgs() * gb::kWsPerOrg));

  // Request pool.
  const size_t pool = o.pool;
  std::vector<gb::Req> reqs(pool);
  std::vector<std::string> lines(pool);
  for (size_t r = 0; r < pool; ++r) {
    reqs[r] = world.MakeRequest(r);
    gb::AppendCheckJson(reqs[r], false, r, &lines[r]);
    lines[r].push_back('\n');
  }
  // userbatch: batches of one user each (as many batches as the random batch scenario has).
  const bool want_user_batches = Has(o.scenarios, "userbatch");
  const size_t n_user_batches =
      want_user_batches ? std::max<size_t>(1, std::min<size_t>(pool / o.batch, 4000)) : 0;
  std::vector<gb::Req> user_reqs(n_user_batches * static_cast<size_t>(o.batch));
  for (size_t b = 0; b < n_user_batches; ++b) {
    for (int k = 0; k < o.batch; ++k) user_reqs[b * o.batch + k] = world.MakeUserRequest(b, k);
  }
  std::vector<uint32_t> user_batch_allows(n_user_batches, 0);
  std::vector<int8_t> expected(pool, -1);
  bool have_expected = false;  // decisions computed in-process (needs the world locally)

  int rc = 0;
  const bool need_world = o.socket.empty() || Has(o.scenarios, "inproc");
  if (need_world) {
    // Build (or reuse) the world.
    const std::string marker = data + "/gatehouse-bench.world";
    const std::string want = "memberships=" + std::to_string(world.memberships()) +
                             " seed=" + std::to_string(o.seed) + "\n";
    std::string have;
    {
      std::ifstream f(marker);
      std::getline(f, have);
      have += "\n";
    }
    std::filesystem::create_directories(data);
    std::unique_ptr<gs::Store> st;
    gs::Options so;
    so.path = data;
    so.durable = false;
    so.map_size = o.map_gb << 30;
    gs::Status s = gs::Store::Open(so, &st);
    if (!s.ok()) {
      fprintf(stderr, "open store %s: %s\n", data.c_str(), s.ToString().c_str());
      return 1;
    }
    json imp;
    if (have != want) {
      if (st->Revision() != 0) {
        fprintf(stderr, "%s holds another store; use an empty --data dir\n", data.c_str());
        return 1;
      }
      gs::ImportStats is;
      const uint64_t t0 = NowNs();
      const double c0 = SelfCpu();
      s = world.Import(st.get(), &is);
      if (!s.ok()) {
        fprintf(stderr, "import: %s\n", s.ToString().c_str());
        return 1;
      }
      const double secs = (NowNs() - t0) / 1e9;
      std::ofstream(marker) << want;
      imp = {{"seconds", secs}, {"cpu_s", SelfCpu() - c0}, {"memberships", is.memberships},
             {"memberships_per_s", is.memberships / secs}};
      fprintf(out, "import: %.1f s (%.0f memberships/s)\n", secs, is.memberships / secs);
    } else {
      imp = {{"reused", true}};
      fprintf(out, "import: reusing %s\n", data.c_str());
    }
    J["import"] = imp;

    // In-process loop over the same store and the shipped policy.
    std::vector<gp::Issue> issues;
    auto pol = gp::LoadPolicyDir(o.policy, &issues);
    if (!pol) {
      for (auto& i : issues) fprintf(stderr, "%s\n", i.ToString().c_str());
      return 1;
    }
    std::vector<Prepared> prep(pool);
    for (size_t r = 0; r < pool; ++r) Prepare(reqs[r], &prep[r]);
    auto txn = st->NewReadTxn();
    gatehouse::daemon::StoreFacts facts(txn.get());
    facts.SetOrgCacheEntries(o.org_cache >= 0 ? static_cast<size_t>(o.org_cache)
                                              : gatehouse::daemon::Config().org_cache_entries);
    J["org_cache_entries"] = facts.org_cache_entries();
    uint64_t allows = 0;
    std::map<std::string, uint64_t> reasons;
    for (size_t r = 0; r < pool; ++r) {
      txn->Renew();
      const gp::Decision d = gp::Evaluate(*pol, prep[r].req, facts);
      expected[r] = d.allow ? 1 : 0;
      allows += d.allow;
      ++reasons[std::string(d.reason)];
      txn->Reset();
    }
    for (size_t b = 0; b < n_user_batches; ++b) {
      txn->Renew();  // one snapshot per batch, like the daemon
      for (int k = 0; k < o.batch; ++k) {
        Prepared p;
        Prepare(user_reqs[b * o.batch + k], &p);
        user_batch_allows[b] += gp::Evaluate(*pol, p.req, facts).allow;
      }
      txn->Reset();
    }
    have_expected = true;
    json rs;
    for (auto& [k, v] : reasons) rs[k] = v;
    J["mix"] = {{"pool", pool}, {"allow_fraction", static_cast<double>(allows) / pool},
                {"reasons", rs}};
    fprintf(out, "request mix: %.1f%% allow over %zu distinct requests\n", 100.0 * allows / pool,
            pool);
    if (Has(o.scenarios, "inproc")) {
      Histogram h;
      const uint64_t t_end = NowNs() + static_cast<uint64_t>(o.seconds * 1e9);
      uint64_t n = 0;
      const double c0 = SelfCpu();
      const uint64_t t0 = NowNs();
      for (size_t r = 0;; r = (r + 1 == pool) ? 0 : r + 1) {
        const uint64_t a = NowNs();
        txn->Renew();
        const gp::Decision d = gp::Evaluate(*pol, prep[r].req, facts);
        txn->Reset();
        const uint64_t b = NowNs();
        h.Add(b - a);
        ++n;
        if (d.allow != (expected[r] == 1)) ++rc;  // must be deterministic
        if ((n & 1023) == 0 && b >= t_end) break;
      }
      const double secs = (NowNs() - t0) / 1e9;
      json j = {{"checks", n},
                {"seconds", secs},
                {"checks_per_s", n / secs},
                {"cpu_us_per_check", (SelfCpu() - c0) / n * 1e6},
                {"p50_us", h.Percentile(0.5) / 1e3},
                {"p90_us", h.Percentile(0.9) / 1e3},
                {"p99_us", h.Percentile(0.99) / 1e3},
                {"p999_us", h.Percentile(0.999) / 1e3},
                {"max_us", h.max() / 1e3},
                {"note", "Renew + Evaluate (4 point reads + rules) + Reset per check; "
                         "timer overhead (~2 clock_gettime) included"}};
      const uint64_t oc_hits = facts.org_cache_hits(), oc_misses = facts.org_cache_misses();
      j["org_cache"] = {{"entries", facts.org_cache_entries()}, {"hits", oc_hits},
                        {"misses", oc_misses}, {"oversize", facts.org_cache_oversize()}};
      J["inproc"] = j;
      fprintf(out, "in-process check (store + policy, random access over %zu requests):\n", pool);
      PrintLoad("inproc", j, out);
      if (facts.org_cache_entries() != 0) {
        fprintf(out, "  org cache: %zu entries, %.1f%% of org reads served (%" PRIu64
                     " hits, %" PRIu64 " misses, %" PRIu64 " too large)\n",
                facts.org_cache_entries(),
                oc_hits + oc_misses ? 100.0 * oc_hits / (oc_hits + oc_misses) : 0.0, oc_hits,
                oc_misses, facts.org_cache_oversize());
      }
      if (rc) fprintf(out, "  NONDETERMINISTIC decisions: %d\n", rc);
    }
    if (Has(o.scenarios, "reload")) {
      Histogram h;
      for (int i = 0; i < 9; ++i) {
        const uint64_t a = NowNs();
        auto p2 = gp::LoadPolicyDir(o.policy, &issues);
        h.Add(NowNs() - a);
      }
      J["policy_compile"] = {{"runs", 9}, {"p50_ms", h.Percentile(0.5) / 1e6},
                             {"max_ms", h.max() / 1e6}};
      fprintf(out, "policy compile (LoadPolicyDir %s): median %.2f ms, max %.2f ms\n",
              o.policy.c_str(), h.Percentile(0.5) / 1e6, h.max() / 1e6);
    }
    txn.reset();
    st->Close();
    st.reset();
    J["store_bytes"] = DirBytes(data);
    fprintf(out, "store on disk: %.1f MB (%.0f bytes/membership)\n", DirBytes(data) / 1e6,
            static_cast<double>(DirBytes(data)) / world.memberships());
  }

  // ---- Socket scenarios -------------------------------------------------------------------
  Child daemon;
  pid_t server_pid = o.pid;
  Endpoint gh;
  gh.path = gh_path;
  const bool socket_scen = Has(o.scenarios, "startup") || Has(o.scenarios, "latency") ||
                           Has(o.scenarios, "pipelined") || Has(o.scenarios, "batch") ||
                           Has(o.scenarios, "userbatch") || Has(o.scenarios, "reload_load") || Has(o.scenarios, "cerbos");
  if (socket_scen && o.socket.empty()) {
    const std::string log = tmp + "/gatehouse.log";
    const uint64_t t0 = NowNs();
    daemon.pid = fork();
    if (daemon.pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      const std::string th = std::to_string(o.threads);
      const std::string oc =
          "--org_cache_entries=" +
          std::to_string(o.org_cache >= 0 ? o.org_cache
                                          : long(gatehouse::daemon::Config().org_cache_entries));
      execl(o.gatehouse.c_str(), o.gatehouse.c_str(), "serve", "--socket", gh_path.c_str(),
            "--data", data.c_str(), "--policy", o.policy.c_str(), "--threads", th.c_str(),
            "--durable=false", "--watch_policy=false", "--log_level", "info", oc.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    server_pid = daemon.pid;
    // First answered check.
    uint64_t t_conn = 0, t_first = 0;
    std::string reply;
    const uint64_t deadline = t0 + 30'000'000'000ull;
    while (NowNs() < deadline) {
      const int fd = Connect(gh);
      if (fd < 0) {
        if (waitpid(daemon.pid, nullptr, WNOHANG) == daemon.pid) break;
        usleep(100);
        continue;
      }
      t_conn = NowNs();
      char b[4096];
      if (WriteAll(fd, lines[0].data(), lines[0].size())) {
        ssize_t r;
        while ((r = ::read(fd, b, sizeof b)) > 0) {
          reply.append(b, static_cast<size_t>(r));
          if (reply.find('\n') != std::string::npos) break;
        }
      }
      close(fd);
      if (reply.find('\n') != std::string::npos) t_first = NowNs();
      break;
    }
    const double cpu_first = ProcCpu(daemon.pid);
    if (t_first == 0) {
      fprintf(stderr, "daemon did not answer; log %s:\n", log.c_str());
      std::ifstream f(log);
      fprintf(stderr, "%s\n", std::string((std::istreambuf_iterator<char>(f)),
                                          std::istreambuf_iterator<char>()).c_str());
      return 1;
    }
    J["startup"] = {{"first_answer_ms", (t_first - t0) / 1e6},
                    {"listening_ms", (t_conn - t0) / 1e6},
                    {"daemon_cpu_ms_at_first_answer", cpu_first * 1e3},
                    {"loadavg_1m", LoadAvg()},
                    {"rss_anon_kb_at_start", ProcStatusKb(daemon.pid, "RssAnon")},
                    {"first_reply", reply.substr(0, reply.find('\n'))}};
    fprintf(out, "startup: first answered check %.1f ms after fork+exec (socket up at %.1f ms; "
            "daemon CPU so far %.0f ms; load average %.1f)\n",
            (t_first - t0) / 1e6, (t_conn - t0) / 1e6, cpu_first * 1e3, LoadAvg());
    // The daemon's own phase timings (its "serving" log line), when it reports them.
    {
      std::ifstream f(log);
      for (std::string l; std::getline(f, l);) {
        if (l.find("\"msg\":\"serving\"") == std::string::npos) continue;
        const json s = json::parse(l, nullptr, false);
        if (s.is_discarded() || !s.contains("start_ms")) break;
        json ph;
        for (const char* k : {"policy_ms", "store_open_ms", "listen_ms", "start_ms"}) {
          if (s.contains(k)) ph[k] = s[k];
        }
        J["startup"]["daemon_phases_ms"] = ph;
        fprintf(out, "  inside the daemon: policy %.1f ms, store open %.1f ms, listen+workers "
                "%.1f ms; Daemon::Start %.1f ms (the rest is fork, exec, dynamic linking, "
                "scheduling)\n",
                ph.value("policy_ms", 0.0), ph.value("store_open_ms", 0.0),
                ph.value("listen_ms", 0.0), ph.value("start_ms", 0.0));
        break;
      }
    }
  }

  json floors;
  LoadSpec base;
  base.seconds = o.seconds;
  base.reqs = &lines;

  // Batch lines.
  std::vector<std::string> batch_lines;
  std::vector<uint32_t> batch_allows;  // expected allows per batch line
  if (Has(o.scenarios, "batch") || Has(o.scenarios, "floor")) {
    const size_t nb = std::max<size_t>(1, std::min<size_t>(pool / o.batch, 4000));
    batch_lines.resize(nb);
    batch_allows.assign(nb, 0);
    for (size_t b = 0; b < nb; ++b) {
      std::string& l = batch_lines[b];
      l = "{\"id\":" + std::to_string(b) + ",\"op\":\"check_batch\",\"checks\":[";
      for (int k = 0; k < o.batch; ++k) {
        if (k) l.push_back(',');
        gb::AppendCheckJson(reqs[(b * o.batch + k) % pool], true, 0, &l);
        batch_allows[b] += expected[(b * o.batch + k) % pool] == 1;
      }
      l += "]}\n";
    }
  }

  std::vector<std::string> user_batch_lines(n_user_batches);
  for (size_t b = 0; b < n_user_batches; ++b) {
    std::string& l = user_batch_lines[b];
    l = "{\"id\":" + std::to_string(b) + ",\"op\":\"check_batch\",\"checks\":[";
    for (int k = 0; k < o.batch; ++k) {
      if (k) l.push_back(',');
      gb::AppendCheckJson(user_reqs[b * o.batch + k], true, 0, &l);
    }
    l += "]}\n";
  }

  auto run = [&](const char* name, LoadSpec s, json* dst) {
    LoadResult r = RunLoad(s);
    json j = LoadJson(s, r);
    PrintLoad(name, j, out);
    (*dst)[name] = j;
    return j;
  };

  if (Has(o.scenarios, "floor")) {
    Endpoint e;
    e.path = echo_path;
    if (!WaitForSocket(e, 5)) {
      fprintf(stderr, "echo server did not come up\n");
      return 1;
    }
    fprintf(out, "floor (AF_UNIX echo server, forked; same request bytes):\n");
    LoadSpec s = base;
    s.ep = e;
    s.server = echo.pid;
    s.count_allow = false;
    run("pingpong", s, &floors);
    s.conns = o.conns;
    s.depth = o.depth;
    run("pipelined", s, &floors);
    s.reqs = &batch_lines;
    s.conns = o.batch_conns;
    s.depth = o.batch_depth;
    s.checks_per_req = o.batch;
    run("batch", s, &floors);
    J["floor"] = floors;
    echo.Kill();
  }

  json sock;
  if (socket_scen) fprintf(out, "gatehouse over the socket (%d worker threads):\n", o.threads);
  if (Has(o.scenarios, "latency")) {
    LoadSpec s = base;
    s.ep = gh;
    s.server = server_pid;
    s.expected = have_expected ? &expected : nullptr;
    json j = run("latency_c1_d1", s, &sock);
    if (floors.contains("pingpong")) {
      const double r = j["p50_us"].get<double>() / floors["pingpong"]["p50_us"].get<double>();
      sock["latency_c1_d1"]["p50_ratio_to_floor"] = r;
      sock["latency_c1_d1"]["p99_ratio_to_floor"] =
          j["p99_us"].get<double>() / floors["pingpong"]["p99_us"].get<double>();
      fprintf(out, "    p50 = %.2f x ping-pong floor (target <= 1.2)\n", r);
    }
  }
  if (Has(o.scenarios, "pipelined")) {
    LoadSpec s = base;
    s.ep = gh;
    s.server = server_pid;
    s.expected = have_expected ? &expected : nullptr;
    s.conns = o.conns;
    s.depth = o.depth;
    char name[64];
    snprintf(name, sizeof name, "pipelined_c%d_d%d", o.conns, o.depth);
    json j = run(name, s, &sock);
    if (floors.contains("pipelined")) {
      const double r = j["checks_per_s"].get<double>() / floors["pipelined"]["checks_per_s"].get<double>();
      sock[name]["throughput_ratio_to_floor"] = r;
      fprintf(out, "    throughput = %.2f x pipelined echo floor (target >= 150000 checks/s)\n", r);
    }
  }
  // check_batch scenarios: `prefix` names the result, `lines`/`allows` the batches and the
  // allows expected per batch.
  auto run_batches = [&](const char* prefix, const std::vector<std::string>& lines,
                         const std::vector<uint32_t>& allows, const char* what) {
    LoadSpec s = base;
    s.ep = gh;
    s.server = server_pid;
    s.reqs = &lines;
    s.conns = o.batch_conns;
    s.depth = o.batch_depth;
    s.checks_per_req = o.batch;
    if (have_expected) s.expected_allows = &allows;
    char name[64];
    snprintf(name, sizeof name, "%s%d_c%d_d%d", prefix, o.batch, o.batch_conns, o.batch_depth);
    json j = run(name, s, &sock);
    if (floors.contains("batch")) {
      const double r = j["checks_per_s"].get<double>() / floors["batch"]["checks_per_s"].get<double>();
      sock[name]["throughput_ratio_to_floor"] = r;
      fprintf(out, "    throughput = %.2f x batch-sized echo floor (%s; target >= 1000000 checks/s)\n",
              r, what);
    }
  };
  if (Has(o.scenarios, "batch")) {
    run_batches("batch", batch_lines, batch_allows, "a random user per check");
  }
  if (want_user_batches) {
    run_batches("userbatch", user_batch_lines, user_batch_allows, "one user per batch");
  }
  if (Has(o.scenarios, "reload_load")) {
    LoadSpec s = base;
    s.ep = gh;
    s.server = server_pid;
    s.expected = have_expected ? &expected : nullptr;
    s.conns = std::max(1, o.conns / 4);
    s.depth = o.depth;
    std::atomic<bool> stop{false};
    Histogram rh;
    int reload_ok = 0, reload_fail = 0;
    std::string reload_err;
    std::thread reloader([&] {
      usleep(400000);  // after warm-up
      const int fd = Connect(gh);
      if (fd < 0) {
        reload_err = "connect failed";
        return;
      }
      const std::string req = "{\"id\":\"r\",\"op\":\"policy.reload\"}\n";
      char b[65536];
      while (!stop.load()) {
        const uint64_t a = NowNs();
        std::string reply;
        if (!WriteAll(fd, req.data(), req.size())) break;
        ssize_t r;
        while ((r = ::read(fd, b, sizeof b)) > 0) {
          reply.append(b, static_cast<size_t>(r));
          if (reply.find('\n') != std::string::npos) break;
        }
        if (r <= 0) {
          reload_err = "connection closed";
          break;
        }
        rh.Add(NowNs() - a);
        if (reply.find("\"ok\":true") != std::string::npos) {
          ++reload_ok;
        } else {
          ++reload_fail;
          if (reload_err.empty()) reload_err = reply.substr(0, 300);
        }
        usleep(100000);
      }
      close(fd);
    });
    LoadResult r = RunLoad(s);
    stop = true;
    reloader.join();
    json j = LoadJson(s, r);
    j["reloads_ok"] = reload_ok;
    j["reloads_failed"] = reload_fail;
    j["reload_p50_ms"] = rh.Percentile(0.5) / 1e6;
    j["reload_max_ms"] = rh.max() / 1e6;
    if (!reload_err.empty()) j["reload_error"] = reload_err;
    PrintLoad("checks_during_reload", j, out);
    fprintf(out, "    policy.reload under load: %d ok, %d failed, p50 %.2f ms, max %.2f ms; "
            "check errors during reloads: %llu\n",
            reload_ok, reload_fail, rh.Percentile(0.5) / 1e6, rh.max() / 1e6,
            static_cast<unsigned long long>(r.errors));
    if (!reload_err.empty()) fprintf(out, "    reload error: %s\n", reload_err.c_str());
    sock["reload_under_load"] = j;
  }

  if (Has(o.scenarios, "cerbos") && !o.cerbos.empty()) {
    // Same requests, same concurrency: Gatehouse (looks facts up itself) vs Cerbos (PEP sends
    // every attribute).
    std::vector<std::string> http(pool);
    const std::string host = o.cerbos.substr(0, o.cerbos.rfind(':'));
    for (size_t r = 0; r < pool; ++r) {
      gb::World::Facts f;
      gb::Req q = world.MakeRequest(r, &f);
      std::string body;
      gb::AppendCerbosJson(q, f, r, &body);
      http[r] = "POST /api/check/resources HTTP/1.1\r\nHost: " + host +
                "\r\nContent-Type: application/json\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body;
    }
    json cmp;
    fprintf(out, "side by side, %d connections x 1 in flight:\n", o.cerbos_conns);
    LoadSpec s = base;
    s.conns = o.cerbos_conns;
    s.depth = 1;
    s.expected = have_expected ? &expected : nullptr;
    s.ep = gh;
    s.server = server_pid;
    run("gatehouse", s, &cmp);
    LoadSpec c = s;
    c.ep.tcp = true;
    c.ep.host = host;
    c.ep.port = std::atoi(o.cerbos.substr(o.cerbos.rfind(':') + 1).c_str());
    c.framing = Framing::kHttp;
    c.reqs = &http;
    c.server = o.cerbos_pid;
    run("cerbos", c, &cmp);
    J["compare"] = cmp;
  }

  if (server_pid > 0) {
    J["daemon"] = {{"rss_anon_kb", ProcStatusKb(server_pid, "RssAnon")},
                   {"rss_file_kb", ProcStatusKb(server_pid, "RssFile")},
                   {"vm_rss_kb", ProcStatusKb(server_pid, "VmRSS")},
                   {"vm_hwm_kb", ProcStatusKb(server_pid, "VmHWM")}};
    fprintf(out, "daemon RSS: anon %ld KiB, file-backed %ld KiB (VmRSS %ld KiB)\n",
            ProcStatusKb(server_pid, "RssAnon"), ProcStatusKb(server_pid, "RssFile"),
            ProcStatusKb(server_pid, "VmRSS"));
  }
  if (!sock.empty()) J["socket"] = sock;
  daemon.Kill();
  echo.Kill();
  if (o.json_out) printf("%s\n", J.dump(2).c_str());
  if (cleanup.keep) fprintf(out, "kept %s\n", tmp.c_str());
  return rc ? 1 : 0;
}
