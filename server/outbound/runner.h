// outbound/runner.h: the queue runner: delivers the outbound queue (MailStore::outbound_*) by
// SMTP to each recipient domain's server, retries temporary failures with exponential backoff,
// and returns a DSN to the sender for recipients that fail for good. docs/submission.md,
// "Outbound delivery".
#pragma once
#include "outbound/client.h"
#include "store/mail_store.h"

#include <boost/asio.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>

namespace millipost {
class Service;
}

namespace millipost::outbound {

struct Destination;  // where a group of recipients goes (runner.cpp)

class Runner {
  public:
    explicit Runner(Service& svc);
    ~Runner();
    Runner(const Runner&) = delete;
    Runner& operator=(const Runner&) = delete;

    // Starts the loop on the service's network threads (after the network core started).
    void start();
    // A new entry was queued: look at the queue now rather than at the next poll. Any thread.
    void wake();
    // Stops picking entries, drops connections in flight (their recipients stay pending and are
    // retried after a restart) and waits for the deliveries to unwind. False when some did not
    // within the limit: their frames still refer to this object, which must then outlive the
    // io_context.
    bool stop();

  private:
    struct Outcome;
    awaitable<void> loop();
    awaitable<void> deliver(std::int64_t id);
    // One transaction for the recipients of one destination; results into `outcome`.
    awaitable<void> attempt(const store::OutboundMessage& entry,
                            const std::vector<std::string>& rcpts, Outcome& outcome);
    awaitable<std::vector<RcptResult>> transact(const store::OutboundMessage& entry,
                                                const Destination& dest,
                                                const std::vector<std::string>& rcpts,
                                                std::string& relay);
    // Bounces (DSN), expiry and the next attempt.
    awaitable<void> conclude(const store::OutboundMessage& entry, Outcome& outcome);
    bool return_dsn(const store::OutboundMessage& entry, std::span<const RcptResult> failed,
                    std::int64_t now);
    void finished();  // one coroutine (the loop or a delivery) ended

    Service& svc_;
    asio::strand<asio::io_context::executor_type> strand_;
    asio::steady_timer timer_;
    std::shared_ptr<asio::ssl::context> tls_noverify_, tls_verify_;
    // Strand only: entries being delivered, and the clients to cancel at shutdown.
    std::set<std::int64_t> in_flight_;
    std::set<SmtpClient*> clients_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> wake_pending_{false};
    std::mutex mutex_;
    std::condition_variable idle_;
    std::size_t active_ = 0;  // coroutines running (under mutex_)
};

}  // namespace millipost::outbound
