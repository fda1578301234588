// proto/imap/args.h: interpreters of IMAP command arguments: strings, numbers, mailbox names,
// flags, dates, and the arguments of STORE, STATUS and APPEND. Pure functions over the Arg
// tree of parser.h; each failure carries the text for the tagged BAD. FETCH, SEARCH and LIST
// have their own files (fetch.h, search.h, list.h).
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/imap/parsed.h"
#include "proto/imap/parser.h"
#include "proto/imap/sequence_set.h"

namespace millipost::imap {

// ---- Strings and numbers ----------------------------------------------------------------------

// astring: an atom (without a FETCH section), NIL read as the word, a quoted string or a literal.
std::optional<std::string_view> astring(const Arg& a);
// string: quoted or literal only.
std::optional<std::string_view> string_arg(const Arg& a);
// True if `s` is an atom by the strict grammar (ATOM-CHARs only: no '%', '*', '\', ']').
bool strict_atom(std::string_view s);
// The atom's text upper-cased (ASCII), or "" for anything that is not a plain atom.
std::string upper_atom(const Arg& a);

// number (32-bit, RFC 3501), nz-number, number64 and mod-sequence-valzer (63-bit, RFC 9051/7162).
Parsed<std::uint32_t> parse_number(std::string_view s);
Parsed<std::uint32_t> parse_nz_number(std::string_view s);
Parsed<std::uint64_t> parse_number64(std::string_view s);
// mod-sequence-value = 1*DIGIT, at most 2^63-1; `allow_zero` for mod-sequence-valzer.
Parsed<std::uint64_t> parse_mod_sequence(std::string_view s, bool allow_zero);

// The argument `a` as a sequence set (an atom).
Parsed<SequenceSet> parse_sequence_set(const Arg& a);

// ---- Mailbox names ----------------------------------------------------------------------------

// A mailbox name as UTF-8. `utf8` is true for IMAP4rev2 (and UTF8=ACCEPT) sessions, where the
// name must be valid UTF-8 and is used as is; false for IMAP4rev1, where the name is modified
// UTF-7 and is decoded. "INBOX" in any case becomes "INBOX". Control characters are refused.
Parsed<std::string> parse_mailbox(const Arg& a, bool utf8);
// Same rules for text already extracted (LIST patterns use it without the INBOX rule).
Parsed<std::string> decode_mailbox(std::string_view name, bool utf8);
// The response code of decode_mailbox's error for a name that is not valid modified UTF-7
// (the error is NO [CANNOT], not BAD: the command itself is well-formed).
inline constexpr std::string_view kInvalidMailboxNameCode = "CANNOT";

// ---- Flags ------------------------------------------------------------------------------------

// System flags as bits (RFC 9051 §2.3.2). Recent is IMAP4rev1 only and never client-settable.
enum SystemFlag : std::uint8_t {
    kFlagSeen = 1 << 0,
    kFlagAnswered = 1 << 1,
    kFlagFlagged = 1 << 2,
    kFlagDeleted = 1 << 3,
    kFlagDraft = 1 << 4,
    kFlagRecent = 1 << 5,
};

struct FlagList {
    std::uint8_t system = 0;            // SystemFlag bits
    std::vector<std::string> keywords;  // as sent, without case-insensitive duplicates
    bool any_keyword = false;           // "\*" (PERMANENTFLAGS: clients may create keywords)
    bool operator==(const FlagList&) const = default;
};

// Where a flag list appears: what it may hold.
enum class FlagContext {
    Store,           // STORE, APPEND: system flags (not \Recent) and keywords
    Search,          // KEYWORD/UNKEYWORD: a keyword only
    PermanentFlags,  // as Store, plus "\*"
};

// "\Seen" (any case) to its bit; 0 if not a system flag.
std::uint8_t system_flag(std::string_view name);
// flag-keyword: a strict atom that does not start with '\'.
bool valid_keyword(std::string_view s);
// One flag (an atom) added to `out`.
std::optional<ArgError> add_flag(FlagList& out, const Arg& a, FlagContext ctx);
// flag-list = "(" [flag *(SP flag)] ")".
Parsed<FlagList> parse_flag_list(const Arg& list, FlagContext ctx);
// STORE's flags: one flag list, or flags without parentheses (RFC 9051 store-att-flags).
Parsed<FlagList> parse_flags(std::span<const Arg> args, FlagContext ctx);

// ---- Dates ------------------------------------------------------------------------------------

// Seconds since 1970-01-01T00:00:00Z of a civil date and time (proleptic Gregorian), and back.
std::int64_t epoch_from_civil(int year, int month, int day, int hour = 0, int minute = 0,
                              int second = 0);
struct Civil {
    int year, month, day, hour, minute, second;
};
Civil civil_from_epoch(std::int64_t epoch);

// date = date-text / DQUOTE date-text DQUOTE; date-text = 1*2DIGIT "-" Mon "-" 4DIGIT, e.g.
// "1-Feb-1994". The result is 00:00 UTC of that day: SEARCH compares days, not instants.
Parsed<std::int64_t> parse_date(std::string_view s);
Parsed<std::int64_t> parse_date(const Arg& a);

// date-time without its quotes: "01-Feb-1994 21:52:25 -0800" (the day may be " 1" or "1").
struct DateTime {
    std::int64_t epoch = 0;  // the instant, UTC
    int zone_minutes = 0;    // the zone it was written in, e.g. -480
    bool operator==(const DateTime&) const = default;
};
Parsed<DateTime> parse_date_time(std::string_view s);

// ---- STORE ------------------------------------------------------------------------------------

// STORE sequence-set [SP "(" UNCHANGEDSINCE n ")"] SP ["+"/"-"] "FLAGS" [".SILENT"] SP flags
// (RFC 9051 §6.4.6, CONDSTORE RFC 7162 §3.1.3).
struct StoreArgs {
    enum class Mode : std::uint8_t { Replace, Add, Remove };
    SequenceSet set;
    Mode mode = Mode::Replace;
    bool silent = false;
    FlagList flags;
    std::optional<std::uint64_t> unchanged_since;
};
Parsed<StoreArgs> parse_store(const Command& cmd);

// ---- STATUS -----------------------------------------------------------------------------------

enum class StatusItem : std::uint8_t {
    Messages,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,         // RFC 9051
    Size,            // RFC 9051
    Recent,          // IMAP4rev1
    HighestModSeq,   // CONDSTORE, RFC 7162
    AppendLimit,     // APPENDLIMIT, RFC 7889
    DeletedStorage,  // QUOTA, RFC 9208 §4.2: KiB that EXPUNGE would free
};
// The name as it appears on the wire ("UIDNEXT").
std::string_view status_item_name(StatusItem item);
// "(" status-att *(SP status-att) ")": the items in order, without duplicates.
Parsed<std::vector<StatusItem>> parse_status_items(const Arg& list);

struct StatusArgs {
    std::string mailbox;  // UTF-8
    std::vector<StatusItem> items;
};
Parsed<StatusArgs> parse_status(const Command& cmd, bool utf8);

// ---- CREATE -----------------------------------------------------------------------------------

// CREATE mailbox [SP "(" "USE" SP "(" use-attr *(SP use-attr) ")" ")"] (CREATE-SPECIAL-USE,
// RFC 6154 §3). The attributes are returned as sent; which ones the server supports is the
// session's business (NO [USEATTR]).
struct CreateArgs {
    std::string mailbox;  // UTF-8
    std::vector<std::string> use;
};
Parsed<CreateArgs> parse_create(const Command& cmd, bool utf8);

// ---- IMAP URLs ----------------------------------------------------------------------------------

// A relative IMAP URL naming one message or part of it (RFC 5092 §6, absolute path form):
// "/" enc-mailbox [";UIDVALIDITY=" nz-number] "/;UID=" nz-number ["/;SECTION=" enc-section]
// ["/;PARTIAL=" offset ["." length]]. Keys are case-insensitive; %-escapes are decoded and the
// mailbox must then be UTF-8. Anything else (server parts "imap://...", URLAUTH, searches) is
// refused with the code BADURL, which is what CATENATE answers (RFC 4469 §5).
struct ImapUrl {
    std::string mailbox;
    std::optional<std::uint32_t> uidvalidity;
    std::uint32_t uid = 0;
    std::string section;  // decoded, e.g. "1.HEADER"; empty for the whole message
    std::optional<std::pair<std::uint32_t, std::optional<std::uint32_t>>> partial;
    bool operator==(const ImapUrl&) const = default;
};
Parsed<ImapUrl> parse_imap_url(std::string_view url);

// ---- APPEND -----------------------------------------------------------------------------------

// One part of a CATENATE message (RFC 4469): literal text or a URL to (part of) a message.
struct CatenatePart {
    bool is_url = false;
    std::string_view text;  // TEXT: the literal's data (a view into the Command)
    ImapUrl url;            // URL: the parsed URL
    std::string url_text;   // URL: as sent, for error messages
};

// APPEND mailbox 1*(SP [flag-list SP] [date-time SP] append-data) (MULTIAPPEND, RFC 3502);
// append-data = literal / literal8 / "UTF8" SP "(" literal8 ")" (RFC 6855) /
//               "CATENATE" SP "(" cat-part *(SP cat-part) ")" (RFC 4469), where
// cat-part = "TEXT" SP literal / "URL" SP astring. A URL that does not parse makes the whole
// command fail with NO [BADURL] (RFC 4469 §5); whether it names a message is checked later.
struct AppendMessage {
    FlagList flags;
    std::optional<DateTime> date;
    std::string_view data;  // points into the Command's literal: keep the Command alive
    bool binary = false;    // sent as literal8
    bool utf8 = false;      // sent as UTF8 (~{n})
    bool catenate = false;  // CATENATE: the message is built from `parts`, `data` is empty
    std::vector<CatenatePart> parts;
};
struct AppendArgs {
    std::string mailbox;
    std::vector<AppendMessage> messages;
};
Parsed<AppendArgs> parse_append(const Command& cmd, bool utf8);

}  // namespace millipost::imap
