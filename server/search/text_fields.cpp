// search/text_fields.cpp: search fields of a raw message via mime::parse and mime::extract_text.
#include "search/text_fields.h"

#include "util/ascii.h"

#include "mime/decode.h"
#include "mime/message.h"
#include "mime/text.h"

#include <utility>

namespace millipost::search {
namespace {

using millipost::ascii::iequals;

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
