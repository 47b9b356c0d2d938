#include "policy/internal/decision.h"

#include <map>
#include <vector>

namespace gatehouse::policy::internal {
namespace {

class Builder {
 public:
  explicit Builder(CompiledPolicy* p) : p_(*p), out_(p->decision_steps) {}

  // The program of action a; kNone if it would not fit in max_steps.
  uint32_t Action(uint32_t a, size_t max_steps) {
    const uint8_t scope = static_cast<uint8_t>(p_.actions[a].scope);
    std::vector<uint32_t> key;
    key.push_back(scope);
    key.push_back(p_.allow_begin[a] - p_.deny_begin[a]);
    for (uint32_t k = p_.deny_begin[a]; k < p_.deny_begin[a + 1]; ++k) {
      key.push_back(p_.rule_list[k].rule);
    }
    auto it = programs_.find(key);
    if (it != programs_.end()) return it->second;
    const size_t mark = out_.size();
    // Checked after every rule, so an action that does not fit costs at most one rule's steps
    // past the budget before it is dropped.
    auto over = [&] {
      if (out_.size() <= max_steps) return false;
      out_.resize(mark);
      return true;
    };
    uint32_t next = kEndNoPermission;
    for (uint32_t k = p_.deny_begin[a + 1]; k-- > p_.allow_begin[a];) {
      next = Rule(p_.rule_list[k], scope, next);
      if (over()) return kNone;
    }
    FStep grant;
    grant.op = FOp::kGrant;
    grant.abase = scope;
    grant.next[0] = next;
    grant.next[1] = kEndGrant;
    next = Emit(grant);
    for (uint32_t k = p_.allow_begin[a]; k-- > p_.deny_begin[a];) {
      next = Rule(p_.rule_list[k], scope, next);
      if (over()) return kNone;
    }
    if (over()) return kNone;
    programs_.emplace(std::move(key), next);
    return next;
  }

 private:
  uint32_t Emit(const FStep& s) {
    out_.push_back(s);
    return static_cast<uint32_t>(out_.size() - 1);
  }

  // A test of rule `rule` continuing at pass / fail.
  uint32_t Test(FOp op, uint32_t rule, uint8_t scope, uint32_t pass, uint32_t fail) {
    FStep s;
    s.op = op;
    s.rule = rule;
    s.abase = scope;
    s.next[0] = fail;
    s.next[1] = pass;
    return Emit(s);
  }

  // Rule ref's steps (built last to first: condition, overlay, roles), ending at
  // kEndRule + rule when the rule matches, else continuing at `fail`.
  uint32_t Rule(const RuleRef& ref, uint8_t scope, uint32_t fail) {
    const uint32_t match = kEndRule + ref.rule;
    uint32_t entry = match;
    if (ref.flags & RuleRef::kCondition) {
      entry = Condition(p_.rules[ref.rule].condition, ref.rule, match, fail);
    }
    if (ref.flags & RuleRef::kOverlay) entry = Test(FOp::kOverlay, ref.rule, scope, entry, fail);
    if (!(ref.flags & RuleRef::kAnyRole)) {
      if (ref.flags & RuleRef::kRoleList) {
        entry = Test(FOp::kRoleList, ref.rule, scope, entry, fail);
      } else {
        entry = Test(FOp::kRoleBits, ref.rule, scope, entry, fail);
        out_[entry].arg = static_cast<uint32_t>(ref.role_bits);
        out_[entry].arg2 = static_cast<uint32_t>(ref.role_bits >> 32);
      }
    }
    return entry;
  }

  // A relocated copy of condition c's steps: accept -> `accept`, reject -> `reject`.
  uint32_t Condition(const Program& c, uint32_t rule, uint32_t accept, uint32_t reject) {
    const uint32_t base = static_cast<uint32_t>(out_.size());
    auto reloc = [&](uint32_t t) {
      if (t == kStepAccept) return accept;
      if (t == kStepReject) return reject;
      return t - c.steps_begin + base;
    };
    for (uint32_t i = c.steps_begin; i < c.steps_end; ++i) {
      FStep s = p_.pool.fsteps[i];
      s.next[0] = reloc(s.next[0]);
      s.next[1] = reloc(s.next[1]);
      if (s.op == FOp::kGeneric) s.arg2 = reloc(s.arg2);  // arg: the Node's step, kept
      s.rule = rule;
      out_.push_back(s);
    }
    return reloc(c.entry);
  }

  CompiledPolicy& p_;
  std::vector<FStep>& out_;
  std::map<std::vector<uint32_t>, uint32_t> programs_;
};

bool SameTest(const FStep& x, const FStep& y) {
  if (x.op == FOp::kGeneric || x.op != y.op) return false;  // a generic leaf may read facts
  if ((x.op == FOp::kRoleList || x.op == FOp::kOverlay) && x.rule != y.rule) return false;
  return x.cmp == y.cmp && x.abase == y.abase && x.bbase == y.bbase && x.aoff == y.aoff &&
         x.boff == y.boff && x.arg == y.arg && x.arg2 == y.arg2;
}

void ThreadJumps(std::vector<FStep>* steps) {
  std::vector<FStep>& s = *steps;
  for (FStep& x : s) {
    for (int r = 0; r < 2; ++r) {
      // Bounded: targets only move forward through identical tests.
      for (int hops = 0; hops < 64 && x.next[r] < kEndRule && SameTest(x, s[x.next[r]]); ++hops) {
        x.next[r] = s[x.next[r]].next[r];
      }
    }
  }
}

}  // namespace

void BuildDecisionPrograms(CompiledPolicy* p, size_t max_steps, bool thread_jumps) {
  p->decision_steps.clear();
  p->decision_entry.assign(p->actions.size(), kNone);
  Builder b(p);
  for (uint32_t a = 0; a < p->actions.size(); ++a) p->decision_entry[a] = b.Action(a, max_steps);
  if (thread_jumps) ThreadJumps(&p->decision_steps);
  p->decision_steps.shrink_to_fit();
}

}  // namespace gatehouse::policy::internal
