// mime/text.cpp: search text extraction and the simple HTML-to-text reduction (see text.h).
#include "mime/text.h"

#include "util/ascii.h"

#include "mime/decode.h"

#include <array>
#include <cstdint>

namespace millipost::mime {
namespace {

using millipost::ascii::lower;

bool istarts_with(std::string_view s, std::size_t i, std::string_view prefix) {
    if (s.size() - i < prefix.size()) return false;
    for (std::size_t k = 0; k < prefix.size(); ++k)
        if (lower(s[i + k]) != prefix[k]) return false;
    return true;
}

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_alnum(char c) {
    return is_alpha(c) || (c >= '0' && c <= '9');
}

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

struct Entity {
    std::string_view name;
    std::uint32_t cp;
};
constexpr std::array<Entity, 24> kEntities{{
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},        {"quot", '"'},     {"apos", '\''},
    {"nbsp", ' '},     {"copy", 0xA9},    {"reg", 0xAE},      {"trade", 0x2122}, {"euro", 0x20AC},
    {"pound", 0xA3},   {"yen", 0xA5},     {"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013},
    {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},  {"rdquo", 0x201D}, {"laquo", 0xAB},
    {"raquo", 0xBB},   {"middot", 0xB7},  {"bull", 0x2022},   {"shy", 0xAD},
}};

// Decodes the character reference at s[i] == '&'; returns its length, or 0 if it is none.
std::size_t entity(std::string_view s, std::size_t i, std::string& out) {
    std::size_t semi = s.substr(i, 13).find(';');  // bounded: "&&&&..." stays linear
    if (semi == std::string_view::npos || semi == 1) return 0;
    semi += i;
    std::string_view body = s.substr(i + 1, semi - i - 1);
    if (body[0] == '#') {
        std::uint32_t cp = 0;
        bool hex = body.size() > 1 && (body[1] == 'x' || body[1] == 'X');
        std::string_view digits = body.substr(hex ? 2 : 1);
        if (digits.empty()) return 0;
        for (char c : digits) {
            int v;
            if (c >= '0' && c <= '9')
                v = c - '0';
            else if (hex && c >= 'a' && c <= 'f')
                v = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F')
                v = c - 'A' + 10;
            else
                return 0;
            cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(v);
            if (cp > 0x10FFFF) cp = 0x110000;
        }
        append_utf8(out, cp);
        return semi - i + 1;
    }
    for (const auto& e : kEntities) {
        if (body == e.name) {
            append_utf8(out, e.cp);
            return semi - i + 1;
        }
    }
    return 0;
}

bool is_block_tag(std::string_view name) {
    static constexpr std::string_view kBlocks[] = {
        "br", "p",  "div",   "tr",         "li",  "h1", "h2",    "h3", "h4", "h5",     "h6",
        "ul", "ol", "table", "blockquote", "pre", "hr", "title", "dd", "dt", "section"};
    for (auto b : kBlocks)
        if (name == b) return true;
    return false;
}

// Collapses whitespace: runs of blanks to one space, runs containing a line break to one "\n".
std::string collapse(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    bool blank = false, newline = false;
    for (char c : s) {
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f') {
            blank = true;
            newline = newline || c == '\n';
            continue;
        }
        if (blank && !out.empty()) out += newline ? '\n' : ' ';
        blank = newline = false;
        out += c;
    }
    return out;
}

void append_decoded_headers(std::string& out, const Part& p) {
    for (const auto& h : p.headers) {
        std::string v = decode_header_value(h.value);
        std::size_t b = v.find_first_not_of(" \t"), e = v.find_last_not_of(" \t");
        out.append(h.name);
        out += ": ";
        if (b != std::string::npos) out.append(v, b, e - b + 1);
        out += '\n';
    }
}

void collect_body(std::string& out, const Message& m, const Part& p, std::size_t max) {
    if (out.size() >= max) return;  // enough for the index: the rest is not decoded
    if (p.is_multipart()) {
        for (const auto& c : p.children)
            collect_body(out, m, c, max);
        return;
    }
    if (p.is_message()) {
        append_decoded_headers(out, p.children.front());
        collect_body(out, m, p.children.front(), max);
        return;
    }
    if (!p.is_text()) return;
    Decoded d = decode_body(p, m.raw);
    std::string_view content =
        d.unknown_encoding ? m.raw.substr(p.body_start, p.size()) : std::string_view(d.data);
    std::string text = charset_to_utf8(content, p.charset()).value_or(sanitize_utf8(content));
    if (p.type_is("text", "html")) text = html_to_text(text);
    out += text;
    if (!text.empty() && text.back() != '\n') out += '\n';
}

}  // namespace

std::string html_to_text(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    bool no_more_gt = false;  // once no '>' follows, none follows later either: stay linear
    while (i < s.size()) {
        char c = s[i];
        if (c == '&') {
            if (std::size_t n = entity(s, i, out)) {
                i += n;
                continue;
            }
            out += c;
            ++i;
            continue;
        }
        if (c != '<' || i + 1 >= s.size() ||
            !(is_alpha(s[i + 1]) || s[i + 1] == '/' || s[i + 1] == '!' || s[i + 1] == '?')) {
            out += c;  // a '<' that opens no tag is text
            ++i;
            continue;
        }
        if (istarts_with(s, i, "<!--")) {
            std::size_t end = s.find("-->", i + 4);
            i = end == std::string_view::npos ? s.size() : end + 3;
            continue;
        }
        std::size_t j = i + 1;
        bool closing = s[j] == '/';
        if (closing) ++j;
        std::string name;
        while (j < s.size() && is_alnum(s[j]))
            name += lower(s[j++]);
        std::size_t end = no_more_gt ? std::string_view::npos : s.find('>', j);
        if (end == std::string_view::npos) {  // no tag after all: "x<y"
            no_more_gt = true;
            out += c;
            ++i;
            continue;
        }
        ++end;
        if (!closing && (name == "script" || name == "style")) {
            std::string close = "</" + name;
            std::size_t k = end;
            while (k < s.size() && !istarts_with(s, k, close))
                ++k;
            std::size_t gt = s.find('>', k);
            end = gt == std::string_view::npos ? s.size() : gt + 1;
        }
        if (is_block_tag(name))
            out += '\n';
        else if (name == "td" || name == "th")
            out += ' ';
        i = end;
    }
    return collapse(out);
}

SearchText extract_text(const Message& message, std::size_t max_body) {
    SearchText t;
    append_decoded_headers(t.header, message.root);
    collect_body(t.body, message, message.root, max_body);
    if (t.body.size() > max_body) {
        std::size_t cut = max_body;
        while (cut > 0 && (static_cast<unsigned char>(t.body[cut]) & 0xC0) == 0x80)
            --cut;
        t.body.resize(cut);
    }
    return t;
}

}  // namespace millipost::mime
