#include "daemon/facts_adapter.h"

#include <cstring>

namespace gatehouse::daemon {

using policy::Lookup;

// One org cache entry: the org row's fields that Org() and Attr() need, strings packed in
// `bytes` in the order of the Field enum. 256 bytes; the key (hash, reader, rev, id) first.
struct StoreFacts::OrgSlot {
  enum Field : uint8_t { kId, kPlan, kStatus, kFeatures, kIdp, kExempt, kAttrs, kFields };
  enum Bit : uint8_t { kSuspended = 1, kSsoEnabled = 2, kSsoEnforced = 4, kHasAttrs = 8 };

  uint64_t reader = 0;  // Reader::ReaderId() it was read under; 0: empty
  uint64_t rev = 0;     // Reader::Revision() it was read at
  uint32_t hash = 0;    // of the org id
  uint8_t bits = 0;
  uint8_t recent = 0;   // 1: the more recently used way of its set
  uint16_t len[kFields] = {};
  uint32_t seats = 0, workspace_limit = 0, members = 0, pending_invitations = 0, workspaces = 0;
  char bytes[kOrgSlotBytes];
};

namespace {

// FNV-1a, folded to 32 bits: org ids are short, and the hash only spreads them over the sets.
uint32_t HashId(std::string_view s) noexcept {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return static_cast<uint32_t>(h ^ (h >> 32));
}

}  // namespace

StoreFacts::StoreFacts(store::Reader* reader) : reader_(reader) {}
StoreFacts::~StoreFacts() = default;

void StoreFacts::SetOrgCacheEntries(size_t entries) {
  static_assert(sizeof(OrgSlot) == 256, "org cache entry: 4 cache lines");
  org_slots_.reset();
  org_sets_ = 0;
  if (entries == 0) return;
  size_t n = 2;
  while (n < entries && n < kMaxOrgCacheEntries) n <<= 1;
  org_slots_.reset(new OrgSlot[n]);
  org_sets_ = n / 2;
}

StoreFacts::OrgSlot* StoreFacts::FindOrg(std::string_view org, OrgSlot** set) noexcept {
  *set = nullptr;
  if (org_sets_ == 0) return nullptr;
  const uint64_t reader = reader_->ReaderId();
  const uint64_t rev = reader_->Revision();
  // Only a snapshot whose (ReaderId, Revision) names its rows, and never after a storage error:
  // then the store answers (and reports the error).
  if (reader == 0 || rev == 0 || reader_->error()) return nullptr;
  const uint32_t h = HashId(org);
  OrgSlot* s = &org_slots_[(h & (org_sets_ - 1)) * 2];
  *set = s;
  for (int w = 0; w < 2; ++w) {
    OrgSlot& e = s[w];
    if (e.hash == h && e.reader == reader && e.rev == rev && e.len[OrgSlot::kId] == org.size() &&
        std::memcmp(e.bytes, org.data(), org.size()) == 0) {
      e.recent = 1;
      s[1 - w].recent = 0;
      return &e;
    }
  }
  return nullptr;
}

void StoreFacts::FillOrg(const store::OrgView& v, OrgSlot* set) noexcept {
  const std::string_view parts[OrgSlot::kFields] = {
      v.id,          v.plan, v.status, v.features.encoded(), v.sso.idp, v.sso.exempt_roles.encoded(),
      v.attrs.encoded()};
  size_t need = 0;
  for (int i = 0; i < OrgSlot::kAttrs; ++i) need += parts[i].size();
  if (need > kOrgSlotBytes) {
    org_cache_oversize_.Add();
    return;
  }
  const bool with_attrs = parts[OrgSlot::kAttrs].size() <= kOrgSlotBytes - need;
  // Victim: a way that is stale (another reader or revision) or empty, else the less recent.
  const uint64_t reader = reader_->ReaderId();
  const uint64_t rev = reader_->Revision();
  OrgSlot* e = &set[1];
  if (set[0].reader != reader || set[0].rev != rev) {
    e = &set[0];
  } else if (set[1].reader == reader && set[1].rev == rev && set[0].recent == 0) {
    e = &set[0];
  }
  char* p = e->bytes;
  for (int i = 0; i < OrgSlot::kFields; ++i) {
    std::string_view part = parts[i];
    if (i == OrgSlot::kAttrs && !with_attrs) part = {};
    if (!part.empty()) std::memcpy(p, part.data(), part.size());  // data() may be null if empty
    p += part.size();
    e->len[i] = static_cast<uint16_t>(part.size());
  }
  e->reader = reader;
  e->rev = rev;
  e->hash = HashId(v.id);
  e->bits = static_cast<uint8_t>((v.suspended ? OrgSlot::kSuspended : 0) |
                                 (v.sso.enabled ? OrgSlot::kSsoEnabled : 0) |
                                 (v.sso.enforced ? OrgSlot::kSsoEnforced : 0) |
                                 (with_attrs ? OrgSlot::kHasAttrs : 0));
  e->seats = v.seats;
  e->workspace_limit = v.workspace_limit;
  e->members = v.members;
  e->pending_invitations = v.pending_invitations;
  e->workspaces = v.workspaces;
  e->recent = 1;
  set[e == &set[0] ? 1 : 0].recent = 0;
}

// The cached fields of an entry as an OrgView (views into the entry; name, creator and billing
// are not cached and stay empty; attrs only if the entry has them).
void StoreFacts::LoadOrgView(const OrgSlot& e, store::OrgView* v) noexcept {
  const char* p = e.bytes;
  std::string_view part[OrgSlot::kFields];
  for (int i = 0; i < OrgSlot::kFields; ++i) {
    part[i] = std::string_view(p, e.len[i]);
    p += e.len[i];
  }
  v->id = part[OrgSlot::kId];
  v->plan = part[OrgSlot::kPlan];
  v->status = part[OrgSlot::kStatus];
  v->suspended = e.bits & OrgSlot::kSuspended;
  v->seats = e.seats;
  v->workspace_limit = e.workspace_limit;
  v->features = store::StringListView(part[OrgSlot::kFeatures]);
  v->sso.enabled = e.bits & OrgSlot::kSsoEnabled;
  v->sso.enforced = e.bits & OrgSlot::kSsoEnforced;
  v->sso.idp = part[OrgSlot::kIdp];
  v->sso.exempt_roles = store::StringListView(part[OrgSlot::kExempt]);
  v->attrs = store::AttrsView(part[OrgSlot::kAttrs]);
  v->members = e.members;
  v->pending_invitations = e.pending_invitations;
  v->workspaces = e.workspaces;
}


Lookup StoreFacts::Miss() noexcept {
  return reader_->error() ? Lookup::kError : Lookup::kNotFound;
}

size_t StoreFacts::Unpack(const store::StringListView& list, std::string_view* dst) noexcept {
  size_t n = 0;
  list.ForEach([&](std::string_view s) {
    if (n < kMaxList) {
      dst[n++] = s;
    } else {
      ++truncated_;
    }
  });
  return n;
}

Lookup StoreFacts::User(std::string_view user, policy::UserFacts* out) noexcept {
  store::UserView v;
  if (!reader_->GetUser(user, &v)) return Miss();
  out->id = v.id;
  out->email = v.email;
  out->email_verified = v.email_verified;
  return Lookup::kFound;
}

void StoreFacts::ToOrgFacts(const store::OrgView& v, policy::OrgFacts* out) noexcept {
  out->id = v.id;
  out->plan = v.plan;
  out->status = v.status;
  out->suspended = v.suspended;
  out->features = policy::StringList(features_.data(), Unpack(v.features, features_.data()));
  out->seats = v.seats;
  out->members = v.members;
  out->pending_invitations = v.pending_invitations;
  out->workspaces = v.workspaces;
  out->workspace_limit = v.workspace_limit;
  out->sso_enabled = v.sso.enabled;
  out->sso_enforced = v.sso.enforced;
  out->sso_idp = v.sso.idp;
  out->sso_exempt_roles =
      policy::StringList(exempt_.data(), Unpack(v.sso.exempt_roles, exempt_.data()));
}

Lookup StoreFacts::Org(std::string_view org, policy::OrgFacts* out) noexcept {
  store::OrgView v;
  OrgSlot* set = nullptr;
  if (const OrgSlot* e = FindOrg(org, &set)) {
    org_cache_hits_.Add();
    LoadOrgView(*e, &v);
    ToOrgFacts(v, out);
    return Lookup::kFound;
  }
  if (!reader_->GetOrg(org, &v)) return Miss();
  if (set != nullptr) {
    org_cache_misses_.Add();
    FillOrg(v, set);
  }
  ToOrgFacts(v, out);  // views into the snapshot, as without the cache
  return Lookup::kFound;
}

Lookup StoreFacts::Workspace(std::string_view ws, policy::WorkspaceFacts* out) noexcept {
  store::WorkspaceView v;
  if (!reader_->GetWorkspace(ws, &v)) return Miss();
  out->id = v.id;
  out->org = v.org;
  return Lookup::kFound;
}

Lookup StoreFacts::OrgMembership(std::string_view user, std::string_view org,
                                 policy::OrgMembershipFacts* out) noexcept {
  if (memo_snapshot_ != 0 && memo_reader_ == reader_ && memo_snapshot_ == reader_->SnapshotId() &&
      user == memo_user_ && org == memo_org_) {
    ++org_role_hits_;
    out->role = memo_org_role_;
    return Lookup::kFound;
  }
  store::OrgMemberView v;
  if (!reader_->GetOrgMember(user, org, &v)) return Miss();
  out->role = v.role;
  return Lookup::kFound;
}

Lookup StoreFacts::WorkspaceMembership(std::string_view user, std::string_view ws,
                                       policy::WorkspaceMembershipFacts* out) noexcept {
  store::WorkspaceMemberView v;
  memo_snapshot_ = 0;
  if (!reader_->GetWorkspaceMember(user, ws, &v)) return Miss();
  if (!v.org_role.empty() && !v.org.empty()) {
    memo_reader_ = reader_;
    memo_snapshot_ = reader_->SnapshotId();
    memo_user_ = v.user;
    memo_org_ = v.org;
    memo_org_role_ = v.org_role;
  }
  out->role = v.role;
  out->team = v.team;
  out->flags = policy::StringList(flags_.data(), Unpack(v.flags, flags_.data()));
  out->contact_visibility = v.contact_visibility;
  out->org = v.org;  // denormalized by the store; saves the evaluator a workspace read
  return Lookup::kFound;
}

namespace {
policy::Value FromAttr(const store::AttrValue& a) {
  switch (a.kind) {
    case store::AttrValue::Kind::kNull: return policy::Value::Null();
    case store::AttrValue::Kind::kBool: return policy::Value::Bool(a.b);
    case store::AttrValue::Kind::kInt: return policy::Value::Int(a.i);
    case store::AttrValue::Kind::kDouble: return policy::Value::Double(a.d);
    case store::AttrValue::Kind::kString: return policy::Value::String(a.s);
  }
  return policy::Value();
}
}  // namespace

Lookup StoreFacts::Attr(Entity entity, std::string_view id, std::string_view key,
                        policy::Value* out) noexcept {
  store::AttrsView attrs;
  switch (entity) {
    case Entity::kUser:
      // Users carry no free-form attributes in the store (model.md); absent.
      return reader_->error() ? Lookup::kError : Lookup::kNotFound;
    case Entity::kOrg: {
      store::OrgView v;
      OrgSlot* set = nullptr;
      const OrgSlot* e = FindOrg(id, &set);
      if (e != nullptr && (e->bits & OrgSlot::kHasAttrs)) {
        org_cache_hits_.Add();
        LoadOrgView(*e, &v);
      } else if (!reader_->GetOrg(id, &v)) {  // never fills: Org()'s entry stays intact
        return Miss();
      }
      attrs = v.attrs;
      break;
    }
    case Entity::kWorkspace: {
      store::WorkspaceView v;
      if (!reader_->GetWorkspace(id, &v)) return Miss();
      attrs = v.attrs;
      break;
    }
  }
  store::AttrValue a;
  if (!attrs.Find(key, &a)) return Lookup::kNotFound;
  *out = FromAttr(a);
  return Lookup::kFound;
}

}  // namespace gatehouse::daemon
