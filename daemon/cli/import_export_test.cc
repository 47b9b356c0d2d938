#include "daemon/cli/import_export.h"

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "store/memory_store.h"

#ifndef GATEHOUSE_DEMO_WORLD
#error "GATEHOUSE_DEMO_WORLD must point at scripts/demo/world.jsonl"
#endif

namespace gatehouse::daemon::cli {
namespace {

using nlohmann::json;

struct BadCase {
  const char* line;
  const char* message_part;
};

class ImportParseErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ImportParseErrorTest, RejectsWithAMessageNamingTheProblem) {
  std::istringstream in(std::string("\n") + GetParam().line + "\n");
  std::vector<ImportLine> lines;
  std::vector<std::string> errors;
  EXPECT_FALSE(ParseImportStream(in, &lines, &errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("2: ", 0), 0u) << errors[0];  // 1-based line number
  EXPECT_NE(errors[0].find(GetParam().message_part), std::string::npos) << errors[0];
}

INSTANTIATE_TEST_SUITE_P(
    Lines, ImportParseErrorTest,
    ::testing::Values(
        BadCase{"{not json", "not valid JSON"},
        BadCase{"[1,2]", "JSON object"},
        BadCase{R"({"user":"u1"})", "missing \"type\""},
        BadCase{R"({"type":"robot"})", "unknown type \"robot\""},
        BadCase{R"({"type":"user","user":"u1"})", "missing \"email\""},
        BadCase{R"({"type":"user","user":"u1","email":"e@x","colour":"red"})", "unknown field \"colour\""},
        BadCase{R"({"type":"user","user":1,"email":"e@x"})", "\"user\" must be a string"},
        BadCase{R"({"type":"user","user":"u","email":"e@x","email_verified":"yes"})", "true or false"},
        BadCase{R"({"type":"user","user":"u","email":"e@x","org_allowance":1.5})", "integer"},
        BadCase{R"({"type":"org","org":"o","name":"n","creator":"u","features":"sso"})", "array of strings"},
        BadCase{R"({"type":"org","org":"o","name":"n","creator":"u","attrs":{"a":{"b":1}}})", "attrs.a"},
        BadCase{R"({"type":"org","org":"o","name":"n","creator":"u","sso":{"enabled":1}})", "sso.enabled"},
        BadCase{R"({"type":"org","org":"o","name":"n","creator":"u","sso":{"idp2":"x"}})", "sso.idp2"},
        BadCase{R"({"type":"org","org":"o","name":"n"})", "missing \"creator\""},
        BadCase{R"({"type":"org_member","org":"o","user":"u"})", "missing \"role\""},
        BadCase{R"({"type":"workspace","workspace":"w","org":"o"})", "missing \"name\""},
        BadCase{R"({"type":"workspace_member","workspace":"w","user":"u","role":"agent","restrictions":[]})", "restrictions"},
        BadCase{R"({"type":"workspace_member","workspace":"w","user":"u","role":"agent","restrictions":{"x":1}})", "restrictions.x"}));

TEST(ImportParseTest, MapsFieldsOntoImportRecords) {
  std::istringstream in(
      R"({"type":"user","user":"u1","email":"U1@x.com","email_verified":true,"org_allowance":2})" "\n"
      R"({"type":"org","org":"o1","name":"Acme","creator":"u1","plan":"growth","status":"FROZEN","seats":3,"workspace_limit":2,"features":["sso"],"billing":{"waba":"w-1"},"sso":{"enabled":true,"enforced":true,"idp":"idp-1","exempt_roles":["org_admin"]},"attrs":{"n":1,"f":1.5,"b":false,"z":null},"suspended":true})" "\n"
      R"({"type":"workspace_member","workspace":"w1","user":"u1","role":"manager","team":"t1","restrictions":{"no_data_export":true,"no_ws_settings":false}})" "\n");
  std::vector<ImportLine> lines;
  std::vector<std::string> errors;
  ASSERT_TRUE(ParseImportStream(in, &lines, &errors)) << errors[0];
  ASSERT_EQ(lines.size(), 3u);
  const auto& u = lines[0].record;
  EXPECT_EQ(u.kind, store::ImportRecord::Kind::kUser);
  EXPECT_EQ(u.fields.user, "u1");
  EXPECT_EQ(u.fields.email, "U1@x.com");
  EXPECT_TRUE(u.email_verified);
  EXPECT_EQ(u.fields.allowance, 2);
  const auto& o = lines[1].record;
  EXPECT_EQ(o.kind, store::ImportRecord::Kind::kOrg);
  EXPECT_EQ(o.fields.user, "u1");  // creator
  EXPECT_EQ(o.fields.status, "FROZEN");
  EXPECT_EQ(o.fields.seats, 3);
  ASSERT_TRUE(o.fields.sso.has_value());
  EXPECT_TRUE(o.fields.sso->enforced);
  EXPECT_EQ(o.fields.sso->idp, "idp-1");
  ASSERT_TRUE(o.fields.attrs.has_value());
  EXPECT_EQ(o.fields.attrs->at("n").kind, store::AttrValue::Kind::kInt);
  EXPECT_EQ(o.fields.attrs->at("f").kind, store::AttrValue::Kind::kDouble);
  EXPECT_EQ(o.fields.attrs->at("b").kind, store::AttrValue::Kind::kBool);
  EXPECT_EQ(o.fields.attrs->at("z").kind, store::AttrValue::Kind::kNull);
  EXPECT_TRUE(lines[1].suspended);
  const auto& m = lines[2].record;
  ASSERT_TRUE(m.fields.restrictions.has_value());
  EXPECT_EQ(m.fields.restrictions->at("no_data_export"), "true");
  EXPECT_EQ(m.fields.restrictions->at("no_ws_settings"), "false");
  EXPECT_EQ(m.fields.team, "t1");
}

std::vector<ImportLine> LoadDemoWorld() {
  std::ifstream in(GATEHOUSE_DEMO_WORLD);
  EXPECT_TRUE(in.good()) << GATEHOUSE_DEMO_WORLD;
  std::vector<ImportLine> lines;
  std::vector<std::string> errors;
  EXPECT_TRUE(ParseImportStream(in, &lines, &errors)) << (errors.empty() ? "" : errors[0]);
  return lines;
}

std::unique_ptr<store::Store> OpenMemory() {
  std::unique_ptr<store::Store> st;
  store::Options opt;
  store::Status s = store::OpenMemoryStore(opt, &st);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return st;
}

std::vector<json> Export(store::Store* st) {
  auto txn = st->NewReadTxn();
  EXPECT_TRUE(txn->Renew());
  std::FILE* f = std::tmpfile();
  size_t n = 0;
  store::Status s = ExportFrom(txn.get(), f, &n);
  EXPECT_TRUE(s.ok()) << s.ToString();
  txn->Reset();
  std::rewind(f);
  std::vector<json> out;
  char buf[1 << 16];
  while (std::fgets(buf, sizeof buf, f)) out.push_back(json::parse(buf));
  std::fclose(f);
  EXPECT_EQ(out.size(), n);
  return out;
}

// The demo world imports cleanly; export lists every record; importing the export into a fresh
// store and exporting again gives the same lines (a full round trip).
TEST(ImportExportTest, DemoWorldRoundTrips) {
  std::vector<ImportLine> world = LoadDemoWorld();
  ASSERT_FALSE(world.empty());
  auto st = OpenMemory();
  store::ImportStats stats;
  size_t suspended = 0;
  store::Status s = ImportInto(st.get(), world, &stats, &suspended);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(suspended, 1u);  // umbrella

  std::vector<json> exported = Export(st.get());
  EXPECT_EQ(exported.size(), world.size());
  // Every exported line is valid import input.
  std::vector<ImportLine> again;
  std::vector<std::string> errors;
  std::string text;
  for (const auto& j : exported) text += j.dump() + "\n";
  std::istringstream in(text);
  ASSERT_TRUE(ParseImportStream(in, &again, &errors)) << errors[0];

  // Spot checks against the demo file.
  bool saw_frozen = false, saw_sso = false, saw_suspended = false, saw_visibility = false,
       saw_flags = false;
  for (const auto& j : exported) {
    if (j["type"] == "org" && j["org"] == "initech") saw_frozen = j["status"] == "FROZEN";
    if (j["type"] == "org" && j["org"] == "globex")
      saw_sso = j["sso"]["enforced"] == true && j["sso"]["idp"] == "okta-globex" &&
                j["features"] == json({"sso", "webhooks"});
    if (j["type"] == "org" && j["org"] == "umbrella") saw_suspended = j.value("suspended", false);
    if (j["type"] == "workspace_member" && j["user"] == "heidi")
      saw_visibility = j["restrictions"] == json({{"contact_visibility", "assigned_only"}}) &&
                       j["team"] == "t-emea";
    if (j["type"] == "workspace_member" && j["user"] == "frank")
      saw_flags = j["restrictions"] == json({{"no_data_export", true}, {"no_integrations", true}});
  }
  EXPECT_TRUE(saw_frozen);
  EXPECT_TRUE(saw_sso);
  EXPECT_TRUE(saw_suspended);
  EXPECT_TRUE(saw_visibility);
  EXPECT_TRUE(saw_flags);

  auto st2 = OpenMemory();
  s = ImportInto(st2.get(), again, &stats, &suspended);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<json> exported2 = Export(st2.get());
  EXPECT_EQ(std::multiset<json>(exported.begin(), exported.end()),
            std::multiset<json>(exported2.begin(), exported2.end()));
}

TEST(ImportExportTest, InvariantViolationRefusesTheImport) {
  std::istringstream in(
      R"({"type":"user","user":"u1","email":"a@x.com","email_verified":true})" "\n"
      R"({"type":"org","org":"o1","name":"O","creator":"u1"})" "\n"
      R"({"type":"workspace","workspace":"w1","org":"o1","name":"W"})" "\n"
      // u1 is not a member of o1: invariant 3.
      R"({"type":"workspace_member","workspace":"w1","user":"u1","role":"agent"})" "\n");
  std::vector<ImportLine> lines;
  std::vector<std::string> errors;
  ASSERT_TRUE(ParseImportStream(in, &lines, &errors));
  auto st = OpenMemory();
  store::ImportStats stats;
  size_t suspended = 0;
  store::Status s = ImportInto(st.get(), lines, &stats, &suspended);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not a member"), std::string::npos) << s.ToString();
  EXPECT_EQ(s.message().rfind("line 4: ", 0), 0u) << s.ToString();  // the input line
}

}  // namespace
}  // namespace gatehouse::daemon::cli
