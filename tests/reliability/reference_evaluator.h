// A deliberately simple, separate implementation of the decision procedure of
// shared/spec/model.md — tables A and B, gates, ceilings, self-modification, restriction flags,
// visibility, SSO and scope rules hard-coded from the spec text — used only by tests, as the
// oracle of the differential test against the real engine running the shipped policy.
//
// It reads the world straight from a MemoryFacts' public maps (not through the Facts
// interface), and shares no code with policy/ beyond those plain structs.
//
// Thread-safety: stateless functions; the world must not change during a call.
#ifndef GATEHOUSE_TESTS_RELIABILITY_REFERENCE_EVALUATOR_H_
#define GATEHOUSE_TESTS_RELIABILITY_REFERENCE_EVALUATOR_H_

#include <string>
#include <string_view>
#include <vector>

#include "policy/facts.h"
#include "policy/memory_facts.h"

namespace gatehouse::reliability {

enum class RefScope { kUnknown, kOrg, kWorkspace };

struct RefDecision {
  bool allow = false;
  // The spec's reason for built-in steps and gates (unknown_action, scope_required, not_found,
  // scope_mismatch, not_member, org_suspended, org_locked, sso_required, sso_session_expired),
  // "granted" on allow, and for a permission-level deny a descriptive code (no_permission,
  // self_modification, role_ceiling, seats_exhausted, workspace_limit, feature_disabled,
  // restricted) whose exact spelling the spec leaves to the policy.
  std::string reason;
  // True iff `reason` is one the spec names for this step (so the engine must give the same).
  bool reason_is_spec = false;
};

// Scope of an action per tables A and B; kUnknown if the spec does not list it.
RefScope ActionScope(std::string_view action);
// Every action of tables A and B.
const std::vector<std::string>& SpecActions();

// Decides `req` in `world` per model.md.
RefDecision ReferenceEvaluate(const policy::MemoryFacts& world, const policy::Request& req);

}  // namespace gatehouse::reliability

#endif  // GATEHOUSE_TESTS_RELIABILITY_REFERENCE_EVALUATOR_H_
