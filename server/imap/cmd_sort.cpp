// imap/cmd_sort.cpp: SORT and UID SORT (RFC 5256 §3, with DISPLAYFROM/DISPLAYTO of RFC 5957 and
// the RETURN options of ESORT, RFC 5267 §3), and THREAD and UID THREAD (RFC 5256, ORDEREDSUBJECT
// and REFERENCES). The messages are chosen by search_messages, then their header fields are read
// with the mime library; the algorithms are in sort_thread.cpp.
#include "imap/context.h"
#include "imap/sort_thread.h"

#include "mime/decode.h"
#include "mime/envelope.h"
#include "mime/message.h"
#include "proto/imap/args.h"

#include <fmt/format.h>

#include <algorithm>

namespace millipost::imap {

namespace {

enum class SortKey : std::uint8_t {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo
};

struct Criterion {
    SortKey key;
    bool reverse = false;
};

// What SORT and THREAD compare, per message.
struct Keys {
    std::uint32_t seq = 0;
    std::int64_t arrival = 0;
    std::int64_t date = 0;
    std::uint64_t size = 0;
    std::string cc, from, to, display_from, display_to;  // folded
    BaseSubject subject;
    std::string message_id;
    std::vector<std::string> references;
};

// The first address of an address-list field; a group counts by its name, as in Dovecot
// (imaptest sort-addresses, sort-display-to).
const mime::Address* first_address(const std::vector<mime::Address>& list) {
    for (auto& a : list)
        if (a.mailbox) return &a;
    return nullptr;
}

// RFC 5256: the addr-mailbox (local part) of the first address.
std::string addr_mailbox(const std::vector<mime::Address>& list) {
    auto* a = first_address(list);
    if (!a || !a->mailbox || *a->mailbox == mime::kMissingMailbox) return {};
    return sort_fold(mime::decode_header_value(*a->mailbox));
}

// RFC 5957 §3: the display name of the first address, else its addr-spec.
std::string display(const std::vector<mime::Address>& list) {
    auto* a = first_address(list);
    if (!a) return {};
    if (a->name && !a->name->empty()) return sort_fold(mime::decode_header_value(*a->name));
    std::string spec = a->mailbox.value_or("");
    if (a->host && *a->host != mime::kMissingDomain) spec += "@" + *a->host;
    return sort_fold(spec);
}

Keys read_keys(std::string_view raw, const MailboxView::Entry& e, std::uint32_t seq) {
    Keys k;
    k.seq = seq;
    k.arrival = e.internaldate;
    k.size = e.size;
    auto msg = mime::parse(raw);
    auto& root = msg.root;
    auto list = [&](std::string_view name) {
        auto* h = root.header(name);
        return h ? mime::parse_address_list(h->value) : std::vector<mime::Address>{};
    };
    auto from = list("from"), to = list("to"), cc = list("cc");
    k.from = addr_mailbox(from);
    k.to = addr_mailbox(to);
    k.cc = addr_mailbox(cc);
    k.display_from = display(from);
    k.display_to = display(to);
    std::optional<std::int64_t> date;
    if (auto* h = root.header("date")) date = parse_message_date(h->unfolded());
    k.date = date.value_or(e.internaldate);
    if (auto* h = root.header("subject"))
        k.subject = base_subject(mime::decode_header_value(h->value));
    if (auto* h = root.header("message-id")) {
        auto ids = message_ids(h->value);
        if (!ids.empty()) k.message_id = ids.front();
    }
    if (auto* h = root.header("references")) k.references = message_ids(h->value);
    if (k.references.empty())
        if (auto* h = root.header("in-reply-to")) {
            auto ids = message_ids(h->value);
            if (!ids.empty()) k.references.push_back(ids.front());
        }
    return k;
}

template <class T>
int cmp(const T& a, const T& b) {
    return a < b ? -1 : b < a ? 1 : 0;
}

int compare(const Keys& a, const Keys& b, SortKey key) {
    switch (key) {
        case SortKey::Arrival:
            return cmp(a.arrival, b.arrival);
        case SortKey::Cc:
            return cmp(a.cc, b.cc);
        case SortKey::Date:
            return cmp(a.date, b.date);
        case SortKey::From:
            return cmp(a.from, b.from);
        case SortKey::Size:
            return cmp(a.size, b.size);
        case SortKey::Subject:
            return cmp(a.subject.text, b.subject.text);
        case SortKey::To:
            return cmp(a.to, b.to);
        case SortKey::DisplayFrom:
            return cmp(a.display_from, b.display_from);
        case SortKey::DisplayTo:
            return cmp(a.display_to, b.display_to);
    }
    return 0;
}

std::optional<SortKey> sort_key(std::string_view name) {
    static constexpr std::pair<std::string_view, SortKey> kKeys[] = {
        {"ARRIVAL", SortKey::Arrival},
        {"CC", SortKey::Cc},
        {"DATE", SortKey::Date},
        {"FROM", SortKey::From},
        {"SIZE", SortKey::Size},
        {"SUBJECT", SortKey::Subject},
        {"TO", SortKey::To},
        {"DISPLAYFROM", SortKey::DisplayFrom},
        {"DISPLAYTO", SortKey::DisplayTo}};
    for (auto& [n, k] : kKeys)
        if (n == name) return k;
    return std::nullopt;
}

// The charset argument of SORT and THREAD (required there, RFC 5256 §3). False after replying.
bool check_charset(Session& s, Command& c, const Arg& a) {
    auto cs = astring(a);
    if (!cs || cs->empty()) {
        s.bad(c, "charset expected");
        return false;
    }
    std::string up(*cs);
    for (auto& ch : up)
        if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 32);
    if (up != "UTF-8" && up != "US-ASCII") {
        s.no(c, "Unsupported charset", "BADCHARSET (UTF-8 US-ASCII)");
        return false;
    }
    return true;
}

// Reads the keys of the messages `seqs` (ascending); messages gone from the store are left out.
net::awaitable<std::vector<Keys>> load_keys(Session& s, const std::vector<std::uint32_t>& seqs) {
    auto& store = s.svc.store();
    auto user = s.user.id;
    auto mb = s.view.mailbox.id;
    std::vector<std::pair<std::uint32_t, MailboxView::Entry>> want;
    for (auto seq : seqs)
        want.emplace_back(seq, s.view.at(seq));
    auto work = [&store, user, mb, &want] {
        std::vector<Keys> out;
        out.reserve(want.size());
        for (auto& [seq, e] : want) {
            try {
                out.push_back(read_keys(store.read_message(user, mb, e.uid), e, seq));
            } catch (const store::StoreError&) {
            }
        }
        return out;
    };
    auto keys = co_await s.blocking(std::move(work));
    co_return keys;
}

// A list of numbers in the given order as a sequence set: ascending runs become "a:b" (the ALL of
// ESORT, RFC 5267 §3.2, which keeps the sort order).
std::string ordered_set(const std::vector<std::uint32_t>& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size();) {
        std::size_t j = i;
        while (j + 1 < v.size() && v[j + 1] == v[j] + 1)
            ++j;
        if (!out.empty()) out += ',';
        out += j > i ? fmt::format("{}:{}", v[i], v[j]) : fmt::format("{}", v[i]);
        i = j + 1;
    }
    return out;
}

}  // namespace

namespace {

// The sequence numbers `seqs` in the order of `criteria` (ties: ascending number).
net::awaitable<std::vector<std::uint32_t>> sort_seqs(Session& s,
                                                     const std::vector<std::uint32_t>& seqs,
                                                     const std::vector<Criterion>& criteria) {
    auto keys = co_await load_keys(s, seqs);
    std::stable_sort(keys.begin(), keys.end(), [&](const Keys& a, const Keys& b) {
        for (auto& cr : criteria) {
            int r = compare(a, b, cr.key);
            if (r != 0) return cr.reverse ? r > 0 : r < 0;
        }
        return a.seq < b.seq;
    });
    std::vector<std::uint32_t> out;
    for (auto& k : keys)
        out.push_back(k.seq);
    co_return out;
}

// CONTEXT=SORT (RFC 5267 §4.4): keeps the result up to date like a SEARCH RETURN (UPDATE).
// False (after NO) when the session keeps too many already. Not a coroutine on purpose: in
// cmd_sort's frame this code makes g++ 12 report a false -Wmismatched-new-delete.
bool keep_live(Session& s, const Command& c, const SearchKey& key,
               const std::vector<std::uint32_t>& sorted, const std::vector<Criterion>& criteria) {
    if (s.live.size() >= limits::kImapMaxLiveSearches) {
        s.no(c, "too many searches kept up to date; CANCELUPDATE some", "LIMIT");
        return false;
    }
    std::erase_if(s.live, [&](const Session::LiveSearch& l) { return l.tag == c.tag; });
    Session::LiveSearch live{c.tag, key, c.uid, {}, {}};
    for (auto seq : sorted)
        live.uids.push_back(s.view.at(seq).uid);
    for (auto& cr : criteria)
        live.sort.emplace_back(static_cast<std::uint8_t>(cr.key), cr.reverse);
    s.live.push_back(std::move(live));
    return true;
}

}  // namespace

net::awaitable<void> cmd_sort(Session& s, Command& c) {
    std::span<const Arg> args = c.args;
    std::size_t i = 0;
    bool esort = false;
    SearchReturn ret;
    if (i < args.size() && upper_atom(args[i]) == "RETURN") {
        if (i + 1 >= args.size() || !args[i + 1].is_list()) {
            s.bad(c, "RETURN needs a list");
            co_return;
        }
        esort = true;
        auto& items = args[i + 1].items;
        for (std::size_t k = 0; k < items.size(); ++k) {
            std::string opt = upper_atom(items[k]);
            if (opt == "MIN")
                ret.min = true;
            else if (opt == "MAX")
                ret.max = true;
            else if (opt == "ALL")
                ret.all = true;
            else if (opt == "COUNT")
                ret.count = true;
            else if (opt == "UPDATE")
                ret.update = true;
            else if (opt == "CONTEXT")
                ret.context = true;
            else if (opt == "PARTIAL" && !ret.partial && k + 1 < items.size() &&
                     items[k + 1].is_atom()) {
                auto r = parse_partial_range(items[++k].text);
                if (!r) {
                    s.arg_error(c, r.error());
                    co_return;
                }
                ret.partial = true;
                ret.first = r->first;
                ret.last = r->second;
            } else {
                s.bad(c, "Unknown SORT return option");
                co_return;
            }
        }
        if (ret.partial && ret.all) {
            s.bad(c, "PARTIAL and ALL together");
            co_return;
        }
        if (!ret.min && !ret.max && !ret.count && !ret.partial && !ret.update) ret.all = true;
        i += 2;
    }
    if (i >= args.size() || !args[i].is_list() || args[i].items.empty()) {
        s.bad(c, "sort criteria expected");
        co_return;
    }
    std::vector<Criterion> criteria;
    bool reverse = false;
    for (auto& a : args[i].items) {
        std::string name = upper_atom(a);
        if (name == "REVERSE" && !reverse) {
            reverse = true;
            continue;
        }
        auto key = sort_key(name);
        if (!key) {
            s.bad(c, "unknown sort criterion");
            co_return;
        }
        criteria.push_back({*key, reverse});
        reverse = false;
    }
    if (reverse) {
        s.bad(c, "REVERSE needs a sort key after it");
        co_return;
    }
    ++i;
    if (i >= args.size()) {
        s.bad(c, "charset expected");
        co_return;
    }
    if (!check_charset(s, c, args[i])) co_return;
    auto key = parse_search_keys(args.subspan(i + 1));
    if (!key) {
        s.arg_error(c, key.error());
        co_return;
    }
    auto seqs = co_await search_messages(s, *key);
    auto sorted = co_await sort_seqs(s, seqs, criteria);
    std::vector<std::uint32_t> out;
    for (auto seq : sorted)
        out.push_back(c.uid ? s.view.at(seq).uid : seq);
    if (ret.update && !keep_live(s, c, *key, sorted, criteria)) co_return;
    if (esort) {
        std::string line = fmt::format("ESEARCH (TAG \"{}\")", c.tag);
        if (c.uid) line += " UID";
        if (!out.empty()) {
            // RFC 5267 §3.2: the lowest and highest "sorted" message: first and last in order.
            if (ret.min) line += fmt::format(" MIN {}", out.front());
            if (ret.max) line += fmt::format(" MAX {}", out.back());
            if (ret.all) line += " ALL " + ordered_set(out);
        }
        if (ret.count) line += fmt::format(" COUNT {}", out.size());
        if (ret.partial) line += " PARTIAL " + partial_result(ret, out);
        s.untagged(line);
    } else {
        std::string line = "SORT";
        for (auto n : out)
            line += fmt::format(" {}", n);
        s.untagged(line);
    }
    s.ok(c, c.uid ? "UID SORT completed" : "SORT completed");
}

net::awaitable<std::vector<std::uint32_t>> sort_live(Session& s, const Session::LiveSearch& l) {
    std::vector<Criterion> criteria;
    for (auto& [key, reverse] : l.sort)
        criteria.push_back({static_cast<SortKey>(key), reverse});
    auto key = l.key;  // the session may change while this suspends
    auto seqs = co_await search_messages(s, key);
    auto sorted = co_await sort_seqs(s, seqs, criteria);
    co_return sorted;
}

net::awaitable<void> cmd_thread(Session& s, Command& c) {
    std::span<const Arg> args = c.args;
    if (args.size() < 2) {
        s.bad(c, "THREAD algorithm charset search-criteria expected");
        co_return;
    }
    std::string algorithm = upper_atom(args[0]);
    if (algorithm != "ORDEREDSUBJECT" && algorithm != "REFERENCES") {
        s.bad(c, "unknown threading algorithm");
        co_return;
    }
    if (!check_charset(s, c, args[1])) co_return;
    auto key = parse_search_keys(args.subspan(2));
    if (!key) {
        s.arg_error(c, key.error());
        co_return;
    }
    auto seqs = co_await search_messages(s, *key);
    auto keys = co_await load_keys(s, seqs);
    std::vector<ThreadMessage> msgs;
    msgs.reserve(keys.size());
    for (auto& k : keys)
        msgs.push_back(ThreadMessage{c.uid ? s.view.at(k.seq).uid : k.seq, k.seq, k.date,
                                     std::move(k.message_id), std::move(k.references),
                                     std::move(k.subject)});
    auto work = [&msgs, &algorithm] {
        auto roots =
            algorithm == "REFERENCES" ? thread_references(msgs) : thread_orderedsubject(msgs);
        return render_threads(roots);
    };
    auto text = co_await s.blocking(std::move(work));
    s.untagged(text.empty() ? "THREAD" : "THREAD " + text);
    s.ok(c, c.uid ? "UID THREAD completed" : "THREAD completed");
}

}  // namespace millipost::imap
