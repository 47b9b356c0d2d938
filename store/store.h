// Gatehouse membership store: public API.
//
// The store owns users, organizations, memberships, workspaces and invitations, enforces the ten
// invariants of shared/spec/model.md on every write, and records every committed write in a
// change log under a store-wide revision number.
//
// Thread-safety:
//   - Store is thread-safe. Writes from any thread are queued to one writer thread that applies
//     them in order, many per LMDB transaction (group commit), and completes each one only after
//     its transaction is durable.
//   - A ReadTxn belongs to one thread at a time (it may move between threads: MDB_NOTLS), and is
//     meant to be kept per worker and Renew()ed / Reset() around each request.
//   - Views (UserView, OrgView, ...) point into the memory map or into the transaction that
//     produced them and are valid only until that Reader is Reset(), Renew()ed or destroyed.
//
// Layering: store/ depends on LMDB only. It never includes policy/ or daemon/. Invariant logic is
// written against the small KV transaction interface in store/internal/kv.h (get / put / delete /
// range scan + change record) so that other backends (an in-memory one for tests and fuzzing,
// later a PostgreSQL-fed replica) can run the same deterministic write functions.
#ifndef GATEHOUSE_STORE_STORE_H_
#define GATEHOUSE_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gatehouse::store {

// Error codes map 1:1 onto protocol v1 error codes (shared/spec/protocol.md).
enum class Code : uint8_t {
  kOk = 0,
  kBadRequest,     // a field is missing, malformed, or out of range
  kNotFound,       // the named entity does not exist (also: unknown invitation token)
  kConflict,       // an invariant would break, the entity exists, invitation not pending, locked org
  kLimitExceeded,  // seats, workspace limit, org allowance
  kForbidden,      // unverified user creating an org, accepting with another email, authz refused
  kUnavailable,    // store closed / shutting down
  kInternal,       // LMDB error, corruption: fails closed
};

const char* CodeName(Code c) noexcept;  // "bad_request", "not_found", ... (protocol spelling)

// Status costs nothing on success. A refused write names the invariant (1..10 of model.md)
// that refused it, or 0 when the refusal is not an invariant (bad input, not found, ...).
class Status {
 public:
  Status() = default;
  Status(Code code, std::string message, int invariant = 0)
      : code_(code), invariant_(invariant), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  int invariant() const { return invariant_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  int invariant_ = 0;
  std::string message_;
};

// ---------------------------------------------------------------------------------------------
// Values and views
// ---------------------------------------------------------------------------------------------

// A scalar attribute value (free-form attrs of users, orgs, workspaces; billing attributes).
struct AttrValue {
  enum class Kind : uint8_t { kNull, kBool, kInt, kDouble, kString };
  Kind kind = Kind::kNull;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string_view s;  // kString only; view, same lifetime as the view it came from
};

// An owned attribute value, used in write requests.
struct OwnedAttr {
  AttrValue::Kind kind = AttrValue::Kind::kNull;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string s;
};
using AttrMap = std::map<std::string, OwnedAttr>;

// A packed list of strings (features, exempt roles, restriction flags). Iterable view.
class StringListView {
 public:
  StringListView() = default;
  explicit StringListView(std::string_view encoded) : encoded_(encoded) {}
  bool Contains(std::string_view s) const noexcept;
  size_t size() const noexcept;
  // Calls fn(std::string_view) for each element in order. fn must not throw.
  template <typename Fn>
  void ForEach(Fn&& fn) const noexcept;
  std::string_view encoded() const { return encoded_; }

 private:
  std::string_view encoded_;
};

// A packed map of attributes. Iterable view.
class AttrsView {
 public:
  AttrsView() = default;
  explicit AttrsView(std::string_view encoded) : encoded_(encoded) {}
  // Returns true iff key is present; *out is set then.
  bool Find(std::string_view key, AttrValue* out) const noexcept;
  // Calls fn(std::string_view key, const AttrValue&) for each entry in key order.
  template <typename Fn>
  void ForEach(Fn&& fn) const noexcept;
  std::string_view encoded() const { return encoded_; }

 private:
  std::string_view encoded_;
};

struct UserView {
  std::string_view id;
  std::string_view email;  // as registered; uniqueness is case-insensitive
  bool email_verified = false;
  uint32_t org_allowance = 1;
  uint32_t orgs_created = 0;
};

struct SsoView {
  bool enabled = false;
  bool enforced = false;
  std::string_view idp;
  StringListView exempt_roles;  // default: org_admin, user_admin
};

struct OrgView {
  std::string_view id;
  std::string_view name;
  std::string_view creator;
  bool suspended = false;
  // Subscription.
  std::string_view plan;
  std::string_view status;  // TRIAL, ACTIVE, DOWNGRADING, CANCELING, PENDING_PAYMENT,
                            // TRIAL_ENDED, FROZEN, CANCELED
  uint32_t seats = 0;
  uint32_t workspace_limit = 0;
  StringListView features;
  AttrsView billing;
  SsoView sso;
  AttrsView attrs;
  // Counters kept by the store in the same transaction as the writes that change them.
  uint32_t members = 0;
  uint32_t pending_invitations = 0;
  uint32_t workspaces = 0;
};

struct WorkspaceView {
  std::string_view id;
  std::string_view org;
  std::string_view name;
  AttrsView attrs;
  uint32_t members = 0;
};

struct OrgMemberView {
  std::string_view user;
  std::string_view org;
  std::string_view role;  // org_admin, billing_admin, user_admin, member (or a configured extra)
};

struct WorkspaceMemberView {
  std::string_view user;
  std::string_view workspace;
  std::string_view org;   // owning org, denormalized so one lookup serves a decision
  std::string_view role;  // owner, manager, agent (or a configured extra)
  std::string_view team;  // empty if none
  StringListView flags;   // manager restriction flags that are set: no_ws_settings, ...
  std::string_view contact_visibility;  // agents: all | assigned_only | assigned_or_unassigned |
                                        // assigned_or_team; empty for non-agents
  // The user's role in `org` (the org_members row), denormalized so that one read serves both
  // memberships of a decision. The store rewrites it in the same transaction as every change of
  // that org role. "" = unknown (a row written before schema version 2): read GetOrgMember.
  std::string_view org_role;
};

struct InvitationView {
  std::string_view id;
  std::string_view org;
  std::string_view email;
  std::string_view role;
  std::string_view state;  // PENDING, ACCEPTED, REVOKED, EXPIRED (EXPIRED is computed from
                           // expires_at at read time when the stored state is PENDING)
  int64_t expires_at = 0;  // unix seconds
  int64_t created_at = 0;
  std::string_view invited_by;
  std::string_view accepted_by;
  // Workspace grants, packed pairs; ForEachGrant calls fn(workspace, role).
  std::string_view grants_encoded;
  template <typename Fn>
  void ForEachGrant(Fn&& fn) const noexcept;
};

// One change-log record. `json` is a complete JSON object, written by the store, of the form
// {"rev":N,"op":"org.set_role","actor":"u1"|null,"time":unix_s,"args":{...},
//  "changes":[{"entity":"org_member","key":{...},"before":{...}|null,"after":{...}|null},...]}
// so the daemon can splice it into `changes` / `watch` replies without re-encoding.
struct ChangeView {
  uint64_t rev = 0;
  std::string_view op;
  std::string_view json;
};

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

// Typed reads over one consistent snapshot. Implemented by ReadTxn (an LMDB read transaction)
// and by the writer's transaction (passed to WriteRequest::authorize). All Get* return true iff
// found; a storage error returns false and sets error() (callers must fail closed).
// Views are valid until the snapshot ends (Reset/Renew/destruction, or the end of authorize).
class Reader {
 public:
  virtual ~Reader() = default;
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Revision of this snapshot (the last committed write it contains).
  virtual uint64_t Revision() const noexcept = 0;
  // Identifies the current snapshot of this Reader: it changes whenever views handed out before
  // may have become invalid (Renew, Reset), and differs between Reader objects. Callers may cache
  // views across calls while (Reader, SnapshotId()) is unchanged. 0 = not supported: never cache.
  virtual uint64_t SnapshotId() const noexcept { return 0; }
  // Identifies this Reader object: unique among all Readers of the process and never reused, so
  // that (ReaderId(), Revision()) names one committed state of one store across Renew/Reset.
  // Callers may cache copies of rows (never views) under that pair. 0 = not supported: never
  // cache.
  virtual uint64_t ReaderId() const noexcept { return 0; }
  // True iff a storage error happened since the snapshot began.
  virtual bool error() const noexcept = 0;

  virtual bool GetUser(std::string_view user, UserView* out) noexcept = 0;
  virtual bool FindUserByEmail(std::string_view email, UserView* out) noexcept = 0;
  virtual bool GetOrg(std::string_view org, OrgView* out) noexcept = 0;
  virtual bool GetWorkspace(std::string_view ws, WorkspaceView* out) noexcept = 0;
  virtual bool GetOrgMember(std::string_view user, std::string_view org,
                            OrgMemberView* out) noexcept = 0;
  virtual bool GetWorkspaceMember(std::string_view user, std::string_view ws,
                                  WorkspaceMemberView* out) noexcept = 0;
  virtual bool GetInvitation(std::string_view id, InvitationView* out) noexcept = 0;

  // Lists. Not on the check hot path: they may allocate. Paged lists take an opaque cursor
  // ("" = from the start) and set *next to the cursor of the next page ("" = no more).
  virtual bool ListOrgsOfUser(std::string_view user, std::vector<OrgMemberView>* out) = 0;
  virtual bool ListOrgMembers(std::string_view org, std::string_view cursor, size_t limit,
                              std::vector<OrgMemberView>* out, std::string* next) = 0;
  virtual bool ListWorkspaceMembers(std::string_view ws, std::string_view cursor, size_t limit,
                                    std::vector<WorkspaceMemberView>* out, std::string* next) = 0;
  virtual bool ListWorkspacesOfOrg(std::string_view org, std::vector<WorkspaceView>* out) = 0;
  virtual bool ListWorkspacesOfUserInOrg(std::string_view user, std::string_view org,
                                         std::vector<WorkspaceMemberView>* out) = 0;
  virtual bool ListInvitationsOfOrg(std::string_view org, std::vector<InvitationView>* out) = 0;
  // Change records with rev > since, oldest first, at most limit.
  virtual bool ReadChanges(uint64_t since, size_t limit, std::vector<ChangeView>* out) = 0;
  // Every user / every org, in id order, paged like ListOrgMembers (cursor "" = from the start;
  // *next "" = no more). For export and operator tools, not the check path. Readers that cannot
  // enumerate return false (the default).
  virtual bool ListUsers(std::string_view cursor, size_t limit, std::vector<UserView>* out,
                         std::string* next) {
    (void)cursor, (void)limit, out->clear(), next->clear();
    return false;
  }
  virtual bool ListOrgs(std::string_view cursor, size_t limit, std::vector<OrgView>* out,
                        std::string* next) {
    (void)cursor, (void)limit, out->clear(), next->clear();
    return false;
  }

 protected:
  Reader() = default;
};

// A renewable LMDB read transaction. Keep one per worker thread:
//   txn->Renew(); ... reads ...; txn->Reset();
// Renew() picks up the latest committed snapshot. Never hold one across an async wait.
class ReadTxn : public Reader {
 public:
  // Returns false (and error() is true) if the snapshot could not be taken.
  virtual bool Renew() noexcept = 0;
  virtual void Reset() noexcept = 0;
};

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

struct SsoSettings {
  bool enabled = false;
  bool enforced = false;
  std::string idp;
  std::optional<std::vector<std::string>> exempt_roles;  // absent: keep / default
};

struct WorkspaceGrant {
  std::string workspace;
  std::string role;
};

// One write. `op` is the protocol op name (see the table in shared/spec/protocol.md):
// user.register, user.verify_email, user.set_org_allowance, org.create, org.update, org.delete,
// org.set_subscription, org.set_security, org.suspend, org.unsuspend, org.invite, invite.accept,
// invite.revoke, invite.resend, org.set_role, org.remove_member, org.leave, workspace.create,
// workspace.update, workspace.delete, workspace.set_member, workspace.remove_member.
// Only the fields the op uses are read; a missing required field is kBadRequest naming it.
struct WriteRequest {
  std::string op;
  std::string actor;  // "" = operator write without an actor

  std::string user, org, workspace, invitation, token, email, name, role, team;
  std::optional<std::string> workspace_name;         // org.create
  std::optional<std::map<std::string, std::string>> restrictions;  // workspace.set_member:
      // manager flags as "true"/"false", or contact_visibility
  std::optional<std::string> plan, status;
  std::optional<int64_t> seats, workspace_limit, allowance, ttl_s;
  std::optional<std::vector<std::string>> features;
  std::optional<AttrMap> billing, attrs;
  std::optional<SsoSettings> sso;
  std::optional<std::vector<WorkspaceGrant>> grants;  // org.invite workspaces

  // Optional authorization hook, called inside the write transaction, before the op is applied,
  // with a Reader over that transaction's state. Returning a non-ok Status refuses the write
  // (nothing of it is applied). Must be deterministic, fast, and must not block or throw.
  // The daemon uses it to evaluate its policy for writes that carry an actor, race-free.
  std::function<Status(Reader&, const WriteRequest&)> authorize;
};

struct WriteResult {
  Status status;
  uint64_t rev = 0;        // revision of the commit that applied this write (0 if refused)
  std::string workspace;   // org.create: the default workspace id
  std::string invitation;  // org.invite
  std::string token;       // org.invite, invite.resend: the secret (only time it is revealed)
};

using WriteCallback = std::function<void(WriteResult)>;

// ---------------------------------------------------------------------------------------------
// Bulk import (initial loads). Records are applied in large transactions, bypassing per-write
// change records except one summary record per import; invariants are checked.
// ---------------------------------------------------------------------------------------------
struct ImportRecord {
  enum class Kind : uint8_t { kUser, kOrg, kOrgMember, kWorkspace, kWorkspaceMember };
  Kind kind = Kind::kUser;
  // kUser: user, email, email_verified, allowance
  // kOrg: org, name, creator(user), plan, status, seats, workspace_limit, features, sso, attrs
  // kOrgMember: org, user, role; kWorkspace: workspace, org, name, attrs
  // kWorkspaceMember: workspace, user, role, team, restrictions
  WriteRequest fields;
  bool email_verified = false;
};

struct ImportStats {
  uint64_t records = 0;
  uint64_t memberships = 0;
  double seconds = 0;
  uint64_t store_bytes = 0;
};

struct Options {
  std::string path;                          // directory holding data.mdb
  size_t map_size = size_t{64} << 30;        // virtual; file grows as needed
  bool durable = true;                       // false: MDB_NOSYNC (tests, benchmarks only)
  unsigned max_readers = 512;
  size_t max_batch = 1024;                   // writes per group commit at most
  std::string default_workspace_name = "My Workspace";
  int64_t default_invite_ttl_s = 7 * 86400;
  std::vector<std::string> extra_org_roles;  // accepted in addition to the four built-ins
  std::vector<std::string> extra_workspace_roles;
  std::function<int64_t()> clock;            // unix seconds; default: system clock
  // Subscription of a new org (org.create may override plan/seats/workspace_limit).
  std::string default_plan = "trial";
  uint32_t default_seats = 10;
  uint32_t default_workspace_limit = 5;
};

class Store {
 public:
  // Opens (creating if needed) the store at options.path. Fails with a clear message if the
  // files were written by a newer or unknown schema version, or are not a Gatehouse store.
  static Status Open(const Options& options, std::unique_ptr<Store>* out);

  virtual ~Store() = default;  // stops the writer after committing queued writes
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // A new renewable read transaction (starts reset; call Renew()). Holds one LMDB reader slot
  // (Options::max_readers) for its lifetime. REQUIRES: destroyed before the Store.
  virtual std::unique_ptr<ReadTxn> NewReadTxn() = 0;

  // Queues a write; `done` runs on the writer thread once the write's commit is durable, or
  // when it is refused. `done` must be quick and must not call Write().
  virtual void Submit(WriteRequest req, WriteCallback done) = 0;
  // Blocking convenience over Submit().
  virtual WriteResult Write(WriteRequest req) = 0;

  // Last committed revision (atomic load; never goes backwards).
  virtual uint64_t Revision() const noexcept = 0;
  // Registers fn to run on the writer thread after each durable commit with its revision (the
  // last revision of the batch), before that batch's write callbacks run. Returns a handle for
  // Unsubscribe. fn must be quick, must not block and must not call Subscribe/Unsubscribe.
  virtual uint64_t Subscribe(std::function<void(uint64_t rev)> fn) = 0;
  virtual void Unsubscribe(uint64_t handle) = 0;

  // Bulk import; sorted large transactions. Not concurrent with other writes' durability
  // guarantees beyond "all or nothing per batch of batch_size records".
  virtual Status Import(const std::vector<ImportRecord>& records, ImportStats* stats,
                        size_t batch_size = 100000) = 0;

  // Flushes and stops accepting writes; queued writes complete first. Idempotent.
  virtual void Close() = 0;

 protected:
  Store() = default;
};

// ---------------------------------------------------------------------------------------------
// Inline view decoding (packed encodings of docs/storage.md). Malformed input ends iteration.
// ---------------------------------------------------------------------------------------------
namespace view_detail {
inline bool Varint(std::string_view* in, uint32_t* v) noexcept {
  uint32_t r = 0;
  for (int shift = 0; shift <= 28 && !in->empty(); shift += 7) {
    const uint8_t b = static_cast<uint8_t>((*in)[0]);
    in->remove_prefix(1);
    r |= static_cast<uint32_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = r;
      return true;
    }
  }
  return false;
}
inline bool Prefixed(std::string_view* in, std::string_view* out) noexcept {
  uint32_t n = 0;
  if (!Varint(in, &n) || n > in->size()) return false;
  *out = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}
inline bool Fixed64(std::string_view* in, uint64_t* v) noexcept {
  if (in->size() < 8) return false;
  uint64_t r = 0;
  for (int i = 0; i < 8; ++i) r |= static_cast<uint64_t>(static_cast<uint8_t>((*in)[i])) << (8 * i);
  in->remove_prefix(8);
  *v = r;
  return true;
}
// One attrs entry: [len-prefixed key][kind byte][payload]; payload: kBool 1 byte, kInt/kDouble
// fixed64, kString len-prefixed, kNull nothing.
bool NextAttr(std::string_view* in, std::string_view* key, AttrValue* v) noexcept;
}  // namespace view_detail

template <typename Fn>
void StringListView::ForEach(Fn&& fn) const noexcept {
  std::string_view in = encoded_, s;
  while (!in.empty() && view_detail::Prefixed(&in, &s)) fn(s);
}

template <typename Fn>
void AttrsView::ForEach(Fn&& fn) const noexcept {
  std::string_view in = encoded_, key;
  AttrValue v;
  while (!in.empty() && view_detail::NextAttr(&in, &key, &v)) fn(key, static_cast<const AttrValue&>(v));
}

template <typename Fn>
void InvitationView::ForEachGrant(Fn&& fn) const noexcept {
  std::string_view in = grants_encoded, ws, role;
  while (!in.empty() && view_detail::Prefixed(&in, &ws) && view_detail::Prefixed(&in, &role)) {
    fn(ws, role);
  }
}

}  // namespace gatehouse::store

#endif  // GATEHOUSE_STORE_STORE_H_
