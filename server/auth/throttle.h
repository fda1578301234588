// auth/throttle.h: failed-login throttling per client address and per account. Each failure
// delays the failure's reply (doubling from a base delay up to a cap), and after `limit`
// failures of one address or one account further attempts are refused, without checking the
// password, for `lockout`. A success is never delayed and resets its account's count (not the
// address's: one valid account must not let an address guess others' passwords freely).
// Memory is bounded: at most `entries` addresses and accounts, least recently used dropped.
#pragma once
#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace millipost::auth {

struct ThrottleConfig {
    std::chrono::milliseconds delay{500};       // after the first failure; 0 = no delays
    std::chrono::milliseconds max_delay{8000};  // cap of the doubling
    unsigned limit = 10;                        // failures before refusal; 0 = never refuse
    std::chrono::seconds lockout{300};          // how long a refusal lasts
    std::chrono::seconds window{900};           // a count is forgotten after this long
    std::size_t entries = 100000;               // addresses + accounts tracked at most
};

class Throttle {
  public:
    using Clock = std::chrono::steady_clock;

    explicit Throttle(ThrottleConfig cfg) : cfg_(cfg) {}

    // Whether attempts from `address` for `account` (empty when not yet known) are refused
    // at `now`: the time left, or zero.
    Clock::duration refused(std::string_view address, std::string_view account,
                            Clock::time_point now = Clock::now());

    struct Penalty {
        Clock::duration delay{};  // wait this long before replying
        bool locked = false;      // this failure started a lockout of the address or account
        unsigned failures = 0;    // the larger of the two counts
    };
    Penalty failure(std::string_view address, std::string_view account,
                    Clock::time_point now = Clock::now());
    void success(std::string_view address, std::string_view account,
                 Clock::time_point now = Clock::now());

    std::size_t size() const;
    const ThrottleConfig& config() const { return cfg_; }

  private:
    struct Entry {
        unsigned failures = 0;
        Clock::time_point last{};
        Clock::time_point locked_until{};
        std::list<std::string>::iterator lru;
    };
    Entry& touch(const std::string& key, Clock::time_point now);
    Entry* find(const std::string& key);

    ThrottleConfig cfg_;
    mutable std::mutex mutex_;
    std::list<std::string> lru_;  // most recently used first
    std::unordered_map<std::string, Entry> map_;
};

}  // namespace millipost::auth
