// mime/decode.cpp: base64, quoted-printable, RFC 2047 and charset decoding (see decode.h).
#include "mime/decode.h"

#include "util/ascii.h"

#include <iconv.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <vector>

namespace millipost::mime {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

using millipost::ascii::lower;

std::string lowered(std::string_view s) {
    std::string r(s);
    for (auto& c : r)
        c = lower(c);
    return r;
}

bool is_wsp(char c) {
    return c == ' ' || c == '\t';
}

// `=XX` decoding shared by quoted-printable and Q: appends the octet and returns true when
// `in[i]` starts a valid escape.
bool hex_escape(std::string_view in, std::size_t i, std::string& out) {
    if (i + 2 >= in.size()) return false;
    int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    return true;
}

// Length of the valid UTF-8 sequence at `s[i]`, or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    unsigned char c = b(0);
    if (c < 0x80) return 1;
    std::size_t len;
    std::uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (i + len > s.size()) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        if ((b(k) & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b(k) & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

// The iconv name for a MIME charset label, or "" for the UTF-8 path.
std::string iconv_name(std::string_view label) {
    std::string cs = lowered(label);
    while (!cs.empty() && (is_wsp(cs.back()) || cs.back() == '"'))
        cs.pop_back();
    std::size_t b = 0;
    while (b < cs.size() && (is_wsp(cs[b]) || cs[b] == '"'))
        ++b;
    cs.erase(0, b);
    if (cs.empty() || cs == "us-ascii" || cs == "ascii" || cs == "utf-8" || cs == "utf8" ||
        cs == "ansi_x3.4-1968" || cs == "iso646-us" || cs == "us" || cs == "unicode-1-1-utf-8")
        return "";
    if (cs == "gb2312" || cs == "gbk" || cs == "x-gbk" || cs == "cp936" || cs == "euc-cn" ||
        cs == "chinese")
        return "GB18030";
    if (cs == "shift_jis" || cs == "shift-jis" || cs == "sjis" || cs == "x-sjis" ||
        cs == "ms_kanji" || cs == "windows-31j")
        return "CP932";
    if (cs == "ks_c_5601-1987" || cs == "euc-kr" || cs == "ks_c_5601" || cs == "korean")
        return "CP949";
    if (cs == "iso-8859-8-i") return "ISO-8859-8";
    if (cs == "iso-2022-jp") return "ISO-2022-JP-2";  // a superset iconv decodes equally
    return cs;
}

std::optional<std::string> iconv_convert(std::string_view bytes, const std::string& name) {
    iconv_t cd = iconv_open("UTF-8", name.c_str());
    if (cd == reinterpret_cast<iconv_t>(-1)) return std::nullopt;
    std::string out(bytes.size() * 2 + 16, '\0');
    std::size_t used = 0;
    char* in = const_cast<char*>(bytes.data());  // iconv's signature; it does not write
    std::size_t in_left = bytes.size();
    bool flushing = false;
    for (;;) {
        if (out.size() - used < 16) out.resize(out.size() * 2);
        char* o = out.data() + used;
        std::size_t o_left = out.size() - used;
        std::size_t r = flushing ? iconv(cd, nullptr, nullptr, &o, &o_left)
                                 : iconv(cd, &in, &in_left, &o, &o_left);
        used = static_cast<std::size_t>(o - out.data());
        if (r != static_cast<std::size_t>(-1)) {
            if (flushing) break;
            flushing = true;  // reset a stateful encoding (ISO-2022-JP) to its initial state
            continue;
        }
        if (errno == E2BIG) {
            out.resize(out.size() * 2);
        } else if (errno == EILSEQ && !flushing) {
            if (out.size() - used < kReplacement.size()) out.resize(out.size() * 2);
            out.replace(used, kReplacement.size(), kReplacement);
            used += kReplacement.size();
            ++in;
            --in_left;
        } else {  // EINVAL: incomplete sequence at the end
            if (out.size() - used < kReplacement.size()) out.resize(out.size() * 2);
            out.replace(used, kReplacement.size(), kReplacement);
            used += kReplacement.size();
            in_left = 0;
            flushing = true;
        }
    }
    iconv_close(cd);
    out.resize(used);
    return out;
}

// One RFC 2047 encoded-word at `s[i]`: `=?charset[*lang]?B|Q?text?=`.
struct EncodedWord {
    std::string_view charset;
    char encoding;
    std::string_view text;
    std::size_t end;
};

std::optional<EncodedWord> encoded_word_at(std::string_view s, std::size_t i) {
    if (s.compare(i, 2, "=?") != 0) return std::nullopt;
    std::size_t cs_end = s.find('?', i + 2);
    if (cs_end == std::string_view::npos || cs_end == i + 2 || cs_end + 2 >= s.size())
        return std::nullopt;
    std::string_view cs = s.substr(i + 2, cs_end - i - 2);
    for (char c : cs)
        if (is_wsp(c) || c == '=') return std::nullopt;
    char enc = s[cs_end + 1];
    if ((enc != 'B' && enc != 'b' && enc != 'Q' && enc != 'q') || s[cs_end + 2] != '?')
        return std::nullopt;
    // encoded-text holds no '?' (RFC 2047 §2), so the first '?' must close the word. Spaces are
    // tolerated inside: some mailers put them there.
    std::size_t text_start = cs_end + 3;
    std::size_t close = s.find('?', text_start);
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != '=')
        return std::nullopt;
    if (auto star = cs.find('*'); star != std::string_view::npos) cs = cs.substr(0, star);
    return EncodedWord{cs, lower(enc), s.substr(text_start, close - text_start), close + 2};
}

}  // namespace

std::string decode_base64(std::string_view in) {
    std::string out;
    out.reserve(in.size() / 4 * 3 + 3);
    std::uint32_t acc = 0;
    int n = 0;
    auto flush_partial = [&] {
        if (n == 2) {
            out += static_cast<char>((acc >> 4) & 0xFF);
        } else if (n == 3) {
            out += static_cast<char>((acc >> 10) & 0xFF);
            out += static_cast<char>((acc >> 2) & 0xFF);
        }
        acc = 0;
        n = 0;
    };
    for (char c : in) {
        int v = base64_value(c);
        if (v >= 0) {
            acc = (acc << 6) | static_cast<std::uint32_t>(v);
            if (++n == 4) {
                out += static_cast<char>((acc >> 16) & 0xFF);
                out += static_cast<char>((acc >> 8) & 0xFF);
                out += static_cast<char>(acc & 0xFF);
                acc = 0;
                n = 0;
            }
        } else if (c == '=') {
            flush_partial();
        }
    }
    flush_partial();  // missing padding is tolerated
    return out;
}

std::string decode_quoted_printable(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    std::size_t pos = 0;
    while (pos < in.size()) {
        std::size_t nl = in.find('\n', pos);
        std::size_t next = nl == std::string_view::npos ? in.size() : nl + 1;
        std::size_t end = nl == std::string_view::npos ? in.size() : nl;
        std::string_view eol;
        if (nl != std::string_view::npos) {
            if (end > pos && in[end - 1] == '\r') --end;
            eol = in.substr(end, next - end);
        }
        while (end > pos && is_wsp(in[end - 1]))
            --end;  // transport padding (RFC 2045 §6.7 (3))
        bool soft = end > pos && in[end - 1] == '=';
        if (soft) --end;
        std::string_view line = in.substr(pos, end - pos);
        for (std::size_t i = 0; i < line.size(); ++i) {
            if (line[i] == '=' && hex_escape(line, i, out)) {
                i += 2;
            } else {
                out += line[i];
            }
        }
        if (!soft) out += eol;
        pos = next;
    }
    return out;
}

std::string decode_q(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '_') {
            out += ' ';
        } else if (in[i] == '=' && hex_escape(in, i, out)) {
            i += 2;
        } else {
            out += in[i];
        }
    }
    return out;
}

bool is_valid_utf8(std::string_view in) {
    for (std::size_t i = 0; i < in.size();) {
        std::size_t n = utf8_sequence(in, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

std::string sanitize_utf8(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size();) {
        std::size_t n = utf8_sequence(in, i);
        if (n == 0) {
            out += kReplacement;
            ++i;
        } else {
            out.append(in.substr(i, n));
            i += n;
        }
    }
    return out;
}

std::optional<std::string> charset_to_utf8(std::string_view bytes, std::string_view charset) {
    std::string name = iconv_name(charset);
    if (name.empty()) return sanitize_utf8(bytes);
    return iconv_convert(bytes, name);
}

std::string decode_header_value(std::string_view raw) {
    std::string s;
    s.reserve(raw.size());
    for (char c : raw)
        if (c != '\r' && c != '\n') s += c;

    std::string out;
    // Adjacent encoded-words in one charset: their octets, and the span they came from.
    std::string pending, pending_charset;
    std::size_t pending_start = 0, pending_end = 0;
    auto flush = [&] {
        if (pending_end == pending_start) return;
        if (auto text = charset_to_utf8(pending, pending_charset))
            out += *text;
        else
            out.append(s, pending_start, pending_end - pending_start);
        pending.clear();
        pending_start = pending_end = 0;
    };

    std::size_t i = 0;
    while (i < s.size()) {
        if (auto w = encoded_word_at(s, i)) {
            std::string cs = lowered(w->charset);
            if (pending_end != pending_start && cs != pending_charset) flush();
            if (pending_end == pending_start) {
                pending_charset = cs;
                pending_start = i;
            }
            pending += w->encoding == 'b' ? decode_base64(w->text) : decode_q(w->text);
            pending_end = w->end;
            i = w->end;
            continue;
        }
        if (is_wsp(s[i]) && pending_end != pending_start) {
            std::size_t j = i;
            while (j < s.size() && is_wsp(s[j]))
                ++j;
            if (j < s.size() && encoded_word_at(s, j)) {  // between two encoded-words: ignored
                i = j;
                continue;
            }
        }
        flush();
        out += s[i++];
    }
    flush();
    return is_valid_utf8(out) ? out : sanitize_utf8(out);
}

Decoded decode_body(const Part& part, std::string_view raw_message) {
    std::string_view body = raw_message.substr(part.body_start, part.size());
    Decoded d;
    switch (part.transfer_encoding()) {
        case Encoding::SevenBit:
        case Encoding::EightBit:
        case Encoding::Binary:
            d.data.assign(body);
            break;
        case Encoding::Base64:
            d.data = decode_base64(body);
            break;
        case Encoding::QuotedPrintable:
            d.data = decode_quoted_printable(body);
            break;
        case Encoding::Unknown:
            d.unknown_encoding = true;
            break;
    }
    return d;
}

std::string encode_base64_lines(std::string_view in) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    constexpr std::size_t kLine = 76;  // RFC 2045 §6.8: at most 76 characters per line
    std::string out;
    out.reserve(in.size() / 3 * 4 + in.size() / 57 * 2 + 8);
    std::size_t col = 0;
    auto put = [&](char c) {
        if (col == kLine) {
            out += "\r\n";
            col = 0;
        }
        out += c;
        ++col;
    };
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        std::uint32_t v = (std::uint32_t(static_cast<unsigned char>(in[i])) << 16) |
                          (std::uint32_t(static_cast<unsigned char>(in[i + 1])) << 8) |
                          std::uint32_t(static_cast<unsigned char>(in[i + 2]));
        put(kAlphabet[(v >> 18) & 63]);
        put(kAlphabet[(v >> 12) & 63]);
        put(kAlphabet[(v >> 6) & 63]);
        put(kAlphabet[v & 63]);
    }
    if (i < in.size()) {
        std::uint32_t v = std::uint32_t(static_cast<unsigned char>(in[i])) << 16;
        if (i + 1 < in.size()) v |= std::uint32_t(static_cast<unsigned char>(in[i + 1])) << 8;
        put(kAlphabet[(v >> 18) & 63]);
        put(kAlphabet[(v >> 12) & 63]);
        put(i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=');
        put('=');
    }
    return out;
}

namespace {

struct Edit {
    std::size_t start, end;  // replaced range of the original
    std::string text;
};

bool needs_conversion(const Part& p, std::string_view raw) {
    if (p.is_multipart() || p.is_message()) return false;
    auto enc = p.transfer_encoding();
    if (enc == Encoding::Binary) return true;
    bool identity = enc == Encoding::SevenBit || enc == Encoding::EightBit;
    return identity && raw.substr(p.body_start, p.size()).find('\0') != std::string_view::npos;
}

void collect_edits(const Part& p, std::string_view raw, std::vector<Edit>& edits) {
    for (const auto& child : p.children)
        collect_edits(child, raw, edits);
    if (!needs_conversion(p, raw)) return;
    constexpr std::string_view kField = "Content-Transfer-Encoding: base64";
    if (const Header* h = p.header("Content-Transfer-Encoding")) {
        std::string_view old = raw.substr(h->start, h->end - h->start);
        std::string eol = old.ends_with("\r\n") ? "\r\n" : old.ends_with('\n') ? "\n" : "";
        edits.push_back({h->start, h->end, std::string(kField) + eol});
    } else {
        // Before the blank line that ends the header; a header without one (a defect) is left
        // alone: where the field would go is not certain, and the body stays as it was.
        std::string_view head = raw.substr(p.header_start, p.header_end - p.header_start);
        std::size_t at;
        std::string eol;
        if (head.ends_with("\r\n\r\n") || head == "\r\n") {
            at = p.header_end - 2;
            eol = "\r\n";
        } else if (head.ends_with("\n\n") || head == "\n") {
            at = p.header_end - 1;
            eol = "\n";
        } else {
            return;
        }
        edits.push_back({at, at, std::string(kField) + eol});
    }
    edits.push_back(
        {p.body_start, p.body_end, encode_base64_lines(raw.substr(p.body_start, p.size()))});
}

}  // namespace

std::optional<std::string> convert_binary_parts(std::string_view raw) {
    auto msg = parse(raw);
    std::vector<Edit> edits;
    collect_edits(msg.root, raw, edits);
    if (edits.empty()) return std::nullopt;
    std::sort(edits.begin(), edits.end(),
              [](const Edit& a, const Edit& b) { return a.start < b.start; });
    std::string out;
    out.reserve(raw.size() + raw.size() / 3 + 64);
    std::size_t pos = 0;
    for (const auto& e : edits) {
        out.append(raw.substr(pos, e.start - pos));
        out += e.text;
        pos = e.end;
    }
    out.append(raw.substr(pos));
    return out;
}

}  // namespace millipost::mime
