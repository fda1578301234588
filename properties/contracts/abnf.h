// contracts/abnf.h: an RFC 5234 ABNF engine for protocol contracts. It reads ABNF rule text (the
// RFCs' own grammar, copied into a contract file) and matches complete byte strings against a
// rule. It is the oracle's own reading of the RFCs and shares no code with the server's parsers
// (design.md, "Independence of the oracle").
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace millipost::contracts {

// Work bound for one match: every (node, position) evaluation counts as a step. Memoised rule
// references keep honest grammars far below this; a hostile grammar or input stops here instead
// of running away.
inline constexpr std::size_t kMaxMatchSteps = 1'000'000;
// ... plus this many steps per input byte, so the bound grows linearly with the input: a long
// but honest line (IMAP sends 30 KB quoted strings) is not cut off by a constant.
inline constexpr std::size_t kMaxMatchStepsPerByte = 64;
// Nesting bound for one match, so a deep grammar cannot exhaust the stack.
inline constexpr std::size_t kMaxMatchDepth = 400;

// Thrown for ABNF text that cannot be loaded (syntax errors, undefined rules, prose-val).
struct AbnfError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class MatchResult {
    match,        // the whole input matches the rule
    no_match,     // it does not
    too_complex,  // the step or depth limit was reached before an answer
};

class Grammar {
  public:
    // The RFC 5234 appendix B.1 core rules (ALPHA, DIGIT, CRLF, ...) are always present.
    Grammar();

    // Adds the rules of `text` (RFC 5234 rulelist; "=/" extends an earlier rule). Rule names
    // are case-insensitive. Throws AbnfError; references are resolved by resolve().
    void add(std::string_view text);
    // Checks that every referenced rule is defined. Throws AbnfError naming the first missing.
    void resolve();

    bool has_rule(std::string_view name) const;
    // Whether all of `input` matches rule `name` (which must exist).
    MatchResult match(std::string_view name, std::string_view input) const;

  private:
    enum class Kind : std::uint8_t { alt, seq, rep, str, range, ref };
    struct Node {
        Kind kind;
        bool case_insensitive = true;  // str
        unsigned char lo = 0, hi = 0;  // range
        std::size_t min = 0, max = 0;  // rep; max == kUnbounded for "*"
        std::size_t rule = 0;          // ref: index into rules_
        std::string text;              // str
        std::vector<std::size_t> kids;
    };
    struct Rule {
        std::string name;
        std::size_t root = kNone;  // node index; kNone while only referenced
        bool defined = false;
    };
    static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
    static constexpr std::size_t kUnbounded = static_cast<std::size_t>(-1);

    class Parser;
    class Matcher;

    std::size_t rule_index(std::string_view name);
    std::size_t add_node(Node n);

    std::vector<Node> nodes_;
    std::vector<Rule> rules_;
    std::unordered_map<std::string, std::size_t> by_name_;  // lower-cased name -> rules_ index
};

}  // namespace millipost::contracts
