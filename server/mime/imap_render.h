// mime/imap_render.h: ENVELOPE, BODY and BODYSTRUCTURE in RFC 9051 syntax (§7.5.2, §9 ABNF).
//
// Choices, following Dovecot (the peer we are compared with) where RFC 9051 leaves room:
// - Values keep the case they were written in: `("text" "plain" ("charset" "utf-8") ...)`;
//   RFC 9051's ABNF strings are case-insensitive and its upper-case examples are UW imapd's
//   habit. Defaults are lower-case: "text" "plain", ("charset" "us-ascii") added to a text part
//   without charset, "7bit" for a part without Content-Transfer-Encoding.
// - Parameter names are lower-cased (they are case-insensitive and RFC 2231 joining needs one
//   spelling). An RFC 2231 extended parameter is returned as `"name*" "charset'lang'%XX..."`,
//   joined but not decoded: 7-bit, lossless, and what Dovecot returns.
// - Every string is quoted unless it holds CR, LF, NUL or 8-bit octets (UTF-8 is allowed in a
//   quoted string only with `RenderOptions::utf8`, i.e. IMAP4rev2 or UTF8=ACCEPT) or is longer
//   than `max_quoted`: then it is a literal `{n}\r\n...`. NUL, which no IMAP string may hold,
//   becomes 0x80 (Dovecot does the same).
// - A multipart without parts (no delimiter found, or the depth limit) gets one empty
//   `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)` part, since `body-type-mpart`
//   needs one. A message/rfc822 whose inner message was not parsed (encoded, or a limit) is
//   written as "application" "octet-stream": "message" "rfc822" would promise an envelope.
// - Content-Language is always a parenthesized list; envelope strings are unfolded.
#pragma once
#include "mime/envelope.h"
#include "mime/message.h"

#include <optional>
#include <string>
#include <string_view>

namespace millipost::mime {

// Strings longer than this are sent as literals (quoted strings are for short values).
inline constexpr std::size_t kMaxQuotedString = 1024;

struct RenderOptions {
    bool utf8 = false;  // UTF-8 may stand in quoted strings (IMAP4rev2 / UTF8=ACCEPT)
    std::size_t max_quoted = kMaxQuotedString;
};

void append_string(std::string& out, std::string_view s, const RenderOptions& options = {});
void append_nstring(std::string& out, const std::optional<std::string>& s,
                    const RenderOptions& options = {});

std::string render_envelope(const Envelope& envelope, const RenderOptions& options = {});

// BODY (`extended` false) or BODYSTRUCTURE (`extended` true) of a part, normally Message::root.
std::string render_body(const Part& part, bool extended, const RenderOptions& options = {});

}  // namespace millipost::mime
