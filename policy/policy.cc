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

uint64_t NameMap::Hash(std::string_view s) noexcept {
  // On the request path (action and role names): a fixed number of loads whatever the length —
  // the first and the last 8 bytes (overlapping for 8..16 bytes; names differing only in their
  // middle bytes share a hash and are told apart by the key comparison in Find) — mixed with
  // the length by two multiplies and a xorshift.
  const size_t n = s.size();
  uint64_t a, b = 0;
  if (n >= 8) {
    std::memcpy(&a, s.data(), 8);
    std::memcpy(&b, s.data() + n - 8, 8);
  } else {
    a = LoadTail(s.data(), n);
  }
  uint64_t h = (a ^ (n * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
  h = (h ^ (h >> 32) ^ b) * 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 29);
}

void NameMap::Build(const std::vector<std::string_view>& keys) {
  size_t cap = 8;
  while (cap < keys.size() * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  for (size_t k = 0; k < keys.size(); ++k) {
    uint64_t h = Hash(keys[k]) & mask_;
    while (slots_[h].value != kNone) h = (h + 1) & mask_;
    slots_[h] = Slot{keys[k], static_cast<uint32_t>(k)};
  }
}

uint32_t NameMap::Find(std::string_view key) const noexcept {
  if (slots_.empty()) return kNone;
  uint64_t h = Hash(key) & mask_;
  while (true) {
    const Slot& s = slots_[h];
    if (s.value == kNone) return kNone;
    if (SvEqual(s.key, key)) return s.value;
    h = (h + 1) & mask_;
  }
}

}  // namespace internal
}  // namespace gatehouse::policy
