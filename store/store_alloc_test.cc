// The point reads a decision uses (GetWorkspaceMember, GetOrgMember, GetOrg, GetWorkspace) and
// Renew/Reset do not allocate once a ReadTxn is warm. Counts operator new in this binary.
#include <cstdlib>

// GCC flags free() in a replaced operator delete as mismatched; it is the matching pair here.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#include <new>
#include <string>

#include "gtest/gtest.h"
#include "store/store.h"
#include "store/store_test_util.h"

namespace {
thread_local size_t g_news = 0;
}  // namespace

void* operator new(size_t n) {
  ++g_news;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace gatehouse::store {
namespace {

using testing::R;

class AllocTest : public ::testing::TestWithParam<std::string> {};

TEST_P(AllocTest, DecisionReadsDoNotAllocate) {
  auto ts = testing::TestStore::Open(GetParam());
  Store& st = *ts.store;
  ASSERT_TRUE(st.Write(R("user.register", {{"user", "u"}, {"email", "u@x.io"}})).status.ok());
  ASSERT_TRUE(st.Write(R("user.verify_email", {{"user", "u"}})).status.ok());
  ASSERT_TRUE(st.Write(R("org.create", {{"user", "u"}, {"org", "o"}, {"name", "O"}, {"workspace", "w"}})).status.ok());
  auto txn = st.NewReadTxn();
  const std::string user = "u", org = "o", ws = "w";
  auto round = [&] {
    WorkspaceMemberView wm;
    OrgMemberView om;
    OrgView ov;
    WorkspaceView wv;
    bool ok = txn->Renew();
    ok &= txn->GetWorkspaceMember(user, ws, &wm);
    ok &= txn->GetOrgMember(user, org, &om);
    ok &= txn->GetOrg(org, &ov);
    ok &= txn->GetWorkspace(ws, &wv);
    ok &= !txn->GetWorkspaceMember("nobody", ws, &wm);
    txn->Reset();
    return ok;
  };
  ASSERT_TRUE(round());  // warm-up: opens the per-table cursors once
  const size_t before = g_news;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(round());
  EXPECT_EQ(g_news - before, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, AllocTest, ::testing::Values("memory", "lmdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace gatehouse::store
