// auth/ldap_directory.cpp: the LDAP user directory over libldap (see ldap_directory.h).
#include "auth/ldap_directory.h"

#include "util/limits.h"

#include <ldap.h>
#include <spdlog/spdlog.h>

#include <memory>

namespace millipost::auth {

std::string ldap_filter_escape(std::string_view value) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(value.size());
    for (unsigned char c : value) {
        bool plain = c > 0x20 && c < 0x7f && c != '*' && c != '(' && c != ')' && c != '\\';
        if (plain) {
            out += static_cast<char>(c);
        } else {
            out += '\\';
            out += hex[c >> 4];
            out += hex[c & 0xf];
        }
    }
    return out;
}

std::string ldap_user_filter(std::string_view pattern, std::string_view login) {
    std::string out;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] == '%' && i + 1 < pattern.size() && pattern[i + 1] == 'u') {
            out += ldap_filter_escape(login);
            ++i;
        } else {
            out += pattern[i];
        }
    }
    return out;
}

namespace {

struct Unbind {
    void operator()(LDAP* ld) const { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};
using Handle = std::unique_ptr<LDAP, Unbind>;

struct MsgFree {
    void operator()(LDAPMessage* m) const { ldap_msgfree(m); }
};

[[noreturn]] void unavailable(const std::string& what, int rc) {
    std::string why = what + ": " + ldap_err2string(rc);
    spdlog::warn("ldap: {}", why);
    throw DirectoryUnavailable(why);
}

// Result codes that mean "these credentials do not log in" rather than "cannot tell now".
bool is_refusal(int rc) {
    return rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INAPPROPRIATE_AUTH ||
           rc == LDAP_INSUFFICIENT_ACCESS || rc == LDAP_UNWILLING_TO_PERFORM;
}

int simple_bind(LDAP* ld, const std::string& dn, std::string_view password) {
    berval cred{static_cast<ber_len_t>(password.size()), const_cast<char*>(password.data())};
    return ldap_sasl_bind_s(ld, dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
}

std::string first_value(LDAP* ld, LDAPMessage* entry, const std::string& attr) {
    std::string out;
    if (berval** vals = ldap_get_values_len(ld, entry, attr.c_str())) {
        if (vals[0]) out.assign(vals[0]->bv_val, vals[0]->bv_len);
        ldap_value_free_len(vals);
    }
    return out;
}

}  // namespace

// A service-bound connection out of the pool (or new), back into it when released healthy.
class LdapDirectory::Lease {
  public:
    explicit Lease(LdapDirectory& d) : d_(d) {
        std::lock_guard lock(d_.mutex_);
        if (!d_.idle_.empty()) {
            ld_.reset(d_.idle_.back());
            d_.idle_.pop_back();
            reused_ = true;
        }
    }
    ~Lease() {
        if (!ld_) return;
        std::lock_guard lock(d_.mutex_);
        if (d_.idle_.size() < limits::kLdapPoolSize) d_.idle_.push_back(ld_.release());
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    LDAP* get() {
        if (!ld_) ld_.reset(d_.connect(true));
        return ld_.get();
    }
    bool reused() const { return reused_; }
    void discard() { ld_.reset(); }

  private:
    LdapDirectory& d_;
    Handle ld_;
    bool reused_ = false;
};

LdapDirectory::LdapDirectory(config::LdapConfig cfg, store::MailStore& store)
    : cfg_(std::move(cfg)), store_(store), dummy_dn_("cn=millipost-no-such-user," + cfg_.base_dn) {}

LdapDirectory::~LdapDirectory() {
    for (LDAP* ld : idle_)
        Unbind{}(ld);
}

LDAP* LdapDirectory::connect(bool service) {
    LDAP* raw = nullptr;
    int rc = ldap_initialize(&raw, cfg_.uri.c_str());
    if (rc != LDAP_SUCCESS) unavailable("bad uri " + cfg_.uri, rc);
    Handle ld(raw);
    int version = LDAP_VERSION3;
    timeval tv{static_cast<time_t>(cfg_.timeout.count()), 0};
    // NETWORK_TIMEOUT bounds connect(); TIMEOUT every synchronous operation after it.
    if (ldap_set_option(raw, LDAP_OPT_PROTOCOL_VERSION, &version) != LDAP_OPT_SUCCESS ||
        ldap_set_option(raw, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
        ldap_set_option(raw, LDAP_OPT_NETWORK_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
        ldap_set_option(raw, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS)
        unavailable("setting options", LDAP_OTHER);
    // A CA of our own for this connection: the option, then a new TLS context that takes it
    // (libldap's global context would keep ldap.conf's settings).
    if (!cfg_.ca_file.empty()) {
        int server_side = 0;
        if (ldap_set_option(raw, LDAP_OPT_X_TLS_CACERTFILE, cfg_.ca_file.c_str()) !=
                LDAP_OPT_SUCCESS ||
            ldap_set_option(raw, LDAP_OPT_X_TLS_NEWCTX, &server_side) != LDAP_OPT_SUCCESS)
            unavailable("TLS CA file " + cfg_.ca_file, LDAP_OTHER);
    }
    if (cfg_.starttls) {
        rc = ldap_start_tls_s(raw, nullptr, nullptr);
        if (rc != LDAP_SUCCESS) unavailable("StartTLS with " + cfg_.uri, rc);
    }
    // No bind_dn: the searches run anonymously (LDAPv3 needs no bind for that).
    if (service && !cfg_.bind_dn.empty()) {
        rc = simple_bind(raw, cfg_.bind_dn, cfg_.bind_password);
        if (rc != LDAP_SUCCESS) unavailable("service bind as " + cfg_.bind_dn, rc);
    }
    return ld.release();
}

std::optional<LdapDirectory::Entry> LdapDirectory::search(const std::string& filter) {
    for (int attempt = 0;; ++attempt) {
        Lease lease(*this);
        LDAP* ld = lease.get();
        std::string login_attr = cfg_.login_attribute;
        char* attrs[] = {login_attr.data(), nullptr};
        timeval tv{static_cast<time_t>(cfg_.timeout.count()), 0};
        LDAPMessage* raw = nullptr;
        // Size limit 2: one entry is an answer, two are an ambiguous filter (refused).
        int rc = ldap_search_ext_s(ld, cfg_.base_dn.c_str(), LDAP_SCOPE_SUBTREE, filter.c_str(),
                                   attrs, 0, nullptr, nullptr, &tv, 2, &raw);
        std::unique_ptr<LDAPMessage, MsgFree> res(raw);
        if (rc == LDAP_SIZELIMIT_EXCEEDED || rc == LDAP_NO_SUCH_OBJECT) return std::nullopt;
        if (rc != LDAP_SUCCESS) {
            lease.discard();
            // A pooled connection the server closed meanwhile (restart, idle timeout): once
            // more on a new one.
            if (rc == LDAP_SERVER_DOWN && lease.reused() && attempt == 0) continue;
            unavailable("search " + filter, rc);
        }
        if (ldap_count_entries(ld, res.get()) != 1) return std::nullopt;
        LDAPMessage* e = ldap_first_entry(ld, res.get());
        Entry out;
        if (char* dn = ldap_get_dn(ld, e)) {
            out.dn = dn;
            ldap_memfree(dn);
        }
        out.login = first_value(ld, e, cfg_.login_attribute);
        if (out.dn.empty() || out.login.empty()) return std::nullopt;
        return out;
    }
}

bool LdapDirectory::bind_as(const std::string& dn, std::string_view password) {
    // Never an unauthenticated bind (RFC 4513 §5.1.2): the server would say yes to anyone.
    if (password.empty()) return false;
    Handle ld(connect(false));
    int rc = simple_bind(ld.get(), dn, password);
    if (rc == LDAP_SUCCESS) return true;
    if (is_refusal(rc)) return false;
    unavailable("bind as " + dn, rc);
}

std::optional<store::User> LdapDirectory::provision(const Entry& e) {
    if (auto u = store_.find_user(e.login)) return u;
    try {
        store_.add_user(e.login, "!");
        spdlog::info("ldap: created user {} for {}", e.login, e.dn);
    } catch (const store::StoreError&) {  // created meanwhile by another session
    }
    return store_.find_user(e.login);
}

std::optional<store::User> LdapDirectory::authenticate(const std::string& login,
                                                       std::string_view password) {
    if (login.empty() || password.empty()) return std::nullopt;
    auto entry = search(ldap_user_filter(cfg_.user_filter, login));
    bool ok = bind_as(entry ? entry->dn : dummy_dn_, password);
    if (!entry || !ok) return std::nullopt;
    return provision(*entry);
}

std::optional<store::User> LdapDirectory::find_recipient(const std::string& address) {
    if (address.empty()) return std::nullopt;
    auto entry = search("(" + cfg_.mail_attribute + "=" + ldap_filter_escape(address) + ")");
    if (!entry) return std::nullopt;
    return provision(*entry);
}

}  // namespace millipost::auth
