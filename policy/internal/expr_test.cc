#include "policy/internal/expr.h"
#include "policy/internal/bytes.h"
#include "policy/internal/compiled.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>

namespace gatehouse::policy::internal {
namespace {

// Variables from a map keyed by "var:key"; absent entries are missing.
class FakeVars final : public VarSource {
 public:
  std::map<std::pair<int, std::string>, RtValue> values;
  bool fail = false;
  int loads = 0;

  void Set(Var v, RtValue x, std::string key = "") { values[{static_cast<int>(v), key}] = x; }
  bool Load(Var var, std::string_view key, RtValue* out) noexcept override {
    ++loads;
    if (fail) return false;
    auto it = values.find({static_cast<int>(var), std::string(key)});
    *out = it == values.end() ? RtValue() : it->second;
    return true;
  }
};

RtValue S(std::string_view s) { return RtValue::String(s); }
RtValue I(int64_t i) { return RtValue::Int(i); }
RtValue B(bool b) { return RtValue::Bool(b); }

struct Compiled {
  ProgramPool pool;
  Program program;
  std::vector<ExprError> errors;
  bool ok;
  explicit Compiled(std::string_view text, size_t depth = 32)
      : ok(CompileExpr(text, depth, &pool, &program, &errors)) {}
  bool Eval(FakeVars& vars) {
    bool error = false;
    bool r = internal::Run(pool, program, vars, &error);
    EXPECT_FALSE(error);
    return r;
  }
};

TEST(ExprTest, ParseErrorsHaveOffsets) {
  struct Case {
    const char* text;
    size_t offset;
    const char* message;
  } cases[] = {
      {"org.suspended &&", 16, "unexpected end of expression"},
      {"(org.suspended", 14, "expected ')'"},
      {"org.plan = 'x'", 9, "unexpected '=' (did you mean '=='?)"},
      {"org.nope", 0, "unknown variable 'org.nope'"},
      {"org.seats == \"x\"", 10, "type error: '==' between int and string"},
      {"org.plan", 0, "type error: a condition must be bool, got string"},
      {"org.seats < 1 < 2", 14, "comparisons do not chain; use && and parentheses"},
      {"'abc", 0, "unterminated string literal"},
      {"org.plan in [\"a\", 1]", 18, "list elements must all have one type (string and int)"},
      {"org.plan in org.seats", 9, "type error: right side of 'in' must be a list, got int"},
      {"!org.plan", 0, "type error: '!' needs a bool operand, got string"},
      {"has(\"x\")", 4, "has() takes a variable path"},
      {"org.features == org.features", 13, "type error: '==' between list and list"},
      {"org.suspended org.suspended", 14, "unexpected 'org.suspended' (expected an operator)"},
  };
  for (const Case& c : cases) {
    Compiled e(c.text);
    EXPECT_FALSE(e.ok) << c.text;
    ASSERT_EQ(e.errors.size(), 1u) << c.text;
    EXPECT_EQ(e.errors[0].offset, c.offset) << c.text;
    EXPECT_EQ(e.errors[0].message, c.message) << c.text;
  }
}

TEST(ExprTest, DepthAndLengthLimits) {
  std::string deep(40, '(');
  deep += "org.suspended";
  deep += std::string(40, ')');
  Compiled e(deep, 32);
  EXPECT_FALSE(e.ok);
  ASSERT_FALSE(e.errors.empty());
  EXPECT_NE(e.errors[0].message.find("nested too deeply"), std::string::npos);
  Compiled shallow("((org.suspended))", 32);
  EXPECT_TRUE(shallow.ok);
  std::string big(kMaxExprBytes + 1, ' ');
  Compiled e2(big + "true");
  EXPECT_FALSE(e2.ok);
}

TEST(ExprTest, ComparisonsAndMissingValues) {
  FakeVars v;
  v.Set(Var::kOrgSeats, I(10));
  v.Set(Var::kOrgMembers, I(7));
  v.Set(Var::kOrgPlan, S("growth"));
  v.Set(Var::kResourceAttr, S("u1"), "assignee");
  v.Set(Var::kUserId, S("u1"));
  EXPECT_TRUE(Compiled("org.members < org.seats").Eval(v));
  EXPECT_FALSE(Compiled("org.members >= org.seats").Eval(v));
  EXPECT_TRUE(Compiled("org.seats == 10.0").Eval(v));
  EXPECT_TRUE(Compiled("org.plan > 'a' && org.plan <= 'growth'").Eval(v));
  EXPECT_TRUE(Compiled("resource.attrs.assignee == user.id").Eval(v));
  // Missing: every comparison false except !=.
  EXPECT_FALSE(Compiled("resource.attrs.team == 't1'").Eval(v));
  EXPECT_TRUE(Compiled("resource.attrs.team != 't1'").Eval(v));
  EXPECT_FALSE(Compiled("context.auth.age_s < 100").Eval(v));
  EXPECT_FALSE(Compiled("context.auth.age_s >= 100").Eval(v));
  EXPECT_FALSE(Compiled("resource.attrs.team in ['t1']").Eval(v));
  EXPECT_FALSE(Compiled("has(resource.attrs.team)").Eval(v));
  EXPECT_TRUE(Compiled("has(resource.attrs.assignee)").Eval(v));
  EXPECT_TRUE(Compiled("!has(resource.attrs.team) || resource.attrs.team == ''").Eval(v));
  // Dyn of the wrong run-time type.
  EXPECT_FALSE(Compiled("resource.attrs.assignee > 3").Eval(v));
  EXPECT_FALSE(Compiled("resource.attrs.assignee").Eval(v));
  EXPECT_FALSE(Compiled("!resource.attrs.assignee").Eval(v));
  v.Set(Var::kResourceAttr, B(true), "flag");
  EXPECT_TRUE(Compiled("resource.attrs.flag").Eval(v));
  EXPECT_TRUE(Compiled("resource.attrs.flag == true").Eval(v));
}

TEST(ExprTest, NullLiteral) {
  FakeVars v;
  v.Set(Var::kResourceAttr, RtValue::Null(), "x");
  EXPECT_TRUE(Compiled("resource.attrs.x == null").Eval(v));
  EXPECT_FALSE(Compiled("resource.attrs.y == null").Eval(v));  // missing is not null
  EXPECT_TRUE(Compiled("has(resource.attrs.x)").Eval(v));
}

TEST(ExprTest, InListsAndSetVariables) {
  FakeVars v;
  static const std::string_view features[] = {"sso", "webhooks"};
  v.Set(Var::kOrgFeatures, RtValue::StrList(features));
  v.Set(Var::kOrgStatus, S("FROZEN"));
  v.Set(Var::kOrgSeats, I(3));
  EXPECT_TRUE(Compiled("\"sso\" in org.features").Eval(v));
  EXPECT_FALSE(Compiled("'api' in org.features").Eval(v));
  EXPECT_TRUE(Compiled("!('api' in org.features)").Eval(v));
  EXPECT_TRUE(Compiled("org.status in ['TRIAL_ENDED', 'FROZEN', 'CANCELED']").Eval(v));
  EXPECT_FALSE(Compiled("org.status in []").Eval(v));
  EXPECT_TRUE(Compiled("org.seats in [1, 2, 3]").Eval(v));
}

TEST(ExprTest, ShortCircuitSkipsLoads) {
  FakeVars v;
  v.Set(Var::kOrgSuspended, B(false));
  Compiled e("org.suspended && org.sso.enforced && org.sso.enabled");
  ASSERT_TRUE(e.ok);
  EXPECT_FALSE(e.Eval(v));
  EXPECT_EQ(v.loads, 1);
  v.loads = 0;
  v.Set(Var::kOrgSuspended, B(true));
  Compiled o("org.suspended || org.sso.enforced");
  EXPECT_TRUE(o.Eval(v));
  EXPECT_EQ(v.loads, 1);
}

TEST(ExprTest, PrecedenceNotAndOr) {
  FakeVars v;
  v.Set(Var::kOrgSuspended, B(true));
  v.Set(Var::kOrgSsoEnabled, B(false));
  v.Set(Var::kOrgSsoEnforced, B(false));
  // && binds tighter than ||.
  EXPECT_TRUE(Compiled("org.suspended || org.sso.enabled && org.sso.enforced").Eval(v));
  EXPECT_FALSE(Compiled("(org.suspended || org.sso.enabled) && org.sso.enforced").Eval(v));
  EXPECT_FALSE(Compiled("!org.suspended").Eval(v));
  EXPECT_TRUE(Compiled("!!org.suspended").Eval(v));
}

TEST(ExprTest, FactsFailureIsReported) {
  FakeVars v;
  v.fail = true;
  Compiled e("org.suspended");
  bool error = false;
  EXPECT_FALSE(internal::Run(e.pool, e.program, v, &error));
  EXPECT_TRUE(error);
}

TEST(ExprTest, EmptyProgramIsTrue) {
  ProgramPool pool;
  FakeVars v;
  bool error = false;
  EXPECT_TRUE(internal::Run(pool, Program{}, v, &error));
}

// BytesEqual / SvEqual use overlapping word loads: every length and every differing byte
// position must still be seen.
TEST(BytesTest, EqualMatchesMemcmpForAllLengthsAndPositions) {
  char a[48], b[48];
  for (size_t n = 0; n <= 40; ++n) {
    for (size_t k = 0; k < n; ++k) a[k] = b[k] = static_cast<char>('a' + k % 26);
    EXPECT_TRUE(BytesEqual(a, b, n)) << n;
    for (size_t pos = 0; pos < n; ++pos) {
      b[pos] = static_cast<char>(a[pos] ^ 0x40);
      EXPECT_FALSE(BytesEqual(a, b, n)) << n << " " << pos;
      EXPECT_FALSE(SvEqual(std::string_view(a, n), std::string_view(b, n)));
      b[pos] = a[pos];
    }
  }
  EXPECT_FALSE(SvEqual("ab", "abc"));
  EXPECT_TRUE(SvEqual("", ""));
}

// NameMap hashes only the first and last 8 bytes: names differing in the middle collide and
// must still be told apart; every length 0..40 and absent keys are covered.
TEST(NameMapTest, FindsEveryKeyIncludingMiddleOnlyDifferences) {
  std::vector<std::string> owned;
  for (int k = 0; k < 600; ++k) owned.push_back("prefix__" + std::to_string(k) + "__suffix");
  for (int k = 0; k < 300; ++k) {
    owned.push_back("ws.g" + std::to_string(k % 40) + ".a" + std::to_string(k));
  }
  for (size_t len = 0; len <= 40; ++len) owned.push_back(std::string(len, 'x'));
  std::vector<std::string_view> keys(owned.begin(), owned.end());
  NameMap m;
  m.Build(keys);
  for (size_t k = 0; k < keys.size(); ++k) EXPECT_EQ(m.Find(keys[k]), k) << keys[k];
  EXPECT_EQ(m.Find("prefix__600__suffix"), kNone);
  EXPECT_EQ(m.Find("prefix__1__suffiy"), kNone);
  EXPECT_EQ(m.Find(std::string(41, 'x')), kNone);
  EXPECT_EQ(m.Find("y"), kNone);
}

// The branch programs (And/Or/Not threaded into jumps, specialised leaves) against the tree
// walk, over random well-typed expressions and random variable values: same result, same
// error, and the same variables loaded in the same order (short-circuiting unchanged).
class RecordingVars final : public VarSource {
 public:
  std::map<std::pair<int, std::string>, RtValue> values;
  int fail_at = -1;  // the load with this ordinal fails (-1: none)
  std::string trace;
  int loads = 0;
  bool Load(Var var, std::string_view key, RtValue* out) noexcept override {
    trace += std::to_string(static_cast<int>(var)) + ":" + std::string(key) + ",";
    if (loads++ == fail_at) return false;
    auto it = values.find({static_cast<int>(var), std::string(key)});
    *out = it == values.end() ? RtValue() : it->second;
    return true;
  }
};

TEST(ExprTest, BranchProgramsMatchTreeWalk) {
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  auto rnd = [&](uint32_t n) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return static_cast<uint32_t>(seed % n);
  };
  static const char* kStrLits[] = {"'a'", "'b'", "''", "'abcdefghij'"};
  static const char* kStrVars[] = {"org.plan", "org.status", "membership.team", "user.id"};
  static const char* kBoolVars[] = {"org.suspended", "membership.implied", "org.sso.enforced"};
  static const char* kDyn[] = {"resource.attrs.x", "resource.attrs.y", "context.z"};
  static const char* kOps[] = {"==", "!=", "<", "<=", ">", ">="};
  std::function<std::string(int)> gen = [&](int depth) -> std::string {
    uint32_t pick = depth > 3 ? rnd(12) : rnd(17);
    switch (pick) {
      case 0: return kBoolVars[rnd(3)];
      case 1: return kDyn[rnd(3)];
      case 2: return std::string(kStrVars[rnd(4)]) + (rnd(2) ? " == " : " != ") + kStrLits[rnd(4)];
      case 3: return std::string(kStrLits[rnd(4)]) + (rnd(2) ? " == " : " != ") + kStrVars[rnd(4)];
      case 4: return std::string(kDyn[rnd(3)]) + " " + kOps[rnd(6)] + " " + kStrLits[rnd(4)];
      case 5: return std::string(kDyn[rnd(3)]) + " " + kOps[rnd(6)] + " " + kDyn[rnd(3)];
      case 6: return std::string(kStrVars[rnd(4)]) + " " + kOps[rnd(6)] + " " + kStrVars[rnd(4)];
      case 7: return std::string("org.seats ") + kOps[rnd(6)] + (rnd(2) ? " 3" : " 2.5");
      case 8: return std::string(kDyn[rnd(3)]) + " " + kOps[rnd(6)] + " " + (rnd(2) ? "3" : "null");
      case 9: return std::string(rnd(2) ? kStrVars[rnd(4)] : kDyn[rnd(3)]) + " in ['a', '', 'b']";
      case 10: return std::string(kStrLits[rnd(4)]) + " in " + (rnd(2) ? "org.features" : "membership.flags");
      case 11: return std::string("has(") + kDyn[rnd(3)] + ")";
      case 12: return "!" + gen(depth + 1);
      case 13: return "(" + gen(depth + 1) + " && " + gen(depth + 1) + ")";
      case 14: return "(" + gen(depth + 1) + " || " + gen(depth + 1) + ")";
      case 15: return "(" + gen(depth + 1) + " && " + gen(depth + 1) + " || " + gen(depth + 1) + ")";
      default: return "(" + gen(depth + 1) + ") == " + (rnd(2) ? "true" : kBoolVars[rnd(3)]);
    }
  };
  static const std::string_view kLists[][2] = {{"a", "b"}, {"", "abcdefghij"}};
  static const char* kStrVals[] = {"a", "b", "", "abcdefghij"};
  auto random_value = [&](bool dyn) -> RtValue {
    switch (rnd(dyn ? 8 : 5)) {
      case 0: return RtValue();  // missing
      case 1:
      case 2:
      case 3: return S(kStrVals[rnd(4)]);
      case 4: return dyn ? RtValue::Null() : S("a");
      case 5: return B(rnd(2) != 0);
      case 6: return I(static_cast<int64_t>(rnd(5)));
      default: return RtValue::Double(2.5);
    }
  };
  int compiled = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text = gen(0);
    Compiled e(text);
    if (!e.ok) continue;
    ++compiled;
    for (int trial = 0; trial < 8; ++trial) {
      RecordingVars v;
      v.values[{static_cast<int>(Var::kOrgPlan), ""}] = random_value(false);
      v.values[{static_cast<int>(Var::kOrgStatus), ""}] = random_value(false);
      v.values[{static_cast<int>(Var::kMemberTeam), ""}] = random_value(false);
      v.values[{static_cast<int>(Var::kUserId), ""}] = random_value(false);
      v.values[{static_cast<int>(Var::kOrgSeats), ""}] = I(static_cast<int64_t>(rnd(5)));
      for (Var b : {Var::kOrgSuspended, Var::kMemberImplied, Var::kOrgSsoEnforced}) {
        v.values[{static_cast<int>(b), ""}] = B(rnd(2) != 0);
      }
      v.values[{static_cast<int>(Var::kOrgFeatures), ""}] = RtValue::StrList(kLists[rnd(2)]);
      v.values[{static_cast<int>(Var::kMemberFlags), ""}] = RtValue::StrList(kLists[rnd(2)]);
      v.values[{static_cast<int>(Var::kResourceAttr), "x"}] = random_value(true);
      v.values[{static_cast<int>(Var::kResourceAttr), "y"}] = random_value(true);
      v.values[{static_cast<int>(Var::kCtxAttr), "z"}] = random_value(true);
      v.fail_at = trial == 7 ? static_cast<int>(rnd(3)) : -1;
      RecordingVars w = v;
      bool error_run = false, error_tree = false;
      bool run = internal::Run(e.pool, e.program, v, &error_run);
      bool tree = RunTree(e.pool, e.program, w, &error_tree);
      ASSERT_EQ(run, tree) << text;
      ASSERT_EQ(error_run, error_tree) << text;
      ASSERT_EQ(v.trace, w.trace) << text;
    }
  }
  EXPECT_GT(compiled, 2000);
}

TEST(ExprTest, CommonShapesCompileToSpecialisedLeaves) {
  struct Case {
    const char* text;
    Node::Kind kind;
  } cases[] = {
      {"org.suspended", Node::Kind::kVarTruth},
      {"org.status == 'A'", Node::Kind::kVarEqStr},
      {"'A' == org.status", Node::Kind::kVarEqStr},
      {"resource.attrs.x != 'A'", Node::Kind::kVarNeStr},
      {"org.status in ['A', 'B']", Node::Kind::kVarInStrs},
      {"'sso' in org.features", Node::Kind::kStrInVar},
      {"resource.attrs.x == user.id", Node::Kind::kVarCmpVar},
      {"context.auth.age_s >= 10", Node::Kind::kVarCmpConst},
      {"org.seats in [1, 2]", Node::Kind::kIn},
  };
  for (const Case& c : cases) {
    Compiled e(c.text);
    ASSERT_TRUE(e.ok) << c.text;
    ASSERT_EQ(e.pool.steps.size(), 1u) << c.text;
    EXPECT_EQ(e.pool.steps[0].leaf.kind, c.kind) << c.text;
  }
}

}  // namespace
}  // namespace gatehouse::policy::internal
