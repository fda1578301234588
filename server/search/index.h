// search/index.h: the FullTextIndex interface behind IMAP SEARCH text keys (SQLite FTS5 now, a
// per-user RADOS index later): case-insensitive substring search per mailbox and field.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::search {

// The store's identifiers (store/mail_store.h), repeated so the index needs nothing of the store.
using UserId = std::int64_t;
using MailboxId = std::int64_t;

// What a needle is looked for in (RFC 9051 §6.4.4 SEARCH keys).
enum class Field {
    Subject,  // SUBJECT
    From,     // FROM
    To,       // TO
    Cc,       // CC
    Bcc,      // BCC
    Header,   // any "Name: value" line; for HEADER name value the caller filters by name
    Body,     // BODY
    Text,     // TEXT: header lines and body
};

// The search text of one message, all UTF-8. The address fields hold the decoded values of all
// fields of that name, one per line; `header` holds every top-level header field as a decoded
// "Name: value" line; `body` the text of the text parts (see mime::extract_text).
struct Fields {
    std::string subject, from, to, cc, bcc;
    std::string header;
    std::string body;
};

struct Document {
    std::uint32_t uid = 0;
    Fields fields;
};

// Needles shorter than this (in Unicode characters) are not answered by the index.
inline constexpr std::size_t kMinNeedleChars = 3;

// An index of message text. It may lag the store and can always be rebuilt from it: before a
// query the caller compares indexed_uids() with the mailbox's UIDs, adds what is missing and
// removes what was expunged. Implementations are safe to call from several threads at once.
// Errors (I/O, corruption) throw std::runtime_error.
class FullTextIndex {
  public:
    virtual ~FullTextIndex() = default;

    // Adds (or replaces) the messages `docs` of `mailbox`, all in one transaction.
    virtual void add(UserId user, MailboxId mailbox, std::span<const Document> docs) = 0;
    void add(UserId user, MailboxId mailbox, const Document& doc) {
        add(user, mailbox, std::span<const Document>(&doc, 1));
    }
    // Removes those UIDs (unknown ones are ignored).
    virtual void remove(UserId user, MailboxId mailbox, std::span<const std::uint32_t> uids) = 0;
    // Forgets the whole mailbox (deleted, or UIDVALIDITY changed).
    virtual void drop_mailbox(UserId user, MailboxId mailbox) = 0;

    // The UIDs of `mailbox` whose text is in the index, ascending.
    virtual std::vector<std::uint32_t> indexed_uids(UserId user, MailboxId mailbox) = 0;
    // The highest indexed UID of `mailbox`, 0 when none: the watermark for append-only catch-up.
    virtual std::uint32_t last_indexed_uid(UserId user, MailboxId mailbox) = 0;

    // The indexed UIDs, ascending, whose `field` contains `needle` as a substring, compared
    // case-insensitively (Unicode simple case folding). std::nullopt when the index cannot answer
    // exactly and the caller must scan: a needle under kMinNeedleChars characters, not valid
    // UTF-8, or containing NUL. Messages not indexed yet are not in the answer.
    virtual std::optional<std::vector<std::uint32_t>> find(UserId user, MailboxId mailbox,
                                                           Field field,
                                                           std::string_view needle) = 0;
};

}  // namespace millipost::search
