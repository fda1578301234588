// mime/section.cpp: BODY[section] and BINARY[part] addressing (see section.h).
#include "mime/section.h"

#include "util/ascii.h"

#include "mime/decode.h"

namespace millipost::mime {
namespace {

using millipost::ascii::upper;

using millipost::ascii::iequals;

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// ATOM-CHAR of RFC 9051 (']' excluded too: the spec sits inside brackets).
bool is_atom_char(char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7F &&
           std::string_view("(){ %*\"\\]").find(c) == std::string_view::npos;
}

// `(name name ...)` of HEADER.FIELDS: atoms or quoted strings.
bool parse_field_list(std::string_view s, std::vector<std::string>& out) {
    std::size_t i = 0;
    if (i >= s.size() || s[i] != '(') return false;
    ++i;
    for (;;) {
        while (i < s.size() && s[i] == ' ')
            ++i;
        if (i >= s.size()) return false;
        if (s[i] == ')') {
            ++i;
            break;
        }
        std::string name;
        if (s[i] == '"') {
            ++i;
            while (i < s.size() && s[i] != '"') {
                if (s[i] == '\\' && i + 1 < s.size()) ++i;
                name += s[i++];
            }
            if (i >= s.size()) return false;
            ++i;
        } else {
            while (i < s.size() && is_atom_char(s[i]))
                name += s[i++];
            if (name.empty()) return false;
        }
        out.push_back(std::move(name));
    }
    return i == s.size() && !out.empty();
}

std::string build_fields(std::string_view raw, const Part& header_owner,
                         const std::vector<std::string>& fields, bool exclude) {
    std::string out;
    for (const auto& h : header_owner.headers) {
        bool match = false;
        for (const auto& f : fields)
            if (iequals(h.name, f)) {
                match = true;
                break;
            }
        if (match == exclude) continue;
        std::string_view text = raw.substr(h.start, h.end - h.start);
        out.append(text);
        if (text.empty() || text.back() != '\n') out += "\r\n";
    }
    out += "\r\n";
    return out;
}

SectionData slice(std::size_t start, std::size_t end) {
    SectionData d;
    d.exists = true;
    d.offset = start;
    d.length = end - start;
    return d;
}

}  // namespace

std::optional<Section> parse_section(std::string_view spec) {
    Section s;
    std::size_t i = 0;
    bool dot = false;  // a '.' after the last number: a keyword must follow
    while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') {
        std::uint64_t n = 0;
        std::size_t start = i;
        while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') {
            n = n * 10 + static_cast<std::uint64_t>(spec[i] - '0');
            if (n > 0xFFFFFFFFu) return std::nullopt;
            ++i;
        }
        if (n == 0 || spec[start] == '0') return std::nullopt;  // nz-number
        s.part.push_back(static_cast<std::uint32_t>(n));
        dot = false;
        if (i < spec.size()) {
            if (spec[i] != '.') return std::nullopt;
            ++i;
            dot = true;
        }
    }
    std::string_view rest = spec.substr(i);
    if (rest.empty()) {
        if (dot) return std::nullopt;
        return s;
    }
    if (!s.part.empty() && !dot) return std::nullopt;
    if (iequals(rest, "HEADER")) {
        s.text = Section::Text::Header;
    } else if (iequals(rest, "TEXT")) {
        s.text = Section::Text::Text;
    } else if (iequals(rest, "MIME")) {
        if (s.part.empty()) return std::nullopt;
        s.text = Section::Text::Mime;
    } else if (istarts_with(rest, "HEADER.FIELDS.NOT ")) {
        s.text = Section::Text::HeaderFieldsNot;
        if (!parse_field_list(rest.substr(18), s.fields)) return std::nullopt;
    } else if (istarts_with(rest, "HEADER.FIELDS ")) {
        s.text = Section::Text::HeaderFields;
        if (!parse_field_list(rest.substr(14), s.fields)) return std::nullopt;
    } else {
        return std::nullopt;
    }
    return s;
}

std::string format_section(const Section& section) {
    std::string out;
    for (std::size_t i = 0; i < section.part.size(); ++i) {
        if (i) out += '.';
        out += std::to_string(section.part[i]);
    }
    const char* kw = nullptr;
    switch (section.text) {
        case Section::Text::None:
            return out;
        case Section::Text::Header:
            kw = "HEADER";
            break;
        case Section::Text::HeaderFields:
            kw = "HEADER.FIELDS";
            break;
        case Section::Text::HeaderFieldsNot:
            kw = "HEADER.FIELDS.NOT";
            break;
        case Section::Text::Text:
            kw = "TEXT";
            break;
        case Section::Text::Mime:
            kw = "MIME";
            break;
    }
    if (!out.empty()) out += '.';
    out += kw;
    if (section.text == Section::Text::HeaderFields ||
        section.text == Section::Text::HeaderFieldsNot) {
        out += " (";
        for (std::size_t i = 0; i < section.fields.size(); ++i) {
            if (i) out += ' ';
            const std::string& f = section.fields[i];
            bool atom = !f.empty();
            for (char c : f)
                atom = atom && is_atom_char(c);
            if (atom) {
                for (char c : f)
                    out += upper(c);
            } else {
                out += '"';
                for (char c : f) {
                    if (c == '"' || c == '\\') out += '\\';
                    out += upper(c);
                }
                out += '"';
            }
        }
        out += ')';
    }
    return out;
}

const Part* find_part(const Message& message, std::span<const std::uint32_t> path) {
    const Part* numbering = &message.root;  // whose part numbers the next number picks from
    const Part* selected = &message.root;
    for (std::uint32_t n : path) {
        if (!numbering || n == 0) return nullptr;
        if (numbering->is_multipart()) {
            if (n > numbering->children.size()) return nullptr;
            selected = &numbering->children[n - 1];
        } else {
            if (n != 1) return nullptr;
            selected = numbering;  // a non-multipart message: part 1 is its body
        }
        if (selected->is_multipart())
            numbering = selected;
        else if (selected->is_message())
            numbering = &selected->children.front();
        else
            numbering = nullptr;
    }
    return selected;
}

SectionData fetch_section(const Message& message, const Section& section) {
    using Text = Section::Text;
    const Part* part = find_part(message, section.part);
    if (!part) return {};
    if (section.part.empty() && section.text == Text::None) return slice(0, message.raw.size());
    if (section.text == Text::None) return slice(part->body_start, part->body_end);
    if (section.text == Text::Mime) {
        if (section.part.empty()) return {};
        return slice(part->header_start, part->header_end);
    }
    // HEADER, HEADER.FIELDS[.NOT] and TEXT address a message: the root, or the message that a
    // message/rfc822 part encapsulates.
    const Part* msg = part;
    if (!section.part.empty()) {
        if (!part->is_message()) return {};
        msg = &part->children.front();
    }
    switch (section.text) {
        case Text::Header:
            return slice(msg->header_start, msg->header_end);
        case Text::Text:
            return slice(msg->body_start, msg->body_end);
        case Text::HeaderFields:
        case Text::HeaderFieldsNot: {
            SectionData d;
            d.exists = true;
            d.built = build_fields(message.raw, *msg, section.fields,
                                   section.text == Text::HeaderFieldsNot);
            d.length = d.built->size();
            return d;
        }
        default:
            return {};
    }
}

BinaryData fetch_binary(const Message& message, std::span<const std::uint32_t> path) {
    BinaryData b;
    if (path.empty()) {
        b.data.assign(message.raw);
        return b;
    }
    const Part* part = find_part(message, path);
    if (!part) {
        b.status = BinaryData::Status::NoSuchPart;
        return b;
    }
    Decoded d = decode_body(*part, message.raw);
    if (d.unknown_encoding)
        b.status = BinaryData::Status::UnknownEncoding;
    else
        b.data = std::move(d.data);
    return b;
}

}  // namespace millipost::mime
