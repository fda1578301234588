// mime/envelope_test.cpp: RFC 5322 address lists (Appendix A examples, obsolete forms, broken
// input) and ENVELOPE data with RFC 9051's Sender/Reply-To defaults.
#include "mime/envelope.h"
#include "mime/test_support.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <fstream>
#include <iterator>

using namespace millipost::mime;
using namespace millipost::mime::testing;

namespace {

std::optional<std::string> nil() {
    return std::nullopt;
}
Address addr(std::optional<std::string> name, std::string mailbox, std::string host,
             std::optional<std::string> adl = std::nullopt) {
    return Address{std::move(name), std::move(adl), std::move(mailbox), std::move(host)};
}
Address group(std::string name) {
    return Address{nil(), nil(), std::move(name), nil()};
}
Address end() {
    return Address{};
}

}  // namespace

TEST(MimeEnvelope, Rfc5322AppendixA) {
    EXPECT_EQ(
        parse_address_list(" Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>"),
        (std::vector<Address>{addr("Mary Smith", "mary", "x.test"),
                              addr(nil(), "jdoe", "example.org"), addr("Who?", "one", "y.test")}));
    EXPECT_EQ(
        parse_address_list("<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>"),
        (std::vector<Address>{addr(nil(), "boss", "nil.test"),
                              addr("Giant; \"Big\" Box", "sysservices", "example.net")}));
    EXPECT_EQ(
        parse_address_list("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;"),
        (std::vector<Address>{group("A Group"), addr("Ed Jones", "c", "a.test"),
                              addr(nil(), "joe", "where.test"), addr("John", "jdoe", "one.test"),
                              end()}));
    EXPECT_EQ(parse_address_list("Undisclosed recipients:;"),
              (std::vector<Address>{group("Undisclosed recipients"), end()}));
    EXPECT_EQ(parse_address_list("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>"),
              (std::vector<Address>{addr("Pete", "pete", "silly.test")}));
    EXPECT_EQ(parse_address_list("Joe Q. Public <john.q.public@example.com>"),
              (std::vector<Address>{addr("Joe Q. Public", "john.q.public", "example.com")}));
}

TEST(MimeEnvelope, ObsoleteAndOddForms) {
    EXPECT_EQ(parse_address_list("<@relay1.example,@relay2.example:route@example.com>"),
              (std::vector<Address>{
                  addr(nil(), "route", "example.com", "@relay1.example,@relay2.example")}));
    EXPECT_EQ(parse_address_list("a@b.example, , ,c@d.example"),  // obs-addr-list empty members
              (std::vector<Address>{addr(nil(), "a", "b.example"), addr(nil(), "c", "d.example")}));
    EXPECT_EQ(parse_address_list("john . doe @ example . org"),
              (std::vector<Address>{addr(nil(), "john.doe", "example.org")}));
    EXPECT_EQ(parse_address_list("\"quoted local\"@example.org (Real Name)"),
              (std::vector<Address>{addr("Real Name", "quoted local", "example.org")}));
    EXPECT_EQ(parse_address_list("user@[192.0.2.1]"),
              (std::vector<Address>{addr(nil(), "user", "[192.0.2.1]")}));
    EXPECT_EQ(parse_address_list("=?utf-8?q?J=C3=B6rg?= <j@x.example>"),  // not decoded
              (std::vector<Address>{addr("=?utf-8?q?J=C3=B6rg?=", "j", "x.example")}));
    EXPECT_EQ(parse_address_list("J\xC3\xB6rg <j\xC3\xB6rg@b\xC3\xBC"
                                 "cher.example>"),  // RFC 6532
              (std::vector<Address>{addr("J\xC3\xB6rg", "j\xC3\xB6rg",
                                         "b\xC3\xBC"
                                         "cher.example")}));
    EXPECT_EQ(parse_address_list("localonly"),
              (std::vector<Address>{addr(nil(), "localonly", std::string(kMissingDomain))}));
    EXPECT_EQ(parse_address_list("<@x.example>"),
              (std::vector<Address>{addr(nil(), std::string(kMissingMailbox), "x.example")}));
    EXPECT_EQ(parse_address_list("<>"), std::vector<Address>{});
    EXPECT_EQ(parse_address_list("\"Nobody\" <>"),
              (std::vector<Address>{
                  addr("Nobody", std::string(kMissingMailbox), std::string(kMissingDomain))}));
    EXPECT_EQ(parse_address_list("Team: a@x.example"),  // the group is closed at the end
              (std::vector<Address>{group("Team"), addr(nil(), "a", "x.example"), end()}));
    EXPECT_EQ(parse_address_list("a@x.example; b@y.example"),  // a stray ';' outside any group
              (std::vector<Address>{addr(nil(), "a", "x.example"), addr(nil(), "b", "y.example")}));
    EXPECT_EQ(parse_address_list("Folded\r\n Name <f@x.example>"),
              (std::vector<Address>{addr("Folded Name", "f", "x.example")}));
    EXPECT_EQ(parse_address_list("<a@x.example> (trailing comment)"),
              (std::vector<Address>{addr("trailing comment", "a", "x.example")}));
    EXPECT_EQ(parse_address_list(""), std::vector<Address>{});
    EXPECT_EQ(parse_address_list("  (just a comment)  "), std::vector<Address>{});
}

TEST(MimeEnvelope, GroupMarkers) {
    auto list = parse_address_list("G: a@x.example;");
    ASSERT_EQ(list.size(), 3u);
    EXPECT_TRUE(list[0].is_group_start());
    EXPECT_FALSE(list[1].is_group_start() || list[1].is_group_end());
    EXPECT_TRUE(list[2].is_group_end());
}

TEST(MimeEnvelope, MessageEnvelopeWithDefaults) {
    std::string raw = load("plain.eml");
    Message m = parse(raw);
    Envelope e = make_envelope(m.root);
    EXPECT_EQ(
        e.date,
        "Thu,      13        Feb          1969      23:32               -0330 (Newfoundland Time)");
    EXPECT_EQ(e.subject, "Plain message without MIME headers");
    EXPECT_EQ(e.from, (std::vector<Address>{addr("Pete", "pete", "silly.test")}));
    EXPECT_EQ(e.sender, e.from);    // absent
    EXPECT_EQ(e.reply_to, e.from);  // present but empty
    EXPECT_EQ(e.to,
              (std::vector<Address>{group("A Group"), addr("Chris Jones", "c", "public.example"),
                                    addr(nil(), "joe", "example.org"),
                                    addr("John", "jdoe", "one.test"), end()}));
    EXPECT_EQ(e.cc, (std::vector<Address>{group("Hidden recipients"), end()}));
    EXPECT_EQ(e.bcc, (std::vector<Address>{
                         addr(nil(), "route", "example.com", "@relay1.example,@relay2.example")}));
    EXPECT_EQ(e.in_reply_to, std::nullopt);
    EXPECT_EQ(e.message_id, "<testabcd.1234@silly.test>");
}

TEST(MimeEnvelope, EncapsulatedMessageHasItsOwnEnvelope) {
    std::string raw = load("forwarded.eml");
    Message m = parse(raw);
    Envelope outer = make_envelope(m.root);
    EXPECT_EQ(outer.subject, "Fwd: =?utf-8?q?Caf=C3=A9?= meeting");
    EXPECT_EQ(outer.in_reply_to, "<orig-1@example.org>");
    Envelope inner = make_envelope(m.root.children[1].children[0]);
    EXPECT_EQ(inner.from,
              (std::vector<Address>{addr("=?iso-8859-1?q?J=F6rg?= Meyer", "joerg", "example.de")}));
    EXPECT_EQ(inner.sender, (std::vector<Address>{addr(nil(), "secretary", "example.de")}));
    EXPECT_EQ(inner.reply_to, (std::vector<Address>{group("list"), addr(nil(), "a", "example.de"),
                                                    addr(nil(), "b", "example.de"), end()}));
    EXPECT_EQ(inner.message_id, "<orig-1@example.org>");
    Envelope none = make_envelope(parse("").root);
    EXPECT_FALSE(none.date || none.subject || none.message_id);
    EXPECT_TRUE(none.from.empty() && none.sender.empty() && none.reply_to.empty());
}

TEST(MimeEnvelope, EmptyFieldsAreNil) {
    std::string raw = "Date: \r\nSubject:\r\nMessage-ID:  \r\nIn-Reply-To:\r\n\r\n";
    Envelope e = make_envelope(parse(raw).root);
    EXPECT_FALSE(e.date);
    EXPECT_EQ(e.subject, "");  // present: an empty string
    EXPECT_FALSE(e.message_id);
    EXPECT_FALSE(e.in_reply_to);
}

// Whatever the input, the list is well formed: groups nest once, every address has a host,
// every group start has its end.
RC_GTEST_PROP(MimeEnvelope, AnyInputGivesWellFormedGroups, ()) {
    const auto text = *rc::gen::container<std::string>(
        rc::gen::element('a', 'b', '@', '.', ',', ';', ':', '<', '>', '"', '(', ')', '\\', ' ', '[',
                         ']', '\r', '\n', '\xC3', '\xA9'));
    bool open = false;
    for (const auto& a : parse_address_list(text)) {
        if (a.is_group_start()) {
            RC_ASSERT(!open);
            open = true;
        } else if (a.is_group_end()) {
            RC_ASSERT(open);
            open = false;
        } else {
            RC_ASSERT(a.host.has_value() && !a.host->empty());
            RC_ASSERT(a.mailbox.has_value() && !a.mailbox->empty());
        }
    }
    RC_ASSERT(!open);
}
