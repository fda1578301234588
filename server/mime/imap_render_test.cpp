// mime/imap_render_test.cpp: ENVELOPE, BODY and BODYSTRUCTURE byte for byte, IMAP string
// quoting and literals, and well-formed output for every testdata message.
#include "mime/imap_render.h"
#include "mime/test_support.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

using namespace millipost::mime;
using namespace millipost::mime::testing;

namespace {

std::string str(std::string_view s, RenderOptions o = {}) {
    std::string out;
    append_string(out, s, o);
    return out;
}

// Parentheses balance outside quoted strings and literals; strings and literals are complete.
bool balanced(std::string_view s) {
    int depth = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '"') {
            for (++i; i < s.size() && s[i] != '"'; ++i)
                if (s[i] == '\\') ++i;
            if (i >= s.size()) return false;
        } else if (c == '{') {
            std::size_t close = s.find('}', i);
            if (close == std::string_view::npos || s.substr(close + 1, 2) != "\r\n") return false;
            std::size_t n = std::stoul(std::string(s.substr(i + 1, close - i - 1)));
            i = close + 2 + n;
            if (i > s.size()) return false;
            --i;
        } else if (c == '(') {
            ++depth;
        } else if (c == ')') {
            if (--depth < 0) return false;
        }
    }
    return depth == 0;
}

const std::string kSmall = crlf(
    "From: \"A \\\"B\\\"\" <a@x.example>\n"
    "Subject: hi\n"
    "Content-Type: multipart/mixed; boundary=b\n"
    "\n"
    "--b\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-ID: <c1>\n"
    "\n"
    "hello\n"
    "--b\n"
    "Content-Type: message/rfc822\n"
    "Content-Disposition: attachment; filename=m.eml\n"
    "\n"
    "Subject: inner\n"
    "Date: d\n"
    "\n"
    "inner\n"
    "--b--\n");

}  // namespace

TEST(MimeRender, Strings) {
    EXPECT_EQ(str("plain"), "\"plain\"");
    EXPECT_EQ(str(""), "\"\"");
    EXPECT_EQ(str("a \"q\" \\ b"), "\"a \\\"q\\\" \\\\ b\"");
    EXPECT_EQ(str("two\r\nlines"), "{10}\r\ntwo\r\nlines");
    EXPECT_EQ(str("caf\xC3\xA9"), "{5}\r\ncaf\xC3\xA9");  // IMAP4rev1: no 8-bit in quoted
    RenderOptions utf8;
    utf8.utf8 = true;
    EXPECT_EQ(str("caf\xC3\xA9", utf8), "\"caf\xC3\xA9\"");
    EXPECT_EQ(str("caf\xE9", utf8), "{4}\r\ncaf\xE9");  // not UTF-8: still a literal
    EXPECT_EQ(str(std::string("a\0b", 3)),
              "{3}\r\na\x80"
              "b");
    RenderOptions short_quoted;
    short_quoted.max_quoted = 3;
    EXPECT_EQ(str("abc", short_quoted), "\"abc\"");
    EXPECT_EQ(str("abcd", short_quoted), "{4}\r\nabcd");
    std::string out;
    append_nstring(out, std::nullopt);
    EXPECT_EQ(out, "NIL");
}

TEST(MimeRender, BodyAndBodystructure) {
    Message m = parse(kSmall);
    EXPECT_EQ(render_body(m.root, false),
              "((\"text\" \"plain\" (\"charset\" \"utf-8\") \"<c1>\" NIL \"7bit\" 5 0)"
              "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 32 "
              "(\"d\" \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
              "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0) 3) \"mixed\")");
    EXPECT_EQ(
        render_body(m.root, true),
        "((\"text\" \"plain\" (\"charset\" \"utf-8\") \"<c1>\" NIL \"7bit\" 5 0 NIL NIL NIL NIL)"
        "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 32 "
        "(\"d\" \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL) 3 "
        "NIL (\"attachment\" (\"filename\" \"m.eml\")) NIL NIL) "
        "\"mixed\" (\"boundary\" \"b\") NIL NIL NIL)");
}

TEST(MimeRender, Envelope) {
    Message m = parse(kSmall);
    const std::string from = "((\"A \\\"B\\\"\" NIL \"a\" \"x.example\"))";
    EXPECT_EQ(render_envelope(make_envelope(m.root)),
              "(NIL \"hi\" " + from + " " + from + " " + from + " NIL NIL NIL NIL NIL)");

    std::string raw = crlf(
        "Date: Mon, 6 Jan 2025 10:00:00 +0100\nSubject: =?utf-8?q?x?=\n folded\n"
        "From: a@x.example\nSender: s@x.example\nReply-To: G:;\nTo: t@x.example, u@y.example\n"
        "Cc: <@r.example:c@x.example>\nBcc: b@x.example\nIn-Reply-To: <p@x>\nMessage-ID: "
        "<m@x>\n\n");
    Message e = parse(raw);
    EXPECT_EQ(render_envelope(make_envelope(e.root)),
              "(\"Mon, 6 Jan 2025 10:00:00 +0100\" \"=?utf-8?q?x?= folded\" "
              "((NIL NIL \"a\" \"x.example\")) ((NIL NIL \"s\" \"x.example\")) "
              "((NIL NIL \"G\" NIL)(NIL NIL NIL NIL)) "
              "((NIL NIL \"t\" \"x.example\")(NIL NIL \"u\" \"y.example\")) "
              "((NIL \"@r.example\" \"c\" \"x.example\")) ((NIL NIL \"b\" \"x.example\")) "
              "\"<p@x>\" \"<m@x>\")");
}

TEST(MimeRender, ExtensionFieldsAndDefaults) {
    std::string raw = crlf(
        "Content-Type: application/pdf; name*=utf-8''%C3%A9.pdf\n"
        "Content-Transfer-Encoding: BASE64\n"
        "Content-Description: the file\n"
        "Content-MD5: abc=\n"
        "Content-Disposition: Attachment\n"
        "Content-Language: en-GB (British), fr\n"
        "Content-Location: http://x.example/f\n\nQUJD\n");
    Message m = parse(raw);
    EXPECT_EQ(
        render_body(m.root, true),
        "(\"application\" \"pdf\" (\"name*\" \"utf-8''%C3%A9.pdf\") NIL \"the file\" \"BASE64\" 6 "
        "\"abc=\" (\"Attachment\" NIL) (\"en-GB\" \"fr\") \"http://x.example/f\")");
    Message plain = parse("\r\nbody\r\n");
    EXPECT_EQ(
        render_body(plain.root, true),
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL)");
    Message html = parse("Content-Type: TEXT/HTML; format=flowed\r\n\r\n<p>");
    EXPECT_EQ(render_body(html.root, false),
              "(\"TEXT\" \"HTML\" (\"format\" \"flowed\" \"charset\" \"us-ascii\") NIL NIL "
              "\"7bit\" 3 0)");
}

TEST(MimeRender, DegradedStructures) {
    // A multipart without parts gets one empty text/plain part (body-type-mpart needs one).
    Message none = parse("Content-Type: multipart/mixed; boundary=b\r\n\r\nno parts\r\n");
    EXPECT_EQ(render_body(none.root, false),
              "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")");
    // An encoded message/rfc822 has no parsed message: it is written as an opaque leaf.
    Message enc =
        parse("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nQQ==");
    EXPECT_EQ(render_body(enc.root, false),
              "(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 4)");
    // Parts beyond the depth limit likewise.
    Limits limits;
    limits.max_depth = 0;
    Message deep =
        parse("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--", limits);
    EXPECT_EQ(render_body(deep.root, false),
              "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")");
}

TEST(MimeRender, EveryTestdataMessageIsWellFormed) {
    int files = 0;
    for (const auto& e : std::filesystem::directory_iterator(MIME_TESTDATA)) {
        if (e.path().extension() != ".eml") continue;
        ++files;
        std::ifstream f(e.path(), std::ios::binary);
        std::string raw{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
        Message m = parse(raw);
        for (bool utf8 : {false, true}) {
            RenderOptions o;
            o.utf8 = utf8;
            EXPECT_TRUE(balanced(render_body(m.root, true, o))) << e.path();
            EXPECT_TRUE(balanced(render_body(m.root, false, o))) << e.path();
            EXPECT_TRUE(balanced(render_envelope(make_envelope(m.root), o))) << e.path();
        }
    }
    EXPECT_GE(files, 10);
}

TEST(MimeRender, NestedAlternativeBodystructure) {
    std::string raw = load("nested_alternative.eml");
    Message m = parse(raw);
    EXPECT_EQ(
        render_body(m.root, true),
        "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 63 4 NIL NIL "
        "NIL NIL)"
        "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 174 1 NIL NIL NIL "
        "NIL)"
        " \"alternative\" (\"boundary\" \"inner=_2\") NIL NIL NIL)"
        "(\"application\" \"pdf\" (\"name\" \"report.pdf\") \"<part3@example.org>\" \"Q4 report\" "
        "\"base64\" 710 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" "
        "(\"attachment\" (\"filename\" \"report.pdf\" \"size\" \"518\")) (\"en\" \"de\") "
        "\"http://example.org/report.pdf\")"
        " \"mixed\" (\"boundary\" \"outer=_1\") NIL NIL NIL)");
}
