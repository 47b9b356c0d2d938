#include "policy/policy_test_runner.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "policy/internal/yaml_util.h"
#include "policy/memory_facts.h"

namespace gatehouse::policy {
namespace {

namespace fs = std::filesystem;
using internal::SourceDoc;

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

std::string Compact(const YAML::Node& n) {
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

struct ExpectSpec {
  bool allow = false;
  std::string reason;
  std::string rule;
};

// Builds fixtures and runs tests of one suite; all problems go to report->load_issues.
class SuiteRunner {
 public:
  SuiteRunner(const CompiledPolicy& policy, PolicyTestReport* report, std::string base_dir)
      : policy_(policy), report_(report), base_dir_(std::move(base_dir)) {}

  void Run(const SourceDoc& doc) {
    YAML::Node root;
    if (!internal::ParseYaml(doc, &root, &report_->load_issues)) return;
    docs_.push_back(doc);
    size_t d = docs_.size() - 1;
    if (!root.IsMap()) {
      Err(d, root, "a policy test suite must be a YAML mapping");
      return;
    }
    CheckKeys(d, root, "suite", {"name", "description", "fixtures_from", "fixtures", "tests"});
    if (YAML::Node from = root["fixtures_from"]) {
      std::vector<YAML::Node> items;
      if (from.IsScalar()) {
        items.push_back(from);
      } else if (from.IsSequence()) {
        for (const YAML::Node& n : from) items.push_back(n);
      } else {
        Err(d, from, "fixtures_from must be a file name or a list of file names");
      }
      for (const YAML::Node& item : items) LoadFixturesFrom(d, item);
    }
    if (YAML::Node fx = root["fixtures"]) LoadFixtures(d, fx);
    facts_.Finalize();
    YAML::Node tests = root["tests"];
    if (!tests || !tests.IsSequence() || tests.size() == 0) {
      Err(d, tests ? tests : root, "a suite needs a non-empty 'tests' list");
      return;
    }
    if (fixture_errors_) return;  // don't run against half-built fixtures
    for (const YAML::Node& t : tests) RunTest(d, t);
  }

 private:
  void Err(size_t d, const YAML::Node& n, std::string msg) {
    auto [line, col] = internal::MarkPos(n.Mark());
    report_->load_issues.push_back(Issue{docs_[d].name, line, col, std::move(msg)});
    fixture_errors_ = true;
  }

  void CheckKeys(size_t d, const YAML::Node& n, const char* what,
                 std::initializer_list<const char*> allowed) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string k = it->first.IsScalar() ? it->first.Scalar() : "?";
      bool ok = false;
      std::string list;
      for (const char* a : allowed) {
        if (k == a) ok = true;
        if (!list.empty()) list += ", ";
        list += a;
      }
      if (!ok) {
        Err(d, it->first,
            "unknown key '" + k + "' in " + what + " (expected one of: " + list + ")");
      }
    }
  }

  bool Str(size_t d, const YAML::Node& n, const std::string& what, std::string* out) {
    if (!n.IsScalar()) {
      Err(d, n, what + " must be a string");
      return false;
    }
    *out = n.Scalar();
    return true;
  }
  bool Bool(size_t d, const YAML::Node& n, const std::string& what, bool* out) {
    if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) {
      *out = n.Scalar() == "true";
      return true;
    }
    Err(d, n, what + " must be true or false");
    return false;
  }
  bool Int(size_t d, const YAML::Node& n, const std::string& what, int64_t* out) {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
      if (ec == std::errc() && p == s.data() + s.size()) return true;
    }
    Err(d, n, what + " must be an integer");
    return false;
  }
  bool StrList(size_t d, const YAML::Node& n, const std::string& what,
               std::vector<std::string>* out) {
    out->clear();
    if (!n.IsSequence()) {
      Err(d, n, what + " must be a list of strings");
      return false;
    }
    for (const YAML::Node& i : n) {
      if (!i.IsScalar()) {
        Err(d, i, what + " entries must be strings");
        return false;
      }
      out->push_back(i.Scalar());
    }
    return true;
  }

  // YAML scalar -> typed value (quoted scalars are always strings).
  static OwnedValue ScalarValue(const YAML::Node& n) {
    OwnedValue v;
    const std::string& s = n.Scalar();
    if (n.Tag() == "!") {
      v.kind = Value::Kind::kString;
      v.s = s;
      return v;
    }
    if (s == "true" || s == "false") {
      v.kind = Value::Kind::kBool;
      v.b = s == "true";
      return v;
    }
    if (s == "null" || s == "~" || s.empty()) {
      v.kind = Value::Kind::kNull;
      return v;
    }
    int64_t i;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
    if (ec == std::errc() && p == s.data() + s.size()) {
      v.kind = Value::Kind::kInt;
      v.i = i;
      return v;
    }
    double dv;
    auto [p2, ec2] = std::from_chars(s.data(), s.data() + s.size(), dv);
    if (ec2 == std::errc() && p2 == s.data() + s.size()) {
      v.kind = Value::Kind::kDouble;
      v.d = dv;
      return v;
    }
    v.kind = Value::Kind::kString;
    v.s = s;
    return v;
  }

  void Attrs(size_t d, const YAML::Node& n, OwnedAttrs* out) {
    if (!n.IsMap()) {
      Err(d, n, "attrs must be a mapping of scalars");
      return;
    }
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!it->second.IsScalar() && !it->second.IsNull()) {
        Err(d, it->second, "attribute values must be scalars");
        continue;
      }
      (*out)[it->first.Scalar()] =
          it->second.IsNull() ? OwnedValue{} : ScalarValue(it->second);
    }
  }

  void LoadFixturesFrom(size_t d, const YAML::Node& item) {
    if (!item.IsScalar()) {
      Err(d, item, "fixtures_from entries must be file names");
      return;
    }
    fs::path suite_dir = fs::path(docs_[d].name).parent_path();
    fs::path rel = suite_dir / item.Scalar();
    SourceDoc doc;
    doc.name = rel.lexically_normal().string();
    if (!ReadFile((fs::path(base_dir_) / rel).string(), &doc.text)) {
      Err(d, item, "cannot read fixtures file '" + item.Scalar() + "'");
      return;
    }
    YAML::Node root;
    if (!internal::ParseYaml(doc, &root, &report_->load_issues)) {
      fixture_errors_ = true;
      return;
    }
    docs_.push_back(doc);
    size_t fd = docs_.size() - 1;
    if (!root.IsMap()) {
      Err(fd, root, "a fixtures file must be a mapping with key 'fixtures'");
      return;
    }
    CheckKeys(fd, root, "fixtures file", {"fixtures", "description"});
    if (YAML::Node fx = root["fixtures"]) LoadFixtures(fd, fx);
  }

  void LoadFixtures(size_t d, const YAML::Node& fx) {
    if (!fx.IsMap()) {
      Err(d, fx, "fixtures must be a mapping (users, orgs, workspaces)");
      return;
    }
    CheckKeys(d, fx, "fixtures", {"users", "orgs", "workspaces"});
    auto each = [&](const char* key, auto fn) {
      YAML::Node list = fx[key];
      if (!list) return;
      if (!list.IsSequence()) {
        Err(d, list, std::string("fixtures.") + key + " must be a list");
        return;
      }
      for (const YAML::Node& e : list) {
        if (!e.IsMap() || !e["id"] || !e["id"].IsScalar()) {
          Err(d, e, std::string("each of fixtures.") + key + " needs an 'id'");
          continue;
        }
        fn(e, e["id"].Scalar());
      }
    };
    each("users", [&](const YAML::Node& e, const std::string& id) {
      CheckKeys(d, e, "user", {"id", "email", "email_verified", "attrs"});
      if (facts_.users.count(id)) Err(d, e, "duplicate user '" + id + "'");
      MemoryFacts::UserRec& u = facts_.users[id];
      if (e["email"]) Str(d, e["email"], "email", &u.email);
      if (e["email_verified"]) Bool(d, e["email_verified"], "email_verified", &u.email_verified);
      if (e["attrs"]) Attrs(d, e["attrs"], &u.attrs);
    });
    each("orgs", [&](const YAML::Node& e, const std::string& id) {
      CheckKeys(d, e, "org",
                {"id", "plan", "status", "suspended", "features", "seats", "member_count",
                 "pending_invitations", "workspace_count", "workspace_limit", "sso", "attrs",
                 "members"});
      if (facts_.orgs.count(id)) Err(d, e, "duplicate org '" + id + "'");
      MemoryFacts::OrgRec& o = facts_.orgs[id];
      if (e["plan"]) Str(d, e["plan"], "plan", &o.plan);
      if (e["status"]) Str(d, e["status"], "status", &o.status);
      if (e["suspended"]) Bool(d, e["suspended"], "suspended", &o.suspended);
      if (e["features"]) StrList(d, e["features"], "features", &o.features);
      if (e["seats"]) Int(d, e["seats"], "seats", &o.seats);
      if (e["member_count"]) Int(d, e["member_count"], "member_count", &o.member_count);
      if (e["pending_invitations"]) {
        Int(d, e["pending_invitations"], "pending_invitations", &o.pending_invitations);
      }
      if (e["workspace_count"]) {
        Int(d, e["workspace_count"], "workspace_count", &o.workspace_count);
      }
      if (e["workspace_limit"]) {
        Int(d, e["workspace_limit"], "workspace_limit", &o.workspace_limit);
      }
      if (YAML::Node sso = e["sso"]) {
        if (!sso.IsMap()) {
          Err(d, sso, "sso must be a mapping (enabled, enforced, idp, exempt_roles)");
        } else {
          CheckKeys(d, sso, "sso", {"enabled", "enforced", "idp", "exempt_roles"});
          if (sso["enabled"]) Bool(d, sso["enabled"], "sso.enabled", &o.sso_enabled);
          if (sso["enforced"]) Bool(d, sso["enforced"], "sso.enforced", &o.sso_enforced);
          if (sso["idp"]) Str(d, sso["idp"], "sso.idp", &o.sso_idp);
          if (sso["exempt_roles"]) {
            StrList(d, sso["exempt_roles"], "sso.exempt_roles", &o.sso_exempt_roles);
          }
        }
      }
      if (e["attrs"]) Attrs(d, e["attrs"], &o.attrs);
      if (YAML::Node m = e["members"]) {
        if (!m.IsMap()) {
          Err(d, m, "org members must be a mapping of user id to org role");
        } else {
          for (auto it = m.begin(); it != m.end(); ++it) {
            std::string role;
            if (Str(d, it->second, "org role", &role)) o.members[it->first.Scalar()] = role;
          }
        }
      }
    });
    each("workspaces", [&](const YAML::Node& e, const std::string& id) {
      CheckKeys(d, e, "workspace", {"id", "org", "attrs", "members"});
      if (facts_.workspaces.count(id)) Err(d, e, "duplicate workspace '" + id + "'");
      MemoryFacts::WorkspaceRec& w = facts_.workspaces[id];
      if (!e["org"]) {
        Err(d, e, "workspace '" + id + "' needs 'org'");
      } else {
        Str(d, e["org"], "org", &w.org);
      }
      if (e["attrs"]) Attrs(d, e["attrs"], &w.attrs);
      if (YAML::Node m = e["members"]) {
        if (!m.IsMap()) {
          Err(d, m, "workspace members must be a mapping of user id to role or {role, ...}");
          return;
        }
        for (auto it = m.begin(); it != m.end(); ++it) {
          MemoryFacts::WorkspaceMember wm;
          const YAML::Node v = it->second;  // copy: it-> yields a temporary
          if (v.IsScalar()) {
            wm.role = v.Scalar();
          } else if (v.IsMap()) {
            CheckKeys(d, v, "workspace member", {"role", "team", "flags", "contact_visibility"});
            if (!v["role"]) Err(d, v, "workspace member needs 'role'");
            else Str(d, v["role"], "role", &wm.role);
            if (v["team"]) Str(d, v["team"], "team", &wm.team);
            if (v["flags"]) StrList(d, v["flags"], "flags", &wm.flags);
            if (v["contact_visibility"]) {
              Str(d, v["contact_visibility"], "contact_visibility", &wm.contact_visibility);
            }
          } else {
            Err(d, v, "workspace member must be a role or a mapping");
            continue;
          }
          w.members[it->first.Scalar()] = std::move(wm);
        }
      }
    });
  }

  // Parses an expectation: allow | deny | deny:<reason> | allow:<reason> | {allow, reason, rule}.
  bool Expect(size_t d, const YAML::Node& n, ExpectSpec* out) {
    if (n.IsScalar()) {
      std::string s = n.Scalar();
      std::string head = s.substr(0, s.find(':'));
      if (head != "allow" && head != "deny") {
        Err(d, n, "expectation must be allow, deny, deny:<reason> or {allow, reason, rule}");
        return false;
      }
      out->allow = head == "allow";
      if (s.size() > head.size()) out->reason = s.substr(head.size() + 1);
      return true;
    }
    if (!n.IsMap()) {
      Err(d, n, "expectation must be allow, deny, deny:<reason> or {allow, reason, rule}");
      return false;
    }
    CheckKeys(d, n, "expect", {"allow", "reason", "rule"});
    if (!n["allow"]) {
      Err(d, n, "expect needs 'allow'");
      return false;
    }
    bool ok = Bool(d, n["allow"], "allow", &out->allow);
    if (n["reason"]) ok = Str(d, n["reason"], "reason", &out->reason) && ok;
    if (n["rule"]) ok = Str(d, n["rule"], "rule", &out->rule) && ok;
    return ok;
  }

  struct OwnedRequest {
    std::deque<std::string> store;
    std::vector<KeyValue> resource_attrs, context_attrs;
    Request req;
    std::string_view Keep(std::string s) {
      store.push_back(std::move(s));
      return store.back();
    }
    Value Keep(const OwnedValue& v) {
      Value x = v.View();
      if (x.kind == Value::Kind::kString) x.s = Keep(v.s);
      return x;
    }
  };

  void FlattenContext(size_t d, const YAML::Node& n, const std::string& prefix,
                      OwnedRequest* r) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = prefix + it->first.Scalar();
      const YAML::Node v = it->second;  // copy: it-> yields a temporary
      if (v.IsMap()) {
        FlattenContext(d, v, key + ".", r);
      } else if (key == "auth.method") {
        Str(d, v, key, &tmp_);
        r->req.auth_method = r->Keep(tmp_);
      } else if (key == "auth.idp") {
        Str(d, v, key, &tmp_);
        r->req.auth_idp = r->Keep(tmp_);
      } else if (key == "auth.age_s") {
        Int(d, v, key, &r->req.auth_age_s);
      } else if (key == "client") {
        Str(d, v, key, &tmp_);
        r->req.client = r->Keep(tmp_);
      } else if (v.IsScalar() || v.IsNull()) {
        OwnedValue ov = v.IsNull() ? OwnedValue{} : ScalarValue(v);
        r->context_attrs.push_back(KeyValue{r->Keep(key), r->Keep(ov)});
      } else {
        Err(d, v, "context values must be scalars or mappings");
      }
    }
  }

  bool BuildRequest(size_t d, const YAML::Node& n, OwnedRequest* r) {
    if (!n.IsMap()) {
      Err(d, n, "request must be a mapping");
      return false;
    }
    bool before = fixture_errors_;
    fixture_errors_ = false;
    CheckKeys(d, n, "request", {"user", "action", "org", "workspace", "resource", "context"});
    auto str = [&](const char* key, std::string_view* out) {
      if (YAML::Node v = n[key]) {
        if (Str(d, v, key, &tmp_)) *out = r->Keep(tmp_);
      }
    };
    str("user", &r->req.user);
    str("action", &r->req.action);
    str("org", &r->req.org);
    str("workspace", &r->req.workspace);
    if (!n["action"]) Err(d, n, "request needs 'action'");
    if (YAML::Node res = n["resource"]) {
      if (!res.IsMap()) {
        Err(d, res, "resource must be a mapping (type, id, attrs)");
      } else {
        CheckKeys(d, res, "resource", {"type", "id", "attrs"});
        if (res["type"] && Str(d, res["type"], "resource.type", &tmp_)) {
          r->req.resource_type = r->Keep(tmp_);
        }
        if (res["id"] && Str(d, res["id"], "resource.id", &tmp_)) {
          r->req.resource_id = r->Keep(tmp_);
        }
        if (res["attrs"]) {
          OwnedAttrs attrs;
          Attrs(d, res["attrs"], &attrs);
          for (auto& [k, v] : attrs) r->resource_attrs.push_back(KeyValue{r->Keep(k), r->Keep(v)});
        }
      }
    }
    if (YAML::Node ctx = n["context"]) {
      if (!ctx.IsMap()) {
        Err(d, ctx, "context must be a mapping");
      } else {
        FlattenContext(d, ctx, "", r);
      }
    }
    r->req.resource_attrs = r->resource_attrs;
    r->req.context_attrs = r->context_attrs;
    bool ok = !fixture_errors_;
    fixture_errors_ = before || fixture_errors_;
    return ok;
  }

  void RunTest(size_t d, const YAML::Node& t) {
    if (!t.IsMap()) {
      Err(d, t, "a test must be a mapping (name, request, expect)");
      return;
    }
    CheckKeys(d, t, "test", {"name", "description", "request", "expect"});
    std::string name = t["name"] && t["name"].IsScalar() ? t["name"].Scalar() : "";
    if (name.empty()) {
      auto [line, col] = internal::MarkPos(t.Mark());
      name = "test at line " + std::to_string(line);
    }
    YAML::Node req = t["request"], exp = t["expect"];
    if (!req || !exp) {
      Err(d, t, "test '" + name + "' needs 'request' and 'expect'");
      return;
    }
    OwnedRequest base;
    if (!BuildRequest(d, req, &base)) return;
    std::string req_text = Compact(req);
    int line = internal::MarkPos(t.Mark()).first;
    if (req["user"]) {
      ExpectSpec spec;
      if (!Expect(d, exp, &spec)) return;
      Check(d, line, name, req_text, base.req, spec);
      return;
    }
    if (!exp.IsMap() || exp["allow"]) {
      Err(d, exp, "request without 'user': expect must map each user to an expectation");
      return;
    }
    for (auto it = exp.begin(); it != exp.end(); ++it) {
      ExpectSpec spec;
      if (!Expect(d, it->second, &spec)) continue;
      std::string user = it->first.Scalar();
      Request r = base.req;
      r.user = user;
      Check(d, line, name + " [" + user + "]", req_text + " user=" + user, r, spec);
    }
  }

  void Check(size_t d, int line, const std::string& name, const std::string& req_text,
             const Request& req, const ExpectSpec& spec) {
    Decision dec = Evaluate(policy_, req, facts_);
    PolicyTestResult r;
    r.suite = docs_[d].name;
    r.line = line;
    r.test = name;
    r.request = req_text;
    r.expect_allow = spec.allow;
    r.expect_reason = spec.reason;
    r.expect_rule = spec.rule;
    r.actual_allow = dec.allow;
    r.actual_reason = std::string(dec.reason);
    r.actual_rule = std::string(dec.rule);
    r.passed = dec.allow == spec.allow && (spec.reason.empty() || spec.reason == dec.reason) &&
               (spec.rule.empty() || spec.rule == dec.rule);
    report_->results.push_back(std::move(r));
  }

  const CompiledPolicy& policy_;
  PolicyTestReport* report_;
  std::string base_dir_;
  std::deque<SourceDoc> docs_;
  MemoryFacts facts_;
  bool fixture_errors_ = false;
  std::string tmp_;
};

bool IsYaml(const std::string& n) {
  return (n.size() > 5 && n.compare(n.size() - 5, 5, ".yaml") == 0) ||
         (n.size() > 4 && n.compare(n.size() - 4, 4, ".yml") == 0);
}
bool IsTestYaml(const std::string& n) {
  return (n.size() > 10 && n.compare(n.size() - 10, 10, "_test.yaml") == 0) ||
         (n.size() > 9 && n.compare(n.size() - 9, 9, "_test.yml") == 0);
}

}  // namespace

std::string PolicyTestResult::ToString() const {
  auto fmt = [](bool allow, const std::string& reason, const std::string& rule) {
    std::string s = allow ? "allow" : "deny";
    if (!reason.empty() || !rule.empty()) {
      s += "(";
      s += reason;
      if (!rule.empty()) s += ", rule " + rule;
      s += ")";
    }
    return s;
  };
  return suite + ":" + std::to_string(line) + ": " + test + ": expected " +
         fmt(expect_allow, expect_reason, expect_rule) + ", got " +
         fmt(actual_allow, actual_reason, actual_rule) + " for " + request;
}

size_t PolicyTestReport::Failed() const {
  return static_cast<size_t>(
      std::count_if(results.begin(), results.end(), [](const auto& r) { return !r.passed; }));
}

std::vector<std::string> FindPolicyTestSuites(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (e.is_regular_file() && IsTestYaml(n)) out.push_back(n);
  }
  fs::path tests = fs::path(dir) / "tests";
  if (fs::is_directory(tests, ec)) {
    for (const auto& e : fs::directory_iterator(tests, ec)) {
      std::string n = e.path().filename().string();
      if (e.is_regular_file() && IsYaml(n)) out.push_back("tests/" + n);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

PolicyTestReport RunPolicyTestSources(const CompiledPolicy& policy,
                                      const std::vector<SourceFile>& suites,
                                      const std::string& base_dir) {
  PolicyTestReport report;
  for (const SourceFile& s : suites) {
    try {
      SuiteRunner runner(policy, &report, base_dir);
      runner.Run(SourceDoc{s.name, s.text});
      ++report.suites;
    } catch (const std::exception& e) {
      report.load_issues.push_back(Issue{s.name, 0, 0, std::string("internal error: ") + e.what()});
    }
  }
  return report;
}

PolicyTestReport RunPolicyTests(const std::string& dir) {
  PolicyTestReport report;
  auto policy = LoadPolicyDir(dir, &report.load_issues);
  if (!policy) return report;
  std::vector<SourceFile> suites;
  for (const std::string& name : FindPolicyTestSuites(dir)) {
    SourceFile f{name, ""};
    if (!ReadFile((fs::path(dir) / name).string(), &f.text)) {
      report.load_issues.push_back(Issue{name, 0, 0, "cannot read suite"});
      continue;
    }
    suites.push_back(std::move(f));
  }
  PolicyTestReport r = RunPolicyTestSources(*policy, suites, dir);
  report.results = std::move(r.results);
  report.suites = r.suites;
  for (Issue& i : r.load_issues) report.load_issues.push_back(std::move(i));
  return report;
}

}  // namespace gatehouse::policy
