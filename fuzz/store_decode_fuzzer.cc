// Fuzzes the store's key/value decoding: the record decoders (store/internal/records.h), the
// packed views of store.h (StringListView, AttrsView, grants), and the one Reader
// implementation (KvReader) over a KV snapshot whose keys and values come from the input —
// i.e. what a corrupt or hostile data.mdb would hand the read path. Nothing may crash; a
// successfully decoded record must re-encode and decode to the same view.
//
// Input: a sequence of entries [table byte][varint key len][key][varint value len][value].
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "store/internal/coding.h"
#include "store/internal/kv.h"
#include "store/internal/reader_impl.h"
#include "store/internal/records.h"
#include "store/store.h"

namespace gs = gatehouse::store;
namespace gi = gatehouse::store::internal;

namespace {

class FuzzKv final : public gi::KvRead {
 public:
  std::map<std::string, std::string> tables[gi::kTableCount];

  bool Get(gi::Table t, std::string_view key, std::string_view* stored_key,
           std::string_view* value) noexcept override {
    auto& m = tables[static_cast<int>(t)];
    auto it = m.find(std::string(key));
    if (it == m.end()) return false;
    *stored_key = it->first;
    *value = it->second;
    return true;
  }
  bool Scan(gi::Table t, std::string_view prefix, std::string_view start,
            const gi::ScanFn& fn) override {
    auto& m = tables[static_cast<int>(t)];
    std::string from(start.empty() ? prefix : start);
    for (auto it = m.lower_bound(from); it != m.end(); ++it) {
      if (std::string_view(it->first).substr(0, prefix.size()) != prefix) break;
      if (!fn(it->first, it->second)) break;
    }
    return true;
  }
  bool error() const noexcept override { return false; }
};

class FuzzReader final : public gi::KvReader {
 public:
  FuzzReader(gi::KvRead* kv, const std::function<int64_t()>* clock) : KvReader(kv, clock) {
    LoadRevision();
  }
};

void Touch(std::string_view s) {
  volatile char c = 0;
  for (char x : s) c = static_cast<char>(c ^ x);
  (void)c;
}

void TouchList(gs::StringListView l) {
  (void)l.size();
  (void)l.Contains("org_admin");
  l.ForEach([](std::string_view s) { Touch(s); });
}

void TouchAttrs(gs::AttrsView a) {
  gs::AttrValue v;
  (void)a.Find("k", &v);
  a.ForEach([](std::string_view k, const gs::AttrValue& v) {
    Touch(k);
    if (v.kind == gs::AttrValue::Kind::kString) Touch(v.s);
  });
}

void CheckOrgRoundTrip(const gs::OrgView& v, uint32_t admins) {
  std::string enc = gi::EncodeOrg(gi::ToRec(v, admins));
  gs::OrgView w;
  uint32_t a2 = 0;
  if (!gi::DecodeOrg(v.id, enc, &w, &a2)) __builtin_trap();
  if (w.name != v.name || w.status != v.status || w.seats != v.seats || a2 != admins ||
      w.features.encoded() != v.features.encoded() || w.sso.idp != v.sso.idp) {
    __builtin_trap();
  }
  (void)gi::ToJson(gi::ToRec(v, admins));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 16) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  FuzzKv kv;
  std::vector<std::pair<std::string, std::string>> raw;  // (key, value) for direct decoding
  while (!in.empty() && raw.size() < 64) {
    uint8_t t = 0;
    std::string_view k, v;
    if (!gi::GetByte(&in, &t) || !gi::GetLengthPrefixed(&in, &k) ||
        !gi::GetLengthPrefixed(&in, &v)) {
      break;
    }
    kv.tables[t % gi::kTableCount][std::string(k)] = std::string(v);
    raw.emplace_back(std::string(k), std::string(v));
  }

  // Direct decoders on every (key, value) pair.
  for (const auto& [k, v] : raw) {
    gs::UserView u;
    if (gi::DecodeUser(k, v, &u)) {
      Touch(u.email);
      std::string enc = gi::EncodeUser(gi::ToRec(u));
      gs::UserView u2;
      if (!gi::DecodeUser(k, enc, &u2) || u2.email != u.email ||
          u2.email_verified != u.email_verified || u2.org_allowance != u.org_allowance) {
        __builtin_trap();
      }
      (void)gi::ToJson(gi::ToRec(u));
    }
    gs::OrgView o;
    uint32_t admins = 0;
    if (gi::DecodeOrg(k, v, &o, &admins)) {
      TouchList(o.features);
      TouchList(o.sso.exempt_roles);
      TouchAttrs(o.billing);
      TouchAttrs(o.attrs);
      CheckOrgRoundTrip(o, admins);
    }
    gs::WorkspaceView w;
    if (gi::DecodeWorkspace(k, v, &w)) {
      TouchAttrs(w.attrs);
      (void)gi::ToJson(gi::ToRec(w));
    }
    std::string_view a, b = k;
    if (gi::GetKeyPart(&b, &a)) {
      gs::OrgMemberView om;
      if (gi::DecodeOrgMember(a, b, v, &om)) (void)gi::ToJson(gi::ToRec(om));
      gs::WorkspaceMemberView wm;
      if (gi::DecodeWsMember(a, b, v, &wm)) {
        TouchList(wm.flags);
        (void)gi::ToJson(gi::ToRec(wm));
      }
    }
    gs::InvitationView iv;
    std::string_view hash;
    if (gi::DecodeInvitation(k, v, &iv, &hash)) {
      iv.ForEachGrant([](std::string_view ws, std::string_view role) {
        Touch(ws);
        Touch(role);
      });
      // The token hash never reaches JSON: the JSON must not depend on it at all.
      std::string json = gi::ToJson(gi::ToRec(iv, hash));
      std::string other(hash.size() + 1, '\x5a');
      if (gi::ToJson(gi::ToRec(iv, other)) != json) __builtin_trap();
    }
    (void)gi::StringListJson(v);
    (void)gi::AttrsJson(v);
    TouchList(gs::StringListView(v));
    TouchAttrs(gs::AttrsView(v));
  }

  // The Reader over the whole snapshot.
  std::function<int64_t()> clock = [] { return int64_t{1700000000}; };
  FuzzReader r(&kv, &clock);
  std::vector<std::string> ids = {"u1", "o1", "w1", "i1"};
  for (const auto& [k, v] : raw) {
    if (ids.size() < 24) ids.push_back(k);
    std::string_view a, b = k;
    if (gi::GetKeyPart(&b, &a) && ids.size() < 24) {
      ids.emplace_back(a);
      ids.emplace_back(b);
    }
  }
  for (const auto& id : ids) {
    gs::UserView u;
    gs::OrgView o;
    gs::WorkspaceView w;
    gs::InvitationView iv;
    (void)r.GetUser(id, &u);
    (void)r.FindUserByEmail(id, &u);
    if (r.GetOrg(id, &o)) TouchList(o.features);
    (void)r.GetWorkspace(id, &w);
    (void)r.GetInvitation(id, &iv);
    std::vector<gs::OrgMemberView> om;
    std::vector<gs::WorkspaceMemberView> wm;
    std::vector<gs::WorkspaceView> wv;
    std::vector<gs::InvitationView> inv;
    std::string next;
    (void)r.ListOrgsOfUser(id, &om);
    (void)r.ListOrgMembers(id, "", 5, &om, &next);
    if (!next.empty()) (void)r.ListOrgMembers(id, next, 5, &om, &next);
    (void)r.ListWorkspaceMembers(id, "", 5, &wm, &next);
    if (!next.empty()) (void)r.ListWorkspaceMembers(id, next, 5, &wm, &next);
    (void)r.ListWorkspacesOfOrg(id, &wv);
    (void)r.ListWorkspacesOfUserInOrg(id, "o1", &wm);
    (void)r.ListInvitationsOfOrg(id, &inv);
    for (const auto& id2 : {std::string("u1"), std::string("w1"), std::string("o1")}) {
      gs::OrgMemberView m1;
      gs::WorkspaceMemberView m2;
      (void)r.GetOrgMember(id2, id, &m1);
      (void)r.GetWorkspaceMember(id2, id, &m2);
    }
  }
  std::vector<gs::ChangeView> ch;
  (void)r.ReadChanges(0, 10, &ch);
  std::vector<gs::UserView> us;
  std::vector<gs::OrgView> os;
  std::string next;
  (void)r.ListUsers("", 10, &us, &next);
  (void)r.ListOrgs("", 10, &os, &next);
  return 0;
}
