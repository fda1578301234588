// support/imap_target.h: which IMAP server the IMAP model properties run against. By default an
// in-process reference service (one per process, users "alice" and "bob"); millipost-check sets
// any other server by URL. The models only touch mailboxes under a per-case prefix, so a target
// that holds other mail is not disturbed and leftover mailboxes are deleted at the end of a case.
#pragma once
#include "support/imap_client.h"

#include <string>
#include <utility>
#include <vector>

namespace millipost::props::imap {

struct Target {
    Endpoint at;
    std::vector<std::pair<std::string, std::string>> users;  // login, password; at least one
};

// The target for this process: the one set by set_target, else an in-process service started
// on first use.
const Target& target();
void set_target(Target t);

// Parses imap://LOGIN:PASSWORD@HOST[:PORT] (percent-escapes in login and password).
Target parse_url(const std::string& url);

// A mailbox name prefix no earlier case of this process (nor, very likely, any other run) used.
std::string unique_prefix();

}  // namespace millipost::props::imap
