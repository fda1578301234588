// proto/smtp/parser_test.cpp: SMTP command parsing, address validation and the DATA reader
// (dot-unstuffing, the end mark, bare newlines, size limit) fed at every split.
#include "proto/smtp/parser.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

using namespace millipost::smtp;

TEST(SmtpParser, MailWithParameters) {
    auto r = parse_command("MAIL FROM:<a.b@example.org> SIZE=100 BODY=8BITMIME");
    ASSERT_TRUE(r.command);
    EXPECT_EQ(r.command->verb, Verb::Mail);
    EXPECT_EQ(r.command->path, "a.b@example.org");
    ASSERT_EQ(r.command->params.size(), 2u);
    EXPECT_EQ(r.command->params[0].key, "SIZE");
    EXPECT_EQ(r.command->params[0].value, "100");
}

TEST(SmtpParser, Starttls) {
    auto r = parse_command("starttls");
    ASSERT_TRUE(r.command);
    EXPECT_EQ(r.command->verb, Verb::Starttls);
    auto bad = parse_command("STARTTLS now");  // RFC 3207 §4: no parameters
    ASSERT_FALSE(bad.command);
    EXPECT_EQ(bad.error.code, 501);
}

TEST(SmtpParser, NullReversePathAndSourceRoute) {
    auto r = parse_command("mail from:<>");
    ASSERT_TRUE(r.command);
    EXPECT_EQ(r.command->path, "");
    auto rt = parse_command("RCPT TO:<@relay.example:bob@example.org>");
    ASSERT_TRUE(rt.command);
    EXPECT_EQ(rt.command->path, "bob@example.org");
    EXPECT_FALSE(parse_command("RCPT TO:<>").command);
}

TEST(SmtpParser, QuotedLocalPartsMayHoldAngleBrackets) {
    auto r = parse_command("RCPT TO:<\"a>b\"@example.org>");
    ASSERT_TRUE(r.command);
    EXPECT_EQ(r.command->path, "\"a>b\"@example.org");
}

TEST(SmtpParser, Errors) {
    EXPECT_EQ(parse_command("FOO").error.code, 500);
    EXPECT_EQ(parse_command("MAIL <a@b>").error.code, 501);
    EXPECT_EQ(parse_command("MAIL FROM:a@b").error.code, 501);
    EXPECT_EQ(parse_command("MAIL FROM:<a@b").error.code, 501);
    EXPECT_EQ(parse_command("RCPT TO:<a..b@c>").error.code, 501);
    EXPECT_EQ(parse_command("RCPT TO:<a@-c>").error.code, 501);
    EXPECT_EQ(parse_command("EHLO").error.code, 501);
    EXPECT_EQ(parse_command("DATA x").error.code, 501);
    EXPECT_EQ(parse_command("MAIL FROM:<ü@example.org>").error.code, 553);
    EXPECT_TRUE(parse_command("MAIL FROM:<ü@example.org> SMTPUTF8").command);
}

TEST(SmtpParser, Mailboxes) {
    EXPECT_TRUE(valid_mailbox("user@example.org", false));
    EXPECT_TRUE(valid_mailbox("u+tag@[127.0.0.1]", false));
    EXPECT_TRUE(valid_mailbox("\"john doe\"@example.org", false));
    EXPECT_FALSE(valid_mailbox("user", false));
    EXPECT_FALSE(valid_mailbox("@example.org", false));
    EXPECT_FALSE(valid_mailbox(".a@example.org", false));
    EXPECT_FALSE(valid_mailbox("a@exa mple.org", false));
    EXPECT_FALSE(valid_mailbox("ü@example.org", false));
    EXPECT_TRUE(valid_mailbox("ü@exämple.org", true));
}

namespace {

struct DataResult {
    std::string body;
    std::size_t consumed_total;
    bool done;
    bool bare;
    bool nul;
    bool too_big;
};

DataResult read_data(std::string_view in, std::vector<std::size_t> cuts,
                     std::size_t max = 1 << 20) {
    DataReader r(max);
    DataResult res{"", 0, false, false, false, false};
    std::size_t pos = 0;
    std::sort(cuts.begin(), cuts.end());
    cuts.push_back(in.size());
    for (auto cut : cuts) {
        cut = std::min(cut, in.size());
        if (cut < pos) continue;
        auto piece = in.substr(pos, cut - pos);
        std::size_t used = 0;
        if (r.feed(piece, used, res.body) == DataReader::Status::Done) {
            res.done = true;
            res.consumed_total = pos + used;
            break;
        }
        pos = cut;
    }
    res.bare = r.bare_newline();
    res.nul = r.nul();
    res.too_big = r.too_big();
    return res;
}

// The client side of DATA, written independently: dot-stuff lines, add the end mark.
std::string stuff(const std::vector<std::string>& lines) {
    std::string out;
    for (auto& l : lines)
        out += (l.starts_with(".") ? "." : "") + l + "\r\n";
    return out + ".\r\n";
}

}  // namespace

TEST(DataReader, UnstuffsAndStopsAtTheEndMark) {
    auto r = read_data("Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n", {});
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.body, "Subject: x\r\n\r\n.dot\r\n");
    EXPECT_EQ(r.consumed_total, std::string("Subject: x\r\n\r\n..dot\r\n.\r\n").size());
}

TEST(DataReader, EmptyMessage) {
    auto r = read_data(".\r\n", {});
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.body, "");
}

TEST(DataReader, BareLfNeverEndsTheData) {
    // SMTP smuggling: "\n.\r\n" and "\r\n.\n" must not end the message.
    auto r = read_data("a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", {});
    EXPECT_TRUE(r.done);
    EXPECT_TRUE(r.bare);
    EXPECT_NE(r.body.find("MAIL FROM"), std::string::npos);
    auto r2 = read_data("a\r\n.\nb\r\n.\r\n", {});
    EXPECT_TRUE(r2.done);
    EXPECT_TRUE(r2.bare);
    EXPECT_NE(r2.body.find('b'), std::string::npos);
}

TEST(DataReader, NulAndSize) {
    auto r = read_data(std::string("a\0b\r\n.\r\n", 8), {});
    EXPECT_TRUE(r.done);
    EXPECT_TRUE(r.nul);
    auto big = read_data("0123456789\r\n.\r\n", {}, 5);
    EXPECT_TRUE(big.done);
    EXPECT_TRUE(big.too_big);
    EXPECT_EQ(big.body.size(), 5u);
}

RC_GTEST_PROP(DataReader, AnySplitGivesTheSameMessage,
              (const std::vector<std::string>& raw, const std::vector<std::size_t>& cuts)) {
    // Lines of printable text and dots (no CR/LF inside a line).
    std::vector<std::string> lines;
    for (auto s : raw) {
        for (auto& c : s)
            if (c == '\r' || c == '\n' || c == '\0') c = '.';
        lines.push_back(s);
    }
    std::string wire = stuff(lines) + "NEXT";
    std::string want;
    for (auto& l : lines)
        want += l + "\r\n";
    auto r = read_data(wire, cuts);
    RC_ASSERT(r.done);
    RC_ASSERT(r.body == want);
    RC_ASSERT(r.consumed_total == wire.size() - 4);
    RC_ASSERT(!r.bare);
}
