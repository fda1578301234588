// mime/message_test.cpp: the structure parser on real-world shaped mail (testdata/*.eml) and on
// the malformed shapes it must serve anyway; every limit of Limits crossed once.
#include "mime/message.h"
#include "mime/test_support.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

using namespace millipost::mime;
using namespace millipost::mime::testing;
using namespace std::literals;

namespace {

std::string_view body(const Message& m, const Part& p) {
    return m.raw.substr(p.body_start, p.size());
}
std::string_view header(const Message& m, const Part& p) {
    return m.raw.substr(p.header_start, p.header_end - p.header_start);
}

}  // namespace

TEST(MimeMessage, NestedAlternativeWithAttachment) {
    std::string raw = load("nested_alternative.eml");
    Message m = parse(raw);
    const Part& root = m.root;
    EXPECT_EQ(root.type, "multipart");
    EXPECT_EQ(root.subtype, "mixed");
    ASSERT_NE(root.param("boundary"), nullptr);
    EXPECT_EQ(root.param("BOUNDARY")->value, "outer=_1");
    EXPECT_EQ(m.part_count, 5u);
    EXPECT_EQ(root.defects, 0u);
    ASSERT_EQ(root.children.size(), 2u);  // the preamble and epilogue are no parts

    const Part& alt = root.children[0];
    EXPECT_TRUE(alt.type_is("multipart", "alternative"));
    EXPECT_EQ(alt.depth, 1u);
    ASSERT_EQ(alt.children.size(), 2u);
    const Part& plain = alt.children[0];
    EXPECT_TRUE(plain.type_is("text", "plain"));
    EXPECT_EQ(plain.charset(), "utf-8");
    EXPECT_EQ(plain.transfer_encoding(), Encoding::QuotedPrintable);
    EXPECT_EQ(plain.encoding, "quoted-printable");
    EXPECT_EQ(body(m, plain),
              "Hello Bob,\r\n\r\nThe report is attached. Caf=C3=A9 at 10?\r\n\r\nAlice");
    EXPECT_EQ(plain.lines, 4u);  // LFs in the body: the CRLF before the delimiter is not in it
    EXPECT_EQ(header(m, plain),
              "Content-Type: text/plain; charset=\"utf-8\"\r\n"
              "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    EXPECT_TRUE(alt.children[1].type_is("text", "html"));

    const Part& pdf = root.children[1];
    EXPECT_TRUE(pdf.type_is("application", "pdf"));
    EXPECT_EQ(pdf.param("name")->value, "report.pdf");
    EXPECT_EQ(pdf.disposition, "attachment");
    ASSERT_EQ(pdf.disposition_params.size(), 2u);
    EXPECT_EQ(pdf.disposition_param("filename")->value, "report.pdf");
    EXPECT_EQ(pdf.disposition_param("size")->value, "518");
    EXPECT_EQ(pdf.id, "<part3@example.org>");
    EXPECT_EQ(pdf.description, "Q4 report");
    EXPECT_EQ(pdf.md5, "Q2hlY2sgSW50ZWdyaXR5IQ==");
    EXPECT_EQ(pdf.location, "http://example.org/report.pdf");
    EXPECT_EQ(pdf.languages, (std::vector<std::string>{"en", "de"}));
    EXPECT_EQ(pdf.transfer_encoding(), Encoding::Base64);
    EXPECT_EQ(pdf.charset(), "");
    EXPECT_TRUE(body(m, pdf).starts_with("AAECAwQF"));
    EXPECT_EQ(body(m, pdf).back(), '=');

    // The multipart body runs from after its header to the end (epilogue included).
    EXPECT_EQ(root.body_end, raw.size());
    EXPECT_TRUE(body(m, root).starts_with("This is a multi-part message"));
    const Header* subject = root.header("subject");
    ASSERT_NE(subject, nullptr);
    EXPECT_EQ(subject->name, "Subject");
    EXPECT_EQ(subject->value, " Quarterly report\r\n with attachment");
    EXPECT_EQ(subject->unfolded(), "Quarterly report with attachment");
    EXPECT_EQ(raw.substr(subject->start, subject->end - subject->start),
              "Subject: Quarterly report\r\n with attachment\r\n");
}

TEST(MimeMessage, DefaultsWithoutMimeHeaders) {
    std::string raw = load("plain.eml");
    Message m = parse(raw);
    EXPECT_EQ(m.root.type, "text");
    EXPECT_EQ(m.root.subtype, "plain");
    EXPECT_TRUE(m.root.params.empty());
    EXPECT_EQ(m.root.charset(), "us-ascii");  // RFC 2045 §5.2
    EXPECT_EQ(m.root.transfer_encoding(), Encoding::SevenBit);
    EXPECT_EQ(m.root.encoding, "");
    EXPECT_EQ(body(m, m.root),
              "Testing.\r\nNo Content-Type: text/plain; charset=us-ascii is assumed.\r\n");
    EXPECT_EQ(m.root.lines, 2u);
    EXPECT_EQ(m.root.defects, 0u);
    EXPECT_EQ(
        m.root.header("Date")->unfolded(),
        "Thu,      13        Feb          1969      23:32               -0330 (Newfoundland Time)");
}

TEST(MimeMessage, DigestPartsDefaultToMessageRfc822) {
    std::string raw = load("digest.eml");
    Message m = parse(raw);
    ASSERT_EQ(m.root.children.size(), 3u);
    EXPECT_TRUE(m.root.children[0].type_is("text", "plain"));  // explicit type wins
    for (int i : {1, 2}) {
        const Part& p = m.root.children[static_cast<std::size_t>(i)];
        EXPECT_TRUE(p.type_is("message", "rfc822")) << i;
        ASSERT_TRUE(p.is_message()) << i;
        EXPECT_EQ(p.header_end - p.header_start, 2u);  // only the blank line
    }
    const Part& second = m.root.children[2].children[0];
    EXPECT_EQ(second.header("Subject")->unfolded(), "Second message");
    EXPECT_EQ(second.charset(), "utf-8");
    EXPECT_EQ(body(m, second), "Second message body: \xE2\x9C\x93");
    EXPECT_EQ(second.depth, 2u);
}

TEST(MimeMessage, ForwardedMessageIsAChildWithItsOwnHeader) {
    std::string raw = load("forwarded.eml");
    Message m = parse(raw);
    ASSERT_EQ(m.root.children.size(), 3u);
    const Part& fwd = m.root.children[1];
    EXPECT_TRUE(fwd.is_message());
    EXPECT_EQ(fwd.disposition, "inline");
    const Part& inner = fwd.children[0];
    // The encapsulated message is exactly the body of the message/rfc822 part.
    EXPECT_EQ(inner.header_start, fwd.body_start);
    EXPECT_EQ(inner.body_end, fwd.body_end);
    EXPECT_EQ(inner.header("From")->unfolded(), "=?iso-8859-1?q?J=F6rg?= Meyer <joerg@example.de>");
    ASSERT_TRUE(inner.is_multipart());
    ASSERT_EQ(inner.children.size(), 2u);
    EXPECT_EQ(body(m, inner.children[0]),
              "Gr\xFC\xDF"
              "e aus M\xFCnchen");  // 8-bit kept
    EXPECT_EQ(inner.children[0].charset(), "iso-8859-1");
    EXPECT_EQ(fwd.lines, 21u);
    const Part& note = m.root.children[2].children[0];
    EXPECT_TRUE(note.type_is("text", "plain"));  // a message without MIME headers inside
    EXPECT_EQ(body(m, note), "Just a short note without MIME headers.");
    EXPECT_EQ(m.part_count, 8u);
}

TEST(MimeMessage, Rfc2231ContinuationsAndCharsets) {
    std::string raw = load("rfc2231.eml");
    Message m = parse(raw);
    ASSERT_EQ(m.root.children.size(), 3u);
    const Param* title = m.root.children[0].param("title");
    ASSERT_NE(title, nullptr);
    EXPECT_TRUE(title->extended);
    EXPECT_EQ(title->charset, "iso-8859-1");
    EXPECT_EQ(title->language, "en");
    EXPECT_EQ(title->value, "Caf\xC3\xA9 cr\xC3\xA8me");
    EXPECT_EQ(title->wire, "iso-8859-1'en'Caf%E9%20cr%E8me");

    const Part& att = m.root.children[1];
    const std::string name =
        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x95\xE3\x82\xA1"
        "\xE3\x82\xA4\xE3\x83\xAB.txt";  // 日本語のファイル.txt
    EXPECT_EQ(att.param("name")->value, name);
    EXPECT_EQ(
        att.param("name")->wire,
        "utf-8''%E6%97%A5%E6%9C%AC%E8%AA%9E%E3%81%AE%E3%83%95%E3%82%A1%E3%82%A4%E3%83%AB.txt");
    const Param* filename = att.disposition_param("filename");
    ASSERT_NE(filename, nullptr);
    EXPECT_EQ(filename->value, name);  // extended and plain segments joined
    EXPECT_EQ(filename->language, "ja");
    EXPECT_EQ(att.disposition_params.size(), 1u);

    const Param* url = m.root.children[2].param("url");
    ASSERT_NE(url, nullptr);
    EXPECT_FALSE(url->extended);
    EXPECT_EQ(url->value, "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar");
    EXPECT_TRUE(url->wire.empty());
    EXPECT_FALSE(m.root.children[2].is_message());  // message/external-body is a leaf
}

TEST(MimeMessage, ContentValueSyntax) {
    std::string t, s;
    std::vector<Param> p;
    ASSERT_TRUE(parse_content_value("Text/HTML (comment) ; Charset = \"UTF-8\" ; format=flowed",
                                    true, t, s, p));
    EXPECT_EQ(t, "Text");
    EXPECT_EQ(s, "HTML");
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(p[0].name, "charset");
    EXPECT_EQ(p[0].value, "UTF-8");
    EXPECT_EQ(p[1].value, "flowed");

    ASSERT_TRUE(parse_content_value("text/plain; charset=us-ascii (Plain text)", true, t, s, p));
    EXPECT_EQ(p[0].value, "us-ascii");  // RFC 2045's own example
    ASSERT_TRUE(
        parse_content_value("application/x; name=my file(1).txt; x=\"a\\\"b\"", true, t, s, p));
    EXPECT_EQ(p[0].value, "my file(1).txt");  // unquoted value with spaces and parentheses
    EXPECT_EQ(p[1].value, "a\"b");
    ASSERT_TRUE(parse_content_value("text / plain charset=utf-8", true, t, s, p));
    EXPECT_EQ(s, "plain");
    EXPECT_EQ(p.at(0).value, "utf-8");  // missing ';' tolerated
    ASSERT_TRUE(parse_content_value("text/plain;;; =x; novalue; a=1; A=2", true, t, s, p));
    ASSERT_EQ(p.size(), 1u);  // garbage skipped, the first of a repeated name counts
    EXPECT_EQ(p[0].value, "1");
    EXPECT_FALSE(parse_content_value("text", true, t, s, p));
    EXPECT_FALSE(parse_content_value("text/", true, t, s, p));
    EXPECT_FALSE(parse_content_value("", true, t, s, p));
    EXPECT_FALSE(parse_content_value("/plain", true, t, s, p));
    ASSERT_TRUE(parse_content_value("attachment; filename*=''%41%zz", false, t, s, p));
    EXPECT_EQ(t, "attachment");
    EXPECT_EQ(p[0].value, "A%zz");  // an invalid escape is kept
    // Segments out of order, a repeated one, a gap; name*0 and a plain name together.
    ASSERT_TRUE(
        parse_content_value("a/b; n*2=c; n*0=a; n*1=b; n*1=x; n*5=z; n=plain", true, t, s, p));
    EXPECT_EQ(p[0].value, "abcz");
    ASSERT_TRUE(parse_content_value("a/b; n*=unknown-charset''%FF", true, t, s, p));
    EXPECT_EQ(p[0].value, "\xFF");  // unknown charset: the octets
}

TEST(MimeMessage, InvalidContentTypeIsTextPlain) {
    std::string raw = crlf("Content-Type: garbage\nContent-Type: image/png\n\nbody");
    Message m = parse(raw);
    EXPECT_TRUE(m.root.type_is("text", "plain"));  // the first field counts, invalid -> default
    EXPECT_TRUE(m.root.defects & kDefectInvalidContentType);
}

TEST(MimeMessage, MalformedBoundaries) {
    std::string raw = load("malformed_boundaries.eml");
    Message m = parse(raw);
    const Part& root = m.root;
    ASSERT_EQ(root.children.size(), 4u);
    EXPECT_TRUE(root.defects & kDefectMissingCloseBoundary);
    EXPECT_EQ(
        body(m, root.children[0]),
        "part one, delimiter above has trailing spaces\r\n--frontierX is not a delimiter line");
    const Part& headerless = root.children[1];
    EXPECT_EQ(header(m, headerless), "\r\n");
    EXPECT_TRUE(headerless.type_is("text", "plain"));
    EXPECT_EQ(body(m, headerless), "part two has no header at all");
    const Part& open = root.children[2];
    ASSERT_EQ(open.children.size(), 1u);
    EXPECT_TRUE(open.defects & kDefectMissingCloseBoundary);  // ended by the outer delimiter
    EXPECT_EQ(body(m, open.children[0]), "inner part whose multipart is never closed");
    const Part& last = root.children[3];
    EXPECT_EQ(body(m, last), "the last part, the close delimiter is missing\r\n");
    EXPECT_EQ(last.body_end, raw.size());
}

TEST(MimeMessage, BoundaryPrefixesAndReuse) {
    // The inner boundary extends the outer one; lines of one never delimit the other.
    std::string raw = crlf(
        "Content-Type: multipart/mixed; boundary=\"=_a\"\n\n"
        "--=_a\nContent-Type: multipart/alternative; boundary=\"=_a_b\"\n\n"
        "--=_a_b\n\none\n--=_a_b\n\ntwo\n--=_a_b--\n"
        "--=_a\n\nthree\n--=_a--\n");
    Message m = parse(raw);
    ASSERT_EQ(m.root.children.size(), 2u);
    ASSERT_EQ(m.root.children[0].children.size(), 2u);
    EXPECT_EQ(body(m, m.root.children[0].children[1]), "two");
    EXPECT_EQ(body(m, m.root.children[1]), "three");
    EXPECT_EQ(m.root.defects, 0u);

    // A nested multipart reusing its parent's boundary: the innermost one owns the lines.
    std::string reuse = crlf(
        "Content-Type: multipart/mixed; boundary=x\n\n--x\n"
        "Content-Type: multipart/mixed; boundary=x\n\n--x\n\ninner\n--x--\nafter\n");
    Message r = parse(reuse);
    ASSERT_EQ(r.root.children.size(), 1u);
    ASSERT_EQ(r.root.children[0].children.size(), 1u);
    EXPECT_EQ(body(r, r.root.children[0].children[0]), "inner");
    EXPECT_TRUE(r.root.defects & kDefectMissingCloseBoundary);
}

TEST(MimeMessage, EmptyPartsAndEpilogueDelimiters) {
    std::string raw =
        crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\n\n--b--\n--b\nnot a part\n");
    Message m = parse(raw);
    ASSERT_EQ(m.root.children.size(), 2u);
    EXPECT_EQ(m.root.children[0].header_end, m.root.children[0].header_start);
    EXPECT_EQ(m.root.children[0].size(), 0u);
    EXPECT_EQ(m.root.children[1].size(), 0u);  // blank line, then the delimiter's CRLF
    EXPECT_EQ(m.root.children[1].lines, 0u);
    EXPECT_EQ(m.root.defects, 0u);  // "--b" after the close delimiter is epilogue text

    Message none = parse(crlf("Content-Type: multipart/mixed; boundary=b\n\nno delimiter\n"));
    EXPECT_TRUE(none.root.is_multipart());
    EXPECT_TRUE(none.root.children.empty());
    EXPECT_TRUE(none.root.defects & kDefectNoParts);
}

TEST(MimeMessage, MultipartWithoutBoundaryIsTextPlain) {
    std::string raw = load("no_boundary.eml");
    Message m = parse(raw);
    EXPECT_TRUE(m.root.type_is("text", "plain"));
    EXPECT_TRUE(m.root.params.empty());
    EXPECT_TRUE(m.root.children.empty());
    EXPECT_TRUE(m.root.defects & kDefectNoBoundary);
    EXPECT_TRUE(body(m, m.root).starts_with("--whatever"));
}

TEST(MimeMessage, BareLineFeeds) {
    std::string raw = load("bare_lf.eml");
    ASSERT_EQ(raw.find('\r'), std::string::npos);
    Message m = parse(raw);
    ASSERT_EQ(m.root.children.size(), 2u);
    EXPECT_EQ(body(m, m.root.children[0]), "plain with bare LF\nsecond line");
    EXPECT_EQ(m.root.children[0].lines, 1u);
    EXPECT_EQ(header(m, m.root.children[1]), "Content-Type: text/html\n\n");
    EXPECT_EQ(m.root.header("Subject")->value, " Bare LF line endings");
}

TEST(MimeMessage, MissingBlankLineAndGarbageHeaders) {
    std::string raw = load("missing_blank_line.eml");
    Message m = parse(raw);
    EXPECT_TRUE(m.root.defects & kDefectMissingBlankLine);
    ASSERT_EQ(m.root.children.size(), 2u);
    EXPECT_EQ(body(m, m.root.children[0]), "this line has no colon, so the body starts here");
    const Part& cut = m.root.children[1];
    EXPECT_EQ(cut.description, "header cut by the delimiter");
    EXPECT_EQ(cut.size(), 0u);
    EXPECT_TRUE(cut.defects & kDefectMissingBlankLine);

    std::string garbage = crlf(
        "From a@b Mon Jan  1 00:00:00 2024\n \tstray continuation\nX Bad Header: y\n"
        "Subject : spaced\n\tcontinued\n: no name\n\nbody\n");
    Message g = parse(garbage);
    ASSERT_EQ(g.root.headers.size(), 1u);
    EXPECT_EQ(g.root.headers[0].name, "Subject");
    EXPECT_EQ(g.root.headers[0].unfolded(), "spaced\tcontinued");
    EXPECT_TRUE(g.root.defects & kDefectGarbageHeader);
    EXPECT_EQ(body(g, g.root), "body\r\n");

    Message only = parse("Subject: no body");
    EXPECT_EQ(only.root.header_end, 16u);
    EXPECT_EQ(only.root.size(), 0u);
    EXPECT_EQ(only.root.header("subject")->value, " no body");
    Message empty = parse("");
    EXPECT_EQ(empty.root.body_end, 0u);
    EXPECT_EQ(empty.root.defects, 0u);
}

TEST(MimeMessage, EightBitOctetsAreKept) {
    std::string raw(
        "Subject: caf\xE9 \xFF\r\nContent-Type: text/plain; charset=\"\xE9\"\r\n\r\n\xFF\0\xFE\0tail"sv);
    Message m = parse(raw);
    EXPECT_EQ(m.root.header("subject")->unfolded(), "caf\xE9 \xFF");
    EXPECT_EQ(m.root.charset(), "\xE9");
    EXPECT_EQ(body(m, m.root).size(), 8u);
    EXPECT_EQ(body(m, m.root)[1], '\0');
    EXPECT_EQ(body(m, m.root).substr(3), "\0tail"sv);
}

TEST(MimeMessage, Utf8HeadersAndMessageGlobal) {
    std::string raw = load("utf8_headers.eml");
    Message m = parse(raw);
    EXPECT_EQ(m.root.header("From")->unfolded(),
              "J\xC3\xB6ran \xC3\x84ngstr\xC3\xB6m <j\xC3\xB6ran@ex\xC3\xA4mple.se>");
    ASSERT_EQ(m.root.children.size(), 2u);
    const Part& global = m.root.children[1];
    EXPECT_TRUE(global.type_is("message", "global"));
    ASSERT_TRUE(global.is_message());
    EXPECT_TRUE(global.children[0].type_is("text", "plain"));
}

TEST(MimeMessage, EncodedMessageRfc822IsNotParsedInside) {
    std::string raw = crlf(
        "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n"
        "Content-Transfer-Encoding: base64\n\nU3ViamVjdDogeAoKYm9keQo=\n--b--\n");
    Message m = parse(raw);
    const Part& p = m.root.children.at(0);
    EXPECT_FALSE(p.is_message());
    EXPECT_TRUE(p.children.empty());
    EXPECT_TRUE(p.defects & kDefectEncodedMessage);
}

TEST(MimeMessage, LineCounts) {
    Message a = parse(
        crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\ntwo\n\n--b\n\nx\n--b--"));
    EXPECT_EQ(a.root.children[0].lines, 2u);  // "one\ntwo\n": the delimiter owns the last CRLF
    EXPECT_EQ(a.root.children[1].lines, 0u);  // "x"
    Message b = parse("Subject: s\r\n\r\nno final newline");
    EXPECT_EQ(b.root.lines, 0u);
    Message c = parse("Subject: s\n\na\nb\n");
    EXPECT_EQ(c.root.lines, 2u);
}

TEST(MimeMessage, DefaultLimitsAreTheNamedConstants) {
    Limits l;
    EXPECT_EQ(l.max_depth, kMaxDepth);
    EXPECT_EQ(l.max_parts, kMaxParts);
    EXPECT_EQ(l.max_header_fields, kMaxHeaderFields);
    EXPECT_EQ(l.max_header_field_size, kMaxHeaderFieldSize);
}

namespace {
// Multiparts nested `depth` deep, each holding its child and a text part.
std::string nested(int depth) {
    std::string open, close;
    for (int i = 0; i < depth; ++i) {
        std::string b = "b" + std::to_string(i);
        open += "Content-Type: multipart/mixed; boundary=" + b + "\r\n\r\n--" + b + "\r\n";
        close = "\r\n--" + b + "\r\n\r\ntext " + std::to_string(i) + "\r\n--" + b + "--" + close;
    }
    return open + "\r\nleaf" + close;
}
}  // namespace

TEST(MimeMessage, DepthLimitLeavesTheDeepestPartUnparsed) {
    std::string raw = nested(5);
    Limits limits;
    limits.max_depth = 2;
    Message m = parse(raw, limits);
    const Part* p = &m.root;
    for (int i = 0; i < 2; ++i) {
        ASSERT_EQ(p->children.size(), 2u) << i;
        EXPECT_EQ(m.raw.substr(p->children[1].body_start, p->children[1].size()),
                  "text " + std::to_string(i));
        p = &p->children[0];
    }
    EXPECT_EQ(p->depth, 2u);
    EXPECT_TRUE(p->is_multipart());
    EXPECT_TRUE(p->children.empty());
    EXPECT_TRUE(p->defects & kDefectDepthLimit);
    // Its delimiters are content now, yet its parent's delimiter still ends it.
    EXPECT_TRUE(
        m.raw.substr(p->body_start, p->size()).ends_with("--b3--\r\n--b2\r\n\r\ntext 2\r\n--b2--"));

    Message full = parse(raw);
    EXPECT_EQ(full.part_count, 1u + 5 * 2);
    Message deep = parse(nested(static_cast<int>(kMaxDepth) + 5));  // the default holds too
    EXPECT_EQ(deep.part_count, 1u + kMaxDepth * 2);

    std::string msg =
        crlf("Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nSubject: x\n\nbody");
    Limits one;
    one.max_depth = 1;
    Message r = parse(msg, one);
    ASSERT_TRUE(r.root.is_message());
    EXPECT_FALSE(r.root.children[0].is_message());
    EXPECT_TRUE(r.root.children[0].defects & kDefectDepthLimit);
}

TEST(MimeMessage, PartsLimitDropsFurtherParts) {
    std::string raw = "Content-Type: multipart/mixed; boundary=b\r\n\r\n";
    for (int i = 0; i < 10; ++i)
        raw += "--b\r\n\r\npart " + std::to_string(i) + "\r\n";
    raw += "--b--\r\n";
    Limits limits;
    limits.max_parts = 4;
    Message m = parse(raw, limits);
    EXPECT_EQ(m.part_count, 4u);
    ASSERT_EQ(m.root.children.size(), 3u);
    EXPECT_EQ(m.raw.substr(m.root.children[2].body_start, m.root.children[2].size()), "part 2");
    EXPECT_TRUE(m.root.defects & kDefectPartsLimit);
    EXPECT_FALSE(m.root.defects & kDefectMissingCloseBoundary);  // the structure is still read
    EXPECT_EQ(parse(raw).part_count, 11u);
}

TEST(MimeMessage, HeaderLimits) {
    std::string raw;
    for (int i = 0; i < 10; ++i)
        raw += "X-Field-" + std::to_string(i) + ": value\r\n";
    raw += "Subject: " + std::string(200, 'x') + "\r\n\r\nbody";
    Limits count;
    count.max_header_fields = 3;
    Message a = parse(raw, count);
    ASSERT_EQ(a.root.headers.size(), 3u);
    EXPECT_EQ(a.root.headers[2].name, "X-Field-2");
    EXPECT_TRUE(a.root.defects & kDefectHeaderLimit);
    EXPECT_EQ(a.raw.substr(a.root.body_start), "body");

    Limits size;
    size.max_header_field_size = 100;
    Message b = parse(raw, size);
    EXPECT_EQ(b.root.headers.size(), 10u);
    EXPECT_EQ(b.root.header("Subject"), nullptr);
    EXPECT_TRUE(b.root.defects & kDefectHeaderLimit);
    EXPECT_EQ(b.raw.substr(b.root.body_start), "body");

    Message c = parse(raw);
    EXPECT_EQ(c.root.headers.size(), 11u);
    EXPECT_EQ(c.root.defects, 0u);
}

TEST(MimeMessage, ManyDashLinesStayLinear) {
    // Lines that look like delimiters of an enclosing multipart but are not: each costs one
    // hash lookup, so a large adversarial body parses promptly.
    std::string raw = "Content-Type: multipart/mixed; boundary=" + std::string(60, 'q') +
                      "\r\n\r\n--" + std::string(60, 'q') + "\r\n\r\n";
    std::string line = "--" + std::string(59, 'q') + "x\r\n";
    for (int i = 0; i < 50000; ++i)
        raw += line;
    Message m = parse(raw);
    ASSERT_EQ(m.root.children.size(), 1u);
    EXPECT_EQ(m.root.children[0].lines, 50000u);
}
