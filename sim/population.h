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

// How provisioning fills mailboxes (Population::populate_mailboxes).
struct MailboxPlan {
    std::uint32_t messages = 100;  // per user: exactly, or the median when `vary`
    // Vary the count per user: lognormal around `messages` (sigma 1, capped at 20x), so a few
    // users have huge mailboxes, as in real populations.
    bool vary = false;
    // When non-zero, messages whose planned size (message_size) is larger are skipped: a
    // store of millions of messages without the multi-megabyte tail.
    std::size_t max_message_size = 0;
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

    // Messages user `index` gets under `plan` (deterministic).
    std::uint32_t mailbox_messages(std::uint64_t index, const MailboxPlan& plan) const;
    // The message generator's index of user `user`'s k-th provisioned message: unique over the
    // population, and reversible (user = index >> 24), so the oracle knows whose it is.
    static std::uint64_t message_index(std::uint64_t user, std::uint32_t k) {
        return (user << 24) | k;
    }

    // Gives users [first, last) (already provisioned) generated messages: about 85% in INBOX,
    // 10% in Archive and 5% in Sent (both created as needed), older ones \Seen, some
    // \Flagged, one in four a reply to an earlier one. Messages are generated on `threads`
    // threads while the previous batch is written by the store's bulk_append. Returns how many
    // messages were added; `progress` gets (users done, messages added).
    std::uint64_t populate_mailboxes(
        store::MailStore& store, std::uint64_t first, std::uint64_t last, const MailboxPlan& plan,
        unsigned threads = 0,
        const std::function<void(std::uint64_t, std::uint64_t)>& progress = {}) const;

  private:
    std::uint64_t seed_;
    std::uint64_t size_;
    std::optional<std::string> password_;
    std::string domain_;
    std::string prefix_;
};

}  // namespace millipost::sim
