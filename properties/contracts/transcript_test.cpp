// transcript_test.cpp: recorded sessions (testdata/{smtp,pop3}/*.transcript, the shared
// "millipost transcript 1" format) against their contracts: every one recorded from a conforming
// exchange passes whole and byte by byte; the ones under breach/ (a peer's or client's known
// fault, header "expect: client|server") are each rejected and blamed on that side; and mutations
// of the passing ones (a status byte changed, a reply line dropped, a "." dropped, a reply code
// swapped for one the request cannot get) are each rejected.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "contracts/contract.h"

namespace mc = millipost::contracts;
namespace fs = std::filesystem;

namespace {

struct Record {
    char dir;  // 'C' or 'S'
    std::string bytes;
};
struct Transcript {
    std::string path;
    std::map<std::string, std::string> headers;
    std::vector<Record> records;
};

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// Reads the shared transcript format (notes: transcript-format.md); fails the test on bad input.
Transcript read(const fs::path& path) {
    Transcript t{path.string(), {}, {}};
    std::ifstream in(path, std::ios::binary);
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
        if (first) {
            EXPECT_EQ(line, "# millipost transcript 1") << path;
            first = false;
            continue;
        }
        if (line.starts_with("# ")) {
            if (auto colon = line.find(": "); colon != std::string::npos)
                t.headers[line.substr(2, colon - 2)] = line.substr(colon + 2);
            continue;
        }
        if (line.empty()) continue;
        if (line.size() < 3 || (line[0] != 'C' && line[0] != 'S') ||
            line.compare(1, 2, ": ") != 0) {
            ADD_FAILURE() << path << ": bad line " << line;
            continue;
        }
        std::string bytes;
        for (std::size_t i = 3; i < line.size(); ++i) {
            if (line[i] != '\\') {
                bytes += line[i];
                continue;
            }
            char e = i + 1 < line.size() ? line[++i] : '?';
            if (e == '\\') {
                bytes += '\\';
            } else if (e == 'r') {
                bytes += '\r';
            } else if (e == 'n') {
                bytes += '\n';
            } else if (e == 't') {
                bytes += '\t';
            } else if (e == 'x' && i + 2 < line.size() && hex(line[i + 1]) >= 0 &&
                       hex(line[i + 2]) >= 0) {
                bytes += static_cast<char>(hex(line[i + 1]) * 16 + hex(line[i + 2]));
                i += 2;
            } else {
                ADD_FAILURE() << path << ": bad escape in " << line;
            }
        }
        t.records.push_back({line[0], std::move(bytes)});
    }
    return t;
}

const mc::Contract& contract(const std::string& name) {
    static std::map<std::string, mc::Contract> loaded;
    auto it = loaded.find(name);
    if (it == loaded.end())
        it = loaded
                 .emplace(name, mc::Contract::load(std::string(MILLIPOST_CONTRACTS_DIR) + "/" +
                                                   name + ".contract"))
                 .first;
    return it->second;
}

// Feeds the records (each cut into pieces of `chunk` bytes if chunk > 0); the first breach or
// the verdict at close (unless the header says the recording stopped with the connection open).
mc::Verdict run(const Transcript& t, std::size_t chunk = 0) {
    mc::Checker c(contract(t.headers.at("contract")));
    for (const Record& r : t.records) {
        std::string_view b = r.bytes;
        std::size_t step = chunk > 0 ? chunk : std::max<std::size_t>(b.size(), 1);
        for (std::size_t p = 0; p < b.size(); p += step) {
            std::string_view piece = b.substr(p, step);
            mc::Verdict v = r.dir == 'C' ? c.on_client(piece) : c.on_server(piece);
            if (v) return v;
        }
    }
    if (t.headers.contains("open") && t.headers.at("open") == "true") return std::nullopt;
    return c.on_close();
}

std::string why(const mc::Verdict& v) {
    return v ? mc::to_string(*v) : "ok";
}

std::vector<Transcript> corpus(bool breaches) {
    std::vector<Transcript> out;
    for (const char* proto : {"smtp", "pop3"}) {
        fs::path dir = fs::path(MILLIPOST_CONTRACTS_DIR) / "testdata" / proto;
        if (breaches) dir /= "breach";
        if (!fs::exists(dir)) continue;
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(dir))
            if (e.path().extension() == ".transcript") files.push_back(e.path());
        std::sort(files.begin(), files.end());
        for (const fs::path& f : files) {
            Transcript t = read(f);
            EXPECT_EQ(t.headers["contract"], proto) << f;
            out.push_back(std::move(t));
        }
    }
    return out;
}

bool is_smtp_reply(const std::string& b) {
    return b.size() >= 4 && std::isdigit(static_cast<unsigned char>(b[0])) &&
           std::isdigit(static_cast<unsigned char>(b[1])) &&
           std::isdigit(static_cast<unsigned char>(b[2])) && (b[3] == ' ' || b[3] == '-');
}
bool is_pop3_status(const std::string& b) {
    return b.starts_with("+OK") || b.starts_with("-ERR");
}

// Every server record index for which `pick` holds, each mutated by `change` alone, must make
// the transcript fail; returns how many mutants were made.
std::size_t expect_all_rejected(const std::vector<Transcript>& all, const char* what,
                                const std::function<bool(const Transcript&, std::size_t)>& pick,
                                const std::function<void(Transcript&, std::size_t)>& change) {
    std::size_t made = 0;
    for (const Transcript& t : all)
        for (std::size_t i = 0; i < t.records.size(); ++i) {
            if (!pick(t, i)) continue;
            Transcript m = t;
            change(m, i);
            ++made;
            mc::Verdict v = run(m);
            EXPECT_TRUE(v) << what << " at record " << i << " of " << t.path << ": \""
                           << t.records[i].bytes << "\"";
        }
    std::cout << what << ": " << made << " mutants, each rejected\n";
    return made;
}

}  // namespace

TEST(Transcripts, TheCorpusIsThere) {
    std::vector<Transcript> all = corpus(false);
    std::size_t smtp = 0, pop3 = 0, bytes = 0;
    for (const Transcript& t : all) {
        (t.headers.at("contract") == "smtp" ? smtp : pop3)++;
        bytes += fs::file_size(t.path);
        EXPECT_TRUE(t.headers.contains("peer")) << t.path;
    }
    EXPECT_GE(smtp, 5u);
    EXPECT_GE(pop3, 5u);
    EXPECT_LT(bytes, 200u * 1024);
}

TEST(Transcripts, EveryRecordedSessionPasses) {
    for (const Transcript& t : corpus(false)) {
        mc::Verdict v = run(t);
        EXPECT_FALSE(v) << t.path << ": " << why(v);
        for (std::size_t chunk : {1, 5}) {
            v = run(t, chunk);
            EXPECT_FALSE(v) << t.path << " in pieces of " << chunk << ": " << why(v);
        }
    }
}

TEST(Transcripts, EveryKnownBreachIsCaughtOnTheRightSide) {
    std::vector<Transcript> all = corpus(true);
    EXPECT_FALSE(all.empty());
    for (const Transcript& t : all) {
        ASSERT_TRUE(t.headers.contains("expect")) << t.path;
        mc::Verdict v = run(t);
        ASSERT_TRUE(v) << t.path;
        std::cout << fs::path(t.path).filename().string() << ": " << why(v) << "\n";
        EXPECT_EQ(v->who == mc::Breach::Who::client ? "client" : "server", t.headers.at("expect"))
            << t.path << ": " << why(v);
        if (t.headers.contains("expect-state")) {
            EXPECT_EQ(v->state, t.headers.at("expect-state")) << t.path << ": " << why(v);
        }
    }
}

TEST(Transcripts, AChangedStatusByteIsRejected) {
    std::vector<Transcript> all = corpus(false);
    std::size_t made = expect_all_rejected(
        all, "status byte changed",
        [](const Transcript& t, std::size_t i) {
            const Record& r = t.records[i];
            return r.dir == 'S' && (t.headers.at("contract") == "smtp" ? is_smtp_reply(r.bytes)
                                                                       : is_pop3_status(r.bytes));
        },
        [](Transcript& t, std::size_t i) {
            std::string& b = t.records[i].bytes;
            // SMTP: a first digit outside RFC 5321's 2-5; POP3: neither "+OK" nor "-ERR".
            b[0] = t.headers.at("contract") == "smtp" ? '7' : '*';
        });
    EXPECT_GT(made, 100u);
}

TEST(Transcripts, ADroppedReplyLineIsRejected) {
    std::vector<Transcript> all = corpus(false);
    // The last line of a reply (SMTP: code then space; POP3: a status line or a data line's
    // "."): without it the replies shift onto the wrong requests or one stays unanswered.
    std::size_t made = expect_all_rejected(
        all, "reply line dropped",
        [](const Transcript& t, std::size_t i) {
            const Record& r = t.records[i];
            if (r.dir != 'S') return false;
            if (t.headers.at("contract") == "smtp")
                return is_smtp_reply(r.bytes) && r.bytes[3] == ' ';
            return is_pop3_status(r.bytes) || r.bytes == ".\r\n";
        },
        [](Transcript& t, std::size_t i) { t.records.erase(t.records.begin() + i); });
    EXPECT_GT(made, 80u);
}

TEST(Transcripts, ADroppedClientRequestIsRejected) {
    std::vector<Transcript> all = corpus(false);
    // POP3 clients send only requests (until TLS): each dropped one leaves a reply without one.
    std::size_t made = expect_all_rejected(
        all, "request dropped",
        [](const Transcript& t, std::size_t i) {
            const Record& r = t.records[i];
            bool printable = std::all_of(r.bytes.begin(), r.bytes.end(), [](char c) {
                return c == '\r' || c == '\n' || (c >= 0x20 && c < 0x7f);
            });
            return r.dir == 'C' && t.headers.at("contract") == "pop3" && printable;
        },
        [](Transcript& t, std::size_t i) { t.records.erase(t.records.begin() + i); });
    EXPECT_GT(made, 30u);
}

TEST(Transcripts, ASwappedReplyCodeIsRejected) {
    std::vector<Transcript> all = corpus(false);
    // A code the request cannot get: SMTP 354 (only DATA gets it; DATA gets 250 instead); POP3
    // -ERR for a multi-line +OK (the data lines then stand as replies) and for STAT, which
    // cannot fail (RFC 1939 §5). A swap to another code the request may get is a valid
    // exchange, which no contract can reject.
    auto multi_line_ok = [](const Transcript& t, std::size_t i) {
        if (!t.records[i].bytes.starts_with("+OK")) return false;
        for (std::size_t j = i + 1; j < t.records.size(); ++j)
            if (t.records[j].dir == 'S') return !is_pop3_status(t.records[j].bytes);
        return false;
    };
    std::size_t made = expect_all_rejected(
        all, "reply code swapped",
        [&](const Transcript& t, std::size_t i) {
            const Record& r = t.records[i];
            if (r.dir != 'S') return false;
            if (t.headers.at("contract") == "smtp") return is_smtp_reply(r.bytes);
            return multi_line_ok(t, i) || (r.bytes.starts_with("+OK ") &&
                                           std::isdigit(static_cast<unsigned char>(r.bytes[4])) &&
                                           i > 0 && t.records[i - 1].bytes == "STAT\r\n");
        },
        [](Transcript& t, std::size_t i) {
            std::string& b = t.records[i].bytes;
            if (t.headers.at("contract") == "smtp")
                b.replace(0, 3, b.compare(0, 3, "354") == 0 ? "250" : "354");
            else
                b.replace(0, 3, "-ERR");
        });
    EXPECT_GT(made, 100u);
}

TEST(Transcripts, ADroppedTerminatingDotIsRejected) {
    std::vector<Transcript> all = corpus(false);
    // The "." that ends a POP3 multi-line reply or SMTP mail data: without it the data runs on
    // into what follows, which then cannot be read as the exchange it was.
    std::size_t made = expect_all_rejected(
        all, "terminating dot dropped",
        [](const Transcript& t, std::size_t i) {
            const Record& r = t.records[i];
            bool pop3 = t.headers.at("contract") == "pop3";
            return r.bytes == ".\r\n" && r.dir == (pop3 ? 'S' : 'C');
        },
        [](Transcript& t, std::size_t i) { t.records.erase(t.records.begin() + i); });
    EXPECT_GT(made, 30u);
}

TEST(Transcripts, RandomDamageNeverCrashesAndTheVerdictIgnoresHowBytesAreSplit) {
    // Random damage to the recordings (bytes flipped, deleted or inserted, records duplicated,
    // dropped or swapped), fed whole and in random pieces: the checker must return, and its
    // verdict must be the same however the bytes were split. (Exception by design: a server
    // read that holds the TLS go-ahead and more bytes is judged per read.)
    std::vector<Transcript> all = corpus(false);
    ASSERT_FALSE(all.empty());
    std::mt19937 rng(20261128);
    auto pick = [&](std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
    };
    std::size_t broken = 0, runs = 0;
    for (int round = 0; round < 2000; ++round) {
        Transcript t = all[pick(all.size())];
        for (std::size_t k = 0, n = 1 + pick(3); k < n && !t.records.empty(); ++k) {
            std::size_t i = pick(t.records.size());
            std::string& b = t.records[i].bytes;
            switch (pick(6)) {
                case 0:
                    if (!b.empty()) b[pick(b.size())] = static_cast<char>(pick(256));
                    break;
                case 1:
                    if (!b.empty()) b.erase(pick(b.size()), 1);
                    break;
                case 2:
                    b.insert(pick(b.size() + 1), 1, static_cast<char>(pick(256)));
                    break;
                case 3:
                    t.records.insert(t.records.begin() + i, t.records[i]);
                    break;
                case 4:
                    t.records.erase(t.records.begin() + i);
                    break;
                default:
                    if (i + 1 < t.records.size()) std::swap(t.records[i], t.records[i + 1]);
                    break;
            }
        }
        mc::Verdict whole = run(t);
        if (whole &&
            whole->reason.find("plaintext after the reply that starts TLS") != std::string::npos)
            continue;
        std::size_t chunk = 1 + pick(16);
        mc::Verdict pieces = run(t, chunk);
        ++runs;
        broken += whole ? 1 : 0;
        ASSERT_EQ(static_cast<bool>(whole), static_cast<bool>(pieces))
            << t.path << " damaged, in pieces of " << chunk << ": whole " << why(whole)
            << " / pieces " << why(pieces);
        if (whole) {
            EXPECT_EQ(whole->who, pieces->who) << why(whole) << " / " << why(pieces);
            EXPECT_EQ(whole->state, pieces->state) << why(whole) << " / " << why(pieces);
            EXPECT_EQ(whole->reason, pieces->reason) << why(whole) << " / " << why(pieces);
        }
    }
    std::cout << "random damage: " << runs << " runs, " << broken << " breaches\n";
    EXPECT_GT(broken, runs / 2);  // the damage mostly shows
}
