// sim/engine.h: the load engine. Sessions of weighted profiles (IMAP webmail reader, IMAP mobile
// client holding IDLE, POP3 fetcher, SMTP sender) run as Asio coroutines on N io threads against
// targets given by URL, in open loop (Poisson arrivals at the rate a population produces) or
// closed loop (a fixed number of sessions back to back). Every session is held to its protocol
// contract by a streaming contracts::Checker; an oracle records each message an SMTP 250
// acknowledged and checks the recipients' mailboxes over IMAP at the end. Configuration and
// results are JSON (load-schema.md: "Results JSON").
#pragma once
#include <boost/asio/ip/address_v4.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace millipost::sim {

struct Target {
    std::string protocol;  // "smtp", "imap" or "pop3"
    std::string host;
    std::uint16_t port = 0;
};

// smtp://host:port, imap://host[:143], pop3://host[:110] (also pop://), or host:port with a
// well-known port (25/587/2525 smtp, 110 pop3, 143 imap). Throws std::invalid_argument.
Target parse_target(std::string_view url);

// The n-th client source address over 127.0.0.0/8: 127.0.0.1, 127.0.0.2, ... wrapping before
// 127.255.255.255, never the network or broadcast address. Each address has its own ~28k
// ephemeral ports towards one target, so spreading lifts the connection ceiling.
boost::asio::ip::address_v4 source_address(std::uint64_t n);

// Gaps between Poisson arrivals (exponential with mean 1/rate seconds), deterministic from the
// seed on every platform (its own uniform draw, not std::exponential_distribution).
class Arrivals {
  public:
    Arrivals(double rate_per_second, std::uint64_t seed);
    double next_gap();  // seconds
  private:
    double rate_;
    std::uint64_t state_;
};

// Live counters, about once a second: {"t", "sessions", "sessions_active", "commands",
// "errors", "breaches", "delivered", "commands_per_s", "p99_us"}. Returning false stops the run
// (the results then say "interrupted": true).
using ProgressFn = std::function<bool(const boost::json::object& live)>;

// Runs one load test and returns the results JSON. Config keys and defaults: see
// sim/README.md (and the "config" the results echo after defaults). Throws
// std::invalid_argument on a bad configuration. `stop`, if given, is polled: setting it ends the
// run early with partial results ("interrupted": true).
boost::json::object run_load(const boost::json::object& config, const ProgressFn& progress = {},
                             const std::atomic<bool>* stop = nullptr);

}  // namespace millipost::sim
