// The compiled policy: interned names, role -> action bitsets, per-action rule indexes and
// condition programs. Built once by the loader (policy/loader.cc), then immutable.
//
// Thread-safety: immutable after construction; shared freely between threads.
#ifndef GATEHOUSE_POLICY_INTERNAL_COMPILED_H_
#define GATEHOUSE_POLICY_INTERNAL_COMPILED_H_

#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "policy/internal/bytes.h"
#include "policy/internal/expr.h"
#include "policy/policy.h"

namespace gatehouse::policy::internal {

inline constexpr uint32_t kNone = 0xffffffffu;

// Open-addressing string_view -> uint32 map (keys must outlive it). Lookups never allocate.
// Each slot keeps its key's head word (LoadTail of up to 8 bytes, injective for a given length;
// else the first 8 bytes): keys of up to 8 bytes (role names) compare without reloading their
// bytes, longer ones (action names) compare only the bytes past the head.
class NameMap {
 public:
  void Build(const std::vector<std::string_view>& keys);  // value = index in keys

  // kNone if absent. Inline: called on every request (action and role names).
  [[gnu::always_inline]] uint32_t Find(std::string_view key) const noexcept {
    if (slots_.empty()) return kNone;
    const uint64_t head = Head(key);
    const size_t n = key.size();
    uint64_t h = Hash(key, head) >> shift_;
    while (true) {
      const Slot& s = slots_[h];
      if (s.value == kNone) return kNone;
      if (s.head == head && s.key.size() == n &&
          (n <= 8 || BytesEqual(s.key.data() + 8, key.data() + 8, n - 8))) {
        return s.value;
      }
      h = (h + 1) & mask_;
    }
  }

  [[gnu::always_inline]] static uint64_t Head(std::string_view s) noexcept { return HeadWord(s); }
  // On the request path (action and role names): up to 8 bytes, one multiply of the head word
  // already loaded; longer, HashName. Slots are indexed by the top bits (Fibonacci hashing).
  [[gnu::always_inline]] static uint64_t Hash(std::string_view s, uint64_t head) noexcept {
    if (s.size() > 8) return HashName(s);
    return (head ^ (s.size() * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
  }

 private:
  struct Slot {
    std::string_view key;
    uint64_t head = 0;
    uint32_t value = kNone;
  };
  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  int shift_ = 63;  // 64 - log2(slots_.size())
};

enum class Scope : uint8_t { kOrg, kWorkspace };

struct ActionDef {
  std::string_view name;
  Scope scope;
};

struct RoleDef {
  std::string_view name;
  Scope scope;
  int64_t rank = 0;
  std::string_view overlay_org;  // empty: base role; else usable only in that org
  uint32_t implied = kNone;      // org roles: the workspace role they imply
  uint32_t grants_begin = 0;     // word offset into CompiledPolicy::grant_words
};

struct RuleDef {
  std::string_view id;
  std::string_view reason;
  bool deny = false;
  std::string_view overlay_org;  // empty: applies in every org
  uint32_t roles_begin = 0;      // into rule_roles
  uint32_t roles_count = 0;      // 0: any role
  Program condition;
};

// One entry of an action's rule list: what the rule loop needs, precomputed at load time so a
// rule that does not apply costs a few instructions (no RuleDef load, no overlay string compare
// unless the rule is an overlay's, roles as a bit test).
struct RuleRef {
  enum Flags : uint8_t {
    kAnyRole = 1,    // no roles: matches every member
    kRoleList = 2,   // a role id >= 64: test rule_roles instead of role_bits
    kOverlay = 4,    // overlay rule: applies only when RuleDef::overlay_org is the request's org
    kCondition = 8,  // has a condition (its branch program starts at `entry`)
    kUsesAction = 16,  // the condition reads action.*
  };
  uint64_t role_bits = 0;  // bit r set iff role id r (< 64) is one of the rule's roles
  uint32_t rule = 0;       // index into CompiledPolicy::rules
  uint32_t entry = kStepAccept;
  uint8_t flags = 0;
};

}  // namespace gatehouse::policy::internal

namespace gatehouse::policy {

class CompiledPolicy {
 public:
  // All string_views below point into `strings` or `pool.strings`.
  std::deque<std::string> strings;
  std::vector<internal::ActionDef> actions;
  internal::NameMap action_index;
  std::vector<internal::RoleDef> roles;
  internal::NameMap role_index;
  size_t words_per_set = 0;         // bitset words per role
  std::vector<uint64_t> grant_words;  // roles.size() * words_per_set
  std::vector<internal::RuleDef> rules;
  std::vector<uint32_t> rule_roles;
  // Per action: rule indices, deny rules first then allow rules, each in policy order.
  // Action a's denies are rule_list[deny_begin[a] .. allow_begin[a]), allows
  // [allow_begin[a] .. deny_begin[a+1]).
  std::vector<uint32_t> deny_begin;   // actions.size() + 1
  std::vector<uint32_t> allow_begin;  // actions.size()
  std::vector<internal::RuleRef> rule_list;
  // Per action: the entry of its decision program in decision_steps (internal/decision.h),
  // or kNone (the rule loop over rule_list decides).
  std::vector<internal::FStep> decision_steps;
  std::vector<uint32_t> decision_entry;
  internal::ProgramPool pool;
  std::vector<std::string> grant_rule_ids;  // "role:<name>" per role
  PolicyInfo info;

  std::string_view Intern(std::string_view s) {
    strings.emplace_back(s);
    return strings.back();
  }
  bool Grants(uint32_t role, uint32_t action) const noexcept {
    return (grant_words[roles[role].grants_begin + action / 64] >> (action % 64)) & 1u;
  }
};

}  // namespace gatehouse::policy

#endif  // GATEHOUSE_POLICY_INTERNAL_COMPILED_H_
