// config/config_test.cpp: TOML configuration: values taken, bad values and unknown keys refused.
#include "config/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using millipost::config::Config;
using millipost::config::load_toml;

namespace {
std::string write(const std::string& text) {
    auto p = std::filesystem::temp_directory_path() /
             ("millipost-cfg-" + std::to_string(::getpid()) + ".toml");
    std::ofstream(p) << text;
    return p.string();
}
}  // namespace

TEST(Config, DefaultsRunOutOfTheBox) {
    Config c;
    EXPECT_EQ(c.listen, "127.0.0.1");
    EXPECT_GT(c.smtp_port, 1024);
    EXPECT_GT(c.pop3_port, 1024);
    EXPECT_EQ(c.imap_port, 1143);
    EXPECT_EQ(c.imap_timeout.count(), 30 * 60);  // RFC 9051 §5.4: at least 30 minutes
    EXPECT_EQ(c.store_spec(), "sqlite:./data");
    EXPECT_TRUE(c.special_use_mailboxes);
    EXPECT_EQ(c.quota_storage, 0u);  // unlimited
    EXPECT_EQ(c.quota_messages, 0u);
}

TEST(Config, ReadsSections) {
    Config c;
    load_toml(c,
              write("[server]\nhostname = \"mx.example\"\ndomains = [\"example.org\"]\n"
                    "[smtp]\nport = 2600\nmax_message_size = 1000\ntimeout = 7\n[pop3]\nport = 0\n"
                    "[imap]\nport = -1\ntimeout = 3600\nspecial_use_mailboxes = false\n"
                    "quota_storage = 1024\nquota_messages = 10\n"));
    EXPECT_EQ(c.hostname, "mx.example");
    EXPECT_EQ(c.domains, std::vector<std::string>{"example.org"});
    EXPECT_EQ(c.smtp_port, 2600);
    EXPECT_EQ(c.max_message_size, 1000u);
    EXPECT_EQ(c.smtp_timeout.count(), 7);
    EXPECT_EQ(c.pop3_port, 0);
    EXPECT_EQ(c.imap_port, -1);
    EXPECT_EQ(c.imap_timeout.count(), 3600);
    EXPECT_FALSE(c.special_use_mailboxes);
    EXPECT_EQ(c.quota_storage, 1024u);
    EXPECT_EQ(c.quota_messages, 10u);
}

TEST(Config, ConnectionLimitsAndLoginTimeouts) {
    Config d;
    EXPECT_EQ(d.max_connections_per_address, 100u);
    EXPECT_LT(d.imap_login_timeout, d.imap_timeout);  // pre-login is tighter
    EXPECT_LT(d.pop3_login_timeout, d.pop3_timeout);
    EXPECT_LT(d.smtp_login_timeout, d.smtp_timeout);
    // The total pre-login time is longer than any pre-login idle timeout (else it would be one).
    EXPECT_GT(d.prelogin_max_time, d.imap_login_timeout);
    EXPECT_GT(d.prelogin_max_time, d.smtp_login_timeout);
    Config c;
    load_toml(c, write("[server]\nmax_connections = 50\nmax_connections_per_address = 5\n"
                       "prelogin_max_time = 42\n"
                       "[smtp]\nlogin_timeout = 5\n"
                       "[pop3]\nlogin_timeout = 7\n[imap]\nlogin_timeout = 9\n"));
    EXPECT_EQ(c.prelogin_max_time.count(), 42);
    EXPECT_EQ(c.smtp_login_timeout.count(), 5);
    EXPECT_THROW(load_toml(c, write("[server]\nprelogin_max_time = 0\n")), std::runtime_error);
    EXPECT_EQ(c.max_connections, 50u);
    EXPECT_EQ(c.max_connections_per_address, 5u);
    EXPECT_EQ(c.pop3_login_timeout.count(), 7);
    EXPECT_EQ(c.imap_login_timeout.count(), 9);
    EXPECT_THROW(load_toml(c, write("[imap]\nlogin_timeout = 0\n")), std::runtime_error);
}

TEST(Config, RefusesUnknownKeysAndBadValues) {
    Config c;
    EXPECT_THROW(load_toml(c, write("[smtp]\nprot = 25\n")), std::runtime_error);
    EXPECT_THROW(load_toml(c, write("[smtp]\nport = \"x\"\n")), std::runtime_error);
    EXPECT_THROW(load_toml(c, write("[smtp]\ntimeout = 0\n")), std::runtime_error);
    EXPECT_THROW(load_toml(c, write("[server\n")), std::runtime_error);
    EXPECT_THROW(load_toml(c, write("[imap]\nidle = 5\n")), std::runtime_error);
    EXPECT_THROW(load_toml(c, write("[imap]\nspecial_use_mailboxes = 1\n")), std::runtime_error);
}

TEST(Config, AuthSection) {
    Config c;
    EXPECT_EQ(c.plaintext_auth, millipost::config::PlaintextAuth::Loopback);
    EXPECT_GT(c.auth_fail_limit, 0u);
    load_toml(c, write("[auth]\nplaintext_auth = \"never\"\nfail_delay_ms = 0\n"
                       "fail_max_delay_ms = 100\nfail_limit = 3\nlockout = 5\nfail_window = 60\n"
                       "throttle_entries = 10\n"));
    EXPECT_EQ(c.plaintext_auth, millipost::config::PlaintextAuth::Never);
    EXPECT_EQ(c.auth_fail_delay.count(), 0);
    EXPECT_EQ(c.auth_fail_max_delay.count(), 100);
    EXPECT_EQ(c.auth_fail_limit, 3u);
    EXPECT_EQ(c.auth_lockout.count(), 5);
    EXPECT_EQ(c.auth_fail_window.count(), 60);
    EXPECT_EQ(c.auth_throttle_entries, 10u);
    EXPECT_THROW(load_toml(c, write("[auth]\nplaintext_auth = \"sometimes\"\n")),
                 std::runtime_error);
    EXPECT_THROW(load_toml(c, write("[auth]\nfail_delay_ms = -1\n")), std::runtime_error);
    EXPECT_THROW(load_toml(c, write("[auth]\nlockout = 0\n")), std::runtime_error);
    EXPECT_THROW(load_toml(c, write("[auth]\nplaintext = \"never\"\n")), std::runtime_error);
}

TEST(Config, LdapDirectory) {
    Config c;
    EXPECT_EQ(c.directory, millipost::config::Directory::Store);
    EXPECT_EQ(c.ldap.user_filter, "(uid=%u)");
    load_toml(c, write("[auth]\ndirectory = \"ldap\"\n[ldap]\nuri = \"ldap://10.0.0.1/\"\n"
                       "base_dn = \"dc=example,dc=org\"\nuser_filter = \"(mail=%u)\"\n"
                       "bind_dn = \"cn=svc\"\nbind_password = \"pw\"\nstarttls = true\n"
                       "ca_file = \"/etc/ca.pem\"\n"
                       "timeout = 2\nlogin_attribute = \"cn\"\nmail_attribute = \"maildrop\"\n"));
    EXPECT_EQ(c.directory, millipost::config::Directory::Ldap);
    EXPECT_EQ(c.ldap.uri, "ldap://10.0.0.1/");
    EXPECT_EQ(c.ldap.base_dn, "dc=example,dc=org");
    EXPECT_EQ(c.ldap.user_filter, "(mail=%u)");
    EXPECT_EQ(c.ldap.bind_dn, "cn=svc");
    EXPECT_EQ(c.ldap.bind_password, "pw");
    EXPECT_TRUE(c.ldap.starttls);
    EXPECT_EQ(c.ldap.ca_file, "/etc/ca.pem");
    EXPECT_EQ(c.ldap.timeout.count(), 2);
    EXPECT_EQ(c.ldap.login_attribute, "cn");
    EXPECT_EQ(c.ldap.mail_attribute, "maildrop");
    EXPECT_THROW(load_toml(c, write("[auth]\ndirectory = \"nis\"\n")), std::runtime_error);
    EXPECT_THROW(load_toml(c, write("[ldap]\nhost = \"x\"\n")), std::runtime_error);
    EXPECT_THROW(load_toml(c, write("[ldap]\ntimeout = 0\n")), std::runtime_error);
}

TEST(Config, Tls) {
    Config c;
    EXPECT_FALSE(c.tls_configured());  // no certificate: no STARTTLS, no TLS listeners
    load_toml(c, write("[tls]\ncert = \"/etc/m/cert.pem\"\nkey = \"/etc/m/key.pem\"\n"
                       "submission = 587\nsubmissions = -1\nimaps = 0\npop3s = 995\n"));
    EXPECT_TRUE(c.tls_configured());
    EXPECT_EQ(c.tls_cert, "/etc/m/cert.pem");
    EXPECT_EQ(c.tls_key, "/etc/m/key.pem");
    EXPECT_EQ(c.submission_port, 587);
    EXPECT_EQ(c.submissions_port, -1);
    EXPECT_EQ(c.imaps_port, 0);
    EXPECT_EQ(c.pop3s_port, 995);
    Config d;
    EXPECT_THROW(load_toml(d, write("[tls]\ncert = \"c.pem\"\n")), std::runtime_error);
    EXPECT_THROW(load_toml(d, write("[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nimap = 1\n")),
                 std::runtime_error);
}

TEST(Config, Submission) {
    Config c;
    EXPECT_FALSE(c.inbound_auth_relay);  // port 25 never relays unless told to
    EXPECT_TRUE(c.sender_aliases.empty());
    load_toml(c, write("[submission]\ninbound_auth_relay = true\n"
                       "[submission.aliases]\nalice = [\"sales@example.com\", \"a@b.example\"]\n"));
    EXPECT_TRUE(c.inbound_auth_relay);
    ASSERT_EQ(c.sender_aliases.count("alice"), 1u);
    EXPECT_EQ(c.sender_aliases["alice"],
              (std::vector<std::string>{"sales@example.com", "a@b.example"}));
    Config d;
    EXPECT_THROW(load_toml(d, write("[submission]\nrelay = true\n")), std::runtime_error);
    EXPECT_THROW(load_toml(d, write("[submission]\naliases = [\"x\"]\n")), std::runtime_error);
    EXPECT_THROW(load_toml(d, write("[submission.aliases]\nalice = \"x@y\"\n")),
                 std::runtime_error);
    EXPECT_THROW(load_toml(d, write("[submission.other]\nx = 1\n")), std::runtime_error);
}

TEST(Config, Outbound) {
    using millipost::config::TlsPolicy;
    Config c;
    EXPECT_TRUE(c.outbound.enabled);
    EXPECT_TRUE(c.outbound.mx_lookup);
    EXPECT_EQ(c.outbound.tls, TlsPolicy::May);  // opportunistic, as Postfix's "may"
    EXPECT_EQ(c.outbound.max_queue_lifetime, std::chrono::hours(24 * 5));
    load_toml(c, write("[outbound]\nrelayhost = \"smart.example:587\"\nrelay_user = \"u\"\n"
                       "relay_password = \"p\"\ntls = \"encrypt\"\nretry_min = 2\n"
                       "retry_max = 8\nmax_queue_lifetime = 30\ncommand_timeout = 5\n"
                       "[outbound.routes]\n\"Example.ORG\" = \"127.0.0.1:2525\"\n"
                       "[outbound.tls_policy]\n\"secure.example\" = \"verify\"\n"));
    EXPECT_EQ(c.outbound.relayhost, "smart.example:587");
    EXPECT_EQ(c.outbound.relay_user, "u");
    EXPECT_EQ(c.outbound.tls, TlsPolicy::Encrypt);
    EXPECT_EQ(c.outbound.retry_min, std::chrono::seconds(2));
    EXPECT_EQ(c.outbound.retry_max, std::chrono::seconds(8));
    EXPECT_EQ(c.outbound.max_queue_lifetime, std::chrono::seconds(30));
    EXPECT_EQ(c.outbound.command_timeout, std::chrono::seconds(5));
    EXPECT_EQ(c.outbound.routes.at("example.org"), "127.0.0.1:2525");  // domains lower-cased
    EXPECT_EQ(c.outbound.tls_policy.at("secure.example"), TlsPolicy::Verify);
    Config d;
    EXPECT_THROW(load_toml(d, write("[outbound]\ntls = \"maybe\"\n")), std::runtime_error);
    EXPECT_THROW(load_toml(d, write("[outbound]\nrelay = \"x\"\n")), std::runtime_error);
    EXPECT_THROW(load_toml(d, write("[outbound]\nretry_min = 10\nretry_max = 5\n")),
                 std::runtime_error);
    EXPECT_THROW(load_toml(d, write("[outbound.routes]\n\"a.example\" = 25\n")),
                 std::runtime_error);
    EXPECT_THROW(load_toml(d, write("[outbound.other]\nx = 1\n")), std::runtime_error);
}

TEST(Config, OutboundNameserverAndMxPort) {
    Config c;
    EXPECT_EQ(c.outbound.nameserver, "");  // resolv.conf
    EXPECT_EQ(c.outbound.mx_port, 25);
    load_toml(c, write("[outbound]\nnameserver = \"127.0.0.1:5353\"\nmx_port = 2525\n"));
    EXPECT_EQ(c.outbound.nameserver, "127.0.0.1:5353");
    EXPECT_EQ(c.outbound.mx_port, 2525);
    load_toml(c, write("[outbound]\nnameserver = \"192.0.2.53\"\n"));  // port 53
    EXPECT_EQ(c.outbound.nameserver, "192.0.2.53");
    EXPECT_TRUE(millipost::config::valid_nameserver("10.0.0.1:53"));
    for (const char* bad : {"localhost", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                            "127.0.0.1:53x", "::1", "[::1]:53"}) {
        Config d;
        EXPECT_FALSE(millipost::config::valid_nameserver(bad)) << bad;
        EXPECT_THROW(load_toml(d, write(std::string("[outbound]\nnameserver = \"") + bad + "\"\n")),
                     std::runtime_error)
            << bad;
    }
    for (const char* bad : {"0", "65536", "-1", "\"25\""}) {
        Config d;
        EXPECT_THROW(load_toml(d, write(std::string("[outbound]\nmx_port = ") + bad + "\n")),
                     std::runtime_error)
            << bad;
    }
}
