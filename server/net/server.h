// net/server.h: the network core: one io_context run by one thread per core, listeners that
// spawn one coroutine per connection on its own strand, a thread pool for blocking store calls,
// and graceful shutdown (stop accepting, interrupt idle reads, let in-flight work finish).
#pragma once
#include "net/connection.h"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace millipost::net {

namespace detail {
template <class R>
struct BlockingSig {
    using type = void(std::exception_ptr, R);
};
template <>
struct BlockingSig<void> {
    using type = void(std::exception_ptr);
};
}  // namespace detail

using Handler = std::function<awaitable<void>(std::shared_ptr<Connection>)>;

struct Listener {
    std::string name;     // "smtp", "pop3", ...
    std::string address;  // "127.0.0.1"
    unsigned short port;  // 0 for an ephemeral port
    Handler handler;
};

class Server {
  public:
    // `max_per_address`: connections from one client IP address (0 = no per-address limit).
    Server(unsigned io_threads, unsigned blocking_threads, std::size_t max_connections,
           std::size_t max_per_address = 0);
    ~Server();

    // Binds every listener (throws on failure) and starts the threads.
    void start(std::vector<Listener> listeners);
    // Stops accepting, interrupts sessions, waits up to `grace` for them, then stops threads.
    void stop(std::chrono::steady_clock::duration grace);
    unsigned short port(const std::string& name) const;

    bool stopping() const { return stopping_.load(); }
    std::size_t connections() const { return live_.load(); }
    std::size_t max_connections() const { return max_connections_; }
    std::size_t max_connections_per_address() const { return max_per_address_; }
    // Connections open from `address` (refused ones too, until they close).
    std::size_t connections_from(const std::string& address) const;
    asio::io_context& io() { return io_; }

    // g++ 12 destroys non-trivial temporaries in a co_await expression twice: pass a named
    // function object (`auto fn = [...]{}; co_await blocking(std::move(fn));`), never a lambda
    // written inside the co_await.
    // Runs a blocking function on the blocking pool and resumes the calling coroutine on its
    // own executor (its strand) with the result, or with the exception the function threw.
    template <class F>
    auto blocking(F f) {
        using R = std::invoke_result_t<F>;
        using Sig = typename detail::BlockingSig<R>::type;
        return asio::async_initiate<decltype(asio::use_awaitable), Sig>(
            [this](auto handler, F fn) {
                auto work = asio::make_work_guard(asio::get_associated_executor(handler));
                asio::post(pool_, [handler = std::move(handler), fn = std::move(fn),
                                   work = std::move(work)]() mutable {
                    std::exception_ptr ep;
                    auto ex = work.get_executor();
                    if constexpr (std::is_void_v<R>) {
                        try {
                            fn();
                        } catch (...) {
                            ep = std::current_exception();
                        }
                        asio::dispatch(ex, [h = std::move(handler), ep]() mutable { h(ep); });
                    } else {
                        std::optional<R> r;
                        try {
                            r.emplace(fn());
                        } catch (...) {
                            ep = std::current_exception();
                        }
                        asio::dispatch(ex,
                                       [h = std::move(handler), ep, r = std::move(r)]() mutable {
                                           h(ep, r ? std::move(*r) : R{});
                                       });
                    }
                });
            },
            asio::use_awaitable, std::move(f));
    }

  private:
    friend class Connection;
    awaitable<void> accept_loop(tcp::acceptor& acceptor, Handler handler);
    // Counts the connection in and decides its admission (Connection::admission()).
    void registered(Connection* c, std::weak_ptr<Connection> w);
    void unregistered(Connection* c);

    asio::thread_pool pool_;
    unsigned io_threads_;
    std::size_t max_connections_;
    std::size_t max_per_address_;
    std::vector<std::thread> threads_;
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
    std::map<std::string, unsigned short> ports_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> live_{0};
    std::atomic<std::uint64_t> next_id_{1};
    mutable std::mutex mutex_;
    std::condition_variable drained_;
    std::map<Connection*, std::weak_ptr<Connection>> sessions_;
    // Open connections per client address; entries are erased at zero, so the map holds only
    // addresses with a connection open (bounded by the total limit).
    std::unordered_map<std::string, std::size_t> per_address_;
    bool stopped_ = false;
    // Last, so that it is destroyed first: sessions still pending in it unregister from the
    // members above as their frames are destroyed.
    asio::io_context io_;
};

}  // namespace millipost::net
