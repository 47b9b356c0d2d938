// Fuzzes the protocol v1 request decoder + dispatcher end to end: Service::OnLine (tier checks,
// the command table, every op's decoding, the hot path, reads, writes through the store's
// authorize hook, watch) over an in-memory store seeded with a small world and a small policy
// (fuzz/policy/). No socket: a fake Connection collects replies.
//
// Input: first byte picks the caller's tier (none/reader/writer/operator); the rest is request
// lines separated by '\n', sent in order on one connection (so state carries across lines).
// Oracles: nothing crashes or hangs; every line gets exactly one reply line of valid JSON whose
// "ok" is a bool (a watch ack may be followed by change events); a caller below the writer tier never changes the store's revision.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/config.h"
#include "daemon/server.h"
#include "daemon/service.h"
#include "policy/policy.h"
#include "store/memory_store.h"
#include "store/store.h"

namespace gd = gatehouse::daemon;
namespace gs = gatehouse::store;
namespace gp = gatehouse::policy;

namespace {

class FakeConn final : public gd::Connection {
 public:
  explicit FakeConn(gd::Tier tier) { peer_.uid = 1000, peer_.tier = tier; }
  const gd::Peer& peer() const noexcept override { return peer_; }
  int worker() const noexcept override { return 0; }
  uint64_t id() const noexcept override { return 1; }
  gd::ConnectionState* state() noexcept override { return state_.get(); }
  void Finish(std::string reply) override {
    std::lock_guard<std::mutex> l(mu_);
    finished_ = true;
    reply_ = std::move(reply);
    cv_.notify_all();
  }
  void Retry() override {
    std::lock_guard<std::mutex> l(mu_);
    retry_ = true;
    cv_.notify_all();
  }
  void RunAfter(std::chrono::milliseconds, std::function<void()> fn) override {
    timers_.push_back(std::move(fn));
  }
  void Push(std::string_view data) override { pushed_.append(data); }
  size_t pending_output() const noexcept override { return 0; }
  void SetStreaming(bool) noexcept override {}
  bool closed() const noexcept override { return false; }

  // Waits for Finish or Retry. Returns 1 = finished (*reply set), 2 = retry, 0 = timeout.
  int Wait(std::string* reply) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, std::chrono::seconds(5), [&] { return finished_ || retry_; });
    if (finished_) {
      finished_ = false;
      *reply = std::move(reply_);
      return 1;
    }
    if (retry_) {
      retry_ = false;
      return 2;
    }
    return 0;
  }
  void RunTimers() {
    auto t = std::move(timers_);
    timers_.clear();
    for (auto& fn : t) fn();
  }

  std::unique_ptr<gd::ConnectionState> state_;
  std::string pushed_;

 private:
  gd::Peer peer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false, retry_ = false;
  std::string reply_;
  std::deque<std::function<void()>> timers_;
};

std::shared_ptr<const gp::CompiledPolicy> Policy() {
  static std::shared_ptr<const gp::CompiledPolicy> p = [] {
    std::vector<gp::Issue> issues;
    auto r = gp::LoadPolicyDir(GATEHOUSE_FUZZ_POLICY_DIR, &issues);
    if (!r) __builtin_trap();
    return r;
  }();
  return p;
}

void Seed(gs::Store* s) {
  auto w = [&](gs::WriteRequest r) { (void)s->Write(std::move(r)); };
  for (const char* u : {"u1", "u2", "u3"}) {
    gs::WriteRequest r;
    r.op = "user.register";
    r.user = u;
    r.email = std::string(u) + "@example.com";
    w(r);
    r.op = "user.verify_email";
    w(r);
  }
  gs::WriteRequest r;
  r.op = "org.create";
  r.user = "u1";
  r.org = "o1";
  r.name = "Org One";
  r.workspace = "w1";
  w(r);
  gs::WriteRequest m;
  m.op = "workspace.set_member";
  m.workspace = "w1";
  m.user = "u2";
  m.role = "agent";
  w(m);
}

void CheckReply(std::string_view reply) {
  // One reply line (a valid JSON object with a boolean "ok"); after a watch ack, change events
  // ({"event":"change",...}) may follow on the same connection.
  if (reply.empty() || reply.back() != '\n') __builtin_trap();
  bool first = true;
  while (!reply.empty()) {
    size_t nl = reply.find('\n');
    std::string_view line = reply.substr(0, nl);
    reply.remove_prefix(nl + 1);
    auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) __builtin_trap();
    if (first) {
      if (!j.contains("ok") || !j["ok"].is_boolean()) __builtin_trap();
    } else if (!j.contains("event")) {
      __builtin_trap();
    }
    first = false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 1 << 15) return 0;
  static const gd::Tier kTiers[] = {gd::Tier::kNone, gd::Tier::kReader, gd::Tier::kWriter,
                                    gd::Tier::kOperator};
  const gd::Tier tier = kTiers[data[0] % 4];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  gs::Options so;
  so.clock = [] { return int64_t{1700000000}; };
  std::unique_ptr<gs::Store> store;
  if (!gs::OpenMemoryStore(so, &store).ok()) __builtin_trap();
  Seed(store.get());

  gd::Config cfg;
  cfg.policy_dir = GATEHOUSE_FUZZ_POLICY_DIR;
  cfg.min_rev_wait_ms = 0;
  cfg.max_output_bytes = 1 << 20;
  cfg.watch_policy = false;
  {
    gd::Service svc(cfg, store.get());
    svc.SetPolicy(Policy());
    svc.PrepareWorkers(1);
    auto conn = std::make_shared<FakeConn>(tier);
    conn->state_ = svc.OnOpen(*conn);
    const uint64_t rev0 = store->Revision();
    int lines = 0;
    while (!in.empty() && lines < 16) {
      size_t nl = in.find('\n');
      std::string_view line = in.substr(0, nl);
      in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
      ++lines;
      std::string out;
      auto d = svc.OnLine(conn, line, &out);
      int rounds = 0;
      while (d == gd::Handler::Disposition::kDeferred) {
        if (++rounds > 8) __builtin_trap();  // a deferred request must complete
        std::string reply;
        int w = conn->Wait(&reply);
        if (w == 1) {
          out = std::move(reply);
          break;
        }
        if (w == 2) {
          d = svc.OnLine(conn, line, &out);
          continue;
        }
        conn->RunTimers();
      }
      CheckReply(out);
      svc.OnDrained(conn);
    }
    if (tier < gd::Tier::kWriter && store->Revision() != rev0) __builtin_trap();
    svc.OnClose(*conn);
    conn->state_.reset();
  }
  store->Close();
  return 0;
}
