// Evaluate / ListAllowedActions: the built-in decision skeleton (docs/policy.md §5) over a
// CompiledPolicy. No heap allocation, no exceptions, no locks.
#include <cstdint>
#include <cstring>
#include <new>

#include "policy/internal/compiled.h"
#include "policy/internal/expr_run.h"
#include "policy/internal/frame.h"
#include "policy/policy.h"

namespace gatehouse::policy {
namespace {

using internal::kNone;
using internal::RtValue;
using internal::Scope;
using internal::Var;

constexpr std::string_view kGranted = "granted";
constexpr std::string_view kNoPermission = "no_permission";

Decision Deny(std::string_view reason, std::string_view rule = {}) noexcept {
  Decision d;
  d.allow = false;
  d.rule = rule;
  d.reason = reason;
  return d;
}

// Absent (kMissing) when empty. Branch-free: a missing value's other fields are never read.
[[gnu::always_inline]] inline RtValue Str(std::string_view s) noexcept {
  RtValue v;
  v.kind = s.empty() ? RtValue::Kind::kMissing : RtValue::Kind::kString;
  v.str = s.data();
  v.n = static_cast<uint32_t>(s.size());
  return v;
}
[[gnu::always_inline]] inline RtValue Bool(bool b) noexcept { return RtValue::Bool(b); }
// Request attributes (resource.attrs.*, context.*): a lookup scans the request's list comparing
// lengths first, then head words (the key's is precomputed: ProgramPool::name_heads; bytes only
// past 8). Results (a pointer to the request's value, or null) are memoized per key id
// (ProgramPool::names: equal keys have equal ids) in a small direct-mapped table, so rules
// testing the same attribute search the list once.
class AttrMemo {
 public:
  static constexpr size_t kMemo = 16;

  [[gnu::always_inline]] const Value* Find(AttrList attrs, const internal::ProgramPool& pool,
                                           uint32_t key_id) noexcept {
    const uint32_t slot = key_id % kMemo;
    if ((memo_valid_ >> slot & 1u) && ids_[slot] == key_id) return values_[slot];
    return Miss(attrs, pool, key_id, slot);
  }

 private:
  [[gnu::noinline]] const Value* Miss(AttrList attrs, const internal::ProgramPool& pool,
                                      uint32_t key_id, uint32_t slot) noexcept {
    const std::string_view key = pool.names[key_id];
    const uint64_t head = pool.name_heads[key_id];
    const size_t n = key.size();
    const Value* found = nullptr;
    for (const KeyValue& kv : attrs) {
      if (kv.key.size() == n && internal::HeadWord(kv.key) == head &&
          (n <= 8 || internal::BytesEqual(kv.key.data() + 8, key.data() + 8, n - 8))) {
        found = &kv.value;
        break;
      }
    }
    memo_valid_ |= 1u << slot;
    ids_[slot] = key_id;
    values_[slot] = found;
    return found;
  }

  // ids_ / values_ left uninitialized (no per-request clearing): an entry is read only when
  // its bit in memo_valid_ is set.
  uint32_t memo_valid_ = 0;
  uint32_t ids_[kMemo];
  const Value* values_[kMemo];
};

inline RtValue AttrValue(const Value* v) noexcept { return v ? RtValue::From(*v) : RtValue(); }

// Everything one decision knows about the requester, resolved once per request.
class Env final {
 public:
  Env(const CompiledPolicy& p, const Request& r, Facts& f) noexcept
      : policy(p), req(r), facts(f), bases(frame, r) {}

  const CompiledPolicy& policy;
  const Request& req;
  Facts& facts;

  // The org, the memberships and the derived values the condition leaves read in place
  // (frame.h states the invariants Resolve keeps).
  internal::Frame frame;
  const internal::Bases bases;
  std::string_view org_id;
  bool has_ws = false;
  bool has_wm = false;
  uint32_t org_role = kNone;        // role id of the org membership (kNone: undeclared)
  uint32_t own_ws_role = kNone;
  uint32_t eff_ws_role = kNone;
  uint32_t action = kNone;
  uint64_t org_role_bit = 0;  // 1 << org_role if org_role < 64, else 0
  uint64_t ws_role_bit = 0;   // 1 << eff_ws_role if eff_ws_role < 64, else 0

  enum class UserState : uint8_t { kUnloaded, kFound, kMissing };
  UserState user_state = UserState::kUnloaded;
  // Constructed by LoadUser (not zeroed per request): read only when user_state is kFound.
  union {
    UserFacts user;
  };
  AttrMemo resource_attrs;
  AttrMemo context_attrs;

  // Role id for `name` usable in the resolved org and of `scope`, or kNone.
  [[gnu::always_inline]] uint32_t ResolveRole(std::string_view name, Scope scope) const noexcept {
    if (name.empty()) return kNone;
    uint32_t id = policy.role_index.Find(name);
    if (id == kNone) return kNone;
    const internal::RoleDef& r = policy.roles[id];
    if (r.scope != scope) return kNone;
    if (!r.overlay_org.empty() && r.overlay_org != org_id) return kNone;
    return id;
  }

  // Request attributes for RunFast's attribute leaves (base: kBaseResourceAttrs or
  // kBaseContextAttrs).
  [[gnu::always_inline]] const Value* RequestAttr(uint8_t base, uint32_t key_id) noexcept {
    return base == internal::kBaseResourceAttrs
               ? resource_attrs.Find(req.resource_attrs, policy.pool, key_id)
               : context_attrs.Find(req.context_attrs, policy.pool, key_id);
  }

  // Decision-program tests (expr_run.h RunSteps); scope: 0 org, 1 workspace.
  [[gnu::always_inline]] uint64_t RoleMask(uint8_t scope) const noexcept {
    return org_role_bit | (scope != 0 ? ws_role_bit : 0);
  }
  bool RuleRolesMatch(uint32_t rule, uint8_t scope) const noexcept;
  [[gnu::always_inline]] bool OverlayApplies(uint32_t rule) const noexcept {
    return policy.rules[rule].overlay_org == org_id;
  }
  [[gnu::always_inline]] uint32_t GrantRole(uint8_t scope) const noexcept {
    return scope == 0 ? org_role : eff_ws_role;
  }
  [[gnu::always_inline]] bool Grants(uint8_t scope) const noexcept {
    const uint32_t role = GrantRole(scope);
    return role != kNone && policy.Grants(role, action);
  }

  // The generic leaves' variable loader. key_id: index into policy.pool.names for attribute
  // variables (kNoKey otherwise). Slot variables read the frame exactly as RunFast does.
  __attribute__((always_inline)) bool LoadKeyed(Var var, uint32_t key_id,
                                                RtValue* out) noexcept {
    const internal::Slot slot = internal::kSlots.s[static_cast<int>(var)];
    if (slot.rep != internal::Rep::kNone) {
      *out = internal::ReadSlot(bases, slot);
      return true;
    }
    switch (var) {
      case Var::kUserEmail:
      case Var::kUserEmailVerified:
        if (user_state == UserState::kUnloaded && !LoadUser()) return false;
        if (user_state != UserState::kFound) {
          *out = RtValue();
        } else {
          *out = var == Var::kUserEmail ? Str(user.email) : Bool(user.email_verified);
        }
        return true;
      case Var::kUserAttr: return LoadAttr(Facts::Entity::kUser, req.user, Key(key_id), out);
      case Var::kOrgAttr: return LoadAttr(Facts::Entity::kOrg, org_id, Key(key_id), out);
      case Var::kWorkspaceAttr:
        if (!has_ws) {
          *out = RtValue();
          return true;
        }
        return LoadAttr(Facts::Entity::kWorkspace, req.workspace, Key(key_id), out);
      case Var::kResourceAttr:
        *out = AttrValue(resource_attrs.Find(req.resource_attrs, policy.pool, key_id));
        return true;
      case Var::kActionName: *out = Str(policy.actions[action].name); return true;
      case Var::kActionScope:
        *out = Str(policy.actions[action].scope == Scope::kOrg ? "org" : "workspace");
        return true;
      case Var::kCtxAttr:
        *out = AttrValue(context_attrs.Find(req.context_attrs, policy.pool, key_id));
        return true;
      default:
        break;
    }
    *out = RtValue();
    return true;
  }

 private:
  [[gnu::always_inline]] std::string_view Key(uint32_t key_id) const noexcept {
    return policy.pool.names[key_id];
  }

  // The Facts calls live out of line so Load itself stays a small leaf function.
  __attribute__((noinline)) bool LoadUser() noexcept {
    new (&user) UserFacts();
    Lookup l = facts.User(req.user, &user);
    if (l == Lookup::kError) return false;
    user_state = l == Lookup::kFound ? UserState::kFound : UserState::kMissing;
    return true;
  }
  __attribute__((noinline)) bool LoadAttr(Facts::Entity e, std::string_view id, std::string_view key,
                RtValue* out) noexcept {
    Value v;
    Lookup l = facts.Attr(e, id, key, &v);
    if (l == Lookup::kError) return false;
    *out = l == Lookup::kFound ? RtValue::From(v) : RtValue();
    return true;
  }
};

// Steps 1-4 of the decision procedure. Returns true when the request reached the rule stage
// (env filled in); else *d holds the built-in decision.
bool Resolve(Env& env, bool need_action_scope, Scope scope, Decision* d) noexcept {
  const Request& req = env.req;
  internal::Frame& f = env.frame;
  Lookup wm_lookup = Lookup::kNotFound;
  if (req.workspace.empty()) {
    if ((need_action_scope && scope == Scope::kWorkspace) || req.org.empty()) {
      *d = Deny("scope_required");
      return false;
    }
    env.org_id = req.org;
  } else {
    // The user's workspace membership is read first: when it carries the workspace's org, the
    // Workspace() read is skipped. Its result (found / not found / error) is only acted on at
    // the membership step below, so decisions are identical to reading Workspace() first.
    wm_lookup = env.facts.WorkspaceMembership(req.user, req.workspace, &f.wm);
    std::string_view ws_org;
    if (wm_lookup == Lookup::kFound && !f.wm.org.empty()) {
      ws_org = f.wm.org;
    } else {
      WorkspaceFacts ws;
      Lookup l = env.facts.Workspace(req.workspace, &ws);
      if (l == Lookup::kError) { *d = Deny("internal"); return false; }
      if (l == Lookup::kNotFound) { *d = Deny("not_found"); return false; }
      ws_org = ws.org;
    }
    if (!req.org.empty() && req.org != ws_org) { *d = Deny("scope_mismatch"); return false; }
    env.has_ws = true;
    env.org_id = ws_org;
  }
  Lookup l = env.facts.Org(env.org_id, &f.org);
  if (l == Lookup::kError) { *d = Deny("internal"); return false; }
  if (l == Lookup::kNotFound) { *d = Deny("not_found"); return false; }
  l = env.facts.OrgMembership(req.user, env.org_id, &f.om);
  if (l == Lookup::kError) { *d = Deny("internal"); return false; }
  if (l == Lookup::kNotFound || req.user.empty()) { *d = Deny("not_member"); return false; }
  env.org_role = env.ResolveRole(f.om.role, Scope::kOrg);
  if (env.has_ws) {
    if (wm_lookup == Lookup::kError) { *d = Deny("internal"); return false; }
    env.has_wm = wm_lookup == Lookup::kFound;
    if (env.has_wm) {
      env.own_ws_role = env.ResolveRole(f.wm.role, Scope::kWorkspace);
    } else {
      f.wm = WorkspaceMembershipFacts();  // whatever a miss left behind reads as absent
    }
    uint32_t implied =
        env.org_role == kNone ? kNone : env.policy.roles[env.org_role].implied;
    env.eff_ws_role = env.own_ws_role;
    if (implied != kNone &&
        (env.own_ws_role == kNone ||
         env.policy.roles[implied].rank > env.policy.roles[env.own_ws_role].rank)) {
      env.eff_ws_role = implied;
      f.implied = true;
      // An implied role carries none of the explicit membership's restrictions.
      f.wm.team = {};
      f.wm.flags = {};
      f.wm.contact_visibility = {};
    }
    if (env.eff_ws_role != kNone) f.effective_role = env.policy.roles[env.eff_ws_role].name;
  }
  f.org_id = f.org.id.empty() ? env.org_id : f.org.id;
  // Saturating: the facts are data, and this runs for every request (not only when read).
  if (__builtin_add_overflow(f.org.members, f.org.pending_invitations, &f.members_and_pending)) {
    f.members_and_pending = f.org.members < 0 ? INT64_MIN : INT64_MAX;
  }
  env.org_role_bit = env.org_role < 64 ? uint64_t{1} << env.org_role : 0;
  env.ws_role_bit = env.eff_ws_role < 64 ? uint64_t{1} << env.eff_ws_role : 0;
  return true;
}

// The rule's role list against the requester's roles. Out of line: the rule loop calls it only
// for rules naming a role id >= 64 (RuleRef::kRoleList); the others are a bit test.
__attribute__((noinline)) bool RolesMatch(const Env& env, const internal::RuleDef& r,
                                              Scope scope) noexcept {
  if (r.roles_count == 0) return true;
  const uint32_t* roles = env.policy.rule_roles.data() + r.roles_begin;
  for (uint32_t k = 0; k < r.roles_count; ++k) {
    if (env.org_role != kNone && roles[k] == env.org_role) return true;
    if (scope == Scope::kWorkspace && env.eff_ws_role != kNone && roles[k] == env.eff_ws_role) {
      return true;
    }
  }
  return false;
}

bool Env::RuleRolesMatch(uint32_t rule, uint8_t scope) const noexcept {
  return RolesMatch(*this, policy.rules[rule], static_cast<Scope>(scope));
}

// Per-request memo of rule conditions that don't depend on the action (ListAllowedActions
// evaluates each such condition at most once instead of once per action). Covers the first
// kCachedRules rules; stack memory only.
struct ConditionCache {
  static constexpr uint32_t kCachedRules = 2048;
  uint64_t known[kCachedRules / 64] = {};
  uint64_t value[kCachedRules / 64] = {};
};

// First matching rule of rule_list[begin, end): 1 (and *d set), 0 if none matched, -1 on a
// facts failure (*d = internal). kCached: memoize action-independent conditions in *cache.
template <bool kCached>
__attribute__((always_inline)) inline int FirstMatch(Env& env, uint32_t begin, uint32_t end,
                                                     Scope scope, ConditionCache* cache,
                                                     Decision* d) noexcept {
  using internal::RuleRef;
  const CompiledPolicy& p = env.policy;
  const RuleRef* refs = p.rule_list.data();
  // The requester's roles as bits (ids >= 64 have none: only kRoleList rules can name them).
  const uint64_t role_mask = env.org_role_bit | (scope == Scope::kWorkspace ? env.ws_role_bit : 0);
  for (uint32_t k = begin; k < end; ++k) {
    const RuleRef& ref = refs[k];
    const uint8_t flags = ref.flags;
    if (!(flags & RuleRef::kAnyRole)) {
      if (flags & RuleRef::kRoleList) {
        if (!RolesMatch(env, p.rules[ref.rule], scope)) continue;
      } else if ((ref.role_bits & role_mask) == 0) {
        continue;
      }
    }
    if ((flags & RuleRef::kOverlay) && p.rules[ref.rule].overlay_org != env.org_id) continue;
    bool match = true;  // no condition: the rule matches
    if (flags & RuleRef::kCondition) {
      const uint32_t rule = ref.rule;
      const bool cacheable =
          kCached && !(flags & RuleRef::kUsesAction) && rule < ConditionCache::kCachedRules;
      const uint64_t bit = uint64_t{1} << (rule % 64);
      if (cacheable && (cache->known[rule / 64] & bit)) {
        match = (cache->value[rule / 64] & bit) != 0;
      } else {
        const internal::Truth t = internal::RunFast(p.pool, env.bases, env, ref.entry);
        if (t == internal::Truth::kError) {
          *d = Deny("internal", p.rules[rule].id);
          return -1;
        }
        match = t == internal::Truth::kTrue;
        if (cacheable) {
          cache->known[rule / 64] |= bit;
          if (match) cache->value[rule / 64] |= bit;
        }
      }
    }
    if (match) {
      const internal::RuleDef& r = p.rules[ref.rule];
      d->allow = !r.deny;
      d->rule = r.id;
      d->reason = r.reason;
      return 1;
    }
  }
  return 0;
}

// Steps 5-8 for one action (env already resolved).
template <bool kCached>
Decision Decide(Env& env, uint32_t a, ConditionCache* cache) noexcept {
  const CompiledPolicy& p = env.policy;
  const internal::ActionDef& action = p.actions[a];
  if (action.scope == Scope::kWorkspace && !env.has_ws) return Deny("scope_required");
  env.action = a;
  Decision d;
  const uint32_t entry = kCached ? kNone : p.decision_entry[a];
  if (entry != kNone) {  // the action's decision program: one run of the step loop
    uint32_t err_rule = kNone;
    const uint32_t end =
        internal::RunSteps(p.decision_steps.data(), p.pool, env.bases, env, entry, &err_rule);
    if (end < internal::kEndGrant) {
      const internal::RuleDef& r = p.rules[end - internal::kEndRule];
      d.allow = !r.deny;
      d.rule = r.id;
      d.reason = r.reason;
      return d;
    }
    if (end == internal::kEndGrant) {
      d.allow = true;
      d.rule = p.grant_rule_ids[env.GrantRole(static_cast<uint8_t>(action.scope))];
      d.reason = kGranted;
      return d;
    }
    if (end == internal::kEndNoPermission) return Deny(kNoPermission);
    if (end == internal::kEndError && err_rule < p.rules.size()) {
      return Deny("internal", p.rules[err_rule].id);
    }
    return Deny("internal");  // no other end exists; fail closed if one ever did
  }
  if (FirstMatch<kCached>(env, p.deny_begin[a], p.allow_begin[a], action.scope, cache, &d) != 0) {
    if (d.allow) d = Deny("internal");  // cannot happen: deny list holds deny rules only
    return d;
  }
  if (env.Grants(static_cast<uint8_t>(action.scope))) {
    d.allow = true;
    d.rule = p.grant_rule_ids[env.GrantRole(static_cast<uint8_t>(action.scope))];
    d.reason = kGranted;
    return d;
  }
  int r = FirstMatch<kCached>(env, p.allow_begin[a], p.deny_begin[a + 1], action.scope, cache, &d);
  if (r != 0) return d;
  return Deny(kNoPermission);
}

}  // namespace

Decision Evaluate(const CompiledPolicy& policy, const Request& request, Facts& facts) noexcept {
  uint32_t a = policy.action_index.Find(request.action);
  if (a == kNone) return Deny("unknown_action");
  Env env(policy, request, facts);
  Decision d;
  if (!Resolve(env, true, policy.actions[a].scope, &d)) return d;
  return Decide<false>(env, a, nullptr);
}

size_t ListAllowedActions(const CompiledPolicy& policy, const Request& request, Facts& facts,
                          uint32_t* out, size_t capacity) noexcept {
  Env env(policy, request, facts);
  Decision d;
  if (!Resolve(env, false, Scope::kOrg, &d)) return 0;
  size_t n = 0;
  ConditionCache cache;
  for (uint32_t a = 0; a < policy.actions.size() && n < capacity; ++a) {
    if (policy.actions[a].scope == Scope::kWorkspace && !env.has_ws) continue;
    if (Decide<true>(env, a, &cache).allow) out[n++] = a;
  }
  return n;
}

}  // namespace gatehouse::policy
