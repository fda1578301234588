// auth/directory.cpp: the store's own users as the directory (see directory.h).
#include "auth/directory.h"

#include "auth/password.h"

namespace millipost::auth {

std::optional<store::User> StoreDirectory::authenticate(const std::string& login,
                                                        std::string_view password) {
    auto user = store_.find_user(login);
    // Counted by the caller (auth/sasl_session.cpp), with the throttling. An unknown login
    // costs a dummy check as long as a real one: IMAP LOGIN and POP3 USER/PASS must not tell
    // by their timing which logins exist (the SASL mechanisms do the same).
    if (!verify_login_password(user ? &user->secret : nullptr, password)) return std::nullopt;
    return user;
}

}  // namespace millipost::auth
