// sim/population.h: a synthetic population: user i's login, address, password and name derive
// from (seed, i) on demand, so a population of millions costs nothing until it is used.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace millipost::store {
class MailStore;
}

namespace millipost::sim {

// splitmix64: the one mixing function every derived value comes from.
inline std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
inline std::uint64_t derive(std::uint64_t seed, std::uint64_t index, std::uint64_t field) {
    return mix(mix(mix(seed) ^ index) ^ field);
}

struct SimUser {
    std::uint64_t index = 0;
    std::string login;     // "user<index>" (imaptest's user%d form)
    std::string address;   // login@domain
    std::string password;  // the shared one if set, else derived
    std::string name;      // display name
};

class Population {
  public:
    Population(std::uint64_t seed, std::uint64_t size, std::optional<std::string> password = {},
               std::string domain = "localhost", std::string prefix = "user");

    std::uint64_t seed() const { return seed_; }
    std::uint64_t size() const { return size_; }
    const std::string& domain() const { return domain_; }
    SimUser user(std::uint64_t index) const;  // throws std::out_of_range past size()

    // Bulk-loads users [first, last) into a store with synthetic (one-iteration, marked)
    // secrets, hashing on `threads` threads. Returns how many were new.
    std::size_t provision(store::MailStore& store, std::uint64_t first, std::uint64_t last,
                          unsigned threads = 0,
                          const std::function<void(std::uint64_t)>& progress = {}) const;

  private:
    std::uint64_t seed_;
    std::uint64_t size_;
    std::optional<std::string> password_;
    std::string domain_;
    std::string prefix_;
};

}  // namespace millipost::sim
