#include "policy/internal/expr.h"
#include "policy/internal/bytes.h"
#include "policy/internal/compiled.h"
#include "policy/internal/expr_run.h"
#include "policy/internal/frame.h"

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

// A xorshift64 generator of numbers below n (the random-expression tests).
class XorShift {
 public:
  explicit XorShift(uint64_t seed) : seed_(seed) {}
  uint32_t operator()(uint32_t n) {
    seed_ ^= seed_ << 13;
    seed_ ^= seed_ >> 7;
    seed_ ^= seed_ << 17;
    return static_cast<uint32_t>(seed_ % n);
  }

 private:
  uint64_t seed_;
};

TEST(ExprTest, BranchProgramsMatchTreeWalk) {
  XorShift rnd(0x9e3779b97f4a7c15ull);
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

TEST(ExprTest, CommonShapesResolveToFastOps) {
  struct Case {
    const char* text;
    FOp op;
  } cases[] = {
      {"org.suspended", FOp::kBool},
      {"has(membership.team)", FOp::kStrHas},
      {"has(context.auth.age_s)", FOp::kIntOptHas},
      {"org.status == 'A'", FOp::kStrEqC},
      {"'A' != org.status", FOp::kStrNeC},
      {"org.status == ''", FOp::kGeneric},  // "" never equals a slot string: left generic
      {"org.status in ['A', 'B']", FOp::kStrInC},
      {"'sso' in org.features", FOp::kCInList},
      {"membership.org_role in org.sso.exempt_roles", FOp::kStrInList},
      {"context.auth.idp != org.sso.idp", FOp::kStrNeStr},
      {"org.members_and_pending >= org.seats", FOp::kIntCmpInt},
      {"org.seats < 3", FOp::kIntCmpC},
      {"org.seats < 2.5", FOp::kGeneric},
      {"context.auth.age_s >= 10", FOp::kIntOptCmpC},
      {"has(resource.attrs.x)", FOp::kAttrHas},
      {"resource.attrs.x == 'A'", FOp::kAttrEqC},
      {"context.x != ''", FOp::kAttrNeC},
      {"resource.attrs.x in ['A', 'B']", FOp::kAttrInC},
      {"resource.attrs.x == user.id", FOp::kAttrEqStr},
      {"user.id != resource.attrs.x", FOp::kAttrNeStr},
      {"resource.attrs.x == resource.attrs.y", FOp::kGeneric},
      {"user.email == 'a'", FOp::kGeneric},
      {"org.seats in [1, 2]", FOp::kGeneric},
  };
  for (const Case& c : cases) {
    Compiled e(c.text);
    ASSERT_TRUE(e.ok) << c.text;
    ASSERT_EQ(e.pool.fsteps.size(), 1u) << c.text;
    EXPECT_EQ(e.pool.fsteps[0].op, c.op) << c.text;
  }
}

// Variables for RunFast and RunTree at once: slot variables read a Frame and a Request
// through ReadSlot (the evaluator's definition), request attributes the Request's lists,
// user.email / user.attrs.* a map (with an optional failing load).
class FrameVars final : public VarSource {
 public:
  explicit FrameVars(const ProgramPool& pool) : bases(frame, req), pool_(pool) {}

  Frame frame;
  Request req;
  const Bases bases;
  std::map<std::string, RtValue> user;  // "email", "attrs.<key>"
  bool fail_user = false;

  bool Load(Var var, std::string_view key, RtValue* out) noexcept override {
    const Slot slot = kSlots.s[static_cast<int>(var)];
    if (slot.rep != Rep::kNone) {
      *out = ReadSlot(bases, slot);
      return true;
    }
    switch (var) {
      case Var::kResourceAttr: *out = Attr(req.resource_attrs, key); return true;
      case Var::kCtxAttr: *out = Attr(req.context_attrs, key); return true;
      case Var::kUserEmail:
      case Var::kUserAttr: {
        if (fail_user) return false;
        auto it = user.find(var == Var::kUserEmail ? "email" : "attrs." + std::string(key));
        *out = it == user.end() ? RtValue() : it->second;
        return true;
      }
      default: *out = RtValue(); return true;
    }
  }
  bool LoadKeyed(Var var, uint32_t key_id, RtValue* out) noexcept {
    return Load(var, key_id == kNoKey ? std::string_view() : pool_.names[key_id], out);
  }
  const Value* RequestAttr(uint8_t base, uint32_t key_id) noexcept {
    for (const KeyValue& kv : base == kBaseResourceAttrs ? req.resource_attrs : req.context_attrs) {
      if (kv.key == pool_.names[key_id]) return &kv.value;
    }
    return nullptr;
  }
  // Decision-program tests never occur in condition programs.
  uint64_t RoleMask(uint8_t) const noexcept { return 0; }
  bool RuleRolesMatch(uint32_t, uint8_t) const noexcept { return false; }
  bool OverlayApplies(uint32_t) const noexcept { return false; }
  bool Grants(uint8_t) const noexcept { return false; }

 private:
  static RtValue Attr(AttrList attrs, std::string_view key) {
    for (const KeyValue& kv : attrs) {
      if (kv.key == key) return RtValue::From(kv.value);
    }
    return RtValue();
  }
  const ProgramPool& pool_;
};

// The operand-resolved steps (RunFast) against the tree walk over random well-typed
// expressions using every slot representation, request attributes and generic leaves, with
// random frames, requests and failing loads: same result, same error.
TEST(ExprTest, FastStepsMatchTreeWalk) {
  XorShift rnd(0x2545f4914f6cdd1dull);
  static const char* kLits[] = {"'a'", "'b'", "''", "'abcdefghij'"};
  static const char* kStrs[] = {"user.id", "org.plan", "org.status", "membership.team",
                                "membership.contact_visibility", "context.auth.method",
                                "context.auth.idp", "org.sso.idp", "resource.type",
                                "membership.org_role", "workspace.id", "org.id"};
  static const char* kBools[] = {"org.suspended", "org.sso.enforced", "membership.implied"};
  static const char* kInts[] = {"org.seats", "org.members", "org.members_and_pending"};
  static const char* kLists[] = {"org.features", "membership.flags", "org.sso.exempt_roles"};
  static const char* kAttrs[] = {"resource.attrs.x", "resource.attrs.y", "context.z"};
  static const char* kOps[] = {"==", "!=", "<", "<=", ">", ">="};
  auto str = [&] { return std::string(kStrs[rnd(12)]); };
  auto attr = [&] { return std::string(kAttrs[rnd(3)]); };
  auto lit = [&] { return std::string(kLits[rnd(4)]); };
  auto eqop = [&] { return std::string(rnd(2) ? " == " : " != "); };
  std::function<std::string(int)> gen = [&](int depth) -> std::string {
    switch (depth > 3 ? rnd(20) : rnd(25)) {
      case 0: return kBools[rnd(3)];
      case 1: return "has(" + (rnd(2) ? str() : attr()) + ")";
      case 2: return "has(context.auth.age_s)";
      case 3: return str() + eqop() + lit();
      case 4: return lit() + eqop() + str();
      case 5: return attr() + eqop() + lit();
      case 6: return str() + " in ['a', '', 'b']";
      case 7: return attr() + " in ['a', 'abcdefghij']";
      case 8: return lit() + " in " + kLists[rnd(3)];
      case 9: return str() + " in " + kLists[rnd(3)];
      case 10: return str() + eqop() + str();
      case 11: return attr() + eqop() + str();
      case 12: return str() + eqop() + attr();
      case 13: return std::string(kInts[rnd(3)]) + " " + kOps[rnd(6)] + " " + kInts[rnd(3)];
      case 14:
        return std::string(kInts[rnd(3)]) + " " + kOps[rnd(6)] + (rnd(3) ? " 2" : " 2.5");
      case 15: return std::string("context.auth.age_s ") + kOps[rnd(6)] + " 2";
      case 16: return attr() + " " + kOps[rnd(6)] + " " + attr();
      case 17: return str() + " " + kOps[rnd(6)] + " " + str();
      case 18: return std::string(rnd(2) ? "user.email" : "user.attrs.q") + eqop() + lit();
      case 19: return "(" + gen(depth + 1) + ") == " + (rnd(2) ? "true" : kBools[rnd(3)]);
      case 20: return "!" + gen(depth + 1);
      case 21:
      case 22: return "(" + gen(depth + 1) + " && " + gen(depth + 1) + ")";
      default: return "(" + gen(depth + 1) + " || " + gen(depth + 1) + ")";
    }
  };
  static const char* kVals[] = {"", "a", "b", "abcdefghij"};
  static const std::string_view kListVals[][3] = {{"a", "b", ""}, {"abcdefghij", "", ""}};
  auto sv = [&] { return std::string_view(kVals[rnd(4)]); };
  auto list = [&] { return StringList(kListVals[rnd(2)], rnd(4)); };
  auto value = [&]() -> Value {
    switch (rnd(7)) {
      case 0: return Value::Null();
      case 1: return Value::Bool(rnd(2) != 0);
      case 2: return Value::Int(static_cast<int64_t>(rnd(4)));
      case 3: return Value::Double(2.5);
      default: return Value::String(kVals[rnd(4)]);
    }
  };
  int compiled = 0, fast_steps = 0, all_steps = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    const std::string text = gen(0);
    Compiled e(text);
    if (!e.ok) continue;
    ++compiled;
    for (const FStep& f : e.pool.fsteps) fast_steps += f.op != FOp::kGeneric;
    all_steps += static_cast<int>(e.pool.fsteps.size());
    for (int trial = 0; trial < 8; ++trial) {
      FrameVars v(e.pool);
      Frame& f = v.frame;
      f.org.plan = sv(); f.org.status = sv(); f.org.sso_idp = sv(); f.org_id = sv();
      f.om.role = sv(); f.wm.team = sv(); f.wm.contact_visibility = sv();
      f.org.suspended = rnd(2); f.org.sso_enforced = rnd(2); f.implied = rnd(2);
      f.org.seats = rnd(4); f.org.members = rnd(4); f.members_and_pending = rnd(4);
      f.org.features = list(); f.wm.flags = list(); f.org.sso_exempt_roles = list();
      v.req.user = sv(); v.req.auth_method = sv(); v.req.auth_idp = sv();
      v.req.resource_type = sv(); v.req.workspace = sv();
      v.req.auth_age_s = static_cast<int64_t>(rnd(5)) - 1;
      KeyValue rattrs[2] = {{"x", value()}, {"y", value()}};
      KeyValue cattrs[1] = {{"z", value()}};
      v.req.resource_attrs = AttrList(rattrs, rnd(3));
      v.req.context_attrs = AttrList(cattrs, rnd(2));
      v.user["email"] = RtValue::String(sv());
      if (rnd(2)) v.user["attrs.q"] = RtValue::String(sv());
      v.fail_user = trial == 7;
      bool tree_error = false;
      const bool tree = RunTree(e.pool, e.program, v, &tree_error);
      const Truth fast = RunFast(e.pool, v.bases, v, e.program.entry);
      ASSERT_EQ(fast == Truth::kError, tree_error) << text;
      if (!tree_error) {
        ASSERT_EQ(fast == Truth::kTrue, tree) << text;
      }
    }
  }
  EXPECT_GT(compiled, 2000);
  EXPECT_GT(fast_steps * 2, all_steps);  // most leaves take a specialised op
}

}  // namespace
}  // namespace gatehouse::policy::internal
