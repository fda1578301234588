// auth/password.cpp: SCRAM-SHA-256 secrets over OpenSSL's PBKDF2 and HMAC (see password.h).
#include "auth/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <stdexcept>
#include <vector>

namespace millipost::auth {
namespace {

std::string hmac(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
    return std::string(reinterpret_cast<char*>(out), len);
}

std::string sha256(std::string_view data) {
    unsigned char out[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
    return std::string(reinterpret_cast<char*>(out), sizeof out);
}

std::string salted_password(std::string_view password, std::string_view salt, unsigned iters) {
    std::string out(32, '\0');
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()),
                          static_cast<int>(salt.size()), static_cast<int>(iters), EVP_sha256(), 32,
                          reinterpret_cast<unsigned char*>(out.data())) != 1)
        throw std::runtime_error("PBKDF2 failed");
    return out;
}

std::string format(std::string_view scheme, unsigned iters, std::string_view salt,
                   std::string_view password) {
    auto sp = salted_password(password, salt, iters);
    auto stored_key = sha256(hmac(sp, "Client Key"));
    auto server_key = hmac(sp, "Server Key");
    std::string r = "$";
    r.append(scheme).append("$").append(std::to_string(iters)).append("$");
    r.append(base64_encode(salt)).append("$").append(base64_encode(stored_key));
    r.append("$").append(base64_encode(server_key));
    return r;
}

}  // namespace

std::string base64_encode(std::string_view raw) {
    std::string out(4 * ((raw.size() + 2) / 3), '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(raw.data()),
                            static_cast<int>(raw.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<std::string> base64_decode(std::string_view b64) {
    if (b64.size() % 4 != 0) return std::nullopt;
    std::string out(3 * b64.size() / 4, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(b64.data()),
                            static_cast<int>(b64.size()));
    if (n < 0) return std::nullopt;
    std::size_t len = static_cast<std::size_t>(n);
    if (!b64.empty() && b64.back() == '=') --len;
    if (b64.size() > 1 && b64[b64.size() - 2] == '=') --len;
    out.resize(len);
    return out;
}

std::string make_secret(std::string_view password, unsigned iterations) {
    unsigned char salt[16];
    if (RAND_bytes(salt, sizeof salt) != 1) throw std::runtime_error("RAND_bytes failed");
    return format("scram-sha-256", iterations,
                  std::string_view(reinterpret_cast<char*>(salt), sizeof salt), password);
}

std::string make_secret_with_salt(std::string_view password, std::string_view salt,
                                  unsigned iterations) {
    return format("scram-sha-256", iterations, salt, password);
}

std::string make_synthetic_secret(std::string_view password, std::uint64_t salt_seed) {
    char salt[8];
    for (int i = 0; i < 8; ++i)
        salt[i] = static_cast<char>((salt_seed >> (8 * i)) & 0xff);
    return format("scram-sha-256-synthetic", 1, std::string_view(salt, 8), password);
}

std::optional<ScramSecret> parse_secret(std::string_view stored) {
    std::vector<std::string_view> parts;
    if (stored.empty() || stored.front() != '$') return std::nullopt;
    stored.remove_prefix(1);
    while (true) {
        auto d = stored.find('$');
        parts.push_back(stored.substr(0, d));
        if (d == std::string_view::npos) break;
        stored.remove_prefix(d + 1);
    }
    if (parts.size() != 5) return std::nullopt;
    ScramSecret s;
    s.scheme = std::string(parts[0]);
    if (s.scheme != "scram-sha-256" && s.scheme != "scram-sha-256-synthetic") return std::nullopt;
    try {
        s.iterations = static_cast<unsigned>(std::stoul(std::string(parts[1])));
    } catch (...) {
        return std::nullopt;
    }
    auto salt = base64_decode(parts[2]);
    auto sk = base64_decode(parts[3]);
    auto svk = base64_decode(parts[4]);
    if (!salt || !sk || !svk || sk->size() != 32 || svk->size() != 32 || s.iterations == 0)
        return std::nullopt;
    s.salt = *salt;
    s.stored_key = *sk;
    s.server_key = *svk;
    return s;
}

bool verify_password(std::string_view stored, std::string_view password) {
    auto s = parse_secret(stored);
    if (!s) return false;
    auto sp = salted_password(password, s->salt, s->iterations);
    auto stored_key = sha256(hmac(sp, "Client Key"));
    return CRYPTO_memcmp(stored_key.data(), s->stored_key.data(), 32) == 0;
}

}  // namespace millipost::auth
