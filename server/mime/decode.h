// mime/decode.h: content decoders: base64, quoted-printable, RFC 2047 encoded-words, charset
// conversion to UTF-8 (glibc iconv) and the decoded content of a part for IMAP BINARY.
#pragma once
#include "mime/message.h"

#include <optional>
#include <string>
#include <string_view>

namespace millipost::mime {

// Base64 (RFC 2045 §6.8), lenient: characters outside the alphabet are skipped, `=` ends the
// current quantum (its complete octets are kept, a lone sextet is dropped) and decoding goes on
// after it, so concatenated base64 blocks decode as a whole; missing padding is tolerated.
std::string decode_base64(std::string_view in);

// Quoted-printable (RFC 2045 §6.7), lenient: `=XX` (either case) is an octet, `=` before a line
// end is a soft break (also with trailing whitespace in between), an invalid `=` sequence is
// kept as written, and trailing whitespace of every line is deleted as the RFC asks. Line ends
// are kept as they are (CRLF or LF).
std::string decode_quoted_printable(std::string_view in);

// RFC 2047 `Q` encoding of encoded-words: `_` is a space, otherwise as quoted-printable.
std::string decode_q(std::string_view in);

// Converts `bytes` in `charset` to UTF-8. Invalid or incomplete sequences become U+FFFD. Returns
// nullopt when the charset is unknown to iconv. us-ascii and utf-8 take the UTF-8 path (8-bit
// octets in mail labelled us-ascii are in practice UTF-8); common labels are mapped to their
// supersets (gb2312/gbk -> GB18030, shift_jis -> CP932, ks_c_5601-1987/euc-kr -> CP949,
// iso-2022-jp -> ISO-2022-JP-2).
std::optional<std::string> charset_to_utf8(std::string_view bytes, std::string_view charset);

// Replaces invalid UTF-8 sequences with U+FFFD.
std::string sanitize_utf8(std::string_view in);
bool is_valid_utf8(std::string_view in);

// A header value decoded for display or search: unfolded, RFC 2047 encoded-words (B and Q, with
// an RFC 2231 `*language` suffix allowed on the charset) decoded to UTF-8. Whitespace between
// adjacent encoded-words is dropped and their octets are joined before conversion, so a
// character split across words survives. An encoded-word in an unknown charset, or malformed,
// is left as written; raw UTF-8 (RFC 6532) passes through. The result is valid UTF-8.
std::string decode_header_value(std::string_view raw);

// The part's body with its Content-Transfer-Encoding undone (IMAP BINARY, RFC 9051 §6.4.5).
// `unknown_encoding` is set (and `data` empty) for an encoding other than 7bit, 8bit, binary,
// base64 or quoted-printable: the server answers `NO [UNKNOWN-CTE]`.
struct Decoded {
    std::string data;
    bool unknown_encoding = false;
};
Decoded decode_body(const Part& part, std::string_view raw_message);

// Base64 (RFC 2045 §6.8) in lines of 76 characters separated by CRLF, no CRLF after the last.
std::string encode_base64_lines(std::string_view in);

// APPEND of a literal8 (RFC 3516 §4.4) may store binary content, which BODY[section] could then
// only return with NUL octets in a plain literal, which RFC 9051 §4.3 forbids. So, as Dovecot
// does, the leaf parts whose content is binary (Content-Transfer-Encoding "binary", or any NUL
// octet in an identity-encoded body) are rewritten as base64: the Content-Transfer-Encoding
// field replaced (or added), the body encoded. BINARY[section] still returns the original
// octets. Returns nullopt when no part needs it (the message is stored as sent).
std::optional<std::string> convert_binary_parts(std::string_view raw);

}  // namespace millipost::mime
