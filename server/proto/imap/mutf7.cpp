// proto/imap/mutf7.cpp: modified UTF-7 mailbox name encoding (see mutf7.h).
#include "proto/imap/mutf7.h"

#include "proto/imap/utf8.h"

#include <cstdint>
#include <vector>

namespace millipost::imap {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == ',') return 63;
    return -1;
}

bool printable(char32_t c) {
    return c >= 0x20 && c <= 0x7e;
}

// Writes UTF-16 units as modified BASE64, padding the last group with zero bits.
void flush_run(std::string& out, const std::vector<std::uint16_t>& units) {
    std::uint32_t bits = 0;
    int nbits = 0;
    for (auto u : units) {
        bits = (bits << 16) | u;
        nbits += 16;
        while (nbits >= 6) {
            nbits -= 6;
            out.push_back(kAlphabet[(bits >> nbits) & 0x3F]);
        }
        bits &= (1u << nbits) - 1;
    }
    if (nbits > 0) out.push_back(kAlphabet[(bits << (6 - nbits)) & 0x3F]);
    out.push_back('-');
}

}  // namespace

std::optional<std::string> mutf7_encode(std::string_view utf8) {
    std::string out;
    out.reserve(utf8.size());
    std::vector<std::uint16_t> run;
    for (std::size_t i = 0; i < utf8.size();) {
        char32_t cp = decode_utf8(utf8, i);
        if (cp == kBadCodePoint) return std::nullopt;
        if (printable(cp)) {
            if (!run.empty()) {
                flush_run(out, run);
                run.clear();
            }
            out.push_back(static_cast<char>(cp));
            if (cp == '&') out.push_back('-');
            continue;
        }
        if (run.empty()) out.push_back('&');
        if (cp >= 0x10000) {
            cp -= 0x10000;
            run.push_back(static_cast<std::uint16_t>(0xD800 | (cp >> 10)));
            run.push_back(static_cast<std::uint16_t>(0xDC00 | (cp & 0x3FF)));
        } else {
            run.push_back(static_cast<std::uint16_t>(cp));
        }
    }
    if (!run.empty()) flush_run(out, run);
    return out;
}

std::optional<std::string> mutf7_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    std::size_t i = 0;
    while (i < in.size()) {
        char c = in[i];
        if (!printable(static_cast<unsigned char>(c))) return std::nullopt;
        if (c != '&') {
            out.push_back(c);
            ++i;
            continue;
        }
        ++i;
        if (i < in.size() && in[i] == '-') {
            out.push_back('&');
            ++i;
            continue;
        }
        std::uint32_t bits = 0;
        int nbits = 0;
        char32_t high = 0;  // a pending high surrogate
        bool any = false;
        for (;; ++i) {
            if (i == in.size()) return std::nullopt;  // unterminated run
            if (in[i] == '-') break;
            int v = b64_value(in[i]);
            if (v < 0) return std::nullopt;
            bits = (bits << 6) | static_cast<std::uint32_t>(v);
            nbits += 6;
            if (nbits < 16) continue;
            nbits -= 16;
            auto unit = static_cast<char32_t>((bits >> nbits) & 0xFFFF);
            bits &= (1u << nbits) - 1;
            any = true;
            if (high) {
                if (unit < 0xDC00 || unit > 0xDFFF) return std::nullopt;
                append_utf8(out, 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00));
                high = 0;
            } else if (unit >= 0xD800 && unit <= 0xDBFF) {
                high = unit;
            } else if (unit >= 0xDC00 && unit <= 0xDFFF) {
                return std::nullopt;
            } else if (printable(unit)) {
                return std::nullopt;  // must stand for itself
            } else {
                append_utf8(out, unit);
            }
        }
        ++i;  // the '-'
        if (!any || high || nbits >= 6 || bits != 0) return std::nullopt;
    }
    return out;
}

}  // namespace millipost::imap
