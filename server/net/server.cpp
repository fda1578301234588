// net/server.cpp: listeners, connections, threads and graceful shutdown (see server.h).
#include "net/server.h"

#include "net/address.h"
#include "util/limits.h"

#include <spdlog/spdlog.h>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>

namespace millipost::net {

using namespace asio::experimental::awaitable_operators;

Connection::Connection(Server& server, tcp::socket socket)
    : server_(server), socket_(std::move(socket)), id_(server.next_id_++) {
    boost::system::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (!ec) {
        auto a = ep.address();
        // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; they are IPv4 clients.
        if (a.is_v6() && a.to_v6().is_v4_mapped())
            a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
        peer_address_ = a.to_string();
        peer_ = (a.is_v6() ? "[" + peer_address_ + "]" : peer_address_) + ":" +
                std::to_string(ep.port());
        loopback_ = a.is_loopback();
        client_key_ = net::client_key(a);
    }
    socket_.set_option(tcp::no_delay(true), ec);
}

Connection::~Connection() {
    server_.unregistered(this);
}

bool Connection::shutting_down() const {
    return server_.stopping();
}

void Connection::interrupt() {
    if (protected_) return;
    boost::system::error_code ec;
    socket_.cancel(ec);
}

void Connection::consume(std::size_t n) {
    in_pos_ += n;
    if (in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
    }
}

awaitable<bool> Connection::fill(std::chrono::steady_clock::duration timeout) {
    bool more = co_await fill_or_wake(timeout, nullptr) == Filled::Data;
    co_return more;
}

awaitable<Connection::Filled> Connection::fill_or_wake(std::chrono::steady_clock::duration timeout,
                                                       asio::steady_timer* wake) {
    if (server_.stopping() && !protected_) {
        closed_ = Closed::Shutdown;
        co_return Filled::Closed;
    }
    if (in_pos_ > 0 && in_pos_ * 2 > in_.size()) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
    }
    bool cut = false;  // the deadline, not the idle timeout, bounds this read
    if (deadline_) {
        auto left = *deadline_ - std::chrono::steady_clock::now();
        if (left <= std::chrono::steady_clock::duration::zero()) {
            deadline_passed_ = true;
            closed_ = Closed::Timeout;
            co_return Filled::Closed;
        }
        if (left < timeout) {
            timeout = left;
            cut = true;
        }
    }
    Filled r = tls_ ? co_await read_into(*tls_, timeout, wake)
                    : co_await read_into(socket_, timeout, wake);
    if (cut && r == Filled::Closed && closed_ == Closed::Timeout) deadline_passed_ = true;
    co_return r;
}

template <class Stream>
awaitable<Connection::Filled> Connection::read_into(Stream& stream,
                                                    std::chrono::steady_clock::duration timeout,
                                                    asio::steady_timer* wake) {
    // 16 KiB: one TLS record's plaintext at most, so a record is delivered in one read.
    constexpr std::size_t kChunk = 16384;
    std::size_t old = in_.size();
    in_.resize(old + kChunk);
    asio::steady_timer timer(socket_.get_executor());
    timer.expires_after(timeout);
    // A parallel group rather than `||`: when the timer or the wake-up finishes first, a read
    // that had already completed still hands back its bytes (with `||` they were dropped: a
    // command arriving together with a NOTIFY event was lost and its client waited forever).
    // Over TLS a cancelled read loses nothing either: ciphertext already received stays in the
    // stream's engine and is decrypted by the next read.
    boost::system::error_code ec;
    std::size_t n = 0;
    std::size_t first = 0;  // 0 read, 1 timeout, 2 wake-up
    if (wake) {
        auto r = co_await asio::experimental::make_parallel_group(
                     stream.async_read_some(asio::buffer(in_.data() + old, kChunk), asio::deferred),
                     timer.async_wait(asio::deferred), wake->async_wait(asio::deferred))
                     .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
        first = std::get<0>(r)[0];
        ec = std::get<1>(r);
        n = std::get<2>(r);
    } else {
        auto r = co_await asio::experimental::make_parallel_group(
                     stream.async_read_some(asio::buffer(in_.data() + old, kChunk), asio::deferred),
                     timer.async_wait(asio::deferred))
                     .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
        first = std::get<0>(r)[0];
        ec = std::get<1>(r);
        n = std::get<2>(r);
    }
    if (n == 0 && first != 0) {
        in_.resize(old);
        if (first == 2 && !server_.stopping()) co_return Filled::Woken;
        closed_ = first == 1 ? Closed::Timeout : Closed::Shutdown;
        co_return Filled::Closed;
    }
    if (n > 0 && first != 0) ec = {};  // the read completed; the other's win is moot
    in_.resize(old + n);
    if (ec) {
        closed_ = server_.stopping() ? Closed::Shutdown
                  : ec == asio::error::eof || ec == asio::ssl::error::stream_truncated
                      ? Closed::Eof
                      : Closed::Error;
        co_return n > 0 ? Filled::Data : Filled::Closed;
    }
    co_return Filled::Data;
}

awaitable<bool> Connection::flush_and_fill(std::string& out,
                                           std::chrono::steady_clock::duration timeout) {
    if (!out.empty()) {
        if (!co_await send(out)) co_return false;
        out.clear();
    }
    bool more = co_await fill(timeout);  // (g++ 12 miscompiles `co_return co_await ...`)
    co_return more;
}

awaitable<bool> Connection::send(std::string_view data) {
    asio::steady_timer timer(socket_.get_executor());
    timer.expires_after(std::chrono::seconds(60));  // a peer that stops reading is dropped
    // The same awaitable type over either stream.
    auto write =
        tls_ ? asio::async_write(*tls_, asio::buffer(data), asio::as_tuple(asio::use_awaitable))
             : asio::async_write(socket_, asio::buffer(data), asio::as_tuple(asio::use_awaitable));
    auto result =
        co_await (std::move(write) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (result.index() == 1) {
        closed_ = Closed::Timeout;
        co_return false;
    }
    auto [ec, n] = std::get<0>(result);
    if (ec) {
        closed_ = Closed::Error;
        co_return false;
    }
    co_return true;
}

awaitable<bool> Connection::start_tls(std::shared_ptr<asio::ssl::context> ctx,
                                      std::chrono::steady_clock::duration timeout) {
    // The injection defence: nothing read before the handshake is ever parsed after it.
    in_.clear();
    in_pos_ = 0;
    if (!ctx || tls_) {
        closed_ = Closed::Error;
        co_return false;
    }
    auto stream = std::make_unique<TlsStream>(socket_, *ctx);
    asio::steady_timer timer(socket_.get_executor());
    timer.expires_after(timeout);
    auto r = co_await asio::experimental::make_parallel_group(
                 stream->async_handshake(asio::ssl::stream_base::server, asio::deferred),
                 timer.async_wait(asio::deferred))
                 .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    std::size_t first = std::get<0>(r)[0];
    boost::system::error_code ec = std::get<1>(r);
    if (first != 0 || ec) {
        closed_ = first != 0 ? Closed::Timeout : Closed::Error;
        if (first != 0)
            spdlog::info("connection {} {}: TLS handshake timed out", id_, peer_);
        else
            spdlog::info("connection {} {}: TLS handshake failed: {}", id_, peer_, ec.message());
        co_return false;
    }
    tls_ctx_ = std::move(ctx);
    tls_ = std::move(stream);
    spdlog::debug("connection {} {}: {}", id_, peer_, tls_description());
    co_return true;
}

std::optional<std::string> Connection::tls_exporter() const {
    if (!tls_) return std::nullopt;
    SSL* ssl = tls_->native_handle();
    if (SSL_version(ssl) != TLS1_3_VERSION) return std::nullopt;
    static constexpr char kLabel[] = "EXPORTER-Channel-Binding";
    std::string out(32, '\0');
    // An empty context (RFC 9266 §2); in TLS 1.3 an absent and an empty context are the same.
    if (SSL_export_keying_material(ssl, reinterpret_cast<unsigned char*>(out.data()), out.size(),
                                   kLabel, sizeof kLabel - 1, nullptr, 0, 0) != 1)
        return std::nullopt;
    return out;
}

std::string Connection::tls_description() const {
    if (!tls_) return {};
    SSL* ssl = tls_->native_handle();
    return std::string(SSL_get_version(ssl)) + " " + SSL_get_cipher_name(ssl);
}

awaitable<void> Connection::close_tls() {
    if (!tls_) co_return;
    asio::steady_timer timer(socket_.get_executor());
    timer.expires_after(limits::kTlsShutdownTimeout);
    // async_shutdown sends close_notify, then waits for the peer's: most clients just close, so
    // the wait is cut short by the timer (or by the peer's EOF).
    co_await asio::experimental::make_parallel_group(tls_->async_shutdown(asio::deferred),
                                                     timer.async_wait(asio::deferred))
        .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
}

Server::Server(unsigned io_threads, unsigned blocking_threads, std::size_t max_connections,
               std::size_t max_per_address)
    : pool_(std::max(1u, blocking_threads)),
      io_threads_(std::max(1u, io_threads)),
      max_connections_(max_connections),
      max_per_address_(max_per_address) {}

Server::~Server() {
    stop(std::chrono::seconds(0));
}

void Server::start(std::vector<Listener> listeners) {
    for (auto& l : listeners) {
        auto acceptor = std::make_unique<tcp::acceptor>(io_);
        tcp::endpoint ep(asio::ip::make_address(l.address), l.port);
        acceptor->open(ep.protocol());
        acceptor->set_option(tcp::acceptor::reuse_address(true));
        acceptor->bind(ep);
        acceptor->listen(asio::socket_base::max_listen_connections);
        ports_[l.name] = acceptor->local_endpoint().port();
        asio::co_spawn(io_, accept_loop(*acceptor, l.handler), asio::detached);
        acceptors_.push_back(std::move(acceptor));
    }
    for (unsigned i = 0; i < io_threads_; ++i)
        threads_.emplace_back([this] {
            try {
                io_.run();
            } catch (const std::exception& e) {
                spdlog::critical("io thread stopped by exception: {}", e.what());
            }
        });
}

unsigned short Server::port(const std::string& name) const {
    auto it = ports_.find(name);
    return it == ports_.end() ? 0 : it->second;
}

awaitable<void> Server::accept_loop(tcp::acceptor& acceptor, Handler handler) {
    while (!stopping_) {
        auto strand = asio::make_strand(io_);
        auto [ec, socket] =
            co_await acceptor.async_accept(strand, asio::as_tuple(asio::use_awaitable));
        if (ec) {
            if (stopping_ || ec == asio::error::operation_aborted) break;
            spdlog::warn("accept: {}", ec.message());
            // EMFILE and the like: back off briefly instead of spinning.
            asio::steady_timer t(io_, std::chrono::milliseconds(50));
            co_await t.async_wait(asio::use_awaitable);
            continue;
        }
        auto conn = std::make_shared<Connection>(*this, std::move(socket));
        registered(conn.get(), conn);
        asio::co_spawn(
            strand,
            [handler, conn]() -> awaitable<void> {
                try {
                    co_await handler(conn);
                } catch (const std::exception& e) {
                    spdlog::error("session {} {}: {}", conn->id(), conn->peer(), e.what());
                }
                try {
                    co_await conn->close_tls();
                } catch (const std::exception&) {  // best effort: the socket closes anyway
                }
                boost::system::error_code ignored;
                conn->socket().shutdown(tcp::socket::shutdown_both, ignored);
                conn->socket().close(ignored);
            },
            asio::detached);
    }
}

void Server::registered(Connection* c, std::weak_ptr<Connection> w) {
    std::lock_guard lock(mutex_);
    sessions_[c] = std::move(w);
    ++live_;
    // Refused connections count too while they are open (they hold a descriptor), so a flood
    // of refused ones cannot make room for more.
    std::size_t& from = per_address_[c->client_key()];
    ++from;
    if (live_ > max_connections_)
        c->admission_ = Connection::Admission::TooManyInTotal;
    else if (max_per_address_ != 0 && from > max_per_address_)
        c->admission_ = Connection::Admission::TooManyFromAddress;
}

std::size_t Server::connections_from(const std::string& address) const {
    std::lock_guard lock(mutex_);
    auto it = per_address_.find(client_key(address));
    return it == per_address_.end() ? 0 : it->second;
}

void Server::unregistered(Connection* c) {
    std::lock_guard lock(mutex_);
    sessions_.erase(c);
    if (auto it = per_address_.find(c->client_key()); it != per_address_.end())
        if (--it->second == 0) per_address_.erase(it);
    --live_;
    if (live_ == 0) drained_.notify_all();
}

void Server::stop(std::chrono::steady_clock::duration grace) {
    {
        std::lock_guard lock(mutex_);
        if (stopped_) return;
        stopped_ = true;
    }
    stopping_ = true;
    asio::post(io_, [this] {
        for (auto& a : acceptors_) {
            boost::system::error_code ec;
            a->close(ec);
        }
    });
    // Interrupt every session. The references are taken under the lock but dropped outside it:
    // dropping the last one runs ~Connection, which unregisters under the same lock.
    std::vector<std::shared_ptr<Connection>> live;
    {
        std::lock_guard lock(mutex_);
        for (auto& [ptr, weak] : sessions_)
            if (auto conn = weak.lock()) live.push_back(std::move(conn));
    }
    for (auto& conn : live)
        asio::post(conn->socket().get_executor(), [conn] { conn->interrupt(); });
    live.clear();
    {
        std::unique_lock lock(mutex_);
        if (!threads_.empty()) drained_.wait_for(lock, grace, [this] { return live_ == 0; });
        if (live_ > 0) spdlog::warn("shutdown: {} sessions still open after grace", live_.load());
    }
    io_.stop();
    for (auto& t : threads_)
        t.join();
    threads_.clear();
    pool_.join();
    acceptors_.clear();
}

}  // namespace millipost::net
