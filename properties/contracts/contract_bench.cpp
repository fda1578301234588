// contract_bench.cpp: the checker's cost, measured on the committed corpus. It replays every
// passing recording (testdata/{imap,smtp,pop3}/*.transcript; breach/ and client-breach/ are
// skipped) N times through fresh Checkers, record by record as recorded, and prints per contract
// the CPU time per client line (a command, or for IMAP/SMTP data a literal or message line) and
// the throughput over all bytes of both directions. Built with the tests, not run by ctest:
//   build/properties/contracts/contract_bench [ROUNDS]
// Verdicts are counted too (every recording must pass), so a faster checker that judges
// differently shows here as well as in contracts_test.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "contracts/contract.h"

namespace mc = millipost::contracts;
namespace fs = std::filesystem;

namespace {

struct Record {
    bool client;
    std::string bytes;
};
using Transcript = std::vector<Record>;

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// The shared "millipost transcript 1" format (as transcript_test.cpp reads it); headers other
// than `open` are not needed here.
Transcript read(const fs::path& path, bool& open) {
    Transcript t;
    std::ifstream in(path, std::ios::binary);
    std::string line;
    open = false;
    while (std::getline(in, line)) {
        if (line.starts_with("# ")) {
            if (line == "# open: true") open = true;
            continue;
        }
        if (line.size() < 3 || (line[0] != 'C' && line[0] != 'S')) continue;
        std::string bytes;
        for (std::size_t i = 3; i < line.size(); ++i) {
            if (line[i] != '\\') {
                bytes += line[i];
                continue;
            }
            char e = i + 1 < line.size() ? line[++i] : '?';
            if (e == 'r') {
                bytes += '\r';
            } else if (e == 'n') {
                bytes += '\n';
            } else if (e == 't') {
                bytes += '\t';
            } else if (e == 'x' && i + 2 < line.size()) {
                bytes += static_cast<char>(hex(line[i + 1]) * 16 + hex(line[i + 2]));
                i += 2;
            } else {
                bytes += e;  // "\\"
            }
        }
        t.push_back({line[0] == 'C', std::move(bytes)});
    }
    return t;
}

double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
    int rounds = argc > 1 ? std::atoi(argv[1]) : 20;
    if (rounds < 1) rounds = 1;
    int failures = 0;
    std::printf("%-6s %5s %9s %9s %11s %12s %8s\n", "proto", "files", "c-lines", "bytes",
                "us/c-line", "us/record", "MB/s");
    for (const char* proto : {"imap", "smtp", "pop3"}) {
        std::string dir = std::string(MILLIPOST_CONTRACTS_DIR);
        mc::Contract contract = mc::Contract::load(dir + "/" + proto + ".contract");
        std::vector<std::pair<Transcript, bool>> corpus;
        std::vector<fs::path> paths;
        for (const auto& e : fs::directory_iterator(dir + "/testdata/" + proto))
            if (e.is_regular_file() && e.path().extension() == ".transcript")
                paths.push_back(e.path());
        std::sort(paths.begin(), paths.end());
        std::size_t client_lines = 0, records = 0, bytes = 0;
        for (const fs::path& p : paths) {
            bool open = false;
            Transcript t = read(p, open);
            for (const Record& r : t) {
                client_lines += r.client && r.bytes.ends_with('\n');
                bytes += r.bytes.size();
            }
            records += t.size();
            corpus.emplace_back(std::move(t), open);
        }
        double start = cpu_seconds();
        for (int round = 0; round < rounds; ++round) {
            for (const auto& [t, open] : corpus) {
                mc::Checker c(contract);
                mc::Verdict v;
                for (const Record& r : t)
                    if ((v = r.client ? c.on_client(r.bytes) : c.on_server(r.bytes))) break;
                if (!v && !open) v = c.on_close();
                if (v && round == 0) {
                    ++failures;
                    std::fprintf(stderr, "%s: %s\n", proto, mc::to_string(*v).c_str());
                }
            }
        }
        double secs = cpu_seconds() - start;
        double n = rounds;
        std::printf("%-6s %5zu %9zu %9zu %11.2f %12.2f %8.2f\n", proto, corpus.size(), client_lines,
                    bytes, secs * 1e6 / (n * static_cast<double>(client_lines)),
                    secs * 1e6 / (n * static_cast<double>(records)),
                    n * static_cast<double>(bytes) / secs / 1e6);
    }
    return failures == 0 ? 0 : 1;
}
