// The load generator's synthetic world and request stream.
//
// Everything is a pure function of (memberships, seed, index): the generator never keeps the
// world in memory, so a 10M-membership world costs no RAM in the client, the importer streams
// it into Store::Import in chunks, and the request generator can tell, for any request, every
// fact an attribute-passing engine (Cerbos) needs in its request.
//
// Shape (respond.io roles, model.md):
//   users = memberships / 4; each user is in exactly one org (org = user % orgs, ~50 users per
//   org) and in 3 of the org's 5 workspaces (consecutive, starting at a hashed offset):
//   1 org membership + 3 workspace memberships = 4 memberships per user.
//   Org roles: the org's first user is org_admin (creator); others 4% org_admin, 4%
//   billing_admin, 8% user_admin, 84% member. Workspace roles: 10% owner, 30% manager (each
//   restriction flag 15%), 60% agent (team t0..t3; visibility 40% all, 20% each restricted mode).
//   Orgs: 3% TRIAL_ENDED (locked), 20% SSO-enforced (IdP idp-<org>), 50% have sso+webhooks.
//   Requests: ~50/50 allow/deny (see MakeRequest); SSO orgs get an SSO session 80% of the time.
//
// Thread-safety: all functions are pure; World is immutable after construction.
#ifndef GATEHOUSE_BENCH_LOADGEN_WORLD_H_
#define GATEHOUSE_BENCH_LOADGEN_WORLD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "store/store.h"

namespace gatehouse::bench {

inline uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
inline uint64_t H(uint64_t a, uint64_t b) { return Mix(a * 0x100000001b3ull ^ Mix(b)); }

constexpr int kWsPerOrg = 5;
constexpr int kWsPerUser = 3;

struct OrgInfo {
  bool locked = false;        // status TRIAL_ENDED
  bool sso_enforced = false;  // idp "idp-<org>"
  bool features = false;      // sso + webhooks
};

struct WsMemberInfo {
  bool member = false;
  std::string role;  // owner | manager | agent
  bool flags[4] = {};  // no_ws_settings, no_contact_delete, no_data_export, no_integrations
  std::string team;        // agents
  std::string visibility;  // agents
};

extern const char* const kFlagNames[4];

// One check request, owned. Empty org / workspace = absent.
struct Req {
  std::string user, action, org, workspace;
  std::string res_type, res_id;
  // resource attrs (empty = absent)
  std::string assignee, team, target_user, target_role, new_role;
  bool has_assignee = false;
  // context.auth
  std::string auth_method, auth_idp;
  int64_t auth_age_s = -1;
};

class World {
 public:
  explicit World(uint64_t memberships, uint64_t seed = 1);

  uint64_t users() const { return users_; }
  uint64_t orgs() const { return orgs_; }
  uint64_t memberships() const { return users_ * (1 + kWsPerUser); }
  uint64_t seed() const { return seed_; }

  std::string UserId(uint64_t i) const;
  std::string OrgId(uint64_t g) const;
  std::string WsId(uint64_t g, int k) const;

  uint64_t OrgOf(uint64_t user) const { return user % orgs_; }
  OrgInfo Org(uint64_t g) const;
  std::string OrgRole(uint64_t user) const;
  int FirstWs(uint64_t user) const { return static_cast<int>(H(seed_ ^ 0x77, user) % kWsPerOrg); }
  WsMemberInfo WsMember(uint64_t user, int k) const;

  // Streams the world into the store in chunks of `chunk` records. Returns the first error.
  store::Status Import(store::Store* s, store::ImportStats* total, size_t chunk = 200000) const;

  // Request number r of the stream. Also returns the facts a PEP would pass to Cerbos.
  struct Facts {
    std::string org_role;  // "" = not a member of the resolved org
    WsMemberInfo ws;       // explicit membership in the requested workspace
    OrgInfo org;
    std::string resolved_org;
    std::string sso_idp;  // "" unless SSO is enforced
    bool workspace_scoped = false;
  };
  Req MakeRequest(uint64_t r, Facts* facts = nullptr) const;
  // Check k of user batch b: the shape of a UI page asking what one user may do. One user (a
  // hash of b), one session context for the whole batch; 25% org actions in the user's org, 75%
  // workspace actions in one of the user's own workspaces, each on its own resource.
  Req MakeUserRequest(uint64_t b, int k) const;

 private:
  // Resource (type, id, attrs) and session context of request r for user i in org rg.
  void AddResourceAndContext(uint64_t r, uint64_t i, uint64_t rg, Req* q) const;

  uint64_t users_, orgs_, seed_;
};

// Protocol v1 JSON for one check (no "op"/"id" when `item` is true: a check_batch element).
void AppendCheckJson(const Req& q, bool item, uint64_t id, std::string* out);
// Cerbos /api/check/resources body for the same request, with every attribute the PEP looked up.
void AppendCerbosJson(const Req& q, const World::Facts& f, uint64_t id, std::string* out);

}  // namespace gatehouse::bench

#endif  // GATEHOUSE_BENCH_LOADGEN_WORLD_H_
