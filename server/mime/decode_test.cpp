// mime/decode_test.cpp: base64 and quoted-printable leniency, charset conversion through iconv,
// RFC 2047 encoded-words (also those of testdata/encoded_words.eml), BINARY decoding.
#include "mime/decode.h"
#include "mime/test_support.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <fstream>
#include <iterator>

using namespace millipost::mime;
using namespace millipost::mime::testing;
using namespace std::literals;

TEST(MimeDecode, Base64) {
    EXPECT_EQ(decode_base64("SGVsbG8sIHdvcmxkIQ=="), "Hello, world!");
    EXPECT_EQ(decode_base64("SGVs\r\nbG8s\nIHdv cmxk\tIQ=="), "Hello, world!");
    EXPECT_EQ(decode_base64("SGV*sb#G8"), "Hello");  // invalid characters skipped
    EXPECT_EQ(decode_base64("SGVsbG8"), "Hello");    // missing padding
    EXPECT_EQ(decode_base64("SGk=SGk="), "HiHi");    // concatenated blocks
    EXPECT_EQ(decode_base64("QQ==\r\nQg=="), "AB");
    EXPECT_EQ(decode_base64("Q"), "");  // a lone sextet is no octet
    EXPECT_EQ(decode_base64(""), "");
    EXPECT_EQ(decode_base64("////"), "\xFF\xFF\xFF");
}

TEST(MimeDecode, QuotedPrintable) {
    EXPECT_EQ(decode_quoted_printable("a=3Db=\r\nc\r\n"), "a=bc\r\n");
    EXPECT_EQ(decode_quoted_printable("soft=\nbreak\n"), "softbreak\n");
    EXPECT_EQ(decode_quoted_printable("caf=c3=a9"), "caf\xC3\xA9");  // lower-case hex
    EXPECT_EQ(decode_quoted_printable("=ZZ and =4 and ="), "=ZZ and =4 and ");
    EXPECT_EQ(decode_quoted_printable("trailing   \r\nspace\t\r\n"), "trailing\r\nspace\r\n");
    EXPECT_EQ(decode_quoted_printable("padded soft break= \t\r\nend"), "padded soft breakend");
    EXPECT_EQ(decode_quoted_printable("=20\r\n"), " \r\n");  // encoded whitespace stays
    EXPECT_EQ(decode_quoted_printable("a\r\n\r\nb"), "a\r\n\r\nb");
    EXPECT_EQ(decode_quoted_printable(""), "");
    EXPECT_EQ(decode_q("Caf=C3=A9_cr=E8me=5F"), "Caf\xC3\xA9 cr\xE8me_");
}

TEST(MimeDecode, Charsets) {
    struct Case {
        const char* charset;
        std::string_view in, utf8;
    };
    const Case cases[] = {
        {"iso-8859-1", "\x43\x61\x66\xE9"sv, "Caf\xC3\xA9"sv},
        {"ISO-8859-2", "\x5A\x61\xBF\xF3\xB3\xE6"sv, "\x5A\x61\xC5\xBC\xC3\xB3\xC5\x82\xC4\x87"sv},
        {"iso-8859-15", "\xA4\x75\x72\x6F"sv, "\xE2\x82\xAC\x75\x72\x6F"sv},
        {"windows-1250", "\xA3\xF3\x64\x9F"sv, "\xC5\x81\xC3\xB3\x64\xC5\xBA"sv},
        {"windows-1251", "\xCF\xF0\xE8\xE2\xE5\xF2"sv,
         "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82"sv},
        {"windows-1252", "\x93\x73\x6D\x61\x72\x74\x94\x20\x80"sv,
         "\xE2\x80\x9C\x73\x6D\x61\x72\x74\xE2\x80\x9D\x20\xE2\x82\xAC"sv},
        {"koi8-r", "\xF0\xD2\xC9\xD7\xC5\xD4"sv,
         "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82"sv},
        {"gb2312", "\xC4\xE3\xBA\xC3"sv, "\xE4\xBD\xA0\xE5\xA5\xBD"sv},
        {"GBK", "\xC4\xE3\xBA\xC3"sv, "\xE4\xBD\xA0\xE5\xA5\xBD"sv},
        {"Shift_JIS", "\x93\xFA\x96\x7B\x8C\xEA"sv, "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"sv},
        {"euc-jp", "\xC6\xFC\xCB\xDC\xB8\xEC"sv, "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"sv},
        {"iso-2022-jp", "\x1B\x24\x42\x46\x7C\x4B\x5C\x38\x6C\x1B\x28\x42"sv,
         "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"sv},
        {"big5", "\xA4\xA4\xA4\xE5"sv, "\xE4\xB8\xAD\xE6\x96\x87"sv},
        {"euc-kr", "\xC7\xD1\xB1\xB9\xBE\xEE"sv, "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4"sv},
        {"utf-16le", "\x6F\x00\x6B\x00\x13\x27"sv, "\x6F\x6B\xE2\x9C\x93"sv},
        {"\"utf-8\"", "\xE2\x9C\x93"sv, "\xE2\x9C\x93"sv},
        {"us-ascii", "plain"sv, "plain"sv},
    };
    for (const auto& c : cases) {
        auto out = charset_to_utf8(c.in, c.charset);
        ASSERT_TRUE(out) << c.charset;
        EXPECT_EQ(*out, c.utf8) << c.charset;
    }
    EXPECT_FALSE(charset_to_utf8("x", "x-no-such-charset"));
    // Invalid input becomes U+FFFD and conversion goes on.
    EXPECT_EQ(charset_to_utf8("a\xFF"
                              "b",
                              "utf-8"),
              "a\xEF\xBF\xBD"
              "b");
    EXPECT_EQ(charset_to_utf8("\x93\xFA\x93", "shift_jis"),
              "\xE6\x97\xA5\xEF\xBF\xBD");  // truncated
    EXPECT_EQ(charset_to_utf8("a\x80"
                              "b",
                              "euc-kr"),
              "a\xEF\xBF\xBD"
              "b");
}

TEST(MimeDecode, Utf8Validation) {
    EXPECT_TRUE(is_valid_utf8("plain \xC3\xA9 \xF0\x9F\x8E\x89"));
    for (auto bad : {"\xC0\xAF"sv, "\xE0\x80\xAF"sv, "\xED\xA0\x80"sv, "\xF4\x90\x80\x80"sv,
                     "\xC3"sv, "\x80"sv, "\xFE"sv})
        EXPECT_FALSE(is_valid_utf8(bad));
    EXPECT_EQ(sanitize_utf8("a\xC3(b\xF0\x9F\x8E\x89"), "a\xEF\xBF\xBD(b\xF0\x9F\x8E\x89");
}

TEST(MimeDecode, EncodedWords) {
    EXPECT_EQ(decode_header_value("=?UTF-8?B?Q2Fmw6k=?="), "Caf\xC3\xA9");
    EXPECT_EQ(decode_header_value(" =?iso-8859-1?q?J=F6rg?= Meyer"), " J\xC3\xB6rg Meyer");
    // Whitespace (folding too) between adjacent encoded-words is dropped, not between others.
    EXPECT_EQ(decode_header_value("=?utf-8?q?a?= \r\n =?utf-8?q?b?= c =?utf-8?q?d?="), "ab c d");
    EXPECT_EQ(decode_header_value("=?utf-8?q?a?= =?iso-8859-1?q?=E9?="), "a\xC3\xA9");
    // A character split across two encoded-words.
    EXPECT_EQ(decode_header_value("=?utf-8?B?w6nw?= =?utf-8?B?n46J?="), "\xC3\xA9\xF0\x9F\x8E\x89");
    EXPECT_EQ(decode_header_value("=?utf-8*en?q?lang?="), "lang");  // RFC 2231 language
    EXPECT_EQ(decode_header_value("=?x-unknown?q?keep?= =?utf-8?q?x?="), "=?x-unknown?q?keep?=x");
    EXPECT_EQ(decode_header_value("=?utf-8?x?bad?= =?utf-8?q?open"),
              "=?utf-8?x?bad?= =?utf-8?q?open");
    EXPECT_EQ(decode_header_value("a=?utf-8?q?b?=c"), "abc");  // not separated: decoded anyway
    EXPECT_EQ(decode_header_value("raw UTF-8 \xC3\xA9 stays"), "raw UTF-8 \xC3\xA9 stays");
    EXPECT_EQ(decode_header_value("raw latin1 \xE9"), "raw latin1 \xEF\xBF\xBD");
    EXPECT_EQ(decode_header_value("=??q?x?= =?a?b?="), "=??q?x?= =?a?b?=");
    EXPECT_EQ(decode_header_value("=?utf-8?q?a b?="), "a b");
}

TEST(MimeDecode, EncodedWordsOfTestdata) {
    std::string raw = load("encoded_words.eml");
    Message m = parse(raw);
    auto field = [&](std::string_view name) {
        const Header* h = m.root.header(name);
        EXPECT_NE(h, nullptr) << name;
        return h ? decode_header_value(h->value) : std::string();
    };
    EXPECT_EQ(field("From"), " J\xC3\xB6rg M\xC3\xBCller <joerg@example.de>");
    EXPECT_EQ(field("To"),
              " \xD0\x98\xD0\xB2\xD0\xB0\xD0\xBD \xD0\x9F\xD0\xB5\xD1\x82\xD1\x80\xD0\xBE\xD0\xB2"
              " <ivan@example.ru>, \xE7\x8E\x8B\xE5\xB0\x8F\xE6\x98\x8E <wang@example.cn>");
    EXPECT_EQ(field("Subject"),
              " Gr\xC3\xBC\xC3\x9F"
              "e \xE2\x80\x94 \xE2\x9C\x93 \xF0\x9F\x8E\x89");
    EXPECT_EQ(field("X-Latin1"), " Caf\xC3\xA9 cr\xC3\xA8me and plain");
    EXPECT_EQ(field("X-Koi8"),
              " \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82, \xD0\xBC\xD0\xB8\xD1\x80");
    EXPECT_EQ(field("X-GB2312"), " \xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C");
    const std::string japanese =
        " \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE4\xBB\xB6\xE5\x90\x8D";
    EXPECT_EQ(field("X-ISO2022JP"), japanese);
    EXPECT_EQ(field("X-ShiftJIS"), japanese);
    EXPECT_EQ(field("X-Windows1251"),
              " \xD0\x97\xD0\xB4\xD1\x80\xD0\xB0\xD0\xB2\xD1\x81\xD1\x82\xD0\xB2\xD1\x83\xD0\xB9"
              "\xD1\x82\xD0\xB5");
    EXPECT_EQ(field("X-Unknown"), " =?x-no-such-charset?q?keep_me?=but decode me");
    EXPECT_EQ(field("X-Malformed"), " =?utf-8?q?unterminated and =?utf-8?x?bad?= words");
}

TEST(MimeDecode, BodyForBinary) {
    std::string raw = "Content-Transfer-Encoding: BASE64\r\n\r\nSGk=\r\n";
    Message m = parse(raw);
    EXPECT_EQ(decode_body(m.root, raw).data, "Hi");
    std::string qp = "Content-Transfer-Encoding: Quoted-Printable\r\n\r\n=41=\r\nB";
    Message q = parse(qp);
    EXPECT_EQ(decode_body(q.root, qp).data, "AB");
    for (auto cte : {"7bit", "8BIT", "binary", ""}) {
        std::string r = std::string("Content-Transfer-Encoding: ") + cte + "\r\n\r\n=41";
        Message p = parse(r);
        EXPECT_EQ(decode_body(p.root, r).data, "=41") << cte;
    }
    std::string unknown = "Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin";
    Message u = parse(unknown);
    Decoded d = decode_body(u.root, unknown);
    EXPECT_TRUE(d.unknown_encoding);
    EXPECT_TRUE(d.data.empty());
    EXPECT_EQ(u.root.transfer_encoding(), Encoding::Unknown);
}

RC_GTEST_PROP(MimeDecode, Base64RoundTrip, (const std::string& data, std::uint8_t width)) {
    static const char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string enc;
    for (std::size_t i = 0; i < data.size(); i += 3) {
        std::uint32_t n = static_cast<unsigned char>(data[i]) << 16;
        if (i + 1 < data.size()) n |= static_cast<unsigned char>(data[i + 1]) << 8;
        if (i + 2 < data.size()) n |= static_cast<unsigned char>(data[i + 2]);
        enc += kAlphabet[(n >> 18) & 63];
        enc += kAlphabet[(n >> 12) & 63];
        enc += i + 1 < data.size() ? kAlphabet[(n >> 6) & 63] : '=';
        enc += i + 2 < data.size() ? kAlphabet[n & 63] : '=';
    }
    std::string wrapped;  // line breaks anywhere must not matter
    std::size_t w = 1 + width % 80;
    for (std::size_t i = 0; i < enc.size(); i += w)
        wrapped += enc.substr(i, w) + "\r\n";
    RC_ASSERT(decode_base64(wrapped) == data);
}

RC_GTEST_PROP(MimeDecode, QuotedPrintableRoundTrip, (const std::string& data)) {
    std::string enc;
    std::size_t col = 0;
    for (char c : data) {
        auto u = static_cast<unsigned char>(c);
        char buf[4];
        if (u > 32 && u < 127 && c != '=') {
            enc += c;
            ++col;
        } else {
            std::snprintf(buf, sizeof buf, "=%02X", u);
            enc += buf;
            col += 3;
        }
        if (col >= 70) {
            enc += "=\r\n";
            col = 0;
        }
    }
    RC_ASSERT(decode_quoted_printable(enc) == data);
}

TEST(MimeDecode, Base64Lines) {
    EXPECT_EQ(encode_base64_lines(""), "");
    EXPECT_EQ(encode_base64_lines("f"), "Zg==");
    EXPECT_EQ(encode_base64_lines("fo"), "Zm8=");
    EXPECT_EQ(encode_base64_lines("foo"), "Zm9v");
    std::string big(57 * 2 + 1, '\xff');  // 57 octets fill one 76-character line
    auto e = encode_base64_lines(big);
    EXPECT_EQ(e.substr(76, 2), "\r\n");
    EXPECT_EQ(e.substr(154, 2), "\r\n");
    EXPECT_FALSE(e.ends_with("\r\n"));
    EXPECT_EQ(decode_base64(e), big);
}

// imaptest's append-binary: a literal8 message whose body is binary with a NUL.
TEST(MimeDecode, ConvertBinaryParts) {
    std::string body("\0-\xe4\n\r\n\n", 7);
    std::string raw =
        "From: user@domain.org\r\nContent-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: binary\r\n\r\n" +
        body;
    auto c = convert_binary_parts(raw);
    ASSERT_TRUE(c);
    EXPECT_EQ(*c,
              "From: user@domain.org\r\nContent-Type: application/octet-stream\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\n" +
                  encode_base64_lines(body));
    auto m = parse(*c);
    auto d = decode_body(m.root, *c);
    EXPECT_EQ(d.data, body);

    // Nothing binary: stored as sent.
    EXPECT_FALSE(convert_binary_parts("Subject: x\r\n\r\nhello\r\n"));

    // In a multipart: only the NUL-carrying 8bit part and the binary part change; a part
    // without Content-Transfer-Encoding gets the field before its blank line.
    const std::string nul(1, '\0');
    std::string multi =
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nplain text\r\n"
        "--b\r\nContent-Type: application/x-a\r\n\r\na" +
        nul +
        "b\r\n"
        "--b\r\nContent-Transfer-Encoding: BINARY\r\n\r\n\x01\x02\r\n"
        "--b--\r\n";
    auto mc = convert_binary_parts(multi);
    ASSERT_TRUE(mc);
    EXPECT_EQ(*mc,
              "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
              "--b\r\nContent-Type: text/plain\r\n\r\nplain text\r\n"
              "--b\r\nContent-Type: application/x-a\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\n" +
                  encode_base64_lines("a" + nul + "b") +
                  "\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                  encode_base64_lines("\x01\x02") + "\r\n--b--\r\n");
    auto mm = parse(*mc);
    ASSERT_EQ(mm.root.children.size(), 3u);
    EXPECT_EQ(decode_body(mm.root.children[1], *mc).data, "a" + nul + "b");
    EXPECT_EQ(decode_body(mm.root.children[2], *mc).data, "\x01\x02");
}
