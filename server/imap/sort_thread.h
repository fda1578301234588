// imap/sort_thread.h: the message keys and algorithms of SORT and THREAD (RFC 5256, RFC 5957):
// case folding for comparisons, base subject extraction, RFC 5322 dates, message-id lists, the
// ORDEREDSUBJECT and REFERENCES threading algorithms and the THREAD response syntax. Pure
// functions, unit-tested in sort_thread_test.cpp.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::imap {

// Simple case folding (the i;unicode-casemap collation, approximately): ASCII, Latin-1, Latin
// Extended-A, Greek and Cyrillic capitals to lower case. Invalid UTF-8 octets are kept.
std::string fold_case(std::string_view s);
// fold_case, then ASCII letters upper-cased: the sort order of SORT keys ("C" < "[" < "_").
std::string sort_fold(std::string_view s);

// RFC 5256 §2.1 base subject of an already RFC 2047-decoded Subject value, case-folded (then
// ASCII letters upper-cased, the order Dovecot's i;unicode-casemap gives) so that equal base
// subjects compare equal octet by octet and sort as clients expect. `reply` tells whether a
// "Re:"/"Fwd:" leader, a "(fwd)" trailer or a "[fwd: ...]" wrapper was removed (a reply or forward,
// §2.1 and the REFERENCES algorithm step 5).
struct BaseSubject {
    std::string text;
    bool reply = false;
};
BaseSubject base_subject(std::string_view decoded_subject);

// An RFC 5322 date-time ("[Day,] 1 Feb 1994 21:52:25 -0800"), with the obsolete forms (two or
// three digit years, named and military zones, missing seconds) accepted, as UTC seconds since
// the epoch; nullopt when unreadable.
std::optional<std::int64_t> parse_message_date(std::string_view value);

// The msg-ids ("<...>", brackets kept) of a References or In-Reply-To value, in order.
std::vector<std::string> message_ids(std::string_view value);

// What threading needs of one message.
struct ThreadMessage {
    std::uint32_t id = 0;                 // what the response names: sequence number or UID
    std::uint32_t seq = 0;                // tie-breaker for equal dates
    std::int64_t date = 0;                // sent date (Date:, else the internal date), UTC
    std::string message_id;               // "<...>", empty when missing
    std::vector<std::string> references;  // References, else the first In-Reply-To id
    BaseSubject subject;
};

// A thread tree; id 0 is a dummy (a referenced message not in the set).
struct ThreadNode {
    std::uint32_t id = 0;
    std::vector<ThreadNode> children;
    bool operator==(const ThreadNode&) const = default;
};

std::vector<ThreadNode> thread_orderedsubject(const std::vector<ThreadMessage>& messages);
std::vector<ThreadNode> thread_references(const std::vector<ThreadMessage>& messages);

// The THREAD response data after "THREAD": "(1 2)(3 (4)(5))".
std::string render_threads(const std::vector<ThreadNode>& roots);

}  // namespace millipost::imap
