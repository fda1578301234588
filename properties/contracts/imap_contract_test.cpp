// imap_contract_test.cpp: the IMAP framing (tags, untagged events, literals both ways,
// continuation requests, AUTHENTICATE, IDLE, capability gates, bounds) on hand-written exchanges,
// and the IMAP contract on recorded sessions (testdata/imap/*.transcript, transcript format v1)
// of the reference server and Dovecot: all must pass, and mutations of them must be caught.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "contracts/contract.h"
#include "contracts/imap_framing.h"

namespace mc = millipost::contracts;
using Who = mc::Breach::Who;

namespace {

const mc::Contract& imap() {
    static const mc::Contract c = mc::Contract::load(MILLIPOST_CONTRACTS_DIR "/imap.contract");
    return c;
}

struct Record {
    bool client;
    std::string bytes;
};
struct Transcript {
    std::string name;
    bool open = false;  // `# open: true`: the recording stopped before the close
    std::vector<Record> records;
};

int hex(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// Reads a transcript (docs: /work/notes/transcript-format.md, "millipost transcript v1").
Transcript read_transcript(const std::filesystem::path& path) {
    Transcript t;
    t.name = path.filename().string();
    std::ifstream in(path, std::ios::binary);
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
        if (first) {
            EXPECT_EQ(line, "# millipost transcript 1") << t.name;
            first = false;
            continue;
        }
        if (line.starts_with("#")) {
            if (line == "# open: true") t.open = true;
            continue;
        }
        if (line.size() < 3 || (line[0] != 'C' && line[0] != 'S') || line[1] != ':' ||
            line[2] != ' ') {
            ADD_FAILURE() << t.name << ": bad record " << line;
            continue;
        }
        Record r{line[0] == 'C', {}};
        for (std::size_t i = 3; i < line.size(); ++i) {
            char c = line[i];
            if (c != '\\' || i + 1 >= line.size()) {
                r.bytes += c;
                continue;
            }
            char e = line[++i];
            if (e == 'r') {
                r.bytes += '\r';
            } else if (e == 'n') {
                r.bytes += '\n';
            } else if (e == 't') {
                r.bytes += '\t';
            } else if (e == '\\') {
                r.bytes += '\\';
            } else if (e == 'x' && i + 2 < line.size() + 0 && hex(line[i + 1]) >= 0 &&
                       hex(line[i + 2]) >= 0) {
                r.bytes += static_cast<char>(hex(line[i + 1]) * 16 + hex(line[i + 2]));
                i += 2;
            } else {
                ADD_FAILURE() << t.name << ": bad escape \\" << e;
            }
        }
        t.records.push_back(std::move(r));
    }
    return t;
}

// Feeds the records (each cut in chunks of `chunk` bytes if nonzero); the first breach.
mc::Verdict run(const std::vector<Record>& records, bool open = false, std::size_t chunk = 0) {
    mc::Checker checker(imap());
    for (const Record& r : records) {
        std::string_view b = r.bytes;
        std::size_t step = chunk ? chunk : std::max<std::size_t>(b.size(), 1);
        for (std::size_t p = 0; p < b.size(); p += step) {
            std::string_view piece = b.substr(p, step);
            mc::Verdict v = r.client ? checker.on_client(piece) : checker.on_server(piece);
            if (v) return v;
        }
    }
    return open ? std::nullopt : checker.on_close();
}

std::string why(const mc::Verdict& v) {
    return v ? mc::to_string(*v) : "ok";
}

std::vector<Transcript> corpus(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> paths;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().extension() == ".transcript") paths.push_back(e.path());
    std::sort(paths.begin(), paths.end());
    std::vector<Transcript> out;
    for (const auto& p : paths)
        out.push_back(read_transcript(p));
    return out;
}

std::filesystem::path corpus_dir() {
    // MILLIPOST_IMAP_CORPUS points the corpus tests at another folder of transcripts (to vet
    // new recordings before they are committed).
    if (const char* d = std::getenv("MILLIPOST_IMAP_CORPUS")) return d;
    return MILLIPOST_CONTRACTS_DIR "/testdata/imap";
}

// A greeting that advertises the extensions the tests use, and a logged-in, selected session.
const char* kGreeting =
    "* OK [CAPABILITY IMAP4rev2 IMAP4rev1 LITERAL+ ENABLE IDLE MOVE AUTH=PLAIN] ready\r\n";

std::vector<Record> selected() {
    return {{false, kGreeting},
            {true, "a1 LOGIN alice secret\r\n"},
            {false, "a1 OK LOGIN completed\r\n"},
            {true, "a2 SELECT INBOX\r\n"},
            {false,
             "* FLAGS (\\Seen \\Deleted)\r\n* 2 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n"
             "a2 OK [READ-WRITE] SELECT completed\r\n"}};
}

std::vector<Record> operator+(std::vector<Record> a, const std::vector<Record>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// Runs the records and expects a breach by `who` whose reason contains `reason`.
void expect_breach(const std::vector<Record>& records, Who who, std::string_view reason) {
    mc::Verdict v = run(records);
    ASSERT_TRUE(v) << "no breach; expected: " << reason;
    EXPECT_EQ(v->who, who) << why(v);
    EXPECT_NE(v->reason.find(reason), std::string::npos) << why(v);
}

void expect_ok(const std::vector<Record>& records) {
    mc::Verdict v = run(records);
    EXPECT_FALSE(v) << why(v);
    // ... and at every byte split of the whole exchange.
    EXPECT_FALSE(run(records, false, 1)) << why(run(records, false, 1));
}

}  // namespace

TEST(ImapFraming, TracksStatesThroughASession) {
    mc::Checker c(imap());
    EXPECT_EQ(c.state(), "NOTAUTH");
    EXPECT_FALSE(c.on_server(kGreeting));
    EXPECT_FALSE(c.on_client("a1 LOGIN alice secret\r\na2 SELECT INBOX\r\n"));
    EXPECT_EQ(c.pending(), 2u);
    EXPECT_FALSE(c.on_server("a1 OK done\r\n"));
    EXPECT_EQ(c.state(), "AUTH");
    EXPECT_FALSE(c.on_server("* 0 EXISTS\r\na2 OK [READ-WRITE] done\r\n"));
    EXPECT_EQ(c.state(), "SELECTED");
    EXPECT_FALSE(c.on_client("a3 SELECT nosuch\r\n"));
    EXPECT_FALSE(c.on_server("a3 NO [NONEXISTENT] no such mailbox\r\n"));
    EXPECT_EQ(c.state(), "AUTH");  // a failed SELECT closes the mailbox (RFC 9051 §6.3.2)
    EXPECT_FALSE(c.on_client("a4 EXAMINE INBOX\r\n"));
    EXPECT_FALSE(c.on_server("a4 OK [READ-ONLY] done\r\n"));
    EXPECT_FALSE(c.on_client("a5 CLOSE\r\n"));
    EXPECT_FALSE(c.on_server("a5 OK closed\r\n"));
    EXPECT_EQ(c.state(), "AUTH");
    EXPECT_FALSE(c.on_client("a6 LOGOUT\r\n"));
    EXPECT_FALSE(c.on_server("* BYE bye\r\na6 OK done\r\n"));
    EXPECT_EQ(c.state(), "LOGOUT");
    EXPECT_FALSE(c.on_close());

    mc::Checker pre(imap());
    EXPECT_FALSE(pre.on_server("* PREAUTH [CAPABILITY IMAP4rev2] welcome\r\n"));
    EXPECT_EQ(pre.state(), "AUTH");
}

TEST(ImapFraming, CompletionsMatchTagsInAnyOrder) {
    expect_ok(selected() +
              std::vector<Record>{{true, "b1 NOOP\r\nb2 FETCH 1 (FLAGS)\r\nb3 CHECK\r\n"},
                                  {false,
                                   "* 1 FETCH (FLAGS (\\Seen))\r\nb3 OK done\r\nb1 OK done\r\n"
                                   "b2 OK done\r\n"}});
    // A tag in flight reused: the client's fault.
    expect_breach(selected() + std::vector<Record>{{true, "b1 NOOP\r\nb1 CHECK\r\n"}}, Who::client,
                  "reused");
    // ... but once completed, a tag may come again.
    expect_ok(selected() + std::vector<Record>{{true, "b1 NOOP\r\n"},
                                               {false, "b1 OK done\r\n"},
                                               {true, "b1 NOOP\r\n"},
                                               {false, "b1 OK done\r\n"}});
    // A completion with a tag not in flight, or missing at the close: the server's fault.
    expect_breach(
        selected() + std::vector<Record>{{true, "b1 NOOP\r\n"}, {false, "b2 OK done\r\n"}},
        Who::server, "not in flight");
    expect_breach(selected() + std::vector<Record>{{true, "b1 NOOP\r\n"}}, Who::server,
                  "no completion");
    // A command out of its state may only be refused.
    expect_breach(
        std::vector<Record>{
            {false, kGreeting}, {true, "a1 FETCH 1 FLAGS\r\n"}, {false, "a1 OK done\r\n"}},
        Who::server, "matches none");
}

TEST(ImapFraming, UntaggedDataBelongsToAStateOrACommand) {
    // EXISTS only in SELECTED; SEARCH only while a SEARCH is in flight.
    expect_breach(std::vector<Record>{{false, kGreeting},
                                      {true, "a1 LOGIN a b\r\n"},
                                      {false, "a1 OK done\r\n* 3 EXISTS\r\n"}},
                  Who::server, "not allowed");
    expect_ok(selected() + std::vector<Record>{{false, "* 3 EXISTS\r\n"}});
    // EXPUNGE only while a command is in progress, and not during FETCH, STORE or SEARCH,
    // whose answers count on sequence numbers (RFC 9051 §7.4.1); the UID forms may get it.
    expect_breach(selected() + std::vector<Record>{{false, "* 1 EXPUNGE\r\n"}}, Who::server,
                  "no command is in progress");
    expect_ok(selected() + std::vector<Record>{{true, "b1 NOOP\r\n"},
                                               {false, "* 1 EXPUNGE\r\nb1 OK done\r\n"},
                                               {true, "b2 UID FETCH 1:* FLAGS\r\n"},
                                               {false, "* 1 EXPUNGE\r\nb2 OK done\r\n"}});
    expect_breach(selected() + std::vector<Record>{{true, "b1 FETCH 1:* FLAGS\r\n"},
                                                   {false, "* 1 EXPUNGE\r\nb1 OK done\r\n"}},
                  Who::server, "cmd-fetch is in progress");
    expect_breach(selected() + std::vector<Record>{{true, "b1 NOOP\r\n"},
                                                   {false, "* SEARCH 1 2\r\nb1 OK done\r\n"}},
                  Who::server, "not allowed");
    expect_ok(selected() + std::vector<Record>{{true, "b1 SEARCH UNSEEN\r\n"},
                                               {false, "* SEARCH 1 2\r\nb1 OK done\r\n"}});
    // A malformed untagged response (no number before EXISTS).
    expect_breach(selected() + std::vector<Record>{{false, "* EXISTS\r\n"}}, Who::server,
                  "not allowed");
}

TEST(ImapFraming, MessageNumbersNameExistingMessages) {
    // selected() has 2 messages.
    expect_ok(selected() + std::vector<Record>{{true, "b1 FETCH 1:2 UID\r\n"},
                                               {false,
                                                "* 1 FETCH (UID 4)\r\n* 2 FETCH (UID 5)\r\n"
                                                "b1 OK done\r\n"},
                                               {true, "b2 NOOP\r\n"},
                                               {false,
                                                "* 2 EXPUNGE\r\n* 1 EXISTS\r\n* 3 EXISTS\r\n"
                                                "b2 OK done\r\n"}});
    expect_breach(selected() + std::vector<Record>{{true, "b1 FETCH 1:* UID\r\n"},
                                                   {false, "* 3 FETCH (UID 6)\r\nb1 OK done\r\n"}},
                  Who::server, "message 3 of 2");
    expect_breach(selected() + std::vector<Record>{{true, "b1 NOOP\r\n"},
                                                   {false, "* 1 EXISTS\r\nb1 OK done\r\n"}},
                  Who::server, "EXISTS went down");
    expect_breach(selected() + std::vector<Record>{{true, "b1 NOOP\r\n"},
                                                   {false, "* 1 EXPUNGE\r\n* 2 EXPUNGE\r\n"}},
                  Who::server, "message 2 of 1");
    std::vector<Record> qresync = {{true, "b1 ENABLE QRESYNC\r\n"},
                                   {false, "* ENABLED QRESYNC\r\nb1 OK done\r\n"},
                                   {true, "b2 NOOP\r\n"}};
    expect_breach(selected() + qresync + std::vector<Record>{{false, "* VANISHED 4:6\r\n"}},
                  Who::server, "3 vanished of 2");
    expect_ok(selected() + qresync +
              std::vector<Record>{{false,
                                   "* VANISHED (EARLIER) 1:90\r\n* VANISHED 5,7\r\n"
                                   "* 0 EXISTS\r\nb2 OK done\r\n"}});
    // A new SELECT starts over (its mailbox may be smaller), and so does leaving SELECTED.
    expect_ok(selected() + std::vector<Record>{{true, "b1 SELECT Other\r\n"},
                                               {false, "* 1 EXISTS\r\nb1 OK done\r\n"},
                                               {true, "b2 CLOSE\r\n"},
                                               {false, "b2 OK done\r\n"},
                                               {true, "b3 SELECT INBOX\r\n"},
                                               {false, "* 0 EXISTS\r\nb3 OK done\r\n"}});
}

TEST(ImapFraming, ServerLiteralsPassAtAnySplit) {
    // The literal holds what looks like protocol lines; it must not be read as them.
    std::string body = "Subject: x\r\n\r\n* BYE not really\r\na2 OK nor this\r\n";
    expect_ok(selected() + std::vector<Record>{
                               {true, "b1 FETCH 1 (UID BODY.PEEK[])\r\n"},
                               {false, "* 1 FETCH (UID 9 BODY[] {" + std::to_string(body.size()) +
                                           "}\r\n" + body + ")\r\nb1 OK done\r\n"}});
    // Off by one either way, the line after the literal no longer parses.
    for (std::size_t n : {body.size() - 1, body.size() + 1})
        expect_breach(
            selected() + std::vector<Record>{{true, "b1 FETCH 1 (BODY.PEEK[])\r\n"},
                                             {false, "* 1 FETCH (BODY[] {" + std::to_string(n) +
                                                         "}\r\n" + body + ")\r\nb1 OK done\r\n"}},
            Who::server, "");
    // NUL: only in literal8 (BINARY, RFC 3516).
    std::string nul("a\0b", 3);
    expect_breach(selected() + std::vector<Record>{{true, "b1 FETCH 1 (BODY.PEEK[])\r\n"},
                                                   {false, "* 1 FETCH (BODY[] {3}\r\n" + nul +
                                                               ")\r\nb1 OK done\r\n"}},
                  Who::server, "NUL");
    expect_ok(selected() + std::vector<Record>{{true, "b1 FETCH 1 (BINARY.PEEK[1])\r\n"},
                                               {false, "* 1 FETCH (BINARY[1] ~{3}\r\n" + nul +
                                                           ")\r\nb1 OK done\r\n"}});
}

TEST(ImapFraming, SynchronizingLiteralsWaitForTheContinuation) {
    expect_ok(selected() + std::vector<Record>{{true, "b1 APPEND INBOX {5}\r\n"},
                                               {false, "+ go ahead\r\n"},
                                               {true, "hello\r\n"},
                                               {false, "b1 OK [APPENDUID 7 3] done\r\n"}});
    // Sent without waiting for "+": the client's fault.
    expect_breach(selected() + std::vector<Record>{{true, "b1 APPEND INBOX {5}\r\nhello\r\n"},
                                                   {false, "+ go ahead\r\n"}},
                  Who::client, "before the server's continuation");
    // Refused instead of "+": the client must not send it, and may go on.
    expect_ok(selected() + std::vector<Record>{{true, "b1 APPEND nosuch {5}\r\n"},
                                               {false, "b1 NO [TRYCREATE] no such mailbox\r\n"},
                                               {true, "b2 NOOP\r\n"},
                                               {false, "b2 OK done\r\n"}});
    // Two literals in one command (LOGIN), each after its own "+".
    expect_ok(std::vector<Record>{{false, kGreeting},
                                  {true, "a1 LOGIN {5}\r\n"},
                                  {false, "+ ok\r\n"},
                                  {true, "alice {6}\r\n"},
                                  {false, "+ ok\r\n"},
                                  {true, "secret\r\n"},
                                  {false, "a1 OK done\r\n"}});
    // Dovecot answers as soon as it knows: during a non-synchronizing literal, or after the
    // last literal before the final CRLF. The completion is judged once the command is whole.
    expect_ok(selected() + std::vector<Record>{{true, "b1 APPEND nosuch {5+}\r\nhel"},
                                               {false, "b1 NO [TRYCREATE] no such mailbox\r\n"},
                                               {true, "lo\r\nb2 NOOP\r\n"},
                                               {false, "b2 OK done\r\n"}});
    expect_ok(selected() + std::vector<Record>{{true, "b1 CREATE {3}\r\n"},
                                               {false, "+ ok\r\n"},
                                               {true, "box"},
                                               {false, "b1 OK created\r\n"},
                                               {true, "\r\n"}});
    // ... but it must still be a completion the command may get, and only one.
    expect_breach(selected() + std::vector<Record>{{true, "b1 FETCH 1 (BODY[] {3+}\r\n"},
                                                   {false, "b1 OK done\r\nb1 OK again\r\n"}},
                  Who::server, "second completion");
    expect_breach(std::vector<Record>{{false, kGreeting},
                                      {true, "a1 SELECT {5+}\r\nIN"},
                                      {false, "a1 OK done\r\n"},
                                      {true, "BOX\r\n"}},
                  Who::server, "matches none");  // SELECT before LOGIN may only be refused
    // A "+" nobody asked for.
    expect_breach(selected() + std::vector<Record>{{false, "+ what\r\n"}}, Who::server,
                  "none is expected");
}

TEST(ImapFraming, NonSynchronizingLiteralsNeedLiteralPlus) {
    std::vector<Record> plus = {{true, "b1 APPEND INBOX {5+}\r\nhello\r\n"},
                                {false, "b1 OK done\r\n"}};
    expect_ok(selected() + plus);
    auto with_caps = [&](const std::string& caps, std::size_t n) {
        return std::vector<Record>{{false, "* OK [CAPABILITY IMAP4rev1 " + caps + "] hi\r\n"},
                                   {true, "a1 LOGIN a b\r\n"},
                                   {false, "a1 OK done\r\n"},
                                   {true, "b1 APPEND INBOX {" + std::to_string(n) + "+}\r\n" +
                                              std::string(n, 'x') + "\r\n"},
                                   {false, "b1 OK done\r\n"}};
    };
    expect_breach(with_caps("IDLE", 5), Who::client, "LITERAL+");
    expect_ok(with_caps("LITERAL-", mc::kLiteralMinusMax));
    expect_breach(with_caps("LITERAL-", mc::kLiteralMinusMax + 1), Who::client, "LITERAL+");
    // Capabilities learnt later (a CAPABILITY response) replace the greeting's.
    std::vector<Record> later = with_caps("IDLE", 5);
    later.insert(later.begin() + 3, {{true, "c1 CAPABILITY\r\n"},
                                     {false, "* CAPABILITY IMAP4rev1 LITERAL+\r\nc1 OK done\r\n"}});
    expect_ok(later);
}

TEST(ImapFraming, IdleAndAuthenticateModes) {
    expect_ok(selected() + std::vector<Record>{{true, "b1 IDLE\r\n"},
                                               {false, "+ idling\r\n* 3 EXISTS\r\n"},
                                               {true, "DONE\r\n"},
                                               {false, "b1 OK IDLE terminated\r\n"}});
    expect_breach(selected() + std::vector<Record>{{true, "b1 IDLE\r\n"},
                                                   {false, "+ idling\r\n"},
                                                   {true, "b2 NOOP\r\n"}},
                  Who::client, "only DONE");
    expect_breach(selected() + std::vector<Record>{{true, "b1 IDLE\r\nDONE\r\n"}}, Who::client,
                  "before the server's continuation");
    // The client may hang up while idling.
    expect_ok(selected() + std::vector<Record>{{true, "b1 IDLE\r\n"}, {false, "+ idling\r\n"}});

    std::vector<Record> auth = {{false, kGreeting},
                                {true, "a1 AUTHENTICATE PLAIN\r\n"},
                                {false, "+ \r\n"},
                                {true, "AGFsaWNlAHNlY3JldA==\r\n"},
                                {false, "a1 OK [CAPABILITY IMAP4rev2 MOVE] done\r\n"},
                                {true, "a2 SELECT INBOX\r\n"},
                                {false, "a2 OK done\r\n"}};
    expect_ok(auth);
    expect_ok(std::vector<Record>{{false, kGreeting},
                                  {true, "a1 AUTHENTICATE PLAIN\r\n"},
                                  {false, "+ \r\n"},
                                  {true, "*\r\n"},
                                  {false, "a1 BAD cancelled\r\n"}});
    expect_breach(std::vector<Record>{{false, kGreeting},
                                      {true, "a1 AUTHENTICATE PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\n"}},
                  Who::client, "before the server's continuation");
    expect_breach(std::vector<Record>{{false, kGreeting},
                                      {true, "a1 AUTHENTICATE PLAIN\r\n"},
                                      {false, "+ \r\n"},
                                      {true, "not base64!\r\n"}},
                  Who::client, "not AUTHENTICATE data");
}

TEST(ImapFraming, StartTlsThenTheDecryptedSession) {
    // RFC 2595 §3.1 / RFC 9051 §6.2.1: TLS starts after the tagged OK; the checker is then fed
    // the decrypted stream and judges it as the same session (not authenticated, over TLS).
    const char* plain = "* OK [CAPABILITY IMAP4rev2 STARTTLS LOGINDISABLED SASL-IR] ready\r\n";
    std::vector<Record> tls = {
        {false, plain},
        {true, "a1 STARTTLS\r\n"},
        {false, "a1 OK Begin TLS negotiation now\r\n"},
        // inside TLS (decrypted):
        {true, "a2 CAPABILITY\r\n"},
        {false, "* CAPABILITY IMAP4rev2 AUTH=PLAIN SASL-IR\r\na2 OK done\r\n"},
        {true, "a3 LOGIN alice secret\r\n"},
        {false, "a3 OK [CAPABILITY IMAP4rev2 MOVE] done\r\n"},
        {true, "a4 SELECT INBOX\r\n"},
        {false, "a4 OK done\r\n"}};
    expect_ok(tls);
    {
        mc::Checker c(imap());
        for (std::size_t i = 0; i < 3; ++i)
            EXPECT_FALSE(tls[i].client ? c.on_client(tls[i].bytes) : c.on_server(tls[i].bytes));
        EXPECT_EQ(c.state(), "NOTAUTH-TLS");
        EXPECT_FALSE(c.opaque());  // IMAP goes on judging (the caller feeds decrypted bytes)
    }
    // Injection: a command sent after STARTTLS, before its completion (same packet or not).
    expect_breach({{false, plain}, {true, "a1 STARTTLS\r\na2 NOOP\r\n"}, {false, "a1 OK go\r\n"}},
                  Who::client, "after the request for TLS");
    expect_breach({{false, plain}, {true, "a1 STARTTLS\r\na2 NO"}, {false, "a1 OK go\r\n"}},
                  Who::client, "plaintext sent after the request for TLS");
    // The server sends more in the clear after the go-ahead, in the same read.
    expect_breach({{false, plain}, {true, "a1 STARTTLS\r\n"}, {false, "a1 OK go\r\n* OK hi\r\n"}},
                  Who::server, "plaintext after the completion that starts TLS");
    // Inside TLS the capabilities are forgotten and must not offer STARTTLS again ...
    std::vector<Record> again = tls;
    again[4].bytes = "* CAPABILITY IMAP4rev2 STARTTLS AUTH=PLAIN\r\na2 OK done\r\n";
    expect_breach(again, Who::server, "STARTTLS advertised inside TLS");
    again[4].bytes = "* CAPABILITY IMAP4rev2 AUTH=PLAIN\r\na2 OK done\r\n";
    again[5].bytes = "a3 STARTTLS\r\n";
    expect_breach(again, Who::client, "cmd-starttls needs capability STARTTLS");
    // A second STARTTLS: not advertised inside TLS, so the client may not send it (and the
    // state inside TLS has no OK for it: NOTAUTH-TLS allows only NO or BAD).
    expect_breach({{false, plain},
                   {true, "a1 STARTTLS\r\n"},
                   {false, "a1 OK go\r\n"},
                   {true, "a2 STARTTLS\r\n"}},
                  Who::client, "cmd-starttls needs capability STARTTLS");
    EXPECT_TRUE(imap().alternatives("NOTAUTH-TLS", "cmd-starttls").size() == 2);
    // STARTTLS is for the not authenticated state only.
    expect_breach(
        selected() + std::vector<Record>{{true, "b1 STARTTLS\r\n"}, {false, "b1 OK go\r\n"}},
        Who::client, "STARTTLS");  // kGreeting does not advertise it
    std::vector<Record> authed = selected();
    authed[0].bytes = "* OK [CAPABILITY IMAP4rev2 STARTTLS] ready\r\n";
    expect_breach(authed + std::vector<Record>{{true, "b1 STARTTLS\r\n"}, {false, "b1 OK go\r\n"}},
                  Who::server, "completion of cmd-starttls");
    expect_ok(authed + std::vector<Record>{{true, "b1 STARTTLS\r\n"}, {false, "b1 BAD no\r\n"}});
}

TEST(ImapFraming, LoginDisabledAndSaslIr) {
    // RFC 9051 §7.2.2: with LOGINDISABLED advertised the client must not LOGIN.
    const char* disabled = "* OK [CAPABILITY IMAP4rev2 STARTTLS LOGINDISABLED] ready\r\n";
    expect_breach({{false, disabled}, {true, "a1 LOGIN alice secret\r\n"}}, Who::client,
                  "LOGINDISABLED");
    // RFC 4959 §3: an initial response only with SASL-IR.
    const char* ir = "* OK [CAPABILITY IMAP4rev2 AUTH=PLAIN SASL-IR] ready\r\n";
    std::vector<Record> with_ir = {{false, ir},
                                   {true, "a1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n"},
                                   {false, "a1 OK done\r\n"}};
    expect_ok(with_ir);
    with_ir[0].bytes = "* OK [CAPABILITY IMAP4rev2 AUTH=PLAIN] ready\r\n";
    expect_breach(with_ir, Who::client, "SASL-IR");
    // A SCRAM exchange: `+ base64` challenges, one response line each, `*` cancels.
    std::vector<Record> scram = {
        {false, ir},
        {true, "a1 AUTHENTICATE SCRAM-SHA-256 biwsbj1hbGljZSxyPXh5eg==\r\n"},
        {false, "+ cj14eXphYmMscz1jMkZzZEE9PSxpPTQwOTY=\r\n"},
        {true, "Yz1iaXdzLHI9eHl6YWJjLHA9cHJvb2Y=\r\n"},
        {false, "+ dj1zaWduYXR1cmU=\r\n"},
        {true, "\r\n"},
        {false, "a1 OK done\r\n"}};
    expect_ok(scram);
    std::vector<Record> wrong = scram;
    wrong.resize(4);
    wrong.push_back({false, "a1 NO [AUTHENTICATIONFAILED] invalid\r\n"});
    expect_ok(wrong);
    // A malformed challenge, or a success that was not asked for after a failure, is caught.
    std::vector<Record> bad = scram;
    bad[2].bytes = "+cj14eXo=\r\n";
    expect_breach(bad, Who::server, "continuation");
    bad = scram;
    bad[3].bytes = "not base64!\r\n";
    expect_breach(bad, Who::client, "not AUTHENTICATE data");
    bad = scram;
    bad[6].bytes = "* OK more\r\n";
    mc::Verdict v = run(bad);
    ASSERT_TRUE(v);  // no completion
    EXPECT_EQ(v->who, Who::server) << why(v);
}

TEST(ImapFraming, ExtensionsOnlyWhenAdvertisedOrEnabled) {
    std::vector<Record> move = {{true, "b1 UID MOVE 1:3 Archive\r\n"},
                                {false,
                                 "* OK [COPYUID 7 1:3 4:6] moved\r\n* 1 EXPUNGE\r\n"
                                 "b1 OK done\r\n"}};
    expect_ok(selected() + move);
    std::vector<Record> no_move = selected() + move;
    no_move[0].bytes = "* OK [CAPABILITY IMAP4rev2] ready\r\n";
    expect_breach(no_move, Who::client, "MOVE");
    // With NOTIFY in force, EXPUNGE may come with no command in progress (RFC 5465).
    std::vector<Record> notify =
        selected() + std::vector<Record>{{true, "b1 NOTIFY SET (selected (MessageExpunge))\r\n"},
                                         {false, "b1 OK done\r\n* 2 EXPUNGE\r\n"}};
    expect_breach(notify, Who::client, "NOTIFY");  // not advertised by kGreeting
    notify[0].bytes = "* OK [CAPABILITY IMAP4rev2 NOTIFY] ready\r\n";
    expect_ok(notify);
    // UID EXPUNGE: in IMAP4rev2, or with UIDPLUS in rev1 (RFC 4315); UID SORT with SORT.
    std::vector<Record> uid_expunge = {{true, "b1 UID EXPUNGE 1:3\r\n"},
                                       {false, "* 1 EXPUNGE\r\nb1 OK done\r\n"}};
    expect_ok(selected() + uid_expunge);
    std::vector<Record> rev1 = selected() + uid_expunge;
    rev1[0].bytes = "* OK [CAPABILITY IMAP4rev1] ready\r\n";
    expect_breach(rev1, Who::client, "UIDPLUS");
    rev1[0].bytes = "* OK [CAPABILITY IMAP4rev1 UIDPLUS] ready\r\n";
    expect_ok(rev1);
    expect_breach(selected() + std::vector<Record>{{true, "b1 UID SORT (DATE) UTF-8 ALL\r\n"}},
                  Who::client, "SORT");
    // VANISHED only after ENABLE QRESYNC (RFC 7162 §3.2.10).
    expect_breach(selected() + std::vector<Record>{{false, "* VANISHED 3:4\r\n"}}, Who::server,
                  "QRESYNC");
    expect_ok(selected() + std::vector<Record>{{true, "b1 ENABLE QRESYNC\r\n"},
                                               {false, "* ENABLED QRESYNC\r\nb1 OK done\r\n"},
                                               {false, "* VANISHED 3:4\r\n"}});
}

TEST(ImapFraming, BoundsAreBreachesNotCrashes) {
    // A literal larger than the checker's limit, announced by either side.
    std::string huge = std::to_string(mc::kMaxImapLiteralBytes + 1);
    expect_breach(selected() + std::vector<Record>{{true, "b1 APPEND INBOX {" + huge + "+}\r\n"}},
                  Who::client, "limit");
    expect_breach(selected() + std::vector<Record>{{true, "b1 FETCH 1 BODY[]\r\n"},
                                                   {false, "* 1 FETCH (BODY[] {" + huge +
                                                               "99999999999999999999}\r\n"}},
                  Who::server, "limit");
    // A line without end.
    mc::Checker c(imap());
    EXPECT_FALSE(c.on_server(kGreeting));
    mc::Verdict v = c.on_client(std::string(mc::kMaxLineBytes + 1, 'a'));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->who, Who::client);
    EXPECT_LE(v->bytes.size(), mc::kMaxBreachBytes);
    EXPECT_TRUE(c.on_server("a1 OK\r\n"));  // sticky
    // Too many commands in flight.
    mc::Checker many(imap());
    EXPECT_FALSE(many.on_server(kGreeting));
    mc::Verdict last;
    for (std::size_t i = 0; i <= mc::kMaxPending && !last; ++i)
        last = many.on_client("t" + std::to_string(i) + " NOOP\r\n");
    ASSERT_TRUE(last);
    EXPECT_NE(last->reason.find("in flight"), std::string::npos) << why(last);
    // Cut in the middle of a literal.
    expect_breach(selected() + std::vector<Record>{{true, "b1 FETCH 1 BODY[]\r\n"},
                                                   {false, "* 1 FETCH (BODY[] {10}\r\nabc"}},
                  Who::server, "closed inside");
}

TEST(ImapFraming, RefusesBadDirectives) {
    std::string base =
        "%rules\nc = \"X\" CRLF\nr = \"Y\" CRLF\n%states\nA: connect => r & A\nA: c => r & =\n"
        "%engine\nframing imap\ncontinuation r\nliteral-refused r\n";
    EXPECT_NO_THROW(mc::Contract::parse(base));
    EXPECT_THROW(mc::Contract::parse(base + "untagged nosuch r\n"), mc::ContractError);
    EXPECT_THROW(mc::Contract::parse(base + "untagged c nosuch\n"), mc::ContractError);
    EXPECT_THROW(mc::Contract::parse(base + "bogus x\n"), mc::ContractError);
    EXPECT_THROW(mc::Contract::parse(base + "idle c\n"), mc::ContractError);
    EXPECT_THROW(mc::Contract::parse(base + "tls NOSUCH\n"), mc::ContractError);
    EXPECT_THROW(mc::Contract::parse(base + "forbids X nosuch\n"), mc::ContractError);
    EXPECT_NO_THROW(mc::Contract::parse(base + "tls A X\nforbids X c\n"));
    EXPECT_THROW(mc::Contract::parse("%rules\nc = \"X\" CRLF\n%states\nA: c => c & =\n"
                                     "%engine\nframing imap\n"),
                 mc::ContractError);  // no continuation rule
    EXPECT_THROW(mc::Contract::parse("%rules\nc = \"X\" CRLF\n%states\nA: c => c & =\n"
                                     "%engine\nframing lines\n"),
                 mc::ContractError);
}

TEST(ImapCorpus, EveryRecordedSessionPasses) {
    std::vector<Transcript> all = corpus(corpus_dir());
    ASSERT_FALSE(all.empty());
    std::size_t bytes = 0, failed = 0;
    for (const Transcript& t : all) {
        for (const Record& r : t.records)
            bytes += r.bytes.size();
        mc::Verdict v = run(t.records, t.open);
        if (v) ++failed;
        EXPECT_FALSE(v) << t.name << ": " << why(v);
    }
    std::cout << all.size() << " transcripts, " << bytes << " bytes, " << failed << " breached\n";
}

TEST(ImapCorpus, EveryRecordedSessionPassesInAnySplit) {
    for (const Transcript& t : corpus(corpus_dir()))
        for (std::size_t chunk : {1, 7, 4096}) {
            mc::Verdict v = run(t.records, t.open, chunk);
            EXPECT_FALSE(v) << t.name << " in chunks of " << chunk << ": " << why(v);
        }
}

TEST(ImapCorpus, RecordedClientBreachesAreBlamedOnTheClient) {
    // Real sessions in which the test client sends what the RFCs forbid (an unknown command, a
    // PARTIAL range that is not first:last, GETQUOTAROOT to a server without QUOTA).
    std::vector<Transcript> bad = corpus(MILLIPOST_CONTRACTS_DIR "/testdata/imap/client-breach");
    ASSERT_EQ(bad.size(), 3u);
    for (const Transcript& t : bad) {
        mc::Verdict v = run(t.records, t.open);
        ASSERT_TRUE(v) << t.name;
        EXPECT_EQ(v->who, Who::client) << t.name << ": " << why(v);
    }
}

namespace {

// Tags the server completed in a transcript (the first word of its tagged lines).
std::set<std::string> client_tags(const Transcript& t) {
    static const std::regex completion(R"(^([^ *+]+) (OK|NO|BAD)[ \r])");
    std::set<std::string> tags;
    std::smatch m;
    for (const Record& r : t.records)
        if (!r.client && std::regex_search(r.bytes, m, completion)) tags.insert(m.str(1));
    return tags;
}

bool is_completion(const Record& r, const std::set<std::string>& tags) {
    if (r.client || !r.bytes.ends_with("\r\n")) return false;
    std::size_t sp = r.bytes.find(' ');
    if (sp == std::string::npos || !tags.contains(r.bytes.substr(0, sp))) return false;
    std::string_view rest = std::string_view(r.bytes).substr(sp + 1);
    return rest.starts_with("OK") || rest.starts_with("NO") || rest.starts_with("BAD");
}

// A mutation: the transcript's records after one change, and the side that must be blamed
// (nullopt: either side, when the change shifts the blame).
struct Mutant {
    std::string what;
    std::vector<Record> records;
    std::optional<Who> who;
};

// Up to `per` sites of each mutation class in one transcript, spread over it.
std::vector<Mutant> mutants(const Transcript& t, std::size_t per) {
    std::map<std::string, std::vector<Mutant>> by_class;
    std::set<std::string> tags = client_tags(t);
    const auto& rs = t.records;
    static const std::regex untagged_kw(R"(^\* (\d+ )?([A-Z]+))");
    static const std::regex untagged_num(R"(^\* (\d+) (EXISTS|FETCH|EXPUNGE|RECENT))");
    static const std::regex lit(R"(\{(\d+)(\+?)\}\r\n$)");
    for (std::size_t i = 0; i < rs.size(); ++i) {
        const Record& r = rs[i];
        std::smatch m;
        auto add = [&](const std::string& cls, std::vector<Record> recs, std::optional<Who> who) {
            by_class[cls].push_back(
                {cls + " at record " + std::to_string(i), std::move(recs), who});
        };
        bool line_start = i == 0 || rs[i - 1].bytes.ends_with("\n");
        if (!r.client && line_start && std::regex_search(r.bytes, m, untagged_kw)) {
            // A changed byte in the response's keyword.
            std::vector<Record> c = rs;
            std::size_t at = static_cast<std::size_t>(m.position(2) + m.length(2) - 1);
            c[i].bytes[at] = c[i].bytes[at] == 'Q' ? 'Z' : 'Q';
            add("keyword", std::move(c), Who::server);
        }
        if (!r.client && line_start && std::regex_search(r.bytes, m, untagged_num)) {
            std::vector<Record> c = rs;
            c[i].bytes[static_cast<std::size_t>(m.position(1))] = 'x';
            add("number", std::move(c), Who::server);
            if (m.str(2) == "FETCH" || m.str(2) == "EXPUNGE") {
                // Still a number, but of a message that does not exist.
                std::vector<Record> big = rs;
                big[i].bytes.insert(static_cast<std::size_t>(m.position(1)), "1000");
                add("message number", std::move(big), Who::server);
            }
        }
        if (!r.client && line_start && r.bytes.starts_with("* ") && r.bytes.ends_with(")\r\n")) {
            std::vector<Record> c = rs;
            c[i].bytes.erase(c[i].bytes.size() - 3, 1);  // the closing parenthesis
            add("structure", std::move(c), Who::server);
        }
        if (is_completion(r, tags)) {
            std::vector<Record> c = rs;
            c.erase(c.begin() + static_cast<std::ptrdiff_t>(i));
            add("dropped completion", std::move(c), std::nullopt);
        }
        if (r.client && line_start && r.bytes.ends_with("\r\n") &&
            r.bytes.find('{') == std::string::npos && i + 1 < rs.size()) {
            std::size_t sp = r.bytes.find(' ');
            if (sp != std::string::npos && tags.contains(r.bytes.substr(0, sp)) &&
                r.bytes.find(" LOGOUT") == std::string::npos) {
                // The same command twice in a row: the second reuses a tag in flight.
                std::vector<Record> c = rs;
                c.insert(c.begin() + static_cast<std::ptrdiff_t>(i) + 1, r);
                add("reused tag", std::move(c), Who::client);
            }
        }
        if (std::regex_search(r.bytes, m, lit)) {
            for (int delta : {-1, 1}) {
                unsigned long n = std::stoul(m.str(1));
                if (n == 0 && delta < 0) continue;
                std::vector<Record> c = rs;
                c[i].bytes.replace(static_cast<std::size_t>(m.position(1)),
                                   static_cast<std::size_t>(m.length(1)),
                                   std::to_string(static_cast<long>(n) + delta));
                // A client literal off by one may show as the server completing a command
                // that, in the bytes, is not whole yet: either side may be blamed.
                add(delta < 0 ? "literal length -1" : "literal length +1", std::move(c),
                    r.client ? std::nullopt : std::optional<Who>(Who::server));
            }
        }
    }
    // A server closing with an unsolicited BYE may leave commands unanswered (RFC 9051 §7.1.5),
    // so a dropped completion before it cannot be told from one never owed: not judged there.
    bool logout = false, bye = false;
    for (const Record& r : rs) {
        std::string up = r.bytes;
        std::transform(up.begin(), up.end(), up.begin(), ::toupper);
        logout = logout || (r.client && up.find(" LOGOUT\r\n") != std::string::npos);
        bye = bye || (!r.client && up.starts_with("* BYE"));
    }
    if (bye && !logout) by_class.erase("dropped completion");
    std::vector<Mutant> out;
    for (auto& [cls, all] : by_class)
        for (std::size_t k = 0; k < per && k < all.size(); ++k)
            out.push_back(std::move(all[all.size() <= per ? k : k * all.size() / per]));
    return out;
}

}  // namespace

TEST(ImapCorpus, MutationsOfRecordedSessionsAreCaught) {
    std::map<std::string, std::size_t> tried, caught, wrong_side;
    for (const Transcript& t : corpus(corpus_dir())) {
        for (Mutant& mu : mutants(t, 3)) {
            std::string cls = mu.what.substr(0, mu.what.find(" at record"));
            ++tried[cls];
            mc::Verdict v = run(mu.records, t.open);
            EXPECT_TRUE(v) << t.name << ": " << mu.what << " not caught";
            if (!v) continue;
            ++caught[cls];
            if (mu.who && v->who != *mu.who) {
                ++wrong_side[cls];
                ADD_FAILURE() << t.name << ": " << mu.what
                              << " blamed on the wrong side: " << why(v);
            }
            if (cls == "reused tag" && v->reason.find("reused") == std::string::npos &&
                v->reason.find("AUTHENTICATE") == std::string::npos &&
                v->reason.find("continuation") == std::string::npos)
                ADD_FAILURE() << t.name << ": " << mu.what << ": " << why(v);
        }
    }
    for (const char* cls :
         {"keyword", "number", "message number", "structure", "dropped completion", "reused tag",
          "literal length -1", "literal length +1"})
        EXPECT_GT(tried[cls], 10u) << cls;
    for (const auto& [cls, n] : tried)
        std::cout << cls << ": " << caught[cls] << "/" << n << " caught, " << wrong_side[cls]
                  << " on the wrong side\n";
}

TEST(ImapCorpus, DamagedRecordingsNeverCrashAndDoNotDependOnTheSplit) {
    // Random damage (a byte changed, bytes cut out or repeated, noise inserted) anywhere in a
    // recorded session: the checker must give a verdict, the same for any split of the bytes.
    std::vector<Transcript> all = corpus(corpus_dir());
    ASSERT_FALSE(all.empty());
    std::mt19937 rng(9051);
    auto pick = [&](std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n)(rng);
    };
    std::size_t breached = 0;
    constexpr std::size_t kRounds = 400;
    for (std::size_t round = 0; round < kRounds; ++round) {
        const Transcript& t = all[pick(all.size() - 1)];
        std::vector<Record> rs = t.records;
        Record& r = rs[pick(rs.size() - 1)];
        std::size_t at = pick(r.bytes.size());
        switch (pick(3)) {
            case 0:
                if (at < r.bytes.size()) r.bytes[at] = static_cast<char>(pick(255));
                break;
            case 1:
                r.bytes.erase(at, pick(16));
                break;
            case 2:
                r.bytes.insert(at, r.bytes.substr(at, pick(16)));
                break;
            default:
                for (std::size_t k = pick(8); k > 0; --k)
                    r.bytes.insert(r.bytes.begin() + static_cast<std::ptrdiff_t>(at),
                                   static_cast<char>(pick(255)));
        }
        mc::Verdict whole = run(rs, t.open);
        for (std::size_t chunk : {1, 3}) {
            mc::Verdict cut = run(rs, t.open, chunk);
            ASSERT_EQ(whole.has_value(), cut.has_value())
                << t.name << " round " << round << ": " << why(whole) << " / " << why(cut);
            if (whole) {
                EXPECT_EQ(whole->who, cut->who) << why(whole) << " / " << why(cut);
            }
        }
        breached += whole.has_value();
    }
    // Most damage shows; some (a changed byte of free text, of a literal) is harmless.
    EXPECT_GT(breached, kRounds / 2);
    std::cout << breached << "/" << kRounds << " damaged recordings breached\n";
}
