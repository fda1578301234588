// mime/text.h: search text of a message for the full-text index (IMAP SEARCH HEADER/BODY/TEXT):
// header fields and text parts decoded to UTF-8.
#pragma once
#include "mime/message.h"

#include <cstddef>
#include <string>
#include <string_view>

namespace millipost::mime {

// Body text kept per message for the index; beyond it the text is cut (on a character boundary).
inline constexpr std::size_t kMaxSearchBodyText = 4u * 1024 * 1024;

struct SearchText {
    std::string header;  // "Name: value\n" per field of the message header, RFC 2047 decoded
    std::string body;    // text parts, one after the other, each ending with "\n"
};

// `header`: the top-level header fields. `body`: every text/* part (transfer encoding undone,
// charset converted; text/html reduced to its text), and the decoded header fields of every
// encapsulated message/rfc822, since SEARCH BODY covers those octets too. Non-text parts are
// skipped. Always valid UTF-8.
SearchText extract_text(const Message& message, std::size_t max_body = kMaxSearchBodyText);

// The text of an HTML document, simply: tags dropped (block tags become line breaks), script,
// style and comments removed, character references decoded, whitespace runs collapsed.
std::string html_to_text(std::string_view html);

}  // namespace millipost::mime
