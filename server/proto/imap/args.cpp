// proto/imap/args.cpp: argument interpreters: strings, numbers, mailboxes, flags, dates, STORE,
// STATUS, APPEND (see args.h).
#include "proto/imap/args.h"

#include "util/ascii.h"
#include "util/limits.h"

#include <algorithm>
#include <array>

#include "proto/imap/mutf7.h"
#include "proto/imap/utf8.h"

namespace millipost::imap {
namespace {

using millipost::ascii::iequals;

std::string quote_for_error(std::string_view s) {
    std::string out = "'";
    for (char c : s.substr(0, 64)) {
        auto u = static_cast<unsigned char>(c);
        out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
    }
    if (s.size() > 64) out += "...";
    return out + "'";
}

bool digits_only(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// 1*DIGIT up to `max`.
std::optional<std::uint64_t> decimal(std::string_view s, std::uint64_t max) {
    if (!digits_only(s)) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (max - d) / 10) return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int month_number(std::string_view s) {
    for (std::size_t i = 0; i < kMonths.size(); ++i)
        if (iequals(s, kMonths[i])) return static_cast<int>(i) + 1;
    return 0;
}

int days_in_month(int year, int month) {
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : kDays[month - 1];
}

// Reads exactly `n` digits at s[i].
bool fixed_digits(std::string_view s, std::size_t& i, std::size_t n, int& out) {
    if (i + n > s.size()) return false;
    out = 0;
    for (std::size_t k = 0; k < n; ++k) {
        char c = s[i + k];
        if (c < '0' || c > '9') return false;
        out = out * 10 + (c - '0');
    }
    i += n;
    return true;
}

// "d-Mon-yyyy" or "dd-Mon-yyyy" at s[i]; `fixed_day` also takes " d" (date-day-fixed).
bool date_text(std::string_view s, std::size_t& i, int& y, int& m, int& d, bool fixed_day) {
    if (fixed_day && i < s.size() && s[i] == ' ') ++i;
    std::size_t start = i;
    d = 0;
    while (i < s.size() && i - start < 2 && s[i] >= '0' && s[i] <= '9')
        d = d * 10 + (s[i++] - '0');
    if (i == start || i >= s.size() || s[i] != '-') return false;
    ++i;
    if (i + 4 > s.size() || s[i + 3] != '-') return false;
    m = month_number(s.substr(i, 3));
    if (m == 0) return false;
    i += 4;
    if (!fixed_digits(s, i, 4, y)) return false;
    return d >= 1 && d <= days_in_month(y, m);
}

}  // namespace

// ---- Strings and numbers ----------------------------------------------------------------------

std::optional<std::string_view> astring(const Arg& a) {
    if ((a.kind == Arg::Kind::Atom && !a.section) || a.kind == Arg::Kind::Nil ||
        a.kind == Arg::Kind::String)
        return std::string_view(a.text);
    return std::nullopt;
}

std::optional<std::string_view> string_arg(const Arg& a) {
    if (a.kind == Arg::Kind::String) return std::string_view(a.text);
    return std::nullopt;
}

bool strict_atom(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
        auto c = static_cast<unsigned char>(ch);
        return c > 0x20 && c < 0x7f &&
               std::string_view("(){%*\"\\]").find(ch) == std::string_view::npos;
    });
}

std::string upper_atom(const Arg& a) {
    if (a.kind != Arg::Kind::Atom && a.kind != Arg::Kind::Nil) return {};
    if (a.section) return {};
    std::string s = a.text;
    for (auto& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    return s;
}

Parsed<std::uint32_t> parse_number(std::string_view s) {
    auto v = decimal(s, 0xFFFFFFFFull);
    if (!v) return bad("Invalid number " + quote_for_error(s));
    return static_cast<std::uint32_t>(*v);
}

Parsed<std::uint32_t> parse_nz_number(std::string_view s) {
    auto v = decimal(s, 0xFFFFFFFFull);
    if (!v || *v == 0 || s[0] == '0') return bad("Invalid non-zero number " + quote_for_error(s));
    return static_cast<std::uint32_t>(*v);
}

Parsed<std::uint64_t> parse_number64(std::string_view s) {
    auto v = decimal(s, 0x7FFFFFFFFFFFFFFFull);
    if (!v) return bad("Invalid number " + quote_for_error(s));
    return *v;
}

Parsed<std::uint64_t> parse_mod_sequence(std::string_view s, bool allow_zero) {
    auto v = decimal(s, 0x7FFFFFFFFFFFFFFFull);
    if (!v || (*v == 0 && !allow_zero)) return bad("Invalid mod-sequence " + quote_for_error(s));
    return *v;
}

Parsed<SequenceSet> parse_sequence_set(const Arg& a) {
    if (a.kind != Arg::Kind::Atom || a.section) return bad("Expected a sequence set");
    return parse_sequence_set(std::string_view(a.text));
}

// ---- Mailbox names ----------------------------------------------------------------------------

Parsed<std::string> decode_mailbox(std::string_view name, bool utf8) {
    std::string out;
    if (utf8) {
        if (!valid_utf8(name)) return ArgError{"Mailbox name is not valid UTF-8", "CANNOT"};
        out = std::string(name);
    } else {
        auto d = mutf7_decode(name);
        // Well-formed syntax, but a name no mailbox can have: NO [CANNOT] (RFC 5530), as
        // imaptest's `atoms` script expects for SELECT; LIST skips such patterns.
        if (!d)
            return ArgError{"Mailbox name is not valid modified UTF-7 " + quote_for_error(name),
                            std::string(kInvalidMailboxNameCode)};
        out = std::move(*d);
    }
    if (std::any_of(out.begin(), out.end(), [](char c) {
            auto u = static_cast<unsigned char>(c);
            return u < 0x20 || u == 0x7f;
        }))
        return bad("Mailbox name contains control characters");
    return out;
}

Parsed<std::string> parse_mailbox(const Arg& a, bool utf8) {
    auto s = astring(a);
    if (!s) return bad("Expected a mailbox name");
    if (iequals(*s, "INBOX")) return std::string("INBOX");
    auto name = decode_mailbox(*s, utf8);
    // No mailbox this long can exist (CREATE and RENAME refuse it), so every command may say so.
    if (name && name->size() > limits::kMaxMailboxNameBytes)
        return ArgError{
            "Mailbox name longer than " + std::to_string(limits::kMaxMailboxNameBytes) + " bytes",
            "LIMIT"};
    return name;
}

// ---- Flags ------------------------------------------------------------------------------------

std::uint8_t system_flag(std::string_view name) {
    static constexpr std::pair<std::string_view, std::uint8_t> kFlags[] = {
        {"\\Seen", kFlagSeen},       {"\\Answered", kFlagAnswered}, {"\\Flagged", kFlagFlagged},
        {"\\Deleted", kFlagDeleted}, {"\\Draft", kFlagDraft},       {"\\Recent", kFlagRecent},
    };
    for (auto& [n, bit] : kFlags)
        if (iequals(name, n)) return bit;
    return 0;
}

bool valid_keyword(std::string_view s) {
    return strict_atom(s);
}

std::optional<ArgError> add_flag(FlagList& out, const Arg& a, FlagContext ctx) {
    // NIL is an atom too (flag-keyword = atom, RFC 9051 §9): `STORE 1 +FLAGS NIL` sets the
    // keyword "NIL", as Dovecot does and imaptest's `nil` script expects.
    bool atom = (a.kind == Arg::Kind::Atom && !a.section) || a.kind == Arg::Kind::Nil;
    if (!atom) return bad("Flags must be atoms");
    std::string_view f = a.text;
    if (!f.empty() && f[0] == '\\') {
        if (ctx == FlagContext::Search) return bad("Expected a keyword, not " + quote_for_error(f));
        if (f == "\\*") {
            if (ctx != FlagContext::PermanentFlags) return bad("\\* is not a flag here");
            out.any_keyword = true;
            return std::nullopt;
        }
        auto bit = system_flag(f);
        if (bit == 0) return bad("Unknown system flag " + quote_for_error(f));
        if (bit == kFlagRecent) return bad("\\Recent can not be set by clients");
        out.system |= bit;
        return std::nullopt;
    }
    if (!valid_keyword(f)) return bad("Invalid keyword " + quote_for_error(f));
    for (auto& k : out.keywords)
        if (iequals(k, f)) return std::nullopt;
    out.keywords.emplace_back(f);
    return std::nullopt;
}

Parsed<FlagList> parse_flag_list(const Arg& list, FlagContext ctx) {
    if (list.kind != Arg::Kind::List) return bad("Expected a parenthesised flag list");
    FlagList out;
    for (auto& a : list.items)
        if (auto e = add_flag(out, a, ctx)) return *e;
    return out;
}

Parsed<FlagList> parse_flags(std::span<const Arg> args, FlagContext ctx) {
    if (args.empty()) return bad("Missing flags");
    if (args.size() == 1 && args[0].kind == Arg::Kind::List) return parse_flag_list(args[0], ctx);
    FlagList out;
    for (auto& a : args)
        if (auto e = add_flag(out, a, ctx)) return *e;
    return out;
}

// ---- Dates ------------------------------------------------------------------------------------

std::int64_t epoch_from_civil(int year, int month, int day, int hour, int minute, int second) {
    // Howard Hinnant's days_from_civil.
    std::int64_t y = year - (month <= 2 ? 1 : 0);
    std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    std::int64_t yoe = y - era * 400;
    std::int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    std::int64_t days = era * 146097 + doe - 719468;
    return days * 86400 + hour * 3600 + minute * 60 + second;
}

Civil civil_from_epoch(std::int64_t epoch) {
    std::int64_t days = epoch / 86400;
    std::int64_t secs = epoch % 86400;
    if (secs < 0) {
        secs += 86400;
        --days;
    }
    std::int64_t z = days + 719468;
    std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    std::int64_t doe = z - era * 146097;
    std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    std::int64_t mp = (5 * doy + 2) / 153;
    int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
    int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
    int y = static_cast<int>(yoe + era * 400 + (m <= 2 ? 1 : 0));
    return Civil{y,
                 m,
                 d,
                 static_cast<int>(secs / 3600),
                 static_cast<int>(secs / 60 % 60),
                 static_cast<int>(secs % 60)};
}

Parsed<std::int64_t> parse_date(std::string_view s) {
    std::size_t i = 0;
    int y, m, d;
    if (!date_text(s, i, y, m, d, false) || i != s.size())
        return bad("Invalid date " + quote_for_error(s) + ", expected e.g. 1-Feb-1994");
    return epoch_from_civil(y, m, d);
}

Parsed<std::int64_t> parse_date(const Arg& a) {
    auto s = astring(a);
    if (!s) return bad("Expected a date");
    return parse_date(*s);
}

Parsed<DateTime> parse_date_time(std::string_view s) {
    auto fail = [&] {
        return bad("Invalid date-time " + quote_for_error(s) +
                   ", expected e.g. \"01-Feb-1994 21:52:25 -0800\"");
    };
    std::size_t i = 0;
    int y, mo, d, h, mi, sec, zh, zm;
    if (!date_text(s, i, y, mo, d, true)) return fail();
    if (i >= s.size() || s[i++] != ' ') return fail();
    if (!fixed_digits(s, i, 2, h) || i >= s.size() || s[i++] != ':') return fail();
    if (!fixed_digits(s, i, 2, mi) || i >= s.size() || s[i++] != ':') return fail();
    if (!fixed_digits(s, i, 2, sec) || i >= s.size() || s[i++] != ' ') return fail();
    if (i >= s.size() || (s[i] != '+' && s[i] != '-')) return fail();
    int sign = s[i++] == '-' ? -1 : 1;
    if (!fixed_digits(s, i, 2, zh) || !fixed_digits(s, i, 2, zm) || i != s.size()) return fail();
    if (h > 23 || mi > 59 || sec > 60 || zm > 59) return fail();
    int zone = sign * (zh * 60 + zm);
    return DateTime{epoch_from_civil(y, mo, d, h, mi, sec) - std::int64_t{zone} * 60, zone};
}

// ---- STORE ------------------------------------------------------------------------------------

Parsed<StoreArgs> parse_store(const Command& cmd) {
    const auto& args = cmd.args;
    if (args.size() < 3) return bad("Syntax: STORE sequence-set [+|-]FLAGS[.SILENT] flags");
    StoreArgs out;
    auto set = parse_sequence_set(args[0]);
    if (!set) return set.error();
    out.set = std::move(*set);
    std::size_t i = 1;
    if (args[i].kind == Arg::Kind::List) {
        const auto& mods = args[i].items;
        if (mods.empty()) return bad("Empty STORE modifier list");
        for (std::size_t k = 0; k < mods.size(); k += 2) {
            auto name = upper_atom(mods[k]);
            if (name != "UNCHANGEDSINCE")
                return bad("Unknown STORE modifier " + quote_for_error(mods[k].text));
            if (out.unchanged_since) return bad("UNCHANGEDSINCE given twice");
            if (k + 1 >= mods.size() || !mods[k + 1].is_atom())
                return bad("UNCHANGEDSINCE needs a mod-sequence");
            auto v = parse_mod_sequence(mods[k + 1].text, true);
            if (!v) return v.error();
            out.unchanged_since = *v;
        }
        ++i;
    }
    if (i + 1 >= args.size()) return bad("Syntax: STORE sequence-set [+|-]FLAGS[.SILENT] flags");
    std::string item = upper_atom(args[i]);
    std::string_view it = item;
    if (it.starts_with("+")) {
        out.mode = StoreArgs::Mode::Add;
        it.remove_prefix(1);
    } else if (it.starts_with("-")) {
        out.mode = StoreArgs::Mode::Remove;
        it.remove_prefix(1);
    }
    if (it.ends_with(".SILENT")) {
        out.silent = true;
        it.remove_suffix(7);
    }
    if (it != "FLAGS") return bad("Unknown STORE item " + quote_for_error(args[i].text));
    auto flags = parse_flags(std::span<const Arg>(args).subspan(i + 1), FlagContext::Store);
    if (!flags) return flags.error();
    out.flags = std::move(*flags);
    return out;
}

// ---- STATUS -----------------------------------------------------------------------------------

namespace {
constexpr std::pair<std::string_view, StatusItem> kStatusItems[] = {
    {"MESSAGES", StatusItem::Messages},       {"UIDNEXT", StatusItem::UidNext},
    {"UIDVALIDITY", StatusItem::UidValidity}, {"UNSEEN", StatusItem::Unseen},
    {"DELETED", StatusItem::Deleted},         {"SIZE", StatusItem::Size},
    {"RECENT", StatusItem::Recent},           {"HIGHESTMODSEQ", StatusItem::HighestModSeq},
    {"APPENDLIMIT", StatusItem::AppendLimit}, {"DELETED-STORAGE", StatusItem::DeletedStorage},
};
}  // namespace

std::string_view status_item_name(StatusItem item) {
    for (auto& [name, it] : kStatusItems)
        if (it == item) return name;
    return {};
}

Parsed<std::vector<StatusItem>> parse_status_items(const Arg& list) {
    if (list.kind != Arg::Kind::List) return bad("Expected a parenthesised list of status items");
    if (list.items.empty()) return bad("Empty list of status items");
    std::vector<StatusItem> out;
    for (auto& a : list.items) {
        auto name = upper_atom(a);
        auto it = std::find_if(std::begin(kStatusItems), std::end(kStatusItems),
                               [&](auto& p) { return p.first == name; });
        if (name.empty() || it == std::end(kStatusItems))
            return bad("Unknown status item " + quote_for_error(a.text));
        if (std::find(out.begin(), out.end(), it->second) == out.end()) out.push_back(it->second);
    }
    return out;
}

Parsed<StatusArgs> parse_status(const Command& cmd, bool utf8) {
    if (cmd.args.size() != 2) return bad("Syntax: STATUS mailbox (items)");
    auto mailbox = parse_mailbox(cmd.args[0], utf8);
    if (!mailbox) return mailbox.error();
    auto items = parse_status_items(cmd.args[1]);
    if (!items) return items.error();
    return StatusArgs{std::move(*mailbox), std::move(*items)};
}

// ---- CREATE -----------------------------------------------------------------------------------

Parsed<CreateArgs> parse_create(const Command& cmd, bool utf8) {
    const auto& args = cmd.args;
    if (args.empty() || args.size() > 2) return bad("Syntax: CREATE mailbox [(USE (attrs))]");
    CreateArgs out;
    auto mailbox = parse_mailbox(args[0], utf8);
    if (!mailbox) return mailbox.error();
    out.mailbox = std::move(*mailbox);
    if (args.size() == 1) return out;
    // create-params: "(" create-param *(SP create-param) ")"; USE is the only one we know.
    const auto& params = args[1];
    if (!params.is_list() || params.items.empty()) return bad("Expected CREATE parameters");
    for (std::size_t i = 0; i < params.items.size(); ++i) {
        if (upper_atom(params.items[i]) != "USE")
            return bad("Unknown CREATE parameter " + quote_for_error(params.items[i].text));
        if (i + 1 >= params.items.size() || !params.items[i + 1].is_list() ||
            params.items[i + 1].items.empty())
            return bad("USE needs a list of special-use attributes");
        for (auto& a : params.items[++i].items) {
            if (!a.is_atom() || a.text.size() < 2 || a.text[0] != '\\' ||
                !strict_atom(std::string_view(a.text).substr(1)))
                return bad("Expected a special-use attribute, got " + quote_for_error(a.text));
            out.use.push_back(a.text);
        }
    }
    return out;
}

// ---- IMAP URLs ----------------------------------------------------------------------------------

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// %-unescapes (RFC 3986 §2.1); nullopt for a broken escape.
std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

ArgError bad_url(std::string_view url, std::string_view why) {
    return ArgError{"Bad IMAP URL " + quote_for_error(url) + ": " + std::string(why), "BADURL"};
}

}  // namespace

Parsed<ImapUrl> parse_imap_url(std::string_view url) {
    if (url.size() < 2 || url[0] != '/' || url[1] == '/')
        return bad_url(url, "only relative URLs of the form /mailbox/;UID=n are supported");
    // ';' cannot appear unescaped in enc-mailbox (RFC 5092 §11 bchar), so the first one ends
    // the mailbox name: either ";UIDVALIDITY=" right after it, or "/;UID=".
    auto rest = url.substr(1);
    auto semi = rest.find(';');
    if (semi == std::string_view::npos || semi == 0) return bad_url(url, "no ;UID=");
    auto enc_mailbox = rest.substr(0, semi);
    bool slash = enc_mailbox.back() == '/';
    if (slash) enc_mailbox.remove_suffix(1);
    if (enc_mailbox.empty() || enc_mailbox.find('?') != std::string_view::npos)
        return bad_url(url, "no mailbox name");
    auto mailbox = percent_decode(enc_mailbox);
    if (!mailbox) return bad_url(url, "broken %-escape");
    auto name = decode_mailbox(*mailbox, true);
    if (!name) return bad_url(url, "the mailbox name is not UTF-8");
    ImapUrl out;
    out.mailbox = iequals(*name, "INBOX") ? std::string("INBOX") : std::move(*name);
    // The rest: ";KEY=value" items, each but the first after a '/' (UIDVALIDITY sits right
    // after the mailbox name, without one).
    rest = rest.substr(semi);
    bool first = true;
    enum { kUidValidity, kUid, kSection, kPartial, kEnd } expect = slash ? kUid : kUidValidity;
    while (!rest.empty()) {
        if (!first) {
            if (!rest.starts_with("/;")) return bad_url(url, "expected /;");
            rest.remove_prefix(1);
        }
        first = false;
        rest.remove_prefix(1);  // ';'
        auto end = rest.find('/');
        auto item = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
        auto eq = item.find('=');
        if (eq == std::string_view::npos) return bad_url(url, "expected KEY=value");
        auto key = item.substr(0, eq), value = item.substr(eq + 1);
        if (iequals(key, "UIDVALIDITY") && expect == kUidValidity) {
            auto v = parse_nz_number(value);
            if (!v) return bad_url(url, "bad UIDVALIDITY");
            out.uidvalidity = *v;
            expect = kUid;
        } else if (iequals(key, "UID") && expect == kUid) {
            auto v = parse_nz_number(value);
            if (!v) return bad_url(url, "bad UID");
            out.uid = *v;
            expect = kSection;
        } else if (iequals(key, "SECTION") && expect == kSection) {
            // The section text runs to the next "/;" (it may hold '/' only escaped, but be
            // lenient: a section never contains ";").
            auto sec = percent_decode(value);
            if (!sec || sec->empty()) return bad_url(url, "bad SECTION");
            out.section = std::move(*sec);
            expect = kPartial;
        } else if (iequals(key, "PARTIAL") && expect >= kSection && expect <= kPartial) {
            auto dot = value.find('.');
            auto off = parse_number(value.substr(0, dot));
            if (!off) return bad_url(url, "bad PARTIAL");
            std::optional<std::uint32_t> len;
            if (dot != std::string_view::npos) {
                auto l = parse_nz_number(value.substr(dot + 1));
                if (!l) return bad_url(url, "bad PARTIAL length");
                len = *l;
            }
            out.partial.emplace(*off, len);
            expect = kEnd;
        } else {
            return bad_url(url, "unexpected or unsupported " + std::string(key.substr(0, 32)));
        }
    }
    if (out.uid == 0) return bad_url(url, "no ;UID=");
    return out;
}

// ---- APPEND -----------------------------------------------------------------------------------

namespace {

bool is_literal(const Arg& a) {
    return a.kind == Arg::Kind::String && a.form != Arg::Form::Quoted;
}

// "(" cat-part *(SP cat-part) ")".
std::optional<ArgError> parse_catenate(const Arg& list, AppendMessage& m) {
    if (!list.is_list() || list.items.empty()) return bad("CATENATE needs a list of parts");
    const auto& items = list.items;
    for (std::size_t k = 0; k < items.size(); k += 2) {
        auto kind = upper_atom(items[k]);
        if (k + 1 >= items.size()) return bad("CATENATE: " + kind + " without a value");
        CatenatePart part;
        if (kind == "TEXT") {
            // RFC 4469 §5: text-literal = literal (literal8 is for the BINARY extension).
            if (!is_literal(items[k + 1])) return bad("CATENATE: TEXT needs a literal");
            part.text = items[k + 1].text;
        } else if (kind == "URL") {
            auto u = astring(items[k + 1]);
            if (!u) return bad("CATENATE: URL needs a string");
            auto url = parse_imap_url(*u);
            if (!url) return url.error();
            part.is_url = true;
            part.url = std::move(*url);
            part.url_text = std::string(*u);
        } else {
            return bad("CATENATE: expected TEXT or URL, got " + quote_for_error(items[k].text));
        }
        m.parts.push_back(std::move(part));
    }
    m.catenate = true;
    return std::nullopt;
}

}  // namespace

Parsed<AppendArgs> parse_append(const Command& cmd, bool utf8) {
    const auto& args = cmd.args;
    if (args.size() < 2) return bad("Syntax: APPEND mailbox [(flags)] [date-time] literal");
    AppendArgs out;
    auto mailbox = parse_mailbox(args[0], utf8);
    if (!mailbox) return mailbox.error();
    out.mailbox = std::move(*mailbox);
    for (std::size_t i = 1; i < args.size();) {
        AppendMessage m;
        if (args[i].kind == Arg::Kind::List) {
            auto flags = parse_flag_list(args[i], FlagContext::Store);
            if (!flags) return flags.error();
            m.flags = std::move(*flags);
            ++i;
        }
        if (i < args.size() && args[i].kind == Arg::Kind::String &&
            args[i].form == Arg::Form::Quoted) {
            auto dt = parse_date_time(args[i].text);
            if (!dt) return dt.error();
            m.date = *dt;
            ++i;
        }
        if (i >= args.size()) return bad("APPEND: missing the message literal");
        const Arg& a = args[i];
        if (is_literal(a)) {
            m.data = a.text;
            m.binary = a.form == Arg::Form::Literal8;
            ++i;
        } else if (auto word = upper_atom(a); word == "UTF8") {
            if (i + 1 >= args.size() || !args[i + 1].is_list() || args[i + 1].items.size() != 1 ||
                args[i + 1].items[0].form != Arg::Form::Literal8 ||
                !args[i + 1].items[0].is_string())
                return bad("APPEND: UTF8 needs (~{n} literal8)");
            m.data = args[i + 1].items[0].text;
            m.binary = true;
            m.utf8 = true;
            i += 2;
        } else if (word == "CATENATE") {
            if (i + 1 >= args.size()) return bad("CATENATE needs a list of parts");
            if (auto e = parse_catenate(args[i + 1], m)) return *e;
            i += 2;
        } else {
            return bad("APPEND: the message must be a literal");
        }
        out.messages.push_back(std::move(m));
    }
    return out;
}

}  // namespace millipost::imap
