// MemoryFacts: a Facts implementation over plain in-memory fixtures — for policy tests
// (`gatehouse policy test`), unit tests and benchmarks.
//
// Usage: fill the public maps, call Finalize(), then evaluate. Finalize() builds the string_view
// lists handed to the evaluator and a flat open-addressing index over every user, org,
// workspace, org membership and workspace membership: a lookup is one hash of its key(s), one
// probe sequence and a key compare, and reads the record through a pointer into the maps (no
// per-lookup map walk). Lookups never allocate.
//
// After Finalize(): changing a record's scalar fields (status, seats, role, ...) is seen at
// once; adding records is seen too (a miss in the index falls back to the maps); changing a
// list (features, flags, exempt roles) or erasing a record requires another Finalize().
//
// Thread-safety: not thread-safe; one evaluation at a time (like every Facts).
#ifndef GATEHOUSE_POLICY_MEMORY_FACTS_H_
#define GATEHOUSE_POLICY_MEMORY_FACTS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>
#include <string>
#include <string_view>
#include <vector>

#include "policy/facts.h"
#include "policy/internal/bytes.h"

namespace gatehouse::policy {

// An owned scalar (Value with its own string storage).
struct OwnedValue {
  Value::Kind kind = Value::Kind::kNull;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string s;
  Value View() const;
};
using OwnedAttrs = std::map<std::string, OwnedValue, std::less<>>;

// Transparent string hash and equality: lookups by string_view without building a
// std::string, with the engine's inline fixed-cost name hash and word compares (no libc call).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return internal::HashName(s); }
};
struct StringEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept {
    return internal::SvEqual(a, b);
  }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, StringEq>;

class MemoryFacts final : public Facts {
 public:
  struct UserRec {
    std::string email;
    bool email_verified = false;
    OwnedAttrs attrs;
  };
  struct OrgRec {
    std::string plan;
    std::string status = "ACTIVE";
    bool suspended = false;
    std::vector<std::string> features;
    int64_t seats = 100;
    int64_t member_count = -1;     // -1: members.size()
    int64_t pending_invitations = 0;
    int64_t workspace_count = -1;  // -1: number of workspaces of this org
    int64_t workspace_limit = 10;
    bool sso_enabled = false;
    bool sso_enforced = false;
    std::string sso_idp;
    std::vector<std::string> sso_exempt_roles{"org_admin", "user_admin"};
    OwnedAttrs attrs;
    StringMap<std::string> members;  // user -> org role
    // Built by Finalize():
    std::vector<std::string_view> feature_views, exempt_views;
    int64_t workspaces_counted = 0;
  };
  struct WorkspaceMember {
    std::string role;
    std::string team;
    std::vector<std::string> flags;
    std::string contact_visibility;
    std::vector<std::string_view> flag_views;  // built by Finalize()
  };
  struct WorkspaceRec {
    std::string org;
    OwnedAttrs attrs;
    StringMap<WorkspaceMember> members;
  };

  StringMap<UserRec> users;
  StringMap<OrgRec> orgs;
  StringMap<WorkspaceRec> workspaces;
  bool fail = false;  // every lookup returns kError (tests of fail-closed behaviour)
  mutable uint64_t lookups = 0;

  MemoryFacts() = default;
  // Copies rebuild the index over their own maps (it points into the maps); moves keep it
  // (unordered_map moves keep their nodes).
  MemoryFacts(const MemoryFacts& o);
  MemoryFacts& operator=(const MemoryFacts& o);
  MemoryFacts(MemoryFacts&&) = default;
  MemoryFacts& operator=(MemoryFacts&&) = default;
  ~MemoryFacts() override = default;

  void Finalize();

  Lookup User(std::string_view user, UserFacts* out) noexcept override;
  Lookup Org(std::string_view org, OrgFacts* out) noexcept override;
  Lookup Workspace(std::string_view ws, WorkspaceFacts* out) noexcept override;
  Lookup OrgMembership(std::string_view user, std::string_view org,
                       OrgMembershipFacts* out) noexcept override;
  Lookup WorkspaceMembership(std::string_view user, std::string_view ws,
                             WorkspaceMembershipFacts* out) noexcept override;
  Lookup Attr(Entity entity, std::string_view id, std::string_view key,
              Value* out) noexcept override;

 private:
  enum class Kind : uint8_t { kUser, kOrg, kWorkspace, kOrgMember, kWorkspaceMember };
  // One index entry: the key (views into the maps' keys) and pointers to the records (unordered
  // map nodes don't move on insert or rehash). rec == nullptr: empty slot.
  struct Slot {
    uint64_t hash = 0;
    uint64_t head_a = 0, head_b = 0;  // the keys' head words (memory_facts.cc: Part)
    std::string_view a, b;       // id; or (user, org|workspace) for memberships
    const void* rec = nullptr;   // UserRec, OrgRec, WorkspaceRec, role string, WorkspaceMember
    const void* rec2 = nullptr;  // kWorkspaceMember: its WorkspaceRec
  };
  void Insert(Kind kind, std::string_view a, std::string_view b, const void* rec,
              const void* rec2);
  // The slot for (kind, a, b), or nullptr when the index doesn't hold it.
  const Slot* Find(Kind kind, std::string_view a, std::string_view b) const noexcept;
  const UserRec* FindUser(std::string_view id) const noexcept;
  const OrgRec* FindOrg(std::string_view id) const noexcept;
  const WorkspaceRec* FindWorkspace(std::string_view id) const noexcept;

  std::vector<Slot> index_;  // power-of-two size, at most half full; empty before Finalize()
  uint64_t mask_ = 0;
  int shift_ = 63;  // 64 - log2(index_.size()): a slot is the hash's top bits
};

}  // namespace gatehouse::policy

#endif  // GATEHOUSE_POLICY_MEMORY_FACTS_H_
