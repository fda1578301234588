// mime/message.cpp: the one-pass MIME structure parser and Content-* field syntax (see message.h).
#include "mime/message.h"

#include "util/ascii.h"

#include "mime/decode.h"

#include <algorithm>
#include <deque>
#include <unordered_map>

namespace millipost::mime {
namespace {

bool is_wsp(char c) {
    return c == ' ' || c == '\t';
}
using millipost::ascii::lower;

using millipost::ascii::iequals;

std::string lowered(std::string_view s) {
    std::string r(s);
    for (auto& c : r)
        c = lower(c);
    return r;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (is_wsp(s.front()) || s.front() == '\r' || s.front() == '\n'))
        s.remove_prefix(1);
    while (!s.empty() && (is_wsp(s.back()) || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

// RFC 2045 §5.1 token: US-ASCII printable except tspecials.
bool is_token_char(char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 32 && u < 127 &&
           std::string_view("()<>@,;:\\\"/[]?=").find(c) == std::string_view::npos;
}

// RFC 2231 attribute-char: what may stand unescaped in an extended value.
bool is_attribute_char(char c) {
    return is_token_char(c) && c != '*' && c != '\'' && c != '%';
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
            hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += s[i];  // an invalid escape is kept as written
        }
    }
    return out;
}

// A lexer over one unfolded structured field value (RFC 5322 §3.2.2 CFWS, RFC 2045 tokens).
struct Lexer {
    std::string_view s;
    std::size_t i = 0;

    bool done() const { return i >= s.size(); }
    char peek() const { return s[i]; }
    void skip_wsp() {
        while (i < s.size() && (is_wsp(s[i]) || s[i] == '\r' || s[i] == '\n'))
            ++i;
    }
    void skip_comment() {  // at '(': nested comments, quoted-pairs; unterminated runs to the end
        int depth = 0;
        while (i < s.size()) {
            char c = s[i];
            if (c == '\\') {
                i += 2;
                continue;
            }
            if (c == '(') {
                ++depth;
            } else if (c == ')' && --depth == 0) {
                ++i;
                return;
            }
            ++i;
        }
        i = s.size();
    }
    void skip_cfws() {
        for (;;) {
            skip_wsp();
            if (i < s.size() && s[i] == '(')
                skip_comment();
            else
                return;
        }
    }
    std::string_view token() {
        std::size_t start = i;
        while (i < s.size() && is_token_char(s[i]))
            ++i;
        return s.substr(start, i - start);
    }
    std::string quoted() {  // at '"'
        std::string out;
        ++i;
        while (i < s.size() && s[i] != '"') {
            if (s[i] == '\\' && i + 1 < s.size()) ++i;
            out += s[i++];
        }
        if (i < s.size()) ++i;
        return out;
    }
    void skip_to_semicolon() {
        while (i < s.size() && s[i] != ';') {
            if (s[i] == '"')
                quoted();
            else
                ++i;
        }
    }
};

// One `name=value` as written, before RFC 2231 assembly.
struct RawParam {
    std::string base;  // lower-cased name without the RFC 2231 suffix
    bool rfc2231 = false;
    bool ext = false;
    unsigned index = 0;
    std::string value;
};

RawParam classify(std::string_view name, std::string value) {
    RawParam r;
    r.value = std::move(value);
    std::string n = lowered(name);
    std::size_t star = n.find('*');
    if (star == std::string::npos || star == 0) {
        r.base = std::move(n);
        return r;
    }
    std::string_view rest = std::string_view(n).substr(star + 1);
    if (rest.empty()) {  // name*=charset'lang'value
        r.base = n.substr(0, star);
        r.rfc2231 = r.ext = true;
        return r;
    }
    bool ext = rest.back() == '*';
    if (ext) rest.remove_suffix(1);
    if (rest.empty() || rest.size() > 6 ||
        !std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        r.base = std::move(n);  // not RFC 2231 after all: keep the name as written
        return r;
    }
    r.base = n.substr(0, star);
    r.rfc2231 = true;
    r.ext = ext;
    r.index = static_cast<unsigned>(std::stoul(std::string(rest)));
    return r;
}

// Joins the RFC 2231 segments of one parameter (RFC 2231 §3, §4, §4.1).
Param assemble(const std::string& base, std::vector<const RawParam*> segs) {
    std::stable_sort(segs.begin(), segs.end(),
                     [](const RawParam* a, const RawParam* b) { return a->index < b->index; });
    Param p;
    p.name = base;
    std::string bytes, wire;
    unsigned last = 0;
    bool first = true;
    for (const RawParam* seg : segs) {
        if (!first && seg->index == last) continue;  // a repeated segment: the first one counts
        std::string_view v = seg->value;
        if (seg->ext) {
            p.extended = true;
            if (first && seg->index == 0) {
                std::size_t q1 = v.find('\'');
                std::size_t q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
                if (q2 != std::string_view::npos) {
                    p.charset = std::string(v.substr(0, q1));
                    p.language = std::string(v.substr(q1 + 1, q2 - q1 - 1));
                    v = v.substr(q2 + 1);
                }
            }
            bytes += percent_decode(v);
            wire += v;
        } else {
            bytes += v;
            static constexpr char kHex[] = "0123456789ABCDEF";
            for (char c : v) {
                if (is_attribute_char(c)) {
                    wire += c;
                } else {
                    auto u = static_cast<unsigned char>(c);
                    wire += '%';
                    wire += kHex[u >> 4];
                    wire += kHex[u & 15];
                }
            }
        }
        last = seg->index;
        first = false;
    }
    if (p.extended) {
        p.wire = p.charset + "'" + p.language + "'" + wire;
        if (!p.charset.empty()) {
            if (auto utf8 = charset_to_utf8(bytes, p.charset)) bytes = std::move(*utf8);
        }
    }
    p.value = std::move(bytes);
    return p;
}

void parse_params(Lexer& lx, std::vector<Param>& out) {
    std::vector<RawParam> raw;
    while (!lx.done()) {
        lx.skip_cfws();
        if (lx.done()) break;
        if (lx.peek() == ';') {
            ++lx.i;
            continue;
        }
        std::string_view name = lx.token();
        if (name.empty()) {  // garbage: up to the next parameter
            ++lx.i;
            lx.skip_to_semicolon();
            continue;
        }
        lx.skip_cfws();
        if (lx.done() || lx.peek() != '=') {
            lx.skip_to_semicolon();
            continue;
        }
        ++lx.i;
        lx.skip_wsp();
        std::string value;
        if (!lx.done() && lx.peek() == '"') {
            value = lx.quoted();
            lx.skip_to_semicolon();
        } else {
            // Unquoted: a token by the RFC, but mail has `name=my file.txt` and `foo(1).txt`.
            // Read to the next ';' and drop a trailing comment that follows whitespace, as in
            // RFC 2045's own example `charset=us-ascii (Plain text)`.
            std::size_t start = lx.i;
            lx.skip_to_semicolon();
            std::string_view v = lx.s.substr(start, lx.i - start);
            for (std::size_t k = 1; k < v.size(); ++k) {
                if (v[k] == '(' && is_wsp(v[k - 1])) {
                    v = v.substr(0, k);
                    break;
                }
            }
            value = std::string(trim(v));
        }
        raw.push_back(classify(name, std::move(value)));
    }
    // One Param per name in order of first appearance; RFC 2231 forms win over a plain one.
    std::vector<std::string> order;
    for (const auto& r : raw)
        if (std::find(order.begin(), order.end(), r.base) == order.end()) order.push_back(r.base);
    for (const auto& base : order) {
        std::vector<const RawParam*> segs;
        const RawParam* plain = nullptr;
        for (const auto& r : raw) {
            if (r.base != base) continue;
            if (r.rfc2231)
                segs.push_back(&r);
            else if (!plain)
                plain = &r;
        }
        if (!segs.empty()) {
            out.push_back(assemble(base, std::move(segs)));
        } else {
            Param p;
            p.name = base;
            p.value = plain->value;
            out.push_back(std::move(p));
        }
    }
}

std::string unfold_trim(std::string_view v) {
    std::string r;
    r.reserve(v.size());
    for (char c : v)
        if (c != '\r' && c != '\n') r += c;
    return std::string(trim(r));
}

// A line of the input: text [start, content_end), terminator [content_end, next).
struct Line {
    std::size_t start, content_end, next;
    bool has_lf;
};

Line line_at(std::string_view s, std::size_t pos) {
    std::size_t nl = s.find('\n', pos);
    if (nl == std::string_view::npos) return {pos, s.size(), s.size(), false};
    std::size_t ce = (nl > pos && s[nl - 1] == '\r') ? nl - 1 : nl;
    return {pos, ce, nl + 1, true};
}

// The whole message in one forward pass. Each part is parsed by a recursive call that consumes
// lines until a delimiter line of any enclosing multipart (innermost first, RFC 2046 §5.1.2) or
// the end of input; delimiter lines are found by hashing the candidate boundary of a line that
// starts with "--", so the pass stays linear whatever the nesting.
class Parser {
  public:
    Parser(std::string_view in, const Limits& limits) : in_(in), lim_(limits) {}

    // Where a part's content ended: a delimiter line (not consumed) or the end of input.
    struct Stop {
        bool eof = true;
        std::size_t level = 0;  // index into boundaries_
        bool close = false;
        std::size_t line_start = 0;
        std::size_t lf_before = 0;  // LF octets in [0, line_start)
    };

    Stop parse_part(Part& p, std::size_t depth, bool digest_child);
    std::size_t parts() const { return parts_; }

  private:
    std::optional<std::pair<std::size_t, bool>> delimiter(const Line& l) const;
    Stop stop_here(std::size_t level, bool close) const { return {false, level, close, pos_, lf_}; }
    Stop scan();
    std::optional<Stop> parse_header(Part& p);
    Stop parse_multipart(Part& p, std::size_t depth);
    void push(std::string_view boundary);
    void pop();
    void advance(const Line& l) {
        pos_ = l.next;
        if (l.has_lf) ++lf_;
    }

    std::string_view in_;
    Limits lim_;
    std::size_t pos_ = 0;  // start of the current line
    std::size_t lf_ = 0;   // LF octets before pos_
    std::size_t parts_ = 1;
    std::deque<std::string> boundaries_;  // active, innermost last (deque: stable addresses)
    std::unordered_map<std::string_view, std::vector<std::size_t>> index_;
};

void Parser::push(std::string_view boundary) {
    boundaries_.emplace_back(boundary);
    index_[boundaries_.back()].push_back(boundaries_.size() - 1);
}

void Parser::pop() {
    auto it = index_.find(boundaries_.back());
    it->second.pop_back();
    if (it->second.empty()) index_.erase(it);  // the key views the outermost such string
    boundaries_.pop_back();
}

// RFC 2046 §5.1.1: "--" boundary, or "--" boundary "--", then optional transport padding.
std::optional<std::pair<std::size_t, bool>> Parser::delimiter(const Line& l) const {
    if (index_.empty() || l.content_end - l.start < 3 || in_[l.start] != '-' ||
        in_[l.start + 1] != '-')
        return std::nullopt;
    std::size_t e = l.content_end;
    while (e > l.start + 2 && is_wsp(in_[e - 1]))
        --e;
    std::string_view cand = in_.substr(l.start + 2, e - l.start - 2);
    std::optional<std::pair<std::size_t, bool>> best;
    if (auto it = index_.find(cand); it != index_.end()) best = {it->second.back(), false};
    if (cand.size() > 2 && cand.ends_with("--")) {
        if (auto it = index_.find(cand.substr(0, cand.size() - 2)); it != index_.end()) {
            if (!best || it->second.back() > best->first) best = {it->second.back(), true};
        }
    }
    return best;
}

Parser::Stop Parser::scan() {
    if (index_.empty()) {  // no enclosing multipart: the part runs to the end
        lf_ += static_cast<std::size_t>(
            std::count(in_.begin() + static_cast<long>(pos_), in_.end(), '\n'));
        pos_ = in_.size();
        return Stop{true, 0, false, pos_, lf_};
    }
    while (pos_ < in_.size()) {
        Line l = line_at(in_, pos_);
        if (auto d = delimiter(l)) return stop_here(d->first, d->second);
        advance(l);
    }
    return Stop{true, 0, false, pos_, lf_};
}

// Reads the header block at pos_ up to and including the blank line. Returns a Stop when a
// delimiter line or the end of input came first (the part then has no body).
std::optional<Parser::Stop> Parser::parse_header(Part& p) {
    p.header_start = pos_;
    for (;;) {
        if (pos_ >= in_.size()) {
            p.header_end = pos_;
            if (pos_ > p.header_start) p.defects |= kDefectMissingBlankLine;
            return Stop{true, 0, false, pos_, lf_};
        }
        Line l = line_at(in_, pos_);
        if (auto d = delimiter(l)) {
            // The line break before a delimiter belongs to the delimiter, even here.
            std::size_t end = pos_;
            if (end > p.header_start && in_[end - 1] == '\n') {
                --end;
                if (end > p.header_start && in_[end - 1] == '\r') --end;
            }
            p.header_end = end;
            for (auto& h : p.headers)
                h.end = std::min(h.end, end);
            if (pos_ > p.header_start) p.defects |= kDefectMissingBlankLine;
            return stop_here(d->first, d->second);
        }
        if (l.content_end == l.start) {  // the blank line
            advance(l);
            p.header_end = pos_;
            return std::nullopt;
        }
        if (is_wsp(in_[l.start])) {  // a continuation with no field before it
            p.defects |= kDefectGarbageHeader;
            advance(l);
            continue;
        }
        // field-name = 1*(%d33-57 / %d59-126), obs-optional allows WSP before the colon.
        std::size_t k = l.start;
        while (k < l.content_end && in_[k] != ':' && !is_wsp(in_[k]) &&
               static_cast<unsigned char>(in_[k]) > 32 && static_cast<unsigned char>(in_[k]) < 127)
            ++k;
        std::size_t name_end = k;
        while (k < l.content_end && is_wsp(in_[k]))
            ++k;
        if (name_end == l.start || k >= l.content_end || in_[k] != ':') {
            std::string_view text = in_.substr(l.start, l.content_end - l.start);
            if (text.find(':') != std::string_view::npos) {  // not a field: skipped
                p.defects |= kDefectGarbageHeader;
                advance(l);
                continue;
            }
            // No colon at all: the body began without the blank line.
            p.header_end = pos_;
            p.defects |= kDefectMissingBlankLine;
            return std::nullopt;
        }
        std::size_t colon = k;
        std::size_t value_end = l.content_end;
        advance(l);
        while (pos_ < in_.size() && is_wsp(in_[pos_])) {
            Line c = line_at(in_, pos_);
            value_end = c.content_end;
            advance(c);
        }
        if (pos_ - l.start > lim_.max_header_field_size ||
            p.headers.size() >= lim_.max_header_fields) {
            p.defects |= kDefectHeaderLimit;
            continue;
        }
        Header h;
        h.name = in_.substr(l.start, name_end - l.start);
        h.value = in_.substr(colon + 1, value_end - colon - 1);
        h.start = l.start;
        h.end = pos_;
        p.headers.push_back(h);
    }
}

// The Content-* fields of a part; the first of each name counts.
void interpret(Part& p, bool digest_child) {
    bool seen_type = false, seen_cte = false, seen_disposition = false, seen_language = false;
    for (const auto& h : p.headers) {
        if (h.name.size() < 9 || !iequals(h.name.substr(0, 8), "content-")) continue;
        std::string_view n = h.name.substr(8);
        if (iequals(n, "type") && !seen_type) {
            seen_type = true;
            std::string type, subtype;
            std::vector<Param> params;
            if (parse_content_value(unfold_trim(h.value), true, type, subtype, params)) {
                p.type = std::move(type);
                p.subtype = std::move(subtype);
                p.params = std::move(params);
            } else {
                p.defects |= kDefectInvalidContentType;  // RFC 2045 §5.2: text/plain
            }
        } else if (iequals(n, "transfer-encoding") && !seen_cte) {
            seen_cte = true;
            std::string v = unfold_trim(h.value);
            Lexer lx{v};
            lx.skip_cfws();
            p.encoding = std::string(lx.token());
        } else if (iequals(n, "id") && !p.id) {
            p.id = unfold_trim(h.value);
        } else if (iequals(n, "description") && !p.description) {
            p.description = unfold_trim(h.value);
        } else if (iequals(n, "md5") && !p.md5) {
            p.md5 = unfold_trim(h.value);
        } else if (iequals(n, "location") && !p.location) {
            p.location = unfold_trim(h.value);
        } else if (iequals(n, "disposition") && !seen_disposition) {
            seen_disposition = true;
            std::string type, unused;
            std::vector<Param> params;
            if (parse_content_value(unfold_trim(h.value), false, type, unused, params)) {
                p.disposition = std::move(type);
                p.disposition_params = std::move(params);
            }
        } else if (iequals(n, "language") && !seen_language) {
            seen_language = true;
            std::string v = unfold_trim(h.value);
            Lexer lx{v};
            while (!lx.done()) {
                lx.skip_cfws();
                std::size_t start = lx.i;
                while (!lx.done() && lx.peek() != ',' && lx.peek() != '(' && !is_wsp(lx.peek()))
                    ++lx.i;
                if (lx.i > start) p.languages.emplace_back(v.substr(start, lx.i - start));
                lx.skip_cfws();
                if (!lx.done()) ++lx.i;  // ',' or garbage
            }
        }
    }
    if (!seen_type && digest_child) {
        p.type = "message";  // RFC 2046 §5.1.5
        p.subtype = "rfc822";
    }
}

Parser::Stop Parser::parse_part(Part& p, std::size_t depth, bool digest_child) {
    p.depth = depth;
    std::optional<Stop> early = parse_header(p);
    interpret(p, digest_child);
    p.body_start = p.header_end;
    // LFs before the body: the header may have ended before pos_ (at most one line break).
    std::size_t lf_start =
        lf_ - static_cast<std::size_t>(std::count(in_.begin() + static_cast<long>(p.body_start),
                                                  in_.begin() + static_cast<long>(pos_), '\n'));

    bool multipart = p.is_multipart();
    if (multipart) {
        const Param* b = p.param("boundary");
        if (!b || b->value.empty()) {
            // No boundary makes the Content-Type invalid: RFC 2045 §5.2 says text/plain.
            p.defects |= kDefectNoBoundary;
            p.type = "text";
            p.subtype = "plain";
            p.params.clear();
            multipart = false;
        }
    }
    bool message = iequals(p.type, "message") &&
                   (iequals(p.subtype, "rfc822") || iequals(p.subtype, "global"));
    Encoding enc = p.transfer_encoding();
    bool identity =
        enc == Encoding::SevenBit || enc == Encoding::EightBit || enc == Encoding::Binary;
    bool may_nest = true;
    if ((multipart || message) && depth >= lim_.max_depth) {
        p.defects |= kDefectDepthLimit;
        may_nest = false;
    } else if (message && !identity) {
        p.defects |= kDefectEncodedMessage;  // its octets are encoded: nothing to parse inside
        may_nest = false;
    } else if (message && parts_ >= lim_.max_parts) {
        p.defects |= kDefectPartsLimit;
        may_nest = false;
    }

    Stop stop;
    if (early) {
        stop = *early;
        if (multipart && may_nest) p.defects |= kDefectNoParts;
        if (message && may_nest) {  // an empty encapsulated message where the part ended
            ++parts_;
            Part& child = p.children.emplace_back();
            child.depth = depth + 1;
            child.header_start = child.header_end = child.body_start = child.body_end =
                p.body_start;
        }
    } else if (multipart && may_nest) {
        stop = parse_multipart(p, depth);
    } else if (message && may_nest) {
        ++parts_;
        stop = parse_part(p.children.emplace_back(), depth + 1, false);
    } else {
        stop = scan();
    }

    // The line break before a delimiter belongs to the delimiter (RFC 2046 §5.1.1), unless a
    // header's blank line already took it: then the part (and its parents) end at the delimiter
    // line, as in Dovecot, so that a child never reaches past its parent.
    std::size_t end = in_.size();
    if (!stop.eof) {
        end = stop.line_start;
        if (end > p.body_start && in_[end - 1] == '\n') {
            --end;
            if (end > p.body_start && in_[end - 1] == '\r') --end;
        }
        if (!p.children.empty()) end = std::max(end, p.children.back().body_end);
    }
    p.body_end = end;
    std::size_t lf_end =
        stop.lf_before - static_cast<std::size_t>(
                             std::count(in_.begin() + static_cast<long>(end),
                                        in_.begin() + static_cast<long>(stop.line_start), '\n'));
    p.lines = lf_end - lf_start;
    return stop;
}

Parser::Stop Parser::parse_multipart(Part& p, std::size_t depth) {
    push(p.param("boundary")->value);
    std::size_t level = boundaries_.size() - 1;
    bool digest = iequals(p.subtype, "digest");
    bool any = false;
    Stop s = scan();  // the preamble
    while (!s.eof && s.level == level && !s.close) {
        advance(line_at(in_, pos_));  // the delimiter line
        any = true;
        if (parts_ < lim_.max_parts) {
            ++parts_;
            s = parse_part(p.children.emplace_back(), depth + 1, digest);
        } else {
            p.defects |= kDefectPartsLimit;
            s = scan();
        }
    }
    if (!s.eof && s.level == level && s.close) {
        advance(line_at(in_, pos_));
        pop();
        s = scan();  // the epilogue, up to an enclosing delimiter or the end
    } else {
        pop();
        p.defects |= kDefectMissingCloseBoundary;
    }
    if (!any) p.defects |= kDefectNoParts;
    return s;
}

}  // namespace

std::string Header::unfolded() const {
    return unfold_trim(value);
}

bool Part::is_multipart() const {
    return iequals(type, "multipart");
}

bool Part::is_message() const {
    return children.size() == 1 && iequals(type, "message") &&
           (iequals(subtype, "rfc822") || iequals(subtype, "global"));
}

bool Part::is_text() const {
    return iequals(type, "text");
}

bool Part::type_is(std::string_view t, std::string_view s) const {
    return iequals(type, t) && iequals(subtype, s);
}

const Param* Part::param(std::string_view name) const {
    for (const auto& p : params)
        if (iequals(p.name, name)) return &p;
    return nullptr;
}

const Param* Part::disposition_param(std::string_view name) const {
    for (const auto& p : disposition_params)
        if (iequals(p.name, name)) return &p;
    return nullptr;
}

std::string Part::charset() const {
    if (const Param* p = param("charset"); p && !p->value.empty()) return p->value;
    return is_text() ? "us-ascii" : "";
}

Encoding Part::transfer_encoding() const {
    return parse_encoding(encoding);
}

const Header* Part::header(std::string_view name) const {
    for (const auto& h : headers)
        if (iequals(h.name, name)) return &h;
    return nullptr;
}

Encoding parse_encoding(std::string_view token) {
    if (token.empty() || iequals(token, "7bit")) return Encoding::SevenBit;
    if (iequals(token, "8bit")) return Encoding::EightBit;
    if (iequals(token, "binary")) return Encoding::Binary;
    if (iequals(token, "base64")) return Encoding::Base64;
    if (iequals(token, "quoted-printable")) return Encoding::QuotedPrintable;
    return Encoding::Unknown;
}

bool parse_content_value(std::string_view value, bool want_subtype, std::string& type,
                         std::string& subtype, std::vector<Param>& params) {
    Lexer lx{value};
    lx.skip_cfws();
    std::string_view t = lx.token();
    if (t.empty()) return false;
    std::string_view st;
    if (want_subtype) {
        lx.skip_cfws();
        if (lx.done() || lx.peek() != '/') return false;
        ++lx.i;
        lx.skip_cfws();
        st = lx.token();
        if (st.empty()) return false;
    }
    type = std::string(t);
    subtype = std::string(st);
    params.clear();
    parse_params(lx, params);
    return true;
}

Message parse(std::string_view raw, const Limits& limits) {
    Message m;
    m.raw = raw;
    Parser parser(raw, limits);
    parser.parse_part(m.root, 0, false);
    m.part_count = parser.parts();
    return m;
}

}  // namespace millipost::mime
