// sim/histogram_test.cpp: bucket bounds (0, small, powers of two, 2^64-1), quantiles, merging
// and the JSON round trip of the log-linear histogram.
#include "histogram.h"

#include <gtest/gtest.h>

#include <limits>

using millipost::sim::Histogram;

TEST(Histogram, BucketsCoverTheWholeRangeWithoutGaps) {
    EXPECT_EQ(Histogram::bucket_of(0), 0u);
    EXPECT_EQ(Histogram::bucket_of(15), 15u);
    EXPECT_EQ(Histogram::bucket_of(16), 16u);
    EXPECT_EQ(Histogram::bucket_of(31), 31u);
    EXPECT_EQ(Histogram::bucket_of(32), 32u);
    EXPECT_EQ(Histogram::bucket_of(33), 32u);  // [32, 34) is one bucket: 2 wide
    auto top = std::numeric_limits<std::uint64_t>::max();
    EXPECT_EQ(Histogram::bucket_of(top), Histogram::kBuckets - 1);
    EXPECT_EQ(Histogram::bucket_upper(Histogram::kBuckets - 1), top);
    // Consecutive buckets tile the range: upper(b) + 1 == lower(b + 1), and each value's
    // bucket holds it.
    for (std::size_t b = 0; b + 1 < Histogram::kBuckets; ++b) {
        ASSERT_EQ(Histogram::bucket_upper(b) + 1, Histogram::bucket_lower(b + 1)) << b;
        ASSERT_EQ(Histogram::bucket_of(Histogram::bucket_lower(b)), b);
        ASSERT_EQ(Histogram::bucket_of(Histogram::bucket_upper(b)), b);
    }
}

TEST(Histogram, RelativeErrorIsBoundedBySubBuckets) {
    for (std::uint64_t v : {17ull, 1000ull, 123456ull, 1ull << 40, (1ull << 62) + 12345}) {
        auto b = Histogram::bucket_of(v);
        double width = static_cast<double>(Histogram::bucket_upper(b) - Histogram::bucket_lower(b));
        EXPECT_LE(width / static_cast<double>(v), 1.0 / 16) << v;
    }
}

TEST(Histogram, QuantilesMaxMean) {
    Histogram h;
    EXPECT_EQ(h.quantile(0.5), 0u);
    EXPECT_EQ(h.max(), 0u);
    for (std::uint64_t v = 1; v <= 1000; ++v)
        h.add(v);
    EXPECT_EQ(h.count(), 1000u);
    EXPECT_EQ(h.max(), 1000u);
    EXPECT_DOUBLE_EQ(h.mean(), 500.5);
    EXPECT_NEAR(static_cast<double>(h.quantile(0.5)), 500, 500 / 16.0);
    EXPECT_NEAR(static_cast<double>(h.quantile(0.99)), 990, 990 / 16.0);
    EXPECT_EQ(h.quantile(1.0), 1000u);
    EXPECT_EQ(h.quantile(0.0), 1u);
}

TEST(Histogram, ZeroAndHugeValues) {
    Histogram h;
    auto top = std::numeric_limits<std::uint64_t>::max();
    h.add(0);
    h.add(top);
    EXPECT_EQ(h.count(), 2u);
    EXPECT_EQ(h.quantile(0.5), 0u);
    EXPECT_EQ(h.quantile(1.0), top);
    EXPECT_EQ(h.max(), top);
    EXPECT_GT(h.mean(), 9e18);  // no wrap-around in the sum
    auto round = Histogram::from_json(h.to_json());
    EXPECT_EQ(round.count(), 2u);
    EXPECT_EQ(round.quantile(0.0), 0u);
    EXPECT_EQ(Histogram::bucket_of(round.max()), Histogram::kBuckets - 1);
}

TEST(Histogram, MergeEqualsAddingEverything) {
    Histogram a, b, all;
    for (std::uint64_t v = 0; v < 5000; v += 7) {
        (v % 2 ? a : b).add(v * 13);
        all.add(v * 13);
    }
    a.merge(b);
    EXPECT_EQ(a.count(), all.count());
    EXPECT_EQ(a.max(), all.max());
    EXPECT_DOUBLE_EQ(a.mean(), all.mean());
    for (double q : {0.1, 0.5, 0.9, 0.99, 0.999})
        EXPECT_EQ(a.quantile(q), all.quantile(q));
    EXPECT_EQ(boost::json::serialize(a.to_json()), boost::json::serialize(all.to_json()));
    Histogram empty;
    a.merge(empty);
    EXPECT_EQ(a.count(), all.count());
}

TEST(Histogram, JsonShapeAndRejectsOtherSchemes) {
    Histogram h;
    h.add(100, 3);
    auto j = h.to_json();
    EXPECT_EQ(j.at("scheme").as_string(), "log-linear");
    EXPECT_EQ(boost::json::value_to<int>(j.at("sub_buckets")), 16);
    ASSERT_EQ(j.at("counts").as_array().size(), 1u);
    EXPECT_EQ(boost::json::value_to<int>(j.at("counts").as_array()[0].as_array()[0]),
              100);  // [100, 104)
    EXPECT_EQ(boost::json::value_to<int>(j.at("counts").as_array()[0].as_array()[1]), 3);
    auto s = h.summary_json();
    EXPECT_EQ(boost::json::value_to<int>(s.at("max")), 100);
    j["scheme"] = "hdr";
    EXPECT_THROW(Histogram::from_json(j), std::invalid_argument);
}
