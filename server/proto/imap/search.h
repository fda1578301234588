// proto/imap/search.h: SEARCH programs (RFC 9051 §6.4.4) as a tree: every IMAP4rev2 key, the
// IMAP4rev1 keys NEW/OLD/RECENT, MODSEQ (CONDSTORE, RFC 7162 §3.1.5), the RETURN options of
// ESEARCH (RFC 4731/9051) including SAVE (SEARCHRES, RFC 5182), and the CHARSET prefix.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/imap/parsed.h"
#include "proto/imap/parser.h"
#include "proto/imap/sequence_set.h"

namespace millipost::imap {

// NOT, OR and parentheses nested deeper than this are refused, so that evaluating the tree
// recursively stays shallow. "NOT NOT NOT ..." is not bounded by the parser's max_depth.
inline constexpr std::size_t kMaxSearchDepth = 64;

struct SearchKey {
    enum class Op : std::uint8_t {
        And,  // children, all must match: the top level and "(...)"
        Or,   // two children
        Not,  // one child
        All,
        SequenceSet,  // set (message sequence numbers; may be "$")
        Uid,          // set (UIDs; may be "$")
        // Flags
        Answered,
        Deleted,
        Draft,
        Flagged,
        Seen,
        Unanswered,
        Undeleted,
        Undraft,
        Unflagged,
        Unseen,
        Keyword,    // value
        Unkeyword,  // value
        New,        // IMAP4rev1: RECENT UNSEEN
        Old,        // IMAP4rev1: NOT RECENT
        Recent,     // IMAP4rev1
        // Substring matches, case-insensitive (value is the needle)
        Bcc,
        Body,
        Cc,
        From,
        Subject,
        Text,
        To,
        Header,  // field, value ("" matches every message that has the field)
        // Dates (date: 00:00 UTC of the day, compare by day)
        Before,
        On,
        Since,
        SentBefore,
        SentOn,
        SentSince,
        // Sizes (number, octets)
        Larger,
        Smaller,
        ModSeq,  // number; value = entry name ("/flags/\\seen"), entry_type
    };
    enum class EntryType : std::uint8_t { None, Priv, Shared, All };

    Op op = Op::All;
    std::string field;
    std::string value;
    std::int64_t date = 0;
    std::uint64_t number = 0;
    SequenceSet set;
    EntryType entry_type = EntryType::None;
    std::vector<SearchKey> children;

    bool operator==(const SearchKey&) const = default;
};

struct SearchReturn {
    bool min = false;
    bool max = false;
    bool all = false;
    bool count = false;
    bool save = false;
    bool update = false;   // CONTEXT=SEARCH (RFC 5267 §4.4): keep the result up to date
    bool context = false;  // CONTEXT=SEARCH: a hint that the result will be used again
    // PARTIAL (RFC 9394): positions first..last (1-based) of the result, or counted from its end
    // when negative ("-1:-100" is the last hundred); first <= last after normalising.
    bool partial = false;
    std::int64_t first = 0, last = 0;
    bool operator==(const SearchReturn&) const = default;
};

// A PARTIAL range: "a:b" of non-zero numbers, both positive or both negative (in either order).
Parsed<std::pair<std::int64_t, std::int64_t>> parse_partial_range(std::string_view s);

// The PARTIAL return data for results `hits` (in result order): "(range set)", the set "NIL"
// when the range selects nothing.
std::string partial_result(const SearchReturn& ret, const std::vector<std::uint32_t>& hits);

struct SearchProgram {
    bool esearch = false;  // RETURN (...) was given: answer with ESEARCH, not SEARCH
    SearchReturn ret;      // "RETURN ()" means ALL
    std::string charset;   // upper-cased, empty if not given
    SearchKey key;         // Op::And of the top-level keys
};

// The arguments after SEARCH (or UID SEARCH). A CHARSET other than US-ASCII and UTF-8 gives
// an error with code "BADCHARSET (US-ASCII UTF-8)", to be sent as NO.
Parsed<SearchProgram> parse_search(const Command& cmd);

// One or more search keys (e.g. the items of a parenthesised group); the result is an And.
Parsed<SearchKey> parse_search_keys(std::span<const Arg> args);

}  // namespace millipost::imap
