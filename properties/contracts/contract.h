// contracts/contract.h: a protocol contract (types as ABNF rules, a UBF-style state table) and
// the generic streaming checker that holds a live byte stream to it in both directions. The file
// format is documented in properties/contracts/README.md.
#pragma once
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
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

    // Parses contract text; throws ContractError (or AbnfError) with the reason.
    static Contract parse(std::string_view text, std::string name = "contract");
    static Contract load(const std::string& path);

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

  private:
    struct Side {
        std::string buf;
        std::size_t scanned = 0;  // bytes of buf already searched for CRLF
    };
    using LineFn = Verdict (Checker::*)(std::string_view line);
    Verdict feed(Side& side, std::string_view bytes, Breach::Who who, LineFn fn);
    Verdict client_line(std::string_view line);
    Verdict push(const std::string& type, std::string_view line);
    Verdict server_line(std::string_view line);
    Verdict server_reply(const std::string& reply);
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
    Side client_, server_;
    Verdict broken_;
    std::unique_ptr<ImapFraming> imap_;  // set for `framing imap`: it then judges everything
};

}  // namespace millipost::contracts
