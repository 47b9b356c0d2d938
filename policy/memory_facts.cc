#include "policy/memory_facts.h"

#include <cstring>

namespace gatehouse::policy {

Value OwnedValue::View() const {
  switch (kind) {
    case Value::Kind::kMissing: return Value();
    case Value::Kind::kNull: return Value::Null();
    case Value::Kind::kBool: return Value::Bool(b);
    case Value::Kind::kInt: return Value::Int(i);
    case Value::Kind::kDouble: return Value::Double(d);
    case Value::Kind::kString: return Value::String(s);
  }
  return Value();
}

MemoryFacts::MemoryFacts(const MemoryFacts& o)
    : users(o.users), orgs(o.orgs), workspaces(o.workspaces), fail(o.fail), lookups(o.lookups) {
  if (!o.index_.empty()) Finalize();
}

MemoryFacts& MemoryFacts::operator=(const MemoryFacts& o) {
  if (this != &o) {
    users = o.users;
    orgs = o.orgs;
    workspaces = o.workspaces;
    fail = o.fail;
    lookups = o.lookups;
    index_.clear();
    mask_ = 0;
    shift_ = 63;
    if (!o.index_.empty()) Finalize();
  }
  return *this;
}

namespace {

// A key part as the index compares it: its length and first word (internal::HeadWord: LoadTail for up
// to 8 bytes, which is injective for a given length: such keys compare without touching their
// bytes again; longer keys also compare their remaining bytes).
struct Part {
  std::string_view s;
  uint64_t head;
};

[[gnu::always_inline]] inline Part MakePart(std::string_view s) noexcept {
  Part p;
  p.s = s;
  p.head = internal::HeadWord(s);
  return p;
}

// Keys of up to 8 bytes are hashed from their head word (already loaded); longer ones with
// internal::HashName over all their bytes. The kind and both lengths are mixed in. One multiply
// per key part: the index is taken from the hash's top bits (Fibonacci hashing), which depend
// on every input bit.
[[gnu::always_inline]] inline uint64_t KeyHash(uint8_t kind, const Part& a,
                                               const Part& b) noexcept {
  const uint64_t x = a.s.size() <= 8 ? a.head : internal::HashName(a.s);
  uint64_t m = x;
  if (b.s.size() != 0) {
    const uint64_t y = b.s.size() <= 8 ? b.head : internal::HashName(b.s);
    m = x * 0x9fb21c651e98df25ull + y;
  }
  const uint64_t lens = (a.s.size() << 32 | b.s.size()) * 8 + kind;
  return (m ^ (lens * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
}

}  // namespace

void MemoryFacts::Insert(Kind kind, std::string_view a, std::string_view b, const void* rec,
                         const void* rec2) {
  const Part pa = MakePart(a), pb = MakePart(b);
  Slot s;
  s.hash = KeyHash(static_cast<uint8_t>(kind), pa, pb);
  s.head_a = pa.head;
  s.head_b = pb.head;
  s.a = a;
  s.b = b;
  s.rec = rec;
  s.rec2 = rec2;
  uint64_t i = s.hash >> shift_;
  while (index_[i].rec != nullptr) i = (i + 1) & mask_;  // keys are unique (map keys)
  index_[i] = s;
}

void MemoryFacts::Finalize() {
  size_t n = users.size() + orgs.size() + workspaces.size();
  for (auto& [id, o] : orgs) {
    o.feature_views.assign(o.features.begin(), o.features.end());
    o.exempt_views.assign(o.sso_exempt_roles.begin(), o.sso_exempt_roles.end());
    o.workspaces_counted = 0;
    n += o.members.size();
  }
  for (auto& [id, w] : workspaces) {
    auto it = orgs.find(w.org);
    if (it != orgs.end()) ++it->second.workspaces_counted;
    for (auto& [user, m] : w.members) m.flag_views.assign(m.flags.begin(), m.flags.end());
    n += w.members.size();
  }
  size_t cap = 16;
  int bits = 4;
  while (cap < 2 * n) {
    cap *= 2;
    ++bits;
  }
  index_.assign(cap, Slot());
  mask_ = cap - 1;
  shift_ = 64 - bits;
  for (const auto& [id, u] : users) Insert(Kind::kUser, id, {}, &u, nullptr);
  for (const auto& [id, o] : orgs) {
    Insert(Kind::kOrg, id, {}, &o, nullptr);
    for (const auto& [user, role] : o.members) Insert(Kind::kOrgMember, user, id, &role, nullptr);
  }
  for (const auto& [id, w] : workspaces) {
    Insert(Kind::kWorkspace, id, {}, &w, nullptr);
    for (const auto& [user, m] : w.members) Insert(Kind::kWorkspaceMember, user, id, &m, &w);
  }
}

[[gnu::always_inline]] inline const MemoryFacts::Slot* MemoryFacts::Find(
    Kind kind, std::string_view a, std::string_view b) const noexcept {
  if (index_.empty()) return nullptr;
  const Part pa = MakePart(a), pb = MakePart(b);
  // Equal hashes, heads, lengths and tails imply an equal kind: for fixed key bytes KeyHash is
  // injective in the kind (lens * odd, xor, * odd are bijections).
  const uint64_t h = KeyHash(static_cast<uint8_t>(kind), pa, pb);
  for (uint64_t i = h >> shift_;; i = (i + 1) & mask_) {
    const Slot& s = index_[i];
    if (s.rec == nullptr) return nullptr;
    if (s.hash == h && s.head_a == pa.head && s.head_b == pb.head &&
        s.a.size() == a.size() && s.b.size() == b.size() &&
        (a.size() <= 8 || internal::BytesEqual(s.a.data() + 8, a.data() + 8, a.size() - 8)) &&
        (b.size() <= 8 || internal::BytesEqual(s.b.data() + 8, b.data() + 8, b.size() - 8))) {
      return &s;
    }
  }
}

[[gnu::always_inline]] inline const MemoryFacts::UserRec* MemoryFacts::FindUser(
    std::string_view id) const noexcept {
  if (const Slot* s = Find(Kind::kUser, id, {})) return static_cast<const UserRec*>(s->rec);
  auto it = users.find(id);  // added after Finalize()
  return it == users.end() ? nullptr : &it->second;
}

[[gnu::always_inline]] inline const MemoryFacts::OrgRec* MemoryFacts::FindOrg(
    std::string_view id) const noexcept {
  if (const Slot* s = Find(Kind::kOrg, id, {})) return static_cast<const OrgRec*>(s->rec);
  auto it = orgs.find(id);
  return it == orgs.end() ? nullptr : &it->second;
}

[[gnu::always_inline]] inline const MemoryFacts::WorkspaceRec* MemoryFacts::FindWorkspace(
    std::string_view id) const noexcept {
  if (const Slot* s = Find(Kind::kWorkspace, id, {})) {
    return static_cast<const WorkspaceRec*>(s->rec);
  }
  auto it = workspaces.find(id);
  return it == workspaces.end() ? nullptr : &it->second;
}

Lookup MemoryFacts::User(std::string_view user, UserFacts* out) noexcept {
  ++lookups;
  if (fail) return Lookup::kError;
  const UserRec* u = FindUser(user);
  if (u == nullptr) return Lookup::kNotFound;
  out->id = user;
  out->email = u->email;
  out->email_verified = u->email_verified;
  return Lookup::kFound;
}

Lookup MemoryFacts::Org(std::string_view org, OrgFacts* out) noexcept {
  ++lookups;
  if (fail) return Lookup::kError;
  const OrgRec* o = FindOrg(org);
  if (o == nullptr) return Lookup::kNotFound;
  out->id = org;
  out->plan = o->plan;
  out->status = o->status;
  out->suspended = o->suspended;
  out->features = o->feature_views;
  out->seats = o->seats;
  out->members = o->member_count >= 0 ? o->member_count : static_cast<int64_t>(o->members.size());
  out->pending_invitations = o->pending_invitations;
  out->workspaces = o->workspace_count >= 0 ? o->workspace_count : o->workspaces_counted;
  out->workspace_limit = o->workspace_limit;
  out->sso_enabled = o->sso_enabled;
  out->sso_enforced = o->sso_enforced;
  out->sso_idp = o->sso_idp;
  out->sso_exempt_roles = o->exempt_views;
  return Lookup::kFound;
}

Lookup MemoryFacts::Workspace(std::string_view ws, WorkspaceFacts* out) noexcept {
  ++lookups;
  if (fail) return Lookup::kError;
  const WorkspaceRec* w = FindWorkspace(ws);
  if (w == nullptr) return Lookup::kNotFound;
  out->id = ws;
  out->org = w->org;
  return Lookup::kFound;
}

Lookup MemoryFacts::OrgMembership(std::string_view user, std::string_view org,
                                  OrgMembershipFacts* out) noexcept {
  ++lookups;
  if (fail) return Lookup::kError;
  const std::string* role = nullptr;
  if (const Slot* s = Find(Kind::kOrgMember, user, org)) {
    role = static_cast<const std::string*>(s->rec);
  } else if (const OrgRec* o = FindOrg(org)) {  // added after Finalize()
    auto m = o->members.find(user);
    if (m != o->members.end()) role = &m->second;
  }
  if (role == nullptr) return Lookup::kNotFound;
  out->role = *role;
  return Lookup::kFound;
}

Lookup MemoryFacts::WorkspaceMembership(std::string_view user, std::string_view ws,
                                        WorkspaceMembershipFacts* out) noexcept {
  ++lookups;
  if (fail) return Lookup::kError;
  const WorkspaceMember* m = nullptr;
  const WorkspaceRec* w = nullptr;
  if (const Slot* s = Find(Kind::kWorkspaceMember, user, ws)) {
    m = static_cast<const WorkspaceMember*>(s->rec);
    w = static_cast<const WorkspaceRec*>(s->rec2);
  } else if ((w = FindWorkspace(ws)) != nullptr) {  // added after Finalize()
    auto it = w->members.find(user);
    if (it != w->members.end()) m = &it->second;
  }
  if (m == nullptr) return Lookup::kNotFound;
  out->role = m->role;
  out->team = m->team;
  out->flags = m->flag_views;
  out->contact_visibility = m->contact_visibility;
  out->org = w->org;
  return Lookup::kFound;
}

Lookup MemoryFacts::Attr(Entity entity, std::string_view id, std::string_view key,
                         Value* out) noexcept {
  ++lookups;
  if (fail) return Lookup::kError;
  const OwnedAttrs* attrs = nullptr;
  switch (entity) {
    case Entity::kUser:
      if (const UserRec* u = FindUser(id)) attrs = &u->attrs;
      break;
    case Entity::kOrg:
      if (const OrgRec* o = FindOrg(id)) attrs = &o->attrs;
      break;
    case Entity::kWorkspace:
      if (const WorkspaceRec* w = FindWorkspace(id)) attrs = &w->attrs;
      break;
  }
  if (!attrs) return Lookup::kNotFound;
  auto a = attrs->find(key);
  if (a == attrs->end()) return Lookup::kNotFound;
  *out = a->second.View();
  return Lookup::kFound;
}

}  // namespace gatehouse::policy
