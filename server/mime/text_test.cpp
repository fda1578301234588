// mime/text_test.cpp: search text: headers and text parts decoded to UTF-8 from every charset in
// testdata/charsets.eml, HTML reduced to text, encapsulated messages, the size cap.
#include "mime/text.h"
#include "mime/test_support.h"

#include "mime/decode.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

using namespace millipost::mime;
using namespace millipost::mime::testing;

namespace {

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST(MimeText, EveryBodyCharsetToUtf8) {
    std::string raw = load("charsets.eml");
    SearchText t = extract_text(parse(raw));
    EXPECT_TRUE(is_valid_utf8(t.body));
    for (
        const char* s : {
            "\xD0\xA1\xD1\x8A\xD0\xB5\xD1\x88\xD1\x8C \xD0\xB6\xD0\xB5 "
            "\xD0\xB5\xD1\x89\xD1\x91",  // koi8-r
            "Za\xC5\xBC\xC3\xB3\xC5\x82\xC4\x87 g\xC4\x99\xC5\x9Bl\xC4\x85 ja\xC5\xBA\xC5\x84",  // iso-8859-2 qp
            "Na\xC3\xAFve caf\xC3\xA9 \xE2\x80\x94 \xE2\x80\x9Cquoted\xE2\x80\x9D \xE2\x82\xAC"
            "5",  // cp1252
            "\xE3\x81\x84\xE3\x82\x8D\xE3\x81\xAF\xE3\x81\xAB\xE3\x81\xBB\xE3\x81\xB8\xE3\x81"
            "\xA8",                                                                      // sjis
            "\xE8\x89\xB2\xE3\x81\xAF\xE5\x8C\x82\xE3\x81\xB8\xE3\x81\xA9",              // euc-jp
            "\xE3\x82\x8F\xE3\x81\x8B\xE3\x82\x88\xE3\x81\x9F\xE3\x82\x8C\xE3\x81\x9D",  // 2022-jp
            "\xE6\x88\x91\xE8\x83\xBD\xE5\x90\x9E\xE4\xB8\x8B\xE7\x8E\xBB\xE7\x92\x83",  // gb2312
            "\xCE\x9E\xCE\xB5\xCF\x83\xCE\xBA\xCE\xB5\xCF\x80\xCE\xAC\xCE\xB6\xCF\x89",  // greek
                                                                                         // qp
        })
        EXPECT_TRUE(contains(t.body, s)) << s << "\nin\n" << t.body;
    EXPECT_TRUE(contains(t.header, "Subject: Body charsets\n"));
}

TEST(MimeText, HeadersDecoded) {
    SearchText t = extract_text(parse(load("encoded_words.eml")));
    EXPECT_TRUE(contains(t.header, "From: J\xC3\xB6rg M\xC3\xBCller <joerg@example.de>\n"));
    EXPECT_TRUE(contains(t.header, "X-Koi8: \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82"));
    EXPECT_TRUE(contains(t.body,
                         "Body in UTF-8: Gr\xC3\xBC\xC3\x9F"
                         "e"));
    EXPECT_TRUE(is_valid_utf8(t.header));
}

TEST(MimeText, AlternativePartsAndHtml) {
    SearchText t = extract_text(parse(load("nested_alternative.eml")));
    EXPECT_TRUE(contains(t.body, "The report is attached. Caf\xC3\xA9 at 10?"));  // plain, qp
    EXPECT_TRUE(contains(t.body, "The report is attached. Caf\xC3\xA9 at 10 & later?"));  // html
    EXPECT_FALSE(contains(t.body, "color: red"));  // style content
    EXPECT_FALSE(contains(t.body, "<p>"));
    EXPECT_FALSE(contains(t.body, "JVBERi0"));  // the PDF attachment is no text
    EXPECT_TRUE(contains(t.header, "Subject: Quarterly report with attachment\n"));
}

TEST(MimeText, EncapsulatedMessagesAreSearchedToo) {
    SearchText t = extract_text(parse(load("forwarded.eml")));
    EXPECT_TRUE(contains(t.body, "See the message below."));
    EXPECT_TRUE(contains(t.body, "From: J\xC3\xB6rg Meyer <joerg@example.de>\n"));
    EXPECT_TRUE(contains(t.body,
                         "Gr\xC3\xBC\xC3\x9F"
                         "e aus M\xC3\xBCnchen"));           // latin-1, 8bit
    EXPECT_TRUE(contains(t.body, "Original message body"));  // base64 html
    EXPECT_TRUE(contains(t.body, "Subject: Short note\n"));
    EXPECT_FALSE(contains(t.header, "Short note"));
}

TEST(MimeText, HtmlToText) {
    EXPECT_EQ(html_to_text("<p>Hello&nbsp;<b>W</b>orld</p><p>a &lt; b &amp;&amp; c &gt; d</p>"),
              "Hello World\na < b && c > d");
    EXPECT_EQ(html_to_text("<script>var x = '<p>';</script>text<!-- <p>hidden</p> -->more"),
              "textmore");
    EXPECT_EQ(html_to_text("<STYLE type=x>p{}</STYLE>x"), "x");
    EXPECT_EQ(html_to_text("&#233;&#xE9;&#x1F389;&bogus;&#0;"),
              "\xC3\xA9\xC3\xA9\xF0\x9F\x8E\x89&bogus;\xEF\xBF\xBD");
    EXPECT_EQ(html_to_text("1 < 2 and x<y"), "1 < 2 and x<y");
    EXPECT_EQ(html_to_text("a<br>b<br/>c<td>d</td>"), "a\nb\nc d");
    EXPECT_EQ(html_to_text("unclosed <a href='x"), "unclosed <a href='x");
    EXPECT_EQ(html_to_text("<script>never closed"), "");
}

TEST(MimeText, BodyCapAndUnknownCharsets) {
    std::string raw = "Content-Type: text/plain; charset=x-unknown\r\n\r\n\xC3\xA9t\xC3\xA9 \xFF";
    SearchText t = extract_text(parse(raw));
    EXPECT_EQ(t.body, "\xC3\xA9t\xC3\xA9 \xEF\xBF\xBD\n");  // treated as UTF-8, sanitized
    SearchText capped = extract_text(parse(raw), 2);
    EXPECT_EQ(capped.body, "\xC3\xA9");
    SearchText cut = extract_text(parse(raw), 1);
    EXPECT_EQ(cut.body, "");  // never half a character
}
