// auth/throttle.cpp: failed-login throttling (see throttle.h).
#include "auth/throttle.h"

#include <algorithm>

namespace millipost::auth {
namespace {

// Addresses and accounts share one map; the prefix keeps "a:" an address and "u:" a login.
std::string address_key(std::string_view a) {
    return "a:" + std::string(a);
}
std::string account_key(std::string_view u) {
    return "u:" + std::string(u);
}

}  // namespace

Throttle::Entry* Throttle::find(const std::string& key) {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
}

Throttle::Entry& Throttle::touch(const std::string& key, Clock::time_point now) {
    auto it = map_.find(key);
    if (it != map_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second.lru);
    } else {
        while (!lru_.empty() && map_.size() >= std::max<std::size_t>(cfg_.entries, 1)) {
            map_.erase(lru_.back());
            lru_.pop_back();
        }
        lru_.push_front(key);
        it = map_.emplace(key, Entry{}).first;
        it->second.lru = lru_.begin();
    }
    auto& e = it->second;
    if (e.failures && now - e.last > cfg_.window && now >= e.locked_until) e.failures = 0;
    return e;
}

Throttle::Clock::duration Throttle::refused(std::string_view address, std::string_view account,
                                            Clock::time_point now) {
    if (cfg_.limit == 0) return {};
    std::lock_guard lock(mutex_);
    Clock::duration left{};
    for (auto* e :
         {find(address_key(address)), account.empty() ? nullptr : find(account_key(account))})
        if (e && e->locked_until > now) left = std::max(left, e->locked_until - now);
    return left;
}

Throttle::Penalty Throttle::failure(std::string_view address, std::string_view account,
                                    Clock::time_point now) {
    std::lock_guard lock(mutex_);
    Penalty p;
    auto count = [&](Entry& e) {
        ++e.failures;
        e.last = now;
        if (cfg_.limit && e.failures >= cfg_.limit && e.locked_until <= now) {
            e.locked_until = now + cfg_.lockout;
            p.locked = true;
        }
        p.failures = std::max(p.failures, e.failures);
    };
    count(touch(address_key(address), now));
    if (!account.empty()) count(touch(account_key(account), now));
    if (cfg_.delay.count() > 0) {
        auto d = cfg_.delay;
        for (unsigned i = 1; i < p.failures && d < cfg_.max_delay; ++i)
            d *= 2;
        p.delay = std::min(d, cfg_.max_delay);
    }
    return p;
}

void Throttle::success(std::string_view, std::string_view account, Clock::time_point) {
    std::lock_guard lock(mutex_);
    if (auto* e = find(account_key(account))) {
        e->failures = 0;
        e->locked_until = {};
    }
}

std::size_t Throttle::size() const {
    std::lock_guard lock(mutex_);
    return map_.size();
}

}  // namespace millipost::auth
