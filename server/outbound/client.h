// outbound/client.h: the SMTP client of outbound delivery (RFC 5321 §3, §4.5.3.2 timeouts):
// one connection, EHLO (HELO when EHLO is refused), opportunistic or required STARTTLS
// (RFC 3207), AUTH PLAIN to a smarthost (RFC 4954), one transaction with per-recipient results,
// QUIT. Every read and write is bounded in time and every reply in size; whatever the server
// sends, the worst outcome is a temporary failure.
#pragma once
#include "config/config.h"
#include "outbound/reply.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace millipost::outbound {

namespace asio = boost::asio;
template <class T>
using awaitable = asio::awaitable<T>;

// One host to try: a name or an address literal, and the port.
struct Endpoint {
    std::string host;
    unsigned short port = 25;
    // Looked up already (through [outbound] nameserver): these address literals, not
    // getaddrinfo. Empty with `lookup_error` set: the lookup found none.
    bool resolved = false;
    std::vector<std::string> addresses;
    std::string lookup_error;
};
// "host:port", "[host]:port", "host" (port 25); nullopt when malformed.
std::optional<Endpoint> parse_endpoint(std::string_view s);

// What an attempt did for one recipient.
struct RcptResult {
    enum class Kind { Sent, Deferred, Bounced };
    std::string address;
    Kind kind = Kind::Deferred;
    std::string status;  // RFC 3463 code: "2.0.0", "5.1.1", ...
    std::string reply;   // the remote's reply ("550 5.1.1 no such user"), or ours when none
    std::string detail;  // for logs and the DSN's human part: who said what, in reply to what
};

struct ClientOptions {
    std::string helo;  // our name in EHLO
    config::TlsPolicy tls = config::TlsPolicy::May;
    std::string auth_user, auth_password;              // AUTH PLAIN after STARTTLS (smarthost)
    std::shared_ptr<asio::ssl::context> tls_noverify;  // opportunistic/encrypt
    std::shared_ptr<asio::ssl::context> tls_verify;    // verify: CA file or system store
    const config::OutboundConfig* cfg = nullptr;       // the timeouts
};

// TLS client contexts for the two kinds of policy.
std::shared_ptr<asio::ssl::context> make_client_context(bool verify, const std::string& ca_file);

class SmtpClient {
  public:
    SmtpClient(asio::any_io_executor ex, ClientOptions opts);
    ~SmtpClient();

    // Connects to `e` (each of its addresses in turn), reads the greeting, says EHLO, does
    // STARTTLS and AUTH as the policy asks. nullopt when ready for a transaction, else why not
    // (a temporary failure: the caller tries the next host or defers).
    awaitable<std::optional<std::string>> open(const Endpoint& e);
    // One transaction for `recipients` (MAIL, RCPT each, DATA); results in the order given.
    awaitable<std::vector<RcptResult>> send(const std::string& sender,
                                            std::span<const std::string> recipients,
                                            const std::string& message);
    // QUIT (best effort) and close.
    awaitable<void> quit();
    // Closes at once; a pending operation ends with an error (shutdown).
    void cancel();

    // "mx.example[192.0.2.1]:25", as Postfix logs the relay.
    const std::string& relay() const { return relay_; }
    bool tls_active() const { return tls_ != nullptr; }
    bool usable() const { return usable_; }

  private:
    awaitable<bool> write(std::string_view data, std::chrono::seconds timeout);
    // Reads one reply; nullopt on timeout, disconnect or a bad reply (error_ says which).
    awaitable<std::optional<Reply>> read_reply(std::chrono::seconds timeout);
    awaitable<std::optional<Reply>> command(const std::string& line, std::chrono::seconds timeout);
    awaitable<std::optional<std::string>> hello();
    awaitable<std::optional<std::string>> starttls(const std::string& host);
    awaitable<std::optional<std::string>> auth();
    void close();

    asio::any_io_executor ex_;
    ClientOptions opts_;
    asio::ip::tcp::socket socket_;
    std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
    std::string in_;
    ReplyParser parser_;
    Extensions ext_;
    std::string relay_;
    std::string host_;
    std::string error_;  // the last I/O or reply error
    bool usable_ = false;
    bool cancelled_ = false;
};

}  // namespace millipost::outbound
