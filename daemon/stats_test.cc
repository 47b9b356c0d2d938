#include "daemon/stats.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace gatehouse::daemon {
namespace {

TEST(Histogram, BucketsAreMonotoneAndContainTheirValues) {
  uint64_t prev = 0;
  for (int i = 0; i < Histogram::kBuckets; ++i) {
    uint64_t up = Histogram::BucketUpper(i);
    EXPECT_GT(up, prev) << i;
    prev = up;
    if (up == UINT64_MAX) break;
  }
  for (uint64_t ns : {0ull, 1ull, 63ull, 64ull, 65ull, 100ull, 1000ull, 123456ull, 999999999ull}) {
    int b = Histogram::BucketFor(ns);
    EXPECT_LT(ns, Histogram::BucketUpper(b)) << ns;
    if (b > 0) {
      EXPECT_GE(ns, Histogram::BucketUpper(b - 1)) << ns;
    }
  }
}

TEST(Histogram, QuantilesWithin25Percent) {
  Histogram h;
  EXPECT_EQ(h.Quantile(0.5), 0u);
  for (uint64_t i = 1; i <= 1000; ++i) h.Record(i * 1000);  // 1 us .. 1 ms
  EXPECT_EQ(h.count(), 1000u);
  uint64_t p50 = h.Quantile(0.5), p99 = h.Quantile(0.99);
  EXPECT_GE(p50, 500000u);
  EXPECT_LE(p50, 500000u * 5 / 4);
  EXPECT_GE(p99, 990000u);
  EXPECT_LE(p99, 990000u * 5 / 4);
  EXPECT_EQ(h.sum_ns(), 1000ull * 1001 / 2 * 1000);
}

TEST(Histogram, ConcurrentRecordsAreAllCounted) {
  Histogram h;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&h] {
      for (int i = 0; i < 10000; ++i) h.Record(static_cast<uint64_t>(i));
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(h.count(), 40000u);
  uint64_t total = 0;
  for (int i = 0; i < Histogram::kBuckets; ++i) total += h.bucket(i);
  EXPECT_EQ(total, 40000u);
}

}  // namespace
}  // namespace gatehouse::daemon
