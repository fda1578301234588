// net/tls.h: TLS contexts for the listeners (OpenSSL 3 through Boost.Asio) and the development
// certificate behind `millipost-server cert --self-signed`.
#pragma once
#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>

namespace millipost::net {

// A server context for `cert` (a PEM chain, leaf first) and `key` (PEM): TLS 1.2 and 1.3 only,
// no compression, no renegotiation. Throws std::runtime_error naming the file and OpenSSL's
// reason when either cannot be loaded or the key does not match the certificate.
std::shared_ptr<boost::asio::ssl::context> make_server_context(const std::string& cert,
                                                               const std::string& key);

struct SelfSigned {
    std::string cert;  // path of the certificate (PEM); also the CA a client trusts
    std::string key;   // path of the private key (PEM, unencrypted, mode 0600)
};

// Writes a self-signed EC P-256 key and certificate for development into `dir` (created if
// missing) as cert.pem and key.pem: CN `cn`, SAN DNS:localhost, DNS:`cn`, IP:127.0.0.1, IP:::1,
// valid 825 days. Throws std::runtime_error on failure.
SelfSigned write_self_signed(const std::string& dir, const std::string& cn = "localhost");

// OpenSSL's queued errors as one line (and the queue cleared), for logs and exceptions.
std::string openssl_errors();

}  // namespace millipost::net
