// The interpreters, as templates so the evaluator's variable source is called directly (no
// virtual call per variable):
//   RunSteps / RunFast — the operand-resolved step loop the evaluator runs (condition programs
//     and per-action decision programs; docs/policy.md §11);
//   Interpreter — the generic leaf (RunSteps' fallback), the branch-program loop over Nodes and
//     the tree walk (the references the step loop is tested against).
//
// Thread-safety: pure function of its arguments.
#ifndef GATEHOUSE_POLICY_INTERNAL_EXPR_RUN_H_
#define GATEHOUSE_POLICY_INTERNAL_EXPR_RUN_H_

#include <cstring>

#include "policy/internal/bytes.h"
#include "policy/internal/expr.h"
#include "policy/internal/frame.h"

namespace gatehouse::policy::internal {

inline bool RtIsNum(const RtValue& v) noexcept {
  return v.kind == RtValue::Kind::kInt || v.kind == RtValue::Kind::kDouble;
}

inline bool RtStrEq(const RtValue& a, const RtValue& b) noexcept {
  return a.n == b.n && BytesEqual(a.str, b.str, a.n);
}

// Three-way compare; false if not comparable.
inline bool RtCmp3(const RtValue& a, const RtValue& b, int* out) noexcept {
  if (a.kind == RtValue::Kind::kInt && b.kind == RtValue::Kind::kInt) {
    *out = a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
    return true;
  }
  if (RtIsNum(a) && RtIsNum(b)) {
    double x = a.kind == RtValue::Kind::kInt ? static_cast<double>(a.i) : a.d;
    double y = b.kind == RtValue::Kind::kInt ? static_cast<double>(b.i) : b.d;
    if (x != x || y != y) return false;  // NaN
    *out = x < y ? -1 : (x > y ? 1 : 0);
    return true;
  }
  if (a.kind == RtValue::Kind::kString && b.kind == RtValue::Kind::kString) {
    int c = a.s().compare(b.s());
    *out = c < 0 ? -1 : (c > 0 ? 1 : 0);
    return true;
  }
  return false;
}

// Equality of two present values.
inline bool RtEqual(const RtValue& a, const RtValue& b) noexcept {
  if (a.kind == RtValue::Kind::kString && b.kind == RtValue::Kind::kString) return RtStrEq(a, b);
  if (a.kind == RtValue::Kind::kNull || b.kind == RtValue::Kind::kNull) return a.kind == b.kind;
  if (a.kind == RtValue::Kind::kBool || b.kind == RtValue::Kind::kBool) {
    return a.kind == b.kind && a.b == b.b;
  }
  int c;
  return RtCmp3(a, b, &c) && c == 0;
}

inline bool RtCompare(Op op, const RtValue& a, const RtValue& b) noexcept {
  if (a.kind == RtValue::Kind::kMissing || b.kind == RtValue::Kind::kMissing) {
    return op == Op::kNe;
  }
  if (op == Op::kEq) return RtEqual(a, b);
  if (op == Op::kNe) return !RtEqual(a, b);
  int c;
  if (!RtCmp3(a, b, &c)) return false;
  switch (op) {
    case Op::kLt: return c < 0;
    case Op::kLe: return c <= 0;
    case Op::kGt: return c > 0;
    case Op::kGe: return c >= 0;
    default: return false;
  }
}

inline bool RtIn(const RtValue& a, const RtValue& list) noexcept {
  if (a.kind == RtValue::Kind::kMissing) return false;
  if (list.kind == RtValue::Kind::kStrList) {
    if (a.kind != RtValue::Kind::kString) return false;
    std::string_view s = a.s();
    for (uint32_t k = 0; k < list.n; ++k) {
      if (SvEqual(list.strs[k], s)) return true;
    }
    return false;
  }
  if (list.kind == RtValue::Kind::kValList) {
    for (uint32_t k = 0; k < list.n; ++k) {
      if (RtEqual(a, list.vals[k])) return true;
    }
  }
  return false;
}

// Result of evaluating a node: true, false, "not a bool" (a non-bool leaf value: false for
// every purpose, and `!` of it is false too), or a facts failure.
enum class Truth : int8_t { kFalse = 0, kTrue = 1, kNotBool = 2, kError = 3 };

// Vars: any type with `bool Load(Var, std::string_view key, RtValue*) noexcept`, or with
// `bool LoadKeyed(Var, uint32_t key_id, RtValue*) noexcept` (key_id: index into pool.names).
template <typename Vars>
class Interpreter {
 public:
  Interpreter(const ProgramPool& pool, Vars& vars) noexcept : pool_(pool), vars_(vars) {}

  // Runs a branch program (ProgramPool::steps) from `step`: kTrue, kFalse or kError.
  __attribute__((always_inline)) Truth Run(uint32_t step) noexcept {
    while (step < kStepAccept) {
      const Step& s = pool_.steps[step];
      Truth t = Leaf(s.leaf);
      if (t == Truth::kError) return t;
      step = s.next[static_cast<int>(t)];
    }
    return step == kStepAccept ? Truth::kTrue : Truth::kFalse;
  }

  // One leaf (a step's Node): the generic path of RunFast.
  Truth RunLeaf(const Node& n) noexcept { return Leaf(n); }

  // Tree evaluation (operands that are sub-expressions, e.g. `(a && b) == c`).
  Truth Eval(uint32_t idx) noexcept {
    const Node& n = pool_.nodes[idx];
    switch (n.kind) {
      case Node::Kind::kNot: {
        Truth t = Child(n.a.idx);
        if (t == Truth::kTrue) return Truth::kFalse;
        if (t == Truth::kFalse) return Truth::kTrue;
        return t == Truth::kError ? t : Truth::kFalse;  // !non-bool is false
      }
      case Node::Kind::kAnd: {
        const uint32_t* kids = pool_.children.data() + n.first;
        for (uint32_t k = 0; k < n.count; ++k) {
          Truth t = Child(kids[k]);
          if (t != Truth::kTrue) return t == Truth::kError ? t : Truth::kFalse;
        }
        return Truth::kTrue;
      }
      case Node::Kind::kOr: {
        const uint32_t* kids = pool_.children.data() + n.first;
        for (uint32_t k = 0; k < n.count; ++k) {
          Truth t = Child(kids[k]);
          if (t == Truth::kTrue || t == Truth::kError) return t;
        }
        return Truth::kFalse;
      }
      default:
        return Leaf(n);
    }
  }

 private:
  // Leaves are evaluated in place; only nested And/Or/Not recurse.
  Truth Child(uint32_t idx) noexcept {
    const Node& n = pool_.nodes[idx];
    if (n.kind <= Node::kLastLeaf) return Leaf(n);
    return Eval(idx);
  }

  static Truth Of(bool b) noexcept { return b ? Truth::kTrue : Truth::kFalse; }

  // String constant (pool) equal to a loaded value; false unless the value is a string.
  static bool StrConstEq(const RtValue& v, const RtValue& c) noexcept {
    return v.kind == RtValue::Kind::kString && RtStrEq(v, c);
  }

  __attribute__((always_inline)) Truth Leaf(const Node& n) noexcept {
    // Uninitialized: the loaders always assign before use.
    union Slot {
      Slot() {}
      RtValue v;
    } sa, sb;
    RtValue& a = sa.v;
    RtValue& b = sb.v;
    switch (n.kind) {
      case Node::Kind::kVarTruth:
        if (!LoadVar(n.a, &a)) return Truth::kError;
        if (a.kind != RtValue::Kind::kBool) return Truth::kNotBool;
        return Of(a.b);
      case Node::Kind::kHas:
        if (!LoadVar(n.a, &a)) return Truth::kError;
        return Of(a.kind != RtValue::Kind::kMissing);
      case Node::Kind::kVarEqStr:
        if (!LoadVar(n.a, &a)) return Truth::kError;
        return Of(StrConstEq(a, pool_.consts[n.b.idx]));
      case Node::Kind::kVarNeStr:  // missing or not a string: not equal
        if (!LoadVar(n.a, &a)) return Truth::kError;
        return Of(!StrConstEq(a, pool_.consts[n.b.idx]));
      case Node::Kind::kVarInStrs: {
        if (!LoadVar(n.a, &a)) return Truth::kError;
        if (a.kind != RtValue::Kind::kString) return Truth::kFalse;
        const ListConst& lc = pool_.lists[n.b.idx];
        const RtValue* items = pool_.list_items.data() + lc.begin;
        for (uint32_t k = 0; k < lc.count; ++k) {
          if (RtStrEq(a, items[k])) return Truth::kTrue;
        }
        return Truth::kFalse;
      }
      case Node::Kind::kStrInVar: {
        if (!LoadVar(n.b, &b)) return Truth::kError;
        const RtValue& c = pool_.consts[n.a.idx];
        if (b.kind != RtValue::Kind::kStrList) return Of(RtIn(c, b));
        for (uint32_t k = 0; k < b.n; ++k) {
          const std::string_view& s = b.strs[k];
          if (s.size() == c.n && BytesEqual(s.data(), c.str, c.n)) return Truth::kTrue;
        }
        return Truth::kFalse;
      }
      case Node::Kind::kVarCmpVar:
        if (!LoadVar(n.a, &a) || !LoadVar(n.b, &b)) return Truth::kError;
        if (a.kind == RtValue::Kind::kString && b.kind == RtValue::Kind::kString &&
            (n.cmp == Op::kEq || n.cmp == Op::kNe)) {  // the common case, without RtCompare
          return Of(RtStrEq(a, b) == (n.cmp == Op::kEq));
        }
        return Of(RtCompare(n.cmp, a, b));
      case Node::Kind::kVarCmpConst:
        if (!LoadVar(n.a, &a)) return Truth::kError;
        return Of(RtCompare(n.cmp, a, pool_.consts[n.b.idx]));
      default:
        break;
    }
    if (!LoadOperand(n.a, &a)) return Truth::kError;
    switch (n.kind) {
      case Node::Kind::kTruth:
        if (a.kind != RtValue::Kind::kBool) return Truth::kNotBool;
        return Of(a.b);
      case Node::Kind::kCmp:
        if (!LoadOperand(n.b, &b)) return Truth::kError;
        return Of(RtCompare(n.cmp, a, b));
      case Node::Kind::kIn:
        if (!LoadOperand(n.b, &b)) return Truth::kError;
        return Of(RtIn(a, b));
      default:
        return Truth::kError;
    }
  }

  // Vars either take the key id (LoadKeyed: the evaluator resolves names only for attribute
  // variables) or the key itself (Load).
  __attribute__((always_inline)) bool LoadVar(const Operand& o, RtValue* out) noexcept {
    if constexpr (requires { vars_.LoadKeyed(o.var, o.idx, out); }) {
      return vars_.LoadKeyed(o.var, o.idx, out);
    } else {
      return vars_.Load(o.var, o.idx == kNoKey ? std::string_view() : pool_.names[o.idx], out);
    }
  }

  bool LoadOperand(const Operand& o, RtValue* out) noexcept {
    switch (o.kind) {
      case Operand::Kind::kConst:
        *out = pool_.consts[o.idx];
        return true;
      case Operand::Kind::kList: {
        const ListConst& lc = pool_.lists[o.idx];
        *out = RtValue::ValList(pool_.list_items.data() + lc.begin, lc.count);
        return true;
      }
      case Operand::Kind::kVar:
        return LoadVar(o, out);
      case Operand::Kind::kNode: {
        Truth t = Eval(o.idx);
        if (t == Truth::kError) return false;
        *out = t == Truth::kNotBool ? RtValue() : RtValue::Bool(t == Truth::kTrue);
        return true;
      }
    }
    return false;
  }

  const ProgramPool& pool_;
  Vars& vars_;
};

[[gnu::always_inline]] inline bool CmpInt(Op op, int64_t x, int64_t y) noexcept {
  switch (op) {
    case Op::kEq: return x == y;
    case Op::kNe: return x != y;
    case Op::kLt: return x < y;
    case Op::kLe: return x <= y;
    case Op::kGt: return x > y;
    case Op::kGe: return x >= y;
  }
  return false;
}

[[gnu::always_inline]] inline bool StrEqConst(std::string_view v, const RtValue& c) noexcept {
  return v.size() == c.n && BytesEqual(v.data(), c.str, c.n);
}

// RunFast's generic leaves, out of line so the fast loop stays small.
template <typename Vars>
[[gnu::noinline]] Truth RunGenericLeaf(const ProgramPool& pool, Vars& vars,
                                       uint32_t step) noexcept {
  return Interpreter<Vars>(pool, vars).RunLeaf(pool.steps[step].leaf);
}

// Runs an operand-resolved program (ProgramPool::fsteps for a condition, or a decision
// program) from `step` and returns where it ended: kStepAccept / kStepReject for a condition,
// kEndRule + r / kEndGrant / kEndNoPermission for a decision, or kEndError after a facts
// failure (*err_rule = the failing step's rule). Leaves give exactly what Interpreter::Run
// gives over the same steps.
// Vars: as for Interpreter (LoadKeyed, for generic leaves), plus
//   const Value* RequestAttr(uint8_t base, uint32_t key_id)  (the request's value, or null;
//       base kBaseResourceAttrs / kBaseContextAttrs)
//   uint64_t RoleMask(uint8_t scope); bool RuleRolesMatch(uint32_t rule, uint8_t scope);
//   bool OverlayApplies(uint32_t rule); bool Grants(uint8_t scope)  (decision programs)
// all noexcept. `b`: the Frame and Request the slot variables are read from.
template <typename Vars>
uint32_t RunSteps(const FStep* fs, const ProgramPool& pool, const Bases& b, Vars& vars,
                  uint32_t step, uint32_t* err_rule) noexcept {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"  // labels as values (GCC and Clang)
  // Threaded dispatch (GCC labels as values): each op ends with its own branch to the next
  // step and its own indirect jump, so each jump is predicted from its own history.
  static const void* const kOps[] = {
      &&op_kGeneric,
      &&op_kBool,
      &&op_kStrHas,
      &&op_kIntOptHas,
      &&op_kStrEqC,
      &&op_kStrNeC,
      &&op_kStrInC,
      &&op_kCInList,
      &&op_kStrInList,
      &&op_kStrEqStr,
      &&op_kStrNeStr,
      &&op_kIntCmpC,
      &&op_kIntOptCmpC,
      &&op_kIntCmpInt,
      &&op_kAttrHas,
      &&op_kAttrEqC,
      &&op_kAttrNeC,
      &&op_kAttrInC,
      &&op_kAttrEqStr,
      &&op_kAttrNeStr,
      &&op_kRoleBits,
      &&op_kRoleList,
      &&op_kOverlay,
      &&op_kGrant,
  };
  static_assert(sizeof(kOps) / sizeof(kOps[0]) == static_cast<size_t>(FOp::kGrant) + 1);
  const FStep* ps;
  bool r;
#define GH_DISPATCH()                                         \
  do {                                                        \
    if (step >= kEndRule) return step;                        \
    ps = &fs[step];                                           \
    goto* kOps[static_cast<uint8_t>(ps->op)];                 \
  } while (0)
  // A branch, not an indexed load: the next step's address then does not wait for this
  // leaf's loads and compare (the CPU runs ahead on the predicted branch). The empty asm
  // keeps GCC from turning the branch back into a select.
#define GH_NEXT()                                             \
  do {                                                        \
    if (r) {                                                  \
      step = ps->next[1];                                     \
      asm volatile("" : "+r"(step));                          \
    } else {                                                  \
      step = ps->next[0];                                     \
    }                                                         \
    GH_DISPATCH();                                            \
  } while (0)
  GH_DISPATCH();
  op_kBool:
    r = BoolAt(b, ps->abase, ps->aoff);
    GH_NEXT();
  op_kStrHas:
    r = !StrAt(b, ps->abase, ps->aoff).empty();
    GH_NEXT();
  op_kIntOptHas:
    r = IntAt(b, ps->abase, ps->aoff) >= 0;
    GH_NEXT();
  op_kStrEqC:
    r = StrEqConst(StrAt(b, ps->abase, ps->aoff), pool.consts[ps->arg]);
    GH_NEXT();
  op_kStrNeC:
    r = !StrEqConst(StrAt(b, ps->abase, ps->aoff), pool.consts[ps->arg]);
    GH_NEXT();
  op_kStrInC: {
    const std::string_view v = StrAt(b, ps->abase, ps->aoff);
    r = false;
    if (!v.empty()) {
      const ListConst& lc = pool.lists[ps->arg];
      const RtValue* items = pool.list_items.data() + lc.begin;
      for (uint32_t k = 0; k < lc.count; ++k) {
        if (StrEqConst(v, items[k])) { r = true; break; }
      }
    }
    GH_NEXT();
  }
  op_kCInList: {
    const StringList l = ListAt(b, ps->abase, ps->aoff);
    const RtValue& c = pool.consts[ps->arg];
    r = false;
    for (const std::string_view& item : l) {
      if (StrEqConst(item, c)) { r = true; break; }
    }
    GH_NEXT();
  }
  op_kStrInList: {
    const std::string_view v = StrAt(b, ps->abase, ps->aoff);
    r = false;
    if (!v.empty()) {
      for (const std::string_view& item : ListAt(b, ps->bbase, ps->boff)) {
        if (SvEqual(item, v)) { r = true; break; }
      }
    }
    GH_NEXT();
  }
  op_kStrEqStr:
  op_kStrNeStr: {
    const std::string_view x = StrAt(b, ps->abase, ps->aoff);
    const std::string_view y = StrAt(b, ps->bbase, ps->boff);
    r = (!x.empty() && SvEqual(x, y)) == (ps->op == FOp::kStrEqStr);
    GH_NEXT();
  }
  op_kIntCmpC:
    r = CmpInt(ps->cmp, IntAt(b, ps->abase, ps->aoff), pool.consts[ps->arg].i);
    GH_NEXT();
  op_kIntOptCmpC: {
    const int64_t v = IntAt(b, ps->abase, ps->aoff);
    r = v < 0 ? ps->cmp == Op::kNe : CmpInt(ps->cmp, v, pool.consts[ps->arg].i);
    GH_NEXT();
  }
  op_kIntCmpInt:
    r = CmpInt(ps->cmp, IntAt(b, ps->abase, ps->aoff), IntAt(b, ps->bbase, ps->boff));
    GH_NEXT();
  op_kAttrHas: {
    const Value* v = vars.RequestAttr(ps->abase, ps->arg2);
    r = v != nullptr && v->kind != Value::Kind::kMissing;
    GH_NEXT();
  }
  op_kAttrEqC:
  op_kAttrNeC: {
    const Value* v = vars.RequestAttr(ps->abase, ps->arg2);
    r = (v != nullptr && v->kind == Value::Kind::kString &&
         StrEqConst(v->s, pool.consts[ps->arg])) == (ps->op == FOp::kAttrEqC);
    GH_NEXT();
  }
  op_kAttrInC: {
    const Value* v = vars.RequestAttr(ps->abase, ps->arg2);
    r = false;
    if (v != nullptr && v->kind == Value::Kind::kString) {
      const ListConst& lc = pool.lists[ps->arg];
      const RtValue* items = pool.list_items.data() + lc.begin;
      for (uint32_t k = 0; k < lc.count; ++k) {
        if (StrEqConst(v->s, items[k])) { r = true; break; }
      }
    }
    GH_NEXT();
  }
  op_kAttrEqStr:
  op_kAttrNeStr: {
    const Value* v = vars.RequestAttr(ps->abase, ps->arg2);
    const std::string_view y = StrAt(b, ps->bbase, ps->boff);
    r = (v != nullptr && v->kind == Value::Kind::kString && !y.empty() &&
         SvEqual(v->s, y)) == (ps->op == FOp::kAttrEqStr);
    GH_NEXT();
  }
  op_kRoleBits:
    r = (vars.RoleMask(ps->abase) & (uint64_t{ps->arg2} << 32 | ps->arg)) != 0;
    GH_NEXT();
  op_kRoleList:
    r = vars.RuleRolesMatch(ps->rule, ps->abase);
    GH_NEXT();
  op_kOverlay:
    r = vars.OverlayApplies(ps->rule);
    GH_NEXT();
  op_kGrant:
    r = vars.Grants(ps->abase);
    GH_NEXT();
  op_kGeneric: {
    const Truth t = RunGenericLeaf(pool, vars, ps->arg);
    if (t == Truth::kError) {
      *err_rule = ps->rule;
      return kEndError;
    }
    step = t == Truth::kNotBool ? ps->arg2 : ps->next[static_cast<int>(t)];
    GH_DISPATCH();
  }
#undef GH_NEXT
#undef GH_DISPATCH
#pragma GCC diagnostic pop
}

// A condition program (ProgramPool::fsteps from Program::entry): kTrue, kFalse or kError,
// exactly as Interpreter::Run.
template <typename Vars>
[[gnu::always_inline]] inline Truth RunFast(const ProgramPool& pool, const Bases& b, Vars& vars,
                                            uint32_t step) noexcept {
  uint32_t err_rule;
  const uint32_t end = RunSteps(pool.fsteps.data(), pool, b, vars, step, &err_rule);
  return end == kStepAccept ? Truth::kTrue : end == kEndError ? Truth::kError : Truth::kFalse;
}

// Runs `program`: true iff the condition holds. On a facts failure returns false and sets
// *error = true.
template <typename Vars>
__attribute__((always_inline)) inline bool RunProgram(const ProgramPool& pool,
                                                      const Program& program, Vars& vars,
                                                      bool* error) noexcept {
  if (!program.present) return true;
  Truth t = Interpreter<Vars>(pool, vars).Run(program.entry);
  if (t == Truth::kError) *error = true;
  return t == Truth::kTrue;
}

}  // namespace gatehouse::policy::internal

#endif  // GATEHOUSE_POLICY_INTERNAL_EXPR_RUN_H_
