// search/text_fields.cpp: search fields of a raw message via mime::parse and mime::extract_text.
#include "search/text_fields.h"

#include "mime/decode.h"
#include "mime/message.h"
#include "mime/text.h"

#include <utility>

namespace millipost::search {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

void append_line(std::string& out, std::string_view value) {
    std::size_t b = value.find_first_not_of(" \t"), e = value.find_last_not_of(" \t");
    if (!out.empty()) out += '\n';
    if (b != std::string_view::npos) out.append(value.substr(b, e - b + 1));
}

}  // namespace

Fields text_fields(std::string_view raw) {
    const mime::Message message = mime::parse(raw);
    mime::SearchText text = mime::extract_text(message);
    Fields f;
    for (const mime::Header& h : message.root.headers) {
        std::string* out = iequals(h.name, "subject") ? &f.subject
                           : iequals(h.name, "from")  ? &f.from
                           : iequals(h.name, "to")    ? &f.to
                           : iequals(h.name, "cc")    ? &f.cc
                           : iequals(h.name, "bcc")   ? &f.bcc
                                                      : nullptr;
        if (out) append_line(*out, mime::decode_header_value(h.value));
    }
    f.header = std::move(text.header);
    f.body = std::move(text.body);
    return f;
}

}  // namespace millipost::search
