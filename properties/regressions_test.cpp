// properties/regressions_test.cpp: every saved counterexample (fixtures/regressions/*.transcript)
// replayed against a fresh reference server: the contract must hold on the new traffic and the
// server's lines must keep the recorded skeletons (fixtures/README.md). Also the transcript
// format itself, and that the replay notices a server that answers otherwise than recorded.
//
// MILLIPOST_REGRESSIONS_DIR points the replay at another directory. A freshly saved run is
// "unblessed" (its server side is what the faulty server said): the test fails on it until the
// server is fixed and the run re-recorded from the reference server with
//   MILLIPOST_REGRESSIONS_BLESS=1 ./regressions_test --gtest_filter=Regressions.*
#include "support/model_check.h"
#include "support/replay.h"
#include "support/test_service.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace {

using namespace millipost;
using namespace millipost::props;

TEST(Transcript, EscapingRoundTripsEveryByte) {
    std::string all;
    for (int c = 0; c < 256; ++c)
        all.push_back(static_cast<char>(c));
    auto escaped = escape_bytes(all);
    EXPECT_EQ(escaped.find('\n'), std::string::npos);
    EXPECT_EQ(unescape_bytes(escaped), all);
    EXPECT_EQ(escape_bytes("a\\b\r\n\t\x7f"), "a\\\\b\\r\\n\\t\\x7f");
    EXPECT_THROW(unescape_bytes("\\q"), std::runtime_error);
    EXPECT_THROW(unescape_bytes("\\x4"), std::runtime_error);
    EXPECT_THROW(unescape_bytes("\\xAB"), std::runtime_error);  // the format writes lowercase
}

TEST(Transcript, FormatRoundTripsAndRefusesOtherText) {
    Transcript t;
    t.set("contract", "smtp");
    t.set("failure", "DATA: expected 552, got 250");
    t.records = {{'S', "220 hi\r\n"}, {'C', "EHLO x\r\n"}, {'S', "250 ok\r\n"}};
    auto text = format_transcript(t);
    EXPECT_EQ(text.rfind("# millipost transcript 1\n# contract: smtp\n", 0), 0u);
    auto back = parse_transcript(text + "# a comment without a key\n");
    EXPECT_EQ(back.headers, t.headers);
    ASSERT_EQ(back.records.size(), 3u);
    EXPECT_EQ(back.records[1].bytes, "EHLO x\r\n");
    EXPECT_EQ(back.records[2].dir, 'S');
    EXPECT_FALSE(back.open());
    EXPECT_THROW(parse_transcript("# millipost transcript 2\n"), std::runtime_error);
    EXPECT_THROW(parse_transcript("# millipost transcript 1\nX: y\n"), std::runtime_error);
}

TEST(Transcript, SkeletonsKeepCodesAndDropVolatileText) {
    EXPECT_EQ(reply_skeleton("220 host.example ESMTP ready at 12:00\r\n"), "220 ");
    EXPECT_EQ(reply_skeleton("250-SIZE 10000\r\n"), "250-");
    EXPECT_EQ(reply_skeleton("552 5.3.4 Message too big\r\n"), "552 5.3.4");
    EXPECT_EQ(reply_skeleton("+OK <1234.5678@host> ready\r\n"), "+OK");
    EXPECT_EQ(reply_skeleton("-ERR [IN-USE] maildrop locked\r\n"), "-ERR [IN-USE]");
    EXPECT_EQ(reply_skeleton("-ERR no such message\r\n"), "-ERR");
    EXPECT_EQ(reply_skeleton("Received: from x by y; Sat, 28 Nov 2026\r\n"), "~");
    EXPECT_EQ(reply_skeleton("+OKAY\r\n"), "~");
    EXPECT_EQ(reply_skeleton(".\r\n"), ".");  // a listing one line shorter shows
    EXPECT_EQ(reply_skeleton("..\r\n"), "~");
}

TEST(Taps, RecorderSplitsAfterEachLineAndNumbersRecordsAcrossConnections) {
    RunRecorder run;
    auto a = run.tap("smtp");
    auto b = run.tap("pop3");
    a->received("220 hi\r\n250-x\r");
    b->received("+OK\r\n");
    a->received("\n250 y\r\n");
    a->sent("QUIT\r\n");
    a->closed();
    auto ts = run.transcripts({{"users", "u=p"}});
    ASSERT_EQ(ts.size(), 2u);
    ASSERT_EQ(ts[0].records.size(), 4u);
    EXPECT_EQ(ts[0].records[1].bytes, "250-x\r\n");  // a line split over two reads is one record
    EXPECT_EQ(ts[0].header("order"), "0 1 3 4");
    EXPECT_EQ(ts[0].header("closed-at"), "5");
    EXPECT_EQ(ts[1].header("order"), "2");
    EXPECT_EQ(ts[1].header("open"), "true");
    EXPECT_EQ(ts[1].header("users"), "u=p");
    EXPECT_EQ(ts[1].header("connection"), "2 of 2");
}

TEST(Taps, ContractTapJudgesTheServerAndTakesStandIns) {
    const auto* smtp = load_contract("smtp");
    ASSERT_NE(smtp, nullptr);
    EXPECT_EQ(load_contract("no-such-protocol"), nullptr);  // not there yet: recording only
    {
        ContractTap tap(*smtp);
        tap.received("220 hi\r\n");
        tap.sent("EHLO c.example\r\n");
        tap.received("250 ok\r\n");
        tap.sent("NOOP\r\n");
        tap.received("354 go ahead\r\n");  // no NOOP is answered so
        ASSERT_TRUE(tap.breach());
        EXPECT_EQ(tap.breach()->who, contracts::Breach::Who::server);
    }
    {
        ContractTap tap(*smtp);
        tap.received("220 hi\r\n");
        tap.sent("XYZZY\r\n");  // not a request of the contract: the client's fault
        ASSERT_TRUE(tap.breach());
        EXPECT_EQ(tap.breach()->who, contracts::Breach::Who::client);
    }
    {
        ContractTap tap(*smtp);
        tap.received("220 hi\r\n");
        tap.stand_in("NOOP");
        tap.sent("XYZZY\r\n");
        tap.received("500 5.5.2 unknown command\r\n");  // what any request may get
        tap.sent("QUIT\r\n");
        tap.received("221 bye\r\n");
        tap.closed();
        EXPECT_FALSE(tap.breach()) << contracts::to_string(*tap.breach());
    }
}

// Records a real SMTP session through RunRecorder, replays it (it must pass), then changes one
// recorded reply code and one recorded line count: the replay must report each.
TEST(Replay, NoticesAServerThatAnswersOtherwise) {
    std::vector<Transcript> run;
    {
        TestService svc;
        svc.add_user("alice", "pw");
        RunRecorder rec;
        {
            WireClient c(svc.smtp_port(), rec.tap("smtp"));
            c.read_smtp_reply();
            for (std::string line :
                 {"EHLO client.example", "MAIL FROM:<s@example.org>", "RCPT TO:<alice@localhost>",
                  "RCPT TO:<nobody@localhost>", "DATA"}) {
                c.send_line(line);
                c.read_smtp_reply();
            }
            c.send("Subject: x\r\n\r\nhello\r\n.\r\n");
            c.read_smtp_reply();
            c.send_line("QUIT");
            c.read_smtp_reply();
            ASSERT_TRUE(c.wait_closed());
        }
        ASSERT_EQ(rec.breach(), "");
        run = rec.transcripts({{"users", "alice=pw"}});
        // Through the file format, as the regression files go.
        run = {parse_transcript(format_transcript(run[0]))};
    }
    auto same = replay_run(run);
    EXPECT_EQ(same.failure, "");
    ASSERT_EQ(same.fresh.size(), 1u);
    EXPECT_EQ(same.fresh[0].records.size(), run[0].records.size());

    // The 550 for the unknown recipient recorded as 250: the server "now" answers 550.
    auto changed = run;
    bool found = false;
    for (auto& r : changed[0].records)
        if (r.dir == 'S' && r.bytes.rfind("550", 0) == 0) {
            r.bytes.replace(0, 3, "250");
            found = true;
            break;
        }
    ASSERT_TRUE(found);
    auto bad = replay_run(changed);
    EXPECT_NE(bad.failure.find("server line"), std::string::npos) << bad.failure;

    // One EHLO line fewer recorded: the skeletons shift.
    auto shorter = run;
    auto& recs = shorter[0].records;
    auto it = std::find_if(recs.begin(), recs.end(),
                           [](auto& r) { return r.dir == 'S' && r.bytes.rfind("250-", 0) == 0; });
    ASSERT_NE(it, recs.end());
    auto index = static_cast<std::size_t>(it - recs.begin());
    recs.erase(it);
    auto order = shorter[0].header("order").value();
    std::vector<std::string> numbers;
    for (auto& w : split_words(order))
        numbers.push_back(w);
    numbers.erase(numbers.begin() + static_cast<std::ptrdiff_t>(index));
    std::string joined;
    for (auto& n : numbers)
        joined += (joined.empty() ? "" : " ") + n;
    shorter[0].set("order", joined);
    EXPECT_NE(replay_run(shorter).failure, "");
}

TEST(Regressions, ReplayEverySavedRun) {
    auto dir = regressions_dir();
    bool bless = std::getenv("MILLIPOST_REGRESSIONS_BLESS") != nullptr;
    auto runs = regression_runs(dir);
    std::cout << runs.size() << " regression run(s) in " << dir << std::endl;
    for (auto& [stem, paths] : runs) {
        SCOPED_TRACE(stem);
        std::vector<Transcript> run;
        for (auto& p : paths)
            run.push_back(read_transcript(p));
        auto outcome = replay_run(run);
        bool unblessed = run.front().header("status") == "unblessed";
        if (bless) {
            if (!outcome.failure.empty() && outcome.failure.find("contract") != std::string::npos) {
                ADD_FAILURE() << "not blessed, the reference server breaks the contract: "
                              << outcome.failure;
                continue;
            }
            for (std::size_t i = 0; i < paths.size(); ++i) {
                auto t = outcome.fresh[i];
                t.set("status", "blessed");
                write_transcript(paths[i], t);
            }
            std::cout << "blessed " << stem << std::endl;
            continue;
        }
        if (unblessed)
            ADD_FAILURE() << "unblessed regression (recorded from a faulty server: "
                          << run.front().header("failure").value_or("?")
                          << "); fix the server, then bless it. Replay now: "
                          << (outcome.failure.empty() ? "faithful" : outcome.failure);
        else
            EXPECT_EQ(outcome.failure, "");
    }
}

}  // namespace
