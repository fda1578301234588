// auth/sasl.cpp: the SASL mechanisms (see sasl.h).
#include "auth/sasl.h"

#include "auth/password.h"
#include "util/limits.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

namespace millipost::auth {

std::optional<std::string> sasl_base64_decode(std::string_view b64) {
    // Strict: the alphabet of RFC 4648 §4, padding only at the end. OpenSSL's decoder alone
    // would skip whitespace and take '=' in the middle.
    if (b64.size() % 4 != 0) return std::nullopt;
    std::size_t pad = 0;
    while (pad < 2 && pad < b64.size() && b64[b64.size() - 1 - pad] == '=')
        ++pad;
    for (std::size_t i = 0; i + pad < b64.size(); ++i) {
        char c = b64[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/';
        if (!ok) return std::nullopt;
    }
    return base64_decode(b64);
}

namespace {

using Error = SaslStep::Error;

// A password check that takes as long for an unknown login as for a known one (see
// verify_login_password).
bool check_password(const SecretLookup& lookup, const std::string& login,
                    std::string_view password) {
    auto secret = login.empty() ? std::nullopt : lookup(login);
    return verify_login_password(secret ? &*secret : nullptr, password);
}

// PLAIN's and LOGIN's last step: success, or why not.
SaslStep check_step(const SecretLookup& lookup, const PasswordCheck& check,
                    const std::string& login, std::string_view password) {
    auto v = check ? check(login, password)
                   : (check_password(lookup, login, password) ? PasswordVerdict::Ok
                                                              : PasswordVerdict::Invalid);
    if (v == PasswordVerdict::Unavailable)
        return SaslStep::fail(Error::Unavailable, "authentication service unavailable");
    if (v != PasswordVerdict::Ok)
        return SaslStep::fail(Error::Credentials, "invalid user name or password");
    return {SaslStep::Kind::Success, {}, Error::None, {}};
}

// PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd, in one message.
class Plain : public SaslMechanism {
  public:
    Plain(SecretLookup lookup, PasswordCheck check)
        : lookup_(std::move(lookup)), check_(std::move(check)) {}
    SaslStep step(std::string_view msg) override {
        if (done_) return SaslStep::fail(Error::Malformed, "unexpected PLAIN message");
        done_ = true;
        if (msg.size() > limits::kSaslMaxMessage)
            return SaslStep::fail(Error::TooLong, "PLAIN message too long");
        auto p1 = msg.find('\0');
        auto p2 = p1 == std::string_view::npos ? p1 : msg.find('\0', p1 + 1);
        if (p2 == std::string_view::npos || msg.find('\0', p2 + 1) != std::string_view::npos)
            return SaslStep::fail(Error::Malformed, "malformed PLAIN message");
        std::string authz(msg.substr(0, p1));
        login_ = std::string(msg.substr(p1 + 1, p2 - p1 - 1));
        auto password = msg.substr(p2 + 1);
        if (login_.empty() || password.empty())
            return SaslStep::fail(Error::Malformed, "empty user name or password");
        if (!authz.empty() && authz != login_)
            return SaslStep::fail(Error::Authorization, "authorization identity not allowed");
        auto result = check_step(lookup_, check_, login_, password);
        if (result.kind == SaslStep::Kind::Success) authzid_ = authz;
        return result;
    }

  private:
    SecretLookup lookup_;
    PasswordCheck check_;
    bool done_ = false;
};

// LOGIN (draft-murchison-sasl-login-00): "Username:" and "Password:" challenges. An initial
// response, when given, is the user name (RFC 4954 clients send `AUTH LOGIN <b64 user>`).
class Login : public SaslMechanism {
  public:
    Login(SecretLookup lookup, PasswordCheck check)
        : lookup_(std::move(lookup)), check_(std::move(check)) {}
    SaslStep start(const std::optional<std::string>& initial) override {
        if (!initial || initial->empty()) return SaslStep::challenge("Username:");
        return step(*initial);
    }
    SaslStep step(std::string_view msg) override {
        if (msg.size() > limits::kSaslMaxMessage)
            return SaslStep::fail(Error::TooLong, "LOGIN message too long");
        if (state_ == 0) {
            if (msg.empty()) return SaslStep::fail(Error::Malformed, "empty user name");
            login_ = std::string(msg);
            state_ = 1;
            return SaslStep::challenge("Password:");
        }
        if (state_ != 1) return SaslStep::fail(Error::Malformed, "unexpected LOGIN message");
        state_ = 2;
        return check_step(lookup_, check_, login_, msg);
    }

  private:
    SecretLookup lookup_;
    PasswordCheck check_;
    int state_ = 0;
};

// Constant-time equality of two byte strings (lengths are not secret).
bool equal_ct(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_bytes(std::size_t n) {
    std::string out(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
        throw std::runtime_error("RAND_bytes failed");
    return out;
}

// Splits "a=x,b=y" into attributes; empty on a malformed one (each is one letter, '=', value).
std::optional<std::vector<std::pair<char, std::string_view>>> attributes(std::string_view s) {
    std::vector<std::pair<char, std::string_view>> out;
    while (true) {
        auto comma = s.find(',');
        auto part = s.substr(0, comma);
        if (part.size() < 2 || part[1] != '=' || !std::isalpha(static_cast<unsigned char>(part[0])))
            return std::nullopt;
        out.emplace_back(part[0], part.substr(2));
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
    }
    return out;
}

// printable = %x21-2B / %x2D-7E (RFC 5802 §7: any printable ASCII but ',').
bool printable_nonce(std::string_view n) {
    return !n.empty() && std::all_of(n.begin(), n.end(),
                                     [](char c) { return c >= 0x21 && c <= 0x7e && c != ','; });
}

// SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677, RFC 9266).
class Scram : public SaslMechanism {
  public:
    Scram(SecretLookup lookup, SaslChannel channel, bool plus)
        : lookup_(std::move(lookup)), channel_(std::move(channel)), plus_(plus) {}

    SaslStep step(std::string_view msg) override {
        if (msg.size() > limits::kSaslMaxMessage)
            return SaslStep::fail(Error::TooLong, "SCRAM message too long");
        switch (state_) {
            case State::First:
                return first(msg);
            case State::Final:
                return final_message(msg);
            default:
                state_ = State::Done;
                return SaslStep::fail(Error::Malformed, "unexpected SCRAM message");
        }
    }

  private:
    enum class State { First, Final, Done };

    SaslStep fail(Error e, std::string why) {
        state_ = State::Done;
        return SaslStep::fail(e, std::move(why));
    }

    // client-first-message = gs2-header client-first-message-bare (RFC 5802 §7).
    SaslStep first(std::string_view msg) {
        // gs2-header = gs2-cbind-flag "," [authzid] ","
        auto c1 = msg.find(',');
        if (c1 == std::string_view::npos) return fail(Error::Malformed, "malformed GS2 header");
        auto c2 = msg.find(',', c1 + 1);
        if (c2 == std::string_view::npos) return fail(Error::Malformed, "malformed GS2 header");
        auto flag = msg.substr(0, c1);
        auto authz = msg.substr(c1 + 1, c2 - c1 - 1);
        gs2_header_ = std::string(msg.substr(0, c2 + 1));
        if (flag == "n") {
            if (plus_) return fail(Error::ChannelBinding, "channel binding required");
        } else if (flag == "y") {
            // The client could bind but believes the server cannot: if we do offer -PLUS
            // here, someone removed it from the list it saw (RFC 5802 §6).
            if (plus_ || channel_.plus_offered())
                return fail(Error::ChannelBinding, "channel binding downgrade detected");
        } else if (flag.substr(0, 2) == "p=") {
            if (!plus_)
                return fail(Error::ChannelBinding, "channel binding needs the -PLUS mechanism");
            if (flag.substr(2) != "tls-exporter")
                return fail(Error::ChannelBinding, "unsupported channel binding type");
            if (!channel_.tls_exporter)
                return fail(Error::ChannelBinding, "no channel binding data on this connection");
        } else {
            return fail(Error::Malformed, "malformed GS2 channel binding flag");
        }
        std::string authzid;
        if (!authz.empty()) {
            if (authz.substr(0, 2) != "a=") return fail(Error::Malformed, "malformed authzid");
            auto a = scram_unescape(authz.substr(2));
            if (!a || a->empty()) return fail(Error::Malformed, "malformed authzid");
            authzid = *a;
        }
        bare_ = std::string(msg.substr(c2 + 1));
        auto attrs = attributes(bare_);
        // [reserved-mext ","] username "," nonce ["," extensions]: an "m" (mandatory extension)
        // we do not know is an error (RFC 5802 §5.1).
        if (!attrs || attrs->size() < 2 || (*attrs)[0].first != 'n' || (*attrs)[1].first != 'r')
            return fail(Error::Malformed, "malformed client-first-message");
        auto user = scram_unescape((*attrs)[0].second);
        if (!user || user->empty() || user->size() > limits::kSaslMaxLogin)
            return fail(Error::Malformed, "malformed user name");
        login_ = *user;
        client_nonce_ = std::string((*attrs)[1].second);
        if (!printable_nonce(client_nonce_) || client_nonce_.size() > limits::kSaslMaxNonce)
            return fail(Error::Malformed, "malformed nonce");
        if (!authzid.empty() && authzid != login_)
            return fail(Error::Authorization, "authorization identity not allowed");
        authzid_ = authzid;

        auto stored = lookup_(login_);
        std::optional<ScramSecret> secret = stored ? parse_secret(*stored) : std::nullopt;
        if (secret) {
            secret_ = *secret;
        } else {
            // An unknown login gets a salt that looks real and stays the same across attempts
            // (derived from the login with a per-process key), so that the exchange does not
            // tell which logins exist; it fails at the proof.
            static const std::string key = random_bytes(32);
            secret_.salt = hmac_sha256(key, login_).substr(0, 16);
            secret_.iterations = kDefaultIterations;
            secret_.stored_key = random_bytes(32);
            secret_.server_key = random_bytes(32);
            unknown_ = true;
        }
        nonce_ =
            client_nonce_ + (channel_.fixed_server_nonce.empty() ? base64_encode(random_bytes(18))
                                                                 : channel_.fixed_server_nonce);
        server_first_ = "r=" + nonce_ + ",s=" + base64_encode(secret_.salt) +
                        ",i=" + std::to_string(secret_.iterations);
        state_ = State::Final;
        return SaslStep::challenge(server_first_);
    }

    // client-final-message = channel-binding "," nonce ["," extensions] "," proof.
    SaslStep final_message(std::string_view msg) {
        state_ = State::Done;
        auto p = msg.rfind(",p=");
        if (p == std::string_view::npos) return fail(Error::Malformed, "missing proof");
        auto without_proof = msg.substr(0, p);
        auto attrs = attributes(without_proof);
        if (!attrs || attrs->size() < 2 || (*attrs)[0].first != 'c' || (*attrs)[1].first != 'r')
            return fail(Error::Malformed, "malformed client-final-message");
        auto cbind = sasl_base64_decode((*attrs)[0].second);
        if (!cbind) return fail(Error::Malformed, "malformed channel binding");
        std::string expected = gs2_header_;
        if (plus_) expected += *channel_.tls_exporter;
        if (!equal_ct(*cbind, expected))
            return fail(Error::ChannelBinding, "channel binding mismatch");
        if ((*attrs)[1].second != nonce_) return fail(Error::Malformed, "nonce mismatch");
        auto proof = sasl_base64_decode(msg.substr(p + 3));
        if (!proof) return fail(Error::Malformed, "malformed proof");
        if (proof->size() != 32) return fail(Error::Credentials, "invalid proof");

        std::string auth_message = bare_ + "," + server_first_ + "," + std::string(without_proof);
        auto client_signature = hmac_sha256(secret_.stored_key, auth_message);
        std::string client_key(32, '\0');
        for (std::size_t i = 0; i < 32; ++i)
            client_key[i] = static_cast<char>((*proof)[i] ^ client_signature[i]);
        bool ok = equal_ct(sha256(client_key), secret_.stored_key);
        if (!ok || unknown_) return fail(Error::Credentials, "invalid user name or password");
        auto server_signature = hmac_sha256(secret_.server_key, auth_message);
        return {SaslStep::Kind::Success, "v=" + base64_encode(server_signature), Error::None, {}};
    }

    SecretLookup lookup_;
    SaslChannel channel_;
    bool plus_;
    State state_ = State::First;
    ScramSecret secret_;
    bool unknown_ = false;
    std::string gs2_header_, bare_, client_nonce_, nonce_, server_first_;
};

}  // namespace

std::optional<std::string> scram_unescape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == ',') return std::nullopt;
        if (s[i] != '=') {
            out += s[i];
            continue;
        }
        auto esc = s.substr(i, 3);
        if (esc == "=2C")
            out += ',';
        else if (esc == "=3D")
            out += '=';
        else
            return std::nullopt;
        i += 2;
    }
    return out;
}

bool sasl_is_plaintext(std::string_view mechanism) {
    return mechanism == "PLAIN" || mechanism == "LOGIN";
}

std::unique_ptr<SaslMechanism> make_sasl_mechanism(std::string_view name, SecretLookup lookup,
                                                   SaslChannel channel, PasswordCheck check) {
    if (name == "PLAIN") return std::make_unique<Plain>(std::move(lookup), std::move(check));
    if (name == "LOGIN") return std::make_unique<Login>(std::move(lookup), std::move(check));
    if (name == "SCRAM-SHA-256")
        return std::make_unique<Scram>(std::move(lookup), std::move(channel), false);
    if (name == "SCRAM-SHA-256-PLUS" && channel.tls_exporter)
        return std::make_unique<Scram>(std::move(lookup), std::move(channel), true);
    return nullptr;
}

std::vector<std::string> sasl_mechanisms(const SaslChannel& channel, bool plaintext_allowed,
                                         bool scram) {
    std::vector<std::string> out;
    if (scram && channel.tls_exporter) out.push_back("SCRAM-SHA-256-PLUS");
    if (scram) out.push_back("SCRAM-SHA-256");
    if (plaintext_allowed) {
        out.push_back("PLAIN");
        out.push_back("LOGIN");
    }
    return out;
}

}  // namespace millipost::auth
