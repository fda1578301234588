// mime/message.h: RFC 5322/MIME structure parser: a message as a tree of parts with byte offsets
// into the original. Pure and lenient: malformed mail is parsed as the RFCs suggest, never refused.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::mime {

// Limits of one parse. Crossing one never fails the parse: the part that would cross it is kept
// as an unparsed leaf (depth, parts) or the header field is left out of `Part::headers` (header
// limits), and the part records the defect. The bytes stay where they are, so BODY[] is exact.
inline constexpr std::size_t kMaxDepth = 100;          // multipart/message nesting below the root
inline constexpr std::size_t kMaxParts = 10000;        // parts in one message, root included
inline constexpr std::size_t kMaxHeaderFields = 2000;  // fields kept per header block
inline constexpr std::size_t kMaxHeaderFieldSize = 65536;  // octets of one field, folding included

struct Limits {
    std::size_t max_depth = kMaxDepth;
    std::size_t max_parts = kMaxParts;
    std::size_t max_header_fields = kMaxHeaderFields;
    std::size_t max_header_field_size = kMaxHeaderFieldSize;
};

// One header field as written. `start`..`end` covers the name through the field's last line
// terminator (CRLF or bare LF; none at end of input), so HEADER.FIELDS can copy fields verbatim.
struct Header {
    std::string_view name;   // as written, without whitespace before the colon
    std::string_view value;  // raw: everything after the colon, folding kept, terminator not
    std::size_t start = 0;
    std::size_t end = 0;

    // RFC 5322 §2.2.3 unfolding (CR and LF removed), then leading/trailing whitespace trimmed.
    std::string unfolded() const;
};

// A Content-Type or Content-Disposition parameter after RFC 2231 processing: continuations
// (`name*0`, `name*1*`, ...) joined, extended values percent-decoded and converted to UTF-8.
struct Param {
    std::string name;       // lower-cased, without RFC 2231 `*` suffixes
    std::string value;      // UTF-8 when the charset is known; the decoded octets otherwise
    bool extended = false;  // some segment used the RFC 2231 `*=` form
    std::string charset;    // extended values only
    std::string language;   // extended values only
    // Extended values only: the joined wire form `charset'language'%XX...`, which IMAP servers
    // return in BODYSTRUCTURE under the name `name*` (Dovecot does; it stays 7-bit and lossless).
    std::string wire;
};

enum class Encoding { SevenBit, EightBit, Binary, Base64, QuotedPrintable, Unknown };

// What the parser had to repair, per part (bit flags in `Part::defects`).
enum Defect : std::uint32_t {
    kDefectGarbageHeader = 1u << 0,         // a header line that is no field was skipped
    kDefectMissingBlankLine = 1u << 1,      // header ended without the blank line
    kDefectInvalidContentType = 1u << 2,    // Content-Type unparsable: text/plain assumed
    kDefectNoBoundary = 1u << 3,            // multipart without boundary: read as text/plain
    kDefectNoParts = 1u << 4,               // multipart whose boundary never occurs
    kDefectMissingCloseBoundary = 1u << 5,  // multipart ended without `--boundary--`
    kDefectDepthLimit = 1u << 6,            // children not parsed: Limits::max_depth
    kDefectPartsLimit = 1u << 7,            // children dropped: Limits::max_parts
    kDefectHeaderLimit = 1u << 8,           // fields not kept: header count or field size limit
    kDefectEncodedMessage = 1u << 9,        // message/rfc822 with base64/qp: not parsed inside
};

// One MIME part. Offsets are into the parsed message: the header is [header_start, header_end)
// including the blank line that ends it, the body is [body_start, body_end); header_end ==
// body_start. The line terminator before a boundary delimiter belongs to the delimiter (RFC
// 2046 §5.1.1), so it is in no part's body.
struct Part {
    std::size_t header_start = 0;
    std::size_t header_end = 0;
    std::size_t body_start = 0;
    std::size_t body_end = 0;
    std::vector<Header> headers;

    // Content-Type as written (case kept); "text"/"plain" when absent or invalid, and
    // "message"/"rfc822" when absent inside multipart/digest (RFC 2046 §5.1.5).
    std::string type = "text";
    std::string subtype = "plain";
    std::vector<Param> params;  // explicit parameters only (see charset())
    std::string encoding;       // Content-Transfer-Encoding token as written; empty when absent
    std::optional<std::string> id, description, md5, location;  // unfolded, trimmed
    std::optional<std::string> disposition;  // Content-Disposition type as written
    std::vector<Param> disposition_params;
    std::vector<std::string> languages;  // Content-Language tags

    // Number of LF octets in the body (as Dovecot counts for BODYSTRUCTURE).
    std::size_t lines = 0;
    std::size_t depth = 0;  // 0 for the message itself
    std::uint32_t defects = 0;

    // Multipart: the body parts in order. message/rfc822 and message/global: exactly one child,
    // the encapsulated message (its header is that message's header). Otherwise empty.
    std::vector<Part> children;

    std::size_t size() const { return body_end - body_start; }
    bool is_multipart() const;  // type multipart (the parser demotes one without boundary)
    bool is_message() const;    // message/rfc822 or message/global with its message parsed
    bool is_text() const;       // type text
    bool type_is(std::string_view type, std::string_view subtype) const;  // case-insensitive
    const Param* param(std::string_view name) const;                      // Content-Type parameter
    const Param* disposition_param(std::string_view name) const;
    std::string charset() const;  // charset parameter, or "us-ascii" for text/* (RFC 2045)
    Encoding transfer_encoding() const;
    const Header* header(std::string_view name) const;  // first field of that name
};

// A parsed message. `raw` is the caller's buffer, which must outlive the Message.
struct Message {
    std::string_view raw;
    Part root;
    std::size_t part_count = 1;
};

// Parses a whole message in one forward pass, linear in its size.
Message parse(std::string_view raw, const Limits& limits = {});

// Encoding named by a Content-Transfer-Encoding token (case-insensitive; empty means 7bit).
Encoding parse_encoding(std::string_view token);

// Content-Type/Content-Disposition value syntax (RFC 2045 §5.1, RFC 2183, RFC 2231), exposed
// for tests: `value` is unfolded. Returns false when there is no valid `type/subtype` (for
// Content-Disposition pass `want_subtype = false`: only the type token is read).
bool parse_content_value(std::string_view value, bool want_subtype, std::string& type,
                         std::string& subtype, std::vector<Param>& params);

}  // namespace millipost::mime
