// LMDB backend and Store::Open. The only file that includes LMDB headers.
#include <sys/stat.h>

#include <lmdb++.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "store/internal/coding.h"
#include "store/internal/kv.h"
#include "store/internal/reader_impl.h"
#include "store/internal/store_impl.h"
#include "store/store.h"

namespace gatehouse::store {
namespace {

using internal::KvRead;
using internal::KvTxn;
using internal::kTableCount;
using internal::ScanFn;
using internal::Table;

constexpr std::string_view kMagic = "gatehouse";
// 2: WsMemberValue carries the member's org role (denormalized). A version-1 store is upgraded
// in place at open (its rows lack the field, which reads as "unknown"); from then on builds that
// only know version 1 refuse it, so none of them can change an org role without rewriting it.
constexpr int kSchemaVersion = 2;
constexpr int kOldestReadableSchema = 1;

inline MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
inline std::string_view View(const MDB_val& v) { return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size); }

Status LmdbError(const std::string& what, int rc) {
  return Status(Code::kInternal, what + ": " + mdb_strerror(rc));
}

// Runs a prefix scan over an open cursor. Returns the LMDB rc (0 or MDB_NOTFOUND are fine).
int CursorScan(MDB_cursor* c, std::string_view prefix, std::string_view start, const ScanFn& fn) {
  std::string_view from = start.empty() ? prefix : start;
  MDB_val k = Val(from), v;
  int rc = from.empty() ? mdb_cursor_get(c, &k, &v, MDB_FIRST) : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  while (rc == 0) {
    std::string_view key = View(k);
    if (key.substr(0, prefix.size()) != prefix) break;
    if (!fn(key, View(v))) break;
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  return rc == MDB_NOTFOUND ? 0 : rc;
}

class LmdbReadKv : public KvRead {
 public:
  LmdbReadKv(MDB_env* env, const MDB_dbi* dbis) : env_(env) { std::memcpy(dbis_, dbis, sizeof dbis_); }
  ~LmdbReadKv() override {
    for (MDB_cursor*& c : cursors_) {
      if (c) mdb_cursor_close(c);
    }
    if (txn_) mdb_txn_abort(txn_);
  }

  bool Begin() noexcept {
    if (active_) End();
    err_ = false;
    fresh_ = 0;
    int rc = txn_ ? mdb_txn_renew(txn_) : mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn_);
    if (rc != 0) {
      err_ = true;
      return false;
    }
    active_ = true;
    return true;
  }
  void End() noexcept {
    if (active_) mdb_txn_reset(txn_);
    active_ = false;
  }
  // Id of the snapshot (the last committed write txn it sees); 0 when not active.
  size_t TxnId() const noexcept { return active_ ? mdb_txn_id(txn_) : 0; }

  bool Get(Table t, std::string_view key, std::string_view* sk, std::string_view* sv) noexcept override {
    if (!active_) return false;
    const int i = static_cast<int>(t);
    MDB_cursor*& c = cursors_[i];
    if (!(fresh_ & (1u << i))) {
      int rc = c ? mdb_cursor_renew(txn_, c) : mdb_cursor_open(txn_, dbis_[i], &c);
      if (rc != 0) {
        err_ = true;
        return false;
      }
      fresh_ |= 1u << i;
    }
    MDB_val k = Val(key), v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
    if (rc != 0) {
      if (rc != MDB_NOTFOUND) err_ = true;
      return false;
    }
    *sk = View(k);
    *sv = View(v);
    return true;
  }

  bool Scan(Table t, std::string_view prefix, std::string_view start, const ScanFn& fn) override {
    if (!active_) return false;
    MDB_cursor* c = nullptr;
    int rc = mdb_cursor_open(txn_, dbis_[static_cast<int>(t)], &c);
    if (rc == 0) {
      rc = CursorScan(c, prefix, start, fn);
      mdb_cursor_close(c);
    }
    if (rc != 0) err_ = true;
    return rc == 0;
  }
  bool error() const noexcept override { return err_; }

 private:
  MDB_env* env_;
  MDB_dbi dbis_[kTableCount];  // a copy: valid even if the backend goes first
  MDB_txn* txn_ = nullptr;
  bool active_ = false;
  bool err_ = false;
  uint32_t fresh_ = 0;  // bit i: cursors_[i] is bound to the current snapshot
  MDB_cursor* cursors_[kTableCount] = {};
};

class LmdbReadTxn : public internal::KvReader {
 public:
  LmdbReadTxn(std::shared_ptr<lmdb::env> env, const MDB_dbi* dbis, const std::function<int64_t()>* clock)
      : KvReader(&kv_, clock), env_(std::move(env)), kv_(env_->handle(), dbis) {}
  ~LmdbReadTxn() override = default;
  bool Renew() noexcept override {
    clear_corrupt();
    NextSnapshot();
    if (!kv_.Begin()) return false;
    // Same snapshot as last time (no commit since): the revision cannot have changed, skip the
    // gh.meta read (~1.2k instructions, ~10% of a check; docs/benchmarks.md).
    //
    // mdb_txn_id() alone does not name the snapshot: mdb_txn_renew reads the last txn id T
    // first and copies the DB roots from meta page T&1 afterwards, and if the writer commits
    // T+1 and T+2 in between (the reader descheduled for that long), the roots are T+2's while
    // the id still says T. So the cached revision is used (and stored) only while the newest
    // committed txn is still T: then no T+1 has completed, no T+2 can have started, and meta
    // page T&1 was T's when the roots were copied (OrgCacheStoreTest.OneCachePerWorkerThread
    // served stale org rows ~3% of runs before this check).
    const size_t id = kv_.TxnId();
    const bool quiet = id != 0 && LastCommittedTxnId() == id;
    if (quiet && id == rev_txn_id_) {
      set_rev(rev_of_txn_);
      return true;
    }
    if (!LoadRevision()) return false;
    rev_txn_id_ = quiet ? id : 0;
    rev_of_txn_ = Revision();
    return true;
  }
  void Reset() noexcept override {
    kv_.End();
    NextSnapshot();
    set_rev(0);
  }

 private:
  // The newest committed write txn (meta pages; no lock, no page read). 0 on error.
  size_t LastCommittedTxnId() const noexcept {
    MDB_envinfo info;
    if (mdb_env_info(env_->handle(), &info) != 0) return 0;
    return info.me_last_txnid;
  }

  std::shared_ptr<lmdb::env> env_;  // keeps the environment open while this reader lives
  LmdbReadKv kv_;
  size_t rev_txn_id_ = 0;  // snapshot whose revision is cached in rev_of_txn_
  uint64_t rev_of_txn_ = 0;
};

// The write transaction of one batch. Each write of the batch runs "nested" with an undo log:
// before a Put/Del changes a key, its old value (or its absence) is recorded, and AbortNested
// replays the log backwards. (LMDB child transactions did the same job but copy and merge the
// dirty page list on every begin/commit, O(batch) per write.) Point operations share one cursor
// per table, so a Put after the Get of the same key costs no second B-tree search.
// If LMDB itself fails (e.g. MDB_MAP_FULL), the transaction is unusable: the replay fails, the
// error stays set and CommitWrite refuses the whole batch (nothing of it is committed).
class LmdbWriteKv : public KvTxn {
 public:
  LmdbWriteKv(const MDB_dbi* dbis, MDB_txn* top) : dbis_(dbis), top_(top) {}
  ~LmdbWriteKv() override {
    if (top_) mdb_txn_abort(top_);  // frees the cursors too
  }
  MDB_txn* ReleaseTop() {
    MDB_txn* t = top_;
    top_ = nullptr;
    return t;  // cursors of a write txn are freed by its commit or abort
  }

  bool Get(Table t, std::string_view key, std::string_view* sk, std::string_view* sv) noexcept override {
    if (key.empty() || key.size() > 511) return false;
    MDB_cursor* c = Cursor(t);
    if (!c) return false;
    MDB_val k = Val(key), v;
    const int rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
    if (rc != 0) {
      if (rc != MDB_NOTFOUND) err_ = true;
      return false;
    }
    *sk = View(k);
    *sv = View(v);
    return true;
  }
  bool Exists(Table t, std::string_view key) noexcept override {
    if (key.empty() || key.size() > 511) return false;
    MDB_val k = Val(key), v;
    const int rc = mdb_get(top_, dbis_[static_cast<int>(t)], &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND) err_ = true;
    return rc == 0;
  }
  bool Scan(Table t, std::string_view prefix, std::string_view start, const ScanFn& fn) override {
    MDB_cursor* c = nullptr;  // its own cursor: fn may Get from the same table
    int rc = mdb_cursor_open(top_, dbis_[static_cast<int>(t)], &c);
    if (rc == 0) {
      rc = CursorScan(c, prefix, start, fn);
      mdb_cursor_close(c);
    }
    if (rc != 0) err_ = true;
    return rc == 0;
  }
  bool error() const noexcept override { return err_; }
  bool Put(Table t, std::string_view key, std::string_view value) override {
    if (key.empty() || key.size() > 511) return Fail();
    MDB_cursor* c = Cursor(t);
    if (!c) return false;
    MDB_val k = Val(key), v = Val(value), old;
    int rc = mdb_cursor_get(c, &k, &old, MDB_SET_KEY);
    if (rc != 0 && rc != MDB_NOTFOUND) return Fail();
    const bool existed = rc == 0;
    if (nested_) undo_.push_back(Undo{t, std::string(key), existed, existed ? std::string(View(old)) : std::string()});
    k = Val(key);
    rc = mdb_cursor_put(c, &k, &v, existed ? MDB_CURRENT : 0);
    return rc == 0 || Fail();
  }
  bool Del(Table t, std::string_view key) override {
    if (key.empty() || key.size() > 511) return true;  // cannot exist
    MDB_cursor* c = Cursor(t);
    if (!c) return false;
    MDB_val k = Val(key), old;
    int rc = mdb_cursor_get(c, &k, &old, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND) return true;
    if (rc != 0) return Fail();
    if (nested_) undo_.push_back(Undo{t, std::string(key), true, std::string(View(old))});
    return mdb_cursor_del(c, 0) == 0 || Fail();
  }
  bool PutSorted(Table t, const std::vector<std::pair<std::string, std::string>>& kvs, bool unique,
                 std::string* dup) override {
    if (kvs.empty()) return true;
    if (nested_) return KvTxn::PutSorted(t, kvs, unique, dup);  // keeps the undo log
    MDB_cursor* c = nullptr;
    int rc = mdb_cursor_open(top_, dbis_[static_cast<int>(t)], &c);
    if (rc != 0) {
      err_ = true;
      return false;
    }
    // Append (dense pages, no search) iff the whole run sorts after the table's last key.
    MDB_val lk, lv;
    rc = mdb_cursor_get(c, &lk, &lv, MDB_LAST);
    const bool append = rc == MDB_NOTFOUND || (rc == 0 && View(lk) < std::string_view(kvs.front().first));
    rc = 0;
    const unsigned flags = (append ? MDB_APPEND : 0) | (unique ? MDB_NOOVERWRITE : 0);
    for (const auto& [key, value] : kvs) {
      MDB_val k = Val(key), v = Val(value);
      rc = mdb_cursor_put(c, &k, &v, flags);
      if (rc == MDB_KEYEXIST && unique) {
        *dup = key;
        mdb_cursor_close(c);
        return false;
      }
      if (rc != 0) break;
    }
    mdb_cursor_close(c);
    if (rc != 0) err_ = true;
    return rc == 0;
  }
  bool AppendChange(uint64_t rev, std::string_view json) override {
    char buf[8];
    internal::EncodeBigEndian64(buf, rev);
    // Revisions only grow: append at the end of gh.changes without a search.
    MDB_val k{8, buf}, v = Val(json);
    if (nested_) undo_.push_back(Undo{Table::kChanges, std::string(buf, 8), false, {}});
    const int rc = mdb_put(top_, dbis_[static_cast<int>(Table::kChanges)], &k, &v, MDB_APPEND);
    return rc == 0 || Fail();
  }
  bool BeginNested() override {
    if (nested_) return false;
    nested_ = true;
    undo_.clear();
    nested_err_ = err_;
    return true;
  }
  bool CommitNested() override {
    if (!nested_) return false;
    nested_ = false;
    undo_.clear();
    return true;
  }
  void AbortNested() override {
    if (!nested_) return;
    nested_ = false;
    bool ok = true;
    for (auto it = undo_.rbegin(); it != undo_.rend() && ok; ++it) {
      MDB_val k = Val(it->key);
      if (it->existed) {
        MDB_val v = Val(it->old);
        ok = mdb_put(top_, dbis_[static_cast<int>(it->t)], &k, &v, 0) == 0;
      } else {
        const int rc = mdb_del(top_, dbis_[static_cast<int>(it->t)], &k, nullptr);
        ok = rc == 0 || rc == MDB_NOTFOUND;
      }
    }
    undo_.clear();
    // Errors inside the undone write do not poison the batch — unless the undo itself failed.
    err_ = ok ? nested_err_ : true;
  }

 private:
  struct Undo {
    Table t;
    std::string key;
    bool existed;
    std::string old;
  };
  bool Fail() {
    err_ = true;
    return false;
  }
  MDB_cursor* Cursor(Table t) noexcept {
    MDB_cursor*& c = cursors_[static_cast<int>(t)];
    if (!c && mdb_cursor_open(top_, dbis_[static_cast<int>(t)], &c) != 0) {
      c = nullptr;
      err_ = true;
    }
    return c;
  }
  const MDB_dbi* dbis_;
  MDB_txn* top_;
  MDB_cursor* cursors_[kTableCount] = {};
  bool nested_ = false;
  bool err_ = false;
  bool nested_err_ = false;
  std::vector<Undo> undo_;
};

class LmdbBackend : public internal::Backend {
 public:
  LmdbBackend(std::shared_ptr<lmdb::env> env, const MDB_dbi* dbis, uint64_t rev) : env_(std::move(env)), rev_(rev) {
    std::memcpy(dbis_, dbis, sizeof dbis_);
  }

  std::unique_ptr<ReadTxn> NewReadTxn(const std::function<int64_t()>* clock) override {
    return std::make_unique<LmdbReadTxn>(env_, dbis_, clock);
  }
  Status BeginWrite(std::unique_ptr<KvTxn>* out) override {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_->handle(), nullptr, 0, &txn);
    if (rc != 0) return LmdbError("cannot begin write transaction", rc);
    *out = std::make_unique<LmdbWriteKv>(dbis_, txn);
    return Status::Ok();
  }
  Status CommitWrite(std::unique_ptr<KvTxn> txn) override {
    auto* w = static_cast<LmdbWriteKv*>(txn.get());
    if (w->error()) return Status(Code::kInternal, "storage error in write transaction");
    int rc = mdb_txn_commit(w->ReleaseTop());
    if (rc != 0) return LmdbError("commit failed", rc);
    return Status::Ok();
  }
  uint64_t StoredRevision() override { return rev_; }
  uint64_t StoreBytes() override {
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(env_->handle(), &info) != 0 || mdb_env_stat(env_->handle(), &st) != 0) return 0;
    return static_cast<uint64_t>(info.me_last_pgno + 1) * st.ms_psize;
  }

 private:
  std::shared_ptr<lmdb::env> env_;
  MDB_dbi dbis_[kTableCount];
  uint64_t rev_;
};

// Checks or initializes the schema in one write transaction. Fills dbis and *rev.
Status InitSchema(MDB_env* env, const std::string& path, MDB_dbi* dbis, uint64_t* rev) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env, nullptr, 0, &txn);
  if (rc != 0) return LmdbError("cannot open store at '" + path + "'", rc);
  struct Guard {
    MDB_txn*& t;
    ~Guard() {
      if (t) mdb_txn_abort(t);
    }
  } guard{txn};

  std::set<std::string, std::less<>> ours;
  for (int i = 0; i < kTableCount; ++i) ours.insert(internal::TableName(static_cast<Table>(i)));
  MDB_dbi main_dbi;
  rc = mdb_dbi_open(txn, nullptr, 0, &main_dbi);
  if (rc != 0) return LmdbError("cannot open store at '" + path + "'", rc);
  MDB_cursor* c = nullptr;
  rc = mdb_cursor_open(txn, main_dbi, &c);
  if (rc != 0) return LmdbError("cannot open store at '" + path + "'", rc);
  std::string foreign;
  size_t entries = 0;
  bool has_meta = false;
  MDB_val k, v;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    ++entries;
    std::string_view key = View(k);
    if (key == internal::TableName(Table::kMeta)) has_meta = true;
    if (!ours.count(key) && foreign.empty()) foreign.assign(key.substr(0, 64));
  }
  mdb_cursor_close(c);
  if (rc != MDB_NOTFOUND) return LmdbError("cannot read store at '" + path + "'", rc);
  if (!foreign.empty() || (entries > 0 && !has_meta)) {
    return Status(Code::kInternal, "'" + path + "' is not a Gatehouse store (it holds foreign LMDB data" +
                                       (foreign.empty() ? std::string() : ": key '" + foreign + "'") + ")");
  }
  const bool fresh = entries == 0;
  for (int i = 0; i < kTableCount; ++i) {
    rc = mdb_dbi_open(txn, internal::TableName(static_cast<Table>(i)), MDB_CREATE, &dbis[i]);
    if (rc != 0) {
      return LmdbError("'" + path + "' is not a usable Gatehouse store (table " +
                           internal::TableName(static_cast<Table>(i)) + ")",
                       rc);
    }
  }
  const MDB_dbi meta = dbis[static_cast<int>(Table::kMeta)];
  auto put = [&](std::string_view key, std::string_view val) {
    MDB_val kk = Val(key), vv = Val(val);
    return mdb_put(txn, meta, &kk, &vv, 0);
  };
  auto get = [&](std::string_view key, std::string_view* val) {
    MDB_val kk = Val(key), vv;
    int r = mdb_get(txn, meta, &kk, &vv);
    if (r == 0) *val = View(vv);
    return r;
  };
  *rev = 0;
  if (fresh) {
    std::string zero;
    internal::PutBigEndian64(&zero, 0);
    if ((rc = put("magic", kMagic)) != 0 || (rc = put("schema_version", std::to_string(kSchemaVersion))) != 0 ||
        (rc = put("rev", zero)) != 0) {
      return LmdbError("cannot initialize store at '" + path + "'", rc);
    }
  } else {
    std::string_view magic, version, r;
    if (get("magic", &magic) != 0 || magic != kMagic) {
      return Status(Code::kInternal, "'" + path + "' is not a Gatehouse store (bad or missing magic)");
    }
    if (get("schema_version", &version) != 0) {
      return Status(Code::kInternal, "'" + path + "' has no schema version; not a usable Gatehouse store");
    }
    const std::string vs(version.substr(0, 32));
    char* end = nullptr;
    const long n = std::strtol(vs.c_str(), &end, 10);
    if (vs.empty() || *end != '\0') {
      return Status(Code::kInternal, "'" + path + "' has an unknown schema version '" + vs + "'");
    }
    if (n < kOldestReadableSchema || n > kSchemaVersion) {
      return Status(Code::kInternal, "'" + path + "' was written by schema version " + vs + " (" +
                                         (n > kSchemaVersion ? "newer than" : "unknown to") +
                                         " this build, which reads version " + std::to_string(kSchemaVersion) + ")");
    }
    if (n != kSchemaVersion && (rc = put("schema_version", std::to_string(kSchemaVersion))) != 0) {
      return LmdbError("cannot upgrade the schema version of the store at '" + path + "'", rc);
    }
    if (get("rev", &r) == 0) {
      if (r.size() != 8) return Status(Code::kInternal, "'" + path + "' has a corrupt revision record");
      *rev = internal::DecodeBigEndian64(r.data());
    }
  }
  rc = mdb_txn_commit(txn);
  txn = nullptr;
  if (rc != 0) return LmdbError("cannot open store at '" + path + "'", rc);
  return Status::Ok();
}

}  // namespace

Status Store::Open(const Options& options, std::unique_ptr<Store>* out) {
  if (options.path.empty()) return Status(Code::kBadRequest, "field 'path': the store directory is required");
  struct stat st;
  if (stat(options.path.c_str(), &st) != 0) {
    if (mkdir(options.path.c_str(), 0750) != 0 && errno != EEXIST) {
      return Status(Code::kInternal, "cannot create store directory '" + options.path + "': " + std::strerror(errno));
    }
  } else if (!S_ISDIR(st.st_mode)) {
    return Status(Code::kInternal, "store path '" + options.path + "' is not a directory");
  }
  try {
    auto env = std::make_shared<lmdb::env>(lmdb::env::create());
    env->set_mapsize(options.map_size);
    env->set_max_dbs(kTableCount + 4);
    env->set_max_readers(options.max_readers == 0 ? 126 : options.max_readers);
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (!options.durable) flags |= MDB_NOSYNC;
    try {
      env->open(options.path.c_str(), flags, 0640);
    } catch (const lmdb::error& e) {
      std::string why = mdb_strerror(e.code());
      if (e.code() == MDB_INVALID || e.code() == MDB_VERSION_MISMATCH) {
        why = "not a Gatehouse store or corrupted file (" + why + ")";
      }
      return Status(Code::kInternal, "cannot open store at '" + options.path + "': " + why);
    }
    int dead = 0;
    mdb_reader_check(env->handle(), &dead);
    MDB_dbi dbis[kTableCount];
    uint64_t rev = 0;
    Status s = InitSchema(env->handle(), options.path, dbis, &rev);
    if (!s.ok()) return s;
    *out = std::make_unique<internal::StoreImpl>(options, std::make_unique<LmdbBackend>(env, dbis, rev));
    return Status::Ok();
  } catch (const lmdb::error& e) {
    return Status(Code::kInternal, "cannot open store at '" + options.path + "': " + mdb_strerror(e.code()));
  } catch (const std::exception& e) {
    return Status(Code::kInternal, "cannot open store at '" + options.path + "': " + e.what());
  }
}

}  // namespace gatehouse::store
