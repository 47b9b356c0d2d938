// Helpers shared by the store tests: temp dirs, backends, request builders, state dumps.
// Thread-safety: test-only helpers; use from the test thread unless noted.
#ifndef GATEHOUSE_STORE_STORE_TEST_UTIL_H_
#define GATEHOUSE_STORE_STORE_TEST_UTIL_H_

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "store/memory_store.h"
#include "store/store.h"

namespace gatehouse::store::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/gh_store_test_XXXXXX";
    char* p = mkdtemp(tmpl);
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline WriteRequest R(std::string op, std::initializer_list<std::pair<const char*, std::string>> f = {}) {
  WriteRequest r;
  r.op = std::move(op);
  for (const auto& [k, v] : f) {
    const std::string key = k;
    if (key == "user") r.user = v;
    else if (key == "org") r.org = v;
    else if (key == "workspace") r.workspace = v;
    else if (key == "invitation") r.invitation = v;
    else if (key == "token") r.token = v;
    else if (key == "email") r.email = v;
    else if (key == "name") r.name = v;
    else if (key == "role") r.role = v;
    else if (key == "team") r.team = v;
    else if (key == "actor") r.actor = v;
    else ADD_FAILURE() << "unknown field " << key;
  }
  return r;
}

// A store of either backend with a settable clock.
struct TestStore {
  std::unique_ptr<TempDir> dir;
  std::shared_ptr<std::atomic<int64_t>> now = std::make_shared<std::atomic<int64_t>>(1'700'000'000);
  std::unique_ptr<Store> store;

  static TestStore Open(const std::string& backend, Options o = {}) {
    TestStore t;
    auto now = t.now;
    o.clock = [now] { return now->load(); };
    o.durable = false;
    Status s;
    if (backend == "memory") {
      s = OpenMemoryStore(o, &t.store);
    } else {
      t.dir = std::make_unique<TempDir>();
      o.path = t.dir->path();
      o.map_size = size_t{64} << 20;
      s = Store::Open(o, &t.store);
    }
    EXPECT_TRUE(s.ok()) << s.ToString();
    return t;
  }
  Store& operator*() { return *store; }
  Store* operator->() { return store.get(); }
};

inline std::string S(std::string_view v) { return std::string(v); }

inline std::string ListStr(StringListView l) {
  std::string out;
  l.ForEach([&](std::string_view s) {
    if (!out.empty()) out += ",";
    out += s;
  });
  return out;
}

// A textual dump of everything reachable from the given users and orgs (for "changes nothing").
inline std::string Dump(Store& st, const std::vector<std::string>& users, const std::vector<std::string>& orgs) {
  auto txn = st.NewReadTxn();
  EXPECT_TRUE(txn->Renew());
  std::string d = "rev=" + std::to_string(txn->Revision()) + "\n";
  for (const auto& u : users) {
    UserView v;
    if (txn->GetUser(u, &v)) {
      d += "user " + S(v.id) + " " + S(v.email) + " v=" + std::to_string(v.email_verified) +
           " allow=" + std::to_string(v.org_allowance) + " created=" + std::to_string(v.orgs_created) + "\n";
    }
    std::vector<OrgMemberView> ms;
    txn->ListOrgsOfUser(u, &ms);
    for (auto& m : ms) d += "  in " + S(m.org) + " as " + S(m.role) + "\n";
  }
  for (const auto& o : orgs) {
    OrgView v;
    if (!txn->GetOrg(o, &v)) {
      d += "org " + o + " absent\n";
      continue;
    }
    d += "org " + S(v.id) + " " + S(v.name) + " " + S(v.status) + " susp=" + std::to_string(v.suspended) +
         " seats=" + std::to_string(v.seats) + " wl=" + std::to_string(v.workspace_limit) +
         " members=" + std::to_string(v.members) + " pending=" + std::to_string(v.pending_invitations) +
         " ws=" + std::to_string(v.workspaces) + " features=" + ListStr(v.features) +
         " sso=" + std::to_string(v.sso.enabled) + std::to_string(v.sso.enforced) + S(v.sso.idp) + "/" +
         ListStr(v.sso.exempt_roles) + " attrs=" + S(v.attrs.encoded()) + "\n";
    std::vector<OrgMemberView> ms;
    std::string next;
    txn->ListOrgMembers(o, "", 1000, &ms, &next);
    for (auto& m : ms) d += "  member " + S(m.user) + " " + S(m.role) + "\n";
    std::vector<WorkspaceView> wss;
    txn->ListWorkspacesOfOrg(o, &wss);
    for (auto& w : wss) {
      d += "  ws " + S(w.id) + " " + S(w.name) + " members=" + std::to_string(w.members) + "\n";
      std::vector<WorkspaceMemberView> wm;
      txn->ListWorkspaceMembers(w.id, "", 1000, &wm, &next);
      for (auto& m : wm) {
        d += "    " + S(m.user) + " " + S(m.role) + " team=" + S(m.team) + " flags=" + ListStr(m.flags) +
             " cv=" + S(m.contact_visibility) + " org_role=" + S(m.org_role) + "\n";
      }
    }
    std::vector<InvitationView> invs;
    txn->ListInvitationsOfOrg(o, &invs);
    for (auto& i : invs) {
      d += "  inv " + S(i.id) + " " + S(i.email) + " " + S(i.role) + " " + S(i.state) + " exp=" +
           std::to_string(i.expires_at) + "\n";
    }
  }
  EXPECT_FALSE(txn->error());
  return d;
}

// Checks the denormalized org role: every workspace membership in the given orgs carries the
// member's org role, equal to their org_members row in the same snapshot. Returns "" when all
// agree, else one line per disagreement.
inline std::string OrgRoleMismatches(Store& st, const std::vector<std::string>& orgs) {
  auto txn = st.NewReadTxn();
  EXPECT_TRUE(txn->Renew());
  std::string bad;
  std::string next;
  for (const auto& o : orgs) {
    std::vector<WorkspaceView> wss;
    txn->ListWorkspacesOfOrg(o, &wss);
    for (auto& w : wss) {
      std::vector<WorkspaceMemberView> wm;
      txn->ListWorkspaceMembers(w.id, "", 100000, &wm, &next);
      for (auto& m : wm) {
        OrgMemberView om;
        const std::string role = txn->GetOrgMember(m.user, o, &om) ? S(om.role) : "<none>";
        WorkspaceMemberView one;  // the point read must agree with the list
        const std::string point = txn->GetWorkspaceMember(m.user, w.id, &one) ? S(one.org_role) : "<none>";
        if (S(m.org_role) != role || point != role || S(m.org) != o) {
          bad += "ws " + S(w.id) + " user " + S(m.user) + ": org_role '" + S(m.org_role) + "' (point '" + point +
                 "'), org_members '" + role + "', org '" + S(m.org) + "'\n";
        }
      }
    }
  }
  EXPECT_FALSE(txn->error());
  return bad;
}

}  // namespace gatehouse::store::testing

#endif  // GATEHOUSE_STORE_STORE_TEST_UTIL_H_
