// proto/pop3/parser.h: POP3 (RFC 1939, RFC 2449) command parsing and multi-line writers. Pure.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::pop3 {

enum class Verb {
    User,
    Pass,
    Apop,
    Auth,
    Stat,
    List,
    Uidl,
    Retr,
    Top,
    Dele,
    Rset,
    Noop,
    Quit,
    Capa,
    Stls,
    Unknown
};

struct Command {
    Verb verb = Verb::Unknown;
    std::string word;               // the verb as sent, upper-cased
    std::vector<std::string> args;  // space-separated arguments (PASS keeps the rest whole)
};

Command parse_command(std::string_view line);

// Parses a message number argument: decimal, 1..2^31-1, no sign, no leading junk.
std::optional<unsigned> parse_number(std::string_view s);

// Appends `body` to `out` as a POP3 multi-line block: lines starting with '.' are dot-stuffed,
// every line ends in CRLF, and the block ends with ".\r\n" (RFC 1939 §3).
// `max_body_lines` >= 0 keeps the header, the blank line and that many body lines (TOP).
void append_multiline(std::string& out, std::string_view body, long max_body_lines = -1);

}  // namespace millipost::pop3
