// proto/pop3/parser_test.cpp: POP3 command parsing, numbers and the multi-line writer.
#include "proto/pop3/parser.h"

#include <gtest/gtest.h>

using namespace millipost::pop3;

TEST(Pop3Parser, Commands) {
    auto c = parse_command("retr 12");
    EXPECT_EQ(c.verb, Verb::Retr);
    ASSERT_EQ(c.args.size(), 1u);
    EXPECT_EQ(c.args[0], "12");
    auto p = parse_command("PASS secret with spaces");
    EXPECT_EQ(p.verb, Verb::Pass);
    ASSERT_EQ(p.args.size(), 1u);
    EXPECT_EQ(p.args[0], "secret with spaces");
    EXPECT_EQ(parse_command("XYZZY").verb, Verb::Unknown);
    EXPECT_EQ(parse_command("TOP 1 10").args.size(), 2u);
}

TEST(Pop3Parser, Numbers) {
    EXPECT_EQ(parse_number("1"), 1u);
    EXPECT_EQ(parse_number("2147483647"), 2147483647u);
    EXPECT_FALSE(parse_number("0"));
    EXPECT_FALSE(parse_number("-1"));
    EXPECT_FALSE(parse_number("+1"));
    EXPECT_FALSE(parse_number("2147483648"));
    EXPECT_FALSE(parse_number("99999999999"));
    EXPECT_FALSE(parse_number("1a"));
    EXPECT_FALSE(parse_number(""));
}

TEST(Pop3Writer, DotStuffsAndTerminates) {
    std::string out;
    append_multiline(out, "Subject: x\r\n\r\n.hidden\r\nplain\r\n..two\r\n");
    EXPECT_EQ(out, "Subject: x\r\n\r\n..hidden\r\nplain\r\n...two\r\n.\r\n");
}

TEST(Pop3Writer, TopKeepsHeaderAndNLines) {
    std::string body = "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n";
    std::string out;
    append_multiline(out, body, 0);
    EXPECT_EQ(out, "A: 1\r\nB: 2\r\n\r\n.\r\n");
    out.clear();
    append_multiline(out, body, 2);
    EXPECT_EQ(out, "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n.\r\n");
    out.clear();
    append_multiline(out, body, 100);
    EXPECT_EQ(out, body + ".\r\n");
}

TEST(Pop3Writer, MissingFinalNewlineIsCompleted) {
    std::string out;
    append_multiline(out, "A: 1\r\n\r\nlast");
    EXPECT_EQ(out, "A: 1\r\n\r\nlast\r\n.\r\n");
}
