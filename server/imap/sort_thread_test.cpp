// imap/sort_thread_test.cpp: base subjects (RFC 5256 §2.1), dates, message ids and the
// ORDEREDSUBJECT and REFERENCES threading algorithms (RFC 5256 §3) with their response syntax.
#include "imap/sort_thread.h"

#include "proto/imap/args.h"

#include <gtest/gtest.h>

namespace millipost::imap {
namespace {

TEST(BaseSubject, RemovesReplyAndForwardLeaders) {
    auto b = base_subject("Re: hello");
    EXPECT_EQ(b.text, "HELLO");
    EXPECT_TRUE(b.reply);
    EXPECT_EQ(base_subject("FWD: RE:  Fw: Hello World").text, "HELLO WORLD");
    EXPECT_EQ(base_subject("Re[2]: foo").text, "FOO");
    EXPECT_EQ(base_subject("Re [list]: foo").text, "FOO");
    EXPECT_FALSE(base_subject("Hello").reply);
    EXPECT_EQ(base_subject("Hello").text, "HELLO");
}

TEST(BaseSubject, TrailersBlobsAndFwdWrapper) {
    auto b = base_subject("Fwd: Re: [list] Subject  (fwd)");
    EXPECT_EQ(b.text, "SUBJECT");
    EXPECT_TRUE(b.reply);
    auto f = base_subject("RE:  [fwd: Re: Hello World ]");
    EXPECT_EQ(f.text, "HELLO WORLD");
    EXPECT_TRUE(f.reply);
    // A blob that is all there is stays; one before text goes.
    EXPECT_EQ(base_subject("[PATCH]").text, "[PATCH]");
    EXPECT_EQ(base_subject("[PATCH] fix it").text, "FIX IT");
    EXPECT_EQ(base_subject("[a][b] re: x").text, "X");
    // Not leaders: "re" without a colon, "reply:".
    EXPECT_EQ(base_subject("Regarding x").text, "REGARDING X");
    EXPECT_EQ(base_subject("reply: x").text, "REPLY: X");
}

TEST(BaseSubject, WhitespaceAndCase) {
    EXPECT_EQ(base_subject("  a \t\r\n b  ").text, "A B");
    EXPECT_EQ(base_subject("re: re: ").text, "");
    EXPECT_EQ(base_subject("Re: ÄÖ Straße").text, "äö STRAßE");
}

TEST(MessageDate, NumericAndNamedZones) {
    EXPECT_EQ(parse_message_date("Tue, 1 Feb 1994 21:52:25 -0800"),
              epoch_from_civil(1994, 2, 2, 5, 52, 25));
    EXPECT_EQ(parse_message_date("1 Feb 94 21:52 EST"), epoch_from_civil(1994, 2, 2, 2, 52, 0));
    EXPECT_EQ(parse_message_date("Mon, 10 Jan 2005 10:00:00 +0000 (UTC)"),
              epoch_from_civil(2005, 1, 10, 10, 0, 0));
    EXPECT_EQ(parse_message_date("garbage"), std::nullopt);
    EXPECT_EQ(parse_message_date("1 Foo 2005 10:00:00"), std::nullopt);
}

TEST(MessageIds, InOrder) {
    EXPECT_EQ(message_ids("<a@b> <c@d>\r\n\t<e@f>"),
              (std::vector<std::string>{"<a@b>", "<c@d>", "<e@f>"}));
    EXPECT_TRUE(message_ids("none here").empty());
}

ThreadMessage msg(std::uint32_t n, std::string id, std::vector<std::string> refs,
                  std::string subject) {
    return ThreadMessage{n,
                         n,
                         static_cast<std::int64_t>(n) * 60,
                         std::move(id),
                         std::move(refs),
                         base_subject(subject)};
}

TEST(Thread, OrderedSubject) {
    std::vector<ThreadMessage> m{
        msg(1, "", {}, "b"), msg(2, "", {}, "a"),     msg(3, "", {}, "Re: b"),
        msg(4, "", {}, "c"), msg(5, "", {}, "Re: a"), msg(6, "", {}, "RE: B"),
    };
    EXPECT_EQ(render_threads(thread_orderedsubject(m)), "(1 (3)(6))(2 5)(4)");
}

TEST(Thread, ReferencesChainsAndSiblings) {
    std::vector<ThreadMessage> m{
        msg(1, "<1@x>", {}, "a"),
        msg(2, "<2@x>", {"<1@x>"}, "Re: a"),
        msg(3, "<3@x>", {"<1@x>"}, "Re: a"),
        msg(4, "<4@x>", {"<1@x>", "<2@x>"}, "Re: a"),
        msg(5, "<5@x>", {}, "other"),
    };
    EXPECT_EQ(render_threads(thread_references(m)), "(1 (2 4)(3))(5)");
}

TEST(Thread, ReferencesDummies) {
    // Two replies to a message not in the mailbox share a dummy root; one alone is promoted.
    std::vector<ThreadMessage> m{
        msg(1, "<1@x>", {"<gone@x>"}, "p"),
        msg(2, "<2@x>", {"<gone@x>"}, "q"),
        msg(3, "<3@x>", {"<lost@x>", "<also-lost@x>"}, "r"),
    };
    EXPECT_EQ(render_threads(thread_references(m)), "((1)(2))(3)");
}

TEST(Thread, ReferencesSubjectMerge) {
    std::vector<ThreadMessage> m{
        msg(1, "<1@x>", {}, "hello"),
        msg(2, "<2@x>", {}, "Re: hello"),  // a reply by subject only: child of 1
        msg(3, "<3@x>", {}, "same"),
        msg(4, "<4@x>", {}, "same"),  // two originals: siblings under a dummy
    };
    EXPECT_EQ(render_threads(thread_references(m)), "(1 2)((3)(4))");
}

TEST(Thread, ReferencesLoopsAndDuplicatesAreSafe) {
    std::vector<ThreadMessage> m{
        msg(1, "<a@x>", {"<b@x>"}, "x"), msg(2, "<b@x>", {"<a@x>"}, "y"),
        msg(3, "<a@x>", {}, "z"),  // duplicate Message-ID: a thread of its own
    };
    EXPECT_EQ(render_threads(thread_references(m)), "(2 1)(3)");
}

TEST(Thread, DeepChainsAreCut) {
    // 5000 messages each answering the previous one: no stack overflow, every message once.
    std::vector<ThreadMessage> m;
    for (std::uint32_t i = 1; i <= 5000; ++i)
        m.push_back(msg(i, "<" + std::to_string(i) + "@x>",
                        i > 1 ? std::vector<std::string>{"<" + std::to_string(i - 1) + "@x>"}
                              : std::vector<std::string>{},
                        "s" + std::to_string(i)));
    auto roots = thread_references(m);
    EXPECT_EQ(roots.size(), 5u);
    auto text = render_threads(roots);
    EXPECT_EQ(text.substr(0, 6), "(1 2 3");
    EXPECT_NE(text.find(" 4999 5000)"), std::string::npos);
}

TEST(Thread, EmptyInput) {
    EXPECT_EQ(render_threads(thread_references({})), "");
    EXPECT_EQ(render_threads(thread_orderedsubject({})), "");
}

}  // namespace
}  // namespace millipost::imap
