// imap/session.h: an IMAP4rev2 (RFC 9051) session with IMAP4rev1 (RFC 3501) compatibility.
#pragma once
#include "net/connection.h"

#include <memory>

namespace millipost {
class Service;
}

namespace millipost::imap {

// Runs one IMAP session on `conn`: greeting, commands until LOGOUT, timeout or shutdown.
net::awaitable<void> serve(std::shared_ptr<net::Connection> conn, Service& svc);

}  // namespace millipost::imap
