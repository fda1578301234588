// proto/imap/search.cpp: SEARCH program interpreter (see search.h).
#include "proto/imap/search.h"

#include "proto/imap/args.h"

#include <algorithm>
#include <optional>

namespace millipost::imap {
namespace {

using Op = SearchKey::Op;

struct KeyInfo {
    std::string_view name;
    Op op;
    enum Arg_ : std::uint8_t {
        None,
        String,
        Date,
        Number,
        Keyword,
        Set,
        Header,
        Not,
        Or,
        ModSeq
    } arg;
};

constexpr KeyInfo kKeys[] = {
    {"ALL", Op::All, KeyInfo::None},
    {"ANSWERED", Op::Answered, KeyInfo::None},
    {"BCC", Op::Bcc, KeyInfo::String},
    {"BEFORE", Op::Before, KeyInfo::Date},
    {"BODY", Op::Body, KeyInfo::String},
    {"CC", Op::Cc, KeyInfo::String},
    {"DELETED", Op::Deleted, KeyInfo::None},
    {"DRAFT", Op::Draft, KeyInfo::None},
    {"FLAGGED", Op::Flagged, KeyInfo::None},
    {"FROM", Op::From, KeyInfo::String},
    {"HEADER", Op::Header, KeyInfo::Header},
    {"KEYWORD", Op::Keyword, KeyInfo::Keyword},
    {"LARGER", Op::Larger, KeyInfo::Number},
    {"MODSEQ", Op::ModSeq, KeyInfo::ModSeq},
    {"NEW", Op::New, KeyInfo::None},
    {"NOT", Op::Not, KeyInfo::Not},
    {"OLD", Op::Old, KeyInfo::None},
    {"ON", Op::On, KeyInfo::Date},
    {"OR", Op::Or, KeyInfo::Or},
    {"RECENT", Op::Recent, KeyInfo::None},
    {"SEEN", Op::Seen, KeyInfo::None},
    {"SENTBEFORE", Op::SentBefore, KeyInfo::Date},
    {"SENTON", Op::SentOn, KeyInfo::Date},
    {"SENTSINCE", Op::SentSince, KeyInfo::Date},
    {"SINCE", Op::Since, KeyInfo::Date},
    {"SMALLER", Op::Smaller, KeyInfo::Number},
    {"SUBJECT", Op::Subject, KeyInfo::String},
    {"TEXT", Op::Text, KeyInfo::String},
    {"TO", Op::To, KeyInfo::String},
    {"UID", Op::Uid, KeyInfo::Set},
    {"UNANSWERED", Op::Unanswered, KeyInfo::None},
    {"UNDELETED", Op::Undeleted, KeyInfo::None},
    {"UNDRAFT", Op::Undraft, KeyInfo::None},
    {"UNFLAGGED", Op::Unflagged, KeyInfo::None},
    {"UNKEYWORD", Op::Unkeyword, KeyInfo::Keyword},
    {"UNSEEN", Op::Unseen, KeyInfo::None},
};

class KeyReader {
  public:
    explicit KeyReader(std::span<const Arg> args) : args_(args) {}

    bool done() const { return i_ >= args_.size(); }

    Parsed<SearchKey> all(std::size_t depth) {
        SearchKey k;
        k.op = Op::And;
        if (done()) return bad("Missing search key");
        while (!done()) {
            auto child = key(depth);
            if (!child) return child.error();
            k.children.push_back(std::move(*child));
        }
        return k;
    }

    Parsed<SearchKey> key(std::size_t depth) {
        if (depth > kMaxSearchDepth) return bad("Search program nested too deeply");
        if (done()) return bad("Missing search key");
        const Arg& a = args_[i_++];
        if (a.is_list()) {
            if (a.items.empty()) return bad("Empty parenthesised search key");
            return KeyReader(a.items).all(depth + 1);
        }
        std::string name = upper_atom(a);
        if (name.empty()) return bad("Expected a search key");
        SearchKey k;
        char c = name[0];
        if ((c >= '0' && c <= '9') || c == '*' || c == '$') {
            auto set = parse_sequence_set(a);
            if (!set) return set.error();
            k.op = Op::SequenceSet;
            k.set = std::move(*set);
            return k;
        }
        const KeyInfo* info = nullptr;
        for (auto& ki : kKeys)
            if (ki.name == name) info = &ki;
        if (!info) return bad("Unknown search key '" + a.text.substr(0, 64) + "'");
        k.op = info->op;
        switch (info->arg) {
            case KeyInfo::None:
                return k;
            case KeyInfo::String: {
                auto s = next_astring(name);
                if (!s) return s.error();
                k.value = std::move(*s);
                return k;
            }
            case KeyInfo::Header: {
                auto f = next_astring(name);
                if (!f) return f.error();
                if (f->empty()) return bad("HEADER needs a field name");
                auto v = next_astring(name);
                if (!v) return v.error();
                k.field = std::move(*f);
                k.value = std::move(*v);
                return k;
            }
            case KeyInfo::Date: {
                if (done()) return bad(name + " needs a date");
                auto d = parse_date(args_[i_++]);
                if (!d) return d.error();
                k.date = *d;
                return k;
            }
            case KeyInfo::Number: {
                if (done() || !args_[i_].is_atom()) return bad(name + " needs a number");
                auto n = parse_number64(args_[i_++].text);
                if (!n) return n.error();
                k.number = *n;
                return k;
            }
            case KeyInfo::Keyword: {
                if (done()) return bad(name + " needs a keyword");
                FlagList f;
                if (auto e = add_flag(f, args_[i_++], FlagContext::Search)) return *e;
                k.value = f.keywords.at(0);
                return k;
            }
            case KeyInfo::Set: {
                if (done()) return bad(name + " needs a sequence set");
                auto set = parse_sequence_set(args_[i_++]);
                if (!set) return set.error();
                k.set = std::move(*set);
                return k;
            }
            case KeyInfo::Not: {
                auto child = key(depth + 1);
                if (!child) return child.error();
                k.children.push_back(std::move(*child));
                return k;
            }
            case KeyInfo::Or: {
                for (int n = 0; n < 2; ++n) {
                    auto child = key(depth + 1);
                    if (!child) return child.error();
                    k.children.push_back(std::move(*child));
                }
                return k;
            }
            case KeyInfo::ModSeq:
                return modseq(std::move(k));
        }
        return bad("Unknown search key");
    }

  private:
    Parsed<std::string> next_astring(const std::string& name) {
        if (done()) return bad(name + " needs a string");
        auto s = astring(args_[i_++]);
        if (!s) return bad(name + " needs a string");
        return std::string(*s);
    }

    // MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer, where
    // entry-name = DQUOTE "/flags/" attr-flag DQUOTE and entry-type-req = "priv"/"shared"/"all".
    Parsed<SearchKey> modseq(SearchKey k) {
        if (done()) return bad("MODSEQ needs a mod-sequence");
        if (args_[i_].is_string()) {
            const std::string& entry = args_[i_++].text;
            if (entry.size() <= 7 || upper(entry.substr(0, 7)) != "/FLAGS/")
                return bad("Invalid MODSEQ entry name");
            if (done()) return bad("MODSEQ needs an entry type");
            std::string type = upper_atom(args_[i_++]);
            if (type == "PRIV")
                k.entry_type = SearchKey::EntryType::Priv;
            else if (type == "SHARED")
                k.entry_type = SearchKey::EntryType::Shared;
            else if (type == "ALL")
                k.entry_type = SearchKey::EntryType::All;
            else
                return bad("Invalid MODSEQ entry type");
            k.value = entry;
            if (done()) return bad("MODSEQ needs a mod-sequence");
        }
        if (!args_[i_].is_atom()) return bad("MODSEQ needs a mod-sequence");
        auto v = parse_mod_sequence(args_[i_++].text, true);
        if (!v) return v.error();
        k.number = *v;
        return k;
    }

    static std::string upper(std::string s) {
        for (auto& c : s)
            if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
        return s;
    }

    std::span<const Arg> args_;
    std::size_t i_ = 0;
};

}  // namespace

Parsed<SearchKey> parse_search_keys(std::span<const Arg> args) {
    return KeyReader(args).all(0);
}

Parsed<std::pair<std::int64_t, std::int64_t>> parse_partial_range(std::string_view s) {
    auto colon = s.find(':');
    if (colon == std::string_view::npos) return bad("PARTIAL range must be first:last");
    auto num = [](std::string_view t) -> std::optional<std::int64_t> {
        bool neg = !t.empty() && t[0] == '-';
        if (neg) t.remove_prefix(1);
        if (t.empty() || t.size() > 10 || t[0] == '0') return std::nullopt;
        std::int64_t v = 0;
        for (char c : t) {
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + (c - '0');
        }
        if (v > 0xffffffffLL) return std::nullopt;
        return neg ? -v : v;
    };
    auto a = num(s.substr(0, colon)), b = num(s.substr(colon + 1));
    if (!a || !b || ((*a < 0) != (*b < 0))) return bad("Invalid PARTIAL range");
    if (*a > *b) std::swap(*a, *b);
    return std::pair{*a, *b};
}

std::string partial_result(const SearchReturn& ret, const std::vector<std::uint32_t>& hits) {
    std::string out = "(" + std::to_string(ret.first) + ":" + std::to_string(ret.last) + " ";
    // Positions as 0-based indices [lo, hi) into hits.
    const auto n = static_cast<std::int64_t>(hits.size());
    std::int64_t lo, hi;
    if (ret.first > 0) {
        lo = ret.first - 1;
        hi = ret.last;
    } else {
        lo = n + ret.first;
        hi = n + ret.last + 1;
    }
    lo = std::clamp<std::int64_t>(lo, 0, n);
    hi = std::clamp<std::int64_t>(hi, 0, n);
    if (lo >= hi) return out + "NIL)";
    // The selected results in result order; ascending runs become "a:b".
    std::string set;
    for (std::int64_t i = lo; i < hi;) {
        std::int64_t j = i;
        while (j + 1 < hi && hits[j + 1] == hits[j] + 1)
            ++j;
        if (!set.empty()) set += ',';
        set += std::to_string(hits[i]);
        if (j > i) set += ":" + std::to_string(hits[j]);
        i = j + 1;
    }
    return out + set + ")";
}

Parsed<SearchProgram> parse_search(const Command& cmd) {
    std::span<const Arg> args = cmd.args;
    SearchProgram p;
    std::size_t i = 0;
    if (i < args.size() && upper_atom(args[i]) == "RETURN") {
        if (i + 1 >= args.size() || !args[i + 1].is_list()) return bad("RETURN needs a list");
        p.esearch = true;
        auto& items = args[i + 1].items;
        for (std::size_t k = 0; k < items.size(); ++k) {
            const Arg& o = items[k];
            std::string opt = upper_atom(o);
            if (opt == "MIN")
                p.ret.min = true;
            else if (opt == "MAX")
                p.ret.max = true;
            else if (opt == "ALL")
                p.ret.all = true;
            else if (opt == "COUNT")
                p.ret.count = true;
            else if (opt == "SAVE")
                p.ret.save = true;
            else if (opt == "UPDATE")
                p.ret.update = true;
            else if (opt == "CONTEXT")
                p.ret.context = true;
            else if (opt == "PARTIAL" && !p.ret.partial) {
                if (++k >= items.size() || !items[k].is_atom()) return bad("PARTIAL needs a range");
                auto r = parse_partial_range(items[k].text);
                if (!r) return r.error();
                p.ret.partial = true;
                p.ret.first = r->first;
                p.ret.last = r->second;
            } else
                return bad("Unknown SEARCH return option '" + o.text.substr(0, 64) + "'");
        }
        // RFC 9394 §3.1: PARTIAL and ALL are mutually exclusive.
        if (p.ret.partial && p.ret.all) return bad("PARTIAL and ALL together");
        if (args[i + 1].items.empty()) p.ret.all = true;
        i += 2;
    }
    if (i < args.size() && upper_atom(args[i]) == "CHARSET") {
        if (i + 1 >= args.size()) return bad("CHARSET needs a name");
        auto cs = astring(args[i + 1]);
        if (!cs || cs->empty()) return bad("CHARSET needs a name");
        p.charset = std::string(*cs);
        for (auto& c : p.charset)
            if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
        if (p.charset != "US-ASCII" && p.charset != "UTF-8")
            return ArgError{"Unsupported charset " + p.charset.substr(0, 64),
                            "BADCHARSET (US-ASCII UTF-8)"};
        i += 2;
    }
    auto key = parse_search_keys(args.subspan(i));
    if (!key) return key.error();
    p.key = std::move(*key);
    return p;
}

}  // namespace millipost::imap
