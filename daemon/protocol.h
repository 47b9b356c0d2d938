// Protocol v1 codec for the hot ops (check, check_batch, list_actions): decode a request line
// into policy::Request values (views, no allocation) and write replies by hand.
//
// Two decoders, one language. The general path parses the line into a node tree
// (json::Document, ParseLine) and walks it (DecodeEnvelope, DecodeCheck, ...). The single-pass
// path (DecodeRequest) scans the line once and fills CheckArgs directly, for the hot ops in
// their common shape; whatever it does not accept goes through the general path, so errors
// always come from the general path. Contract: for every line, the two produce identical
// Envelope, min_rev and CheckArgs values or the identical error (protocol_test's differential
// test and fuzz_protocol_codec check it).
//
// The cold ops (writes, reads, admin) are decoded with nlohmann_json in handlers.cc.
//
// Lifetime: every view in a decoded CheckArgs points into the request line, into the
// RequestArena's Document scratch, or into the arena's kv/key buffers; valid until the arena
// decodes the next request, and only while the line's storage is unchanged.
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

struct FastCursor;  // protocol.cc: the single pass's position in the line

// Per-connection reusable decoding state.
class RequestArena {
 public:
  RequestArena();

  // Decodes one line's envelope ("op", "id"), exactly like ParseLine + DecodeEnvelope. For
  // `check`, `check_batch` and `list_actions` in their common shape (see TryFast in
  // protocol.cc: known fields only, no duplicates, strings without escapes, context of
  // auth/client/scalars) the line is scanned once and the op's arguments are decoded
  // on the way: the Decode* calls below then return them without a node tree. Anything else is
  // parsed by the general path. On failure sets *err (the general path's error) and returns
  // false. Never allocates once the arena is warm (the single-pass path never allocates: when
  // its buffers are full it defers to the general path).
  bool DecodeRequest(std::string_view line, Envelope* env, Error* err) noexcept;
  // True iff the last DecodeRequest decoded its line in one pass (and no call since needed the
  // node tree). For tests and benchmarks.
  bool single_pass() const noexcept { return fast_ != FastOp::kNone; }

  // Parses one line with the general path. On failure sets *err (bad_request) and returns false.
  bool ParseLine(std::string_view line, Error* err) noexcept;
  // The parsed line (after DecodeRequest's single pass, the line is parsed on first use).
  const json::Document& doc() noexcept {
    EnsureParsed();
    return doc_;
  }

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
  bool DecodeMinRev(bool* present, uint64_t* out, Error* err) noexcept;

  static constexpr int kFields = 11;  // known member names of a request/check object

 private:
  enum class FastOp : uint8_t { kNone, kCheck, kListActions, kBatch };

  // The single pass: true iff the line was decoded (fast_ set); false: nothing is decided and
  // the general path must run. Only accepts lines the general path accepts, with the same result.
  bool TryFast(std::string_view line, Envelope* env) noexcept;
  // Members of one check object (root or batch item) for the single pass; see protocol.cc.
  bool FastCheckField(FastCursor* c, int field, CheckArgs* a) noexcept;
  bool FastResource(FastCursor* c, policy::Request* r) noexcept;
  bool FastContext(FastCursor* c, policy::Request* r) noexcept;
  bool FastAttrs(FastCursor* c, policy::AttrList* out) noexcept;  // resource.attrs
  bool FastChecks(FastCursor* c) noexcept;
  // After a single pass, parses the line with the general path (for calls it did not answer).
  void EnsureParsed() noexcept;

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

  // Single-pass state (DecodeRequest): what was decoded, and the line for EnsureParsed.
  FastOp fast_ = FastOp::kNone;
  std::string_view line_;
  CheckArgs fast_args_;  // kCheck/kListActions: the root check; kBatch: root explain/min_rev
};

// A readable, complete rendering of a CheckArgs (every field, attribute kinds and values), for
// tests and the fuzzer to compare decodes. Allocates; not for the request path.
std::string DebugString(const CheckArgs& a);

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
