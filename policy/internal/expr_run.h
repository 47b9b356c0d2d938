// The expression interpreter, as a template so the evaluator's variable source is called
// directly (no virtual call per variable) and can be inlined into the dispatch loop.
//
// Thread-safety: pure function of its arguments.
#ifndef GATEHOUSE_POLICY_INTERNAL_EXPR_RUN_H_
#define GATEHOUSE_POLICY_INTERNAL_EXPR_RUN_H_

#include <cstring>

#include "policy/internal/expr.h"

namespace gatehouse::policy::internal {

inline bool RtIsNum(const RtValue& v) noexcept {
  return v.kind == RtValue::Kind::kInt || v.kind == RtValue::Kind::kDouble;
}

inline bool RtStrEq(const RtValue& a, const RtValue& b) noexcept {
  return a.n == b.n && (a.n == 0 || std::memcmp(a.str, b.str, a.n) == 0);
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
      if (list.strs[k] == s) return true;
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

// Vars: any type with `bool Load(Var, std::string_view key, RtValue*) noexcept`.
template <typename Vars>
inline bool RunProgram(const ProgramPool& pool, const Program& program, Vars& vars,
                       bool* error) noexcept {
  if (program.size == 0) return true;
  // Uninitialized slots: every slot is assigned (trivially) before it is read.
  union Slot {
    Slot() {}
    RtValue v;
  };
  Slot stack[kMaxStack];
  size_t sp = 0;
  const Instr* code = pool.code.data();
  uint32_t pc = program.begin;
  const uint32_t end = program.begin + program.size;
  while (pc < end) {
    const Instr& in = code[pc++];
    switch (in.op) {
      case Op::kConst:
        stack[sp++].v = pool.consts[in.arg];
        break;
      case Op::kList: {
        const ListConst& lc = pool.lists[in.arg];
        stack[sp++].v = RtValue::ValList(pool.list_items.data() + lc.begin, lc.count);
        break;
      }
      case Op::kVar:
      case Op::kHas: {
        std::string_view key;
        if (in.arg < pool.names.size()) key = pool.names[in.arg];
        RtValue& v = stack[sp++].v;
        if (!vars.Load(in.var, key, &v)) {
          *error = true;
          return false;
        }
        if (in.op == Op::kHas) v = RtValue::Bool(v.kind != RtValue::Kind::kMissing);
        break;
      }
      case Op::kEq: case Op::kNe: case Op::kLt: case Op::kLe: case Op::kGt: case Op::kGe: {
        bool r = RtCompare(in.op, stack[sp - 2].v, stack[sp - 1].v);
        --sp;
        stack[sp - 1].v = RtValue::Bool(r);
        break;
      }
      case Op::kIn: {
        bool r = RtIn(stack[sp - 2].v, stack[sp - 1].v);
        --sp;
        stack[sp - 1].v = RtValue::Bool(r);
        break;
      }
      case Op::kNot: {
        RtValue& t = stack[sp - 1].v;
        t = RtValue::Bool(t.kind == RtValue::Kind::kBool ? !t.b : false);
        break;
      }
      case Op::kToBool: {
        RtValue& t = stack[sp - 1].v;
        t = RtValue::Bool(t.kind == RtValue::Kind::kBool && t.b);
        break;
      }
      case Op::kJumpIfFalse:
        if (!stack[sp - 1].v.b) pc = in.arg;
        break;
      case Op::kJumpIfTrue:
        if (stack[sp - 1].v.b) pc = in.arg;
        break;
      case Op::kPop:
        --sp;
        break;
    }
  }
  return sp == 1 && stack[0].v.kind == RtValue::Kind::kBool && stack[0].v.b;
}

}  // namespace gatehouse::policy::internal

#endif  // GATEHOUSE_POLICY_INTERNAL_EXPR_RUN_H_
