// sim/histogram.cpp: the log-linear histogram (see histogram.h).
#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

namespace millipost::sim {

std::size_t Histogram::bucket_of(std::uint64_t v) {
    if (v < kSubBuckets) return static_cast<std::size_t>(v);
    unsigned k = 63 - static_cast<unsigned>(std::countl_zero(v));  // 2^k <= v < 2^(k+1), k >= 4
    auto sub = static_cast<std::size_t>((v >> (k - kSubBits)) & (kSubBuckets - 1));
    return kSubBuckets + (k - kSubBits) * kSubBuckets + sub;
}

std::uint64_t Histogram::bucket_lower(std::size_t b) {
    if (b < kSubBuckets) return b;
    std::size_t k = (b - kSubBuckets) / kSubBuckets + kSubBits;
    std::uint64_t sub = b % kSubBuckets;
    return (kSubBuckets + sub) << (k - kSubBits);
}

std::uint64_t Histogram::bucket_upper(std::size_t b) {
    if (b < kSubBuckets) return b;
    std::size_t k = (b - kSubBuckets) / kSubBuckets + kSubBits;
    return bucket_lower(b) + ((std::uint64_t{1} << (k - kSubBits)) - 1);
}

void Histogram::add(std::uint64_t v, std::uint64_t n) {
    if (n == 0) return;
    auto b = bucket_of(v);
    if (counts_.size() <= b) counts_.resize(b + 1, 0);
    counts_[b] += n;
    min_ = count_ ? std::min(min_, v) : v;
    max_ = std::max(max_, v);
    count_ += n;
    sum_ += static_cast<double>(v) * static_cast<double>(n);
}

void Histogram::merge(const Histogram& o) {
    if (o.count_ == 0) return;
    if (counts_.size() < o.counts_.size()) counts_.resize(o.counts_.size(), 0);
    for (std::size_t i = 0; i < o.counts_.size(); ++i)
        counts_[i] += o.counts_[i];
    min_ = count_ ? std::min(min_, o.min_) : o.min_;
    max_ = std::max(max_, o.max_);
    count_ += o.count_;
    sum_ += o.sum_;
}

void Histogram::clear() {
    *this = Histogram{};
}

std::uint64_t Histogram::quantile(double q) const {
    if (count_ == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    if (rank == count_) return max_;  // the largest sample is known exactly
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < counts_.size(); ++b) {
        seen += counts_[b];
        if (seen >= rank) {
            auto lo = bucket_lower(b);
            auto mid = lo + (bucket_upper(b) - lo) / 2;
            return std::clamp(mid, min_, max_);
        }
    }
    return max_;
}

boost::json::object Histogram::to_json() const {
    boost::json::array counts;
    for (std::size_t b = 0; b < counts_.size(); ++b)
        if (counts_[b]) counts.push_back(boost::json::array{bucket_lower(b), counts_[b]});
    return {{"scheme", "log-linear"}, {"sub_buckets", kSubBuckets}, {"counts", std::move(counts)}};
}

boost::json::object Histogram::summary_json() const {
    return {{"p50", quantile(0.50)},   {"p90", quantile(0.90)}, {"p99", quantile(0.99)},
            {"p999", quantile(0.999)}, {"max", max()},          {"mean", mean()}};
}

Histogram Histogram::from_json(const boost::json::value& v) {
    const auto& o = v.as_object();
    if (o.at("scheme").as_string() != "log-linear" ||
        boost::json::value_to<std::uint64_t>(o.at("sub_buckets")) != kSubBuckets)
        throw std::invalid_argument("histogram: not a log-linear/16 histogram");
    Histogram h;
    for (const auto& row : o.at("counts").as_array()) {
        const auto& pair = row.as_array();
        h.add(boost::json::value_to<std::uint64_t>(pair.at(0)),
              boost::json::value_to<std::uint64_t>(pair.at(1)));
    }
    return h;
}

}  // namespace millipost::sim
