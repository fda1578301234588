// outbound/dns.h: MX lookup for outbound delivery (RFC 5321 §5.1) through the system resolver
// (libresolv), or through one given nameserver ([outbound] nameserver). Blocking: call it on
// the blocking pool.
#pragma once
#include <string>
#include <vector>

namespace millipost::outbound {

struct MxResult {
    enum class Kind {
        Hosts,     // `hosts` holds the exchanges, most preferred first
        Implicit,  // the domain has no MX: its own A/AAAA are the implicit MX (§5.1)
        NoDomain,  // NXDOMAIN: permanent
        NullMx,    // RFC 7505 "MX 0 .": the domain accepts no mail, permanent
        TempFail,  // the resolver failed or timed out: try later
    };
    Kind kind = Kind::TempFail;
    std::vector<std::string> hosts;
    std::string error;  // for logs and DSNs
};

// `nameserver`: "address:port" or "address" (port 53) of the one server to ask, an IPv4 literal
// (the resolver state holds IPv4 servers in nsaddr_list); empty = the servers of resolv.conf.
MxResult lookup_mx(const std::string& domain, const std::string& nameserver = {});

// The A and AAAA records of `host` (address literals, as text), through `nameserver` as above.
// Used for MX hosts when a nameserver is configured, so that every lookup of a delivery asks
// the same server (getaddrinfo would ask resolv.conf's). Empty with `error` set when there is
// none; `temporary` tells a resolver failure from NXDOMAIN/no data.
struct AddrResult {
    std::vector<std::string> addresses;
    std::string error;
    bool temporary = false;
};
AddrResult lookup_addresses(const std::string& host, const std::string& nameserver);

}  // namespace millipost::outbound
