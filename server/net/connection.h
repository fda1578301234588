// net/connection.h: one client connection: its socket, input buffer, timeouts and the
// read/write primitives a session uses. Plain TCP now; TLS will wrap the same interface.
#pragma once
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <chrono>
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

    Closed closed() const { return closed_; }
    bool shutting_down() const;
    tcp::socket& socket() { return socket_; }
    const std::string& peer() const { return peer_; }
    // The peer's IP address without the port (failed-login throttling counts per address).
    const std::string& peer_address() const { return peer_address_; }
    bool peer_is_loopback() const { return loopback_; }
    // placeholder until the TLS layer lands
    bool tls_active() const { return false; }
    // placeholder until the TLS layer lands
    std::optional<std::string> tls_exporter() const { return std::nullopt; }
    Server& server() { return server_; }
    std::uint64_t id() const { return id_; }
    // Interrupts a pending read (used by shutdown; runs on the connection's strand).
    void interrupt();
    // While protected (an SMTP DATA transfer in flight), shutdown neither interrupts reads nor
    // refuses new ones, so the transaction can finish within the shutdown grace period.
    void set_protected(bool on) { protected_ = on; }

  private:
    Server& server_;
    tcp::socket socket_;
    std::string in_;
    std::size_t in_pos_ = 0;
    Closed closed_ = Closed::No;
    bool protected_ = false;
    std::string peer_;
    std::string peer_address_;
    bool loopback_ = false;
    std::uint64_t id_;
};

}  // namespace millipost::net
