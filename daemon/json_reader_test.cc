#include "daemon/json_reader.h"

#include <string>

#include <gtest/gtest.h>

namespace gatehouse::daemon::json {
namespace {

TEST(JsonReader, ParsesObjectWithViews) {
  Document d;
  std::string line = R"({"op":"check","n":-12,"f":1.5e3,"b":true,"z":null,"a":[1,{"x":"y"}]})";
  ASSERT_TRUE(d.Parse(line)) << d.error();
  EXPECT_EQ(d.root().type, Type::kObject);
  EXPECT_EQ(d.root().size, 6u);
  int op = d.Find(0, "op");
  ASSERT_NE(op, Document::kNone);
  EXPECT_EQ(d.node(op).str, "check");
  // Unescaped strings are views into the line.
  EXPECT_GE(d.node(op).str.data(), line.data());
  EXPECT_LT(d.node(op).str.data(), line.data() + line.size());
  EXPECT_EQ(d.node(d.Find(0, "n")).raw, "-12");
  EXPECT_TRUE(d.node(d.Find(0, "n")).number_is_int);
  EXPECT_FALSE(d.node(d.Find(0, "f")).number_is_int);
  EXPECT_EQ(d.node(d.Find(0, "b")).type, Type::kTrue);
  EXPECT_EQ(d.node(d.Find(0, "z")).type, Type::kNull);
  int a = d.Find(0, "a");
  EXPECT_EQ(d.node(a).size, 2u);
  int e0 = d.FirstChild(a);
  EXPECT_EQ(d.node(e0).raw, "1");
  int e1 = d.Next(e0);
  EXPECT_EQ(d.node(d.Find(e1, "x")).str, "y");
  EXPECT_EQ(d.Find(0, "missing"), Document::kNone);
}

TEST(JsonReader, UnescapesIntoScratch) {
  Document d;
  ASSERT_TRUE(d.Parse(R"({"k\n":"a\"b\\c\/\u00e9\ud83d\ude00\t"})")) << d.error();
  int v = d.Find(0, "k\n");
  ASSERT_NE(v, Document::kNone);
  EXPECT_EQ(d.node(v).str, "a\"b\\c/\xc3\xa9\xf0\x9f\x98\x80\t");
  EXPECT_EQ(d.node(v).raw, R"("a\"b\\c\/\u00e9\ud83d\ude00\t")");
}

TEST(JsonReader, RejectsMalformed) {
  const char* bad[] = {
      "",  "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[1 2]", "{a:1}", "'x'",
      "01", "-", "1.", "1e", ".5", "+1", "tru", "nul", "NaN", "{\"a\":1} x", "\"abc",
      "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
      "\"\\u0000\"", "{\"a\":1}}", "[", "{\"a\" 1}", "/*c*/{}",
  };
  for (const char* b : bad) {
    Document d;
    EXPECT_FALSE(d.Parse(b)) << "accepted: " << b;
    EXPECT_FALSE(d.error().empty()) << b;
  }
}

TEST(JsonReader, RejectsControlCharsAndInvalidUtf8) {
  Document d;
  EXPECT_FALSE(d.Parse(std::string("\"a\tb\"")));
  EXPECT_FALSE(d.Parse(std::string("\"a\x01\"")));
  EXPECT_FALSE(d.Parse(std::string("\"a\0b\"", 5)));
  EXPECT_FALSE(d.Parse("\"\xff\""));              // invalid byte
  EXPECT_FALSE(d.Parse("\"\xc0\xaf\""));          // overlong '/'
  EXPECT_FALSE(d.Parse("\"\xed\xa0\x80\""));      // encoded surrogate
  EXPECT_FALSE(d.Parse("\"\xf4\x90\x80\x80\""));  // above U+10FFFF
  EXPECT_FALSE(d.Parse("\"\xe2\x82\""));          // truncated
  EXPECT_TRUE(d.Parse("\"\xe2\x82\xac\""));       // euro sign
  EXPECT_FALSE(IsValidUtf8("\xc3"));
  EXPECT_TRUE(IsValidUtf8("h\xc3\xa9llo"));
}

TEST(JsonReader, BoundsDepthAndNodes) {
  std::string deep(40, '[');
  deep += std::string(40, ']');
  Document d;
  EXPECT_FALSE(d.Parse(deep));
  EXPECT_NE(d.error().find("nesting"), std::string_view::npos);
  std::string ok(32, '[');
  ok += std::string(32, ']');
  EXPECT_TRUE(d.Parse(ok)) << d.error();
  Limits small;
  small.max_nodes = 3;
  EXPECT_FALSE(d.Parse("[1,2,3]", small));
  EXPECT_TRUE(d.Parse("[1,2]", small));
}

// The string scanner reads eight bytes at a time; every special byte must be found at every
// position of a word and of the tail, with the same outcome and error offset as byte by byte.
TEST(JsonReader, WordScanFindsSpecialBytesAtEveryPosition) {
  for (size_t len = 0; len < 40; ++len) {
    for (size_t pos = 0; pos < len; ++pos) {
      std::string body(len, 'a');
      Document d;
      // A control character: refused at its own offset (1 for the opening quote).
      body[pos] = '\x1f';
      ASSERT_FALSE(d.Parse("\"" + body + "\"")) << len << " " << pos;
      EXPECT_NE(d.error().find("control character in string at byte " + std::to_string(pos + 1)),
                std::string_view::npos)
          << d.error();
      // DEL (0x7f) is a valid character.
      body[pos] = '\x7f';
      std::string line = "\"" + body + "\"";  // views point into the line: keep it alive
      ASSERT_TRUE(d.Parse(line)) << d.error();
      EXPECT_EQ(d.root().str, body);
      // A quote ends the string early: what follows is trailing garbage.
      body[pos] = '"';
      EXPECT_FALSE(d.Parse("\"" + body + "\"")) << len << " " << pos;
      // An escape goes through the unescaping path.
      std::string esc = body.substr(0, pos) + "\\n" + body.substr(pos + 1);
      line = "\"" + esc + "\"";
      ASSERT_TRUE(d.Parse(line)) << d.error();
      std::string want = std::string(len, 'a');
      want[pos] = '\n';
      EXPECT_EQ(d.root().str, want);
      // Non-ASCII: valid two-byte sequence accepted, a lone continuation byte refused.
      std::string utf = body.substr(0, pos) + "\xc3\xa9" + body.substr(pos + 1);
      line = "\"" + utf + "\"";
      ASSERT_TRUE(d.Parse(line)) << d.error();
      EXPECT_EQ(d.root().str, utf);
      body[pos] = '\x80';
      ASSERT_FALSE(d.Parse("\"" + body + "\""));
      EXPECT_NE(d.error().find("invalid UTF-8 in string at byte " + std::to_string(pos + 1)),
                std::string_view::npos)
          << d.error();
    }
    // Unterminated at every length.
    Document d;
    EXPECT_FALSE(d.Parse("\"" + std::string(len, 'b')));
    EXPECT_NE(d.error().find("unterminated"), std::string_view::npos);
  }
}

TEST(JsonReader, FindComparesWholeKeys) {
  Document d;
  ASSERT_TRUE(d.Parse(R"({"":0,"a":1,"ab":2,"abc":3,"abd":4,"a":5})")) << d.error();
  EXPECT_EQ(d.node(d.Find(0, "")).raw, "0");
  EXPECT_EQ(d.node(d.Find(0, "a")).raw, "1");  // duplicate key: the first wins
  EXPECT_EQ(d.node(d.Find(0, "ab")).raw, "2");
  EXPECT_EQ(d.node(d.Find(0, "abd")).raw, "4");
  EXPECT_EQ(d.Find(0, "abe"), Document::kNone);
  EXPECT_EQ(d.Find(0, "abcd"), Document::kNone);
}

TEST(JsonReader, ReparsingReusesNodes) {
  Document d;
  std::string big = "[";
  for (int i = 0; i < 1000; ++i) big += i ? ",1" : "1";
  big += "]";
  ASSERT_TRUE(d.Parse(big));
  EXPECT_EQ(d.node_count(), 1001u);
  ASSERT_TRUE(d.Parse(R"({"k":"v"})"));
  EXPECT_EQ(d.node_count(), 3u);
  EXPECT_EQ(d.root().size, 1u);
  EXPECT_EQ(d.node(d.Find(0, "k")).str, "v");
  EXPECT_FALSE(d.Parse("[1,"));
  EXPECT_EQ(d.node_count(), 0u);
}

TEST(JsonReader, ErrorNamesOffset) {
  Document d;
  EXPECT_FALSE(d.Parse("{\"a\":tx}"));
  EXPECT_NE(d.error().find("byte 5"), std::string_view::npos) << d.error();
}

}  // namespace
}  // namespace gatehouse::daemon::json
