// Small pieces of the public API that are neither loading nor evaluation.
#include "policy/policy.h"

#include <cstring>

#include "policy/internal/bytes.h"
#include "policy/internal/compiled.h"

namespace gatehouse::policy {

std::string Issue::ToString() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + message;
}

size_t ActionCount(const CompiledPolicy& policy) noexcept { return policy.actions.size(); }

std::string_view ActionName(const CompiledPolicy& policy, uint32_t index) noexcept {
  return index < policy.actions.size() ? policy.actions[index].name : std::string_view();
}

PolicyInfo Info(const CompiledPolicy& policy) { return policy.info; }

namespace internal {

void NameMap::Build(const std::vector<std::string_view>& keys) {
  size_t cap = 8;
  int bits = 3;
  while (cap < keys.size() * 2) {
    cap <<= 1;
    ++bits;
  }
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  shift_ = 64 - bits;
  for (size_t k = 0; k < keys.size(); ++k) {
    const uint64_t head = Head(keys[k]);
    uint64_t h = Hash(keys[k], head) >> shift_;
    while (slots_[h].value != kNone) h = (h + 1) & mask_;
    slots_[h] = Slot{keys[k], head, static_cast<uint32_t>(k)};
  }
}

}  // namespace internal
}  // namespace gatehouse::policy
