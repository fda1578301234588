// smtp/policy.cpp: the submission policy's address ownership (docs/submission.md).
#include "service.h"
#include "smtp/session.h"

#include <algorithm>
#include <cctype>

namespace millipost::smtp {
namespace {

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

bool owns_address(const Service& svc, const store::User& user, std::string_view address) {
    if (address.empty()) return false;  // <>: bounces come from the server, not from users
    if (iequal(address, user.login)) return true;
    auto [local, domain] = split_address(address);
    // A quoted local part ("alice"@host) or one with routing characters (alice%x@host) names
    // some other mailbox as far as a downstream server is concerned: only an exact alias counts.
    bool plain = !local.empty() && local.front() != '"' &&
                 local.find_first_of("%!:\\") == std::string_view::npos;
    if (plain && !domain.empty() && svc.is_local_domain(domain) && iequal(local, user.login))
        return true;
    auto it = svc.config().sender_aliases.find(user.login);
    if (it == svc.config().sender_aliases.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(),
                       [&](const std::string& a) { return iequal(a, address); });
}

}  // namespace millipost::smtp
