// auth/ldap_directory.h: an LDAP directory as the user directory ([auth] directory = "ldap",
// docs/auth.md), over OpenLDAP's libldap.
//
// A login is checked in two steps (RFC 4513 §5.2 "search, then bind"): a search under base_dn
// for user_filter with %u replaced by the login, escaped (RFC 4515 §3), bound as bind_dn (or
// anonymously); then a simple bind as the one entry found, with the password. We never see or
// compare a stored password, and an empty password never reaches the server: to LDAP a simple
// bind with a DN and no password is an unauthenticated bind that "succeeds" (RFC 4513 §5.1.2).
// A login with no entry binds as a DN that does not exist instead, so that it is refused after
// the same round trips as a wrong password.
//
// A user authenticated for the first time is created in the store (with the unusable secret
// "!": its password stays in the directory), named by the entry's login_attribute. Mail to an
// address of a local domain that the store does not know is looked up by mail_attribute, and
// the user is created then too: delivery does not wait for a first login.
//
// libldap blocks: every method runs on the blocking pool. Searches reuse connections bound as
// the service (a small pool, one connection per concurrent caller); a user bind gets a fresh
// connection, so that a pooled one never changes identity. Connecting and every operation are
// bounded by [ldap] timeout; the server being unreachable, slow or refusing the service bind
// throws DirectoryUnavailable.
#pragma once
#include "auth/directory.h"
#include "config/config.h"

#include <mutex>
#include <vector>

typedef struct ldap LDAP;

namespace millipost::auth {

// RFC 4515 §3: a value inside a search filter, with `*`, `(`, `)`, `\`, NUL and every byte
// outside printable ASCII written as `\xx`, so that a login matches only itself.
std::string ldap_filter_escape(std::string_view value);
// `pattern` with each "%u" replaced by ldap_filter_escape(login).
std::string ldap_user_filter(std::string_view pattern, std::string_view login);

class LdapDirectory : public UserDirectory {
  public:
    LdapDirectory(config::LdapConfig cfg, store::MailStore& store);
    ~LdapDirectory() override;
    LdapDirectory(const LdapDirectory&) = delete;
    LdapDirectory& operator=(const LdapDirectory&) = delete;

    std::optional<store::User> authenticate(const std::string& login,
                                            std::string_view password) override;
    std::optional<store::User> find_recipient(const std::string& address) override;
    bool has_scram_secrets() const override { return false; }

  private:
    struct Entry {
        std::string dn;
        std::string login;  // login_attribute's first value
    };
    class Lease;

    // The one entry matching `filter`, or nothing (none, or more than one).
    std::optional<Entry> search(const std::string& filter);
    // Whether a simple bind as `dn` with `password` succeeds (on a connection of its own).
    bool bind_as(const std::string& dn, std::string_view password);
    // A new connection, with the options set, StartTLS done and, if `service`, bound as bind_dn.
    LDAP* connect(bool service);
    // The store's user for an entry, created on first use.
    std::optional<store::User> provision(const Entry& e);

    config::LdapConfig cfg_;
    store::MailStore& store_;
    std::string dummy_dn_;  // bound instead of a missing entry (equal timing)
    std::mutex mutex_;
    std::vector<LDAP*> idle_;  // service-bound connections, at most kLdapPoolSize
};

}  // namespace millipost::auth
