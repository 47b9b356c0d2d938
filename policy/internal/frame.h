// The per-request values that condition leaves read in place, and where each variable lives.
//
// The evaluator's Resolve step fills one Frame per request (the org, the memberships and a few
// derived values); the Request itself is the other base. At load time every key-less variable
// is resolved to a Slot (base, representation, byte offset), so the fast interpreter
// (expr_run.h, RunFast) reads `org.status` as one string_view load at a constant offset
// instead of dispatching on the variable. Variables without a slot (user.email*, *.attrs.*,
// action.*) go through the evaluator's LoadKeyed as before.
//
// Thread-safety: plain data; one Frame per evaluation.
#ifndef GATEHOUSE_POLICY_INTERNAL_FRAME_H_
#define GATEHOUSE_POLICY_INTERNAL_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/facts.h"
#include "policy/internal/expr.h"

namespace gatehouse::policy::internal {

// Invariants the evaluator keeps (so that a slot read gives exactly the variable's value):
// - wm is all empty when the request has no workspace or the user no membership of it;
//   wm.team, wm.flags and wm.contact_visibility are empty when the effective role is implied.
// - An empty string is an absent value (has() false), as everywhere in the engine.
struct Frame {
  OrgFacts org;
  OrgMembershipFacts om;
  WorkspaceMembershipFacts wm;
  std::string_view org_id;          // org.id: the facts' id, else the org the request resolved to
  std::string_view effective_role;  // name of the effective workspace role; "" when none
  int64_t members_and_pending = 0;  // org.members + org.pending_invitations
  bool implied = false;             // the effective workspace role comes from the org role
};

// How a variable is stored at its slot.
enum class Rep : uint8_t {
  kNone,    // no slot: loaded through LoadKeyed
  kStr,     // std::string_view, "" = absent
  kBool,    // bool
  kInt,     // int64_t
  kIntOpt,  // int64_t, negative = absent (context.auth.age_s)
  kList,    // StringList (always present; may be empty)
};
inline constexpr uint8_t kBaseFrame = 0;
inline constexpr uint8_t kBaseRequest = 1;

struct Slot {
  Rep rep = Rep::kNone;
  uint8_t base = kBaseFrame;
  uint16_t off = 0;
};

// GCC accepts nested member designators in offsetof (e.g. org.plan).
#define GH_FRAME(rep, member) Slot{Rep::rep, kBaseFrame, static_cast<uint16_t>(offsetof(Frame, member))}
#define GH_REQ(rep, member) Slot{Rep::rep, kBaseRequest, static_cast<uint16_t>(offsetof(Request, member))}

constexpr Slot SlotOf(Var v) noexcept {
  switch (v) {
    case Var::kUserId: return GH_REQ(kStr, user);
    case Var::kOrgId: return GH_FRAME(kStr, org_id);
    case Var::kOrgPlan: return GH_FRAME(kStr, org.plan);
    case Var::kOrgStatus: return GH_FRAME(kStr, org.status);
    case Var::kOrgSuspended: return GH_FRAME(kBool, org.suspended);
    case Var::kOrgFeatures: return GH_FRAME(kList, org.features);
    case Var::kOrgSeats: return GH_FRAME(kInt, org.seats);
    case Var::kOrgMembers: return GH_FRAME(kInt, org.members);
    case Var::kOrgPendingInvitations: return GH_FRAME(kInt, org.pending_invitations);
    case Var::kOrgMembersAndPending: return GH_FRAME(kInt, members_and_pending);
    case Var::kOrgWorkspaces: return GH_FRAME(kInt, org.workspaces);
    case Var::kOrgWorkspaceLimit: return GH_FRAME(kInt, org.workspace_limit);
    case Var::kOrgSsoEnabled: return GH_FRAME(kBool, org.sso_enabled);
    case Var::kOrgSsoEnforced: return GH_FRAME(kBool, org.sso_enforced);
    case Var::kOrgSsoIdp: return GH_FRAME(kStr, org.sso_idp);
    case Var::kOrgSsoExemptRoles: return GH_FRAME(kList, org.sso_exempt_roles);
    case Var::kWorkspaceId: return GH_REQ(kStr, workspace);
    case Var::kMemberOrgRole: return GH_FRAME(kStr, om.role);
    case Var::kMemberWorkspaceRole: return GH_FRAME(kStr, wm.role);
    case Var::kMemberEffectiveRole: return GH_FRAME(kStr, effective_role);
    case Var::kMemberImplied: return GH_FRAME(kBool, implied);
    case Var::kMemberFlags: return GH_FRAME(kList, wm.flags);
    case Var::kMemberTeam: return GH_FRAME(kStr, wm.team);
    case Var::kMemberContactVisibility: return GH_FRAME(kStr, wm.contact_visibility);
    case Var::kResourceType: return GH_REQ(kStr, resource_type);
    case Var::kResourceId: return GH_REQ(kStr, resource_id);
    case Var::kCtxAuthMethod: return GH_REQ(kStr, auth_method);
    case Var::kCtxAuthIdp: return GH_REQ(kStr, auth_idp);
    case Var::kCtxAuthAgeS: return GH_REQ(kIntOpt, auth_age_s);
    case Var::kCtxClient: return GH_REQ(kStr, client);
    default: return Slot{};  // user.email*, attributes, action.*
  }
}

#undef GH_FRAME
#undef GH_REQ

// SlotOf as a table (for the generic path's per-load lookup).
inline constexpr int kVarCount = static_cast<int>(Var::kCtxAttr) + 1;
struct SlotTable {
  Slot s[kVarCount];
  constexpr SlotTable() : s{} {
    for (int i = 0; i < kVarCount; ++i) s[i] = SlotOf(static_cast<Var>(i));
  }
};
inline constexpr SlotTable kSlots{};

// Request attributes read by the fast interpreter's attribute leaves (FStep::abase for them).
inline constexpr uint8_t kBaseResourceAttrs = 2;
inline constexpr uint8_t kBaseContextAttrs = 3;

// The base addresses a slot's offset is relative to: [kBaseFrame], [kBaseRequest].
struct Bases {
  const char* p[2];
  Bases(const Frame& f, const Request& r) noexcept
      : p{reinterpret_cast<const char*>(&f), reinterpret_cast<const char*>(&r)} {}
};

[[gnu::always_inline]] inline std::string_view StrAt(const Bases& b, uint8_t base,
                                                     uint16_t off) noexcept {
  return *reinterpret_cast<const std::string_view*>(b.p[base] + off);
}
[[gnu::always_inline]] inline int64_t IntAt(const Bases& b, uint8_t base, uint16_t off) noexcept {
  return *reinterpret_cast<const int64_t*>(b.p[base] + off);
}
[[gnu::always_inline]] inline bool BoolAt(const Bases& b, uint8_t base, uint16_t off) noexcept {
  return *reinterpret_cast<const bool*>(b.p[base] + off);
}
[[gnu::always_inline]] inline StringList ListAt(const Bases& b, uint8_t base,
                                                uint16_t off) noexcept {
  return *reinterpret_cast<const StringList*>(b.p[base] + off);
}

// The variable's value read from its slot (s.rep != kNone): the one definition of a slot
// variable's value, used by the generic leaves (LoadKeyed) as well.
inline RtValue ReadSlot(const Bases& b, Slot s) noexcept {
  switch (s.rep) {
    case Rep::kStr: {
      std::string_view v = StrAt(b, s.base, s.off);
      return v.empty() ? RtValue() : RtValue::String(v);
    }
    case Rep::kBool: return RtValue::Bool(BoolAt(b, s.base, s.off));
    case Rep::kInt: return RtValue::Int(IntAt(b, s.base, s.off));
    case Rep::kIntOpt: {
      int64_t v = IntAt(b, s.base, s.off);
      return v < 0 ? RtValue() : RtValue::Int(v);
    }
    case Rep::kList: return RtValue::StrList(ListAt(b, s.base, s.off));
    case Rep::kNone: break;
  }
  return RtValue();
}

}  // namespace gatehouse::policy::internal

#endif  // GATEHOUSE_POLICY_INTERNAL_FRAME_H_
