// support/generators.h: RapidCheck generators shared by the property suites: message text that
// exercises dot-stuffing (lines that start with '.', lines that are "." or ".."), and messages of
// an exact size for limits. Realistic values are weighted over odd ones.
#pragma once
#include <rapidcheck.h>

#include <string>
#include <vector>

namespace millipost::props::gen {

// Printable ASCII that a message line may hold (no CR, LF or NUL).
inline rc::Gen<char> text_char() {
    return rc::gen::weightedOneOf<char>({
        {8,
         rc::gen::elementOf(std::string("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))},
        {2, rc::gen::element(' ', '.')},
        {1, rc::gen::elementOf(std::string("0123456789!\"#$%&'()*+,-/:;<=>?@[\\]^_`{|}~"))},
    });
}

inline rc::Gen<std::string> text(std::size_t max_len) {
    return rc::gen::withSize([max_len](int size) {
        auto n = std::min<std::size_t>(max_len, static_cast<std::size_t>(size) + 1);
        return rc::gen::mapcat(rc::gen::inRange<std::size_t>(0, n + 1), [](std::size_t len) {
            return rc::gen::container<std::string>(len, text_char());
        });
    });
}

// One body line without its CRLF.
inline rc::Gen<std::string> body_line() {
    return rc::gen::weightedOneOf<std::string>({
        {6, text(72)},
        {2, rc::gen::map(text(40), [](std::string s) { return "." + s; })},
        {1, rc::gen::element<std::string>(".", "..", "...", ". ", "")},
    });
}

inline rc::Gen<std::vector<std::string>> body_lines(std::size_t max_lines) {
    return rc::gen::mapcat(rc::gen::inRange<std::size_t>(0, max_lines + 1), [](std::size_t n) {
        return rc::gen::container<std::vector<std::string>>(n, body_line());
    });
}

// A message as a sender writes it: header fields with a unique Message-Id, the empty line, the
// body lines; every line ends in CRLF.
inline std::string make_message(const std::string& id, const std::vector<std::string>& lines) {
    std::string m = "Message-Id: <" + id + "@props.millipost.test>\r\n";
    m += "From: Sender <sender@example.org>\r\n";
    m += "Subject: property message " + id + "\r\n";
    m += "\r\n";
    for (auto& l : lines)
        m += l + "\r\n";
    return m;
}

// A message of exactly `size` bytes (size must be at least 300): header fields, then lines of
// filler, every third one starting with '.'.
inline std::string make_message_of_size(const std::string& id, std::size_t size) {
    std::string m = make_message(id, {});
    std::size_t n = 0;
    auto line = [&m, &n](std::size_t len) {  // len includes the CRLF
        std::string l(len - 2, 'x');
        if (n++ % 3 == 0 && !l.empty()) l[0] = '.';
        m += l + "\r\n";
    };
    while (size - m.size() > 160)
        line(78);
    auto rest = size - m.size();
    line(rest / 2);
    line(rest - rest / 2);
    return m;
}

// A tag for the length of a command sequence ("commands 20-29"), for RapidCheck's distribution.
inline std::string length_tag(std::size_t n) {
    auto low = n / 10 * 10;
    return "commands " + std::to_string(low) + "-" + std::to_string(low + 9);
}

// The message's text with CR and LF made visible, for show().
inline std::string visible(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '\r')
            out += "\\r";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

}  // namespace millipost::props::gen
