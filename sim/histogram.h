// sim/histogram.h: a log-linear latency histogram (HdrHistogram-like), in microseconds.
// Values below 16 have a bucket each; above, every power-of-two range [2^k, 2^(k+1)) is split
// into 16 linear sub-buckets, so a bucket is at most 1/16 (6.25 %) of its value wide whatever
// the magnitude, from 0 to 2^64-1 in 976 buckets. Histograms merge by adding counts, so threads
// and runs combine exactly. JSON: load-schema.md ("histogram" and "latency_us").
#pragma once
#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace millipost::sim {

class Histogram {
  public:
    static constexpr unsigned kSubBuckets = 16;  // linear sub-buckets per power of two
    static constexpr unsigned kSubBits = 4;      // log2(kSubBuckets)
    // Buckets for the whole uint64 range: 16 exact ones, then 16 per power 2^4 .. 2^63.
    static constexpr std::size_t kBuckets = kSubBuckets + (64 - kSubBits) * kSubBuckets;

    static std::size_t bucket_of(std::uint64_t v);
    static std::uint64_t bucket_lower(std::size_t b);
    // Largest value in bucket b (inclusive; no overflow for the last bucket).
    static std::uint64_t bucket_upper(std::size_t b);

    void add(std::uint64_t v, std::uint64_t n = 1);
    void merge(const Histogram& other);
    void clear();

    std::uint64_t count() const { return count_; }
    std::uint64_t max() const { return max_; }
    std::uint64_t min() const { return count_ ? min_ : 0; }
    double mean() const { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }
    // The value at quantile q in [0, 1]: the middle of the bucket holding the ceil(q*count)-th
    // smallest sample, clamped to [min, max] (so p100 is the exact max). 0 when empty.
    std::uint64_t quantile(double q) const;

    // {"scheme": "log-linear", "sub_buckets": 16, "counts": [[bucket_lower_us, count], ...]}
    boost::json::object to_json() const;
    // {"p50", "p90", "p99", "p999", "max", "mean"}
    boost::json::object summary_json() const;
    // Inverse of to_json (each count lands in the bucket of its lower bound; max and mean then
    // are bucket-resolution estimates). Throws std::invalid_argument on another scheme.
    static Histogram from_json(const boost::json::value& v);

  private:
    std::vector<std::uint64_t> counts_;  // grown on demand up to the highest bucket used
    std::uint64_t count_ = 0;
    std::uint64_t max_ = 0;
    std::uint64_t min_ = 0;
    double sum_ = 0;  // double: sums of huge values must not wrap
};

}  // namespace millipost::sim
