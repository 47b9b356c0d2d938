// The evaluator's view of the world: the request being decided and the facts interface through
// which it reads memberships, orgs and workspaces.
//
// This is the seam between policy/ and the store (LevelDB's Env, in our house): the daemon
// implements Facts over a store read transaction; tests implement it over plain structs.
//
// Thread-safety: a Facts object is used by one evaluation at a time. All string_views handed to
// the evaluator (in Request and in *Facts structs) must stay valid until Evaluate returns.
// policy/ never includes store/ or daemon/.
#ifndef GATEHOUSE_POLICY_FACTS_H_
#define GATEHOUSE_POLICY_FACTS_H_

#include <cstdint>
#include <span>
#include <string_view>

namespace gatehouse::policy {

// A scalar value. kMissing means "absent" (has() is false); kNull is an explicit JSON null.
struct Value {
  enum class Kind : uint8_t { kMissing, kNull, kBool, kInt, kDouble, kString };
  Kind kind = Kind::kMissing;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string_view s;

  static Value Bool(bool v) { Value x; x.kind = Kind::kBool; x.b = v; return x; }
  static Value Int(int64_t v) { Value x; x.kind = Kind::kInt; x.i = v; return x; }
  static Value Double(double v) { Value x; x.kind = Kind::kDouble; x.d = v; return x; }
  static Value String(std::string_view v) { Value x; x.kind = Kind::kString; x.s = v; return x; }
  static Value Null() { Value x; x.kind = Kind::kNull; return x; }
};

struct KeyValue {
  std::string_view key;
  Value value;
};
using AttrList = std::span<const KeyValue>;        // small, unsorted; linear lookup
using StringList = std::span<const std::string_view>;

// The request being decided. Filled by the daemon from the protocol request (views into the
// request buffer) or by the daemon itself when it authorizes a write.
struct Request {
  std::string_view user;
  std::string_view action;
  std::string_view org;        // may be empty if workspace is given
  std::string_view workspace;  // may be empty for org-scoped actions
  // resource
  std::string_view resource_type;
  std::string_view resource_id;
  AttrList resource_attrs;     // e.g. assignee, team, target_user, target_role, new_role
  // context
  std::string_view auth_method;  // password | google | sso | "" (absent)
  std::string_view auth_idp;
  int64_t auth_age_s = -1;       // -1: absent
  std::string_view client;
  AttrList context_attrs;        // any other scalar context keys, flattened ("a.b" keys)
};

struct UserFacts {
  std::string_view id;
  std::string_view email;
  bool email_verified = false;
};

struct OrgFacts {
  std::string_view id;
  std::string_view plan;
  std::string_view status;  // TRIAL, ACTIVE, ..., FROZEN, CANCELED
  bool suspended = false;
  StringList features;
  int64_t seats = 0;
  int64_t members = 0;
  int64_t pending_invitations = 0;
  int64_t workspaces = 0;
  int64_t workspace_limit = 0;
  bool sso_enabled = false;
  bool sso_enforced = false;
  std::string_view sso_idp;
  StringList sso_exempt_roles;
};

struct WorkspaceFacts {
  std::string_view id;
  std::string_view org;  // owning org
};

struct OrgMembershipFacts {
  std::string_view role;
};

struct WorkspaceMembershipFacts {
  std::string_view role;
  std::string_view team;                // empty: none
  StringList flags;                     // set manager restriction flags
  std::string_view contact_visibility;  // agents only; empty otherwise
  // Owning org of the workspace, or "" when the Facts implementation doesn't know it. When
  // non-empty, the evaluator trusts it and skips Facts::Workspace() (one store read fewer per
  // workspace check); it must then equal what Workspace() would return as WorkspaceFacts::org.
  std::string_view org;
};

enum class Lookup : uint8_t { kFound, kNotFound, kError };

// Implemented by the daemon over the store, and by tests over fixtures. Every method is
// noexcept; kError makes the evaluator deny with reason "internal" (fail closed).
class Facts {
 public:
  enum class Entity : uint8_t { kUser, kOrg, kWorkspace };

  virtual ~Facts() = default;
  virtual Lookup User(std::string_view user, UserFacts* out) noexcept = 0;
  virtual Lookup Org(std::string_view org, OrgFacts* out) noexcept = 0;
  virtual Lookup Workspace(std::string_view ws, WorkspaceFacts* out) noexcept = 0;
  virtual Lookup OrgMembership(std::string_view user, std::string_view org,
                               OrgMembershipFacts* out) noexcept = 0;
  virtual Lookup WorkspaceMembership(std::string_view user, std::string_view ws,
                                     WorkspaceMembershipFacts* out) noexcept = 0;
  // Free-form attributes (user.attrs.*, org.attrs.*, workspace.attrs.*), looked up lazily only
  // when a condition needs one. kNotFound: the attribute is absent.
  virtual Lookup Attr(Entity entity, std::string_view id, std::string_view key,
                      Value* out) noexcept = 0;
};

// The outcome of one evaluation. `rule` and `reason` point into the compiled policy (or static
// storage) and stay valid as long as the CompiledPolicy that produced them.
struct Decision {
  bool allow = false;
  std::string_view rule;    // deciding rule id; "" when a built-in step decided
  std::string_view reason;  // e.g. granted, no_permission, not_member, scope_mismatch,
                            // unknown_action, scope_required, not_found, org_suspended,
                            // org_locked, sso_required, sso_session_expired, internal, or a
                            // policy-defined reason code
};

}  // namespace gatehouse::policy

#endif  // GATEHOUSE_POLICY_FACTS_H_
