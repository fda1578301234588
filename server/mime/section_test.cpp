// mime/section_test.cpp: BODY[section] on the part layout of RFC 9051 §6.4.5's example, every
// section kind, section spec parsing, and BINARY[part].
#include "mime/section.h"
#include "mime/test_support.h"

#include <gtest/gtest.h>

#include <string>

using namespace millipost::mime;
using namespace millipost::mime::testing;

namespace {

// The structure of RFC 9051 §6.4.5's example:
//   1 TEXT/PLAIN, 2 APPLICATION/OCTET-STREAM, 3 MESSAGE/RFC822 (3.1 TEXT/PLAIN,
//   3.2 APPLICATION/OCTET-STREAM), 4 MULTIPART/MIXED (4.1 IMAGE/GIF, 4.2 MESSAGE/RFC822
//   (4.2.1 TEXT/PLAIN, 4.2.2 MULTIPART/ALTERNATIVE (4.2.2.1 TEXT/PLAIN, 4.2.2.2 TEXT/RICHTEXT)))
const std::string kExample = crlf(
    "From: a@example.org\n"
    "Subject: example\n"
    "Content-Type: MULTIPART/MIXED; boundary=\"top\"\n"
    "\n"
    "--top\n"
    "Content-Type: TEXT/PLAIN\n"
    "\n"
    "part 1\n"
    "--top\n"
    "Content-Type: APPLICATION/OCTET-STREAM\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "cGFydCAy\n"
    "--top\n"
    "Content-Type: MESSAGE/RFC822\n"
    "\n"
    "Subject: part 3\n"
    "Content-Type: MULTIPART/MIXED; boundary=\"m3\"\n"
    "\n"
    "--m3\n"
    "\n"
    "part 3.1\n"
    "--m3\n"
    "Content-Type: APPLICATION/OCTET-STREAM\n"
    "\n"
    "part 3.2\n"
    "--m3--\n"
    "--top\n"
    "Content-Type: MULTIPART/MIXED; boundary=\"p4\"\n"
    "\n"
    "--p4\n"
    "Content-Type: IMAGE/GIF\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "part=204.1\n"
    "--p4\n"
    "Content-Type: MESSAGE/RFC822\n"
    "\n"
    "Subject: part 4.2\n"
    "X-Folded: a\n"
    "  b\n"
    "Content-Type: MULTIPART/MIXED; boundary=\"m42\"\n"
    "\n"
    "--m42\n"
    "Content-Type: TEXT/PLAIN\n"
    "\n"
    "part 4.2.1\n"
    "--m42\n"
    "Content-Type: MULTIPART/ALTERNATIVE; boundary=\"alt\"\n"
    "\n"
    "--alt\n"
    "Content-Type: TEXT/PLAIN\n"
    "\n"
    "part 4.2.2.1\n"
    "--alt\n"
    "Content-Type: TEXT/RICHTEXT\n"
    "\n"
    "part 4.2.2.2\n"
    "--alt--\n"
    "--m42--\n"
    "--p4--\n"
    "--top--\n");

std::optional<std::string> get(const Message& m, std::string_view spec) {
    auto s = parse_section(spec);
    EXPECT_TRUE(s) << spec;
    if (!s) return std::nullopt;
    SectionData d = fetch_section(m, *s);
    if (!d.exists) return std::nullopt;
    EXPECT_EQ(d.length, d.bytes(m.raw).size());
    return std::string(d.bytes(m.raw));
}

}  // namespace

TEST(MimeSection, Rfc9051ExampleNumbering) {
    Message m = parse(kExample);
    EXPECT_EQ(get(m, ""), kExample);
    EXPECT_EQ(get(m, "HEADER"), crlf("From: a@example.org\nSubject: example\n"
                                     "Content-Type: MULTIPART/MIXED; boundary=\"top\"\n\n"));
    EXPECT_TRUE(get(m, "TEXT")->starts_with("--top\r\nContent-Type: TEXT/PLAIN"));
    EXPECT_TRUE(get(m, "TEXT")->ends_with("--top--\r\n"));
    EXPECT_EQ(get(m, "1"), "part 1");
    EXPECT_EQ(get(m, "1.MIME"), "Content-Type: TEXT/PLAIN\r\n\r\n");
    EXPECT_EQ(get(m, "2"), "cGFydCAy");
    // A message/rfc822 part: its body is the whole encapsulated message.
    EXPECT_TRUE(get(m, "3")->starts_with("Subject: part 3\r\n"));
    EXPECT_TRUE(get(m, "3")->ends_with("--m3--"));
    EXPECT_EQ(get(m, "3.MIME"), "Content-Type: MESSAGE/RFC822\r\n\r\n");
    EXPECT_EQ(get(m, "3.HEADER"),
              "Subject: part 3\r\nContent-Type: MULTIPART/MIXED; boundary=\"m3\"\r\n\r\n");
    EXPECT_EQ(
        get(m, "3.TEXT"),
        crlf("--m3\n\npart 3.1\n--m3\nContent-Type: APPLICATION/OCTET-STREAM\n\npart 3.2\n--m3--"));
    EXPECT_EQ(get(m, "3.1"), "part 3.1");
    EXPECT_EQ(get(m, "3.1.MIME"), "\r\n");
    EXPECT_EQ(get(m, "3.2"), "part 3.2");
    EXPECT_TRUE(get(m, "4")->starts_with("--p4\r\n"));
    EXPECT_EQ(get(m, "4.1"), "part=204.1");
    EXPECT_EQ(get(m, "4.1.MIME"),
              "Content-Type: IMAGE/GIF\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
    EXPECT_TRUE(get(m, "4.2")->starts_with("Subject: part 4.2\r\n"));
    EXPECT_EQ(get(m, "4.2.HEADER.FIELDS (X-FOLDED subject)"),
              "Subject: part 4.2\r\nX-Folded: a\r\n  b\r\n\r\n");
    EXPECT_EQ(get(m, "4.2.HEADER.FIELDS.NOT (Subject X-Folded)"),
              "Content-Type: MULTIPART/MIXED; boundary=\"m42\"\r\n\r\n");
    EXPECT_TRUE(get(m, "4.2.TEXT")->starts_with("--m42\r\n"));
    EXPECT_EQ(get(m, "4.2.1"), "part 4.2.1");
    EXPECT_TRUE(get(m, "4.2.2")->starts_with("--alt\r\n"));
    EXPECT_EQ(get(m, "4.2.2.1"), "part 4.2.2.1");
    EXPECT_EQ(get(m, "4.2.2.2"), "part 4.2.2.2");
    EXPECT_EQ(get(m, "4.2.2.2.MIME"), "Content-Type: TEXT/RICHTEXT\r\n\r\n");

    // Nonexistent parts, and HEADER/TEXT of parts that are no message, give nothing.
    for (auto spec : {"5", "0.1", "1.1", "4.3", "4.2.3", "4.2.2.3", "4.2.2.1.1", "1.HEADER",
                      "4.TEXT", "4.1.HEADER.FIELDS (A)", "3.2.TEXT"}) {
        auto s = parse_section(spec);
        if (s) {
            EXPECT_FALSE(fetch_section(m, *s).exists) << spec;
        }
    }
    EXPECT_EQ(find_part(m, std::vector<std::uint32_t>{4, 2, 2, 1})->subtype, "PLAIN");
    EXPECT_EQ(find_part(m, std::vector<std::uint32_t>{}), &m.root);
}

TEST(MimeSection, NonMultipartMessageHasOnlyPartOne) {
    std::string raw = crlf("Subject: single\nContent-Type: text/plain\n\nhello\n");
    Message m = parse(raw);
    EXPECT_EQ(get(m, "1"), "hello\r\n");
    EXPECT_EQ(get(m, "1"), get(m, "TEXT"));
    EXPECT_EQ(get(m, "1.MIME"), get(m, "HEADER"));  // the message header is part 1's MIME header
    EXPECT_FALSE(get(m, "2"));
    EXPECT_FALSE(get(m, "1.1"));
    EXPECT_FALSE(get(m, "1.HEADER"));
    EXPECT_EQ(get(m, "HEADER.FIELDS (subject)"), "Subject: single\r\n\r\n");
    EXPECT_EQ(get(m, "HEADER.FIELDS (X-None)"), "\r\n");
}

TEST(MimeSection, MessageRfc822AtTheTopAndWithASinglePartInside) {
    std::string raw = crlf("Content-Type: message/rfc822\n\nSubject: inner\n\ninner body");
    Message m = parse(raw);
    EXPECT_EQ(get(m, "1"), crlf("Subject: inner\n\ninner body"));
    EXPECT_EQ(get(m, "1.HEADER"), "Subject: inner\r\n\r\n");
    EXPECT_EQ(get(m, "1.TEXT"), "inner body");
    EXPECT_EQ(get(m, "1.1"), "inner body");  // the encapsulated message's only part
    EXPECT_EQ(get(m, "1.1.MIME"), "Subject: inner\r\n\r\n");
    EXPECT_FALSE(get(m, "1.2"));
    EXPECT_FALSE(get(m, "1.1.1"));
}

TEST(MimeSection, HeaderFieldsVerbatimInMessageOrder) {
    std::string raw =
        "Received: one\r\nSubject: s\r\nreceived: two\r\n\tfolded\r\nTo: x\nX-Last: no newline";
    Message m = parse(raw);
    EXPECT_EQ(get(m, "HEADER.FIELDS (RECEIVED)"),
              "Received: one\r\nreceived: two\r\n\tfolded\r\n\r\n");
    EXPECT_EQ(get(m, "HEADER.FIELDS (\"To\" X-Last)"), "To: x\nX-Last: no newline\r\n\r\n");
    EXPECT_EQ(get(m, "HEADER.FIELDS.NOT (Received To X-LAST)"), "Subject: s\r\n\r\n");
    EXPECT_EQ(get(m, "HEADER"), raw);  // no blank line, no body: the header is all
}

TEST(MimeSection, ParseAndFormat) {
    auto s = parse_section("1.2.header.fields.not (From \"X y\")");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->part, (std::vector<std::uint32_t>{1, 2}));
    EXPECT_EQ(s->text, Section::Text::HeaderFieldsNot);
    EXPECT_EQ(s->fields, (std::vector<std::string>{"From", "X y"}));
    EXPECT_EQ(format_section(*s), "1.2.HEADER.FIELDS.NOT (FROM \"X Y\")");
    EXPECT_EQ(format_section(*parse_section("")), "");
    EXPECT_EQ(format_section(*parse_section("text")), "TEXT");
    EXPECT_EQ(format_section(*parse_section("3.Mime")), "3.MIME");
    EXPECT_EQ(format_section(*parse_section("HEADER.FIELDS (a  b)")), "HEADER.FIELDS (A B)");
    EXPECT_EQ(parse_section("4294967295")->part[0], 4294967295u);
    for (auto bad : {"MIME", "0", "01", "1.", ".1", "1..2", "1.2X", "HEADER.FIELDS",
                     "HEADER.FIELDS ()", "HEADER.FIELDS (a", "HEADER.FIELDS (a) x", "TEXT.1",
                     "1 HEADER", "4294967296", "BODY", "HEADER.FIELDS (\"a)"})
        EXPECT_FALSE(parse_section(bad)) << bad;
}

TEST(MimeSection, Binary) {
    Message m = parse(kExample);
    auto bin = [&](std::vector<std::uint32_t> path) { return fetch_binary(m, path); };
    EXPECT_EQ(bin({2}).data, "part 2");       // base64
    EXPECT_EQ(bin({4, 1}).data, "part 4.1");  // quoted-printable
    EXPECT_EQ(bin({1}).data, "part 1");       // no encoding
    EXPECT_EQ(bin({}).data, kExample);
    EXPECT_EQ(bin({9}).status, BinaryData::Status::NoSuchPart);

    std::string raw =
        crlf("Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n");
    Message u = parse(raw);
    BinaryData b = fetch_binary(u, std::vector<std::uint32_t>{1});
    EXPECT_EQ(b.status, BinaryData::Status::UnknownEncoding);
    EXPECT_TRUE(b.data.empty());
}
