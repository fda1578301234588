// pop3/session.h: a POP3 (RFC 1939, RFC 2449) session.
#pragma once
#include "net/connection.h"

#include <memory>

namespace millipost {
class Service;
}

namespace millipost::pop3 {

// Runs one POP3 session on `conn`: AUTHORIZATION, TRANSACTION, and UPDATE on QUIT.
net::awaitable<void> serve(std::shared_ptr<net::Connection> conn, Service& svc);

}  // namespace millipost::pop3
