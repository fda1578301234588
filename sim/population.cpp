// sim/population.cpp: the synthetic population (see population.h).
#include "population.h"

#include "auth/password.h"
#include "message_gen.h"
#include "store/mail_store.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <thread>

namespace millipost::sim {
namespace {

constexpr std::array<const char*, 32> kFirst = {
    "Ada",     "Bjørn", "Chloé", "Dmitri", "Emeka", "Fatima",    "Giulia", "Hiroshi",
    "Ingrid",  "José",  "Kwame", "Léa",    "Mateo", "Nadia",     "Oskar",  "Priya",
    "Quentin", "Rosa",  "Søren", "Tamar",  "Umar",  "Valentina", "Wei",    "Ximena",
    "Yusuf",   "Zofia", "Anaïs", "Björk",  "Çağla", "Đorđe",     "Ewa",    "François"};
constexpr std::array<const char*, 32> kLast = {
    "Andersson", "Bianchi",      "Castillo", "Dubois",   "Eriksen", "Fernández",  "García",
    "Hoffmann",  "Ivanova",      "Jansen",   "Kowalski", "López",   "Müller",     "Nakamura",
    "Okafor",    "Petrović",     "Quispe",   "Rossi",    "Schmidt", "Tanaka",     "Újvári",
    "Varga",     "Weiß",         "Xu",       "Yılmaz",   "Zhang",   "Østergaard", "Łukasiewicz",
    "Nguyễn",    "Papadopoulos", "Silva",    "Kim"};

std::string derived_password(std::uint64_t seed, std::uint64_t index) {
    static constexpr char kAlphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    std::string pw;
    auto h = derive(seed, index, 2);
    for (int i = 0; i < 12; ++i) {
        pw.push_back(kAlphabet[h % (sizeof kAlphabet - 1)]);
        h = mix(h);
    }
    return pw;
}

}  // namespace

Population::Population(std::uint64_t seed, std::uint64_t size, std::optional<std::string> password,
                       std::string domain, std::string prefix)
    : seed_(seed),
      size_(size),
      password_(std::move(password)),
      domain_(std::move(domain)),
      prefix_(std::move(prefix)) {}

SimUser Population::user(std::uint64_t index) const {
    if (index >= size_) throw std::out_of_range("user index past the population's size");
    SimUser u;
    u.index = index;
    u.login = prefix_ + std::to_string(index);
    u.address = u.login + "@" + domain_;
    u.password = password_ ? *password_ : derived_password(seed_, index);
    auto h = derive(seed_, index, 1);
    u.name = std::string(kFirst[h % kFirst.size()]) + " " + kLast[(h >> 8) % kLast.size()];
    return u;
}

std::size_t Population::provision(store::MailStore& store, std::uint64_t first, std::uint64_t last,
                                  unsigned threads,
                                  const std::function<void(std::uint64_t)>& progress) const {
    last = std::min(last, size_);
    if (first >= last) return 0;
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    std::size_t added = 0;
    // Chunks: hash one chunk on worker threads while the previous one is written.
    constexpr std::uint64_t kChunk = 100000;
    std::vector<store::NewUser> ready, next;
    auto make = [&](std::uint64_t from, std::uint64_t to, std::vector<store::NewUser>& out) {
        out.assign(to - from, {});
        std::vector<std::thread> workers;
        for (unsigned t = 0; t < threads; ++t)
            workers.emplace_back([&, t] {
                for (std::uint64_t i = from + t; i < to; i += threads) {
                    auto u = user(i);
                    out[i - from] = {std::move(u.login),
                                     auth::make_synthetic_secret(u.password, derive(seed_, i, 3))};
                }
            });
        for (auto& w : workers)
            w.join();
    };
    std::uint64_t pos = first;
    make(pos, std::min(last, pos + kChunk), ready);
    while (!ready.empty()) {
        std::uint64_t next_from = pos + ready.size();
        std::thread producer;
        if (next_from < last)
            producer =
                std::thread([&] { make(next_from, std::min(last, next_from + kChunk), next); });
        else
            next.clear();
        added += store.add_users(ready);
        if (producer.joinable()) producer.join();
        pos = next_from;
        if (progress) progress(pos - first);
        std::swap(ready, next);
        next.clear();
    }
    return added;
}

std::uint32_t Population::mailbox_messages(std::uint64_t index, const MailboxPlan& plan) const {
    if (!plan.vary) return plan.messages;
    auto h = derive(seed_, index, 10);
    // Lognormal: Box-Muller from two 53-bit uniforms, u1 in (0, 1].
    double u1 = static_cast<double>((h >> 11) + 1) * 0x1.0p-53;
    double u2 = static_cast<double>(mix(h) >> 11) * 0x1.0p-53;
    double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
    double n = std::min(plan.messages * std::exp(z), 20.0 * plan.messages);
    return static_cast<std::uint32_t>(n);
}

namespace {

// One message to provision: where it goes and how to generate it.
struct Item {
    store::UserId user = 0;
    std::uint64_t index = 0;  // the generator's (message_index)
    const char* mailbox = "INBOX";
    const char* flags = "";
    std::int64_t date = 0;
    MessageSpec spec;
};

// Batches are bounded by count and by planned octets, so memory stays small with big messages.
constexpr std::size_t kBatchMessages = 2000;
constexpr std::size_t kBatchOctets = 64u << 20;

}  // namespace

std::uint64_t Population::populate_mailboxes(
    store::MailStore& store, std::uint64_t first, std::uint64_t last, const MailboxPlan& plan,
    unsigned threads, const std::function<void(std::uint64_t, std::uint64_t)>& progress) const {
    last = std::min(last, size_);
    if (first >= last) return 0;
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());

    // The producer side: items for the next batch, user by user; a user's items are grouped by
    // mailbox so that bulk_append sees long runs.
    std::uint64_t next_user = first;
    std::vector<Item> carry;  // items of the user in progress that did not fit the last batch
    auto fill = [&](std::vector<Item>& batch, std::uint64_t& users_done) {
        batch.clear();
        std::size_t octets = 0;
        auto take_carry = [&] {
            std::size_t n = 0;
            while (n < carry.size() && batch.size() < kBatchMessages && octets < kBatchOctets) {
                octets += message_size(seed_, carry[n].index);
                batch.push_back(std::move(carry[n++]));
            }
            carry.erase(carry.begin(), carry.begin() + static_cast<std::ptrdiff_t>(n));
        };
        take_carry();
        while (carry.empty() && next_user < last && batch.size() < kBatchMessages &&
               octets < kBatchOctets) {
            auto u = user(next_user);
            auto found = store.find_user(u.login);
            if (!found)
                throw std::runtime_error("populate_mailboxes: " + u.login + " is not provisioned");
            auto count = mailbox_messages(next_user, plan);
            std::array<std::vector<Item>, 3> boxes;
            std::uint32_t k = 0;
            for (std::uint32_t made = 0; made < count && k < (1u << 24); ++k) {
                auto index = message_index(next_user, k);
                if (plan.max_message_size && message_size(seed_, index) > plan.max_message_size)
                    continue;
                auto h = derive(seed_, index, 20);
                Item it;
                it.user = found->id;
                it.index = index;
                auto r = h % 100;
                int box = r < 85 ? 0 : r < 95 ? 1 : 2;
                it.mailbox = box == 0 ? "INBOX" : box == 1 ? "Archive" : "Sent";
                auto contact =
                    size_ > 1 ? (next_user + 1 + (h >> 8) % (size_ - 1)) % size_ : next_user;
                std::string contact_address = prefix_ + std::to_string(contact) + "@" + domain_;
                it.spec.seed = seed_;
                it.spec.index = index;
                it.spec.from = box == 2 ? u.address : contact_address;
                it.spec.to = box == 2 ? contact_address : u.address;
                if (made > 0 && (h >> 40) % 4 == 0) {
                    auto back = 1 + (h >> 44) % std::min<std::uint64_t>(made, 10);
                    it.spec.in_reply_to = message_id(
                        seed_, message_index(next_user, k - static_cast<std::uint32_t>(back)));
                }
                // The newest tenth (at least one) is unread; a few are flagged.
                bool unread = box != 2 && made >= count - (count + 9) / 10;
                bool flagged = (h >> 50) % 33 == 0;
                it.flags = unread ? (flagged ? "\\Flagged" : "")
                                  : (flagged ? "\\Flagged \\Seen" : "\\Seen");
                it.date = 1767225600 + static_cast<std::int64_t>(k) * 3600;
                boxes[static_cast<std::size_t>(box)].push_back(std::move(it));
                ++made;
            }
            for (auto& b : boxes)
                for (auto& it : b)
                    carry.push_back(std::move(it));
            ++next_user;
            take_carry();
        }
        users_done = next_user - first - (carry.empty() ? 0 : 1);
    };
    auto generate = [&](const std::vector<Item>& batch, std::vector<std::string>& bytes) {
        bytes.assign(batch.size(), {});
        std::vector<std::thread> workers;
        for (unsigned t = 0; t < threads; ++t)
            workers.emplace_back([&, t] {
                for (std::size_t i = t; i < batch.size(); i += threads)
                    bytes[i] = generate_message(batch[i].spec).bytes;
            });
        for (auto& w : workers)
            w.join();
    };

    std::uint64_t added = 0, users_done = 0, next_done = 0;
    std::vector<Item> batch, next;
    std::vector<std::string> bytes, next_bytes;
    fill(batch, users_done);
    generate(batch, bytes);
    while (!batch.empty()) {
        // Generate the next batch while this one is written.
        fill(next, next_done);
        std::thread producer([&] { generate(next, next_bytes); });
        try {
            std::vector<store::BulkMessage> rows;
            rows.reserve(batch.size());
            for (std::size_t i = 0; i < batch.size(); ++i)
                rows.push_back(
                    {batch[i].user, batch[i].mailbox, bytes[i], batch[i].date, batch[i].flags});
            added += store.bulk_append(rows);
        } catch (...) {
            producer.join();
            throw;
        }
        producer.join();
        if (progress) progress(users_done, added);
        std::swap(batch, next);
        std::swap(bytes, next_bytes);
        users_done = next_done;
    }
    return added;
}

}  // namespace millipost::sim
