// imap/cmd_search.cpp: SEARCH and UID SEARCH by scanning the selected mailbox (RFC 9051
// §6.4.4): flags, sizes, dates, sequence and UID sets, and case-insensitive substring matches
// over decoded header fields and body text (mime/text.h). Answers with ESEARCH when the client
// used RETURN or enabled IMAP4rev2, else with SEARCH.
#include "imap/context.h"
#include "proto/imap/search.h"

#include "mime/message.h"
#include "mime/text.h"
#include "proto/imap/utf8.h"

#include <fmt/format.h>

#include <algorithm>

namespace millipost::imap {

namespace {

// Simple case folding: ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic capitals to
// lower case. Invalid UTF-8 octets are kept as they are.
std::string fold(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        std::size_t start = i;
        char32_t cp = decode_utf8(s, i);
        if (cp == kBadCodePoint) {
            out.push_back(s[start]);
            continue;
        }
        if (cp >= 'A' && cp <= 'Z')
            cp += 32;
        else if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || (cp >= 0x391 && cp <= 0x3AB) ||
                 (cp >= 0x410 && cp <= 0x42F))
            cp += 32;
        else if (cp >= 0x400 && cp <= 0x40F)
            cp += 80;
        else if (cp >= 0x100 && cp <= 0x17F && cp % 2 == 0 && cp != 0x130 && cp != 0x138)
            cp += 1;
        append_utf8(out, cp);
    }
    return out;
}

bool contains_folded(std::string_view hay_folded, const std::string& needle) {
    return hay_folded.find(fold(needle)) != std::string_view::npos;
}

// The folded values of header fields called `name` in mime::SearchText::header
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

bool uses_text(const SearchKey& k) {
    using O = SearchKey::Op;
    switch (k.op) {
        case O::Bcc:
        case O::Body:
        case O::Cc:
        case O::From:
        case O::Subject:
        case O::Text:
        case O::To:
        case O::Header:
        case O::SentBefore:
        case O::SentOn:
        case O::SentSince:
            return true;
        default:
            return std::any_of(k.children.begin(), k.children.end(), uses_text);
    }
}

struct Candidate {
    std::uint32_t seq;
    const MailboxView::Entry* e;
    std::uint32_t count;
    std::uint32_t max_uid;
    std::string header;   // folded
    std::string body;     // folded
    bool recent = false;  // \Recent for this session (IMAP4rev1)
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

bool eval(const SearchKey& k, const Candidate& c) {
    using O = SearchKey::Op;
    switch (k.op) {
        case O::And:
            return std::all_of(k.children.begin(), k.children.end(),
                               [&](const SearchKey& x) { return eval(x, c); });
        case O::Or:
            return eval(k.children[0], c) || eval(k.children[1], c);
        case O::Not:
            return !eval(k.children[0], c);
        case O::All:
            return true;
        case O::SequenceSet:
            return !k.set.saved() && k.set.contains(c.seq, c.count);
        case O::Uid:
            return !k.set.saved() && k.set.contains(c.e->uid, c.max_uid);
        case O::Answered:
            return has_flag(c, "\\Answered");
        case O::Deleted:
            return has_flag(c, "\\Deleted");
        case O::Draft:
            return has_flag(c, "\\Draft");
        case O::Flagged:
            return has_flag(c, "\\Flagged");
        case O::Seen:
            return has_flag(c, "\\Seen");
        case O::Unanswered:
            return !has_flag(c, "\\Answered");
        case O::Undeleted:
            return !has_flag(c, "\\Deleted");
        case O::Undraft:
            return !has_flag(c, "\\Draft");
        case O::Unflagged:
            return !has_flag(c, "\\Flagged");
        case O::Unseen:
            return !has_flag(c, "\\Seen");
        case O::Keyword:
            return has_flag(c, k.value);
        case O::Unkeyword:
            return !has_flag(c, k.value);
        case O::New:
            return c.recent && !has_flag(c, "\\Seen");
        case O::Recent:
            return c.recent;
        case O::Old:
            return !c.recent;
        case O::Bcc:
            return header_contains(c.header, "bcc", k.value);
        case O::Cc:
            return header_contains(c.header, "cc", k.value);
        case O::From:
            return header_contains(c.header, "from", k.value);
        case O::To:
            return header_contains(c.header, "to", k.value);
        case O::Subject:
            return header_contains(c.header, "subject", k.value);
        case O::Header:
            return header_contains(c.header, k.field, k.value);
        case O::Body:
            return contains_folded(c.body, k.value);
        case O::Text:
            return contains_folded(c.header, k.value) || contains_folded(c.body, k.value);
        case O::Before:
            return day_of(c.e->internaldate) < k.date;
        case O::On:
            return day_of(c.e->internaldate) == k.date;
        case O::Since:
            return day_of(c.e->internaldate) >= k.date;
        case O::SentBefore:
        case O::SentOn:
        case O::SentSince: {
            auto d = sent_day(c.header);
            if (!d) return false;
            return k.op == O::SentBefore ? *d < k.date
                   : k.op == O::SentOn   ? *d == k.date
                                         : *d >= k.date;
        }
        case O::Larger:
            return c.e->size > k.number;
        case O::Smaller:
            return c.e->size < k.number;
        case O::ModSeq:
            return c.e->modseq >= k.number;
    }
    return false;
}

}  // namespace

net::awaitable<void> cmd_search(Session& s, Command& c) {
    auto prog = parse_search(c);
    if (!prog) {
        s.arg_error(c, prog.error());
        co_return;
    }
    bool text = uses_text(prog->key);
    auto& store = s.svc.store();
    auto user = s.user.id;
    auto mb = s.view.mailbox.id;
    std::vector<std::uint32_t> hits;
    std::vector<store::ModSeq> modseqs;  // of each hit
    for (std::uint32_t seq = 1; seq <= s.view.size(); ++seq) {
        const auto& e = s.view.at(seq);
        if (e.expunged) continue;
        Candidate cand{seq, &e, s.view.size(), s.view.max_uid(), {}, {}, false};
        cand.recent = !s.rev2 && s.is_recent(e.uid);
        if (text) {
            auto uid = e.uid;
            auto read = [&store, user, mb, uid] {
                auto raw = store.read_message(user, mb, uid);
                auto st = mime::extract_text(mime::parse(raw));
                return std::make_pair(fold(st.header), fold(st.body));
            };
            try {
                auto t = co_await s.blocking(std::move(read));
                cand.header = std::move(t.first);
                cand.body = std::move(t.second);
            } catch (const store::StoreError&) {
                continue;
            }
        }
        if (eval(prog->key, cand)) {
            hits.push_back(c.uid ? e.uid : seq);
            modseqs.push_back(e.modseq);
        }
    }
    // RFC 7162 §3.1.5: with a MODSEQ key, the highest MODSEQ of the messages reported.
    bool with_modseq = uses_modseq(prog->key);
    if (with_modseq) s.enable_condstore();
    if (prog->esearch || s.rev2) {
        auto ret = prog->ret;
        if (!ret.min && !ret.max && !ret.count && !ret.all) ret.all = true;
        std::string line = fmt::format("ESEARCH (TAG \"{}\")", c.tag);
        if (c.uid) line += " UID";
        if (!hits.empty()) {
            if (ret.min) line += fmt::format(" MIN {}", hits.front());
            if (ret.max) line += fmt::format(" MAX {}", hits.back());
            if (ret.all) line += " ALL " + compress_sequence(hits);
        }
        if (ret.count) line += fmt::format(" COUNT {}", hits.size());
        if (with_modseq && !hits.empty()) {
            // Of the messages the response names: MIN/MAX alone name one or two (RFC 4731 §3.2).
            store::ModSeq top = 0;
            if (ret.all || ret.count) {
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
