// sim/engine.h: the load engine. Sessions of weighted behaviours (IMAP webmail reader choosing
// actions by weight, IMAP mobile client holding IDLE and resynchronising with QRESYNC, POP3
// fetcher, SMTP sender, inbound MX host with several recipients per message) run as Asio
// coroutines on N io threads against targets given by URL, in open loop (Poisson arrivals at the
// rate a population produces) or closed loop (a fixed number of sessions back to back). Every
// session is held to its protocol contract by a streaming contracts::Checker; an oracle records
// each message an SMTP 250 acknowledged and the flags sessions set, and checks the recipients'
// mailboxes over IMAP at the end (presence, flags, and a sample's full bytes). Configuration and
// results are JSON (load-schema.md: "Results JSON"; keys in sim/README.md).
#pragma once
#include <boost/asio/ip/address_v4.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace millipost::sim {

struct Target {
    std::string protocol;  // "smtp", "imap" or "pop3"
    std::string scheme;    // as given: "imaps", "submission", ... (the protocol for host:port)
    std::string host;
    std::uint16_t port = 0;
    bool tls = false;         // implicit TLS (RFC 8314): the handshake first
    bool starttls = false;    // STARTTLS / STLS after the greeting
    bool submission = false;  // SMTP senders authenticate (submission://, smtps://)
};

// smtp://host:port, imap://host[:143], pop3://host[:110] (also pop://), or host:port with a
// well-known port (25/587/2525 smtp, 110 pop3, 143 imap). Implicit TLS: imaps:// (993),
// pop3s:// (995, also pops://), smtps:// (465, senders authenticate); submission:// (587:
// STARTTLS, then senders authenticate). "?starttls" after imap://, pop3:// or smtp:// URLs:
// STARTTLS first. Throws std::invalid_argument.
Target parse_target(std::string_view url);

// The oracle's byte comparison: nullopt when `fetched` (a server's BODY[]) is `sent` exactly,
// possibly preceded by whole header fields the server added (Received:, Return-Path:, ...: RFC
// 5321 §4.4 trace fields go on top); else what differs, for the violation's detail.
std::optional<std::string> body_mismatch(std::string_view fetched, std::string_view sent);

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
