// proto/pop3/parser.cpp: POP3 command parsing and multi-line writers (see parser.h).
#include "proto/pop3/parser.h"

#include <algorithm>
#include <cctype>

namespace millipost::pop3 {

Command parse_command(std::string_view line) {
    Command cmd;
    auto sp = line.find(' ');
    std::string_view word = line.substr(0, sp);
    cmd.word.assign(word);
    for (auto& c : cmd.word)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    static constexpr std::pair<std::string_view, Verb> kVerbs[] = {
        {"USER", Verb::User}, {"PASS", Verb::Pass}, {"APOP", Verb::Apop}, {"AUTH", Verb::Auth},
        {"STAT", Verb::Stat}, {"LIST", Verb::List}, {"UIDL", Verb::Uidl}, {"RETR", Verb::Retr},
        {"TOP", Verb::Top},   {"DELE", Verb::Dele}, {"RSET", Verb::Rset}, {"NOOP", Verb::Noop},
        {"QUIT", Verb::Quit}, {"CAPA", Verb::Capa}, {"STLS", Verb::Stls},
    };
    for (auto& [name, v] : kVerbs)
        if (cmd.word == name) cmd.verb = v;
    if (sp == std::string_view::npos) return cmd;
    std::string_view rest = line.substr(sp + 1);
    if (cmd.verb == Verb::Pass) {  // a password may contain spaces (RFC 1939 §7 note)
        cmd.args.emplace_back(rest);
        return cmd;
    }
    while (!rest.empty()) {
        auto end = rest.find(' ');
        if (end != 0) cmd.args.emplace_back(rest.substr(0, end));
        if (end == std::string_view::npos) break;
        rest.remove_prefix(end + 1);
    }
    return cmd;
}

std::optional<unsigned> parse_number(std::string_view s) {
    if (s.empty() || s.size() > 10) return std::nullopt;
    unsigned long long v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v == 0 || v > 0x7fffffffULL) return std::nullopt;
    return static_cast<unsigned>(v);
}

void append_multiline(std::string& out, std::string_view body, long max_body_lines) {
    out.reserve(out.size() + body.size() + body.size() / 64 + 8);
    bool in_body = false;
    long body_lines = 0;
    std::size_t pos = 0;
    while (pos < body.size()) {
        if (in_body && max_body_lines >= 0 && body_lines >= max_body_lines) break;
        auto nl = body.find('\n', pos);
        std::size_t end = nl == std::string_view::npos ? body.size() : nl;
        std::string_view line = body.substr(pos, end - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (!line.empty() && line.front() == '.') out.push_back('.');
        out.append(line);
        out.append("\r\n");
        if (in_body) ++body_lines;
        if (!in_body && line.empty()) in_body = true;
        pos = nl == std::string_view::npos ? body.size() : nl + 1;
    }
    out.append(".\r\n");
}

}  // namespace millipost::pop3
