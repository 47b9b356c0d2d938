#include "daemon/service.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "daemon/audit_log.h"
#include "daemon/facts_adapter.h"
#include "daemon/json_writer.h"
#include "daemon/log.h"
#include "daemon/protocol.h"

namespace gatehouse::daemon {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Per-worker and per-connection state
// ---------------------------------------------------------------------------------------------

struct WorkerCtx {
  std::unique_ptr<store::ReadTxn> txn;
  StoreFacts facts;
  std::shared_ptr<const policy::CompiledPolicy> policy;
  uint64_t policy_generation = UINT64_MAX;
  std::vector<uint32_t> actions;  // list_actions scratch, sized to the catalog
  std::vector<std::weak_ptr<Connection>> waiters;   // min_rev waits
  std::vector<std::weak_ptr<Connection>> watchers;  // watch streams
};

namespace {

struct ConnState : ConnectionState {
  RequestArena arena;
  bool waiting = false;  // a min_rev wait is in progress for the deferred request
  Clock::time_point wait_deadline;
  bool watching = false;
  uint64_t watch_rev = 0;  // last change revision sent
  std::string batch_tmp;
};

// Renews the worker's read transaction for one request; resets it on scope exit.
class TxnScope {
 public:
  explicit TxnScope(store::ReadTxn* t) : t_(t) { ok_ = t_->Renew(); }
  ~TxnScope() { t_->Reset(); }
  bool ok() const { return ok_; }

 private:
  store::ReadTxn* t_;
  bool ok_;
};

ErrorCode FromStoreCode(store::Code c) {
  switch (c) {
    case store::Code::kOk: return ErrorCode::kInternal;
    case store::Code::kBadRequest: return ErrorCode::kBadRequest;
    case store::Code::kNotFound: return ErrorCode::kNotFound;
    case store::Code::kConflict: return ErrorCode::kConflict;
    case store::Code::kLimitExceeded: return ErrorCode::kLimitExceeded;
    case store::Code::kForbidden: return ErrorCode::kForbidden;
    case store::Code::kUnavailable: return ErrorCode::kUnavailable;
    case store::Code::kInternal: return ErrorCode::kInternal;
  }
  return ErrorCode::kInternal;
}

// The store code a policy deny maps to when it refuses a write (protocol.md: locked or
// suspended orgs are `conflict`, seats / workspace limit are `limit_exceeded`).
store::Code DenyCode(std::string_view reason) {
  if (reason == "org_locked" || reason == "org_suspended") return store::Code::kConflict;
  if (reason == "not_found") return store::Code::kNotFound;
  if (reason == "internal") return store::Code::kInternal;
  if (reason.find("seat") != std::string_view::npos ||
      reason.find("limit") != std::string_view::npos ||
      reason.find("allowance") != std::string_view::npos)
    return store::Code::kLimitExceeded;
  return store::Code::kForbidden;
}

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// check_batch: facts shared by consecutive items
// ---------------------------------------------------------------------------------------------

namespace {

// Wraps the worker's StoreFacts for the items of one check_batch (one snapshot) and answers a
// lookup from the previous answer of the same kind when the arguments are equal, so a batch with
// one principal and many resources/actions (Cerbos' CheckResources shape) reads the store once.
//
// Correctness: each kind remembers exactly ONE answer, the inner adapter's latest one of that
// kind, so every view in it is still valid under the adapter's contract (views live until the
// snapshot ends and until the adapter's next lookup of the same kind; only this wrapper calls
// the adapter during the batch). Keys are compared by value (never by pointer), so a different
// user, org or workspace always goes to the store. Only found/not-found answers are kept; an
// error is passed through and forgets the entry (Reader::error() is sticky for the snapshot, so
// every later item fails closed exactly as without the memo). Attr() is passed through.
class BatchFacts final : public policy::Facts {
 public:
  explicit BatchFacts(policy::Facts* inner) noexcept : inner_(inner) {}

  policy::Lookup User(std::string_view user, policy::UserFacts* out) noexcept override {
    return Memo(user_, user, {}, out, [&] { return inner_->User(user, out); });
  }
  policy::Lookup Org(std::string_view org, policy::OrgFacts* out) noexcept override {
    return Memo(org_, org, {}, out, [&] { return inner_->Org(org, out); });
  }
  policy::Lookup Workspace(std::string_view ws, policy::WorkspaceFacts* out) noexcept override {
    return Memo(ws_, ws, {}, out, [&] { return inner_->Workspace(ws, out); });
  }
  policy::Lookup OrgMembership(std::string_view user, std::string_view org,
                               policy::OrgMembershipFacts* out) noexcept override {
    return Memo(om_, user, org, out, [&] { return inner_->OrgMembership(user, org, out); });
  }
  policy::Lookup WorkspaceMembership(std::string_view user, std::string_view ws,
                                     policy::WorkspaceMembershipFacts* out) noexcept override {
    return Memo(wm_, user, ws, out,
                [&] { return inner_->WorkspaceMembership(user, ws, out); });
  }
  policy::Lookup Attr(Entity entity, std::string_view id, std::string_view key,
                      policy::Value* out) noexcept override {
    return inner_->Attr(entity, id, key, out);
  }

  uint64_t hits() const noexcept { return hits_; }

 private:
  template <typename T>
  struct Entry {
    bool valid = false;
    std::string_view k1, k2;  // views into the request line (alive for the whole batch)
    policy::Lookup result = policy::Lookup::kNotFound;
    T value{};
  };

  template <typename T, typename Fn>
  policy::Lookup Memo(Entry<T>& e, std::string_view k1, std::string_view k2, T* out,
                      Fn&& lookup) noexcept {
    if (e.valid && e.k1 == k1 && e.k2 == k2) {
      ++hits_;
      if (e.result == policy::Lookup::kFound) *out = e.value;
      return e.result;
    }
    policy::Lookup r = lookup();
    if (r == policy::Lookup::kError) {
      e.valid = false;
      return r;
    }
    e.valid = true;
    e.k1 = k1;
    e.k2 = k2;
    e.result = r;
    if (r == policy::Lookup::kFound) e.value = *out;
    return r;
  }

  policy::Facts* inner_;
  Entry<policy::UserFacts> user_;
  Entry<policy::OrgFacts> org_;
  Entry<policy::WorkspaceFacts> ws_;
  Entry<policy::OrgMembershipFacts> om_;
  Entry<policy::WorkspaceMembershipFacts> wm_;
  uint64_t hits_ = 0;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Command table
// ---------------------------------------------------------------------------------------------

enum class OpKind : uint8_t { kHot, kRead, kWrite, kAdmin };

struct OpSpec {
  std::string_view name;
  Tier tier;  // minimum caller tier (writes: writer with actor, operator without)
  OpKind kind;
  Handler::Disposition (Service::*fn)(Service::Ctx&);
  // Writes only.
  const char* action = nullptr;  // action checked for the actor; nullptr: none
  bool operator_only = false;    // even with an actor
  bool self_only = false;        // with an actor: actor must equal `user`
  const char* required[5] = {};  // required string/number fields
};

struct Service::Ctx {
  const std::shared_ptr<Connection>& conn;
  ConnState& st;
  WorkerCtx& w;
  std::string_view line;
  Envelope env;
  std::string* out;
  const OpSpec* spec = nullptr;
  size_t op_index = 0;
  Clock::time_point t0;
};

struct OpTable {
  using S = Service;
  static const std::vector<OpSpec>& Get() {
    static const std::vector<OpSpec> kOps = {
        // op                     tier            kind           handler
        {"check", Tier::kReader, OpKind::kHot, &S::Check},
        {"check_batch", Tier::kReader, OpKind::kHot, &S::CheckBatch},
        {"list_actions", Tier::kReader, OpKind::kHot, &S::ListActions},
        {"list_workspaces", Tier::kReader, OpKind::kRead, &S::ListWorkspaces},
        {"list_orgs", Tier::kReader, OpKind::kRead, &S::ListOrgs},
        {"list_users", Tier::kReader, OpKind::kRead, &S::ListUsers},
        {"user.get", Tier::kReader, OpKind::kRead, &S::UserGet},
        {"org.get", Tier::kReader, OpKind::kRead, &S::OrgGet},
        {"org.members", Tier::kReader, OpKind::kRead, &S::OrgMembers},
        {"workspace.get", Tier::kReader, OpKind::kRead, &S::WorkspaceGet},
        {"invitation.get", Tier::kReader, OpKind::kRead, &S::InvitationGet},
        {"changes", Tier::kReader, OpKind::kRead, &S::Changes},
        {"watch", Tier::kReader, OpKind::kRead, &S::Watch},
        {"health", Tier::kReader, OpKind::kRead, &S::Health},
        {"stats", Tier::kOperator, OpKind::kAdmin, &S::Stats},
        {"policy.reload", Tier::kOperator, OpKind::kAdmin, &S::PolicyReload},
        // writes: op, tier, kind, fn, action, operator_only, self_only, required
        {"user.register", Tier::kWriter, OpKind::kWrite, &S::Write, nullptr, false, true,
         {"user", "email"}},
        {"user.verify_email", Tier::kWriter, OpKind::kWrite, &S::Write, nullptr, false, true,
         {"user"}},
        {"user.set_org_allowance", Tier::kOperator, OpKind::kWrite, &S::Write, nullptr, true,
         false, {"user", "allowance"}},
        {"org.create", Tier::kWriter, OpKind::kWrite, &S::Write, nullptr, false, true,
         {"user", "org", "name"}},
        {"org.update", Tier::kWriter, OpKind::kWrite, &S::Write, "org.settings.general.manage",
         false, false, {"org"}},
        {"org.delete", Tier::kWriter, OpKind::kWrite, &S::Write, "org.delete", false, false,
         {"org"}},
        {"org.set_subscription", Tier::kWriter, OpKind::kWrite, &S::Write,
         "org.subscription.change", false, false, {"org"}},
        {"org.set_security", Tier::kWriter, OpKind::kWrite, &S::Write, "org.security.sso.manage",
         false, false, {"org", "sso"}},
        {"org.suspend", Tier::kOperator, OpKind::kWrite, &S::Write, nullptr, true, false,
         {"org"}},
        {"org.unsuspend", Tier::kOperator, OpKind::kWrite, &S::Write, nullptr, true, false,
         {"org"}},
        {"org.invite", Tier::kWriter, OpKind::kWrite, &S::Write, "org.users.invite", false,
         false, {"org", "email", "role"}},
        {"invite.accept", Tier::kWriter, OpKind::kWrite, &S::Write, nullptr, false, true,
         {"user", "token"}},
        {"invite.revoke", Tier::kWriter, OpKind::kWrite, &S::Write, "org.users.invite", false,
         false, {"invitation"}},
        {"invite.resend", Tier::kWriter, OpKind::kWrite, &S::Write, "org.users.invite", false,
         false, {"invitation"}},
        {"org.set_role", Tier::kWriter, OpKind::kWrite, &S::Write, "org.users.role.assign",
         false, false, {"org", "user", "role"}},
        {"org.remove_member", Tier::kWriter, OpKind::kWrite, &S::Write, "org.users.remove",
         false, false, {"org", "user"}},
        {"org.leave", Tier::kWriter, OpKind::kWrite, &S::Write, nullptr, false, true,
         {"org", "user"}},
        {"workspace.create", Tier::kWriter, OpKind::kWrite, &S::Write, "workspace.create", false,
         false, {"org", "workspace", "name"}},
        {"workspace.update", Tier::kWriter, OpKind::kWrite, &S::Write, "workspace.update", false,
         false, {"workspace"}},
        {"workspace.delete", Tier::kWriter, OpKind::kWrite, &S::Write, "workspace.delete", false,
         false, {"workspace"}},
        {"workspace.set_member", Tier::kWriter, OpKind::kWrite, &S::Write,
         "workspace.users.role.change", false, false, {"workspace", "user", "role"}},
        {"workspace.remove_member", Tier::kWriter, OpKind::kWrite, &S::Write,
         "workspace.users.remove", false, false, {"workspace", "user"}},
    };
    return kOps;
  }
  static const OpSpec* Find(std::string_view name, size_t* index) {
    const auto& ops = Get();
    for (size_t i = 0; i < ops.size(); ++i) {
      if (ops[i].name == name) {
        *index = i;
        return &ops[i];
      }
    }
    return nullptr;
  }
};

// ---------------------------------------------------------------------------------------------
// Lifecycle, policy
// ---------------------------------------------------------------------------------------------

Service::Service(const Config& config, store::Store* store, AuditLog* audit)
    : config_(config), store_(store), audit_(audit), started_(Clock::now()) {
  op_stats_ = std::make_unique<OpStats[]>(OpTable::Get().size());
}

Service::~Service() { Detach(); }

void Service::PrepareWorkers(int workers) {
  workers_.clear();
  for (int i = 0; i < workers; ++i) {
    auto w = std::make_unique<WorkerCtx>();
    w->txn = store_->NewReadTxn();
    w->facts.set_reader(w->txn.get());
    w->facts.SetOrgCacheEntries(config_.org_cache_entries);
    w->waiters.reserve(64);
    workers_.push_back(std::move(w));
  }
}

void Service::Attach(Server* server) {
  server_ = server;
  PrepareWorkers(server->workers());
  subscription_ = store_->Subscribe([this](uint64_t) {
    if (!server_) return;
    for (int i = 0; i < server_->workers(); ++i) {
      server_->Post(i, [this, i] { NotifyWorker(i); });
    }
  });
  subscribed_ = true;
}

void Service::Detach() {
  if (subscribed_) {
    store_->Unsubscribe(subscription_);
    subscribed_ = false;
  }
}

void Service::RecordPolicyInfo(const policy::CompiledPolicy& p) {
  policy::PolicyInfo info = policy::Info(p);
  Json j = {{"name", info.name},       {"digest", info.digest}, {"files", info.files},
            {"rules", info.rules},     {"roles", info.roles},   {"actions", info.actions},
            {"program_actions", info.program_actions}, {"program_steps", info.program_steps},
            {"loaded_at", NowUnix()}};
  policy_summary_json_ = j.dump();
}

void Service::SetPolicy(std::shared_ptr<const policy::CompiledPolicy> p) {
  std::lock_guard<std::mutex> l(policy_mu_);
  policy_ = std::move(p);
  if (policy_) RecordPolicyInfo(*policy_);
  last_reload_problems_.clear();
  policy_generation_.fetch_add(1, std::memory_order_release);
}

bool Service::has_policy() const {
  std::lock_guard<std::mutex> l(policy_mu_);
  return policy_ != nullptr;
}

bool Service::ReloadPolicy(std::vector<std::string>* problems) {
  std::vector<policy::Issue> issues;
  std::shared_ptr<const policy::CompiledPolicy> p;
  try {
    p = policy::LoadPolicyDir(config_.policy_dir, &issues);
  } catch (const std::exception& e) {
    issues.push_back(policy::Issue{config_.policy_dir, 0, 0, std::string("load failed: ") + e.what()});
  }
  Bump(counters_.policy_reloads);
  if (!p) {
    Bump(counters_.policy_reload_failures);
    std::vector<std::string> lines;
    for (const auto& i : issues) lines.push_back(i.ToString());
    if (lines.empty()) lines.push_back(config_.policy_dir + ":0:0: policy failed to load");
    {
      std::lock_guard<std::mutex> l(policy_mu_);
      last_reload_problems_ = lines;
    }
    Log(LogLevel::kError, "policy reload failed; keeping the current policy",
        {{"dir", config_.policy_dir}, {"problems", lines}});
    if (problems) *problems = std::move(lines);
    return false;
  }
  SetPolicy(std::move(p));
  policy::PolicyInfo info;
  {
    std::lock_guard<std::mutex> l(policy_mu_);
    info = policy::Info(*policy_);
  }
  Log(LogLevel::kInfo, "policy loaded",
      {{"dir", config_.policy_dir}, {"name", info.name}, {"digest", info.digest},
       {"rules", info.rules}, {"generation", policy_generation_.load()}});
  if (problems) problems->clear();
  return true;
}

const policy::CompiledPolicy* Service::CurrentPolicy(WorkerCtx& w) {
  uint64_t g = policy_generation_.load(std::memory_order_acquire);
  if (g != w.policy_generation) {
    std::lock_guard<std::mutex> l(policy_mu_);
    w.policy = policy_;
    w.policy_generation = policy_generation_.load(std::memory_order_relaxed);
    if (w.policy) w.actions.resize(policy::ActionCount(*w.policy));
  }
  return w.policy.get();
}

void Service::Audit(std::string line) noexcept {
  if (audit_) audit_->Append(std::move(line));
}

// ---------------------------------------------------------------------------------------------
// Handler entry points
// ---------------------------------------------------------------------------------------------

std::unique_ptr<ConnectionState> Service::OnOpen(Connection& conn) {
  (void)conn;
  Bump(counters_.connections_opened);
  return std::make_unique<ConnState>();
}

void Service::OnTooLarge(Connection& conn, std::string* out) noexcept {
  (void)conn;
  Bump(counters_.too_large);
  char msg[96];
  std::snprintf(msg, sizeof(msg), "request line exceeds max_line (%zu bytes); closing",
                config_.max_line);
  AppendError(out, "null", ErrorCode::kTooLarge, msg);
}

std::string Service::RefusalLine() {
  std::string out;
  AppendError(&out, "null", ErrorCode::kUnavailable, "too many connections");
  return out;
}

Handler::Disposition Service::OnLine(const std::shared_ptr<Connection>& conn,
                                     std::string_view line, std::string* out) noexcept {
  auto* st = static_cast<ConnState*>(conn->state());
  WorkerCtx& w = *workers_[static_cast<size_t>(conn->worker())];
  Ctx c{conn, *st, w, line, Envelope(), out};
  c.t0 = Clock::now();
  Bump(counters_.requests);
  Error err;
  // check / check_batch / list_actions in their common shape are decoded here in one pass;
  // the handlers' Decode* calls then return the result (protocol.h).
  if (!st->arena.DecodeRequest(line, &c.env, &err)) {
    Bump(counters_.bad_requests);
    AppendError(out, c.env.id_raw, err);
    return Disposition::kDone;
  }
  if (st->watching) {
    AppendError(out, c.env.id_raw, ErrorCode::kBadRequest,
                "this connection is watching; open another connection for requests");
    return Disposition::kDone;
  }
  c.spec = OpTable::Find(c.env.op, &c.op_index);
  if (!c.spec) {
    Bump(counters_.unknown_ops);
    char msg[200];
    std::snprintf(msg, sizeof(msg), "unknown op '%.*s'",
                  static_cast<int>(std::min<size_t>(c.env.op.size(), 100)), c.env.op.data());
    AppendError(out, c.env.id_raw, ErrorCode::kUnknownOp, msg);
    return Disposition::kDone;
  }
  OpStats& os = op_stats_[c.op_index];
  Bump(os.requests);
  Disposition d;
  try {
    d = Dispatch(c);
  } catch (const std::exception& e) {
    // Only cold paths can throw (nlohmann, allocation); the request fails, the daemon lives.
    Bump(counters_.internal_errors);
    Log(LogLevel::kError, "request failed", {{"op", std::string(c.env.op)}, {"error", e.what()}});
    AppendError(out, c.env.id_raw, ErrorCode::kInternal, "internal error");
    d = Disposition::kDone;
  }
  if (d == Disposition::kDone) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - c.t0).count();
    os.latency.Record(static_cast<uint64_t>(ns));
  }
  return d;
}

Handler::Disposition Service::Dispatch(Ctx& c) {
  const OpSpec& s = *c.spec;
  Tier tier = c.conn->peer().tier;
  Tier need = s.tier;
  if (s.kind == OpKind::kWrite && !s.operator_only) {
    bool has_actor = c.st.arena.doc().Find(0, "actor") != json::Document::kNone;
    need = has_actor ? Tier::kWriter : Tier::kOperator;
  }
  if (tier < need) {
    Bump(counters_.forbidden);
    Bump(op_stats_[c.op_index].errors);
    char msg[200];
    std::snprintf(msg, sizeof(msg), "op '%.*s'%s needs the %s tier; this caller (uid %u) is %s",
                  static_cast<int>(s.name.size()), s.name.data(),
                  s.kind == OpKind::kWrite && !s.operator_only && need == Tier::kOperator
                      ? " without 'actor'"
                      : "",
                  TierName(need), c.conn->peer().uid, TierName(tier));
    AppendError(c.out, c.env.id_raw, ErrorCode::kForbidden, msg);
    return Disposition::kDone;
  }
  if (!CurrentPolicy(c.w)) {
    AppendError(c.out, c.env.id_raw, ErrorCode::kUnavailable, "no policy loaded");
    return Disposition::kDone;
  }
  // min_rev for everything that reads.
  if (s.kind == OpKind::kHot || s.kind == OpKind::kRead) {
    bool has = false;
    uint64_t min_rev = 0;
    Error err;
    if (!c.st.arena.DecodeMinRev(&has, &min_rev, &err)) {
      Bump(counters_.bad_requests);
      AppendError(c.out, c.env.id_raw, err);
      return Disposition::kDone;
    }
    if (has && store_->Revision() < min_rev) {
      auto now = Clock::now();
      if (!c.st.waiting) {
        c.st.waiting = true;
        auto wait = std::chrono::milliseconds(config_.min_rev_wait_ms);
        c.st.wait_deadline = now + wait;
        std::weak_ptr<Connection> weak = c.conn;
        c.conn->RunAfter(wait, [weak] {
          if (auto conn = weak.lock()) conn->Retry();
        });
      }
      if (now >= c.st.wait_deadline) {
        c.st.waiting = false;
        Bump(counters_.stale);
        Bump(op_stats_[c.op_index].errors);
        char msg[160];
        std::snprintf(msg, sizeof(msg),
                      "store revision %" PRIu64 " has not reached min_rev %" PRIu64
                      " within %u ms",
                      store_->Revision(), min_rev, config_.min_rev_wait_ms);
        AppendError(c.out, c.env.id_raw, ErrorCode::kStale, msg);
        return Disposition::kDone;
      }
      c.w.waiters.push_back(c.conn);
      return Disposition::kDeferred;
    }
    c.st.waiting = false;
  }
  return (this->*s.fn)(c);
}

void Service::NotifyWorker(int wi) noexcept {
  WorkerCtx& w = *workers_[static_cast<size_t>(wi)];
  if (!w.waiters.empty()) {
    std::vector<std::weak_ptr<Connection>> waiters;
    waiters.swap(w.waiters);
    for (auto& weak : waiters) {
      if (auto c = weak.lock()) c->Retry();
    }
  }
  for (size_t i = 0; i < w.watchers.size();) {
    auto c = w.watchers[i].lock();
    if (!c || c->closed()) {
      w.watchers[i] = w.watchers.back();
      w.watchers.pop_back();
      continue;
    }
    std::string out;
    PumpWatch(c, &out);
    if (!out.empty()) c->Push(out);
    ++i;
  }
}

void Service::OnDrained(const std::shared_ptr<Connection>& conn) noexcept {
  auto* st = static_cast<ConnState*>(conn->state());
  if (!st || !st->watching) return;
  std::string out;
  PumpWatch(conn, &out);
  if (!out.empty()) conn->Push(out);
}

void Service::PumpWatch(const std::shared_ptr<Connection>& conn, std::string* out) noexcept {
  auto* st = static_cast<ConnState*>(conn->state());
  WorkerCtx& w = *workers_[static_cast<size_t>(conn->worker())];
  try {
    // Stop at half the output bound; OnDrained resumes once the client has read.
    while (conn->pending_output() + out->size() < config_.max_output_bytes / 2) {
      if (st->watch_rev >= store_->Revision()) return;
      std::vector<store::ChangeView> changes;
      TxnScope txn(w.txn.get());
      if (!txn.ok() || !w.txn->ReadChanges(st->watch_rev, 256, &changes)) {
        Log(LogLevel::kError, "watch: reading changes failed", {{"since", st->watch_rev}});
        return;
      }
      if (changes.empty()) return;
      for (const auto& ch : changes) {
        out->append("{\"event\":\"change\",");
        if (ch.json.size() > 1 && ch.json[0] == '{') {
          out->append(ch.json.substr(1));
        } else {
          out->append("\"rev\":");
          json::AppendUint(out, ch.rev);
          out->append("}");
        }
        out->push_back('\n');
        st->watch_rev = ch.rev;
        Bump(counters_.watch_events);
      }
    }
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "watch failed", {{"error", e.what()}});
  }
}

// ---------------------------------------------------------------------------------------------
// Reply helpers
// ---------------------------------------------------------------------------------------------

namespace {

// {"id":X,"ok":true,"rev":N, <members of extra>}\n
void AppendOk(std::string* out, std::string_view id_raw, uint64_t rev, const Json& extra) {
  AppendReplyStart(out, id_raw);
  out->append(",\"rev\":");
  json::AppendUint(out, rev);
  if (extra.is_object() && !extra.empty()) {
    std::string body = extra.dump(-1, ' ', false, Json::error_handler_t::replace);
    out->push_back(',');
    out->append(body, 1, body.size() - 2);
  }
  out->append("}\n");
}

Json AttrsJson(const store::AttrsView& attrs) {
  Json j = Json::object();
  attrs.ForEach([&](std::string_view k, const store::AttrValue& v) {
    std::string key(k);
    switch (v.kind) {
      case store::AttrValue::Kind::kNull: j[key] = nullptr; break;
      case store::AttrValue::Kind::kBool: j[key] = v.b; break;
      case store::AttrValue::Kind::kInt: j[key] = v.i; break;
      case store::AttrValue::Kind::kDouble: j[key] = v.d; break;
      case store::AttrValue::Kind::kString: j[key] = std::string(v.s); break;
    }
  });
  return j;
}

Json ListJson(const store::StringListView& l) {
  Json j = Json::array();
  l.ForEach([&](std::string_view s) { j.push_back(std::string(s)); });
  return j;
}

std::string S(std::string_view v) { return std::string(v); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Hot ops
// ---------------------------------------------------------------------------------------------

Handler::Disposition Service::Check(Ctx& c) {
  CheckArgs a;
  Error err;
  if (!c.st.arena.DecodeCheck(&a, true, &err)) {
    Bump(counters_.bad_requests);
    Bump(op_stats_[c.op_index].errors);
    AppendError(c.out, c.env.id_raw, err);
    return Disposition::kDone;
  }
  const policy::CompiledPolicy& p = *c.w.policy;
  TxnScope txn(c.w.txn.get());
  policy::Decision d;
  if (!txn.ok()) {
    d.allow = false;
    d.reason = "internal";
  } else {
    d = policy::Evaluate(p, a.req, c.w.facts);
    if (c.w.txn->error()) {
      d.allow = false;
      d.reason = "internal";
    }
  }
  if (d.reason == "internal") Bump(counters_.internal_errors);
  Bump(d.allow ? counters_.allow : counters_.deny);
  AppendCheckReply(c.out, c.env.id_raw, c.w.txn->Revision(), d, a.explain);
  if (config_.log_decisions && audit_) {
    Json j = {{"ts", NowUnix()},         {"type", "check"},         {"uid", c.conn->peer().uid},
              {"user", S(a.req.user)},   {"action", S(a.req.action)}, {"org", S(a.req.org)},
              {"workspace", S(a.req.workspace)}, {"allow", d.allow},  {"reason", S(d.reason)},
              {"rule", S(d.rule)},       {"rev", c.w.txn->Revision()}};
    Audit(j.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  return Disposition::kDone;
}

Handler::Disposition Service::CheckBatch(Ctx& c) {
  CheckArgs top;
  Error err;
  if (!c.st.arena.DecodeCheckBatch(&top, &err)) {
    Bump(counters_.bad_requests);
    Bump(op_stats_[c.op_index].errors);
    AppendError(c.out, c.env.id_raw, err);
    return Disposition::kDone;
  }
  const policy::CompiledPolicy& p = *c.w.policy;
  TxnScope txn(c.w.txn.get());
  AppendReplyStart(c.out, c.env.id_raw);
  c.out->append(",\"rev\":");
  json::AppendUint(c.out, c.w.txn->Revision());
  c.out->append(",\"results\":[");
  bool first = true;
  BatchFacts facts(&c.w.facts);  // one snapshot for the whole batch
  for (const CheckArgs& a : c.st.arena.checks()) {
    policy::Decision d;
    if (!txn.ok()) {
      d.reason = "internal";
    } else {
      d = policy::Evaluate(p, a.req, facts);
      if (c.w.txn->error()) {
        d.allow = false;
        d.reason = "internal";
      }
    }
    Bump(d.allow ? counters_.allow : counters_.deny);
    if (!first) c.out->push_back(',');
    first = false;
    AppendDecision(c.out, d, a.explain);
  }
  c.out->append("]}\n");
  if (facts.hits() != 0) Bump(counters_.batch_memo_hits, facts.hits());
  return Disposition::kDone;
}

Handler::Disposition Service::ListActions(Ctx& c) {
  CheckArgs a;
  Error err;
  if (!c.st.arena.DecodeCheck(&a, false, &err)) {
    Bump(counters_.bad_requests);
    Bump(op_stats_[c.op_index].errors);
    AppendError(c.out, c.env.id_raw, err);
    return Disposition::kDone;
  }
  const policy::CompiledPolicy& p = *c.w.policy;
  TxnScope txn(c.w.txn.get());
  size_t n = 0;
  if (txn.ok()) {
    n = policy::ListAllowedActions(p, a.req, c.w.facts, c.w.actions.data(), c.w.actions.size());
    if (c.w.txn->error()) n = 0;  // fail closed
  }
  AppendReplyStart(c.out, c.env.id_raw);
  c.out->append(",\"rev\":");
  json::AppendUint(c.out, c.w.txn->Revision());
  c.out->append(",\"actions\":[");
  for (size_t i = 0; i < n; ++i) {
    if (i) c.out->push_back(',');
    json::AppendString(c.out, policy::ActionName(p, c.w.actions[i]));
  }
  c.out->append("]}\n");
  return Disposition::kDone;
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

#define GH_FIELD_OR_FAIL(expr)                               \
  do {                                                       \
    if (!(expr)) {                                           \
      Bump(counters_.bad_requests);                          \
      Bump(op_stats_[c.op_index].errors);                    \
      AppendError(c.out, c.env.id_raw, err);                 \
      return Disposition::kDone;                             \
    }                                                        \
  } while (0)

#define GH_FAIL(code, ...)                                   \
  do {                                                       \
    Error e_;                                                \
    e_.Set(code, __VA_ARGS__);                               \
    Bump(op_stats_[c.op_index].errors);                      \
    AppendError(c.out, c.env.id_raw, e_);                    \
    return Disposition::kDone;                               \
  } while (0)

#define GH_SNAPSHOT_OR_FAIL(txn)                                                       \
  do {                                                                                 \
    if (!(txn).ok()) GH_FAIL(ErrorCode::kUnavailable, "store snapshot unavailable");   \
  } while (0)

Handler::Disposition Service::ListWorkspaces(Ctx& c) {
  CheckArgs a;
  Error err;
  GH_FIELD_OR_FAIL(c.st.arena.DecodeCheck(&a, false, &err));
  if (a.req.org.empty()) GH_FAIL(ErrorCode::kBadRequest, "missing field 'org'");
  if (a.req.action.empty()) a.req.action = "workspace.access";
  const policy::CompiledPolicy& p = *c.w.policy;
  TxnScope txn(c.w.txn.get());
  GH_SNAPSHOT_OR_FAIL(txn);
  std::vector<store::WorkspaceView> wss;
  Json ids = Json::array();
  if (c.w.txn->ListWorkspacesOfOrg(a.req.org, &wss)) {
    for (const auto& ws : wss) {
      policy::Request r = a.req;
      r.workspace = ws.id;
      policy::Decision d = policy::Evaluate(p, r, c.w.facts);
      if (d.allow && !c.w.txn->error()) ids.push_back(S(ws.id));
    }
  }
  if (c.w.txn->error()) GH_FAIL(ErrorCode::kInternal, "store read failed");
  AppendOk(c.out, c.env.id_raw, c.w.txn->Revision(), {{"workspaces", ids}});
  return Disposition::kDone;
}

Handler::Disposition Service::ListOrgs(Ctx& c) {
  Error err;
  std::string_view user;
  GH_FIELD_OR_FAIL(GetId(c.st.arena.doc(), 0, "user", "user", true, &user, &err));
  TxnScope txn(c.w.txn.get());
  GH_SNAPSHOT_OR_FAIL(txn);
  std::vector<store::OrgMemberView> ms;
  Json orgs = Json::array();
  if (c.w.txn->ListOrgsOfUser(user, &ms)) {
    for (const auto& m : ms) {
      store::OrgView o;
      Json e = {{"org", S(m.org)}, {"role", S(m.role)}};
      if (c.w.txn->GetOrg(m.org, &o)) {
        e["status"] = S(o.status);
        e["name"] = S(o.name);
        e["suspended"] = o.suspended;
      }
      orgs.push_back(std::move(e));
    }
  }
  if (c.w.txn->error()) GH_FAIL(ErrorCode::kInternal, "store read failed");
  AppendOk(c.out, c.env.id_raw, c.w.txn->Revision(), {{"orgs", orgs}});
  return Disposition::kDone;
}

Handler::Disposition Service::ListUsers(Ctx& c) {
  Error err;
  const json::Document& d = c.st.arena.doc();
  std::string_view org, ws, action, cursor;
  bool has_limit = false;
  uint64_t limit = 100;
  GH_FIELD_OR_FAIL(GetId(d, 0, "org", "org", false, &org, &err));
  GH_FIELD_OR_FAIL(GetId(d, 0, "workspace", "workspace", false, &ws, &err));
  GH_FIELD_OR_FAIL(GetString(d, 0, "action", "action", false, &action, &err));
  GH_FIELD_OR_FAIL(GetString(d, 0, "cursor", "cursor", false, &cursor, &err));
  GH_FIELD_OR_FAIL(GetUint(d, 0, "limit", "limit", &has_limit, &limit, &err));
  if (org.empty() && ws.empty()) GH_FAIL(ErrorCode::kBadRequest, "missing field 'org' or 'workspace'");
  if (!has_limit) limit = 100;
  if (limit == 0 || limit > 1000) GH_FAIL(ErrorCode::kBadRequest, "field 'limit' must be 1..1000");
  // With `action`, each member is decided like a check with the request's context (auth
  // method/idp/age, client, other keys); the context is decoded with check's rules.
  policy::Request base;
  GH_FIELD_OR_FAIL(c.st.arena.DecodeRootContext(&base, &err));
  const policy::CompiledPolicy& p = *c.w.policy;
  TxnScope txn(c.w.txn.get());
  GH_SNAPSHOT_OR_FAIL(txn);
  std::string next;
  Json users = Json::array();
  auto allowed = [&](std::string_view user) {
    if (action.empty()) return true;
    policy::Request r = base;
    r.user = user;
    r.action = action;
    r.org = org;
    r.workspace = ws;
    return policy::Evaluate(p, r, c.w.facts).allow && !c.w.txn->error();
  };
  if (!ws.empty()) {
    store::WorkspaceView wv;
    if (!c.w.txn->GetWorkspace(ws, &wv)) {
      if (c.w.txn->error()) GH_FAIL(ErrorCode::kInternal, "store read failed");
      GH_FAIL(ErrorCode::kNotFound, "workspace '%.*s' not found", static_cast<int>(ws.size()), ws.data());
    }
    if (!org.empty() && org != wv.org)
      GH_FAIL(ErrorCode::kBadRequest, "field 'workspace' does not belong to field 'org'");
    std::vector<store::WorkspaceMemberView> ms;
    if (!c.w.txn->ListWorkspaceMembers(ws, cursor, limit, &ms, &next) && c.w.txn->error())
      GH_FAIL(ErrorCode::kInternal, "store read failed");
    for (const auto& m : ms) {
      if (!allowed(m.user)) continue;
      Json e = {{"user", S(m.user)}, {"role", S(m.role)}};
      if (!m.team.empty()) e["team"] = S(m.team);
      users.push_back(std::move(e));
    }
  } else {
    store::OrgView ov;
    if (!c.w.txn->GetOrg(org, &ov)) {
      if (c.w.txn->error()) GH_FAIL(ErrorCode::kInternal, "store read failed");
      GH_FAIL(ErrorCode::kNotFound, "org '%.*s' not found", static_cast<int>(org.size()), org.data());
    }
    std::vector<store::OrgMemberView> ms;
    if (!c.w.txn->ListOrgMembers(org, cursor, limit, &ms, &next) && c.w.txn->error())
      GH_FAIL(ErrorCode::kInternal, "store read failed");
    for (const auto& m : ms) {
      if (!allowed(m.user)) continue;
      users.push_back({{"user", S(m.user)}, {"role", S(m.role)}});
    }
  }
  Json extra = {{"users", users}};
  extra["cursor"] = next.empty() ? Json(nullptr) : Json(next);
  AppendOk(c.out, c.env.id_raw, c.w.txn->Revision(), extra);
  return Disposition::kDone;
}

Handler::Disposition Service::UserGet(Ctx& c) {
  Error err;
  std::string_view id;
  GH_FIELD_OR_FAIL(GetId(c.st.arena.doc(), 0, "user", "user", true, &id, &err));
  TxnScope txn(c.w.txn.get());
  GH_SNAPSHOT_OR_FAIL(txn);
  store::UserView u;
  if (!c.w.txn->GetUser(id, &u)) {
    if (c.w.txn->error()) GH_FAIL(ErrorCode::kInternal, "store read failed");
    GH_FAIL(ErrorCode::kNotFound, "user '%.*s' not found", static_cast<int>(id.size()), id.data());
  }
  Json j = {{"id", S(u.id)},
            {"email", S(u.email)},
            {"email_verified", u.email_verified},
            {"org_allowance", u.org_allowance},
            {"orgs_created", u.orgs_created}};
  AppendOk(c.out, c.env.id_raw, c.w.txn->Revision(), {{"user", j}});
  return Disposition::kDone;
}

Handler::Disposition Service::OrgGet(Ctx& c) {
  Error err;
  std::string_view id;
  GH_FIELD_OR_FAIL(GetId(c.st.arena.doc(), 0, "org", "org", true, &id, &err));
  TxnScope txn(c.w.txn.get());
  GH_SNAPSHOT_OR_FAIL(txn);
  store::OrgView o;
  if (!c.w.txn->GetOrg(id, &o)) {
    if (c.w.txn->error()) GH_FAIL(ErrorCode::kInternal, "store read failed");
    GH_FAIL(ErrorCode::kNotFound, "org '%.*s' not found", static_cast<int>(id.size()), id.data());
  }
  Json j = {
      {"id", S(o.id)},
      {"name", S(o.name)},
      {"creator", S(o.creator)},
      {"suspended", o.suspended},
      {"subscription",
       {{"plan", S(o.plan)},
        {"status", S(o.status)},
        {"seats", o.seats},
        {"workspace_limit", o.workspace_limit},
        {"features", ListJson(o.features)},
        {"billing", AttrsJson(o.billing)}}},
      {"security",
       {{"sso",
         {{"enabled", o.sso.enabled},
          {"enforced", o.sso.enforced},
          {"idp", S(o.sso.idp)},
          {"exempt_roles", ListJson(o.sso.exempt_roles)}}}}},
      {"attrs", AttrsJson(o.attrs)},
      {"counts",
       {{"members", o.members},
        {"pending_invitations", o.pending_invitations},
        {"workspaces", o.workspaces}}},
  };
  AppendOk(c.out, c.env.id_raw, c.w.txn->Revision(), {{"org", j}});
  return Disposition::kDone;
}

Handler::Disposition Service::OrgMembers(Ctx& c) {
  Error err;
  const json::Document& d = c.st.arena.doc();
  std::string_view org, cursor;
  bool has_limit = false;
  uint64_t limit = 100;
  GH_FIELD_OR_FAIL(GetId(d, 0, "org", "org", true, &org, &err));
  GH_FIELD_OR_FAIL(GetString(d, 0, "cursor", "cursor", false, &cursor, &err));
  GH_FIELD_OR_FAIL(GetUint(d, 0, "limit", "limit", &has_limit, &limit, &err));
  if (!has_limit) limit = 100;
  if (limit == 0 || limit > 1000) GH_FAIL(ErrorCode::kBadRequest, "field 'limit' must be 1..1000");
  TxnScope txn(c.w.txn.get());
  GH_SNAPSHOT_OR_FAIL(txn);
  store::OrgView o;
  if (!c.w.txn->GetOrg(org, &o)) {
    if (c.w.txn->error()) GH_FAIL(ErrorCode::kInternal, "store read failed");
    GH_FAIL(ErrorCode::kNotFound, "org '%.*s' not found", static_cast<int>(org.size()), org.data());
  }
  std::vector<store::OrgMemberView> ms;
  std::string next;
  if (!c.w.txn->ListOrgMembers(org, cursor, limit, &ms, &next) && c.w.txn->error())
    GH_FAIL(ErrorCode::kInternal, "store read failed");
  Json members = Json::array();
  for (const auto& m : ms) {
    Json e = {{"user", S(m.user)}, {"role", S(m.role)}};
    std::vector<store::WorkspaceMemberView> wms;
    if (c.w.txn->ListWorkspacesOfUserInOrg(m.user, org, &wms)) {
      Json wj = Json::array();
      for (const auto& wm : wms) wj.push_back({{"workspace", S(wm.workspace)}, {"role", S(wm.role)}});
      e["workspaces"] = std::move(wj);
    }
    members.push_back(std::move(e));
  }
  std::vector<store::InvitationView> invs;
  Json pending = Json::array();
  if (c.w.txn->ListInvitationsOfOrg(org, &invs)) {
    for (const auto& i : invs) {
      if (i.state != "PENDING") continue;
      pending.push_back({{"invitation", S(i.id)}, {"email", S(i.email)}, {"role", S(i.role)},
                         {"expires_at", i.expires_at}});
    }
  }
  Json extra = {{"members", members}, {"pending_invitations", pending}};
  extra["cursor"] = next.empty() ? Json(nullptr) : Json(next);
  AppendOk(c.out, c.env.id_raw, c.w.txn->Revision(), extra);
  return Disposition::kDone;
}

Handler::Disposition Service::WorkspaceGet(Ctx& c) {
  Error err;
  std::string_view id;
  GH_FIELD_OR_FAIL(GetId(c.st.arena.doc(), 0, "workspace", "workspace", true, &id, &err));
  TxnScope txn(c.w.txn.get());
  GH_SNAPSHOT_OR_FAIL(txn);
  store::WorkspaceView w;
  if (!c.w.txn->GetWorkspace(id, &w)) {
    if (c.w.txn->error()) GH_FAIL(ErrorCode::kInternal, "store read failed");
    GH_FAIL(ErrorCode::kNotFound, "workspace '%.*s' not found", static_cast<int>(id.size()), id.data());
  }
  Json j = {{"id", S(w.id)}, {"org", S(w.org)}, {"name", S(w.name)}, {"attrs", AttrsJson(w.attrs)},
            {"members", w.members}};
  AppendOk(c.out, c.env.id_raw, c.w.txn->Revision(), {{"workspace", j}});
  return Disposition::kDone;
}

Handler::Disposition Service::InvitationGet(Ctx& c) {
  Error err;
  std::string_view id;
  GH_FIELD_OR_FAIL(GetId(c.st.arena.doc(), 0, "invitation", "invitation", true, &id, &err));
  TxnScope txn(c.w.txn.get());
  GH_SNAPSHOT_OR_FAIL(txn);
  store::InvitationView i;
  if (!c.w.txn->GetInvitation(id, &i)) {
    if (c.w.txn->error()) GH_FAIL(ErrorCode::kInternal, "store read failed");
    GH_FAIL(ErrorCode::kNotFound, "invitation '%.*s' not found", static_cast<int>(id.size()), id.data());
  }
  Json grants = Json::array();
  i.ForEachGrant([&](std::string_view ws, std::string_view role) {
    grants.push_back({{"workspace", S(ws)}, {"role", S(role)}});
  });
  Json j = {{"id", S(i.id)},
            {"org", S(i.org)},
            {"email", S(i.email)},
            {"role", S(i.role)},
            {"state", S(i.state)},
            {"expires_at", i.expires_at},
            {"created_at", i.created_at},
            {"invited_by", S(i.invited_by)},
            {"accepted_by", S(i.accepted_by)},
            {"workspaces", grants}};
  AppendOk(c.out, c.env.id_raw, c.w.txn->Revision(), {{"invitation", j}});
  return Disposition::kDone;
}

Handler::Disposition Service::Changes(Ctx& c) {
  Error err;
  const json::Document& d = c.st.arena.doc();
  bool has_since = false, has_limit = false;
  uint64_t since = 0, limit = 100;
  GH_FIELD_OR_FAIL(GetUint(d, 0, "since", "since", &has_since, &since, &err));
  GH_FIELD_OR_FAIL(GetUint(d, 0, "limit", "limit", &has_limit, &limit, &err));
  if (!has_limit) limit = 100;
  if (limit == 0 || limit > 10000) GH_FAIL(ErrorCode::kBadRequest, "field 'limit' must be 1..10000");
  TxnScope txn(c.w.txn.get());
  GH_SNAPSHOT_OR_FAIL(txn);
  std::vector<store::ChangeView> changes;
  if (!c.w.txn->ReadChanges(since, limit, &changes) && c.w.txn->error())
    GH_FAIL(ErrorCode::kInternal, "store read failed");
  AppendReplyStart(c.out, c.env.id_raw);
  c.out->append(",\"rev\":");
  json::AppendUint(c.out, c.w.txn->Revision());
  c.out->append(",\"changes\":[");
  for (size_t k = 0; k < changes.size(); ++k) {
    if (k) c.out->push_back(',');
    c.out->append(changes[k].json);  // complete JSON objects written by the store
  }
  c.out->append("]}\n");
  return Disposition::kDone;
}

Handler::Disposition Service::Watch(Ctx& c) {
  Error err;
  bool has_since = false;
  uint64_t since = 0;
  GH_FIELD_OR_FAIL(GetUint(c.st.arena.doc(), 0, "since", "since", &has_since, &since, &err));
  uint64_t rev = store_->Revision();
  if (!has_since) since = rev;
  AppendOk(c.out, c.env.id_raw, rev, Json::object());
  c.st.watching = true;
  c.st.watch_rev = since;
  c.conn->SetStreaming(true);
  c.w.watchers.push_back(c.conn);
  PumpWatch(c.conn, c.out);  // backlog since `since`, right after the ack
  return Disposition::kDone;
}

Handler::Disposition Service::Health(Ctx& c) {
  Json pol;
  std::vector<std::string> problems;
  {
    std::lock_guard<std::mutex> l(policy_mu_);
    pol = policy_summary_json_.empty() ? Json::object() : Json::parse(policy_summary_json_);
    problems = last_reload_problems_;
  }
  pol["generation"] = policy_generation_.load();
  if (!problems.empty()) pol["last_reload_problems"] = problems;
  auto up = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count();
  Json extra = {{"status", "serving"}, {"policy", pol}, {"uptime_s", up}};
  AppendOk(c.out, c.env.id_raw, store_->Revision(), extra);
  return Disposition::kDone;
}

// ---------------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------------

namespace {
Json HistJson(const Histogram& h) {
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  uint64_t n = h.count();
  return {{"count", n},
          {"mean_us", n ? us(h.sum_ns()) / static_cast<double>(n) : 0.0},
          {"p50_us", us(h.Quantile(0.50))},
          {"p90_us", us(h.Quantile(0.90))},
          {"p99_us", us(h.Quantile(0.99))},
          {"p999_us", us(h.Quantile(0.999))}};
}
}  // namespace

Service::OrgCacheTotals Service::OrgCacheCounts() const {
  OrgCacheTotals t;
  for (const auto& w : workers_) {  // fixed once the workers are prepared
    t.hits += w->facts.org_cache_hits();
    t.misses += w->facts.org_cache_misses();
  }
  return t;
}

Handler::Disposition Service::Stats(Ctx& c) {
  const auto& ops = OpTable::Get();
  Json opj = Json::object();
  for (size_t i = 0; i < ops.size(); ++i) {
    const OpStats& s = op_stats_[i];
    if (s.requests.load() == 0) continue;
    Json e = {{"requests", s.requests.load()}, {"errors", s.errors.load()},
              {"latency", HistJson(s.latency)}};
    opj[S(ops[i].name)] = std::move(e);
  }
  const Counters& k = counters_;
  Json counters = {{"requests", k.requests.load()},
                   {"bad_requests", k.bad_requests.load()},
                   {"unknown_ops", k.unknown_ops.load()},
                   {"forbidden", k.forbidden.load()},
                   {"allow", k.allow.load()},
                   {"deny", k.deny.load()},
                   {"internal_errors", k.internal_errors.load()},
                   {"stale", k.stale.load()},
                   {"too_large", k.too_large.load()},
                   {"writes_ok", k.writes_ok.load()},
                   {"writes_refused", k.writes_refused.load()},
                   {"policy_reloads", k.policy_reloads.load()},
                   {"policy_reload_failures", k.policy_reload_failures.load()},
                   {"connections_opened", k.connections_opened.load()},
                   {"watch_events", k.watch_events.load()},
                   {"batch_memo_hits", k.batch_memo_hits.load()}};
  if (audit_) counters["audit_dropped"] = audit_->dropped();
  const OrgCacheTotals oc = OrgCacheCounts();
  counters["org_cache_hits"] = oc.hits;
  counters["org_cache_misses"] = oc.misses;
  auto up = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count();
  Json extra = {{"uptime_s", up},
                {"connections", server_ ? server_->connections() : 0},
                {"counters", counters},
                {"ops", opj}};
  AppendOk(c.out, c.env.id_raw, store_->Revision(), extra);
  return Disposition::kDone;
}

std::string Service::RenderPrometheus() const {
  std::string o;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    o += std::string("# HELP gatehouse_") + name + " " + help + "\n# TYPE gatehouse_" + name +
         " counter\ngatehouse_" + name + " " + std::to_string(v) + "\n";
  };
  const Counters& k = counters_;
  counter("requests_total", "Requests received.", k.requests.load());
  counter("bad_requests_total", "Requests refused as bad_request.", k.bad_requests.load());
  counter("forbidden_total", "Requests refused by caller tier.", k.forbidden.load());
  counter("decisions_allow_total", "Checks allowed.", k.allow.load());
  counter("decisions_deny_total", "Checks denied.", k.deny.load());
  counter("internal_errors_total", "Internal failures (failed closed).", k.internal_errors.load());
  counter("stale_total", "min_rev waits that timed out.", k.stale.load());
  counter("too_large_total", "Lines over max_line.", k.too_large.load());
  counter("writes_ok_total", "Committed writes.", k.writes_ok.load());
  counter("writes_refused_total", "Refused writes.", k.writes_refused.load());
  counter("policy_reloads_total", "Policy reload attempts.", k.policy_reloads.load());
  counter("policy_reload_failures_total", "Failed policy reloads.", k.policy_reload_failures.load());
  counter("connections_opened_total", "Accepted connections.", k.connections_opened.load());
  counter("watch_events_total", "Change events streamed to watchers.", k.watch_events.load());
  counter("batch_memo_hits_total", "check_batch fact lookups answered from the previous item.",
          k.batch_memo_hits.load());
  const OrgCacheTotals oc = OrgCacheCounts();
  counter("org_cache_hits_total", "Org rows answered from the workers' org caches.", oc.hits);
  counter("org_cache_misses_total", "Org rows read from the store while the cache was usable.",
          oc.misses);
  o += "# HELP gatehouse_connections Open connections.\n# TYPE gatehouse_connections gauge\n";
  o += "gatehouse_connections " + std::to_string(server_ ? server_->connections() : 0) + "\n";
  o += "# HELP gatehouse_store_revision Last committed store revision.\n"
       "# TYPE gatehouse_store_revision gauge\n";
  o += "gatehouse_store_revision " + std::to_string(store_->Revision()) + "\n";
  o += "# HELP gatehouse_request_duration_seconds Request handling latency by op.\n"
       "# TYPE gatehouse_request_duration_seconds histogram\n";
  const auto& ops = OpTable::Get();
  for (size_t i = 0; i < ops.size(); ++i) {
    const Histogram& h = op_stats_[i].latency;
    if (h.count() == 0) continue;
    std::string op(ops[i].name);
    uint64_t cum = 0;
    // Export every 4th bucket boundary (powers of two) to keep the exposition small.
    for (int b = 0; b < Histogram::kBuckets; ++b) {
      cum += h.bucket(b);
      if (b % 4 != 0) continue;
      char le[32];
      std::snprintf(le, sizeof(le), "%.9g", static_cast<double>(Histogram::BucketUpper(b)) / 1e9);
      o += "gatehouse_request_duration_seconds_bucket{op=\"" + op + "\",le=\"" + le + "\"} " +
           std::to_string(cum) + "\n";
      if (Histogram::BucketUpper(b) > uint64_t{60} * 1000000000) break;
    }
    o += "gatehouse_request_duration_seconds_bucket{op=\"" + op + "\",le=\"+Inf\"} " +
         std::to_string(h.count()) + "\n";
    char sum[40];
    std::snprintf(sum, sizeof(sum), "%.9g", static_cast<double>(h.sum_ns()) / 1e9);
    o += "gatehouse_request_duration_seconds_sum{op=\"" + op + "\"} " + sum + "\n";
    o += "gatehouse_request_duration_seconds_count{op=\"" + op + "\"} " +
         std::to_string(h.count()) + "\n";
  }
  return o;
}

Handler::Disposition Service::PolicyReload(Ctx& c) {
  std::vector<std::string> problems;
  if (ReloadPolicy(&problems)) {
    Json pol;
    {
      std::lock_guard<std::mutex> l(policy_mu_);
      pol = Json::parse(policy_summary_json_);
    }
    pol["generation"] = policy_generation_.load();
    AppendOk(c.out, c.env.id_raw, store_->Revision(), {{"policy", pol}});
    return Disposition::kDone;
  }
  Bump(op_stats_[c.op_index].errors);
  Json e = {{"id", Json::parse(c.env.id_raw)},
            {"ok", false},
            {"error",
             {{"code", "bad_request"},
              {"message", "policy has " + std::to_string(problems.size()) +
                              " problem(s); the previous policy stays active"},
              {"problems", problems}}}};
  c.out->append(e.dump(-1, ' ', false, Json::error_handler_t::replace));
  c.out->push_back('\n');
  return Disposition::kDone;
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

namespace {

// Typed field access over a nlohmann object that records the first problem instead of throwing.
class Fields {
 public:
  explicit Fields(const Json& j) : j_(j) {}
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  bool Has(const char* k) const { return j_.contains(k) && !j_[k].is_null(); }

  void Str(const char* k, std::string* out) {
    if (!Has(k)) return;
    if (!j_[k].is_string()) return Fail(k, "a string");
    *out = j_[k].get<std::string>();
  }
  void OptStr(const char* k, std::optional<std::string>* out) {
    if (!Has(k)) return;
    if (!j_[k].is_string()) return Fail(k, "a string");
    *out = j_[k].get<std::string>();
  }
  void OptInt(const char* k, std::optional<int64_t>* out) {
    if (!Has(k)) return;
    if (!j_[k].is_number_integer()) return Fail(k, "an integer");
    if (j_[k].is_number_unsigned() &&
        j_[k].get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
      return Fail(k, "an integer in int64 range");
    }
    *out = j_[k].get<int64_t>();
  }
  void OptStrList(const char* k, std::optional<std::vector<std::string>>* out) {
    if (!Has(k)) return;
    if (!j_[k].is_array()) return Fail(k, "an array of strings");
    std::vector<std::string> v;
    for (const auto& e : j_[k]) {
      if (!e.is_string()) return Fail(k, "an array of strings");
      v.push_back(e.get<std::string>());
    }
    *out = std::move(v);
  }
  void OptAttrs(const char* k, std::optional<store::AttrMap>* out) {
    if (!Has(k)) return;
    if (!j_[k].is_object()) return Fail(k, "an object");
    store::AttrMap m;
    for (auto it = j_[k].begin(); it != j_[k].end(); ++it) {
      store::OwnedAttr a;
      const Json& v = it.value();
      if (v.is_null()) a.kind = store::AttrValue::Kind::kNull;
      else if (v.is_boolean()) { a.kind = store::AttrValue::Kind::kBool; a.b = v.get<bool>(); }
      else if (v.is_number_integer()) { a.kind = store::AttrValue::Kind::kInt; a.i = v.get<int64_t>(); }
      else if (v.is_number()) { a.kind = store::AttrValue::Kind::kDouble; a.d = v.get<double>(); }
      else if (v.is_string()) { a.kind = store::AttrValue::Kind::kString; a.s = v.get<std::string>(); }
      else return Fail((std::string(k) + "." + it.key()).c_str(), "a scalar");
      m[it.key()] = std::move(a);
    }
    *out = std::move(m);
  }
  void Fail(const char* k, const char* what) {
    if (error_.empty()) error_ = std::string("field '") + k + "' must be " + what;
  }
  void Missing(const char* k) {
    if (error_.empty()) error_ = std::string("missing field '") + k + "'";
  }

 private:
  const Json& j_;
  std::string error_;
};

// Decodes the protocol write request into a store::WriteRequest. Returns "" or a message.
std::string DecodeWrite(const Json& j, const OpSpec& spec, store::WriteRequest* w) {
  Fields f(j);
  w->op = std::string(spec.name);
  f.Str("actor", &w->actor);
  f.Str("user", &w->user);
  f.Str("org", &w->org);
  f.Str("workspace", &w->workspace);
  f.Str("invitation", &w->invitation);
  f.Str("token", &w->token);
  f.Str("email", &w->email);
  f.Str("name", &w->name);
  f.Str("role", &w->role);
  f.Str("team", &w->team);
  f.OptStr("workspace_name", &w->workspace_name);
  f.OptStr("plan", &w->plan);
  f.OptStr("status", &w->status);
  f.OptInt("seats", &w->seats);
  f.OptInt("workspace_limit", &w->workspace_limit);
  f.OptInt("allowance", &w->allowance);
  f.OptInt("ttl_s", &w->ttl_s);
  f.OptStrList("features", &w->features);
  f.OptAttrs("billing", &w->billing);
  f.OptAttrs("attrs", &w->attrs);
  if (!f.ok()) return f.error();
  for (const char* k : {"actor", "user", "org", "workspace", "invitation"}) {
    if (f.Has(k)) {
      const std::string& v = j[k].get_ref<const std::string&>();
      if (!IsValidId(v))
        return std::string("field '") + k +
               "' must be an identifier of 1-128 bytes without control characters";
    }
  }
  if (f.Has("restrictions")) {
    const Json& r = j["restrictions"];
    if (!r.is_object()) return "field 'restrictions' must be an object";
    std::map<std::string, std::string> m;
    for (auto it = r.begin(); it != r.end(); ++it) {
      if (it.value().is_boolean()) m[it.key()] = it.value().get<bool>() ? "true" : "false";
      else if (it.value().is_string()) m[it.key()] = it.value().get<std::string>();
      else return "field 'restrictions." + it.key() + "' must be a boolean or a string";
    }
    w->restrictions = std::move(m);
  }
  if (f.Has("sso")) {
    const Json& s = j["sso"];
    if (!s.is_object()) return "field 'sso' must be an object";
    store::SsoSettings sso;
    if (s.contains("enabled")) {
      if (!s["enabled"].is_boolean()) return "field 'sso.enabled' must be a boolean";
      sso.enabled = s["enabled"].get<bool>();
    }
    if (s.contains("enforced")) {
      if (!s["enforced"].is_boolean()) return "field 'sso.enforced' must be a boolean";
      sso.enforced = s["enforced"].get<bool>();
    }
    if (s.contains("idp") && !s["idp"].is_null()) {
      if (!s["idp"].is_string()) return "field 'sso.idp' must be a string";
      sso.idp = s["idp"].get<std::string>();
    }
    if (s.contains("exempt_roles") && !s["exempt_roles"].is_null()) {
      if (!s["exempt_roles"].is_array()) return "field 'sso.exempt_roles' must be an array of strings";
      std::vector<std::string> roles;
      for (const auto& e : s["exempt_roles"]) {
        if (!e.is_string()) return "field 'sso.exempt_roles' must be an array of strings";
        roles.push_back(e.get<std::string>());
      }
      sso.exempt_roles = std::move(roles);
    }
    w->sso = std::move(sso);
  }
  if (f.Has("workspaces")) {
    const Json& g = j["workspaces"];
    if (!g.is_array()) return "field 'workspaces' must be an array of {workspace, role}";
    std::vector<store::WorkspaceGrant> grants;
    for (size_t i = 0; i < g.size(); ++i) {
      const Json& e = g[i];
      if (!e.is_object() || !e.contains("workspace") || !e["workspace"].is_string() ||
          !e.contains("role") || !e["role"].is_string())
        return "field 'workspaces[" + std::to_string(i) +
               "]' must be an object with string 'workspace' and 'role'";
      grants.push_back({e["workspace"].get<std::string>(), e["role"].get<std::string>()});
    }
    w->grants = std::move(grants);
  }
  for (const char* k : spec.required) {
    if (!k) break;
    if (!f.Has(k)) return std::string("missing field '") + k + "'";
    if (j[k].is_string() && j[k].get_ref<const std::string&>().empty())
      return std::string("field '") + k + "' must not be empty";
  }
  return "";
}

// Owned copy of the request context used to authorize a write (SSO gates need it).
struct WriteContext {
  std::string auth_method, auth_idp, client;
  int64_t auth_age_s = -1;
};

WriteContext DecodeWriteContext(const Json& j, std::string* err) {
  WriteContext c;
  if (!j.contains("context") || j["context"].is_null()) return c;
  const Json& ctx = j["context"];
  if (!ctx.is_object()) {
    *err = "field 'context' must be an object";
    return c;
  }
  if (ctx.contains("client") && ctx["client"].is_string()) c.client = ctx["client"].get<std::string>();
  if (ctx.contains("auth")) {
    const Json& a = ctx["auth"];
    if (!a.is_object()) {
      *err = "field 'context.auth' must be an object";
      return c;
    }
    if (a.contains("method") && a["method"].is_string()) c.auth_method = a["method"].get<std::string>();
    if (a.contains("idp") && a["idp"].is_string()) c.auth_idp = a["idp"].get<std::string>();
    if (a.contains("age_s")) {
      const Json& v = a["age_s"];
      if (!v.is_number()) {
        *err = "field 'context.auth.age_s' must be a number";
        return c;
      }
      // Same rules as the hot decoder (protocol.cc): >= 0, and in int64 range before any
      // conversion (a double or uint64 outside it would be UB or wrap).
      const bool neg = v.is_number_float() ? !(v.get<double>() >= 0)
                                           : v.is_number_integer() && !v.is_number_unsigned() &&
                                                 v.get<int64_t>() < 0;
      if (neg) {
        *err = "field 'context.auth.age_s' must be >= 0";
        return c;
      }
      if ((v.is_number_float() && v.get<double>() >= 9223372036854775808.0) ||
          (v.is_number_unsigned() &&
           v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))) {
        *err = "field 'context.auth.age_s' is too large";
        return c;
      }
      c.auth_age_s = v.is_number_float() ? static_cast<int64_t>(v.get<double>()) : v.get<int64_t>();
    }
  }
  return c;
}

struct Evaluated {
  bool allow = false;
  std::string reason, rule;
};

Evaluated EvalWith(const policy::CompiledPolicy& p, const WriteContext& ctx, std::string_view actor,
                   std::string_view action, std::string_view org, std::string_view ws,
                   const std::vector<policy::KeyValue>& attrs, store::Reader& r) {
  StoreFacts facts(&r);
  policy::Request req;
  req.user = actor;
  req.action = action;
  req.org = org;
  req.workspace = ws;
  req.resource_attrs = policy::AttrList(attrs.data(), attrs.size());
  req.auth_method = ctx.auth_method;
  req.auth_idp = ctx.auth_idp;
  req.auth_age_s = ctx.auth_age_s;
  req.client = ctx.client;
  policy::Decision d = policy::Evaluate(p, req, facts);
  if (r.error()) return {false, "internal", ""};
  return {d.allow, std::string(d.reason), std::string(d.rule)};
}

// The policy check of a write with an actor, run inside the write transaction.
store::Status AuthorizeWrite(const policy::CompiledPolicy& p, const WriteContext& ctx,
                             store::Reader& r, const store::WriteRequest& w) {
  const std::string& op = w.op;
  std::vector<policy::KeyValue> attrs;
  auto add = [&](std::string_view k, std::string_view v) {
    policy::KeyValue kv;
    kv.key = k;
    kv.value = policy::Value::String(v);
    attrs.push_back(kv);
  };
  // The policy may tell writes apart (e.g. revoking an invitation is not seat-checked).
  add("write_op", w.op);
  std::string action;
  std::string org = w.org;
  std::string ws;
  std::string alt_action;  // also sufficient (org-level workspace member management)
  std::string alt_org;

  if (op == "org.update") action = "org.settings.general.manage";
  else if (op == "org.delete") action = "org.delete";
  else if (op == "org.set_subscription") action = "org.subscription.change";
  else if (op == "org.set_security") action = "org.security.sso.manage";
  else if (op == "workspace.create") action = "workspace.create";
  else if (op == "workspace.update" || op == "workspace.delete") {
    action = op;
    ws = w.workspace;
    org.clear();
  } else if (op == "org.invite") {
    action = "org.users.invite";
    store::UserView u;
    if (r.FindUserByEmail(w.email, &u)) add("target_user", u.id);
    add("new_role", w.role);
  } else if (op == "invite.revoke" || op == "invite.resend") {
    action = "org.users.invite";
    store::InvitationView inv;
    if (!r.GetInvitation(w.invitation, &inv)) {
      if (r.error()) return store::Status(store::Code::kInternal, "store read failed");
      return store::Status(store::Code::kNotFound, "invitation '" + w.invitation + "' not found");
    }
    org = std::string(inv.org);
    add("new_role", inv.role);
  } else if (op == "org.set_role" || op == "org.remove_member") {
    action = op == "org.set_role" ? "org.users.role.assign" : "org.users.remove";
    add("target_user", w.user);
    store::OrgMemberView m;
    if (r.GetOrgMember(w.user, w.org, &m)) add("target_role", m.role);
    if (op == "org.set_role") add("new_role", w.role);
  } else if (op == "workspace.set_member" || op == "workspace.remove_member") {
    ws = w.workspace;
    org.clear();
    store::WorkspaceView wv;
    if (!r.GetWorkspace(w.workspace, &wv)) {
      if (r.error()) return store::Status(store::Code::kInternal, "store read failed");
      return store::Status(store::Code::kNotFound, "workspace '" + w.workspace + "' not found");
    }
    alt_org = std::string(wv.org);
    alt_action = "org.workspace.members.manage";
    add("target_user", w.user);
    store::WorkspaceMemberView m;
    bool existing = r.GetWorkspaceMember(w.user, w.workspace, &m);
    if (existing) add("target_role", m.role);
    if (op == "workspace.set_member") {
      add("new_role", w.role);
      action = existing ? "workspace.users.role.change" : "workspace.users.invite";
    } else {
      action = "workspace.users.remove";
    }
  } else {
    return store::Status::Ok();  // no policy action for this op
  }
  Evaluated e = EvalWith(p, ctx, w.actor, action, org, ws, attrs, r);
  if (!e.allow && !alt_action.empty()) {
    Evaluated alt = EvalWith(p, ctx, w.actor, alt_action, alt_org, ws, attrs, r);
    if (alt.allow) return store::Status::Ok();
    // Report the more specific of the two denials: a gate (locked, suspended, sso) wins.
    if (alt.reason != "no_permission" && e.reason == "no_permission") e = alt;
  }
  if (e.allow) return store::Status::Ok();
  std::string where = !ws.empty() ? "workspace '" + ws + "'" : "org '" + org + "'";
  return store::Status(DenyCode(e.reason),
                       "actor '" + w.actor + "' may not " + action + " in " + where + " (" +
                           e.reason + (e.rule.empty() ? "" : ", rule " + e.rule) + ")");
}

}  // namespace

Handler::Disposition Service::Write(Ctx& c) {
  const OpSpec& spec = *c.spec;
  Json j = Json::parse(c.line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    GH_FAIL(ErrorCode::kBadRequest, "request must be a JSON object");
  }
  store::WriteRequest w;
  std::string problem = DecodeWrite(j, spec, &w);
  WriteContext wctx;
  if (problem.empty()) wctx = DecodeWriteContext(j, &problem);
  if (!problem.empty()) {
    Bump(counters_.bad_requests);
    GH_FAIL(ErrorCode::kBadRequest, "%s", problem.c_str());
  }
  if (!w.actor.empty() && spec.self_only && w.actor != w.user) {
    Bump(counters_.forbidden);
    GH_FAIL(ErrorCode::kForbidden, "actor '%s' may only %.*s for themselves (field 'user')",
            w.actor.c_str(), static_cast<int>(spec.name.size()), spec.name.data());
  }
  if (!w.actor.empty() && spec.action) {
    std::shared_ptr<const policy::CompiledPolicy> p = c.w.policy;  // pinned for the write
    w.authorize = [p, wctx](store::Reader& r, const store::WriteRequest& req) {
      return AuthorizeWrite(*p, wctx, r, req);
    };
  }
  std::string id_raw(c.env.id_raw);
  std::shared_ptr<Connection> conn = c.conn;
  size_t op_index = c.op_index;
  auto t0 = c.t0;
  uint32_t uid = c.conn->peer().uid;
  std::string op(spec.name), actor = w.actor;
  store_->Submit(std::move(w), [this, conn, id_raw, op_index, t0, uid, op,
                                actor](store::WriteResult res) {
    std::string out;
    try {
      if (res.status.ok()) {
        Bump(counters_.writes_ok);
        Json extra = Json::object();
        if (!res.workspace.empty()) extra["workspace"] = res.workspace;
        if (!res.invitation.empty()) extra["invitation"] = res.invitation;
        if (!res.token.empty()) extra["token"] = res.token;
        AppendOk(&out, id_raw, res.rev, extra);
      } else {
        Bump(counters_.writes_refused);
        Bump(op_stats_[op_index].errors);
        AppendError(&out, id_raw, FromStoreCode(res.status.code()), res.status.message());
      }
      if (audit_) {
        Json a = {{"ts", NowUnix()}, {"type", "write"}, {"op", op}, {"uid", uid},
                  {"actor", actor.empty() ? Json(nullptr) : Json(actor)},
                  {"ok", res.status.ok()}, {"rev", res.rev}};
        if (!res.status.ok()) {
          a["code"] = store::CodeName(res.status.code());
          a["message"] = res.status.message();
        }
        Audit(a.dump(-1, ' ', false, Json::error_handler_t::replace));
      }
    } catch (const std::exception& e) {
      out.clear();
      AppendError(&out, id_raw, ErrorCode::kInternal, "internal error");
    }
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
    op_stats_[op_index].latency.Record(static_cast<uint64_t>(ns));
    conn->Finish(std::move(out));
  });
  return Disposition::kDeferred;
}

}  // namespace gatehouse::daemon
