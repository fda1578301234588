// mime/envelope.cpp: RFC 5322 address lists and the IMAP envelope (see envelope.h).
#include "mime/envelope.h"

namespace millipost::mime {
namespace {

bool is_wsp(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// atext (RFC 5322 §3.2.3) plus '.', so dot-atoms and obs-phrase words are single tokens, plus
// 8-bit octets (RFC 6532 UTF-8, or raw legacy bytes).
bool is_atom_char(char c) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) return true;
    if (u <= 0x20 || u == 0x7F) return false;
    return std::string_view("()<>[]:;@\\,\"").find(c) == std::string_view::npos;
}

struct Token {
    enum class Kind { Atom, Quoted, Literal, Comment, Special };
    Kind kind;
    std::string text;  // Quoted and Comment: content unescaped; Literal: with its brackets
    char special = 0;
};

std::vector<Token> tokenize(std::string_view s) {
    std::vector<Token> out;
    std::size_t i = 0;
    while (i < s.size()) {
        char c = s[i];
        if (is_wsp(c)) {
            ++i;
        } else if (c == '"') {
            std::string t;
            ++i;
            while (i < s.size() && s[i] != '"') {
                if (s[i] == '\\' && i + 1 < s.size()) ++i;
                if (s[i] != '\r' && s[i] != '\n') t += s[i];
                ++i;
            }
            ++i;
            out.push_back({Token::Kind::Quoted, std::move(t)});
        } else if (c == '(') {
            std::string t;
            int depth = 0;
            while (i < s.size()) {
                char d = s[i];
                if (d == '\\' && i + 1 < s.size()) {
                    t += s[i + 1];
                    i += 2;
                    continue;
                }
                ++i;
                if (d == '(') {
                    if (depth++ == 0) continue;
                } else if (d == ')') {
                    if (--depth == 0) break;
                }
                t += d;
            }
            out.push_back({Token::Kind::Comment, std::move(t)});
        } else if (c == '[') {
            std::size_t end = s.find(']', i);
            end = end == std::string_view::npos ? s.size() : end + 1;
            out.push_back({Token::Kind::Literal, std::string(s.substr(i, end - i))});
            i = end;
        } else if (is_atom_char(c)) {
            std::size_t start = i;
            while (i < s.size() && is_atom_char(s[i]))
                ++i;
            out.push_back({Token::Kind::Atom, std::string(s.substr(start, i - start))});
        } else if (std::string_view("<>:;@,").find(c) != std::string_view::npos) {
            out.push_back({Token::Kind::Special, std::string(1, c), c});
            ++i;
        } else {
            ++i;  // a stray ']', '\\' or control character
        }
    }
    return out;
}

bool is_special(const std::vector<Token>& t, std::size_t i, char c) {
    return i < t.size() && t[i].kind == Token::Kind::Special && t[i].special == c;
}

// A display name: its words joined by single spaces (RFC 5322 phrase, quoting removed).
std::optional<std::string> phrase(const std::vector<const Token*>& words) {
    if (words.empty()) return std::nullopt;
    std::string r;
    for (const Token* w : words) {
        if (!r.empty()) r += ' ';
        r += w->text;
    }
    return r;
}

std::string concat(const std::vector<const Token*>& words) {
    std::string r;
    for (const Token* w : words)
        r += w->text;
    return r;
}

Address mailbox_address(std::optional<std::string> name, std::optional<std::string> adl,
                        std::string local, std::optional<std::string> domain) {
    Address a;
    a.name = std::move(name);
    a.adl = std::move(adl);
    a.mailbox = local.empty() ? std::string(kMissingMailbox) : std::move(local);
    a.host = (!domain || domain->empty()) ? std::string(kMissingDomain) : std::move(*domain);
    return a;
}

// Domain tokens up to a list delimiter (or '>' inside an angle address). Comments are
// collected for the display-name fallback.
std::string read_domain(const std::vector<Token>& t, std::size_t& i, bool in_angle,
                        std::optional<std::string>& comment) {
    std::string d;
    while (i < t.size()) {
        const Token& tok = t[i];
        if (tok.kind == Token::Kind::Special) {
            if (tok.special == ',' || tok.special == ';' || tok.special == '<' ||
                tok.special == '>' || (tok.special == ':' && !in_angle))
                break;
            d += tok.special;  // a second '@', a ':' inside <...>: kept, the input is broken
        } else if (tok.kind == Token::Kind::Comment) {
            comment = tok.text;
        } else {
            d += tok.text;
        }
        ++i;
    }
    return d;
}

}  // namespace

std::vector<Address> parse_address_list(std::string_view value) {
    std::vector<Token> t = tokenize(value);
    std::vector<Address> out;
    bool in_group = false;
    std::size_t i = 0;
    while (i < t.size()) {
        if (t[i].kind == Token::Kind::Special) {
            char c = t[i].special;
            if (c == ';' && in_group) {
                out.push_back(Address{});
                in_group = false;
            }
            if (c != '<' && c != '@' && c != ':') {  // ',' ';' '>' on their own: skipped
                ++i;
                continue;
            }
        }
        // Words and comments up to the next special.
        std::vector<const Token*> words;
        std::optional<std::string> comment;
        std::size_t j = i;
        while (j < t.size() && t[j].kind != Token::Kind::Special) {
            if (t[j].kind == Token::Kind::Comment)
                comment = t[j].text;
            else
                words.push_back(&t[j]);
            ++j;
        }
        if (is_special(t, j, ':')) {
            if (!in_group) {  // group = display-name ":" [group-list] ";"
                Address start;
                start.mailbox = phrase(words).value_or("");
                out.push_back(std::move(start));
                in_group = true;
            }
            i = j + 1;
            continue;
        }
        if (is_special(t, j, '<')) {  // name-addr = [display-name] angle-addr
            std::size_t k = j + 1;
            std::optional<std::string> adl;
            if (is_special(t, k, '@')) {  // obs-route = obs-domain-list ":"
                std::size_t m = k;        // only '@', ',', domains and comments: stays linear
                while (m < t.size() && (t[m].kind != Token::Kind::Special || t[m].special == '@' ||
                                        t[m].special == ','))
                    ++m;
                if (is_special(t, m, ':')) {
                    std::string r;
                    for (std::size_t q = k; q < m; ++q)
                        if (t[q].kind != Token::Kind::Comment) r += t[q].text;
                    adl = std::move(r);
                    k = m + 1;
                }
            }
            std::vector<const Token*> local;
            while (k < t.size() && !is_special(t, k, '@') && !is_special(t, k, '>')) {
                if (t[k].kind != Token::Kind::Comment && t[k].kind != Token::Kind::Special)
                    local.push_back(&t[k]);
                ++k;
            }
            std::optional<std::string> domain;
            std::optional<std::string> inner_comment;
            if (is_special(t, k, '@')) {
                ++k;
                domain = read_domain(t, k, true, inner_comment);
            }
            if (is_special(t, k, '>')) ++k;
            // Trailing comments of the mailbox: a fallback display name.
            while (k < t.size() && t[k].kind == Token::Kind::Comment)
                comment = t[k++].text;
            std::optional<std::string> name = phrase(words);
            if (!name) name = comment;
            std::string local_part = concat(local);
            if (!name && !adl && local_part.empty() && (!domain || domain->empty())) {
                i = k;  // "<>": no address at all
                continue;
            }
            out.push_back(mailbox_address(std::move(name), std::move(adl), std::move(local_part),
                                          std::move(domain)));
            i = k;
            continue;
        }
        if (is_special(t, j, '@')) {  // addr-spec [CFWS comment]
            std::size_t k = j + 1;
            std::string domain = read_domain(t, k, false, comment);
            out.push_back(mailbox_address(comment, std::nullopt, concat(words), domain));
            i = k;
            continue;
        }
        // Words with neither '@' nor '<': a local part without domain.
        if (!words.empty())
            out.push_back(mailbox_address(comment, std::nullopt, concat(words), std::nullopt));
        i = (j < t.size() && (is_special(t, j, ',') || is_special(t, j, ';'))) ? j : j + 1;
    }
    if (in_group) out.push_back(Address{});
    return out;
}

Envelope make_envelope(const Part& message) {
    Envelope e;
    auto field = [&](std::string_view name) -> std::optional<std::string> {
        if (const Header* h = message.header(name)) return h->unfolded();
        return std::nullopt;
    };
    auto nonempty = [](std::optional<std::string> s) {
        return (s && s->empty()) ? std::nullopt : std::move(s);
    };
    auto addresses = [&](std::string_view name) {
        const Header* h = message.header(name);
        return h ? parse_address_list(h->value) : std::vector<Address>{};
    };
    e.date = nonempty(field("Date"));
    e.subject = field("Subject");
    e.from = addresses("From");
    e.sender = addresses("Sender");
    e.reply_to = addresses("Reply-To");
    if (e.sender.empty()) e.sender = e.from;
    if (e.reply_to.empty()) e.reply_to = e.from;
    e.to = addresses("To");
    e.cc = addresses("Cc");
    e.bcc = addresses("Bcc");
    e.in_reply_to = nonempty(field("In-Reply-To"));
    e.message_id = nonempty(field("Message-ID"));
    return e;
}

}  // namespace millipost::mime
