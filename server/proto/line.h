// proto/line.h: incremental CRLF line splitter shared by the line-based protocols (SMTP, POP3).
// Pure: fed byte spans, answers a line / need more / an error, plus bytes consumed. No I/O.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace millipost::proto {

class LineParser {
  public:
    enum class Status {
        NeedMore,  // every byte consumed; no complete line yet
        Line,      // line() holds one line without its CRLF
        TooLong,   // the line passed max_line; its rest is skipped up to the next LF
        BareLF,    // a line ended by LF without CR (RFC 5321 §2.3.8 forbids it)
        Nul,       // the line contained a NUL byte
    };

    explicit LineParser(std::size_t max_line) : max_line_(max_line) {}

    // Consumes bytes from `in` and stops after the first event. `consumed` says how many.
    // After TooLong the parser skips to the next LF by itself (the event is reported once,
    // as soon as the limit is crossed, so a client that never sends LF still gets its answer).
    Status feed(std::string_view in, std::size_t& consumed);

    const std::string& line() const { return line_; }
    std::size_t max_line() const { return max_line_; }
    void set_max_line(std::size_t n) { max_line_ = n; }
    // Bytes held for an unfinished line.
    std::size_t pending() const { return line_.size(); }

  private:
    std::size_t max_line_;
    std::string line_;
    bool skipping_ = false;  // discarding the rest of an overlong line
    bool nul_ = false;
    bool done_ = false;  // line_ holds a finished line to clear on the next feed
};

}  // namespace millipost::proto
