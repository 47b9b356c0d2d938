// Lock-free counters and latency histograms for `stats` and Prometheus /metrics.
//
// Histogram: log-linear buckets (4 per power of two, 64 ns .. ~69 s), each an atomic counter;
// Record() is one relaxed fetch_add per bucket/count/sum, no lock, no allocation. Percentiles
// are read without stopping writers (a snapshot may be a few requests inconsistent).
//
// Thread-safety: all methods may be called from any thread concurrently.
#ifndef GATEHOUSE_DAEMON_STATS_H_
#define GATEHOUSE_DAEMON_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace gatehouse::daemon {

class Histogram {
 public:
  static constexpr int kSubBits = 2;  // 4 sub-buckets per power of two
  static constexpr int kMinShift = 6; // first bucket: < 64 ns
  static constexpr int kBuckets = 128;

  void Record(uint64_t ns) noexcept;
  uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  uint64_t sum_ns() const noexcept { return sum_.load(std::memory_order_relaxed); }
  // Upper bound (ns) of the bucket holding the p-quantile (0 < p <= 1); 0 if empty.
  uint64_t Quantile(double p) const noexcept;
  // Upper bound (ns) of bucket i.
  static uint64_t BucketUpper(int i) noexcept;
  static int BucketFor(uint64_t ns) noexcept;
  uint64_t bucket(int i) const noexcept { return b_[static_cast<size_t>(i)].load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> b_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_{0};
};

struct OpStats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> errors{0};
  Histogram latency;
};

inline void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept {
  c.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace gatehouse::daemon

#endif  // GATEHOUSE_DAEMON_STATS_H_
