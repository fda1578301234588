// contracts/abnf.h: an RFC 5234 ABNF engine for protocol contracts. It reads ABNF rule text (the
// RFCs' own grammar, copied into a contract file) and matches complete byte strings against a
// rule. It is the oracle's own reading of the RFCs and shares no code with the server's parsers
// (design.md, "Independence of the oracle").
#pragma once
#include <boost/unordered/unordered_flat_map.hpp>

#include <algorithm>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
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

class Grammar;

// One (rule, position) of a match: its end positions once done; while not done the rule is being
// matched there (so reaching it again is left recursion).
// End positions of a match, sorted and unique (the matcher keeps them so). Nearly always none
// or one: up to kInline are kept inline, so most of the matcher's sets cost no allocation.
class Ends {
  public:
    using value_type = std::size_t;
    Ends() = default;
    Ends(std::initializer_list<std::size_t> l) {
        for (std::size_t v : l)
            push_back(v);
    }
    Ends(const Ends& o) { append(o.begin(), o.end()); }
    Ends(Ends&& o) noexcept { take(o); }
    Ends& operator=(const Ends& o) {
        if (this != &o) {
            size_ = 0;
            append(o.begin(), o.end());
        }
        return *this;
    }
    Ends& operator=(Ends&& o) noexcept {
        if (this != &o) {
            release();
            take(o);
        }
        return *this;
    }
    ~Ends() { release(); }

    bool empty() const { return size_ == 0; }
    std::size_t size() const { return size_; }
    const std::size_t* begin() const { return data_; }
    const std::size_t* end() const { return data_ + size_; }
    std::size_t front() const { return data_[0]; }
    std::size_t back() const { return data_[size_ - 1]; }
    void reserve(std::size_t n) {
        if (n <= cap_) return;
        auto* d = new std::size_t[n];
        std::copy(data_, data_ + size_, d);
        if (data_ != inline_) delete[] data_;
        data_ = d;
        cap_ = n;
    }
    void push_back(std::size_t v) {
        if (size_ == cap_) reserve(cap_ * 2);
        data_[size_++] = v;
    }
    void append(const std::size_t* b, const std::size_t* e) {
        auto n = static_cast<std::size_t>(e - b);
        if (size_ + n > cap_) reserve(std::max(size_ + n, cap_ * 2));
        std::copy(b, e, data_ + size_);
        size_ += n;
    }

  private:
    static constexpr std::size_t kInline = 3;
    void release() {
        if (data_ != inline_) delete[] data_;
        data_ = inline_;
        cap_ = kInline;
        size_ = 0;
    }
    void take(Ends& o) {  // (this is empty and inline)
        if (o.data_ == o.inline_) {
            std::copy(o.inline_, o.inline_ + o.size_, inline_);
        } else {
            data_ = o.data_;
            cap_ = o.cap_;
            o.data_ = o.inline_;
            o.cap_ = kInline;
        }
        size_ = o.size_;
        o.size_ = 0;
    }
    std::size_t* data_ = inline_;
    std::size_t size_ = 0, cap_ = kInline;
    std::size_t inline_[kInline];
};

struct MatchMemoEntry {
    Ends ends;
    bool done = false;
};
// (rule, position) -> entry; open addressing, no allocation per entry.
using MatchMemo = boost::unordered_flat_map<std::uint64_t, MatchMemoEntry>;

// What one input's matches have learnt, kept for the next match of the same bytes: the
// contracts try many rules in turn on one line (every request type, every allowed reply), and
// those rules share most of their sub-rules (a tag, an astring, resp-text). A rule already
// decided at a position costs nothing the next time. Results are pure functions of (grammar,
// input), so sharing them changes no verdict; only a match aborted by the work bound leaves
// nothing behind. One cache per user (a Checker), not shared between threads.
class MatchCache {
  public:
    MatchCache() = default;

  private:
    friend class Grammar;
    const Grammar* grammar_ = nullptr;
    std::string input_;  // the bytes memo_ is about
    MatchMemo memo_;
};

class Grammar {
  public:
    // The RFC 5234 appendix B.1 core rules (ALPHA, DIGIT, CRLF, ...) are always present.
    Grammar();

    // Adds the rules of `text` (RFC 5234 rulelist; "=/" extends an earlier rule). Rule names
    // are case-insensitive. Throws AbnfError; references are resolved by resolve().
    void add(std::string_view text);
    // Checks that every referenced rule is defined. Throws AbnfError naming the first missing.
    // Then computes each node's first-byte set (matching uses it to skip alternatives that
    // cannot start at the next byte).
    void resolve();

    bool has_rule(std::string_view name) const;
    // Whether all of `input` matches rule `name` (which must exist).
    MatchResult match(std::string_view name, std::string_view input) const;
    // The same, reusing what earlier matches of the same input learnt (see MatchCache).
    MatchResult match(std::string_view name, std::string_view input, MatchCache& cache) const;

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
        // From analyse(): whether the node can match the empty string, and the bytes a
        // non-empty match can start with. A node that is not nullable cannot match at a
        // position whose byte is not in `first` (or at the end of the input).
        bool nullable = true;
        std::bitset<256> first;
        // Every match is exactly one byte (a byte class: a range, a one-character string, an
        // alternation or rule of those). Its matches at a position are then known from `first`
        // alone, without entering the node: most of a line's bytes pass through such classes.
        bool unit = false;
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
    // The defined rule `name` (case-insensitive), or kNone; allocates nothing for short names.
    std::size_t find_rule(std::string_view name) const;
    std::size_t add_node(Node n);
    void analyse();
    MatchResult run(std::string_view name, std::string_view input, MatchCache* cache) const;

    std::vector<Node> nodes_;
    std::vector<Rule> rules_;
    // Heterogeneous lookup, so a string_view finds a rule without building a std::string.
    struct NameHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const {
            return std::hash<std::string_view>{}(s);
        }
    };
    // lower-cased name -> rules_ index
    std::unordered_map<std::string, std::size_t, NameHash, std::equal_to<>> by_name_;
    bool analysed_ = false;  // first-byte sets are current (resolve() after the last add())
};

}  // namespace millipost::contracts
