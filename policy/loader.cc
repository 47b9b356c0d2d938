// Policy loader: YAML files -> validated, type-checked, compiled CompiledPolicy.
//
// The only policy TU (with policy_test_runner.cc) that includes yaml-cpp. yaml-cpp exceptions
// are caught where the YAML is loaded and turned into issues with line/col from YAML::Mark;
// every later check reports into the same issue list, so one pass finds every problem.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policy/internal/compiled.h"
#include "policy/internal/decision.h"
#include "policy/internal/yaml_util.h"
#include "policy/policy.h"

namespace gatehouse::policy {
namespace {

using internal::ActionDef;
using internal::kNone;
using internal::RoleDef;
using internal::RuleDef;
using internal::Scope;
using internal::SourceDoc;

constexpr size_t kMaxActions = 4096;
constexpr size_t kMaxFiles = 256;

bool ValidSegmentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// [a-z0-9_]+ ("." [a-z0-9_]+)*
bool ValidActionName(std::string_view s) {
  if (s.empty()) return false;
  bool seg_empty = true;
  for (char c : s) {
    if (c == '.') {
      if (seg_empty) return false;
      seg_empty = true;
    } else if (ValidSegmentChar(c)) {
      seg_empty = false;
    } else {
      return false;
    }
  }
  return !seg_empty;
}

bool ValidRoleName(std::string_view s) {
  if (s.empty() || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  return std::all_of(s.begin(), s.end(), ValidSegmentChar);
}

bool ValidReason(std::string_view s) { return ValidRoleName(s); }

bool ValidRuleId(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ':' ||
           c == '-';
  });
}

// The rule loop's record for rule `k` of p (p.rules and p.rule_roles already filled).
internal::RuleRef MakeRuleRef(const CompiledPolicy& p, uint32_t k) {
  const RuleDef& r = p.rules[k];
  internal::RuleRef ref;
  ref.rule = k;
  if (r.roles_count == 0) ref.flags |= internal::RuleRef::kAnyRole;
  for (uint32_t j = 0; j < r.roles_count; ++j) {
    const uint32_t role = p.rule_roles[r.roles_begin + j];
    if (role < 64) {
      ref.role_bits |= uint64_t{1} << role;
    } else {
      ref.flags |= internal::RuleRef::kRoleList;
    }
  }
  if (!r.overlay_org.empty()) ref.flags |= internal::RuleRef::kOverlay;
  if (r.condition.present) {
    ref.flags |= internal::RuleRef::kCondition;
    ref.entry = r.condition.entry;
    if (r.condition.uses_action) ref.flags |= internal::RuleRef::kUsesAction;
  }
  return ref;
}

struct Bitset {
  std::vector<uint64_t> w;
  explicit Bitset(size_t n = 0) : w((n + 63) / 64, 0) {}
  void Set(size_t i) { w[i / 64] |= uint64_t{1} << (i % 64); }
  bool Test(size_t i) const { return (w[i / 64] >> (i % 64)) & 1u; }
  void Or(const Bitset& o) {
    for (size_t k = 0; k < w.size(); ++k) w[k] |= o.w[k];
  }
  void AndNot(const Bitset& o) {
    for (size_t k = 0; k < w.size(); ++k) w[k] &= ~o.w[k];
  }
  bool Any() const {
    return std::any_of(w.begin(), w.end(), [](uint64_t x) { return x != 0; });
  }
};

struct FileState {
  SourceDoc doc;
  YAML::Node root;
  bool ok = false;
  bool overlay = false;
  std::string overlay_org;
};

struct RoleDraft {
  std::string name;
  Scope scope;
  size_t file;
  YAML::Mark mark;
  std::string overlay_org;
  bool overlay = false;
  int64_t rank = 0;
  YAML::Node body;
  std::vector<uint32_t> includes;
  Bitset own;
  Bitset all;
  uint32_t implied = kNone;
  int state = 0;  // DFS: 0 new, 1 visiting, 2 done
  bool in_cycle = false;
};

struct RuleDraft {
  std::string id;
  std::string reason;
  bool deny = false;
  std::string overlay_org;
  std::vector<uint32_t> roles;
  Bitset actions;
  internal::Program condition;
};

class Loader {
 public:
  Loader(std::vector<Issue>* issues, const LoadOptions& opt) : issues_(issues), opt_(opt) {}

  std::shared_ptr<const CompiledPolicy> Load(const std::vector<SourceFile>& sources) {
    if (sources.size() > kMaxFiles) {
      AddIssue("", 0, 0, "too many policy files (" + std::to_string(sources.size()) +
                             ", limit " + std::to_string(kMaxFiles) + ")");
      return nullptr;
    }
    std::vector<size_t> order(sources.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return sources[a].name < sources[b].name; });
    for (size_t k : order) {
      files_.emplace_back();
      FileState& f = files_.back();
      f.doc.name = sources[k].name;
      f.doc.text = sources[k].text;
    }
    for (FileState& f : files_) ParseFile(f);
    // Base files first, then overlays (each in name order).
    for (size_t k = 0; k < files_.size(); ++k) {
      if (files_[k].ok && !files_[k].overlay) processing_order_.push_back(k);
    }
    for (size_t k = 0; k < files_.size(); ++k) {
      if (files_[k].ok && files_[k].overlay) processing_order_.push_back(k);
    }
    for (size_t k : processing_order_) LoadActions(k);
    for (size_t k : processing_order_) DeclareRoles(k);
    ResolveRoles();
    for (size_t k : processing_order_) LoadImplied(k);
    for (size_t k : processing_order_) LoadRules(k);
    if (actions_.empty() && !had_error_) {
      AddIssue(files_.empty() ? "" : files_[0].doc.name, 1, 1,
               "the policy declares no actions (an 'actions' catalog is required)");
    }
    if (!issues_->empty() || had_error_) return nullptr;
    return Build();
  }

 private:
  // ---------------------------------------------------------------------------------------
  // Issues
  void AddIssue(const std::string& file, int line, int col, std::string msg) {
    issues_->push_back(Issue{file, line, col, std::move(msg)});
    had_error_ = true;
  }
  void Err(size_t file, const YAML::Mark& m, std::string msg) {
    auto [line, col] = internal::MarkPos(m);
    AddIssue(files_[file].doc.name, line, col, std::move(msg));
  }
  void Err(size_t file, const YAML::Node& n, std::string msg) { Err(file, n.Mark(), std::move(msg)); }

  // Checks that map `n` only has `allowed` keys.
  void CheckKeys(size_t file, const YAML::Node& n, const char* what,
                 std::initializer_list<const char*> allowed) {
    // Range-for keeps each iterator_value alive for the body; `it->first` would point into a
    // temporary proxy that dies at the end of its full-expression (ASan use-after-scope).
    for (const auto& kv : n) {
      const YAML::Node& key = kv.first;
      std::string k = key.IsScalar() ? key.Scalar() : std::string("?");
      bool ok = false;
      std::string list;
      for (const char* a : allowed) {
        if (k == a) ok = true;
        if (!list.empty()) list += ", ";
        list += a;
      }
      if (!ok) {
        Err(file, key, "unknown key '" + k + "' in " + what + " (expected one of: " + list + ")");
      }
    }
  }

  bool ExpectScalar(size_t file, const YAML::Node& n, const std::string& what, std::string* out) {
    if (!n.IsScalar() || n.Scalar().empty()) {
      Err(file, n, what + " must be a non-empty string");
      return false;
    }
    *out = n.Scalar();
    return true;
  }

  // A sequence of scalars, or a single scalar (treated as a one-element list).
  bool ScalarList(size_t file, const YAML::Node& n, const std::string& what,
                  std::vector<YAML::Node>* out) {
    if (n.IsScalar()) {
      out->push_back(n);
      return true;
    }
    if (!n.IsSequence()) {
      Err(file, n, what + " must be a list of strings");
      return false;
    }
    bool ok = true;
    for (const YAML::Node& item : n) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        Err(file, item, what + " entries must be non-empty strings");
        ok = false;
      } else {
        out->push_back(item);
      }
    }
    return ok;
  }

  // ---------------------------------------------------------------------------------------
  // Files
  void ParseFile(FileState& f) {
    size_t file = &f - files_.data();
    if (f.doc.text.size() > opt_.max_file_bytes) {
      AddIssue(f.doc.name, 1, 1, "file too large (" + std::to_string(f.doc.text.size()) +
                                     " bytes, limit " + std::to_string(opt_.max_file_bytes) + ")");
      return;
    }
    std::string err;
    if (!internal::ParseYaml(f.doc, &f.root, issues_)) {
      had_error_ = true;
      return;
    }
    if (f.root.IsNull()) {
      f.ok = true;
      return;
    }
    if (!f.root.IsMap()) {
      Err(file, f.root, "a policy file must be a YAML mapping");
      return;
    }
    CheckKeys(file, f.root, "policy file",
              {"version", "name", "description", "actions", "roles", "implied", "rules",
               "overlay"});
    if (YAML::Node v = f.root["version"]) {
      if (!v.IsScalar() || v.Scalar() != "1") Err(file, v, "version must be 1");
    }
    if (YAML::Node n = f.root["name"]) {
      std::string name;
      if (ExpectScalar(file, n, "name", &name)) {
        if (!policy_name_.empty()) {
          Err(file, n, "policy name set twice (first in " + policy_name_file_ + ")");
        } else {
          policy_name_ = name;
          policy_name_file_ = f.doc.name;
        }
      }
    }
    if (YAML::Node o = f.root["overlay"]) {
      f.overlay = true;
      if (!o.IsMap()) {
        Err(file, o, "overlay must be a mapping with key 'org'");
        return;
      }
      CheckKeys(file, o, "overlay", {"org", "description"});
      if (!o["org"]) {
        Err(file, o, "overlay needs 'org' (the org id it applies to)");
        return;
      }
      if (!ExpectScalar(file, o["org"], "overlay org", &f.overlay_org)) return;
      for (const char* forbidden : {"actions", "implied", "name"}) {
        if (YAML::Node n = f.root[forbidden]) {
          Err(file, n, std::string("an overlay cannot declare '") + forbidden + "'");
        }
      }
    }
    f.ok = true;
  }

  // ---------------------------------------------------------------------------------------
  // Actions
  void LoadActions(size_t file) {
    FileState& f = files_[file];
    YAML::Node n = f.root["actions"];
    if (!n || f.overlay) return;
    if (!n.IsMap()) {
      Err(file, n, "actions must be a mapping with keys 'org' and 'workspace'");
      return;
    }
    CheckKeys(file, n, "actions", {"org", "workspace"});
    for (auto [key, scope] : {std::pair{"org", Scope::kOrg}, {"workspace", Scope::kWorkspace}}) {
      YAML::Node list = n[key];
      if (!list) continue;
      std::vector<YAML::Node> items;
      ScalarList(file, list, std::string("actions.") + key, &items);
      for (const YAML::Node& item : items) {
        const std::string& name = item.Scalar();
        if (!ValidActionName(name)) {
          Err(file, item, "invalid action name '" + name +
                              "' (dot-separated segments of [a-z0-9_])");
          continue;
        }
        auto [it, inserted] = action_ids_.emplace(name, static_cast<uint32_t>(actions_.size()));
        if (!inserted) {
          Err(file, item, "duplicate action '" + name + "' (first declared at " +
                              action_where_[it->second] + ")");
          continue;
        }
        actions_.push_back({name, scope});
        auto [line, col] = internal::MarkPos(item.Mark());
        action_where_.push_back(f.doc.name + ":" + std::to_string(line) + ":" +
                                std::to_string(col));
      }
    }
    if (actions_.size() > kMaxActions) {
      Err(file, n, "too many actions (limit " + std::to_string(kMaxActions) + ")");
    }
  }

  // Matches a name or pattern against the catalog. `scope` filters wildcard matches (nullptr:
  // both scopes). Returns false (after reporting) if invalid or nothing matched.
  bool MatchActions(size_t file, const YAML::Node& node, const Scope* scope,
                    const std::string& role_desc, Bitset* out) {
    const std::string& pat = node.Scalar();
    if (pat == "*") {
      bool any = false;
      for (size_t a = 0; a < actions_.size(); ++a) {
        if (!scope || actions_[a].second == *scope) {
          out->Set(a);
          any = true;
        }
      }
      if (!any) Err(file, node, "pattern '*' matches no action");
      return any;
    }
    bool wildcard = pat.size() >= 2 && pat.compare(pat.size() - 2, 2, ".*") == 0;
    std::string_view stem = wildcard ? std::string_view(pat).substr(0, pat.size() - 1)
                                     : std::string_view(pat);  // keeps the trailing '.'
    std::string_view check = wildcard ? stem.substr(0, stem.size() - 1) : stem;
    if (!ValidActionName(check)) {
      Err(file, node, "invalid action pattern '" + pat +
                          "' ('*' only as a whole last segment: 'a.*' or '*')");
      return false;
    }
    if (!wildcard) {
      auto it = action_ids_.find(pat);
      if (it == action_ids_.end()) {
        Err(file, node, "unknown action '" + pat + "'");
        return false;
      }
      if (scope && actions_[it->second].second != *scope) {
        Err(file, node, "action '" + pat + "' is " +
                            (*scope == Scope::kOrg ? "workspace" : "org") + "-scoped; " +
                            role_desc + " cannot grant it");
        return false;
      }
      out->Set(it->second);
      return true;
    }
    bool any_scope = false, any = false;
    for (size_t a = 0; a < actions_.size(); ++a) {
      const std::string& name = actions_[a].first;
      if (name.size() > stem.size() && name.compare(0, stem.size(), stem) == 0) {
        any_scope = true;
        if (!scope || actions_[a].second == *scope) {
          out->Set(a);
          any = true;
        }
      }
    }
    if (!any) {
      Err(file, node, any_scope ? "pattern '" + pat + "' matches no action that " + role_desc +
                                      " can be granted"
                                : "pattern '" + pat + "' matches no action (unknown action)");
    }
    return any;
  }

  // ---------------------------------------------------------------------------------------
  // Roles
  void DeclareRoles(size_t file) {
    FileState& f = files_[file];
    YAML::Node n = f.root["roles"];
    if (!n) return;
    if (!n.IsMap()) {
      Err(file, n, "roles must be a mapping with keys 'org' and 'workspace'");
      return;
    }
    CheckKeys(file, n, "roles", {"org", "workspace"});
    for (auto [key, scope] : {std::pair{"org", Scope::kOrg}, {"workspace", Scope::kWorkspace}}) {
      YAML::Node map = n[key];
      if (!map || map.IsNull()) continue;
      if (!map.IsMap()) {
        Err(file, map, std::string("roles.") + key + " must be a mapping of role name to role");
        continue;
      }
      for (auto it = map.begin(); it != map.end(); ++it) {
        std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
        if (!ValidRoleName(name)) {
          Err(file, it->first, "invalid role name '" + name + "' ([a-z][a-z0-9_]*)");
          continue;
        }
        if (role_ids_.count(name)) {
          Err(file, it->first, "duplicate role '" + name + "' (first declared at " +
                                   roles_[role_ids_[name]].where + ")");
          continue;
        }
        YAML::Node body = it->second;
        if (!body.IsNull() && !body.IsMap()) {
          Err(file, body, "role '" + name + "' must be a mapping (grants, includes, rank)");
          continue;
        }
        RoleDraftEx r;
        r.d.name = name;
        r.d.scope = scope;
        r.d.file = file;
        r.d.mark = it->first.Mark();
        r.d.overlay = f.overlay;
        r.d.overlay_org = f.overlay_org;
        r.d.body = body;
        auto [line, col] = internal::MarkPos(it->first.Mark());
        r.where = f.doc.name + ":" + std::to_string(line) + ":" + std::to_string(col);
        if (body.IsMap()) {
          CheckKeys(file, body, "role", {"grants", "includes", "rank", "description"});
          if (YAML::Node rank = body["rank"]) {
            if (scope == Scope::kOrg) {
              Err(file, rank, "rank is only for workspace roles");
            } else if (!ParseInt(rank, &r.d.rank)) {
              Err(file, rank, "rank must be an integer");
            }
          }
        }
        role_ids_[name] = static_cast<uint32_t>(roles_.size());
        roles_.push_back(std::move(r));
      }
    }
    if (roles_.size() > opt_.max_roles && !reported_role_limit_) {
      reported_role_limit_ = true;
      Err(file, n, "too many roles (" + std::to_string(roles_.size()) + ", limit " +
                       std::to_string(opt_.max_roles) + ")");
    }
  }

  static bool ParseInt(const YAML::Node& n, int64_t* out) {
    if (!n.IsScalar()) return false;
    const std::string& s = n.Scalar();
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && p == s.data() + s.size();
  }

  // Looks up a role name as seen from `file` (base files see base roles; an overlay sees base
  // roles and its own). Returns kNone if unknown or not visible.
  uint32_t VisibleRole(size_t file, const std::string& name) {
    auto it = role_ids_.find(name);
    if (it == role_ids_.end()) return kNone;
    const RoleDraft& r = roles_[it->second].d;
    if (r.overlay && r.file != file) return kNone;
    return it->second;
  }

  void ResolveRoles() {
    size_t n_actions = actions_.size();
    for (RoleDraftEx& re : roles_) {
      RoleDraft& r = re.d;
      r.own = Bitset(n_actions);
      r.all = Bitset(n_actions);
      if (!r.body.IsMap()) continue;
      std::string desc = std::string(r.scope == Scope::kOrg ? "org" : "workspace") + " role '" +
                         r.name + "'";
      if (YAML::Node inc = r.body["includes"]) {
        std::vector<YAML::Node> items;
        ScalarList(r.file, inc, "includes", &items);
        for (const YAML::Node& item : items) {
          uint32_t id = VisibleRole(r.file, item.Scalar());
          if (id == kNone) {
            Err(r.file, item, "unknown role '" + item.Scalar() + "' in includes");
            continue;
          }
          if (roles_[id].d.scope != r.scope) {
            Err(r.file, item, "role '" + item.Scalar() + "' has another scope; " + desc +
                                  " can only include roles of its own scope");
            continue;
          }
          r.includes.push_back(id);
        }
      }
      if (YAML::Node grants = r.body["grants"]) {
        std::vector<YAML::Node> items;
        ScalarList(r.file, grants, "grants", &items);
        for (const YAML::Node& item : items) MatchActions(r.file, item, &r.scope, desc, &r.own);
      }
    }
    // Closure over includes, with cycle detection.
    for (uint32_t k = 0; k < roles_.size(); ++k) {
      std::vector<uint32_t> path;
      Visit(k, &path);
    }
  }

  void Visit(uint32_t k, std::vector<uint32_t>* path) {
    RoleDraft& r = roles_[k].d;
    if (r.state == 2) return;
    if (r.state == 1) {
      // Cycle: path from the first occurrence of k.
      auto start = std::find(path->begin(), path->end(), k);
      std::string desc;
      for (auto it = start; it != path->end(); ++it) {
        desc += roles_[*it].d.name + " -> ";
        roles_[*it].d.in_cycle = true;
      }
      desc += r.name;
      Err(roles_[*start].d.file, roles_[*start].d.mark, "includes cycle: " + desc);
      return;
    }
    r.state = 1;
    path->push_back(k);
    r.all.Or(r.own);
    for (uint32_t inc : r.includes) {
      Visit(inc, path);
      roles_[k].d.all.Or(roles_[inc].d.all);
    }
    path->pop_back();
    roles_[k].d.state = 2;
  }

  void LoadImplied(size_t file) {
    FileState& f = files_[file];
    YAML::Node n = f.root["implied"];
    if (!n || f.overlay) return;
    if (!n.IsSequence()) {
      Err(file, n, "implied must be a list of {org_role, workspace_role}");
      return;
    }
    for (const YAML::Node& e : n) {
      if (!e.IsMap()) {
        Err(file, e, "implied entries must be mappings {org_role, workspace_role}");
        continue;
      }
      CheckKeys(file, e, "implied entry", {"org_role", "workspace_role", "description"});
      YAML::Node o = e["org_role"], w = e["workspace_role"];
      if (!o || !w) {
        Err(file, e, "implied entry needs org_role and workspace_role");
        continue;
      }
      std::string on, wn;
      if (!ExpectScalar(file, o, "org_role", &on) || !ExpectScalar(file, w, "workspace_role", &wn)) {
        continue;
      }
      uint32_t oid = VisibleRole(file, on), wid = VisibleRole(file, wn);
      if (oid == kNone || roles_[oid].d.scope != Scope::kOrg) {
        Err(file, o, "unknown org role '" + on + "'");
        continue;
      }
      if (wid == kNone || roles_[wid].d.scope != Scope::kWorkspace) {
        Err(file, w, "unknown workspace role '" + wn + "'");
        continue;
      }
      if (roles_[oid].d.implied != kNone) {
        Err(file, o, "org role '" + on + "' already implies a workspace role");
        continue;
      }
      roles_[oid].d.implied = wid;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Rules
  void LoadRules(size_t file) {
    FileState& f = files_[file];
    YAML::Node n = f.root["rules"];
    if (!n || n.IsNull()) return;
    if (!n.IsSequence()) {
      Err(file, n, "rules must be a list");
      return;
    }
    for (const YAML::Node& e : n) {
      if (rules_.size() >= opt_.max_rules) {
        Err(file, e, "too many rules (limit " + std::to_string(opt_.max_rules) + ")");
        return;
      }
      LoadRule(file, e);
    }
  }

  void LoadRule(size_t file, const YAML::Node& e) {
    FileState& f = files_[file];
    if (!e.IsMap()) {
      Err(file, e, "a rule must be a mapping");
      return;
    }
    CheckKeys(file, e, "rule",
              {"id", "effect", "actions", "except", "roles", "condition", "reason",
               "description"});
    RuleDraft r;
    bool ok = true;
    YAML::Node id = e["id"];
    if (!id) {
      Err(file, e, "rule needs an 'id'");
      ok = false;
    } else if (ExpectScalar(file, id, "rule id", &r.id)) {
      if (!ValidRuleId(r.id) || r.id.rfind("role:", 0) == 0) {
        Err(file, id, "invalid rule id '" + r.id +
                          "' ([A-Za-z0-9_.:-]+, at most 128 bytes, not starting with 'role:')");
        ok = false;
      } else {
        auto [line, col] = internal::MarkPos(id.Mark());
        std::string where = f.doc.name + ":" + std::to_string(line) + ":" + std::to_string(col);
        auto [it, inserted] = rule_ids_.emplace(r.id, where);
        if (!inserted) {
          Err(file, id, "duplicate rule id '" + r.id + "' (first defined at " + it->second + ")");
          ok = false;
        }
      }
    } else {
      ok = false;
    }
    YAML::Node effect = e["effect"];
    if (!effect) {
      Err(file, e, "rule needs 'effect' (allow or deny)");
      ok = false;
    } else if (!effect.IsScalar() ||
               (effect.Scalar() != "allow" && effect.Scalar() != "deny")) {
      Err(file, effect, "effect must be 'allow' or 'deny'");
      ok = false;
    } else {
      r.deny = effect.Scalar() == "deny";
    }
    r.actions = Bitset(actions_.size());
    YAML::Node acts = e["actions"];
    if (!acts) {
      Err(file, e, "rule needs 'actions'");
      ok = false;
    } else {
      std::vector<YAML::Node> items;
      if (!ScalarList(file, acts, "actions", &items)) ok = false;
      for (const YAML::Node& item : items) {
        if (!MatchActions(file, item, nullptr, "", &r.actions)) ok = false;
      }
    }
    if (YAML::Node exc = e["except"]) {
      Bitset minus(actions_.size());
      std::vector<YAML::Node> items;
      if (!ScalarList(file, exc, "except", &items)) ok = false;
      for (const YAML::Node& item : items) {
        if (!MatchActions(file, item, nullptr, "", &minus)) ok = false;
      }
      r.actions.AndNot(minus);
    }
    if (ok && acts && !r.actions.Any()) {
      Err(file, acts, "rule '" + r.id + "' applies to no action (all removed by except)");
      ok = false;
    }
    if (YAML::Node roles = e["roles"]) {
      std::vector<YAML::Node> items;
      if (!ScalarList(file, roles, "roles", &items)) ok = false;
      for (const YAML::Node& item : items) {
        uint32_t rid = VisibleRole(file, item.Scalar());
        if (rid == kNone) {
          Err(file, item, "unknown role '" + item.Scalar() + "'");
          ok = false;
          continue;
        }
        r.roles.push_back(rid);
      }
    }
    if (YAML::Node reason = e["reason"]) {
      if (!reason.IsScalar() || !ValidReason(reason.Scalar())) {
        Err(file, reason, "reason must match [a-z][a-z0-9_]*");
        ok = false;
      } else {
        r.reason = reason.Scalar();
      }
    } else if (r.deny) {
      Err(file, e, "a deny rule needs a 'reason'");
      ok = false;
    } else {
      r.reason = "granted";
    }
    if (YAML::Node cond = e["condition"]) {
      if (!cond.IsScalar() || cond.Scalar().empty()) {
        Err(file, cond, "condition must be a non-empty expression string");
        ok = false;
      } else {
        std::vector<internal::ExprError> errors;
        if (!internal::CompileExpr(cond.Scalar(), opt_.max_expr_depth, &pool_, &r.condition,
                                   &errors)) {
          for (const internal::ExprError& err : errors) {
            auto [line, col] = internal::ScalarPos(f.doc, cond.Mark(), err.offset);
            AddIssue(f.doc.name, line, col, err.message);
          }
          ok = false;
        }
      }
    }
    r.overlay_org = f.overlay_org;
    if (ok) rules_.push_back(std::move(r));
  }

  // ---------------------------------------------------------------------------------------
  // Build
  std::shared_ptr<const CompiledPolicy> Build() {
    auto p = std::make_shared<CompiledPolicy>();
    std::vector<std::string_view> names;
    for (auto& [name, scope] : actions_) {
      std::string_view n = p->Intern(name);
      p->actions.push_back(ActionDef{n, scope});
      names.push_back(n);
    }
    p->action_index.Build(names);
    size_t words = (actions_.size() + 63) / 64;
    if (words == 0) words = 1;
    p->words_per_set = words;
    names.clear();
    for (RoleDraftEx& re : roles_) {
      RoleDraft& r = re.d;
      RoleDef d;
      d.name = p->Intern(r.name);
      d.scope = r.scope;
      d.rank = r.rank;
      d.overlay_org = r.overlay_org.empty() ? std::string_view() : p->Intern(r.overlay_org);
      d.implied = r.implied;
      d.grants_begin = static_cast<uint32_t>(p->grant_words.size());
      for (size_t k = 0; k < words; ++k) {
        p->grant_words.push_back(k < r.all.w.size() ? r.all.w[k] : 0);
      }
      p->roles.push_back(d);
      names.push_back(d.name);
      p->grant_rule_ids.push_back("role:" + r.name);
    }
    p->role_index.Build(names);
    for (RuleDraft& r : rules_) {
      RuleDef d;
      d.id = p->Intern(r.id);
      d.reason = p->Intern(r.reason);
      d.deny = r.deny;
      d.overlay_org = r.overlay_org.empty() ? std::string_view() : p->Intern(r.overlay_org);
      d.roles_begin = static_cast<uint32_t>(p->rule_roles.size());
      d.roles_count = static_cast<uint32_t>(r.roles.size());
      for (uint32_t id : r.roles) p->rule_roles.push_back(id);
      d.condition = r.condition;
      p->rules.push_back(d);
    }
    size_t n = actions_.size();
    p->deny_begin.resize(n + 1);
    p->allow_begin.resize(n);
    for (size_t a = 0; a < n; ++a) {
      p->deny_begin[a] = static_cast<uint32_t>(p->rule_list.size());
      for (size_t k = 0; k < rules_.size(); ++k) {
        if (rules_[k].deny && rules_[k].actions.Test(a)) {
          p->rule_list.push_back(MakeRuleRef(*p, static_cast<uint32_t>(k)));
        }
      }
      p->allow_begin[a] = static_cast<uint32_t>(p->rule_list.size());
      for (size_t k = 0; k < rules_.size(); ++k) {
        if (!rules_[k].deny && rules_[k].actions.Test(a)) {
          p->rule_list.push_back(MakeRuleRef(*p, static_cast<uint32_t>(k)));
        }
      }
    }
    p->deny_begin[n] = static_cast<uint32_t>(p->rule_list.size());
    p->pool = std::move(pool_);
    internal::BuildDecisionPrograms(p.get());
    // Digest: FNV-1a 64 over names and texts, in load order.
    uint64_t h = 1469598103934665603ull;
    auto mix = [&](std::string_view s) {
      for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
      }
      h ^= 0xff;
      h *= 1099511628211ull;
    };
    for (const FileState& f : files_) {
      mix(f.doc.name);
      mix(f.doc.text);
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    p->info.files = files_.size();
    p->info.rules = p->rules.size();
    p->info.roles = p->roles.size();
    p->info.actions = p->actions.size();
    for (uint32_t e : p->decision_entry) p->info.program_actions += e != kNone;
    p->info.program_steps = p->decision_steps.size();
    p->info.digest = hex;
    p->info.name = policy_name_;
    return p;
  }

  struct RoleDraftEx {
    RoleDraft d;
    std::string where;
  };

  std::vector<Issue>* issues_;
  LoadOptions opt_;
  bool had_error_ = false;
  std::vector<FileState> files_;
  std::vector<size_t> processing_order_;
  std::string policy_name_, policy_name_file_;
  std::vector<std::pair<std::string, Scope>> actions_;
  std::vector<std::string> action_where_;
  std::unordered_map<std::string, uint32_t> action_ids_;
  std::vector<RoleDraftEx> roles_;
  std::unordered_map<std::string, uint32_t> role_ids_;
  bool reported_role_limit_ = false;
  std::vector<RuleDraft> rules_;
  std::unordered_map<std::string, std::string> rule_ids_;
  internal::ProgramPool pool_;
};

bool HasYamlExt(const std::string& name) {
  auto ends = [&](std::string_view suf) {
    return name.size() >= suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
  };
  if (ends("_test.yaml") || ends("_test.yml")) return false;
  return ends(".yaml") || ends(".yml");
}

}  // namespace

std::shared_ptr<const CompiledPolicy> LoadPolicySources(const std::vector<SourceFile>& files,
                                                        std::vector<Issue>* issues,
                                                        const LoadOptions& options) {
  try {
    Loader loader(issues, options);
    return loader.Load(files);
  } catch (const std::exception& e) {
    issues->push_back(Issue{"", 0, 0, std::string("internal error while loading: ") + e.what()});
    return nullptr;
  }
}

std::shared_ptr<const CompiledPolicy> LoadPolicyDir(const std::string& dir,
                                                    std::vector<Issue>* issues,
                                                    const LoadOptions& options) {
  namespace fs = std::filesystem;
  std::vector<SourceFile> sources;
  try {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      issues->push_back(Issue{dir, 0, 0, "not a directory"});
      return nullptr;
    }
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
      std::string name = e.path().filename().string();
      if (!HasYamlExt(name)) continue;
      // Only regular files directly in dir; symlinks are not followed out of it.
      if (e.is_symlink() || !e.is_regular_file()) continue;
      if (sources.size() >= kMaxFiles) {
        issues->push_back(Issue{dir, 0, 0, "too many policy files (limit " +
                                               std::to_string(kMaxFiles) + ")"});
        return nullptr;
      }
      uintmax_t size = e.file_size(ec);
      if (!ec && size > options.max_file_bytes) {
        issues->push_back(Issue{name, 1, 1, "file too large (" + std::to_string(size) +
                                                " bytes, limit " +
                                                std::to_string(options.max_file_bytes) + ")"});
        continue;
      }
      std::ifstream in(e.path(), std::ios::binary);
      if (!in) {
        issues->push_back(Issue{name, 0, 0, "cannot read file"});
        continue;
      }
      std::ostringstream ss;
      ss << in.rdbuf();
      sources.push_back(SourceFile{name, ss.str()});
    }
    if (ec) {
      issues->push_back(Issue{dir, 0, 0, "cannot list directory: " + ec.message()});
      return nullptr;
    }
    if (!issues->empty()) return nullptr;
    if (sources.empty()) {
      issues->push_back(Issue{dir, 0, 0, "no policy files (*.yaml, *.yml) in directory"});
      return nullptr;
    }
  } catch (const std::exception& e) {
    issues->push_back(Issue{dir, 0, 0, std::string("cannot read policy directory: ") + e.what()});
    return nullptr;
  }
  return LoadPolicySources(sources, issues, options);
}

}  // namespace gatehouse::policy
