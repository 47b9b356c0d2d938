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
// Thread-safety: one evaluation at a time (one adapter per worker, or per write authorization).
#ifndef GATEHOUSE_DAEMON_FACTS_ADAPTER_H_
#define GATEHOUSE_DAEMON_FACTS_ADAPTER_H_

#include <array>
#include <cstdint>
#include <string_view>

#include "policy/facts.h"
#include "store/store.h"

namespace gatehouse::daemon {

class StoreFacts : public policy::Facts {
 public:
  static constexpr size_t kMaxList = 64;

  explicit StoreFacts(store::Reader* reader = nullptr) : reader_(reader) {}
  void set_reader(store::Reader* reader) { reader_ = reader; }

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

 private:
  policy::Lookup Miss() noexcept;
  size_t Unpack(const store::StringListView& list, std::string_view* dst) noexcept;

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
};

}  // namespace gatehouse::daemon

#endif  // GATEHOUSE_DAEMON_FACTS_ADAPTER_H_
