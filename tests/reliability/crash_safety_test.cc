// Crash safety: kill -9 the daemon (a forked child running daemon/serve.h Daemon, the code of
// `gatehouse serve`) under concurrent write load at random moments, restart it on the same
// data directory, and check:
//   - every acknowledged write (reply ok:true) is present after the restart;
//   - the revision never goes backwards (across restarts, and >= every acknowledged rev);
//   - `changes` and `watch` from the last revision seen before the crash resume without gaps
//     (consecutive revisions up to the current one).
// Rounds: 5 by default, 50 with GATEHOUSE_LONG_TESTS=1 (GATEHOUSE_CRASH_ROUNDS overrides).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/reliability/daemon_harness.h"

namespace gatehouse::reliability {
namespace {

using Json = nlohmann::json;

Json Parse(const std::string& s) {
  auto j = Json::parse(s, nullptr, false);
  return j.is_discarded() ? Json() : j;
}

uint64_t RevOf(const std::string& reply) {
  Json j = Parse(reply);
  return j.is_object() && j.contains("rev") && j["rev"].is_number_unsigned()
             ? j["rev"].get<uint64_t>()
             : 0;
}

struct Acked {
  std::string user;
  uint64_t rev;
};

// Reads `changes` pages from `since` up to `until`; returns the revisions seen.
std::vector<uint64_t> ReadChanges(const std::string& sock, uint64_t since, uint64_t until) {
  std::vector<uint64_t> revs;
  RawConn c(sock);
  while (c.ok() && since < until) {
    if (!c.Write("{\"op\":\"changes\",\"since\":" + std::to_string(since) + ",\"limit\":500}\n")) break;
    std::string line;
    if (!c.ReadLine(&line)) break;
    Json j = Parse(line);
    if (!j.is_object() || !j.value("ok", false) || !j["changes"].is_array()) break;
    if (j["changes"].empty()) break;
    for (const auto& ch : j["changes"]) {
      revs.push_back(ch["rev"].get<uint64_t>());
      since = revs.back();
    }
  }
  return revs;
}

TEST(CrashSafetyTest, KillNineUnderWriteLoadLosesNothingAcknowledged) {
  const char* rounds_env = std::getenv("GATEHOUSE_CRASH_ROUNDS");
  const int rounds = rounds_env ? std::atoi(rounds_env)
                                : (std::getenv("GATEHOUSE_LONG_TESTS") ? 50 : 5);
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  daemon::Config cfg = TestConfig(dir.path());
  cfg.durable = true;
  const std::string log = dir.path() + "/daemon.log";
  std::mt19937 rng(12345);

  std::vector<Acked> acked;  // every acknowledged write, all rounds
  uint64_t last_seen_rev = 0;  // highest revision observed by any client before the crash
  uint64_t watch_seen = 0;     // last revision the watcher got before the crash
  int64_t total_acked = 0;

  for (int round = 0; round < rounds; ++round) {
    ChildDaemon d;
    std::string err;
    ASSERT_TRUE(d.Start(cfg, log, &err)) << err << " (round " << round << ")";

    // --- After restart: verify everything from earlier rounds. ---
    const uint64_t rev_now = RevOf(Call(cfg.socket_path, R"({"op":"health"})"));
    ASSERT_GE(rev_now, last_seen_rev) << "revision went backwards after restart " << round;
    for (const auto& a : acked) {
      std::string r = Call(cfg.socket_path, R"({"op":"user.get","user":")" + a.user + "\"}");
      ASSERT_NE(r.find("\"ok\":true"), std::string::npos)
          << "acknowledged write lost: user " << a.user << " (rev " << a.rev << "), round "
          << round << ": " << r;
      ASSERT_GE(rev_now, a.rev);
    }
    // changes from the last revision the watcher saw: consecutive, up to rev_now.
    {
      auto revs = ReadChanges(cfg.socket_path, watch_seen, rev_now);
      uint64_t expect = watch_seen + 1;
      for (uint64_t r : revs) {
        ASSERT_EQ(r, expect) << "gap in changes after restart " << round;
        ++expect;
      }
      ASSERT_EQ(expect - 1, rev_now) << "changes did not reach the current revision";
    }
    // watch from the same point: the backlog arrives without gaps.
    {
      RawConn w(cfg.socket_path);
      ASSERT_TRUE(w.Write("{\"op\":\"watch\",\"since\":" + std::to_string(watch_seen) + "}\n"));
      std::string line;
      ASSERT_TRUE(w.ReadLine(&line)) << "no watch ack";
      ASSERT_NE(line.find("\"ok\":true"), std::string::npos) << line;
      uint64_t expect = watch_seen + 1;
      while (expect <= rev_now) {
        ASSERT_TRUE(w.ReadLine(&line)) << "watch stalled at " << expect;
        Json j = Parse(line);
        ASSERT_TRUE(j.is_object() && j.value("event", "") == "change") << line;
        ASSERT_EQ(j["rev"].get<uint64_t>(), expect) << "gap in watch after restart " << round;
        ++expect;
      }
    }

    // --- Load: writers + a watcher, then kill -9 at a random moment. ---
    std::mutex mu;
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> max_rev{rev_now};
    std::atomic<uint64_t> watch_rev{rev_now};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        RawConn c(cfg.socket_path);
        for (int n = 0; c.ok() && !stop.load(); ++n) {
          std::string user = "r" + std::to_string(round) + "t" + std::to_string(t) + "n" +
                             std::to_string(n);
          std::string req = R"({"op":"user.register","user":")" + user + R"(","email":")" +
                            user + "@example.com\"}\n";
          std::string reply;
          if (!c.Write(req, 2000) || !c.ReadLine(&reply, 2000)) break;
          if (reply.find("\"ok\":true") == std::string::npos) continue;
          uint64_t rev = RevOf(reply);
          std::lock_guard<std::mutex> l(mu);
          acked.push_back({user, rev});
          uint64_t m = max_rev.load();
          while (rev > m && !max_rev.compare_exchange_weak(m, rev)) {
          }
        }
      });
    }
    threads.emplace_back([&] {
      RawConn w(cfg.socket_path);
      if (!w.Write("{\"op\":\"watch\",\"since\":" + std::to_string(rev_now) + "}\n")) return;
      std::string line;
      if (!w.ReadLine(&line, 2000)) return;
      uint64_t expect = rev_now + 1;
      while (!stop.load() && w.ReadLine(&line, 2000)) {
        Json j = Parse(line);
        if (!j.is_object() || !j.contains("rev")) break;
        uint64_t r = j["rev"].get<uint64_t>();
        if (r != expect) {
          ADD_FAILURE() << "live watch gap: expected " << expect << " got " << r;
          break;
        }
        watch_rev = r;
        ++expect;
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 400));
    d.Kill9();
    stop = true;
    for (auto& th : threads) th.join();
    last_seen_rev = std::max(last_seen_rev, max_rev.load());
    watch_seen = watch_rev.load();
    total_acked = static_cast<int64_t>(acked.size());
  }
  std::printf("crash safety: %d kill -9 rounds, %lld acknowledged writes verified, last rev %llu\n",
              rounds, static_cast<long long>(total_acked),
              static_cast<unsigned long long>(last_seen_rev));
  EXPECT_GT(total_acked, 0);
}

}  // namespace
}  // namespace gatehouse::reliability
