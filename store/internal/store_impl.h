// The backend-independent Store: one writer thread with group commit over a Backend (LMDB or
// memory), write queue, revisions, subscriptions, import.
//
// Thread-safety: StoreImpl is thread-safe (see store.h). Backend implementations: NewReadTxn is
// called from any thread; BeginWrite/CommitWrite only from the writer thread.
#ifndef GATEHOUSE_STORE_INTERNAL_STORE_IMPL_H_
#define GATEHOUSE_STORE_INTERNAL_STORE_IMPL_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "store/internal/kv.h"
#include "store/store.h"

namespace gatehouse::store::internal {

class Backend {
 public:
  virtual ~Backend() = default;
  // clock is owned by the StoreImpl and outlives the ReadTxn only if the ReadTxn is destroyed
  // before the Store (documented REQUIRES in store.h terms: destroy readers first).
  virtual std::unique_ptr<ReadTxn> NewReadTxn(const std::function<int64_t()>* clock) = 0;
  virtual Status BeginWrite(std::unique_ptr<KvTxn>* out) = 0;
  // Commits the top-level transaction; returns Ok only once it is durable.
  virtual Status CommitWrite(std::unique_ptr<KvTxn> txn) = 0;
  // The revision stored at open time.
  virtual uint64_t StoredRevision() = 0;
  // Bytes used by the store (pages in use).
  virtual uint64_t StoreBytes() = 0;
};

class StoreImpl : public Store {
 public:
  StoreImpl(const Options& options, std::unique_ptr<Backend> backend);
  ~StoreImpl() override;

  std::unique_ptr<ReadTxn> NewReadTxn() override;
  void Submit(WriteRequest req, WriteCallback done) override;
  WriteResult Write(WriteRequest req) override;
  uint64_t Revision() const noexcept override { return rev_.load(std::memory_order_acquire); }
  uint64_t Subscribe(std::function<void(uint64_t)> fn) override;
  void Unsubscribe(uint64_t handle) override;
  Status Import(const std::vector<ImportRecord>& records, ImportStats* stats, size_t batch_size) override;
  void Close() override;

 private:
  struct Job {
    WriteRequest req;
    WriteCallback done;
    std::function<void()> exclusive;  // set: runs alone on the writer thread (import)
  };
  void WriterLoop();
  void RunBatch(std::vector<Job>& batch);
  void Notify(uint64_t rev);
  Status ImportOnWriter(const std::vector<ImportRecord>& records, ImportStats* stats, size_t batch_size);

  const Options options_;
  std::function<int64_t()> clock_;
  std::unique_ptr<Backend> backend_;
  std::atomic<uint64_t> rev_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;  // GUARDED_BY(mu_)
  bool closing_ = false;   // GUARDED_BY(mu_)
  std::once_flag close_once_;
  std::thread writer_;

  std::mutex sub_mu_;
  std::map<uint64_t, std::function<void(uint64_t)>> subs_;  // GUARDED_BY(sub_mu_)
  uint64_t next_sub_ = 1;                                   // GUARDED_BY(sub_mu_)
};

// Fills buf with n bytes from the OS (getrandom). Returns false on failure.
bool OsRandom(void* buf, size_t n);

}  // namespace gatehouse::store::internal

#endif  // GATEHOUSE_STORE_INTERNAL_STORE_IMPL_H_
