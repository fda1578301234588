// net/tls_test.cpp: TLS contexts, the self-signed certificate, and a Connection switching to TLS
// on loopback: STARTTLS-style discard of pipelined input, reads over TLS, the tls-exporter
// channel binding (RFC 9266) as both ends compute it, and a failed handshake.
#include "net/tls.h"
#include "net/server.h"
#include "util/limits.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <random>

namespace millipost::net {
namespace {

namespace ssl = asio::ssl;

struct TempDir {
    std::string path;
    TempDir() {
        std::random_device rd;
        path = (std::filesystem::temp_directory_path() /
                ("millipost-tls-test-" + std::to_string(rd())))
                   .string();
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

std::string hex(const std::string& bytes) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += d[c >> 4];
        out += d[c & 15];
    }
    return out;
}

TEST(Tls, SelfSignedLoadsAndBadFilesAreRefused) {
    TempDir dir;
    auto a = write_self_signed(dir.path + "/a", "mail.example");
    auto b = write_self_signed(dir.path + "/b");
    EXPECT_NE(make_server_context(a.cert, a.key), nullptr);
    EXPECT_EQ(std::filesystem::status(a.key).permissions() & std::filesystem::perms::others_read,
              std::filesystem::perms::none);
    // A key that is not the certificate's, a missing file, a file that is not PEM.
    EXPECT_THROW(make_server_context(a.cert, b.key), std::runtime_error);
    EXPECT_THROW(make_server_context(dir.path + "/absent.pem", a.key), std::runtime_error);
    std::ofstream(dir.path + "/garbage.pem") << "not a certificate\n";
    EXPECT_THROW(make_server_context(dir.path + "/garbage.pem", a.key), std::runtime_error);
    try {
        make_server_context(dir.path + "/garbage.pem", a.key);
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("garbage.pem"), std::string::npos) << e.what();
    }
}

// The server side: reads one line in the clear, switches to TLS (dropping whatever came after
// that line), then answers "<exporter hex or none> <first line read over TLS>\n".
class TlsServer {
  public:
    explicit TlsServer(std::shared_ptr<ssl::context> ctx,
                       std::chrono::steady_clock::duration handshake = limits::kTlsHandshakeTimeout)
        : server_(1, 1, 100) {
        Handler h = [ctx, handshake](std::shared_ptr<Connection> conn) -> awaitable<void> {
            return session(std::move(conn), ctx, handshake);
        };
        server_.start({{"tls", "127.0.0.1", 0, h}});
    }
    ~TlsServer() { server_.stop(std::chrono::seconds(2)); }
    unsigned short port() const { return server_.port("tls"); }

  private:
    static awaitable<std::string> line(Connection& c) {
        for (;;) {
            auto in = c.input();
            auto pos = in.find('\n');
            if (pos != std::string_view::npos) {
                std::string l(in.substr(0, pos));
                c.consume(pos + 1);
                co_return l;
            }
            if (!co_await c.fill(std::chrono::seconds(5))) co_return std::string("<closed>");
        }
    }
    static awaitable<void> session(std::shared_ptr<Connection> conn,
                                   std::shared_ptr<ssl::context> ctx,
                                   std::chrono::steady_clock::duration handshake) {
        std::string first = co_await line(*conn);
        if (first != "STARTTLS") co_return;
        if (!co_await conn->send("GO\n")) co_return;
        bool up = co_await conn->start_tls(ctx, handshake);
        if (!up) {
            EXPECT_FALSE(conn->tls_active());
            EXPECT_NE(conn->closed(), Connection::Closed::No);
            co_return;
        }
        EXPECT_TRUE(conn->tls_active());
        std::string next = co_await line(*conn);
        auto exp = conn->tls_exporter();
        std::string reply = (exp ? hex(*exp) : std::string("none")) + " " + next + "\n";
        co_await conn->send(reply);
    }
    Server server_;
};

struct ClientResult {
    std::string reply;
    std::string exporter;  // as the client computes it (hex), or "none"
};

ClientResult run_client(unsigned short port, const std::string& ca, int max_version) {
    asio::io_context io;
    tcp::socket sock(io);
    sock.connect({asio::ip::make_address("127.0.0.1"), port});
    // STARTTLS and an injected line in one write: the injected one must never be read.
    asio::write(sock, asio::buffer(std::string("STARTTLS\nINJECTED\n")));
    asio::streambuf buf;
    asio::read_until(sock, buf, '\n');  // "GO"
    ssl::context ctx(ssl::context::tls_client);
    ctx.load_verify_file(ca);
    ctx.set_verify_mode(ssl::verify_peer);
    SSL_CTX_set_max_proto_version(ctx.native_handle(), max_version);
    ssl::stream<tcp::socket&> tls(sock, ctx);
    SSL_set1_host(tls.native_handle(), "localhost");
    tls.handshake(ssl::stream_base::client);
    asio::write(tls, asio::buffer(std::string("HELLO\n")));
    asio::streambuf reply;
    asio::read_until(tls, reply, '\n');
    ClientResult r;
    std::istream is(&reply);
    std::getline(is, r.reply);
    if (SSL_version(tls.native_handle()) == TLS1_3_VERSION) {
        std::string out(32, '\0');
        static constexpr char kLabel[] = "EXPORTER-Channel-Binding";
        EXPECT_EQ(SSL_export_keying_material(tls.native_handle(),
                                             reinterpret_cast<unsigned char*>(out.data()), 32,
                                             kLabel, sizeof kLabel - 1, nullptr, 0, 0),
                  1);
        r.exporter = hex(out);
    } else {
        r.exporter = "none";
    }
    return r;
}

TEST(Tls, StartTlsDiscardsPipelinedInputAndExportsChannelBinding) {
    TempDir dir;
    auto cert = write_self_signed(dir.path);
    TlsServer server(make_server_context(cert.cert, cert.key));
    auto r = run_client(server.port(), cert.cert, TLS1_3_VERSION);
    ASSERT_EQ(r.reply.size(), 64 + 1 + 5) << r.reply;
    // Both ends agree on the 32-byte exporter; the line read over TLS is the client's first
    // TLS line, not the one injected in the clear.
    EXPECT_EQ(r.reply, r.exporter + " HELLO");
}

TEST(Tls, NoExporterOverTls12) {
    TempDir dir;
    auto cert = write_self_signed(dir.path);
    TlsServer server(make_server_context(cert.cert, cert.key));
    auto r = run_client(server.port(), cert.cert, TLS1_2_VERSION);
    EXPECT_EQ(r.reply, "none HELLO");
}

TEST(Tls, FailedHandshakeClosesTheConnection) {
    TempDir dir;
    auto cert = write_self_signed(dir.path);
    TlsServer server(make_server_context(cert.cert, cert.key));
    asio::io_context io;
    tcp::socket sock(io);
    sock.connect({asio::ip::make_address("127.0.0.1"), server.port()});
    asio::write(sock, asio::buffer(std::string("STARTTLS\n")));
    asio::streambuf buf;
    asio::read_until(sock, buf, '\n');
    asio::write(sock, asio::buffer(std::string("this is not a ClientHello\r\n\r\n")));
    boost::system::error_code ec;
    std::array<char, 4096> data;
    for (int i = 0; i < 10 && !ec; ++i)  // an alert perhaps, then EOF
        sock.read_some(asio::buffer(data), ec);
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
    // And the server still serves.
    auto r = run_client(server.port(), cert.cert, TLS1_3_VERSION);
    EXPECT_EQ(r.reply, r.exporter + " HELLO");
}

// limits::kTlsHandshakeTimeout crossed (shortened here): a client that says STARTTLS and then
// nothing is disconnected.
TEST(Tls, SilentHandshakeTimesOut) {
    TempDir dir;
    auto cert = write_self_signed(dir.path);
    TlsServer server(make_server_context(cert.cert, cert.key), std::chrono::milliseconds(200));
    asio::io_context io;
    tcp::socket sock(io);
    sock.connect({asio::ip::make_address("127.0.0.1"), server.port()});
    timeval tv{5, 0};  // a hang fails the test instead of blocking it
    setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    asio::write(sock, asio::buffer(std::string("STARTTLS\n")));
    asio::streambuf buf;
    asio::read_until(sock, buf, '\n');
    auto start = std::chrono::steady_clock::now();
    boost::system::error_code ec;
    std::array<char, 64> data;
    sock.read_some(asio::buffer(data), ec);
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

}  // namespace
}  // namespace millipost::net
