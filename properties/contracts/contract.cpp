// contracts/contract.cpp: contract file loading and the generic streaming checker.
#include "contracts/contract.h"

#include "contracts/imap_framing.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace millipost::contracts {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

std::vector<std::string> words(std::string_view s) {
    std::vector<std::string> out;
    std::istringstream in{std::string(s)};
    for (std::string w; in >> w;)
        out.push_back(w);
    return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (;;) {
        std::size_t p = s.find(sep);
        out.push_back(trim(s.substr(0, p)));
        if (p == std::string_view::npos) return out;
        s.remove_prefix(p + 1);
    }
}

bool is_name(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    return true;
}

// Printable form of wire bytes for reports: CR, LF and other controls escaped.
std::string printable(std::string_view s) {
    std::string out;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '\r') {
            out += "\\r";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\\') {
            out += "\\\\";
        } else if (c < 0x20 || c >= 0x7f) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += ch;
        }
    }
    return out;
}

}  // namespace

Contract Contract::parse(std::string_view text, std::string name) {
    Contract c;
    c.name = std::move(name);
    enum class Section { none, rules, states, engine } section = Section::none;
    std::string abnf;
    std::vector<std::string> rows;  // state rows with their continuation lines joined
    std::size_t lineno = 0;
    auto fail = [&](const std::string& why) -> ContractError {
        return ContractError(c.name + ":" + std::to_string(lineno) + ": " + why);
    };
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t nl = text.find('\n', i);
        std::string_view raw = text.substr(i, nl == std::string_view::npos ? nl : nl - i);
        i = nl == std::string_view::npos ? text.size() : nl + 1;
        ++lineno;
        if (raw.starts_with("%")) {
            std::string_view s = trim(raw);
            if (s == "%rules") {
                section = Section::rules;
            } else if (s == "%states") {
                section = Section::states;
            } else if (s == "%engine") {
                section = Section::engine;
            } else {
                throw fail("unknown section " + std::string(s));
            }
            continue;
        }
        if (section == Section::rules) {
            abnf.append(raw);
            abnf.push_back('\n');
            continue;
        }
        std::string_view line = raw.substr(0, raw.find('#'));  // '#' comments outside ABNF
        if (trim(line).empty()) continue;
        if (section == Section::none) throw fail("text before the first section");
        if (section == Section::states) {
            bool continuation = line[0] == ' ' || line[0] == '\t';
            if (continuation) {
                if (rows.empty() || !trim(line).starts_with("|"))
                    throw fail("continuation line must start with '|' after a state row");
                rows.back() += ' ';
                rows.back() += trim(line);
            } else {
                rows.emplace_back(trim(line));
            }
            continue;
        }
        std::vector<std::string> w = words(line);
        if (!c.framing.empty() && w[0] != "final") {
            // After `framing NAME` the directives are that framing's own (checked below).
            c.framing_directives.push_back(std::move(w));
        } else if (w[0] == "framing" && w.size() == 2) {
            if (w[1] != "imap") throw fail("unknown framing: " + w[1]);
            c.framing = w[1];
        } else if (w[0] == "continue" && w.size() == 2) {
            c.continue_rule = w[1];
        } else if (w[0] == "body" && w.size() == 3) {
            c.body_states[w[1]] = w[2];
            c.states.insert(w[1]);
        } else if (w[0] == "final" && w.size() == 2) {
            c.final_states.insert(w[1]);
            c.states.insert(w[1]);
        } else {
            throw fail("unknown engine directive: " + std::string(trim(line)));
        }
    }

    c.grammar.add(abnf);
    c.grammar.resolve();
    auto need_rule = [&](const std::string& r) {
        if (!c.grammar.has_rule(r)) throw ContractError(c.name + ": no ABNF rule " + r);
    };
    auto add_request = [&](const std::string& r) {
        if (r == kAny || r == kConnect || r == kUnsolicited) return;
        need_rule(r);
        if (std::find(c.requests.begin(), c.requests.end(), r) == c.requests.end())
            c.requests.push_back(r);
    };
    for (const std::string& row : rows) {
        // STATE: request => reply & NEXT | reply & NEXT ...
        std::size_t colon = row.find(':'), arrow = row.find("=>");
        if (colon == std::string::npos || arrow == std::string::npos || arrow < colon)
            throw ContractError(c.name + ": state row needs 'STATE: request => ...': " + row);
        std::string state(trim(std::string_view(row).substr(0, colon)));
        std::string request(trim(std::string_view(row).substr(colon + 1, arrow - colon - 1)));
        if (!(state == kAny || is_name(state)) || !(request == kAny || is_name(request)))
            throw ContractError(c.name + ": bad state or request name in: " + row);
        if (state != kAny) {
            c.states.insert(state);
            if (c.initial.empty()) c.initial = state;
        }
        add_request(request);
        auto& alts = c.rows[state][request];
        for (std::string_view alt : split(std::string_view(row).substr(arrow + 2), '|')) {
            std::vector<std::string_view> parts = split(alt, '&');
            if (parts.size() != 2 || !is_name(parts[0]) ||
                !(parts[1] == kSame || is_name(parts[1])))
                throw ContractError(c.name + ": alternative must be 'reply & NEXT': " + row);
            need_rule(std::string(parts[0]));
            if (parts[1] != kSame) c.states.insert(std::string(parts[1]));
            alts.push_back({std::string(parts[0]), std::string(parts[1])});
        }
    }
    if (c.initial.empty()) throw ContractError(c.name + ": no state rows");
    if (!c.continue_rule.empty()) need_rule(c.continue_rule);
    for (const auto& [state, request] : c.body_states)
        add_request(request);
    if (c.framing == "imap") ImapFraming::validate(c);
    return c;
}

Contract Contract::load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ContractError("cannot read contract " + path);
    std::ostringstream text;
    text << in.rdbuf();
    return parse(text.str(), path);
}

std::vector<Transition> Contract::alternatives(const std::string& state,
                                               const std::string& request) const {
    std::vector<Transition> out;
    if (final_states.contains(state)) return out;  // nothing is answered after the end
    auto add = [&](std::string_view s, std::string_view r) {
        auto st = rows.find(std::string(s));
        if (st == rows.end()) return;
        auto rq = st->second.find(std::string(r));
        if (rq == st->second.end()) return;
        out.insert(out.end(), rq->second.begin(), rq->second.end());
    };
    add(state, request);
    add(kAny, request);
    bool pseudo = request == kConnect || request == kUnsolicited;
    if (pseudo) return out;
    if (out.empty()) add(state, kAny);  // this state's answer to requests it does not list
    add(kAny, kAny);                    // answers any request may get
    return out;
}

std::string to_string(const Breach& b) {
    return std::string(b.who == Breach::Who::client ? "client" : "server") +
           " broke the contract in state " + b.state + ": " + b.reason + " (expected " + b.rule +
           "): \"" + printable(b.bytes) + "\"";
}

Checker::Checker(const Contract& contract) : c_(contract), state_(contract.initial) {
    pending_.push_back({std::string(kConnect), {}});
    if (contract.framing == "imap") imap_ = std::make_unique<ImapFraming>(contract);
}

Checker::~Checker() = default;
Checker::Checker(Checker&&) noexcept = default;

const std::string& Checker::state() const {
    return imap_ ? imap_->state() : state_;
}

std::size_t Checker::pending() const {
    return imap_ ? imap_->pending() : pending_.size();
}

Verdict Checker::breach(Breach::Who who, std::string rule, std::string_view bytes,
                        std::string reason) {
    broken_ = Breach{who, std::move(rule), state_, std::string(bytes.substr(0, kMaxBreachBytes)),
                     std::move(reason)};
    return broken_;
}

bool Checker::matches(const std::string& rule, std::string_view bytes) const {
    // too_complex counts as no match: the checker then reports a breach rather than guess.
    return c_.grammar.match(rule, bytes) == MatchResult::match;
}

Verdict Checker::on_client(std::string_view bytes) {
    if (imap_) return imap_->on_client(bytes);
    return feed(client_, bytes, Breach::Who::client, &Checker::client_line);
}

Verdict Checker::on_server(std::string_view bytes) {
    if (imap_) return imap_->on_server(bytes);
    return feed(server_, bytes, Breach::Who::server, &Checker::server_line);
}

Verdict Checker::feed(Side& side, std::string_view bytes, Breach::Who who, LineFn fn) {
    if (broken_) return broken_;
    side.buf.append(bytes);
    std::size_t start = 0;
    std::size_t from = side.scanned > 0 ? side.scanned - 1 : 0;  // a CR may end the last chunk
    for (std::size_t crlf;
         (crlf = side.buf.find("\r\n", std::max(from, start))) != std::string::npos;) {
        std::string_view line = std::string_view(side.buf).substr(start, crlf + 2 - start);
        if (line.size() > kMaxLineBytes)
            return breach(who, "line", line, "line longer than the checker's limit");
        if (Verdict v = (this->*fn)(line)) return v;
        start = crlf + 2;
    }
    side.buf.erase(0, start);
    side.scanned = side.buf.size();
    if (side.buf.size() > kMaxLineBytes)
        return breach(who, "line", side.buf, "line longer than the checker's limit");
    return std::nullopt;
}

Verdict Checker::client_line(std::string_view line) {
    if (in_body_) {
        if (!matches(body_end_, line)) return std::nullopt;  // data, not a request
        in_body_ = false;
        return push(body_end_, line);
    }
    if (pending_.empty() && c_.final_states.contains(state_))
        return breach(Breach::Who::client, "nothing", line, "request after the session ended");
    for (const std::string& type : c_.requests)
        if (matches(type, line)) return push(type, line);
    std::string all;
    for (const std::string& type : c_.requests)
        all += (all.empty() ? "" : " / ") + type;
    return breach(Breach::Who::client, all, line, "line matches no request type");
}

Verdict Checker::push(const std::string& type, std::string_view line) {
    if (pending_.size() >= kMaxPending)
        return breach(Breach::Who::client, type, line, "too many requests in flight");
    pending_.push_back({type, std::string(line.substr(0, kMaxBreachBytes))});
    return std::nullopt;
}

Verdict Checker::server_line(std::string_view line) {
    reply_.append(line);
    if (reply_.size() > kMaxReplyBytes)
        return breach(Breach::Who::server, "reply", reply_, "reply longer than the limit");
    if (!c_.continue_rule.empty() && matches(c_.continue_rule, line)) return std::nullopt;
    std::string reply = std::move(reply_);
    reply_.clear();
    return server_reply(reply);
}

Verdict Checker::server_reply(const std::string& reply) {
    bool solicited = !pending_.empty();
    std::string request = solicited ? pending_.front().type : std::string(kUnsolicited);
    std::vector<Transition> alts = c_.alternatives(state_, request);
    if (alts.empty()) {
        if (!solicited)
            return breach(Breach::Who::server, "no reply", reply, "reply where none is expected");
        return breach(Breach::Who::client, "a request allowed in " + state_, pending_.front().bytes,
                      "request " + request + " has no place here");
    }
    for (const Transition& t : alts) {
        if (!matches(t.reply, reply)) continue;
        if (solicited) pending_.pop_front();
        if (t.next != kSame) state_ = t.next;
        if (auto body = c_.body_states.find(state_); body != c_.body_states.end()) {
            if (!pending_.empty())
                return breach(Breach::Who::client, "nothing before the reply to " + request,
                              pending_.front().bytes, "request sent before data could start");
            in_body_ = true;
            body_end_ = body->second;
        }
        return std::nullopt;
    }
    std::string expected;
    for (const Transition& t : alts)
        expected += (expected.empty() ? "" : " / ") + t.reply;
    return breach(Breach::Who::server, expected, reply,
                  "reply to " + request + " matches none of the allowed replies");
}

Verdict Checker::on_close() {
    if (imap_) return imap_->on_close();
    if (broken_) return broken_;
    if (!client_.buf.empty())
        return breach(Breach::Who::client, "CRLF", client_.buf, "closed inside a line");
    if (!server_.buf.empty() || !reply_.empty())
        return breach(Breach::Who::server, "CRLF", server_.buf.empty() ? reply_ : server_.buf,
                      "closed inside a reply");
    if (in_body_) return breach(Breach::Who::client, body_end_, "", "closed inside the data");
    if (!pending_.empty() && !c_.final_states.contains(state_)) {
        std::vector<Transition> alts = c_.alternatives(state_, pending_.front().type);
        std::string expected;
        for (const Transition& t : alts)
            expected += (expected.empty() ? "" : " / ") + t.reply;
        return breach(Breach::Who::server, expected, pending_.front().bytes,
                      "no reply to " + pending_.front().type);
    }
    return std::nullopt;
}

}  // namespace millipost::contracts
