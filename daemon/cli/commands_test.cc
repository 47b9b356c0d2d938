#include "daemon/cli/commands.h"

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace gatehouse::daemon::cli {
namespace {

using nlohmann::json;

struct Parsed {
  bool ok;
  Invocation inv;
  std::string err;
};

Parsed Parse(std::vector<const char*> args, const char* env_socket = nullptr) {
  args.insert(args.begin(), "gatehouse");
  Parsed p;
  p.ok = ParseInvocation(static_cast<int>(args.size()), args.data(), env_socket, &p.inv, &p.err);
  return p;
}

// Table-driven: command line -> exact protocol request.
struct MappingCase {
  std::vector<const char*> args;
  const char* want;  // JSON
};

class MappingTest : public ::testing::TestWithParam<MappingCase> {};

TEST_P(MappingTest, BuildsTheProtocolRequest) {
  const MappingCase& c = GetParam();
  Parsed p = Parse(c.args);
  ASSERT_TRUE(p.ok) << p.err;
  EXPECT_EQ(p.inv.request, json::parse(c.want)) << p.inv.request.dump();
}

INSTANTIATE_TEST_SUITE_P(
    Commands, MappingTest,
    ::testing::Values(
        MappingCase{{"check", "--user", "u1", "--action", "conversation.reply", "--workspace", "w1"},
                    R"({"op":"check","user":"u1","action":"conversation.reply","workspace":"w1"})"},
        MappingCase{{"check", "u1", "org.view", "--org=o1", "--explain", "--min-rev", "42"},
                    R"({"op":"check","user":"u1","action":"org.view","org":"o1","explain":true,"min_rev":42})"},
        MappingCase{{"check", "u1", "conversation.reply", "--workspace", "w1", "--resource-type",
                     "conversation", "--resource-id", "c9", "--attr", "assignee=u1", "--attr",
                     "team=t2", "--auth-method", "sso", "--auth-idp", "idp-1", "--auth-age", "600",
                     "--client", "web"},
                    R"({"op":"check","user":"u1","action":"conversation.reply","workspace":"w1",
                        "resource":{"type":"conversation","id":"c9","attrs":{"assignee":"u1","team":"t2"}},
                        "context":{"auth":{"method":"sso","idp":"idp-1","age_s":600},"client":"web"}})"},
        MappingCase{{"check", "u1", "x.y", "--org", "o1", "--context", R"({"ip":"10.0.0.1"})",
                     "--auth-method", "password"},
                    R"({"op":"check","user":"u1","action":"x.y","org":"o1",
                        "context":{"ip":"10.0.0.1","auth":{"method":"password"}}})"},
        MappingCase{{"list-actions", "u1", "--workspace", "w1"},
                    R"({"op":"list_actions","user":"u1","workspace":"w1"})"},
        MappingCase{{"list-workspaces", "--user", "u1", "--org", "o1", "--action", "report.view"},
                    R"({"op":"list_workspaces","user":"u1","org":"o1","action":"report.view"})"},
        MappingCase{{"list-orgs", "u1"}, R"({"op":"list_orgs","user":"u1"})"},
        MappingCase{{"list-users", "--org", "o1", "--limit", "10"},
                    R"({"op":"list_users","org":"o1","limit":10})"},
        MappingCase{{"user", "register", "--user", "u1", "--email", "a@x.com"},
                    R"({"op":"user.register","user":"u1","email":"a@x.com"})"},
        MappingCase{{"user", "verify-email", "u1"}, R"({"op":"user.verify_email","user":"u1"})"},
        MappingCase{{"user", "set-org-allowance", "u1", "--allowance", "3"},
                    R"({"op":"user.set_org_allowance","user":"u1","allowance":3})"},
        MappingCase{{"org", "create", "--user", "u1", "--org", "o1", "--name", "Acme",
                     "--workspace", "w1", "--workspace-name", "Sales"},
                    R"({"op":"org.create","user":"u1","org":"o1","name":"Acme","workspace":"w1","workspace_name":"Sales"})"},
        MappingCase{{"org", "invite", "--org", "o1", "--email", "b@x.com", "--role", "member",
                     "--grant", "w1:agent", "--grant", "w2:manager", "--ttl", "3600", "--actor", "u1"},
                    R"({"op":"org.invite","org":"o1","email":"b@x.com","role":"member",
                        "workspaces":[{"workspace":"w1","role":"agent"},{"workspace":"w2","role":"manager"}],
                        "ttl_s":3600,"actor":"u1"})"},
        MappingCase{{"invite", "accept", "--user", "u2", "--token", "tok"},
                    R"({"op":"invite.accept","user":"u2","token":"tok"})"},
        MappingCase{{"invite", "revoke", "inv1", "--actor", "u1"},
                    R"({"op":"invite.revoke","invitation":"inv1","actor":"u1"})"},
        MappingCase{{"invite", "resend", "inv1"}, R"({"op":"invite.resend","invitation":"inv1"})"},
        MappingCase{{"org", "set-role", "--org", "o1", "--user", "u2", "--role", "user_admin"},
                    R"({"op":"org.set_role","org":"o1","user":"u2","role":"user_admin"})"},
        MappingCase{{"org", "remove-member", "--org", "o1", "--user", "u2"},
                    R"({"op":"org.remove_member","org":"o1","user":"u2"})"},
        MappingCase{{"org", "leave", "--org", "o1", "--user", "u2"},
                    R"({"op":"org.leave","org":"o1","user":"u2"})"},
        MappingCase{{"org", "set-subscription", "o1", "--plan", "growth", "--status", "FROZEN",
                     "--seats", "25", "--workspace-limit", "5", "--features", "sso,webhooks",
                     "--billing", "waba_account=acc-1"},
                    R"({"op":"org.set_subscription","org":"o1","plan":"growth","status":"FROZEN",
                        "seats":25,"workspace_limit":5,"features":["sso","webhooks"],
                        "billing":{"waba_account":"acc-1"}})"},
        MappingCase{{"org", "set-subscription", "o1", "--features="},
                    R"({"op":"org.set_subscription","org":"o1","features":[]})"},
        MappingCase{{"org", "set-security", "o1", "--sso-enabled", "--sso-enforced=true",
                     "--sso-idp", "idp-1", "--sso-exempt-roles", "org_admin"},
                    R"({"op":"org.set_security","org":"o1","sso":{"enabled":true,"enforced":true,
                        "idp":"idp-1","exempt_roles":["org_admin"]}})"},
        MappingCase{{"org", "suspend", "o1"}, R"({"op":"org.suspend","org":"o1"})"},
        MappingCase{{"org", "unsuspend", "o1"}, R"({"op":"org.unsuspend","org":"o1"})"},
        MappingCase{{"org", "update", "o1", "--name", "New", "--attr", "region=eu"},
                    R"({"op":"org.update","org":"o1","name":"New","attrs":{"region":"eu"}})"},
        MappingCase{{"org", "set-role", "--org", "o1", "--user", "u2", "--role", "member",
                     "--actor", "u1", "--auth-method", "sso", "--auth-idp", "idp-1"},
                    R"({"op":"org.set_role","org":"o1","user":"u2","role":"member","actor":"u1",
                        "context":{"auth":{"method":"sso","idp":"idp-1"}}})"},
        MappingCase{{"org", "delete", "o1", "--actor", "u1"},
                    R"({"op":"org.delete","org":"o1","actor":"u1"})"},
        MappingCase{{"workspace", "create", "--org", "o1", "--workspace", "w2", "--name", "Support"},
                    R"({"op":"workspace.create","org":"o1","workspace":"w2","name":"Support"})"},
        MappingCase{{"workspace", "update", "w2", "--name", "Help"},
                    R"({"op":"workspace.update","workspace":"w2","name":"Help"})"},
        MappingCase{{"workspace", "delete", "w2"}, R"({"op":"workspace.delete","workspace":"w2"})"},
        MappingCase{{"workspace", "set-member", "--workspace", "w1", "--user", "u3", "--role",
                     "manager", "--team", "t1", "--no-data-export", "--no-ws-settings=false"},
                    R"({"op":"workspace.set_member","workspace":"w1","user":"u3","role":"manager",
                        "team":"t1","restrictions":{"no_data_export":true,"no_ws_settings":false}})"},
        MappingCase{{"workspace", "set-member", "--workspace", "w1", "--user", "u4", "--role",
                     "agent", "--contact-visibility", "assigned_only"},
                    R"({"op":"workspace.set_member","workspace":"w1","user":"u4","role":"agent",
                        "restrictions":{"contact_visibility":"assigned_only"}})"},
        MappingCase{{"workspace", "remove-member", "--workspace", "w1", "--user", "u4"},
                    R"({"op":"workspace.remove_member","workspace":"w1","user":"u4"})"},
        MappingCase{{"user", "get", "u1"}, R"({"op":"user.get","user":"u1"})"},
        MappingCase{{"org", "get", "o1"}, R"({"op":"org.get","org":"o1"})"},
        MappingCase{{"org", "members", "o1"}, R"({"op":"org.members","org":"o1"})"},
        MappingCase{{"workspace", "get", "w1"}, R"({"op":"workspace.get","workspace":"w1"})"},
        MappingCase{{"invite", "get", "inv1"}, R"({"op":"invitation.get","invitation":"inv1"})"},
        MappingCase{{"health"}, R"({"op":"health"})"},
        MappingCase{{"stats"}, R"({"op":"stats"})"},
        MappingCase{{"changes", "--since", "5", "--limit", "2"},
                    R"({"op":"changes","since":5,"limit":2})"},
        MappingCase{{"watch", "--since", "7"}, R"({"op":"watch","since":7})"},
        MappingCase{{"policy", "reload"}, R"({"op":"policy.reload"})"},
        MappingCase{{"raw", R"({"op":"health","id":9})"}, R"({"op":"health","id":9})"},
        MappingCase{{"batch", "checks.jsonl"}, R"({"op":"check_batch","file":"checks.jsonl"})"},
        MappingCase{{"import", "world.jsonl", "--data", "d"}, R"({"file":"world.jsonl","data":"d"})"},
        MappingCase{{"export", "--data", "d", "--out", "o.jsonl"}, R"({"data":"d","out":"o.jsonl"})"},
        MappingCase{{"policy", "validate", "policies/x"}, R"({"dir":"policies/x"})"},
        MappingCase{{"policy", "test", "--dir", "policies/x"}, R"({"dir":"policies/x"})"}));

// Table-driven: bad command lines are usage errors with a message naming the problem.
struct UsageCase {
  std::vector<const char*> args;
  const char* message_part;
};

class UsageTest : public ::testing::TestWithParam<UsageCase> {};

TEST_P(UsageTest, IsAClearUsageError) {
  Parsed p = Parse(GetParam().args);
  EXPECT_FALSE(p.ok);
  EXPECT_NE(p.err.find(GetParam().message_part), std::string::npos) << p.err;
}

INSTANTIATE_TEST_SUITE_P(
    Commands, UsageTest,
    ::testing::Values(
        UsageCase{{}, "no command"},
        UsageCase{{"frobnicate"}, "unknown command 'frobnicate'"},
        UsageCase{{"org"}, "'org' needs a subcommand"},
        UsageCase{{"org", "explode"}, "unknown command 'org explode'"},
        UsageCase{{"check", "--user", "u1", "--action", "a.b"}, "--org or --workspace"},
        UsageCase{{"check", "--action", "a.b", "--org", "o1"}, "needs --user"},
        UsageCase{{"check", "u1", "a.b", "--org", "o1", "--bogus", "1"}, "unknown flag --bogus"},
        UsageCase{{"check", "u1", "a.b", "--org", "o1", "extra"}, "unexpected argument 'extra'"},
        UsageCase{{"check", "u1", "a.b", "--org", "o1", "--min-rev", "abc"}, "not an integer"},
        UsageCase{{"check", "u1", "a.b", "--org", "o1", "--min-rev", "1x"}, "not an integer"},
        UsageCase{{"check", "u1", "a.b", "--org"}, "--org needs a value"},
        UsageCase{{"check", "u1", "a.b", "--org", ""}, "--org: empty value"},
        UsageCase{{"check", "u1", "a.b", "--org", "o1", "--org", "o2"}, "--org given twice"},
        UsageCase{{"check", "u1", "a.b", "--org", "o1", "--explain=maybe"}, "not true or false"},
        UsageCase{{"check", "u1", "a.b", "--org", "o1", "--attr", "novalue"}, "KEY=VALUE"},
        UsageCase{{"check", "u1", "a.b", "--org", "o1", "--context", "[1]"}, "JSON object"},
        UsageCase{{"check", "u1", "a.b", "--org", "o1", "--context", "{bad"}, "JSON object"},
        UsageCase{{"org", "invite", "--org", "o1", "--email", "e", "--role", "member", "--grant",
                   "w1"},
                  "WORKSPACE:ROLE"},
        UsageCase{{"org", "suspend", "o1", "--actor", "u1"}, "unknown flag --actor"},
        UsageCase{{"user", "register", "--user", "u1"}, "needs --email"},
        UsageCase{{"raw", "not json"}, "one JSON object"},
        UsageCase{{"--socket"}, "--socket needs a value"},
        UsageCase{{"--timeout-ms", "0", "health"}, "--timeout-ms"},
        UsageCase{{"import", "f.jsonl"}, "needs --data DIR"}));

TEST(CommandsTest, GlobalFlagsAnywhereAndSocketFromEnv) {
  Parsed p = Parse({"health"}, "/run/g.sock");
  ASSERT_TRUE(p.ok) << p.err;
  EXPECT_EQ(p.inv.socket, "/run/g.sock");
  EXPECT_FALSE(p.inv.json);

  p = Parse({"health", "--json", "--socket", "/tmp/x.sock"}, "/run/g.sock");
  ASSERT_TRUE(p.ok) << p.err;
  EXPECT_EQ(p.inv.socket, "/tmp/x.sock");  // flag beats env
  EXPECT_TRUE(p.inv.json);

  p = Parse({"--socket=/tmp/y.sock", "--timeout-ms", "50", "check", "u", "a.b", "--org", "o"});
  ASSERT_TRUE(p.ok) << p.err;
  EXPECT_EQ(p.inv.socket, "/tmp/y.sock");
  EXPECT_EQ(p.inv.timeout_ms, 50);
  EXPECT_EQ(p.inv.cmd->kind, Kind::kCheck);

  p = Parse({"health"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.inv.socket, "./gatehouse.sock");
}

TEST(CommandsTest, ServePassesItsArgumentsThrough) {
  Parsed p = Parse({"serve", "--socket", "./s.sock", "--data", "./d", "--policy", "./p", "--json"});
  ASSERT_TRUE(p.ok) << p.err;
  EXPECT_EQ(p.inv.cmd->kind, Kind::kServe);
  EXPECT_EQ(p.inv.passthrough,
            (std::vector<std::string>{"--socket", "./s.sock", "--data", "./d", "--policy", "./p",
                                      "--json"}));
}

TEST(CommandsTest, SocketBeforeServeIsPassedToTheDaemon) {
  Parsed p = Parse({"--socket", "/tmp/a.sock", "serve", "--data", "d"});
  ASSERT_TRUE(p.ok) << p.err;
  EXPECT_EQ(p.inv.passthrough, (std::vector<std::string>{"--socket", "/tmp/a.sock", "--data", "d"}));
  p = Parse({"serve", "--data", "d"}, "/run/env.sock");  // env: the daemon reads it itself
  ASSERT_TRUE(p.ok) << p.err;
  EXPECT_EQ(p.inv.passthrough, (std::vector<std::string>{"--data", "d"}));
}

TEST(CommandsTest, Help) {
  Parsed p = Parse({"--help"});
  ASSERT_TRUE(p.ok);
  EXPECT_TRUE(p.inv.help);
  EXPECT_EQ(p.inv.cmd, nullptr);

  p = Parse({"org", "invite", "--help"});
  ASSERT_TRUE(p.ok) << p.err;
  EXPECT_TRUE(p.inv.help);
  ASSERT_NE(p.inv.cmd, nullptr);
  std::string h = CommandHelp(*p.inv.cmd);
  EXPECT_NE(h.find("usage: gatehouse org invite"), std::string::npos) << h;
  EXPECT_NE(h.find("--grant WORKSPACE:ROLE"), std::string::npos) << h;
  EXPECT_NE(h.find("--actor USER"), std::string::npos) << h;

  p = Parse({"help", "check"});
  ASSERT_TRUE(p.ok) << p.err;
  EXPECT_TRUE(p.inv.help);
  ASSERT_NE(p.inv.cmd, nullptr);
  EXPECT_STREQ(p.inv.cmd->name, "check");

  std::string top = TopLevelHelp();
  for (const auto& c : Commands()) EXPECT_NE(top.find(c.name), std::string::npos) << c.name;
}

TEST(CommandsTest, TableIsConsistent) {
  std::set<std::string> names;
  const std::set<std::string> globals = {"socket", "json", "timeout-ms", "help"};
  for (const auto& c : Commands()) {
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate command " << c.name;
    std::set<std::string> flags;
    for (const auto& f : c.flags) {
      EXPECT_TRUE(flags.insert(f.name).second) << c.name << ": duplicate flag " << f.name;
      EXPECT_FALSE(globals.count(f.name)) << c.name << ": flag shadows a global: " << f.name;
    }
    for (const char* p : c.positionals) EXPECT_TRUE(flags.count(p)) << c.name << ": " << p;
    if (c.kind == Kind::kRequest || c.kind == Kind::kCheck || c.kind == Kind::kWatch ||
        c.kind == Kind::kBatch) {
      EXPECT_STRNE(c.op, "") << c.name;
    }
  }
  // Every write op of protocol v1 is reachable from the CLI.
  std::set<std::string> ops;
  for (const auto& c : Commands()) ops.insert(c.op);
  for (const char* op :
       {"user.register", "user.verify_email", "user.set_org_allowance", "org.create", "org.update",
        "org.delete", "org.set_subscription", "org.set_security", "org.suspend", "org.unsuspend",
        "org.invite", "invite.accept", "invite.revoke", "invite.resend", "org.set_role",
        "org.remove_member", "org.leave", "workspace.create", "workspace.update",
        "workspace.delete", "workspace.set_member", "workspace.remove_member", "check",
        "check_batch", "list_actions", "list_workspaces", "list_orgs", "list_users", "health",
        "stats", "changes", "watch", "policy.reload"})
    EXPECT_TRUE(ops.count(op)) << op;
}

TEST(CommandsTest, ExitCodes) {
  const CommandSpec& check = *FindCommand("check");
  const CommandSpec& invite = *FindCommand("org invite");
  const CommandSpec& batch = *FindCommand("batch");
  EXPECT_EQ(ExitCodeForReply(check, json::parse(R"({"ok":true,"allow":true,"rev":3})")), kExitOk);
  EXPECT_EQ(ExitCodeForReply(check, json::parse(R"({"ok":true,"allow":false,"reason":"x"})")), kExitNo);
  EXPECT_EQ(ExitCodeForReply(check, json::parse(R"({"ok":false,"error":{"code":"stale"}})")), kExitError);
  EXPECT_EQ(ExitCodeForReply(check, json::parse(R"({"ok":true})")), kExitError);  // no allow
  EXPECT_EQ(ExitCodeForReply(check, json::parse(R"([1])")), kExitError);
  EXPECT_EQ(ExitCodeForReply(invite, json::parse(R"({"ok":true,"rev":9})")), kExitOk);
  EXPECT_EQ(ExitCodeForReply(invite, json::parse(R"({"ok":false,"error":{"code":"limit_exceeded","message":"seats"}})")), kExitNo);
  EXPECT_EQ(ExitCodeForReply(invite, json::parse(R"({"ok":false,"error":{"code":"internal","message":"x"}})")), kExitError);
  EXPECT_EQ(ExitCodeForReply(batch, json::parse(R"({"ok":false,"error":{"code":"bad_request"}})")), kExitError);
}

std::string Capture(const CommandSpec& cmd, const char* reply, bool raw, bool to_err = false) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  PrintReply(cmd, json::parse(reply), raw, out, err);
  std::FILE* f = to_err ? err : out;
  std::rewind(f);
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(out);
  std::fclose(err);
  return s;
}

TEST(CommandsTest, HumanOutput) {
  EXPECT_EQ(Capture(*FindCommand("check"),
                    R"({"ok":true,"allow":true,"rev":57,"rule":"ws-role-grants","reason":"granted"})",
                    false),
            "ALLOW  reason=granted rule=ws-role-grants  (rev 57)\n");
  EXPECT_EQ(Capture(*FindCommand("check"), R"({"ok":true,"allow":false,"rev":5,"reason":"not_member"})", false),
            "DENY  reason=not_member  (rev 5)\n");
  EXPECT_EQ(Capture(*FindCommand("list-actions"), R"({"ok":true,"rev":1,"actions":["a.b","c.d"]})", false),
            "a.b\nc.d\n");
  EXPECT_EQ(Capture(*FindCommand("list-orgs"),
                    R"({"ok":true,"rev":1,"orgs":[{"org":"o1","role":"member","status":"ACTIVE"}]})", false),
            "o1\tmember\tACTIVE\n");
  EXPECT_EQ(Capture(*FindCommand("org members"),
                    R"({"ok":true,"rev":3,"members":[{"user":"u1","role":"org_admin",
                        "workspaces":[{"workspace":"w1","role":"owner"},{"workspace":"w2","role":"agent"}]},
                        {"user":"u2","role":"member"}],
                        "pending_invitations":[{"invitation":"i9","email":"p@x","role":"member","expires_at":77}]})",
                    false),
            "u1\torg_admin\tw1:owner,w2:agent\nu2\tmember\t\n(pending)\tp@x\tmember\ti9\texpires_at=77\n");
  EXPECT_EQ(Capture(*FindCommand("list-users"),
                    R"({"ok":true,"rev":3,"users":[{"user":"u1","role":"agent"}],"cursor":"c2"})", false),
            "u1\tagent\n(more: --cursor c2)\n");
  EXPECT_EQ(Capture(*FindCommand("org invite"),
                    R"({"ok":true,"rev":8,"invitation":"i1","token":"secret"})", false),
            "ok (rev 8)\ninvitation: i1\ntoken: secret\n");
  EXPECT_EQ(Capture(*FindCommand("org invite"),
                    R"({"ok":false,"error":{"code":"limit_exceeded","message":"seats: 3 of 3 used"}})",
                    false, /*to_err=*/true),
            "gatehouse: limit_exceeded: seats: 3 of 3 used\n");
  EXPECT_EQ(Capture(*FindCommand("health"), R"({"id":null,"ok":true,"rev":3,"status":"serving"})", true),
            "{\"id\":null,\"ok\":true,\"rev\":3,\"status\":\"serving\"}\n");
  EXPECT_EQ(FormatChange(json::parse(R"({"rev":4,"op":"org.set_role","actor":null,"args":{"org":"o1"}})")),
            "rev 4  org.set_role  actor=-  {\"org\":\"o1\"}");
}

}  // namespace
}  // namespace gatehouse::daemon::cli
