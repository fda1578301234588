// mime/fuzz_mime.cpp: fuzz target for the MIME library. Invariants for arbitrary bytes: no crash,
// every part's offsets inside the input and nested in its parent, the part count as counted,
// balanced BODY/BODYSTRUCTURE/ENVELOPE output, every section a slice of the input, search text
// valid UTF-8.
#include "mime/decode.h"
#include "mime/envelope.h"
#include "mime/imap_render.h"
#include "mime/section.h"
#include "mime/text.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace millipost::mime;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

// Parentheses balance outside quoted strings and literals, which must be complete.
bool balanced(std::string_view s) {
    int depth = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '"') {
            for (++i; i < s.size() && s[i] != '"'; ++i) {
                if (s[i] == '\\') ++i;
                if (i < s.size() && (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')) return false;
            }
            if (i >= s.size()) return false;
        } else if (c == '{') {
            std::size_t close = s.find('}', i);
            if (close == std::string_view::npos || s.substr(close + 1, 2) != "\r\n") return false;
            std::size_t n =
                std::strtoul(std::string(s.substr(i + 1, close - i - 1)).c_str(), nullptr, 10);
            if (close + 3 + n > s.size()) return false;
            i = close + 2 + n;
        } else if (c == '(') {
            ++depth;
        } else if (c == ')') {
            if (--depth < 0) return false;
        }
    }
    return depth == 0;
}

std::size_t check_part(const Part& p, std::size_t lo, std::size_t hi) {
    check(lo <= p.header_start && p.header_start <= p.header_end);
    check(p.header_end == p.body_start && p.body_start <= p.body_end && p.body_end <= hi);
    for (const auto& h : p.headers)
        check(p.header_start <= h.start && h.start < h.end && h.end <= p.header_end);
    std::size_t count = 1, prev = p.body_start;
    for (const auto& c : p.children) {
        count += check_part(c, prev, p.body_end);
        prev = c.body_end;
    }
    return count;
}

// Every part number the message has, as RFC 9051 numbers them (bounded for speed).
void paths(const Part& numbering, std::vector<std::uint32_t>& prefix,
           std::vector<std::vector<std::uint32_t>>& out) {
    std::size_t count = numbering.is_multipart() ? numbering.children.size() : 1;
    for (std::size_t i = 0; i < count && out.size() < 200; ++i) {
        prefix.push_back(static_cast<std::uint32_t>(i + 1));
        out.push_back(prefix);
        const Part& sel = numbering.is_multipart() ? numbering.children[i] : numbering;
        if (sel.is_multipart())
            paths(sel, prefix, out);
        else if (sel.is_message())
            paths(sel.children.front(), prefix, out);
        prefix.pop_back();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    Message m = parse(in);
    check(check_part(m.root, 0, in.size()) == m.part_count);

    for (bool extended : {false, true})
        check(balanced(render_body(m.root, extended)));
    check(balanced(render_envelope(make_envelope(m.root))));
    RenderOptions utf8;
    utf8.utf8 = true;
    check(balanced(render_body(m.root, true, utf8)));

    std::vector<std::vector<std::uint32_t>> all;
    std::vector<std::uint32_t> prefix;
    paths(m.root, prefix, all);
    all.push_back({});
    for (const auto& path : all) {
        check(find_part(m, path) != nullptr);
        for (auto text : {Section::Text::None, Section::Text::Header, Section::Text::Text,
                          Section::Text::Mime, Section::Text::HeaderFields}) {
            Section s;
            s.part = path;
            s.text = text;
            s.fields = {"Subject", "content-type"};
            SectionData d = fetch_section(m, s);
            if (d.exists && !d.built) check(d.offset + d.length <= in.size());
        }
        fetch_binary(m, path);
    }
    SearchText t = extract_text(m, 1 << 16);
    check(is_valid_utf8(t.header) && is_valid_utf8(t.body));

    // The section spec parser gets the same bytes.
    if (auto s = parse_section(in.substr(0, 64)))
        check(parse_section(format_section(*s)).has_value());
    return 0;
}
