// mime/section.h: IMAP section addressing (RFC 9051 §6.4.5): BODY[section] and BINARY[part]
// over a parsed message. Partial `<start.length>` is left to the caller.
#pragma once
#include "mime/message.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::mime {

// section-spec = section-msgtext / (section-part ["." section-text])
struct Section {
    enum class Text { None, Header, HeaderFields, HeaderFieldsNot, Text, Mime };
    std::vector<std::uint32_t> part;  // 1.2.3; empty for the message itself
    Text text = Text::None;
    std::vector<std::string> fields;  // HEADER.FIELDS[.NOT] names as the client sent them
};

// Parses what stands between the brackets of BODY[...], e.g. `1.2.HEADER.FIELDS (From "To")`.
// Keywords are case-insensitive; field names are atoms or quoted strings (a literal is the
// command parser's business). Returns nullopt for a malformed spec (`MIME` without a part,
// part number 0, an empty field list...).
std::optional<Section> parse_section(std::string_view spec);

// The canonical text of a section for the FETCH response, e.g. `1.HEADER.FIELDS (FROM TO)`
// (keywords and field names upper-cased as servers commonly echo them).
std::string format_section(const Section& section);

// The part a part number addresses (RFC 9051 §6.4.5): within a multipart, consecutive numbers
// for its parts; a message/rfc822 (or message/global) part's numbers are those of the message
// it encapsulates; a message that is not multipart has a single part 1, its body. Empty `path`
// gives the root. Null when no such part exists.
const Part* find_part(const Message& message, std::span<const std::uint32_t> path);

// The bytes of a section: a slice of the message, or a string built for HEADER.FIELDS[.NOT].
struct SectionData {
    bool exists = false;  // false: no such part, or HEADER/TEXT of a part that is no message
    std::size_t offset = 0;
    std::size_t length = 0;
    std::optional<std::string> built;

    std::string_view bytes(std::string_view raw) const {
        return built ? std::string_view(*built) : raw.substr(offset, length);
    }
};

// RFC 9051 §6.4.5: empty spec = the whole message; `n` = the body of part n (a message/rfc822
// part's body is the whole encapsulated message); HEADER/TEXT = header (with its blank line) or
// body of the message, or of the message a message/rfc822 part encapsulates; MIME = the MIME
// header of part n (for part 1 of a non-multipart message that is the message header);
// HEADER.FIELDS[.NOT] = the matching (or other) fields verbatim, then CRLF. Fields left out of
// Part::headers by a limit are absent from HEADER.FIELDS[.NOT].
SectionData fetch_section(const Message& message, const Section& section);

// IMAP BINARY[part] (RFC 9051 §6.4.5): the part's content with its transfer encoding undone.
// Empty `path` is the whole message as is.
struct BinaryData {
    enum class Status { Ok, NoSuchPart, UnknownEncoding };
    Status status = Status::Ok;
    std::string data;
};
BinaryData fetch_binary(const Message& message, std::span<const std::uint32_t> path);

}  // namespace millipost::mime
