// Writes seed inputs for fuzz_store_decode: well-formed KV snapshots built with the store's own
// encoders (store/internal/records.h), in the fuzzer's input format
// [table byte][varint key len][key][varint value len][value]...
// Usage: make_store_seeds OUT_DIR
#include <cstdio>
#include <string>
#include <vector>

#include "store/internal/coding.h"
#include "store/internal/kv.h"
#include "store/internal/records.h"

namespace gi = gatehouse::store::internal;
namespace gs = gatehouse::store;

namespace {

void Entry(std::string* out, gi::Table t, const std::string& k, const std::string& v) {
  out->push_back(static_cast<char>(t));
  gi::PutLengthPrefixed(out, k);
  gi::PutLengthPrefixed(out, v);
}

std::string Kp(const std::string& a, const std::string& b) {
  std::string k;
  gi::PutKeyPart(&k, a);
  k += b;
  return k;
}

void Write(const std::string& dir, const std::string& name, const std::string& data) {
  std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return;
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string dir = argv[1];
  gi::UserRec u{"u1", "U1@example.com", true, 2, 1};
  gi::OrgRec o;
  o.id = "o1", o.name = "Org", o.creator = "u1", o.plan = "pro", o.status = "ACTIVE";
  o.seats = 10, o.workspace_limit = 5;
  o.features = gi::EncodeStringList({"sso", "webhooks"});
  gs::AttrMap attrs;
  attrs["region"].kind = gs::AttrValue::Kind::kString, attrs["region"].s = "eu";
  attrs["tier"].kind = gs::AttrValue::Kind::kInt, attrs["tier"].i = 3;
  attrs["vip"].kind = gs::AttrValue::Kind::kBool, attrs["vip"].b = true;
  attrs["ratio"].kind = gs::AttrValue::Kind::kDouble, attrs["ratio"].d = 0.5;
  attrs["none"].kind = gs::AttrValue::Kind::kNull;
  o.attrs = gi::EncodeAttrs(attrs);
  o.billing = gi::EncodeAttrs(attrs);
  o.sso_enabled = o.sso_enforced = true, o.sso_idp = "idp-1";
  o.sso_exempt = gi::EncodeStringList({"org_admin", "user_admin"});
  o.members = 2, o.workspaces = 1, o.admins = 1, o.pending = 1;
  gi::WorkspaceRec w{"w1", "o1", "My Workspace", gi::EncodeAttrs(attrs), 2};
  gi::OrgMemberRec om{"u1", "o1", "org_admin"};
  gi::WsMemberRec wm{"u2", "w1", "o1", "manager", "t1",
                     gi::EncodeStringList({"no_ws_settings"}), ""};
  gi::WsMemberRec wa{"u3", "w1", "o1", "agent", "", "", "assigned_only"};
  gi::InvitationRec inv;
  inv.id = "i1", inv.org = "o1", inv.email = "x@example.com", inv.role = "member";
  inv.state = "PENDING", inv.expires_at = 1700600000, inv.created_at = 1700000000;
  inv.invited_by = "u1";
  gi::AppendGrant(&inv.grants, "w1", "agent");
  inv.token_hash = std::string(32, 'h');

  std::string rev;
  gi::PutBigEndian64(&rev, 7);
  std::string chkey;
  gi::PutBigEndian64(&chkey, 7);

  std::string all;
  Entry(&all, gi::Table::kMeta, "rev", rev);
  Entry(&all, gi::Table::kUsers, "u1", gi::EncodeUser(u));
  Entry(&all, gi::Table::kEmails, "u1@example.com", "u1");
  Entry(&all, gi::Table::kOrgs, "o1", gi::EncodeOrg(o));
  Entry(&all, gi::Table::kOrgMembers, Kp("o1", "u1"), gi::EncodeOrgMember(om));
  Entry(&all, gi::Table::kUserOrgs, Kp("u1", "o1"), "");
  Entry(&all, gi::Table::kWorkspaces, "w1", gi::EncodeWorkspace(w));
  Entry(&all, gi::Table::kOrgWorkspaces, Kp("o1", "w1"), "");
  Entry(&all, gi::Table::kWsMembers, Kp("w1", "u2"), gi::EncodeWsMember(wm));
  Entry(&all, gi::Table::kWsMembers, Kp("w1", "u3"), gi::EncodeWsMember(wa));
  Entry(&all, gi::Table::kUserWorkspaces, Kp("u2", Kp("o1", "w1")), "");
  Entry(&all, gi::Table::kInvitations, "i1", gi::EncodeInvitation(inv));
  Entry(&all, gi::Table::kOrgInvitations, Kp("o1", "i1"), "");
  Entry(&all, gi::Table::kInvTokens, std::string(32, 'h'), "i1");
  Entry(&all, gi::Table::kInvPending, Kp("o1", "x@example.com"), "i1");
  Entry(&all, gi::Table::kChanges, chkey, "{\"rev\":7,\"op\":\"org.create\",\"actor\":null}");
  Write(dir, "world", all);

  // One record per seed, so mutations stay focused.
  int n = 0;
  std::string_view in(all);
  while (!in.empty()) {
    std::string_view k, v;
    uint8_t t;
    if (!gi::GetByte(&in, &t) || !gi::GetLengthPrefixed(&in, &k) ||
        !gi::GetLengthPrefixed(&in, &v)) {
      break;
    }
    std::string one;
    Entry(&one, static_cast<gi::Table>(t), std::string(k), std::string(v));
    Write(dir, "record_" + std::to_string(n++), one);
  }
  std::string trunc = all.substr(0, all.size() / 2);
  Write(dir, "truncated", trunc);
  std::printf("wrote %d seeds to %s\n", n + 2, dir.c_str());
  return 0;
}
