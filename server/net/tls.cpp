// net/tls.cpp: server TLS contexts and the self-signed development certificate (see tls.h).
#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

namespace millipost::net {

namespace ssl = boost::asio::ssl;

std::string openssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

std::shared_ptr<ssl::context> make_server_context(const std::string& cert, const std::string& key) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    // RFC 8996 deprecates TLS 1.0 and 1.1; RFC 8314 asks for 1.2 or later.
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_options(
        native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(native, cert.c_str()) != 1)
        throw std::runtime_error("TLS certificate " + cert + ": " + openssl_errors());
    if (SSL_CTX_use_PrivateKey_file(native, key.c_str(), SSL_FILETYPE_PEM) != 1)
        throw std::runtime_error("TLS key " + key + ": " + openssl_errors());
    if (SSL_CTX_check_private_key(native) != 1)
        throw std::runtime_error("TLS key " + key + " does not match certificate " + cert + ": " +
                                 openssl_errors());
    return ctx;
}

namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("self-signed certificate: " + what + ": " + openssl_errors());
}

void add_ext(X509* cert, int nid, const std::string& value) {
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    if (!ext) fail("extension " + value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

void write_pem(const std::string& path, mode_t mode, bool key, EVP_PKEY* pkey, X509* cert) {
    // Created with its final mode (and fchmod'ed in case it existed), so that a private key is
    // never readable by others, whatever the umask.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0 || ::fchmod(fd, mode) != 0) {
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("cannot write " + path);
    }
    std::FILE* f = ::fdopen(fd, "w");
    if (!f) {
        ::close(fd);
        throw std::runtime_error("cannot write " + path);
    }
    int ok = key ? PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr)
                 : PEM_write_X509(f, cert);
    bool closed = std::fclose(f) == 0;
    if (ok != 1 || !closed) fail("writing " + path);
}

}  // namespace

SelfSigned write_self_signed(const std::string& dir, const std::string& cn) {
    std::filesystem::create_directories(dir);
    ERR_clear_error();
    PkeyPtr pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (!pkey) fail("key generation");
    X509Ptr cert(X509_new());
    if (!cert) fail("X509_new");
    X509_set_version(cert.get(), 2);  // v3: extensions
    // A random 64-bit serial: clients cache certificates by issuer and serial.
    ASN1_INTEGER* serial = X509_get_serialNumber(cert.get());
    BIGNUM* bn = BN_new();
    if (!bn || BN_rand(bn, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        !BN_to_ASN1_INTEGER(bn, serial)) {
        BN_free(bn);
        fail("serial");
    }
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60 * 60);  // an hour of clock skew
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 825L * 24 * 60 * 60);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>("millipost development"), -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509_set_pubkey(cert.get(), pkey.get());
    // Its own trust anchor: clients are given this file as their CA (curl --cacert,
    // ssl.create_default_context(cafile=...)), so it is a CA that may also serve.
    add_ext(cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), NID_key_usage, "critical,digitalSignature,keyCertSign");
    add_ext(cert.get(), NID_ext_key_usage, "serverAuth");
    add_ext(cert.get(), NID_subject_key_identifier, "hash");
    std::string san = "DNS:localhost,IP:127.0.0.1,IP:::1";
    if (cn != "localhost") san = "DNS:" + cn + "," + san;
    add_ext(cert.get(), NID_subject_alt_name, san);
    if (X509_sign(cert.get(), pkey.get(), EVP_sha256()) == 0) fail("signing");

    SelfSigned out{dir + "/cert.pem", dir + "/key.pem"};
    write_pem(out.key, 0600, true, pkey.get(), nullptr);
    write_pem(out.cert, 0644, false, nullptr, cert.get());
    return out;
}

}  // namespace millipost::net
