// smtp/session.h: an SMTP (RFC 5321) session: the per-connection state and the command table.
#pragma once
#include "net/connection.h"
#include "proto/line.h"
#include "proto/smtp/parser.h"
#include "store/mail_store.h"

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace millipost {
class Service;
}

namespace millipost::smtp {

// Which listener a session serves: inbound mail for local users (port 25) or message
// submission by authenticated users (RFC 6409: 587 with STARTTLS, RFC 8314: 465 implicit TLS).
enum class Role { Inbound, Submission };

// Runs one SMTP session on `conn` until QUIT, a timeout, an error or shutdown.
net::awaitable<void> serve(std::shared_ptr<net::Connection> conn, Service& svc,
                           Role role = Role::Inbound);

struct Session {
    Session(std::shared_ptr<net::Connection> c, Service& s, Role r = Role::Inbound);

    std::shared_ptr<net::Connection> conn;
    Service& svc;
    proto::LineParser lines;
    std::string out;  // replies not yet sent (PIPELINING: flushed before the next read)
    int errors = 0;
    int auth_failures = 0;  // failed AUTH exchanges (limits::kSmtpMaxAuthFailures)
    bool quit = false;

    // Session state (RFC 5321 §4.1.4).
    std::string helo;  // empty until HELO/EHLO
    bool esmtp = false;
    Role role = Role::Inbound;
    // The user of a successful AUTH (RFC 4954).
    std::optional<store::User> user;
    // Transaction state.
    bool in_mail = false;
    std::string reverse_path;
    bool smtputf8 = false;
    std::vector<std::string> forward_paths;
    std::set<store::UserId> recipients;
    std::vector<std::string> remote_paths;  // recipients in other domains (outbound queue)

    // Whether this session submits mail for its user (docs/submission.md): authenticated on a
    // submission listener, or on port 25 when [submission] inbound_auth_relay allows. Then the
    // sender and From: must belong to the user and other domains may be recipients.
    bool submitting() const;
    // Before a successful AUTH on a submission listener: tighter limits (limits.h), and only
    // the commands that lead to a login (or end the session) are served.
    bool pre_auth() const { return role == Role::Submission && !user; }
    // The idle timeout for the current state: [smtp] login_timeout before AUTH on submission.
    std::chrono::seconds timeout() const;

    void reply(int code, std::string_view status, std::string_view text);
    void reply_multi(int code, const std::vector<std::string>& lines);
    void reset_transaction();
    // Sends pending replies plus a 421 that says why the connection ends (timeout, shutdown).
    net::awaitable<void> goodbye();
};

// One command family's handler; `awaitable` because RCPT and DATA reach the store.
using CommandFn = net::awaitable<void> (*)(Session&, Command&);
struct CommandSpec {
    Verb verb;
    CommandFn fn;
};
// The command table (commands.cpp): what exists, at a glance.
const CommandSpec* find_command(Verb verb);
// Reads the message after a 354 and delivers it (data.cpp).
net::awaitable<void> receive_data(Session& s);
// Whether `address` (a reverse-path or From: address) belongs to `user`: the login itself,
// login@<a local domain>, or one of the user's [submission] aliases; case-insensitive.
// The null reverse-path and quoted local parts are nobody's (policy.cpp).
bool owns_address(const Service& svc, const store::User& user, std::string_view address);

}  // namespace millipost::smtp
