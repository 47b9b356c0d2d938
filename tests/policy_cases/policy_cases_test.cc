// One test per shipped policy directory (policies/<name>/): the policy must load, have at least
// one suite (once the directory holds a policy), and every suite's expectations must hold.
// A directory with no policy files yet is skipped, not failed.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "policy/policy_test_runner.h"

namespace gatehouse::policy {
namespace {

namespace fs = std::filesystem;

bool HasPolicyFiles(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    auto ends = [&](std::string_view s) {
      return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
    };
    if (e.is_regular_file() && (ends(".yaml") || ends(".yml")) && !ends("_test.yaml") &&
        !ends("_test.yml")) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> PolicyDirs() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(GATEHOUSE_POLICIES_DIR, ec)) {
    if (e.is_directory()) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class PolicyCases : public testing::TestWithParam<std::string> {};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PolicyCases);

TEST_P(PolicyCases, AllSuitesPass) {
  fs::path dir = fs::path(GATEHOUSE_POLICIES_DIR) / GetParam();
  if (!HasPolicyFiles(dir)) GTEST_SKIP() << dir << " holds no policy yet";
  PolicyTestReport report = RunPolicyTests(dir.string());
  for (const Issue& i : report.load_issues) ADD_FAILURE() << i.ToString();
  size_t passed = 0;
  for (const PolicyTestResult& r : report.results) {
    if (r.passed) {
      ++passed;
    } else {
      ADD_FAILURE() << r.ToString();
    }
  }
  EXPECT_GT(report.suites, 0u) << "no policy test suites (*_test.yaml or tests/*.yaml) in "
                               << dir;
  EXPECT_GT(report.results.size(), 0u) << "no policy tests in " << dir;
  std::printf("%s: %zu suites, %zu/%zu tests passed\n", dir.c_str(), report.suites, passed,
              report.results.size());
}

INSTANTIATE_TEST_SUITE_P(Policies, PolicyCases, testing::ValuesIn(PolicyDirs()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST(PolicyCasesSetup, PoliciesDirectoryExists) {
  EXPECT_TRUE(fs::is_directory(GATEHOUSE_POLICIES_DIR)) << GATEHOUSE_POLICIES_DIR;
}

}  // namespace
}  // namespace gatehouse::policy
