// support/wire_client.h: a small blocking TCP client for the property tests: CRLF lines, SMTP
// replies and POP3 responses read with a deadline. Written from RFC 5321 and RFC 1939 alone; it
// shares no parser or writer with the server (design.md, "Independence of the oracle").
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::props {

// The peer broke the wire format, closed early or did not answer in time.
class WireError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// One SMTP reply (RFC 5321 §4.2): the code and the text of each line, without "250-"/"250 ".
struct SmtpReply {
    int code = 0;
    std::vector<std::string> lines;

    // All lines joined by " | ", for failure messages.
    std::string text() const;
};

// The status line of a POP3 response (RFC 1939 §3): +OK or -ERR and the text after it.
struct Pop3Status {
    bool ok = false;
    std::string text;
};

// An observer of one connection's bytes in wire order (transcripts, contract checks). A tap sees
// every byte the client wrote and every byte it read, as the chunks passed, and the end of the
// connection. It must not throw: failures it finds are kept and asked for afterwards.
class WireTap {
  public:
    virtual ~WireTap() = default;
    virtual void sent(std::string_view bytes) = 0;
    virtual void received(std::string_view bytes) = 0;
    // The connection ended: the client closed it, or the peer did (EOF seen).
    virtual void closed() = 0;
};

class WireClient {
  public:
    static constexpr std::chrono::milliseconds kTimeout{10000};

    // Connects to 127.0.0.1:port; throws WireError when that fails.
    // With `tap`, every byte sent and received on this connection is shown to it.
    explicit WireClient(std::uint16_t port, std::chrono::milliseconds timeout = kTimeout,
                        std::shared_ptr<WireTap> tap = {});
    WireClient(std::uint16_t port, std::shared_ptr<WireTap> tap)
        : WireClient(port, kTimeout, std::move(tap)) {}
    ~WireClient();
    WireClient(WireClient&& other) noexcept;
    WireClient& operator=(WireClient&& other) noexcept;
    WireClient(const WireClient&) = delete;
    WireClient& operator=(const WireClient&) = delete;

    // Writes every byte (one write call as far as the kernel allows).
    void send(std::string_view bytes);
    // Sends `line` followed by CRLF.
    void send_line(std::string_view line) { send(std::string(line) + "\r\n"); }

    // One line without its CRLF. A bare LF, EOF or the deadline is a WireError.
    std::string read_line();
    // Waits for the peer to close the connection. False when it sent bytes instead or the
    // deadline passed.
    bool wait_closed();
    // Closes the socket without saying goodbye.
    void close();
    bool is_open() const { return fd_ >= 0; }

    // SMTP: a complete (possibly multi-line) reply; every line must carry the same code.
    SmtpReply read_smtp_reply();
    // POP3: the status line of a response.
    Pop3Status read_pop3_status();
    // POP3: the body of a multi-line response up to the "." line, dot-stuffing undone, every
    // line ended by CRLF.
    std::string read_pop3_multiline();

    WireTap* tap() const { return tap_.get(); }

  private:
    void fill();
    void tap_closed();

    int fd_ = -1;
    std::shared_ptr<WireTap> tap_;
    std::chrono::milliseconds timeout_;
    std::string buf_;
};

// The DATA block for `message` (RFC 5321 §4.5.2): lines starting with '.' get one more, the
// message gets a final CRLF when it lacks one, and ".\r\n" ends it.
std::string smtp_data_block(std::string_view message);

// The message as the sender wrote it: `stored` without the leading "Received:" field and its
// continuation lines. Throws WireError when `stored` does not start with one.
std::string strip_received(std::string_view stored);

// RFC 1939 TOP: the header, the empty line and the first `lines` lines of the body.
std::string top_of(std::string_view message, std::size_t lines);

// Splits "a b c" at single spaces.
std::vector<std::string> split_words(std::string_view s);

}  // namespace millipost::props
