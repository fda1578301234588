// proto/line_test.cpp: LineParser fed whole and byte by byte, and its limit crossed.
#include "proto/line.h"

#include <gtest/gtest.h>

#include <vector>

using millipost::proto::LineParser;
using S = LineParser::Status;

namespace {

struct Event {
    S status;
    std::string line;
    bool operator==(const Event&) const = default;
};

// Feeds `input` in pieces of `step` bytes and records every event.
std::vector<Event> run(std::string_view input, std::size_t step, std::size_t max = 64) {
    LineParser p(max);
    std::vector<Event> out;
    for (std::size_t pos = 0; pos < input.size(); pos += step) {
        auto piece = input.substr(pos, step);
        while (!piece.empty()) {
            std::size_t used = 0;
            auto st = p.feed(piece, used);
            piece.remove_prefix(used);
            if (st != S::NeedMore)
                out.push_back({st, p.line()});
            else
                EXPECT_TRUE(piece.empty());
        }
    }
    return out;
}

}  // namespace

TEST(LineParser, SplitsCrlfLinesAtAnyBoundary) {
    std::string in = "EHLO a\r\nMAIL FROM:<x@y>\r\n\r\nQUIT\r\n";
    std::vector<Event> want = {
        {S::Line, "EHLO a"}, {S::Line, "MAIL FROM:<x@y>"}, {S::Line, ""}, {S::Line, "QUIT"}};
    for (std::size_t step = 1; step <= in.size(); ++step)
        EXPECT_EQ(run(in, step), want) << step;
}

TEST(LineParser, ReportsBareLfAndNul) {
    auto ev = run(std::string("a\nb\0c\r\nok\r\n", 11), 1);
    ASSERT_EQ(ev.size(), 3u);
    EXPECT_EQ(ev[0].status, S::BareLF);
    EXPECT_EQ(ev[1].status, S::Nul);
    EXPECT_EQ(ev[2], (Event{S::Line, "ok"}));
}

TEST(LineParser, LimitCountsCrlf) {
    // max 10: 8 octets of text + CRLF fit; 9 do not.
    EXPECT_EQ(run("12345678\r\n", 1, 10), (std::vector<Event>{{S::Line, "12345678"}}));
    auto ev = run("123456789\r\nok\r\n", 1, 10);
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0].status, S::TooLong);
    EXPECT_EQ(ev[1], (Event{S::Line, "ok"}));
}

TEST(LineParser, OverlongLineWithoutNewlineIsReportedOnceAndSkipped) {
    std::string big(1 << 20, 'x');
    LineParser p(2048);
    std::size_t used = 0;
    EXPECT_EQ(p.feed(big, used), S::TooLong);
    EXPECT_LT(used, 2049u);
    std::string_view rest(big);
    rest.remove_prefix(used);
    EXPECT_EQ(p.feed(rest, used), S::NeedMore);
    EXPECT_EQ(used, rest.size());
    EXPECT_EQ(p.pending(), 0u);  // memory stays bounded while skipping
    EXPECT_EQ(p.feed("\r\nNOOP\r\n", used), S::Line);
    EXPECT_EQ(p.line(), "NOOP");
}
