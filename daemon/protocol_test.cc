#include "daemon/protocol.h"

#include <string>

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
    EXPECT_NO_THROW((void)nlohmann::json::parse(reply)) << pad << ": " << reply;
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

}  // namespace
}  // namespace gatehouse::daemon
