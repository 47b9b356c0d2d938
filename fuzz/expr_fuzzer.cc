// Fuzzes the condition expression parser + type checker (policy/internal/expr.h CompileExpr)
// and runs each program that compiles against a VarSource answering from the input's bytes.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "policy/internal/expr.h"

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
  }
  return 0;
}
