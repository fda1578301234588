// auth/ldap_directory_test.cpp: RFC 4515 escaping of logins in the LDAP user filter (the
// directory itself is tested against a real slapd in pybindings/tests/test_ldap.py).
#include "auth/ldap_directory.h"

#include <gtest/gtest.h>

using millipost::auth::ldap_filter_escape;
using millipost::auth::ldap_user_filter;

TEST(LdapFilterEscape, PlainLoginsAreUnchanged) {
    EXPECT_EQ(ldap_filter_escape("alice"), "alice");
    EXPECT_EQ(ldap_filter_escape("bob.smith@example.org"), "bob.smith@example.org");
    EXPECT_EQ(ldap_filter_escape(""), "");
}

TEST(LdapFilterEscape, SpecialCharactersAreHexEscaped) {
    // RFC 4515 §3: the four characters and NUL must be escaped.
    EXPECT_EQ(ldap_filter_escape("*"), "\\2a");
    EXPECT_EQ(ldap_filter_escape("("), "\\28");
    EXPECT_EQ(ldap_filter_escape(")"), "\\29");
    EXPECT_EQ(ldap_filter_escape("\\"), "\\5c");
    EXPECT_EQ(ldap_filter_escape(std::string("a\0b", 3)), "a\\00b");
    // RFC 4515's own example: "Parens R Us (for all your parenthetical needs)".
    EXPECT_EQ(ldap_filter_escape("Parens R Us (for all your parenthetical needs)"),
              "Parens\\20R\\20Us\\20\\28for\\20all\\20your\\20parenthetical\\20needs\\29");
    // Bytes outside printable ASCII too (escaping any octet is allowed): UTF-8 stays exact.
    EXPECT_EQ(ldap_filter_escape("j\xc3\xb6rg"), "j\\c3\\b6rg");
    EXPECT_EQ(ldap_filter_escape("a\r\nb\x7f"), "a\\0d\\0ab\\7f");
}

TEST(LdapFilterEscape, InjectionAttemptsStayOneValue) {
    EXPECT_EQ(ldap_user_filter("(uid=%u)", "*"), "(uid=\\2a)");
    EXPECT_EQ(ldap_user_filter("(uid=%u)", ")(uid=*"), "(uid=\\29\\28uid=\\2a)");
    EXPECT_EQ(ldap_user_filter("(uid=%u)", "bob)(|(uid=*"), "(uid=bob\\29\\28|\\28uid=\\2a)");
    EXPECT_EQ(ldap_user_filter("(uid=%u)", "x\\2a"), "(uid=x\\5c2a)");
}

TEST(LdapUserFilter, EveryPlaceholderIsReplaced) {
    EXPECT_EQ(ldap_user_filter("(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%u)))", "a*"),
              "(&(objectClass=inetOrgPerson)(|(uid=a\\2a)(mail=a\\2a)))");
    // A % not followed by u is kept; the login's own "%u" is not expanded again.
    EXPECT_EQ(ldap_user_filter("(cn=100%)(uid=%u)", "%u"), "(cn=100%)(uid=%u)");
}

// A property: whatever the login, the escaped value holds no filter metacharacter, and
// unescaping it gives the login back.
TEST(LdapFilterEscape, RoundTripsEveryByte) {
    std::string all;
    for (int c = 0; c < 256; ++c)
        all += static_cast<char>(c);
    auto e = ldap_filter_escape(all);
    EXPECT_EQ(e.find_first_of("*()\0", 0, 4), std::string::npos);
    std::string back;
    for (std::size_t i = 0; i < e.size(); ++i) {
        if (e[i] == '\\') {
            back += static_cast<char>(std::stoi(e.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            back += e[i];
        }
    }
    EXPECT_EQ(back, all);
}
