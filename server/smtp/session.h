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

// Runs one SMTP session on `conn` until QUIT, a timeout, an error or shutdown.
net::awaitable<void> serve(std::shared_ptr<net::Connection> conn, Service& svc);

struct Session {
    Session(std::shared_ptr<net::Connection> c, Service& s);

    std::shared_ptr<net::Connection> conn;
    Service& svc;
    proto::LineParser lines;
    std::string out;  // replies not yet sent (PIPELINING: flushed before the next read)
    int errors = 0;
    bool quit = false;

    // Session state (RFC 5321 §4.1.4).
    std::string helo;  // empty until HELO/EHLO
    bool esmtp = false;
    // The user of a successful AUTH (RFC 4954); submission policy is applied elsewhere.
    std::optional<store::User> user;
    // Transaction state.
    bool in_mail = false;
    std::string reverse_path;
    bool smtputf8 = false;
    std::vector<std::string> forward_paths;
    std::set<store::UserId> recipients;

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

}  // namespace millipost::smtp
