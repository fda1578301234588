// proto/imap/utf8.h: UTF-8 validation and decoding (RFC 3629) for mailbox names and the writer.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace millipost::imap {

inline constexpr char32_t kBadCodePoint = 0xFFFFFFFF;

// Decodes the code point at s[i] and advances i past it. Returns kBadCodePoint (advancing i by
// one byte) for anything RFC 3629 rejects: stray continuation bytes, truncated sequences,
// overlong forms, surrogates, values over U+10FFFF.
inline char32_t decode_utf8(std::string_view s, std::size_t& i) {
    auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = b(i);
    if (c < 0x80) {
        ++i;
        return c;
    }
    std::size_t n;
    char32_t cp;
    char32_t min;
    if ((c & 0xE0) == 0xC0) {
        n = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 3, cp = c & 0x07, min = 0x10000;
    } else {
        ++i;
        return kBadCodePoint;
    }
    for (std::size_t k = 1; k <= n; ++k) {
        if (i + k >= s.size() || (b(i + k) & 0xC0) != 0x80) {
            ++i;
            return kBadCodePoint;
        }
        cp = (cp << 6) | (b(i + k) & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        ++i;
        return kBadCodePoint;
    }
    i += n + 1;
    return cp;
}

inline bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();)
        if (decode_utf8(s, i) == kBadCodePoint) return false;
    return true;
}

// Appends the UTF-8 form of a Unicode scalar value (precondition: not a surrogate, <= 0x10FFFF).
inline void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

}  // namespace millipost::imap
