// proto/imap/writer.h: output helpers for IMAP responses: string encodings (atom, quoted,
// literal; UTF-8 aware), mailbox names, flag lists, sequence sets, INTERNALDATE, status
// responses and the "* n FETCH (...)" builder. Everything appends to a caller's std::string.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "proto/imap/args.h"
#include "proto/imap/fetch.h"
#include "proto/imap/sequence_set.h"

namespace millipost::imap {

// Strings longer than this are sent as literals even when they could be quoted.
inline constexpr std::size_t kMaxQuoted = 1024;

// string: quoted when it can be (no CR, LF or NUL; 8-bit only if `utf8` and it is valid UTF-8;
// at most kMaxQuoted octets), else a literal {n}. Precondition: no NUL unless the caller sends
// it where literal8 is allowed (use write_literal(..., true) there).
void write_string(std::string& out, std::string_view s, bool utf8);
// astring: an atom when every octet is an ASTRING-CHAR (and it is neither empty nor "NIL",
// which a client could read as nil), else as write_string.
void write_astring(std::string& out, std::string_view s, bool utf8);
// nstring: NIL for nullopt, else a string.
void write_nstring(std::string& out, std::optional<std::string_view> s, bool utf8);
// "{n}\r\n" + data, or "~{n}\r\n" + data for literal8 (BINARY, RFC 3516).
void write_literal(std::string& out, std::string_view data, bool literal8 = false);
// A mailbox name (UTF-8 inside the server): as is for rev2 (`utf8`), modified UTF-7 for rev1.
// Names that are not valid UTF-8 are written as they are (the store should never hold one).
void write_mailbox(std::string& out, std::string_view name, bool utf8);

// "(\Answered \Flagged \Deleted \Seen \Draft kw1 kw2)"; "\*" last if flags.any_keyword
// (PERMANENTFLAGS). \Recent only if set (rev1 sessions).
void write_flags(std::string& out, const FlagList& flags);

// INTERNALDATE: "\"01-Feb-1994 21:52:25 -0800\"" (quotes included) for the instant `epoch`
// written in `zone_minutes` east of UTC. Years are clamped to 0000..9999.
std::string format_date_time(std::int64_t epoch, int zone_minutes = 0);

// Response conditions (RFC 9051 §7.1).
enum class Condition { Ok, No, Bad, Bye, Preauth };
// "tag OK [CODE] text\r\n"; tag "*" for untagged; empty code for none. CR, LF and NUL in code
// or text become spaces, and ']' in the code is dropped, so a reply is always one line. Pass a
// text: IMAP4rev1 requires one.
void write_status(std::string& out, std::string_view tag, Condition cond, std::string_view code,
                  std::string_view text);
// "+ text\r\n": a continuation request.
void write_continuation(std::string& out, std::string_view text);

// The name a FETCH response uses for a requested item: "BODY[1.HEADER.FIELDS (From)]<0>" for
// BODY.PEEK[1.HEADER.FIELDS (From)]<0.100> (no PEEK, only the origin of a partial),
// "BINARY.SIZE[2]", "RFC822.SIZE", ...
std::string fetch_response_name(const FetchAtt& att);

// Builds "* seq FETCH (item value item value ...)\r\n" into `out`:
//   FetchResponse r(out, 12);
//   r.uid(4827).flags(f).section(att, body);
//   r.finish();
class FetchResponse {
  public:
    FetchResponse(std::string& out, std::uint32_t seq);

    FetchResponse& uid(std::uint32_t uid);
    FetchResponse& flags(const FlagList& flags);
    FetchResponse& internal_date(std::int64_t epoch, int zone_minutes);
    FetchResponse& rfc822_size(std::uint64_t size);
    FetchResponse& modseq(std::uint64_t modseq);
    // "BINARY.SIZE[part] n" for the part named by att.section.
    FetchResponse& binary_size(const FetchAtt& att, std::uint64_t size);
    // Content of a BODY[...]/BINARY[...]/RFC822* item, always a literal (literal8 for BINARY
    // content holding NUL).
    FetchResponse& section(const FetchAtt& att, std::string_view data);
    // A section whose content the caller sends itself right after: writes "NAME {size}\r\n"
    // (or "~{size}\r\n"), so a large body need not be copied into `out`.
    FetchResponse& section_header(const FetchAtt& att, std::uint64_t size, bool literal8 = false);
    // An item whose value is already formatted (ENVELOPE, BODYSTRUCTURE).
    FetchResponse& raw(std::string_view name, std::string_view value);

    // Appends ")\r\n". Call once, last.
    void finish();

  private:
    void name(std::string_view n);

    std::string& out_;
    bool first_ = true;
};

}  // namespace millipost::imap
