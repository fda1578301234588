// sim/population.cpp: the synthetic population (see population.h).
#include "population.h"

#include "auth/password.h"
#include "store/mail_store.h"

#include <algorithm>
#include <array>
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

}  // namespace millipost::sim
