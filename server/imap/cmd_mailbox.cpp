// imap/cmd_mailbox.cpp: mailbox commands: SELECT/EXAMINE, CREATE, DELETE, RENAME (INBOX moves
// its messages), SUBSCRIBE/UNSUBSCRIBE, LIST/LSUB with '*'/'%' patterns and the basic
// LIST-EXTENDED options, NAMESPACE and STATUS.
#include "imap/context.h"
#include "proto/imap/list.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

namespace millipost::imap {

namespace {

using store::StoreError;

// '*' matches anything, '%' anything but the hierarchy separator (RFC 9051 §6.3.9).
bool wildcard_match(std::string_view pat, std::string_view name) {
    if (pat.empty()) return name.empty();
    char p = pat.front();
    if (p == '*' || p == '%') {
        for (std::size_t i = 0; i <= name.size(); ++i) {
            if (wildcard_match(pat.substr(1), name.substr(i))) return true;
            if (i < name.size() && p == '%' && name[i] == '/') return false;
        }
        return false;
    }
    return !name.empty() && name.front() == p && wildcard_match(pat.substr(1), name.substr(1));
}

bool list_match(std::string_view pattern, std::string_view name) {
    if (wildcard_match(pattern, name)) return true;
    // INBOX is case-insensitive, also when a pattern spells it otherwise ("inbox", "Inbox/%").
    if (pattern.size() >= 5) {
        std::string head(pattern.substr(0, 5));
        std::transform(head.begin(), head.end(), head.begin(),
                       [](unsigned char ch) { return std::toupper(ch); });
        if (head == "INBOX") return wildcard_match("INBOX" + std::string(pattern.substr(5)), name);
    }
    return false;
}

// The STATUS data of a mailbox: "(MESSAGES 3 UIDNEXT 4)".
std::string status_data(const store::Mailbox& mb, const std::vector<store::Message>& msgs,
                        const std::vector<StatusItem>& items) {
    std::string out = "(";
    for (auto item : items) {
        if (out.size() > 1) out += ' ';
        out += status_item_name(item);
        out += ' ';
        std::uint64_t v = 0;
        switch (item) {
            case StatusItem::Messages:
                v = msgs.size();
                break;
            case StatusItem::UidNext:
                v = mb.uidnext;
                break;
            case StatusItem::UidValidity:
                v = mb.uidvalidity;
                break;
            case StatusItem::Unseen:
            case StatusItem::Deleted: {
                std::string_view flag = item == StatusItem::Unseen ? "\\Seen" : "\\Deleted";
                bool want = item == StatusItem::Deleted;
                for (auto& m : msgs) {
                    bool has = std::find(m.flags.begin(), m.flags.end(), flag) != m.flags.end();
                    if (has == want) ++v;
                }
                break;
            }
            case StatusItem::Size:
                v = mb.size;
                break;
            case StatusItem::Recent:
                v = 0;
                break;
            case StatusItem::HighestModSeq:
                v = mb.highestmodseq;
                break;
        }
        out += std::to_string(v);
    }
    out += ')';
    return out;
}

net::awaitable<std::optional<std::pair<store::Mailbox, std::vector<store::Message>>>> load_mailbox(
    Session& s, const std::string& name) {
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto load = [&store, uid,
                 name]() -> std::optional<std::pair<store::Mailbox, std::vector<store::Message>>> {
        auto mb = store.find_mailbox(uid, name);
        if (!mb) return std::nullopt;
        return std::make_pair(*mb, store.messages(uid, mb->id));
    };
    auto r = co_await s.blocking(std::move(load));
    co_return r;
}

// The one mailbox argument of SELECT, EXAMINE, CREATE, DELETE, SUBSCRIBE and UNSUBSCRIBE;
// nothing after replying BAD/NO when it is missing or malformed.
std::optional<std::string> one_mailbox(Session& s, Command& c) {
    if (c.args.size() != 1) {
        s.bad(c, fmt::format("Syntax: {} mailbox", c.name));
        return std::nullopt;
    }
    auto name = parse_mailbox(c.args[0], s.utf8);
    if (!name) {
        s.arg_error(c, name.error());
        return std::nullopt;
    }
    return *name;
}

}  // namespace

net::awaitable<void> cmd_select(Session& s, Command& c) {
    bool examine = c.name == "EXAMINE";
    auto name = one_mailbox(s, c);
    if (!name) co_return;
    if (s.state == kSelected) {
        s.deselect();
        s.untagged("OK [CLOSED] previous mailbox closed");
    }
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto n = *name;
    auto find = [&store, uid, n] { return store.find_mailbox(uid, n); };
    auto mb = co_await s.blocking(std::move(find));
    if (!mb) {
        s.no(c, "no such mailbox", "NONEXISTENT");
        co_return;
    }
    s.notifier->selected = mb->id;
    s.notifier->dirty = false;
    auto id = mb->id;
    auto list = [&store, uid, id] { return store.messages(uid, id); };
    std::vector<store::Message> msgs;
    try {
        msgs = co_await s.blocking(std::move(list));
    } catch (const StoreError&) {
        s.notifier->selected = 0;
        s.no(c, "no such mailbox", "NONEXISTENT");
        co_return;
    }
    std::set<std::string> keywords;
    std::uint32_t first_unseen = 0;
    for (std::size_t i = 0; i < msgs.size(); ++i) {
        bool seen = false;
        for (auto& f : msgs[i].flags) {
            if (f == "\\Seen") seen = true;
            if (!system_flag(f)) keywords.insert(f);
        }
        if (!seen && !first_unseen) first_unseen = static_cast<std::uint32_t>(i + 1);
    }
    s.view.reset(*mb, std::move(msgs));
    s.view.read_only = examine;
    s.state = kSelected;
    std::string kw;
    for (auto& k : keywords)
        kw += " " + k;
    s.keywords = std::move(keywords);
    s.untagged("FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft" + kw + ")");
    s.untagged(examine ? std::string("OK [PERMANENTFLAGS ()] read-only")
                       : "OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft" + kw +
                             " \\*)] flags permitted");
    s.untagged(fmt::format("{} EXISTS", s.view.size()));
    if (!s.rev2) {
        s.untagged("0 RECENT");
        if (first_unseen) s.untagged(fmt::format("OK [UNSEEN {}] first unseen", first_unseen));
    }
    s.untagged(fmt::format("OK [UIDVALIDITY {}] UIDs valid", mb->uidvalidity));
    s.untagged(fmt::format("OK [UIDNEXT {}] predicted next UID", mb->uidnext));
    s.untagged(fmt::format("OK [HIGHESTMODSEQ {}] highest", mb->highestmodseq));
    if (s.rev2) s.untagged("LIST () \"/\" " + mailbox_name(s, mb->name));
    s.ok(c, fmt::format("{} completed", c.name), examine ? "READ-ONLY" : "READ-WRITE");
}

net::awaitable<void> cmd_create(Session& s, Command& c) {
    auto name = one_mailbox(s, c);
    if (!name) co_return;
    std::string n = *name;
    while (!n.empty() && n.back() == '/')
        n.pop_back();
    if (n.empty() || n.find("//") != std::string::npos || n.front() == '/' ||
        n.find_first_of("*%") != std::string::npos) {
        s.no(c, "invalid mailbox name", "CANNOT");
        co_return;
    }
    auto& store = s.svc.store();
    auto uid = s.user.id;
    // Superior names are created too (RFC 9051 §6.3.4).
    auto create = [&store, uid, n] {
        for (auto pos = n.find('/'); pos != std::string::npos; pos = n.find('/', pos + 1)) {
            auto parent = n.substr(0, pos);
            if (!store.find_mailbox(uid, parent)) {
                try {
                    store.create_mailbox(uid, parent);
                } catch (const StoreError&) {
                }
            }
        }
        store.create_mailbox(uid, n);
    };
    try {
        co_await s.blocking(std::move(create));
    } catch (const StoreError& e) {
        if (e.kind() == StoreError::Kind::Exists)
            s.no(c, "mailbox already exists", "ALREADYEXISTS");
        else
            s.no(c, e.what(), "CANNOT");
        co_return;
    }
    s.ok(c, "CREATE completed");
}

net::awaitable<void> cmd_delete(Session& s, Command& c) {
    auto name = one_mailbox(s, c);
    if (!name) co_return;
    if (*name == store::kInbox) {
        s.no(c, "INBOX cannot be deleted", "CANNOT");
        co_return;
    }
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto n = *name;
    auto* index = s.svc.search_index();
    auto remove = [&store, uid, n, index]() -> store::MailboxId {
        auto mb = store.find_mailbox(uid, n);
        if (!mb) return 0;
        store.delete_mailbox(uid, mb->id);
        // The store may reuse the id for a new mailbox: its index rows must not survive.
        if (index) {
            try {
                index->drop_mailbox(uid, mb->id);
            } catch (const std::exception&) {
            }
        }
        return mb->id;
    };
    store::MailboxId removed = 0;
    try {
        removed = co_await s.blocking(std::move(remove));
    } catch (const StoreError&) {
    }
    if (!removed) {
        s.no(c, "no such mailbox", "NONEXISTENT");
        co_return;
    }
    if (s.state == kSelected && s.view.mailbox.id == removed) s.deselect();
    s.ok(c, "DELETE completed");
}

net::awaitable<void> cmd_rename(Session& s, Command& c) {
    if (c.args.size() != 2) {
        s.bad(c, "Syntax: RENAME from to");
        co_return;
    }
    auto from = parse_mailbox(c.args[0], s.utf8);
    auto to = parse_mailbox(c.args[1], s.utf8);
    if (!from || !to) {
        s.arg_error(c, !from ? from.error() : to.error());
        co_return;
    }
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto f = *from, t = *to;
    // Renaming INBOX moves its messages to a new mailbox and leaves INBOX empty (RFC 9051
    // §6.3.6).
    auto rename = [&store, uid, f, t]() -> int {
        auto src = store.find_mailbox(uid, f);
        if (!src) return 1;
        if (store.find_mailbox(uid, t)) return 2;
        if (src->name == store::kInbox) {
            auto dst = store.create_mailbox(uid, t);
            std::vector<std::uint32_t> uids;
            for (auto& m : store.messages(uid, src->id))
                uids.push_back(m.uid);
            store.move_messages(uid, src->id, uids, dst.id);
        } else {
            store.rename_mailbox(uid, src->id, t);
        }
        return 0;
    };
    int r = 0;
    try {
        r = co_await s.blocking(std::move(rename));
    } catch (const StoreError& e) {
        r = e.kind() == StoreError::Kind::Exists ? 2 : 3;
    }
    if (r == 1)
        s.no(c, "no such mailbox", "NONEXISTENT");
    else if (r == 2)
        s.no(c, "target mailbox exists", "ALREADYEXISTS");
    else if (r == 3)
        s.no(c, "cannot rename to that name", "CANNOT");
    else
        s.ok(c, "RENAME completed");
}

net::awaitable<void> cmd_subscribe(Session& s, Command& c) {
    bool sub = c.name == "SUBSCRIBE";
    auto name = one_mailbox(s, c);
    if (!name) co_return;
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto n = *name;
    auto change = [&store, uid, n, sub] {
        if (sub)
            store.add_subscription(uid, n);
        else
            store.remove_subscription(uid, n);
    };
    co_await s.blocking(std::move(change));
    s.ok(c, fmt::format("{} completed", c.name));
}

net::awaitable<void> cmd_list(Session& s, Command& c) {
    auto args = parse_list(c, s.utf8);
    if (!args) {
        s.arg_error(c, args.error());
        co_return;
    }
    auto& a = *args;
    if (!a.lsub && a.patterns.size() == 1 && a.patterns[0].empty()) {
        // The hierarchy delimiter and root (RFC 9051 §6.3.9).
        s.untagged("LIST (\\Noselect) \"/\" \"\"");
        s.ok(c, "LIST completed");
        co_return;
    }
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto load = [&store, uid] {
        return std::make_pair(store.list_mailboxes(uid), store.subscriptions(uid));
    };
    auto [boxes, subs] = co_await s.blocking(std::move(load));
    std::set<std::string> subscribed(subs.begin(), subs.end());
    // Existing mailboxes, and the names their paths imply.
    std::map<std::string, const store::Mailbox*> names;
    std::set<std::string> implied;
    for (auto& mb : boxes) {
        names[mb.name] = &mb;
        for (auto pos = mb.name.find('/'); pos != std::string::npos;
             pos = mb.name.find('/', pos + 1))
            implied.insert(mb.name.substr(0, pos));
    }
    for (auto& n : implied)
        names.try_emplace(n, nullptr);
    auto has_children = [&](const std::string& n) {
        auto prefix = n + "/";
        auto lb = names.lower_bound(prefix);
        return lb != names.end() && lb->first.compare(0, prefix.size(), prefix) == 0;
    };
    auto matches = [&](const std::string& n) {
        for (auto& p : a.patterns)
            if (list_match(a.reference + p, n)) return true;
        return false;
    };
    std::string_view verb = a.lsub ? "LSUB" : "LIST";
    if (a.lsub || a.select_subscribed) {
        for (auto& n : subscribed) {
            if (!matches(n)) continue;
            std::string attrs;
            auto it = names.find(n);
            if (it == names.end() || !it->second) attrs = a.lsub ? "\\Noselect" : "\\NonExistent";
            if (!a.lsub) attrs += attrs.empty() ? "\\Subscribed" : " \\Subscribed";
            s.untagged(fmt::format("{} ({}) \"/\" {}", verb, attrs, mailbox_name(s, n)));
        }
        s.ok(c, fmt::format("{} completed", verb));
        co_return;
    }
    for (auto& [n, mb] : names) {
        if (!matches(n)) continue;
        std::string attrs;
        auto add = [&](std::string_view attr) {
            if (!attrs.empty()) attrs += ' ';
            attrs += attr;
        };
        if (!mb) add(s.rev2 || a.extended ? "\\NonExistent" : "\\Noselect");
        add(has_children(n) ? "\\HasChildren" : "\\HasNoChildren");
        if (a.return_subscribed && subscribed.count(n)) add("\\Subscribed");
        s.untagged(fmt::format("LIST ({}) \"/\" {}", attrs, mailbox_name(s, n)));
        if (a.return_status && mb) {
            auto id = mb->id;
            auto msgs_fn = [&store, uid, id] { return store.messages(uid, id); };
            auto msgs = co_await s.blocking(std::move(msgs_fn));
            s.untagged(fmt::format("STATUS {} {}", mailbox_name(s, n),
                                   status_data(*mb, msgs, a.status_items)));
        }
    }
    s.ok(c, "LIST completed");
}

net::awaitable<void> cmd_namespace(Session& s, Command& c) {
    s.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
    s.ok(c, "NAMESPACE completed");
    co_return;
}

net::awaitable<void> cmd_status(Session& s, Command& c) {
    auto args = parse_status(c, s.utf8);
    if (!args) {
        s.arg_error(c, args.error());
        co_return;
    }
    auto loaded = co_await load_mailbox(s, args->mailbox);
    if (!loaded) {
        s.no(c, "no such mailbox", "NONEXISTENT");
        co_return;
    }
    s.untagged(fmt::format("STATUS {} {}", mailbox_name(s, loaded->first.name),
                           status_data(loaded->first, loaded->second, args->items)));
    s.ok(c, "STATUS completed");
}

}  // namespace millipost::imap
