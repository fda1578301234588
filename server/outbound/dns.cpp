// outbound/dns.cpp: MX and address records through res_nquery (see dns.h). The resolver is
// configured by /etc/resolv.conf, its server list replaced by [outbound] nameserver when set;
// its own timeouts bound the call.
#include "outbound/dns.h"

#include "util/limits.h"

#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

namespace millipost::outbound {

namespace {

// As config::valid_nameserver accepts it.
std::optional<sockaddr_in> parse_nameserver(const std::string& s) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    auto colon = s.find(':');
    std::string addr = s.substr(0, colon);
    unsigned port = 53;
    if (colon != std::string::npos) {
        auto p = std::string_view(s).substr(colon + 1);
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
        if (ec != std::errc() || end != p.data() + p.size() || port == 0 || port > 65535)
            return std::nullopt;
    }
    if (inet_pton(AF_INET, addr.c_str(), &sa.sin_addr) != 1) return std::nullopt;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    return sa;
}

// A resolver state for the queries of one lookup; `ok` false: `error` says why.
struct Resolver {
    struct __res_state st;
    bool initialized = false, ok = false;
    Resolver(const std::string& nameserver, std::string& error) {
        std::memset(&st, 0, sizeof st);
        if (res_ninit(&st) != 0) {
            error = "resolver initialization failed";
            return;
        }
        initialized = true;
        // Two tries of 3 s each at most, not the default four rounds of 5 s: a delivery
        // attempt that cannot resolve is retried later anyway.
        st.retrans = 3;
        st.retry = 2;
        if (!nameserver.empty()) {
            auto sa = parse_nameserver(nameserver);
            if (!sa) {  // config.cpp checks it; this is for direct callers
                error = "bad nameserver \"" + nameserver + "\"";
                return;
            }
            // The one server asked (UDP; TCP only when an answer comes back truncated).
            st.nsaddr_list[0] = *sa;
            st.nscount = 1;
        }
        ok = true;
    }
    ~Resolver() {
        if (initialized) res_nclose(&st);
    }
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;
};

}  // namespace

MxResult lookup_mx(const std::string& domain, const std::string& nameserver) {
    MxResult out;
    Resolver r(nameserver, out.error);
    if (!r.ok) return out;
    auto& st = r.st;
    unsigned char answer[NS_PACKETSZ * 4];
    int n = res_nquery(&st, domain.c_str(), ns_c_in, ns_t_mx, answer, sizeof answer);
    int herr = st.res_h_errno;
    if (n < 0) {
        if (herr == HOST_NOT_FOUND) {
            out.kind = MxResult::Kind::NoDomain;
            out.error = "Host or domain name not found. Name service error for name=" + domain +
                        " type=MX: Host not found";
        } else if (herr == NO_DATA) {
            out.kind = MxResult::Kind::Implicit;
        } else {
            out.error =
                "Name service error for name=" + domain + " type=MX: Host not found, try again";
        }
        return out;
    }
    ns_msg msg;
    if (ns_initparse(answer, std::min(n, static_cast<int>(sizeof answer)), &msg) != 0) {
        out.error = "malformed DNS answer for " + domain + " type=MX";
        return out;
    }
    std::vector<std::pair<unsigned, std::string>> mx;
    for (int i = 0; i < ns_msg_count(msg, ns_s_an); ++i) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0) continue;
        if (ns_rr_type(rr) != ns_t_mx || ns_rr_rdlen(rr) < 3) continue;
        unsigned pref = ns_get16(ns_rr_rdata(rr));
        char name[NS_MAXDNAME];
        if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr) + 2, name,
                               sizeof name) < 0)
            continue;
        mx.emplace_back(pref, name);
    }
    if (mx.empty()) {
        out.kind = MxResult::Kind::Implicit;
        return out;
    }
    std::stable_sort(mx.begin(), mx.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    if (mx.size() == 1 && (mx[0].second.empty() || mx[0].second == ".")) {
        out.kind = MxResult::Kind::NullMx;
        out.error = "Domain " + domain + " does not accept mail (nullMX)";
        return out;
    }
    out.kind = MxResult::Kind::Hosts;
    for (auto& [pref, host] : mx)
        if (out.hosts.size() < limits::kOutboundMaxMx && !host.empty() && host != ".")
            out.hosts.push_back(host);
    return out;
}

AddrResult lookup_addresses(const std::string& host, const std::string& nameserver) {
    AddrResult out;
    Resolver r(nameserver, out.error);
    if (!r.ok) {
        out.temporary = true;
        return out;
    }
    bool not_found = true;
    for (auto type : {ns_t_a, ns_t_aaaa}) {
        unsigned char answer[NS_PACKETSZ * 4];
        int n = res_nquery(&r.st, host.c_str(), ns_c_in, type, answer, sizeof answer);
        if (n < 0) {
            int herr = r.st.res_h_errno;
            if (herr != HOST_NOT_FOUND && herr != NO_DATA) out.temporary = true;
            if (herr != HOST_NOT_FOUND) not_found = false;
            continue;
        }
        not_found = false;
        ns_msg msg;
        if (ns_initparse(answer, std::min(n, static_cast<int>(sizeof answer)), &msg) != 0) {
            out.temporary = true;
            continue;
        }
        for (int i = 0; i < ns_msg_count(msg, ns_s_an); ++i) {
            ns_rr rr;
            if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 || ns_rr_type(rr) != type) continue;
            int af = type == ns_t_a ? AF_INET : AF_INET6;
            if (ns_rr_rdlen(rr) != (af == AF_INET ? 4 : 16)) continue;
            char text[INET6_ADDRSTRLEN];
            if (inet_ntop(af, ns_rr_rdata(rr), text, sizeof text)) out.addresses.emplace_back(text);
        }
    }
    if (out.addresses.empty()) {
        // Like getaddrinfo's wording (client.cpp), so logs read the same either way.
        out.error = "Host or domain name not found. Name service error for name=" + host +
                    (out.temporary ? ": try again"
                     : not_found   ? ": Host not found"
                                   : ": no addresses");
    } else {
        out.temporary = false;  // one family answered: enough to try
    }
    return out;
}

}  // namespace millipost::outbound
