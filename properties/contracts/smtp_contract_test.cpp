// smtp_contract_test.cpp: the SMTP contract and the generic checker on a realistic transcript
// (pipelining, multi-line replies, DATA), fed at every split point, and on mutations of it that
// must each be caught and blamed on the right side.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "contracts/contract.h"

namespace mc = millipost::contracts;
using Who = mc::Breach::Who;

namespace {

enum class Dir { client, server };
struct Event {
    Dir dir;
    std::string bytes;
};
using Transcript = std::vector<Event>;

const mc::Contract& smtp() {
    static const mc::Contract c = mc::Contract::load(MILLIPOST_CONTRACTS_DIR "/smtp.contract");
    return c;
}

// A session as a pipelining client and a conforming server produce it: greeting, multi-line EHLO,
// a pipelined MAIL/RCPT/RCPT/DATA group with one recipient refused, a dot-stuffed body with the
// end of data and QUIT pipelined after it.
Transcript session() {
    return {
        {Dir::server, "220 mail.example.org ESMTP millipost ready\r\n"},
        {Dir::client, "EHLO client.example.com\r\n"},
        {Dir::server,
         "250-mail.example.org greets client.example.com\r\n250-PIPELINING\r\n"
         "250-SIZE 10485760\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"},
        {Dir::client, "NOOP\r\n"},
        {Dir::server, "250 2.0.0 OK\r\n"},
        {Dir::client,
         "MAIL FROM:<alice@example.com> SIZE=123 BODY=8BITMIME\r\n"
         "RCPT TO:<bob@example.org>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n"},
        {Dir::server,
         "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n"
         "550 5.1.1 No such user\r\n354 Start mail input; end with <CRLF>.<CRLF>\r\n"},
        {Dir::client,
         "From: alice@example.com\r\nSubject: hi\r\n\r\nHello Bob.\r\n..a dot-stuffed line\r\n"
         "MAIL FROM:<not-a-command@example.com>\r\n.\r\nRSET\r\n"},
        {Dir::server, "250 2.0.0 Message accepted\r\n250 2.0.0 Reset\r\n"},
        {Dir::client, "RCPT TO:<bob@example.org>\r\n"},
        {Dir::server, "503 5.5.1 Need MAIL first\r\n"},
        {Dir::client, "QUIT\r\n"},
        {Dir::server, "221 2.0.0 Bye\r\n"},
    };
}

// Feeds a transcript, each event cut into the given pieces; returns the first breach or the
// verdict at close.
mc::Verdict run(const Transcript& t, std::size_t cut_event = static_cast<std::size_t>(-1),
                std::size_t cut_at = 0, std::size_t chunk = 0) {
    mc::Checker checker(smtp());
    for (std::size_t i = 0; i < t.size(); ++i) {
        std::string_view b = t[i].bytes;
        std::vector<std::string_view> pieces;
        if (chunk > 0) {
            for (std::size_t p = 0; p < b.size(); p += chunk)
                pieces.push_back(b.substr(p, chunk));
        } else if (i == cut_event) {
            pieces = {b.substr(0, cut_at), b.substr(cut_at)};
        } else {
            pieces = {b};
        }
        for (std::string_view p : pieces) {
            mc::Verdict v = t[i].dir == Dir::client ? checker.on_client(p) : checker.on_server(p);
            if (v) return v;
        }
    }
    return checker.on_close();
}

std::string why(const mc::Verdict& v) {
    return v ? mc::to_string(*v) : "ok";
}

// Replaces the first occurrence of `from` in the transcript.
Transcript mutate(Transcript t, std::string_view from, std::string_view to) {
    for (Event& e : t)
        if (auto p = e.bytes.find(from); p != std::string::npos) {
            e.bytes.replace(p, from.size(), to);
            return t;
        }
    ADD_FAILURE() << "no " << from << " in the transcript";
    return t;
}

}  // namespace

TEST(SmtpContract, LoadsWithItsRequestTypes) {
    const mc::Contract& c = smtp();
    EXPECT_EQ(c.initial, "INIT");
    for (const char* r : {"ehlo", "helo", "mail", "rcpt", "data", "rset", "vrfy", "expn", "help",
                          "noop", "quit", "end-of-data"})
        EXPECT_NE(std::find(c.requests.begin(), c.requests.end(), r), c.requests.end()) << r;
}

TEST(SmtpContract, AcceptsTheSessionWhole) {
    EXPECT_FALSE(run(session())) << why(run(session()));
}

TEST(SmtpContract, AcceptsTheSessionAtEverySplitPoint) {
    Transcript t = session();
    for (std::size_t i = 0; i < t.size(); ++i)
        for (std::size_t at = 0; at <= t[i].bytes.size(); ++at) {
            mc::Verdict v = run(t, i, at);
            ASSERT_FALSE(v) << "event " << i << " cut at " << at << ": " << why(v);
        }
}

TEST(SmtpContract, AcceptsTheSessionByteByByte) {
    for (std::size_t chunk : {1, 2, 3, 7}) {
        mc::Verdict v = run(session(), static_cast<std::size_t>(-1), 0, chunk);
        EXPECT_FALSE(v) << "chunks of " << chunk << ": " << why(v);
    }
}

TEST(SmtpContract, TracksStateThroughTheSession) {
    mc::Checker c(smtp());
    EXPECT_EQ(c.state(), "INIT");
    EXPECT_FALSE(c.on_server("220 mx.example.org\r\n"));
    EXPECT_EQ(c.state(), "READY");
    EXPECT_FALSE(c.on_client("EHLO a.example\r\n"));
    EXPECT_FALSE(c.on_server("250-mx.example.org\r\n250 PIPELINING\r\n"));
    EXPECT_EQ(c.capabilities(), std::set<std::string>{"PIPELINING"});
    EXPECT_FALSE(c.on_client("RSET\r\nMAIL FROM:<>\r\n"));
    EXPECT_EQ(c.pending(), 2u);
    EXPECT_FALSE(c.on_server("250 reset\r\n250 ok\r\n"));
    EXPECT_EQ(c.state(), "MAIL");
    EXPECT_EQ(c.pending(), 0u);
}

TEST(SmtpContract, RejectsAnInvalidReplyCode) {
    mc::Verdict v = run(mutate(session(), "250 2.1.0 Sender OK", "299 2.1.0 Sender OK"));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    EXPECT_EQ(v->state, "GREETED");
    EXPECT_NE(v->rule.find("r250"), std::string::npos) << v->rule;
    EXPECT_EQ(v->bytes, "299 2.1.0 Sender OK\r\n");
}

TEST(SmtpContract, RejectsA354ToMail) {
    mc::Verdict v = run(mutate(session(), "250 2.1.0 Sender OK", "354 go ahead"));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    EXPECT_EQ(v->state, "GREETED");
    EXPECT_NE(v->reason.find("mail"), std::string::npos) << v->reason;
}

TEST(SmtpContract, RejectsAMissingGreeting) {
    Transcript t = session();
    t.erase(t.begin());
    mc::Verdict v = run(t);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    EXPECT_EQ(v->state, "INIT");
    EXPECT_NE(v->rule.find("Greeting"), std::string::npos) << v->rule;
}

TEST(SmtpContract, RejectsEveryDroppedFinalReplyLine) {
    // Dropping a reply's last line (the one with a space after the code) always shows: the
    // replies after it shift onto the wrong requests, or one request stays unanswered.
    Transcript t = session();
    std::size_t dropped = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
        if (t[i].dir != Dir::server) continue;
        for (std::size_t start = 0; start < t[i].bytes.size();) {
            std::size_t end = t[i].bytes.find("\r\n", start) + 2;
            if (t[i].bytes[start + 3] == ' ') {
                Transcript m = t;
                m[i].bytes.erase(start, end - start);
                mc::Verdict v = run(m);
                EXPECT_TRUE(v) << "dropping " << t[i].bytes.substr(start, end - start);
                // Without the 354 the body arrives while DATA is unanswered: the checker then
                // reads it as commands the client should not have sent yet. Likewise without the
                // reply to NOOP, which must end a pipelined group (RFC 2920 §3.1), the next
                // command reads as pipelined past it.
                bool is_354 = t[i].bytes.compare(start, 3, "354") == 0;
                bool ends_group = t[i].bytes.compare(start, 12, "250 2.0.0 OK") == 0;
                if (v && !is_354 && !ends_group) {
                    EXPECT_EQ(v->who, Who::server) << why(v);
                }
                ++dropped;
            }
            start = end;
        }
    }
    EXPECT_EQ(dropped, 11u);
}

TEST(SmtpContract, RejectsAReplyWhereNoneIsExpected) {
    Transcript t = session();
    t.insert(t.begin() + 3, {Dir::server, "250 2.0.0 unasked\r\n"});
    mc::Verdict v = run(t);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    EXPECT_EQ(v->state, "GREETED");
    EXPECT_EQ(v->bytes, "250 2.0.0 unasked\r\n");

    Transcript after_quit = session();
    after_quit.push_back({Dir::server, "250 still here\r\n"});
    v = run(after_quit);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    EXPECT_EQ(v->state, "CLOSED");
}

TEST(SmtpContract, AcceptsAnUnsolicited421) {
    Transcript t = session();
    t.resize(3);
    t.push_back({Dir::server, "421 4.4.2 Idle too long, closing\r\n"});
    EXPECT_FALSE(run(t)) << why(run(t));
}

TEST(SmtpContract, BlamesTheClientForAMalformedCommand) {
    mc::Verdict v = run(mutate(session(), "MAIL FROM:<alice@example.com>", "MAIL FROM alice"));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    EXPECT_EQ(v->bytes, "MAIL FROM alice SIZE=123 BODY=8BITMIME\r\n");
    EXPECT_NE(v->rule.find("mail"), std::string::npos);

    v = run(mutate(session(), "RCPT TO:<bob@example.org>", "RCPT TO:<bob@-example.org>"));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
}

TEST(SmtpContract, BlamesTheClientForCommandsAfterQuit) {
    Transcript t = session();
    t.push_back({Dir::client, "NOOP\r\n"});
    mc::Verdict v = run(t);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    EXPECT_EQ(v->state, "CLOSED");
}

TEST(SmtpContract, BlamesTheClientForPipeliningPastData) {
    Transcript t = {
        {Dir::server, "220 mx.example.org\r\n"},
        {Dir::client, "EHLO a.example\r\n"},
        {Dir::server, "250-mx.example.org\r\n250 PIPELINING\r\n"},
        {Dir::client, "MAIL FROM:<>\r\nRCPT TO:<b@c.example>\r\nDATA\r\nNOOP\r\n"},
        {Dir::server, "250 ok\r\n250 ok\r\n354 go\r\n"},
    };
    mc::Verdict v = run(t);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    EXPECT_EQ(v->bytes, "NOOP\r\n");
}

TEST(SmtpContract, ReportsUnansweredRequestsAndCutLinesAtClose) {
    mc::Checker c(smtp());
    EXPECT_FALSE(c.on_server("220 mx.example.org\r\n"));
    EXPECT_FALSE(c.on_client("NOOP\r\n"));
    mc::Verdict v = c.on_close();
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    EXPECT_EQ(v->bytes, "NOOP\r\n");

    mc::Checker cut(smtp());
    EXPECT_FALSE(cut.on_server("220 mx.exa"));
    v = cut.on_close();
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
}

TEST(SmtpContract, BoundsLineLengthAndStaysBroken) {
    mc::Checker c(smtp());
    EXPECT_FALSE(c.on_server("220 mx.example.org\r\n"));
    std::string flood(mc::kMaxLineBytes + 1, 'A');
    mc::Verdict v = c.on_client(flood);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    EXPECT_LE(v->bytes.size(), mc::kMaxBreachBytes);
    // Sticky: a later well-formed exchange does not clear the breach.
    EXPECT_TRUE(c.on_server("250 ok\r\n"));
}

TEST(ContractFormat, RefusesBrokenContracts) {
    EXPECT_THROW(mc::Contract::parse("%states\nA: x => y & B\n"), mc::ContractError);
    EXPECT_THROW(mc::Contract::parse("%rules\nx = \"X\" CRLF\n%states\nA: x => x\n"),
                 mc::ContractError);
    EXPECT_THROW(mc::Contract::parse("junk\n"), mc::ContractError);
    EXPECT_THROW(mc::Contract::parse("%rules\nx = \"X\" CRLF\n%engine\nbogus\n"),
                 mc::ContractError);
    mc::Contract ok =
        mc::Contract::parse("%rules\nx = \"X\" CRLF\n%states\nA: x => x & B\n  | x & =\n");
    EXPECT_EQ(ok.alternatives("A", "x").size(), 2u);
}
