#include "daemon/audit_log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace gatehouse::daemon {
namespace {

std::string MakeTempDir() {
  char tmpl[] = "/tmp/gatehouse_audit_XXXXXX";
  char* d = mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  return d ? d : "";
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string l;
  while (std::getline(in, l)) lines.push_back(l);
  return lines;
}

// Waits (bounded) until pred() holds; used only to sequence steps, never to assert on speed.
template <typename Pred>
bool WaitFor(Pred pred) {
  for (int i = 0; i < 20000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pred();
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir(); }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string dir_;
};

TEST_F(AuditLogTest, WritesLinesInOrderAndAddsNewlines) {
  std::string err;
  std::string path = dir_ + "/audit.jsonl";
  auto log = AuditLog::Open(path, 64, &err);
  ASSERT_NE(log, nullptr) << err;
  for (int i = 0; i < 50; ++i) {
    std::string line = "{\"n\":" + std::to_string(i) + "}";
    if (i % 2) line += "\n";
    // The queue may fill if the writer is slow; retry so this test checks ordering only.
    while (!log->Append(line)) std::this_thread::yield();
  }
  log->Close();
  auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(lines[i], "{\"n\":" + std::to_string(i) + "}");
  EXPECT_EQ(log->written(), 50u);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(AuditLogTest, AppendsToExistingFile) {
  std::string path = dir_ + "/a.jsonl";
  { std::ofstream(path) << "{\"old\":1}\n"; }
  std::string err;
  auto log = AuditLog::Open(path, 8, &err);
  ASSERT_NE(log, nullptr) << err;
  ASSERT_TRUE(log->Append("{\"new\":2}"));
  log->Close();
  EXPECT_EQ(ReadLines(path), (std::vector<std::string>{"{\"old\":1}", "{\"new\":2}"}));
}

TEST_F(AuditLogTest, OpenErrors) {
  std::string err;
  EXPECT_EQ(AuditLog::Open(dir_ + "/no/such/dir/a.log", 8, &err), nullptr);
  EXPECT_NE(err.find("cannot open"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(AuditLog::Open(dir_ + "/a.log", 0, &err), nullptr);
  EXPECT_NE(err.find("max_queue"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(AuditLog::Open("", 8, &err), nullptr);
  EXPECT_FALSE(err.empty());
}

TEST_F(AuditLogTest, AppendAfterCloseIsDroppedAndCounted) {
  std::string err;
  auto log = AuditLog::Open(dir_ + "/a.log", 8, &err);
  ASSERT_NE(log, nullptr) << err;
  log->Close();
  log->Close();  // idempotent
  EXPECT_FALSE(log->Append("{}"));
  EXPECT_EQ(log->dropped(), 1u);
}

TEST_F(AuditLogTest, ConcurrentProducersLoseNothingWhenQueueIsLargeEnough) {
  std::string err;
  std::string path = dir_ + "/mt.jsonl";
  constexpr int kThreads = 4, kPerThread = 2000;
  auto log = AuditLog::Open(path, kThreads * kPerThread, &err);
  ASSERT_NE(log, nullptr) << err;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i)
        EXPECT_TRUE(log->Append("{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) + "}"));
    });
  }
  for (auto& th : threads) th.join();
  log->Close();
  EXPECT_EQ(log->dropped(), 0u);
  auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), size_t{kThreads * kPerThread});
  std::set<std::string> uniq(lines.begin(), lines.end());
  EXPECT_EQ(uniq.size(), lines.size());
  // Each producer's own lines stay in its order.
  std::vector<int> next(kThreads, 0);
  for (const auto& l : lines) {
    int t = 0, i = 0;
    ASSERT_EQ(std::sscanf(l.c_str(), "{\"t\":%d,\"i\":%d}", &t, &i), 2) << l;
    EXPECT_EQ(i, next[t]++);
  }
}

// The writer thread is stalled on a FIFO nobody reads: Append must not block, must drop and
// count once the queue is full, and every line is either written or counted as dropped.
TEST_F(AuditLogTest, FullQueueDropsInsteadOfBlocking) {
  std::string path = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  int rfd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(rfd, 0);
  std::string err;
  auto log = AuditLog::Open(path, 4, &err);
  ASSERT_NE(log, nullptr) << err;

  // One line larger than any pipe buffer: the writer blocks in write(2) on it.
  std::string big = "{\"big\":\"" + std::string(1 << 20, 'x') + "\"}";
  ASSERT_TRUE(log->Append(big));
  constexpr int kSmall = 1000;
  for (int i = 0; i < kSmall; ++i) log->Append("{\"i\":" + std::to_string(i) + "}");
  EXPECT_GT(log->dropped(), 0u);

  // Unblock: drain the FIFO until the writer closes it.
  int flags = fcntl(rfd, F_GETFL);
  fcntl(rfd, F_SETFL, flags & ~O_NONBLOCK);
  size_t lines_read = 0;
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(rfd, buf, sizeof buf)) > 0)
      for (ssize_t k = 0; k < n; ++k) lines_read += buf[k] == '\n';
  });
  log->Close();
  reader.join();
  ::close(rfd);
  EXPECT_EQ(log->written() + log->dropped(), uint64_t{kSmall + 1});
  EXPECT_EQ(lines_read, log->written());
}

TEST_F(AuditLogTest, ReopenStartsANewFileAfterRotation) {
  std::string path = dir_ + "/r.jsonl";
  std::string err;
  auto log = AuditLog::Open(path, 16, &err);
  ASSERT_NE(log, nullptr) << err;
  ASSERT_TRUE(log->Append("{\"a\":1}"));
  ASSERT_TRUE(WaitFor([&] { return log->written() == 1; }));
  ASSERT_EQ(std::rename(path.c_str(), (path + ".1").c_str()), 0);
  log->RequestReopen();
  ASSERT_TRUE(log->Append("{\"b\":2}"));
  log->Close();
  EXPECT_EQ(ReadLines(path + ".1"), (std::vector<std::string>{"{\"a\":1}"}));
  EXPECT_EQ(ReadLines(path), (std::vector<std::string>{"{\"b\":2}"}));
}

}  // namespace
}  // namespace gatehouse::daemon
