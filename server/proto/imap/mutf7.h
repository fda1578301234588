// proto/imap/mutf7.h: modified UTF-7 mailbox names (RFC 3501 §5.1.3), the IMAP4rev1 encoding.
// IMAP4rev2 (and UTF8=ACCEPT) sessions use UTF-8 names as they are; rev1 sessions convert at the
// protocol edge with these two functions, so the store only ever sees UTF-8.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace millipost::imap {

// UTF-8 to modified UTF-7: printable ASCII stands for itself ('&' as "&-"), everything else goes
// into "&...-" runs of modified BASE64 (',' for '/') over UTF-16BE. nullopt if `utf8` is not
// well-formed UTF-8.
std::optional<std::string> mutf7_encode(std::string_view utf8);

// Modified UTF-7 to UTF-8, strictly: nullopt for bytes outside printable ASCII, an unterminated
// or empty run, characters outside the modified BASE64 alphabet, non-zero padding bits or a
// partial UTF-16 unit, unpaired surrogates, and printable ASCII encoded in a run (RFC 3501
// forbids it, so each name has one spelling).
std::optional<std::string> mutf7_decode(std::string_view mutf7);

}  // namespace millipost::imap
