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

 private:
  policy::Lookup Miss() noexcept;
  size_t Unpack(const store::StringListView& list, std::string_view* dst) noexcept;

  store::Reader* reader_;
  std::array<std::string_view, kMaxList> features_;
  std::array<std::string_view, kMaxList> exempt_;
  std::array<std::string_view, kMaxList> flags_;
  uint64_t truncated_ = 0;
};

}  // namespace gatehouse::daemon

#endif  // GATEHOUSE_DAEMON_FACTS_ADAPTER_H_
