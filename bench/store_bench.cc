// Store benchmarks (Google Benchmark).
//
// World: 1M users, 100k orgs, 5 workspaces per org (500k), 1M org memberships and 2M workspace
// memberships (3M total), generated through Store::Import into a temp dir. For quick runs set
// GATEHOUSE_BENCH_SCALE (e.g. 0.01 → 10k users, 1k orgs). GATEHOUSE_BENCH_DIR keeps the world
// in a given directory instead of a temp dir (deleted at exit otherwise). GATEHOUSE_BENCH_NOSYNC=1
// opens the store with durable=false (MDB_NOSYNC) to measure the write path without fsync.
//
//   BM_Import               bulk import of the world (runs once); memberships/s, bytes/membership
//   BM_DecisionLookups/0    Renew + GetWorkspaceMember + GetOrgMember + GetOrg + Reset
//   BM_DecisionLookups/1    the same plus GetWorkspace
//   BM_DecisionLookupsOnly  the three point reads inside an already renewed txn
//   BM_GroupCommitWrites    durable writes from 16 threads through group commit
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "store/store.h"

namespace gs = gatehouse::store;

namespace {

struct World {
  std::string dir;
  bool owned_dir = false;
  std::unique_ptr<gs::Store> store;
  size_t users = 0, orgs = 0, ws_per_org = 5;
  // Existing (user, workspace, org) triples for lookups.
  std::vector<std::array<std::string, 3>> triples;
  gs::ImportStats stats;
  ~World() {
    store.reset();
    if (owned_dir) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
};

World* g_world = nullptr;

double Scale() {
  const char* s = getenv("GATEHOUSE_BENCH_SCALE");
  return s ? std::max(0.0001, atof(s)) : 1.0;
}

// Zero-padded ids: the generated dump is in key order, as an export sorted by id would be.
std::string Id(const char* prefix, size_t i, int width) {
  char buf[48];
  snprintf(buf, sizeof buf, "%s%0*zu", prefix, width, i);
  return buf;
}
std::string U(size_t i) { return Id("user-", i, 7); }
std::string O(size_t i) { return Id("org-", i, 6); }
std::string W(size_t org, size_t k) { return Id("ws-", org, 6) + "-" + std::to_string(k); }

double CpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

gs::ImportRecord Rec(gs::ImportRecord::Kind kind) {
  gs::ImportRecord r;
  r.kind = kind;
  r.email_verified = true;
  return r;
}

void BuildWorld(benchmark::State& state) {
  auto* w = new World();
  const double scale = Scale();
  w->users = static_cast<size_t>(1'000'000 * scale);
  w->orgs = std::max<size_t>(1, static_cast<size_t>(100'000 * scale));
  if (const char* d = getenv("GATEHOUSE_BENCH_DIR")) {
    w->dir = d;
  } else {
    char tmpl[] = "/tmp/gh_store_bench_XXXXXX";
    w->dir = mkdtemp(tmpl);
    w->owned_dir = true;
  }
  gs::Options o;
  o.path = w->dir;
  o.durable = getenv("GATEHOUSE_BENCH_NOSYNC") == nullptr;  // NOSYNC: the code path without fsync
  o.map_size = size_t{32} << 30;
  o.default_seats = 1'000'000;
  o.default_workspace_limit = 100;
  gs::Status s = gs::Store::Open(o, &w->store);
  if (!s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    delete w;
    return;
  }
  std::mt19937_64 rng(42);
  const size_t chunk = 250'000;
  std::vector<gs::ImportRecord> recs;
  recs.reserve(chunk);
  double seconds = 0, cpu = 0;
  uint64_t memberships = 0, records = 0;
  auto flush = [&] {
    if (recs.empty()) return true;
    gs::ImportStats st;
    const double c0 = CpuSeconds();
    gs::Status is = w->store->Import(recs, &st, chunk);
    cpu += CpuSeconds() - c0;
    if (!is.ok()) {
      state.SkipWithError(is.ToString().c_str());
      return false;
    }
    seconds += st.seconds;
    memberships += st.memberships;
    records += st.records;
    w->stats.store_bytes = st.store_bytes;
    recs.clear();
    return true;
  };
  auto add = [&](gs::ImportRecord r) {
    recs.push_back(std::move(r));
    return recs.size() < chunk || flush();
  };
  for (size_t i = 0; i < w->users; ++i) {
    auto r = Rec(gs::ImportRecord::Kind::kUser);
    r.fields.user = U(i);
    r.fields.email = U(i) + "@example.com";
    if (!add(std::move(r))) return;
  }
  for (size_t g = 0; g < w->orgs; ++g) {
    auto r = Rec(gs::ImportRecord::Kind::kOrg);
    r.fields.org = O(g);
    r.fields.name = "Org " + std::to_string(g);
    r.fields.status = "ACTIVE";
    r.fields.features = std::vector<std::string>{"sso", "webhooks"};
    if (!add(std::move(r))) return;
    for (size_t k = 0; k < w->ws_per_org; ++k) {
      auto ws = Rec(gs::ImportRecord::Kind::kWorkspace);
      ws.fields.workspace = W(g, k);
      ws.fields.org = O(g);
      ws.fields.name = "Workspace " + std::to_string(k);
      if (!add(std::move(ws))) return;
    }
  }
  if (!flush()) return;
  // Org memberships: every user in one org (user i in org i % orgs; the first is org_admin),
  // emitted grouped by org. Workspace memberships: two workspaces of their org each.
  for (size_t g = 0; g < w->orgs; ++g) {
    for (size_t i = g; i < w->users; i += w->orgs) {
      auto r = Rec(gs::ImportRecord::Kind::kOrgMember);
      r.fields.org = O(g);
      r.fields.user = U(i);
      r.fields.role = i < w->orgs ? "org_admin" : "member";
      if (!add(std::move(r))) return;
    }
  }
  if (!flush()) return;
  static const char* kRoles[] = {"owner", "manager", "agent", "agent"};
  std::vector<std::vector<size_t>> by_ws(w->ws_per_org);
  for (size_t g = 0; g < w->orgs; ++g) {
    for (auto& v : by_ws) v.clear();
    for (size_t i = g; i < w->users; i += w->orgs) {
      const size_t k1 = rng() % w->ws_per_org;
      const size_t k2 = (k1 + 1 + rng() % (w->ws_per_org - 1)) % w->ws_per_org;
      by_ws[k1].push_back(i);
      by_ws[k2].push_back(i);
    }
    for (size_t k = 0; k < w->ws_per_org; ++k) {
      for (size_t i : by_ws[k]) {
        auto r = Rec(gs::ImportRecord::Kind::kWorkspaceMember);
        r.fields.workspace = W(g, k);
        r.fields.user = U(i);
        r.fields.role = kRoles[rng() % 4];
        if (r.fields.role == "agent") r.fields.team = "team-" + std::to_string(rng() % 4);
        if (!add(std::move(r))) return;
        if (rng() % 3 == 0 && w->triples.size() < 1'000'000) w->triples.push_back({U(i), W(g, k), O(g)});
      }
    }
  }
  if (!flush()) return;
  std::shuffle(w->triples.begin(), w->triples.end(), rng);
  w->stats.seconds = seconds;
  w->stats.memberships = memberships;
  w->stats.records = records;
  g_world = w;
  state.counters["memberships"] = static_cast<double>(memberships);
  state.counters["memberships_per_s"] = memberships / seconds;
  state.counters["records_per_s"] = records / seconds;
  state.counters["import_cpu_s"] = cpu;
  state.counters["memberships_per_cpu_s"] = memberships / cpu;
  state.counters["store_MB"] = w->stats.store_bytes / 1e6;
  state.counters["bytes_per_membership"] = static_cast<double>(w->stats.store_bytes) / memberships;
}

void BM_Import(benchmark::State& state) {
  for (auto _ : state) BuildWorld(state);
}
BENCHMARK(BM_Import)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

inline uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The reads of one decision: the workspace membership (which carries the owning org), the org
// membership and the org. GetWorkspace is needed only when the user has no explicit
// workspace membership (e.g. an org_admin's implied owner role) — or always, with_ws.
bool Decide(gs::ReadTxn& txn, const std::array<std::string, 3>& t, bool with_ws) {
  gs::WorkspaceMemberView wm;
  gs::OrgMemberView om;
  gs::OrgView ov;
  gs::WorkspaceView wv;
  bool ok = txn.GetWorkspaceMember(t[0], t[1], &wm);
  std::string_view org = wm.org;
  if (with_ws || !ok) {
    ok = txn.GetWorkspace(t[1], &wv);
    org = wv.org;
  }
  ok &= txn.GetOrgMember(t[0], org, &om);
  ok &= txn.GetOrg(org, &ov);
  benchmark::DoNotOptimize(wm);
  benchmark::DoNotOptimize(ov);
  return ok;
}

void Percentiles(benchmark::State& state, std::vector<uint32_t>& lat) {
  if (lat.empty()) return;
  std::sort(lat.begin(), lat.end());
  state.counters["p50_ns"] = lat[lat.size() / 2];
  state.counters["p90_ns"] = lat[lat.size() * 9 / 10];
  state.counters["p99_ns"] = lat[lat.size() * 99 / 100];
}

void BM_DecisionLookups(benchmark::State& state) {
  const bool with_ws = state.range(0) != 0;
  if (!g_world) {
    state.SkipWithError("no world");
    return;
  }
  auto txn = g_world->store->NewReadTxn();
  const auto& tr = g_world->triples;
  size_t i = 0, misses = 0;
  std::vector<uint32_t> lat;
  lat.reserve(1 << 20);
  for (auto _ : state) {
    const uint64_t t0 = NowNs();
    txn->Renew();
    misses += !Decide(*txn, tr[i], with_ws);
    txn->Reset();
    if (lat.size() < lat.capacity()) lat.push_back(static_cast<uint32_t>(NowNs() - t0));
    if (++i == tr.size()) i = 0;
  }
  if (misses) state.SkipWithError("lookup missed");
  Percentiles(state, lat);
}
BENCHMARK(BM_DecisionLookups)->Arg(0)->Arg(1)->MinTime(3);

void BM_DecisionLookupsOnly(benchmark::State& state) {
  if (!g_world) {
    state.SkipWithError("no world");
    return;
  }
  auto txn = g_world->store->NewReadTxn();
  txn->Renew();
  const auto& tr = g_world->triples;
  size_t i = 0, misses = 0;
  for (auto _ : state) {
    misses += !Decide(*txn, tr[i], false);
    if (++i == tr.size()) i = 0;
  }
  txn->Reset();
  if (misses) state.SkipWithError("lookup missed");
}
BENCHMARK(BM_DecisionLookupsOnly)->MinTime(2);

std::atomic<uint64_t> g_write_seq{0};

void BM_GroupCommitWrites(benchmark::State& state) {
  if (!g_world) {
    state.SkipWithError("no world");
    return;
  }
  gs::Store& st = *g_world->store;
  uint64_t failed = 0;
  for (auto _ : state) {
    const uint64_t n = g_write_seq.fetch_add(1);
    gs::WriteRequest r;
    // A realistic small write: a workspace role change on an existing member.
    const auto& t = g_world->triples[n % g_world->triples.size()];
    r.op = "workspace.set_member";
    r.workspace = t[1];
    r.user = t[0];
    r.role = (n & 1) ? "agent" : "manager";
    gs::WriteResult res = st.Write(std::move(r));
    failed += !res.status.ok();
  }
  state.SetItemsProcessed(state.iterations());
  if (failed) state.SkipWithError("writes failed");
}
BENCHMARK(BM_GroupCommitWrites)->Threads(16)->UseRealTime()->MinTime(3);

// Pipelined: each of 16 threads keeps 64 durable writes in flight (as a daemon with many
// connections would), so group commit can fill larger batches.
void BM_GroupCommitPipelined(benchmark::State& state) {
  if (!g_world) {
    state.SkipWithError("no world");
    return;
  }
  gs::Store& st = *g_world->store;
  constexpr int kInFlight = 64;
  std::atomic<uint64_t> failed{0};
  for (auto _ : state) {
    std::atomic<int> left{kInFlight};
    std::mutex mu;
    std::condition_variable cv;
    for (int k = 0; k < kInFlight; ++k) {
      const uint64_t n = g_write_seq.fetch_add(1);
      const auto& t = g_world->triples[n % g_world->triples.size()];
      gs::WriteRequest r;
      r.op = "workspace.set_member";
      r.workspace = t[1];
      r.user = t[0];
      r.role = (n & 1) ? "agent" : "manager";
      st.Submit(std::move(r), [&](gs::WriteResult res) {
        if (!res.status.ok()) ++failed;
        if (--left == 0) {
          std::lock_guard<std::mutex> l(mu);
          cv.notify_one();
        }
      });
    }
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return left.load() == 0; });
  }
  state.SetItemsProcessed(state.iterations() * kInFlight);
  if (failed) state.SkipWithError("writes failed");
}
BENCHMARK(BM_GroupCommitPipelined)->Threads(16)->UseRealTime()->MinTime(3);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  delete g_world;
  return 0;
}
