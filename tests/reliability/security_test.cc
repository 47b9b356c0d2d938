// Security checks of docs/security.md: caller tiers through the real socket (a reader cannot
// write, a writer cannot write without an actor, no request field picks a tier), the socket's
// file mode, invitation-token secrecy (the token never appears in logs, the audit log, the
// change log or any read; only its hash is stored), and policy-directory containment
// (symlinks and subdirectories are not followed; size limits).
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "policy/policy.h"
#include "store/internal/sha256.h"
#include "tests/reliability/daemon_harness.h"

namespace gatehouse::reliability {
namespace {

using Json = nlohmann::json;

bool Ok(const std::string& reply) { return reply.find("\"ok\":true") != std::string::npos; }
std::string Code(const std::string& reply) {
  Json j = Json::parse(reply, nullptr, false);
  if (!j.is_object() || !j.contains("error")) return "";
  return j["error"].value("code", "");
}
std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Operator-seeded world: u1 org_admin of o1 (workspace w1), u2 member.
void SeedWorld(const std::string& sock) {
  for (const char* l : {
           R"({"op":"user.register","user":"u1","email":"u1@example.com"})",
           R"({"op":"user.verify_email","user":"u1"})",
           R"({"op":"user.register","user":"u2","email":"u2@example.com"})",
           R"({"op":"user.verify_email","user":"u2"})",
           R"({"op":"org.create","user":"u1","org":"o1","name":"O","workspace":"w1"})",
           R"({"op":"org.invite","org":"o1","email":"u2@example.com","role":"member"})",
       }) {
    std::string r = Call(sock, l);
    ASSERT_TRUE(Ok(r)) << l << " -> " << r;
    if (std::string(l).find("org.invite") != std::string::npos) {
      std::string tok = Json::parse(r)["token"];
      ASSERT_TRUE(Ok(Call(sock, R"({"op":"invite.accept","user":"u2","token":")" + tok + "\"}")));
    }
  }
}

TEST(SecurityTest, TiersAreEnforcedAndCannotBeChosenByTheCaller) {
  TempDir dir;
  daemon::Config cfg = TestConfig(dir.path());
  cfg.durable = false;
  {
    ChildDaemon d;  // default: our uid is the operator
    std::string err;
    ASSERT_TRUE(d.Start(cfg, dir.path() + "/log", &err)) << err;
    SeedWorld(cfg.socket_path);
    d.Stop();
  }
  const uint32_t me = static_cast<uint32_t>(::geteuid());
  const uint32_t other = me + 54321;
  const std::vector<std::string> tier_tricks = {
      R"("tier":"operator")", R"("uid":0)", R"("peer":{"uid":0,"tier":"operator"})",
      R"("as":"operator")"};

  // --- reader ---
  cfg.operators.uids = {other};
  cfg.readers.uids = {me};
  {
    ChildDaemon d;
    std::string err;
    ASSERT_TRUE(d.Start(cfg, dir.path() + "/log", &err)) << err;
    EXPECT_TRUE(Ok(Call(cfg.socket_path,
                        R"({"op":"check","user":"u1","action":"org.view","org":"o1"})")));
    for (std::string w : {R"({"op":"user.register","user":"x","email":"x@example.com")",
                          R"({"op":"org.set_role","actor":"u1","org":"o1","user":"u2","role":"user_admin")",
                          R"({"op":"org.suspend","org":"o1")", R"({"op":"stats")",
                          R"({"op":"policy.reload")"}) {
      EXPECT_EQ(Code(Call(cfg.socket_path, w + "}")), "forbidden") << w;
      for (const auto& t : tier_tricks) {
        EXPECT_EQ(Code(Call(cfg.socket_path, w + "," + t + "}")), "forbidden") << w << t;
      }
    }
    d.Stop();
  }
  // --- writer ---
  cfg.readers.uids.clear();
  cfg.writers.uids = {me};
  {
    ChildDaemon d;
    std::string err;
    ASSERT_TRUE(d.Start(cfg, dir.path() + "/log", &err)) << err;
    // Without an actor a write needs the operator tier.
    EXPECT_EQ(Code(Call(cfg.socket_path,
                        R"({"op":"org.set_role","org":"o1","user":"u2","role":"user_admin"})")),
              "forbidden");
    for (const auto& t : tier_tricks) {
      EXPECT_EQ(Code(Call(cfg.socket_path, R"({"op":"org.set_role","org":"o1","user":"u2","role":"user_admin",)" + t + "}")),
                "forbidden") << t;
    }
    // Operator-only ops stay forbidden even with an actor.
    EXPECT_EQ(Code(Call(cfg.socket_path,
                        R"({"op":"user.set_org_allowance","actor":"u1","user":"u2","allowance":9})")),
              "forbidden");
    EXPECT_EQ(Code(Call(cfg.socket_path, R"({"op":"org.suspend","actor":"u1","org":"o1"})")),
              "forbidden");
    // The actor's permissions decide: a member may not assign roles; an org_admin may.
    EXPECT_EQ(Code(Call(cfg.socket_path,
                        R"({"op":"org.set_role","actor":"u2","org":"o1","user":"u2","role":"org_admin"})")),
              "forbidden");
    EXPECT_TRUE(Ok(Call(cfg.socket_path,
                        R"({"op":"org.set_role","actor":"u1","org":"o1","user":"u2","role":"user_admin"})")));
    // An unknown actor gets nothing.
    EXPECT_EQ(Code(Call(cfg.socket_path,
                        R"({"op":"org.set_role","actor":"ghost","org":"o1","user":"u2","role":"member"})")),
              "forbidden");
    d.Stop();
  }
  // --- nobody ---
  cfg.writers.uids.clear();
  {
    ChildDaemon d;
    std::string err;
    // Start() waits for health, which a tier-less caller cannot get: start and probe by hand.
    d.Start(cfg, dir.path() + "/log", &err, 1000);
    std::string r;
    for (int i = 0; i < 300 && r.empty(); ++i) {  // up to ~30 s under sanitizers
      ASSERT_TRUE(d.Alive());
      r = Call(cfg.socket_path, R"({"op":"health"})", 1000);
      if (r.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(Code(r), "forbidden") << r;
    EXPECT_EQ(Code(Call(cfg.socket_path,
                        R"({"op":"check","user":"u1","action":"org.view","org":"o1","tier":"operator"})")),
              "forbidden");
    d.Stop();
  }
}

TEST(SecurityTest, SocketFileModeIs0660ByDefault) {
  TempDir dir;
  daemon::Config cfg = TestConfig(dir.path());
  cfg.durable = false;
  ChildDaemon d;
  std::string err;
  ASSERT_TRUE(d.Start(cfg, "", &err)) << err;
  struct stat st {};
  ASSERT_EQ(::stat(cfg.socket_path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  d.Stop();
}

TEST(SecurityTest, InvitationTokenNeverAppearsInLogsChangesOrReads) {
  TempDir dir;
  daemon::Config cfg = TestConfig(dir.path());
  cfg.durable = false;
  cfg.audit_log = dir.path() + "/audit.jsonl";
  cfg.log_decisions = true;
  cfg.log_level = "debug";
  const std::string log = dir.path() + "/daemon.log";
  ChildDaemon d;
  std::string err;
  ASSERT_TRUE(d.Start(cfg, log, &err)) << err;
  const std::string& s = cfg.socket_path;
  SeedWorld(s);
  ASSERT_TRUE(Ok(Call(s, R"({"op":"user.register","user":"u3","email":"u3@example.com"})")));
  ASSERT_TRUE(Ok(Call(s, R"({"op":"user.verify_email","user":"u3"})")));
  std::string r = Call(s, R"({"op":"org.invite","actor":"u1","org":"o1","email":"U3@example.com","role":"member"})");
  ASSERT_TRUE(Ok(r)) << r;
  Json j = Json::parse(r);
  const std::string t1 = j["token"], inv = j["invitation"];
  // Random, 256-bit, hex.
  EXPECT_EQ(t1.size(), 64u);
  EXPECT_EQ(t1.find_first_not_of("0123456789abcdef"), std::string::npos);
  r = Call(s, R"({"op":"invite.resend","actor":"u1","invitation":")" + inv + "\"}");
  ASSERT_TRUE(Ok(r)) << r;
  const std::string t2 = Json::parse(r)["token"];
  EXPECT_NE(t1, t2);
  // The old token stops working; a wrong token is not echoed back.
  r = Call(s, R"({"op":"invite.accept","user":"u3","token":")" + t1 + "\"}");
  EXPECT_EQ(Code(r), "not_found") << r;
  EXPECT_EQ(r.find(t1), std::string::npos) << "token echoed in an error: " << r;
  r = Call(s, R"({"op":"invite.accept","user":"u3","token":")" + t2 + "\"}");
  ASSERT_TRUE(Ok(r)) << r;
  r = Call(s, R"({"op":"invite.accept","user":"u3","token":")" + t2 + "\"}");  // replay
  EXPECT_FALSE(Ok(r)) << r;

  std::string everything;
  everything += Call(s, R"({"op":"changes","since":0,"limit":1000})");
  everything += Call(s, R"({"op":"invitation.get","invitation":")" + inv + "\"}");
  everything += Call(s, R"({"op":"org.get","org":"o1"})");
  everything += Call(s, R"({"op":"org.members","org":"o1"})");
  everything += Call(s, R"({"op":"user.get","user":"u3"})");
  everything += Call(s, R"({"op":"stats"})");
  ASSERT_NE(everything.find("invite.resend"), std::string::npos) << "changes not read";
  d.Stop();  // flushes the audit log
  everything += ReadFile(log);
  everything += ReadFile(cfg.audit_log);
  ASSERT_NE(ReadFile(cfg.audit_log).find("invite.accept"), std::string::npos)
      << "audit log has no write records";
  for (const std::string& tok : {t1, t2}) {
    EXPECT_EQ(everything.find(tok), std::string::npos) << "token leaked";
    const std::string hash_hex = store::internal::HexEncode(store::internal::Sha256Of(tok));
    EXPECT_EQ(everything.find(hash_hex), std::string::npos) << "token hash leaked";
  }
  // The store keeps only the hash: the raw token is not in the data file either.
  std::string data;
  for (const auto& e : std::filesystem::directory_iterator(cfg.data_dir)) {
    data += ReadFile(e.path());
  }
  ASSERT_FALSE(data.empty());
  EXPECT_EQ(data.find(t2), std::string::npos) << "raw token stored";
}

// --- Policy directory containment and limits (policy/loader.cc LoadPolicyDir). ---

const char* kGood = R"(version: 1
name: good
actions: {org: [org.view, org.delete]}
roles: {org: {member: {grants: [org.view]}}}
)";
const char* kEvil = R"(name: evil
rules:
  - {id: evil-allow-all, effect: allow, actions: ["*"]}
)";

TEST(SecurityTest, PolicyLoaderDoesNotFollowSymlinksOrSubdirectories) {
  TempDir dir;
  namespace fs = std::filesystem;
  const fs::path pol = fs::path(dir.path()) / "policy";
  const fs::path outside = fs::path(dir.path()) / "outside";
  fs::create_directories(pol / "sub");
  fs::create_directories(outside);
  std::ofstream(pol / "a.yaml") << kGood;
  std::ofstream(outside / "evil.yaml") << kEvil;
  std::ofstream(pol / "sub" / "evil.yaml") << kEvil;
  fs::create_symlink(outside / "evil.yaml", pol / "link.yaml");        // file symlink out
  fs::create_symlink("../outside/evil.yaml", pol / "rel.yaml");        // relative, via ..
  fs::create_directory_symlink(outside, pol / "dirlink.yaml");         // dir named *.yaml
  std::vector<policy::Issue> issues;
  auto p = policy::LoadPolicyDir(pol.string(), &issues);
  ASSERT_TRUE(p) << (issues.empty() ? "" : issues[0].ToString());
  auto info = policy::Info(*p);
  EXPECT_EQ(info.name, "good");
  EXPECT_EQ(info.files, 1u);
  EXPECT_EQ(info.rules, 0u);
  // A path with .. components still resolves to the directory named (the operator's choice);
  // nothing outside it is read.
  auto p2 = policy::LoadPolicyDir((pol / ".." / "policy").string(), &issues);
  ASSERT_TRUE(p2);
  EXPECT_EQ(policy::Info(*p2).name, "good");
}

TEST(SecurityTest, PolicyLoaderEnforcesSizeLimits) {
  std::string big = kGood;
  big += "description: \"" + std::string(2 << 20, 'x') + "\"\n";
  std::vector<policy::Issue> issues;
  auto p = policy::LoadPolicySources({{"big.yaml", big}}, &issues);
  EXPECT_FALSE(p);
  ASSERT_FALSE(issues.empty());
  // Too many rules.
  std::string many = kGood;
  many += "rules:\n";
  for (int i = 0; i < 50; ++i) {
    many += "  - {id: r" + std::to_string(i) + ", effect: allow, actions: [org.view]}\n";
  }
  policy::LoadOptions small;
  small.max_rules = 10;
  issues.clear();
  EXPECT_FALSE(policy::LoadPolicySources({{"many.yaml", many}}, &issues, small));
  EXPECT_FALSE(issues.empty());
  // Deep expressions are refused at load time, not at request time.
  std::string deep = kGood;
  deep += "rules:\n  - id: deep\n    effect: allow\n    actions: [org.view]\n    condition: '" +
          std::string(200, '(') + "true" + std::string(200, ')') + "'\n";
  issues.clear();
  EXPECT_FALSE(policy::LoadPolicySources({{"deep.yaml", deep}}, &issues));
  EXPECT_FALSE(issues.empty());
}

}  // namespace
}  // namespace gatehouse::reliability
