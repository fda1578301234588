// mime/imap_render.cpp: IMAP ENVELOPE/BODY/BODYSTRUCTURE writers (see imap_render.h).
#include "mime/imap_render.h"

#include "util/ascii.h"

#include "mime/decode.h"

namespace millipost::mime {
namespace {

constexpr std::string_view kEmptyBody =
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)";

using millipost::ascii::iequals;

void append_params(std::string& out, const std::vector<Param>& params, bool default_charset,
                   const RenderOptions& o) {
    bool has_charset = false;
    for (const auto& p : params)
        has_charset = has_charset || p.name == "charset";
    bool add_charset = default_charset && !has_charset;
    if (params.empty() && !add_charset) {
        out += "NIL";
        return;
    }
    out += '(';
    bool first = true;
    for (const auto& p : params) {
        if (!first) out += ' ';
        first = false;
        if (p.extended) {
            append_string(out, p.name + "*", o);
            out += ' ';
            append_string(out, p.wire, o);
        } else {
            append_string(out, p.name, o);
            out += ' ';
            append_string(out, p.value, o);
        }
    }
    if (add_charset) out += first ? "\"charset\" \"us-ascii\"" : " \"charset\" \"us-ascii\"";
    out += ')';
}

void append_extension(std::string& out, const Part& p, const RenderOptions& o) {
    out += ' ';
    if (!p.disposition) {
        out += "NIL";
    } else {
        out += '(';
        append_string(out, *p.disposition, o);
        out += ' ';
        append_params(out, p.disposition_params, false, o);
        out += ')';
    }
    out += ' ';
    if (p.languages.empty()) {
        out += "NIL";
    } else {
        out += '(';
        for (std::size_t i = 0; i < p.languages.size(); ++i) {
            if (i) out += ' ';
            append_string(out, p.languages[i], o);
        }
        out += ')';
    }
    out += ' ';
    append_nstring(out, p.location, o);
}

void append_addresses(std::string& out, const std::vector<Address>& list, const RenderOptions& o) {
    if (list.empty()) {
        out += "NIL";
        return;
    }
    out += '(';
    for (const auto& a : list) {
        out += '(';
        append_nstring(out, a.name, o);
        out += ' ';
        append_nstring(out, a.adl, o);
        out += ' ';
        append_nstring(out, a.mailbox, o);
        out += ' ';
        append_nstring(out, a.host, o);
        out += ')';
    }
    out += ')';
}

void append_envelope(std::string& out, const Envelope& e, const RenderOptions& o) {
    out += '(';
    append_nstring(out, e.date, o);
    out += ' ';
    append_nstring(out, e.subject, o);
    for (const auto* list : {&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc}) {
        out += ' ';
        append_addresses(out, *list, o);
    }
    out += ' ';
    append_nstring(out, e.in_reply_to, o);
    out += ' ';
    append_nstring(out, e.message_id, o);
    out += ')';
}

void append_body(std::string& out, const Part& p, bool extended, const RenderOptions& o) {
    out += '(';
    if (p.is_multipart()) {
        if (p.children.empty()) out += kEmptyBody;
        for (const auto& child : p.children)
            append_body(out, child, extended, o);
        out += ' ';
        append_string(out, p.subtype, o);
        if (extended) {
            out += ' ';
            append_params(out, p.params, false, o);
            append_extension(out, p, o);
        }
        out += ')';
        return;
    }
    bool message = p.is_message();
    bool unparsed_message = !message && iequals(p.type, "message") &&
                            (iequals(p.subtype, "rfc822") || iequals(p.subtype, "global"));
    bool text = p.is_text();
    if (unparsed_message) {
        out += "\"application\" \"octet-stream\"";
    } else {
        append_string(out, p.type, o);
        out += ' ';
        append_string(out, p.subtype, o);
    }
    out += ' ';
    append_params(out, p.params, text, o);
    out += ' ';
    append_nstring(out, p.id, o);
    out += ' ';
    append_nstring(out, p.description, o);
    out += ' ';
    append_string(out, p.encoding.empty() ? std::string_view("7bit") : p.encoding, o);
    out += ' ';
    out += std::to_string(p.size());
    if (message) {
        out += ' ';
        append_envelope(out, make_envelope(p.children.front()), o);
        out += ' ';
        append_body(out, p.children.front(), extended, o);
    }
    if (message || text) {
        out += ' ';
        out += std::to_string(p.lines);
    }
    if (extended) {
        out += ' ';
        append_nstring(out, p.md5, o);
        append_extension(out, p, o);
    }
    out += ')';
}

}  // namespace

void append_string(std::string& out, std::string_view s, const RenderOptions& o) {
    bool literal = s.size() > o.max_quoted;
    bool eight_bit = false;
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (c == '\0' || c == '\r' || c == '\n') literal = true;
        if (u >= 0x80) eight_bit = true;
    }
    if (eight_bit && !(o.utf8 && is_valid_utf8(s))) literal = true;
    if (literal) {
        out += '{';
        out += std::to_string(s.size());
        out += "}\r\n";
        for (char c : s)
            out += c == '\0' ? '\x80' : c;
        return;
    }
    out += '"';
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
}

void append_nstring(std::string& out, const std::optional<std::string>& s, const RenderOptions& o) {
    if (s)
        append_string(out, *s, o);
    else
        out += "NIL";
}

std::string render_envelope(const Envelope& envelope, const RenderOptions& options) {
    std::string out;
    append_envelope(out, envelope, options);
    return out;
}

std::string render_body(const Part& part, bool extended, const RenderOptions& options) {
    std::string out;
    append_body(out, part, extended, options);
    return out;
}

}  // namespace millipost::mime
