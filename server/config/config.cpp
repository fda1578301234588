// config/config.cpp: TOML configuration loading (see config.h).
#include "config/config.h"

#include <toml++/toml.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <stdexcept>

namespace millipost::config {
namespace {

template <class T>
void take(const toml::table& t, const char* key, T& out, std::set<std::string>& seen) {
    seen.insert(key);
    auto node = t[key];
    if (!node) return;
    if constexpr (std::is_same_v<T, std::string>) {
        auto v = node.value<std::string>();
        if (!v) throw std::runtime_error(std::string("expected a string for ") + key);
        out = *v;
    } else if constexpr (std::is_same_v<T, bool>) {
        // value<bool>() would also take an integer.
        auto v = node.is_boolean() ? node.value<bool>() : std::nullopt;
        if (!v) throw std::runtime_error(std::string("expected true or false for ") + key);
        out = *v;
    } else if constexpr (std::is_same_v<T, std::chrono::milliseconds>) {
        auto v = node.value<std::int64_t>();
        if (!v || *v < 0)
            throw std::runtime_error(std::string("expected milliseconds >= 0 for ") + key);
        out = std::chrono::milliseconds(*v);
    } else if constexpr (std::is_same_v<T, std::chrono::seconds>) {
        auto v = node.value<std::int64_t>();
        if (!v || *v <= 0) throw std::runtime_error(std::string("expected seconds > 0 for ") + key);
        out = std::chrono::seconds(*v);
    } else {
        auto v = node.value<std::int64_t>();
        if (!v || *v < -1) throw std::runtime_error(std::string("expected an integer for ") + key);
        out = static_cast<T>(*v);
    }
}

void reject_unknown(const toml::table& t, const std::set<std::string>& known, const char* where) {
    for (auto& [k, v] : t)
        if (!known.count(std::string(k.str())) && !v.is_table())
            throw std::runtime_error("unknown key " + std::string(where) + std::string(k.str()));
}

}  // namespace

std::optional<PlaintextAuth> parse_plaintext_auth(std::string_view s) {
    if (s == "never") return PlaintextAuth::Never;
    if (s == "loopback") return PlaintextAuth::Loopback;
    if (s == "always") return PlaintextAuth::Always;
    return std::nullopt;
}

std::optional<TlsPolicy> parse_tls_policy(std::string_view s) {
    if (s == "none") return TlsPolicy::None;
    if (s == "may") return TlsPolicy::May;
    if (s == "encrypt") return TlsPolicy::Encrypt;
    if (s == "verify") return TlsPolicy::Verify;
    return std::nullopt;
}

void OutboundConfig::cap_timeouts(std::chrono::seconds cap) {
    for (auto* t : {&connect_timeout, &greeting_timeout, &command_timeout, &data_init_timeout,
                    &data_block_timeout, &data_done_timeout})
        *t = std::min(*t, cap);
}

namespace {

std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

TlsPolicy tls_policy_value(const toml::node& node, const std::string& what) {
    auto v = node.value<std::string>();
    auto p = v ? parse_tls_policy(*v) : std::nullopt;
    if (!p)
        throw std::runtime_error("expected \"none\", \"may\", \"encrypt\" or \"verify\" for " +
                                 what);
    return *p;
}

void load_outbound(OutboundConfig& o, const toml::table& t) {
    std::set<std::string> k;
    take(t, "enabled", o.enabled, k);
    take(t, "mx_lookup", o.mx_lookup, k);
    take(t, "relayhost", o.relayhost, k);
    take(t, "relay_user", o.relay_user, k);
    take(t, "relay_password", o.relay_password, k);
    take(t, "tls_ca_file", o.tls_ca_file, k);
    take(t, "helo_name", o.helo_name, k);
    take(t, "nameserver", o.nameserver, k);
    std::int64_t mx_port = o.mx_port;
    take(t, "mx_port", mx_port, k);
    if (mx_port < 1 || mx_port > 65535)
        throw std::runtime_error("[outbound] mx_port must be a port number (1-65535)");
    o.mx_port = static_cast<unsigned short>(mx_port);
    take(t, "retry_min", o.retry_min, k);
    take(t, "retry_max", o.retry_max, k);
    take(t, "max_queue_lifetime", o.max_queue_lifetime, k);
    take(t, "max_concurrent", o.max_concurrent, k);
    take(t, "connect_timeout", o.connect_timeout, k);
    take(t, "greeting_timeout", o.greeting_timeout, k);
    take(t, "command_timeout", o.command_timeout, k);
    take(t, "data_init_timeout", o.data_init_timeout, k);
    take(t, "data_block_timeout", o.data_block_timeout, k);
    take(t, "data_done_timeout", o.data_done_timeout, k);
    k.insert("tls");
    if (auto n = t["tls"]; n) o.tls = tls_policy_value(*n.node(), "[outbound].tls");
    k.insert("routes");
    if (auto n = t["routes"]; n) {
        auto tbl = n.as_table();
        if (!tbl) throw std::runtime_error("expected a table domain = \"host:port\" for routes");
        o.routes.clear();
        for (auto& [domain, v] : *tbl) {
            auto s = v.value<std::string>();
            if (!s || s->empty()) throw std::runtime_error("expected \"host:port\" in routes");
            o.routes[lower(std::string(domain.str()))] = *s;
        }
    }
    k.insert("tls_policy");
    if (auto n = t["tls_policy"]; n) {
        auto tbl = n.as_table();
        if (!tbl) throw std::runtime_error("expected a table domain = \"level\" for tls_policy");
        o.tls_policy.clear();
        for (auto& [domain, v] : *tbl)
            o.tls_policy[lower(std::string(domain.str()))] =
                tls_policy_value(v, "[outbound.tls_policy]");
    }
    for (auto& [key, v] : t)
        if (!k.count(std::string(key.str())))
            throw std::runtime_error("unknown key [outbound]." + std::string(key.str()));
    if (o.max_concurrent == 0) throw std::runtime_error("[outbound] max_concurrent must be > 0");
    if (!o.nameserver.empty() && !valid_nameserver(o.nameserver))
        throw std::runtime_error("[outbound] nameserver must be \"IPv4\" or \"IPv4:port\", not \"" +
                                 o.nameserver + "\"");
    if (o.retry_max < o.retry_min)
        throw std::runtime_error("[outbound] retry_max must not be below retry_min");
}

}  // namespace

// "a.b.c.d" or "a.b.c.d:port", as outbound/dns.cpp reads it.
bool valid_nameserver(const std::string& s) {
    auto colon = s.find(':');
    in_addr a{};
    if (inet_pton(AF_INET, s.substr(0, colon).c_str(), &a) != 1) return false;
    if (colon == std::string::npos) return true;
    auto p = std::string_view(s).substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    return ec == std::errc() && end == p.data() + p.size() && port >= 1 && port <= 65535;
}

std::optional<Directory> parse_directory(std::string_view s) {
    if (s == "store") return Directory::Store;
    if (s == "ldap") return Directory::Ldap;
    return std::nullopt;
}

void load_toml(Config& cfg, const std::string& path) {
    toml::table root;
    try {
        root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        throw std::runtime_error(path + ":" + std::to_string(e.source().begin.line) + ": " +
                                 std::string(e.description()));
    }
    try {
        std::set<std::string> known;
        auto& server = root["server"].is_table() ? *root["server"].as_table() : root;
        take(server, "data_dir", cfg.data_dir, known);
        take(server, "store", cfg.store, known);
        take(server, "hostname", cfg.hostname, known);
        take(server, "listen", cfg.listen, known);
        take(server, "postmaster", cfg.postmaster, known);
        known.insert("domains");
        if (auto arr = server["domains"].as_array()) {
            cfg.domains.clear();
            for (auto& d : *arr) {
                auto v = d.value<std::string>();
                if (!v) throw std::runtime_error("expected strings in domains");
                cfg.domains.push_back(*v);
            }
        }
        take(server, "io_threads", cfg.io_threads, known);
        take(server, "store_threads", cfg.store_threads, known);
        take(server, "max_connections", cfg.max_connections, known);
        take(server, "max_connections_per_address", cfg.max_connections_per_address, known);
        take(server, "log_level", cfg.log_level, known);
        take(server, "prelogin_max_time", cfg.prelogin_max_time, known);
        reject_unknown(server, known, "[server].");
        if (auto smtp = root["smtp"].as_table()) {
            std::set<std::string> k;
            take(*smtp, "port", cfg.smtp_port, k);
            take(*smtp, "max_message_size", cfg.max_message_size, k);
            take(*smtp, "max_recipients", cfg.max_recipients, k);
            take(*smtp, "timeout", cfg.smtp_timeout, k);
            take(*smtp, "login_timeout", cfg.smtp_login_timeout, k);
            reject_unknown(*smtp, k, "[smtp].");
        }
        if (auto pop3 = root["pop3"].as_table()) {
            std::set<std::string> k;
            take(*pop3, "port", cfg.pop3_port, k);
            take(*pop3, "timeout", cfg.pop3_timeout, k);
            take(*pop3, "login_timeout", cfg.pop3_login_timeout, k);
            reject_unknown(*pop3, k, "[pop3].");
        }
        if (auto imap = root["imap"].as_table()) {
            std::set<std::string> k;
            take(*imap, "port", cfg.imap_port, k);
            take(*imap, "timeout", cfg.imap_timeout, k);
            take(*imap, "login_timeout", cfg.imap_login_timeout, k);
            take(*imap, "special_use_mailboxes", cfg.special_use_mailboxes, k);
            take(*imap, "quota_storage", cfg.quota_storage, k);
            take(*imap, "quota_messages", cfg.quota_messages, k);
            reject_unknown(*imap, k, "[imap].");
        }
        if (auto auth = root["auth"].as_table()) {
            std::set<std::string> k;
            std::string plaintext;
            take(*auth, "plaintext_auth", plaintext, k);
            if (!plaintext.empty()) {
                auto p = parse_plaintext_auth(plaintext);
                if (!p)
                    throw std::runtime_error(
                        "expected \"never\", \"loopback\" or \"always\" for plaintext_auth");
                cfg.plaintext_auth = *p;
            }
            std::string directory;
            take(*auth, "directory", directory, k);
            if (!directory.empty()) {
                auto d = parse_directory(directory);
                if (!d) throw std::runtime_error("expected \"store\" or \"ldap\" for directory");
                cfg.directory = *d;
            }
            take(*auth, "fail_delay_ms", cfg.auth_fail_delay, k);
            take(*auth, "fail_max_delay_ms", cfg.auth_fail_max_delay, k);
            take(*auth, "fail_limit", cfg.auth_fail_limit, k);
            take(*auth, "lockout", cfg.auth_lockout, k);
            take(*auth, "fail_window", cfg.auth_fail_window, k);
            take(*auth, "throttle_entries", cfg.auth_throttle_entries, k);
            reject_unknown(*auth, k, "[auth].");
        }
        if (auto ldap = root["ldap"].as_table()) {
            std::set<std::string> k;
            auto& l = cfg.ldap;
            take(*ldap, "uri", l.uri, k);
            take(*ldap, "base_dn", l.base_dn, k);
            take(*ldap, "user_filter", l.user_filter, k);
            take(*ldap, "bind_dn", l.bind_dn, k);
            take(*ldap, "bind_password", l.bind_password, k);
            take(*ldap, "starttls", l.starttls, k);
            take(*ldap, "ca_file", l.ca_file, k);
            take(*ldap, "timeout", l.timeout, k);
            take(*ldap, "login_attribute", l.login_attribute, k);
            take(*ldap, "mail_attribute", l.mail_attribute, k);
            reject_unknown(*ldap, k, "[ldap].");
        }
        if (auto sub = root["submission"].as_table()) {
            std::set<std::string> k;
            take(*sub, "inbound_auth_relay", cfg.inbound_auth_relay, k);
            k.insert("aliases");
            if (auto node = (*sub)["aliases"]; node) {
                auto tbl = node.as_table();
                if (!tbl)
                    throw std::runtime_error("expected a table login = [addresses] for aliases");
                cfg.sender_aliases.clear();
                for (auto& [login, list] : *tbl) {
                    auto arr = list.as_array();
                    if (!arr) throw std::runtime_error("expected an array of addresses in aliases");
                    auto& out = cfg.sender_aliases[std::string(login.str())];
                    for (auto& a : *arr) {
                        auto v = a.value<std::string>();
                        if (!v) throw std::runtime_error("expected strings in aliases");
                        out.push_back(*v);
                    }
                }
            }
            // reject_unknown skips sub-tables; `aliases` is the only one expected here.
            for (auto& [key, v] : *sub)
                if (!k.count(std::string(key.str())))
                    throw std::runtime_error("unknown key [submission]." + std::string(key.str()));
        }
        if (auto out = root["outbound"].as_table()) load_outbound(cfg.outbound, *out);
        if (auto tls = root["tls"].as_table()) {
            std::set<std::string> k;
            take(*tls, "cert", cfg.tls_cert, k);
            take(*tls, "key", cfg.tls_key, k);
            take(*tls, "submission", cfg.submission_port, k);
            take(*tls, "submissions", cfg.submissions_port, k);
            take(*tls, "imaps", cfg.imaps_port, k);
            take(*tls, "pop3s", cfg.pop3s_port, k);
            reject_unknown(*tls, k, "[tls].");
            if (cfg.tls_cert.empty() != cfg.tls_key.empty())
                throw std::runtime_error("[tls] needs both cert and key");
        }
    } catch (const std::runtime_error& e) {
        throw std::runtime_error(path + ": " + e.what());
    }
}

}  // namespace millipost::config
