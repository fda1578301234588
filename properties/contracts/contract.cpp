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

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& ch : out)
        if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
    return out;
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
        auto count = [&](const std::string& n) -> std::size_t {
            if (n.empty() || n.size() > 6 || n.find_first_not_of("0123456789") != n.npos)
                throw fail("expected a small number, not " + n);
            return std::stoul(n);
        };
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
        } else if (w[0] == "dotted" && (w.size() == 3 || w.size() == 4)) {
            c.dotted[w[1]].push_back({w[2], w.size() == 4 ? w[3] : std::string()});
        } else if (w[0] == "capability" && w.size() == 4 && w[3] == "none") {
            c.capability[w[1]] = {w[2], false, 0, 0};
        } else if (w[0] == "capability" && w.size() == 5) {
            c.capability[w[1]] = {w[2], true, count(w[3]), count(w[4])};
        } else if (w[0] == "requires" && w.size() == 3) {
            c.requirements.emplace_back(w[1], upper(w[2]));
        } else if (w[0] == "assume-capable" && w.size() == 1) {
            c.assume_capable = true;
        } else if (w[0] == "pipelining" && w.size() == 2) {
            c.pipelining = upper(w[1]);
        } else if (w[0] == "group-end" && w.size() >= 2) {
            c.group_ends.insert(w.begin() + 1, w.end());
        } else if (w[0] == "chunk" && w.size() == 2) {
            c.chunk_requests.insert(w[1]);
        } else if (w[0] == "prompt" && w.size() == 3) {
            c.prompt_states[w[1]] = w[2];
            c.states.insert(w[1]);
        } else if (w[0] == "tls" && w.size() >= 2) {
            c.tls_states.insert(w[1]);
            c.states.insert(w[1]);
            if (w.size() >= 3) {
                Contract::TlsResume r{w[2], {}};
                for (std::size_t i = 3; i < w.size(); ++i)
                    r.withdrawn.insert(upper(w[i]));
                c.tls_resume[w[1]] = std::move(r);
                c.states.insert(w[2]);
            }
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
    for (const auto& [state, request] : c.prompt_states)
        add_request(request);
    for (const auto& [state, request] : c.body_states)
        c.mode_requests.insert(request);
    for (const auto& [state, request] : c.prompt_states)
        c.mode_requests.insert(request);
    auto need_request = [&](const std::string& r, const char* directive) {
        if (std::find(c.requests.begin(), c.requests.end(), r) == c.requests.end())
            throw ContractError(c.name + ": " + directive + " names " + r +
                                ", which is no request of the state table");
    };
    for (const auto& [request, forms] : c.dotted) {
        need_request(request, "dotted");
        for (const Contract::Dotted& d : forms) {
            need_rule(d.status);
            if (!d.line.empty()) need_rule(d.line);
        }
    }
    for (const auto& [request, cap] : c.capability) {
        need_request(request, "capability");
        need_rule(cap.reply);
    }
    for (const auto& [rule, keyword] : c.requirements)
        need_rule(rule);
    for (const std::string& request : c.chunk_requests)
        need_request(request, "chunk");
    for (const std::string& request : c.group_ends)
        need_request(request, "group-end");
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

bool Contract::is_request(const std::string& rule) const {
    return std::find(requests.begin(), requests.end(), rule) != requests.end();
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
    return c_.grammar.match(rule, bytes, match_cache_) == MatchResult::match;
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
    if (opaque_) return std::nullopt;  // TLS: not judged
    bool client = who == Breach::Who::client;
    while (!bytes.empty() && !opaque_) {
        if (client && chunk_left_ > 0) {
            // Raw chunk bytes (SMTP BDAT) pass uncounted as lines and unbuffered.
            auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_left_, bytes.size()));
            chunk_left_ -= n;
            bytes.remove_prefix(n);
            continue;
        }
        std::size_t lf = bytes.find('\n');
        std::size_t take = lf == std::string_view::npos ? bytes.size() : lf + 1;
        if (side.buf.size() + take > kMaxLineBytes) {
            side.buf.append(bytes.substr(0, std::min(take, kMaxBreachBytes)));
            return breach(who, "line", side.buf, "line longer than the checker's limit");
        }
        side.buf.append(bytes.substr(0, take));
        bytes.remove_prefix(take);
        // Lines end in CRLF; a bare LF stays inside the line (and fails the line's type).
        if (lf == std::string_view::npos || side.buf.size() < 2 ||
            side.buf[side.buf.size() - 2] != '\r')
            continue;
        std::string line = std::move(side.buf);
        side.buf.clear();
        if (Verdict v = (this->*fn)(line)) return v;
    }
    if (opaque_ && !bytes.empty() && !client) {
        // The go-ahead for TLS came with more bytes in the same read: the server cannot have
        // seen the client's handshake yet, so they are plaintext a client would take as part of
        // the TLS stream or, worse, as a reply inside the TLS session.
        return breach(who, "nothing before the TLS handshake", bytes,
                      "plaintext after the reply that starts TLS");
    }
    return std::nullopt;
}

bool Checker::capable(const std::string& keyword) const {
    return (c_.assume_capable && !caps_listed_) || caps_.contains(keyword);
}

Verdict Checker::client_line(std::string_view line) {
    if (in_body_) {
        if (!matches(body_end_, line)) return std::nullopt;  // data, not a request
        in_body_ = false;
        return push(body_end_, line);
    }
    if (in_prompt_) {
        in_prompt_ = false;
        if (!matches(prompt_rule_, line))
            return breach(Breach::Who::client, prompt_rule_, line,
                          "line is not the response the server's challenge asked for");
        return push(prompt_rule_, line);
    }
    if (pending_.empty() && c_.final_states.contains(state_))
        return breach(Breach::Who::client, "nothing", line, "request after the session ended");
    for (const std::string& type : c_.requests)
        if (!c_.mode_requests.contains(type) && matches(type, line))
            return check_client_request(type, line);
    std::string all;
    for (const std::string& type : c_.requests)
        if (!c_.mode_requests.contains(type)) all += (all.empty() ? "" : " / ") + type;
    return breach(Breach::Who::client, all, line, "line matches no request type");
}

Verdict Checker::check_client_request(const std::string& type, std::string_view line) {
    // The greeting (`connect`) is not a request the client sent: speaking before it is not
    // pipelining (and a missing greeting is the server's fault, reported when it is missed).
    bool waiting =
        !pending_.empty() && !(pending_.size() == 1 && pending_.front().type == kConnect);
    // A reply under way when the client speaks is one the client took as complete: if it was
    // not, the server is the one to blame, which the reply's own check will show.
    bool reply_under_way = !reply_.empty() || !server_.buf.empty() || in_dotted_;
    if (!c_.pipelining.empty() && waiting && !reply_under_way && !capable(c_.pipelining))
        return breach(Breach::Who::client, "the reply to " + pending_.front().type, line,
                      "request sent before the previous one was answered, and the server did "
                      "not advertise " +
                          c_.pipelining);
    if (!reply_under_way)
        for (const Pending& p : pending_)
            if (c_.group_ends.contains(p.type))
                return breach(Breach::Who::client, "the reply to " + p.type, line,
                              "request sent before the reply to " + p.type +
                                  ", which must end a pipelined group");
    for (const auto& [rule, keyword] : c_.requirements)
        // A request type as RULE names the line's type; any other rule is matched.
        if (!capable(keyword) && (rule == type || (!c_.is_request(rule) && matches(rule, line))))
            return breach(Breach::Who::client, keyword + " advertised", line,
                          "uses " + keyword + ", which the server did not advertise");
    if (Verdict v = push(type, line)) return v;
    if (c_.chunk_requests.contains(type)) {
        // The byte count is the line's first number (RFC 3030: "BDAT" SP chunk-size).
        std::size_t p = line.find_first_of("0123456789");
        std::size_t e = p == std::string_view::npos ? p : line.find_first_not_of("0123456789", p);
        if (p == std::string_view::npos || e - p > kMaxCountDigits)
            return breach(Breach::Who::client, type, line, "no byte count the checker can hold");
        chunk_left_ = 0;
        for (std::size_t i = p; i < e; ++i)
            chunk_left_ = chunk_left_ * 10 + static_cast<std::uint64_t>(line[i] - '0');
    }
    return std::nullopt;
}

Verdict Checker::push(const std::string& type, std::string_view line) {
    if (pending_.size() >= kMaxPending)
        return breach(Breach::Who::client, type, line, "too many requests in flight");
    pending_.push_back({type, std::string(line.substr(0, kMaxBreachBytes))});
    return std::nullopt;
}

Verdict Checker::server_line(std::string_view line) {
    if (in_dotted_) return server_data_line(line);
    if (reply_.empty() && !pending_.empty()) {
        // A multi-line (dotted) reply is known by its request and its status line.
        if (auto d = c_.dotted.find(pending_.front().type); d != c_.dotted.end())
            for (const Contract::Dotted& form : d->second)
                if (matches(form.status, line)) {
                    dotted_line_ = form.line;
                    return server_reply(std::string(line), true);
                }
    }
    reply_.append(line);
    if (reply_.size() > kMaxReplyBytes)
        return breach(Breach::Who::server, "reply", reply_, "reply longer than the limit");
    if (!c_.continue_rule.empty() && matches(c_.continue_rule, line)) return std::nullopt;
    std::string reply = std::move(reply_);
    reply_.clear();
    return server_reply(reply);
}

Verdict Checker::server_data_line(std::string_view line) {
    if (line == ".\r\n") {
        in_dotted_ = false;
        if (collecting_) {
            caps_ = std::move(caps_new_);
            caps_new_.clear();
            caps_listed_ = true;
            collecting_ = nullptr;
        }
        return std::nullopt;
    }
    // RFC 1939 §3: a line that starts with "." has had one more prepended; judge the line the
    // server meant.
    std::string_view data = line;
    if (data.starts_with('.')) data.remove_prefix(1);
    if (!dotted_line_.empty() && !matches(dotted_line_, data))
        return breach(Breach::Who::server, dotted_line_, line,
                      "line of a multi-line reply does not match its type");
    if (collecting_ && caps_lines_++ >= collecting_->skip_lines)
        return add_capability(data, collecting_->skip_bytes);
    return std::nullopt;
}

Verdict Checker::add_capability(std::string_view line, std::size_t skip_bytes) {
    std::string_view rest = line.substr(std::min(skip_bytes, line.size()));
    std::string_view word = rest.substr(0, rest.find_first_of(" \r\n"));
    if (word.empty()) return std::nullopt;
    if (caps_new_.size() >= kMaxCapabilities)
        return breach(Breach::Who::server, "at most " + std::to_string(kMaxCapabilities), line,
                      "more capabilities than the checker keeps");
    std::string keyword(word.substr(0, kMaxCapabilityBytes));
    for (char& ch : keyword)
        if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
    // RFC 3207 §4.2: "The server MUST NOT return the STARTTLS extension in response to an EHLO
    // command received after a TLS handshake has completed" (RFC 2595 §4: STLS likewise).
    if (withdrawn_ && withdrawn_->contains(keyword))
        return breach(Breach::Who::server, "a capability list without " + keyword, line,
                      keyword + " advertised inside TLS");
    caps_new_.insert(std::move(keyword));
    return std::nullopt;
}

Verdict Checker::server_reply(const std::string& reply, bool dotted) {
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
        if (auto cap = c_.capability.find(request);
            cap != c_.capability.end() && cap->second.reply == t.reply) {
            caps_new_.clear();
            caps_lines_ = 0;
            if (dotted && cap->second.lists) {
                collecting_ = &cap->second;  // the keywords are the data lines to come
            } else {
                if (cap->second.lists) {
                    for (std::size_t start = 0, n = 0; start < reply.size(); ++n) {
                        std::size_t end = reply.find("\r\n", start);
                        end = end == std::string::npos ? reply.size() : end + 2;
                        if (n >= cap->second.skip_lines)
                            if (Verdict v = add_capability(
                                    std::string_view(reply).substr(start, end - start),
                                    cap->second.skip_bytes))
                                return v;
                        start = end;
                    }
                }
                caps_ = std::move(caps_new_);
                caps_new_.clear();
                caps_listed_ = true;
            }
        }
        in_dotted_ = dotted;
        return enter_state(request);
    }
    std::string expected;
    for (const Transition& t : alts)
        expected += (expected.empty() ? "" : " / ") + t.reply;
    return breach(Breach::Who::server, expected, reply,
                  "reply to " + request + " matches none of the allowed replies");
}

Verdict Checker::enter_state(const std::string& request) {
    if (auto body = c_.body_states.find(state_); body != c_.body_states.end()) {
        if (!pending_.empty())
            return breach(Breach::Who::client, "nothing before the reply to " + request,
                          pending_.front().bytes, "request sent before data could start");
        in_body_ = true;
        body_end_ = body->second;
    }
    if (auto prompt = c_.prompt_states.find(state_); prompt != c_.prompt_states.end()) {
        if (!pending_.empty())
            return breach(Breach::Who::client, "nothing before the reply to " + request,
                          pending_.front().bytes, "request sent before the challenge was answered");
        in_prompt_ = true;
        prompt_rule_ = prompt->second;
    }
    if (c_.tls_states.contains(state_)) {
        // RFC 3207 §4.2 / RFC 2595 §4: nothing may follow the request for TLS before the
        // handshake; a plaintext command sent ahead would be taken as sent inside TLS (the
        // "STARTTLS command injection" class).
        if (!pending_.empty() || !client_.buf.empty() || chunk_left_ > 0)
            return breach(Breach::Who::client, "nothing after " + request,
                          pending_.empty() ? client_.buf : pending_.front().bytes,
                          "plaintext sent after the request for TLS, before its reply");
        opaque_ = true;
        tls_state_ = state_;
        caps_.clear();  // RFC 3207 §4.2: what was advertised before TLS no longer holds
        caps_listed_ = false;
    }
    return std::nullopt;
}

bool Checker::resume_tls() {
    if (imap_ || !opaque_ || broken_) return false;
    auto r = c_.tls_resume.find(tls_state_);
    if (r == c_.tls_resume.end()) return false;
    // The handshake is done: the bytes fed from now on are the session inside TLS, which
    // starts over in RESUME (SMTP: before EHLO, RFC 3207 §4.2; POP3: AUTHORIZATION).
    opaque_ = false;
    state_ = r->second.state;
    withdrawn_ = &r->second.withdrawn;
    client_ = Side{};
    server_ = Side{};
    return true;
}

Verdict Checker::on_close() {
    if (imap_) return imap_->on_close();
    if (broken_) return broken_;
    if (opaque_) return std::nullopt;  // TLS: not judged
    if (!client_.buf.empty())
        return breach(Breach::Who::client, "CRLF", client_.buf, "closed inside a line");
    if (chunk_left_ > 0)
        return breach(Breach::Who::client, "the rest of the chunk", "",
                      "closed with " + std::to_string(chunk_left_) + " chunk bytes still due");
    if (!server_.buf.empty() || !reply_.empty())
        return breach(Breach::Who::server, "CRLF", server_.buf.empty() ? reply_ : server_.buf,
                      "closed inside a reply");
    if (in_dotted_) return breach(Breach::Who::server, ".", "", "closed inside a multi-line reply");
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
