// auth/password_test.cpp: SCRAM-SHA-256 secrets: verification, RFC 7677 vector, bad input.
#include "auth/password.h"

#include <gtest/gtest.h>

using namespace millipost::auth;

TEST(Password, VerifiesOnlyTheRightPassword) {
    auto s = make_secret("pencil", 4096);
    EXPECT_TRUE(verify_password(s, "pencil"));
    EXPECT_FALSE(verify_password(s, "pencil "));
    EXPECT_FALSE(verify_password(s, ""));
    EXPECT_EQ(s.find("pencil"), std::string::npos);
    EXPECT_NE(make_secret("pencil", 4096), s);  // random salt
}

// For a login that may not exist: only a usable secret and the right password succeed; no
// secret and an unusable one (the postmaster's "!") fail, whatever the password, even the
// dummy's own.
TEST(Password, LoginPasswordFailsWithoutAUsableSecret) {
    auto s = make_secret("pencil", 4096);
    EXPECT_TRUE(verify_login_password(&s, "pencil"));
    EXPECT_FALSE(verify_login_password(&s, "pen"));
    const std::string unusable = "!";
    for (auto* stored : {static_cast<const std::string*>(nullptr), &unusable})
        for (auto pw : {"", "!", "pencil", "millipost-dummy-password"})
            EXPECT_FALSE(verify_login_password(stored, pw)) << pw;
}

TEST(Password, MatchesRfc7677Vector) {
    // RFC 7677 §3's account: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
    // StoredKey and ServerKey computed independently (Python hashlib/hmac).
    auto salt = base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
    ASSERT_TRUE(salt);
    auto s = make_secret_with_salt("pencil", *salt, 4096);
    EXPECT_EQ(
        s,
        "$scram-sha-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
    EXPECT_TRUE(verify_password(s, "pencil"));
}

TEST(Password, SyntheticSecretsAreMarkedAndCheap) {
    auto s = make_synthetic_secret("pw", 42);
    auto parsed = parse_secret(s);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->scheme, "scram-sha-256-synthetic");
    EXPECT_EQ(parsed->iterations, 1u);
    EXPECT_TRUE(verify_password(s, "pw"));
    EXPECT_EQ(make_synthetic_secret("pw", 42), s);  // deterministic
}

// The synthetic path computes HMAC itself (for speed); verify_password uses OpenSSL's PBKDF2
// and HMAC, so agreement here means the same SCRAM keys, long keys (hashed first) included.
TEST(Password, SyntheticSecretsAgreeWithTheGenericPath) {
    for (std::string pw : {std::string("a"), std::string("pencil"), std::string("pässwörd-ü"),
                           std::string(64, 'k'), std::string(65, 'k'), std::string(200, 'x')}) {
        for (std::uint64_t seed : {0ull, 1ull, 0xFFFFFFFFFFFFFFFFull}) {
            auto s = make_synthetic_secret(pw, seed);
            EXPECT_TRUE(verify_password(s, pw)) << pw.size() << " " << seed;
            EXPECT_FALSE(verify_password(s, pw + "x"));
        }
    }
}

TEST(Password, RejectsMalformedSecrets) {
    for (const char* bad : {"", "pencil", "$scram-sha-256$", "$md5$1$a$b$c",
                            "$scram-sha-256$0$AAAA$AAAA$AAAA", "$scram-sha-256$x$AAAA$AAAA$AAAA"}) {
        EXPECT_FALSE(parse_secret(bad)) << bad;
        EXPECT_FALSE(verify_password(bad, "pencil")) << bad;
    }
}

TEST(Base64, RoundTrips) {
    for (const std::string& s :
         std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
        auto d = base64_decode(base64_encode(s));
        ASSERT_TRUE(d);
        EXPECT_EQ(*d, s);
    }
    EXPECT_FALSE(base64_decode("abc"));
}
