// imap/cmd_notify.cpp: NOTIFY (RFC 5465): NOTIFY SET [STATUS] with event groups for the
// selected mailbox, INBOX, all personal mailboxes, subscribed ones, subtrees and named ones;
// events MessageNew, MessageExpunge, FlagChange (as STATUS for mailboxes other than the selected
// one), MailboxName (LIST) and SubscriptionChange (LIST with \Subscribed); NOTIFY NONE.
#include "imap/context.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace millipost::imap {

using Group = NotifySpec::Group;

void Notifier::on_event(const store::Event& e) {
    using K = store::Event::Kind;
    bool message_event =
        e.kind == K::Appended || e.kind == K::FlagsChanged || e.kind == K::Expunged;
    if (message_event && e.mailbox == selected.load()) {
        dirty = true;
    } else if (watch_others) {
        std::lock_guard lock(others_mutex);
        if (others.size() < limits::kImapNotifyBacklog)
            others.push_back(e);
        else
            others_overflow = true;
        dirty = true;
    } else {
        return;
    }
    net::asio::post(executor, [self = shared_from_this()] {
        self->wake.expires_at(std::chrono::steady_clock::now());
    });
}

namespace {

bool in_subtree(std::string_view name, std::string_view root) {
    return name == root || (name.size() > root.size() && name.substr(0, root.size()) == root &&
                            name[root.size()] == '/');
}

constexpr std::string_view kSupported =
    "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange";

// The STATUS items an event set asks for (RFC 5465 §5.1-5.3), in this order.
std::string status_items(unsigned events, const store::Mailbox& mb) {
    std::string out;
    auto add = [&out](std::string_view name, std::uint64_t v) {
        if (!out.empty()) out += ' ';
        out += fmt::format("{} {}", name, v);
    };
    if (events & (NotifySpec::kMessageNew | NotifySpec::kMessageExpunge))
        add("MESSAGES", mb.messages);
    if (events & NotifySpec::kMessageNew) add("UIDNEXT", mb.uidnext);
    if (events & (NotifySpec::kMessageNew | NotifySpec::kFlagChange))
        add("UIDVALIDITY", mb.uidvalidity);
    if (events & NotifySpec::kFlagChange) add("HIGHESTMODSEQ", mb.highestmodseq);
    return out;
}

Parsed<unsigned> parse_events(const Arg& a) {
    if (a.is_atom() && upper_atom(a) == "NONE") return 0u;
    if (!a.is_list() || a.items.empty()) return bad("Syntax: events are (event ...) or NONE");
    unsigned events = 0;
    for (std::size_t i = 0; i < a.items.size(); ++i) {
        auto name = upper_atom(a.items[i]);
        if (name == "MESSAGENEW") {
            events |= NotifySpec::kMessageNew;
            // Optional fetch attributes for the new messages: the selected mailbox's updates
            // already name each new message by EXISTS; clients FETCH what they need.
            if (i + 1 < a.items.size() && a.items[i + 1].is_list()) ++i;
        } else if (name == "MESSAGEEXPUNGE") {
            events |= NotifySpec::kMessageExpunge;
        } else if (name == "FLAGCHANGE") {
            events |= NotifySpec::kFlagChange;
        } else if (name == "MAILBOXNAME") {
            events |= NotifySpec::kMailboxName;
        } else if (name == "SUBSCRIPTIONCHANGE") {
            events |= NotifySpec::kSubscriptionChange;
        } else if (name.empty()) {
            return bad("Syntax: events are (event ...) or NONE");
        } else {
            return ArgError{"unsupported event " + a.items[i].text,
                            "BADEVENT (" + std::string(kSupported) + ")"};
        }
    }
    return events;
}

Parsed<NotifySpec> parse_notify(const Session& s, const std::vector<Arg>& args, std::size_t first) {
    NotifySpec spec;
    std::size_t names = 0;
    for (std::size_t i = first; i < args.size(); ++i) {
        auto& g = args[i];
        if (!g.is_list() || g.items.size() < 2)
            return bad("Syntax: NOTIFY SET [STATUS] (filter events) ...");
        if (spec.groups.size() == limits::kImapNotifyMaxGroups) return bad("too many event groups");
        Group group;
        auto filter = upper_atom(g.items[0]);
        std::size_t next = 1;
        using F = Group::Filter;
        if (filter == "SELECTED") {
            group.filter = F::Selected;
        } else if (filter == "SELECTED-DELAYED") {
            group.filter = F::SelectedDelayed;
        } else if (filter == "INBOXES") {
            group.filter = F::Inboxes;
        } else if (filter == "PERSONAL") {
            group.filter = F::Personal;
        } else if (filter == "SUBSCRIBED") {
            group.filter = F::Subscribed;
        } else if (filter == "SUBTREE" || filter == "MAILBOXES") {
            group.filter = filter == "SUBTREE" ? F::Subtree : F::Mailboxes;
            if (g.items.size() < 3) return bad("Syntax: (" + filter + " mailbox-or-list events)");
            auto& m = g.items[1];
            std::vector<const Arg*> list;
            if (m.is_list()) {
                for (auto& x : m.items)
                    list.push_back(&x);
            } else {
                list.push_back(&m);
            }
            if (list.empty()) return bad("Syntax: (" + filter + " mailbox-or-list events)");
            for (auto* x : list) {
                auto name = parse_mailbox(*x, s.utf8);
                if (!name) return name.error();
                if (++names > limits::kImapNotifyMaxNames) return bad("too many mailbox names");
                group.names.push_back(*name);
            }
            next = 2;
        } else {
            return bad("unknown NOTIFY filter");
        }
        if (g.items.size() != next + 1) return bad("Syntax: NOTIFY SET [STATUS] (filter events)");
        auto events = parse_events(g.items[next]);
        if (!events) return events.error();
        group.events = *events;
        bool selected = group.filter == F::Selected || group.filter == F::SelectedDelayed;
        if (selected &&
            (group.events & (NotifySpec::kMailboxName | NotifySpec::kSubscriptionChange)))
            return ArgError{"SELECTED takes message events only", "CLIENTBUG"};
        spec.groups.push_back(std::move(group));
    }
    return spec;
}

}  // namespace

unsigned NotifySpec::events_for(std::string_view name,
                                const std::vector<std::string>& subscribed) const {
    unsigned events = 0;
    for (auto& g : groups) {
        using F = Group::Filter;
        bool match = false;
        switch (g.filter) {
            case F::Selected:
            case F::SelectedDelayed:
                break;
            case F::Inboxes:
                match = name == store::kInbox;
                break;
            case F::Personal:
                match = true;
                break;
            case F::Subscribed:
                match = std::find(subscribed.begin(), subscribed.end(), name) != subscribed.end();
                break;
            case F::Subtree:
                match = std::any_of(g.names.begin(), g.names.end(),
                                    [&](const std::string& r) { return in_subtree(name, r); });
                break;
            case F::Mailboxes:
                match = std::find(g.names.begin(), g.names.end(), name) != g.names.end();
                break;
        }
        if (match) events |= g.events;
    }
    return events;
}

net::awaitable<void> cmd_notify(Session& s, Command& c) {
    auto verb = c.args.empty() ? std::string() : upper_atom(c.args[0]);
    if (verb == "NONE" && c.args.size() == 1) {
        s.notify.reset();
        s.notifier->watch_others = false;
        std::lock_guard lock(s.notifier->others_mutex);
        s.notifier->others.clear();
        s.notifier->others_overflow = false;
        s.ok(c, "NOTIFY completed");
        co_return;
    }
    if (verb != "SET" || c.args.size() < 2) {
        s.bad(c, "Syntax: NOTIFY NONE | NOTIFY SET [STATUS] (filter events) ...");
        co_return;
    }
    bool status = upper_atom(c.args[1]) == "STATUS";
    auto spec = parse_notify(s, c.args, status ? 2 : 1);
    if (!spec) {
        s.arg_error(c, spec.error());
        co_return;
    }
    if (spec->groups.empty()) {
        s.bad(c, "Syntax: NOTIFY SET [STATUS] (filter events) ...");
        co_return;
    }
    {
        std::lock_guard lock(s.notifier->others_mutex);
        s.notifier->others.clear();
        s.notifier->others_overflow = false;
    }
    s.notify = std::move(*spec);
    s.notifier->watch_others = true;
    if (status) {
        // RFC 5465 §3.1: the current STATUS of every mailbox the message events watch, except
        // the selected one.
        auto& store = s.svc.store();
        auto user = s.user.id;
        auto load = [&store, user] {
            return std::make_pair(store.list_mailboxes(user), store.subscriptions(user));
        };
        auto [boxes, subscribed] = co_await s.blocking(std::move(load));
        for (auto& mb : boxes) {
            if (s.state == kSelected && mb.id == s.view.mailbox.id) continue;
            auto items = status_items(s.notify->events_for(mb.name, subscribed), mb);
            if (items.empty()) continue;
            s.untagged(fmt::format("STATUS {} ({})", mailbox_name(s, mb.name), items));
        }
    }
    s.ok(c, "NOTIFY completed");
}

net::awaitable<void> report_other_mailboxes(Session& s) {
    if (!s.notify) co_return;
    std::vector<store::Event> events;
    bool overflow;
    {
        std::lock_guard lock(s.notifier->others_mutex);
        events.swap(s.notifier->others);
        overflow = s.notifier->others_overflow;
        s.notifier->others_overflow = false;
    }
    if (events.empty() && !overflow) co_return;
    auto& store = s.svc.store();
    auto user = s.user.id;
    auto load = [&store, user] {
        return std::make_pair(store.list_mailboxes(user), store.subscriptions(user));
    };
    auto [boxes, subscribed] = co_await s.blocking(std::move(load));
    std::map<store::MailboxId, const store::Mailbox*> by_id;
    for (auto& mb : boxes)
        by_id[mb.id] = &mb;
    using K = store::Event::Kind;
    std::map<store::MailboxId, unsigned> status;  // mailbox -> events that happened
    auto selected = s.state == kSelected ? s.view.mailbox.id : 0;
    for (auto& e : events) {
        switch (e.kind) {
            case K::Appended:
                status[e.mailbox] |= NotifySpec::kMessageNew;
                break;
            case K::Expunged:
                status[e.mailbox] |= NotifySpec::kMessageExpunge;
                break;
            case K::FlagsChanged:
                status[e.mailbox] |= NotifySpec::kFlagChange;
                break;
            case K::MailboxCreated:
            case K::MailboxDeleted:
            case K::MailboxRenamed: {
                if (!(s.notify->events_for(e.name, subscribed) & NotifySpec::kMailboxName)) break;
                std::string attrs = e.kind == K::MailboxDeleted ? "\\NonExistent" : "";
                std::string line =
                    fmt::format("LIST ({}) \"/\" {}", attrs, mailbox_name(s, e.name));
                if (e.kind == K::MailboxRenamed)
                    line += " (\"OLDNAME\" (" + mailbox_name(s, e.old_name) + "))";
                s.untagged(line);
                break;
            }
            case K::SubscriptionChanged: {
                if (!(s.notify->events_for(e.name, subscribed) & NotifySpec::kSubscriptionChange))
                    break;
                bool on =
                    std::find(subscribed.begin(), subscribed.end(), e.name) != subscribed.end();
                bool exists = std::any_of(boxes.begin(), boxes.end(), [&](const store::Mailbox& m) {
                    return m.name == e.name;
                });
                std::string attrs = on ? "\\Subscribed" : "";
                if (!exists) attrs += attrs.empty() ? "\\NonExistent" : " \\NonExistent";
                s.untagged(fmt::format("LIST ({}) \"/\" {}", attrs, mailbox_name(s, e.name)));
                break;
            }
        }
    }
    if (overflow)
        for (auto& mb : boxes)
            status[mb.id] |=
                NotifySpec::kMessageNew | NotifySpec::kMessageExpunge | NotifySpec::kFlagChange;
    for (auto& [id, happened] : status) {
        if (id == selected) continue;
        auto it = by_id.find(id);
        if (it == by_id.end()) continue;  // deleted since
        auto& mb = *it->second;
        unsigned wanted = s.notify->events_for(mb.name, subscribed);
        if (!(wanted & happened)) continue;
        auto items = status_items(wanted, mb);
        if (!items.empty())
            s.untagged(fmt::format("STATUS {} ({})", mailbox_name(s, mb.name), items));
    }
}

}  // namespace millipost::imap
