// Best-effort audit log of decisions and requests: JSON lines appended to a file by a background
// thread, off the request path.
//
// Drop policy (by design): Append() never blocks and never allocates. Lines go into a bounded
// lock-free queue of `max_queue` slots; when the queue is full (the disk is slower than the
// request rate, or stalled), the line is dropped and counted in dropped(). Nothing durable is
// lost that way: every write is also recorded, with revision, actor and before/after, in the
// store's change log (invariant 10), which is the authoritative history. The audit log is a
// convenience for decision tracing and is best-effort. Write errors (disk full, EIO) are counted
// in write_errors() and the affected lines are dropped too.
//
// Thread-safety: Append(), RequestReopen() and the counters may be called from any number of
// threads concurrently (multi-producer, lock-free). Close() must not race with another Close()
// or with destruction; after Close(), Append() returns false. The background thread is the only
// one that touches the file.
#ifndef GATEHOUSE_DAEMON_AUDIT_LOG_H_
#define GATEHOUSE_DAEMON_AUDIT_LOG_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace gatehouse::daemon {

class AuditLog {
 public:
  // Opens (creating with mode 0640, appending) the file at `path` and starts the writer thread.
  // `max_queue` (> 0) is the number of lines that may wait for the writer; it is rounded up to a
  // power of two. Returns nullptr and sets *err on failure (bad path, permissions, bad size).
  static std::unique_ptr<AuditLog> Open(const std::string& path, size_t max_queue,
                                        std::string* err);

  ~AuditLog();  // Close()s.
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Queues one line for the writer. `line` should be one JSON object without a raw newline; a
  // trailing '\n' is added when missing. Returns true iff queued; returns false (and counts a
  // drop) if the queue is full or the log is closed. Never blocks, never allocates, never throws.
  bool Append(std::string line) noexcept;

  // Asks the writer thread to close and reopen the file before its next write (log rotation,
  // e.g. on SIGHUP). Only stores an atomic flag and wakes the writer.
  void RequestReopen() noexcept;

  // Lines dropped because the queue was full, the log was closed, or a write failed.
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Lines written to the file.
  uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  // Failed write(2)/open(2) calls in the writer thread.
  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

  // Writes every line queued so far, fsyncs, closes the file and joins the writer thread.
  // Idempotent.
  void Close();

 private:
  struct Slot {
    std::atomic<uint64_t> seq{0};
    std::string line;
  };

  AuditLog(std::string path, int fd, size_t capacity);
  void Run();                        // writer thread body
  bool Pop(std::string* out);        // single consumer
  void WriteAll(const std::string& buf, size_t lines);
  void Wake() noexcept;

  const std::string path_;
  const size_t mask_;
  std::unique_ptr<Slot[]> slots_;

  // Producers.
  alignas(64) std::atomic<uint64_t> enqueue_pos_{0};
  // Consumer (writer thread only).
  alignas(64) uint64_t dequeue_pos_ = 0;
  int fd_;  // writer thread only, after Open()

  // Wake-up protocol: the writer sets sleeping_ before it waits on wake_seq_; producers bump
  // wake_seq_ and notify only when the writer is (about to be) asleep.
  alignas(64) std::atomic<uint32_t> wake_seq_{0};
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> closing_{false};
  std::atomic<bool> closed_{false};
  std::atomic<bool> reopen_{false};

  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> write_errors_{0};

  std::thread thread_;
};

}  // namespace gatehouse::daemon

#endif  // GATEHOUSE_DAEMON_AUDIT_LOG_H_
