#include "daemon/audit_log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <utility>

namespace gatehouse::daemon {
namespace {

constexpr size_t kMaxQueue = size_t{1} << 24;
constexpr size_t kMaxLinesPerWrite = 4096;
constexpr size_t kMaxBytesPerWrite = size_t{1} << 18;

int OpenForAppend(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

size_t RoundUpPow2(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

}  // namespace

std::unique_ptr<AuditLog> AuditLog::Open(const std::string& path, size_t max_queue,
                                         std::string* err) {
  if (path.empty()) {
    *err = "audit log: empty path";
    return nullptr;
  }
  if (max_queue == 0 || max_queue > kMaxQueue) {
    *err = "audit log: max_queue must be between 1 and " + std::to_string(kMaxQueue);
    return nullptr;
  }
  int fd = OpenForAppend(path);
  if (fd < 0) {
    *err = "audit log: cannot open " + path + ": " + strerror(errno);
    return nullptr;
  }
  std::unique_ptr<AuditLog> log(new AuditLog(path, fd, RoundUpPow2(max_queue)));
  log->thread_ = std::thread([l = log.get()] { l->Run(); });
  return log;
}

AuditLog::AuditLog(std::string path, int fd, size_t capacity)
    : path_(std::move(path)), mask_(capacity - 1), slots_(new Slot[capacity]), fd_(fd) {
  for (size_t i = 0; i < capacity; ++i) slots_[i].seq.store(i, std::memory_order_relaxed);
}

AuditLog::~AuditLog() { Close(); }

bool AuditLog::Append(std::string line) noexcept {
  if (closing_.load(std::memory_order_acquire)) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // Bounded MPMC queue (D. Vyukov): a slot is free for position pos when its seq == pos.
  uint64_t pos = enqueue_pos_.load(std::memory_order_relaxed);
  Slot* slot;
  for (;;) {
    slot = &slots_[pos & mask_];
    uint64_t seq = slot->seq.load(std::memory_order_acquire);
    int64_t diff = static_cast<int64_t>(seq) - static_cast<int64_t>(pos);
    if (diff == 0) {
      if (enqueue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
    } else if (diff < 0) {
      dropped_.fetch_add(1, std::memory_order_relaxed);  // full
      return false;
    } else {
      pos = enqueue_pos_.load(std::memory_order_relaxed);
    }
  }
  slot->line = std::move(line);  // move-assign: noexcept, no allocation
  // seq_cst store then seq_cst load, paired with the writer's seq_cst store of sleeping_ then
  // load of the slot (Dekker): either we see sleeping_, or the writer sees our slot.
  slot->seq.store(pos + 1, std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_seq_cst)) Wake();
  return true;
}

void AuditLog::Wake() noexcept {
  wake_seq_.fetch_add(1, std::memory_order_release);
  wake_seq_.notify_one();
}

void AuditLog::RequestReopen() noexcept {
  reopen_.store(true, std::memory_order_release);
  Wake();
}

bool AuditLog::Pop(std::string* out) {
  Slot& slot = slots_[dequeue_pos_ & mask_];
  uint64_t seq = slot.seq.load(std::memory_order_acquire);
  if (seq != dequeue_pos_ + 1) return false;  // empty (or the producer has not published yet)
  *out = std::move(slot.line);
  slot.line = std::string();
  slot.seq.store(dequeue_pos_ + mask_ + 1, std::memory_order_release);
  ++dequeue_pos_;
  return true;
}

void AuditLog::WriteAll(const std::string& buf, size_t lines) {
  if (fd_ < 0) fd_ = OpenForAppend(path_);
  if (fd_ < 0) {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    dropped_.fetch_add(lines, std::memory_order_relaxed);
    return;
  }
  const char* p = buf.data();
  size_t left = buf.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      dropped_.fetch_add(lines, std::memory_order_relaxed);
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  written_.fetch_add(lines, std::memory_order_relaxed);
}

void AuditLog::Run() {
  std::string buf;
  buf.reserve(1 << 16);
  std::string line;
  for (;;) {
    size_t n = 0;
    while (n < kMaxLinesPerWrite && buf.size() < kMaxBytesPerWrite && Pop(&line)) {
      if (line.empty()) continue;
      buf += line;
      if (buf.back() != '\n') buf.push_back('\n');
      ++n;
    }
    // Checked after popping: a line appended after RequestReopen() returned goes to the new file.
    if (reopen_.exchange(false, std::memory_order_acq_rel)) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = OpenForAppend(path_);
      if (fd_ < 0) write_errors_.fetch_add(1, std::memory_order_relaxed);
    }
    if (n > 0) {
      WriteAll(buf, n);
      buf.clear();
      continue;
    }
    if (closing_.load(std::memory_order_acquire)) return;
    uint32_t seen = wake_seq_.load(std::memory_order_acquire);
    sleeping_.store(true, std::memory_order_seq_cst);
    const Slot& next = slots_[dequeue_pos_ & mask_];
    bool ready = next.seq.load(std::memory_order_seq_cst) == dequeue_pos_ + 1;
    if (!ready && !closing_.load(std::memory_order_acquire) &&
        !reopen_.load(std::memory_order_acquire)) {
      wake_seq_.wait(seen, std::memory_order_acquire);
    }
    sleeping_.store(false, std::memory_order_relaxed);
  }
}

void AuditLog::Close() {
  if (closed_.exchange(true)) return;
  closing_.store(true, std::memory_order_release);
  Wake();
  if (thread_.joinable()) thread_.join();
  // Appends that raced with closing_ may have landed after the writer's last drain.
  std::string buf, line;
  size_t n = 0;
  while (Pop(&line)) {
    if (line.empty()) continue;
    buf += line;
    if (buf.back() != '\n') buf.push_back('\n');
    ++n;
  }
  if (n > 0) WriteAll(buf, n);
  if (fd_ >= 0) {
    ::fsync(fd_);
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace gatehouse::daemon
