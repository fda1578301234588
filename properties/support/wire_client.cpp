// support/wire_client.cpp: the blocking test client over POSIX sockets and poll(2) (see
// wire_client.h).
#include "support/wire_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <utility>

namespace millipost::props {
namespace {

using Clock = std::chrono::steady_clock;

// Replies and response lines longer than this are a broken server, not a slow one.
constexpr std::size_t kMaxLine = 1 << 20;

std::string errno_text(const std::string& what) {
    return what + ": " + std::strerror(errno);
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(s[i])) !=
            std::tolower(static_cast<unsigned char>(prefix[i])))
            return false;
    return true;
}

}  // namespace

std::string SmtpReply::text() const {
    std::string out;
    for (auto& l : lines) {
        if (!out.empty()) out += " | ";
        out += l;
    }
    return out;
}

WireClient::WireClient(std::uint16_t port, std::chrono::milliseconds timeout,
                       std::shared_ptr<WireTap> tap)
    : tap_(std::move(tap)), timeout_(timeout) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw WireError(errno_text("socket"));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // A loopback connect either succeeds or is refused at once; no deadline needed.
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        auto msg = errno_text("connect to 127.0.0.1:" + std::to_string(port));
        close();
        throw WireError(msg);
    }
}

WireClient::~WireClient() {
    close();
}

WireClient::WireClient(WireClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      tap_(std::move(other.tap_)),
      timeout_(other.timeout_),
      buf_(std::move(other.buf_)) {}

WireClient& WireClient::operator=(WireClient&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
        tap_ = std::move(other.tap_);
        timeout_ = other.timeout_;
        buf_ = std::move(other.buf_);
    }
    return *this;
}

void WireClient::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        tap_closed();
    }
    fd_ = -1;
    buf_.clear();
}

// Tells the tap once that the connection is over.
void WireClient::tap_closed() {
    if (tap_) tap_->closed();
    tap_.reset();
}

void WireClient::send(std::string_view bytes) {
    if (fd_ < 0) throw WireError("send on a closed connection");
    auto deadline = Clock::now() + timeout_;
    while (!bytes.empty()) {
        auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            if (tap_) tap_->sent(bytes.substr(0, static_cast<std::size_t>(n)));
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) throw WireError(errno_text("send"));
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) throw WireError("send: peer does not read (timeout)");
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, static_cast<int>(left.count()));
    }
}

// Reads whatever is available into buf_, waiting up to the timeout for something.
void WireClient::fill() {
    if (fd_ < 0) throw WireError("read on a closed connection");
    pollfd p{fd_, POLLIN, 0};
    int r;
    do {
        r = ::poll(&p, 1, static_cast<int>(timeout_.count()));
    } while (r < 0 && errno == EINTR);
    if (r < 0) throw WireError(errno_text("poll"));
    if (r == 0)
        throw WireError("timeout: no reply within " + std::to_string(timeout_.count()) +
                        " ms (have \"" + buf_ + "\")");
    char chunk[16384];
    auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0) throw WireError(errno_text("recv"));
    if (n == 0) {
        tap_closed();
        throw WireError("connection closed by peer (have \"" + buf_ + "\")");
    }
    if (tap_) tap_->received(std::string_view(chunk, static_cast<std::size_t>(n)));
    buf_.append(chunk, static_cast<std::size_t>(n));
}

std::string WireClient::read_line() {
    std::size_t scanned = 0;
    while (true) {
        auto lf = buf_.find('\n', scanned);
        if (lf != std::string::npos) {
            if (lf == 0 || buf_[lf - 1] != '\r')
                throw WireError("bare LF in \"" + buf_.substr(0, lf) + "\"");
            std::string line = buf_.substr(0, lf - 1);
            buf_.erase(0, lf + 1);
            if (line.find('\r') != std::string::npos)
                throw WireError("bare CR in \"" + line + "\"");
            return line;
        }
        scanned = buf_.size();
        if (buf_.size() > kMaxLine) throw WireError("line longer than 1 MiB");
        fill();
    }
}

bool WireClient::wait_closed() {
    if (fd_ < 0 || !buf_.empty()) return false;
    pollfd p{fd_, POLLIN, 0};
    int r;
    do {
        r = ::poll(&p, 1, static_cast<int>(timeout_.count()));
    } while (r < 0 && errno == EINTR);
    if (r <= 0) return false;  // still open after the deadline
    char c;
    auto n = ::recv(fd_, &c, 1, 0);
    if (n > 0) {
        if (tap_) tap_->received(std::string_view(&c, 1));
        buf_.push_back(c);
        return false;
    }
    bool closed = n == 0 || errno == ECONNRESET;
    if (closed) tap_closed();
    return closed;
}

SmtpReply WireClient::read_smtp_reply() {
    SmtpReply reply;
    while (true) {
        auto line = read_line();
        // Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF
        if (line.size() < 3 || !std::isdigit(static_cast<unsigned char>(line[0])) ||
            !std::isdigit(static_cast<unsigned char>(line[1])) ||
            !std::isdigit(static_cast<unsigned char>(line[2])) || line[0] < '2' || line[0] > '5')
            throw WireError("malformed SMTP reply line \"" + line + "\"");
        int code = std::stoi(line.substr(0, 3));
        if (reply.code != 0 && code != reply.code)
            throw WireError("SMTP reply changes code mid-reply: \"" + line + "\"");
        reply.code = code;
        if (line.size() == 3) {
            reply.lines.emplace_back();
            return reply;
        }
        if (line[3] != ' ' && line[3] != '-')
            throw WireError("malformed SMTP reply separator in \"" + line + "\"");
        reply.lines.push_back(line.substr(4));
        if (line[3] == ' ') return reply;
    }
}

Pop3Status WireClient::read_pop3_status() {
    auto line = read_line();
    if (line == "+OK") return {true, ""};
    if (line == "-ERR") return {false, ""};
    if (line.rfind("+OK ", 0) == 0) return {true, line.substr(4)};
    if (line.rfind("-ERR ", 0) == 0) return {false, line.substr(5)};
    throw WireError("malformed POP3 status line \"" + line + "\"");
}

std::string WireClient::read_pop3_multiline() {
    std::string out;
    while (true) {
        auto line = read_line();
        if (line == ".") return out;
        if (!line.empty() && line[0] == '.') line.erase(0, 1);  // RFC 1939 §3 byte-stuffing
        out += line;
        out += "\r\n";
    }
}

std::string smtp_data_block(std::string_view message) {
    std::string out;
    out.reserve(message.size() + message.size() / 32 + 8);
    bool line_start = true;
    for (char c : message) {
        if (line_start && c == '.') out.push_back('.');
        out.push_back(c);
        line_start = c == '\n';
    }
    if (!message.empty() && !(message.size() >= 2 && message.substr(message.size() - 2) == "\r\n"))
        out += "\r\n";
    out += ".\r\n";
    return out;
}

std::string strip_received(std::string_view stored) {
    if (!iequals_prefix(stored, "Received:"))
        throw WireError("message does not start with a Received: field");
    std::size_t pos = 0;
    do {
        auto crlf = stored.find("\r\n", pos);
        if (crlf == std::string_view::npos) throw WireError("Received: field without CRLF");
        pos = crlf + 2;
    } while (pos < stored.size() && (stored[pos] == ' ' || stored[pos] == '\t'));
    return std::string(stored.substr(pos));
}

std::string top_of(std::string_view message, std::size_t lines) {
    std::string out;
    bool in_body = false;
    std::size_t body_lines = 0;
    std::size_t pos = 0;
    while (pos < message.size()) {
        if (in_body && body_lines >= lines) break;
        auto crlf = message.find("\r\n", pos);
        auto end = crlf == std::string_view::npos ? message.size() : crlf;
        auto line = message.substr(pos, end - pos);
        out.append(line);
        out.append("\r\n");
        if (in_body)
            ++body_lines;
        else if (line.empty())
            in_body = true;
        pos = crlf == std::string_view::npos ? message.size() : crlf + 2;
    }
    return out;
}

std::vector<std::string> split_words(std::string_view s) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (true) {
        auto sp = s.find(' ', pos);
        out.emplace_back(s.substr(pos, sp == std::string_view::npos ? s.npos : sp - pos));
        if (sp == std::string_view::npos) return out;
        pos = sp + 1;
    }
}

}  // namespace millipost::props
