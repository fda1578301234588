// imap/cmd_any.cpp: commands valid in any state: CAPABILITY, NOOP, LOGOUT, ID, and ENABLE.
#include "imap/context.h"
#include "util/limits.h"

#include <fmt/format.h>

namespace millipost::imap {

net::awaitable<void> cmd_capability(Session& s, Command& c) {
    s.untagged("CAPABILITY " + capabilities(s));
    s.ok(c, "CAPABILITY completed");
    co_return;
}

net::awaitable<void> cmd_noop(Session& s, Command& c) {
    if (!c.args.empty()) {
        s.bad(c, "NOOP takes no arguments");
        co_return;
    }
    co_await s.sync(true, true);
    s.ok(c, "NOOP completed");
}

net::awaitable<void> cmd_logout(Session& s, Command& c) {
    s.untagged("BYE millipost IMAP server signing off");
    s.ok(c, "LOGOUT completed");
    s.state = kLogout;
    co_return;
}

// RFC 2971: the client's parameters are checked against the §3.3 limits, then ignored; ours
// name the server.
net::awaitable<void> cmd_id(Session& s, Command& c) {
    if (c.args.size() != 1 || !(c.args[0].is_list() || c.args[0].is_nil())) {
        s.bad(c, "Syntax: ID (field value ...) or ID NIL");
        co_return;
    }
    if (c.args[0].is_list()) {
        auto& items = c.args[0].items;
        if (items.size() % 2 != 0) {
            s.bad(c, "ID: a field without a value");
            co_return;
        }
        if (items.size() / 2 > limits::kImapIdMaxPairs) {
            s.bad(c, "ID: more than 30 field-value pairs (RFC 2971)");
            co_return;
        }
        for (std::size_t i = 0; i < items.size(); i += 2) {
            auto& field = items[i];
            auto& value = items[i + 1];
            if (!field.is_string()) {
                s.bad(c, "ID: fields are strings");
                co_return;
            }
            if (!(value.is_string() || value.is_nil())) {
                s.bad(c, "ID: values are strings or NIL");
                co_return;
            }
            if (field.text.size() > limits::kImapIdMaxField ||
                (value.is_string() && value.text.size() > limits::kImapIdMaxValue)) {
                s.bad(c, "ID: field longer than 30 or value longer than 1024 octets (RFC 2971)");
                co_return;
            }
        }
    }
    s.untagged(R"(ID ("name" "millipost" "version" "0.1.0"))");
    s.ok(c, "ID completed");
    co_return;
}

// RFC 5161: IMAP4rev2 (RFC 9051 §6.3.1), UTF8=ACCEPT (RFC 6855), CONDSTORE and QRESYNC
// (RFC 7162); others are ignored.
net::awaitable<void> cmd_enable(Session& s, Command& c) {
    if (c.args.empty()) {
        s.bad(c, "Syntax: ENABLE capability ...");
        co_return;
    }
    std::string enabled;
    for (auto& a : c.args) {
        auto name = upper_atom(a);
        if (name == "IMAP4REV2" && !s.rev2) {
            s.rev2 = true;
            s.utf8 = true;
            enabled += " IMAP4rev2";
        } else if (name == "UTF8=ACCEPT") {
            s.utf8 = true;
            enabled += " UTF8=ACCEPT";
        } else if (name == "CONDSTORE") {
            s.enable_condstore();
            enabled += " CONDSTORE";
        } else if (name == "QRESYNC") {
            // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
            s.enable_condstore();
            s.qresync = true;
            enabled += " QRESYNC";
        }
    }
    s.untagged("ENABLED" + enabled);
    s.ok(c, "ENABLE completed");
    co_return;
}

}  // namespace millipost::imap
