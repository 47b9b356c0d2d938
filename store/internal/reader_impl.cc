#include "store/internal/reader_impl.h"

#include <atomic>

#include "store/internal/coding.h"
#include "store/internal/records.h"

namespace gatehouse::store::internal {
namespace {

// Splits a composite key kp(a) b.
bool SplitKey(std::string_view key, std::string_view* a, std::string_view* b) noexcept {
  if (!GetKeyPart(&key, a)) return false;
  *b = key;
  return true;
}

std::atomic<uint64_t> g_next_reader{1};

}  // namespace

KvReader::KvReader(KvRead* kv, const std::function<int64_t()>* clock)
    : kv_(kv),
      clock_(clock),
      id_(g_next_reader.fetch_add(1, std::memory_order_relaxed)),
      snapshot_(id_ << 32) {}

bool KvReader::LoadRevision() noexcept {
  std::string_view k, v;
  rev_ = 0;
  if (!kv_->Get(Table::kMeta, "rev", &k, &v)) return !kv_->error();
  if (v.size() != 8) return Corrupt();
  rev_ = DecodeBigEndian64(v.data());
  return true;
}

bool KvReader::GetUser(std::string_view user, UserView* out) noexcept {
  std::string_view k, v;
  if (user.empty() || !kv_->Get(Table::kUsers, user, &k, &v)) return false;
  return DecodeUser(k, v, out) || Corrupt();
}

bool KvReader::FindUserByEmail(std::string_view email, UserView* out) noexcept {
  char buf[512];
  if (email.empty() || email.size() > sizeof buf) return false;
  for (size_t i = 0; i < email.size(); ++i) {
    char c = email[i];
    buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  std::string_view k, user;
  if (!kv_->Get(Table::kEmails, std::string_view(buf, email.size()), &k, &user)) return false;
  return GetUser(user, out);
}

bool KvReader::GetOrg(std::string_view org, OrgView* out) noexcept {
  std::string_view k, v;
  if (org.empty() || !kv_->Get(Table::kOrgs, org, &k, &v)) return false;
  return DecodeOrg(k, v, out, nullptr) || Corrupt();
}

bool KvReader::GetWorkspace(std::string_view ws, WorkspaceView* out) noexcept {
  std::string_view k, v;
  if (ws.empty() || !kv_->Get(Table::kWorkspaces, ws, &k, &v)) return false;
  return DecodeWorkspace(k, v, out) || Corrupt();
}

bool KvReader::GetOrgMember(std::string_view user, std::string_view org,
                            OrgMemberView* out) noexcept {
  KeyBuf key;
  key.Part(org).Raw(user);
  std::string_view k, v, o, u;
  if (!key.ok() || user.empty() || !kv_->Get(Table::kOrgMembers, key.view(), &k, &v)) return false;
  if (!SplitKey(k, &o, &u)) return Corrupt();
  return DecodeOrgMember(o, u, v, out) || Corrupt();
}

bool KvReader::GetWorkspaceMember(std::string_view user, std::string_view ws,
                                  WorkspaceMemberView* out) noexcept {
  KeyBuf key;
  key.Part(ws).Raw(user);
  std::string_view k, v, w, u;
  if (!key.ok() || user.empty() || !kv_->Get(Table::kWsMembers, key.view(), &k, &v)) return false;
  if (!SplitKey(k, &w, &u)) return Corrupt();
  return DecodeWsMember(w, u, v, out) || Corrupt();
}

bool KvReader::GetInvitation(std::string_view id, InvitationView* out) noexcept {
  std::string_view k, v;
  if (id.empty() || !kv_->Get(Table::kInvitations, id, &k, &v)) return false;
  if (!DecodeInvitation(k, v, out, nullptr)) return Corrupt();
  if (out->state == "PENDING" && clock_ != nullptr && *clock_ && out->expires_at <= (*clock_)()) {
    out->state = "EXPIRED";
  }
  return true;
}

bool KvReader::ListOrgsOfUser(std::string_view user, std::vector<OrgMemberView>* out) {
  out->clear();
  if (user.empty() || user.size() > 255) return true;
  std::string prefix;
  PutKeyPart(&prefix, user);
  bool ok = true;
  bool scanned = kv_->Scan(Table::kUserOrgs, prefix, {}, [&](std::string_view k, std::string_view) {
    OrgMemberView m;
    if (GetOrgMember(user, k.substr(prefix.size()), &m)) {
      out->push_back(m);
    } else {
      ok = false;  // index without row: corruption
    }
    return true;
  });
  if (!ok) Corrupt();
  return scanned && ok;
}

// One page of the rows keyed (parent, user) in `table`, from user `cursor` on; *next is the user
// that starts the following page ("" = done). decode(parent, user, value, View*) returns false on
// a malformed row, which stops the scan and sets *ok to false.
template <typename View, typename Decode>
static bool ScanChildPage(KvRead* kv, Table table, std::string_view parent,
                          std::string_view cursor, size_t limit, std::vector<View>* out,
                          std::string* next, bool* ok, Decode decode) {
  out->clear();
  next->clear();
  if (parent.empty() || parent.size() > 255) return true;
  std::string prefix;
  PutKeyPart(&prefix, parent);
  std::string start = prefix + std::string(cursor);
  return kv->Scan(table, prefix, start, [&](std::string_view k, std::string_view v) {
    std::string_view user = k.substr(prefix.size());
    if (out->size() >= limit) {
      next->assign(user);
      return false;
    }
    View m;
    if (!decode(k.substr(1, parent.size()), user, v, &m)) {
      *ok = false;
      return false;
    }
    out->push_back(m);
    return true;
  });
}

bool KvReader::ListOrgMembers(std::string_view org, std::string_view cursor, size_t limit,
                              std::vector<OrgMemberView>* out, std::string* next) {
  bool ok = true;
  bool scanned = ScanChildPage(kv_, Table::kOrgMembers, org, cursor, limit, out, next, &ok,
                               [](std::string_view o, std::string_view u, std::string_view v,
                                  OrgMemberView* m) { return DecodeOrgMember(o, u, v, m); });
  if (!ok) Corrupt();
  return scanned && ok;
}

bool KvReader::ListWorkspaceMembers(std::string_view ws, std::string_view cursor, size_t limit,
                                    std::vector<WorkspaceMemberView>* out, std::string* next) {
  bool ok = true;
  bool scanned = ScanChildPage(kv_, Table::kWsMembers, ws, cursor, limit, out, next, &ok,
                               [](std::string_view w, std::string_view u, std::string_view v,
                                  WorkspaceMemberView* m) { return DecodeWsMember(w, u, v, m); });
  if (!ok) Corrupt();
  return scanned && ok;
}

bool KvReader::ListWorkspacesOfOrg(std::string_view org, std::vector<WorkspaceView>* out) {
  out->clear();
  if (org.empty() || org.size() > 255) return true;
  std::string prefix;
  PutKeyPart(&prefix, org);
  bool ok = true;
  bool scanned = kv_->Scan(Table::kOrgWorkspaces, prefix, {}, [&](std::string_view k, std::string_view) {
    WorkspaceView w;
    if (GetWorkspace(k.substr(prefix.size()), &w)) {
      out->push_back(w);
    } else {
      ok = false;
    }
    return true;
  });
  if (!ok) Corrupt();
  return scanned && ok;
}

bool KvReader::ListWorkspacesOfUserInOrg(std::string_view user, std::string_view org,
                                         std::vector<WorkspaceMemberView>* out) {
  out->clear();
  if (user.empty() || org.empty() || user.size() > 255 || org.size() > 255) return true;
  std::string prefix;
  PutKeyPart(&prefix, user);
  PutKeyPart(&prefix, org);
  bool ok = true;
  bool scanned = kv_->Scan(Table::kUserWorkspaces, prefix, {}, [&](std::string_view k, std::string_view) {
    WorkspaceMemberView m;
    if (GetWorkspaceMember(user, k.substr(prefix.size()), &m)) {
      out->push_back(m);
    } else {
      ok = false;
    }
    return true;
  });
  if (!ok) Corrupt();
  return scanned && ok;
}

bool KvReader::ListInvitationsOfOrg(std::string_view org, std::vector<InvitationView>* out) {
  out->clear();
  if (org.empty() || org.size() > 255) return true;
  std::string prefix;
  PutKeyPart(&prefix, org);
  bool ok = true;
  bool scanned = kv_->Scan(Table::kOrgInvitations, prefix, {}, [&](std::string_view k, std::string_view) {
    InvitationView inv;
    if (GetInvitation(k.substr(prefix.size()), &inv)) {
      out->push_back(inv);
    } else {
      ok = false;
    }
    return true;
  });
  if (!ok) Corrupt();
  return scanned && ok;
}

// Whole-table listings (export). Keys of kUsers / kOrgs are the raw ids. One page of at most
// `limit` records from `cursor` on; *next is the first key of the following page ("" = done).
// Sets *ok to false if a listed key's record cannot be decoded.
template <typename View, typename Get>
static bool ScanPage(KvRead* kv, Table table, std::string_view cursor, size_t limit,
                     std::vector<View>* out, std::string* next, bool* ok, Get get) {
  out->clear();
  next->clear();
  if (limit == 0) limit = 1;
  return kv->Scan(table, {}, cursor, [&](std::string_view k, std::string_view) {
    if (out->size() == limit) {
      next->assign(k);
      return false;
    }
    View v;
    if (get(k, &v)) {
      out->push_back(v);
    } else {
      *ok = false;
    }
    return true;
  });
}

bool KvReader::ListUsers(std::string_view cursor, size_t limit, std::vector<UserView>* out,
                         std::string* next) {
  bool ok = true;
  bool scanned = ScanPage(kv_, Table::kUsers, cursor, limit, out, next, &ok,
                          [this](std::string_view k, UserView* v) { return GetUser(k, v); });
  if (!ok) Corrupt();
  return scanned && ok;
}

bool KvReader::ListOrgs(std::string_view cursor, size_t limit, std::vector<OrgView>* out,
                        std::string* next) {
  bool ok = true;
  bool scanned = ScanPage(kv_, Table::kOrgs, cursor, limit, out, next, &ok,
                          [this](std::string_view k, OrgView* v) { return GetOrg(k, v); });
  if (!ok) Corrupt();
  return scanned && ok;
}

bool KvReader::ReadChanges(uint64_t since, size_t limit, std::vector<ChangeView>* out) {
  out->clear();
  if (limit == 0 || since == UINT64_MAX) return true;
  std::string start;
  PutBigEndian64(&start, since + 1);
  bool ok = true;
  bool scanned = kv_->Scan(Table::kChanges, {}, start, [&](std::string_view k, std::string_view v) {
    if (k.size() != 8) {
      ok = false;
      return false;
    }
    ChangeView c;
    c.rev = DecodeBigEndian64(k.data());
    c.json = v;
    // The op name sits at a fixed place: {"rev":N,"op":"<op>",...
    size_t p = v.find("\"op\":\"");
    if (p != std::string_view::npos) {
      size_t q = v.find('"', p + 6);
      if (q != std::string_view::npos) c.op = v.substr(p + 6, q - p - 6);
    }
    out->push_back(c);
    return out->size() < limit;
  });
  if (!ok) Corrupt();
  return scanned && ok;
}

}  // namespace gatehouse::store::internal
