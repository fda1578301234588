// proto/imap/sequence_set.h: IMAP sequence sets (RFC 9051 §9 sequence-set, RFC 5182 "$"):
// parsing, membership and expansion against the mailbox's largest number, and the compact
// form the writer sends.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/imap/parsed.h"

namespace millipost::imap {

// Ranges in one sequence set. A set is bounded by the line length anyway (64 KiB gives at most
// ~32k ranges); this caps the work per set below that.
inline constexpr std::size_t kDefaultMaxSequenceRanges = 16384;

class SequenceSet {
  public:
    // '*' is kept as 0, which no sequence number or UID can be (nz-number).
    static constexpr std::uint32_t kStar = 0;
    struct Range {
        std::uint32_t first;  // as sent: "7:3" is {7, 3}; kStar for '*'
        std::uint32_t last;
        bool operator==(const Range&) const = default;
    };
    // Inclusive interval after '*' is resolved; first <= last.
    using Interval = std::pair<std::uint32_t, std::uint32_t>;

    SequenceSet() = default;
    // "$": the result saved by SEARCH RETURN (SAVE) (RFC 5182); the session substitutes it.
    static SequenceSet saved_result();

    bool saved() const { return saved_; }
    bool empty() const { return ranges_.empty() && !saved_; }
    const std::vector<Range>& ranges() const { return ranges_; }
    void add(std::uint32_t first, std::uint32_t last) { ranges_.push_back({first, last}); }
    void add(std::uint32_t n) { ranges_.push_back({n, n}); }

    // '*' resolved to `max` (the largest number in use, 0 when the mailbox is empty), each
    // range ordered, then sorted and merged. Numbers above max stay (a UID set may name UIDs
    // that do not exist; "559:*" includes the last UID even when that is below 559, RFC 9051
    // §9 seq-range). In an empty mailbox (max 0) '*' names nothing: "5:*" is 5, "*" is empty.
    std::vector<Interval> resolve(std::uint32_t max) const;
    bool contains(std::uint32_t n, std::uint32_t max) const;
    // The members in 1..max, ascending, without duplicates. Bounded by max: meant for message
    // sequence numbers; for UIDs intersect resolve() with the UIDs that exist instead.
    std::vector<std::uint32_t> expand(std::uint32_t max) const;
    // The largest number written in the set ('*' not counted), 0 if none: a sequence number
    // above the message count makes the command BAD (RFC 9051 §6.4.7 and friends).
    std::uint32_t max_number() const;

    // The set as sent ("1:3,7:*", "$").
    std::string to_string() const;

    bool operator==(const SequenceSet&) const = default;

  private:
    std::vector<Range> ranges_;
    bool saved_ = false;
};

// Parses sequence-set (or "$"). Errors name the offending text.
Parsed<SequenceSet> parse_sequence_set(std::string_view s,
                                       std::size_t max_ranges = kDefaultMaxSequenceRanges);

// The shortest sequence set for a list of numbers ("1:3,7,9:12"); the input may be in any order
// and hold duplicates. Empty input gives "".
std::string compress_sequence(std::span<const std::uint32_t> numbers);

}  // namespace millipost::imap
