#include "daemon/protocol.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace gatehouse::daemon {
namespace {

struct Decoded {
  RequestArena arena;
  Envelope env;
  CheckArgs args;
  Error err;
};

bool DecodeCheckLine(Decoded* d, const std::string& line) {
  return d->arena.ParseLine(line, &d->err) && d->arena.DecodeEnvelope(&d->env, &d->err) &&
         d->arena.DecodeCheck(&d->args, true, &d->err);
}

TEST(Protocol, DecodesFullCheck) {
  Decoded d;
  std::string line =
      R"({"id":"r-1","op":"check","user":"u1","action":"conversation.reply","org":"o1",)"
      R"("workspace":"w1","resource":{"type":"conversation","id":"c9","attrs":{"assignee":"u1",)"
      R"("team":"t2","n":3,"x":1.5,"b":false,"z":null}},"context":{"auth":{"method":"sso",)"
      R"("idp":"idp-1","age_s":600},"client":"web","geo":{"country":"DE"},"tags":["a"]},)"
      R"("explain":true,"min_rev":42,"unknown_field":{"ignored":[1,2]}})";
  ASSERT_TRUE(DecodeCheckLine(&d, line)) << d.err.msg();
  EXPECT_EQ(d.env.op, "check");
  EXPECT_EQ(d.env.id_raw, "\"r-1\"");
  const policy::Request& r = d.args.req;
  EXPECT_EQ(r.user, "u1");
  EXPECT_EQ(r.action, "conversation.reply");
  EXPECT_EQ(r.org, "o1");
  EXPECT_EQ(r.workspace, "w1");
  EXPECT_EQ(r.resource_type, "conversation");
  EXPECT_EQ(r.resource_id, "c9");
  ASSERT_EQ(r.resource_attrs.size(), 6u);
  EXPECT_EQ(r.resource_attrs[0].key, "assignee");
  EXPECT_EQ(r.resource_attrs[0].value.s, "u1");
  EXPECT_EQ(r.resource_attrs[2].value.kind, policy::Value::Kind::kInt);
  EXPECT_EQ(r.resource_attrs[2].value.i, 3);
  EXPECT_EQ(r.resource_attrs[3].value.kind, policy::Value::Kind::kDouble);
  EXPECT_EQ(r.resource_attrs[4].value.kind, policy::Value::Kind::kBool);
  EXPECT_EQ(r.resource_attrs[5].value.kind, policy::Value::Kind::kNull);
  EXPECT_EQ(r.auth_method, "sso");
  EXPECT_EQ(r.auth_idp, "idp-1");
  EXPECT_EQ(r.auth_age_s, 600);
  EXPECT_EQ(r.client, "web");
  ASSERT_EQ(r.context_attrs.size(), 1u);
  EXPECT_EQ(r.context_attrs[0].key, "geo.country");
  EXPECT_EQ(r.context_attrs[0].value.s, "DE");
  EXPECT_TRUE(d.args.explain);
  EXPECT_TRUE(d.args.has_min_rev);
  EXPECT_EQ(d.args.min_rev, 42u);
}

TEST(Protocol, FlattensSiblingsWithTheirOwnPrefix) {
  Decoded d;
  ASSERT_TRUE(DecodeCheckLine(
      &d, R"({"op":"check","user":"u","action":"a","org":"o","context":{"a":{"x":1,"y":2},"b":3}})"))
      << d.err.msg();
  ASSERT_EQ(d.args.req.context_attrs.size(), 3u);
  EXPECT_EQ(d.args.req.context_attrs[0].key, "a.x");
  EXPECT_EQ(d.args.req.context_attrs[1].key, "a.y");
  EXPECT_EQ(d.args.req.context_attrs[2].key, "b");
}

TEST(Protocol, WrongTypesNameTheField) {
  struct Case {
    const char* line;
    const char* message;
  } cases[] = {
      {R"({"op":"check","user":5,"action":"a","org":"o"})", "field 'user' must be a string"},
      {R"({"op":"check","action":"a","org":"o"})", "missing field 'user'"},
      {R"({"op":"check","user":"u","org":"o"})", "missing field 'action'"},
      {R"({"op":"check","user":"u","action":"a"})", "missing field 'org' or 'workspace'"},
      {R"({"op":"check","user":"u","action":"a","org":["o"]})", "field 'org' must be a string"},
      {R"({"op":"check","user":"u","action":"a","org":"o","explain":"yes"})",
       "field 'explain' must be a boolean"},
      {R"({"op":"check","user":"u","action":"a","org":"o","min_rev":-1})",
       "field 'min_rev' must be a non-negative integer"},
      {R"({"op":"check","user":"u","action":"a","org":"o","resource":"r"})",
       "field 'resource' must be an object"},
      {R"({"op":"check","user":"u","action":"a","org":"o","resource":{"attrs":{"k":[1]}}})",
       "field 'resource.attrs.k' must be a scalar"},
      {R"({"op":"check","user":"u","action":"a","org":"o","context":{"auth":{"age_s":"1"}}})",
       "field 'context.auth.age_s' must be a number"},
      // Fuzz finding (fuzz_protocol_codec): a double beyond int64 was cast (UB); now refused.
      {R"({"op":"check","user":"u","action":"a","org":"o","context":{"auth":{"age_s":6.2e19}}})",
       "field 'context.auth.age_s' is too large"},
      {R"({"op":"check","user":"u","action":"a","org":"o","context":{"auth":{"age_s":-0.5}}})",
       "field 'context.auth.age_s' must be >= 0"},
      {R"({"op":"check","user":"","action":"a","org":"o"})", "field 'user' must be an identifier"},
      {R"({"op":"check","user":"a\u0001b","action":"a","org":"o"})",
       "field 'user' must be an identifier"},
  };
  for (const Case& c : cases) {
    Decoded d;
    EXPECT_FALSE(DecodeCheckLine(&d, c.line)) << c.line;
    EXPECT_EQ(d.err.code, ErrorCode::kBadRequest);
    EXPECT_NE(d.err.msg().find(c.message), std::string_view::npos)
        << c.line << " -> " << d.err.msg();
  }
}

TEST(Protocol, EnvelopeErrors) {
  Decoded d;
  EXPECT_FALSE(d.arena.ParseLine("{nope", &d.err));
  EXPECT_NE(d.err.msg().find("invalid JSON"), std::string_view::npos);
  ASSERT_TRUE(d.arena.ParseLine("[1]", &d.err));
  EXPECT_FALSE(d.arena.DecodeEnvelope(&d.env, &d.err));
  EXPECT_NE(d.err.msg().find("must be a JSON object"), std::string_view::npos);
  ASSERT_TRUE(d.arena.ParseLine(R"({"id":{"a":1},"op":"x"})", &d.err));
  EXPECT_FALSE(d.arena.DecodeEnvelope(&d.env, &d.err));
  EXPECT_NE(d.err.msg().find("field 'id' must be a scalar"), std::string_view::npos);
  ASSERT_TRUE(d.arena.ParseLine(R"({"id":null,"op":1})", &d.err));
  EXPECT_FALSE(d.arena.DecodeEnvelope(&d.env, &d.err));
  EXPECT_NE(d.err.msg().find("field 'op' must be a string"), std::string_view::npos);
  // Ids of every scalar kind are echoed verbatim.
  for (const char* id : {"null", "7", "-1.5e3", "true", R"("a\"b")"}) {
    std::string line = std::string(R"({"op":"health","id":)") + id + "}";
    ASSERT_TRUE(d.arena.ParseLine(line, &d.err));
    ASSERT_TRUE(d.arena.DecodeEnvelope(&d.env, &d.err));
    EXPECT_EQ(d.env.id_raw, id);
  }
}

TEST(Protocol, BatchDecodesAllChecksAndNamesIndex) {
  Decoded d;
  std::string line = R"({"op":"check_batch","explain":true,"checks":[)";
  for (int i = 0; i < 3; ++i) {
    if (i) line += ",";
    line += R"({"user":"u)" + std::to_string(i) +
            R"(","action":"a","org":"o","resource":{"attrs":{"k":)" + std::to_string(i) + "}}}";
  }
  line += "]}";
  ASSERT_TRUE(d.arena.ParseLine(line, &d.err));
  CheckArgs top;
  ASSERT_TRUE(d.arena.DecodeCheckBatch(&top, &d.err)) << d.err.msg();
  ASSERT_EQ(d.arena.checks().size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(d.arena.checks()[i].req.user, "u" + std::to_string(i));
    ASSERT_EQ(d.arena.checks()[i].req.resource_attrs.size(), 1u);
    EXPECT_EQ(d.arena.checks()[i].req.resource_attrs[0].value.i, i);
    EXPECT_TRUE(d.arena.checks()[i].explain);
  }
  ASSERT_TRUE(d.arena.ParseLine(
      R"({"op":"check_batch","checks":[{"user":"u","action":"a","org":"o"},{"user":1}]})", &d.err));
  EXPECT_FALSE(d.arena.DecodeCheckBatch(&top, &d.err));
  EXPECT_NE(d.err.msg().find("field 'checks[1].user' must be a string"), std::string_view::npos)
      << d.err.msg();
  std::string big = R"({"op":"check_batch","checks":[)";
  for (int i = 0; i < 1001; ++i) big += i ? ",{}" : "{}";
  big += "]}";
  ASSERT_TRUE(d.arena.ParseLine(big, &d.err));
  EXPECT_FALSE(d.arena.DecodeCheckBatch(&top, &d.err));
  EXPECT_NE(d.err.msg().find("at most 1000"), std::string_view::npos);
}

TEST(Protocol, IsValidIdAtEveryPosition) {
  for (size_t len = 1; len <= 24; ++len) {
    EXPECT_TRUE(IsValidId(std::string(len, 'u')));
    for (size_t pos = 0; pos < len; ++pos) {
      for (int c = 0; c < 256; ++c) {
        std::string s(len, 'u');
        s[pos] = static_cast<char>(c);
        bool want = c >= 0x20 && c != 0x7f;
        ASSERT_EQ(IsValidId(s), want) << len << " " << pos << " " << c;
      }
    }
  }
  EXPECT_FALSE(IsValidId(""));
  EXPECT_TRUE(IsValidId(std::string(128, 'x')));
  EXPECT_FALSE(IsValidId(std::string(129, 'x')));
}

TEST(Protocol, TruncatedErrorMessageStaysValidUtf8) {
  // A long non-ASCII field name in an error message is cut to the message buffer; the cut must
  // not split a UTF-8 sequence (the reply would be invalid JSON). Fuzz finding.
  for (size_t pad = 0; pad < 4; ++pad) {
    std::string key = std::string(pad, 'k');
    for (int i = 0; i < 100; ++i) key += "\xe8\x90\x8f";  // U+840F, 3 bytes
    const std::string line = R"({"op":"check","user":"u","action":"a","org":"o","resource":{"attrs":{")" +
                             key + R"(":{"x":1}}}})";
    Decoded d;
    EXPECT_FALSE(DecodeCheckLine(&d, line));
    std::string_view m = d.err.msg();
    ASSERT_GT(m.size(), 100u);
    EXPECT_LT(m.size(), sizeof(d.err.message));
    std::string reply;
    AppendError(&reply, "null", d.err);
    EXPECT_NO_THROW({
      nlohmann::json parsed = nlohmann::json::parse(reply);
      (void)parsed;
    }) << pad << ": " << reply;
  }
}

TEST(Protocol, DuplicateKeysFirstWinsAndErrorOrderIsFixed) {
  Decoded d;
  // Named: the decoded views point into the line, so it must outlive the checks below.
  const std::string dup = R"({"op":"check","user":"u1","user":"u2","action":"a","org":"o1","org":7})";
  ASSERT_TRUE(DecodeCheckLine(&d, dup)) << d.err.msg();
  EXPECT_EQ(d.args.req.user, "u1");
  EXPECT_EQ(d.args.req.org, "o1");
  // Several problems: the one of the earlier field in the fixed order (user, action, org,
  // workspace, resource, context, explain, min_rev) is reported, whatever the member order.
  Decoded e;
  EXPECT_FALSE(DecodeCheckLine(&e, R"({"op":"check","min_rev":-1,"org":5,"user":"u","action":"a"})"));
  EXPECT_NE(e.err.msg().find("field 'org' must be a string"), std::string_view::npos)
      << e.err.msg();
  // Integers: exact at the int64 / uint64 edges, out of range beyond.
  Decoded f;
  ASSERT_TRUE(DecodeCheckLine(
      &f, R"({"op":"check","user":"u","action":"a","org":"o","min_rev":18446744073709551615,)"
          R"("resource":{"attrs":{"a":-9223372036854775808,"b":9223372036854775807,)"
          R"("c":9223372036854775808,"d":-0}}})"))
      << f.err.msg();
  EXPECT_EQ(f.args.min_rev, UINT64_MAX);
  const auto& at = f.args.req.resource_attrs;
  ASSERT_EQ(at.size(), 4u);
  EXPECT_EQ(at[0].value.kind, policy::Value::Kind::kInt);
  EXPECT_EQ(at[0].value.i, INT64_MIN);
  EXPECT_EQ(at[1].value.i, INT64_MAX);
  EXPECT_EQ(at[2].value.kind, policy::Value::Kind::kDouble);  // beyond int64: a double
  EXPECT_EQ(at[3].value.kind, policy::Value::Kind::kInt);
  EXPECT_EQ(at[3].value.i, 0);
  Decoded g;
  EXPECT_FALSE(DecodeCheckLine(
      &g, R"({"op":"check","user":"u","action":"a","org":"o","min_rev":18446744073709551616})"));
  EXPECT_NE(g.err.msg().find("field 'min_rev' is out of range"), std::string_view::npos)
      << g.err.msg();
}

TEST(Protocol, RootContextForListOps) {
  Decoded d;
  ASSERT_TRUE(d.arena.ParseLine(
      R"({"op":"list_users","org":"o","context":{"auth":{"method":"sso","age_s":5},"geo":{"c":"DE"}}})",
      &d.err));
  policy::Request r;
  ASSERT_TRUE(d.arena.DecodeRootContext(&r, &d.err)) << d.err.msg();
  EXPECT_EQ(r.auth_method, "sso");
  EXPECT_EQ(r.auth_age_s, 5);
  ASSERT_EQ(r.context_attrs.size(), 1u);
  EXPECT_EQ(r.context_attrs[0].key, "geo.c");
  ASSERT_TRUE(d.arena.ParseLine(R"({"op":"list_users","org":"o","context":"x"})", &d.err));
  EXPECT_FALSE(d.arena.DecodeRootContext(&r, &d.err));
  EXPECT_NE(d.err.msg().find("field 'context' must be an object"), std::string_view::npos);
}

TEST(Protocol, RepliesAreWellFormed) {
  std::string out;
  policy::Decision allow{true, "ws-role-grants", "granted"};
  policy::Decision deny{false, "", "not_member"};
  AppendCheckReply(&out, "1", 57, allow, true);
  EXPECT_EQ(out,
            R"({"id":1,"ok":true,"allow":true,"rev":57,"rule":"ws-role-grants","reason":"granted"})"
            "\n");
  out.clear();
  AppendCheckReply(&out, "null", 3, allow, false);
  EXPECT_EQ(out, "{\"id\":null,\"ok\":true,\"allow\":true,\"rev\":3}\n");
  out.clear();
  AppendCheckReply(&out, "\"x\"", 3, deny, false);
  EXPECT_EQ(out, "{\"id\":\"x\",\"ok\":true,\"allow\":false,\"rev\":3,\"reason\":\"not_member\"}\n");
  out.clear();
  AppendError(&out, "2", ErrorCode::kBadRequest, "field 'user' must be a \"string\"\n");
  EXPECT_EQ(out,
            "{\"id\":2,\"ok\":false,\"error\":{\"code\":\"bad_request\",\"message\":"
            "\"field 'user' must be a \\\"string\\\"\\n\"}}\n");
}

// ---- The single pass (DecodeRequest) against the general path (ParseLine + DecodeEnvelope) ----

// Everything a handler can observe of one line's decode, as text: the envelope, the root's
// min_rev, the decode of the line's own op first (the one the single pass answers), then the
// other decodes (which after a single pass parse the line on demand), and the root context.
std::string Observe(RequestArena* arena, std::string_view line, bool single_pass,
                    bool* took_single_pass = nullptr) {
  Envelope env;
  Error err;
  auto error = [&](const char* what) {
    return std::string(what) + " error " + ErrorCodeName(err.code) + ": " + std::string(err.msg()) +
           "\n";
  };
  bool ok = single_pass ? arena->DecodeRequest(line, &env, &err)
                        : arena->ParseLine(line, &err) && arena->DecodeEnvelope(&env, &err);
  if (took_single_pass) *took_single_pass = arena->single_pass();
  if (!ok) return error("envelope");
  std::string out = "op=[" + std::string(env.op) + "] id=[" + std::string(env.id_raw) + "]\n";
  bool has = false;
  uint64_t min_rev = 7;
  if (arena->DecodeMinRev(&has, &min_rev, &err)) {
    out += "min_rev=" + std::to_string(has) + ":" + std::to_string(min_rev) + "\n";
  } else {
    out += error("min_rev");
  }
  auto check = [&](bool require_action) {
    CheckArgs a;
    a.req.user = "stale";
    if (!arena->DecodeCheck(&a, require_action, &err)) {
      out += error(require_action ? "check" : "list_actions");
    } else {
      out += (require_action ? "check " : "list_actions ") + DebugString(a) + "\n";
    }
  };
  auto batch = [&] {
    CheckArgs top;
    top.req.user = "stale";
    if (!arena->DecodeCheckBatch(&top, &err)) {
      out += error("batch");
      return;
    }
    out += "batch top " + DebugString(top) + "\n";
    for (const CheckArgs& c : arena->checks()) out += "  item " + DebugString(c) + "\n";
  };
  if (env.op == "check_batch") {
    batch();
    check(true);
    check(false);
  } else if (env.op == "list_actions") {
    check(false);
    check(true);
    batch();
  } else {
    check(true);
    check(false);
    batch();
  }
  policy::Request r;
  if (arena->DecodeRootContext(&r, &err)) {
    CheckArgs a;
    a.req = r;
    out += "root context " + DebugString(a) + "\n";
  } else {
    out += error("root context");
  }
  return out;
}

// Request lines in and around the shapes the single pass accepts: random member subsets and
// orders, whitespace, duplicates, unknown members, every JSON type in every position, strings
// with escapes / non-ASCII / control characters, integers at and beyond the edges, fractions.
class LineGen {
 public:
  explicit LineGen(uint32_t seed) : rng_(seed) {}

  std::string Line() {
    clean_ = R(2) == 0;  // half the lines without odd choices: mostly the single pass's shapes
    std::vector<std::string> m;
    if (R(3) == 0) m.push_back(Member("id", W(8) == 0 ? Value(1) : Scalar()));
    static const char* kOps[] = {"check", "check", "check_batch", "check_batch", "list_actions",
                                 "health", "chec", "check\\u005fbatch"};
    const char* op = kOps[clean_ ? R(5) : R(8)];
    if (W(20) != 0) m.push_back(Member("op", W(30) == 0 ? Value(1) : Q(op)));
    if (clean_ ? std::string_view(op) == "check_batch" : R(3) == 0) {
      std::vector<std::string> items;
      int n = R(10) == 0 ? R(40) : R(4);
      for (int i = 0; i < n; ++i) items.push_back(W(25) == 0 ? Value(1) : Check(true));
      m.push_back(Member("checks", W(30) == 0 ? Scalar() : "[" + Ws() + Join(items) + Ws() + "]"));
      if (R(2)) m.push_back(Member("explain", Bool()));
      if (R(4) == 0) m.push_back(Member("min_rev", Uint()));
    } else {
      m.push_back(Check(false));
    }
    if (W(15) == 0) m.push_back(Member(R(2) ? "unknown" : "actor", Value(2)));
    Shuffle(&m);
    return Ws() + "{" + Join(m) + "}" + Ws();
  }

  // Small random edits: the lines near the accepted shapes.
  std::string Mutate(std::string s) {
    static const char kBytes[] = "{}[]\":,\\ 0123456789aetu.-+E\x7f\xc3\xa9\xe8\x90\x8f\n\t";
    int edits = 1 + R(3);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      size_t at = static_cast<size_t>(R(static_cast<int>(s.size())));
      switch (R(5)) {
        case 0: s[at] = kBytes[R(sizeof(kBytes) - 1)]; break;
        case 1: s.erase(at, 1 + static_cast<size_t>(R(3))); break;
        case 2: s.insert(at, 1, kBytes[R(sizeof(kBytes) - 1)]); break;
        case 3: {
          size_t len = 1 + static_cast<size_t>(R(12));
          s.insert(at, s.substr(at, len));
          break;
        }
        default: s.resize(at); break;
      }
    }
    return s;
  }

  int R(int n) { return static_cast<int>(rng_() % static_cast<uint32_t>(n)); }
  // An odd choice's roll: never 0 on a clean line.
  int W(int n) { return clean_ ? 1 : R(n); }

 private:
  std::string Ws() {
    static const char* kWs[] = {" ", "\t", "\r\n ", "  "};
    return R(12) == 0 ? kWs[R(4)] : "";
  }
  static std::string Q(std::string_view s) { return "\"" + std::string(s) + "\""; }
  std::string Member(std::string_view key, const std::string& value) {
    return Ws() + Q(key) + Ws() + ":" + Ws() + value + Ws();
  }
  static std::string Join(const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + v[i];
    return s;
  }
  void Shuffle(std::vector<std::string>* v) {
    for (size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[static_cast<size_t>(R(static_cast<int>(i)))]);
  }
  std::string Id() {
    switch (clean_ ? 9 + R(2) : R(24)) {
      case 0: return Q("");
      case 1: return Q("caf\xc3\xa9");
      case 2: return Q("u\\u00e9");
      case 3: return Q("a\\\"b");
      case 4: return Q("d\x7f");
      case 5: return Q(std::string(128, 'x'));
      case 6: return Q(std::string(129, 'y'));
      case 7: return Q("bad\xc3");
      case 8: return Scalar();
      default: return Q((R(2) ? "o" : "u") + std::to_string(R(50)) + (R(3) ? "" : "-w1"));
    }
  }
  std::string Bool() {
    switch (W(12)) {
      case 0: return Q("yes");
      case 1: return "null";
      case 2: return "1";
      default: return R(2) ? "true" : "false";
    }
  }
  std::string Uint() {
    static const char* kNums[] = {"0", "42", "18446744073709551615", "18446744073709551616",
                                  "-1", "1.5", "1e3", "-0", "007", "99999999999999999999999"};
    return W(3) ? std::to_string(R(100000)) : kNums[R(10)];
  }
  std::string Number() {
    static const char* kNums[] = {"-9223372036854775808", "9223372036854775807",
                                  "9223372036854775808", "-9223372036854775809", "-0", "0.5",
                                  "1e2", "-2.5E-3", "6.2e19", "1e999", "01", "-", "2.", ".5"};
    return clean_ || R(2) ? std::to_string(R(2000) - 100) : kNums[R(14)];
  }
  std::string Scalar() {
    switch (R(7)) {
      case 0: return Number();
      case 1: return "true";
      case 2: return "false";
      case 3: return "null";
      default: return Id();
    }
  }
  std::string Value(int depth) {
    if (depth <= 0 || W(4) != 0) return Scalar();
    if (R(2)) return "[" + Scalar() + "," + Value(depth - 1) + "]";
    return "{" + Member(R(2) ? "k" : "auth", Value(depth - 1)) + "}";
  }
  std::string Attrs() {
    std::vector<std::string> m;
    int n = R(5);
    static const char* kKeys[] = {"assignee", "team", "n", "assignee", "x\\u0041", "caf\xc3\xa9"};
    for (int i = 0; i < n; ++i) {
      int k = clean_ ? (R(5) == 0 ? 5 : R(4)) : R(6);
      m.push_back(Member(kKeys[k], W(10) == 0 ? Value(2) : Scalar()));
    }
    return "{" + Join(m) + "}";
  }
  std::string Resource() {
    if (W(20) == 0) return Scalar();
    std::vector<std::string> m;
    if (R(3)) m.push_back(Member("type", W(10) ? Q("conversation") : Scalar()));
    if (R(3)) m.push_back(Member("id", W(10) ? Q("c" + std::to_string(R(9))) : Scalar()));
    if (R(2)) m.push_back(Member("attrs", W(15) ? Attrs() : Scalar()));
    if (W(15) == 0) m.push_back(Member(R(2) ? "type" : "other", Scalar()));
    Shuffle(&m);
    return "{" + Join(m) + "}";
  }
  std::string Context() {
    if (W(20) == 0) return Scalar();
    std::vector<std::string> m;
    if (R(2)) {
      std::vector<std::string> a;
      static const char* kMethods[] = {"sso", "password", "google"};
      if (R(2)) a.push_back(Member("method", W(10) ? Q(kMethods[R(3)]) : Scalar()));
      if (R(3) == 0) a.push_back(Member("idp", W(10) ? Q("idp-1") : Scalar()));
      if (R(2)) a.push_back(Member("age_s", W(2) ? std::to_string(R(5000)) : Number()));
      if (W(12) == 0) a.push_back(Member(R(2) ? "method" : "level", Scalar()));
      Shuffle(&a);
      m.push_back(Member("auth", W(15) ? "{" + Join(a) + "}" : Scalar()));
    }
    if (R(2)) m.push_back(Member("client", W(10) ? Q("web") : Scalar()));
    int extra = R(3);
    static const char* kKeys[] = {"geo", "device", "auth.method", "client", "auth", "ip"};
    for (int i = 0; i < extra; ++i) {
      int k = clean_ ? (R(2) ? 0 : 5) : R(6);
      m.push_back(Member(kKeys[k], W(6) == 0 ? Value(3) : Scalar()));
    }
    Shuffle(&m);
    return "{" + Join(m) + "}";
  }
  // The members of a check (as a batch item: an object).
  std::string Check(bool item) {
    std::vector<std::string> m;
    static const char* kActions[] = {"conversation.reply", "workspace.access", "org.view", ""};
    if (W(12)) m.push_back(Member("user", Id()));
    if (W(8)) m.push_back(Member("action", W(12) ? Q(kActions[clean_ ? R(3) : R(4)]) : Scalar()));
    const int scope = clean_ ? 1 + R(3) : R(4);  // bit 0: org, bit 1: workspace
    if (scope & 1) m.push_back(Member("org", Id()));
    if (scope & 2) m.push_back(Member("workspace", Id()));
    if (R(3) == 0) m.push_back(Member("resource", Resource()));
    if (R(3) == 0) m.push_back(Member("context", Context()));
    if (R(4) == 0) m.push_back(Member("explain", Bool()));
    if (R(5) == 0) m.push_back(Member("min_rev", Uint()));
    if (W(15) == 0) m.push_back(Member(R(2) ? "user" : "org", Id()));  // duplicate
    if (item && W(20) == 0) m.push_back(Member(R(2) ? "op" : "id", Scalar()));
    Shuffle(&m);
    return item ? Ws() + "{" + Join(m) + "}" + Ws() : Join(m);
  }

  std::mt19937 rng_;
  bool clean_ = false;
};

std::vector<std::string> CorpusLines() {
  std::vector<std::string> lines;
  for (const auto& e : std::filesystem::directory_iterator(
           std::string(GATEHOUSE_SOURCE_DIR) + "/fuzz/corpus/protocol_codec")) {
    std::ifstream in(e.path(), std::ios::binary);
    lines.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return lines;
}

TEST(ProtocolSinglePass, CommonShapesTakeTheSinglePass) {
  const std::string lines[] = {
      // bench/daemon_bench.cc's check line and the fuzz corpus' first seeds
      R"({"id":1,"op":"check","user":"u1","action":"conversation.reply","org":"o1","workspace":"w1",)"
      R"("resource":{"type":"conversation","id":"c9","attrs":{"assignee":"u1","team":"t2"}},)"
      R"("context":{"auth":{"method":"sso","idp":"idp-1","age_s":600},"client":"web"},)"
      R"("explain":true,"min_rev":42})",
      R"({"op":"check_batch","checks":[{"user":"u1","action":"org.view","org":"o1"},)"
      R"({"user":"u2","action":"workspace.access","workspace":"w1","explain":true}],"explain":false})",
      R"({"op":"list_actions","user":"u1","org":"o1","context":{"ip":"10.0.0.1","n":-3,"t":true}})",
      " { \"id\" : \"r-1\" , \"op\" : \"check\" , \"user\" : \"caf\xc3\xa9\" ,\t\"action\":\"a\","
      "\"org\":\"o\",\"resource\":{\"attrs\":{\"n\":null,\"i\":-9223372036854775808}} }\r\n",
      R"({"op":"check_batch","checks":[]})",
      // numbers converted like the general path: fractions, exponents, beyond int64
      R"({"op":"check","user":"u","action":"a","org":"o","resource":{"attrs":{"d":1.5,"e":-2E3,)"
      R"("big":9223372036854775808}},"context":{"auth":{"age_s":1.9e1},"x":0.25}})",
  };
  for (const std::string& l : lines) {
    RequestArena a, b;
    bool single = false;
    std::string fast = Observe(&a, l, true, &single);
    EXPECT_TRUE(single) << l;
    EXPECT_EQ(fast, Observe(&b, l, false)) << l;
    // The op's own decode (the third line) succeeded.
    size_t own = fast.find('\n', fast.find('\n') + 1) + 1;
    EXPECT_EQ(fast.substr(own, fast.find('\n', own) - own).find("error"), std::string::npos)
        << fast;
  }
  // The corpus seeds of these shapes (so fuzz_protocol_codec starts inside the single pass).
  for (const char* name : {"p00", "p01", "p17", "p19", "p27", "p28"}) {
    std::ifstream in(std::string(GATEHOUSE_SOURCE_DIR) + "/fuzz/corpus/protocol_codec/" + name,
                     std::ios::binary);
    const std::string l((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    RequestArena arena;
    Envelope env;
    Error err;
    EXPECT_TRUE(arena.DecodeRequest(l, &env, &err) && arena.single_pass()) << name;
  }
  // The single pass answers without a node tree: a batch's items come from it.
  RequestArena a;
  Envelope env;
  Error err;
  ASSERT_TRUE(a.DecodeRequest(lines[1], &env, &err));
  CheckArgs top;
  ASSERT_TRUE(a.DecodeCheckBatch(&top, &err));
  EXPECT_TRUE(a.single_pass());
  ASSERT_EQ(a.checks().size(), 2u);
  EXPECT_EQ(a.checks()[1].req.workspace, "w1");
  EXPECT_TRUE(a.checks()[1].explain);
  EXPECT_EQ(a.doc().node_count(), 23u);  // parsed on demand
  EXPECT_FALSE(a.single_pass());
}

TEST(ProtocolSinglePass, UnusualShapesGoToTheGeneralPath) {
  const std::string lines[] = {
      R"({"op":"check","user":"u\u00e9","action":"a","org":"o"})",         // escape
      R"({"op":"check","user":"u","user":"v","action":"a","org":"o"})",    // duplicate
      R"({"op":"check","user":"u","action":"a","org":"o","x":1})",         // unknown member
      R"({"op":"check","user":"u","action":"a","org":"o","context":{"geo":{"c":"DE"}}})",
      R"({"op":"check","user":"u","action":"a","org":"o","resource":{"attrs":{"d":1e999}}})",
      R"({"op":"check","user":"u","action":"a","org":"o","context":{"auth":{"level":2}}})",
      R"({"op":"check","user":"u","action":"a","org":"o","context":{"auth.method":"sso"}})",
      R"({"op":"check","user":"u","action":"a","org":"o","context":{"auth":{"age_s":-1}}})",
      R"({"op":"check","user":"u","action":"a","org":"o","context":{"auth":{"age_s":9.3e18}}})",
      R"({"op":"check","user":"u","action":"","org":"o"})",                // an error
      R"({"op":"check","user":"u","action":"a","org":"o","checks":[]})",   // checks outside batch
      R"({"op":"health"})",
  };
  for (const std::string& l : lines) {
    RequestArena a, b;
    bool single = true;
    std::string general = Observe(&b, l, false);
    EXPECT_EQ(Observe(&a, l, true, &single), general) << l;
    EXPECT_FALSE(single) << l;
  }
  // More than kMaxBatch items: the general path's error.
  std::string big = R"({"op":"check_batch","checks":[)";
  for (size_t i = 0; i <= kMaxBatch; ++i) big += std::string(i ? "," : "") + R"({"user":"u","action":"a","org":"o"})";
  big += "]}";
  RequestArena a, b;
  bool single = true;
  std::string general = Observe(&b, big, false);
  EXPECT_NE(general.find("at most 1000 allowed"), std::string::npos);
  EXPECT_EQ(Observe(&a, big, true, &single), general);
  EXPECT_FALSE(single);
}

TEST(ProtocolSinglePass, DifferentialAgainstGeneralPath) {
  // One arena per decoder for all lines, like a connection (state must not leak between lines).
  RequestArena fast_arena, general_arena;
  LineGen gen(20261129);
  std::vector<std::string> lines = CorpusLines();
  ASSERT_GE(lines.size(), 29u);
  const size_t corpus = lines.size();
  for (int i = 0; i < 10000; ++i) lines.push_back(gen.Line());
  const size_t base = lines.size();
  for (size_t i = 0; i < base; ++i) {
    for (int k = 0; k < 3; ++k) lines.push_back(gen.Mutate(lines[i]));
  }
  size_t single = 0, single_base = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    bool took = false;
    std::string fast = Observe(&fast_arena, lines[i], true, &took);
    ASSERT_EQ(fast, Observe(&general_arena, lines[i], false)) << "line " << i << ": " << lines[i];
    single += took;
    if (i >= corpus && i < base) single_base += took;
  }
  // The generator reaches the single pass often enough for the comparison to mean something.
  EXPECT_GT(single_base, (base - corpus) / 5) << single_base;
  EXPECT_GT(single - single_base, (lines.size() - base) / 100) << single;  // mutated ones too
}

}  // namespace
}  // namespace gatehouse::daemon
