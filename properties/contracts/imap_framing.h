// contracts/imap_framing.h: the IMAP framing of the contract checker (`framing imap` in a
// contract's %engine section). IMAP is not a line-per-request, reply-per-request protocol: requests
// carry tags and are answered by tagged completions that may come in any order, the server sends
// untagged data (`* ...`) as events, lines may carry literals (`{n}`, `{n+}`, `~{n}`) in both
// directions, and continuation requests (`+ ...`) drive synchronizing literals, AUTHENTICATE and
// IDLE. This framing cuts both streams into logical lines (a line and its literals), matches each
// line's skeleton (the line with every literal's bytes left out, its `{n}` CRLF kept) against the
// contract's ABNF, and keeps the tags in flight, the session state, the advertised capabilities
// and the ENABLEd extensions. The directives it reads are documented in README.md ("IMAP").
#pragma once
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "contracts/contract.h"

namespace millipost::contracts {

// Total literal bytes one logical line (a command or a response) may carry before the checker
// calls it a breach. Literal bytes are streamed past the matcher (only counted and checked for
// NUL), so this bounds work, not memory; generous next to real messages (APPENDLIMIT of the
// reference server: 50 MiB).
inline constexpr std::size_t kMaxImapLiteralBytes = 256u * 1024 * 1024;
// Longest capability list (in atoms) the checker remembers.
inline constexpr std::size_t kMaxImapCapabilities = 1024;
// RFC 7888 §4: LITERAL- allows non-synchronizing literals of at most this many bytes.
inline constexpr std::size_t kLiteralMinusMax = 4096;

class ImapFraming {
  public:
    explicit ImapFraming(const Contract& contract);

    // Checks the framing directives of a contract that says `framing imap`; throws ContractError.
    static void validate(const Contract& contract);

    Verdict on_client(std::string_view bytes);
    Verdict on_server(std::string_view bytes);
    Verdict on_close();

    const std::string& state() const { return state_; }
    std::size_t pending() const { return flight_.size(); }
    const std::set<std::string>& capabilities() const { return caps_; }
    const std::set<std::string>& enabled() const { return enabled_; }
    // Whether the session went TLS (a completion moved it to the `tls` state).
    bool tls() const { return tls_; }

  private:
    // One direction: the logical line being assembled.
    struct Side {
        std::string line;               // bytes of the current physical line (up to LF)
        std::string skel;               // the logical line so far, literal bytes left out
        std::size_t literal_left = 0;   // literal bytes still to pass
        bool literal8 = false;          // the literal being passed is `~{n}` (may hold NUL)
        std::size_t literal_bytes = 0;  // literal bytes in this logical line so far
        std::size_t plus_literal = 0;   // largest `{n+}` literal of this line (client)
        bool plus_used = false;         // the line has a `{n+}` literal (client)
        bool sync_wait = false;         // client sent `{n}` CRLF and must wait for `+`
    };
    // A gate on a rule: allowed only if one of `caps` was advertised (or ENABLEd, if `enable`).
    struct Gate {
        std::vector<std::string> caps;
        bool enable = false;
    };
    struct Flight {
        std::string type;   // request type (rule name)
        std::string bytes;  // the request's skeleton, truncated, for reports
    };
    enum class Mode { command, authenticate, idle_wait, idling };

    Verdict feed(Side& side, std::string_view bytes, Breach::Who who);
    Verdict client_unit(const std::string& skel);
    Verdict server_unit(const std::string& skel);
    Verdict untagged(const std::string& skel);
    Verdict tagged(const std::string& skel);
    Verdict breach(Breach::Who who, std::string rule, std::string_view bytes, std::string reason);
    bool matches(const std::string& rule, std::string_view bytes) const;
    // Sub-rule results for the unit being judged, shared by the rules tried on it in turn.
    mutable MatchCache match_cache_;
    // The state table's events for one state (every untagged line asks; the state rarely
    // changes): Contract::alternatives(unsol_state_, "unsolicited").
    const std::vector<Transition>& unsolicited();
    std::optional<std::string> unsol_state_;
    std::vector<Transition> unsol_;
    // The first gate of `rule` that the session does not meet, as a phrase; empty if none.
    std::string closed_gate(const std::string& rule) const;
    bool advertised(const std::string& cap) const;
    Verdict count(const std::string& rule, const std::string& skel);  // message numbers
    // Capabilities and ENABLED from a matched response; inside TLS a list naming a capability
    // of `tls STATE CAP...` is the server's breach.
    Verdict learn(const std::string& skel);
    // The capability of a `forbids CAP RULE...` gate on `rule` that is advertised; empty if none.
    std::string forbidden_by(const std::string& rule) const;
    // A completion moved the session to the `tls` state: the checks at the switch.
    Verdict start_tls();

    const Contract& c_;
    // Directives.
    std::map<std::string, std::vector<std::string>> untagged_;  // request -> untagged rules
    std::map<std::string, std::set<std::string>> not_during_;   // untagged rule -> requests
    std::string exists_rule_, expunge_rule_, fetch_rule_, vanished_rule_;  // message-numbers
    std::set<std::string> select_requests_;                                // ... and these
    // `lifts REQUEST REPLY RULE...`: once REQUEST completes with REPLY, RULEs may come with no
    // command in progress (NOTIFY SET, RFC 5465).
    std::map<std::string, std::pair<std::string, std::set<std::string>>> lifts_;
    std::set<std::string> lifted_;
    std::set<std::string> in_command_;  // untagged rules sent only while a command is in flight
    std::map<std::string, std::vector<Gate>> gates_;  // rule -> gates (all must hold)
    // `forbids CAP RULE...`: rule -> capabilities whose presence forbids it (LOGINDISABLED).
    std::map<std::string, std::vector<std::string>> forbids_;
    // `tls STATE CAP...`: a completion that moves the session to STATE starts TLS; inside it the
    // bytes fed are the decrypted stream (still judged) and CAPs must not be advertised.
    std::string tls_state_;
    std::set<std::string> tls_withdrawn_;
    std::string continuation_;  // `continuation RULE`
    // `authenticate REQUEST RULE` (one per AUTHENTICATE form): request -> its SASL line rule.
    std::map<std::string, std::string> auth_requests_;
    std::string sasl_;                 // the rule of the AUTHENTICATE in progress
    std::string idle_request_, done_;  // `idle REQUEST RULE`
    std::string bye_, bye_request_;    // `bye RULE REQUEST`
    std::string refused_;              // `literal-refused RULE`

    // Session.
    std::string state_;
    bool greeted_ = false;
    std::map<std::string, Flight> flight_;  // tag -> request awaiting its completion
    std::set<std::string> caps_, enabled_;
    std::optional<std::size_t>
        exists_;  // messages in the selected mailbox, once known  // upper-cased atoms
    Mode mode_ = Mode::command;
    std::string mode_tag_;     // the AUTHENTICATE or IDLE command that set mode_
    bool auth_plus_ = false;   // a `+` arrived: the client may send one SASL line
    std::string held_;         // a completion come before its command was whole
    bool bye_seen_ = false;    // the server said BYE: it is closing
    bool logout_bye_ = false;  // ... in answer to LOGOUT
    bool tls_ = false;         // the connection went TLS (`tls` directive)
    bool tls_switch_ = false;  // ... by the server unit just judged: nothing may follow it
    Side client_, server_;
    Verdict broken_;
};

}  // namespace millipost::contracts
