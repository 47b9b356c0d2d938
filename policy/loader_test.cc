// Golden-file diagnostics: each testdata/<case>.yaml (one file) or testdata/<case>/ (a policy
// directory) is loaded, and its issues (one per line, or "OK") must equal
// testdata/<case>.baseline. Regenerate with GATEHOUSE_UPDATE_BASELINES=1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "policy/internal/compiled.h"
#include "policy/policy.h"

namespace gatehouse::policy {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> GoldenCases() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(GATEHOUSE_POLICY_TESTDATA)) {
    std::string name = e.path().filename().string();
    if (e.is_directory() || (name.size() > 5 && name.substr(name.size() - 5) == ".yaml")) {
      out.push_back(e.is_directory() ? name : name.substr(0, name.size() - 5));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Diagnose(const std::string& name) {
  fs::path base = fs::path(GATEHOUSE_POLICY_TESTDATA);
  std::vector<Issue> issues;
  std::shared_ptr<const CompiledPolicy> policy;
  if (fs::is_directory(base / name)) {
    policy = LoadPolicyDir((base / name).string(), &issues);
  } else {
    policy = LoadPolicySources({{name + ".yaml", ReadAll(base / (name + ".yaml"))}}, &issues);
  }
  std::string out;
  for (const Issue& i : issues) out += i.ToString() + "\n";
  if (policy) {
    EXPECT_TRUE(issues.empty());
    out = "OK\n";
  } else {
    EXPECT_FALSE(issues.empty()) << "rejected without issues";
  }
  return out;
}

class GoldenTest : public testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, DiagnosticsMatchBaseline) {
  const std::string& name = GetParam();
  std::string actual = Diagnose(name);
  fs::path baseline = fs::path(GATEHOUSE_POLICY_TESTDATA) / (name + ".baseline");
  if (std::getenv("GATEHOUSE_UPDATE_BASELINES")) {
    std::ofstream(baseline, std::ios::binary) << actual;
  }
  ASSERT_TRUE(fs::exists(baseline)) << "missing " << baseline << "; actual:\n" << actual;
  EXPECT_EQ(ReadAll(baseline), actual);
}

INSTANTIATE_TEST_SUITE_P(Testdata, GoldenTest, testing::ValuesIn(GoldenCases()),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(LoaderTest, CompilesRoleClosureAndInfo) {
  std::vector<Issue> issues;
  auto p = LoadPolicyDir(std::string(GATEHOUSE_POLICY_TESTDATA) + "/example", &issues);
  ASSERT_TRUE(p) << (issues.empty() ? "" : issues[0].ToString());
  PolicyInfo info = Info(*p);
  EXPECT_EQ(info.name, "example");
  EXPECT_EQ(info.files, 4u);  // *_test.yaml and tests/ are not policy files
  EXPECT_EQ(info.roles, 8u);
  EXPECT_EQ(info.digest.size(), 16u);
  EXPECT_EQ(ActionCount(*p), info.actions);
  EXPECT_EQ(ActionName(*p, 0), "org.view");
  EXPECT_EQ(ActionName(*p, 100000), "");
  // org_admin includes billing_admin's org.billing.* and member's org.view.
  uint32_t admin = p->role_index.Find("org_admin");
  uint32_t billing = p->action_index.Find("org.billing.waba.manage");
  ASSERT_NE(admin, internal::kNone);
  EXPECT_TRUE(p->Grants(admin, billing));
  uint32_t agent = p->role_index.Find("agent");
  EXPECT_FALSE(p->Grants(agent, p->action_index.Find("conversation.view")));
}

TEST(LoaderTest, EveryProblemInOnePassAndNoPartialPolicy) {
  std::vector<Issue> issues;
  auto p = LoadPolicySources(
      {{"a.yaml", "actions: {org: [org.view]}\nrules:\n  - {id: x, effect: deny, actions: [nope]}\n"},
       {"b.yaml", "rules:\n  - {id: y, effect: allow, actions: [org.view], condition: 'org.seats'}\n"}},
      &issues);
  EXPECT_FALSE(p);
  ASSERT_GE(issues.size(), 3u);  // unknown action, missing reason, type error
  bool a = false, b = false;
  for (const Issue& i : issues) {
    a |= i.file == "a.yaml";
    b |= i.file == "b.yaml";
  }
  EXPECT_TRUE(a && b);
}

TEST(LoaderTest, FileSizeAndRuleLimits) {
  LoadOptions small;
  small.max_file_bytes = 10;
  std::vector<Issue> issues;
  EXPECT_FALSE(LoadPolicySources({{"big.yaml", "actions: {org: [org.view]}\n"}}, &issues, small));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_NE(issues[0].message.find("too large"), std::string::npos);

  LoadOptions few;
  few.max_rules = 1;
  issues.clear();
  EXPECT_FALSE(LoadPolicySources(
      {{"r.yaml",
        "actions: {org: [org.view]}\nrules:\n  - {id: a, effect: allow, actions: [org.view]}\n"
        "  - {id: b, effect: allow, actions: [org.view]}\n"}},
      &issues, few));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_NE(issues[0].message.find("too many rules"), std::string::npos);
}

TEST(LoaderTest, MissingDirectoryAndEmptyDirectory) {
  std::vector<Issue> issues;
  EXPECT_FALSE(LoadPolicyDir("/nonexistent/gatehouse", &issues));
  EXPECT_FALSE(issues.empty());
  char tmpl[] = "/tmp/gatehouse_policy_XXXXXX";
  ASSERT_TRUE(mkdtemp(tmpl));
  issues.clear();
  EXPECT_FALSE(LoadPolicyDir(tmpl, &issues));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_NE(issues[0].message.find("no policy files"), std::string::npos);
  fs::remove_all(tmpl);
}

TEST(LoaderTest, ExpressionColumnsPointIntoTheScalar) {
  std::vector<Issue> issues;
  LoadPolicySources({{"c.yaml",
                      "actions: {org: [org.view]}\n"
                      "rules:\n"
                      "  - id: x\n"
                      "    effect: deny\n"
                      "    actions: [org.view]\n"
                      "    reason: r\n"
                      "    condition: org.suspended && org.bogus\n"}},
                    &issues);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].line, 7);
  EXPECT_EQ(issues[0].col, 33);  // the 'o' of org.bogus
  EXPECT_EQ(issues[0].message, "unknown variable 'org.bogus'");
}

}  // namespace
}  // namespace gatehouse::policy

namespace gatehouse::policy {
namespace {

// Bad input never crashes the loader: deterministic byte mutations of the example policy
// either load or are rejected with issues (ASan/UBSan builds check memory safety too).
TEST(LoaderRobustnessTest, MutatedPoliciesLoadOrFailCleanly) {
  std::vector<SourceFile> base;
  for (const char* name : {"catalog.yaml", "roles.yaml", "rules.yaml", "overlay_acme.yaml"}) {
    base.push_back({name, ReadAll(fs::path(GATEHOUSE_POLICY_TESTDATA) / "example" / name)});
  }
  const char kBytes[] = "*&!|:-[]{}()'\"\n #.,=<>0aZ\t\\";
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  auto next = [&] {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
  };
  int loaded = 0, rejected = 0;
  for (int round = 0; round < 150; ++round) {
    std::vector<SourceFile> files = base;
    SourceFile& f = files[next() % files.size()];
    int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits && !f.text.empty(); ++e) {
      size_t pos = next() % f.text.size();
      switch (next() % 3) {
        case 0: f.text[pos] = kBytes[next() % (sizeof kBytes - 1)]; break;
        case 1: f.text.erase(pos, 1 + next() % 8); break;
        default: f.text.insert(pos, 1, kBytes[next() % (sizeof kBytes - 1)]); break;
      }
    }
    std::vector<Issue> issues;
    auto p = LoadPolicySources(files, &issues);
    if (p) {
      EXPECT_TRUE(issues.empty());
      ++loaded;
    } else {
      ASSERT_FALSE(issues.empty());
      for (const Issue& i : issues) EXPECT_FALSE(i.message.empty());
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(loaded + rejected, 0);
}

}  // namespace
}  // namespace gatehouse::policy
