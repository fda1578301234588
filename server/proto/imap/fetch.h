// proto/imap/fetch.h: FETCH arguments (RFC 9051 §6.4.5): the data items, their section specs
// and partial ranges, the macros, BINARY (RFC 3516), MODSEQ and the CHANGEDSINCE/VANISHED
// modifiers (RFC 7162).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/imap/parsed.h"
#include "proto/imap/parser.h"
#include "proto/imap/sequence_set.h"

namespace millipost::imap {

enum class FetchItem : std::uint8_t {
    Flags,
    Uid,
    InternalDate,
    Rfc822Size,
    Envelope,
    Body,  // BODY without a section: the non-extensible BODYSTRUCTURE
    BodyStructure,
    Rfc822,        // = BODY[] (sets \Seen)
    Rfc822Header,  // = BODY.PEEK[HEADER]
    Rfc822Text,    // = BODY[TEXT] (sets \Seen)
    BodySection,   // BODY[section]<partial> and BODY.PEEK[...]
    Binary,        // BINARY[part]<partial> and BINARY.PEEK[...]
    BinarySize,    // BINARY.SIZE[part]
    ModSeq,
};

// section-spec: part numbers, then what of that part.
struct Section {
    enum class Text : std::uint8_t {
        All,              // no text spec: the whole part (or message)
        Header,           // HEADER
        HeaderFields,     // HEADER.FIELDS (fields)
        HeaderFieldsNot,  // HEADER.FIELDS.NOT (fields)
        Text,             // TEXT
        Mime,             // MIME (only after part numbers)
    };
    std::vector<std::uint32_t> part;  // "1.2.3" -> {1, 2, 3}; empty: the message itself
    Text text = Text::All;
    std::vector<std::string> fields;  // header field names as sent
    bool operator==(const Section&) const = default;
};

// "<offset.length>" of a FETCH request (the response names only "<offset>").
struct Partial {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;  // > 0
    bool operator==(const Partial&) const = default;
};

struct FetchAtt {
    FetchItem item = FetchItem::Flags;
    bool peek = false;  // BODY.PEEK / BINARY.PEEK: do not set \Seen
    Section section;    // BodySection, Binary, BinarySize
    std::optional<Partial> partial;
    bool operator==(const FetchAtt&) const = default;
};

struct FetchArgs {
    SequenceSet set;
    std::vector<FetchAtt> atts;  // macros expanded; no duplicates of the simple items
    std::optional<std::uint64_t> changed_since;  // CHANGEDSINCE (RFC 7162 §3.1.4.1)
    bool vanished = false;                       // VANISHED (RFC 7162 §3.2.6)
};

// FETCH sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")")
// [SP "(" fetch-modifier *(SP fetch-modifier) ")"].
// Implied items are added: UID for UID FETCH (RFC 9051 §6.4.9) and MODSEQ with CHANGEDSINCE
// (RFC 7162 §3.1.4.1). VANISHED is only valid in UID FETCH with CHANGEDSINCE.
Parsed<FetchArgs> parse_fetch(const Command& cmd);

// One fetch-att (an atom, possibly with a section).
Parsed<FetchAtt> parse_fetch_att(const Arg& a);

// The contents of a section's brackets (Arg::items of an atom with a section). `binary`: only
// part numbers are allowed (section-binary).
Parsed<Section> parse_section(const std::vector<Arg>& items, bool binary);

}  // namespace millipost::imap
