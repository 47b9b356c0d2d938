// policy::Facts over a store::Reader: the seam where the evaluator reads memberships.
//
// Packed string lists of the store (features, exempt roles, restriction flags) are unpacked into
// fixed arrays owned by the adapter, so lookups never allocate; a list longer than kMaxList is
// truncated (and counted in truncated()), which can only deny more, never allow more... except
// for sso_exempt_roles, where truncation could drop an exemption: that is also deny-only.
//
// Lifetime: every view handed out is valid until the Reader's snapshot ends and until the
// adapter's next lookup of the same kind (one org, one workspace membership at a time).
//
// One read fewer per workspace decision: a workspace membership row carries the member's org
// role (denormalized by the store, always equal to the org_members row in the same snapshot).
// WorkspaceMembership() remembers (user, org, org_role) of the row it returned, and a following
// OrgMembership() for the same user and org is answered from it without a store read — only
// while the Reader and its snapshot are the same (Reader::SnapshotId()); rows of schema 1 (no
// org role) and Readers without snapshot ids always read the store. Fail-closed is unchanged:
// the memo is only ever set from a found row, and errors still come from the store.
//
// Org cache (issue #5; off unless SetOrgCacheEntries() sized it). Orgs are few and hot compared
// with memberships, so Org() serves org rows from a small table owned by the adapter instead of
// a B-tree read. An entry is an owned copy of what Org() and org attributes need (id, plan,
// status, suspended, counters, features, SSO settings, and attrs when they fit), tagged with the
// Reader::ReaderId() and Reader::Revision() of the snapshot it was read from; it answers only a
// lookup of the same org id under the same ReaderId and revision. Equal revision of the same
// Reader means identical rows (every committed write advances the revision), so a commit makes
// every entry stale at once, with no invalidation pass; a different Reader (another store, or
// the writer's transaction) never hits. Not consulted when the Reader has no ReaderId(), its
// revision is 0, or it has seen a storage error in this snapshot: those lookups read the store,
// so errors (kError) and not-found always come from the store, never from the cache. Org rows
// whose strings need more than kOrgSlotBytes are not cached (read each time); attrs that don't
// fit are left out of the entry and read from the store when a condition asks for one.
// The table is 2-way set associative (least recently used way replaced), allocated once by
// SetOrgCacheEntries(); lookups, hits and fills never allocate. Attr() uses an entry it finds
// but never fills one, so it cannot overwrite the entry an Org() answer points into.
//
// Thread-safety: one evaluation at a time (one adapter per worker, or per write authorization).
// The org cache belongs to its adapter: no sharing, no locks.
#ifndef GATEHOUSE_DAEMON_FACTS_ADAPTER_H_
#define GATEHOUSE_DAEMON_FACTS_ADAPTER_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "policy/facts.h"
#include "store/store.h"

namespace gatehouse::daemon {

// A counter with one writer (the worker that owns it) that other threads may read (stats,
// /metrics): relaxed load + store, no locked instruction on the hot path.
class RelaxedCounter {
 public:
  RelaxedCounter() = default;
  RelaxedCounter(const RelaxedCounter& o) : v_(o.Get()) {}
  RelaxedCounter& operator=(const RelaxedCounter& o) {
    v_.store(o.Get(), std::memory_order_relaxed);
    return *this;
  }
  void Add(uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t Get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class StoreFacts : public policy::Facts {
 public:
  static constexpr size_t kMaxList = 64;
  // Largest org cache (entries); SetOrgCacheEntries() clamps to it.
  static constexpr size_t kMaxOrgCacheEntries = size_t{1} << 16;
  // String bytes of one org cache entry (an entry is 256 bytes in all).
  static constexpr size_t kOrgSlotBytes = 200;

  explicit StoreFacts(store::Reader* reader = nullptr);
  ~StoreFacts() override;
  StoreFacts(const StoreFacts&) = delete;
  StoreFacts& operator=(const StoreFacts&) = delete;

  void set_reader(store::Reader* reader) { reader_ = reader; }

  // Allocates an empty org cache of `entries` entries (rounded up to a power of two, at least 2,
  // at most kMaxOrgCacheEntries), or frees it when 0. Not on the request path: call at set-up.
  // Views handed out before are invalidated.
  void SetOrgCacheEntries(size_t entries);
  size_t org_cache_entries() const { return org_sets_ * 2; }

  policy::Lookup User(std::string_view user, policy::UserFacts* out) noexcept override;
  policy::Lookup Org(std::string_view org, policy::OrgFacts* out) noexcept override;
  policy::Lookup Workspace(std::string_view ws, policy::WorkspaceFacts* out) noexcept override;
  policy::Lookup OrgMembership(std::string_view user, std::string_view org,
                               policy::OrgMembershipFacts* out) noexcept override;
  policy::Lookup WorkspaceMembership(std::string_view user, std::string_view ws,
                                     policy::WorkspaceMembershipFacts* out) noexcept override;
  policy::Lookup Attr(Entity entity, std::string_view id, std::string_view key,
                      policy::Value* out) noexcept override;

  uint64_t truncated() const { return truncated_; }
  // Org memberships answered from the memoized workspace membership (tests, metrics).
  uint64_t org_role_hits() const { return org_role_hits_; }
  // Org cache: Org() lookups answered from the cache, lookups that read the store while the
  // cache was usable, and found rows too large to cache (tests; stats and /metrics sum them
  // over the workers, so they may be read from another thread).
  uint64_t org_cache_hits() const { return org_cache_hits_.Get(); }
  uint64_t org_cache_misses() const { return org_cache_misses_.Get(); }
  uint64_t org_cache_oversize() const { return org_cache_oversize_.Get(); }

 private:
  struct OrgSlot;

  policy::Lookup Miss() noexcept;
  size_t Unpack(const store::StringListView& list, std::string_view* dst) noexcept;
  void ToOrgFacts(const store::OrgView& v, policy::OrgFacts* out) noexcept;
  // The cache entry for `org` in the Reader's current snapshot, or null (*set: its set, or null
  // when the cache can't be used for this snapshot).
  OrgSlot* FindOrg(std::string_view org, OrgSlot** set) noexcept;
  void FillOrg(const store::OrgView& v, OrgSlot* set) noexcept;
  // The cached fields of an entry as an OrgView (views into the entry; name, creator and
  // billing are not cached and stay empty, attrs too unless the entry holds them).
  static void LoadOrgView(const OrgSlot& e, store::OrgView* v) noexcept;

  store::Reader* reader_;
  std::array<std::string_view, kMaxList> features_;
  std::array<std::string_view, kMaxList> exempt_;
  std::array<std::string_view, kMaxList> flags_;
  uint64_t truncated_ = 0;
  uint64_t org_role_hits_ = 0;
  // The last workspace membership read: valid iff memo_reader_ == reader_ and memo_snapshot_ ==
  // reader_->SnapshotId() != 0. Views into that snapshot.
  const store::Reader* memo_reader_ = nullptr;
  uint64_t memo_snapshot_ = 0;
  std::string_view memo_user_, memo_org_, memo_org_role_;
  // Org cache: org_sets_ sets of 2 entries (0: off); org_sets_ is a power of two.
  std::unique_ptr<OrgSlot[]> org_slots_;
  size_t org_sets_ = 0;
  RelaxedCounter org_cache_hits_;
  RelaxedCounter org_cache_misses_;
  RelaxedCounter org_cache_oversize_;
};

}  // namespace gatehouse::daemon

#endif  // GATEHOUSE_DAEMON_FACTS_ADAPTER_H_
