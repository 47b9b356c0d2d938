#include "daemon/config.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace gatehouse::daemon {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gh_config_XXXXXX";
    dir_ = mkdtemp(tmpl);
    for (const char* v : {"GATEHOUSE_SOCKET", "GATEHOUSE_THREADS", "GATEHOUSE_CONFIG",
                          "GATEHOUSE_MAX_LINE", "GATEHOUSE_DURABLE"})
      unsetenv(v);
  }
  void TearDown() override {
    for (const char* v : {"GATEHOUSE_SOCKET", "GATEHOUSE_THREADS", "GATEHOUSE_CONFIG"}) unsetenv(v);
    std::string cmd = "rm -rf " + dir_;
    (void)system(cmd.c_str());
  }
  bool Load(std::vector<std::string> args, Config* c, std::string* err) {
    std::vector<char*> argv;
    static char prog[] = "gatehouse";
    argv.push_back(prog);
    for (auto& a : args) argv.push_back(a.data());
    return LoadServeConfig(static_cast<int>(argv.size()), argv.data(), c, err);
  }
  std::string WriteFile(const std::string& text) {
    std::string p = dir_ + "/gatehouse.yaml";
    std::ofstream(p) << text;
    return p;
  }
  std::string dir_;
};

TEST_F(ConfigTest, Defaults) {
  Config c;
  std::string err;
  ASSERT_TRUE(Load({}, &c, &err)) << err;
  EXPECT_EQ(c.socket_path, "./gatehouse.sock");
  EXPECT_EQ(c.data_dir, "./data");
  EXPECT_FALSE(c.policy_dir.empty());
  EXPECT_EQ(c.max_line, size_t{1} << 20);
  EXPECT_EQ(c.socket_mode, 0660u);
  EXPECT_TRUE(c.durable);
  // By default only the daemon's own uid is operator.
  EXPECT_EQ(c.TierFor(geteuid(), 12345), Tier::kOperator);
  EXPECT_EQ(c.TierFor(geteuid() + 1, 12345), Tier::kNone);
}

TEST_F(ConfigTest, PrecedenceFlagOverEnvOverFile) {
  std::string file = WriteFile(
      "socket: /file.sock\nthreads: 3\nmax_line: 2048\nsocket_mode: \"0600\"\n"
      "tiers:\n  reader: {uids: [1001, 1002]}\n  writer: {gids: [2000]}\n"
      "operator_uids: [7]\ndurable: false\n");
  setenv("GATEHOUSE_SOCKET", "/env.sock", 1);
  setenv("GATEHOUSE_THREADS", "5", 1);
  Config c;
  std::string err;
  ASSERT_TRUE(Load({"serve", "--config", file, "--threads=2", "--max-line", "4096"}, &c, &err))
      << err;
  EXPECT_EQ(c.socket_path, "/env.sock");  // env beats file
  EXPECT_EQ(c.threads, 2u);               // flag beats env
  EXPECT_EQ(c.max_line, 4096u);           // flag beats file
  EXPECT_EQ(c.socket_mode, 0600u);        // file beats default
  EXPECT_FALSE(c.durable);
  EXPECT_EQ(c.config_file, file);
  EXPECT_EQ(c.TierFor(1001, 1), Tier::kReader);
  EXPECT_EQ(c.TierFor(5, 2000), Tier::kWriter);
  EXPECT_EQ(c.TierFor(7, 1), Tier::kOperator);
  EXPECT_EQ(c.TierFor(geteuid() == 7 ? 8 : geteuid(), 1), Tier::kNone);
}

TEST_F(ConfigTest, ConfigFileFromEnvAndBoolFlags) {
  std::string file = WriteFile("log_decisions: true\n");
  setenv("GATEHOUSE_CONFIG", file.c_str(), 1);
  Config c;
  std::string err;
  ASSERT_TRUE(Load({"--no-durable", "--reader-uids", "1,2"}, &c, &err)) << err;
  EXPECT_TRUE(c.log_decisions);
  EXPECT_FALSE(c.durable);
  EXPECT_EQ(c.readers.uids, (std::vector<uint32_t>{1, 2}));
}

TEST_F(ConfigTest, BoolFlagsTakeSeparateValues) {
  Config c;
  std::string err;
  // Every boolean flag accepts `--flag VALUE` as well as `--flag=VALUE` and bare `--flag`.
  ASSERT_TRUE(Load({"--durable", "false", "--watch-policy", "no", "--log-decisions", "TRUE",
                    "--threads", "2"},
                   &c, &err))
      << err;
  EXPECT_FALSE(c.durable);
  EXPECT_FALSE(c.watch_policy);
  EXPECT_TRUE(c.log_decisions);
  EXPECT_EQ(c.threads, 2u);
  // Bare flag followed by another flag (or nothing) still means true.
  ASSERT_TRUE(Load({"--durable=false", "--log-decisions", "--watch-policy"}, &c, &err)) << err;
  EXPECT_FALSE(c.durable);
  EXPECT_TRUE(c.log_decisions);
  EXPECT_TRUE(c.watch_policy);
  ASSERT_TRUE(Load({"--durable", "0"}, &c, &err)) << err;
  EXPECT_FALSE(c.durable);
  // A non-boolean word after a boolean flag is not swallowed: it is an unexpected argument.
  EXPECT_FALSE(Load({"--durable", "maybe"}, &c, &err));
  EXPECT_NE(err.find("unexpected argument 'maybe'"), std::string::npos) << err;
}

TEST_F(ConfigTest, MapSize) {
  Config c;
  std::string err;
  ASSERT_TRUE(Load({}, &c, &err)) << err;
  EXPECT_EQ(c.map_size, size_t{64} << 30);  // default unchanged
  ASSERT_TRUE(Load({"--map-size", "4G"}, &c, &err)) << err;
  EXPECT_EQ(c.map_size, size_t{4} << 30);
  ASSERT_TRUE(Load({"--map-size=1048576"}, &c, &err)) << err;
  EXPECT_EQ(c.map_size, size_t{1} << 20);
  ASSERT_TRUE(Load({"--config", WriteFile("map_size: 512MiB\n")}, &c, &err)) << err;
  EXPECT_EQ(c.map_size, size_t{512} << 20);
  EXPECT_FALSE(Load({"--map-size", "1K"}, &c, &err));  // below 1 MiB
  EXPECT_NE(err.find("map_size"), std::string::npos) << err;
  EXPECT_FALSE(Load({"--map-size", "4X"}, &c, &err));
  EXPECT_FALSE(Load({"--map-size", "99999999999T"}, &c, &err));  // overflow
  EXPECT_FALSE(Load({"--map-size", ""}, &c, &err));
}

TEST_F(ConfigTest, OrgCacheEntries) {
  Config c;
  std::string err;
  ASSERT_TRUE(Load({}, &c, &err)) << err;
  EXPECT_EQ(c.org_cache_entries, 4096u);  // default: on
  ASSERT_TRUE(Load({"--org-cache-entries", "0"}, &c, &err)) << err;
  EXPECT_EQ(c.org_cache_entries, 0u);  // off
  ASSERT_TRUE(Load({"--config", WriteFile("org_cache_entries: 512\n")}, &c, &err)) << err;
  EXPECT_EQ(c.org_cache_entries, 512u);
  EXPECT_FALSE(Load({"--org-cache-entries", "65537"}, &c, &err));  // above the cap
  EXPECT_NE(err.find("org_cache_entries"), std::string::npos) << err;
  EXPECT_FALSE(Load({"--org-cache-entries", "-1"}, &c, &err));
}

TEST_F(ConfigTest, Errors) {
  Config c;
  std::string err;
  EXPECT_FALSE(Load({"--bogus"}, &c, &err));
  EXPECT_NE(err.find("unknown flag '--bogus'"), std::string::npos) << err;
  EXPECT_FALSE(Load({"--threads", "many"}, &c, &err));
  EXPECT_NE(err.find("threads"), std::string::npos) << err;
  EXPECT_FALSE(Load({"--socket"}, &c, &err));
  EXPECT_NE(err.find("needs a value"), std::string::npos) << err;
  EXPECT_FALSE(Load({"--config", dir_ + "/missing.yaml"}, &c, &err));
  EXPECT_FALSE(err.empty());
  std::string bad = WriteFile("threads: [1\n");
  EXPECT_FALSE(Load({"--config", bad}, &c, &err));
  EXPECT_NE(err.find(bad + ":"), std::string::npos) << err;
  std::string unknown = WriteFile("colour: blue\n");
  EXPECT_FALSE(Load({"--config", unknown}, &c, &err));
  EXPECT_NE(err.find("unknown setting 'colour'"), std::string::npos) << err;
  EXPECT_FALSE(Load({"--reader-uids", "no-such-user-xyz"}, &c, &err));
  EXPECT_NE(err.find("unknown user"), std::string::npos) << err;
}

TEST_F(ConfigTest, UsageMentionsEveryFlag) {
  std::string u = ServeUsage();
  for (const char* f : {"--socket", "--data", "--policy", "--config", "--threads", "--max-line",
                        "--max-connections", "--idle-timeout-s", "--max-output-bytes",
                        "--min-rev-wait-ms", "--socket-mode", "--reader-uids", "--writer-gids",
                        "--operator-uids", "--metrics-listen", "--audit-log", "--log-decisions",
                        "--default-workspace-name", "--durable", "--map-size"}) {
    EXPECT_NE(u.find(f), std::string::npos) << f;
  }
}

}  // namespace
}  // namespace gatehouse::daemon
