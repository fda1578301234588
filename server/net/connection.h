// net/connection.h: one client connection: its socket, input buffer, timeouts and the
// read/write primitives a session uses, over plain TCP or, after start_tls(), over TLS with the
// same semantics.
#pragma once
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace millipost::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
template <class T>
using awaitable = asio::awaitable<T>;

class Server;

class Connection {
  public:
    enum class Closed { No, Eof, Timeout, Error, Shutdown };
    // Whether the server had room for this connection when it was accepted (decided once, by
    // the server, when the connection registers). A refused connection gets one
    // protocol-appropriate refusal from its session and is closed: never a silent hang.
    enum class Admission { Ok, TooManyInTotal, TooManyFromAddress };

    Connection(Server& server, tcp::socket socket);
    ~Connection();

    // Reads more bytes into the input buffer. False when the peer is gone, the idle timeout
    // passed or the server is shutting down; closed() says which.
    awaitable<bool> fill(std::chrono::steady_clock::duration timeout);
    // As fill(), but also returns (with Filled::Woken, the connection still open) when `wake`
    // (if given) expires or is cancelled: IMAP IDLE waits for the client and for mailbox
    // changes at once.
    enum class Filled { Data, Woken, Closed };
    awaitable<Filled> fill_or_wake(std::chrono::steady_clock::duration timeout,
                                   asio::steady_timer* wake);
    // Sends the replies gathered in `out` (PIPELINING: once per batch of input), clears it,
    // then reads more. False as fill(), or when the send failed.
    awaitable<bool> flush_and_fill(std::string& out, std::chrono::steady_clock::duration timeout);
    // Writes all of `data`; false when the peer is gone or does not read within the timeout.
    awaitable<bool> send(std::string_view data);

    // Unconsumed input and its consumption.
    std::string_view input() const { return std::string_view(in_).substr(in_pos_); }
    void consume(std::size_t n);

    // Switches to TLS as the server: STARTTLS after its positive reply, or at once on an
    // implicit-TLS listener (RFC 8314). Input not yet consumed is discarded first: bytes a client
    // pipelined after STARTTLS were sent in the clear and must not be executed as if they came
    // through TLS (the STARTTLS command-injection class, CVE-2011-0411 and kin). False when the
    // handshake failed or did not finish within `timeout`; it is logged, closed() says
    // Error or Timeout, and the session must end.
    awaitable<bool> start_tls(std::shared_ptr<asio::ssl::context> ctx,
                              std::chrono::steady_clock::duration timeout);
    // True once a TLS handshake completed (STARTTLS or implicit TLS).
    bool tls_active() const { return tls_ != nullptr; }
    // RFC 9266 tls-exporter channel binding: the TLS exporter with label
    // "EXPORTER-Channel-Binding", empty context, 32 bytes; nullopt without TLS 1.3
    // (RFC 9266 defines tls-exporter for TLS 1.3; for TLS 1.2 also nullopt).
    std::optional<std::string> tls_exporter() const;
    // "TLSv1.3" and the cipher, for logs and Received: headers; empty without TLS.
    std::string tls_description() const;
    // Sends TLS close_notify (best effort, bounded by a short timeout) before the socket closes.
    awaitable<void> close_tls();

    Closed closed() const { return closed_; }
    bool shutting_down() const;
    tcp::socket& socket() { return socket_; }
    const std::string& peer() const { return peer_; }
    // The peer's IP address without the port (an IPv4-mapped address as IPv4).
    const std::string& peer_address() const { return peer_address_; }
    // What the per-address connection limit and the failed-login throttle count the peer as:
    // its IPv4 address, or its IPv6 /64 (net/address.h).
    const std::string& client_key() const { return client_key_; }
    bool peer_is_loopback() const { return loopback_; }
    Server& server() { return server_; }
    Admission admission() const { return admission_; }
    std::uint64_t id() const { return id_; }
    // Interrupts a pending read (used by shutdown; runs on the connection's strand).
    void interrupt();
    // A deadline for reads on top of their idle timeouts: a read that would wait past it ends
    // the connection as a timeout, and deadline_passed() is then true. Sessions set it to
    // accepted() + [server] prelogin_max_time until their client logs in, then clear it.
    void set_deadline(std::chrono::steady_clock::time_point t) { deadline_ = t; }
    void clear_deadline() { deadline_.reset(); }
    bool deadline_passed() const { return deadline_passed_; }
    std::chrono::steady_clock::time_point accepted() const { return accepted_; }
    // While protected (an SMTP DATA transfer in flight), shutdown neither interrupts reads nor
    // refuses new ones, so the transaction can finish within the shutdown grace period.
    void set_protected(bool on) { protected_ = on; }

  private:
    friend class Server;  // decides admission_ when the connection registers
    using TlsStream = asio::ssl::stream<tcp::socket&>;
    // The parallel group behind fill_or_wake over either stream.
    template <class Stream>
    awaitable<Filled> read_into(Stream& stream, std::chrono::steady_clock::duration timeout,
                                asio::steady_timer* wake);

    Server& server_;
    tcp::socket socket_;
    // The context outlives the stream that refers to it, whatever SIGHUP reloads meanwhile.
    std::shared_ptr<asio::ssl::context> tls_ctx_;
    std::unique_ptr<TlsStream> tls_;
    std::string in_;
    std::size_t in_pos_ = 0;
    Closed closed_ = Closed::No;
    bool protected_ = false;
    std::string peer_;
    std::string peer_address_;
    std::string client_key_;
    bool loopback_ = false;
    std::chrono::steady_clock::time_point accepted_ = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::time_point> deadline_;
    bool deadline_passed_ = false;
    Admission admission_ = Admission::Ok;
    std::uint64_t id_;
};

}  // namespace millipost::net
