// proto/imap/parser_test.cpp: the IMAP command parser fed whole, byte by byte and at random
// splits; literals of every kind; FETCH sections; malformed input and resynchronisation; every
// limit crossed.
#include "proto/imap/parser.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace millipost::imap;
using S = Parser::Status;
using K = Arg::Kind;
using F = Arg::Form;

namespace {

struct Event {
    S status;
    std::size_t offset;  // stream offset just after the event
    Command cmd;         // Command only
    ParseError err;      // error statuses only
    bool operator==(const Event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
    return os << "event " << static_cast<int>(e.status) << " at " << e.offset << " cmd "
              << e.cmd.tag << " " << e.cmd.name << " err '" << e.err.text << "' tag '" << e.err.tag
              << "'";
}

// Feeds `in` cut at the given offsets and records every event.
std::vector<Event> run_cuts(std::string_view in, std::vector<std::size_t> cuts,
                            const Limits& limits = {}) {
    Parser p(limits);
    std::vector<Event> out;
    std::sort(cuts.begin(), cuts.end());
    cuts.push_back(in.size());
    std::size_t pos = 0;
    for (auto cut : cuts) {
        cut = std::min(cut, in.size());
        if (cut < pos) continue;
        std::string_view piece = in.substr(pos, cut - pos);
        while (!piece.empty()) {
            std::size_t used = 0;
            auto st = p.feed(piece, used);
            EXPECT_LE(used, piece.size());
            piece.remove_prefix(used);
            pos += used;
            if (st == S::NeedMore) {
                EXPECT_TRUE(piece.empty());
                break;
            }
            Event e{st, pos, {}, {}};
            if (st == S::Command)
                e.cmd = p.command();
            else if (st != S::NeedContinuation)
                e.err = p.error();
            out.push_back(e);
            if (st != S::Command && st != S::NeedContinuation && p.error().fatal) return out;
        }
        pos = cut;
    }
    return out;
}

std::vector<Event> run(std::string_view in, std::size_t step, const Limits& limits = {}) {
    std::vector<std::size_t> cuts;
    for (std::size_t c = step; c < in.size(); c += step)
        cuts.push_back(c);
    return run_cuts(in, cuts, limits);
}

// Whole and byte by byte must agree; returns the events.
std::vector<Event> events(std::string_view in, const Limits& limits = {}) {
    auto whole = run(in, in.size() + 1, limits);
    auto bytes = run(in, 1, limits);
    EXPECT_EQ(whole, bytes) << "whole vs byte-by-byte differ for: " << in.substr(0, 200);
    auto threes = run(in, 3, limits);
    EXPECT_EQ(whole, threes);
    return whole;
}

// The single command of a well-formed input.
Command one(std::string_view in, const Limits& limits = {}) {
    auto ev = events(in, limits);
    std::vector<Event> cmds;
    for (auto& e : ev) {
        if (e.status == S::NeedContinuation) continue;
        cmds.push_back(e);
    }
    EXPECT_EQ(cmds.size(), 1u) << in;
    if (cmds.empty() || cmds[0].status != S::Command) {
        ADD_FAILURE() << "no command for " << in << (cmds.empty() ? "" : ": " + cmds[0].err.text);
        return {};
    }
    return cmds[0].cmd;
}

Arg atom(std::string t) {
    Arg a;
    a.text = std::move(t);
    return a;
}
Arg str(std::string t, F form = F::Quoted) {
    Arg a;
    a.kind = K::String;
    a.form = form;
    a.text = std::move(t);
    return a;
}
Arg list(std::vector<Arg> items) {
    Arg a;
    a.kind = K::List;
    a.items = std::move(items);
    return a;
}
Arg nil(std::string t = "NIL") {
    Arg a;
    a.kind = K::Nil;
    a.text = std::move(t);
    return a;
}

// The error of an input that holds one broken command followed by "Z9 NOOP\r\n", which must
// still be parsed: the parser resynchronises by itself.
ParseError broken(std::string_view bad, S want = S::Error, const Limits& limits = {}) {
    std::string in = std::string(bad) + "Z9 NOOP\r\n";
    auto ev = events(in, limits);
    EXPECT_GE(ev.size(), 2u) << bad;
    if (ev.size() < 2) return {};
    EXPECT_EQ(ev.front().status, want) << bad;
    EXPECT_EQ(ev.back().status, S::Command) << bad << ": " << ev.front().err.text;
    EXPECT_EQ(ev.back().cmd.tag, "Z9") << bad;
    EXPECT_EQ(ev.back().cmd.name, "NOOP") << bad;
    return ev.front().err;
}

}  // namespace

// ---- Well-formed commands -----------------------------------------------------------------------

TEST(ImapParser, SimpleCommand) {
    auto c = one("a1 noop\r\n");
    EXPECT_EQ(c.tag, "a1");
    EXPECT_EQ(c.name, "NOOP");
    EXPECT_FALSE(c.uid);
    EXPECT_TRUE(c.args.empty());
}

TEST(ImapParser, ArgumentsOfEveryKind) {
    auto c = one("A2 X atom \"quo\\\"ted\\\\\" NIL nil (a (b \"c\") ()) \"\"\r\n");
    EXPECT_EQ(c.name, "X");
    std::vector<Arg> want = {atom("atom"),
                             str("quo\"ted\\"),
                             nil("NIL"),
                             nil("nil"),
                             list({atom("a"), list({atom("b"), str("c")}), list({})}),
                             str("")};
    EXPECT_EQ(c.args, want);
    // A quoted "NIL" is a string, not nil.
    EXPECT_EQ(one("A3 SELECT \"NIL\"\r\n").args[0].kind, K::String);
}

TEST(ImapParser, UidPrefix) {
    auto c = one("7 Uid Fetch 1:* FLAGS\r\n");
    EXPECT_EQ(c.name, "FETCH");
    EXPECT_TRUE(c.uid);
    EXPECT_EQ(c.args, (std::vector<Arg>{atom("1:*"), atom("FLAGS")}));
}

TEST(ImapParser, FetchSectionsAreStructured) {
    auto c =
        one("A1 FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.100> BODY[] "
            "BINARY[1.2] RFC822.SIZE)\r\n");
    ASSERT_EQ(c.args.size(), 2u);
    const auto& items = c.args[1].items;
    ASSERT_EQ(items.size(), 5u);
    EXPECT_EQ(items[0], atom("FLAGS"));
    Arg peek = atom("BODY.PEEK");
    peek.section = true;
    peek.items = {atom("HEADER.FIELDS"), list({atom("From"), str("To")})};
    peek.suffix = "<0.100>";
    EXPECT_EQ(items[1], peek);
    Arg body = atom("BODY");
    body.section = true;
    EXPECT_EQ(items[2], body);
    Arg bin = atom("BINARY");
    bin.section = true;
    bin.items = {atom("1.2")};
    EXPECT_EQ(items[3], bin);
    // A section without a list around it, and header names sent as a literal.
    auto d = one("A2 UID FETCH 5 BODY[HEADER.FIELDS ({4}\r\nFrom)]\r\n");
    ASSERT_EQ(d.args.size(), 2u);
    EXPECT_TRUE(d.args[1].section);
    EXPECT_EQ(d.args[1].items[1].items[0], str("From", F::Literal));
}

TEST(ImapParser, BracketsOutsideFetchAreAtomChars) {
    auto c = one("A1 SELECT [Gmail]/Sent\r\n");
    EXPECT_EQ(c.args, (std::vector<Arg>{atom("[Gmail]/Sent")}));
    EXPECT_EQ(one("A1 LIST \"\" a[b\r\n").args[1], atom("a[b"));
    EXPECT_EQ(one("A1 LIST \"\" %/*\r\n").args[1], atom("%/*"));
}

TEST(ImapParser, SynchronizingLiteralsAskForContinuation) {
    std::string in = "A1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n";
    auto ev = events(in);
    ASSERT_EQ(ev.size(), 3u);
    EXPECT_EQ(ev[0].status, S::NeedContinuation);
    EXPECT_EQ(ev[0].offset, std::string("A1 LOGIN {5}\r\n").size());
    EXPECT_EQ(ev[1].status, S::NeedContinuation);
    EXPECT_EQ(ev[2].status, S::Command);
    EXPECT_EQ(ev[2].cmd.args,
              (std::vector<Arg>{str("alice", F::Literal), str("secret", F::Literal)}));
    EXPECT_EQ(ev[2].offset, in.size());
}

TEST(ImapParser, NonSynchronizingAndBinaryLiterals) {
    std::string in =
        "A1 APPEND box (\\Seen) {3+}\r\na\r\n ~{4}\r\n" + std::string("x\0y\n", 4) + " {0}\r\n\r\n";
    auto ev = events(in);
    ASSERT_EQ(ev.size(), 3u);  // two continuations: ~{4} and {0}
    EXPECT_EQ(ev[0].status, S::NeedContinuation);
    EXPECT_EQ(ev[1].status, S::NeedContinuation);
    ASSERT_EQ(ev[2].status, S::Command);
    EXPECT_EQ(ev[2].cmd.args,
              (std::vector<Arg>{atom("box"), list({atom("\\Seen")}), str("a\r\n", F::Literal),
                                str(std::string("x\0y\n", 4), F::Literal8), str("", F::Literal)}));
}

TEST(ImapParser, TildeIsAnAtomUnlessALiteralFollows) {
    EXPECT_EQ(one("A1 X ~ ~a\r\n").args, (std::vector<Arg>{atom("~"), atom("~a")}));
}

TEST(ImapParser, LenientSpacesAndBareLf) {
    EXPECT_EQ(one("A1 X  ( a  b )  c \n").args,
              (std::vector<Arg>{list({atom("a"), atom("b")}), atom("c")}));
}

TEST(ImapParser, SeveralCommandsInOneSpan) {
    std::string in = "1 NOOP\r\n2 CAPABILITY\r\n3 LOGOUT\r\n";
    auto ev = events(in);
    ASSERT_EQ(ev.size(), 3u);
    EXPECT_EQ(ev[0].cmd.name, "NOOP");
    EXPECT_EQ(ev[1].cmd.name, "CAPABILITY");
    EXPECT_EQ(ev[2].cmd.name, "LOGOUT");
    EXPECT_EQ(ev[1].offset, 22u);
}

TEST(ImapParser, LargeLiteralIsCopiedOnce) {
    const std::size_t n = 12 * 1024 * 1024;
    std::string body(n, 'm');
    std::string head = "A1 APPEND INBOX {" + std::to_string(n) + "}\r\n";
    Parser p;
    std::size_t used = 0;
    ASSERT_EQ(p.feed(head, used), S::NeedContinuation);
    ASSERT_EQ(used, head.size());
    const char* data = nullptr;
    for (std::size_t pos = 0; pos < n; pos += 65536) {
        std::string_view chunk(body.data() + pos, std::min<std::size_t>(65536, n - pos));
        ASSERT_EQ(p.feed(chunk, used), S::NeedMore);
        ASSERT_EQ(used, chunk.size());
        // White-box: the command being read holds the literal's buffer, reserved once at the
        // announcement; it must never move while the data arrives.
        const char* now = p.command().args.back().text.data();
        if (!data) data = now;
        ASSERT_EQ(now, data);
    }
    ASSERT_EQ(p.feed("\r\n", used), S::Command);
    Command c = p.take_command();
    ASSERT_EQ(c.args.size(), 2u);
    EXPECT_EQ(c.args[1].text.size(), n);
    EXPECT_EQ(c.args[1].text.capacity(), n);  // no growth: reserved exactly, filled in place
    EXPECT_EQ(c.args[1].text.data(), data);   // and moved out, not copied
    EXPECT_TRUE(p.command().args.empty());
}

TEST(ImapParser, StateQueries) {
    Parser p;
    EXPECT_TRUE(p.at_command_start());
    std::size_t used = 0;
    EXPECT_EQ(p.feed("A1 NO", used), S::NeedMore);
    EXPECT_EQ(p.take_command(), Command{});  // nothing to take mid-command
    EXPECT_FALSE(p.at_command_start());
    EXPECT_EQ(p.buffered(), 5u);
    EXPECT_EQ(p.feed("OP\r\nB", used), S::Command);
    EXPECT_EQ(used, 4u);
    EXPECT_TRUE(p.at_command_start());
    EXPECT_EQ(p.buffered(), 0u);
}

// ---- Malformed input ----------------------------------------------------------------------------

TEST(ImapParser, UnbalancedParentheses) {
    auto e = broken("A1 FETCH 1 (FLAGS\r\n");
    EXPECT_EQ(e.tag, "A1");
    EXPECT_EQ(e.command, "FETCH");
    EXPECT_TRUE(e.resynced);
    EXPECT_EQ(e.text, "Missing ')'");
    e = broken("A2 X a)\r\n");
    EXPECT_EQ(e.text, "Unexpected ')'");
    EXPECT_FALSE(e.resynced);
    EXPECT_EQ(broken("A3 FETCH 1 BODY[TEXT\r\n").text, "Missing ']'");
    EXPECT_EQ(broken("A4 FETCH 1 BODY[(a])\r\n").text, "Missing ')' before ']'");
    EXPECT_EQ(broken("A5 FETCH 1 (BODY[a)]\r\n").text, "Missing ']' before ')'");
    EXPECT_EQ(broken("A6 X \"a\"]\r\n").text, "Unexpected ']'");
}

TEST(ImapParser, BadLiteralSyntax) {
    for (auto bad : {"A1 LOGIN {12x}\r\n", "A1 LOGIN {}\r\n", "A1 LOGIN {+}\r\n",
                     "A1 LOGIN {5+x}\r\n", "A1 LOGIN {5} \r\n", "A1 LOGIN {5}x\r\n",
                     "A1 LOGIN {5\r\n", "A1 LOGIN a{5}\r\n", "A1 LOGIN ~{x}\r\n"}) {
        auto e = broken(bad);
        EXPECT_EQ(e.tag, "A1") << bad;
        EXPECT_EQ(e.command, "LOGIN") << bad;
    }
}

TEST(ImapParser, TagProblems) {
    auto e = broken(" NOOP\r\n");
    EXPECT_EQ(e.tag, "");
    EXPECT_EQ(e.text, "Missing tag");
    EXPECT_EQ(broken("+ NOOP\r\n").tag, "");
    EXPECT_EQ(broken("* NOOP\r\n").tag, "");
    EXPECT_EQ(broken("a\"b NOOP\r\n").tag, "");
    e = broken("A1\r\n");
    EXPECT_EQ(e.tag, "A1");
    EXPECT_EQ(e.text, "Missing command name");
    EXPECT_TRUE(e.resynced);
    EXPECT_EQ(broken("A1 \r\n").text, "Missing command name");
    EXPECT_EQ(broken("A1  NOOP\r\n").text, "Missing command name");
    EXPECT_EQ(broken("A1 UID\r\n").text, "Missing command after UID");
    EXPECT_EQ(broken("A1 NO(OP\r\n").tag, "A1");
}

TEST(ImapParser, EmptyLine) {
    auto e = broken("\r\n");
    EXPECT_EQ(e.text, "Empty command line");
    EXPECT_TRUE(e.resynced);
    EXPECT_EQ(e.tag, "");
}

TEST(ImapParser, NonAsciiAndControlBytes) {
    EXPECT_EQ(broken("A1 SELECT Entwürfe\r\n").text.substr(0, 26), "Invalid character in atom:");
    EXPECT_EQ(broken(std::string("A1 SELECT a\0b\r\n", 15)).text,
              "Invalid character in atom: NUL byte");
    EXPECT_EQ(broken(std::string("A1 SELECT \"a\0b\"\r\n", 17)).text, "NUL byte in quoted string");
    EXPECT_EQ(broken(std::string("A1\0 NOOP\r\n", 10)).tag, "");
    EXPECT_EQ(broken("A1 SELECT \x01\r\n").tag, "A1");
    // UTF-8 in a quoted string is fine (IMAP4rev2).
    EXPECT_EQ(one("A1 SELECT \"Entwürfe\"\r\n").args[0], str("Entwürfe"));
}

TEST(ImapParser, CrWithoutLf) {
    auto e = broken("A1 NOOP\rB1 NOOP\r\n");
    EXPECT_EQ(e.text, "CR not followed by LF");
    EXPECT_EQ(e.tag, "A1");
    EXPECT_EQ(broken("A1 LOGIN \"a\rb\" c\r\n").text, "Unterminated quoted string");
}

TEST(ImapParser, QuotedStringProblems) {
    EXPECT_EQ(broken("A1 LOGIN \"abc\r\n").text, "Unterminated quoted string");
    EXPECT_EQ(broken("A1 LOGIN \"abc\n").text, "Unterminated quoted string");
    EXPECT_EQ(broken("A1 LOGIN \"a\\bc\"\r\n").text.substr(0, 30),
              "Invalid escape in quoted strin");
    EXPECT_EQ(broken("A1 LOGIN \"a\"\"b\"\r\n").text, "Missing space before '\"'");
    EXPECT_EQ(broken("A1 LOGIN (a)(b)\r\n").text, "Missing space before '('");
}

TEST(ImapParser, NulInPlainLiteralIsRefusedAfterTheLiteral) {
    std::string in = "A1 APPEND x {3+}\r\n" + std::string("a\0b", 3) + " more\r\nZ9 NOOP\r\n";
    auto ev = events(in);
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0].status, S::Error);
    EXPECT_EQ(ev[0].err.tag, "A1");
    EXPECT_FALSE(ev[0].err.resynced);
    EXPECT_EQ(ev[1].cmd.tag, "Z9");
}

TEST(ImapParser, BrokenCommandsDiscardTheirNonSyncLiterals) {
    // The error comes before the literal, which would otherwise be read as a command.
    std::string in = "A1 X \"a\\q\" {12+}\r\nB1 LOGOUT\r\n\r\nZ9 NOOP\r\n";
    auto ev = events(in);
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0].status, S::Error);
    EXPECT_EQ(ev[1].cmd.tag, "Z9");
    // A synchronizing literal ends the broken command: the client waits for "+".
    in = "A1 X \"a\\q\" {12}\r\nZ9 NOOP\r\n";
    ev = events(in);
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[1].cmd.tag, "Z9");
}

// ---- Limits -------------------------------------------------------------------------------------

TEST(ImapParserLimits, DefaultsAreNamed) {
    Limits l;
    EXPECT_EQ(l.max_line, kDefaultMaxLine);
    EXPECT_EQ(l.max_literal, kDefaultMaxLiteral);
    EXPECT_EQ(l.max_command_literals, kDefaultMaxCommandLiterals);
    EXPECT_EQ(l.max_depth, kDefaultMaxDepth);
    EXPECT_EQ(l.max_args, kDefaultMaxArgs);
    EXPECT_EQ(l.max_nonsync_literal, 4096u);
    EXPECT_EQ(l.max_skip_literal, kDefaultMaxSkipLiteral);
}

TEST(ImapParserLimits, LineLength) {
    Limits l;
    l.max_line = 20;
    // 20 octets including CRLF fit, 21 do not.
    EXPECT_EQ(one("A1 X 0123456789abc\r\n", l).args[0], atom("0123456789abc"));
    auto e = broken("A1 X 0123456789abcd\r\n", S::LineTooLong, l);
    EXPECT_EQ(e.tag, "A1");
    EXPECT_FALSE(e.resynced);
    // Literal data does not count, the text after it does.
    EXPECT_EQ(one("A1 X {30+}\r\n" + std::string(30, 'x') + " a\r\n", l).args.size(), 2u);
    broken("A1 X {30+}\r\n" + std::string(30, 'x') + " abcdefgh\r\n", S::LineTooLong, l);
    // With the default, an endless line is cut off at 64 KiB and skipped without memory.
    Parser p;
    std::string big(kDefaultMaxLine + 10, 'x');
    big.replace(0, 5, "A1 X ");
    std::size_t used = 0;
    EXPECT_EQ(p.feed(big, used), S::LineTooLong);
    EXPECT_EQ(used, kDefaultMaxLine);
    EXPECT_EQ(p.feed(std::string_view(big).substr(used), used), S::NeedMore);
    EXPECT_EQ(p.buffered(), 0u);
}

TEST(ImapParserLimits, SynchronizingLiteralTooBig) {
    Limits l;
    l.max_literal = 100;
    EXPECT_EQ(one("A1 APPEND x {100}\r\n" + std::string(100, 'm') + "\r\n", l).args[1].text.size(),
              100u);
    auto e = broken("A1 APPEND x {101}\r\n", S::LiteralTooBig, l);
    EXPECT_EQ(e.tag, "A1");
    EXPECT_EQ(e.command, "APPEND");
    EXPECT_TRUE(e.resynced);  // the client waits for "+": nothing follows
    EXPECT_TRUE(e.literal_sync);
    EXPECT_EQ(e.literal_size, 101u);
    EXPECT_FALSE(e.fatal);
    // A size that does not fit 64 bits.
    e = broken("A1 APPEND x {99999999999999999999999}\r\n", S::LiteralTooBig, l);
    EXPECT_EQ(e.literal_size, UINT64_MAX);
}

TEST(ImapParserLimits, NonSyncLiteralOverLiteralMinusIsSkipped) {
    // LITERAL- by default: {4096+} is fine, {4097+} is refused and its data discarded.
    std::string ok = "A1 APPEND x {4096+}\r\n" + std::string(4096, 'm') + "\r\n";
    EXPECT_EQ(one(ok).args[1].text.size(), 4096u);
    std::string data(4097, 'm');
    data.replace(100, 11, "\r\nB1 NOOP\r\n");  // would be a command if not skipped
    auto e = broken("A1 APPEND x {4097+}\r\n" + data + "\r\n", S::LiteralTooBig);
    EXPECT_FALSE(e.literal_sync);
    EXPECT_EQ(e.literal_size, 4097u);
    EXPECT_FALSE(e.resynced);
    EXPECT_FALSE(e.fatal);
    // LITERAL+: the same literal is accepted.
    Limits plus;
    plus.max_nonsync_literal = plus.max_literal;
    EXPECT_EQ(one("A1 APPEND x {4097+}\r\n" + data + "\r\n", plus).args[1].text, data);
}

TEST(ImapParserLimits, NonSyncLiteralOverTheSkipCapIsFatal) {
    Limits l;
    l.max_skip_literal = 10000;
    auto ev = events("A1 APPEND x {10001+}\r\nxxxx", l);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].status, S::LiteralTooBig);
    EXPECT_TRUE(ev[0].err.fatal);
    // And the parser stays dead.
    Parser p(l);
    std::size_t used = 0;
    EXPECT_EQ(p.feed("A1 APPEND x {10001+}\r\n", used), S::LiteralTooBig);
    EXPECT_EQ(p.feed("B1 NOOP\r\n", used), S::LiteralTooBig);
    EXPECT_EQ(used, 0u);
    // Inside an already broken command too, and with a size over 64 bits.
    ev = events("A1 X \"\\q\" {10001+}\r\n", l);
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[1].status, S::LiteralTooBig);
    EXPECT_TRUE(ev[1].err.fatal);
    EXPECT_EQ(ev[1].err.tag, "A1");
    ev = events("A1 X \"\\q\" {99999999999999999999999+}\r\n", l);
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_TRUE(ev[1].err.fatal);
    EXPECT_EQ(ev[1].err.literal_size, UINT64_MAX);
}

TEST(ImapParserLimits, AllLiteralsOfACommand) {
    Limits l;
    l.max_literal = 10;
    l.max_command_literals = 15;
    EXPECT_EQ(one("A1 X {8}\r\n12345678 {7}\r\n1234567\r\n", l).args.size(), 2u);
    auto ev = events("A1 X {8}\r\n12345678 {8}\r\nZ9 NOOP\r\n", l);
    ASSERT_EQ(ev.size(), 3u);
    EXPECT_EQ(ev[1].status, S::LiteralTooBig);
    EXPECT_EQ(ev[1].err.literal_size, 8u);
    EXPECT_EQ(ev[2].cmd.tag, "Z9");
}

TEST(ImapParserLimits, Depth) {
    Limits l;
    l.max_depth = 3;
    EXPECT_EQ(one("A1 X (((a)))\r\n", l).args.size(), 1u);
    auto e = broken("A1 X ((((a))))\r\n", S::TooDeep, l);
    EXPECT_EQ(e.tag, "A1");
    // A section counts as a level.
    EXPECT_EQ(one("A1 FETCH 1 (BODY[HEADER.FIELDS (a)])\r\n", l).args.size(), 2u);
    broken("A1 FETCH 1 ((BODY[HEADER.FIELDS (a)]))\r\n", S::TooDeep, l);
    // Default: 32.
    std::string deep =
        "A1 X " + std::string(kDefaultMaxDepth, '(') + std::string(kDefaultMaxDepth, ')') + "\r\n";
    EXPECT_EQ(one(deep).args.size(), 1u);
    broken("A1 X " + std::string(kDefaultMaxDepth + 1, '(') + "\r\n", S::TooDeep);
}

TEST(ImapParserLimits, Arguments) {
    Limits l;
    l.max_args = 4;
    EXPECT_EQ(one("A1 X a (b c)\r\n", l).args.size(), 2u);  // 4 nodes: a, list, b, c
    EXPECT_EQ(broken("A1 X a (b c) d\r\n", S::Error, l).text, "Too many arguments");
    EXPECT_EQ(one("A1 X a b c {1}\r\nd\r\n", l).args.size(), 4u);
    auto e = broken("A1 X a b c d {1}\r\n", S::Error, l);  // refused instead of "+"
    EXPECT_EQ(e.text, "Too many arguments");
    EXPECT_TRUE(e.resynced);
    EXPECT_EQ(broken("A1 X a b c d \"e\"\r\n", S::Error, l).text, "Too many arguments");
    // A refused non-synchronizing literal is still skipped.
    EXPECT_EQ(broken("A1 X a b c d {3+}\r\nZZZ\r\n", S::Error, l).text, "Too many arguments");
}

TEST(ImapParserLimits, NewLimitsApplyFromTheNextCommand) {
    Parser p;
    std::size_t used = 0;
    Limits small;
    small.max_line = 100;
    p.set_limits(small);  // between commands: at once
    EXPECT_EQ(p.limits().max_line, 100u);
    EXPECT_EQ(p.feed("A1 X aaaaaaaaaa", used), S::NeedMore);
    Limits tight;
    tight.max_line = 12;
    p.set_limits(tight);
    EXPECT_EQ(p.feed("aaaaaaaaaaa\r\n", used), S::Command);
    EXPECT_EQ(p.limits().max_line, 12u);
    EXPECT_EQ(p.feed("B1 X aaaaaaaaaaa\r\n", used), S::LineTooLong);
}

// ---- Properties ---------------------------------------------------------------------------------

namespace {

// A test-side serializer for commands (independent of writer.h).
void serialize(std::string& out, const Arg& a, bool sync) {
    switch (a.kind) {
        case K::Atom:
        case K::Nil:
            out += a.text;
            break;
        case K::List:
            out += '(';
            for (std::size_t i = 0; i < a.items.size(); ++i) {
                if (i) out += ' ';
                serialize(out, a.items[i], sync);
            }
            out += ')';
            break;
        case K::String:
            if (a.form == F::Quoted) {
                out += '"';
                for (char c : a.text) {
                    if (c == '"' || c == '\\') out += '\\';
                    out += c;
                }
                out += '"';
            } else {
                if (a.form == F::Literal8) out += '~';
                out += '{' + std::to_string(a.text.size()) + (sync ? "}\r\n" : "+}\r\n") + a.text;
            }
            break;
    }
}

Arg gen_arg(int depth) {
    int kind = *rc::gen::inRange(0, depth > 0 ? 6 : 5);
    Arg a;
    switch (kind) {
        case 0:
        case 1: {
            static const std::string kChars = "abcXYZ019!#$&'+,-./:;<=>?@^_`|}~*%\\";
            auto n = *rc::gen::inRange<std::size_t>(1, 8);
            for (std::size_t i = 0; i < n; ++i)
                a.text += kChars[*rc::gen::inRange<std::size_t>(0, kChars.size())];
            if (a.text.size() == 3 && (a.text[0] | 0x20) == 'n' && (a.text[1] | 0x20) == 'i' &&
                (a.text[2] | 0x20) == 'l')
                a.kind = K::Nil;
            if (a.text[0] == '~' && a.text.size() > 1 && a.text[1] == '{') a.text[1] = 'x';
            break;
        }
        case 2:
            a.kind = K::Nil;
            a.text = *rc::gen::element<std::string>("NIL", "nil", "Nil");
            break;
        case 3: {
            a.kind = K::String;
            auto s = *rc::gen::arbitrary<std::string>();
            for (auto& c : s)
                if (c == '\r' || c == '\n' || c == '\0') c = ' ';
            a.text = s;
            break;
        }
        case 4:
        case 5: {
            a.kind = K::String;
            a.form = *rc::gen::element(F::Literal, F::Literal8);
            a.text = *rc::gen::arbitrary<std::string>();
            if (a.form == F::Literal)
                for (auto& c : a.text)
                    if (c == '\0') c = '0';
            break;
        }
        default: {
            a.kind = K::List;
            auto n = *rc::gen::inRange(0, 4);
            for (int i = 0; i < n; ++i)
                a.items.push_back(gen_arg(depth - 1));
        }
    }
    return a;
}

}  // namespace

RC_GTEST_PROP(ImapParserProperty, AnySplitParsesTheSameCommand, ()) {
    Command cmd;
    cmd.tag = *rc::gen::element<std::string>("A1", "x.2", "tag0099");
    cmd.name = *rc::gen::element<std::string>("LOGIN", "APPEND", "SEARCH", "STORE", "X-FOO");
    cmd.uid = *rc::gen::arbitrary<bool>() && cmd.name != "LOGIN";
    auto n = *rc::gen::inRange(0, 6);
    for (int i = 0; i < n; ++i)
        cmd.args.push_back(gen_arg(3));
    bool sync = *rc::gen::arbitrary<bool>();
    std::string wire = cmd.tag + (cmd.uid ? " UID " : " ") + cmd.name;
    for (auto& a : cmd.args) {
        wire += ' ';
        serialize(wire, a, sync);
    }
    wire += "\r\n";
    Limits l;
    l.max_nonsync_literal = l.max_literal;  // LITERAL+
    auto cuts = *rc::gen::container<std::vector<std::size_t>>(
        rc::gen::inRange<std::size_t>(0, wire.size() + 1));
    auto split = run_cuts(wire, cuts, l);
    auto whole = run_cuts(wire, {}, l);
    RC_ASSERT(split == whole);
    RC_ASSERT(!whole.empty());
    RC_ASSERT(whole.back().status == S::Command);
    RC_ASSERT(whole.back().offset == wire.size());
    RC_ASSERT(whole.back().cmd == cmd);
    for (std::size_t i = 0; i + 1 < whole.size(); ++i)
        RC_ASSERT(whole[i].status == S::NeedContinuation && sync);
}

RC_GTEST_PROP(ImapParserProperty, ArbitraryBytesGiveTheSameEventsAtAnySplit,
              (const std::vector<std::size_t>& cuts)) {
    // Bytes biased towards the grammar's special characters.
    auto pieces = *rc::gen::container<std::vector<std::string>>(rc::gen::element<std::string>(
        "A1 ", "FETCH ", "1 ", "(", ")", "[", "]", "\"", "\\", "{3}", "{2+}", "~{1}", "\r\n", "\n",
        "\r", " ", "x", "NIL", std::string(1, '\0'), "\xc3\xa9", "<0.5>", "BODY[", "UID "));
    std::string wire;
    for (auto& p : pieces)
        wire += p;
    Limits l;
    l.max_line = 64;
    l.max_literal = 8;
    l.max_depth = 4;
    l.max_args = 16;
    l.max_nonsync_literal = 4;
    l.max_skip_literal = 32;
    std::vector<std::size_t> c;
    for (auto x : cuts)
        c.push_back(wire.empty() ? 0 : x % (wire.size() + 1));
    RC_ASSERT(run_cuts(wire, c, l) == run_cuts(wire, {}, l));
}
