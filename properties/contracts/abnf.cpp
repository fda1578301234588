// contracts/abnf.cpp: RFC 5234 ABNF loading and a memoising, set-of-end-positions matcher (full
// backtracking semantics: `*(ALPHA / "-") ALPHA` works as the RFCs mean it).
#include "contracts/abnf.h"

#include <algorithm>

namespace millipost::contracts {

namespace {

// RFC 5234 appendix B.1 core rules, verbatim.
constexpr std::string_view kCoreRules = R"(
ALPHA          =  %x41-5A / %x61-7A   ; A-Z / a-z
BIT            =  "0" / "1"
CHAR           =  %x01-7F
CR             =  %x0D
CRLF           =  CR LF
CTL            =  %x00-1F / %x7F
DIGIT          =  %x30-39
DQUOTE         =  %x22
HEXDIG         =  DIGIT / "A" / "B" / "C" / "D" / "E" / "F"
HTAB           =  %x09
LF             =  %x0A
LWSP           =  *(WSP / CRLF WSP)
OCTET          =  %x00-FF
SP             =  %x20
VCHAR          =  %x21-7E
WSP            =  SP / HTAB
)";

bool is_alpha(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
std::string lowered(std::string_view s) {
    std::string r(s);
    for (auto& c : r)
        c = lower(c);
    return r;
}

// Splits ABNF text into one string per rule: comments removed, continuation lines (those that
// begin with white space) joined to the rule they continue (RFC 5234 §3.1 and §4).
std::vector<std::string> split_rules(std::string_view text) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t nl = text.find('\n', i);
        std::string_view line = text.substr(i, nl == std::string_view::npos ? nl : nl - i);
        i = nl == std::string_view::npos ? text.size() : nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        std::string kept;
        char quote = 0;  // '"' inside a char-val, '>' inside a prose-val
        for (char c : line) {
            if (quote) {
                if (c == quote) quote = 0;
            } else if (c == '"') {
                quote = '"';
            } else if (c == '<') {
                quote = '>';
            } else if (c == ';') {
                break;
            }
            kept.push_back(c);
        }
        if (kept.find_first_not_of(" \t") == std::string::npos) continue;
        if (kept[0] == ' ' || kept[0] == '\t') {
            if (out.empty()) throw AbnfError("ABNF continuation line before any rule: " + kept);
            out.back() += ' ';
            out.back() += kept;
        } else {
            out.push_back(std::move(kept));
        }
    }
    return out;
}

}  // namespace

class Grammar::Parser {
  public:
    Parser(Grammar& g, std::string_view text) : g_(g), s_(text) {}

    void rule() {
        std::string name = rulename();
        ws();
        if (!eat('=')) fail("expected '=' or '=/'");
        bool incremental = eat('/');
        ws();
        std::size_t body = alternation();
        ws();
        if (pos_ != s_.size()) fail("unexpected text");
        std::size_t r = g_.rule_index(name);
        Rule& rule = g_.rules_[r];
        if (incremental) {
            if (!rule.defined) fail("'=/' for a rule not yet defined: " + name);
            // Extend: root becomes alt(old root, new body).
            Node alt{Kind::alt};
            alt.kids = {rule.root, body};
            g_.rules_[r].root = g_.add_node(std::move(alt));
        } else {
            if (rule.defined) fail("rule defined twice: " + name);
            g_.rules_[r].root = body;
            g_.rules_[r].defined = true;
        }
    }

  private:
    [[noreturn]] void fail(const std::string& why) {
        throw AbnfError("ABNF: " + why + " at column " + std::to_string(pos_ + 1) +
                        " of: " + std::string(s_.substr(0, 120)));
    }
    bool at_end() const { return pos_ >= s_.size(); }
    char peek() const { return at_end() ? '\0' : s_[pos_]; }
    bool eat(char c) {
        if (peek() != c || at_end()) return false;
        ++pos_;
        return true;
    }
    void ws() {
        while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t'))
            ++pos_;
    }
    std::string rulename() {
        if (!is_alpha(peek())) fail("expected a rule name");
        std::size_t start = pos_;
        while (!at_end() && (is_alpha(s_[pos_]) || is_digit(s_[pos_]) || s_[pos_] == '-'))
            ++pos_;
        return std::string(s_.substr(start, pos_ - start));
    }
    std::size_t number(int base) {
        std::size_t v = 0, digits = 0;
        for (;; ++pos_, ++digits) {
            char c = lower(peek());
            int d = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : 99;
            if (at_end() || d >= base) break;
            v = v * static_cast<std::size_t>(base) + static_cast<std::size_t>(d);
            if (v > 1'000'000) fail("number too large");
        }
        if (digits == 0) fail("expected a number");
        return v;
    }

    std::size_t alternation() {
        std::vector<std::size_t> alts{concatenation()};
        for (;;) {
            ws();
            if (!eat('/')) break;
            ws();
            alts.push_back(concatenation());
        }
        if (alts.size() == 1) return alts[0];
        Node n{Kind::alt};
        n.kids = std::move(alts);
        return g_.add_node(std::move(n));
    }
    std::size_t concatenation() {
        std::vector<std::size_t> seq{repetition()};
        for (;;) {
            std::size_t save = pos_;
            ws();
            char c = peek();
            if (at_end() || c == '/' || c == ')' || c == ']' || pos_ == save) {
                pos_ = save;
                break;
            }
            seq.push_back(repetition());
        }
        if (seq.size() == 1) return seq[0];
        Node n{Kind::seq};
        n.kids = std::move(seq);
        return g_.add_node(std::move(n));
    }
    std::size_t repetition() {
        std::size_t min = 1, max = 1;
        bool repeat = false;
        if (is_digit(peek())) {
            min = max = number(10);
            repeat = true;
        }
        if (eat('*')) {
            if (!repeat) min = 0;
            max = is_digit(peek()) ? number(10) : kUnbounded;
            repeat = true;
        }
        std::size_t e = element();
        if (!repeat) return e;
        if (max < min) fail("repetition with max below min");
        Node n{Kind::rep};
        n.min = min;
        n.max = max;
        n.kids = {e};
        return g_.add_node(std::move(n));
    }
    std::size_t element() {
        char c = peek();
        if (is_alpha(c)) {
            Node n{Kind::ref};
            n.rule = g_.rule_index(rulename());
            return g_.add_node(std::move(n));
        }
        if (eat('(') || c == '[') {
            bool option = c == '[';
            if (option) ++pos_;
            ws();
            std::size_t inner = alternation();
            ws();
            if (!eat(option ? ']' : ')')) fail(option ? "expected ']'" : "expected ')'");
            if (!option) return inner;
            Node n{Kind::rep};
            n.min = 0;
            n.max = 1;
            n.kids = {inner};
            return g_.add_node(std::move(n));
        }
        if (c == '"') return char_val(true);
        if (eat('%')) {
            char k = lower(peek());
            ++pos_;
            // RFC 7405: %s"..." is case-sensitive, %i"..." the default case-insensitive.
            if (k == 's' || k == 'i') {
                if (peek() != '"') fail("expected '\"' after %s/%i");
                return char_val(k == 'i');
            }
            int base = k == 'x' ? 16 : k == 'd' ? 10 : k == 'b' ? 2 : 0;
            if (base == 0) fail("expected %x, %d, %b, %s or %i");
            std::size_t first = byte(base);
            if (eat('-')) {
                Node n{Kind::range};
                n.lo = static_cast<unsigned char>(first);
                n.hi = static_cast<unsigned char>(byte(base));
                if (n.hi < n.lo) fail("empty %-range");
                return g_.add_node(std::move(n));
            }
            Node n{Kind::str};
            n.case_insensitive = false;
            n.text.push_back(static_cast<char>(first));
            while (eat('.'))
                n.text.push_back(static_cast<char>(byte(base)));
            return g_.add_node(std::move(n));
        }
        if (c == '<') fail("prose-val (<...>) cannot be checked mechanically; write it as ABNF");
        fail("expected an element");
    }
    std::size_t byte(int base) {
        std::size_t v = number(base);
        // The engine matches bytes: code points above 255 must be written as their UTF-8 bytes.
        if (v > 255) fail("value above 255 (write UTF-8 as bytes)");
        return v;
    }
    std::size_t char_val(bool case_insensitive) {
        ++pos_;  // opening quote
        std::size_t end = s_.find('"', pos_);
        if (end == std::string_view::npos) fail("unterminated string");
        Node n{Kind::str};
        n.case_insensitive = case_insensitive;
        n.text = std::string(s_.substr(pos_, end - pos_));
        for (char ch : n.text)
            if (ch < 0x20 || ch > 0x7e) fail("char-val outside %x20-7E");
        pos_ = end + 1;
        return g_.add_node(std::move(n));
    }

    Grammar& g_;
    std::string_view s_;
    std::size_t pos_ = 0;
};

class Grammar::Matcher {
  public:
    using Memo = MatchMemo;
    Matcher(const Grammar& g, std::string_view in, Memo& memo) : g_(g), in_(in), memo_(memo) {}

    bool aborted() const { return aborted_; }

    // All positions where `node` can end when it starts at `pos`, sorted and unique.
    Ends ends(std::size_t node, std::size_t pos) {
        if (aborted_ || ++steps_ > kMaxMatchSteps + kMaxMatchStepsPerByte * in_.size() ||
            depth_ >= kMaxMatchDepth) {
            aborted_ = true;
            return {};
        }
        const Node& n = g_.nodes_[node];
        // A node that needs a byte cannot start with one outside its first set: most
        // alternatives of a rule end here, without a set built or a sub-rule entered.
        if (g_.analysed_ && !n.nullable &&
            (pos >= in_.size() || !n.first.test(static_cast<unsigned char>(in_[pos]))))
            return {};
        if (g_.analysed_ && n.unit) return {pos + 1};  // a byte class, and the byte is in it
        ++depth_;
        Ends r = eval(n, pos);
        --depth_;
        return r;
    }

  private:
    // Set merges are the matcher's real work, so their sizes count as steps too.
    void merge(Ends& into, const Ends& more) {
        if (more.empty()) return;
        if (into.empty() || more.front() > into.back()) {
            // The common case (a repetition moving forward): appending keeps a long run linear
            // instead of quadratic in its length.
            steps_ += more.size();
            into.append(more.begin(), more.end());
            return;
        }
        steps_ += into.size() + more.size();
        Ends out;
        out.reserve(into.size() + more.size());
        std::set_union(into.begin(), into.end(), more.begin(), more.end(), std::back_inserter(out));
        into = std::move(out);
    }
    Ends from_all(std::size_t node, const Ends& starts) {
        Ends r;
        for (std::size_t p : starts)
            merge(r, ends(node, p));
        return r;
    }

    Ends eval(const Node& n, std::size_t pos) {
        switch (n.kind) {
            case Kind::str: {
                if (in_.size() - pos < n.text.size()) return {};
                for (std::size_t i = 0; i < n.text.size(); ++i) {
                    char a = in_[pos + i], b = n.text[i];
                    if (n.case_insensitive ? lower(a) != lower(b) : a != b) return {};
                }
                return {pos + n.text.size()};
            }
            case Kind::range: {
                if (pos >= in_.size()) return {};
                auto c = static_cast<unsigned char>(in_[pos]);
                if (c < n.lo || c > n.hi) return {};
                return {pos + 1};
            }
            case Kind::alt: {
                // Alternatives that cannot start at this byte are skipped here, without a call
                // (most of a rule's alternatives, at most positions).
                const bool at_end = pos >= in_.size();
                const auto byte = at_end ? 0 : static_cast<unsigned char>(in_[pos]);
                Ends r;
                for (std::size_t k : n.kids) {
                    const Node& kid = g_.nodes_[k];
                    if (g_.analysed_ && !kid.nullable && (at_end || !kid.first.test(byte)))
                        continue;
                    merge(r, ends(k, pos));
                }
                return r;
            }
            case Kind::seq: {
                Ends cur{pos};
                for (std::size_t k : n.kids) {
                    cur = from_all(k, cur);
                    if (cur.empty()) break;
                }
                return cur;
            }
            case Kind::rep: {
                if (const Node& kid = g_.nodes_[n.kids[0]]; g_.analysed_ && kid.unit) {
                    // A run of a byte class: it ends after each count from min up to the run's
                    // length (or max), which is what the general loop below finds one byte at a
                    // time through the class's own evaluation.
                    std::size_t run = 0;
                    while (run < n.max && pos + run < in_.size() &&
                           kid.first.test(static_cast<unsigned char>(in_[pos + run])))
                        ++run;
                    steps_ += run;
                    Ends result;
                    if (run >= n.min) {
                        result.reserve(run - n.min + 1);
                        for (std::size_t i = n.min; i <= run; ++i)
                            result.push_back(pos + i);
                    }
                    return result;
                }
                Ends cur{pos}, result;
                for (std::size_t i = 0;; ++i) {
                    if (i >= n.min) merge(result, cur);
                    if (i == n.max || cur.empty() || aborted_) break;
                    Ends next = from_all(n.kids[0], cur);
                    // Past the minimum only new positions matter: this ends "*" loops over
                    // elements that can match the empty string. When every next position lies
                    // beyond the last one found (a run moving forward, the common case) all
                    // are new; scanning `result` each time would make a long run quadratic.
                    if (i >= n.min && !next.empty() && !result.empty() &&
                        next.front() <= result.back()) {
                        Ends fresh;
                        std::set_difference(next.begin(), next.end(), result.begin(), result.end(),
                                            std::back_inserter(fresh));
                        next = std::move(fresh);
                    }
                    cur = std::move(next);
                }
                return result;
            }
            case Kind::ref: {
                std::uint64_t key = static_cast<std::uint64_t>(n.rule) * (in_.size() + 1) + pos;
                auto [it, fresh] = memo_.try_emplace(key);
                // Left recursion (a rule reaching itself at the same position, its entry still
                // open) matches nothing.
                if (!fresh) return it->second.done ? it->second.ends : Ends{};
                Ends r = ends(g_.rules_[n.rule].root, pos);
                // (Found again: the flat map moves its entries when the recursion grows it.)
                it = memo_.find(key);
                if (aborted_) {
                    // Nothing half-done may stay behind for the next match on this input.
                    memo_.erase(it);
                    return r;
                }
                it->second.ends = r;
                it->second.done = true;
                return r;
            }
        }
        return {};
    }

    const Grammar& g_;
    std::string_view in_;
    std::size_t steps_ = 0, depth_ = 0;
    bool aborted_ = false;
    Memo& memo_;
};

Grammar::Grammar() {
    add(kCoreRules);
    analyse();
}

std::size_t Grammar::rule_index(std::string_view name) {
    std::string key = lowered(name);
    if (auto it = by_name_.find(key); it != by_name_.end()) return it->second;
    rules_.push_back(Rule{std::string(name)});
    by_name_.emplace(std::move(key), rules_.size() - 1);
    return rules_.size() - 1;
}

std::size_t Grammar::find_rule(std::string_view name) const {
    char buf[64];
    std::string heap;
    std::string_view key;
    if (name.size() <= sizeof buf) {
        for (std::size_t i = 0; i < name.size(); ++i)
            buf[i] = lower(name[i]);
        key = std::string_view(buf, name.size());
    } else {
        heap = lowered(name);
        key = heap;
    }
    auto it = by_name_.find(key);
    return it == by_name_.end() || !rules_[it->second].defined ? kNone : it->second;
}

std::size_t Grammar::add_node(Node n) {
    nodes_.push_back(std::move(n));
    return nodes_.size() - 1;
}

void Grammar::add(std::string_view text) {
    analysed_ = false;
    for (const std::string& r : split_rules(text))
        Parser(*this, r).rule();
}

void Grammar::resolve() {
    for (const Rule& r : rules_)
        if (!r.defined) throw AbnfError("ABNF: rule referenced but not defined: " + r.name);
    analyse();
}

// Nullable flags and first-byte sets for every node, as the least fixpoint (rules may refer to
// each other in cycles): start from "not nullable, no first byte" and grow until nothing
// changes. Both only grow, so this ends.
void Grammar::analyse() {
    for (Node& n : nodes_) {
        n.nullable = false;
        n.first.reset();
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (Node& n : nodes_) {
            bool nullable = false;
            std::bitset<256> first;
            switch (n.kind) {
                case Kind::str:
                    nullable = n.text.empty();
                    if (!nullable) {
                        auto c = static_cast<unsigned char>(n.text[0]);
                        first.set(c);
                        if (n.case_insensitive && is_alpha(n.text[0])) first.set(c ^ 0x20);
                    }
                    break;
                case Kind::range:
                    for (unsigned c = n.lo; c <= n.hi; ++c)
                        first.set(c);
                    break;
                case Kind::alt:
                    for (std::size_t k : n.kids) {
                        nullable = nullable || nodes_[k].nullable;
                        first |= nodes_[k].first;
                    }
                    break;
                case Kind::seq:
                    nullable = true;
                    for (std::size_t k : n.kids) {
                        first |= nodes_[k].first;
                        if (!nodes_[k].nullable) {
                            nullable = false;
                            break;
                        }
                    }
                    break;
                case Kind::rep:
                    nullable = n.min == 0 || nodes_[n.kids[0]].nullable;
                    first = nodes_[n.kids[0]].first;
                    break;
                case Kind::ref: {
                    std::size_t root = rules_[n.rule].root;
                    if (root == kNone) {
                        // Undefined (only before resolve() refuses it): assume anything.
                        nullable = true;
                        first.set();
                    } else {
                        nullable = nodes_[root].nullable;
                        first = nodes_[root].first;
                    }
                    break;
                }
            }
            if (nullable != n.nullable || first != n.first) {
                n.nullable = nullable;
                n.first = first;
                changed = true;
            }
        }
    }
    // Byte classes, as a least fixpoint too: a rule is one only when its definition is made of
    // them, so a rule that refers to itself never is.
    for (Node& n : nodes_)
        n.unit = false;
    for (bool changed = true; changed;) {
        changed = false;
        for (Node& n : nodes_) {
            bool unit = false;
            switch (n.kind) {
                case Kind::str:
                    // One byte; `first` holds it (and its other case when case-insensitive),
                    // exactly the bytes the comparison accepts.
                    unit = n.text.size() == 1;
                    break;
                case Kind::range:
                    unit = true;
                    break;
                case Kind::alt:
                    unit = !n.kids.empty();
                    for (std::size_t k : n.kids)
                        unit = unit && nodes_[k].unit;
                    break;
                case Kind::seq:
                    unit = n.kids.size() == 1 && nodes_[n.kids[0]].unit;
                    break;
                case Kind::rep:
                    unit = n.min == 1 && n.max == 1 && nodes_[n.kids[0]].unit;
                    break;
                case Kind::ref: {
                    std::size_t root = rules_[n.rule].root;
                    unit = root != kNone && nodes_[root].unit;
                    break;
                }
            }
            unit = unit && !n.nullable;  // (never nullable: the match shortcut relies on it)
            if (unit != n.unit) {
                n.unit = unit;
                changed = true;
            }
        }
    }
    analysed_ = true;
}

bool Grammar::has_rule(std::string_view name) const {
    return find_rule(name) != kNone;
}

MatchResult Grammar::match(std::string_view name, std::string_view input) const {
    return run(name, input, nullptr);
}

MatchResult Grammar::match(std::string_view name, std::string_view input, MatchCache& cache) const {
    return run(name, input, &cache);
}

MatchResult Grammar::run(std::string_view name, std::string_view input, MatchCache* cache) const {
    std::size_t rule = find_rule(name);
    if (rule == kNone) throw AbnfError("ABNF: no rule " + std::string(name));
    Matcher::Memo local;
    Matcher::Memo* memo = &local;
    if (cache) {
        if (cache->grammar_ != this || cache->input_ != input) {
            cache->grammar_ = this;
            cache->input_.assign(input);
            cache->memo_.clear();
        }
        memo = &cache->memo_;
    }
    Matcher m(*this, input, *memo);
    Ends ends = m.ends(rules_[rule].root, 0);
    if (m.aborted()) return MatchResult::too_complex;
    return std::binary_search(ends.begin(), ends.end(), input.size()) ? MatchResult::match
                                                                      : MatchResult::no_match;
}

}  // namespace millipost::contracts
