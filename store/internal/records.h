// Record value encodings (owned, for the write path) and their decoding into the public views
// (no allocation, for the read path), plus hand-written JSON for change records.
//
// Every value starts with a format byte (kRecordFormat); see docs/storage.md.
// Thread-safety: stateless functions; records are plain values.
#ifndef GATEHOUSE_STORE_INTERNAL_RECORDS_H_
#define GATEHOUSE_STORE_INTERNAL_RECORDS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

namespace gatehouse::store::internal {

constexpr uint8_t kRecordFormat = 1;

struct UserRec {
  std::string id, email;
  bool verified = false;
  uint32_t allowance = 1, orgs_created = 0;
};

struct OrgRec {
  std::string id, name, creator;
  bool suspended = false;
  std::string plan, status;
  uint32_t seats = 0, workspace_limit = 0;
  std::string features, billing;  // StringListView / AttrsView encodings
  bool sso_enabled = false, sso_enforced = false;
  std::string sso_idp, sso_exempt, attrs;
  uint32_t members = 0, pending = 0, workspaces = 0, admins = 0;
};

struct WorkspaceRec {
  std::string id, org, name, attrs;
  uint32_t members = 0;
};

struct OrgMemberRec {
  std::string user, org, role;
};

struct WsMemberRec {
  std::string user, workspace, org, role, team, flags, visibility;
  std::string org_role;  // denormalized org_members role; "" only in rows of schema 1
};

struct InvitationRec {
  std::string id, org, email, role, state;
  int64_t expires_at = 0, created_at = 0;
  std::string invited_by, accepted_by, grants, token_hash;
};

// Encoders.
std::string EncodeUser(const UserRec& r);
std::string EncodeOrg(const OrgRec& r);
std::string EncodeWorkspace(const WorkspaceRec& r);
std::string EncodeOrgMember(const OrgMemberRec& r);
std::string EncodeWsMember(const WsMemberRec& r);
std::string EncodeInvitation(const InvitationRec& r);
std::string EncodeStringList(const std::vector<std::string>& items);
std::string EncodeAttrs(const AttrMap& attrs);
void AppendGrant(std::string* grants, std::string_view ws, std::string_view role);

// Decoders into views; `key` is the stored key's id part(s) where the value does not hold them.
// Return false iff the value is malformed (callers treat that as a storage error).
bool DecodeUser(std::string_view id, std::string_view v, UserView* out) noexcept;
bool DecodeOrg(std::string_view id, std::string_view v, OrgView* out, uint32_t* admins) noexcept;
bool DecodeWorkspace(std::string_view id, std::string_view v, WorkspaceView* out) noexcept;
bool DecodeOrgMember(std::string_view org, std::string_view user, std::string_view v,
                     OrgMemberView* out) noexcept;
bool DecodeWsMember(std::string_view ws, std::string_view user, std::string_view v,
                    WorkspaceMemberView* out) noexcept;
bool DecodeInvitation(std::string_view id, std::string_view v, InvitationView* out,
                      std::string_view* token_hash) noexcept;

// Owned copies of views.
UserRec ToRec(const UserView& v);
OrgRec ToRec(const OrgView& v, uint32_t admins);
WorkspaceRec ToRec(const WorkspaceView& v);
OrgMemberRec ToRec(const OrgMemberView& v);
WsMemberRec ToRec(const WorkspaceMemberView& v);
InvitationRec ToRec(const InvitationView& v, std::string_view token_hash);

// JSON (hand-written; strings escaped, invalid UTF-8 replaced by U+FFFD; never the token hash).
void AppendJsonString(std::string* out, std::string_view s);
std::string ToJson(const UserRec& r);
std::string ToJson(const OrgRec& r);
std::string ToJson(const WorkspaceRec& r);
std::string ToJson(const OrgMemberRec& r);
std::string ToJson(const WsMemberRec& r);
std::string ToJson(const InvitationRec& r);
std::string StringListJson(std::string_view encoded);
std::string AttrsJson(std::string_view encoded);

// Lowercases ASCII letters (emails are compared case-insensitively).
std::string AsciiLower(std::string_view s);

}  // namespace gatehouse::store::internal

#endif  // GATEHOUSE_STORE_INTERNAL_RECORDS_H_
