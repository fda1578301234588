// support/transcript.cpp: the transcript format, the recording and contract taps (see
// transcript.h).
#include "support/transcript.h"

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace millipost::props {

std::optional<std::string> Transcript::header(std::string_view key) const {
    for (auto& [k, v] : headers)
        if (k == key) return v;
    return std::nullopt;
}

void Transcript::set(const std::string& key, const std::string& value) {
    for (auto& [k, v] : headers)
        if (k == key) {
            v = value;
            return;
        }
    headers.emplace_back(key, value);
}

std::string escape_bytes(std::string_view bytes) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() + 8);
    for (unsigned char c : bytes) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\r')
            out += "\\r";
        else if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else if (c >= 0x20 && c <= 0x7e)
            out.push_back(static_cast<char>(c));
        else {
            out += "\\x";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

std::string unescape_bytes(std::string_view text) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;  // the format writes lowercase hex only
    };
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c != '\\') {
            out.push_back(c);
            continue;
        }
        if (++i >= text.size()) throw std::runtime_error("escape at end of record");
        switch (text[i]) {
            case '\\':
                out.push_back('\\');
                break;
            case 'r':
                out.push_back('\r');
                break;
            case 'n':
                out.push_back('\n');
                break;
            case 't':
                out.push_back('\t');
                break;
            case 'x': {
                if (i + 2 >= text.size()) throw std::runtime_error("short \\x escape");
                int hi = nibble(text[i + 1]);
                int lo = nibble(text[i + 2]);
                if (hi < 0 || lo < 0) throw std::runtime_error("bad \\x escape");
                out.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                break;
            }
            default:
                throw std::runtime_error(std::string("unknown escape \\") + text[i]);
        }
    }
    return out;
}

constexpr std::string_view kMagic = "# millipost transcript 1";

std::string format_transcript(const Transcript& t) {
    std::string out(kMagic);
    out += "\n";
    for (auto& [k, v] : t.headers) {
        if (k.find_first_of(":\n") != std::string::npos || v.find('\n') != std::string::npos)
            throw std::runtime_error("header not on one line: " + k);
        out += "# " + k + ": " + v + "\n";
    }
    for (auto& r : t.records)
        out += std::string(1, r.dir) + ": " + escape_bytes(r.bytes) + "\n";
    return out;
}

Transcript parse_transcript(std::string_view text) {
    Transcript t;
    std::size_t pos = 0, line_no = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        auto line = text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++line_no;
        auto fail = [&](const std::string& why) {
            throw std::runtime_error("transcript line " + std::to_string(line_no) + ": " + why);
        };
        if (line_no == 1) {
            if (line != kMagic) fail("not a millipost transcript 1");
            continue;
        }
        if (line.empty()) continue;
        if (line[0] == '#') {
            // "# key: value" is a header; any other comment is ignored.
            auto body = line.substr(1);
            if (!body.empty() && body[0] == ' ') body.remove_prefix(1);
            auto colon = body.find(": ");
            if (colon != std::string_view::npos && colon > 0 &&
                body.substr(0, colon).find(' ') == std::string_view::npos)
                t.headers.emplace_back(std::string(body.substr(0, colon)),
                                       std::string(body.substr(colon + 2)));
            continue;
        }
        if (line.size() < 3 || (line[0] != 'C' && line[0] != 'S') || line[1] != ':' ||
            line[2] != ' ')
            fail("expected \"C: \", \"S: \" or \"#\"");
        try {
            t.records.push_back({line[0], unescape_bytes(line.substr(3))});
        } catch (const std::exception& e) {
            fail(e.what());
        }
    }
    if (line_no == 0) throw std::runtime_error("empty transcript");
    return t;
}

Transcript read_transcript(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    std::stringstream ss;
    ss << in.rdbuf();
    try {
        return parse_transcript(ss.str());
    } catch (const std::exception& e) {
        throw std::runtime_error(path.string() + ": " + e.what());
    }
}

void write_transcript(const std::filesystem::path& path, const Transcript& t) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << format_transcript(t);
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

const contracts::Contract* load_contract(const std::string& name) {
    static std::mutex mutex;
    static std::map<std::string, std::unique_ptr<contracts::Contract>> cache;
    std::lock_guard lock(mutex);
    auto it = cache.find(name);
    if (it != cache.end()) return it->second.get();
    std::filesystem::path dir = MILLIPOST_CONTRACTS_DIR;
    if (const char* env = std::getenv("MILLIPOST_CONTRACTS_DIR")) dir = env;
    auto path = dir / (name + ".contract");
    std::unique_ptr<contracts::Contract> c;
    std::error_code ec;
    if (std::filesystem::exists(path, ec))
        c = std::make_unique<contracts::Contract>(contracts::Contract::load(path.string()));
    return (cache[name] = std::move(c)).get();
}

void Recorder::add(char dir, std::string_view bytes) {
    while (!bytes.empty()) {
        auto lf = bytes.find('\n');
        auto piece = bytes.substr(0, lf == std::string_view::npos ? bytes.size() : lf + 1);
        bytes.remove_prefix(piece.size());
        if (open_record_ && records_.back().dir == dir) {
            records_.back().bytes += piece;
        } else {
            records_.push_back({dir, std::string(piece)});
            order_.push_back(clock_ ? (*clock_)++ : order_.size());
        }
        open_record_ = piece.back() != '\n';
    }
}

void ContractTap::sent(std::string_view bytes) {
    if (stand_in_) {
        auto line = *stand_in_ + "\r\n";
        stand_in_.reset();
        note(checker_.on_client(line));
        return;
    }
    note(checker_.on_client(bytes));
}

std::shared_ptr<WireTap> RunRecorder::tap(const std::string& contract) {
    Connection c{contract, std::make_shared<Recorder>(clock_), nullptr};
    std::vector<std::shared_ptr<WireTap>> taps{c.recorder};
    if (auto* k = load_contract(contract)) {
        c.checker = std::make_shared<ContractTap>(*k);
        taps.push_back(c.checker);
    }
    connections_.push_back(c);
    return std::make_shared<TeeTap>(std::move(taps));
}

std::string RunRecorder::breach() const {
    for (std::size_t i = 0; i < connections_.size(); ++i)
        if (auto& c = connections_[i]; c.checker && c.checker->breach())
            return c.contract + " contract, connection " + std::to_string(i + 1) + ": " +
                   contracts::to_string(*c.checker->breach());
    return {};
}

std::vector<Transcript> RunRecorder::transcripts(
    const std::vector<std::pair<std::string, std::string>>& headers) const {
    std::vector<Transcript> out;
    for (std::size_t i = 0; i < connections_.size(); ++i) {
        auto& c = connections_[i];
        Transcript t;
        t.set("contract", c.contract);
        for (auto& [k, v] : headers)
            t.set(k, v);
        t.set("connection", std::to_string(i + 1) + " of " + std::to_string(connections_.size()));
        std::string order;
        for (auto n : c.recorder->order())
            order += (order.empty() ? "" : " ") + std::to_string(n);
        t.set("order", order);
        if (c.recorder->is_closed())
            t.set("closed-at", std::to_string(c.recorder->closed_at()));
        else
            t.set("open", "true");
        t.records = c.recorder->records();
        out.push_back(std::move(t));
    }
    return out;
}

std::vector<std::filesystem::path> save_run(const std::filesystem::path& dir,
                                            const std::string& stem,
                                            const std::vector<Transcript>& run) {
    std::filesystem::create_directories(dir);
    std::vector<std::filesystem::path> paths;
    for (std::size_t i = 0; i < run.size(); ++i) {
        auto name = run.size() == 1 ? stem + ".transcript"
                                    : stem + "." + std::to_string(i + 1) + ".transcript";
        paths.push_back(dir / name);
        write_transcript(paths.back(), run[i]);
    }
    return paths;
}

}  // namespace millipost::props
