// auth/password.cpp: SCRAM-SHA-256 secrets over OpenSSL's PBKDF2 and HMAC (see password.h).
#include "auth/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace millipost::auth {
std::string hmac_sha256(std::string_view key, std::string_view data) {
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

namespace {

std::string hmac(std::string_view key, std::string_view data) {
    return hmac_sha256(key, data);
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

// HMAC-SHA-256 for synthetic secrets, made by the million when a population is provisioned:
// OpenSSL 3's one-shot HMAC() and PKCS5_PBKDF2_HMAC() look the algorithm up and build a MAC
// context on every call, which costs several times the hashing. Here the digest is fetched once
// and a context is reused per thread; the result is the same HMAC (RFC 2104), which the
// password tests check against verify_password's generic path.
class FastHmac {
  public:
    FastHmac() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {
        if (!md_ || !ctx_) throw std::runtime_error("SHA-256 unavailable");
    }
    ~FastHmac() {
        EVP_MD_CTX_free(ctx_);
        EVP_MD_free(md_);
    }
    FastHmac(const FastHmac&) = delete;
    FastHmac& operator=(const FastHmac&) = delete;

    void sha(std::string_view a, std::string_view b, unsigned char* out) {
        unsigned len = 0;
        if (EVP_DigestInit_ex2(ctx_, md_, nullptr) != 1 ||
            EVP_DigestUpdate(ctx_, a.data(), a.size()) != 1 ||
            (!b.empty() && EVP_DigestUpdate(ctx_, b.data(), b.size()) != 1) ||
            EVP_DigestFinal_ex(ctx_, out, &len) != 1)
            throw std::runtime_error("SHA-256 failed");
    }
    std::string hmac(std::string_view key, std::string_view data) {
        unsigned char k[64] = {};
        if (key.size() > sizeof k) {
            sha(key, {}, k);
        } else {
            std::copy(key.begin(), key.end(), k);
        }
        char ipad[64], opad[64];
        for (int i = 0; i < 64; ++i) {
            ipad[i] = static_cast<char>(k[i] ^ 0x36);
            opad[i] = static_cast<char>(k[i] ^ 0x5c);
        }
        unsigned char inner[32], out[32];
        sha(std::string_view(ipad, 64), data, inner);
        sha(std::string_view(opad, 64), std::string_view(reinterpret_cast<char*>(inner), 32), out);
        return std::string(reinterpret_cast<char*>(out), 32);
    }

  private:
    EVP_MD* md_;
    EVP_MD_CTX* ctx_;
};

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
    // One PBKDF2 iteration is one HMAC of the salt and INT(1) (RFC 8018 §5.2); then the SCRAM
    // keys (RFC 5802 §3), as format() computes them.
    thread_local FastHmac h;
    std::string_view s(salt, 8);
    auto salted = h.hmac(password, std::string(s) + std::string("\0\0\0\1", 4));
    unsigned char stored[32];
    h.sha(h.hmac(salted, "Client Key"), {}, stored);
    auto server_key = h.hmac(salted, "Server Key");
    std::string r = "$scram-sha-256-synthetic$1$";
    r.append(base64_encode(s)).append("$");
    r.append(base64_encode(std::string_view(reinterpret_cast<char*>(stored), 32)));
    r.append("$").append(base64_encode(server_key));
    return r;
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

bool verify_login_password(const std::string* stored, std::string_view password) {
    static const std::string dummy = make_secret("millipost-dummy-password");
    bool known = stored && parse_secret(*stored).has_value();
    bool ok = verify_password(known ? *stored : dummy, password);
    return known && ok;
}

}  // namespace millipost::auth
