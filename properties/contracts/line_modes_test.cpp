// line_modes_test.cpp: the checker's line-framed modes on the SMTP and POP3 contracts: dotted
// multi-line replies (streamed), capabilities from EHLO and CAPA (requires, pipelining), BDAT's
// byte-counted chunks, SASL prompts, and TLS (opaque after STARTTLS/STLS; plaintext injected
// ahead of the handshake is a breach). Each accepted session is fed at every split point; each
// bound crossed is a breach, never a crash.
#include <gtest/gtest.h>

#include <map>
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
using Session = std::vector<Event>;

const mc::Contract& load(const char* name) {
    static std::map<std::string, mc::Contract> loaded;
    auto it = loaded.find(name);
    if (it == loaded.end())
        it = loaded
                 .emplace(name, mc::Contract::load(std::string(MILLIPOST_CONTRACTS_DIR) + "/" +
                                                   name + ".contract"))
                 .first;
    return it->second;
}
const mc::Contract& smtp() {
    return load("smtp");
}
const mc::Contract& pop3() {
    return load("pop3");
}

constexpr std::size_t kWhole = static_cast<std::size_t>(-1);

// Feeds a session, event `cut` split at `at` (or every event in pieces of `chunk`).
mc::Verdict run(const mc::Contract& c, const Session& s, std::size_t cut = kWhole,
                std::size_t at = 0, std::size_t chunk = 0) {
    mc::Checker checker(c);
    for (std::size_t i = 0; i < s.size(); ++i) {
        std::string_view b = s[i].bytes;
        std::vector<std::string_view> pieces;
        if (chunk > 0) {
            for (std::size_t p = 0; p < b.size(); p += chunk)
                pieces.push_back(b.substr(p, chunk));
        } else if (i == cut) {
            pieces = {b.substr(0, at), b.substr(at)};
        } else {
            pieces = {b};
        }
        for (std::string_view p : pieces) {
            mc::Verdict v = s[i].dir == Dir::client ? checker.on_client(p) : checker.on_server(p);
            if (v) return v;
        }
    }
    return checker.on_close();
}

std::string why(const mc::Verdict& v) {
    return v ? mc::to_string(*v) : "ok";
}

void expect_accepted_at_every_split(const mc::Contract& c, const Session& s) {
    ASSERT_FALSE(run(c, s)) << why(run(c, s));
    for (std::size_t i = 0; i < s.size(); ++i)
        for (std::size_t at = 0; at <= s[i].bytes.size(); ++at) {
            mc::Verdict v = run(c, s, i, at);
            ASSERT_FALSE(v) << "event " << i << " cut at " << at << ": " << why(v);
        }
    for (std::size_t chunk : {1, 2, 3, 7}) {
        mc::Verdict v = run(c, s, kWhole, 0, chunk);
        ASSERT_FALSE(v) << "pieces of " << chunk << ": " << why(v);
    }
}

const char* kGreeting = "220 mx.example.org ESMTP\r\n";
const char* kEhlo = "EHLO client.example.com\r\n";
std::string ehlo_reply(const std::vector<std::string>& keywords) {
    std::string r = "250";
    r += keywords.empty() ? " " : "-";
    r += "mx.example.org\r\n";
    for (std::size_t i = 0; i < keywords.size(); ++i)
        r += (i + 1 == keywords.size() ? "250 " : "250-") + keywords[i] + "\r\n";
    return r;
}
Session smtp_opening(const std::vector<std::string>& keywords) {
    return {{Dir::server, kGreeting}, {Dir::client, kEhlo}, {Dir::server, ehlo_reply(keywords)}};
}
Session operator+(Session a, const Session& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

}  // namespace

// ---- SMTP: BDAT (RFC 3030) ----

TEST(SmtpChunking, BdatChunksAreRawBytesAtEverySplit) {
    // The chunk holds what would be commands and an end of data as lines; they are bytes.
    std::string chunk = "Subject: x\r\n\r\n.\r\nQUIT\r\nRSET\r\nab";
    Session s = smtp_opening({"PIPELINING", "CHUNKING", "8BITMIME"}) +
                Session{
                    {Dir::client,
                     "MAIL FROM:<a@example.com> BODY=8BITMIME\r\n"
                     "RCPT TO:<b@example.org>\r\n"},
                    {Dir::server, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n"},
                    {Dir::client, "BDAT " + std::to_string(chunk.size()) + "\r\n" + chunk +
                                      "BDAT 3 LAST\r\nc\r\n"},
                    {Dir::server, "250 2.0.0 chunk\r\n250 2.0.0 queued\r\n"},
                    {Dir::client, "MAIL FROM:<>\r\nRCPT TO:<c@example.org>\r\nBDAT 0 LAST\r\n"},
                    {Dir::server, "250 ok\r\n250 ok\r\n250 queued\r\n"},
                    {Dir::client, "QUIT\r\n"},
                    {Dir::server, "221 bye\r\n"},
                };
    expect_accepted_at_every_split(smtp(), s);
}

TEST(SmtpChunking, BdatWithoutChunkingIsTheClients) {
    Session s = smtp_opening({"PIPELINING"}) +
                Session{{Dir::client, "MAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\n"},
                        {Dir::server, "250 ok\r\n250 ok\r\n"},
                        {Dir::client, "BDAT 1 LAST\r\nx"}};
    mc::Verdict v = run(smtp(), s);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    EXPECT_NE(v->reason.find("CHUNKING"), std::string::npos) << why(v);
}

TEST(SmtpChunking, ShortChunksAndUnholdableCountsAreBreaches) {
    Session s = smtp_opening({"CHUNKING"}) + Session{{Dir::client, "MAIL FROM:<>\r\n"},
                                                     {Dir::server, "250 ok\r\n"},
                                                     {Dir::client, "RCPT TO:<b@example.org>\r\n"},
                                                     {Dir::server, "250 ok\r\n"},
                                                     {Dir::client, "BDAT 10 LAST\r\nshort"}};
    mc::Verdict v = run(smtp(), s);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    EXPECT_NE(v->reason.find("5 chunk bytes"), std::string::npos) << why(v);

    // 18 digits are held (and stream past without being buffered); 19 are refused.
    mc::Checker big(smtp());
    for (const Event& e : smtp_opening({"CHUNKING"}))
        ASSERT_FALSE(e.dir == Dir::client ? big.on_client(e.bytes) : big.on_server(e.bytes));
    ASSERT_FALSE(big.on_client("MAIL FROM:<>\r\n"));
    ASSERT_FALSE(big.on_server("250 ok\r\n"));
    ASSERT_FALSE(big.on_client("RCPT TO:<b@example.org>\r\n"));
    ASSERT_FALSE(big.on_server("250 ok\r\n"));
    ASSERT_FALSE(big.on_client("BDAT 999999999999999999 LAST\r\n"));
    std::string megabyte(1 << 20, '\n');
    for (int i = 0; i < 8; ++i)
        ASSERT_FALSE(big.on_client(megabyte));
    mc::Checker huge(smtp());
    for (const Event& e : smtp_opening({"CHUNKING"}))
        ASSERT_FALSE(e.dir == Dir::client ? huge.on_client(e.bytes) : huge.on_server(e.bytes));
    ASSERT_FALSE(huge.on_client("MAIL FROM:<>\r\n"));
    ASSERT_FALSE(huge.on_server("250 ok\r\n"));
    ASSERT_FALSE(huge.on_client("RCPT TO:<b@example.org>\r\n"));
    ASSERT_FALSE(huge.on_server("250 ok\r\n"));
    v = huge.on_client("BDAT 9999999999999999999 LAST\r\n");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
}

TEST(SmtpChunking, DataAfterBdatIsRefused) {
    Session s =
        smtp_opening({"PIPELINING", "CHUNKING"}) +
        Session{{Dir::client, "MAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\nBDAT 2\r\nxyDATA\r\n"},
                {Dir::server, "250 ok\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n"}};
    mc::Verdict v = run(smtp(), s);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    EXPECT_EQ(v->state, "BDAT");
}

// ---- SMTP: STARTTLS (RFC 3207) ----

TEST(SmtpStarttls, OpaqueAfterTheGoAheadAtEverySplit) {
    Session s = smtp_opening({"STARTTLS", "PIPELINING"}) +
                Session{{Dir::client, "STARTTLS\r\n"},
                        {Dir::server, "220 2.0.0 Ready to start TLS\r\n"},
                        {Dir::client, std::string("\x16\x03\x01\x02\x00\x01\r\n\xff", 9)},
                        {Dir::server, std::string("\x16\x03\x03\x00\x7a\x02\r\n250 \x00", 12)},
                        {Dir::client, "garbage that is not a command\r\n"}};
    expect_accepted_at_every_split(smtp(), s);
    mc::Checker c(smtp());
    for (const Event& e : s)
        ASSERT_FALSE(e.dir == Dir::client ? c.on_client(e.bytes) : c.on_server(e.bytes));
    EXPECT_TRUE(c.opaque());
    EXPECT_TRUE(c.capabilities().empty());  // RFC 3207 §4.2: forgotten
}

TEST(SmtpStarttls, ACommandInjectedBeforeTheReplyIsTheClients) {
    for (const char* injected : {"STARTTLS\r\nMAIL FROM:<>\r\n", "STARTTLS\r\nRSE"}) {
        Session s = smtp_opening({"STARTTLS", "PIPELINING"}) +
                    Session{{Dir::client, injected}, {Dir::server, "220 ready\r\n"}};
        mc::Verdict v = run(smtp(), s);
        ASSERT_TRUE(v) << injected;
        EXPECT_EQ(v->who, Who::client) << why(v);
        EXPECT_NE(v->reason.find("TLS"), std::string::npos) << why(v);
    }
}

TEST(SmtpStarttls, PlaintextAfterTheGoAheadIsTheServers) {
    Session s =
        smtp_opening({"STARTTLS"}) + Session{{Dir::client, "STARTTLS\r\n"},
                                             {Dir::server, "220 ready\r\n250 injected reply\r\n"}};
    mc::Verdict v = run(smtp(), s);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
}

TEST(SmtpStarttls, UnadvertisedOrRefused) {
    Session s = smtp_opening({"PIPELINING"}) + Session{{Dir::client, "STARTTLS\r\n"}};
    mc::Verdict v = run(smtp(), s);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    EXPECT_NE(v->reason.find("STARTTLS"), std::string::npos);

    Session refused =
        smtp_opening({"STARTTLS"}) + Session{{Dir::client, "STARTTLS\r\n"},
                                             {Dir::server, "454 4.7.0 TLS not available\r\n"},
                                             {Dir::client, "QUIT\r\n"},
                                             {Dir::server, "221 bye\r\n"}};
    EXPECT_FALSE(run(smtp(), refused)) << why(run(smtp(), refused));
}

// ---- SMTP: AUTH (RFC 4954) ----

TEST(SmtpAuth, ChallengesAndResponsesAtEverySplit) {
    Session s = smtp_opening({"AUTH LOGIN PLAIN", "PIPELINING"}) +
                Session{
                    {Dir::client, "AUTH LOGIN\r\n"},
                    {Dir::server, "334 VXNlcm5hbWU6\r\n"},
                    {Dir::client, "YWxpY2U=\r\n"},
                    {Dir::server, "334 UGFzc3dvcmQ6\r\n"},
                    {Dir::client, "c2VjcmV0\r\n"},
                    {Dir::server, "535 5.7.8 Authentication credentials invalid\r\n"},
                    {Dir::client, "AUTH PLAIN\r\n"},
                    {Dir::server, "334 \r\n"},
                    {Dir::client, "*\r\n"},
                    {Dir::server, "501 5.0.0 cancelled\r\n"},
                    {Dir::client, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"},
                    {Dir::server, "235 2.7.0 Authentication successful\r\n"},
                    {Dir::client, "MAIL FROM:<a@example.com> AUTH=<>\r\n"},
                    {Dir::server, "250 ok\r\n"},
                    {Dir::client, "QUIT\r\n"},
                    {Dir::server, "221 bye\r\n"},
                };
    expect_accepted_at_every_split(smtp(), s);
}

TEST(SmtpAuth, WrongLinesAndRepliesAreCaught) {
    Session opening = smtp_opening({"AUTH PLAIN", "PIPELINING"});
    // Not base64 after a challenge.
    mc::Verdict v = run(smtp(), opening + Session{{Dir::client, "AUTH PLAIN\r\n"},
                                                  {Dir::server, "334 \r\n"},
                                                  {Dir::client, "not base64!\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    EXPECT_EQ(v->state, "SASL");
    // A command pipelined past a challenge.
    v = run(smtp(),
            opening + Session{{Dir::client, "AUTH PLAIN\r\nNOOP\r\n"}, {Dir::server, "334 \r\n"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    // 250 is not an answer to AUTH (smtp-sink's habit).
    v = run(smtp(), opening + Session{{Dir::client, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"},
                                      {Dir::server, "250 2.0.0 Ok\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    // 530 may refuse MAIL (RFC 4954 §6), not EHLO.
    EXPECT_FALSE(
        run(smtp(), opening + Session{{Dir::client, "MAIL FROM:<>\r\n"},
                                      {Dir::server, "530 5.7.0 Authentication required\r\n"}}));
    v = run(smtp(), opening + Session{{Dir::client, kEhlo},
                                      {Dir::server, "530 5.7.0 Authentication required\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
}

// ---- SMTP: capabilities, PIPELINING, parameters, SMTPUTF8 ----

TEST(SmtpCapabilities, EhloListsThemAndHeloWithdrawsThem) {
    mc::Checker c(smtp());
    for (const Event& e : smtp_opening({"PIPELINING", "SIZE 1000", "auth plain login"}))
        ASSERT_FALSE(e.dir == Dir::client ? c.on_client(e.bytes) : c.on_server(e.bytes));
    EXPECT_EQ(c.capabilities(), (std::set<std::string>{"AUTH", "PIPELINING", "SIZE"}));
    ASSERT_FALSE(c.on_client("HELO client.example.com\r\n"));
    ASSERT_FALSE(c.on_server("250 mx.example.org\r\n"));
    EXPECT_TRUE(c.capabilities().empty());
    mc::Verdict v = c.on_client("MAIL FROM:<> SIZE=10\r\n");
    ASSERT_TRUE(v);
    EXPECT_NE(v->reason.find("SIZE"), std::string::npos) << why(v);
}

TEST(SmtpCapabilities, PipeliningNeedsTheKeyword) {
    Session s = smtp_opening({"SIZE 1000"}) +
                Session{{Dir::client, "MAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\n"}};
    mc::Verdict v = run(smtp(), s);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    EXPECT_EQ(v->bytes, "RCPT TO:<b@example.org>\r\n");
    EXPECT_NE(v->reason.find("PIPELINING"), std::string::npos);
}

TEST(SmtpCapabilities, SomeCommandsEndAPipelinedGroup) {
    // RFC 2920 §3.1: even with PIPELINING, nothing may follow EHLO, VRFY, EXPN, NOOP (or DATA,
    // QUIT) before its reply.
    for (const char* group : {"EHLO again.example\r\nMAIL FROM:<>\r\n", "NOOP\r\nRSET\r\n",
                              "VRFY alice\r\nNOOP\r\n", "EXPN staff\r\nRSET\r\n"}) {
        mc::Verdict v = run(smtp(), smtp_opening({"PIPELINING"}) + Session{{Dir::client, group}});
        ASSERT_TRUE(v) << group;
        EXPECT_EQ(v->who, Who::client);
        EXPECT_NE(v->reason.find("group"), std::string::npos) << why(v);
    }
    Session ok =
        smtp_opening({"PIPELINING"}) + Session{{Dir::client, "RSET\r\nMAIL FROM:<>\r\nNOOP\r\n"},
                                               {Dir::server, "250 ok\r\n250 ok\r\n250 ok\r\n"}};
    EXPECT_FALSE(run(smtp(), ok)) << why(run(smtp(), ok));
}

TEST(SmtpCapabilities, ParametersNeedTheirExtensions) {
    struct Case {
        const char* line;
        const char* keyword;
    };
    for (const Case& k : {Case{"MAIL FROM:<> SIZE=10\r\n", "SIZE"},
                          Case{"MAIL FROM:<> BODY=8BITMIME\r\n", "8BITMIME"},
                          Case{"MAIL FROM:<> BODY=BINARYMIME\r\n", "BINARYMIME"},
                          Case{"MAIL FROM:<a@example.com> SMTPUTF8\r\n", "SMTPUTF8"},
                          Case{"MAIL FROM:<> AUTH=<>\r\n", "AUTH"},
                          Case{"MAIL FROM:<> RET=HDRS ENVID=a+2Bb\r\n", "DSN"},
                          Case{"MAIL FROM:<j\xc3\xbcrgen@example.com>\r\n", "SMTPUTF8"}}) {
        Session without = smtp_opening({"PIPELINING"}) + Session{{Dir::client, k.line}};
        mc::Verdict v = run(smtp(), without);
        ASSERT_TRUE(v) << k.line;
        EXPECT_EQ(v->who, Who::client);
        EXPECT_NE(v->reason.find(k.keyword), std::string::npos) << why(v);
        Session with = smtp_opening({"PIPELINING", "SIZE", "8BITMIME", "BINARYMIME", "CHUNKING",
                                     "SMTPUTF8", "AUTH PLAIN", "DSN"}) +
                       Session{{Dir::client, k.line}, {Dir::server, "250 ok\r\n"}};
        EXPECT_FALSE(run(smtp(), with)) << k.line << ": " << why(run(smtp(), with));
    }
    Session rcpt = smtp_opening({"PIPELINING"}) +
                   Session{{Dir::client, "MAIL FROM:<>\r\n"},
                           {Dir::server, "250 ok\r\n"},
                           {Dir::client, "RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE\r\n"}};
    mc::Verdict v = run(smtp(), rcpt);
    ASSERT_TRUE(v);
    EXPECT_NE(v->reason.find("DSN"), std::string::npos) << why(v);
}

TEST(SmtpCapabilities, Smtputf8AddressesAreUtf8) {
    Session ok =
        smtp_opening({"SMTPUTF8", "8BITMIME"}) +
        Session{{Dir::client, "MAIL FROM:<j\xc3\xbcrgen@ex\xc3\xa4mple.com> SMTPUTF8\r\n"},
                {Dir::server, "250 ok\r\n"},
                {Dir::client, "RCPT TO:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.cn>\r\n"},
                {Dir::server, "250 ok\r\n"}};
    EXPECT_FALSE(run(smtp(), ok)) << why(run(smtp(), ok));
    // Bytes that are not UTF-8 (a lone continuation byte, an overlong form) are no address.
    for (const char* bad : {"MAIL FROM:<j\x80rgen@example.com> SMTPUTF8\r\n",
                            "MAIL FROM:<j\xc0\xafrgen@example.com> SMTPUTF8\r\n"}) {
        Session s = smtp_opening({"SMTPUTF8"}) + Session{{Dir::client, bad}};
        mc::Verdict v = run(smtp(), s);
        ASSERT_TRUE(v) << bad;
        EXPECT_EQ(v->who, Who::client);
    }
}

// ---- POP3: dotted replies (RFC 1939 §3) ----

Session pop3_login() {
    return {{Dir::server, "+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n"},
            {Dir::client, "USER alice\r\n"},
            {Dir::server, "+OK send PASS\r\n"},
            {Dir::client, "PASS secret word\r\n"},
            {Dir::server, "+OK 2 messages (320 octets)\r\n"}};
}

TEST(Pop3Dotted, MultiLineRepliesAtEverySplit) {
    Session s =
        pop3_login() +
        Session{
            {Dir::client, "STAT\r\n"},
            {Dir::server, "+OK 2 320\r\n"},
            {Dir::client, "LIST\r\n"},
            {Dir::server, "+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n"},
            {Dir::client, "RETR 1\r\n"},
            // Data that looks like replies and a stuffed "." line stay data.
            {Dir::server,
             "+OK 120 octets\r\nSubject: x\r\n\r\n+OK not a reply\r\n"
             "-ERR nor this\r\n...\r\n..\r\n.\r\n"},
            {Dir::client, "TOP 2 0\r\n"},
            {Dir::server, "+OK\r\nSubject: y\r\n\r\n.\r\n"},
            {Dir::client, "UIDL\r\n"},
            {Dir::server, "+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n"},
            {Dir::client, "UIDL 2\r\n"},
            {Dir::server, "+OK 2 QhdPYR:00WBw1Ph7x7\r\n"},
            {Dir::client, "LIST 9\r\n"},
            {Dir::server, "-ERR no such message\r\n"},
            {Dir::client, "DELE 1\r\n"},
            {Dir::server, "+OK message 1 deleted\r\n"},
            {Dir::client, "QUIT\r\n"},
            {Dir::server, "+OK dewey POP3 server signing off (1 message left)\r\n"},
        };
    expect_accepted_at_every_split(pop3(), s);
}

TEST(Pop3Dotted, ABodyLargerThanAnyBufferStreams) {
    mc::Checker c(pop3());
    for (const Event& e : pop3_login())
        ASSERT_FALSE(e.dir == Dir::client ? c.on_client(e.bytes) : c.on_server(e.bytes));
    ASSERT_FALSE(c.on_client("RETR 1\r\n"));
    ASSERT_FALSE(c.on_server("+OK\r\n"));
    std::string lines;
    for (int i = 0; i < 1000; ++i)
        lines += "a line of the message body that goes on for a while, number " +
                 std::to_string(i) + "\r\n";
    std::size_t total = 0;
    while (total < 4 * mc::kMaxReplyBytes) {
        ASSERT_FALSE(c.on_server(lines));
        total += lines.size();
    }
    ASSERT_FALSE(c.on_server(".\r\n"));
    ASSERT_FALSE(c.on_client("QUIT\r\n"));
    ASSERT_FALSE(c.on_server("+OK bye\r\n"));
    EXPECT_FALSE(c.on_close());
}

TEST(Pop3Dotted, BadDataLinesMissingDotsAndLongLinesAreTheServers) {
    Session base = pop3_login() + Session{{Dir::client, "LIST\r\n"}};
    mc::Verdict v = run(pop3(), base + Session{{Dir::server, "+OK\r\n1 abc\r\n.\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    EXPECT_EQ(v->rule, "scan-line");

    v = run(pop3(), base + Session{{Dir::server, "+OK\r\n1 120\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    EXPECT_NE(v->reason.find("multi-line"), std::string::npos) << why(v);

    mc::Checker c(pop3());
    for (const Event& e : pop3_login())
        ASSERT_FALSE(e.dir == Dir::client ? c.on_client(e.bytes) : c.on_server(e.bytes));
    ASSERT_FALSE(c.on_client("RETR 1\r\n"));
    ASSERT_FALSE(c.on_server("+OK\r\n"));
    v = c.on_server(std::string(mc::kMaxLineBytes + 1, 'x'));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    EXPECT_LE(v->bytes.size(), mc::kMaxBreachBytes);
}

// ---- POP3: CAPA (RFC 2449), AUTH (RFC 5034), STLS (RFC 2595) ----

TEST(Pop3Capa, ListedCapabilitiesGateCommandsAndPipelining) {
    Session capa = {
        {Dir::server, "+OK ready\r\n"},
        {Dir::client, "CAPA\r\n"},
        {Dir::server, "+OK\r\nUSER\r\nUIDL\r\nSASL PLAIN\r\nIMPLEMENTATION x y\r\n.\r\n"},
        {Dir::client, "USER a\r\n"},
        {Dir::server, "+OK\r\n"},
        {Dir::client, "PASS b\r\n"},
        {Dir::server, "+OK\r\n"}};
    mc::Checker c(pop3());
    for (const Event& e : capa)
        ASSERT_FALSE(e.dir == Dir::client ? c.on_client(e.bytes) : c.on_server(e.bytes));
    EXPECT_EQ(c.capabilities(), (std::set<std::string>{"IMPLEMENTATION", "SASL", "UIDL", "USER"}));

    mc::Verdict v = run(pop3(), capa + Session{{Dir::client, "TOP 1 0\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    EXPECT_NE(v->reason.find("TOP"), std::string::npos) << why(v);

    v = run(pop3(), capa + Session{{Dir::client, "STAT\r\nNOOP\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_NE(v->reason.find("PIPELINING"), std::string::npos) << why(v);

    // Without CAPA, RFC 1939's optional commands and pipelining are not judged.
    Session no_capa = pop3_login() + Session{{Dir::client, "TOP 1 0\r\nUIDL 1\r\n"},
                                             {Dir::server, "+OK\r\n.\r\n+OK 1 abc\r\n"}};
    EXPECT_FALSE(run(pop3(), no_capa)) << why(run(pop3(), no_capa));
}

TEST(Pop3Capa, TooManyCapabilitiesAreTheServers) {
    std::string reply = "+OK\r\n";
    for (std::size_t i = 0; i <= mc::kMaxCapabilities; ++i)
        reply += "X-CAP-" + std::to_string(i) + "\r\n";
    reply += ".\r\n";
    mc::Verdict v = run(
        pop3(), {{Dir::server, "+OK ready\r\n"}, {Dir::client, "CAPA\r\n"}, {Dir::server, reply}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
}

TEST(Pop3Auth, SaslExchangeAtEverySplit) {
    Session s = {{Dir::server, "+OK ready\r\n"},
                 {Dir::client, "AUTH\r\n"},
                 {Dir::server, "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n"},
                 {Dir::client, "AUTH LOGIN\r\n"},
                 {Dir::server, "+ VXNlcm5hbWU6\r\n"},
                 {Dir::client, "*\r\n"},
                 {Dir::server, "-ERR cancelled\r\n"},
                 {Dir::client, "AUTH PLAIN\r\n"},
                 {Dir::server, "+ \r\n"},
                 {Dir::client, "QUIT\r\n"},  // base64 of something: a response here, not QUIT
                 {Dir::server, "-ERR [AUTH] bad\r\n"},
                 {Dir::client, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"},
                 {Dir::server, "+OK logged in\r\n"},
                 {Dir::client, "QUIT\r\n"},
                 {Dir::server, "+OK bye\r\n"}};
    expect_accepted_at_every_split(pop3(), s);
    mc::Verdict v = run(pop3(), {{Dir::server, "+OK ready\r\n"},
                                 {Dir::client, "AUTH PLAIN\r\n"},
                                 {Dir::server, "+ \r\n"},
                                 {Dir::client, "USER alice\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    EXPECT_EQ(v->state, "SASL");
}

// A caller that sees the decrypted stream resumes judging after the handshake (`tls STATE
// RESUME KEYWORD...`): the session inside TLS starts over, and the keyword that asked for TLS
// must not be advertised again (RFC 3207 §4.2, RFC 2595 §4).
TEST(TlsResume, SmtpAndPop3JudgeTheSessionInsideTls) {
    auto feed = [](mc::Checker& c, const Session& s) -> mc::Verdict {
        for (const Event& e : s)
            if (mc::Verdict v = e.dir == Dir::client ? c.on_client(e.bytes) : c.on_server(e.bytes))
                return v;
        return std::nullopt;
    };
    Session go = smtp_opening({"STARTTLS", "PIPELINING"}) +
                 Session{{Dir::client, "STARTTLS\r\n"}, {Dir::server, "220 2.0.0 go ahead\r\n"}};
    mc::Checker c(smtp());
    ASSERT_FALSE(feed(c, go));
    EXPECT_TRUE(c.opaque());
    ASSERT_TRUE(c.resume_tls());
    EXPECT_FALSE(c.opaque());
    EXPECT_EQ(c.state(), "READY");
    EXPECT_FALSE(c.resume_tls());  // once
    Session inside = {{Dir::client, "EHLO client.example\r\n"},
                      {Dir::server, "250-mx.example\r\n250-AUTH PLAIN\r\n250 PIPELINING\r\n"},
                      {Dir::client, "MAIL FROM:<a@example.org>\r\n"},
                      {Dir::server, "250 2.1.0 ok\r\n"}};
    EXPECT_FALSE(feed(c, inside));
    EXPECT_TRUE(c.capabilities().contains("AUTH"));
    // STARTTLS advertised again inside TLS is the server's breach ...
    mc::Checker again(smtp());
    ASSERT_FALSE(feed(again, go));
    ASSERT_TRUE(again.resume_tls());
    Session bad = {{Dir::client, "EHLO client.example\r\n"},
                   {Dir::server, "250-mx.example\r\n250-STARTTLS\r\n250 PIPELINING\r\n"}};
    mc::Verdict v = feed(again, bad);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    EXPECT_NE(v->reason.find("STARTTLS advertised inside TLS"), std::string::npos) << why(v);
    // ... and with it not advertised, asking for STARTTLS again is the client's.
    mc::Checker twice(smtp());
    ASSERT_FALSE(feed(twice, go));
    ASSERT_TRUE(twice.resume_tls());
    v = feed(twice, Session{inside[0], inside[1], {Dir::client, "STARTTLS\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    // POP3: STLS gone from CAPA inside TLS, USER/PASS as usual.
    mc::Checker p(pop3());
    ASSERT_FALSE(feed(p, {{Dir::server, "+OK ready\r\n"},
                          {Dir::client, "CAPA\r\n"},
                          {Dir::server, "+OK\r\nSTLS\r\nUSER\r\n.\r\n"},
                          {Dir::client, "STLS\r\n"},
                          {Dir::server, "+OK Begin TLS\r\n"}}));
    ASSERT_TRUE(p.resume_tls());
    EXPECT_EQ(p.state(), "AUTHORIZATION");
    EXPECT_FALSE(feed(p, {{Dir::client, "CAPA\r\n"},
                          {Dir::server, "+OK\r\nUSER\r\n.\r\n"},
                          {Dir::client, "USER alice\r\n"},
                          {Dir::server, "+OK\r\n"}}));
    mc::Checker q(pop3());
    ASSERT_FALSE(feed(q, {{Dir::server, "+OK ready\r\n"},
                          {Dir::client, "STLS\r\n"},
                          {Dir::server, "+OK Begin TLS\r\n"}}));
    ASSERT_TRUE(q.resume_tls());
    v = feed(q, {{Dir::client, "CAPA\r\n"}, {Dir::server, "+OK\r\nSTLS\r\nUSER\r\n.\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    // Not opaque (no TLS yet), or an IMAP checker (never opaque): nothing to resume.
    mc::Checker fresh(pop3());
    EXPECT_FALSE(fresh.resume_tls());
}

TEST(Pop3Stls, OpaqueAfterOkAndInjectionCaught) {
    Session s = {{Dir::server, "+OK ready\r\n"},
                 {Dir::client, "CAPA\r\n"},
                 {Dir::server, "+OK\r\nSTLS\r\nUSER\r\n.\r\n"},
                 {Dir::client, "STLS\r\n"},
                 {Dir::server, "+OK Begin TLS\r\n"},
                 {Dir::client, std::string("\x16\x03\x01\x00\x05hello", 10)},
                 {Dir::server, std::string("\x16\x03\x03\x00\x02\r\n", 7)}};
    expect_accepted_at_every_split(pop3(), s);
    mc::Verdict v = run(pop3(), {{Dir::server, "+OK ready\r\n"},
                                 {Dir::client, "STLS\r\nUSER alice\r\n"},
                                 {Dir::server, "+OK Begin TLS\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    // Once CAPA is known without STLS, asking for it is the client's fault.
    v = run(pop3(), {{Dir::server, "+OK ready\r\n"},
                     {Dir::client, "CAPA\r\n"},
                     {Dir::server, "+OK\r\nUSER\r\n.\r\n"},
                     {Dir::client, "STLS\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_NE(v->reason.find("STLS"), std::string::npos) << why(v);
}

TEST(Pop3States, RepliesFollowRfc1939) {
    // A failed PASS returns to AUTHORIZATION; STAT there is refused; QUIT there skips UPDATE.
    Session s = {{Dir::server, "+OK ready\r\n"},
                 {Dir::client, "USER a\r\n"},
                 {Dir::server, "+OK\r\n"},
                 {Dir::client, "PASS b\r\n"},
                 {Dir::server, "-ERR [AUTH] no\r\n"},
                 {Dir::client, "STAT\r\n"},
                 {Dir::server, "-ERR not yet\r\n"},
                 {Dir::client, "QUIT\r\n"},
                 {Dir::server, "+OK bye\r\n"}};
    EXPECT_FALSE(run(pop3(), s)) << why(run(pop3(), s));
    // NOOP cannot fail, STAT must give its counts.
    mc::Verdict v = run(
        pop3(), pop3_login() + Session{{Dir::client, "NOOP\r\n"}, {Dir::server, "-ERR no\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    // ... except for a system failure (RFC 3206 SYS/TEMP, SYS/PERM: any command).
    Session sys = pop3_login() + Session{{Dir::client, "NOOP\r\n"},
                                         {Dir::server, "-ERR [SYS/TEMP] try again later\r\n"}};
    EXPECT_FALSE(run(pop3(), sys)) << why(run(pop3(), sys));
    v = run(pop3(), pop3_login() + Session{{Dir::client, "STAT\r\n"}, {Dir::server, "+OK\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::server);
    // Nothing after QUIT's +OK.
    v = run(pop3(), pop3_login() + Session{{Dir::client, "QUIT\r\n"},
                                           {Dir::server, "+OK bye\r\n"},
                                           {Dir::client, "NOOP\r\n"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    EXPECT_EQ(v->state, "UPDATE");
}

// ---- Directives: refused when they name what does not exist ----

TEST(LineDirectives, RefusedWhenBroken) {
    const std::string base =
        "%rules\nx = \"X\" CRLF\nok = \"+OK\" CRLF\n%states\nA: x => ok & =\n"
        "%engine\n";
    EXPECT_NO_THROW(mc::Contract::parse(base + "dotted x ok\ncapability x ok 0 0\nrequires x K\n"
                                               "chunk x\nprompt P x\ntls T\npipelining P\n"
                                               "assume-capable\ngroup-end x\n"));
    for (const char* bad :
         {"dotted y ok\n", "dotted x nosuchrule\n", "capability x ok a 0\n", "capability x ok 0\n",
          "capability y ok 0 0\n", "requires nosuch K\n", "chunk y\n", "prompt P nosuch\n", "tls\n",
          "pipelining\n", "assume-capable yes\n", "group-end\n", "group-end x y\n"})
        EXPECT_THROW(mc::Contract::parse(base + bad), std::runtime_error) << bad;
}
