// Condition expressions: parse + type-check (load time) and the flat program the evaluator runs.
//
//   text --ParseAndCompile--> Program (instructions in a shared ProgramPool) --Run--> bool
//
// Parsing reports problems as (byte offset into the expression text, message); the loader turns
// offsets into file:line:col. Run() never allocates or throws: constants and lists are pre-built
// in the pool and the value stack is a fixed array sized by the compile-time depth limit.
//
// Thread-safety: a ProgramPool is immutable after loading and may be shared; Run() uses only
// its arguments and stack memory.
#ifndef GATEHOUSE_POLICY_INTERNAL_EXPR_H_
#define GATEHOUSE_POLICY_INTERNAL_EXPR_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/facts.h"

namespace gatehouse::policy::internal {

// Static types of the expression language.
enum class Type : uint8_t { kBool, kInt, kDouble, kString, kList, kDyn, kNull };
const char* TypeName(Type t) noexcept;

// Variables the language knows. Attr variables carry a key (index into ProgramPool::names).
enum class Var : uint8_t {
  kUserId, kUserEmail, kUserEmailVerified, kUserAttr,
  kOrgId, kOrgPlan, kOrgStatus, kOrgSuspended, kOrgFeatures, kOrgSeats, kOrgMembers,
  kOrgPendingInvitations, kOrgMembersAndPending, kOrgWorkspaces, kOrgWorkspaceLimit,
  kOrgSsoEnabled, kOrgSsoEnforced, kOrgSsoIdp, kOrgSsoExemptRoles, kOrgAttr,
  kWorkspaceId, kWorkspaceAttr,
  kMemberOrgRole, kMemberWorkspaceRole, kMemberEffectiveRole, kMemberImplied, kMemberFlags,
  kMemberTeam, kMemberContactVisibility,
  kResourceType, kResourceId, kResourceAttr,
  kActionName, kActionScope,
  kCtxAuthMethod, kCtxAuthIdp, kCtxAuthAgeS, kCtxClient, kCtxAttr,
};

// Comparison operators.
enum class Op : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };

// A leaf operand: a constant, a constant list, a variable, or a sub-expression (its truth
// value as a bool).
struct Operand {
  enum class Kind : uint8_t { kConst, kList, kVar, kNode };
  Kind kind = Kind::kConst;
  Var var = Var::kUserId;
  uint32_t idx = 0;  // consts / lists / names (attr key, or kNoKey) / nodes index
};
inline constexpr uint32_t kNoKey = 0xffffffffu;

// Compiled matcher nodes (Envoy-RBAC style), stored flat in ProgramPool::nodes. Leaves load
// their operands directly (no value stack); And/Or short-circuit over a child index range.
struct Node {
  enum class Kind : uint8_t {
    kTruth,  // a: true iff the value is bool true (a non-bool is "not a bool", see Eval)
    kHas,    // a (a variable): present
    kCmp,    // a <cmp> b
    kIn,     // a in b (b: a list constant or a list variable)
    // Specialised leaves chosen by the compiler for the commonest shapes; each gives exactly
    // the result of the generic leaf it replaces, with fewer dispatches per evaluation.
    kVarTruth,   // kTruth of a variable
    kVarEqStr,   // a (variable) == b (string constant)
    kVarNeStr,   // a (variable) != b (string constant)
    kVarInStrs,  // a (variable) in b (list constant whose items are all strings)
    kStrInVar,   // a (string constant) in b (list variable)
    kVarCmpVar,  // a <cmp> b, both variables
    kVarCmpConst,  // a (variable) <cmp> b (scalar constant)
    kNot,    // !child (child = a.idx)
    kAnd,    // children[first .. first+count)
    kOr,
  };
  Kind kind = Kind::kTruth;
  Op cmp = Op::kEq;
  Operand a, b;
  uint32_t first = 0;
  uint32_t count = 0;

  static constexpr Kind kLastLeaf = Kind::kVarCmpConst;
};

// The condition as a branch program ("threaded" And/Or/Not): every leaf of the tree, in
// evaluation order, with the step to continue at for each of its results. And/Or/Not become
// jumps, so evaluation is one loop over leaves with no recursion. next[] is indexed by
// Truth (false, true, not-a-bool); targets >= kStepAccept end the program.
struct Step {
  Node leaf;
  uint32_t next[3];
};
inline constexpr uint32_t kStepAccept = 0xfffffffeu;  // the condition holds
inline constexpr uint32_t kStepReject = 0xffffffffu;  // it does not

// Ends of a program other than a step index (every step index is below kEndRule):
//   condition programs end at kStepAccept / kStepReject;
//   decision programs (CompiledPolicy::decision_steps, one per action) end at
//   kEndRule + r (rule r matched), kEndGrant (the requester's role grants the action) or
//   kEndNoPermission; a facts failure ends any program with kEndError.
inline constexpr uint32_t kEndRule = 0x80000000u;
inline constexpr uint32_t kEndGrant = 0xfffffff0u;
inline constexpr uint32_t kEndNoPermission = 0xfffffff1u;
inline constexpr uint32_t kEndError = 0xfffffff2u;

// The same branch program with operands resolved at load time (ProgramPool::fsteps, one per
// step, same indices and successors): a leaf over variables with a slot (frame.h: Frame and
// Request fields) reads them at a constant offset; request-attribute leaves read the request's
// attribute lists; everything else is kGeneric (the step's Node through the Interpreter).
// Specialised ops give exactly the generic leaf's result; they only ever give true or false.
// Decision programs add the rule loop's own tests (kRoleBits .. kGrant).
enum class FOp : uint8_t {
  kGeneric,     // steps[arg].leaf through Interpreter::RunLeaf; not a bool: continue at arg2
  kBool,        // bool at a
  kStrHas,      // string at a present
  kIntOptHas,   // optional int at a present
  kStrEqC,      // string at a == consts[arg] (a non-empty string constant)
  kStrNeC,      // string at a != consts[arg]
  kStrInC,      // string at a in lists[arg] (string items)
  kCInList,     // consts[arg] (a string) in list at a
  kStrInList,   // string at a in list at b
  kStrEqStr,    // string at a == string at b
  kStrNeStr,
  kIntCmpC,     // int at a <cmp> consts[arg] (an int)
  kIntOptCmpC,  // optional int at a <cmp> consts[arg] (an int)
  kIntCmpInt,   // int at a <cmp> int at b
  kAttrHas,     // request attribute (abase: resource / context; key id arg2) present
  kAttrEqC,     // attribute == consts[arg] (a string)
  kAttrNeC,
  kAttrInC,     // attribute in lists[arg] (string items)
  kAttrEqStr,   // attribute == string at b
  kAttrNeStr,
  kLastLeaf = kAttrNeStr,
  // Decision programs only (abase: the action's scope, 0 org / 1 workspace).
  kRoleBits,    // one of the requester's roles (ids < 64) is in the mask arg | arg2 << 32
  kRoleList,    // one of the requester's roles is among rule `rule`'s roles (any ids)
  kOverlay,     // rule `rule` is an overlay rule of the request's org
  kGrant,       // the requester's role in the action's scope grants the action
};
struct FStep {
  FOp op = FOp::kGeneric;
  Op cmp = Op::kEq;
  uint8_t abase = 0, bbase = 0;
  uint16_t aoff = 0, boff = 0;
  uint32_t arg = 0;
  uint32_t arg2 = 0;
  uint32_t next[2] = {kStepReject, kStepReject};  // indexed by the result (false, true)
  uint32_t rule = 0xffffffffu;  // decision programs: the rule this step tests (for kEndError)
};

struct ListConst {
  uint32_t begin;
  uint32_t count;
};

// A runtime value (16 bytes, no ownership: views into facts, the request or the pool).
struct RtValue {
  enum class Kind : uint8_t { kMissing, kNull, kBool, kInt, kDouble, kString, kStrList, kValList };
  Kind kind = Kind::kMissing;
  bool b = false;
  uint32_t n = 0;  // string length / list length
  union {
    int64_t i = 0;
    double d;
    const char* str;
    const std::string_view* strs;
    const RtValue* vals;
  };

  std::string_view s() const noexcept { return std::string_view(str, n); }

  [[gnu::always_inline]] static RtValue Null() noexcept { RtValue v; v.kind = Kind::kNull; return v; }
  [[gnu::always_inline]] static RtValue Bool(bool x) noexcept { RtValue v; v.kind = Kind::kBool; v.b = x; return v; }
  [[gnu::always_inline]] static RtValue Int(int64_t x) noexcept { RtValue v; v.kind = Kind::kInt; v.i = x; return v; }
  [[gnu::always_inline]] static RtValue Double(double x) noexcept {
    RtValue v;
    v.kind = Kind::kDouble;
    v.d = x;
    return v;
  }
  [[gnu::always_inline]] static RtValue String(std::string_view x) noexcept {
    RtValue v;
    v.kind = Kind::kString;
    v.str = x.data();
    v.n = static_cast<uint32_t>(x.size());
    return v;
  }
  [[gnu::always_inline]] static RtValue StrList(std::span<const std::string_view> l) noexcept {
    RtValue v;
    v.kind = Kind::kStrList;
    v.strs = l.data();
    v.n = static_cast<uint32_t>(l.size());
    return v;
  }
  [[gnu::always_inline]] static RtValue ValList(const RtValue* items, uint32_t count) noexcept {
    RtValue v;
    v.kind = Kind::kValList;
    v.vals = items;
    v.n = count;
    return v;
  }
  [[gnu::always_inline]] static RtValue From(const Value& x) noexcept {
    switch (x.kind) {
      case Value::Kind::kMissing: return RtValue();
      case Value::Kind::kNull: return Null();
      case Value::Kind::kBool: return Bool(x.b);
      case Value::Kind::kInt: return Int(x.i);
      case Value::Kind::kDouble: return Double(x.d);
      case Value::Kind::kString: return String(x.s);
    }
    return RtValue();
  }
};

// Storage shared by all programs of one compiled policy.
struct ProgramPool {
  std::vector<Node> nodes;
  std::vector<uint32_t> children;
  std::vector<Step> steps;  // branch programs (Program::entry)
  std::vector<FStep> fsteps;  // the same programs, operands resolved (one per step)
  std::vector<RtValue> consts;
  std::vector<RtValue> list_items;
  std::vector<ListConst> lists;
  std::vector<std::string_view> names;  // attr keys, each distinct key once (its index is
                                        // the key's id: equal keys, equal ids)
  std::vector<uint64_t> name_heads;     // per name: its head word (HeadWord)
  std::unordered_map<std::string_view, uint32_t> name_ids;  // load time only: key -> id
  std::deque<std::string> strings;      // owns every string the views above point to

  std::string_view Intern(std::string_view s);
};

struct Program {
  uint32_t root = 0;         // tree form (nodes)
  uint32_t entry = kStepAccept;  // branch-program form (steps); same result as the tree
  bool present = false;      // false: no condition (always true)
  bool uses_action = false;  // reads action.* (its value may differ between actions)
  uint32_t steps_begin = 0;  // its steps: [steps_begin, steps_end) of pool.steps / fsteps
  uint32_t steps_end = 0;
};

inline constexpr size_t kMaxExprBytes = 4096;
inline constexpr size_t kMaxListItems = 256;

struct ExprError {
  size_t offset;
  std::string message;
};

// Parses, type-checks and compiles `text` into pool. Returns true on success; else appends
// to *errors (possibly several); pool may then hold unreferenced garbage.
bool CompileExpr(std::string_view text, size_t max_depth, ProgramPool* pool, Program* out,
                 std::vector<ExprError>* errors);

// Supplies variable values during Run(). Implemented by the evaluator.
class VarSource {
 public:
  // Sets *out; returns false on an internal failure (Facts kError): Run() then returns false
  // and sets *error.
  virtual bool Load(Var var, std::string_view key, RtValue* out) noexcept = 0;

 protected:
  ~VarSource() = default;
};

// Runs `program`; returns true iff the condition holds. On a facts failure returns false and
// sets *error = true. (The evaluator uses the inlined template RunProgram in expr_run.h.)
bool Run(const ProgramPool& pool, const Program& program, VarSource& vars, bool* error) noexcept;
// Same result by walking the tree form (Program::root) instead of the branch program: the
// reference the branch programs are tested against.
bool RunTree(const ProgramPool& pool, const Program& program, VarSource& vars,
             bool* error) noexcept;

}  // namespace gatehouse::policy::internal

#endif  // GATEHOUSE_POLICY_INTERNAL_EXPR_H_
