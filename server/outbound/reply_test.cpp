// outbound/reply_test.cpp: the SMTP client's reply parser (bounded, never trusting the server),
// EHLO keywords, the retry schedule and dot-stuffing.
#include "outbound/reply.h"

#include <gtest/gtest.h>

using namespace millipost::outbound;
using Status = ReplyParser::Status;

namespace {

// Feeds `in` in pieces of `chunk` bytes; returns the final status and how much was consumed.
std::pair<Status, std::size_t> feed_all(ReplyParser& p, std::string_view in, std::size_t chunk) {
    std::size_t total = 0;
    Status st = Status::NeedMore;
    while (total < in.size()) {
        auto piece = in.substr(total, std::min(chunk, in.size() - total));
        std::size_t used = 0;
        st = p.feed(piece, used);
        total += used;
        if (st != Status::NeedMore) break;
        EXPECT_EQ(used, piece.size());
    }
    return {st, total};
}

}  // namespace

TEST(ReplyParser, SingleAndMultiline) {
    ReplyParser p(512, 10);
    std::string in = "250-mx.example Hello\r\n250-SIZE 1000\r\n250 STARTTLS\r\nNEXT";
    for (std::size_t chunk : {1u, 3u, 7u, 1000u}) {
        p.reset();
        auto [st, used] = feed_all(p, in, chunk);
        ASSERT_EQ(st, Status::Done) << chunk;
        EXPECT_EQ(used, in.size() - 4);  // the next reply's bytes are left alone
        EXPECT_EQ(p.reply().code, 250);
        EXPECT_EQ(p.reply().lines,
                  (std::vector<std::string>{"mx.example Hello", "SIZE 1000", "STARTTLS"}));
    }
    std::size_t used = 0;
    ASSERT_EQ(p.feed("354\r\n", used), Status::Done);  // a new reply after Done; text optional
    EXPECT_EQ(p.reply().code, 354);
    EXPECT_EQ(p.reply().summary(), "354");
    EXPECT_FALSE(p.reply().completed());                         // only DATA expects a 3xx
    ASSERT_EQ(p.feed("451 4.3.0 later\n", used), Status::Done);  // bare LF tolerated
    EXPECT_TRUE(p.reply().temporary());
    EXPECT_EQ(p.reply().summary(), "451 4.3.0 later");
}

TEST(ReplyParser, BadRepliesAreBadNotCrashes) {
    for (std::string bad : std::vector<std::string>{
             "hello\r\n", "25\r\n", "2x0 ok\r\n", "099 low\r\n", "600 high\r\n",
             "250-a\r\n251 b\r\n", "250_x\r\n", std::string("\0\0\0\r\n", 5)}) {
        ReplyParser p(512, 10);
        auto [st, used] = feed_all(p, bad, 1000);
        EXPECT_EQ(st, Status::Bad) << bad;
        EXPECT_FALSE(p.error().empty());
    }
}

TEST(ReplyParser, BoundsLineLengthAndLineCount) {
    ReplyParser p(100, 5);
    std::string longline = "250 " + std::string(200, 'x');  // no newline yet: still refused
    std::size_t used = 0;
    EXPECT_EQ(p.feed(longline, used), Status::Bad);
    EXPECT_EQ(p.error(), "reply line too long");
    p.reset();
    std::string exact = "250 " + std::string(95, 'x') + "\r";  // 100 bytes before the LF
    EXPECT_EQ(p.feed(exact + "\n", used), Status::Done);
    p.reset();
    std::string many;
    for (int i = 0; i < 5; ++i)
        many += "250-line\r\n";
    many += "250 last\r\n";
    auto [st, n] = feed_all(p, many, 1000);
    EXPECT_EQ(st, Status::Bad);
    EXPECT_EQ(p.error(), "too many reply lines");
    p.reset();
    // An endless multiline reply in small pieces is cut off at the limit too.
    st = Status::NeedMore;
    for (int i = 0; i < 100 && st == Status::NeedMore; ++i)
        st = p.feed("250-more\r\n", used);
    EXPECT_EQ(st, Status::Bad);
}

TEST(Ehlo, Keywords) {
    Reply r{250,
            {"mx.example greets you", "PIPELINING", "size 35882577", "STARTTLS", "AUTH LOGIN PLAIN",
             "8BITMIME"}};
    auto e = parse_ehlo(r);
    EXPECT_TRUE(e.starttls);
    EXPECT_TRUE(e.size);
    EXPECT_EQ(e.max_size, 35882577u);
    EXPECT_TRUE(e.auth_plain);
    EXPECT_TRUE(e.eightbitmime);
    // The first line is the greeting, not a keyword; a SIZE without a value has no limit.
    auto f = parse_ehlo(Reply{250, {"STARTTLS", "SIZE", "AUTH=PLAIN"}});
    EXPECT_FALSE(f.starttls);
    EXPECT_TRUE(f.size);
    EXPECT_EQ(f.max_size, 0u);
    EXPECT_FALSE(f.auth_plain);
}

TEST(RetrySchedule, DoublesUpToTheCap) {
    using std::chrono::seconds;
    EXPECT_EQ(retry_delay(1, seconds(60), seconds(3600)), seconds(60));
    EXPECT_EQ(retry_delay(2, seconds(60), seconds(3600)), seconds(120));
    EXPECT_EQ(retry_delay(6, seconds(60), seconds(3600)), seconds(1920));
    EXPECT_EQ(retry_delay(7, seconds(60), seconds(3600)), seconds(3600));
    EXPECT_EQ(retry_delay(1000000, seconds(60), seconds(3600)), seconds(3600));
    EXPECT_EQ(retry_delay(3, seconds(1), seconds(2)), seconds(2));
}

TEST(DotStuff, LeadingDotsDoubledAndTerminated) {
    EXPECT_EQ(dot_stuff("a\r\n.b\r\n..c\r\n.\r\n"), "a\r\n..b\r\n...c\r\n..\r\n.\r\n");
    EXPECT_EQ(dot_stuff(".start\r\nno newline at end"), "..start\r\nno newline at end\r\n.\r\n");
    EXPECT_EQ(dot_stuff(""), ".\r\n");
    EXPECT_EQ(dot_stuff("x.y\r\n"), "x.y\r\n.\r\n");  // only at a line's start
}
