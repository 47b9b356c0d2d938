// The small key-value transaction interface the invariant logic is written against.
//
// One "table" per record family (an LMDB named DBI in the LMDB backend, a std::map in the memory
// backend). Keys and values are the byte layouts of docs/storage.md. Every write the store makes
// is a deterministic function of (the state visible through this interface, the WriteRequest,
// the clock value and random bytes handed in as inputs) — see apply.h.
//
// Thread-safety: a KvRead/KvTxn object is used by one thread at a time.
// View lifetime: string_views returned by Get/Scan stay valid until the next Put/Del/nested
// transaction boundary on the same transaction, or until the transaction ends.
#ifndef GATEHOUSE_STORE_INTERNAL_KV_H_
#define GATEHOUSE_STORE_INTERNAL_KV_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gatehouse::store::internal {

enum class Table : uint8_t {
  kMeta = 0,        // "magic", "schema_version", "rev"
  kUsers,           // user id -> UserValue
  kEmails,          // lowercase email -> user id
  kOrgs,            // org id -> OrgValue (subscription, security, attrs, counters)
  kOrgMembers,      // kp(org) user -> OrgMemberValue (role)
  kUserOrgs,        // kp(user) org -> "" (orgs of a user)
  kWorkspaces,      // ws id -> WorkspaceValue (org, name, attrs, members)
  kOrgWorkspaces,   // kp(org) ws -> ""
  kWsMembers,       // kp(ws) user -> WsMemberValue (org, role, team, flags, visibility)
  kUserWorkspaces,  // kp(user) kp(org) ws -> "" (a user's workspaces in an org; cascades)
  kInvitations,     // invitation id -> InvitationValue
  kOrgInvitations,  // kp(org) invitation id -> ""
  kInvTokens,       // sha256(token) (32 bytes) -> invitation id
  kInvPending,      // kp(org) lowercase email -> invitation id (one PENDING per pair)
  kChanges,         // big-endian u64 rev -> change record JSON
  kCount
};
constexpr int kTableCount = static_cast<int>(Table::kCount);
const char* TableName(Table t) noexcept;  // LMDB DBI names, "gh.users", ...

using ScanFn = std::function<bool(std::string_view key, std::string_view value)>;

class KvRead {
 public:
  virtual ~KvRead() = default;
  // Returns true iff key is present; then *stored_key (a view of the stored key, not of `key`)
  // and *value are set. On a storage error returns false and error() becomes true.
  virtual bool Get(Table t, std::string_view key, std::string_view* stored_key,
                   std::string_view* value) noexcept = 0;
  // Returns true iff key is present (no views; backends may answer cheaper than Get).
  virtual bool Exists(Table t, std::string_view key) noexcept {
    std::string_view k, v;
    return Get(t, key, &k, &v);
  }
  // Calls fn for each entry whose key starts with `prefix` and is >= `start` (start must begin
  // with prefix, or be empty = from the prefix), in key order, until fn returns false.
  // Returns false on a storage error (error() becomes true).
  virtual bool Scan(Table t, std::string_view prefix, std::string_view start, const ScanFn& fn) = 0;
  virtual bool error() const noexcept = 0;
};

class KvTxn : public KvRead {
 public:
  // Each returns false on a storage error (error() becomes true).
  virtual bool Put(Table t, std::string_view key, std::string_view value) = 0;
  // Deleting an absent key is not an error.
  virtual bool Del(Table t, std::string_view key) = 0;
  // Puts many entries. REQUIRES: kvs sorted by key, no duplicates among them. With unique, an
  // existing key is not overwritten: returns false with *dup set to it (error() unchanged).
  // Backends may append fast when the run sorts after the table's last key.
  virtual bool PutSorted(Table t, const std::vector<std::pair<std::string, std::string>>& kvs, bool unique,
                         std::string* dup) {
    for (const auto& [k, v] : kvs) {
      std::string_view sk, sv;
      if (unique && Get(t, k, &sk, &sv)) {
        *dup = k;
        return false;
      }
      if (!Put(t, k, v)) return false;
    }
    return true;
  }
  // Appends the change record of revision rev (rev > every earlier one).
  virtual bool AppendChange(uint64_t rev, std::string_view json) = 0;

  // Nested transaction: everything since BeginNested is kept by CommitNested or undone by
  // AbortNested. One level of nesting is enough for the store.
  virtual bool BeginNested() = 0;
  virtual bool CommitNested() = 0;
  virtual void AbortNested() = 0;
};

}  // namespace gatehouse::store::internal

#endif  // GATEHOUSE_STORE_INTERNAL_KV_H_
