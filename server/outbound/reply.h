// outbound/reply.h: the SMTP client's reading of server replies (RFC 5321 §4.2), bounded, and the
// retry schedule. Pure code, no I/O: unit-tested in reply_test.cpp.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::outbound {

struct Reply {
    int code = 0;                    // 200..599
    std::vector<std::string> lines;  // the text after "NNN-" / "NNN ", in order
    // 2xx. A 3xx where none is expected (anything but DATA's 354) is a protocol error: the
    // caller counts it as a temporary failure, not as acceptance.
    bool completed() const { return code >= 200 && code < 300; }
    bool temporary() const { return code >= 400 && code < 500; }
    bool permanent() const { return code >= 500; }
    // "250 2.0.0 Ok: queued as X" (first line, for logs and DSNs).
    std::string summary() const;
};

// Collects one reply from the bytes a server sends. Every line must be "NNN" optionally followed
// by '-' (more lines follow) or ' ' and text, with the same code throughout and CRLF at the end
// (a bare LF is accepted: some servers send one). A line over `max_line`, more than `max_lines`
// lines, a non-digit code, a code outside 200..599, or codes that differ make the reply Bad:
// the caller treats that as a temporary failure and drops the connection.
class ReplyParser {
  public:
    enum class Status { NeedMore, Done, Bad };
    ReplyParser(std::size_t max_line, std::size_t max_lines)
        : max_line_(max_line), max_lines_(max_lines) {}
    // Consumes from `in` (sets `used`) up to the end of a reply; Done leaves it in reply().
    Status feed(std::string_view in, std::size_t& used);
    const Reply& reply() const { return reply_; }
    const std::string& error() const { return error_; }  // why Bad
    void reset();

  private:
    Status line(std::string_view l);
    std::size_t max_line_, max_lines_;
    std::string partial_;
    Reply reply_;
    std::string error_;
    bool done_ = false;
};

// The EHLO keywords the client uses (RFC 5321 §4.1.1.1: the lines after the first).
struct Extensions {
    bool starttls = false;
    bool size = false;
    std::uint64_t max_size = 0;  // SIZE's value; 0 = no fixed limit announced
    bool eightbitmime = false;
    bool auth_plain = false;
};
Extensions parse_ehlo(const Reply& r);

// The delay before attempt `attempts + 1` after `attempts` failed ones (attempts >= 1):
// `min` doubling per attempt, capped at `max`.
std::chrono::seconds retry_delay(int attempts, std::chrono::seconds min, std::chrono::seconds max);

// The message with every line that begins with '.' given one more (RFC 5321 §4.5.2), ending in
// CRLF, followed by the terminating ".\r\n".
std::string dot_stuff(std::string_view message);

}  // namespace millipost::outbound
