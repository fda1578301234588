// outbound/dsn_test.cpp: the bounce message's structure (RFC 3464 / RFC 3462), read back with
// the server's own MIME parser, and the quoted header section's limit.
#include "outbound/dsn.h"
#include "mime/message.h"
#include "util/limits.h"

#include <gtest/gtest.h>

using namespace millipost;
using millipost::outbound::RcptResult;

namespace {

std::vector<RcptResult> failed() {
    RcptResult remote{"nobody@far.example", RcptResult::Kind::Bounced, "5.1.1",
                      "550 5.1.1 user unknown",
                      "host mx[192.0.2.1]:25 said: 550 5.1.1 user unknown (in reply to RCPT TO "
                      "command)"};
    RcptResult local{"x@gone.example", RcptResult::Kind::Bounced, "4.4.1",
                     "connect to mx[192.0.2.2]:25: Connection refused",
                     "delivery time expired; last error: connect to mx[192.0.2.2]:25: Connection "
                     "refused"};
    return {remote, local};
}

}  // namespace

TEST(Dsn, MultipartReportWithOneBlockPerRecipient) {
    auto f = failed();
    std::string original = "From: bob@localhost\r\nSubject: hi\r\n\r\nthe body\r\n";
    outbound::DsnInput in{"mail.example", "42", "bob@localhost", 1000, 2000, f, original};
    auto dsn = outbound::make_dsn(in);
    ASSERT_TRUE(dsn.starts_with("Return-Path: <>\r\n"));
    auto parsed = mime::parse(dsn);
    auto& root = parsed.root;
    EXPECT_TRUE(root.type_is("multipart", "report"));
    ASSERT_NE(root.param("report-type"), nullptr);
    ASSERT_EQ(root.children.size(), 3u);
    EXPECT_TRUE(root.children[0].type_is("text", "plain"));
    EXPECT_TRUE(root.children[1].type_is("message", "delivery-status"));
    EXPECT_TRUE(root.children[2].type_is("text", "rfc822-headers"));
    EXPECT_EQ(root.defects, 0u);
    EXPECT_NE(dsn.find("Final-Recipient: rfc822; nobody@far.example\r\nAction: failed\r\n"
                       "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"),
              std::string::npos);
    // No SMTP reply to quote: our own words, not dressed up as one.
    EXPECT_NE(dsn.find("Status: 4.4.1\r\nDiagnostic-Code: X-Millipost; delivery time expired"),
              std::string::npos);
    EXPECT_NE(dsn.find("Subject: hi\r\n"), std::string::npos);
    EXPECT_EQ(dsn.find("the body"), std::string::npos);  // headers only
}

TEST(Dsn, QuotedHeadersAreBoundedAtALineBoundary) {
    auto f = failed();
    std::string original;
    while (original.size() < limits::kDsnMaxQuotedHeaders + 1000)
        original += "X-Filler: " + std::string(70, 'f') + "\r\n";
    original += "X-Last: past the limit\r\n\r\nbody\r\n";
    outbound::DsnInput in{"mail.example", "43", "bob@localhost", 1000, 2000, f, original};
    auto dsn = outbound::make_dsn(in);
    EXPECT_EQ(dsn.find("X-Last"), std::string::npos);
    EXPECT_LT(dsn.size(), limits::kDsnMaxQuotedHeaders + 4096);
    auto quoted = dsn.substr(dsn.find("Content-Type: text/rfc822-headers\r\n\r\n"));
    EXPECT_NE(quoted.find("fff\r\n\r\n--"), std::string::npos);  // whole lines only
}
