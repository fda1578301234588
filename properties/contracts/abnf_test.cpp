// abnf_test.cpp: the RFC 5234 ABNF engine on small grammars, its refusals and its work bound.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "contracts/abnf.h"

namespace mc = millipost::contracts;
using mc::MatchResult;

namespace {

mc::Grammar grammar(const char* text) {
    mc::Grammar g;
    g.add(text);
    g.resolve();
    return g;
}

bool ok(const mc::Grammar& g, const char* rule, std::string_view s) {
    return g.match(rule, s) == MatchResult::match;
}

}  // namespace

TEST(Abnf, CoreRulesArePresent) {
    mc::Grammar g;
    EXPECT_TRUE(ok(g, "CRLF", "\r\n"));
    EXPECT_FALSE(ok(g, "CRLF", "\n"));
    EXPECT_TRUE(ok(g, "hexdig", "a"));  // rule names and "A" strings are case-insensitive
    EXPECT_FALSE(ok(g, "DIGIT", "x"));
}

TEST(Abnf, BacktracksThroughGreedyRepetition) {
    // RFC 5321's Ldh-str ends with a letter or digit after a run that may contain them too.
    auto g = grammar(
        "Ldh-str = *( ALPHA / DIGIT / \"-\" ) Let-dig\n"
        "Let-dig = ALPHA / DIGIT\n");
    EXPECT_TRUE(ok(g, "Ldh-str", "a-b-c9"));
    EXPECT_TRUE(ok(g, "Ldh-str", "x"));
    EXPECT_FALSE(ok(g, "Ldh-str", "abc-"));
    EXPECT_FALSE(ok(g, "Ldh-str", ""));
}

TEST(Abnf, RepetitionBoundsOptionsAndGroups) {
    auto g = grammar(
        "r = 2*3\"a\" [ \"-\" ( \"x\" / \"y\" ) ] 2DIGIT\n"
        "any = *\"z\"\n");
    EXPECT_TRUE(ok(g, "r", "aa12"));
    EXPECT_TRUE(ok(g, "r", "aaa-y12"));
    EXPECT_FALSE(ok(g, "r", "a12"));
    EXPECT_FALSE(ok(g, "r", "aaaa12"));
    EXPECT_FALSE(ok(g, "r", "aa-12"));
    EXPECT_FALSE(ok(g, "r", "aa123"));
    EXPECT_TRUE(ok(g, "any", ""));
    EXPECT_TRUE(ok(g, "any", "zzzz"));
}

TEST(Abnf, NumericValuesAndCase) {
    auto g = grammar(
        "range = %x41-43\n"
        "crlf2 = %d13.10\n"
        "bin = %b1000001\n"
        "ci = \"Mail\"\n"
        "cs = %s\"Mail\"\n"
        "high = %x80-FF\n");
    EXPECT_TRUE(ok(g, "range", "B"));
    EXPECT_FALSE(ok(g, "range", "D"));
    EXPECT_TRUE(ok(g, "crlf2", "\r\n"));
    EXPECT_TRUE(ok(g, "bin", "A"));
    EXPECT_TRUE(ok(g, "ci", "mAIL"));
    EXPECT_TRUE(ok(g, "cs", "Mail"));
    EXPECT_FALSE(ok(g, "cs", "mail"));
    EXPECT_TRUE(ok(g, "high", "\xff"));
    EXPECT_FALSE(ok(g, "high", "\x7f"));
}

TEST(Abnf, IncrementalAlternativesCommentsAndContinuations) {
    auto g = grammar(
        "; a comment line\n"
        "cmd = \"A\" ; trailing comment with \"quotes\" and / slashes\n"
        "cmd =/ \"B\"\n"
        "long = \"x\"\n"
        "       \"y\"   ; continued on the next line\n");
    EXPECT_TRUE(ok(g, "cmd", "a"));
    EXPECT_TRUE(ok(g, "cmd", "b"));
    EXPECT_FALSE(ok(g, "cmd", "c"));
    EXPECT_TRUE(ok(g, "long", "xy"));
}

TEST(Abnf, RefusesWhatItCannotCheck) {
    mc::Grammar g;
    EXPECT_THROW(g.add("r = <any text, in prose>\n"), mc::AbnfError);
    EXPECT_THROW(g.add("r = \"unterminated\n"), mc::AbnfError);
    EXPECT_THROW(g.add("r = %x100\n"), mc::AbnfError);
    EXPECT_THROW(g.add("r = 3*2\"a\"\n"), mc::AbnfError);
    EXPECT_THROW(g.add("  = \"a\"\n"), mc::AbnfError);
    mc::Grammar twice;
    EXPECT_THROW(twice.add("r = \"a\"\nr = \"b\"\n"), mc::AbnfError);
    mc::Grammar missing;
    missing.add("r = undefined-rule\n");
    EXPECT_THROW(missing.resolve(), mc::AbnfError);
}

TEST(Abnf, LeftRecursionMatchesNothingInsteadOfLooping) {
    auto g = grammar("r = r \"a\" / \"b\"\n");
    EXPECT_TRUE(ok(g, "r", "b"));
    EXPECT_NE(g.match("r", "aaa"), MatchResult::match);
}

TEST(Abnf, HostileGrammarStopsAtTheStepLimit) {
    // Nested unbounded repetitions of a possibly-empty element: exponential for a naive
    // backtracker; here memoisation plus the step limit give an answer either way, quickly.
    auto g = grammar(
        "r = *( *( *\"a\" ) ) \"b\"\n"
        "deep = 1*( 1*( 1*( 1*( 1*( 1*( 1*( 1*\"a\" ) ) ) ) ) ) ) \"b\"\n");
    std::string input(5000, 'a');
    MatchResult r = g.match("deep", input);
    EXPECT_NE(r, MatchResult::match);
    EXPECT_EQ(g.match("r", "aaab"), MatchResult::match);
    EXPECT_EQ(g.match("deep", "aaaab"), MatchResult::match);
}

namespace {

// Rules that exercise the first-byte sets: case-insensitive literal prefixes, alternatives whose
// first bytes overlap, prefixes that can be empty (the first set must look past them), an empty
// string, recursion through a rule, and %s (case-sensitive) literals.
constexpr const char* kPrefixGrammar =
    "cmd = tag SP ( \"LOGIN\" / \"LOGOUT\" / %s\"list\" ) [ SP arg ]\n"
    "tag = 1*( ALPHA / DIGIT / \".\" )\n"
    "arg = *( \"x\" / \"a\" ) / nest\n"
    "opt = [ \"-\" ] *SP \"b\"\n"
    "nest = \"(\" *nest \")\" / \"z\"\n"
    "empty = \"\" \"q\"\n"
    "ovl = \"ab\" \"c\" / \"a\" \"bd\" / %x61 / \"AB\"\n"
    "maybe = *\"a\" [ opt ] \n";

}  // namespace

TEST(Abnf, FirstByteSetsKeepCaseAndLookPastEmptyPrefixes) {
    auto g = grammar(kPrefixGrammar);
    EXPECT_TRUE(ok(g, "cmd", "a1 login"));
    EXPECT_TRUE(ok(g, "cmd", "a1 LoGoUt x"));
    EXPECT_TRUE(ok(g, "cmd", "a1 list (()z)"));
    EXPECT_FALSE(ok(g, "cmd", "a1 LIST"));  // %s: case-sensitive
    EXPECT_TRUE(ok(g, "opt", "b"));
    EXPECT_TRUE(ok(g, "opt", "  b"));
    EXPECT_TRUE(ok(g, "opt", "- b"));
    EXPECT_TRUE(ok(g, "empty", "q"));
    EXPECT_TRUE(ok(g, "ovl", "abc"));
    EXPECT_TRUE(ok(g, "ovl", "abd"));
    EXPECT_TRUE(ok(g, "ovl", "a"));
    EXPECT_TRUE(ok(g, "ovl", "ab"));  // "AB" is case-insensitive
    EXPECT_FALSE(ok(g, "ovl", "b"));
    EXPECT_TRUE(ok(g, "maybe", ""));
    EXPECT_TRUE(ok(g, "maybe", "aa b"));
}

TEST(Abnf, PruningAndSharedCacheChangeNoAnswer) {
    // The same grammar unresolved (no first-byte sets: every alternative is tried) is the
    // reference; resolved, with and without one MatchCache carried across rules and inputs, it
    // must give the same answer for every input.
    mc::Grammar plain;
    plain.add(kPrefixGrammar);
    auto pruned = grammar(kPrefixGrammar);
    mc::MatchCache cache;
    const char* rules[] = {"cmd", "tag", "arg", "opt", "nest", "empty", "ovl", "maybe"};
    const std::string alphabet = "aAbBcdxzq.1()- LOGINoutlist";
    std::mt19937 rng(7);
    std::size_t matched = 0;
    for (int i = 0; i < 4000; ++i) {
        std::string s;
        std::size_t len = rng() % 12;
        for (std::size_t k = 0; k < len; ++k)
            s += alphabet[rng() % alphabet.size()];
        if (i % 3 == 0) s = "a1 " + std::string(i % 2 ? "login" : "list") + s.substr(0, 5);
        for (const char* r : rules) {
            MatchResult want = plain.match(r, s);
            matched += want == MatchResult::match;
            EXPECT_EQ(pruned.match(r, s), want) << r << " on \"" << s << "\"";
            EXPECT_EQ(pruned.match(r, s, cache), want) << r << " on \"" << s << "\" (cached)";
        }
    }
    EXPECT_GT(matched, 100u);  // the inputs reach the matching side, not only refusals
}

TEST(Abnf, ByteClassShortcutsChangeNoAnswer) {
    // Byte classes (ranges, one-character strings either case, alternations and rules of them)
    // are matched from their first-byte sets, and bounded or unbounded runs of them by a scan;
    // `mixed` is not a class (one alternative is two bytes) and takes the general path. The
    // unresolved grammar (no shortcuts) is the reference.
    constexpr const char* kClasses =
        "cls = %x41-43 / \"q\" / %s\"z\" / digit2\n"
        "digit2 = %x30-32 / \".\"\n"
        "mixed = cls / \"ab\"\n"
        "runs = 2*3cls *digit2 [ \"-\" ] *cls\n"
        "word = 1*( cls / %x61 ) \"q\"\n"
        "opt = *1cls 1*mixed\n"
        "exact = 3cls\n";
    mc::Grammar plain;
    plain.add(kClasses);
    auto pruned = grammar(kClasses);
    mc::MatchCache cache;
    const char* rules[] = {"cls", "digit2", "mixed", "runs", "word", "opt", "exact"};
    const std::string alphabet = "aAbBcCqQzZ012.-x";
    std::mt19937 rng(11);
    std::size_t matched = 0;
    for (int i = 0; i < 4000; ++i) {
        std::string s;
        std::size_t len = rng() % 9;
        for (std::size_t k = 0; k < len; ++k)
            s += alphabet[rng() % alphabet.size()];
        for (const char* r : rules) {
            MatchResult want = plain.match(r, s);
            matched += want == MatchResult::match;
            EXPECT_EQ(pruned.match(r, s), want) << r << " on \"" << s << "\"";
            EXPECT_EQ(pruned.match(r, s, cache), want) << r << " on \"" << s << "\" (cached)";
        }
    }
    EXPECT_GT(matched, 200u);
    EXPECT_EQ(pruned.match("exact", "AqZ"), MatchResult::no_match);  // %s"z": lower case only
    EXPECT_EQ(pruned.match("exact", "Aqz"), MatchResult::match);
    EXPECT_EQ(pruned.match("runs", "BB12-C"), MatchResult::match);
    EXPECT_EQ(pruned.match("runs", "BB12-c"), MatchResult::no_match);  // a range has one case
    EXPECT_EQ(pruned.match("runs", "BBBB"), MatchResult::match);       // 3 then *cls takes the rest
    EXPECT_EQ(pruned.match("word", "aAq"), MatchResult::match);
}

TEST(Abnf, AnAbortedMatchLeavesNothingInTheCache) {
    // `wrap` gives up at the work bound with `deep` still open at position 0 (it is on the stack
    // when the bound is hit); a later match through the same cache must not take that open entry
    // for left recursion (which would answer no_match at once) but work it out again.
    auto g = grammar(
        "wrap = deep\n"
        "again = deep\n"
        "deep = 1*( 1*( 1*( 1*( 1*( 1*( 1*( 1*a4 ) ) ) ) ) ) ) \"b\"\n"
        "a4 = \"a\"\n"
        "simple = 1*a4\n");
    std::string input(5000, 'a');
    mc::MatchCache cache;
    ASSERT_EQ(g.match("wrap", input, cache), MatchResult::too_complex);
    EXPECT_EQ(g.match("again", input), MatchResult::too_complex);
    EXPECT_EQ(g.match("again", input, cache), MatchResult::too_complex);
    EXPECT_EQ(g.match("simple", input, cache), MatchResult::match);
}
