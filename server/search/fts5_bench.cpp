// search/fts5_bench.cpp: benchmark of Fts5Index: indexes N generated messages (default 100,000)
// into one mailbox, then times SUBJECT and BODY searches (p50/max over 50 queries per needle).
// Usage: fts5_bench [messages] [directory]; the database is removed afterwards.
#include "search/fts5_index.h"

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
using millipost::search::Document;
using millipost::search::Field;

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// A vocabulary of pronounceable words, a tenth of them with non-ASCII letters.
std::vector<std::string> make_vocabulary(std::mt19937& rng, std::size_t n) {
    const char* onsets[] = {"b", "c", "d", "f", "g", "k",  "l",  "m",  "n",  "p",   "r",
                            "s", "t", "v", "w", "z", "st", "tr", "pl", "gr", "sch", "ch"};
    const char* vowels[] = {"a", "e", "i", "o", "u", "ei", "ou", "ia"};
    const char* special[] = {"ü", "é", "ö", "ä", "ß", "ñ", "ç", "ø"};
    std::vector<std::string> words;
    while (words.size() < n) {
        std::string w;
        std::size_t syllables = 1 + rng() % 4;
        for (std::size_t i = 0; i < syllables; ++i) {
            w += onsets[rng() % std::size(onsets)];
            w += rng() % 10 == 0 ? special[rng() % std::size(special)]
                                 : vowels[rng() % std::size(vowels)];
        }
        if (rng() % 3 == 0) w += "n";
        words.push_back(std::move(w));
    }
    return words;
}

std::string sentence(std::mt19937& rng, const std::vector<std::string>& vocab, std::size_t n) {
    // Zipf-like: low indices are far more frequent.
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        double u = std::uniform_real_distribution<double>(0, 1)(rng);
        auto k = static_cast<std::size_t>(static_cast<double>(vocab.size()) * u * u * u);
        if (!s.empty()) s += ' ';
        s += vocab[std::min(k, vocab.size() - 1)];
    }
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    const std::uint32_t count = argc > 1 ? static_cast<std::uint32_t>(std::stoul(argv[1])) : 100000;
    fs::path base = argc > 2 ? fs::path(argv[2]) : fs::temp_directory_path();
    std::string tmpl = (base / "fts5_bench.XXXXXX").string();
    if (!mkdtemp(tmpl.data())) {
        std::perror("mkdtemp");
        return 1;
    }
    const fs::path dir = tmpl;
    const std::string db_path = (dir / "search.db").string();

    std::mt19937 rng(42);
    const auto vocab = make_vocabulary(rng, 20000);
    std::size_t text_bytes = 0;
    {
        millipost::search::Fts5Index index(db_path);
        auto start = Clock::now();
        std::vector<Document> batch;
        for (std::uint32_t uid = 1; uid <= count; ++uid) {
            Document d;
            d.uid = uid;
            auto& f = d.fields;
            f.subject = sentence(rng, vocab, 3 + rng() % 6);
            if (uid % 1000 == 0) f.subject += " Überraschung";
            f.from =
                vocab[rng() % vocab.size()] + " <" + vocab[rng() % vocab.size()] + "@example.org>";
            f.to = "user" + std::to_string(rng() % 500) + "@example.net";
            f.header = "Subject: " + f.subject + "\nFrom: " + f.from + "\nTo: " + f.to +
                       "\nMessage-ID: <" + std::to_string(uid) + "@bench>\n";
            f.body = sentence(rng, vocab, 50 + rng() % 250) + "\n";
            if (uid % 5000 == 0) f.body += "the distribution is attached\n";
            text_bytes +=
                f.header.size() + f.body.size() + f.subject.size() + f.from.size() + f.to.size();
            batch.push_back(std::move(d));
            if (batch.size() == 1000 || uid == count) {
                index.add(1, 1, batch);
                batch.clear();
            }
        }
        double index_ms = ms_since(start);
        std::printf("indexed %u messages (%.1f MB of text) in %.1f s (%.0f msg/s)\n", count,
                    static_cast<double>(text_bytes) / 1e6, index_ms / 1000,
                    count / (index_ms / 1000));
        auto file_mb = [](const std::string& p) {
            return fs::exists(p) ? static_cast<double>(fs::file_size(p)) / 1e6 : 0.0;
        };
        std::printf("database: %.1f MB, WAL %.1f MB\n", file_mb(db_path),
                    file_mb(db_path + "-wal"));
        {
            auto t = Clock::now();
            auto uids = index.indexed_uids(1, 1);
            double uids_ms = ms_since(t);
            t = Clock::now();
            std::uint32_t last = index.last_indexed_uid(1, 1);
            std::printf("indexed_uids: %zu UIDs in %.1f ms; last_indexed_uid %u in %.2f ms\n",
                        uids.size(), uids_ms, last, ms_since(t));
        }
        // Needles of 5+ octets by frequency rank (the vocabulary is Zipf-like: rank 0 is common).
        auto word_near = [&](std::size_t rank) {
            while (vocab[rank].size() < 5)
                ++rank;
            return vocab[rank];
        };

        struct Query {
            Field field;
            const char* name;
            std::string needle;
        };
        const std::vector<Query> queries = {
            {Field::Subject, "SUBJECT", word_near(0)},
            {Field::Subject, "SUBJECT", word_near(500)},
            {Field::Subject, "SUBJECT", word_near(15000)},
            {Field::Subject, "SUBJECT", "ÜBERRASCH"},
            {Field::Subject, "SUBJECT", "zzzqqq"},
            {Field::Subject, "SUBJECT", "ab"},
            {Field::Body, "BODY", word_near(0)},
            {Field::Body, "BODY", word_near(500)},
            {Field::Body, "BODY", word_near(15000)},
            {Field::Body, "BODY", "ribu"},
            {Field::Body, "BODY", "STRIBUTION IS"},
            {Field::Body, "BODY", "zzzqqq"},
            {Field::Text, "TEXT", "@bench"},
        };
        auto run = [&](const char* label) {
            std::printf("%s\n", label);
            for (const Query& q : queries) {
                std::vector<double> times;
                std::string hits;
                for (int i = 0; i < 50; ++i) {
                    auto t = Clock::now();
                    auto r = index.find(1, 1, q.field, q.needle);
                    times.push_back(ms_since(t));
                    hits = r ? std::to_string(r->size()) + " hits" : "nullopt (scan)";
                }
                std::sort(times.begin(), times.end());
                std::printf("  %-7s %-20s %14s  p50 %8.2f ms  max %8.2f ms\n", q.name,
                            ("\"" + q.needle + "\"").c_str(), hits.c_str(), times[times.size() / 2],
                            times.back());
            }
        };
        run("queries after bulk load:");
        auto t = Clock::now();
        index.optimize();
        std::printf("optimize: %.1f s\n", ms_since(t) / 1000);
        run("queries after optimize:");
    }
    fs::remove_all(dir);
    return 0;
}
