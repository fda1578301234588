// support/imap_client.cpp: the property tests' IMAP client (see imap_client.h).
#include "support/imap_client.h"

#include "contracts/contract.h"
#include "support/transcript.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <utility>

namespace millipost::props::imap {
namespace {

using Clock = std::chrono::steady_clock;

// A response (with its literals) longer than this is a broken server, not a slow one.
constexpr std::size_t kMaxResponse = 64 << 20;

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The byte count of a literal announced at the end of `line` ("... {12}" or "{12+}"), if any.
std::optional<std::size_t> literal_at_end(std::string_view line) {
    if (line.empty() || line.back() != '}') return std::nullopt;
    auto open = line.rfind('{');
    if (open == std::string_view::npos) return std::nullopt;
    auto digits = line.substr(open + 1, line.size() - open - 2);
    if (!digits.empty() && digits.back() == '+') digits.remove_suffix(1);
    if (!all_digits(digits) || digits.size() > 12) return std::nullopt;
    return static_cast<std::size_t>(std::stoull(std::string(digits)));
}

class Parser {
  public:
    explicit Parser(std::string_view s) : s_(s) {}

    bool at_end() {
        skip_spaces();
        return pos_ >= s_.size();
    }
    void skip_spaces() {
        while (pos_ < s_.size() && s_[pos_] == ' ')
            ++pos_;
    }
    std::string_view rest() const { return s_.substr(std::min(pos_, s_.size())); }
    std::string word() {
        skip_spaces();
        auto start = pos_;
        while (pos_ < s_.size() && s_[pos_] != ' ')
            ++pos_;
        return std::string(s_.substr(start, pos_ - start));
    }

    Value value() {
        skip_spaces();
        if (pos_ >= s_.size()) fail("value expected");
        char c = s_[pos_];
        Value v;
        if (c == '(') {
            ++pos_;
            v.kind = Value::List;
            while (true) {
                skip_spaces();
                if (pos_ >= s_.size()) fail("unterminated list");
                if (s_[pos_] == ')') {
                    ++pos_;
                    return v;
                }
                v.items.push_back(value());
            }
        }
        if (c == '"') {
            ++pos_;
            v.kind = Value::String;
            while (true) {
                if (pos_ >= s_.size()) fail("unterminated quoted string");
                char q = s_[pos_++];
                if (q == '"') return v;
                if (q == '\\') {
                    if (pos_ >= s_.size()) fail("bad quoted escape");
                    q = s_[pos_++];
                    if (q != '"' && q != '\\') fail("bad quoted escape");
                }
                v.text.push_back(q);
            }
        }
        if (c == '{') {
            auto close = s_.find('}', pos_);
            if (close == std::string_view::npos) fail("bad literal");
            auto digits = s_.substr(pos_ + 1, close - pos_ - 1);
            if (!digits.empty() && digits.back() == '+') digits.remove_suffix(1);
            if (!all_digits(digits)) fail("bad literal length");
            auto n = static_cast<std::size_t>(std::stoull(std::string(digits)));
            if (s_.substr(close + 1, 2) != "\r\n" || close + 3 + n > s_.size())
                fail("literal shorter than announced");
            v.kind = Value::String;
            v.text = std::string(s_.substr(close + 3, n));
            pos_ = close + 3 + n;
            return v;
        }
        if (c == ')') fail("unexpected ')'");
        // An atom; a section "[...]" is part of it and may hold spaces and parentheses
        // (BODY[HEADER.FIELDS (FROM)]), a partial "<0.10>" follows it.
        auto start = pos_;
        while (pos_ < s_.size() && s_[pos_] != ' ' && s_[pos_] != '(' && s_[pos_] != ')') {
            if (s_[pos_] == '[') {
                auto close = s_.find(']', pos_);
                if (close == std::string_view::npos) fail("unterminated section");
                pos_ = close;
            }
            ++pos_;
        }
        v.text = std::string(s_.substr(start, pos_ - start));
        return v;
    }

    [[noreturn]] void fail(const std::string& what) const {
        throw ImapError("malformed response (" + what + " at " + std::to_string(pos_) +
                        "): " + std::string(s_));
    }

  private:
    std::string_view s_;
    std::size_t pos_ = 0;
};

}  // namespace

bool Value::is_atom(std::string_view a) const {
    return kind == Atom && upper(text) == upper(a);
}

std::uint64_t Value::number() const {
    if (kind != Atom || !all_digits(text) || text.size() > 19)
        throw ImapError("number expected, got " + show());
    return std::stoull(text);
}

std::string Value::show() const {
    if (kind == Atom) return text;
    if (kind == String) return "\"" + text + "\"";
    std::string out = "(";
    for (std::size_t i = 0; i < items.size(); ++i)
        out += (i ? " " : "") + items[i].show();
    return out + ")";
}

std::vector<std::string> Response::code_words() const {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < code.size()) {
        auto sp = code.find(' ', pos);
        if (sp == std::string::npos) sp = code.size();
        if (sp > pos) out.push_back(code.substr(pos, sp - pos));
        pos = sp + 1;
    }
    if (!out.empty()) out[0] = upper(out[0]);
    return out;
}

std::string Reply::show() const {
    std::string out;
    for (auto& r : untagged)
        out += r.raw + "\n";
    return out + done.raw;
}

Response parse_response(std::string raw) {
    Response r;
    r.raw = std::move(raw);
    Parser p(r.raw);
    r.tag = p.word();
    if (r.tag.empty()) p.fail("no tag");
    if (r.tag == "+") {
        r.name = "+";
        p.skip_spaces();
        r.text = std::string(p.rest());
        return r;
    }
    auto w = p.word();
    if (r.tag == "*" && all_digits(w)) {
        r.number = std::stoull(w);
        w = p.word();
    }
    r.name = upper(w);
    if (r.name.empty()) p.fail("no response name");
    if (r.is_status() || r.name == "PREAUTH") {
        p.skip_spaces();
        auto rest = p.rest();
        if (!rest.empty() && rest[0] == '[') {
            auto close = rest.find(']');
            if (close == std::string_view::npos) p.fail("unterminated response code");
            r.code = std::string(rest.substr(1, close - 1));
            rest.remove_prefix(close + 1);
            while (!rest.empty() && rest[0] == ' ')
                rest.remove_prefix(1);
        }
        r.text = std::string(rest);
        return r;
    }
    // CAPABILITY, FLAGS, SEARCH, STATUS, LIST, ENABLED, FETCH, EXISTS...: values to the end.
    while (!p.at_end())
        r.data.push_back(p.value());
    return r;
}

FetchItems fetch_items(const Response& r) {
    if (r.name != "FETCH" || !r.number || r.data.size() != 1 || r.data[0].kind != Value::List ||
        r.data[0].items.size() % 2 != 0)
        throw ImapError("malformed FETCH response: " + r.raw);
    FetchItems out;
    auto& items = r.data[0].items;
    for (std::size_t i = 0; i < items.size(); i += 2) {
        if (items[i].kind != Value::Atom) throw ImapError("malformed FETCH attribute in: " + r.raw);
        out[upper(items[i].text)] = items[i + 1];
    }
    return out;
}

std::set<std::string> flag_set(const Value& list) {
    if (list.kind != Value::List) throw ImapError("flag list expected, got " + list.show());
    std::set<std::string> out;
    for (auto& f : list.items) {
        if (f.kind != Value::Atom) throw ImapError("flag expected, got " + f.show());
        // System flags are case-insensitive: keep one spelling.
        std::string name = f.text;
        if (!name.empty() && name[0] == '\\') {
            name = upper(name);
            static const std::map<std::string, std::string> canon = {
                {"\\SEEN", "\\Seen"},   {"\\ANSWERED", "\\Answered"}, {"\\FLAGGED", "\\Flagged"},
                {"\\DRAFT", "\\Draft"}, {"\\DELETED", "\\Deleted"},   {"\\RECENT", "\\Recent"}};
            auto it = canon.find(name);
            if (it != canon.end()) name = it->second;
        }
        if (name == "\\Recent") continue;
        out.insert(name);
    }
    return out;
}

std::vector<std::uint64_t> expand_set(std::string_view set) {
    std::vector<std::uint64_t> out;
    std::size_t pos = 0;
    while (pos <= set.size()) {
        auto comma = set.find(',', pos);
        if (comma == std::string_view::npos) comma = set.size();
        auto part = set.substr(pos, comma - pos);
        auto colon = part.find(':');
        auto a = part.substr(0, colon);
        auto b = colon == std::string_view::npos ? a : part.substr(colon + 1);
        if (!all_digits(a) || !all_digits(b) || a.size() > 19 || b.size() > 19)
            throw ImapError("malformed set \"" + std::string(set) + "\"");
        auto lo = std::stoull(std::string(a)), hi = std::stoull(std::string(b));
        if (lo > hi) std::swap(lo, hi);
        if (hi - lo > 1000000) throw ImapError("set too large \"" + std::string(set) + "\"");
        for (auto n = lo; n <= hi; ++n)
            out.push_back(n);
        pos = comma + 1;
    }
    return out;
}

std::string make_set(std::vector<std::uint64_t> numbers) {
    std::sort(numbers.begin(), numbers.end());
    numbers.erase(std::unique(numbers.begin(), numbers.end()), numbers.end());
    std::string out;
    for (std::size_t i = 0; i < numbers.size();) {
        auto j = i;
        while (j + 1 < numbers.size() && numbers[j + 1] == numbers[j] + 1)
            ++j;
        if (!out.empty()) out += ",";
        out += std::to_string(numbers[i]);
        if (j > i) out += ":" + std::to_string(numbers[j]);
        i = j + 1;
    }
    return out;
}

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// ---------------------------------------------------------------------------------------------
// Client

Client::Client(const Endpoint& at, std::chrono::milliseconds timeout) : timeout_(timeout) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    auto port = std::to_string(at.port);
    if (int rc = ::getaddrinfo(at.host.c_str(), port.c_str(), &hints, &res); rc != 0)
        throw ImapError("resolve " + at.host + ": " + ::gai_strerror(rc));
    std::string err = "no address";
    for (auto* ai = res; ai && fd_ < 0; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            fd_ = fd;
            int one = 1;
            ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        } else {
            err = std::strerror(errno);
            ::close(fd);
        }
    }
    ::freeaddrinfo(res);
    if (fd_ < 0) throw ImapError("connect to " + at.host + ":" + port + ": " + err);
    if (const auto* contract = load_contract("imap"))
        checker_ = std::make_unique<contracts::Checker>(*contract);
}

void Client::judge(bool from_client, std::string_view bytes) {
    if (!checker_ || !breach_.empty()) return;
    auto verdict = from_client ? checker_->on_client(bytes) : checker_->on_server(bytes);
    if (verdict) breach_ = "imap contract: " + contracts::to_string(*verdict);
}

Client::~Client() {
    close();
}

Client::Client(Client&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      timeout_(o.timeout_),
      buf_(std::move(o.buf_)),
      next_tag_(o.next_tag_),
      caps_(std::move(o.caps_)),
      checker_(std::move(o.checker_)),
      breach_(std::move(o.breach_)) {}

Client& Client::operator=(Client&& o) noexcept {
    if (this != &o) {
        close();
        fd_ = std::exchange(o.fd_, -1);
        timeout_ = o.timeout_;
        buf_ = std::move(o.buf_);
        next_tag_ = o.next_tag_;
        caps_ = std::move(o.caps_);
        checker_ = std::move(o.checker_);
        breach_ = std::move(o.breach_);
    }
    return *this;
}

void Client::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buf_.clear();
}

void Client::send_raw(std::string_view bytes) {
    if (fd_ < 0) throw ImapError("send on a closed connection");
    judge(true, bytes);
    auto deadline = Clock::now() + timeout_;
    while (!bytes.empty()) {
        auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            throw ImapError(std::string("send: ") + std::strerror(errno));
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) throw ImapError("send: peer does not read (timeout)");
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, static_cast<int>(left.count()));
    }
}

void Client::fill() {
    if (fd_ < 0) throw ImapError("read on a closed connection");
    pollfd p{fd_, POLLIN, 0};
    int r;
    do {
        r = ::poll(&p, 1, static_cast<int>(timeout_.count()));
    } while (r < 0 && errno == EINTR);
    if (r < 0) throw ImapError(std::string("poll: ") + std::strerror(errno));
    if (r == 0)
        throw ImapError("timeout: no response within " + std::to_string(timeout_.count()) +
                        " ms (have \"" + buf_ + "\")");
    char chunk[65536];
    auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0) throw ImapError(std::string("recv: ") + std::strerror(errno));
    if (n == 0) throw ImapError("connection closed by peer (have \"" + buf_ + "\")");
    buf_.append(chunk, static_cast<std::size_t>(n));
    judge(false, std::string_view(chunk, static_cast<std::size_t>(n)));
}

std::string Client::read_line() {
    std::size_t scanned = 0;
    while (true) {
        auto lf = buf_.find('\n', scanned);
        if (lf != std::string::npos) {
            if (lf == 0 || buf_[lf - 1] != '\r')
                throw ImapError("bare LF after \"" + buf_.substr(0, lf) + "\"");
            std::string line = buf_.substr(0, lf - 1);
            buf_.erase(0, lf + 1);
            return line;
        }
        scanned = buf_.size();
        if (buf_.size() > kMaxResponse) throw ImapError("response line too long");
        fill();
    }
}

bool Client::readable(std::chrono::milliseconds wait) {
    if (!buf_.empty()) return true;
    if (fd_ < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    int r;
    do {
        r = ::poll(&p, 1, static_cast<int>(wait.count()));
    } while (r < 0 && errno == EINTR);
    return r > 0;
}

Response Client::read_response() {
    std::string raw = read_line();
    while (auto n = literal_at_end(raw)) {
        while (buf_.size() < *n)
            fill();
        raw += "\r\n";
        raw.append(buf_, 0, *n);
        buf_.erase(0, *n);
        raw += read_line();
        if (raw.size() > kMaxResponse) throw ImapError("response too long");
    }
    return parse_response(std::move(raw));
}

std::string Client::send_command(const std::string& command) {
    auto tag = "t" + std::to_string(next_tag_++);
    send_raw(tag + " " + command + "\r\n");
    return tag;
}

std::string Client::send_append(const std::string& mailbox, const std::string& flags,
                                const std::string& message) {
    auto tag = "t" + std::to_string(next_tag_++);
    send_raw(tag + " APPEND " + quote(mailbox) + " (" + flags + ") {" +
             std::to_string(message.size()) + "}\r\n");
    // A synchronizing literal: the server says "+" or refuses at once (tagged NO/BAD), which
    // the caller then reads as the reply.
    while (true) {
        auto r = read_response();
        if (r.tag == "+") break;
        if (r.tag == tag) {
            // Put it back as the completion: the caller's read_reply will see it first.
            buf_.insert(0, r.raw + "\r\n");
            return tag;
        }
        if (r.tag != "*") throw ImapError("unexpected response during APPEND: " + r.raw);
    }
    send_raw(message + "\r\n");
    return tag;
}

Reply Client::read_reply(const std::string& tag) {
    Reply reply;
    while (true) {
        auto r = read_response();
        if (r.tag == tag) {
            reply.done = std::move(r);
            if (!breach_.empty()) throw ContractBreach(breach_ + "\nreply:\n" + reply.show());
            return reply;
        }
        if (r.tag != "*") throw ImapError("unexpected response \"" + r.raw + "\" for " + tag);
        reply.untagged.push_back(std::move(r));
    }
}

void Client::open(const std::string& login, const std::string& password, bool condstore) {
    auto greeting = read_response();
    if (greeting.tag != "*" || greeting.name != "OK")
        throw ImapError("bad greeting: " + greeting.raw);
    auto r = command("LOGIN " + quote(login) + " " + quote(password));
    if (!r.ok()) throw ImapError("LOGIN refused: " + r.show());
    r = command("CAPABILITY");
    if (!r.ok()) throw ImapError("CAPABILITY refused: " + r.show());
    for (auto& u : r.untagged)
        if (u.name == "CAPABILITY")
            for (auto& v : u.data)
                caps_.insert(upper(v.text));
    if (condstore) {
        if (!caps_.count("CONDSTORE")) throw ImapError("server lacks CONDSTORE");
        r = command("ENABLE CONDSTORE");
        if (!r.ok()) throw ImapError("ENABLE CONDSTORE refused: " + r.show());
    }
}

}  // namespace millipost::props::imap
