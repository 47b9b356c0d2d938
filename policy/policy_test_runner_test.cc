#include "policy/policy_test_runner.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace gatehouse::policy {
namespace {

namespace fs = std::filesystem;

TEST(PolicyTestRunnerTest, ExampleSuitesPass) {
  PolicyTestReport report = RunPolicyTests(std::string(GATEHOUSE_POLICY_TESTDATA) + "/example");
  for (const Issue& i : report.load_issues) ADD_FAILURE() << i.ToString();
  for (const auto& r : report.results) {
    if (!r.passed) ADD_FAILURE() << r.ToString();
  }
  EXPECT_EQ(report.suites, 2u);
  EXPECT_GE(report.results.size(), 15u);
  EXPECT_TRUE(report.ok());
}

TEST(PolicyTestRunnerTest, FindsSuitesInDirAndTestsSubdir) {
  auto suites = FindPolicyTestSuites(std::string(GATEHOUSE_POLICY_TESTDATA) + "/example");
  ASSERT_EQ(suites.size(), 2u);
  EXPECT_EQ(suites[0], "example_test.yaml");
  EXPECT_EQ(suites[1], "tests/more.yaml");  // tests/fixtures/ holds fixtures, not suites
}

class RunnerSourcesTest : public testing::Test {
 protected:
  void SetUp() override {
    std::vector<Issue> issues;
    policy_ = LoadPolicySources({{"p.yaml",
                                  "actions: {org: [org.view, org.delete], workspace: [ws.a]}\n"
                                  "roles:\n"
                                  "  org: {member: {grants: [org.view]}, admin: {grants: [org.*]}}\n"
                                  "  workspace: {agent: {grants: [ws.a]}}\n"
                                  "rules:\n"
                                  "  - {id: vip, effect: deny, actions: [org.delete], reason: vip,\n"
                                  "     condition: 'org.attrs.tier == \"vip\" && context.ip == \"1.2.3.4\"'}\n"}},
                                &issues);
    ASSERT_TRUE(policy_) << issues[0].ToString();
  }
  std::shared_ptr<const CompiledPolicy> policy_;
};

TEST_F(RunnerSourcesTest, ReportsFailuresWithExpectedAndActual) {
  auto report = RunPolicyTestSources(*policy_, {{"s_test.yaml", R"(
fixtures:
  orgs:
    - {id: o1, members: {alice: admin, bob: member}, attrs: {tier: vip}}
  workspaces:
    - {id: w1, org: o1, members: {bob: agent}}
tests:
  - name: wrong on purpose
    request: {user: bob, action: org.delete, org: o1}
    expect: allow
  - name: per user
    request: {action: org.view, org: o1}
    expect: {alice: allow, bob: {allow: true, reason: granted, rule: "role:member"}, eve: deny:not_member}
  - name: context attrs flattened
    request: {user: alice, action: org.delete, org: o1, context: {ip: 1.2.3.4}}
    expect: deny:vip
  - name: workspace
    request: {user: bob, action: ws.a, workspace: w1}
    expect: {allow: true}
)"}}, "");
  for (const Issue& i : report.load_issues) ADD_FAILURE() << i.ToString();
  ASSERT_EQ(report.results.size(), 6u);
  EXPECT_EQ(report.Failed(), 1u);
  EXPECT_FALSE(report.ok());
  const PolicyTestResult& f = report.results[0];
  EXPECT_FALSE(f.passed);
  EXPECT_EQ(f.line, 8);
  EXPECT_EQ(f.actual_reason, "no_permission");
  EXPECT_NE(f.ToString().find("s_test.yaml:8: wrong on purpose: expected allow, got "
                              "deny(no_permission)"),
            std::string::npos)
      << f.ToString();
  for (size_t k = 1; k < report.results.size(); ++k) {
    EXPECT_TRUE(report.results[k].passed) << report.results[k].ToString();
  }
  EXPECT_EQ(report.results[1].test, "per user [alice]");
}

TEST_F(RunnerSourcesTest, BadSuiteIsALoadIssue) {
  auto report = RunPolicyTestSources(*policy_, {{"bad_test.yaml", R"(
fixtures:
  orgs:
    - {id: o1, seatz: 3}
tests:
  - name: x
    request: {user: a, action: org.view, org: o1}
    expect: allow
)"}}, "");
  ASSERT_EQ(report.load_issues.size(), 1u);
  EXPECT_EQ(report.load_issues[0].ToString().substr(0, 20), "bad_test.yaml:4:16: ");
  EXPECT_FALSE(report.ok());
  report = RunPolicyTestSources(*policy_, {{"empty_test.yaml", "fixtures: {}\n"}}, "");
  EXPECT_FALSE(report.ok());
}

TEST(PolicyTestRunnerDirTest, PolicyLoadFailureFailsTheRun) {
  char tmpl[] = "/tmp/gatehouse_policy_runner_XXXXXX";
  ASSERT_TRUE(mkdtemp(tmpl));
  std::ofstream(fs::path(tmpl) / "p.yaml") << "actions: {org: [Org.View]}\n";
  PolicyTestReport report = RunPolicyTests(tmpl);
  EXPECT_FALSE(report.ok());
  EXPECT_FALSE(report.load_issues.empty());
  fs::remove_all(tmpl);
}

}  // namespace
}  // namespace gatehouse::policy
