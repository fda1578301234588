// search/text_fields.cpp: search fields of a raw message via mime::parse and mime::extract_text.
#include "search/text_fields.h"

#include "util/ascii.h"

#include "mime/decode.h"
#include "mime/envelope.h"
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

// The addresses of an address field in a normal form, "Name <local@domain>" or "local@domain",
// each on a line of its own unless the decoded value already holds it as written: SEARCH FROM
// "user@domain.org" then finds "<user (comment)@ (comment) domain.org>" too, as in Dovecot.
void append_addresses(std::string& out, std::string_view raw) {
    for (const mime::Address& a : mime::parse_address_list(raw)) {
        if (!a.host || !a.mailbox) continue;  // group markers
        std::string spec = *a.mailbox;
        if (*a.host != mime::kMissingDomain) spec += "@" + *a.host;
        std::string line = spec;
        if (a.name && !a.name->empty())
            line = mime::decode_header_value(*a.name) + " <" + spec + ">";
        if (out.find(line) == std::string::npos) append_line(out, line);
    }
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
        if (!out) continue;
        append_line(*out, mime::decode_header_value(h.value));
        if (out != &f.subject) append_addresses(*out, h.value);
    }
    f.header = std::move(text.header);
    f.body = std::move(text.body);
    return f;
}

}  // namespace millipost::search
