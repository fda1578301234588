// outbound/dns.cpp: MX records through res_nquery (see dns.h). The resolver is configured
// by /etc/resolv.conf; its own timeouts bound the call.
#include "outbound/dns.h"

#include "util/limits.h"

#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace millipost::outbound {

MxResult lookup_mx(const std::string& domain) {
    MxResult out;
    struct __res_state st;
    std::memset(&st, 0, sizeof st);
    if (res_ninit(&st) != 0) {
        out.error = "resolver initialization failed";
        return out;
    }
    // Two tries of 3 s each at most, not the default four rounds of 5 s: a delivery attempt
    // that cannot resolve is retried later anyway.
    st.retrans = 3;
    st.retry = 2;
    unsigned char answer[NS_PACKETSZ * 4];
    int n = res_nquery(&st, domain.c_str(), ns_c_in, ns_t_mx, answer, sizeof answer);
    int herr = st.res_h_errno;
    res_nclose(&st);
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

}  // namespace millipost::outbound
