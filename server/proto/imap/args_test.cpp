// proto/imap/args_test.cpp: the argument interpreters: sequence sets (with a round-trip
// property through the writer), modified UTF-7 (with a round-trip property over Unicode),
// mailbox names, flags, dates, STORE, STATUS, APPEND, FETCH, SEARCH and LIST.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <set>

#include "proto/imap/args.h"
#include "proto/imap/fetch.h"
#include "proto/imap/list.h"
#include "proto/imap/mutf7.h"
#include "proto/imap/parser.h"
#include "proto/imap/search.h"
#include "proto/imap/sequence_set.h"
#include "proto/imap/utf8.h"

using namespace millipost::imap;

namespace {

// One command line (literals allowed) through the real parser.
Command cmd(std::string_view line) {
    Parser p;
    std::size_t used = 0;
    while (!line.empty()) {
        auto st = p.feed(line, used);
        line.remove_prefix(used);
        if (st == Parser::Status::Command) return p.take_command();
        if (st != Parser::Status::NeedMore && st != Parser::Status::NeedContinuation) {
            ADD_FAILURE() << "parse error: " << p.error().text;
            return {};
        }
    }
    ADD_FAILURE() << "incomplete command";
    return {};
}

Arg arg(std::string_view text) {  // the first argument of "A X <text>"
    auto c = cmd("A X " + std::string(text) + "\r\n");
    return c.args.empty() ? Arg{} : c.args[0];
}

}  // namespace

// ---- Sequence sets ------------------------------------------------------------------------------

TEST(SequenceSet, Parses) {
    auto s = parse_sequence_set("1,3:5,7:*,9:8,*");
    ASSERT_TRUE(s) << s.error().text;
    using R = SequenceSet::Range;
    EXPECT_EQ(s->ranges(), (std::vector<R>{{1, 1}, {3, 5}, {7, 0}, {9, 8}, {0, 0}}));
    EXPECT_EQ(s->to_string(), "1,3:5,7:*,9:8,*");
    EXPECT_EQ(s->max_number(), 9u);
    EXPECT_FALSE(s->saved());
    auto d = parse_sequence_set("$");
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->saved());
    EXPECT_EQ(d->to_string(), "$");
    EXPECT_TRUE(parse_sequence_set("4294967295"));
}

TEST(SequenceSet, Errors) {
    for (auto bad : {"", "0", "1:0", "01", "1:", ":1", ",", "1,", ",1", "1,,2", "a", "1:2:3",
                     "4294967296", "1 2", "$,1", "1,$", "**", "-1", "1.2"})
        EXPECT_FALSE(parse_sequence_set(bad)) << bad;
    EXPECT_EQ(parse_sequence_set("1,x").error().text,
              "Invalid sequence set '1,x': expected a number or '*' at 'x'");
    EXPECT_EQ(parse_sequence_set("5:").error().text,
              "Invalid sequence set '5:': expected a number or '*' at its end");
}

TEST(SequenceSet, RangeLimit) {
    EXPECT_TRUE(parse_sequence_set("1,2,3", 3));
    auto e = parse_sequence_set("1,2,3,4", 3);
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().text.find("too many ranges"), std::string::npos);
    // The default cap, crossed.
    std::string many;
    for (std::size_t i = 0; i <= kDefaultMaxSequenceRanges; ++i)
        many += (i ? "," : "") + std::to_string(2 * i + 1);
    EXPECT_FALSE(parse_sequence_set(many));
    many.resize(many.rfind(','));
    EXPECT_TRUE(parse_sequence_set(many));
}

TEST(SequenceSet, ResolveContainsExpand) {
    auto s = *parse_sequence_set("2:4,9:7,12:*,3");
    using I = SequenceSet::Interval;
    EXPECT_EQ(s.resolve(20), (std::vector<I>{{2, 4}, {7, 9}, {12, 20}}));
    // "12:*" with max 10 is 10:12 (the last message is always included).
    EXPECT_EQ(s.resolve(10), (std::vector<I>{{2, 4}, {7, 12}}));
    EXPECT_TRUE(s.contains(8, 10));
    EXPECT_TRUE(s.contains(10, 10));
    EXPECT_FALSE(s.contains(5, 10));
    EXPECT_FALSE(s.contains(0, 10));
    EXPECT_EQ(s.expand(10), (std::vector<std::uint32_t>{2, 3, 4, 7, 8, 9, 10}));
    // Empty mailbox: '*' names nothing.
    auto star = *parse_sequence_set("*");
    EXPECT_TRUE(star.resolve(0).empty());
    EXPECT_FALSE(star.contains(1, 0));
    EXPECT_EQ(parse_sequence_set("5:*")->resolve(0), (std::vector<I>{{5, 5}}));
    EXPECT_TRUE(star.expand(0).empty());
    // Adjacent ranges merge; the top of the number space does not overflow.
    EXPECT_EQ(parse_sequence_set("1:3,4,4294967295,4294967294")->resolve(1),
              (std::vector<I>{{1, 4}, {4294967294u, 4294967295u}}));
}

TEST(SequenceSet, Compress) {
    std::vector<std::uint32_t> v = {1, 2, 3, 7, 9, 10, 11, 12};
    EXPECT_EQ(compress_sequence(v), "1:3,7,9:12");
    std::vector<std::uint32_t> unsorted = {5, 1, 3, 2, 5};
    EXPECT_EQ(compress_sequence(unsorted), "1:3,5");
    EXPECT_EQ(compress_sequence({}), "");
    std::vector<std::uint32_t> top = {4294967294u, 4294967295u};
    EXPECT_EQ(compress_sequence(top), "4294967294:4294967295");
}

RC_GTEST_PROP(SequenceSetProperty, CompressedSetsParseBackToTheSameNumbers,
              (const std::set<std::uint16_t>& raw)) {
    std::vector<std::uint32_t> numbers;
    for (auto n : raw)
        if (n > 0) numbers.push_back(n);
    RC_PRE(!numbers.empty());
    auto text = compress_sequence(numbers);
    auto set = parse_sequence_set(text);
    RC_ASSERT(set.ok());
    RC_ASSERT(set->expand(numbers.back()) == numbers);
    for (auto n : numbers)
        RC_ASSERT(set->contains(n, numbers.back()));
}

RC_GTEST_PROP(SequenceSetProperty, AnySetPrintsAndParsesBack,
              (const std::vector<std::pair<std::uint32_t, std::uint32_t>>& ranges)) {
    RC_PRE(!ranges.empty());
    SequenceSet s;
    for (auto [a, b] : ranges)
        s.add(a, b);  // 0 is '*'
    auto back = parse_sequence_set(s.to_string());
    RC_ASSERT(back.ok());
    RC_ASSERT(*back == s);
}

// ---- Modified UTF-7 -----------------------------------------------------------------------------

TEST(Mutf7, KnownVectors) {
    const std::pair<const char*, const char*> kVectors[] = {
        {"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
        {"Entwürfe", "Entw&APw-rfe"},
        {"a&b", "a&-b"},
        {"&", "&-"},
        {"😀", "&2D3eAA-"},
        {"", ""},
        {"INBOX", "INBOX"},
    };
    for (auto [utf8, m] : kVectors) {
        EXPECT_EQ(mutf7_encode(utf8), m) << utf8;
        EXPECT_EQ(mutf7_decode(m), utf8) << m;
    }
}

TEST(Mutf7, StrictDecoding) {
    for (auto bad : {"&", "&U,BTFw", "&AEE-",  // unterminated, unterminated, printable 'A'
                     "&ANx-",                  // non-zero padding bits
                     "&2D0-", "&3AA-",         // lone high / low surrogate
                     "&A-", "&AAAA-",          // partial UTF-16 unit
                     "&U/BTFw-",               // '/' is not in the modified alphabet
                     "a\tb", "\xc3\xbc"})      // raw control or 8-bit bytes
        EXPECT_FALSE(mutf7_decode(bad)) << bad;
    EXPECT_FALSE(mutf7_encode("\xff"));
    EXPECT_FALSE(mutf7_encode("\xed\xa0\x80"));  // an encoded surrogate is not UTF-8
}

RC_GTEST_PROP(Mutf7Property, RoundTripsAnyUnicode, (const std::vector<std::uint32_t>& raw)) {
    std::string utf8;
    for (auto r : raw) {
        char32_t cp = r % 0x110000;
        if (cp >= 0xD800 && cp <= 0xDFFF) cp -= 0x800;
        append_utf8(utf8, cp);
    }
    RC_ASSERT(valid_utf8(utf8));
    auto m = mutf7_encode(utf8);
    RC_ASSERT(m.has_value());
    RC_ASSERT(std::all_of(m->begin(), m->end(), [](char c) { return c >= 0x20 && c <= 0x7e; }));
    RC_ASSERT(mutf7_decode(*m) == utf8);
}

TEST(Utf8, Validation) {
    EXPECT_TRUE(valid_utf8(""));
    EXPECT_TRUE(valid_utf8("a€😀ü"));
    EXPECT_TRUE(valid_utf8("\xf4\x8f\xbf\xbf"));       // U+10FFFF
    EXPECT_FALSE(valid_utf8("\xc0\xaf"));              // overlong '/'
    EXPECT_FALSE(valid_utf8("\xe0\x80\xaf"));          // overlong
    EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));          // surrogate
    EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));      // over U+10FFFF
    EXPECT_FALSE(valid_utf8("\xe2\x82"));              // truncated
    EXPECT_FALSE(valid_utf8("\x80"));                  // stray continuation
    EXPECT_FALSE(valid_utf8("\xf8\x88\x80\x80\x80"));  // five-byte form
}

// ---- Strings, numbers, mailboxes ----------------------------------------------------------------

TEST(ImapArgs, Astrings) {
    EXPECT_EQ(astring(arg("abc")), "abc");
    EXPECT_EQ(astring(arg("\"a b\"")), "a b");
    EXPECT_EQ(astring(arg("{3}\r\nx y")), "x y");
    EXPECT_EQ(astring(arg("nil")), "nil");  // NIL is a fine mailbox name
    EXPECT_FALSE(astring(arg("(a)")));
    EXPECT_FALSE(string_arg(arg("abc")));
    EXPECT_EQ(string_arg(arg("\"abc\"")), "abc");
    EXPECT_EQ(upper_atom(arg("uid")), "UID");
    EXPECT_EQ(upper_atom(arg("\"uid\"")), "");
}

TEST(ImapArgs, Numbers) {
    EXPECT_EQ(*parse_number("0"), 0u);
    EXPECT_EQ(*parse_number("4294967295"), 4294967295u);
    EXPECT_FALSE(parse_number("4294967296"));
    EXPECT_FALSE(parse_number("-1"));
    EXPECT_FALSE(parse_number(""));
    EXPECT_FALSE(parse_nz_number("0"));
    EXPECT_FALSE(parse_nz_number("01"));
    EXPECT_EQ(*parse_number64("9223372036854775807"), 9223372036854775807ull);
    EXPECT_FALSE(parse_number64("9223372036854775808"));
    EXPECT_FALSE(parse_mod_sequence("0", false));
    EXPECT_EQ(*parse_mod_sequence("0", true), 0u);
}

TEST(ImapArgs, Mailboxes) {
    EXPECT_EQ(*parse_mailbox(arg("inbox"), true), "INBOX");
    EXPECT_EQ(*parse_mailbox(arg("\"InBoX\""), false), "INBOX");
    EXPECT_EQ(*parse_mailbox(arg("INBOX.Sub"), false), "INBOX.Sub");
    EXPECT_EQ(*parse_mailbox(arg("Entw&APw-rfe"), false), "Entwürfe");
    EXPECT_EQ(*parse_mailbox(arg("Entw&APw-rfe"), true), "Entw&APw-rfe");  // rev2: no decoding
    EXPECT_EQ(*parse_mailbox(arg("\"Entwürfe\""), true), "Entwürfe");
    EXPECT_FALSE(parse_mailbox(arg("\"Entwürfe\""), false));  // rev1 names are 7-bit
    EXPECT_FALSE(parse_mailbox(arg("&Jjo"), false));
    EXPECT_EQ(parse_mailbox(arg("&Jjo"), false).error().code, "CANNOT");  // NO, not BAD
    // Not modified UTF-7: NO [CANNOT], not BAD (the command is well-formed).
    EXPECT_EQ(parse_mailbox(arg("!#$&'+,-.0123456789:;<=>?@^_`|[}"), false).error().code, "CANNOT");
    EXPECT_FALSE(parse_mailbox(arg("{3}\r\na\xff"
                                   "b"),
                               true));
    EXPECT_FALSE(parse_mailbox(arg("{3}\r\na\nb"), true));
    EXPECT_FALSE(parse_mailbox(arg("(a)"), true));
}

// ---- Flags --------------------------------------------------------------------------------------

TEST(ImapArgs, FlagLists) {
    auto f = parse_flag_list(arg("(\\Seen \\answered $Forwarded \\Flagged $forwarded Junk)"),
                             FlagContext::Store);
    ASSERT_TRUE(f) << f.error().text;
    EXPECT_EQ(f->system, kFlagSeen | kFlagAnswered | kFlagFlagged);
    EXPECT_EQ(f->keywords, (std::vector<std::string>{"$Forwarded", "Junk"}));
    EXPECT_FALSE(f->any_keyword);
    EXPECT_TRUE(parse_flag_list(arg("()"), FlagContext::Store));
    EXPECT_EQ(parse_flag_list(arg("(\\Recent)"), FlagContext::Store).error().text,
              "\\Recent can not be set by clients");
    EXPECT_EQ(parse_flag_list(arg("(\\Foo)"), FlagContext::Store).error().text,
              "Unknown system flag '\\Foo'");
    EXPECT_FALSE(parse_flag_list(arg("(\\*)"), FlagContext::Store));
    auto p = parse_flag_list(arg("(\\Deleted \\*)"), FlagContext::PermanentFlags);
    ASSERT_TRUE(p);
    EXPECT_TRUE(p->any_keyword);
    EXPECT_FALSE(parse_flag_list(arg("(\"Seen\")"), FlagContext::Store));
    EXPECT_FALSE(parse_flag_list(arg("(a%b)"), FlagContext::Store));
    EXPECT_FALSE(parse_flag_list(arg("(a]b)"), FlagContext::Store));
    EXPECT_FALSE(parse_flag_list(arg("\\Seen"), FlagContext::Store));
    // NIL is an atom in a flag position: the keyword "NIL" (spelling kept).
    auto n = parse_flag_list(arg("(NIL nil)"), FlagContext::Store);
    ASSERT_TRUE(n) << n.error().text;
    EXPECT_EQ(n->keywords, (std::vector<std::string>{"NIL"}));
    auto bare = parse_flags(std::vector<Arg>{arg("NIL")}, FlagContext::Store);
    ASSERT_TRUE(bare) << bare.error().text;
    EXPECT_EQ(bare->keywords, (std::vector<std::string>{"NIL"}));
    EXPECT_EQ(system_flag("\\DRAFT"), kFlagDraft);
    EXPECT_EQ(system_flag("Draft"), 0);
}

// ---- Dates --------------------------------------------------------------------------------------

TEST(ImapArgs, Dates) {
    EXPECT_EQ(*parse_date("1-Feb-1994"), 760060800);
    EXPECT_EQ(*parse_date("01-feb-1994"), 760060800);
    EXPECT_EQ(*parse_date(arg("\"1-Feb-1994\"")), 760060800);
    EXPECT_EQ(*parse_date("29-Feb-2000"), epoch_from_civil(2000, 2, 29));
    EXPECT_EQ(*parse_date("1-Jan-1970"), 0);
    for (auto bad : {"29-Feb-2001", "30-Feb-2000", "31-Apr-2020", "0-Jan-2020", "1-Foo-2020",
                     "1-Feb-94", "001-Feb-1994", "1 Feb 1994", "1-Feb-1994 ", ""})
        EXPECT_FALSE(parse_date(bad)) << bad;
}

TEST(ImapArgs, DateTimes) {
    auto d = parse_date_time("01-Feb-1994 21:52:25 -0800");
    ASSERT_TRUE(d) << d.error().text;
    EXPECT_EQ(d->epoch, 760168345);
    EXPECT_EQ(d->zone_minutes, -480);
    EXPECT_EQ(parse_date_time(" 1-Feb-1994 21:52:25 -0800")->epoch, 760168345);
    EXPECT_EQ(parse_date_time("1-Feb-1994 21:52:25 -0800")->epoch, 760168345);
    EXPECT_EQ(parse_date_time("02-Feb-1994 05:52:25 +0000")->epoch, 760168345);
    EXPECT_EQ(parse_date_time("31-Dec-1969 23:59:59 +0000")->epoch, -1);
    EXPECT_EQ(parse_date_time("02-Feb-1994 11:22:25 +0530")->epoch, 760168345);
    for (auto bad :
         {"01-Feb-1994 24:00:00 +0000", "01-Feb-1994 21:60:00 +0000", "01-Feb-1994 21:52:25 0800",
          "01-Feb-1994 21:52:25 +08000", "01-Feb-1994 21:52 +0800", "01-Feb-1994 21:52:25 +0860",
          "01-Feb-1994T21:52:25 +0800", "32-Jan-1994 21:52:25 +0000", ""})
        EXPECT_FALSE(parse_date_time(bad)) << bad;
}

TEST(ImapArgs, CivilRoundTrip) {
    for (std::int64_t t : {0ll, -1ll, 951782400ll, 4102444799ll, -62135596800ll}) {
        auto c = civil_from_epoch(t);
        EXPECT_EQ(epoch_from_civil(c.year, c.month, c.day, c.hour, c.minute, c.second), t);
    }
}

// ---- STORE --------------------------------------------------------------------------------------

TEST(ImapArgs, Store) {
    auto s = parse_store(cmd("A STORE 2:4 +FLAGS.SILENT (\\Deleted)\r\n"));
    ASSERT_TRUE(s) << s.error().text;
    EXPECT_EQ(s->set.to_string(), "2:4");
    EXPECT_EQ(s->mode, StoreArgs::Mode::Add);
    EXPECT_TRUE(s->silent);
    EXPECT_EQ(s->flags.system, kFlagDeleted);
    EXPECT_FALSE(s->unchanged_since);

    s = parse_store(cmd("A UID STORE 1 (UNCHANGEDSINCE 12345) -flags \\Seen $Junk\r\n"));
    ASSERT_TRUE(s) << s.error().text;
    EXPECT_EQ(s->mode, StoreArgs::Mode::Remove);
    EXPECT_FALSE(s->silent);
    EXPECT_EQ(s->unchanged_since, 12345u);
    EXPECT_EQ(s->flags.system, kFlagSeen);
    EXPECT_EQ(s->flags.keywords, std::vector<std::string>{"$Junk"});

    s = parse_store(cmd("A STORE * FLAGS ()\r\n"));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->mode, StoreArgs::Mode::Replace);
    EXPECT_EQ(s->flags, FlagList{});

    for (auto bad : {"A STORE 1 FLAGS\r\n", "A STORE 1\r\n", "A STORE x FLAGS ()\r\n",
                     "A STORE 1 LABELS ()\r\n", "A STORE 1 +FLAGS.LOUD ()\r\n",
                     "A STORE 1 (FOO 1) FLAGS ()\r\n", "A STORE 1 (UNCHANGEDSINCE) FLAGS ()\r\n",
                     "A STORE 1 (UNCHANGEDSINCE x) FLAGS ()\r\n", "A STORE 1 FLAGS (\\Recent)\r\n",
                     "A STORE 1 FLAGS (a) (b)\r\n"})
        EXPECT_FALSE(parse_store(cmd(bad))) << bad;
}

// ---- STATUS -------------------------------------------------------------------------------------

TEST(ImapArgs, Status) {
    auto s = parse_status(cmd("A STATUS blurdybloop (UIDNEXT MESSAGES messages SIZE deleted "
                              "HIGHESTMODSEQ RECENT UNSEEN UIDVALIDITY)\r\n"),
                          true);
    ASSERT_TRUE(s) << s.error().text;
    EXPECT_EQ(s->mailbox, "blurdybloop");
    using I = StatusItem;
    EXPECT_EQ(s->items, (std::vector<I>{I::UidNext, I::Messages, I::Size, I::Deleted,
                                        I::HighestModSeq, I::Recent, I::Unseen, I::UidValidity}));
    s = parse_status(cmd("A STATUS x (APPENDLIMIT deleted-storage)\r\n"), true);
    ASSERT_TRUE(s) << s.error().text;
    EXPECT_EQ(s->items, (std::vector<I>{I::AppendLimit, I::DeletedStorage}));
    EXPECT_EQ(status_item_name(I::DeletedStorage), "DELETED-STORAGE");
    EXPECT_EQ(status_item_name(I::HighestModSeq), "HIGHESTMODSEQ");
    EXPECT_EQ(parse_status(cmd("A STATUS x (FOO)\r\n"), true).error().text,
              "Unknown status item 'FOO'");
    EXPECT_FALSE(parse_status(cmd("A STATUS x ()\r\n"), true));
    EXPECT_FALSE(parse_status(cmd("A STATUS x MESSAGES\r\n"), true));
    EXPECT_FALSE(parse_status(cmd("A STATUS (MESSAGES)\r\n"), true));
}

// ---- APPEND -------------------------------------------------------------------------------------

TEST(ImapArgs, Append) {
    auto c =
        cmd("A APPEND saved-messages (\\Seen) \"05-Jul-1994 02:20:27 -0700\" {5}\r\nhello\r\n");
    auto a = parse_append(c, false);
    ASSERT_TRUE(a) << a.error().text;
    EXPECT_EQ(a->mailbox, "saved-messages");
    ASSERT_EQ(a->messages.size(), 1u);
    EXPECT_EQ(a->messages[0].flags.system, kFlagSeen);
    ASSERT_TRUE(a->messages[0].date);
    EXPECT_EQ(a->messages[0].date->zone_minutes, -420);
    EXPECT_EQ(a->messages[0].data, "hello");
    EXPECT_EQ(a->messages[0].data.data(), c.args[3].text.data());  // a view, not a copy

    // MULTIAPPEND, literal8 and UTF8.
    c = cmd("A APPEND x {1+}\r\na ~{3}\r\n" + std::string("\0b\0", 3) +
            " () UTF8 (~{2}\r\nzz)\r\n");
    a = parse_append(c, true);
    ASSERT_TRUE(a) << a.error().text;
    ASSERT_EQ(a->messages.size(), 3u);
    EXPECT_EQ(a->messages[0].data, "a");
    EXPECT_FALSE(a->messages[0].binary);
    EXPECT_EQ(a->messages[1].data, std::string_view("\0b\0", 3));
    EXPECT_TRUE(a->messages[1].binary);
    EXPECT_EQ(a->messages[2].data, "zz");
    EXPECT_TRUE(a->messages[2].utf8);

    for (auto bad :
         {"A APPEND x\r\n", "A APPEND x \"hello\"\r\n", "A APPEND x (\\Seen)\r\n",
          "A APPEND x \"bad date\" {1+}\r\na\r\n", "A APPEND x UTF8 ({1+}\r\na)\r\n",
          "A APPEND x ({1+}\r\na)\r\n", "A APPEND x CATENATE\r\n", "A APPEND x CATENATE ()\r\n",
          "A APPEND x CATENATE (TEXT)\r\n", "A APPEND x CATENATE (TEXT \"quoted\")\r\n",
          "A APPEND x CATENATE (URL)\r\n", "A APPEND x CATENATE (FOO {1+}\r\na)\r\n",
          "A APPEND x CATENATE TEXT {1+}\r\na\r\n"})
        EXPECT_FALSE(parse_append(cmd(bad), true)) << bad;
}

TEST(ImapArgs, AppendCatenate) {
    // RFC 4469 §6 example shape, then a MULTIAPPEND mixing CATENATE and a plain literal.
    auto c = cmd(
        "A APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL "
        "\"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER\" TEXT {4+}\r\nbody "
        "URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;SECTION=1.MIME\") CATENATE (TEXT {1+}\r\nx) "
        "(\\Flagged) {2+}\r\nyz\r\n");
    auto a = parse_append(c, true);
    ASSERT_TRUE(a) << a.error().text;
    EXPECT_EQ(a->mailbox, "Drafts");
    ASSERT_EQ(a->messages.size(), 3u);
    auto& m = a->messages[0];
    EXPECT_TRUE(m.catenate);
    EXPECT_EQ(m.flags.system, kFlagSeen | kFlagDraft);
    ASSERT_EQ(m.parts.size(), 3u);
    EXPECT_TRUE(m.parts[0].is_url);
    EXPECT_EQ(m.parts[0].url.mailbox, "Drafts");
    EXPECT_EQ(m.parts[0].url.uidvalidity, 385759045u);
    EXPECT_EQ(m.parts[0].url.uid, 20u);
    EXPECT_EQ(m.parts[0].url.section, "HEADER");
    EXPECT_FALSE(m.parts[1].is_url);
    EXPECT_EQ(m.parts[1].text, "body");
    EXPECT_EQ(m.parts[2].url.section, "1.MIME");
    EXPECT_TRUE(a->messages[1].catenate);
    ASSERT_EQ(a->messages[1].parts.size(), 1u);
    EXPECT_EQ(a->messages[1].parts[0].text, "x");
    EXPECT_FALSE(a->messages[2].catenate);
    EXPECT_EQ(a->messages[2].flags.system, kFlagFlagged);
    EXPECT_EQ(a->messages[2].data, "yz");

    // A URL that does not parse is NO [BADURL], not BAD.
    auto e = parse_append(cmd("A APPEND x CATENATE (URL \"imap://u@h/INBOX/;UID=1\")\r\n"), true);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, "BADURL");
}

TEST(ImapArgs, ImapUrls) {
    auto u = parse_imap_url("/INBOX/;UID=5");
    ASSERT_TRUE(u) << u.error().text;
    EXPECT_EQ(u->mailbox, "INBOX");
    EXPECT_FALSE(u->uidvalidity);
    EXPECT_EQ(u->uid, 5u);
    EXPECT_EQ(u->section, "");
    EXPECT_FALSE(u->partial);
    u = parse_imap_url(
        "/inbox;uidvalidity=7/;uid=5/;section=header.fields%20(from)/;partial=10.20");
    ASSERT_TRUE(u) << u.error().text;
    EXPECT_EQ(u->mailbox, "INBOX");
    EXPECT_EQ(u->uidvalidity, 7u);
    EXPECT_EQ(u->section, "header.fields (from)");
    ASSERT_TRUE(u->partial);
    EXPECT_EQ(u->partial->first, 10u);
    EXPECT_EQ(u->partial->second, 20u);
    u = parse_imap_url("/a%2Fb/c%C3%A9/;UID=1/;PARTIAL=3");
    ASSERT_TRUE(u) << u.error().text;
    EXPECT_EQ(u->mailbox, "a/b/c\xc3\xa9");
    EXPECT_EQ(u->partial->first, 3u);
    EXPECT_FALSE(u->partial->second);
    for (auto bad : {"",
                     "/",
                     "INBOX/;UID=1",
                     "//host/INBOX/;UID=1",
                     "imap://user@host/INBOX/;UID=1",
                     "/INBOX",
                     "/INBOX/;UID=0",
                     "/INBOX/;UID=x",
                     "/INBOX;UID=1",
                     "/INBOX/;UIDVALIDITY=1",
                     "/INBOX;UIDVALIDITY=0/;UID=1",
                     "/INBOX/;UID=1/;SECTION=",
                     "/INBOX/;UID=1/;FOO=1",
                     "/INBOX/;UID=1/;PARTIAL=1.0",
                     "/INBOX/;UID=1/;PARTIAL=2/;SECTION=1",
                     "/INBOX/;UID=1/;URLAUTH=anonymous",
                     "/%ZZ/;UID=1",
                     "/%FF/;UID=1",
                     "/INBOX%/;UID=1",
                     "/INBOX?SUBJECT%20x",
                     "/INBOX/;UID=1;SECTION=1"}) {
        auto r = parse_imap_url(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().code, "BADURL") << bad;
    }
}

// ---- CREATE -------------------------------------------------------------------------------------

TEST(ImapArgs, Create) {
    auto c = parse_create(cmd("A CREATE Sent\r\n"), true);
    ASSERT_TRUE(c) << c.error().text;
    EXPECT_EQ(c->mailbox, "Sent");
    EXPECT_TRUE(c->use.empty());
    c = parse_create(cmd("A CREATE \"Sent Mail\" (USE (\\Sent \\Archive))\r\n"), true);
    ASSERT_TRUE(c) << c.error().text;
    EXPECT_EQ(c->mailbox, "Sent Mail");
    EXPECT_EQ(c->use, (std::vector<std::string>{"\\Sent", "\\Archive"}));
    c = parse_create(cmd("A CREATE x (use (\\Imaginary))\r\n"), true);
    ASSERT_TRUE(c);  // unknown attributes are the session's NO [USEATTR]
    EXPECT_EQ(c->use, std::vector<std::string>{"\\Imaginary"});
    for (auto bad :
         {"A CREATE\r\n", "A CREATE x y z\r\n", "A CREATE x ()\r\n", "A CREATE x (USE)\r\n",
          "A CREATE x (USE ())\r\n", "A CREATE x (USE (Sent))\r\n", "A CREATE x (FOO (\\Sent))\r\n",
          "A CREATE x USE\r\n", "A CREATE x (USE \\Sent)\r\n"})
        EXPECT_FALSE(parse_create(cmd(bad), true)) << bad;
}

// ---- FETCH --------------------------------------------------------------------------------------

TEST(ImapFetch, Macros) {
    auto f = parse_fetch(cmd("A FETCH 1:* full\r\n"));
    ASSERT_TRUE(f);
    std::vector<FetchItem> items;
    for (auto& a : f->atts)
        items.push_back(a.item);
    EXPECT_EQ(items, (std::vector<FetchItem>{FetchItem::Flags, FetchItem::InternalDate,
                                             FetchItem::Rfc822Size, FetchItem::Envelope,
                                             FetchItem::Body}));
    EXPECT_EQ(parse_fetch(cmd("A FETCH 1 ALL\r\n"))->atts.size(), 4u);
    EXPECT_EQ(parse_fetch(cmd("A FETCH 1 FAST\r\n"))->atts.size(), 3u);
    EXPECT_FALSE(parse_fetch(cmd("A FETCH 1 (ALL)\r\n")));  // macros stand alone
}

TEST(ImapFetch, EveryItem) {
    auto f =
        parse_fetch(cmd("A UID FETCH 1:5 (FLAGS UID INTERNALDATE RFC822.SIZE ENVELOPE BODY "
                        "BODYSTRUCTURE RFC822 RFC822.HEADER RFC822.TEXT MODSEQ flags "
                        "BODY[] BODY.PEEK[1.2.HEADER.FIELDS.NOT (Received \"X-Spam\")]<10.20> "
                        "BINARY[3]<0.1> BINARY.PEEK[] BINARY.SIZE[1.1] body[1.MIME] "
                        "BODY[TEXT] BODY[2.HEADER] BODY[4.2.1] BODY[HEADER])\r\n"));
    ASSERT_TRUE(f) << f.error().text;
    EXPECT_TRUE(f->set.contains(3, 5));
    const auto& a = f->atts;
    ASSERT_EQ(a.size(), 21u);  // "flags" again is merged; UID FETCH adds no second UID
    EXPECT_EQ(a[0].item, FetchItem::Flags);
    EXPECT_EQ(a[10].item, FetchItem::ModSeq);
    EXPECT_EQ(a[11].item, FetchItem::BodySection);
    EXPECT_EQ(a[11].section, Section{});
    EXPECT_FALSE(a[11].peek);
    const FetchAtt& peek = a[12];
    EXPECT_EQ(peek.item, FetchItem::BodySection);
    EXPECT_TRUE(peek.peek);
    EXPECT_EQ(peek.section.part, (std::vector<std::uint32_t>{1, 2}));
    EXPECT_EQ(peek.section.text, Section::Text::HeaderFieldsNot);
    EXPECT_EQ(peek.section.fields, (std::vector<std::string>{"Received", "X-Spam"}));
    EXPECT_EQ(peek.partial, (Partial{10, 20}));
    EXPECT_EQ(a[13].item, FetchItem::Binary);
    EXPECT_EQ(a[13].section.part, std::vector<std::uint32_t>{3});
    EXPECT_EQ(a[13].partial, (Partial{0, 1}));
    EXPECT_TRUE(a[14].peek);
    EXPECT_EQ(a[15].item, FetchItem::BinarySize);
    EXPECT_EQ(a[16].section.text, Section::Text::Mime);
    EXPECT_EQ(a[17].section.text, Section::Text::Text);
    EXPECT_EQ(a[18].section.text, Section::Text::Header);
    EXPECT_EQ(a[18].section.part, std::vector<std::uint32_t>{2});
    EXPECT_EQ(a[19].section.part, (std::vector<std::uint32_t>{4, 2, 1}));
    EXPECT_EQ(a[20].section.text, Section::Text::Header);
    EXPECT_TRUE(a[20].section.part.empty());
}

TEST(ImapFetch, ImpliedItemsAndModifiers) {
    auto f = parse_fetch(cmd("A UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n"));
    ASSERT_TRUE(f) << f.error().text;
    EXPECT_EQ(f->changed_since, 12345u);
    EXPECT_TRUE(f->vanished);
    ASSERT_EQ(f->atts.size(), 3u);
    EXPECT_EQ(f->atts[1].item, FetchItem::Uid);
    EXPECT_EQ(f->atts[2].item, FetchItem::ModSeq);
    EXPECT_EQ(parse_fetch(cmd("A FETCH 1 BODY[]\r\n"))->atts.size(), 1u);
    EXPECT_EQ(parse_fetch(cmd("A FETCH 1 (FLAGS) (CHANGEDSINCE 1)\r\n"))->changed_since, 1u);
    EXPECT_FALSE(parse_fetch(cmd("A FETCH 1 (FLAGS) (CHANGEDSINCE 0)\r\n")));
    EXPECT_EQ(parse_fetch(cmd("A FETCH 1 (FLAGS) (VANISHED CHANGEDSINCE 5)\r\n")).error().text,
              "VANISHED needs UID FETCH and CHANGEDSINCE");
    EXPECT_FALSE(parse_fetch(cmd("A UID FETCH 1 (FLAGS) (VANISHED)\r\n")));
    EXPECT_FALSE(parse_fetch(cmd("A FETCH 1 (FLAGS) (CHANGEDSINCE)\r\n")));
    EXPECT_FALSE(parse_fetch(cmd("A FETCH 1 (FLAGS) (FOO)\r\n")));
    EXPECT_FALSE(parse_fetch(cmd("A FETCH 1 (FLAGS) ()\r\n")));
}

TEST(ImapFetch, Errors) {
    for (auto bad : {
             "A FETCH 1\r\n",
             "A FETCH x FLAGS\r\n",
             "A FETCH 1 ()\r\n",
             "A FETCH 1 FOO\r\n",
             "A FETCH 1 (FLAGS \"UID\")\r\n",
             "A FETCH 1 BODY.PEEK\r\n",
             "A FETCH 1 BINARY\r\n",
             "A FETCH 1 BODY[0]\r\n",
             "A FETCH 1 BODY[1.]\r\n",
             "A FETCH 1 BODY[.1]\r\n",
             "A FETCH 1 BODY[MIME]\r\n",
             "A FETCH 1 BODY[HEADER.FIELDS]\r\n",
             "A FETCH 1 BODY[HEADER.FIELDS ()]\r\n",
             "A FETCH 1 BODY[HEADER.FIELDS (a:b)]\r\n",
             "A FETCH 1 BODY[TEXT (a)]\r\n",
             "A FETCH 1 BODY[FOO]\r\n",
             "A FETCH 1 BINARY[TEXT]\r\n",
             "A FETCH 1 BINARY[1.MIME]\r\n",
             "A FETCH 1 BINARY.SIZE[1]<0.1>\r\n",
             "A FETCH 1 BODY[]<0>\r\n",
             "A FETCH 1 BODY[]<0.0>\r\n",
             "A FETCH 1 BODY[]<a.1>\r\n",
             "A FETCH 1 BODY[]0.1\r\n",
             "A FETCH 1 FOO[]\r\n",
             "A FETCH 1 FLAGS (CHANGEDSINCE 1) x\r\n",
         })
        EXPECT_FALSE(parse_fetch(cmd(bad))) << bad;
}

// ---- SEARCH -------------------------------------------------------------------------------------

namespace {
SearchKey key(std::string_view keys) {
    auto p = parse_search(cmd("A SEARCH " + std::string(keys) + "\r\n"));
    if (!p) {
        ADD_FAILURE() << keys << ": " << p.error().text;
        return {};
    }
    EXPECT_EQ(p->key.op, SearchKey::Op::And);
    EXPECT_EQ(p->key.children.size(), 1u) << keys;
    return p->key.children.empty() ? SearchKey{} : p->key.children[0];
}
}  // namespace

TEST(ImapSearch, EveryKey) {
    using Op = SearchKey::Op;
    const std::pair<const char*, Op> kSimple[] = {
        {"ALL", Op::All},
        {"ANSWERED", Op::Answered},
        {"DELETED", Op::Deleted},
        {"DRAFT", Op::Draft},
        {"FLAGGED", Op::Flagged},
        {"NEW", Op::New},
        {"OLD", Op::Old},
        {"RECENT", Op::Recent},
        {"SEEN", Op::Seen},
        {"UNANSWERED", Op::Unanswered},
        {"UNDELETED", Op::Undeleted},
        {"UNDRAFT", Op::Undraft},
        {"UNFLAGGED", Op::Unflagged},
        {"UNSEEN", Op::Unseen},
        {"all", Op::All},
    };
    for (auto [k, op] : kSimple)
        EXPECT_EQ(key(k).op, op) << k;
    const std::pair<const char*, Op> kStrings[] = {
        {"BCC", Op::Bcc},         {"BODY", Op::Body}, {"CC", Op::Cc}, {"FROM", Op::From},
        {"SUBJECT", Op::Subject}, {"TEXT", Op::Text}, {"TO", Op::To},
    };
    for (auto [k, op] : kStrings) {
        auto s = key(std::string(k) + " {6}\r\nneedle");
        EXPECT_EQ(s.op, op) << k;
        EXPECT_EQ(s.value, "needle");
        EXPECT_EQ(key(std::string(k) + " \"two words\"").value, "two words");
    }
    const std::pair<const char*, Op> kDates[] = {
        {"BEFORE", Op::Before},         {"ON", Op::On},         {"SINCE", Op::Since},
        {"SENTBEFORE", Op::SentBefore}, {"SENTON", Op::SentOn}, {"SENTSINCE", Op::SentSince},
    };
    for (auto [k, op] : kDates) {
        auto s = key(std::string(k) + " 1-Feb-1994");
        EXPECT_EQ(s.op, op);
        EXPECT_EQ(s.date, 760060800);
        EXPECT_EQ(key(std::string(k) + " \"1-Feb-1994\"").date, 760060800);
    }
    auto h = key("HEADER Message-ID \"<x@y>\"");
    EXPECT_EQ(h.op, Op::Header);
    EXPECT_EQ(h.field, "Message-ID");
    EXPECT_EQ(h.value, "<x@y>");
    EXPECT_EQ(key("HEADER X-Spam \"\"").value, "");
    EXPECT_EQ(key("KEYWORD $Junk").value, "$Junk");
    EXPECT_EQ(key("UNKEYWORD Work").op, Op::Unkeyword);
    EXPECT_EQ(key("LARGER 1000").number, 1000u);
    EXPECT_EQ(key("SMALLER 9000000000").number, 9000000000u);
    auto u = key("UID 1:*,5");
    EXPECT_FALSE(u.set.saved());
    u = key("UID $");
    EXPECT_TRUE(u.set.saved());
    EXPECT_EQ(key("2:4,*").op, Op::SequenceSet);
    EXPECT_TRUE(key("$").set.saved());
    auto n = key("NOT SEEN");
    EXPECT_EQ(n.op, Op::Not);
    EXPECT_EQ(n.children.at(0).op, Op::Seen);
    auto o = key("OR (FROM a TO b) NOT DELETED");
    EXPECT_EQ(o.op, Op::Or);
    ASSERT_EQ(o.children.size(), 2u);
    EXPECT_EQ(o.children[0].op, Op::And);
    EXPECT_EQ(o.children[0].children.size(), 2u);
    EXPECT_EQ(o.children[1].op, Op::Not);
    auto m = key("MODSEQ 620162338");
    EXPECT_EQ(m.op, Op::ModSeq);
    EXPECT_EQ(m.number, 620162338u);
    EXPECT_EQ(m.entry_type, SearchKey::EntryType::None);
    m = key("MODSEQ \"/flags/\\\\draft\" all 620162338");
    EXPECT_EQ(m.value, "/flags/\\draft");
    EXPECT_EQ(m.entry_type, SearchKey::EntryType::All);
    EXPECT_EQ(m.number, 620162338u);
}

TEST(ImapSearch, ProgramPrefixes) {
    auto p =
        parse_search(cmd("A UID SEARCH RETURN (MIN MAX COUNT SAVE ALL) CHARSET utf-8 "
                         "DELETED FROM \"Smith\" SINCE 1-Feb-1994\r\n"));
    ASSERT_TRUE(p) << p.error().text;
    EXPECT_TRUE(p->esearch);
    EXPECT_EQ(p->ret, (SearchReturn{true, true, true, true, true}));
    EXPECT_EQ(p->charset, "UTF-8");
    EXPECT_EQ(p->key.children.size(), 3u);
    p = parse_search(cmd("A SEARCH RETURN () ALL\r\n"));
    ASSERT_TRUE(p);
    EXPECT_TRUE(p->ret.all);
    p = parse_search(cmd("A SEARCH UNSEEN\r\n"));
    EXPECT_FALSE(p->esearch);
    EXPECT_EQ(p->charset, "");
    auto e = parse_search(cmd("A SEARCH CHARSET KOI8-R TEXT x\r\n"));
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, "BADCHARSET (US-ASCII UTF-8)");
}

TEST(ImapSearch, Partial) {
    auto p = parse_search(cmd("A SEARCH RETURN (PARTIAL 4:2 COUNT) ALL\r\n"));
    ASSERT_TRUE(p) << p.error().text;
    EXPECT_TRUE(p->ret.partial && p->ret.count && !p->ret.all);
    EXPECT_EQ(p->ret.first, 2);
    EXPECT_EQ(p->ret.last, 4);
    for (auto bad : {"1", "1:*", "*:1", "0:3", "-1:2", "1:x", "", "1:99999999999"})
        EXPECT_FALSE(parse_partial_range(bad)) << bad;
    EXPECT_FALSE(parse_search(cmd("A SEARCH RETURN (PARTIAL) ALL\r\n")));
    EXPECT_FALSE(parse_search(cmd("A SEARCH RETURN (PARTIAL 1:2 ALL) ALL\r\n")));
    auto r = parse_partial_range("-1:-3");
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, (std::pair<std::int64_t, std::int64_t>{-3, -1}));

    SearchReturn ret;
    ret.partial = true;
    std::vector<std::uint32_t> hits{1, 2, 4, 5, 9};
    ret.first = 2, ret.last = 4;
    EXPECT_EQ(partial_result(ret, hits), "(2:4 2,4:5)");
    ret.first = 1, ret.last = 100;
    EXPECT_EQ(partial_result(ret, hits), "(1:100 1:2,4:5,9)");
    ret.first = -2, ret.last = -1;
    EXPECT_EQ(partial_result(ret, hits), "(-2:-1 5,9)");
    ret.first = 6, ret.last = 6;
    EXPECT_EQ(partial_result(ret, hits), "(6:6 NIL)");
    ret.first = -9, ret.last = -7;
    EXPECT_EQ(partial_result(ret, hits), "(-9:-7 NIL)");
}

TEST(ImapSearch, Errors) {
    for (auto bad : {"A SEARCH\r\n",
                     "A SEARCH FOO\r\n",
                     "A SEARCH FROM\r\n",
                     "A SEARCH BEFORE 1994\r\n",
                     "A SEARCH LARGER x\r\n",
                     "A SEARCH LARGER\r\n",
                     "A SEARCH NOT\r\n",
                     "A SEARCH OR SEEN\r\n",
                     "A SEARCH ()\r\n",
                     "A SEARCH KEYWORD \\Seen\r\n",
                     "A SEARCH UID\r\n",
                     "A SEARCH UID x\r\n",
                     "A SEARCH 0\r\n",
                     "A SEARCH \"ALL\"\r\n",
                     "A SEARCH RETURN (FOO) ALL\r\n",
                     "A SEARCH RETURN ALL\r\n",
                     "A SEARCH CHARSET\r\n",
                     "A SEARCH HEADER \"\" x\r\n",
                     "A SEARCH MODSEQ\r\n",
                     "A SEARCH MODSEQ \"/flags/x\" bogus 5\r\n",
                     "A SEARCH MODSEQ \"other\" all 5\r\n",
                     "A SEARCH MODSEQ \"/flags/x\" all\r\n",
                     "A SEARCH (SEEN (FOO))\r\n",
                     "A SEARCH SEEN ALL FOO\r\n"})
        EXPECT_FALSE(parse_search(cmd(bad))) << bad;
    EXPECT_EQ(parse_search(cmd("A SEARCH FOO\r\n")).error().text, "Unknown search key 'FOO'");
}

TEST(ImapSearch, NestingLimit) {
    std::string ok, deep;
    for (std::size_t i = 0; i < kMaxSearchDepth; ++i)
        ok += "NOT ";
    EXPECT_TRUE(parse_search(cmd("A SEARCH " + ok + "SEEN\r\n")));
    EXPECT_EQ(parse_search(cmd("A SEARCH NOT " + ok + "SEEN\r\n")).error().text,
              "Search program nested too deeply");
    for (std::size_t i = 0; i <= kMaxSearchDepth; ++i)
        deep += "OR SEEN ";
    EXPECT_FALSE(parse_search(cmd("A SEARCH " + deep + "SEEN\r\n")));
}

// ---- LIST ---------------------------------------------------------------------------------------

TEST(ImapList, Basic) {
    auto l = parse_list(cmd("A LIST \"\" %\r\n"), false);
    ASSERT_TRUE(l) << l.error().text;
    EXPECT_FALSE(l->extended);
    EXPECT_EQ(l->reference, "");
    EXPECT_EQ(l->patterns, std::vector<std::string>{"%"});
    l = parse_list(cmd("A LIST ~/Mail/ &U,BTFw-/*\r\n"), false);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->reference, "~/Mail/");
    EXPECT_EQ(l->patterns, std::vector<std::string>{"台北/*"});
    l = parse_list(cmd("A LSUB \"#news.\" comp.mail.*\r\n"), true);
    ASSERT_TRUE(l);
    EXPECT_TRUE(l->lsub);
    EXPECT_EQ(l->patterns, std::vector<std::string>{"comp.mail.*"});
    // Patterns that are no valid modified UTF-7 are kept as sent (they match nothing).
    l = parse_list(cmd("A LIST \"\" &Jjo%\r\n"), false);
    ASSERT_TRUE(l) << l.error().text;
    EXPECT_EQ(l->patterns, std::vector<std::string>{"&Jjo%"});
}

TEST(ImapList, InvalidModifiedUtf7PatternMatchesNothing) {
    // Kept as sent: no mailbox name (all decoded) can equal it, so it matches nothing.
    auto l = parse_list(cmd("A LIST \"\" !#$&'+,-.0123456789:;<=>?@^_`|[}%*\r\n"), false);
    ASSERT_TRUE(l) << l.error().text;
    EXPECT_EQ(l->patterns, std::vector<std::string>{"!#$&'+,-.0123456789:;<=>?@^_`|[}%*"});
    l = parse_list(cmd("A LIST \"\" (\"&Jjo\" INBOX)\r\n"), false);
    ASSERT_TRUE(l) << l.error().text;
    EXPECT_EQ(l->patterns, (std::vector<std::string>{"&Jjo", "INBOX"}));
}

TEST(ImapList, Extended) {
    auto l =
        parse_list(cmd("A LIST (SUBSCRIBED RECURSIVEMATCH remote) \"\" (\"INBOX\" \"Drafts/*\") "
                       "RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n"),
                   true);
    ASSERT_TRUE(l) << l.error().text;
    EXPECT_TRUE(l->extended);
    EXPECT_TRUE(l->select_subscribed);
    EXPECT_TRUE(l->select_recursive_match);
    EXPECT_TRUE(l->select_remote);
    EXPECT_FALSE(l->select_special_use);
    EXPECT_EQ(l->patterns, (std::vector<std::string>{"INBOX", "Drafts/*"}));
    EXPECT_TRUE(l->return_subscribed);  // implied by the selection
    EXPECT_TRUE(l->return_children);
    EXPECT_TRUE(l->return_special_use);
    EXPECT_TRUE(l->return_status);
    EXPECT_EQ(l->status_items, (std::vector<StatusItem>{StatusItem::Messages, StatusItem::Unseen}));
    l = parse_list(cmd("A LIST () \"\" %\r\n"), true);
    ASSERT_TRUE(l);
    EXPECT_TRUE(l->extended);
    l = parse_list(cmd("A LIST \"\" % RETURN ()\r\n"), true);
    ASSERT_TRUE(l);
    EXPECT_TRUE(l->extended);
    l = parse_list(cmd("A LIST (SPECIAL-USE) \"\" *\r\n"), true);
    ASSERT_TRUE(l);
    EXPECT_TRUE(l->select_special_use);
    EXPECT_FALSE(l->return_special_use);
    // LIST-STATUS (RFC 5819) with every item, and RECURSIVEMATCH after SPECIAL-USE.
    l = parse_list(cmd("A LIST (special-use recursivematch) \"\" (%) RETURN (subscribed STATUS "
                       "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY SIZE HIGHESTMODSEQ DELETED RECENT "
                       "APPENDLIMIT DELETED-STORAGE))\r\n"),
                   false);
    ASSERT_TRUE(l) << l.error().text;
    EXPECT_TRUE(l->select_special_use);
    EXPECT_TRUE(l->select_recursive_match);
    EXPECT_FALSE(l->select_subscribed);
    EXPECT_TRUE(l->return_subscribed);
    EXPECT_FALSE(l->return_children);
    EXPECT_EQ(l->status_items.size(), 10u);
}

TEST(ImapList, Errors) {
    for (auto bad : {"A LIST\r\n", "A LIST \"\"\r\n", "A LIST (FOO) \"\" %\r\n",
                     "A LIST (RECURSIVEMATCH) \"\" %\r\n", "A LIST \"\" () \r\n",
                     "A LIST \"\" % RETURN (FOO)\r\n", "A LIST \"\" % RETURN (STATUS)\r\n",
                     "A LIST \"\" % RETURN (STATUS (FOO))\r\n", "A LIST \"\" % EXTRA\r\n",
                     "A LIST \"\" % RETURN\r\n", "A LSUB () \"\" %\r\n",
                     "A LSUB \"\" % RETURN ()\r\n", "A LIST (RECURSIVEMATCH REMOTE) \"\" %\r\n",
                     "A LIST \"\" % RETURN (STATUS (MESSAGES) STATUS (UNSEEN))\r\n",
                     "A LIST \"\" % RETURN STATUS (MESSAGES)\r\n", "A LIST &Jjo %\r\n"})
        EXPECT_FALSE(parse_list(cmd(bad), false)) << bad;
    // (A pattern that is not modified UTF-7 is no error: see InvalidModifiedUtf7Pattern...;
    // the reference name still must be valid.)
}
