// Decision programs: each action's whole rule list (deny rules, the role grant, allow rules)
// compiled at load time into one operand-resolved branch program (FStep), so that a decision
// is one run of the step loop (expr_run.h RunSteps) instead of a loop over rules with a
// condition program per rule.
//
// For an action, the program is: for each deny rule in order, its role test, overlay test
// and condition (a copy of the rule's condition steps, relocated), ending at kEndRule + r when
// they all pass and continuing with the next rule when one fails; then a kGrant step (ending
// at kEndGrant); then the allow rules the same way; then kEndNoPermission. That is exactly the
// order of the rule loop (evaluator.cc FirstMatch), which ListAllowedActions still uses.
//
// Actions with the same scope and rule lists share one program (the grant step reads the
// action at run time). A policy whose programs would exceed `max_steps` in all gets programs
// only for the actions that fit; the others keep the rule loop (decision_entry kNone). The
// budget is checked after every rule, so building never holds more than max_steps plus one
// rule's steps.
//
// After building, a jump-threading pass skips tests already decided on the way in: a step
// whose successor for result r is an identical test (same op and operands; every test
// except a generic leaf is a pure function of the request) continues at that step's
// successor for r. E.g. the two SSO gates' shared leading `org.sso.enforced` is read once
// when it is false.
//
// Thread-safety: load time only.
#ifndef GATEHOUSE_POLICY_INTERNAL_DECISION_H_
#define GATEHOUSE_POLICY_INTERNAL_DECISION_H_

#include <cstddef>

#include "policy/internal/compiled.h"

namespace gatehouse::policy::internal {

inline constexpr size_t kMaxDecisionSteps = size_t{1} << 19;  // ~14 MiB of FStep

// Fills p->decision_steps and p->decision_entry from p->rule_list, p->rules and p->pool.
// thread_jumps: false only in tests (to compare against the unthreaded programs).
void BuildDecisionPrograms(CompiledPolicy* p, size_t max_steps = kMaxDecisionSteps,
                           bool thread_jumps = true);

}  // namespace gatehouse::policy::internal

#endif  // GATEHOUSE_POLICY_INTERNAL_DECISION_H_
