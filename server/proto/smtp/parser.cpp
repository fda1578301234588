// proto/smtp/parser.cpp: SMTP command parsing and the DATA reader (see parser.h).
#include "proto/smtp/parser.h"

#include "util/ascii.h"

#include <algorithm>
#include <cctype>

namespace millipost::smtp {
namespace {

using millipost::ascii::iequals;
using millipost::ascii::to_upper;

ParseResult fail(int code, const char* status, std::string text) {
    ParseResult r;
    r.error = {code, status, std::move(text)};
    return r;
}

bool is_atext(unsigned char c, bool utf8) {
    if (c >= 0x80) return utf8;
    return std::isalnum(c) || std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) !=
                                  std::string_view::npos;
}

bool valid_dot_string(std::string_view s, bool utf8) {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    char prev = 0;
    for (char c : s) {
        if (c == '.') {
            if (prev == '.') return false;
        } else if (!is_atext(static_cast<unsigned char>(c), utf8)) {
            return false;
        }
        prev = c;
    }
    return true;
}

bool valid_quoted_string(std::string_view s, bool utf8) {
    if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
    for (std::size_t i = 1; i + 1 < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c == '\\') {
            if (++i + 1 >= s.size()) return false;
            auto q = static_cast<unsigned char>(s[i]);
            if (q < 32 || q == 127) return false;
        } else if (c < 32 || c == 127 || c == '"' || (c >= 0x80 && !utf8)) {
            return false;
        }
    }
    return true;
}

bool valid_domain(std::string_view d, bool utf8) {
    if (d.empty() || d.size() > 255) return false;
    if (d.front() == '[') {  // address literal: checked for shape only
        return d.back() == ']' && d.size() > 2 &&
               std::all_of(d.begin() + 1, d.end() - 1, [](char c) {
                   auto u = static_cast<unsigned char>(c);
                   return u > 32 && u < 127 && c != '[' && c != ']' && c != '\\';
               });
    }
    std::size_t start = 0;
    while (start <= d.size()) {
        auto dot = d.find('.', start);
        auto label = d.substr(start, dot == std::string_view::npos ? d.npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        for (char c : label) {
            auto u = static_cast<unsigned char>(c);
            if (!(std::isalnum(u) || c == '-' || (u >= 0x80 && utf8))) return false;
        }
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return true;
}

// Parses "<path> params" after "FROM:" or "TO:". The path may carry an obsolete source route
// (RFC 5321 §4.1.2 "A-d-l"), which is accepted and dropped.
ParseResult parse_path_command(Verb verb, std::string_view rest) {
    while (!rest.empty() && rest.front() == ' ')
        rest.remove_prefix(1);  // common leniency
    if (rest.empty() || rest.front() != '<')
        return fail(501, "5.5.4", "Syntax error in path: expected <address>");
    // Find the closing '>' outside a quoted local part.
    bool quoted = false;
    std::size_t close = std::string_view::npos;
    for (std::size_t i = 1; i < rest.size(); ++i) {
        if (quoted && rest[i] == '\\') {
            ++i;
            continue;
        }
        if (rest[i] == '"') quoted = !quoted;
        if (!quoted && rest[i] == '>') {
            close = i;
            break;
        }
    }
    if (close == std::string_view::npos) return fail(501, "5.5.4", "Syntax error in path: no >");
    std::string_view path = rest.substr(1, close - 1);
    if (!path.empty() && path.front() == '@') {  // source route "@a,@b:user@c"
        auto colon = path.find(':');
        if (colon == std::string_view::npos) return fail(501, "5.1.3", "Bad source route");
        path.remove_prefix(colon + 1);
    }
    Command cmd;
    cmd.verb = verb;
    cmd.path = std::string(path);
    std::string_view params = rest.substr(close + 1);
    bool utf8 = false;
    while (!params.empty()) {
        if (params.front() != ' ') return fail(501, "5.5.4", "Syntax error in parameters");
        while (!params.empty() && params.front() == ' ')
            params.remove_prefix(1);
        if (params.empty()) break;
        auto end = params.find(' ');
        auto word = params.substr(0, end);
        params = end == std::string_view::npos ? std::string_view{} : params.substr(end);
        auto eq = word.find('=');
        Param p{to_upper(word.substr(0, eq)),
                eq == std::string_view::npos ? std::string{} : std::string(word.substr(eq + 1))};
        if (p.key.empty() || !std::all_of(p.key.begin(), p.key.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
            }))
            return fail(501, "5.5.4", "Syntax error in parameter name");
        if (p.key == "SMTPUTF8") utf8 = true;
        cmd.params.push_back(std::move(p));
    }
    // RFC 5321 §4.5.1: "RCPT TO:<Postmaster>" without a domain must be accepted.
    bool postmaster = verb == Verb::Rcpt && iequals(cmd.path, "postmaster");
    if (!(verb == Verb::Mail && cmd.path.empty()) && !postmaster && !valid_mailbox(cmd.path, true))
        return fail(501, "5.1.3", "Bad address syntax");
    if (!utf8 && verb == Verb::Mail && std::any_of(cmd.path.begin(), cmd.path.end(), [](char c) {
            return static_cast<unsigned char>(c) >= 0x80;
        }))
        return fail(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
    ParseResult r;
    r.command = std::move(cmd);
    return r;
}

}  // namespace

std::pair<std::string_view, std::string_view> split_address(std::string_view addr) {
    auto at = addr.rfind('@');
    if (at == std::string_view::npos) return {addr, {}};
    return {addr.substr(0, at), addr.substr(at + 1)};
}

bool valid_mailbox(std::string_view addr, bool allow_utf8) {
    if (addr.size() > 254 + 64) return false;
    auto at = addr.rfind('@');
    if (at == std::string_view::npos || at == 0) return false;
    auto local = addr.substr(0, at);
    auto domain = addr.substr(at + 1);
    if (local.size() > 64 && !allow_utf8) return false;
    bool local_ok = local.front() == '"' ? valid_quoted_string(local, allow_utf8)
                                         : valid_dot_string(local, allow_utf8);
    return local_ok && valid_domain(domain, allow_utf8);
}

ParseResult parse_command(std::string_view line) {
    auto sp = line.find(' ');
    std::string_view word = line.substr(0, sp);
    std::string_view rest = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
    static constexpr std::pair<std::string_view, Verb> kVerbs[] = {
        {"HELO", Verb::Helo},         {"EHLO", Verb::Ehlo}, {"MAIL", Verb::Mail},
        {"RCPT", Verb::Rcpt},         {"DATA", Verb::Data}, {"RSET", Verb::Rset},
        {"NOOP", Verb::Noop},         {"VRFY", Verb::Vrfy}, {"EXPN", Verb::Expn},
        {"HELP", Verb::Help},         {"QUIT", Verb::Quit}, {"AUTH", Verb::Auth},
        {"STARTTLS", Verb::Starttls},
    };
    Verb verb = Verb::Unknown;
    for (auto& [name, v] : kVerbs)
        if (iequals(word, name)) verb = v;
    if (verb == Verb::Unknown) return fail(500, "5.5.2", "Command not recognized");

    switch (verb) {
        case Verb::Mail:
        case Verb::Rcpt: {
            std::string_view prefix = verb == Verb::Mail ? "FROM:" : "TO:";
            if (rest.size() < prefix.size() || !iequals(rest.substr(0, prefix.size()), prefix))
                return fail(501, "5.5.4",
                            verb == Verb::Mail ? "Syntax: MAIL FROM:<address> [parameters]"
                                               : "Syntax: RCPT TO:<address> [parameters]");
            return parse_path_command(verb, rest.substr(prefix.size()));
        }
        case Verb::Helo:
        case Verb::Ehlo:
            while (!rest.empty() && rest.back() == ' ')
                rest.remove_suffix(1);
            if (rest.empty()) return fail(501, "5.5.4", "Syntax: EHLO hostname");
            break;
        case Verb::Data:
        case Verb::Rset:
        case Verb::Quit:
        case Verb::Starttls:  // RFC 3207 §4: no parameters; 501 otherwise
            if (!rest.empty() && rest.find_first_not_of(' ') != std::string_view::npos)
                return fail(501, "5.5.4", "Syntax error: no parameters allowed");
            break;
        case Verb::Vrfy:
        case Verb::Expn:
            if (rest.empty()) return fail(501, "5.5.4", "Syntax: VRFY/EXPN string");
            break;
        case Verb::Auth:  // RFC 4954 §4: AUTH mechanism [initial-response]
            if (rest.empty() || rest.front() == ' ' ||
                std::count(rest.begin(), rest.end(), ' ') > 1 || rest.back() == ' ')
                return fail(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
            break;
        default:
            break;
    }
    ParseResult r;
    r.command = Command{verb, std::string(rest), {}, {}};
    return r;
}

void DataReader::put(char c, std::string& out) {
    if (size_ < max_size_) out.push_back(c);
    ++size_;
}

DataReader::Status DataReader::feed(std::string_view in, std::size_t& consumed, std::string& out) {
    consumed = 0;
    while (consumed < in.size()) {
        char c = in[consumed++];
        if (c == '\0') nul_ = true;
        switch (state_) {
            case State::Text:
                if (c == '\r') {
                    state_ = State::CR;
                } else if (c == '.' && line_start_) {
                    state_ = State::Dot;
                } else {
                    if (c == '\n') bare_newline_ = true;  // and it does not start a line
                    put(c, out);
                    line_start_ = false;
                }
                break;
            case State::CR:
                if (c == '\n') {
                    put('\r', out);
                    put('\n', out);
                    line_start_ = true;
                    state_ = State::Text;
                } else {
                    bare_newline_ = true;
                    put('\r', out);
                    line_start_ = false;
                    state_ = State::Text;
                    --consumed;  // look at c again in Text
                }
                break;
            case State::Dot:
                if (c == '\r') {
                    state_ = State::DotCR;
                } else {
                    // Dot-stuffing: the leading dot goes; c is ordinary text.
                    line_start_ = false;
                    state_ = State::Text;
                    --consumed;
                }
                break;
            case State::DotCR:
                if (c == '\n') {
                    state_ = State::Text;
                    line_start_ = true;
                    return Status::Done;
                }
                // ".\r" then not LF: the dot was stuffing, the CR is a bare CR.
                bare_newline_ = true;
                put('\r', out);
                line_start_ = false;
                state_ = State::Text;
                --consumed;
                break;
        }
    }
    return Status::NeedMore;
}

}  // namespace millipost::smtp
