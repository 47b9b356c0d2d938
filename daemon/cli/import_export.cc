#include "daemon/cli/import_export.h"

#include <cstdlib>
#include <set>

namespace gatehouse::daemon::cli {
namespace {

using nlohmann::json;
using store::ImportRecord;

struct TypeSpec {
  const char* type;
  ImportRecord::Kind kind;
  std::set<std::string> required;
  std::set<std::string> optional;
};

const std::vector<TypeSpec>& Types() {
  static const std::vector<TypeSpec> types = {
      {"user", ImportRecord::Kind::kUser, {"user", "email"}, {"email_verified", "org_allowance"}},
      {"org", ImportRecord::Kind::kOrg, {"org", "name", "creator"},
       {"plan", "status", "seats", "workspace_limit", "features", "billing", "sso", "attrs",
        "suspended"}},
      {"org_member", ImportRecord::Kind::kOrgMember, {"org", "user", "role"}, {}},
      {"workspace", ImportRecord::Kind::kWorkspace, {"workspace", "org", "name"}, {"attrs"}},
      {"workspace_member", ImportRecord::Kind::kWorkspaceMember, {"workspace", "user", "role"},
       {"team", "restrictions"}},
  };
  return types;
}

bool GetString(const json& obj, const char* key, std::string* out, std::string* err) {
  const json& v = obj[key];
  if (!v.is_string()) {
    *err = std::string("field \"") + key + "\" must be a string";
    return false;
  }
  *out = v.get<std::string>();
  return true;
}

bool GetInt(const json& obj, const char* key, int64_t* out, std::string* err) {
  const json& v = obj[key];
  if (!v.is_number_integer()) {
    *err = std::string("field \"") + key + "\" must be an integer";
    return false;
  }
  *out = v.get<int64_t>();
  return true;
}

bool GetBool(const json& obj, const char* key, bool* out, std::string* err) {
  const json& v = obj[key];
  if (!v.is_boolean()) {
    *err = std::string("field \"") + key + "\" must be true or false";
    return false;
  }
  *out = v.get<bool>();
  return true;
}

bool GetStringList(const json& v, const std::string& name, std::vector<std::string>* out,
                   std::string* err) {
  if (!v.is_array()) {
    *err = "field \"" + name + "\" must be an array of strings";
    return false;
  }
  out->clear();
  for (const auto& e : v) {
    if (!e.is_string()) {
      *err = "field \"" + name + "\" must be an array of strings";
      return false;
    }
    out->push_back(e.get<std::string>());
  }
  return true;
}

bool GetAttrs(const json& v, const std::string& name, store::AttrMap* out, std::string* err) {
  if (!v.is_object()) {
    *err = "field \"" + name + "\" must be an object of scalars";
    return false;
  }
  out->clear();
  for (auto it = v.begin(); it != v.end(); ++it) {
    store::OwnedAttr a;
    const json& x = *it;
    if (x.is_null()) {
      a.kind = store::AttrValue::Kind::kNull;
    } else if (x.is_boolean()) {
      a.kind = store::AttrValue::Kind::kBool;
      a.b = x.get<bool>();
    } else if (x.is_number_integer()) {
      a.kind = store::AttrValue::Kind::kInt;
      a.i = x.get<int64_t>();
    } else if (x.is_number()) {
      a.kind = store::AttrValue::Kind::kDouble;
      a.d = x.get<double>();
    } else if (x.is_string()) {
      a.kind = store::AttrValue::Kind::kString;
      a.s = x.get<std::string>();
    } else {
      *err = "field \"" + name + "." + it.key() + "\" must be a scalar (not an object or array)";
      return false;
    }
    (*out)[it.key()] = std::move(a);
  }
  return true;
}

json AttrToJson(const store::AttrValue& a) {
  switch (a.kind) {
    case store::AttrValue::Kind::kNull: return nullptr;
    case store::AttrValue::Kind::kBool: return a.b;
    case store::AttrValue::Kind::kInt: return a.i;
    case store::AttrValue::Kind::kDouble: return a.d;
    case store::AttrValue::Kind::kString: return std::string(a.s);
  }
  return nullptr;
}

json AttrsToJson(const store::AttrsView& v) {
  json o = json::object();
  v.ForEach([&](std::string_view k, const store::AttrValue& a) { o[std::string(k)] = AttrToJson(a); });
  return o;
}

json ListToJson(const store::StringListView& v) {
  json a = json::array();
  v.ForEach([&](std::string_view s) { a.push_back(std::string(s)); });
  return a;
}

}  // namespace

bool ParseImportObject(const json& obj, ImportLine* out, std::string* err) {
  *out = ImportLine();
  if (!obj.is_object()) {
    *err = "expected a JSON object";
    return false;
  }
  if (!obj.contains("type") || !obj["type"].is_string()) {
    *err = "missing \"type\" (user | org | org_member | workspace | workspace_member)";
    return false;
  }
  const std::string type = obj["type"].get<std::string>();
  const TypeSpec* spec = nullptr;
  for (const auto& t : Types()) {
    if (type == t.type) spec = &t;
  }
  if (!spec) {
    *err = "unknown type \"" + type + "\" (user | org | org_member | workspace | workspace_member)";
    return false;
  }
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (it.key() == "type") continue;
    if (!spec->required.count(it.key()) && !spec->optional.count(it.key())) {
      *err = "unknown field \"" + it.key() + "\" for type " + type;
      return false;
    }
  }
  for (const auto& r : spec->required) {
    if (!obj.contains(r)) {
      *err = type + ": missing \"" + r + "\"";
      return false;
    }
  }
  ImportRecord& rec = out->record;
  store::WriteRequest& f = rec.fields;
  rec.kind = spec->kind;
  f.op = "import";
  auto has = [&](const char* k) { return obj.contains(k); };
  switch (spec->kind) {
    case ImportRecord::Kind::kUser: {
      if (!GetString(obj, "user", &f.user, err) || !GetString(obj, "email", &f.email, err))
        return false;
      if (has("email_verified") && !GetBool(obj, "email_verified", &rec.email_verified, err))
        return false;
      if (has("org_allowance")) {
        int64_t n;
        if (!GetInt(obj, "org_allowance", &n, err)) return false;
        f.allowance = n;
      }
      return true;
    }
    case ImportRecord::Kind::kOrg: {
      if (!GetString(obj, "org", &f.org, err) || !GetString(obj, "name", &f.name, err) ||
          !GetString(obj, "creator", &f.user, err))
        return false;
      std::string s;
      if (has("plan")) {
        if (!GetString(obj, "plan", &s, err)) return false;
        f.plan = s;
      }
      if (has("status")) {
        if (!GetString(obj, "status", &s, err)) return false;
        f.status = s;
      }
      int64_t n;
      if (has("seats")) {
        if (!GetInt(obj, "seats", &n, err)) return false;
        f.seats = n;
      }
      if (has("workspace_limit")) {
        if (!GetInt(obj, "workspace_limit", &n, err)) return false;
        f.workspace_limit = n;
      }
      if (has("features")) {
        std::vector<std::string> v;
        if (!GetStringList(obj["features"], "features", &v, err)) return false;
        f.features = std::move(v);
      }
      if (has("billing")) {
        store::AttrMap m;
        if (!GetAttrs(obj["billing"], "billing", &m, err)) return false;
        f.billing = std::move(m);
      }
      if (has("attrs")) {
        store::AttrMap m;
        if (!GetAttrs(obj["attrs"], "attrs", &m, err)) return false;
        f.attrs = std::move(m);
      }
      if (has("sso")) {
        const json& sso = obj["sso"];
        if (!sso.is_object()) {
          *err = "field \"sso\" must be an object {enabled, enforced, idp, exempt_roles}";
          return false;
        }
        store::SsoSettings st;
        for (auto it = sso.begin(); it != sso.end(); ++it) {
          const std::string& k = it.key();
          if (k == "enabled" || k == "enforced") {
            if (!it->is_boolean()) {
              *err = "field \"sso." + k + "\" must be true or false";
              return false;
            }
            (k == "enabled" ? st.enabled : st.enforced) = it->get<bool>();
          } else if (k == "idp") {
            if (!it->is_string()) {
              *err = "field \"sso.idp\" must be a string";
              return false;
            }
            st.idp = it->get<std::string>();
          } else if (k == "exempt_roles") {
            std::vector<std::string> v;
            if (!GetStringList(*it, "sso.exempt_roles", &v, err)) return false;
            st.exempt_roles = std::move(v);
          } else {
            *err = "unknown field \"sso." + k + "\"";
            return false;
          }
        }
        f.sso = std::move(st);
      }
      if (has("suspended") && !GetBool(obj, "suspended", &out->suspended, err)) return false;
      return true;
    }
    case ImportRecord::Kind::kOrgMember:
      return GetString(obj, "org", &f.org, err) && GetString(obj, "user", &f.user, err) &&
             GetString(obj, "role", &f.role, err);
    case ImportRecord::Kind::kWorkspace: {
      if (!GetString(obj, "workspace", &f.workspace, err) || !GetString(obj, "org", &f.org, err) ||
          !GetString(obj, "name", &f.name, err))
        return false;
      if (has("attrs")) {
        store::AttrMap m;
        if (!GetAttrs(obj["attrs"], "attrs", &m, err)) return false;
        f.attrs = std::move(m);
      }
      return true;
    }
    case ImportRecord::Kind::kWorkspaceMember: {
      if (!GetString(obj, "workspace", &f.workspace, err) ||
          !GetString(obj, "user", &f.user, err) || !GetString(obj, "role", &f.role, err))
        return false;
      if (has("team") && !GetString(obj, "team", &f.team, err)) return false;
      if (has("restrictions")) {
        const json& r = obj["restrictions"];
        if (!r.is_object()) {
          *err = "field \"restrictions\" must be an object, e.g. {\"no_data_export\":true} or "
                 "{\"contact_visibility\":\"assigned_only\"}";
          return false;
        }
        std::map<std::string, std::string> m;
        for (auto it = r.begin(); it != r.end(); ++it) {
          if (it->is_boolean()) {
            m[it.key()] = it->get<bool>() ? "true" : "false";
          } else if (it->is_string()) {
            m[it.key()] = it->get<std::string>();
          } else {
            *err = "field \"restrictions." + it.key() + "\" must be true/false or a string";
            return false;
          }
        }
        f.restrictions = std::move(m);
      }
      return true;
    }
  }
  *err = "internal: unhandled type";
  return false;
}

bool ParseImportStream(std::istream& in, std::vector<ImportLine>* out,
                       std::vector<std::string>* errors, size_t max_errors) {
  out->clear();
  std::string line;
  size_t lineno = 0;
  bool ok = true;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json obj = json::parse(line, nullptr, /*allow_exceptions=*/false);
    ImportLine parsed;
    std::string err;
    if (obj.is_discarded()) {
      err = "not valid JSON";
    } else if (ParseImportObject(obj, &parsed, &err)) {
      parsed.line = lineno;
      out->push_back(std::move(parsed));
      continue;
    }
    ok = false;
    if (errors->size() < max_errors) errors->push_back(std::to_string(lineno) + ": " + err);
  }
  return ok;
}

store::Status ImportInto(store::Store* st, const std::vector<ImportLine>& lines,
                         store::ImportStats* stats, size_t* suspended) {
  std::vector<store::ImportRecord> records;
  records.reserve(lines.size());
  for (const auto& l : lines) records.push_back(l.record);
  store::Status s = st->Import(records, stats);
  *suspended = 0;
  if (!s.ok()) {
    // The store names records by index ("import record 7: ..."); name the input line instead.
    const std::string& m = s.message();
    static constexpr std::string_view kPrefix = "import record ";
    if (m.rfind(kPrefix, 0) == 0) {
      size_t idx = std::strtoul(m.c_str() + kPrefix.size(), nullptr, 10);
      size_t colon = m.find(": ");
      if (idx < lines.size() && lines[idx].line > 0 && colon != std::string::npos) {
        return store::Status(s.code(), "line " + std::to_string(lines[idx].line) + ": " +
                                           m.substr(colon + 2), s.invariant());
      }
    }
    return s;
  }
  for (const auto& l : lines) {
    if (!l.suspended) continue;
    store::WriteRequest w;
    w.op = "org.suspend";
    w.org = l.record.fields.org;
    store::WriteResult r = st->Write(std::move(w));
    if (!r.status.ok()) {
      return store::Status(r.status.code(),
                           "suspending org \"" + l.record.fields.org + "\": " + r.status.message());
    }
    ++*suspended;
  }
  return s;
}

json UserToJson(const store::UserView& u) {
  return json{{"type", "user"},
              {"user", std::string(u.id)},
              {"email", std::string(u.email)},
              {"email_verified", u.email_verified},
              {"org_allowance", u.org_allowance}};
}

json OrgToJson(const store::OrgView& o) {
  json sso{{"enabled", o.sso.enabled},
           {"enforced", o.sso.enforced},
           {"idp", std::string(o.sso.idp)},
           {"exempt_roles", ListToJson(o.sso.exempt_roles)}};
  json j{{"type", "org"},
         {"org", std::string(o.id)},
         {"name", std::string(o.name)},
         {"creator", std::string(o.creator)},
         {"plan", std::string(o.plan)},
         {"status", std::string(o.status)},
         {"seats", o.seats},
         {"workspace_limit", o.workspace_limit},
         {"features", ListToJson(o.features)},
         {"billing", AttrsToJson(o.billing)},
         {"sso", sso},
         {"attrs", AttrsToJson(o.attrs)}};
  if (o.suspended) j["suspended"] = true;
  return j;
}

json WorkspaceToJson(const store::WorkspaceView& w) {
  return json{{"type", "workspace"},
              {"workspace", std::string(w.id)},
              {"org", std::string(w.org)},
              {"name", std::string(w.name)},
              {"attrs", AttrsToJson(w.attrs)}};
}

json WorkspaceMemberToJson(const store::WorkspaceMemberView& m) {
  json j{{"type", "workspace_member"},
         {"workspace", std::string(m.workspace)},
         {"user", std::string(m.user)},
         {"role", std::string(m.role)}};
  if (!m.team.empty()) j["team"] = std::string(m.team);
  json r = json::object();
  m.flags.ForEach([&](std::string_view f) { r[std::string(f)] = true; });
  if (!m.contact_visibility.empty() && m.contact_visibility != "all")
    r["contact_visibility"] = std::string(m.contact_visibility);
  if (!r.empty()) j["restrictions"] = r;
  return j;
}

store::Status ExportFrom(store::Reader* reader, std::FILE* out, size_t* lines) {
  *lines = 0;
  constexpr size_t kPage = 1000;
  auto emit = [&](const json& j) {
    std::string s = j.dump();
    s.push_back('\n');
    std::fwrite(s.data(), 1, s.size(), out);
    ++*lines;
  };
  auto fail = [&](const std::string& what) {
    return store::Status(store::Code::kInternal, "export: reading " + what + " failed");
  };
  std::string cursor, next;
  // Users.
  do {
    std::vector<store::UserView> users;
    if (!reader->ListUsers(cursor, kPage, &users, &next)) return fail("users");
    for (const auto& u : users) emit(UserToJson(u));
    cursor = next;
  } while (!cursor.empty());
  // Orgs, each followed by its members, workspaces and workspace members. Org ids are collected
  // first: the views of a page are only valid until the next list call.
  std::vector<std::string> org_ids;
  do {
    std::vector<store::OrgView> orgs;
    if (!reader->ListOrgs(cursor, kPage, &orgs, &next)) return fail("orgs");
    for (const auto& o : orgs) org_ids.emplace_back(o.id);
    cursor = next;
  } while (!cursor.empty());
  for (const std::string& org_id : org_ids) {
    store::OrgView o;
    if (!reader->GetOrg(org_id, &o)) return fail("org " + org_id);
    emit(OrgToJson(o));
    do {
      std::vector<store::OrgMemberView> members;
      if (!reader->ListOrgMembers(org_id, cursor, kPage, &members, &next))
        return fail("members of org " + org_id);
      for (const auto& m : members) {
        emit(json{{"type", "org_member"},
                  {"org", std::string(m.org)},
                  {"user", std::string(m.user)},
                  {"role", std::string(m.role)}});
      }
      cursor = next;
    } while (!cursor.empty());
    std::vector<store::WorkspaceView> wss;
    if (!reader->ListWorkspacesOfOrg(org_id, &wss)) return fail("workspaces of org " + org_id);
    std::vector<std::string> ws_ids;
    for (const auto& w : wss) {
      emit(WorkspaceToJson(w));
      ws_ids.emplace_back(w.id);
    }
    for (const std::string& ws : ws_ids) {
      do {
        std::vector<store::WorkspaceMemberView> members;
        if (!reader->ListWorkspaceMembers(ws, cursor, kPage, &members, &next))
          return fail("members of workspace " + ws);
        for (const auto& m : members) emit(WorkspaceMemberToJson(m));
        cursor = next;
      } while (!cursor.empty());
    }
  }
  if (std::ferror(out)) return store::Status(store::Code::kInternal, "export: write error");
  if (reader->error()) return fail("the store");
  return store::Status::Ok();
}

}  // namespace gatehouse::daemon::cli
