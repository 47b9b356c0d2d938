#include "bench/loadgen/world.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace gatehouse::bench {

const char* const kFlagNames[4] = {"no_ws_settings", "no_contact_delete", "no_data_export",
                                   "no_integrations"};

namespace {

const char* const kOrgActions[] = {
    // org.view is weighted up: it is what every UI asks first.
    "org.view", "org.view", "org.view", "org.view", "org.view", "org.view",
    "org.view", "org.view", "org.view", "org.view", "org.view", "org.view",
    "org.settings.open", "org.settings.general.view", "org.settings.general.manage",
    "org.delete", "org.users.view", "org.users.invite", "org.users.remove",
    "org.users.role.assign", "org.users.export", "org.workspaces.view", "workspace.create",
    "workspace.update", "workspace.delete", "org.workspace.members.manage", "org.billing.view",
    "org.billing.manage", "org.billing.waba.manage", "org.subscription.change",
    "org.subscription.cancel", "org.security.view", "org.security.sso.manage",
    "org.knowledge.manage", "org.audit_log.view"};

// Workspace actions, weighted towards what agents do all day.
const char* const kWsActions[] = {
    "workspace.access", "workspace.access", "workspace.access", "workspace.access",
    "workspace.access", "snippet.use", "conversation.view", "conversation.reply",
    "conversation.view", "conversation.view", "conversation.reply", "conversation.reply",
    "conversation.assign", "conversation.comment", "conversation.view_all", "contact.view",
    "contact.edit", "contact.delete", "contact.export", "data.export",
    "workspace.settings.view", "workspace.settings.manage", "workspace.users.view",
    "workspace.users.invite", "workspace.users.remove", "workspace.teams.manage",
    "workspace.teams.delete", "workspace.channels.delete", "webhook.manage",
    "developer_api.manage", "broadcast.manage", "report.view", "knowledge_source.view"};

template <size_t N>
const char* Pick(const char* const (&a)[N], uint64_t h) {
  return a[h % N];
}

bool StartsWith(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

void AppendEscaped(std::string* out, const std::string& s) {
  // Ids here are [a-z0-9_.-]; no escaping needed, but keep the quote handling honest.
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

void Field(std::string* out, const char* key, const std::string& v, bool* first) {
  if (!*first) out->push_back(',');
  *first = false;
  out->push_back('"');
  out->append(key);
  out->append("\":");
  AppendEscaped(out, v);
}

}  // namespace

World::World(uint64_t memberships, uint64_t seed) : seed_(seed) {
  users_ = std::max<uint64_t>(memberships / (1 + kWsPerUser), 64);
  orgs_ = std::max<uint64_t>(users_ / 50, 1);
}

std::string World::UserId(uint64_t i) const {
  char b[32];
  snprintf(b, sizeof b, "u%08" PRIu64, i);
  return b;
}
std::string World::OrgId(uint64_t g) const {
  char b[32];
  snprintf(b, sizeof b, "o%07" PRIu64, g);
  return b;
}
std::string World::WsId(uint64_t g, int k) const {
  char b[40];
  snprintf(b, sizeof b, "w%07" PRIu64 "-%d", g, k);
  return b;
}

OrgInfo World::Org(uint64_t g) const {
  const uint64_t h = H(seed_ ^ 0x0a, g);
  OrgInfo o;
  o.locked = h % 100 < 3;
  o.sso_enforced = (h >> 8) % 100 < 20;
  o.features = (h >> 16) % 2 == 0;
  return o;
}

std::string World::OrgRole(uint64_t user) const {
  if (user < orgs_) return "org_admin";  // the creator
  const uint64_t h = H(seed_ ^ 0x0b, user) % 100;
  if (h < 4) return "org_admin";
  if (h < 8) return "billing_admin";
  if (h < 16) return "user_admin";
  return "member";
}

WsMemberInfo World::WsMember(uint64_t user, int k) const {
  WsMemberInfo m;
  const int d = ((k - FirstWs(user)) % kWsPerOrg + kWsPerOrg) % kWsPerOrg;
  if (d >= kWsPerUser) return m;
  m.member = true;
  const uint64_t h = H(seed_ ^ (0x100 + k), user);
  const uint64_t r = h % 100;
  if (r < 10) {
    m.role = "owner";
  } else if (r < 40) {
    m.role = "manager";
    for (int f = 0; f < 4; ++f) m.flags[f] = (h >> (8 + 8 * f)) % 100 < 15;
  } else {
    m.role = "agent";
    m.team = "t" + std::to_string((h >> 8) % 4);
    const uint64_t v = (h >> 16) % 10;
    m.visibility = v < 4   ? "all"
                   : v < 6 ? "assigned_only"
                   : v < 8 ? "assigned_or_unassigned"
                           : "assigned_or_team";
  }
  return m;
}

store::Status World::Import(store::Store* s, store::ImportStats* total, size_t chunk) const {
  using store::ImportRecord;
  std::vector<ImportRecord> recs;
  recs.reserve(chunk);
  *total = {};
  store::Status st;
  auto flush = [&] {
    if (recs.empty() || !st.ok()) return;
    store::ImportStats one;
    st = s->Import(recs, &one, chunk);
    total->records += one.records;
    total->memberships += one.memberships;
    total->seconds += one.seconds;
    total->store_bytes = one.store_bytes;
    recs.clear();
  };
  auto add = [&](ImportRecord&& r) {
    recs.push_back(std::move(r));
    if (recs.size() >= chunk) flush();
  };
  auto rec = [](ImportRecord::Kind k) {
    ImportRecord r;
    r.kind = k;
    r.email_verified = true;
    return r;
  };
  for (uint64_t i = 0; i < users_ && st.ok(); ++i) {
    auto r = rec(ImportRecord::Kind::kUser);
    r.fields.user = UserId(i);
    r.fields.email = r.fields.user + "@example.com";
    add(std::move(r));
  }
  flush();
  for (uint64_t g = 0; g < orgs_ && st.ok(); ++g) {
    const OrgInfo info = Org(g);
    auto r = rec(ImportRecord::Kind::kOrg);
    r.fields.org = OrgId(g);
    r.fields.name = "Org " + std::to_string(g);
    r.fields.user = UserId(g);  // creator
    r.fields.status = info.locked ? "TRIAL_ENDED" : "ACTIVE";
    r.fields.plan = "growth";
    r.fields.seats = 1000;
    r.fields.workspace_limit = 10;
    if (info.features) r.fields.features = std::vector<std::string>{"sso", "webhooks"};
    if (info.sso_enforced) {
      store::SsoSettings sso;
      sso.enabled = true;
      sso.enforced = true;
      sso.idp = "idp-" + std::to_string(g);
      r.fields.sso = sso;
    }
    add(std::move(r));
    for (int k = 0; k < kWsPerOrg; ++k) {
      auto w = rec(ImportRecord::Kind::kWorkspace);
      w.fields.workspace = WsId(g, k);
      w.fields.org = OrgId(g);
      w.fields.name = "Workspace " + std::to_string(k);
      add(std::move(w));
    }
  }
  flush();
  for (uint64_t g = 0; g < orgs_ && st.ok(); ++g) {
    for (uint64_t i = g; i < users_; i += orgs_) {
      auto r = rec(ImportRecord::Kind::kOrgMember);
      r.fields.org = OrgId(g);
      r.fields.user = UserId(i);
      r.fields.role = OrgRole(i);
      add(std::move(r));
    }
  }
  flush();
  for (uint64_t g = 0; g < orgs_ && st.ok(); ++g) {
    for (int k = 0; k < kWsPerOrg; ++k) {
      for (uint64_t i = g; i < users_; i += orgs_) {
        WsMemberInfo m = WsMember(i, k);
        if (!m.member) continue;
        auto r = rec(ImportRecord::Kind::kWorkspaceMember);
        r.fields.workspace = WsId(g, k);
        r.fields.user = UserId(i);
        r.fields.role = m.role;
        r.fields.team = m.team;
        if (m.role == "manager") {
          std::map<std::string, std::string> fl;
          for (int f = 0; f < 4; ++f) {
            if (m.flags[f]) fl[kFlagNames[f]] = "true";
          }
          if (!fl.empty()) r.fields.restrictions = std::move(fl);
        } else if (m.role == "agent") {
          r.fields.restrictions = std::map<std::string, std::string>{{"contact_visibility", m.visibility}};
        }
        add(std::move(r));
      }
    }
  }
  flush();
  return st;
}

void World::AddResourceAndContext(uint64_t r, uint64_t i, uint64_t rg, Req* qp) const {
  Req& q = *qp;
  // Resources.
  const uint64_t h3 = H(seed_ ^ 0x5eef, r);
  if (StartsWith(q.action, "conversation.") || StartsWith(q.action, "contact.")) {
    q.res_type = StartsWith(q.action, "conversation.") ? "conversation" : "contact";
    q.res_id = "c" + std::to_string(r);
    const uint64_t a = h3 % 3;
    if (a == 0) {
      q.assignee = q.user;
      q.has_assignee = true;
    } else if (a == 1) {
      q.assignee = UserId((i + 1 + (h3 >> 8) % 97) % users_);
      q.has_assignee = true;
    }
    q.team = "t" + std::to_string((h3 >> 16) % 4);
  } else if (StartsWith(q.action, "org.users.") || StartsWith(q.action, "workspace.users.")) {
    q.res_type = "user";
    q.target_user = UserId((i + orgs_) % users_);  // a colleague in the same org
    q.res_id = q.target_user;
    const bool ws = StartsWith(q.action, "workspace.");
    q.target_role = ws ? ((h3 % 3) ? "agent" : "manager") : "member";
    if (q.action.find("invite") != std::string::npos ||
        q.action.find("role.") != std::string::npos) {
      q.new_role = ws ? ((h3 >> 8) % 3 ? "agent" : "manager")
                      : ((h3 >> 8) % 4 ? "member" : "billing_admin");
    }
  }
  const OrgInfo oi = Org(rg);
  if (oi.sso_enforced && (h3 >> 24) % 100 < 80) {
    q.auth_method = "sso";
    q.auth_idp = "idp-" + std::to_string(rg);
    q.auth_age_s = 600 + static_cast<int64_t>((h3 >> 32) % 3600);
  } else {
    q.auth_method = "password";
  }
}

Req World::MakeRequest(uint64_t r, Facts* facts) const {
  Req q;
  const uint64_t h = H(seed_ ^ 0x5eed, r);
  const uint64_t i = h % users_;
  const uint64_t g = OrgOf(i);
  q.user = UserId(i);
  const uint64_t kind = (h >> 32) % 100;
  const uint64_t h2 = H(seed_ ^ 0x5eee, r);
  uint64_t rg = g;  // resolved org
  int k = -1;
  if (kind < 22) {
    q.action = Pick(kOrgActions, h2);
    q.org = OrgId(g);
  } else {
    q.action = Pick(kWsActions, h2);
    if (kind < 88) {
      k = (FirstWs(i) + static_cast<int>((h2 >> 20) % kWsPerUser)) % kWsPerOrg;  // member
    } else if (kind < 96) {
      k = (FirstWs(i) + kWsPerUser + static_cast<int>((h2 >> 20) % 2)) % kWsPerOrg;  // not member
    } else {
      rg = orgs_ > 1 ? (g + 1 + (h2 >> 24) % (orgs_ - 1)) % orgs_ : g;  // another org
      k = static_cast<int>((h2 >> 20) % kWsPerOrg);
    }
    q.workspace = WsId(rg, k);
  }
  AddResourceAndContext(r, i, rg, &q);
  const OrgInfo oi = Org(rg);
  if (facts) {
    *facts = {};
    facts->org = oi;
    facts->resolved_org = OrgId(rg);
    if (oi.sso_enforced) facts->sso_idp = "idp-" + std::to_string(rg);
    facts->workspace_scoped = k >= 0;
    if (rg == g) {
      facts->org_role = OrgRole(i);
      if (k >= 0) facts->ws = WsMember(i, k);
    }
  }
  return q;
}

Req World::MakeUserRequest(uint64_t b, int k) const {
  Req q;
  const uint64_t i = H(seed_ ^ 0xba7c, b) % users_;
  const uint64_t g = OrgOf(i);
  q.user = UserId(i);
  const uint64_t h = H(H(seed_ ^ 0xba7d, b), static_cast<uint64_t>(k));
  if (h % 100 < 25) {
    q.action = Pick(kOrgActions, h >> 8);
    q.org = OrgId(g);
  } else {
    q.action = Pick(kWsActions, h >> 8);
    q.workspace = WsId(g, (FirstWs(i) + static_cast<int>(b % kWsPerUser)) % kWsPerOrg);
  }
  // Resource numbers far from the single-request stream's.
  const uint64_t base = (uint64_t{1} << 40) + b * 1000;
  AddResourceAndContext(base + static_cast<uint64_t>(k), i, g, &q);
  // One session per batch: every check carries the context of the batch's first.
  Req first;
  AddResourceAndContext(base, i, g, &first);
  q.auth_method = first.auth_method;
  q.auth_idp = first.auth_idp;
  q.auth_age_s = first.auth_age_s;
  return q;
}

void AppendCheckJson(const Req& q, bool item, uint64_t id, std::string* out) {
  bool first = true;
  out->push_back('{');
  if (!item) {
    out->append("\"id\":");
    out->append(std::to_string(id));
    out->append(",\"op\":\"check\"");
    first = false;
  }
  Field(out, "user", q.user, &first);
  Field(out, "action", q.action, &first);
  if (!q.org.empty()) Field(out, "org", q.org, &first);
  if (!q.workspace.empty()) Field(out, "workspace", q.workspace, &first);
  if (!q.res_type.empty()) {
    out->append(",\"resource\":{");
    bool f2 = true;
    Field(out, "type", q.res_type, &f2);
    Field(out, "id", q.res_id, &f2);
    out->append(",\"attrs\":{");
    bool f3 = true;
    if (q.has_assignee) Field(out, "assignee", q.assignee, &f3);
    if (!q.team.empty()) Field(out, "team", q.team, &f3);
    if (!q.target_user.empty()) Field(out, "target_user", q.target_user, &f3);
    if (!q.target_role.empty()) Field(out, "target_role", q.target_role, &f3);
    if (!q.new_role.empty()) Field(out, "new_role", q.new_role, &f3);
    out->append("}}");
  }
  out->append(",\"context\":{\"auth\":{");
  bool f4 = true;
  Field(out, "method", q.auth_method, &f4);
  if (!q.auth_idp.empty()) Field(out, "idp", q.auth_idp, &f4);
  if (q.auth_age_s >= 0) {
    out->append(",\"age_s\":");
    out->append(std::to_string(q.auth_age_s));
  }
  out->append("}}}");
}

void AppendCerbosJson(const Req& q, const World::Facts& f, uint64_t id, std::string* out) {
  bool first = true;
  out->append("{\"requestId\":\"");
  out->append(std::to_string(id));
  out->append("\",\"principal\":{\"id\":");
  AppendEscaped(out, q.user);
  out->append(",\"roles\":[\"user\"],\"attr\":{");
  Field(out, "org_role", f.org_role, &first);
  Field(out, "ws_role", f.ws.role, &first);
  Field(out, "team", f.ws.team, &first);
  Field(out, "visibility", f.ws.visibility, &first);
  out->append(",\"flags\":[");
  bool ff = true;
  for (int i = 0; i < 4; ++i) {
    if (!f.ws.flags[i]) continue;
    if (!ff) out->push_back(',');
    ff = false;
    out->push_back('"');
    out->append(kFlagNames[i]);
    out->push_back('"');
  }
  out->push_back(']');
  Field(out, "auth_method", q.auth_method, &first);
  Field(out, "auth_idp", q.auth_idp, &first);
  out->append(",\"auth_age_s\":");
  out->append(std::to_string(q.auth_age_s));
  out->append("}},\"resources\":[{\"actions\":[");
  AppendEscaped(out, q.action);
  out->append("],\"resource\":{\"kind\":");
  out->append(f.workspace_scoped ? "\"workspace\"" : "\"org\"");
  out->append(",\"id\":");
  AppendEscaped(out, q.workspace.empty() ? q.org : q.workspace);
  out->append(",\"attr\":{");
  first = true;
  Field(out, "org", f.resolved_org, &first);
  Field(out, "org_status", f.org.locked ? "TRIAL_ENDED" : "ACTIVE", &first);
  out->append(",\"org_suspended\":false");
  out->append(f.org.sso_enforced ? ",\"sso_enforced\":true" : ",\"sso_enforced\":false");
  Field(out, "sso_idp", f.sso_idp, &first);
  out->append(",\"sso_exempt_roles\":[\"org_admin\",\"user_admin\"]");
  out->append(f.org.features ? ",\"features\":[\"sso\",\"webhooks\"]" : ",\"features\":[]");
  out->append(",\"members_and_pending\":50,\"seats\":1000,\"workspaces\":5,\"workspace_limit\":10");
  Field(out, "assignee", q.assignee, &first);
  out->append(q.has_assignee ? ",\"has_assignee\":true" : ",\"has_assignee\":false");
  Field(out, "team", q.team, &first);
  Field(out, "target_user", q.target_user, &first);
  Field(out, "target_role", q.target_role, &first);
  Field(out, "new_role", q.new_role, &first);
  out->append("}}}]}");
}

}  // namespace gatehouse::bench
