// sim/message_gen_test.cpp: the generator is deterministic, its ids unique, its sizes follow the
// documented distribution, and every message is well-formed for the server's MIME parser.
#include "message_gen.h"

#include "mime/decode.h"
#include "mime/message.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <unordered_set>
#include <vector>

using namespace millipost;
using millipost::sim::generate_message;
using millipost::sim::MessageSpec;

namespace {

MessageSpec spec(std::uint64_t index, std::uint64_t seed = 42) {
    MessageSpec s;
    s.seed = seed;
    s.index = index;
    s.from = "user" + std::to_string(index % 97) + "@localhost";
    s.to = "user" + std::to_string(index % 89) + "@example.org";
    if (index % 5 == 0) s.in_reply_to = "<parent" + std::to_string(index) + "@example.org>";
    return s;
}

// Every CRLF-terminated line at most 998 octets; no bare CR or LF.
void check_lines(const std::string& m, std::uint64_t index) {
    std::size_t start = 0;
    while (start < m.size()) {
        auto lf = m.find('\n', start);
        ASSERT_NE(lf, std::string::npos) << "last line without CRLF, index " << index;
        ASSERT_GT(lf, start) << "bare LF at " << lf << ", index " << index;
        ASSERT_EQ(m[lf - 1], '\r') << "bare LF at " << lf << ", index " << index;
        auto len = lf - 1 - start;
        ASSERT_LE(len, 998u) << "index " << index;
        ASSERT_EQ(m.substr(start, len).find('\r'), std::string::npos) << "bare CR, index " << index;
        start = lf + 1;
    }
}

void walk(const mime::Part& p, std::string_view raw, std::uint64_t index, int& leaves) {
    EXPECT_EQ(p.defects, 0u) << "index " << index;
    if (p.is_multipart()) {
        EXPECT_FALSE(p.children.empty());
        for (auto& c : p.children)
            walk(c, raw, index, leaves);
        return;
    }
    ++leaves;
    auto d = mime::decode_body(p, raw);
    EXPECT_FALSE(d.unknown_encoding);
    if (p.is_text()) {
        EXPECT_TRUE(mime::is_valid_utf8(d.data)) << "index " << index;
        EXPECT_GT(d.data.size(), 20u);
    } else {
        EXPECT_TRUE(p.disposition && *p.disposition == "attachment");
        if (p.type_is("image", "png"))
            EXPECT_EQ(d.data.substr(0, 4), "\x89PNG") << "index " << index;
        else
            EXPECT_EQ(d.data.substr(0, 5), "%PDF-") << "index " << index;
    }
}

}  // namespace

TEST(MessageGen, Deterministic) {
    for (std::uint64_t i : {0ull, 1ull, 17ull, 123456ull, 9999999999ull}) {
        auto a = generate_message(spec(i)), b = generate_message(spec(i));
        EXPECT_EQ(a.bytes, b.bytes);
        EXPECT_EQ(a.id, b.id);
        EXPECT_EQ(a.message_id, b.message_id);
        EXPECT_NE(a.bytes, generate_message(spec(i, 43)).bytes);
        EXPECT_NE(a.id, generate_message(spec(i, 43)).id);
    }
    EXPECT_EQ(sim::message_uid(0x2a, 0x10), "2a.10");
}

TEST(MessageGen, IdsUniqueOver100kIndices) {
    std::unordered_set<std::string> ids, mids;
    for (std::uint64_t i = 0; i < 100000; ++i) {
        auto id = sim::message_uid(42, i);
        EXPECT_TRUE(ids.insert(id).second) << id;
    }
    // And the generated messages carry them (a sample: generating all is the size test's job).
    for (std::uint64_t i = 0; i < 2000; ++i) {
        auto g = generate_message(spec(i));
        EXPECT_EQ(g.id, sim::message_uid(42, i));
        EXPECT_NE(g.bytes.find("\r\nX-Millipost-Id: " + g.id + "\r\n"), std::string::npos);
        EXPECT_NE(g.bytes.find("\r\nMessage-ID: " + g.message_id + "\r\n"), std::string::npos);
        EXPECT_TRUE(mids.insert(g.message_id).second);
    }
}

// Percentiles of message_size() over 100,000 indices, and the generated size follows the plan.
TEST(MessageGen, SizeDistribution) {
    std::vector<std::size_t> sizes;
    for (std::uint64_t i = 0; i < 100000; ++i)
        sizes.push_back(sim::message_size(42, i));
    std::sort(sizes.begin(), sizes.end());
    auto pct = [&](double q) { return sizes[static_cast<std::size_t>(q * (sizes.size() - 1))]; };
    std::printf("message_size over 100k: p10 %zu p50 %zu p90 %zu p99 %zu p99.9 %zu max %zu\n",
                pct(0.1), pct(0.5), pct(0.9), pct(0.99), pct(0.999), sizes.back());
    EXPECT_GT(pct(0.5), 2000u);
    EXPECT_LT(pct(0.5), 5000u);
    EXPECT_GT(pct(0.9), 8000u);
    EXPECT_LT(pct(0.9), 80000u);
    EXPECT_GT(pct(0.99), 150000u);
    EXPECT_LT(pct(0.99), 1500000u);
    EXPECT_GT(sizes.back(), 2000000u);  // the tail is heavy
    EXPECT_LT(sizes.back(), 50000000u);
    for (std::uint64_t i = 0; i < 3000; ++i) {
        auto planned = sim::message_size(42, i);
        auto actual = generate_message(spec(i)).size();
        auto diff = actual > planned ? actual - planned : planned - actual;
        EXPECT_LE(diff, 1200 + planned / 20)
            << "index " << i << ": " << actual << " vs " << planned;
    }
}

TEST(MessageGen, ParsesCleanlyWithCrlfAndShortLines) {
    int kinds[4] = {0, 0, 0, 0};  // plain, alternative, mixed, non-ASCII subject
    for (std::uint64_t i = 0; i < 3000; ++i) {
        auto g = generate_message(spec(i));
        check_lines(g.bytes, i);
        auto m = mime::parse(g.bytes);
        int leaves = 0;
        walk(m.root, g.bytes, i, leaves);
        if (m.root.type_is("text", "plain")) ++kinds[0];
        if (m.root.type_is("multipart", "alternative")) ++kinds[1];
        if (m.root.type_is("multipart", "mixed")) ++kinds[2];
        auto subj = m.root.header("Subject");
        ASSERT_TRUE(subj);
        auto decoded = mime::decode_header_value(subj->unfolded());
        EXPECT_EQ(decoded.find("=?"), std::string::npos) << "index " << i << ": " << decoded;
        if (subj->value.find("=?UTF-8?") != std::string_view::npos) ++kinds[3];
        auto irt = m.root.header("In-Reply-To");
        EXPECT_EQ(irt != nullptr, i % 5 == 0);
        if (irt) {
            EXPECT_EQ(irt->unfolded(), "<parent" + std::to_string(i) + "@example.org>");
            EXPECT_EQ(decoded.substr(0, 4), "Re: ");
        }
        auto from = m.root.header("From");
        ASSERT_TRUE(from);
        EXPECT_NE(from->unfolded().find("<user" + std::to_string(i % 97) + "@localhost>"),
                  std::string::npos);
        ASSERT_TRUE(m.root.header("Date"));
        ASSERT_TRUE(m.root.header("X-Millipost-Id"));
    }
    // The mix is what message_gen.h says, roughly.
    EXPECT_GT(kinds[0], 1400);  // 55%
    EXPECT_GT(kinds[1], 900);   // 35%, some inside mixed
    EXPECT_GT(kinds[2], 220);   // 10%
    EXPECT_GT(kinds[3], 1000);
}

// A profile's shape (MessageShape) replaces the model: its median, tail, cap and mix hold, the
// messages still parse cleanly, and the same (seed, index, shape) gives the same bytes.
TEST(MessageGen, ShapeFromAProfile) {
    sim::MessageShape shape;
    shape.size_median = 20000;
    shape.tail_fraction = 0.1;
    shape.tail_alpha = 1.5;
    shape.size_max = 400000;
    shape.multipart_fraction = 0.8;
    shape.attachment_fraction = 0.3;
    shape.non_ascii_fraction = 0.0;
    constexpr int kN = 2000;
    std::vector<std::size_t> sizes;
    int alternative = 0, mixed = 0, encoded = 0;
    for (std::uint64_t i = 0; i < kN; ++i) {
        auto s = spec(i);
        s.shape = shape;
        auto g = generate_message(s);
        check_lines(g.bytes, i);
        EXPECT_EQ(g.bytes, generate_message(s).bytes);
        auto m = mime::parse(g.bytes);
        int leaves = 0;
        walk(m.root, g.bytes, i, leaves);
        if (g.bytes.find("multipart/alternative") != std::string::npos) ++alternative;
        if (m.root.type_is("multipart", "mixed")) ++mixed;
        if (m.root.header("Subject")->value.find("=?UTF-8?") != std::string_view::npos) ++encoded;
        sizes.push_back(g.size());
        // Within a few hundred octets of headers and parts of the plan.
        EXPECT_LT(g.size(), sim::message_size(42, i, shape) + 2000) << "index " << i;
    }
    std::sort(sizes.begin(), sizes.end());
    EXPECT_GT(sizes[kN / 2], 15000u);
    EXPECT_LT(sizes[kN / 2], 27000u);
    EXPECT_LT(sizes.back(), shape.size_max + 4000);  // the cap, plus headers
    EXPECT_GT(sizes[kN * 99 / 100], 100000u);        // the Pareto tail
    EXPECT_NEAR(alternative, kN * 0.8, kN * 0.05);
    EXPECT_NEAR(mixed, kN * 0.3, kN * 0.05);
    EXPECT_EQ(encoded, 0);  // non_ascii_fraction 0: plain English only
    // Without a shape, the built-in model is untouched.
    EXPECT_NE(sim::message_size(42, 7), sim::message_size(42, 7, shape));
}

// Not a gate: prints the generator's throughput for the report.
TEST(MessageGen, Throughput) {
    auto t0 = std::chrono::steady_clock::now();
    std::size_t bytes = 0;
    std::uint64_t n = 0;
    for (; n < 20000; ++n)
        bytes += generate_message(spec(n, 7)).size();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("generated %llu messages, %.1f MB in %.2f s: %.0f msg/s, %.0f MB/s\n",
                static_cast<unsigned long long>(n), bytes / 1e6, s, n / s, bytes / 1e6 / s);
    EXPECT_GT(bytes, 0u);
}
