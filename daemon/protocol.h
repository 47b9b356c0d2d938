// Protocol v1 codec for the hot ops (check, check_batch, list_actions): decode a parsed request
// line into policy::Request values (views, no allocation) and write replies by hand.
//
// The cold ops (writes, reads, admin) are decoded with nlohmann_json in handlers.cc.
//
// Lifetime: every view in a decoded CheckArgs points into the request line, into the
// RequestArena's Document scratch, or into the arena's kv/key buffers; valid until the arena
// decodes the next request.
//
// Thread-safety: a RequestArena belongs to one connection and is used by one thread at a time.
#ifndef GATEHOUSE_DAEMON_PROTOCOL_H_
#define GATEHOUSE_DAEMON_PROTOCOL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/json_reader.h"
#include "policy/facts.h"

namespace gatehouse::daemon {

enum class ErrorCode : uint8_t {
  kBadRequest,
  kUnknownOp,
  kNotFound,
  kConflict,
  kLimitExceeded,
  kForbidden,
  kStale,
  kTooLarge,
  kUnavailable,
  kInternal,
};
const char* ErrorCodeName(ErrorCode c) noexcept;  // protocol spelling: "bad_request", ...

// An error with a bounded message; setting one never allocates.
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  char message[240] = {};
  size_t len = 0;
  void Set(ErrorCode c, const char* fmt, ...) noexcept __attribute__((format(printf, 3, 4)));
  std::string_view msg() const noexcept { return std::string_view(message, len); }
};

// Limits applied while decoding.
constexpr size_t kMaxIdBytes = 128;
constexpr size_t kMaxBatch = 1000;

// The op-independent part of a request.
struct Envelope {
  std::string_view op;
  std::string_view id_raw = "null";  // the exact JSON text of "id", or null when absent
};

// A decoded check (also used for list_actions with action empty, and each check_batch item).
struct CheckArgs {
  policy::Request req;
  bool explain = false;
  bool has_min_rev = false;
  uint64_t min_rev = 0;
};

// Per-connection reusable decoding state.
class RequestArena {
 public:
  RequestArena();
  // Parses one line. On failure sets *err (bad_request) and returns false.
  bool ParseLine(std::string_view line, Error* err) noexcept;
  const json::Document& doc() const { return doc_; }

  // Decodes "op" and "id" from the parsed root. The root must be an object.
  bool DecodeEnvelope(Envelope* env, Error* err) noexcept;
  // Decodes the root as a check (require_action=false for list_actions).
  bool DecodeCheck(CheckArgs* out, bool require_action, Error* err) noexcept;
  // Decodes "checks" (1..kMaxBatch items) into checks(); top-level explain / min_rev into *top.
  bool DecodeCheckBatch(CheckArgs* top, Error* err) noexcept;
  const std::vector<CheckArgs>& checks() const { return checks_; }
  // Decodes the root's "context" (if present) into req's context fields, exactly like check
  // (for list ops that evaluate without a check's other fields).
  bool DecodeRootContext(policy::Request* req, Error* err) noexcept;
  // Decodes the root's "min_rev" (absent: *present = false). False + *err on a type problem.
  bool DecodeMinRev(bool* present, uint64_t* out, Error* err) const noexcept;

  static constexpr int kFields = 11;  // known member names of a request/check object

 private:
  // `fields`: value index of each known member of `obj` (see IndexFields in protocol.cc).
  bool DecodeCheckAt(int obj, const int* fields, const char* prefix, CheckArgs* out,
                     bool require_action, Error* err) noexcept;
  bool DecodeAttrs(int obj, const char* prefix, policy::AttrList* out, Error* err) noexcept;
  bool DecodeContext(int obj, const char* prefix, policy::Request* req, Error* err) noexcept;
  bool FlattenContext(int obj, std::string_view parent, const char* prefix, int depth,
                      Error* err) noexcept;

  json::Document doc_;
  int root_[kFields];                   // known members of the root object, indexed once
  std::vector<policy::KeyValue> kvs_;  // reserved to the node count before each decode
  std::string keys_;                    // flattened context keys; never grows past capacity
  size_t keys_used_ = 0;                // bytes all flattened keys would take (size limit)
  std::vector<CheckArgs> checks_;
};

// Field helpers over a parsed document (exposed for handlers).
// Each returns false and sets *err (`field 'X' must be a ...`) on a type problem.
bool GetString(const json::Document& d, int obj, std::string_view key, const char* field,
               bool required, std::string_view* out, Error* err) noexcept;
bool GetId(const json::Document& d, int obj, std::string_view key, const char* field,
           bool required, std::string_view* out, Error* err) noexcept;
bool GetUint(const json::Document& d, int obj, std::string_view key, const char* field,
             bool* present, uint64_t* out, Error* err) noexcept;
bool GetBool(const json::Document& d, int obj, std::string_view key, const char* field,
             bool* out, Error* err) noexcept;
// True iff s is a valid identifier: 1..128 bytes, no control characters.
bool IsValidId(std::string_view s) noexcept;

// ---- Reply writing (appends one line, ending in '\n') ----
void AppendReplyStart(std::string* out, std::string_view id_raw);  // {"id":X,"ok":true
void AppendError(std::string* out, std::string_view id_raw, ErrorCode code,
                 std::string_view message);
inline void AppendError(std::string* out, std::string_view id_raw, const Error& e) {
  AppendError(out, id_raw, e.code, e.msg());
}
void AppendCheckReply(std::string* out, std::string_view id_raw, uint64_t rev,
                      const policy::Decision& d, bool explain);
// One element of check_batch's results (no trailing comma).
void AppendDecision(std::string* out, const policy::Decision& d, bool explain);

}  // namespace gatehouse::daemon

#endif  // GATEHOUSE_DAEMON_PROTOCOL_H_
