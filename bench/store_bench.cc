// Store benchmarks (Google Benchmark).
//
// World: 1M users, 100k orgs, 5 workspaces per org (500k), 1M org memberships and 2M workspace
// memberships (3M total), generated through Store::Import into a temp dir. For quick runs set
// GATEHOUSE_BENCH_SCALE (e.g. 0.01 → 10k users, 1k orgs). GATEHOUSE_BENCH_DIR keeps the world
// in a given directory instead of a temp dir (deleted at exit otherwise). GATEHOUSE_BENCH_NOSYNC=1
// opens the store with durable=false (MDB_NOSYNC) to measure the write path without fsync.
//
//   BM_Import               bulk import of the world (runs once); memberships/s, bytes/membership
//   BM_DecisionLookups/0    Renew + GetWorkspaceMember (carries org and org role) + GetOrg + Reset
//                           (the 2-read path the daemon's facts adapter takes)
//   BM_DecisionLookups/1    the same plus GetOrgMember (the 3-read path, for comparison)
//   BM_DecisionLookups/2    the same plus GetWorkspace (4 reads)
//   BM_DecisionLookupsOnly  the 2 point reads inside an already renewed txn
//   BM_GroupCommitWrites    durable writes from 16 threads through group commit
//   BM_GroupCommitPipelined 16 threads x 64 writes in flight
//   BM_RawLmdbGet           the floor: the same 2 reads as raw mdb_get on the same DBIs and keys
//                           (Renew + 2 x mdb_get + Reset, no decoding). Runs last: it closes the
//                           Store first (LMDB forbids opening one env twice in a process).
// GATEHOUSE_BENCH_REUSE=1 with GATEHOUSE_BENCH_DIR: reuse a world imported by an earlier run
// (same scale; the lookup keys are regenerated, nothing is imported) — e.g. for callgrind runs.
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

#include <lmdb.h>

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
  // Reuse: the world is there already; run the generator only for the lookup keys.
  const bool reuse = getenv("GATEHOUSE_BENCH_REUSE") != nullptr && w->store->Revision() > 0;
  const size_t chunk = 250'000;
  std::vector<gs::ImportRecord> recs;
  recs.reserve(chunk);
  double seconds = 0, cpu = 0;
  uint64_t memberships = 0, records = 0;
  auto flush = [&] {
    if (reuse) recs.clear();
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
  if (reuse) seconds = 1, cpu = 1;  // nothing imported: the rates below are meaningless
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

// The reads of one decision. reads == 2: the workspace membership (which carries the owning org
// and the member's org role) and the org — what the daemon's facts adapter does; the org
// membership is read only when the row has no org role (a schema-1 row) or the user has no
// workspace membership. reads == 3: the org membership is always read (before the org role was
// denormalized). reads == 4: GetWorkspace too.
bool Decide(gs::ReadTxn& txn, const std::array<std::string, 3>& t, int reads) {
  gs::WorkspaceMemberView wm;
  gs::OrgMemberView om;
  gs::OrgView ov;
  gs::WorkspaceView wv;
  bool ok = txn.GetWorkspaceMember(t[0], t[1], &wm);
  std::string_view org = wm.org;
  if (reads >= 4 || !ok) {
    ok = txn.GetWorkspace(t[1], &wv);
    org = wv.org;
  }
  if (reads >= 3 || wm.org_role.empty()) {
    ok &= txn.GetOrgMember(t[0], org, &om);
    benchmark::DoNotOptimize(om);
  }
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
  const int reads = 2 + static_cast<int>(state.range(0));
  if (!g_world || !g_world->store) {
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
    misses += !Decide(*txn, tr[i], reads);
    txn->Reset();
    if (lat.size() < lat.capacity()) lat.push_back(static_cast<uint32_t>(NowNs() - t0));
    if (++i == tr.size()) i = 0;
  }
  if (misses) state.SkipWithError("lookup missed");
  Percentiles(state, lat);
}
BENCHMARK(BM_DecisionLookups)->Arg(0)->Arg(1)->Arg(2)->MinTime(3);

void BM_DecisionLookupsOnly(benchmark::State& state) {
  if (!g_world || !g_world->store) {
    state.SkipWithError("no world");
    return;
  }
  auto txn = g_world->store->NewReadTxn();
  txn->Renew();
  const auto& tr = g_world->triples;
  size_t i = 0, misses = 0;
  for (auto _ : state) {
    misses += !Decide(*txn, tr[i], 2);
    if (++i == tr.size()) i = 0;
  }
  txn->Reset();
  if (misses) state.SkipWithError("lookup missed");
}
BENCHMARK(BM_DecisionLookupsOnly)->MinTime(2);

std::atomic<uint64_t> g_write_seq{0};

void BM_GroupCommitWrites(benchmark::State& state) {
  if (!g_world || !g_world->store) {
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
  if (!g_world || !g_world->store) {
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

// The floor of the 2-read decision: raw LMDB on the same DBIs and keys (docs/storage.md layout:
// gh.ws_members kp(ws) user, gh.orgs org), read txn renewed/reset per decision, no decoding.
void BM_RawLmdbGet(benchmark::State& state) {
  if (!g_world) {
    state.SkipWithError("no world");
    return;
  }
  g_world->store.reset();  // one env per process: the Store must be closed first
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  MDB_dbi wsm = 0, orgs = 0;
  bool ok = mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 32) == 0 &&
            mdb_env_set_mapsize(env, size_t{32} << 30) == 0 &&
            mdb_env_open(env, g_world->dir.c_str(), MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD, 0640) == 0 &&
            mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0 &&
            mdb_dbi_open(txn, "gh.ws_members", 0, &wsm) == 0 && mdb_dbi_open(txn, "gh.orgs", 0, &orgs) == 0 &&
            mdb_txn_commit(txn) == 0;  // DBI handles outlive only a committed txn
  if (ok) {
    txn = nullptr;
    ok = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0;
  }
  if (!ok) {
    state.SkipWithError("cannot open the world with raw LMDB");
    if (env) mdb_env_close(env);
    return;
  }
  mdb_txn_reset(txn);
  // Keys built up front: the floor measures LMDB, not key building.
  std::vector<std::string> keys;
  keys.reserve(g_world->triples.size());
  for (const auto& t : g_world->triples) keys.push_back(std::string(1, static_cast<char>(t[1].size())) + t[1] + t[0]);
  const auto& tr = g_world->triples;
  size_t i = 0, misses = 0;
  std::vector<uint32_t> lat;
  lat.reserve(1 << 20);
  for (auto _ : state) {
    const uint64_t t0 = NowNs();
    mdb_txn_renew(txn);
    MDB_val k{keys[i].size(), keys[i].data()}, v;
    misses += mdb_get(txn, wsm, &k, &v) != 0;
    benchmark::DoNotOptimize(v);
    k = MDB_val{tr[i][2].size(), const_cast<char*>(tr[i][2].data())};
    misses += mdb_get(txn, orgs, &k, &v) != 0;
    benchmark::DoNotOptimize(v);
    mdb_txn_reset(txn);
    if (lat.size() < lat.capacity()) lat.push_back(static_cast<uint32_t>(NowNs() - t0));
    if (++i == tr.size()) i = 0;
  }
  mdb_txn_abort(txn);
  mdb_env_close(env);
  if (misses) state.SkipWithError("raw lookup missed");
  Percentiles(state, lat);
}
BENCHMARK(BM_RawLmdbGet)->MinTime(3);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  delete g_world;
  return 0;
}
