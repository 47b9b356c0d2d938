// The `gatehouse` command table: one declarative list that maps subcommand + flags to a protocol
// request (shared/spec/protocol.md), plus argument parsing, help text, human output and exit
// codes. Nothing here does I/O except the Print* functions (to the FILE*s they are given).
//
// Exit codes (all commands):
//   0  success; for `check`/`batch`: allowed (every check allowed)
//   1  the answer is "no": `check` denied, a `batch` with a deny, the daemon refused a write or a
//      read (an error reply such as conflict, not_found, forbidden), `policy validate`/`policy
//      test` found problems
//   2  usage error (unknown command or flag, missing or malformed value)
//   3  error: the daemon is unreachable, the reply is not valid, an internal error; for `check`
//      also any error reply (bad_request, stale, ...)
//
// Thread-safety: the table is immutable static data; every function is reentrant.
#ifndef GATEHOUSE_DAEMON_CLI_COMMANDS_H_
#define GATEHOUSE_DAEMON_CLI_COMMANDS_H_

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace gatehouse::daemon::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitNo = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitError = 3;

enum class FlagType {
  kString,    // --org o1                  -> "org":"o1"
  kInt,       // --seats 10                -> "seats":10
  kBool,      // --explain | --explain=false -> "explain":true|false
  kList,      // --features sso,webhooks   -> "features":["sso","webhooks"] (repeatable, appends)
  kJson,      // --context '{"a":1}'       -> merged into the object at path
  kKeyValue,  // --attr assignee=u1        -> path.assignee = "u1" (repeatable)
  kGrant,     // --grant w1:agent          -> path += {"workspace":"w1","role":"agent"} (repeatable)
};

struct FlagSpec {
  const char* name;  // without the leading "--"
  const char* path;  // dotted JSON path in the request ("context.auth.idp")
  FlagType type;
  bool required;
  const char* help;
  const char* metavar = nullptr;  // for help; default from the type
};

enum class Kind {
  kCheck,           // check: allow/deny exit code
  kRequest,         // one request, one reply (reads, lists, writes, operations)
  kBatch,           // batch FILE -> check_batch requests
  kWatch,           // watch: ack, then a stream of change lines
  kRaw,             // raw JSON line -> reply
  kServe,           // serve: the daemon itself
  kImport,          // offline import into --data
  kExport,          // offline export from --data
  kPolicyValidate,  // offline policy load
  kPolicyTest,      // offline policy test suites
};

struct CommandSpec {
  const char* name;     // "check", "org invite", ...
  const char* op;       // protocol op; "" for local commands
  Kind kind;
  const char* summary;  // one line
  std::vector<FlagSpec> flags;
  std::vector<const char*> positionals;  // flag names that may also be given positionally
  const char* one_of = nullptr;          // comma-separated flag names, at least one required
  bool takes_actor = false;              // adds --actor USER (policy-checked write)
};

// The command table, in help order.
const std::vector<CommandSpec>& Commands();

// Looks a command up by its full name ("org invite"); nullptr if unknown.
const CommandSpec* FindCommand(std::string_view name);

// A parsed command line.
struct Invocation {
  const CommandSpec* cmd = nullptr;  // nullptr with help=true: top-level help
  bool help = false;                 // --help / -h / `help [cmd]`
  bool json = false;                 // --json: raw JSON output
  std::string socket;                // --socket, else $GATEHOUSE_SOCKET, else ./gatehouse.sock
  int timeout_ms = 10000;            // --timeout-ms: per reply (not for watch)
  // The request built from the flags (with "op" set for daemon commands). Local commands read
  // their flags from it too ("file", "data", "dir", ...).
  nlohmann::json request = nlohmann::json::object();
  // For `serve`: every argument after "serve", untouched (LoadServeConfig parses them).
  std::vector<std::string> passthrough;
};

// Parses argv (argv[0] is the program name). `env_socket` is $GATEHOUSE_SOCKET or nullptr.
// Returns true iff the command line is valid; otherwise *err is a one-line usage message.
// Global flags (--socket, --json, --timeout-ms, --help) are accepted anywhere.
bool ParseInvocation(int argc, const char* const* argv, const char* env_socket, Invocation* inv,
                     std::string* err);

// Help texts.
std::string TopLevelHelp();
std::string CommandHelp(const CommandSpec& cmd);

// The exit code for a daemon reply to `cmd` (see the table at the top of this file).
int ExitCodeForReply(const CommandSpec& cmd, const nlohmann::json& reply);

// Writes the reply for humans (or raw with json=true) to out; error replies go to err.
void PrintReply(const CommandSpec& cmd, const nlohmann::json& reply, bool json, std::FILE* out,
                std::FILE* err);

// One line for a streamed change event (watch), human form.
std::string FormatChange(const nlohmann::json& event);

}  // namespace gatehouse::daemon::cli

#endif  // GATEHOUSE_DAEMON_CLI_COMMANDS_H_
