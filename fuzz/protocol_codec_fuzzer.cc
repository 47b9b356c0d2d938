// Fuzzes the protocol v1 request decoder for the hot ops (daemon/protocol.h RequestArena over
// the strict JSON reader), and the reply writers over whatever was decoded.
//
// Input: one request line (bytes, as a client would send them).
// Extra oracles: any line the strict reader accepts must also parse with nlohmann_json (the
// cold-op decoder), or the two decoders would disagree about what a request is; and the
// single-pass decoder (RequestArena::DecodeRequest) must observe exactly what the general path
// (ParseLine + DecodeEnvelope + Decode*) observes: the same envelope, min_rev and CheckArgs, or
// the same error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "daemon/json_reader.h"
#include "daemon/protocol.h"

namespace gd = gatehouse::daemon;

namespace {

void Touch(std::string_view s) {
  volatile char c = 0;
  for (char x : s) c = static_cast<char>(c ^ x);
  (void)c;
}

void TouchRequest(const gatehouse::policy::Request& r) {
  Touch(r.user);
  Touch(r.action);
  Touch(r.org);
  Touch(r.workspace);
  Touch(r.resource_type);
  Touch(r.resource_id);
  for (const auto& kv : r.resource_attrs) {
    Touch(kv.key);
    Touch(kv.value.s);
  }
  for (const auto& kv : r.context_attrs) {
    Touch(kv.key);
    Touch(kv.value.s);
  }
  Touch(r.auth_method);
  Touch(r.auth_idp);
  Touch(r.client);
}

// Everything a handler can observe of one line's decode, as text (the line's own op first:
// the decode the single pass answers; then the others, which parse the line on demand).
std::string Observe(gd::RequestArena* arena, std::string_view line, bool single_pass) {
  gd::Envelope env;
  gd::Error err;
  auto error = [&] {
    return std::string(gd::ErrorCodeName(err.code)) + ": " + std::string(err.msg()) + "\n";
  };
  bool ok = single_pass ? arena->DecodeRequest(line, &env, &err)
                        : arena->ParseLine(line, &err) && arena->DecodeEnvelope(&env, &err);
  if (!ok) return "envelope " + error();
  std::string out = std::string(env.op) + " " + std::string(env.id_raw) + "\n";
  bool has = false;
  uint64_t min_rev = 0;
  out += arena->DecodeMinRev(&has, &min_rev, &err)
             ? std::to_string(has) + ":" + std::to_string(min_rev) + "\n"
             : error();
  auto check = [&](bool require_action) {
    gd::CheckArgs a;
    out += arena->DecodeCheck(&a, require_action, &err) ? gd::DebugString(a) + "\n" : error();
  };
  auto batch = [&] {
    gd::CheckArgs top;
    if (!arena->DecodeCheckBatch(&top, &err)) {
      out += error();
      return;
    }
    out += gd::DebugString(top) + "\n";
    for (const auto& c : arena->checks()) out += gd::DebugString(c) + "\n";
  };
  if (env.op == "check_batch") {
    batch();
    check(true);
  } else {
    check(env.op != "list_actions");
    check(env.op == "list_actions");
    batch();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 16) return 0;
  static gd::RequestArena* arena = new gd::RequestArena();  // reused, like a connection's
  std::string_view line(reinterpret_cast<const char*>(data), size);
  {
    static gd::RequestArena* fast = new gd::RequestArena();
    static gd::RequestArena* general = new gd::RequestArena();
    if (Observe(fast, line, true) != Observe(general, line, false)) __builtin_trap();
  }
  gd::Error err;
  std::string out;
  if (!arena->ParseLine(line, &err)) {
    gd::AppendError(&out, "null", err);
    return 0;
  }
  // nlohmann may refuse a number out of double range (1e999) that the strict reader keeps as
  // raw text (RFC 8259 allows such limits); any other disagreement is a bug.
  try {
    nlohmann::json parsed = nlohmann::json::parse(line.begin(), line.end());
    (void)parsed;
  } catch (const nlohmann::json::out_of_range&) {
  } catch (const nlohmann::json::parse_error& e) {
    if (std::string_view(e.what()).find("number overflow") == std::string_view::npos) {
      __builtin_trap();
    }
  }
  if (arena->doc().root().type != gd::json::Type::kObject) return 0;
  gd::Envelope env;
  if (!arena->DecodeEnvelope(&env, &err)) {
    gd::AppendError(&out, "null", err);
    return 0;
  }
  gatehouse::policy::Decision d{true, "role:owner", "granted"};
  gd::CheckArgs args;
  if (arena->DecodeCheck(&args, /*require_action=*/true, &err)) {
    TouchRequest(args.req);
    if (!gd::IsValidId(args.req.user)) __builtin_trap();  // user is required and validated
    gd::AppendCheckReply(&out, env.id_raw, 7, d, args.explain);
  } else {
    if (err.len > sizeof(err.message)) __builtin_trap();
    gd::AppendError(&out, env.id_raw, err);
  }
  if (arena->DecodeCheck(&args, /*require_action=*/false, &err)) TouchRequest(args.req);
  gd::CheckArgs top;
  if (arena->DecodeCheckBatch(&top, &err)) {
    // protocol.md: at most kMaxBatch checks (an empty batch is accepted and answers []).
    if (arena->checks().size() > gd::kMaxBatch) __builtin_trap();
    std::string frag;
    for (const auto& c : arena->checks()) {
      TouchRequest(c.req);
      gd::AppendDecision(&frag, d, c.explain);
    }
  }
  // Every reply is one line of valid JSON.
  if (!out.empty()) {
    size_t start = 0;
    while (start < out.size()) {
      size_t nl = out.find('\n', start);
      if (nl == std::string::npos) __builtin_trap();
      std::string_view reply(out.data() + start, nl - start);
      if (reply.front() == '{') {
        // The id is echoed as raw JSON text, so an out-of-double-range number id (1e400) comes
        // back as such: valid JSON that nlohmann refuses (known, docs/security.md).
        try {
          nlohmann::json parsed = nlohmann::json::parse(reply.begin(), reply.end());
          (void)parsed;
        } catch (const nlohmann::json::out_of_range&) {
        } catch (const nlohmann::json::parse_error& e) {
          if (std::string_view(e.what()).find("number overflow") == std::string_view::npos) {
            __builtin_trap();
          }
        }
      }
      start = nl + 1;
    }
  }
  return 0;
}
