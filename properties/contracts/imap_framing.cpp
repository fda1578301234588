// contracts/imap_framing.cpp: the IMAP framing (tags, untagged events, literals, continuation
// requests, AUTHENTICATE and IDLE, capability gates). See imap_framing.h and README.md ("IMAP").
#include "contracts/imap_framing.h"

#include <algorithm>

namespace millipost::contracts {

namespace {

std::string upper(std::string_view s) {
    std::string r(s);
    for (char& c : r)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return r;
}

std::vector<std::string> split_words(std::string_view s) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < s.size();) {
        std::size_t sp = s.find(' ', i);
        if (sp == std::string_view::npos) sp = s.size();
        if (sp > i) out.emplace_back(s.substr(i, sp - i));
        i = sp + 1;
    }
    return out;
}

// The tag of a tagged line: the bytes before the first SP (RFC 9051 §9: tag SP ...).
std::string_view tag_of(std::string_view skel) {
    return skel.substr(0, std::min(skel.find(' '), skel.find('\r')));
}

// A literal announced at the end of a physical line: `{n}`, `{n+}` (RFC 7888), `~{n}` (RFC 3516).
struct Marker {
    bool found = false;
    bool overflow = false;
    bool plus = false;
    bool literal8 = false;
    std::size_t n = 0;
};

Marker literal_marker(std::string_view line) {
    Marker m;
    if (!line.ends_with("}\r\n")) return m;
    std::size_t i = line.size() - 3;  // index of '}'
    if (i > 0 && line[i - 1] == '+') {
        m.plus = true;
        --i;
    }
    std::size_t end = i;
    while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
        --i;
    if (i == end || i == 0 || line[i - 1] != '{') return m;
    if (end - i > 19) {
        m.found = m.overflow = true;
        return m;
    }
    for (std::size_t k = i; k < end; ++k)
        m.n = m.n * 10 + static_cast<std::size_t>(line[k] - '0');
    m.found = true;
    m.overflow = m.n > kMaxImapLiteralBytes;
    m.literal8 = i >= 2 && line[i - 2] == '~';
    return m;
}

// The message number of `* n ...` (RFC 9051 §7.4, §7.5); 0 if there is none.
std::size_t message_number(std::string_view skel) {
    std::size_t n = 0;
    for (std::size_t i = 2; i < skel.size() && skel[i] >= '0' && skel[i] <= '9'; ++i)
        n = std::min<std::size_t>(n * 10 + static_cast<std::size_t>(skel[i] - '0'), 1u << 31);
    return n;
}

// How many UIDs `* VANISHED uid-set` names (RFC 7162 §3.2.10); ranges may run backwards.
std::size_t vanished_count(std::string_view skel) {
    std::size_t count = 0, a = 0, b = 0;
    bool range = false;
    auto flush = [&] {
        count += range ? (a > b ? a - b : b - a) + 1 : 1;
        a = b = 0;
        range = false;
    };
    skel = skel.substr(skel.rfind(' ') + 1);
    for (char c : skel) {
        if (c >= '0' && c <= '9') {
            std::size_t& x = range ? b : a;
            x = std::min<std::size_t>(x * 10 + static_cast<std::size_t>(c - '0'), 1u << 31);
        } else if (c == ':') {
            range = true;
        } else if (c == ',' || c == '\r') {
            flush();
        }
    }
    return count;
}

// Two lists of transitions walked as one, in order, without copying the first.
struct TwoLists {
    const std::vector<Transition>& a;
    const std::vector<Transition>& b;
    struct It {
        const TwoLists* l;
        std::size_t i;
        const Transition& operator*() const {
            return i < l->a.size() ? l->a[i] : l->b[i - l->a.size()];
        }
        It& operator++() {
            ++i;
            return *this;
        }
        bool operator!=(const It& o) const { return i != o.i; }
    };
    It begin() const { return {this, 0}; }
    It end() const { return {this, a.size() + b.size()}; }
};

}  // namespace

void ImapFraming::validate(const Contract& c) {
    auto fail = [&](const std::vector<std::string>& w, const std::string& why) {
        std::string d;
        for (const std::string& x : w)
            d += (d.empty() ? "" : " ") + x;
        throw ContractError(c.name + ": imap framing directive '" + d + "': " + why);
    };
    auto rule = [&](const std::vector<std::string>& w, const std::string& r) {
        if (!c.grammar.has_rule(r)) fail(w, "no ABNF rule " + r);
    };
    auto request = [&](const std::vector<std::string>& w, const std::string& r) {
        if (std::find(c.requests.begin(), c.requests.end(), r) == c.requests.end())
            fail(w, r + " is not a request of the state table");
    };
    for (const std::vector<std::string>& w : c.framing_directives) {
        const std::string& d = w[0];
        if (d == "untagged" && w.size() >= 3) {
            request(w, w[1]);
            for (std::size_t i = 2; i < w.size(); ++i)
                rule(w, w[i]);
        } else if (d == "not-during" && w.size() >= 3) {
            rule(w, w[1]);
            for (std::size_t i = 2; i < w.size(); ++i)
                request(w, w[i]);
        } else if (d == "message-numbers" && w.size() >= 5) {
            for (std::size_t i = 1; i < 5; ++i)
                rule(w, w[i]);
            for (std::size_t i = 5; i < w.size(); ++i)
                request(w, w[i]);
        } else if (d == "lifts" && w.size() >= 4) {
            request(w, w[1]);
            for (std::size_t i = 2; i < w.size(); ++i)
                rule(w, w[i]);
        } else if (d == "in-command" && w.size() >= 2) {
            for (std::size_t i = 1; i < w.size(); ++i)
                rule(w, w[i]);
        } else if ((d == "requires" || d == "enabled") && w.size() >= 3) {
            for (std::size_t i = 2; i < w.size(); ++i)
                rule(w, w[i]);
        } else if (d == "forbids" && w.size() >= 3) {
            for (std::size_t i = 2; i < w.size(); ++i)
                rule(w, w[i]);
        } else if (d == "tls" && w.size() >= 2) {
            if (!c.states.contains(w[1])) fail(w, w[1] + " is not a state of the table");
        } else if ((d == "continuation" || d == "literal-refused") && w.size() == 2) {
            rule(w, w[1]);
        } else if ((d == "authenticate" || d == "idle" || d == "bye") && w.size() == 3) {
            request(w, d == "bye" ? w[2] : w[1]);
            rule(w, d == "bye" ? w[1] : w[2]);
        } else {
            fail(w, "unknown directive or wrong number of words");
        }
    }
    ImapFraming probe(c);
    if (probe.continuation_.empty())
        throw ContractError(c.name + ": imap framing needs continuation");
    if (probe.refused_.empty())
        throw ContractError(c.name + ": imap framing needs literal-refused");
}

ImapFraming::ImapFraming(const Contract& contract) : c_(contract), state_(contract.initial) {
    for (const std::vector<std::string>& w : c_.framing_directives) {
        const std::string& d = w[0];
        if (d == "untagged") {
            auto& rules = untagged_[w[1]];
            rules.insert(rules.end(), w.begin() + 2, w.end());
        } else if (d == "not-during") {
            not_during_[w[1]].insert(w.begin() + 2, w.end());
        } else if (d == "message-numbers") {
            exists_rule_ = w[1];
            expunge_rule_ = w[2];
            fetch_rule_ = w[3];
            vanished_rule_ = w[4];
            select_requests_.insert(w.begin() + 5, w.end());
        } else if (d == "lifts") {
            lifts_[w[1]] = {w[2], std::set<std::string>(w.begin() + 3, w.end())};
        } else if (d == "in-command") {
            in_command_.insert(w.begin() + 1, w.end());
        } else if (d == "requires" || d == "enabled") {
            Gate g;
            for (std::string_view cap : split_words(std::string_view(w[1]))) {
                // CAP1|CAP2: any one of them opens the gate.
                for (std::size_t i = 0; i <= cap.size();) {
                    std::size_t bar = std::min(cap.find('|', i), cap.size());
                    g.caps.push_back(upper(cap.substr(i, bar - i)));
                    i = bar + 1;
                }
            }
            g.enable = d == "enabled";
            for (std::size_t i = 2; i < w.size(); ++i)
                gates_[w[i]].push_back(g);
        } else if (d == "forbids") {
            for (std::size_t i = 2; i < w.size(); ++i)
                forbids_[w[i]].push_back(upper(w[1]));
        } else if (d == "tls") {
            tls_state_ = w[1];
            for (std::size_t i = 2; i < w.size(); ++i)
                tls_withdrawn_.insert(upper(w[i]));
        } else if (d == "continuation") {
            continuation_ = w[1];
        } else if (d == "literal-refused") {
            refused_ = w[1];
        } else if (d == "authenticate") {
            auth_requests_[w[1]] = w[2];
        } else if (d == "idle") {
            idle_request_ = w[1];
            done_ = w[2];
        } else if (d == "bye") {
            bye_ = w[1];
            bye_request_ = w[2];
        }
    }
}

Verdict ImapFraming::breach(Breach::Who who, std::string rule, std::string_view bytes,
                            std::string reason) {
    broken_ = Breach{who, std::move(rule), state_, std::string(bytes.substr(0, kMaxBreachBytes)),
                     std::move(reason)};
    return broken_;
}

bool ImapFraming::matches(const std::string& rule, std::string_view bytes) const {
    return c_.grammar.match(rule, bytes, match_cache_) == MatchResult::match;
}

bool ImapFraming::advertised(const std::string& cap) const {
    // "THREAD=" names a family: any THREAD=... atom opens it.
    if (cap.ends_with('=')) {
        auto it = caps_.lower_bound(cap);
        return it != caps_.end() && it->starts_with(cap);
    }
    return caps_.contains(cap);
}

std::string ImapFraming::closed_gate(const std::string& rule) const {
    auto it = gates_.find(rule);
    if (it == gates_.end()) return {};
    for (const Gate& g : it->second) {
        bool open = false;
        for (const std::string& cap : g.caps)
            open = open || (g.enable ? enabled_.contains(cap) : advertised(cap));
        if (open) continue;
        std::string names;
        for (const std::string& cap : g.caps)
            names += (names.empty() ? "" : " or ") + cap;
        return (g.enable ? "ENABLE " : "capability ") + names;
    }
    return {};
}

std::string ImapFraming::forbidden_by(const std::string& rule) const {
    auto it = forbids_.find(rule);
    if (it == forbids_.end()) return {};
    for (const std::string& cap : it->second)
        if (advertised(cap)) return cap;
    return {};
}

Verdict ImapFraming::start_tls() {
    // RFC 2595 §3.1 (RFC 9051 §6.2.1): "A TLS negotiation begins immediately after the CRLF at
    // the end of the tagged OK response"; the client "MUST NOT issue further commands until a
    // server response is seen and the TLS negotiation is complete". A command sent after
    // STARTTLS, or a part of one, would be taken as sent inside TLS (the "STARTTLS command
    // injection" class): the client's breach.
    if (!flight_.empty())
        return breach(Breach::Who::client, "nothing after STARTTLS", flight_.begin()->second.bytes,
                      "command sent after the request for TLS, before its completion");
    if (!client_.line.empty() || !client_.skel.empty())
        return breach(Breach::Who::client, "nothing after STARTTLS", client_.skel + client_.line,
                      "plaintext sent after the request for TLS, before its completion");
    tls_ = true;
    tls_switch_ = true;  // feed(): no more server bytes in the same read
    // RFC 9051 §6.2.1: the client discards what it knew of the capabilities.
    caps_.clear();
    return std::nullopt;
}

Verdict ImapFraming::learn(const std::string& skel) {
    // RFC 9051 §7.2.2 (`* CAPABILITY`) and §7.1 (`[CAPABILITY ...]` response code): each list
    // replaces the one known before (capabilities change after login and STARTTLS).
    std::string_view s = skel;
    s = s.substr(0, s.find("\r\n"));
    std::string_view list;
    bool found = false;
    if (s.starts_with("* ") && upper(s.substr(2, 11)) == "CAPABILITY ") {
        list = s.substr(13);
        found = true;
    } else if (std::size_t p = upper(s).find("[CAPABILITY "); p != std::string::npos) {
        list = s.substr(p + 12);
        list = list.substr(0, list.find(']'));
        found = true;
    }
    if (found) {
        caps_.clear();
        for (const std::string& w : split_words(list)) {
            std::string cap = upper(w);
            // Inside TLS a second STARTTLS cannot succeed (the session is not in the state
            // that allows it): advertising it is a false capability (RFC 3207 §4.2 says the
            // same for SMTP's EHLO).
            if (tls_ && tls_withdrawn_.contains(cap))
                return breach(Breach::Who::server, "a capability list without " + cap, skel,
                              cap + " advertised inside TLS");
            if (caps_.size() < kMaxImapCapabilities) caps_.insert(std::move(cap));
        }
    }
    // RFC 5161 §3.2: `* ENABLED` lists the extensions now in force.
    if (s.starts_with("* ") && upper(s.substr(2, 8)) == "ENABLED ")
        for (const std::string& w : split_words(s.substr(10)))
            if (enabled_.size() < kMaxImapCapabilities) enabled_.insert(upper(w));
    return std::nullopt;
}

Verdict ImapFraming::on_client(std::string_view bytes) {
    return feed(client_, bytes, Breach::Who::client);
}

Verdict ImapFraming::on_server(std::string_view bytes) {
    return feed(server_, bytes, Breach::Who::server);
}

Verdict ImapFraming::feed(Side& s, std::string_view bytes, Breach::Who who) {
    if (broken_) return broken_;
    bool client = who == Breach::Who::client;
    while (!bytes.empty()) {
        if (client && s.sync_wait)
            return breach(who, continuation_, bytes,
                          "synchronizing literal sent before the server's continuation request");
        if (s.literal_left > 0) {
            // Literal bytes pass the matcher: counted, and checked for NUL, which only literal8
            // may carry (RFC 9051 §9: CHAR8 = %x01-ff; RFC 3516 literal8).
            std::size_t n = std::min(s.literal_left, bytes.size());
            if (!s.literal8 && bytes.substr(0, n).find('\0') != std::string_view::npos)
                return breach(who, "CHAR8", s.skel, "NUL inside a literal (only literal8 may)");
            s.literal_left -= n;
            bytes.remove_prefix(n);
            continue;
        }
        std::size_t lf = bytes.find('\n');
        std::size_t take = lf == std::string_view::npos ? bytes.size() : lf + 1;
        s.line.append(bytes.substr(0, take));
        bytes.remove_prefix(take);
        if (s.skel.size() + s.line.size() > kMaxLineBytes)
            return breach(who, "line", s.skel + s.line, "line longer than the checker's limit");
        if (lf == std::string_view::npos) break;
        if (!s.line.ends_with("\r\n")) continue;  // a bare LF stays in the line; ABNF refuses it
        s.skel += s.line;
        Marker m = literal_marker(s.line);
        s.line.clear();
        if (m.found) {
            if (m.overflow || s.literal_bytes + m.n > kMaxImapLiteralBytes)
                return breach(who, "literal", s.skel, "literals larger than the checker's limit");
            s.literal_bytes += m.n;
            s.literal_left = m.n;
            s.literal8 = m.literal8;
            if (client && m.plus) {
                s.plus_used = true;
                s.plus_literal = std::max(s.plus_literal, m.n);
            } else if (client) {
                // RFC 9051 §4.3, §7.5: the client sends the literal only after `+`; the server
                // may refuse the command instead with its tagged completion.
                s.sync_wait = true;
                if (!held_.empty()) {
                    // Already refused while its line was arriving: no `+` will come, and the
                    // client does not send the literal.
                    if (!matches(refused_, held_))
                        return breach(Breach::Who::server, refused_, held_,
                                      "completion of a command waiting for `+`");
                    held_.clear();
                    s = Side{};
                    continue;
                }
            }
            continue;
        }
        std::string skel = std::move(s.skel);
        s.skel.clear();
        s.literal_bytes = 0;
        Verdict v = client ? client_unit(skel) : server_unit(skel);
        s.plus_used = false;
        s.plus_literal = 0;
        if (v) return v;
        if (!client && tls_switch_) {
            // The completion that starts TLS came with more bytes in the same read: the server
            // cannot have seen the client's handshake yet, so they are plaintext the client
            // would take as sent inside TLS. What is fed after this call is the decrypted
            // stream, judged as the session goes on.
            tls_switch_ = false;
            if (!bytes.empty())
                return breach(who, "nothing before the TLS handshake", bytes,
                              "plaintext after the completion that starts TLS");
        }
    }
    return std::nullopt;
}

Verdict ImapFraming::client_unit(const std::string& skel) {
    const Breach::Who who = Breach::Who::client;
    switch (mode_) {
        case Mode::authenticate:
            // RFC 9051 §6.2.2: each client line answers one continuation request.
            if (!auth_plus_)
                return breach(who, continuation_, skel,
                              "AUTHENTICATE data sent before the server's continuation request");
            if (!matches(sasl_, skel))
                return breach(who, sasl_, skel, "line is not AUTHENTICATE data");
            auth_plus_ = false;
            return std::nullopt;
        case Mode::idle_wait:
            return breach(who, continuation_, skel,
                          "line sent before the server's continuation request for IDLE");
        case Mode::idling:
            // RFC 2177 §3: while idling the client sends only DONE.
            if (!matches(done_, skel))
                return breach(who, done_, skel, "while idling only DONE may be sent");
            mode_ = Mode::command;
            return std::nullopt;
        case Mode::command:
            break;
    }
    if (c_.final_states.contains(state_))
        return breach(who, "nothing", skel, "command after the session ended");
    std::string tag(tag_of(skel));
    if (flight_.contains(tag))
        return breach(who, "a tag not in flight", skel,
                      "tag " + tag + " reused while a command with it is in flight");
    for (const std::string& type : c_.requests) {
        if (!matches(type, skel)) continue;
        if (std::string gate = closed_gate(type); !gate.empty())
            return breach(who, type, skel, type + " needs " + gate + ", not in force");
        // RFC 9051 §6.2.3, §7.2.2 (LOGINDISABLED): "the client MUST NOT issue the LOGIN
        // command"; `forbids` says which capability rules a command out.
        if (std::string cap = forbidden_by(type); !cap.empty())
            return breach(who, type, skel, type + " while " + cap + " is advertised");
        if (client_.plus_used) {
            // RFC 7888 §3, §4: `{n+}` only with LITERAL+, or LITERAL- up to 4096 bytes.
            bool ok = advertised("LITERAL+") ||
                      (advertised("LITERAL-") && client_.plus_literal <= kLiteralMinusMax);
            if (!ok)
                return breach(who, "literal", skel,
                              "non-synchronizing literal without LITERAL+ / LITERAL- allowing it");
        }
        if (flight_.size() >= kMaxPending)
            return breach(who, type, skel, "too many commands in flight");
        flight_[tag] = Flight{type, skel.substr(0, kMaxBreachBytes)};
        if (auto a = auth_requests_.find(type); a != auth_requests_.end()) {
            sasl_ = a->second;
            mode_ = Mode::authenticate;
            mode_tag_ = tag;
            auth_plus_ = false;
        } else if (type == idle_request_) {
            mode_ = Mode::idle_wait;
            mode_tag_ = tag;
        }
        if (select_requests_.contains(type)) exists_.reset();
        if (!held_.empty()) {
            std::string held = std::move(held_);
            held_.clear();
            return tagged(held);  // the completion that came before the command was whole
        }
        return std::nullopt;
    }
    std::string all;
    for (const std::string& type : c_.requests)
        all += (all.empty() ? "" : " / ") + type;
    return breach(who, all, skel, "line matches no command type");
}

Verdict ImapFraming::server_unit(const std::string& skel) {
    if (skel.starts_with("+")) {
        const Breach::Who who = Breach::Who::server;
        if (!matches(continuation_, skel))
            return breach(who, continuation_, skel, "malformed continuation request");
        if (client_.sync_wait) {
            client_.sync_wait = false;
            return std::nullopt;
        }
        if (mode_ == Mode::authenticate && !auth_plus_) {
            auth_plus_ = true;
            return std::nullopt;
        }
        if (mode_ == Mode::idle_wait) {
            mode_ = Mode::idling;
            return std::nullopt;
        }
        return breach(who, "no continuation request", skel,
                      "continuation request where none is expected");
    }
    if (skel.starts_with("* ")) return untagged(skel);
    return tagged(skel);
}

const std::vector<Transition>& ImapFraming::unsolicited() {
    if (unsol_state_ != state_) {
        unsol_ = c_.alternatives(state_, std::string(kUnsolicited));
        unsol_state_ = state_;
    }
    return unsol_;
}

Verdict ImapFraming::untagged(const std::string& skel) {
    const Breach::Who who = Breach::Who::server;
    if (bye_seen_) return breach(who, "nothing but a completion", skel, "untagged data after BYE");
    if (!greeted_) {
        // RFC 9051 §7.1.1, §7.1.4, §7.1.5: the greeting is OK, PREAUTH or BYE.
        std::vector<Transition> alts = c_.alternatives(state_, std::string(kConnect));
        for (const Transition& t : alts) {
            if (!matches(t.reply, skel)) continue;
            greeted_ = true;
            if (t.next != kSame) state_ = t.next;
            if (t.reply == bye_) bye_seen_ = true;
            return learn(skel);
        }
        std::string expected;
        for (const Transition& t : alts)
            expected += (expected.empty() ? "" : " / ") + t.reply;
        return breach(who, expected, skel, "not a greeting");
    }
    // Allowed now: the state's events, then what the commands in flight may bring.
    const std::vector<Transition>& events = unsolicited();
    std::vector<Transition> brought;
    std::set<std::string> seen;  // (only needed, and built, with several commands in flight)
    for (const auto& [tag, f] : flight_) {
        if (flight_.size() > 1 && !seen.insert(f.type).second) continue;
        if (auto it = untagged_.find(f.type); it != untagged_.end())
            for (const std::string& r : it->second)
                brought.push_back({r, std::string(kSame)});
    }
    for (const Transition& t : TwoLists{events, brought}) {
        if (!matches(t.reply, skel)) continue;
        if (std::string gate = closed_gate(t.reply); !gate.empty())
            return breach(who, t.reply, skel, t.reply + " needs " + gate + ", not in force");
        if (in_command_.contains(t.reply) && !lifted_.contains(t.reply) && flight_.empty())
            return breach(who, t.reply, skel, t.reply + " while no command is in progress");
        if (auto nd = not_during_.find(t.reply); nd != not_during_.end())
            for (const auto& [tag, f] : flight_)
                if (nd->second.contains(f.type))
                    return breach(who, t.reply, skel,
                                  t.reply + " while " + f.type + " is in progress");
        if (Verdict v = count(t.reply, skel)) return v;
        if (t.next != kSame) state_ = t.next;
        if (Verdict v = learn(skel)) return v;
        if (t.reply == bye_) {
            bye_seen_ = true;
            // The answer to LOGOUT: every command before it is still owed its completion.
            for (const auto& [tag, f] : flight_)
                logout_bye_ = logout_bye_ || f.type == bye_request_;
        }
        return std::nullopt;
    }
    // What was allowed, for the breach only (each line that matches returned above).
    std::string expected;
    for (const Transition& t : TwoLists{events, brought})
        if (expected.find(t.reply) == std::string::npos)
            expected += (expected.empty() ? "" : " / ") + t.reply;
    return breach(who, expected.empty() ? "nothing" : expected, skel,
                  "untagged response not allowed here");
}

Verdict ImapFraming::count(const std::string& rule, const std::string& skel) {
    // RFC 9051 §7.3.1: EXISTS never shrinks (only EXPUNGE does that); §7.4.1, §7.5.1: message
    // numbers name existing messages. Not judged until an EXISTS gives the count (a SELECT or
    // EXAMINE forgets it when sent: what comes before the new mailbox's EXISTS may still be
    // about the old one).
    if (exists_rule_.empty()) return std::nullopt;
    const Breach::Who who = Breach::Who::server;
    if (rule == exists_rule_) {
        std::size_t n = message_number(skel);
        if (exists_ && n < *exists_)
            return breach(who, rule, skel,
                          "EXISTS went down from " + std::to_string(*exists_) + " without EXPUNGE");
        exists_ = n;
    } else if (rule == expunge_rule_ || rule == fetch_rule_) {
        std::size_t n = message_number(skel);
        if (exists_ && n > *exists_)
            return breach(who, rule, skel,
                          "message " + std::to_string(n) + " of " + std::to_string(*exists_));
        if (exists_ && rule == expunge_rule_ && *exists_ > 0) --*exists_;
    } else if (rule == vanished_rule_ && skel.find("(EARLIER)") == std::string::npos) {
        std::size_t n = vanished_count(skel);
        if (exists_ && n > *exists_)
            return breach(who, rule, skel,
                          std::to_string(n) + " vanished of " + std::to_string(*exists_));
        if (exists_) *exists_ -= std::min(n, *exists_);
    }
    return std::nullopt;
}

Verdict ImapFraming::tagged(const std::string& skel) {
    const Breach::Who who = Breach::Who::server;
    std::string tag(tag_of(skel));
    // The command the client is still sending, if its tag is complete.
    std::string_view sending = client_.skel.empty() ? client_.line : client_.skel;
    if (mode_ != Mode::command || sending.find(' ') == std::string_view::npos) sending = {};
    if (!sending.empty() && tag == tag_of(sending)) {
        if (client_.sync_wait) {
            // The server refused a command instead of asking for its synchronizing literal
            // (RFC 9051 §7.5): the client then does not send it.
            if (!matches(refused_, skel))
                return breach(who, refused_, skel, "completion of a command waiting for `+`");
            client_ = Side{};
            return std::nullopt;
        }
        // A completion for a command whose bytes are still arriving (Dovecot answers as soon as
        // it knows: it refuses an APPEND to a missing mailbox while the command line or its
        // non-synchronizing literal streams in, and completes a command once its last literal
        // is read, before the final CRLF): held, and judged once the command is whole.
        if (!held_.empty())
            return breach(who, "one completion", skel, "second completion of a command");
        held_ = skel.substr(0, kMaxLineBytes);
        return std::nullopt;
    }
    auto it = flight_.find(tag);
    if (it == flight_.end())
        return breach(who, "a tag in flight", skel, "completion with a tag not in flight");
    const Flight f = it->second;
    std::vector<Transition> alts = c_.alternatives(state_, f.type);
    if (alts.empty())
        return breach(Breach::Who::client, "a command allowed in " + state_, f.bytes,
                      "command " + f.type + " has no place here");
    for (const Transition& t : alts) {
        if (!matches(t.reply, skel)) continue;
        flight_.erase(it);
        bool tls = !tls_state_.empty() && t.next == tls_state_ && state_ != tls_state_;
        if (t.next != kSame) state_ = t.next;
        if (auto l = lifts_.find(f.type); l != lifts_.end() && l->second.first == t.reply)
            lifted_.insert(l->second.second.begin(), l->second.second.end());
        // Leaving the selected state forgets the mailbox's size.
        if (!exists_rule_.empty() && t.next != kSame) {
            bool events = false;
            for (const Transition& u : c_.alternatives(state_, std::string(kUnsolicited)))
                events = events || u.reply == exists_rule_;
            if (!events) exists_.reset();
        }
        if (mode_ != Mode::command && tag == mode_tag_) mode_ = Mode::command;
        if (tls) return start_tls();
        return learn(skel);
    }
    std::string expected;
    for (const Transition& t : alts)
        expected += (expected.empty() ? "" : " / ") + t.reply;
    return breach(who, expected, skel, "completion of " + f.type + " matches none allowed");
}

Verdict ImapFraming::on_close() {
    if (broken_) return broken_;
    auto partial = [](const Side& s) {
        return !s.line.empty() || !s.skel.empty() || s.literal_left > 0;
    };
    if (partial(server_))
        return breach(Breach::Who::server, "CRLF", server_.skel + server_.line,
                      "closed inside a response");
    bool ended = c_.final_states.contains(state_);
    if (partial(client_) && !client_.sync_wait && !bye_seen_ && !ended)
        return breach(Breach::Who::client, "CRLF", client_.skel + client_.line,
                      "closed inside a command");
    if (!greeted_) return breach(Breach::Who::server, "greeting", "", "closed without a greeting");
    for (const auto& [tag, f] : flight_) {
        // After an unsolicited BYE the server may close with commands unanswered (RFC 9051
        // §7.1.5); after the BYE that answers LOGOUT, every completion is owed (§6.1.3).
        if (bye_seen_ && !logout_bye_ && f.type != bye_request_) continue;
        // A client may hang up while idling (RFC 2177): IDLE is answered only after DONE.
        if (tag == mode_tag_ && (mode_ == Mode::idling || mode_ == Mode::idle_wait)) continue;
        return breach(Breach::Who::server, "a completion", f.bytes, "no completion for tag " + tag);
    }
    if (client_.sync_wait && !bye_seen_ && !ended)
        return breach(Breach::Who::server, continuation_, client_.skel,
                      "no continuation request or completion for a synchronizing literal");
    return std::nullopt;
}

}  // namespace millipost::contracts
