// Fuzzes the condition expression parser + type checker (policy/internal/expr.h CompileExpr)
// and runs each program that compiles against a VarSource answering from the input's bytes;
// also runs the operand-resolved steps (expr_run.h RunFast) over a Frame and Request filled from
// the input and traps if they disagree with the tree walk over the same values.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "policy/internal/expr.h"
#include "policy/internal/expr_run.h"
#include "policy/internal/frame.h"

namespace gi = gatehouse::policy::internal;

namespace {

// Answers every variable with a value derived from a seed byte: missing, or a value of the
// variable's natural kind, or a wrong-kind dyn.
class ByteVars final : public gi::VarSource {
 public:
  explicit ByteVars(uint8_t seed) : seed_(seed) {}
  bool Load(gi::Var var, std::string_view key, gi::RtValue* out) noexcept override {
    static const std::string_view kStrs[] = {"org_admin", "sso", "u1", ""};
    const uint8_t h = static_cast<uint8_t>(seed_ + static_cast<uint8_t>(var) * 7 + key.size());
    *out = gi::RtValue();
    switch (h % 6) {
      case 0: break;  // missing
      case 1: *out = gi::RtValue::Bool(h & 8); break;
      case 2: *out = gi::RtValue::Int(static_cast<int64_t>(h) - 100); break;
      case 3: *out = gi::RtValue::String(kStrs[h % 4]); break;
      case 4: *out = gi::RtValue::StrList(std::span<const std::string_view>(kStrs, h % 5)); break;
      case 5: *out = gi::RtValue::Null(); break;
    }
    return seed_ != 0xff;  // 0xff simulates a facts failure
  }

 private:
  uint8_t seed_;
};

// Slot variables from a Frame and Request filled from a seed byte; request attributes from the
// Request's lists; the rest (user.*, *.attrs.*, action.*) as ByteVars.
class FrameVars final : public gi::VarSource {
 public:
  FrameVars(const gi::ProgramPool& pool, uint8_t seed)
      : bases(frame, req), pool_(pool), other_(seed) {
    static const std::string_view kStrs[] = {"", "org_admin", "sso", "u1", "abcdefghijkl"};
    auto str = [&](int k) { return kStrs[(seed + k * 5) % 5]; };
    frame.org.plan = str(1);
    frame.org.status = str(2);
    frame.org.sso_idp = str(3);
    frame.org_id = str(4);
    frame.om.role = str(5);
    frame.wm.role = str(6);
    frame.wm.team = str(7);
    frame.wm.contact_visibility = str(8);
    frame.effective_role = str(9);
    frame.org.suspended = seed & 1;
    frame.org.sso_enabled = seed & 2;
    frame.org.sso_enforced = seed & 4;
    frame.implied = seed & 8;
    frame.org.seats = seed % 7;
    frame.org.members = seed % 5;
    frame.org.pending_invitations = seed % 3;
    frame.org.workspaces = seed % 4;
    frame.org.workspace_limit = seed % 6;
    frame.members_and_pending = frame.org.members + frame.org.pending_invitations;
    frame.org.features = std::span<const std::string_view>(kStrs, seed % 6);
    frame.org.sso_exempt_roles = std::span<const std::string_view>(kStrs + 1, seed % 5);
    frame.wm.flags = std::span<const std::string_view>(kStrs + 2, seed % 4);
    req.user = str(10);
    req.workspace = str(11);
    req.resource_type = str(12);
    req.resource_id = str(13);
    req.auth_method = str(14);
    req.auth_idp = str(15);
    req.client = str(16);
    req.auth_age_s = static_cast<int64_t>(seed % 9) - 2;
    static const gatehouse::policy::Value kVals[] = {
        gatehouse::policy::Value::String("u1"), gatehouse::policy::Value::String(""),
        gatehouse::policy::Value::Int(3), gatehouse::policy::Value::Bool(true),
        gatehouse::policy::Value::Null(), gatehouse::policy::Value::Double(2.5)};
    static const std::string_view kKeys[] = {"a", "b", "target_user", "team", "x", "abcdefghijk"};
    for (int k = 0; k < 6; ++k) attrs_[k] = {kKeys[k], kVals[(seed + k) % 6]};
    req.resource_attrs = std::span<const gatehouse::policy::KeyValue>(attrs_, seed % 7);
    req.context_attrs = std::span<const gatehouse::policy::KeyValue>(attrs_ + 2, seed % 5);
  }

  gi::Frame frame;
  gatehouse::policy::Request req;
  const gi::Bases bases;

  bool Load(gi::Var var, std::string_view key, gi::RtValue* out) noexcept override {
    const gi::Slot slot = gi::kSlots.s[static_cast<int>(var)];
    if (slot.rep != gi::Rep::kNone) {
      *out = gi::ReadSlot(bases, slot);
      return true;
    }
    if (var == gi::Var::kResourceAttr || var == gi::Var::kCtxAttr) {
      const auto* v = Find(var == gi::Var::kResourceAttr ? req.resource_attrs : req.context_attrs, key);
      *out = v ? gi::RtValue::From(*v) : gi::RtValue();
      return true;
    }
    return other_.Load(var, key, out);
  }
  bool LoadKeyed(gi::Var var, uint32_t key_id, gi::RtValue* out) noexcept {
    return Load(var, key_id == gi::kNoKey ? std::string_view() : pool_.names[key_id], out);
  }
  const gatehouse::policy::Value* RequestAttr(uint8_t base, uint32_t key_id) noexcept {
    return Find(base == gi::kBaseResourceAttrs ? req.resource_attrs : req.context_attrs,
                pool_.names[key_id]);
  }
  uint64_t RoleMask(uint8_t) const noexcept { return 0; }
  bool RuleRolesMatch(uint32_t, uint8_t) const noexcept { return false; }
  bool OverlayApplies(uint32_t) const noexcept { return false; }
  bool Grants(uint8_t) const noexcept { return false; }

 private:
  static const gatehouse::policy::Value* Find(gatehouse::policy::AttrList l, std::string_view k) {
    for (const auto& kv : l) {
      if (kv.key == k) return &kv.value;
    }
    return nullptr;
  }
  const gi::ProgramPool& pool_;
  gatehouse::policy::KeyValue attrs_[6];
  ByteVars other_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 2 * gi::kMaxExprBytes) return 0;
  const uint8_t seed = data[0];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  gi::ProgramPool pool;
  gi::Program prog;
  std::vector<gi::ExprError> errors;
  const bool ok = gi::CompileExpr(text, 32, &pool, &prog, &errors);
  if (!ok) {
    if (errors.empty()) __builtin_trap();  // contract: failure comes with a message
    for (const auto& e : errors) {
      if (e.offset > text.size()) __builtin_trap();  // offsets point into the text
    }
    return 0;
  }
  for (uint8_t s : {seed, static_cast<uint8_t>(seed ^ 0x5a), uint8_t{0xff}}) {
    ByteVars vars(s);
    bool error = false;
    (void)gi::Run(pool, prog, vars, &error);
    // The operand-resolved steps agree with the tree walk over the same values.
    FrameVars fv(pool, s);
    bool tree_error = false;
    const bool tree = gi::RunTree(pool, prog, fv, &tree_error);
    const gi::Truth fast = gi::RunFast(pool, fv.bases, fv, prog.entry);
    if ((fast == gi::Truth::kError) != tree_error) __builtin_trap();
    if (!tree_error && (fast == gi::Truth::kTrue) != tree) __builtin_trap();
  }
  return 0;
}
