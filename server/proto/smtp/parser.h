// proto/smtp/parser.h: SMTP (RFC 5321) command parsing and the DATA reader. Pure: no I/O.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::smtp {

enum class Verb {
    Helo,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    Rset,
    Noop,
    Vrfy,
    Expn,
    Help,
    Quit,
    Auth,      // RFC 4954
    Starttls,  // RFC 3207
    Unknown
};

// One ESMTP parameter of MAIL or RCPT: `KEY=VALUE` or `KEY`.
struct Param {
    std::string key;  // upper-cased
    std::string value;
};

// A parsed command line. For MAIL/RCPT, `path` is the address inside <> (empty for the null
// reverse-path `<>`) and `params` the ESMTP parameters; for others `arg` is the rest of the line.
struct Command {
    Verb verb = Verb::Unknown;
    std::string arg;
    std::string path;
    std::vector<Param> params;
};

struct ParseError {
    int code;            // 500 or 501
    std::string status;  // enhanced status code, e.g. "5.5.2"
    std::string text;
};

// Parses one command line (without CRLF). Returns the command or why it is malformed.
// `utf8` allows non-ASCII in addresses (RFC 6531); the caller passes true once it has seen
// SMTPUTF8 on MAIL, and parse_command also accepts it when the line itself carries SMTPUTF8.
struct ParseResult {
    std::optional<Command> command;
    ParseError error{0, "", ""};
};
ParseResult parse_command(std::string_view line);

// Validates a mailbox `local@domain` (RFC 5321 §4.1.2, with RFC 6531 UTF-8 when allowed).
bool valid_mailbox(std::string_view addr, bool allow_utf8);

// Splits `local@domain` at the last '@'; the local part keeps its quoting.
std::pair<std::string_view, std::string_view> split_address(std::string_view addr);

// The message body reader for DATA: undoes dot-stuffing and finds the end mark CRLF.CRLF.
// Only CRLF.CRLF ends the data: a bare LF never starts a line here, which closes the SMTP
// smuggling class of bugs. Bare CR/LF and NUL are recorded so that the session can refuse the
// message; bytes past `max_size` are counted but not kept.
class DataReader {
  public:
    enum class Status { NeedMore, Done };

    explicit DataReader(std::size_t max_size) : max_size_(max_size) {}

    // Appends message bytes to `out` (the caller's buffer, which may already hold a header).
    Status feed(std::string_view in, std::size_t& consumed, std::string& out);

    std::size_t size() const { return size_; }  // unstuffed message size so far
    bool too_big() const { return size_ > max_size_; }
    bool bare_newline() const { return bare_newline_; }
    bool nul() const { return nul_; }

  private:
    void put(char c, std::string& out);

    enum class State { Text, CR, Dot, DotCR };
    std::size_t max_size_;
    std::size_t size_ = 0;
    State state_ = State::Text;
    bool line_start_ = true;
    bool bare_newline_ = false;
    bool nul_ = false;
};

}  // namespace millipost::smtp
