// Codecs, SHA-256, views, opening (schema version, foreign and garbage files), reopening,
// read transactions, paging, subscriptions.
#include <fcntl.h>
#include <unistd.h>

#include <lmdb.h>

#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "store/internal/coding.h"
#include "store/internal/records.h"
#include "store/internal/sha256.h"
#include "store/store.h"
#include "store/store_test_util.h"

namespace gatehouse::store {
namespace {

using testing::R;
using testing::TempDir;

TEST(Sha256Test, KnownVectors) {
  using internal::HexEncode;
  using internal::Sha256Of;
  EXPECT_EQ(HexEncode(Sha256Of("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexEncode(Sha256Of("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha256Of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(HexEncode(Sha256Of(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_TRUE(internal::ConstantTimeEqual("abc", "abc"));
  EXPECT_FALSE(internal::ConstantTimeEqual("abc", "abd"));
  EXPECT_FALSE(internal::ConstantTimeEqual("abc", "ab"));
}

TEST(CodingTest, VarintAndKeys) {
  std::string s;
  for (uint32_t v : {0u, 1u, 127u, 128u, 300u, 0xFFFFFFFFu}) internal::PutVarint32(&s, v);
  std::string_view in = s;
  for (uint32_t v : {0u, 1u, 127u, 128u, 300u, 0xFFFFFFFFu}) {
    uint32_t got;
    ASSERT_TRUE(internal::GetVarint32(&in, &got));
    EXPECT_EQ(got, v);
  }
  EXPECT_TRUE(in.empty());
  std::string_view truncated("\x80\x80", 2);
  uint32_t v;
  EXPECT_FALSE(internal::GetVarint32(&truncated, &v));
  // Big-endian revisions sort numerically under memcmp.
  std::string a, b;
  internal::PutBigEndian64(&a, 255);
  internal::PutBigEndian64(&b, 256);
  EXPECT_LT(a, b);
  // Length-prefixed key parts are unambiguous: ("ab","c") != ("a","bc").
  internal::KeyBuf k1, k2;
  k1.Part("ab").Raw("c");
  k2.Part("a").Raw("bc");
  EXPECT_NE(k1.view(), k2.view());
  internal::KeyBuf big;
  big.Part(std::string(300, 'x'));
  EXPECT_FALSE(big.ok());
}

TEST(ViewsTest, StringListAndAttrs) {
  const std::string enc = internal::EncodeStringList({"sso", "webhooks"});
  StringListView l(enc);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_TRUE(l.Contains("sso"));
  EXPECT_FALSE(l.Contains("ss"));
  AttrMap m;
  m["b"] = OwnedAttr{AttrValue::Kind::kBool, true, 0, 0, ""};
  m["i"] = OwnedAttr{AttrValue::Kind::kInt, false, -42, 0, ""};
  m["d"] = OwnedAttr{AttrValue::Kind::kDouble, false, 0, 2.5, ""};
  m["s"] = OwnedAttr{AttrValue::Kind::kString, false, 0, 0, "x\"y"};
  m["n"] = OwnedAttr{};
  const std::string attrs = internal::EncodeAttrs(m);
  AttrsView av(attrs);
  AttrValue v;
  ASSERT_TRUE(av.Find("i", &v));
  EXPECT_EQ(v.kind, AttrValue::Kind::kInt);
  EXPECT_EQ(v.i, -42);
  ASSERT_TRUE(av.Find("d", &v));
  EXPECT_EQ(v.d, 2.5);
  ASSERT_TRUE(av.Find("s", &v));
  EXPECT_EQ(v.s, "x\"y");
  EXPECT_FALSE(av.Find("zz", &v));
  EXPECT_EQ(internal::AttrsJson(attrs), R"({"b":true,"d":2.5,"i":-42,"n":null,"s":"x\"y"})");
  // Malformed encodings end iteration instead of reading out of bounds.
  AttrsView broken(std::string_view(attrs.data(), attrs.size() - 3));
  size_t n = 0;
  broken.ForEach([&](std::string_view, const AttrValue&) { ++n; });
  EXPECT_LT(n, 5u);
}

TEST(JsonTest, EscapesControlQuotesAndBadUtf8) {
  std::string out;
  internal::AppendJsonString(&out, std::string_view("a\"b\\c\n\x01\xff\xc3\xa9", 10));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001\\ufffd\xc3\xa9\"");
}

TEST(StatusTest, Names) {
  EXPECT_STREQ(CodeName(Code::kLimitExceeded), "limit_exceeded");
  EXPECT_STREQ(CodeName(Code::kBadRequest), "bad_request");
  Status s(Code::kConflict, "last org_admin", 2);
  EXPECT_EQ(s.ToString(), "conflict (invariant 2): last org_admin");
  EXPECT_TRUE(Status().ok());
}

Options Opts(const std::string& path) {
  Options o;
  o.path = path;
  o.durable = false;
  o.map_size = size_t{64} << 20;
  return o;
}

TEST(OpenTest, ReopenKeepsDataAndRevision) {
  TempDir dir;
  uint64_t rev;
  {
    std::unique_ptr<Store> st;
    ASSERT_TRUE(Store::Open(Opts(dir.path()), &st).ok());
    ASSERT_TRUE(st->Write(R("user.register", {{"user", "u1"}, {"email", "u1@x.io"}})).status.ok());
    rev = st->Revision();
    EXPECT_EQ(rev, 1u);
  }
  std::unique_ptr<Store> st;
  ASSERT_TRUE(Store::Open(Opts(dir.path()), &st).ok());
  EXPECT_EQ(st->Revision(), rev);
  auto t = st->NewReadTxn();
  ASSERT_TRUE(t->Renew());
  EXPECT_EQ(t->Revision(), rev);
  UserView u;
  ASSERT_TRUE(t->GetUser("u1", &u));
  EXPECT_EQ(u.email, "u1@x.io");
}

void SetMeta(const std::string& path, const std::string& key, const std::string& value) {
  MDB_env* env;
  ASSERT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 32);
  ASSERT_EQ(mdb_env_open(env, path.c_str(), 0, 0640), 0);
  MDB_txn* txn;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi dbi;
  ASSERT_EQ(mdb_dbi_open(txn, key.empty() ? nullptr : "gh.meta", 0, &dbi), 0);
  std::string k = key.empty() ? "some_other_app" : key;
  MDB_val kk{k.size(), k.data()}, vv{value.size(), const_cast<char*>(value.data())};
  ASSERT_EQ(mdb_put(txn, dbi, &kk, &vv, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

TEST(OpenTest, RefusesNewerSchemaVersion) {
  TempDir dir;
  {
    std::unique_ptr<Store> st;
    ASSERT_TRUE(Store::Open(Opts(dir.path()), &st).ok());
  }
  SetMeta(dir.path(), "schema_version", "3");
  std::unique_ptr<Store> st;
  Status s = Store::Open(Opts(dir.path()), &st);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("schema version 3"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("newer"), std::string::npos) << s.message();
  SetMeta(dir.path(), "schema_version", "banana");
  s = Store::Open(Opts(dir.path()), &st);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("unknown schema version"), std::string::npos) << s.message();
}

std::string GetRaw(const std::string& path, const char* dbi_name, const std::string& key) {
  MDB_env* env;
  EXPECT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 32);
  EXPECT_EQ(mdb_env_open(env, path.c_str(), 0, 0640), 0);
  MDB_txn* txn;
  EXPECT_EQ(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), 0);
  MDB_dbi dbi;
  EXPECT_EQ(mdb_dbi_open(txn, dbi_name, 0, &dbi), 0);
  MDB_val kk{key.size(), const_cast<char*>(key.data())}, vv;
  std::string out = mdb_get(txn, dbi, &kk, &vv) == 0 ? std::string(static_cast<char*>(vv.mv_data), vv.mv_size) : "<absent>";
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return out;
}

void PutRaw(const std::string& path, const char* dbi_name, const std::string& key, const std::string& value) {
  MDB_env* env;
  ASSERT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 32);
  ASSERT_EQ(mdb_env_open(env, path.c_str(), 0, 0640), 0);
  MDB_txn* txn;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi dbi;
  ASSERT_EQ(mdb_dbi_open(txn, dbi_name, 0, &dbi), 0);
  MDB_val kk{key.size(), const_cast<char*>(key.data())}, vv{value.size(), const_cast<char*>(value.data())};
  ASSERT_EQ(mdb_put(txn, dbi, &kk, &vv, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

TEST(CodingTest, WsMemberOrgRoleIsOptional) {
  internal::WsMemberRec rec{"u", "w", "o", "agent", "t", "", "all", "billing_admin"};
  std::string v2 = internal::EncodeWsMember(rec);
  WorkspaceMemberView m;
  ASSERT_TRUE(internal::DecodeWsMember("w", "u", v2, &m));
  EXPECT_EQ(m.org_role, "billing_admin");
  EXPECT_EQ(m.contact_visibility, "all");
  rec.org_role.clear();
  std::string v1 = internal::EncodeWsMember(rec);
  v1.pop_back();  // a schema-1 row: no org role field at all
  ASSERT_TRUE(internal::DecodeWsMember("w", "u", v1, &m));
  EXPECT_EQ(m.org_role, "");
  EXPECT_EQ(m.contact_visibility, "all");
  std::string bad = internal::EncodeWsMember(internal::WsMemberRec{"u", "w", "o", "agent", "", "", "all", "member"});
  bad.pop_back();  // truncated org role: malformed, not "unknown"
  EXPECT_FALSE(internal::DecodeWsMember("w", "u", bad, &m));
}

// A schema-1 store (rows without the denormalized org role) opens, is marked schema 2 (so builds
// that only know 1 refuse it from now on), reads the old rows with org_role "" (callers fall back
// to GetOrgMember), and a rewrite of such a row fills the org role in.
TEST(OpenTest, UpgradesSchemaOneInPlace) {
  TempDir dir;
  std::string ws;
  {
    std::unique_ptr<Store> st;
    ASSERT_TRUE(Store::Open(Opts(dir.path()), &st).ok());
    ASSERT_TRUE(st->Write(R("user.register", {{"user", "u1"}, {"email", "u1@x.io"}})).status.ok());
    ASSERT_TRUE(st->Write(R("user.verify_email", {{"user", "u1"}})).status.ok());
    WriteResult res = st->Write(R("org.create", {{"user", "u1"}, {"org", "o1"}, {"name", "O"}}));
    ASSERT_TRUE(res.status.ok());
    ws = res.workspace;
  }
  EXPECT_EQ(GetRaw(dir.path(), "gh.meta", "schema_version"), "2");
  // Rewrite as schema 1: version 1, the ws member row without its last field.
  std::string key = std::string(1, static_cast<char>(ws.size())) + ws + "u1";
  std::string row = GetRaw(dir.path(), "gh.ws_members", key);
  ASSERT_EQ(row.back(), 'n');  // ...org_admi"n"
  PutRaw(dir.path(), "gh.ws_members", key, row.substr(0, row.size() - 1 - std::string("org_admin").size()));
  SetMeta(dir.path(), "schema_version", "1");
  {
    std::unique_ptr<Store> st;
    Status s = Store::Open(Opts(dir.path()), &st);
    ASSERT_TRUE(s.ok()) << s.ToString();
    auto t = st->NewReadTxn();
    ASSERT_TRUE(t->Renew());
    WorkspaceMemberView m;
    ASSERT_TRUE(t->GetWorkspaceMember("u1", ws, &m));
    EXPECT_EQ(m.role, "owner");
    EXPECT_EQ(m.org_role, "");
    t->Reset();
    WriteRequest r = R("workspace.set_member", {{"workspace", ws}, {"user", "u1"}, {"role", "manager"}});
    ASSERT_TRUE(st->Write(r).status.ok());
    ASSERT_TRUE(t->Renew());
    ASSERT_TRUE(t->GetWorkspaceMember("u1", ws, &m));
    EXPECT_EQ(m.org_role, "org_admin");
  }
  EXPECT_EQ(GetRaw(dir.path(), "gh.meta", "schema_version"), "2");
}

TEST(OpenTest, RefusesForeignLmdbFile) {
  TempDir dir;
  SetMeta(dir.path(), "", "hello");  // a plain LMDB with a key in the main DB
  std::unique_ptr<Store> st;
  Status s = Store::Open(Opts(dir.path()), &st);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not a Gatehouse store"), std::string::npos) << s.message();
}

TEST(OpenTest, GarbageFileIsAnErrorNotACrash) {
  TempDir dir;
  {
    std::ofstream f(dir.path() + "/data.mdb", std::ios::binary);
    std::string junk(64 * 1024, '\0');
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 2654435761u) >> 13);
    f << junk;
  }
  std::unique_ptr<Store> st;
  Status s = Store::Open(Opts(dir.path()), &st);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kInternal);
  EXPECT_NE(s.message().find("not a Gatehouse store or corrupted"), std::string::npos) << s.message();
  // A file where the directory should be.
  std::ofstream(dir.path() + "/file") << "x";
  s = Store::Open(Opts(dir.path() + "/file"), &st);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not a directory"), std::string::npos) << s.message();
}

TEST(OpenTest, ClosedStoreRefusesWrites) {
  TempDir dir;
  std::unique_ptr<Store> st;
  ASSERT_TRUE(Store::Open(Opts(dir.path()), &st).ok());
  st->Close();
  st->Close();
  EXPECT_EQ(st->Write(R("user.register", {{"user", "u"}, {"email", "u@x.io"}})).status.code(), Code::kUnavailable);
}

class ReadsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReadsTest, SnapshotsPagingAndSubscriptions) {
  auto ts = testing::TestStore::Open(GetParam());
  Store& st = *ts.store;
  std::vector<uint64_t> seen;
  std::mutex mu;
  const uint64_t h = st.Subscribe([&](uint64_t rev) {
    std::lock_guard<std::mutex> l(mu);
    seen.push_back(rev);
  });
  ASSERT_TRUE(st.Write(R("user.register", {{"user", "admin"}, {"email", "admin@x.io"}})).status.ok());
  ASSERT_TRUE(st.Write(R("user.verify_email", {{"user", "admin"}})).status.ok());
  ASSERT_TRUE(st.Write(R("org.create", {{"user", "admin"}, {"org", "o"}, {"name", "O"}})).status.ok());
  WriteRequest seats = R("org.set_subscription", {{"org", "o"}});
  seats.seats = 100;
  ASSERT_TRUE(st.Write(seats).status.ok());
  auto old = st.NewReadTxn();
  ASSERT_TRUE(old->Renew());
  const uint64_t old_rev = old->Revision();
  for (int i = 0; i < 25; ++i) {
    const std::string u = "u" + std::to_string(100 + i);
    ASSERT_TRUE(st.Write(R("user.register", {{"user", u}, {"email", u + "@x.io"}})).status.ok());
    ASSERT_TRUE(st.Write(R("workspace.set_member", {{"workspace", "o-default"}, {"user", u}, {"role", "agent"}})).status.ok());
  }
  // The old snapshot does not see later writes.
  OrgMemberView m;
  EXPECT_FALSE(old->GetOrgMember("u100", "o", &m));
  EXPECT_EQ(old->Revision(), old_rev);
  old->Reset();
  ASSERT_TRUE(old->Renew());
  EXPECT_TRUE(old->GetOrgMember("u100", "o", &m));
  EXPECT_EQ(old->Revision(), st.Revision());
  // Paging with cursors.
  std::vector<std::string> all;
  std::string cursor;
  int pages = 0;
  do {
    std::vector<OrgMemberView> page;
    std::string next;
    ASSERT_TRUE(old->ListOrgMembers("o", cursor, 10, &page, &next));
    for (auto& p : page) all.emplace_back(p.user);
    cursor = next;
    ++pages;
  } while (!cursor.empty());
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(all.size(), 26u);
  EXPECT_EQ(all.front(), "admin");
  std::vector<WorkspaceMemberView> wpage;
  std::string next;
  ASSERT_TRUE(old->ListWorkspaceMembers("o-default", "", 5, &wpage, &next));
  EXPECT_EQ(wpage.size(), 5u);
  EXPECT_FALSE(next.empty());
  std::vector<WorkspaceView> wss;
  ASSERT_TRUE(old->ListWorkspacesOfOrg("o", &wss));
  ASSERT_EQ(wss.size(), 1u);
  EXPECT_EQ(wss[0].members, 26u);
  old->Reset();
  {
    std::lock_guard<std::mutex> l(mu);
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back(), st.Revision());
    for (size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i], seen[i - 1]);
  }
  st.Unsubscribe(h);
  const size_t n = seen.size();
  ASSERT_TRUE(st.Write(R("user.register", {{"user", "late"}, {"email", "late@x.io"}})).status.ok());
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(seen.size(), n);
}

TEST_P(ReadsTest, UnknownAndOversizedKeysAreNotFound) {
  auto ts = testing::TestStore::Open(GetParam());
  auto t = ts->NewReadTxn();
  ASSERT_TRUE(t->Renew());
  UserView u;
  OrgMemberView m;
  WorkspaceMemberView wm;
  EXPECT_FALSE(t->GetUser("", &u));
  EXPECT_FALSE(t->GetUser("nobody", &u));
  EXPECT_FALSE(t->GetOrgMember(std::string(1000, 'u'), std::string(1000, 'o'), &m));
  EXPECT_FALSE(t->GetWorkspaceMember("u", std::string(300, 'w'), &wm));
  EXPECT_FALSE(t->FindUserByEmail(std::string(2000, 'e'), &u));
  EXPECT_FALSE(t->error());
}

// Renew without a commit in between reuses the snapshot's cached revision (LmdbReadTxn caches it
// by LMDB txn id); it must still be restored after Reset and advance after a commit.
TEST_P(ReadsTest, RenewRevisionCacheFollowsCommits) {
  auto ts = testing::TestStore::Open(GetParam());
  Store& st = *ts.store;
  ASSERT_TRUE(st.Write(R("user.register", {{"user", "a"}, {"email", "a@x.io"}})).status.ok());
  auto t = st.NewReadTxn();
  ASSERT_TRUE(t->Renew());
  const uint64_t r1 = t->Revision();
  EXPECT_EQ(r1, st.Revision());
  EXPECT_NE(r1, 0u);
  t->Reset();
  ASSERT_TRUE(t->Renew());
  EXPECT_EQ(t->Revision(), r1);
  t->Reset();
  ASSERT_TRUE(st.Write(R("user.register", {{"user", "b"}, {"email", "b@x.io"}})).status.ok());
  ASSERT_TRUE(t->Renew());
  EXPECT_EQ(t->Revision(), r1 + 1);
  UserView u;
  EXPECT_TRUE(t->GetUser("b", &u));
  t->Reset();
}

INSTANTIATE_TEST_SUITE_P(Backends, ReadsTest, ::testing::Values("memory", "lmdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace gatehouse::store
