// yaml-cpp helpers shared by the policy loader and the policy-test runner: the one place where
// YAML text is parsed (exceptions caught and turned into issues) and where YAML::Marks become
// 1-based file:line:col positions, including positions inside a scalar (expressions).
//
// Thread-safety: stateless functions.
#ifndef GATEHOUSE_POLICY_INTERNAL_YAML_UTIL_H_
#define GATEHOUSE_POLICY_INTERNAL_YAML_UTIL_H_

#include <yaml-cpp/yaml.h>

#include <string>
#include <utility>
#include <vector>

#include "policy/policy.h"

namespace gatehouse::policy::internal {

struct SourceDoc {
  std::string name;
  std::string text;
};

// Parses doc.text into *root. On a YAML error appends an issue (with the error's position) and
// returns false. Never throws.
bool ParseYaml(const SourceDoc& doc, YAML::Node* root, std::vector<Issue>* issues);

// 1-based (line, col) of a mark; (1, 1) for a null mark.
std::pair<int, int> MarkPos(const YAML::Mark& m);

// 1-based (line, col) of byte `offset` of the value of the scalar starting at `m` in doc.text
// (plain, quoted, literal `|` and folded `>` scalars; escapes and exotic folding may shift
// the column slightly).
std::pair<int, int> ScalarPos(const SourceDoc& doc, const YAML::Mark& m, size_t offset);

}  // namespace gatehouse::policy::internal

#endif  // GATEHOUSE_POLICY_INTERNAL_YAML_UTIL_H_
