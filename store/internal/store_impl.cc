#include "store/internal/store_impl.h"

#include <sys/random.h>

#include <cerrno>
#include <chrono>
#include <future>

#include "store/internal/apply.h"
#include "store/internal/coding.h"
#include "store/internal/reader_impl.h"

namespace gatehouse::store::internal {
namespace {

// A Reader over the writer's (nested) transaction, for WriteRequest::authorize.
class TxnReader : public KvReader {
 public:
  TxnReader(KvTxn* txn, const std::function<int64_t()>* clock, uint64_t rev) : KvReader(txn, clock) {
    set_rev(rev);
  }
};

// The revision stored in the write txn (authoritative even if another process wrote since open).
uint64_t TxnRevision(KvTxn& txn, uint64_t fallback) {
  std::string_view k, v;
  if (txn.Get(Table::kMeta, "rev", &k, &v) && v.size() == 8) return DecodeBigEndian64(v.data());
  return fallback;
}

std::string MetaRev(uint64_t rev) {
  std::string v;
  PutBigEndian64(&v, rev);
  return v;
}

}  // namespace

bool OsRandom(void* buf, size_t n) {
  auto* p = static_cast<unsigned char*>(buf);
  while (n > 0) {
    ssize_t got = getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

StoreImpl::StoreImpl(const Options& options, std::unique_ptr<Backend> backend)
    : options_(options), backend_(std::move(backend)) {
  clock_ = options_.clock ? options_.clock : [] {
    return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count());
  };
  rev_.store(backend_->StoredRevision(), std::memory_order_release);
  writer_ = std::thread([this] { WriterLoop(); });
}

StoreImpl::~StoreImpl() { Close(); }

void StoreImpl::Close() {
  std::call_once(close_once_, [this] {
    {
      std::lock_guard<std::mutex> l(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    if (writer_.joinable()) writer_.join();
  });
}

std::unique_ptr<ReadTxn> StoreImpl::NewReadTxn() { return backend_->NewReadTxn(&clock_); }

void StoreImpl::Submit(WriteRequest req, WriteCallback done) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!closing_) {
      queue_.push_back(Job{std::move(req), std::move(done), nullptr});
      cv_.notify_one();
      return;
    }
  }
  WriteResult r;
  r.status = Status(Code::kUnavailable, "store is closed");
  if (done) done(std::move(r));
}

WriteResult StoreImpl::Write(WriteRequest req) {
  std::promise<WriteResult> p;
  auto f = p.get_future();
  Submit(std::move(req), [&p](WriteResult r) { p.set_value(std::move(r)); });
  return f.get();
}

uint64_t StoreImpl::Subscribe(std::function<void(uint64_t)> fn) {
  std::lock_guard<std::mutex> l(sub_mu_);
  const uint64_t h = next_sub_++;
  subs_.emplace(h, std::move(fn));
  return h;
}

void StoreImpl::Unsubscribe(uint64_t handle) {
  std::lock_guard<std::mutex> l(sub_mu_);
  subs_.erase(handle);
}

void StoreImpl::Notify(uint64_t rev) {
  std::lock_guard<std::mutex> l(sub_mu_);
  for (auto& [h, fn] : subs_) {
    try {
      fn(rev);
    } catch (...) {
    }
  }
}

void StoreImpl::WriterLoop() {
  std::vector<Job> batch;
  for (;;) {
    Job exclusive;
    bool have_exclusive = false;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closing and drained
      if (queue_.front().exclusive) {
        exclusive = std::move(queue_.front());
        queue_.pop_front();
        have_exclusive = true;
      } else {
        const size_t max = options_.max_batch == 0 ? 1 : options_.max_batch;
        while (!queue_.empty() && batch.size() < max && !queue_.front().exclusive) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
    }
    if (have_exclusive) {
      exclusive.exclusive();
      continue;
    }
    RunBatch(batch);
    batch.clear();
  }
}

void StoreImpl::RunBatch(std::vector<Job>& batch) {
  std::vector<WriteResult> results(batch.size());
  std::unique_ptr<KvTxn> txn;
  Status begin = backend_->BeginWrite(&txn);
  if (!begin.ok()) {
    for (size_t i = 0; i < batch.size(); ++i) {
      results[i].status = begin;
      if (batch[i].done) batch[i].done(std::move(results[i]));
    }
    return;
  }
  const uint64_t start = TxnRevision(*txn, rev_.load(std::memory_order_relaxed));
  uint64_t cur = start;
  for (size_t i = 0; i < batch.size(); ++i) {
    WriteResult& res = results[i];
    const WriteRequest& req = batch[i].req;
    ApplyInputs in;
    in.rev = cur + 1;
    in.now = clock_();
    if (NeedsRandom(req.op)) {
      in.random.resize(32);
      if (!OsRandom(in.random.data(), 32)) {
        res.status = Status(Code::kInternal, "cannot read random bytes from the OS");
        continue;
      }
    }
    if (!txn->BeginNested()) {
      res.status = Status(Code::kInternal, "storage error: cannot begin a nested transaction");
      continue;
    }
    Status st;
    try {
      if (req.authorize) {
        TxnReader reader(txn.get(), &clock_, cur);
        st = req.authorize(reader, req);
        if (st.ok() && reader.error()) st = Status(Code::kInternal, "storage error during authorization");
      }
      if (st.ok()) st = ApplyWrite(*txn, options_, req, in, &res);
    } catch (const std::exception& e) {
      st = Status(Code::kInternal, std::string("write failed: ") + e.what());
    } catch (...) {
      st = Status(Code::kInternal, "write failed with an unknown exception");
    }
    if (st.ok() && txn->CommitNested()) {
      cur = in.rev;
      res.rev = cur;
    } else {
      if (st.ok()) st = Status(Code::kInternal, "storage error committing the write");
      txn->AbortNested();
      res = WriteResult();
      res.status = st;
    }
  }
  if (cur != start) {
    Status commit;
    if (!txn->Put(Table::kMeta, "rev", MetaRev(cur))) {
      commit = Status(Code::kInternal, "storage error writing the revision");
    } else {
      commit = backend_->CommitWrite(std::move(txn));
    }
    if (!commit.ok()) {
      for (auto& r : results) {
        if (r.status.ok()) {
          r = WriteResult();
          r.status = commit;
        }
      }
      cur = start;
    }
  }
  txn.reset();  // aborts if not committed
  if (cur != start) {
    if (cur > rev_.load(std::memory_order_relaxed)) rev_.store(cur, std::memory_order_release);
    Notify(cur);  // before the callbacks: a writer that sees its result knows watchers were told
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].done) {
      try {
        batch[i].done(std::move(results[i]));
      } catch (...) {
      }
    }
  }
}

Status StoreImpl::Import(const std::vector<ImportRecord>& records, ImportStats* stats, size_t batch_size) {
  std::promise<Status> p;
  auto f = p.get_future();
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closing_) return Status(Code::kUnavailable, "store is closed");
    Job job;
    job.exclusive = [&] { p.set_value(ImportOnWriter(records, stats, batch_size)); };
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return f.get();
}

Status StoreImpl::ImportOnWriter(const std::vector<ImportRecord>& records, ImportStats* stats,
                                 size_t batch_size) {
  const auto t0 = std::chrono::steady_clock::now();
  ImportStats local;
  if (batch_size == 0) batch_size = 1;
  Status result;
  for (size_t off = 0; off < records.size(); off += batch_size) {
    const size_t n = std::min(batch_size, records.size() - off);
    std::unique_ptr<KvTxn> txn;
    Status s = backend_->BeginWrite(&txn);
    const uint64_t rev = (s.ok() ? TxnRevision(*txn, rev_.load(std::memory_order_relaxed))
                                 : rev_.load(std::memory_order_relaxed)) + 1;
    uint64_t members = 0;
    try {
      if (s.ok()) s = ApplyImport(*txn, options_, records.data() + off, n, rev, clock_(), &members);
    } catch (const std::exception& e) {
      s = Status(Code::kInternal, std::string("import failed: ") + e.what());
    }
    if (s.ok() && !txn->Put(Table::kMeta, "rev", MetaRev(rev))) s = Status(Code::kInternal, "storage error");
    if (s.ok()) s = backend_->CommitWrite(std::move(txn));
    if (!s.ok()) {
      result = s;
      break;
    }
    rev_.store(rev, std::memory_order_release);
    Notify(rev);
    local.records += n;
    local.memberships += members;
  }
  local.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  local.store_bytes = backend_->StoreBytes();
  if (stats) *stats = local;
  return result;
}

}  // namespace gatehouse::store::internal
