// imap/cmd_search.cpp: SEARCH and UID SEARCH (RFC 9051 §6.4.4): flags, sizes, dates, sequence
// and UID sets, and case-insensitive substring matches over the decoded fields of
// search::text_fields (header fields, addresses, body text). Text keys are answered by the
// full-text index (search/) where it can (needles of three characters or more); the rest is
// decided by reading the messages that are still undecided. SEARCHRES ("$", RETURN (SAVE)) and
// PARTIAL are here too. Answers with ESEARCH when the client used RETURN or enabled IMAP4rev2,
// else with SEARCH.
#include "imap/context.h"
#include "imap/sort_thread.h"
#include "proto/imap/args.h"
#include "proto/imap/search.h"
#include "search/catch_up.h"
#include "search/text_fields.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <unordered_map>

namespace millipost::imap {

namespace {

std::string fold(std::string_view s) {
    return fold_case(s);
}

bool contains_folded(std::string_view hay_folded, const std::string& needle) {
    return hay_folded.find(fold(needle)) != std::string_view::npos;
}

// The folded values of header fields called `name` in search::Fields::header
// ("Name: value\n" per field).
bool header_contains(const std::string& header_folded, std::string_view name,
                     const std::string& needle) {
    std::string key = fold(name) + ":";
    auto want = fold(needle);
    std::size_t pos = 0;
    while (pos < header_folded.size()) {
        auto eol = header_folded.find('\n', pos);
        if (eol == std::string::npos) eol = header_folded.size();
        std::string_view line(header_folded.data() + pos, eol - pos);
        if (line.substr(0, key.size()) == key) {
            auto value = line.substr(key.size());
            if (want.empty() || value.find(want) != std::string_view::npos) return true;
        }
        pos = eol + 1;
    }
    return false;
}

// The day of a Date: header ("[Day,] 1 Feb 1994 ..."), 00:00 UTC; nullopt if unreadable.
std::optional<std::int64_t> sent_day(std::string_view header_folded) {
    auto pos = header_folded.find("date:");
    while (pos != std::string_view::npos && pos != 0 && header_folded[pos - 1] != '\n')
        pos = header_folded.find("date:", pos + 1);
    if (pos == std::string_view::npos) return std::nullopt;
    auto eol = header_folded.find('\n', pos);
    std::string v(header_folded.substr(pos + 5, eol - pos - 5));
    if (auto comma = v.find(','); comma != std::string::npos) v = v.substr(comma + 1);
    int day = 0, year = 0;
    char mon[4] = {};
    if (std::sscanf(v.c_str(), " %d %3s %d", &day, mon, &year) != 3) return std::nullopt;
    static constexpr std::string_view kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                   "jul", "aug", "sep", "oct", "nov", "dec"};
    for (int m = 0; m < 12; ++m)
        if (kMonths[m] == mon) return epoch_from_civil(year < 100 ? year + 1900 : year, m + 1, day);
    return std::nullopt;
}

struct Candidate {
    std::uint32_t seq;
    const MailboxView::Entry* e;
    std::uint32_t count;
    std::uint32_t max_uid;
    const std::vector<std::uint32_t>* saved;  // "$" (SEARCHRES)
    bool recent = false;                      // \Recent for this session (IMAP4rev1)
    bool loaded = false;                      // the fields below are read
    search::Fields text;  // folded; what the full-text index holds (search::text_fields)
};

bool uses_modseq(const SearchKey& k) {
    return k.op == SearchKey::Op::ModSeq ||
           std::any_of(k.children.begin(), k.children.end(), uses_modseq);
}

bool has_flag(const Candidate& c, std::string_view f) {
    for (auto& x : c.e->flags)
        if (x.size() == f.size() && fold(x) == fold(f)) return true;
    return false;
}

std::int64_t day_of(std::int64_t t) {
    return t - ((t % 86400) + 86400) % 86400;
}

// What the full-text index said about one text key: the UIDs that match (`exact`) or the UIDs
// outside of which nothing matches (a superset, for HEADER of other fields).
struct IndexAnswer {
    std::vector<std::uint32_t> uids;
    bool exact = true;
};
using Answers = std::unordered_map<const SearchKey*, IndexAnswer>;

// The index field that answers a text key, if any.
std::optional<std::pair<search::Field, bool>> index_field(const SearchKey& k) {
    using O = SearchKey::Op;
    using F = search::Field;
    switch (k.op) {
        case O::Subject:
            return std::pair{F::Subject, true};
        case O::From:
            return std::pair{F::From, true};
        case O::To:
            return std::pair{F::To, true};
        case O::Cc:
            return std::pair{F::Cc, true};
        case O::Bcc:
            return std::pair{F::Bcc, true};
        case O::Body:
            return std::pair{F::Body, true};
        case O::Text:
            return std::pair{F::Text, true};
        case O::Header: {
            if (k.value.empty()) return std::nullopt;
            auto f = fold(k.field);
            if (f == "subject") return std::pair{F::Subject, true};
            if (f == "from") return std::pair{F::From, true};
            if (f == "to") return std::pair{F::To, true};
            if (f == "cc") return std::pair{F::Cc, true};
            if (f == "bcc") return std::pair{F::Bcc, true};
            return std::pair{F::Header, false};
        }
        default:
            return std::nullopt;
    }
}

void index_keys(const SearchKey& k, std::vector<const SearchKey*>& out) {
    if (index_field(k) && k.value.size() >= search::kMinNeedleChars) out.push_back(&k);
    for (auto& c : k.children)
        index_keys(c, out);
}

// Three-valued: Maybe when the answer needs the message text, which is not read yet.
enum class Tri : std::uint8_t { No, Yes, Maybe };

Tri tri(bool b) {
    return b ? Tri::Yes : Tri::No;
}

// A folded field holds the needle; an empty needle matches when the field is there at all.
bool field_contains(const std::string& field, const Candidate& c, std::string_view name,
                    const std::string& needle) {
    if (needle.empty()) return header_contains(c.text.header, name, needle);
    return contains_folded(field, needle);
}

bool text_match(const SearchKey& k, const Candidate& c) {
    using O = SearchKey::Op;
    const search::Fields& t = c.text;
    switch (k.op) {
        case O::Bcc:
            return field_contains(t.bcc, c, "bcc", k.value);
        case O::Cc:
            return field_contains(t.cc, c, "cc", k.value);
        case O::From:
            return field_contains(t.from, c, "from", k.value);
        case O::To:
            return field_contains(t.to, c, "to", k.value);
        case O::Subject:
            return field_contains(t.subject, c, "subject", k.value);
        case O::Header: {
            auto f = fold(k.field);
            if (f == "from") return field_contains(t.from, c, f, k.value);
            if (f == "to") return field_contains(t.to, c, f, k.value);
            if (f == "cc") return field_contains(t.cc, c, f, k.value);
            if (f == "bcc") return field_contains(t.bcc, c, f, k.value);
            if (f == "subject") return field_contains(t.subject, c, f, k.value);
            return header_contains(t.header, k.field, k.value);
        }
        case O::Body:
            return contains_folded(t.body, k.value);
        case O::Text:
            return contains_folded(t.header, k.value) || contains_folded(t.body, k.value);
        default: {
            auto d = sent_day(t.header);
            if (!d) return false;
            return k.op == O::SentBefore ? *d < k.date
                   : k.op == O::SentOn   ? *d == k.date
                                         : *d >= k.date;
        }
    }
}

Tri eval(const SearchKey& k, const Candidate& c, const Answers& answers) {
    using O = SearchKey::Op;
    switch (k.op) {
        case O::And: {
            Tri r = Tri::Yes;
            for (auto& x : k.children) {
                Tri t = eval(x, c, answers);
                if (t == Tri::No) return Tri::No;
                if (t == Tri::Maybe) r = Tri::Maybe;
            }
            return r;
        }
        case O::Or: {
            Tri a = eval(k.children[0], c, answers);
            if (a == Tri::Yes) return a;
            Tri b = eval(k.children[1], c, answers);
            if (b == Tri::Yes) return b;
            return a == Tri::No && b == Tri::No ? Tri::No : Tri::Maybe;
        }
        case O::Not: {
            Tri a = eval(k.children[0], c, answers);
            return a == Tri::Maybe ? a : tri(a == Tri::No);
        }
        case O::All:
            return Tri::Yes;
        case O::SequenceSet:
        case O::Uid:
            if (k.set.saved())
                return tri(std::binary_search(c.saved->begin(), c.saved->end(), c.e->uid));
            return tri(k.op == O::Uid ? k.set.contains(c.e->uid, c.max_uid)
                                      : k.set.contains(c.seq, c.count));
        case O::Answered:
            return tri(has_flag(c, "\\Answered"));
        case O::Deleted:
            return tri(has_flag(c, "\\Deleted"));
        case O::Draft:
            return tri(has_flag(c, "\\Draft"));
        case O::Flagged:
            return tri(has_flag(c, "\\Flagged"));
        case O::Seen:
            return tri(has_flag(c, "\\Seen"));
        case O::Unanswered:
            return tri(!has_flag(c, "\\Answered"));
        case O::Undeleted:
            return tri(!has_flag(c, "\\Deleted"));
        case O::Undraft:
            return tri(!has_flag(c, "\\Draft"));
        case O::Unflagged:
            return tri(!has_flag(c, "\\Flagged"));
        case O::Unseen:
            return tri(!has_flag(c, "\\Seen"));
        case O::Keyword:
            return tri(has_flag(c, k.value));
        case O::Unkeyword:
            return tri(!has_flag(c, k.value));
        case O::New:
            return tri(c.recent && !has_flag(c, "\\Seen"));
        case O::Recent:
            return tri(c.recent);
        case O::Old:
            return tri(!c.recent);
        case O::Bcc:
        case O::Cc:
        case O::From:
        case O::To:
        case O::Subject:
        case O::Header:
        case O::Body:
        case O::Text: {
            if (auto it = answers.find(&k); it != answers.end()) {
                auto& a = it->second;
                bool in = std::binary_search(a.uids.begin(), a.uids.end(), c.e->uid);
                if (!in) return Tri::No;
                if (a.exact) return Tri::Yes;
            }
            if (!c.loaded) return Tri::Maybe;
            return tri(text_match(k, c));
        }
        case O::SentBefore:
        case O::SentOn:
        case O::SentSince:
            if (!c.loaded) return Tri::Maybe;
            return tri(text_match(k, c));
        case O::Before:
            return tri(day_of(c.e->internaldate) < k.date);
        case O::On:
            return tri(day_of(c.e->internaldate) == k.date);
        case O::Since:
            return tri(day_of(c.e->internaldate) >= k.date);
        case O::Larger:
            return tri(c.e->size > k.number);
        case O::Smaller:
            return tri(c.e->size < k.number);
        case O::ModSeq:
            return tri(c.e->modseq >= k.number);
    }
    return Tri::No;
}

// Brings the index up to date with the mailbox and asks it about every text key it can answer.
// Any index failure leaves `answers` short: those keys are then decided by reading messages.
net::awaitable<Answers> ask_index(Session& s, const SearchKey& key) {
    Answers answers;
    auto* index = s.svc.search_index();
    std::vector<const SearchKey*> keys;
    index_keys(key, keys);
    if (!index || keys.empty()) co_return answers;
    auto& store = s.svc.store();
    auto user = s.user.id;
    auto mb = s.view.mailbox.id;
    auto max_uid = s.view.max_uid();
    auto work = [index, &store, user, mb, &keys, max_uid] {
        Answers out;
        // UIDs only grow and catch-up indexes in ascending order, one committed batch after the
        // other, so an index whose highest UID reaches the session's newest message holds every
        // message the session can name: the full comparison with the store (which also drops
        // the rows of expunged messages) is needed only when new mail is missing. Rows of
        // expunged messages meanwhile are harmless: only the view's messages are evaluated.
        if (index->last_indexed_uid(user, mb) < max_uid) {
            std::vector<std::uint32_t> uids;
            for (auto& m : store.messages(user, mb))
                uids.push_back(m.uid);
            auto load = [&store, user, mb](std::uint32_t uid) -> std::optional<std::string> {
                try {
                    return store.read_message(user, mb, uid);
                } catch (const store::StoreError&) {
                    return std::nullopt;
                }
            };
            search::catch_up(*index, user, mb, uids, load);
        }
        for (const SearchKey* k : keys) {
            auto field = index_field(*k);
            auto found = index->find(user, mb, field->first, k->value);
            if (found) out.emplace(k, IndexAnswer{std::move(*found), field->second});
        }
        return out;
    };
    try {
        answers = co_await s.blocking(std::move(work));
    } catch (const std::exception& e) {
        spdlog::warn("search index: {}; scanning instead", e.what());
        answers.clear();
    }
    co_return answers;
}

}  // namespace

net::awaitable<std::vector<std::uint32_t>> search_messages(Session& s, const SearchKey& key) {
    Answers answers = co_await ask_index(s, key);
    auto& store = s.svc.store();
    auto user = s.user.id;
    auto mb = s.view.mailbox.id;
    std::vector<std::uint32_t> hits;
    for (std::uint32_t seq = 1; seq <= s.view.size(); ++seq) {
        const auto& e = s.view.at(seq);
        if (e.expunged) continue;
        Candidate cand{seq, &e, s.view.size(), s.view.max_uid(), &s.saved};
        cand.recent = !s.rev2 && s.is_recent(e.uid);
        Tri r = eval(key, cand, answers);
        if (r == Tri::Maybe) {
            auto uid = e.uid;
            auto read = [&store, user, mb, uid] {
                auto f = search::text_fields(store.read_message(user, mb, uid));
                for (auto* x : {&f.subject, &f.from, &f.to, &f.cc, &f.bcc, &f.header, &f.body})
                    *x = fold(*x);
                return f;
            };
            try {
                cand.text = co_await s.blocking(std::move(read));
                cand.loaded = true;
            } catch (const store::StoreError&) {
                continue;
            }
            r = eval(key, cand, answers);
        }
        if (r == Tri::Yes) hits.push_back(seq);
    }
    co_return hits;
}

net::awaitable<void> cmd_search(Session& s, Command& c) {
    auto prog = parse_search(c);
    if (!prog) {
        // RFC 5182 §2.1: a failed SEARCH RETURN (SAVE) leaves "$" empty.
        if (!c.args.empty() && upper_atom(c.args[0]) == "RETURN" && c.args.size() > 1)
            for (auto& o : c.args[1].items)
                if (upper_atom(o) == "SAVE") s.saved.clear();
        s.arg_error(c, prog.error());
        co_return;
    }
    auto seqs = co_await search_messages(s, prog->key);
    std::vector<std::uint32_t> hits;
    std::vector<store::ModSeq> modseqs;  // of each hit
    for (auto seq : seqs) {
        hits.push_back(c.uid ? s.view.at(seq).uid : seq);
        modseqs.push_back(s.view.at(seq).modseq);
    }
    // RFC 7162 §3.1.5: with a MODSEQ key, the highest MODSEQ of the messages reported.
    bool with_modseq = uses_modseq(prog->key);
    if (with_modseq) s.enable_condstore();
    const auto& r = prog->ret;
    if (r.save) {
        // RFC 5182 §2.4: with MIN and/or MAX (and neither ALL nor COUNT) only those are saved.
        std::vector<std::uint32_t> uids;
        for (auto seq : seqs)
            uids.push_back(s.view.at(seq).uid);
        if ((r.min || r.max) && !r.all && !r.count && !uids.empty()) {
            std::vector<std::uint32_t> some;
            if (r.min) some.push_back(uids.front());
            if (r.max && (!r.min || uids.size() > 1)) some.push_back(uids.back());
            uids = std::move(some);
        }
        s.saved = std::move(uids);
        if (!r.min && !r.max && !r.all && !r.count && !r.partial) {  // SAVE alone: no ESEARCH
            s.ok(c, "SEARCH completed, result saved");
            co_return;
        }
    }
    if (r.update) {
        // CONTEXT=SEARCH (RFC 5267 §4.4): remember it; changes come as ADDTO/REMOVEFROM.
        if (s.live.size() >= limits::kImapMaxLiveSearches) {
            s.no(c, "too many searches kept up to date; CANCELUPDATE some", "LIMIT");
            co_return;
        }
        std::erase_if(s.live, [&](const Session::LiveSearch& l) { return l.tag == c.tag; });
        Session::LiveSearch live{c.tag, prog->key, c.uid, {}};
        for (auto seq : seqs)
            live.uids.push_back(s.view.at(seq).uid);
        s.live.push_back(std::move(live));
    }
    if (prog->esearch || s.rev2) {
        auto ret = prog->ret;
        if (!ret.min && !ret.max && !ret.count && !ret.all && !ret.partial && !ret.update)
            ret.all = true;
        std::string line = fmt::format("ESEARCH (TAG \"{}\")", c.tag);
        if (c.uid) line += " UID";
        if (!hits.empty()) {
            if (ret.min) line += fmt::format(" MIN {}", hits.front());
            if (ret.max) line += fmt::format(" MAX {}", hits.back());
            if (ret.all) line += " ALL " + compress_sequence(hits);
        }
        if (ret.count) line += fmt::format(" COUNT {}", hits.size());
        if (ret.partial) line += " PARTIAL " + partial_result(ret, hits);
        if (with_modseq && !hits.empty()) {
            // Of the messages the response names: MIN/MAX alone name one or two (RFC 4731 §3.2).
            store::ModSeq top = 0;
            if (ret.all || ret.count || ret.partial) {
                top = *std::max_element(modseqs.begin(), modseqs.end());
            } else {
                if (ret.min) top = std::max(top, modseqs.front());
                if (ret.max) top = std::max(top, modseqs.back());
            }
            line += fmt::format(" MODSEQ {}", top);
        }
        s.untagged(line);
    } else {
        std::string line = "SEARCH";
        for (auto h : hits)
            line += fmt::format(" {}", h);
        if (with_modseq && !hits.empty())
            line += fmt::format(" (MODSEQ {})", *std::max_element(modseqs.begin(), modseqs.end()));
        s.untagged(line);
    }
    s.ok(c, "SEARCH completed");
}

}  // namespace millipost::imap

namespace millipost::imap {

namespace {

// "* ESEARCH (TAG "t") [UID] ADDTO|REMOVEFROM (0 set)": for SEARCH (unlike SORT) the result
// has no order of its own, so the position is 0 (RFC 5267 §4.4.1).
void write_update(Session& s, const Session::LiveSearch& l, std::string_view what,
                  std::vector<std::uint32_t> numbers) {
    if (numbers.empty()) return;
    std::sort(numbers.begin(), numbers.end());
    s.untagged(fmt::format("ESEARCH (TAG \"{}\"){} {} (0 {})", l.tag, l.uid ? " UID" : "", what,
                           compress_sequence(numbers)));
}

// For a sorted result (CONTEXT=SORT) the updates name positions: "(position number ...)",
// each position valid after the pairs before it are applied.
void write_positions(Session& s, const Session::LiveSearch& l, std::string_view what,
                     const std::vector<std::pair<std::uint32_t, std::uint32_t>>& pairs) {
    if (pairs.empty()) return;
    std::string list;
    for (auto& [pos, n] : pairs)
        list += fmt::format("{}{} {}", list.empty() ? "" : " ", pos, n);
    s.untagged(
        fmt::format("ESEARCH (TAG \"{}\"){} {} ({})", l.tag, l.uid ? " UID" : "", what, list));
}

}  // namespace

void live_searches_expunged(Session& s, const std::vector<std::uint32_t>& expunged_seqs,
                            const std::vector<std::uint32_t>& expunged_uids) {
    if (s.live.empty() || expunged_uids.empty()) return;
    // expunged_seqs is highest first, expunged_uids ascending: the same messages.
    std::vector<std::pair<std::uint32_t, std::uint32_t>> gone;  // (uid, seq before)
    for (std::size_t i = 0; i < expunged_uids.size(); ++i)
        gone.emplace_back(expunged_uids[i], expunged_seqs[expunged_seqs.size() - 1 - i]);
    for (auto& l : s.live) {
        if (l.sorted()) {
            // Positions from the end, so that each stays valid as the client applies them.
            std::vector<std::pair<std::uint32_t, std::uint32_t>> removed;  // (position, number)
            for (std::size_t p = l.uids.size(); p-- > 0;) {
                auto it =
                    std::lower_bound(gone.begin(), gone.end(), l.uids[p],
                                     [](const auto& g, std::uint32_t u) { return g.first < u; });
                if (it == gone.end() || it->first != l.uids[p]) continue;
                removed.emplace_back(static_cast<std::uint32_t>(p + 1),
                                     l.uid ? it->first : it->second);
                l.uids.erase(l.uids.begin() + static_cast<std::ptrdiff_t>(p));
            }
            write_positions(s, l, "REMOVEFROM", removed);
            continue;
        }
        std::vector<std::uint32_t> removed;
        for (auto& [uid, seq] : gone) {
            auto it = std::lower_bound(l.uids.begin(), l.uids.end(), uid);
            if (it == l.uids.end() || *it != uid) continue;
            l.uids.erase(it);
            removed.push_back(l.uid ? uid : seq);
        }
        write_update(s, l, "REMOVEFROM", std::move(removed));
    }
}

net::awaitable<void> update_live_searches(Session& s) {
    if (s.state != kSelected) co_return;
    for (std::size_t i = 0; i < s.live.size(); ++i) {
        std::vector<std::uint32_t> seqs;
        if (s.live[i].sorted()) {
            auto l = s.live[i];  // sort_live may suspend: work on a copy
            seqs = co_await sort_live(s, l);
        } else {
            auto key = s.live[i].key;  // search_messages may suspend: copy what it needs
            seqs = co_await search_messages(s, key);
        }
        if (i >= s.live.size()) break;
        auto& l = s.live[i];
        std::vector<std::uint32_t> now;
        for (auto seq : seqs)
            now.push_back(s.view.at(seq).uid);
        auto number = [&](std::uint32_t uid) { return l.uid ? uid : s.view.seq_of(uid); };
        if (l.sorted()) {
            // Sort keys do not change, so only membership does: removals from the end of the
            // old order, then insertions in the new order, each at its final position.
            std::set<std::uint32_t> in_now(now.begin(), now.end());
            std::set<std::uint32_t> in_old(l.uids.begin(), l.uids.end());
            std::vector<std::pair<std::uint32_t, std::uint32_t>> removed, added;
            for (std::size_t p = l.uids.size(); p-- > 0;)
                if (!in_now.count(l.uids[p]))
                    if (auto n = number(l.uids[p]))
                        removed.emplace_back(static_cast<std::uint32_t>(p + 1), n);
            for (std::size_t p = 0; p < now.size(); ++p)
                if (!in_old.count(now[p]))
                    added.emplace_back(static_cast<std::uint32_t>(p + 1), number(now[p]));
            write_positions(s, l, "REMOVEFROM", removed);
            write_positions(s, l, "ADDTO", added);
            l.uids = std::move(now);
            continue;
        }
        std::vector<std::uint32_t> added, removed;
        std::set_difference(now.begin(), now.end(), l.uids.begin(), l.uids.end(),
                            std::back_inserter(added));
        std::set_difference(l.uids.begin(), l.uids.end(), now.begin(), now.end(),
                            std::back_inserter(removed));
        std::vector<std::uint32_t> a, r;
        for (auto u : removed)
            if (auto n = number(u)) r.push_back(n);
        for (auto u : added)
            a.push_back(number(u));
        write_update(s, l, "REMOVEFROM", std::move(r));
        write_update(s, l, "ADDTO", std::move(a));
        l.uids = std::move(now);
    }
}

// CANCELUPDATE tag-string *(SP tag-string) (RFC 5267 §4.5).
net::awaitable<void> cmd_cancelupdate(Session& s, Command& c) {
    if (c.args.empty()) {
        s.bad(c, "Syntax: CANCELUPDATE \"tag\" ...");
        co_return;
    }
    for (auto& a : c.args) {
        auto tag = string_arg(a);
        if (!tag) {
            s.bad(c, "Syntax: CANCELUPDATE \"tag\" ...");
            co_return;
        }
        std::erase_if(s.live, [&](const Session::LiveSearch& l) { return l.tag == *tag; });
    }
    s.ok(c, "CANCELUPDATE completed");
}

}  // namespace millipost::imap
