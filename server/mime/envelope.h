// mime/envelope.h: IMAP ENVELOPE data (RFC 9051 §7.5.2) and the RFC 5322 §3.4 address-list
// parser it needs, obsolete forms (routes, obs-phrase, empty list elements) included.
#pragma once
#include "mime/message.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::mime {

// One IMAP address structure. Values are raw: RFC 5322 quoting removed, encoded-words NOT
// decoded (the client decodes). A group is a start marker (mailbox = group name, host NIL),
// its members, then an end marker (all NIL). An address without a domain gets the host
// "MISSING_DOMAIN" and one without a local part the mailbox "MISSING_MAILBOX" (as Dovecot
// does), so that a NIL host only ever marks a group.
struct Address {
    std::optional<std::string> name;     // display name; else the comment after an addr-spec
    std::optional<std::string> adl;      // obsolete source route, e.g. "@a.example,@b.example"
    std::optional<std::string> mailbox;  // local part, or the group name of a group start
    std::optional<std::string> host;     // domain (domain literals keep their brackets)

    bool is_group_start() const { return !host && mailbox; }
    bool is_group_end() const { return !host && !mailbox; }
    bool operator==(const Address&) const = default;
};

inline constexpr std::string_view kMissingDomain = "MISSING_DOMAIN";
inline constexpr std::string_view kMissingMailbox = "MISSING_MAILBOX";

// Parses an address-list field value (folding allowed). Never fails: what is not an address is
// skipped, an unclosed group is closed at the end.
std::vector<Address> parse_address_list(std::string_view value);

// RFC 9051 §7.5.2. Strings are the unfolded, trimmed field values (NIL when the field is absent;
// also when Date, In-Reply-To or Message-ID is empty). Sender and Reply-To are the From list
// when absent or empty. The first field of each name counts.
struct Envelope {
    std::optional<std::string> date, subject;
    std::vector<Address> from, sender, reply_to, to, cc, bcc;  // empty renders as NIL
    std::optional<std::string> in_reply_to, message_id;
};

// The envelope of a message: the root part, or the child of a message/rfc822 part.
Envelope make_envelope(const Part& message);

}  // namespace millipost::mime
