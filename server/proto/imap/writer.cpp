// proto/imap/writer.cpp: IMAP response output helpers (see writer.h).
#include "proto/imap/writer.h"

#include <algorithm>
#include <cstdio>

#include "proto/imap/mutf7.h"
#include "proto/imap/utf8.h"

namespace millipost::imap {
namespace {

bool astring_char(unsigned char c) {
    return c > 0x20 && c < 0x7f &&
           std::string_view("(){%*\"\\").find(static_cast<char>(c)) == std::string_view::npos;
}

bool quotable(std::string_view s, bool utf8) {
    if (s.size() > kMaxQuoted) return false;
    bool eight_bit = false;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == 0 || c == '\r' || c == '\n') return false;
        if (c >= 0x80) eight_bit = true;
    }
    return !eight_bit || (utf8 && valid_utf8(s));
}

void write_quoted(std::string& out, std::string_view s) {
    out.push_back('"');
    for (char c : s) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
}

void append_clean(std::string& out, std::string_view s, bool drop_bracket) {
    for (char c : s) {
        if (c == '\r' || c == '\n' || c == '\0')
            out.push_back(' ');
        else if (!(drop_bracket && c == ']'))
            out.push_back(c);
    }
}

void append_section(std::string& out, const Section& sec) {
    for (std::size_t i = 0; i < sec.part.size(); ++i) {
        if (i) out.push_back('.');
        out += std::to_string(sec.part[i]);
    }
    if (sec.text == Section::Text::All) return;
    if (!sec.part.empty()) out.push_back('.');
    switch (sec.text) {
        case Section::Text::Header:
            out += "HEADER";
            break;
        case Section::Text::HeaderFields:
            out += "HEADER.FIELDS";
            break;
        case Section::Text::HeaderFieldsNot:
            out += "HEADER.FIELDS.NOT";
            break;
        case Section::Text::Text:
            out += "TEXT";
            break;
        case Section::Text::Mime:
            out += "MIME";
            break;
        case Section::Text::All:
            break;
    }
    if (sec.text == Section::Text::HeaderFields || sec.text == Section::Text::HeaderFieldsNot) {
        out += " (";
        for (std::size_t i = 0; i < sec.fields.size(); ++i) {
            if (i) out.push_back(' ');
            write_astring(out, sec.fields[i], false);
        }
        out.push_back(')');
    }
}

}  // namespace

void write_literal(std::string& out, std::string_view data, bool literal8) {
    if (literal8) out.push_back('~');
    out.push_back('{');
    out += std::to_string(data.size());
    out += "}\r\n";
    out.append(data);
}

void write_string(std::string& out, std::string_view s, bool utf8) {
    if (quotable(s, utf8))
        write_quoted(out, s);
    else
        write_literal(out, s);
}

void write_astring(std::string& out, std::string_view s, bool utf8) {
    bool atom = !s.empty() && s.size() <= kMaxQuoted && std::all_of(s.begin(), s.end(), [](char c) {
        return astring_char(static_cast<unsigned char>(c));
    }) && !(s.size() == 3 && (s[0] | 0x20) == 'n' && (s[1] | 0x20) == 'i' && (s[2] | 0x20) == 'l');
    if (atom)
        out.append(s);
    else
        write_string(out, s, utf8);
}

void write_nstring(std::string& out, std::optional<std::string_view> s, bool utf8) {
    if (s)
        write_string(out, *s, utf8);
    else
        out += "NIL";
}

void write_mailbox(std::string& out, std::string_view name, bool utf8) {
    if (utf8) {
        write_astring(out, name, true);
        return;
    }
    auto encoded = mutf7_encode(name);
    write_astring(out, encoded ? std::string_view(*encoded) : name, false);
}

void write_flags(std::string& out, const FlagList& flags) {
    static constexpr std::pair<std::uint8_t, std::string_view> kOrder[] = {
        {kFlagAnswered, "\\Answered"}, {kFlagFlagged, "\\Flagged"}, {kFlagDeleted, "\\Deleted"},
        {kFlagSeen, "\\Seen"},         {kFlagDraft, "\\Draft"},     {kFlagRecent, "\\Recent"},
    };
    out.push_back('(');
    bool first = true;
    auto sep = [&] {
        if (!first) out.push_back(' ');
        first = false;
    };
    for (auto& [bit, name] : kOrder)
        if (flags.system & bit) {
            sep();
            out += name;
        }
    for (auto& k : flags.keywords) {
        sep();
        out += k;
    }
    if (flags.any_keyword) {
        sep();
        out += "\\*";
    }
    out.push_back(')');
}

std::string format_date_time(std::int64_t epoch, int zone_minutes) {
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static const std::int64_t kMin = epoch_from_civil(0, 1, 1) + 86400;  // room for any zone
    static const std::int64_t kMax = epoch_from_civil(9999, 12, 31, 0, 0, 0) - 86400;
    zone_minutes = std::clamp(zone_minutes, -(23 * 60 + 59), 23 * 60 + 59);
    epoch = std::clamp(epoch, kMin, kMax);
    Civil c = civil_from_epoch(epoch + std::int64_t{zone_minutes} * 60);
    int z = zone_minutes < 0 ? -zone_minutes : zone_minutes;
    char buf[64];
    std::snprintf(buf, sizeof buf, "\"%02d-%s-%04d %02d:%02d:%02d %c%02d%02d\"", c.day,
                  kMonths[c.month - 1], c.year, c.hour, c.minute, c.second,
                  zone_minutes < 0 ? '-' : '+', z / 60, z % 60);
    return buf;
}

void write_status(std::string& out, std::string_view tag, Condition cond, std::string_view code,
                  std::string_view text) {
    static constexpr std::string_view kNames[] = {"OK", "NO", "BAD", "BYE", "PREAUTH"};
    out.append(tag.empty() ? std::string_view("*") : tag);
    out.push_back(' ');
    out += kNames[static_cast<int>(cond)];
    if (!code.empty()) {
        out += " [";
        append_clean(out, code, true);
        out.push_back(']');
    }
    if (!text.empty()) {
        out.push_back(' ');
        append_clean(out, text, false);
    }
    out += "\r\n";
}

void write_continuation(std::string& out, std::string_view text) {
    out += "+ ";
    append_clean(out, text, false);
    out += "\r\n";
}

std::string fetch_response_name(const FetchAtt& att) {
    std::string out;
    switch (att.item) {
        case FetchItem::Flags:
            return "FLAGS";
        case FetchItem::Uid:
            return "UID";
        case FetchItem::InternalDate:
            return "INTERNALDATE";
        case FetchItem::Rfc822Size:
            return "RFC822.SIZE";
        case FetchItem::Envelope:
            return "ENVELOPE";
        case FetchItem::Body:
            return "BODY";
        case FetchItem::BodyStructure:
            return "BODYSTRUCTURE";
        case FetchItem::Rfc822:
            return "RFC822";
        case FetchItem::Rfc822Header:
            return "RFC822.HEADER";
        case FetchItem::Rfc822Text:
            return "RFC822.TEXT";
        case FetchItem::ModSeq:
            return "MODSEQ";
        case FetchItem::BodySection:
            out = "BODY[";
            break;
        case FetchItem::Binary:
            out = "BINARY[";
            break;
        case FetchItem::BinarySize:
            out = "BINARY.SIZE[";
            break;
    }
    append_section(out, att.section);
    out.push_back(']');
    if (att.partial) {
        out.push_back('<');
        out += std::to_string(att.partial->offset);
        out.push_back('>');
    }
    return out;
}

FetchResponse::FetchResponse(std::string& out, std::uint32_t seq) : out_(out) {
    out_ += "* ";
    out_ += std::to_string(seq);
    out_ += " FETCH (";
}

void FetchResponse::name(std::string_view n) {
    if (!first_) out_.push_back(' ');
    first_ = false;
    out_.append(n);
    out_.push_back(' ');
}

FetchResponse& FetchResponse::uid(std::uint32_t uid) {
    name("UID");
    out_ += std::to_string(uid);
    return *this;
}

FetchResponse& FetchResponse::flags(const FlagList& flags) {
    name("FLAGS");
    write_flags(out_, flags);
    return *this;
}

FetchResponse& FetchResponse::internal_date(std::int64_t epoch, int zone_minutes) {
    name("INTERNALDATE");
    out_ += format_date_time(epoch, zone_minutes);
    return *this;
}

FetchResponse& FetchResponse::rfc822_size(std::uint64_t size) {
    name("RFC822.SIZE");
    out_ += std::to_string(size);
    return *this;
}

FetchResponse& FetchResponse::modseq(std::uint64_t modseq) {
    name("MODSEQ");
    out_.push_back('(');
    out_ += std::to_string(modseq);
    out_.push_back(')');
    return *this;
}

FetchResponse& FetchResponse::binary_size(const FetchAtt& att, std::uint64_t size) {
    FetchAtt named = att;  // BINARY.SIZE[part] whatever item asked for it
    named.item = FetchItem::BinarySize;
    named.partial.reset();
    name(fetch_response_name(named));
    out_ += std::to_string(size);
    return *this;
}

FetchResponse& FetchResponse::section(const FetchAtt& att, std::string_view data) {
    name(fetch_response_name(att));
    bool lit8 = att.item == FetchItem::Binary && data.find('\0') != std::string_view::npos;
    write_literal(out_, data, lit8);
    return *this;
}

FetchResponse& FetchResponse::section_header(const FetchAtt& att, std::uint64_t size,
                                             bool literal8) {
    name(fetch_response_name(att));
    if (literal8) out_.push_back('~');
    out_.push_back('{');
    out_ += std::to_string(size);
    out_ += "}\r\n";
    return *this;
}

FetchResponse& FetchResponse::raw(std::string_view n, std::string_view value) {
    name(n);
    out_.append(value);
    return *this;
}

void FetchResponse::finish() {
    out_ += ")\r\n";
}

}  // namespace millipost::imap
