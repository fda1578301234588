// outbound/dns.h: MX lookup for outbound delivery (RFC 5321 §5.1) through the system resolver
// (libresolv). Blocking: call it on the blocking pool.
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

MxResult lookup_mx(const std::string& domain);

}  // namespace millipost::outbound
