// proto/imap/fetch.cpp: FETCH argument interpreter (see fetch.h).
#include "proto/imap/fetch.h"

#include "util/ascii.h"

#include <algorithm>

#include "proto/imap/args.h"

namespace millipost::imap {
namespace {

using millipost::ascii::to_upper;

// header-fld-name: printable ASCII without ':' and SP (RFC 5322 ftext).
bool field_name(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f && c != ':'; });
}

Parsed<Partial> parse_partial(std::string_view s) {
    auto fail = [&] { return bad("Invalid partial '" + std::string(s.substr(0, 64)) + "'"); };
    if (s.size() < 5 || s.front() != '<' || s.back() != '>') return fail();
    s = s.substr(1, s.size() - 2);
    auto dot = s.find('.');
    if (dot == std::string_view::npos) return fail();
    auto off = parse_number64(s.substr(0, dot));
    auto len = parse_number64(s.substr(dot + 1));
    if (!off || !len || *len == 0) return fail();
    return Partial{*off, *len};
}

void add_simple(std::vector<FetchAtt>& atts, FetchItem item) {
    for (auto& a : atts)
        if (a.item == item) return;
    atts.push_back(FetchAtt{item, false, {}, std::nullopt});
}

}  // namespace

Parsed<Section> parse_section(const std::vector<Arg>& items, bool binary) {
    Section sec;
    if (items.empty()) return sec;
    if (!items[0].is_atom() || items[0].section) return bad("Invalid section");
    std::string spec = to_upper(items[0].text);
    std::string_view s = spec;
    // section-part = nz-number *("." nz-number)
    while (!s.empty() && s[0] >= '0' && s[0] <= '9') {
        std::size_t n = 0;
        while (n < s.size() && s[n] >= '0' && s[n] <= '9')
            ++n;
        auto part = parse_nz_number(s.substr(0, n));
        if (!part) return bad("Invalid section part number in '" + items[0].text + "'");
        sec.part.push_back(*part);
        s.remove_prefix(n);
        if (s.empty()) break;
        if (s[0] != '.' || s.size() == 1) return bad("Invalid section '" + items[0].text + "'");
        s.remove_prefix(1);
    }
    if (binary) {
        if (!s.empty() || items.size() > 1) return bad("A BINARY section holds part numbers only");
        return sec;
    }
    bool with_fields = false;
    if (s.empty()) {
        sec.text = Section::Text::All;
    } else if (s == "HEADER") {
        sec.text = Section::Text::Header;
    } else if (s == "HEADER.FIELDS") {
        sec.text = Section::Text::HeaderFields;
        with_fields = true;
    } else if (s == "HEADER.FIELDS.NOT") {
        sec.text = Section::Text::HeaderFieldsNot;
        with_fields = true;
    } else if (s == "TEXT") {
        sec.text = Section::Text::Text;
    } else if (s == "MIME" && !sec.part.empty()) {
        sec.text = Section::Text::Mime;
    } else {
        return bad("Invalid section '" + items[0].text + "'");
    }
    if (!with_fields) {
        if (items.size() > 1) return bad("Unexpected arguments in section");
        return sec;
    }
    if (items.size() != 2 || !items[1].is_list() || items[1].items.empty())
        return bad("HEADER.FIELDS needs a list of header field names");
    for (auto& f : items[1].items) {
        auto name = astring(f);
        if (!name || !field_name(*name)) return bad("Invalid header field name");
        sec.fields.emplace_back(*name);
    }
    return sec;
}

Parsed<FetchAtt> parse_fetch_att(const Arg& a) {
    if (!a.is_atom()) return bad("Invalid FETCH attribute");
    std::string name = to_upper(a.text);
    FetchAtt att;
    if (!a.section) {
        static constexpr std::pair<std::string_view, FetchItem> kSimple[] = {
            {"FLAGS", FetchItem::Flags},
            {"UID", FetchItem::Uid},
            {"INTERNALDATE", FetchItem::InternalDate},
            {"RFC822.SIZE", FetchItem::Rfc822Size},
            {"ENVELOPE", FetchItem::Envelope},
            {"BODY", FetchItem::Body},
            {"BODYSTRUCTURE", FetchItem::BodyStructure},
            {"RFC822", FetchItem::Rfc822},
            {"RFC822.HEADER", FetchItem::Rfc822Header},
            {"RFC822.TEXT", FetchItem::Rfc822Text},
            {"MODSEQ", FetchItem::ModSeq},
        };
        for (auto& [n, item] : kSimple)
            if (name == n) {
                att.item = item;
                return att;
            }
        if (name == "BODY.PEEK" || name.starts_with("BINARY"))
            return bad(a.text + " needs a section in brackets");
        return bad("Unknown FETCH attribute '" + a.text.substr(0, 64) + "'");
    }
    bool binary = true;
    if (name == "BODY") {
        att.item = FetchItem::BodySection, binary = false;
    } else if (name == "BODY.PEEK") {
        att.item = FetchItem::BodySection, att.peek = true, binary = false;
    } else if (name == "BINARY") {
        att.item = FetchItem::Binary;
    } else if (name == "BINARY.PEEK") {
        att.item = FetchItem::Binary, att.peek = true;
    } else if (name == "BINARY.SIZE") {
        att.item = FetchItem::BinarySize;
    } else {
        return bad("Unknown FETCH attribute '" + a.text.substr(0, 64) + "[...]'");
    }
    auto sec = parse_section(a.items, binary);
    if (!sec) return sec.error();
    att.section = std::move(*sec);
    if (!a.suffix.empty()) {
        if (att.item == FetchItem::BinarySize) return bad("BINARY.SIZE takes no partial");
        auto p = parse_partial(a.suffix);
        if (!p) return p.error();
        att.partial = *p;
    }
    return att;
}

Parsed<FetchArgs> parse_fetch(const Command& cmd) {
    const auto& args = cmd.args;
    if (args.size() < 2 || args.size() > 3) return bad("Syntax: FETCH sequence-set items");
    FetchArgs out;
    auto set = parse_sequence_set(args[0]);
    if (!set) return set.error();
    out.set = std::move(*set);

    const Arg& what = args[1];
    std::string macro = upper_atom(what);
    if (macro == "ALL" || macro == "FAST" || macro == "FULL") {
        for (auto item : {FetchItem::Flags, FetchItem::InternalDate, FetchItem::Rfc822Size})
            add_simple(out.atts, item);
        if (macro != "FAST") add_simple(out.atts, FetchItem::Envelope);
        if (macro == "FULL") add_simple(out.atts, FetchItem::Body);
    } else if (what.is_list()) {
        if (what.items.empty()) return bad("Empty FETCH attribute list");
        for (auto& a : what.items) {
            auto att = parse_fetch_att(a);
            if (!att) return att.error();
            if (att->item == FetchItem::BodySection || att->item == FetchItem::Binary ||
                att->item == FetchItem::BinarySize)
                out.atts.push_back(std::move(*att));
            else
                add_simple(out.atts, att->item);
        }
    } else {
        auto att = parse_fetch_att(what);
        if (!att) return att.error();
        out.atts.push_back(std::move(*att));
    }

    if (args.size() == 3) {
        const Arg& mods = args[2];
        if (!mods.is_list() || mods.items.empty()) return bad("Invalid FETCH modifiers");
        for (std::size_t i = 0; i < mods.items.size(); ++i) {
            std::string m = upper_atom(mods.items[i]);
            if (m == "CHANGEDSINCE") {
                if (out.changed_since) return bad("CHANGEDSINCE given twice");
                if (i + 1 >= mods.items.size() || !mods.items[i + 1].is_atom())
                    return bad("CHANGEDSINCE needs a mod-sequence");
                // mod-sequence-value: positive (RFC 7162 §7 chgsince-fetch-mod).
                auto v = parse_mod_sequence(mods.items[++i].text, false);
                if (!v) return v.error();
                out.changed_since = *v;
            } else if (m == "VANISHED") {
                out.vanished = true;
            } else {
                return bad("Unknown FETCH modifier '" + mods.items[i].text.substr(0, 64) + "'");
            }
        }
        if (out.vanished && (!cmd.uid || !out.changed_since))
            return bad("VANISHED needs UID FETCH and CHANGEDSINCE");
    }
    if (cmd.uid) add_simple(out.atts, FetchItem::Uid);
    if (out.changed_since) add_simple(out.atts, FetchItem::ModSeq);
    return out;
}

}  // namespace millipost::imap
