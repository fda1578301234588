// auth/directory.h: where logins and passwords are checked ([auth] directory, docs/auth.md).
// The built-in directory is the store's users and their SCRAM secrets (auth/password.h); the
// LDAP one (auth/ldap_directory.h) checks a password by binding to a directory server as the
// user, and creates the user in the store at the first successful login, since mailboxes still
// live in millipost. Either way a session ends up with a store::User.
//
// All methods block (PBKDF2, network round trips): call them on the blocking pool.
#pragma once
#include "store/mail_store.h"

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace millipost::auth {

// The directory could not answer (server down, timeout, misconfigured service bind): a
// temporary failure for the client, never "wrong password".
class DirectoryUnavailable : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class UserDirectory {
  public:
    virtual ~UserDirectory() = default;
    // The store's user for these credentials, or nothing when they are wrong. A refusal takes
    // as long for an unknown login as for a wrong password. Throws DirectoryUnavailable.
    virtual std::optional<store::User> authenticate(const std::string& login,
                                                    std::string_view password) = 0;
    // The store's user that mail to `address` goes to when the store does not know the address
    // itself (Service::resolve_recipient), or nothing. Throws DirectoryUnavailable.
    virtual std::optional<store::User> find_recipient(const std::string& address) = 0;
    // Whether SCRAM can run: it needs the stored keys, which a bind-only directory has not.
    virtual bool has_scram_secrets() const = 0;
};

// The store's own users (the default).
class StoreDirectory : public UserDirectory {
  public:
    explicit StoreDirectory(store::MailStore& store) : store_(store) {}
    std::optional<store::User> authenticate(const std::string& login,
                                            std::string_view password) override;
    std::optional<store::User> find_recipient(const std::string&) override { return {}; }
    bool has_scram_secrets() const override { return true; }

  private:
    store::MailStore& store_;
};

}  // namespace millipost::auth
