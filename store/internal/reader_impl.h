// The one Reader implementation: typed reads decoded from any KvRead (an LMDB read txn, the
// LMDB write txn during authorize, or a memory snapshot).
//
// Thread-safety: used by one thread at a time. Point reads (Get*) do not allocate.
#ifndef GATEHOUSE_STORE_INTERNAL_READER_IMPL_H_
#define GATEHOUSE_STORE_INTERNAL_READER_IMPL_H_

#include <cstdint>
#include <functional>

#include "store/internal/kv.h"
#include "store/store.h"

namespace gatehouse::store::internal {

class KvReader : public ReadTxn {
 public:
  // clock: used to report PENDING invitations past expires_at as EXPIRED. Not owned.
  KvReader(KvRead* kv, const std::function<int64_t()>* clock);

  uint64_t Revision() const noexcept override { return rev_; }
  uint64_t SnapshotId() const noexcept override { return snapshot_; }
  uint64_t ReaderId() const noexcept override { return id_; }
  bool error() const noexcept override { return corrupt_ || (kv_ != nullptr && kv_->error()); }
  // Default Renew/Reset for readers whose snapshot is managed elsewhere (authorize).
  bool Renew() noexcept override {
    NextSnapshot();
    return kv_ != nullptr;
  }
  void Reset() noexcept override { NextSnapshot(); }

  bool GetUser(std::string_view user, UserView* out) noexcept override;
  bool FindUserByEmail(std::string_view email, UserView* out) noexcept override;
  bool GetOrg(std::string_view org, OrgView* out) noexcept override;
  bool GetWorkspace(std::string_view ws, WorkspaceView* out) noexcept override;
  bool GetOrgMember(std::string_view user, std::string_view org, OrgMemberView* out) noexcept override;
  bool GetWorkspaceMember(std::string_view user, std::string_view ws,
                          WorkspaceMemberView* out) noexcept override;
  bool GetInvitation(std::string_view id, InvitationView* out) noexcept override;

  bool ListOrgsOfUser(std::string_view user, std::vector<OrgMemberView>* out) override;
  bool ListOrgMembers(std::string_view org, std::string_view cursor, size_t limit,
                      std::vector<OrgMemberView>* out, std::string* next) override;
  bool ListWorkspaceMembers(std::string_view ws, std::string_view cursor, size_t limit,
                            std::vector<WorkspaceMemberView>* out, std::string* next) override;
  bool ListWorkspacesOfOrg(std::string_view org, std::vector<WorkspaceView>* out) override;
  bool ListWorkspacesOfUserInOrg(std::string_view user, std::string_view org,
                                 std::vector<WorkspaceMemberView>* out) override;
  bool ListInvitationsOfOrg(std::string_view org, std::vector<InvitationView>* out) override;
  bool ReadChanges(uint64_t since, size_t limit, std::vector<ChangeView>* out) override;
  bool ListUsers(std::string_view cursor, size_t limit, std::vector<UserView>* out,
                 std::string* next) override;
  bool ListOrgs(std::string_view cursor, size_t limit, std::vector<OrgView>* out,
                std::string* next) override;

 protected:
  void set_kv(KvRead* kv) { kv_ = kv; }
  void set_rev(uint64_t rev) { rev_ = rev; }
  void clear_corrupt() { corrupt_ = false; }
  // Call whenever the snapshot ends or changes (Renew, Reset): views handed out before may die.
  void NextSnapshot() noexcept { ++snapshot_; }
  // Reads the revision stored in kMeta ("rev"); 0 if absent.
  bool LoadRevision() noexcept;

 private:
  bool Corrupt() noexcept {
    corrupt_ = true;
    return false;
  }
  KvRead* kv_;
  const std::function<int64_t()>* clock_;
  uint64_t rev_ = 0;
  const uint64_t id_;  // unique per object, from a process-wide counter (never 0)
  uint64_t snapshot_;  // unique per object (high 32 bits: id_) and per snapshot (low bits)
  bool corrupt_ = false;
};

}  // namespace gatehouse::store::internal

#endif  // GATEHOUSE_STORE_INTERNAL_READER_IMPL_H_
