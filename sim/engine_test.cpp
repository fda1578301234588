// sim/engine_test.cpp: the engine's deterministic parts: Poisson arrival statistics for a fixed
// seed, source-address spreading over 127.0.0.0/8, target URLs, and configuration errors.
#include "engine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

using namespace millipost::sim;

TEST(Arrivals, MeanRateAndDispersionOfAPoissonProcess) {
    constexpr double kRate = 250.0;  // per second
    Arrivals a(kRate, 42);
    constexpr int kN = 200000;
    double sum = 0, sumsq = 0;
    std::vector<int> per_second;
    double t = 0;
    for (int i = 0; i < kN; ++i) {
        double g = a.next_gap();
        ASSERT_GE(g, 0.0);
        sum += g;
        sumsq += g * g;
        t += g;
        auto s = static_cast<std::size_t>(t);
        if (per_second.size() <= s) per_second.resize(s + 1, 0);
        ++per_second[s];
    }
    double mean = sum / kN;
    EXPECT_NEAR(mean, 1 / kRate, 0.01 / kRate);  // within 1 %
    // Exponential gaps: the standard deviation equals the mean.
    double sd = std::sqrt(sumsq / kN - mean * mean);
    EXPECT_NEAR(sd, mean, 0.02 * mean);
    // Counts per second of a Poisson process: variance equals the mean (index of dispersion 1).
    per_second.pop_back();  // the last second is partial
    double m = 0, v = 0;
    for (int c : per_second)
        m += c;
    m /= static_cast<double>(per_second.size());
    for (int c : per_second)
        v += (c - m) * (c - m);
    v /= static_cast<double>(per_second.size() - 1);
    EXPECT_NEAR(m, kRate, 0.02 * kRate);
    EXPECT_NEAR(v / m, 1.0, 0.2);
}

TEST(Arrivals, DeterministicForASeed) {
    Arrivals a(10, 7), b(10, 7), c(10, 8);
    bool differs = false;
    for (int i = 0; i < 1000; ++i) {
        double x = a.next_gap();
        ASSERT_EQ(x, b.next_gap());
        differs |= x != c.next_gap();
    }
    EXPECT_TRUE(differs);
    EXPECT_THROW(Arrivals(0, 1), std::invalid_argument);
}

TEST(SourceAddress, SpreadsOverLoopbackWithoutNetworkOrBroadcast) {
    EXPECT_EQ(source_address(0).to_string(), "127.0.0.1");
    EXPECT_EQ(source_address(1).to_string(), "127.0.0.2");
    EXPECT_EQ(source_address(255).to_string(), "127.0.1.0");  // a valid host address in a /8
    constexpr std::uint64_t kUsable = (1u << 24) - 2;
    EXPECT_EQ(source_address(kUsable - 1).to_string(), "127.255.255.254");
    EXPECT_EQ(source_address(kUsable).to_string(), "127.0.0.1");  // wraps
    std::set<std::string> seen;
    for (std::uint64_t n = 0; n < 100000; ++n) {
        auto a = source_address(n * 167);  // any stride
        ASSERT_TRUE(a.is_loopback());
        auto b = a.to_bytes();
        ASSERT_FALSE(b[1] == 0 && b[2] == 0 && b[3] == 0);
        ASSERT_FALSE(b[1] == 255 && b[2] == 255 && b[3] == 255);
        seen.insert(a.to_string());
    }
    EXPECT_EQ(seen.size(), 100000u);  // distinct: each brings its own ephemeral ports
}

TEST(Targets, UrlsAndWellKnownPorts) {
    auto t = parse_target("smtp://127.0.0.1:2525");
    EXPECT_EQ(t.protocol, "smtp");
    EXPECT_EQ(t.host, "127.0.0.1");
    EXPECT_EQ(t.port, 2525);
    EXPECT_EQ(parse_target("imap://mail.example").port, 143);
    EXPECT_EQ(parse_target("pop://h:1110").protocol, "pop3");
    EXPECT_EQ(parse_target("localhost:110").protocol, "pop3");
    EXPECT_EQ(parse_target("[::1]:143").host, "::1");
    EXPECT_EQ(parse_target("IMAP://h:1/").port, 1);
    EXPECT_THROW(parse_target("h:1234"), std::invalid_argument);  // which protocol?
    EXPECT_THROW(parse_target("http://h:80"), std::invalid_argument);
    EXPECT_THROW(parse_target("smtp://h:70000"), std::invalid_argument);
    EXPECT_THROW(parse_target("smtp://:25"), std::invalid_argument);
    EXPECT_THROW(parse_target("smtp://h:2x"), std::invalid_argument);
}

TEST(Targets, TlsSchemesAndStarttls) {
    struct Case {
        const char* url;
        const char* protocol;
        std::uint16_t port;
        bool tls, starttls, submission;
    };
    for (auto c : {Case{"imaps://h", "imap", 993, true, false, false},
                   Case{"pop3s://h", "pop3", 995, true, false, false},
                   Case{"pops://h:1995", "pop3", 1995, true, false, false},
                   Case{"smtps://h", "smtp", 465, true, false, true},
                   Case{"submission://h", "smtp", 587, false, true, true},
                   Case{"imap://h:1143?starttls", "imap", 1143, false, true, false},
                   Case{"pop3://h?STARTTLS", "pop3", 110, false, true, false},
                   Case{"smtp://h?starttls", "smtp", 25, false, true, false},
                   Case{"smtp://h", "smtp", 25, false, false, false}}) {
        SCOPED_TRACE(c.url);
        auto t = parse_target(c.url);
        EXPECT_EQ(t.protocol, c.protocol);
        EXPECT_EQ(t.port, c.port);
        EXPECT_EQ(t.host, "h");
        EXPECT_EQ(t.tls, c.tls);
        EXPECT_EQ(t.starttls, c.starttls);
        EXPECT_EQ(t.submission, c.submission);
    }
    EXPECT_THROW(parse_target("imaps://h?starttls"), std::invalid_argument);  // TLS already
    EXPECT_THROW(parse_target("smtp://h?tls"), std::invalid_argument);
    EXPECT_THROW(parse_target("h:143?starttls"), std::invalid_argument);  // say imap://
}

TEST(RunLoad, BadConfigurationsAreRefused) {
    using boost::json::object;
    EXPECT_THROW(run_load(object{}), std::invalid_argument);  // no targets
    EXPECT_THROW(run_load(object{{"targets", "imap://127.0.0.1:1"}, {"bogus", 1}}),
                 std::invalid_argument);
    EXPECT_THROW(run_load(object{{"targets", "imap://127.0.0.1:1"}, {"mode", "sideways"}}),
                 std::invalid_argument);
    // Only an SMTP target, only IMAP profiles: nothing to run.
    EXPECT_THROW(
        run_load(object{{"targets", "smtp://127.0.0.1:1"}, {"profiles", object{{"webmail", 1}}}}),
        std::invalid_argument);
}

TEST(RunLoad, ARefusedTargetIsCountedNotFatal) {
    using boost::json::object;
    // Port 1 on loopback: nothing listens; every session fails at connect.
    auto r = run_load(object{
        {"targets", "smtp://127.0.0.1:1"}, {"duration", 0.5}, {"sessions", 2}, {"verify", false}});
    auto& totals = r.at("totals").as_object();
    EXPECT_GT(boost::json::value_to<std::uint64_t>(totals.at("sessions")), 0u);
    EXPECT_GT(boost::json::value_to<std::uint64_t>(totals.at("errors")), 0u);
    EXPECT_TRUE(r.at("errors").as_object().contains("connect refused"));
    EXPECT_FALSE(r.at("interrupted").as_bool());
}

TEST(BodyMismatch, EqualOrBehindTraceHeadersIsTheSame) {
    const std::string sent = "From: a@b\r\nX-Millipost-Id: 1.2.3\r\n\r\nbody\r\n";
    EXPECT_FALSE(body_mismatch(sent, sent));
    EXPECT_FALSE(
        body_mismatch("Received: from x\r\n\tby y; Sat, 28 Nov 2026\r\n"
                      "Return-Path: <a@b>\r\n" +
                          sent,
                      sent));
}

TEST(BodyMismatch, ACorruptedTruncatedOrPaddedCopyDiffers) {
    const std::string sent = "From: a@b\r\nX-Millipost-Id: 1.2.3\r\n\r\nbody\r\n";
    auto flipped = sent;
    flipped[sent.size() - 4] = 'D';
    auto r = body_mismatch(flipped, sent);
    ASSERT_TRUE(r);
    EXPECT_NE(r->find("octet " + std::to_string(sent.size() - 4)), std::string::npos) << *r;
    EXPECT_TRUE(body_mismatch(sent.substr(0, sent.size() - 2), sent));
    EXPECT_TRUE(body_mismatch(sent + "\r\n", sent));
    // Bytes before the message that are not header fields: not a trace header.
    EXPECT_TRUE(body_mismatch("garbage\r\n" + sent, sent));
    EXPECT_TRUE(body_mismatch("x" + sent, sent));
}
