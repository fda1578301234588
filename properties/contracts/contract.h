// contracts/contract.h: a protocol contract (types as ABNF rules, a UBF-style state table) and
// the generic streaming checker that holds a live byte stream to it in both directions. The file
// format is documented in properties/contracts/README.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "contracts/abnf.h"

namespace millipost::contracts {

// Longest line (CRLF included) either side may send before the checker calls it a breach; this
// bounds the checker's buffers whatever the peer does. Generous next to the RFC limits (SMTP:
// 512 for commands and replies, 1000 for message text) so the contract, not this, speaks.
inline constexpr std::size_t kMaxLineBytes = 64 * 1024;
// Longest multi-line reply (all its lines) the checker accumulates before matching it.
inline constexpr std::size_t kMaxReplyBytes = 256 * 1024;
// Requests in flight (pipelined, not yet answered) the checker tracks.
inline constexpr std::size_t kMaxPending = 4096;
// Offending bytes kept in a breach report.
inline constexpr std::size_t kMaxBreachBytes = 512;
// Capability keywords one reply may list (EHLO keywords, CAPA lines): a server listing more is
// reported rather than let grow the checker's memory.
inline constexpr std::size_t kMaxCapabilities = 256;
// Longest capability keyword kept; a longer one is kept truncated (it then matches nothing).
inline constexpr std::size_t kMaxCapabilityBytes = 64;
// Digits of a byte count (`chunk` requests, SMTP BDAT): 18 decimal digits fit in 64 bits.
inline constexpr std::size_t kMaxCountDigits = 18;

// Pseudo-requests: `connect` is queued when the connection opens (the greeting answers it);
// `unsolicited` is what a server reply answers when no request is in flight.
inline constexpr std::string_view kConnect = "connect";
inline constexpr std::string_view kUnsolicited = "unsolicited";
inline constexpr std::string_view kAny = "*";
inline constexpr std::string_view kSame = "=";

struct ContractError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Transition {
    std::string reply;  // ABNF rule name of the reply type
    std::string next;   // next state, or "=" to stay
};

struct Contract {
    std::string name;
    Grammar grammar;
    std::string initial;  // first state of the table
    // rows[state][request] -> alternatives, in file order; state or request may be "*".
    std::map<std::string, std::map<std::string, std::vector<Transition>>> rows;
    std::vector<std::string> requests;  // client request types, in order of first appearance
    std::set<std::string> states;       // every state named in the table
    std::set<std::string> final_states;
    std::string continue_rule;                       // a server line matching it continues a reply
    std::map<std::string, std::string> body_states;  // state -> request that ends its data
    // Framing mode (`framing NAME` in %engine): empty for the line framing above; "imap" for the
    // tagged, literal-aware framing of imap_framing.h, whose own directives are kept here
    // (each as its words) and checked by that framing when the contract loads.
    std::string framing;
    std::vector<std::vector<std::string>> framing_directives;

    // `dotted REQUEST STATUS [LINE]`: a reply to REQUEST whose first line matches STATUS goes on
    // with data lines (dot-stuffed, each matching LINE if given) until the line "." (RFC 1939
    // §3). The status line alone is the reply the state table judges.
    struct Dotted {
        std::string status;
        std::string line;  // empty: any data line
    };
    std::map<std::string, std::vector<Dotted>> dotted;  // request -> its multi-line forms
    // `capability REQUEST REPLY SKIP-LINES SKIP-BYTES` (or `... REPLY none`): a reply to REQUEST
    // that matches REPLY replaces the advertised capabilities with the first word of each of its
    // lines (data lines for a dotted reply) after the first SKIP-LINES lines, from byte
    // SKIP-BYTES on.
    struct Capability {
        std::string reply;
        bool lists = true;  // false for `none`: the reply withdraws every capability
        std::size_t skip_lines = 0, skip_bytes = 0;
    };
    std::map<std::string, Capability> capability;  // request -> how its reply lists keywords
    // `requires RULE KEYWORD`: a client line matching RULE needs KEYWORD advertised.
    std::vector<std::pair<std::string, std::string>> requirements;
    // `assume-capable`: until a capability reply is seen, every keyword counts as advertised
    // (POP3: the RFC 1939 optional commands may be used without CAPA).
    bool assume_capable = false;
    // `pipelining KEYWORD`: a request sent while another awaits its reply needs KEYWORD.
    std::string pipelining;
    // `group-end REQUEST...`: a request sent while one of these awaits its reply is the
    // client's breach, pipelining or not (RFC 2920 §3.1: they end a group).
    std::set<std::string> group_ends;
    // `chunk REQUEST`: the line is followed by exactly n raw bytes, n its first number.
    std::set<std::string> chunk_requests;
    // `prompt STATE RULE`: once the server's reply moves to STATE, the next client line is the
    // request RULE and nothing else (SASL responses after a challenge).
    std::map<std::string, std::string> prompt_states;
    // Requests only a mode accepts (`body` ends, `prompt` responses): never a free line's type,
    // so a SASL response line "CAPA" is not taken for a command, nor a command for one.
    std::set<std::string> mode_requests;
    // `tls STATE`: once the server's reply moves to STATE, both directions are TLS; the checker
    // stops judging (after checking that no plaintext was sent ahead of the handshake).
    std::set<std::string> tls_states;
    // `tls STATE RESUME [KEYWORD...]`: a caller that sees the decrypted stream may resume
    // judging after the handshake (Checker::resume_tls) in RESUME; inside TLS the KEYWORDs must
    // not be advertised (RFC 3207 §4.2: no STARTTLS in the EHLO reply after the handshake).
    struct TlsResume {
        std::string state;
        std::set<std::string> withdrawn;  // upper-cased
    };
    std::map<std::string, TlsResume> tls_resume;  // tls state -> how to resume

    // Parses contract text; throws ContractError (or AbnfError) with the reason.
    static Contract parse(std::string_view text, std::string name = "contract");
    static Contract load(const std::string& path);

    // Whether `rule` is one of the client request types.
    bool is_request(const std::string& rule) const;
    // The transitions that may answer `request` in `state` (lookup order in README.md).
    std::vector<Transition> alternatives(const std::string& state,
                                         const std::string& request) const;
};

struct Breach {
    enum class Who { client, server };
    Who who;
    std::string rule;    // the rule(s) the bytes should have matched
    std::string state;   // the state the checker was in
    std::string bytes;   // offending bytes, truncated to kMaxBreachBytes
    std::string reason;  // one human sentence
};
std::string to_string(const Breach& b);

// std::nullopt is "ok so far"; a breach is sticky: once broken, every later call returns it.
using Verdict = std::optional<Breach>;

class ImapFraming;

class Checker {
  public:
    explicit Checker(const Contract& contract);
    ~Checker();
    Checker(Checker&&) noexcept;
    Checker& operator=(Checker&&) = delete;

    // Feed bytes as they pass, in any split, in the order they were seen on the wire.
    Verdict on_client(std::string_view bytes);
    Verdict on_server(std::string_view bytes);
    // Both directions ended: unanswered requests and unfinished lines are breaches.
    Verdict on_close();

    const std::string& state() const;
    std::size_t pending() const;
    // Line framing: capability keywords (upper-cased) the server advertised last; empty if none.
    const std::set<std::string>& capabilities() const { return caps_; }
    // Whether the connection went TLS: the checker no longer judges it.
    bool opaque() const { return opaque_; }
    // After the handshake, for a caller that feeds the decrypted stream from now on: judging
    // resumes in the contract's RESUME state (`tls STATE RESUME`), with no capabilities known
    // and the withdrawn ones refused. False (and nothing changes) when the checker is not
    // opaque or the contract has no RESUME state for it; the caller then starts a new checker.
    bool resume_tls();

  private:
    struct Side {
        std::string buf;  // a line not yet complete
    };
    using LineFn = Verdict (Checker::*)(std::string_view line);
    Verdict feed(Side& side, std::string_view bytes, Breach::Who who, LineFn fn);
    Verdict client_line(std::string_view line);
    Verdict push(const std::string& type, std::string_view line);
    Verdict server_line(std::string_view line);
    Verdict server_data_line(std::string_view line);
    Verdict server_reply(const std::string& reply, bool dotted = false);
    Verdict enter_state(const std::string& request);
    Verdict check_client_request(const std::string& type, std::string_view line);
    bool capable(const std::string& keyword) const;
    Verdict add_capability(std::string_view line, std::size_t skip_bytes);
    Verdict breach(Breach::Who who, std::string rule, std::string_view bytes, std::string reason);
    bool matches(const std::string& rule, std::string_view bytes) const;

    const Contract& c_;
    std::string state_;
    struct Pending {
        std::string type;   // request type (ABNF rule name or a pseudo-request)
        std::string bytes;  // the request line, truncated, for reports
    };
    std::deque<Pending> pending_;  // requests awaiting a reply, oldest first
    bool in_body_ = false;         // client lines are data, not requests ...
    std::string body_end_;         // ... until one matches this rule
    std::string reply_;            // lines of a multi-line reply so far
    // A dotted reply's data is streamed line by line, never kept whole.
    bool in_dotted_ = false;
    std::string dotted_line_;  // the rule each data line must match (empty: any)
    // Capabilities: caps_ as last advertised; a reply that lists them collects into caps_new_.
    std::set<std::string> caps_;
    bool caps_listed_ = false;  // a capability reply has been seen (see assume_capable)
    const Contract::Capability* collecting_ = nullptr;  // listing in progress (dotted reply)
    std::set<std::string> caps_new_;
    std::size_t caps_lines_ = 0;    // data lines of the listing seen so far
    bool in_prompt_ = false;        // the next client line is the request prompt_rule_
    std::string prompt_rule_;       // ...
    std::uint64_t chunk_left_ = 0;  // raw client bytes still due to a `chunk` request
    bool opaque_ = false;           // TLS from here: nothing is judged
    std::string tls_state_;         // the `tls` state entered (for resume_tls)
    const std::set<std::string>* withdrawn_ = nullptr;  // inside resumed TLS: not advertised
    Side client_, server_;
    Verdict broken_;
    // Sub-rule results for the line being judged, shared by the rules tried on it in turn.
    mutable MatchCache match_cache_;
    std::unique_ptr<ImapFraming> imap_;  // set for `framing imap`: it then judges everything
};

}  // namespace millipost::contracts
