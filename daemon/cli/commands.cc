#include "daemon/cli/commands.h"

#include <charconv>
#include <cstring>
#include <set>
#include <sstream>

namespace gatehouse::daemon::cli {
namespace {

using nlohmann::json;
using T = FlagType;

// Flags shared by several commands.
const FlagSpec kUser{"user", "user", T::kString, true, "user id"};
const FlagSpec kOrgReq{"org", "org", T::kString, true, "organization id"};
const FlagSpec kOrgOpt{"org", "org", T::kString, false, "organization id"};
const FlagSpec kWsReq{"workspace", "workspace", T::kString, true, "workspace id"};
const FlagSpec kWsOpt{"workspace", "workspace", T::kString, false, "workspace id (implies its org)"};

// Request-shaping flags for check / list-actions / list-workspaces.
std::vector<FlagSpec> ResourceFlags() {
  return {
      {"resource-type", "resource.type", T::kString, false, "resource type (conversation, contact, ...)", "TYPE"},
      {"resource-id", "resource.id", T::kString, false, "resource id", "ID"},
      {"attr", "resource.attrs", T::kKeyValue, false, "resource attribute (assignee=u1, team=t2, target_user=u3, ...)", "KEY=VALUE"},
      {"resource", "resource", T::kJson, false, "the whole resource as a JSON object", "JSON"},
  };
}
std::vector<FlagSpec> ContextFlags() {
  return {
      {"auth-method", "context.auth.method", T::kString, false, "password | google | sso", "METHOD"},
      {"auth-idp", "context.auth.idp", T::kString, false, "identity provider of the SSO session", "IDP"},
      {"auth-age", "context.auth.age_s", T::kInt, false, "age of the SSO session in seconds", "SECONDS"},
      {"client", "context.client", T::kString, false, "client kind (web, mobile, api, ...)", "CLIENT"},
      {"context", "context", T::kJson, false, "the whole context as a JSON object", "JSON"},
  };
}

std::vector<FlagSpec> Concat(std::vector<FlagSpec> a, const std::vector<FlagSpec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<CommandSpec> BuildTable() {
  std::vector<CommandSpec> t;
  // ---- decisions --------------------------------------------------------------------------
  t.push_back({"check", "check", Kind::kCheck,
               "may USER do ACTION in an org or workspace? (exit 0 allow, 1 deny)",
               Concat(Concat({kUser,
                              {"action", "action", T::kString, true, "catalog action, e.g. conversation.reply"},
                              kOrgOpt, kWsOpt,
                              {"explain", "explain", T::kBool, false, "show the deciding rule and reason"},
                              {"min-rev", "min_rev", T::kInt, false, "answer from a store at least this fresh", "REV"}},
                             ResourceFlags()),
                      ContextFlags()),
               {"user", "action"}, "org,workspace"});
  t.push_back({"batch", "check_batch", Kind::kBatch,
               "run the checks of a JSON-lines FILE (one check object per line; - = stdin)",
               {{"file", "file", T::kString, true, "JSON-lines file of checks", "FILE"}},
               {"file"}});
  t.push_back({"list-actions", "list_actions", Kind::kRequest,
               "every catalog action USER may do in an org or workspace",
               Concat(Concat({kUser, kOrgOpt, kWsOpt}, ResourceFlags()), ContextFlags()),
               {"user"}, "org,workspace"});
  t.push_back({"list-workspaces", "list_workspaces", Kind::kRequest,
               "the org's workspaces where USER may do ACTION (default workspace.access)",
               Concat({kUser, kOrgReq,
                       {"action", "action", T::kString, false, "catalog action (default workspace.access)"}},
                      ContextFlags()),
               {"user"}});
  t.push_back({"list-orgs", "list_orgs", Kind::kRequest, "the orgs of USER with role and status",
               {kUser}, {"user"}});
  t.push_back({"list-users", "list_users", Kind::kRequest,
               "members of an org or workspace (optionally only those who may do ACTION)",
               {kOrgOpt, kWsOpt,
                {"action", "action", T::kString, false, "only users who may do this action"},
                {"limit", "limit", T::kInt, false, "page size", "N"},
                {"cursor", "cursor", T::kString, false, "cursor from the previous page"}},
               {}, "org,workspace"});
  // ---- reads ------------------------------------------------------------------------------
  t.push_back({"user get", "user.get", Kind::kRequest, "show a user", {kUser}, {"user"}});
  t.push_back({"org get", "org.get", Kind::kRequest,
               "show an org (subscription, security, counts)", {kOrgReq}, {"org"}});
  t.push_back({"org members", "org.members", Kind::kRequest, "list an org's members",
               {kOrgReq,
                {"limit", "limit", T::kInt, false, "page size", "N"},
                {"cursor", "cursor", T::kString, false, "cursor from the previous page"}},
               {"org"}});
  t.push_back({"workspace get", "workspace.get", Kind::kRequest, "show a workspace", {kWsReq},
               {"workspace"}});
  t.push_back({"invite get", "invitation.get", Kind::kRequest, "show an invitation",
               {{"invitation", "invitation", T::kString, true, "invitation id"}}, {"invitation"}});
  // ---- writes -----------------------------------------------------------------------------
  t.push_back({"user register", "user.register", Kind::kRequest, "register a user",
               {kUser, {"email", "email", T::kString, true, "email address"}}, {"user"}});
  t.push_back({"user verify-email", "user.verify_email", Kind::kRequest,
               "mark a user's email as verified", {kUser}, {"user"}});
  t.push_back({"user set-org-allowance", "user.set_org_allowance", Kind::kRequest,
               "how many orgs the user may create (operator only)",
               {kUser, {"allowance", "allowance", T::kInt, true, "number of orgs", "N"}}, {"user"}});
  t.push_back({"org create", "org.create", Kind::kRequest,
               "create an org (with its default workspace) for a verified user",
               {kUser, kOrgReq,
                {"name", "name", T::kString, true, "org name"},
                {"workspace", "workspace", T::kString, false, "id of the default workspace"},
                {"workspace-name", "workspace_name", T::kString, false, "name of the default workspace"}}});
  t.push_back({"org update", "org.update", Kind::kRequest, "rename an org or set its attributes",
               {kOrgReq,
                {"name", "name", T::kString, false, "new name"},
                {"attr", "attrs", T::kKeyValue, false, "attribute", "KEY=VALUE"},
                {"attrs", "attrs", T::kJson, false, "attributes as a JSON object", "JSON"}},
               {"org"}, nullptr, true});
  t.push_back({"org delete", "org.delete", Kind::kRequest, "delete an org", {kOrgReq}, {"org"},
               nullptr, true});
  t.push_back({"org invite", "org.invite", Kind::kRequest,
               "invite an email into an org (prints the invitation id and secret token)",
               {kOrgReq,
                {"email", "email", T::kString, true, "invitee email"},
                {"role", "role", T::kString, true, "org role: org_admin | billing_admin | user_admin | member"},
                {"grant", "workspaces", T::kGrant, false, "workspace grant", "WORKSPACE:ROLE"},
                {"ttl", "ttl_s", T::kInt, false, "expiry in seconds (default 7 days)", "SECONDS"}},
               {}, nullptr, true});
  t.push_back({"invite accept", "invite.accept", Kind::kRequest,
               "accept an invitation as USER (verified email must match)",
               {kUser, {"token", "token", T::kString, true, "the invitation's secret token"}}});
  t.push_back({"invite revoke", "invite.revoke", Kind::kRequest, "revoke a pending invitation",
               {{"invitation", "invitation", T::kString, true, "invitation id"}}, {"invitation"},
               nullptr, true});
  t.push_back({"invite resend", "invite.resend", Kind::kRequest,
               "renew a pending or expired invitation (new token; the old one stops working)",
               {{"invitation", "invitation", T::kString, true, "invitation id"}}, {"invitation"},
               nullptr, true});
  t.push_back({"org set-role", "org.set_role", Kind::kRequest, "change a member's org role",
               {kOrgReq, kUser, {"role", "role", T::kString, true, "new org role"}}, {}, nullptr,
               true});
  t.push_back({"org remove-member", "org.remove_member", Kind::kRequest,
               "remove a user from an org (and all its workspaces)", {kOrgReq, kUser}, {}, nullptr,
               true});
  t.push_back({"org leave", "org.leave", Kind::kRequest, "USER leaves the org", {kOrgReq, kUser}});
  t.push_back({"org set-subscription", "org.set_subscription", Kind::kRequest,
               "change plan, status, seats, workspace limit, features or billing attributes",
               {kOrgReq,
                {"plan", "plan", T::kString, false, "plan name"},
                {"status", "status", T::kString, false, "TRIAL | ACTIVE | DOWNGRADING | CANCELING | PENDING_PAYMENT | TRIAL_ENDED | FROZEN | CANCELED"},
                {"seats", "seats", T::kInt, false, "user limit", "N"},
                {"workspace-limit", "workspace_limit", T::kInt, false, "workspace limit", "N"},
                {"features", "features", T::kList, false, "feature set, comma-separated (replaces)", "F1,F2"},
                {"billing", "billing", T::kKeyValue, false, "billing attribute", "KEY=VALUE"}},
               {"org"}, nullptr, true});
  t.push_back({"org set-security", "org.set_security", Kind::kRequest, "SSO settings",
               {kOrgReq,
                {"sso-enabled", "sso.enabled", T::kBool, false, "SSO enabled"},
                {"sso-enforced", "sso.enforced", T::kBool, false, "SSO required to use the org"},
                {"sso-idp", "sso.idp", T::kString, false, "identity provider id", "IDP"},
                {"sso-exempt-roles", "sso.exempt_roles", T::kList, false, "org roles exempt from enforcement", "R1,R2"}},
               {"org"}, nullptr, true});
  t.push_back({"org suspend", "org.suspend", Kind::kRequest,
               "suspend an org: every check denies (operator only)", {kOrgReq}, {"org"}});
  t.push_back({"org unsuspend", "org.unsuspend", Kind::kRequest, "lift a suspension (operator only)",
               {kOrgReq}, {"org"}});
  t.push_back({"workspace create", "workspace.create", Kind::kRequest, "create a workspace",
               {kOrgReq, kWsReq, {"name", "name", T::kString, true, "workspace name"}}, {}, nullptr,
               true});
  t.push_back({"workspace update", "workspace.update", Kind::kRequest, "rename a workspace",
               {kWsReq, {"name", "name", T::kString, false, "new name"},
                {"attr", "attrs", T::kKeyValue, false, "attribute", "KEY=VALUE"}},
               {"workspace"}, nullptr, true});
  t.push_back({"workspace delete", "workspace.delete", Kind::kRequest,
               "delete a workspace and its memberships", {kWsReq}, {"workspace"}, nullptr, true});
  t.push_back({"workspace set-member", "workspace.set_member", Kind::kRequest,
               "add or change a workspace member (role, team, restrictions)",
               {kWsReq, kUser,
                {"role", "role", T::kString, true, "owner | manager | agent"},
                {"team", "team", T::kString, false, "team id"},
                {"no-ws-settings", "restrictions.no_ws_settings", T::kBool, false, "manager: no workspace settings"},
                {"no-contact-delete", "restrictions.no_contact_delete", T::kBool, false, "manager: cannot delete contacts"},
                {"no-data-export", "restrictions.no_data_export", T::kBool, false, "manager: cannot export data"},
                {"no-integrations", "restrictions.no_integrations", T::kBool, false, "manager: no integrations"},
                {"contact-visibility", "restrictions.contact_visibility", T::kString, false,
                 "agent: all | assigned_only | assigned_or_unassigned | assigned_or_team", "VIS"}},
               {}, nullptr, true});
  t.push_back({"workspace remove-member", "workspace.remove_member", Kind::kRequest,
               "remove a user from a workspace", {kWsReq, kUser}, {}, nullptr, true});
  // ---- operations -------------------------------------------------------------------------
  t.push_back({"health", "health", Kind::kRequest, "is the daemon serving? (revision, policy, uptime)", {}});
  t.push_back({"stats", "stats", Kind::kRequest, "counters and latency percentiles (operator)", {}});
  t.push_back({"changes", "changes", Kind::kRequest, "change-log records after revision SINCE",
               {{"since", "since", T::kInt, false, "revision (default 0)", "REV"},
                {"limit", "limit", T::kInt, false, "at most N records", "N"}}});
  t.push_back({"watch", "watch", Kind::kWatch,
               "stream change records as they commit (Ctrl-C stops)",
               {{"since", "since", T::kInt, false, "start after this revision (default: now)", "REV"}}});
  t.push_back({"policy reload", "policy.reload", Kind::kRequest,
               "make the daemon recompile its policy from disk (operator)", {}});
  t.push_back({"raw", "", Kind::kRaw, "send one raw JSON request line and print the reply",
               {{"request", "request", T::kString, true, "a JSON object, e.g. '{\"op\":\"health\"}'", "JSON"}},
               {"request"}});
  // ---- local (no daemon) ------------------------------------------------------------------
  t.push_back({"serve", "", Kind::kServe,
               "run the daemon in the foreground (see `gatehouse serve --help`)", {}});
  t.push_back({"import", "", Kind::kImport,
               "load a JSON-lines FILE into the store at --data (daemon stopped; see docs/operations.md)",
               {{"file", "file", T::kString, true, "JSON-lines file (- = stdin)", "FILE"},
                {"data", "data", T::kString, true, "store directory (created if missing)", "DIR"}},
               {"file"}});
  t.push_back({"export", "", Kind::kExport,
               "write the store at --data as JSON lines (the import format)",
               {{"data", "data", T::kString, true, "store directory", "DIR"},
                {"out", "out", T::kString, false, "output file (default stdout)", "FILE"}}});
  t.push_back({"policy validate", "", Kind::kPolicyValidate,
               "load a policy directory; print problems as file:line:col: message (exit 1)",
               {{"dir", "dir", T::kString, true, "policy directory", "DIR"}}, {"dir"}});
  t.push_back({"policy test", "", Kind::kPolicyTest,
               "run a policy directory's test suites; print each failure (exit 1)",
               {{"dir", "dir", T::kString, true, "policy directory", "DIR"}}, {"dir"}});
  for (auto& c : t) {
    if (c.takes_actor) {
      c.flags.push_back({"actor", "actor", T::kString, false,
                         "act on behalf of this user: the daemon checks its policy first (writer tier); "
                         "without it the write is an operator write", "USER"});
      // The actor's session (SSO gates apply to policy-checked writes too).
      for (const FlagSpec& f : ContextFlags()) c.flags.push_back(f);
    }
  }
  return t;
}

const char* DefaultMetavar(const FlagSpec& f) {
  if (f.metavar) return f.metavar;
  switch (f.type) {
    case T::kString: {
      static thread_local std::string upper;
      upper.clear();
      for (const char* p = f.name; *p; ++p) upper.push_back(*p == '-' ? '_' : static_cast<char>(toupper(*p)));
      return upper.c_str();
    }
    case T::kInt: return "N";
    case T::kBool: return nullptr;
    case T::kList: return "A,B";
    case T::kJson: return "JSON";
    case T::kKeyValue: return "KEY=VALUE";
    case T::kGrant: return "WORKSPACE:ROLE";
  }
  return "VALUE";
}

std::string FlagUsage(const FlagSpec& f) {
  std::string s = std::string("--") + f.name;
  if (const char* mv = DefaultMetavar(f)) s += std::string(" ") + mv;
  return s;
}

bool Repeatable(FlagType t) {
  return t == T::kList || t == T::kKeyValue || t == T::kGrant || t == T::kJson;
}

// Returns the object at the dotted path, creating objects on the way; nullptr if a non-object
// value is in the way.
json* Walk(json* root, std::string_view path, bool create_last_as_object) {
  json* cur = root;
  size_t start = 0;
  for (;;) {
    size_t dot = path.find('.', start);
    std::string key(path.substr(start, dot == std::string_view::npos ? path.npos : dot - start));
    if (!cur->is_object()) return nullptr;
    json& next = (*cur)[key];
    if (dot == std::string_view::npos) {
      if (create_last_as_object && next.is_null()) next = json::object();
      return &next;
    }
    if (next.is_null()) next = json::object();
    cur = &next;
    start = dot + 1;
  }
}

bool ParseInt(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool ApplyFlag(const FlagSpec& f, const std::string& value, bool has_value, json* req,
               std::string* err) {
  const std::string flag = std::string("--") + f.name;
  if (f.type != T::kBool && !has_value) {
    *err = flag + " needs a value (" + FlagUsage(f) + ")";
    return false;
  }
  switch (f.type) {
    case T::kString: {
      if (value.empty()) {
        *err = flag + ": empty value";
        return false;
      }
      json* slot = Walk(req, f.path, false);
      if (!slot) break;
      *slot = value;
      return true;
    }
    case T::kInt: {
      int64_t v;
      if (!ParseInt(value, &v)) {
        *err = flag + ": '" + value + "' is not an integer";
        return false;
      }
      json* slot = Walk(req, f.path, false);
      if (!slot) break;
      *slot = v;
      return true;
    }
    case T::kBool: {
      bool v = true;
      if (has_value) {
        if (value == "true" || value == "1" || value == "yes") v = true;
        else if (value == "false" || value == "0" || value == "no") v = false;
        else {
          *err = flag + ": '" + value + "' is not true or false";
          return false;
        }
      }
      json* slot = Walk(req, f.path, false);
      if (!slot) break;
      *slot = v;
      return true;
    }
    case T::kList: {
      json* slot = Walk(req, f.path, false);
      if (!slot) break;
      if (!slot->is_array()) *slot = json::array();
      std::stringstream ss(value);
      std::string item;
      while (std::getline(ss, item, ',')) {
        if (!item.empty()) slot->push_back(item);
      }
      return true;
    }
    case T::kJson: {
      json v = json::parse(value, nullptr, /*allow_exceptions=*/false);
      if (v.is_discarded() || !v.is_object()) {
        *err = flag + ": expected a JSON object, got '" + value + "'";
        return false;
      }
      json* slot = Walk(req, f.path, true);
      if (!slot || !slot->is_object()) break;
      slot->update(v);
      return true;
    }
    case T::kKeyValue: {
      size_t eq = value.find('=');
      if (eq == std::string::npos || eq == 0) {
        *err = flag + ": expected KEY=VALUE, got '" + value + "'";
        return false;
      }
      json* obj = Walk(req, f.path, true);
      if (!obj || !obj->is_object()) break;
      std::string v = value.substr(eq + 1);
      int64_t i;
      // Integers and booleans keep their type; everything else is a string.
      if (ParseInt(v, &i)) (*obj)[value.substr(0, eq)] = i;
      else if (v == "true" || v == "false") (*obj)[value.substr(0, eq)] = (v == "true");
      else (*obj)[value.substr(0, eq)] = v;
      return true;
    }
    case T::kGrant: {
      size_t colon = value.rfind(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == value.size()) {
        *err = flag + ": expected WORKSPACE:ROLE, got '" + value + "'";
        return false;
      }
      json* slot = Walk(req, f.path, false);
      if (!slot) break;
      if (!slot->is_array()) *slot = json::array();
      slot->push_back({{"workspace", value.substr(0, colon)}, {"role", value.substr(colon + 1)}});
      return true;
    }
  }
  *err = flag + ": conflicts with another flag that sets " + f.path;
  return false;
}

}  // namespace

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> table = BuildTable();
  return table;
}

const CommandSpec* FindCommand(std::string_view name) {
  for (const auto& c : Commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

bool ParseInvocation(int argc, const char* const* argv, const char* env_socket, Invocation* inv,
                     std::string* err) {
  *inv = Invocation();
  inv->socket = env_socket && *env_socket ? env_socket : "./gatehouse.sock";
  std::vector<std::string> args(argv + 1, argv + argc);

  // Globals anywhere (except after `serve`, whose flags belong to the daemon; and the daemon
  // also understands --socket, so it is passed through).
  std::vector<std::string> rest;
  bool serve = false;
  bool socket_flag = false;  // --socket given before `serve`: the daemon gets it too
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (serve) {
      inv->passthrough.push_back(a);
      continue;
    }
    auto global_value = [&](const char* name, std::string* out) -> int {
      std::string eq = std::string(name) + "=";
      if (a == name) {
        if (i + 1 >= args.size()) {
          *err = std::string(name) + " needs a value";
          return -1;
        }
        *out = args[++i];
        return 1;
      }
      if (a.rfind(eq, 0) == 0) {
        *out = a.substr(eq.size());
        return 1;
      }
      return 0;
    };
    std::string v;
    int r;
    if ((r = global_value("--socket", &v)) != 0) {
      if (r < 0) return false;
      if (v.empty()) {
        *err = "--socket: empty path";
        return false;
      }
      inv->socket = v;
      socket_flag = true;
    } else if ((r = global_value("--timeout-ms", &v)) != 0) {
      if (r < 0) return false;
      int64_t ms;
      if (!ParseInt(v, &ms) || ms <= 0 || ms > 3600000) {
        *err = "--timeout-ms: expected a number of milliseconds between 1 and 3600000";
        return false;
      }
      inv->timeout_ms = static_cast<int>(ms);
    } else if (a == "--json") {
      inv->json = true;
    } else if (a == "--help" || a == "-h") {
      inv->help = true;
    } else {
      if (rest.empty() && a == "serve") serve = true;
      rest.push_back(a);
    }
  }
  if (rest.empty()) {
    if (inv->help) return true;
    *err = "no command given (try gatehouse --help)";
    return false;
  }
  if (rest[0] == "help") {
    inv->help = true;
    rest.erase(rest.begin());
    if (rest.empty()) return true;
  }
  // Command name: the longest prefix of words that names a command (two words at most).
  size_t used = 0;
  if (rest.size() >= 2) {
    if (const CommandSpec* c = FindCommand(rest[0] + " " + rest[1])) {
      inv->cmd = c;
      used = 2;
    }
  }
  if (!inv->cmd) {
    if (const CommandSpec* c = FindCommand(rest[0])) {
      inv->cmd = c;
      used = 1;
    }
  }
  if (!inv->cmd) {
    std::string group = rest[0];
    bool is_group = false;
    for (const auto& c : Commands()) {
      if (std::string_view(c.name).rfind(group + " ", 0) == 0) is_group = true;
    }
    if (is_group) {
      if (inv->help && rest.size() == 1) {  // `gatehouse org --help`: top-level help
        return true;
      }
      *err = rest.size() >= 2 ? "unknown command '" + group + " " + rest[1] + "'"
                              : "'" + group + "' needs a subcommand";
    } else {
      *err = "unknown command '" + group + "'";
    }
    *err += " (try gatehouse --help)";
    return false;
  }
  const CommandSpec& cmd = *inv->cmd;
  if (cmd.kind == Kind::kServe) {  // the daemon parses its own flags
    if (socket_flag) inv->passthrough.insert(inv->passthrough.begin(), {"--socket", inv->socket});
    return true;
  }
  if (inv->help) return true;

  json& req = inv->request;
  std::set<std::string> seen;
  size_t next_positional = 0;
  for (size_t i = used; i < rest.size(); ++i) {
    const std::string& a = rest[i];
    const FlagSpec* spec = nullptr;
    std::string value;
    bool has_value = false;
    if (a.size() > 2 && a.rfind("--", 0) == 0) {
      std::string name = a.substr(2);
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        has_value = true;
        name.resize(eq);
      }
      for (const auto& f : cmd.flags) {
        if (name == f.name) spec = &f;
      }
      if (!spec) {
        *err = "unknown flag --" + name + " for '" + cmd.name + "' (try gatehouse " + cmd.name +
               " --help)";
        return false;
      }
      if (!has_value && spec->type != T::kBool) {
        if (i + 1 < rest.size()) {
          value = rest[++i];
          has_value = true;
        }
      }
    } else {
      if (next_positional >= cmd.positionals.size()) {
        *err = "unexpected argument '" + a + "' for '" + cmd.name + "' (try gatehouse " +
               cmd.name + " --help)";
        return false;
      }
      const char* pname = cmd.positionals[next_positional++];
      for (const auto& f : cmd.flags) {
        if (std::strcmp(pname, f.name) == 0) spec = &f;
      }
      value = a;
      has_value = true;
    }
    if (seen.count(spec->name) && !Repeatable(spec->type)) {
      *err = std::string("--") + spec->name + " given twice";
      return false;
    }
    seen.insert(spec->name);
    if (!ApplyFlag(*spec, value, has_value, &req, err)) return false;
  }
  for (const auto& f : cmd.flags) {
    if (f.required && !seen.count(f.name)) {
      *err = "'" + std::string(cmd.name) + "' needs " + FlagUsage(f) + " (try gatehouse " +
             cmd.name + " --help)";
      return false;
    }
  }
  if (cmd.one_of) {
    std::stringstream ss(cmd.one_of);
    std::string name, list;
    bool any = false;
    while (std::getline(ss, name, ',')) {
      any = any || seen.count(name);
      list += (list.empty() ? "--" : " or --") + name;
    }
    if (!any) {
      *err = "'" + std::string(cmd.name) + "' needs " + list;
      return false;
    }
  }
  if (cmd.kind == Kind::kRaw) {
    json raw = json::parse(req["request"].get<std::string>(), nullptr, false);
    if (raw.is_discarded() || !raw.is_object()) {
      *err = "raw: the request must be one JSON object";
      return false;
    }
    req = std::move(raw);
  } else if (*cmd.op) {
    req["op"] = cmd.op;
  }
  return true;
}

std::string TopLevelHelp() {
  std::string s =
      "gatehouse - multi-tenant authorization daemon and its client\n\n"
      "usage: gatehouse [--socket PATH] [--json] [--timeout-ms N] <command> [flags]\n"
      "       gatehouse <command> --help\n\ncommands:\n";
  for (const auto& c : Commands()) {
    std::string name = c.name;
    name.resize(std::max<size_t>(name.size(), 26), ' ');
    s += "  " + name + " " + c.summary + "\n";
  }
  s +=
      "\nglobal flags:\n"
      "  --socket PATH     daemon socket (default $GATEHOUSE_SOCKET, else ./gatehouse.sock)\n"
      "  --json            print the raw JSON reply instead of human output\n"
      "  --timeout-ms N    how long to wait for a reply (default 10000)\n"
      "\nexit codes: 0 ok/allowed, 1 denied or refused by the daemon, 2 usage error,\n"
      "            3 daemon unreachable or internal error (check: any error reply)\n";
  return s;
}

std::string CommandHelp(const CommandSpec& cmd) {
  std::string s = std::string("usage: gatehouse ") + cmd.name;
  for (const char* p : cmd.positionals) {
    for (const auto& f : cmd.flags) {
      if (std::strcmp(p, f.name) == 0) s += std::string(" [") + DefaultMetavar(f) + "]";
    }
  }
  s += " [flags]\n\n" + std::string(cmd.summary) + "\n";
  if (cmd.op && *cmd.op) s += "protocol op: " + std::string(cmd.op) + "\n";
  if (!cmd.positionals.empty()) {
    s += "positional arguments stand for:";
    for (const char* p : cmd.positionals) s += std::string(" --") + p;
    s += "\n";
  }
  if (cmd.one_of) {
    std::string list, name;
    std::stringstream ss(cmd.one_of);
    while (std::getline(ss, name, ',')) list += (list.empty() ? "--" : " or --") + name;
    s += "requires " + list + "\n";
  }
  if (!cmd.flags.empty()) s += "\nflags:\n";
  for (const auto& f : cmd.flags) {
    std::string u = FlagUsage(f);
    u.resize(std::max<size_t>(u.size(), 34), ' ');
    s += "  " + u + " " + f.help;
    if (f.required) s += " (required)";
    if (Repeatable(f.type) && f.type != T::kJson) s += " [repeatable]";
    s += "\n";
  }
  s += "\nglobal flags: --socket PATH, --json, --timeout-ms N (see gatehouse --help)\n";
  return s;
}

int ExitCodeForReply(const CommandSpec& cmd, const json& reply) {
  if (!reply.is_object() || !reply.contains("ok") || !reply["ok"].is_boolean()) return kExitError;
  if (!reply["ok"].get<bool>()) {
    if (cmd.kind == Kind::kCheck || cmd.kind == Kind::kBatch) return kExitError;
    std::string code;
    if (reply.contains("error") && reply["error"].is_object() && reply["error"].contains("code") &&
        reply["error"]["code"].is_string())
      code = reply["error"]["code"].get<std::string>();
    if (code == "internal" || code == "unavailable" || code.empty()) return kExitError;
    return kExitNo;
  }
  if (cmd.kind == Kind::kCheck) {
    if (!reply.contains("allow") || !reply["allow"].is_boolean()) return kExitError;
    return reply["allow"].get<bool>() ? kExitOk : kExitNo;
  }
  return kExitOk;
}

namespace {

std::string Str(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "";
  const json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

}  // namespace

void PrintReply(const CommandSpec& cmd, const json& reply, bool raw_json, std::FILE* out,
                std::FILE* err) {
  if (raw_json) {
    std::fprintf(out, "%s\n", reply.dump().c_str());
    return;
  }
  if (!reply.is_object() || !reply.contains("ok")) {
    std::fprintf(err, "gatehouse: malformed reply: %s\n", reply.dump().c_str());
    return;
  }
  if (!reply.value("ok", false)) {
    const json e = reply.contains("error") ? reply["error"] : json::object();
    std::fprintf(err, "gatehouse: %s: %s\n", Str(e, "code").c_str(), Str(e, "message").c_str());
    return;
  }
  const std::string op = cmd.op ? cmd.op : "";
  const std::string rev = Str(reply, "rev");
  if (cmd.kind == Kind::kCheck) {
    bool allow = reply.value("allow", false);
    std::string line = allow ? "ALLOW" : "DENY";
    std::string why;
    if (!Str(reply, "reason").empty()) why += "reason=" + Str(reply, "reason");
    if (!Str(reply, "rule").empty()) why += std::string(why.empty() ? "" : " ") + "rule=" + Str(reply, "rule");
    if (!why.empty()) line += "  " + why;
    if (!rev.empty()) line += "  (rev " + rev + ")";
    std::fprintf(out, "%s\n", line.c_str());
    return;
  }
  if (op == "list_actions" || op == "list_workspaces") {
    const char* key = op == "list_actions" ? "actions" : "workspaces";
    if (reply.contains(key) && reply[key].is_array()) {
      for (const auto& a : reply[key]) std::fprintf(out, "%s\n", a.is_string() ? a.get<std::string>().c_str() : a.dump().c_str());
      return;
    }
  }
  if (op == "list_orgs" && reply.contains("orgs") && reply["orgs"].is_array()) {
    for (const auto& o : reply["orgs"])
      std::fprintf(out, "%s\t%s\t%s\n", Str(o, "org").c_str(), Str(o, "role").c_str(), Str(o, "status").c_str());
    return;
  }
  if (op == "org.members" && reply.contains("members") && reply["members"].is_array()) {
    for (const auto& m : reply["members"]) {
      std::string ws;
      if (m.contains("workspaces") && m["workspaces"].is_array()) {
        for (const auto& w : m["workspaces"])
          ws += (ws.empty() ? "" : ",") + Str(w, "workspace") + ":" + Str(w, "role");
      }
      std::fprintf(out, "%s\t%s\t%s\n", Str(m, "user").c_str(), Str(m, "role").c_str(), ws.c_str());
    }
    if (reply.contains("pending_invitations") && reply["pending_invitations"].is_array()) {
      for (const auto& i : reply["pending_invitations"])
        std::fprintf(out, "(pending)\t%s\t%s\t%s\texpires_at=%s\n", Str(i, "email").c_str(),
                     Str(i, "role").c_str(), Str(i, "invitation").c_str(), Str(i, "expires_at").c_str());
    }
    if (!Str(reply, "cursor").empty()) std::fprintf(out, "(more: --cursor %s)\n", Str(reply, "cursor").c_str());
    return;
  }
  if (op == "list_users" && reply.contains("users") &&
      reply["users"].is_array()) {
    for (const auto& u : reply["users"])
      std::fprintf(out, "%s\t%s\n", Str(u, "user").c_str(), Str(u, "role").c_str());
    if (!Str(reply, "cursor").empty()) std::fprintf(out, "(more: --cursor %s)\n", Str(reply, "cursor").c_str());
    return;
  }
  if (op == "changes" && reply.contains("changes") && reply["changes"].is_array()) {
    for (const auto& c : reply["changes"]) std::fprintf(out, "%s\n", FormatChange(c).c_str());
    return;
  }
  // Everything else: "ok (rev N)" then the remaining fields.
  json rest = reply;
  rest.erase("ok");
  rest.erase("id");
  rest.erase("rev");
  std::fprintf(out, "ok%s\n", rev.empty() ? "" : (" (rev " + rev + ")").c_str());
  for (auto it = rest.begin(); it != rest.end(); ++it) {
    if (it->is_structured()) {
      std::fprintf(out, "%s: %s\n", it.key().c_str(), it->dump(2).c_str());
    } else {
      std::fprintf(out, "%s: %s\n", it.key().c_str(),
                   it->is_string() ? it->get<std::string>().c_str() : it->dump().c_str());
    }
  }
}

std::string FormatChange(const json& c) {
  std::string s = "rev " + Str(c, "rev") + "  " + Str(c, "op");
  std::string actor = Str(c, "actor");
  s += "  actor=" + (actor.empty() ? std::string("-") : actor);
  if (c.is_object() && c.contains("args")) s += "  " + c["args"].dump();
  return s;
}

}  // namespace gatehouse::daemon::cli
