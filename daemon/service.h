// The protocol v1 service: one declarative command table (op name -> handler, caller tier,
// hot/read/write/admin) and the handlers behind it, wired to the store and the policy.
//
//   hot ops   check, check_batch, list_actions: strict zero-allocation decode (protocol.h), one
//             renewed ReadTxn per worker, the worker's cached compiled policy, reply written
//             by hand into the connection's output buffer. No heap allocation, lock or
//             exception once the connection's buffers have warmed up.
//   reads     list_*, *.get, org.members, changes, watch, health: same ReadTxn; may allocate.
//   writes    decoded with nlohmann_json into a store::WriteRequest; with "actor", authorized
//             inside the store's write transaction by this daemon's policy (WriteRequest::
//             authorize), so the decision and the write see the same state. The reply is sent
//             when the commit is durable (the connection defers meanwhile).
//   admin     stats, policy.reload.
//
// Policy pick-up: the current policy lives behind a mutex with an atomic generation counter;
// each worker caches a shared_ptr and re-reads it (taking the mutex) only when the generation
// changed, so the steady-state request path takes no lock.
//
// min_rev: if the store has not reached min_rev, the connection defers the request and is
// retried on every commit (posted to its worker) until the revision is there or
// min_rev_wait_ms passed (-> stale). No worker ever blocks.
//
// Thread-safety: Handler callbacks run on the connection's worker thread and touch only that
// worker's state. ReloadPolicy/SetPolicy/stats may be called from any thread.
#ifndef GATEHOUSE_DAEMON_SERVICE_H_
#define GATEHOUSE_DAEMON_SERVICE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/server.h"
#include "daemon/stats.h"
#include "policy/policy.h"
#include "store/store.h"

namespace gatehouse::daemon {

class AuditLog;
struct WorkerCtx;
struct OpSpec;

class Service : public Handler {
 public:
  // `store` (and `audit`, if not null) must outlive the service.
  Service(const Config& config, store::Store* store, AuditLog* audit = nullptr);
  ~Service() override;
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Compiles the policy directory off the request path and swaps it in. On failure the
  // current policy stays; *problems lists "file:line:col: message" lines. Returns true iff
  // the new policy is active.
  bool ReloadPolicy(std::vector<std::string>* problems);
  // Installs a compiled policy (startup, tests).
  void SetPolicy(std::shared_ptr<const policy::CompiledPolicy> p);
  bool has_policy() const;

  // Creates per-worker state for `workers` workers (call once, before serving).
  void PrepareWorkers(int workers);
  // Serves through `server`: PrepareWorkers(server->workers()) and subscribes to commits.
  void Attach(Server* server);
  // Unsubscribes from the store (before the server is shut down and the store closed).
  void Detach();

  // Prometheus text exposition of the counters and latency histograms.
  std::string RenderPrometheus() const;

  // Handler.
  std::unique_ptr<ConnectionState> OnOpen(Connection& conn) override;
  Disposition OnLine(const std::shared_ptr<Connection>& conn, std::string_view line,
                     std::string* out) noexcept override;
  void OnDrained(const std::shared_ptr<Connection>& conn) noexcept override;
  void OnTooLarge(Connection& conn, std::string* out) noexcept override;
  std::string RefusalLine() override;

  // Runs on worker `w`: wakes min_rev waiters and pushes new changes to watchers.
  void NotifyWorker(int w) noexcept;

  struct Counters {
    std::atomic<uint64_t> requests{0}, bad_requests{0}, unknown_ops{0}, forbidden{0};
    std::atomic<uint64_t> allow{0}, deny{0}, internal_errors{0}, stale{0}, too_large{0};
    std::atomic<uint64_t> writes_ok{0}, writes_refused{0};
    std::atomic<uint64_t> policy_reloads{0}, policy_reload_failures{0};
    std::atomic<uint64_t> connections_opened{0}, watch_events{0};
    // check_batch lookups answered from the previous item's facts (same principal/scope).
    std::atomic<uint64_t> batch_memo_hits{0};
  };
  const Counters& counters() const { return counters_; }
  // The workers' org caches (StoreFacts), summed: lookups answered from a cache, and lookups
  // that read the store while the cache was usable.
  struct OrgCacheTotals {
    uint64_t hits = 0;
    uint64_t misses = 0;
  };
  OrgCacheTotals OrgCacheCounts() const;

  struct Ctx;  // one request being handled (service.cc)

 private:
  friend struct OpTable;

  // The worker's cached policy (refreshed when the generation changed); null if none.
  const policy::CompiledPolicy* CurrentPolicy(WorkerCtx& w);
  void RecordPolicyInfo(const policy::CompiledPolicy& p);

  Disposition Dispatch(Ctx& c);
  // Hot.
  Disposition Check(Ctx& c);
  Disposition CheckBatch(Ctx& c);
  Disposition ListActions(Ctx& c);
  // Reads.
  Disposition ListWorkspaces(Ctx& c);
  Disposition ListOrgs(Ctx& c);
  Disposition ListUsers(Ctx& c);
  Disposition UserGet(Ctx& c);
  Disposition OrgGet(Ctx& c);
  Disposition OrgMembers(Ctx& c);
  Disposition WorkspaceGet(Ctx& c);
  Disposition InvitationGet(Ctx& c);
  Disposition Changes(Ctx& c);
  Disposition Watch(Ctx& c);
  Disposition Health(Ctx& c);
  // Admin.
  Disposition Stats(Ctx& c);
  Disposition PolicyReload(Ctx& c);
  // Writes.
  Disposition Write(Ctx& c);

  void PumpWatch(const std::shared_ptr<Connection>& conn, std::string* out) noexcept;
  void Audit(std::string line) noexcept;

  Config config_;
  store::Store* store_;
  AuditLog* audit_;
  Server* server_ = nullptr;
  uint64_t subscription_ = 0;
  bool subscribed_ = false;
  std::chrono::steady_clock::time_point started_;

  // Policy: guarded by policy_mu_; generation bumped after each swap.
  mutable std::mutex policy_mu_;
  std::shared_ptr<const policy::CompiledPolicy> policy_;   // GUARDED_BY(policy_mu_)
  std::string policy_summary_json_;                          // GUARDED_BY(policy_mu_)
  std::vector<std::string> last_reload_problems_;            // GUARDED_BY(policy_mu_)
  std::atomic<uint64_t> policy_generation_{0};

  std::vector<std::unique_ptr<WorkerCtx>> workers_;

  Counters counters_;
  std::unique_ptr<OpStats[]> op_stats_;  // one per command table entry
};

}  // namespace gatehouse::daemon

#endif  // GATEHOUSE_DAEMON_SERVICE_H_
