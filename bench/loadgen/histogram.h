// HDR-style latency histogram: log2 buckets with 32 linear sub-buckets each (≤ 1.6% relative
// error), values in nanoseconds, constant memory, no allocation on Add.
//
// Thread-safety: none; one histogram per thread, Merge() afterwards.
#ifndef GATEHOUSE_BENCH_LOADGEN_HISTOGRAM_H_
#define GATEHOUSE_BENCH_LOADGEN_HISTOGRAM_H_

#include <array>
#include <cstdint>

namespace gatehouse::bench {

class Histogram {
 public:
  static constexpr int kSubBits = 5;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = 64 * kSub;

  static int Index(uint64_t v) {
    if (v < 2 * kSub) return static_cast<int>(v);
    const int msb = 63 - __builtin_clzll(v);
    const int e = msb - kSubBits;
    return e * kSub + static_cast<int>(v >> e);
  }
  // Midpoint of the bucket's value range.
  static double Value(int idx) {
    if (idx < 2 * kSub) return idx;
    const int e = idx / kSub - 1;
    const uint64_t m = static_cast<uint64_t>(idx % kSub + kSub);
    const double lo = static_cast<double>(m << e);
    const double hi = static_cast<double>((m + 1) << e);
    return (lo + hi - 1) / 2;
  }

  void Add(uint64_t ns) {
    ++counts_[Index(ns)];
    ++n_;
    if (ns > max_) max_ = ns;
    sum_ += ns;
  }
  void Merge(const Histogram& o) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    n_ += o.n_;
    sum_ += o.sum_;
    if (o.max_ > max_) max_ = o.max_;
  }
  void Clear() { *this = Histogram(); }
  uint64_t count() const { return n_; }
  uint64_t max() const { return max_; }
  double mean() const { return n_ ? static_cast<double>(sum_) / n_ : 0; }
  // q in [0,1]; nanoseconds.
  double Percentile(double q) const {
    if (n_ == 0) return 0;
    uint64_t target = static_cast<uint64_t>(q * static_cast<double>(n_) + 0.999999);
    if (target == 0) target = 1;
    uint64_t acc = 0;
    for (int i = 0; i < kBuckets; ++i) {
      acc += counts_[i];
      if (acc >= target) return Value(i);
    }
    return static_cast<double>(max_);
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t n_ = 0, sum_ = 0, max_ = 0;
};

}  // namespace gatehouse::bench

#endif  // GATEHOUSE_BENCH_LOADGEN_HISTOGRAM_H_
