// Daemon hot path benchmarks: decode, encode, and the whole in-process handler
// (Service::OnLine: decode -> LMDB snapshot -> policy evaluation -> hand-written reply) for
// `check` and `check_batch`, over an LMDB store holding a generated world
// (1000 orgs x 5 workspaces, 20 users per org) and the shipped respondio policy.
//
//   ninja -C build bench/daemon_bench && build/bench/daemon_bench
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "daemon/protocol.h"
#include "daemon/server.h"
#include "daemon/service.h"
#include "daemon/test_connection.h"
#include "policy/policy.h"
#include "store/store.h"


namespace gatehouse::daemon {
namespace {

constexpr int kOrgs = 1000, kWsPerOrg = 5, kUsersPerOrg = 20;

struct World {
  std::string dir;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<Service> service;
  std::shared_ptr<LocalConnection> conn;
  std::vector<std::string> allow_lines, deny_lines, batch_lines, same_principal_batch_lines;

  World() {
    char tmpl[] = "/tmp/gh_bench_XXXXXX";
    dir = mkdtemp(tmpl);
    store::Options so;
    so.path = dir;
    so.durable = false;
    // GATEHOUSE_BENCH_MAP_GB: a smaller LMDB map (valgrind cannot map the default 64 GiB).
    if (const char* gb = std::getenv("GATEHOUSE_BENCH_MAP_GB")) so.map_size = std::strtoull(gb, nullptr, 10) << 30;
    if (!store::Store::Open(so, &store).ok()) std::abort();
    std::vector<store::ImportRecord> recs;
    auto rec = [&](store::ImportRecord::Kind k) {
      recs.emplace_back();
      recs.back().kind = k;
      return &recs.back().fields;
    };
    for (int o = 0; o < kOrgs; ++o) {
      std::string org = "o" + std::to_string(o);
      for (int u = 0; u < kUsersPerOrg; ++u) {
        auto* f = rec(store::ImportRecord::Kind::kUser);
        f->user = org + "-u" + std::to_string(u);
        f->email = f->user + "@example.com";
        recs.back().email_verified = true;
      }
      auto* f = rec(store::ImportRecord::Kind::kOrg);
      f->org = org;
      f->user = org + "-u0";
      for (int u = 0; u < kUsersPerOrg; ++u) {
        f = rec(store::ImportRecord::Kind::kOrgMember);
        f->org = org;
        f->user = org + "-u" + std::to_string(u);
        f->role = u == 0 ? "org_admin" : "member";
      }
      for (int w = 0; w < kWsPerOrg; ++w) {
        f = rec(store::ImportRecord::Kind::kWorkspace);
        f->workspace = org + "-w" + std::to_string(w);
        f->org = org;
      }
      for (int u = 1; u < kUsersPerOrg; ++u) {
        f = rec(store::ImportRecord::Kind::kWorkspaceMember);
        f->workspace = org + "-w" + std::to_string(u % kWsPerOrg);
        f->user = org + "-u" + std::to_string(u);
        f->role = u % 3 == 0 ? "manager" : "agent";
        f->team = "t" + std::to_string(u % 2);
      }
    }
    store::ImportStats stats;
    store::Status s = store->Import(recs, &stats);
    if (!s.ok()) {
      std::fprintf(stderr, "import: %s\n", s.ToString().c_str());
      std::abort();
    }
    std::vector<policy::Issue> issues;
    // The shipped policy, found from this source file's location (bench/ -> repo root).
    std::string src = __FILE__;
    std::string root = src.substr(0, src.rfind("/bench/"));
    if (std::getenv("GATEHOUSE_POLICY_DIR")) root.clear();
    std::string pdir = root.empty() ? std::getenv("GATEHOUSE_POLICY_DIR") : root + "/policies/respondio";
    auto pol = policy::LoadPolicyDir(pdir, &issues);
    if (!pol) {
      std::fprintf(stderr, "policy %s: %s\n", pdir.c_str(), issues.empty() ? "?" : issues[0].ToString().c_str());
      std::abort();
    }
    Config cfg;
    service = std::make_unique<Service>(cfg, store.get());
    service->SetPolicy(pol);
    service->PrepareWorkers(1);
    conn = std::make_shared<LocalConnection>();
    conn->peer_.tier = Tier::kReader;
    conn->state_ = service->OnOpen(*conn);

    std::mt19937 rng(42);
    for (int i = 0; i < 1024; ++i) {
      int o = static_cast<int>(rng() % kOrgs);
      int u = 1 + static_cast<int>(rng() % (kUsersPerOrg - 1));
      std::string org = "o" + std::to_string(o);
      std::string user = org + "-u" + std::to_string(u);
      std::string ws = org + "-w" + std::to_string(u % kWsPerOrg);
      allow_lines.push_back(
          R"({"id":)" + std::to_string(i) + R"(,"op":"check","user":")" + user +
          R"(","action":"conversation.reply","workspace":")" + ws +
          R"(","resource":{"type":"conversation","id":"c9","attrs":{"assignee":")" + user +
          R"(","team":"t1"}},"context":{"auth":{"method":"password"},"client":"web"}})");
      std::string other = "o" + std::to_string((o + 1) % kOrgs) + "-w0";
      deny_lines.push_back(R"({"id":)" + std::to_string(i) + R"(,"op":"check","user":")" + user +
                           R"(","action":"workspace.access","workspace":")" + other + R"("})");
    }
    for (int b = 0; b < 16; ++b) {
      std::string line = R"({"op":"check_batch","checks":[)";
      for (int k = 0; k < 100; ++k) {
        int o = static_cast<int>(rng() % kOrgs);
        int u = 1 + static_cast<int>(rng() % (kUsersPerOrg - 1));
        std::string org = "o" + std::to_string(o);
        if (k) line += ",";
        line += R"({"user":")" + org + "-u" + std::to_string(u) +
                R"(","action":"workspace.access","workspace":")" + org + "-w" +
                std::to_string(u % kWsPerOrg) + R"("})";
      }
      batch_lines.push_back(line + "]}");
    }
    // Cerbos' CheckResources shape: one principal, many resources/actions per batch.
    const char* kActions[] = {"conversation.view", "conversation.reply", "conversation.assign",
                              "conversation.comment", "contact.view", "contact.edit",
                              "report.view", "workspace.access"};
    for (int b = 0; b < 16; ++b) {
      int o = static_cast<int>(rng() % kOrgs);
      int u = 1 + static_cast<int>(rng() % (kUsersPerOrg - 1));
      std::string org = "o" + std::to_string(o);
      std::string user = org + "-u" + std::to_string(u);
      std::string ws = org + "-w" + std::to_string(u % kWsPerOrg);
      std::string line = R"({"op":"check_batch","checks":[)";
      for (int k = 0; k < 100; ++k) {
        if (k) line += ",";
        line += R"({"user":")" + user + R"(","action":")" + kActions[k % 8] +
                R"(","workspace":")" + ws + R"(","resource":{"type":"conversation","id":"c)" +
                std::to_string(k) + R"(","attrs":{"assignee":")" +
                (k % 3 ? user : std::string("someone")) + R"("}}})";
      }
      same_principal_batch_lines.push_back(line + "]}");
    }
  }
  ~World() {
    conn->state_.reset();
    service.reset();
    store->Close();
    std::string cmd = "rm -rf " + dir;
    (void)system(cmd.c_str());
  }
};

World& GetWorld() {
  static World* w = new World();
  return *w;
}

const std::string kCheckLine =
    R"({"id":1,"op":"check","user":"u1","action":"conversation.reply","org":"o1","workspace":"w1",)"
    R"("resource":{"type":"conversation","id":"c9","attrs":{"assignee":"u1","team":"t2"}},)"
    R"("context":{"auth":{"method":"sso","idp":"idp-1","age_s":600},"client":"web"},)"
    R"("explain":true,"min_rev":42})";

void BM_DecodeCheck(benchmark::State& state) {
  RequestArena arena;
  Envelope env;
  CheckArgs args;
  Error err;
  for (auto _ : state) {
    bool ok = arena.ParseLine(kCheckLine, &err) && arena.DecodeEnvelope(&env, &err) &&
              arena.DecodeCheck(&args, true, &err);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(args.req.user.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kCheckLine.size()));
}
BENCHMARK(BM_DecodeCheck);

// The same line through the single pass (RequestArena::DecodeRequest, what Service::OnLine
// uses); BM_DecodeCheck above is the general path (node tree, then DecodeCheck).
void BM_DecodeRequestCheck(benchmark::State& state) {
  RequestArena arena;
  Envelope env;
  CheckArgs args;
  Error err;
  for (auto _ : state) {
    bool ok = arena.DecodeRequest(kCheckLine, &env, &err) && arena.DecodeCheck(&args, true, &err);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(args.req.user.data());
  }
  if (!arena.single_pass()) state.SkipWithError("not decoded in one pass");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kCheckLine.size()));
}
BENCHMARK(BM_DecodeRequestCheck);

// A check_batch of 100 items of BM_HandlerCheckBatch100's shape (items per second).
std::string BatchLine() {
  std::string line = R"({"id":7,"op":"check_batch","checks":[)";
  for (int k = 0; k < 100; ++k) {
    if (k) line += ",";
    line += R"({"user":"o)" + std::to_string(k * 7) + "-u" + std::to_string(1 + k % 19) +
            R"(","action":"workspace.access","workspace":"o)" + std::to_string(k * 7) + "-w" +
            std::to_string(k % 5) + R"("})";
  }
  return line + "]}";
}

void BM_DecodeCheckBatch100(benchmark::State& state) {
  const std::string line = BatchLine();
  RequestArena arena;
  Envelope env;
  CheckArgs top;
  Error err;
  for (auto _ : state) {
    bool ok = arena.ParseLine(line, &err) && arena.DecodeEnvelope(&env, &err) &&
              arena.DecodeCheckBatch(&top, &err);
    benchmark::DoNotOptimize(ok);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * 100));
}
BENCHMARK(BM_DecodeCheckBatch100);

void BM_DecodeRequestCheckBatch100(benchmark::State& state) {
  const std::string line = BatchLine();
  RequestArena arena;
  Envelope env;
  CheckArgs top;
  Error err;
  for (auto _ : state) {
    bool ok = arena.DecodeRequest(line, &env, &err) && arena.DecodeCheckBatch(&top, &err);
    benchmark::DoNotOptimize(ok);
  }
  if (!arena.single_pass()) state.SkipWithError("not decoded in one pass");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * 100));
}
BENCHMARK(BM_DecodeRequestCheckBatch100);

void BM_EncodeCheckReply(benchmark::State& state) {
  std::string out;
  out.reserve(256);
  policy::Decision d{true, "ws-role-grants", "granted"};
  for (auto _ : state) {
    out.clear();
    AppendCheckReply(&out, "1", 57, d, true);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_EncodeCheckReply);

void RunLines(benchmark::State& state, const std::vector<std::string>& lines) {
  World& w = GetWorld();
  std::shared_ptr<Connection> c = w.conn;
  std::string out;
  out.reserve(1 << 16);
  size_t i = 0;
  for (auto _ : state) {
    out.clear();
    w.service->OnLine(c, lines[i++ % lines.size()], &out);
    benchmark::DoNotOptimize(out.data());
  }
}

void BM_HandlerCheckAllow(benchmark::State& state) { RunLines(state, GetWorld().allow_lines); }
BENCHMARK(BM_HandlerCheckAllow);

void BM_HandlerCheckDenyCrossTenant(benchmark::State& state) {
  RunLines(state, GetWorld().deny_lines);
}
BENCHMARK(BM_HandlerCheckDenyCrossTenant);

void RunBatches(benchmark::State& state, const std::vector<std::string>& lines) {
  World& w = GetWorld();
  std::shared_ptr<Connection> c = w.conn;
  std::string out;
  out.reserve(1 << 16);
  size_t i = 0;
  for (auto _ : state) {
    out.clear();
    w.service->OnLine(c, lines[i++ % lines.size()], &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * 100));
}

// 100 random (user, workspace) pairs per batch.
void BM_HandlerCheckBatch100(benchmark::State& state) {
  RunBatches(state, GetWorld().batch_lines);
}
BENCHMARK(BM_HandlerCheckBatch100);

// 100 checks of one user in one workspace (different actions and resources) per batch.
void BM_HandlerCheckBatch100SamePrincipal(benchmark::State& state) {
  RunBatches(state, GetWorld().same_principal_batch_lines);
}
BENCHMARK(BM_HandlerCheckBatch100SamePrincipal);

}  // namespace
}  // namespace gatehouse::daemon

BENCHMARK_MAIN();
