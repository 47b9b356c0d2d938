// Policy test suites (docs/policy.md §10): fixture facts + requests + expected decisions.
//
// RunPolicyTests(dir) loads DIR as a policy, finds DIR/*_test.yaml and DIR/tests/*.yaml (also
// .yml), builds a MemoryFacts per suite and evaluates every request. The daemon's
// `gatehouse policy test DIR` prints report failures and exits non-zero unless report.ok().
//
// Thread-safety: stateless functions; reports are plain values.
#ifndef GATEHOUSE_POLICY_POLICY_TEST_RUNNER_H_
#define GATEHOUSE_POLICY_POLICY_TEST_RUNNER_H_

#include <cstddef>
#include <string>
#include <vector>

#include "policy/policy.h"

namespace gatehouse::policy {

struct PolicyTestResult {
  std::string suite;    // suite file (path relative to the policy dir)
  int line = 0;         // line of the test entry
  std::string test;     // test name; "name [user]" for per-user expectations
  std::string request;  // the request, one line (for messages)
  bool expect_allow = false;
  std::string expect_reason;  // empty: not checked
  std::string expect_rule;    // empty: not checked
  bool actual_allow = false;
  std::string actual_reason;
  std::string actual_rule;
  bool passed = false;
  // "suite:line: test: expected deny(no_permission), got allow (rule role:owner, reason
  // granted) for {request}"
  std::string ToString() const;
};

struct PolicyTestReport {
  std::vector<Issue> load_issues;  // the policy or a suite did not load (each fails the run)
  std::vector<PolicyTestResult> results;
  size_t suites = 0;
  size_t Failed() const;
  bool ok() const { return load_issues.empty() && Failed() == 0; }
};

// Loads the policy in `dir` and runs every suite found there.
PolicyTestReport RunPolicyTests(const std::string& dir);

// Runs suites given in memory against an already loaded policy. `base_dir` resolves
// `fixtures_from` paths (relative to it).
PolicyTestReport RunPolicyTestSources(const CompiledPolicy& policy,
                                      const std::vector<SourceFile>& suites,
                                      const std::string& base_dir);

// Suite files under dir (sorted): *_test.yaml|yml in dir, and *.yaml|yml in dir/tests.
std::vector<std::string> FindPolicyTestSuites(const std::string& dir);

}  // namespace gatehouse::policy

#endif  // GATEHOUSE_POLICY_POLICY_TEST_RUNNER_H_
