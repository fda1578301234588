// support/transcript.h: recorded connections in the shared transcript format
// (docs/conformance.md, "Transcripts": "millipost transcript 1") and the wire taps that produce
// and check them:
// - Recorder writes what a connection carried as transcript records (one per line);
// - ContractTap feeds a contracts::Checker and keeps the first breach;
// - RunRecorder gives every connection of one property run both, numbers their records in the
//   order they were seen across connections, and saves the run as transcripts.
// Generic over protocols: a contract name ("smtp", "pop3", "imap") picks the contract file; any
// client that writes through a WireTap (the IMAP models' client too) can use them.
#pragma once
#include "contracts/contract.h"
#include "support/wire_client.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace millipost::props {

struct TranscriptRecord {
    char dir = 'C';  // 'C': the client sent it; 'S': the server did
    std::string bytes;
};

struct Transcript {
    std::vector<std::pair<std::string, std::string>> headers;  // "# key: value", in file order
    std::vector<TranscriptRecord> records;

    std::optional<std::string> header(std::string_view key) const;
    // Replaces the header `key` or appends it.
    void set(const std::string& key, const std::string& value);
    // "# open: true": the recording stopped with the connection still open.
    bool open() const { return header("open") == "true"; }
};

// The escaping of the format: printable ASCII as itself except '\\', \r \n \t, else \xHH.
std::string escape_bytes(std::string_view bytes);
// The inverse; throws std::runtime_error on a malformed escape.
std::string unescape_bytes(std::string_view text);

std::string format_transcript(const Transcript& t);
// Throws std::runtime_error (with the line number) on anything that is not the format.
Transcript parse_transcript(std::string_view text);
Transcript read_transcript(const std::filesystem::path& path);
void write_transcript(const std::filesystem::path& path, const Transcript& t);

// The contract named `name` from the contracts directory (MILLIPOST_CONTRACTS_DIR at build
// time, $MILLIPOST_CONTRACTS_DIR at run time), loaded once; nullptr when there is no such file
// yet (so that a contract being written elsewhere is picked up the day it lands).
const contracts::Contract* load_contract(const std::string& name);

// Records one connection. Records end after each LF; a chunk without one continues the record.
// `clock` (optional) numbers records across connections (RunRecorder).
class Recorder : public WireTap {
  public:
    explicit Recorder(std::shared_ptr<std::uint64_t> clock = {}) : clock_(std::move(clock)) {}
    void sent(std::string_view bytes) override { add('C', bytes); }
    void received(std::string_view bytes) override { add('S', bytes); }
    void closed() override {
        if (!closed_) closed_at_ = clock_ ? (*clock_)++ : order_.size();
        closed_ = true;
    }

    const std::vector<TranscriptRecord>& records() const { return records_; }
    const std::vector<std::uint64_t>& order() const { return order_; }
    bool is_closed() const { return closed_; }
    // The clock value when the connection ended (so a replay closes it at the same point).
    std::uint64_t closed_at() const { return closed_at_; }

  private:
    void add(char dir, std::string_view bytes);

    std::shared_ptr<std::uint64_t> clock_;
    std::vector<TranscriptRecord> records_;
    std::vector<std::uint64_t> order_;  // clock value of each record's first byte
    bool open_record_ = false;          // the last record has no LF yet
    bool closed_ = false;
    std::uint64_t closed_at_ = 0;
};

// Holds a connection to a contract. Client bytes the test sends on purpose out of the contract
// (malformed commands, to see the server refuse them) would end the check (a breach is sticky);
// announce them with stand_in(): the checker then sees a well-formed line of the same command
// instead, which keeps its state, and still judges the server's reply (the contract allows any
// request a 500/501 refusal). A breach by the client that was not announced is a test bug and
// reported like a server breach.
class ContractTap : public WireTap {
  public:
    explicit ContractTap(const contracts::Contract& contract) : checker_(contract) {}
    void sent(std::string_view bytes) override;
    void received(std::string_view bytes) override { note(checker_.on_server(bytes)); }
    void closed() override { note(checker_.on_close()); }

    // The next write (one whole line) is fed to the checker as `line` (with CRLF added).
    void stand_in(std::string line) { stand_in_ = std::move(line); }
    const std::optional<contracts::Breach>& breach() const { return breach_; }

  private:
    void note(const contracts::Verdict& v) {
        if (v && !breach_) breach_ = v;
    }

    contracts::Checker checker_;
    std::optional<std::string> stand_in_;
    std::optional<contracts::Breach> breach_;
};

// Shows one connection to several taps.
class TeeTap : public WireTap {
  public:
    explicit TeeTap(std::vector<std::shared_ptr<WireTap>> taps) : taps_(std::move(taps)) {}
    void sent(std::string_view b) override {
        for (auto& t : taps_)
            t->sent(b);
    }
    void received(std::string_view b) override {
        for (auto& t : taps_)
            t->received(b);
    }
    void closed() override {
        for (auto& t : taps_)
            t->closed();
    }

  private:
    std::vector<std::shared_ptr<WireTap>> taps_;
};

// Every connection of one property run: each is recorded and, when its contract exists,
// checked. Records are numbered across connections so that a replay can interleave them as they
// happened (header "order").
class RunRecorder {
  public:
    struct Connection {
        std::string contract;  // "smtp", "pop3", ...
        std::shared_ptr<Recorder> recorder;
        std::shared_ptr<ContractTap> checker;  // null when the contract does not exist yet
    };

    // The tap for a new connection speaking `contract`.
    std::shared_ptr<WireTap> tap(const std::string& contract);
    // The checker of the most recent connection (to announce stand-ins), or null.
    ContractTap* last_checker() const {
        return connections_.empty() ? nullptr : connections_.back().checker.get();
    }
    // The first contract breach on any connection so far, as a sentence; empty when none.
    std::string breach() const;

    const std::vector<Connection>& connections() const { return connections_; }

    // The run as transcripts, one per connection, each with `headers` and its place in the run
    // ("connection: i of n", "order": the record numbers across the run).
    std::vector<Transcript> transcripts(
        const std::vector<std::pair<std::string, std::string>>& headers) const;

  private:
    std::shared_ptr<std::uint64_t> clock_ = std::make_shared<std::uint64_t>(0);
    std::vector<Connection> connections_;
};

// Saves a run's transcripts as <dir>/<stem>.transcript (one connection) or
// <dir>/<stem>.<i>.transcript; returns the paths.
std::vector<std::filesystem::path> save_run(const std::filesystem::path& dir,
                                            const std::string& stem,
                                            const std::vector<Transcript>& run);

}  // namespace millipost::props
