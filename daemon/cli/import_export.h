// Offline bulk import / export of the membership store as JSON lines (`gatehouse import|export`).
//
// One JSON object per line, with "type" one of user | org | org_member | workspace |
// workspace_member (the format is documented in docs/operations.md). Export writes exactly this
// format, so `export` then `import` into an empty directory round-trips users, orgs (with
// subscription, security, attrs, suspension), memberships and workspaces. Invitations and the
// change log are not exported (invitation tokens are stored only as hashes).
//
// Thread-safety: plain functions; each call uses its own objects.
#ifndef GATEHOUSE_DAEMON_CLI_IMPORT_EXPORT_H_
#define GATEHOUSE_DAEMON_CLI_IMPORT_EXPORT_H_

#include <cstdio>
#include <istream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/store.h"

namespace gatehouse::daemon::cli {

// One parsed import line.
struct ImportLine {
  store::ImportRecord record;
  bool suspended = false;  // org lines: suspend the org after the import
  size_t line = 0;         // 1-based line number in the input (0: not from a stream)
};

// Parses one line's object. Returns true iff valid; else *err names the field ("org: missing
// \"name\"", "unknown field \"colour\" for type workspace", ...).
bool ParseImportObject(const nlohmann::json& obj, ImportLine* out, std::string* err);

// Parses a JSON-lines stream (blank lines are skipped). Returns true iff every line is valid;
// otherwise *errors holds "LINE: message" for the first `max_errors` bad lines.
bool ParseImportStream(std::istream& in, std::vector<ImportLine>* out,
                       std::vector<std::string>* errors, size_t max_errors = 20);

// Imports the records into the store (Store::Import), then applies `org.suspend` for suspended
// orgs. Returns the store status (a refusal names the input line of the offending record);
// *stats is filled.
store::Status ImportInto(store::Store* st, const std::vector<ImportLine>& lines,
                         store::ImportStats* stats, size_t* suspended);

// Writes every user, org, org membership, workspace and workspace membership as JSON lines to
// `out`, in that dependency order per org. Returns the status; *lines counts lines written.
store::Status ExportFrom(store::Reader* reader, std::FILE* out, size_t* lines);

// The JSON object of one exported record (exposed for tests).
nlohmann::json UserToJson(const store::UserView& u);
nlohmann::json OrgToJson(const store::OrgView& o);
nlohmann::json WorkspaceToJson(const store::WorkspaceView& w);
nlohmann::json WorkspaceMemberToJson(const store::WorkspaceMemberView& m);

}  // namespace gatehouse::daemon::cli

#endif  // GATEHOUSE_DAEMON_CLI_IMPORT_EXPORT_H_
