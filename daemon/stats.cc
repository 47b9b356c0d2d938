#include "daemon/stats.h"

#include <bit>

namespace gatehouse::daemon {

int Histogram::BucketFor(uint64_t ns) noexcept {
  if (ns < (uint64_t{1} << kMinShift)) return 0;
  int msb = 63 - std::countl_zero(ns);  // >= kMinShift
  int sub = static_cast<int>((ns >> (msb - kSubBits)) & ((1 << kSubBits) - 1));
  int idx = 1 + (msb - kMinShift) * (1 << kSubBits) + sub;
  return idx >= kBuckets ? kBuckets - 1 : idx;
}

uint64_t Histogram::BucketUpper(int i) noexcept {
  if (i <= 0) return uint64_t{1} << kMinShift;
  int k = i - 1;
  int msb = kMinShift + k / (1 << kSubBits);
  int sub = k % (1 << kSubBits);
  if (msb >= 62) return UINT64_MAX;
  uint64_t base = uint64_t{1} << msb;
  return base + (base >> kSubBits) * static_cast<uint64_t>(sub + 1);
}

void Histogram::Record(uint64_t ns) noexcept {
  b_[static_cast<size_t>(BucketFor(ns))].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(ns, std::memory_order_relaxed);
}

uint64_t Histogram::Quantile(double p) const noexcept {
  uint64_t total = 0;
  for (const auto& b : b_) total += b.load(std::memory_order_relaxed);
  if (total == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(p * static_cast<double>(total));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += b_[static_cast<size_t>(i)].load(std::memory_order_relaxed);
    if (seen >= rank) return BucketUpper(i);
  }
  return BucketUpper(kBuckets - 1);
}

}  // namespace gatehouse::daemon
