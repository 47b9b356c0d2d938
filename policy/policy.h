// Gatehouse policy engine: public API.
//
//   YAML policy directory --LoadPolicyDir--> CompiledPolicy (immutable) --Evaluate--> Decision
//
// Loading parses, validates, type-checks and compiles everything once; all problems are
// reported together as file:line:col issues, and a policy set is either fully valid and
// compiled, or rejected as a whole. Evaluation is noexcept, allocation-free, lock-free.
//
// Thread-safety: a CompiledPolicy is immutable and may be shared by any number of threads
// (hold it through std::shared_ptr<const CompiledPolicy>; the daemon swaps the pointer
// atomically on reload). policy/ depends on yaml-cpp only (in the loader).
#ifndef GATEHOUSE_POLICY_POLICY_H_
#define GATEHOUSE_POLICY_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/facts.h"

namespace gatehouse::policy {

// One problem found while loading: "file:line:col: message" (1-based line and column).
struct Issue {
  std::string file;
  int line = 0;
  int col = 0;
  std::string message;
  std::string ToString() const;
};

class CompiledPolicy;

struct LoadOptions {
  size_t max_file_bytes = 1 << 20;
  size_t max_rules = 10000;
  size_t max_roles = 2000;
  size_t max_expr_depth = 32;
};

// Loads every *.yaml / *.yml file of `dir` (not following paths outside it). Returns the compiled
// policy, or nullptr with *issues non-empty. Never throws.
std::shared_ptr<const CompiledPolicy> LoadPolicyDir(const std::string& dir,
                                                    std::vector<Issue>* issues,
                                                    const LoadOptions& options = {});
// Same, from in-memory documents (name, text) — for tests and fuzzing.
struct SourceFile {
  std::string name;
  std::string text;
};
std::shared_ptr<const CompiledPolicy> LoadPolicySources(const std::vector<SourceFile>& files,
                                                        std::vector<Issue>* issues,
                                                        const LoadOptions& options = {});

// Decides one request. Never allocates, throws or blocks (beyond what Facts does).
Decision Evaluate(const CompiledPolicy& policy, const Request& request, Facts& facts) noexcept;

// Every catalog action allowed to request.user in request's scope (request.action ignored),
// written as catalog indices into out[0..n); returns n (≤ capacity; ActionCount() suffices).
size_t ListAllowedActions(const CompiledPolicy& policy, const Request& request, Facts& facts,
                          uint32_t* out, size_t capacity) noexcept;

// Catalog introspection.
size_t ActionCount(const CompiledPolicy& policy) noexcept;
std::string_view ActionName(const CompiledPolicy& policy, uint32_t index) noexcept;
// Metadata for health/logs: number of rules, roles, files, and a content digest.
struct PolicyInfo {
  size_t files = 0;
  size_t rules = 0;
  size_t roles = 0;
  size_t actions = 0;
  // Compiled form: actions decided by a decision program (the others by the rule loop: only
  // when the programs would exceed their step budget) and the programs' total steps.
  size_t program_actions = 0;
  size_t program_steps = 0;
  std::string digest;  // hex digest of the sources
  std::string name;    // policy set name from the YAML, if any
};
PolicyInfo Info(const CompiledPolicy& policy);

}  // namespace gatehouse::policy

#endif  // GATEHOUSE_POLICY_POLICY_H_
