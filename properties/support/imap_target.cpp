// support/imap_target.cpp: the IMAP models' target (see imap_target.h).
#include "support/imap_target.h"

#include "support/test_service.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>

namespace millipost::props::imap {
namespace {

std::optional<Target>& chosen() {
    static std::optional<Target> t;
    return t;
}

std::string unescape(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

}  // namespace

const Target& target() {
    auto& t = chosen();
    if (!t) {
        // Every case of every property shares it; destroyed at exit, which removes its data
        // directory (the sessions of the cases are closed by then).
        static TestService service;
        service.add_user("alice", "alice's password");
        service.add_user("bob", "bob's password");
        Target local;
        local.at.port = service.imap_port();
        local.users = {{"alice", "alice's password"}, {"bob", "bob's password"}};
        t = local;
    }
    return *t;
}

void set_target(Target t) {
    if (t.users.empty()) throw std::invalid_argument("an IMAP target needs a user");
    chosen() = std::move(t);
}

Target parse_url(const std::string& url) {
    const std::string scheme = "imap://";
    if (url.rfind(scheme, 0) != 0) throw std::invalid_argument("not an imap:// URL: " + url);
    auto rest = url.substr(scheme.size());
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    auto at = rest.rfind('@');
    if (at == std::string::npos) throw std::invalid_argument("URL lacks LOGIN:PASSWORD@: " + url);
    auto cred = rest.substr(0, at), host = rest.substr(at + 1);
    auto colon = cred.find(':');
    if (colon == std::string::npos) throw std::invalid_argument("URL lacks a password: " + url);
    Target t;
    t.users.emplace_back(unescape(cred.substr(0, colon)), unescape(cred.substr(colon + 1)));
    if (!host.empty() && host[0] == '[') {  // [v6]:port
        auto close = host.find(']');
        t.at.host = host.substr(1, close - 1);
        host = host.substr(close + 1);
        if (!host.empty() && host[0] == ':') t.at.port = std::stoi(host.substr(1));
    } else if (auto pc = host.rfind(':'); pc != std::string::npos) {
        t.at.host = host.substr(0, pc);
        t.at.port = static_cast<std::uint16_t>(std::stoi(host.substr(pc + 1)));
    } else {
        t.at.host = host;
    }
    if (t.at.host.empty()) throw std::invalid_argument("URL lacks a host: " + url);
    return t;
}

std::string unique_prefix() {
    static std::atomic<unsigned> counter{0};
    auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    char buf[64];
    std::snprintf(buf, sizeof buf, "mp%x%llx%u-", static_cast<unsigned>(::getpid()) & 0xffff,
                  static_cast<unsigned long long>(now) & 0xffffffffffULL, counter++);
    return buf;
}

}  // namespace millipost::props::imap
