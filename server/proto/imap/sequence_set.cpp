// proto/imap/sequence_set.cpp: sequence sets (see sequence_set.h).
#include "proto/imap/sequence_set.h"

#include <algorithm>

namespace millipost::imap {
namespace {

// One range with '*' resolved, ordered. In an empty mailbox (max 0) '*' names nothing, so
// "5:*" is just 5 and "*" is empty (false).
bool order(SequenceSet::Range r, std::uint32_t max, SequenceSet::Interval& iv) {
    std::uint32_t a = r.first == SequenceSet::kStar ? max : r.first;
    std::uint32_t b = r.last == SequenceSet::kStar ? max : r.last;
    if (a == 0) a = b;
    if (b == 0) b = a;
    if (a == 0) return false;
    iv = a <= b ? SequenceSet::Interval{a, b} : SequenceSet::Interval{b, a};
    return true;
}

}  // namespace

SequenceSet SequenceSet::saved_result() {
    SequenceSet s;
    s.saved_ = true;
    return s;
}

std::vector<SequenceSet::Interval> SequenceSet::resolve(std::uint32_t max) const {
    std::vector<Interval> v;
    v.reserve(ranges_.size());
    for (auto r : ranges_) {
        Interval iv;
        if (order(r, max, iv)) v.push_back(iv);
    }
    std::sort(v.begin(), v.end());
    std::vector<Interval> merged;
    for (auto& iv : v) {
        if (!merged.empty() && iv.first <= merged.back().second + std::uint64_t{1})
            merged.back().second = std::max(merged.back().second, iv.second);
        else
            merged.push_back(iv);
    }
    return merged;
}

bool SequenceSet::contains(std::uint32_t n, std::uint32_t max) const {
    if (n == 0) return false;
    for (auto r : ranges_) {
        Interval iv;
        if (order(r, max, iv) && n >= iv.first && n <= iv.second) return true;
    }
    return false;
}

std::vector<std::uint32_t> SequenceSet::expand(std::uint32_t max) const {
    std::vector<std::uint32_t> out;
    for (auto [a, b] : resolve(max)) {
        if (a > max) break;
        b = std::min(b, max);
        for (std::uint64_t n = a; n <= b; ++n)
            out.push_back(static_cast<std::uint32_t>(n));
    }
    return out;
}

std::uint32_t SequenceSet::max_number() const {
    std::uint32_t m = 0;
    for (auto r : ranges_)
        m = std::max({m, r.first, r.last});
    return m;
}

std::string SequenceSet::to_string() const {
    if (saved_) return "$";
    std::string out;
    auto num = [&](std::uint32_t n) {
        if (n == kStar)
            out.push_back('*');
        else
            out += std::to_string(n);
    };
    for (auto r : ranges_) {
        if (!out.empty()) out.push_back(',');
        num(r.first);
        if (r.last != r.first) {
            out.push_back(':');
            num(r.last);
        }
    }
    return out;
}

Parsed<SequenceSet> parse_sequence_set(std::string_view s, std::size_t max_ranges) {
    auto error = [&](std::string_view at, const char* what) {
        return bad("Invalid sequence set '" + std::string(s.substr(0, 200)) + "': " + what +
                   (at.empty() ? std::string(" at its end")
                               : " at '" + std::string(at.substr(0, 20)) + "'"));
    };
    if (s.empty()) return bad("Missing sequence set");
    if (s == "$") return SequenceSet::saved_result();
    SequenceSet set;
    std::size_t i = 0;
    // seq-number = nz-number / "*"; nz-number = digit-nz *DIGIT, at most 4294967295.
    auto number = [&](std::uint32_t& n) -> const char* {
        if (i < s.size() && s[i] == '*') {
            ++i;
            n = SequenceSet::kStar;
            return nullptr;
        }
        if (i >= s.size() || s[i] < '0' || s[i] > '9') return "expected a number or '*'";
        if (s[i] == '0') return "numbers start at 1";
        std::uint64_t v = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + static_cast<std::uint64_t>(s[i] - '0');
            if (v > 0xFFFFFFFFull) return "number over 4294967295";
            ++i;
        }
        n = static_cast<std::uint32_t>(v);
        return nullptr;
    };
    for (;;) {
        if (set.ranges().size() >= max_ranges) return error(s.substr(i), "too many ranges");
        std::size_t at = i;
        std::uint32_t first = 0, last = 0;
        if (auto e = number(first)) return error(s.substr(at), e);
        last = first;
        if (i < s.size() && s[i] == ':') {
            ++i;
            at = i;
            if (auto e = number(last)) return error(s.substr(at), e);
        }
        set.add(first, last);
        if (i == s.size()) break;
        if (s[i] != ',') return error(s.substr(i), "expected ',' or ':'");
        ++i;
    }
    return set;
}

std::string compress_sequence(std::span<const std::uint32_t> numbers) {
    std::vector<std::uint32_t> v(numbers.begin(), numbers.end());
    if (!std::is_sorted(v.begin(), v.end())) std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    std::string out;
    for (std::size_t i = 0; i < v.size();) {
        std::size_t j = i;
        while (j + 1 < v.size() && v[j + 1] == v[j] + 1)
            ++j;
        if (!out.empty()) out.push_back(',');
        out += std::to_string(v[i]);
        if (j > i) {
            out.push_back(':');
            out += std::to_string(v[j]);
        }
        i = j + 1;
    }
    return out;
}

}  // namespace millipost::imap
