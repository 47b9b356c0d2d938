// The expression interpreter, as a template so the evaluator's variable source is called
// directly (no virtual call per variable) and can be inlined into the dispatch loop.
//
// Thread-safety: pure function of its arguments.
#ifndef GATEHOUSE_POLICY_INTERNAL_EXPR_RUN_H_
#define GATEHOUSE_POLICY_INTERNAL_EXPR_RUN_H_

#include <cstring>

#include "policy/internal/bytes.h"
#include "policy/internal/expr.h"

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
