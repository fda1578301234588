// auth/password.h: password secrets in SCRAM-SHA-256 form (RFC 5802, RFC 7677), never cleartext.
// A stored secret is "$scram-sha-256$<iterations>$<salt b64>$<StoredKey b64>$<ServerKey b64>":
// enough to verify a password (PLAIN, USER/PASS) and to run SCRAM without knowing it.
// Synthetic population users use the scheme "scram-sha-256-synthetic" with one iteration:
// cheap to make in bulk and marked so that no one mistakes it for a real account.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace millipost::auth {

inline constexpr unsigned kDefaultIterations = 10000;

struct ScramSecret {
    std::string scheme;  // "scram-sha-256" or "scram-sha-256-synthetic"
    unsigned iterations = 0;
    std::string salt;        // raw bytes
    std::string stored_key;  // raw 32 bytes
    std::string server_key;  // raw 32 bytes
};

// Makes a stored secret with a random 16-byte salt.
std::string make_secret(std::string_view password, unsigned iterations = kDefaultIterations);
// The same with a given salt (tests, imports).
std::string make_secret_with_salt(std::string_view password, std::string_view salt,
                                  unsigned iterations);
// The cheap form for synthetic users: the salt is derived from `salt_seed`, one iteration.
std::string make_synthetic_secret(std::string_view password, std::uint64_t salt_seed);

std::optional<ScramSecret> parse_secret(std::string_view stored);
// Constant-time check of a cleartext password against a stored secret.
bool verify_password(std::string_view stored, std::string_view password);
// verify_password for a login that may not exist (`stored` null) or whose secret is unusable
// (the postmaster's "!"): those are checked against a dummy secret of the default cost and
// fail, so that the time a refusal takes does not tell which logins exist.
bool verify_login_password(const std::string* stored, std::string_view password);

// The primitives of SCRAM (RFC 5802 §2.2), for auth/sasl.cpp.
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string sha256(std::string_view data);

std::string base64_encode(std::string_view raw);
std::optional<std::string> base64_decode(std::string_view b64);

}  // namespace millipost::auth
