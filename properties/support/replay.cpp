// support/replay.cpp: replaying recorded runs against the reference server (see replay.h).
#include "support/replay.h"

#include "support/test_service.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <tuple>

namespace millipost::props {

std::string reply_skeleton(std::string_view line) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
        line.remove_suffix(1);
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (line.size() >= 4 && digit(line[0]) && digit(line[1]) && digit(line[2]) &&
        (line[3] == ' ' || line[3] == '-')) {
        std::string out(line.substr(0, 4));
        // An enhanced status code (RFC 3463) right after: class.subject.detail.
        auto rest = line.substr(4);
        auto end = rest.find(' ');
        auto code = rest.substr(0, end);
        if (code.size() >= 5 && digit(code[0]) && code[1] == '.' &&
            std::all_of(code.begin(), code.end(), [&](char c) { return digit(c) || c == '.'; }))
            out += std::string(code);
        return out;
    }
    for (std::string_view status : {"+OK", "-ERR"}) {
        if (line.substr(0, status.size()) != status) continue;
        if (line.size() > status.size() && line[status.size()] != ' ') break;
        std::string out(status);
        auto rest = line.substr(std::min(line.size(), status.size() + 1));
        if (!rest.empty() && rest[0] == '[')
            out += " " + std::string(rest.substr(0, rest.find(']') + 1));
        return out;
    }
    // The end of a POP3 multi-line response: its place shows how many lines came before.
    if (line == ".") return ".";
    return "~";
}

namespace {

// "login=password; login=password"
std::vector<std::pair<std::string, std::string>> parse_users(const std::string& s) {
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t pos = 0;
    while (pos < s.size()) {
        auto semi = s.find("; ", pos);
        auto item = s.substr(pos, semi == std::string::npos ? s.npos : semi - pos);
        pos = semi == std::string::npos ? s.size() : semi + 2;
        auto eq = item.find('=');
        if (eq == std::string::npos) throw std::runtime_error("bad users header item: " + item);
        out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    }
    return out;
}

// The lines of a record; a last piece without LF is a partial line.
std::vector<std::string> lines_of(const std::string& bytes) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        auto lf = bytes.find('\n', pos);
        auto end = lf == std::string::npos ? bytes.size() : lf + 1;
        out.push_back(bytes.substr(pos, end - pos));
        pos = end;
    }
    return out;
}

std::vector<std::uint64_t> parse_order(const Transcript& t) {
    std::vector<std::uint64_t> out;
    auto s = t.header("order").value_or("");
    std::size_t pos = 0;
    while (pos < s.size()) {
        auto sp = s.find(' ', pos);
        out.push_back(std::stoull(s.substr(pos, sp == std::string::npos ? s.npos : sp - pos)));
        pos = sp == std::string::npos ? s.size() : sp + 1;
    }
    if (out.size() != t.records.size())
        throw std::runtime_error("order header does not number every record");
    return out;
}

constexpr std::size_t kClose = static_cast<std::size_t>(-1);

struct Conn {
    const Transcript* t = nullptr;
    std::optional<WireClient> client;
    std::shared_ptr<Recorder> rec;
    std::shared_ptr<ContractTap> checker;
    std::size_t server_lines = 0;
};

}  // namespace

ReplayOutcome replay_run(const std::vector<Transcript>& run) {
    ReplayOutcome out;
    if (run.empty()) {
        out.failure = "empty run";
        return out;
    }
    auto& first = run.front();
    std::size_t max_size = 0;
    if (auto m = first.header("max-message-size")) max_size = std::stoull(*m);
    TestService svc([max_size](config::Config& c) {
        if (max_size) c.max_message_size = max_size;
    });
    if (auto users = first.header("users"))
        for (auto& [login, password] : parse_users(*users))
            svc.add_user(login, password);

    std::vector<Conn> conns(run.size());
    std::vector<std::tuple<std::uint64_t, std::size_t, std::size_t>> events;
    for (std::size_t i = 0; i < run.size(); ++i) {
        conns[i].t = &run[i];
        auto order = parse_order(run[i]);
        for (std::size_t r = 0; r < order.size(); ++r)
            events.emplace_back(order[r], i, r);
        // The close, where the run had it (a dropped session frees the maildrop lock before
        // the next login); kClose marks it.
        if (auto at = run[i].header("closed-at"); at && !run[i].open())
            events.emplace_back(std::stoull(*at), i, kClose);
    }
    std::sort(events.begin(), events.end());

    auto port_of = [&svc](const std::string& contract) -> std::uint16_t {
        if (contract == "smtp") return svc.smtp_port();
        if (contract == "pop3") return svc.pop3_port();
        if (contract == "imap") return svc.imap_port();
        throw std::runtime_error("no service for contract " + contract);
    };

    // The new recordings numbered across connections too, so that a blessed run keeps its
    // interleaving.
    auto clock = std::make_shared<std::uint64_t>(0);
    try {
        for (auto& [order, ci, ri] : events) {
            auto& c = conns[ci];
            auto contract = c.t->header("contract").value_or("");
            if (ri == kClose) {
                if (c.client) c.client->close();
                continue;
            }
            if (!c.client) {
                c.rec = std::make_shared<Recorder>(clock);
                std::vector<std::shared_ptr<WireTap>> taps{c.rec};
                if (auto* k = load_contract(contract)) {
                    c.checker = std::make_shared<ContractTap>(*k);
                    taps.push_back(c.checker);
                }
                c.client.emplace(port_of(contract), std::make_shared<TeeTap>(taps));
            }
            auto& rec = c.t->records[ri];
            if (rec.dir == 'C') {
                c.client->send(rec.bytes);
                continue;
            }
            for (auto& want : lines_of(rec.bytes)) {
                if (want.back() != '\n') continue;  // a cut line: nothing to wait for
                ++c.server_lines;
                auto got = c.client->read_line();
                if (reply_skeleton(got) != reply_skeleton(want)) {
                    out.failure = "connection " + std::to_string(ci + 1) + " (" + contract +
                                  "), server line " + std::to_string(c.server_lines) +
                                  ": recorded \"" + escape_bytes(want) + "\" (" +
                                  reply_skeleton(want) + "), now \"" + escape_bytes(got) + "\" (" +
                                  reply_skeleton(got) + ")";
                    break;
                }
            }
            if (!out.failure.empty()) break;
        }
    } catch (const std::exception& e) {
        out.failure = std::string("replay broke off: ") + e.what();
    }
    for (auto& c : conns) {
        // A connection recorded to its end ends here too, so the contract judges the close.
        if (c.client && c.client->is_open() && !c.t->open()) c.client->close();
        if (out.failure.empty() && c.checker && c.checker->breach() &&
            c.checker->breach()->who == contracts::Breach::Who::server)
            out.failure = c.t->header("contract").value_or("") +
                          " contract: " + contracts::to_string(*c.checker->breach());
    }
    for (auto& c : conns) {
        Transcript t = *c.t;
        t.records.clear();
        std::string order;
        if (c.rec) {
            t.records = c.rec->records();
            for (auto n : c.rec->order())
                order += (order.empty() ? "" : " ") + std::to_string(n);
        }
        t.set("order", order);
        if (c.rec && c.rec->is_closed()) t.set("closed-at", std::to_string(c.rec->closed_at()));
        out.fresh.push_back(std::move(t));
    }
    return out;
}

std::map<std::string, std::vector<std::filesystem::path>> regression_runs(
    const std::filesystem::path& dir) {
    std::map<std::string, std::vector<std::pair<int, std::filesystem::path>>> groups;
    std::error_code ec;
    for (auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        auto name = entry.path().filename().string();
        const std::string ext = ".transcript";
        if (name.size() <= ext.size() || name.compare(name.size() - ext.size(), ext.size(), ext))
            continue;
        auto stem = name.substr(0, name.size() - ext.size());
        int n = 0;
        auto dot = stem.rfind('.');
        if (dot != std::string::npos && dot + 1 < stem.size() &&
            std::all_of(stem.begin() + static_cast<std::ptrdiff_t>(dot) + 1, stem.end(),
                        [](unsigned char c) { return std::isdigit(c); })) {
            n = std::stoi(stem.substr(dot + 1));
            stem = stem.substr(0, dot);
        }
        groups[stem].emplace_back(n, entry.path());
    }
    std::map<std::string, std::vector<std::filesystem::path>> out;
    for (auto& [stem, files] : groups) {
        std::sort(files.begin(), files.end());
        for (auto& [n, p] : files)
            out[stem].push_back(p);
    }
    return out;
}

}  // namespace millipost::props
