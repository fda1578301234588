// util/ascii.h: ASCII case helpers for protocol keywords, header names and domains (never for
// user text, which needs Unicode folding).
#pragma once
#include <algorithm>
#include <string>
#include <string_view>

namespace millipost::ascii {

inline char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
inline char upper(char c) {
    return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

inline bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

inline std::string to_lower(std::string_view s) {
    std::string r(s);
    for (auto& c : r)
        c = lower(c);
    return r;
}

inline std::string to_upper(std::string_view s) {
    std::string r(s);
    for (auto& c : r)
        c = upper(c);
    return r;
}

}  // namespace millipost::ascii
