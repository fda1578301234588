// proto/imap/parser.cpp: incremental IMAP command parser (see parser.h).
#include "proto/imap/parser.h"

#include <algorithm>
#include <cstdio>
#include <limits>

namespace millipost::imap {
namespace {

constexpr std::uint64_t kNoSize = std::numeric_limits<std::uint64_t>::max();
// Bytes of the current line remembered while discarding a broken command, enough for any
// sensible "{n+}" at its end.
constexpr std::size_t kTailBytes = 64;

// ATOM-CHAR (RFC 9051 §9) widened by what arguments carry in atoms: list-wildcards '%' '*'
// (LIST patterns, sequence sets), '\' (flags) and ']' (ASTRING-CHAR). Interpreters narrow it
// where the grammar wants a strict atom. '[' is an atom char except where it opens a section.
bool atom_char(unsigned char c) {
    return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '{' && c != '"';
}

// tag = 1*<any ASTRING-CHAR except "+">
bool tag_char(unsigned char c) {
    return atom_char(c) && c != '+' && c != '%' && c != '*' && c != '\\';
}

std::string describe(unsigned char c) {
    char buf[32];
    if (c == 0) return "NUL byte";
    if (c >= 0x80) {
        std::snprintf(buf, sizeof buf, "8-bit byte 0x%02x", c);
    } else if (c < 0x20 || c == 0x7f) {
        std::snprintf(buf, sizeof buf, "control byte 0x%02x", c);
    } else {
        std::snprintf(buf, sizeof buf, "'%c'", c);
    }
    return buf;
}

void upper(std::string& s) {
    for (auto& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
}

bool is_nil(std::string_view s) {
    return s.size() == 3 && (s[0] | 0x20) == 'n' && (s[1] | 0x20) == 'i' && (s[2] | 0x20) == 'l';
}

// Finds "{digits}" or "{digits+}" at the end of `line` (which may end in CR).
struct Announced {
    bool found = false;
    bool sync = true;
    std::uint64_t size = 0;
};
Announced literal_at_end(std::string_view line) {
    Announced a;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.back() != '}') return a;
    line.remove_suffix(1);
    if (!line.empty() && line.back() == '+') {
        a.sync = false;
        line.remove_suffix(1);
    }
    std::size_t digits = 0;
    while (digits < line.size() && line[line.size() - 1 - digits] >= '0' &&
           line[line.size() - 1 - digits] <= '9')
        ++digits;
    if (digits == 0 || digits == line.size() || line[line.size() - 1 - digits] != '{') return a;
    for (std::size_t i = line.size() - digits; i < line.size(); ++i) {
        auto d = static_cast<std::uint64_t>(line[i] - '0');
        if (a.size > (kNoSize - d) / 10) {
            a.size = kNoSize;
            break;
        }
        a.size = a.size * 10 + d;
    }
    a.found = true;
    return a;
}

}  // namespace

Parser::Parser(Limits limits) : limits_(limits) {
    enter_start();
}

void Parser::set_limits(const Limits& l) {
    if (at_command_start()) {
        limits_ = l;
    } else {
        next_limits_ = l;
        limits_pending_ = true;
    }
}

bool Parser::at_command_start() const {
    return state_ == State::Start && !cr_;
}

std::size_t Parser::buffered() const {
    return line_bytes_ + static_cast<std::size_t>(literal_total_ - lit_left_);
}

Command Parser::take_command() {
    if (!ready_) return {};  // mid-command the parser still points into cmd_
    Command c = std::move(cmd_);
    cmd_ = Command{};
    ready_ = false;
    return c;
}

void Parser::enter_start() {
    if (limits_pending_) {
        limits_ = next_limits_;
        limits_pending_ = false;
    }
    state_ = State::Start;
    stack_.assign(1, Frame{&cmd_.args, false});
    cur_ = nullptr;
    cr_ = false;
    sections_ = false;
    in_section_ = false;
    line_bytes_ = 0;
    nargs_ = 0;
    literal_total_ = 0;
    lit_left_ = 0;
    tail_.clear();
}

void Parser::enter_skip() {
    cmd_ = Command{};
    stack_.assign(1, Frame{&cmd_.args, false});
    cur_ = nullptr;
    cr_ = false;
    line_bytes_ = 0;
    nargs_ = 0;
    literal_total_ = 0;
    lit_left_ = 0;
    state_ = State::Skip;
}

void Parser::set_error(std::string text, bool resynced) {
    err_ = ParseError{};
    bool tag_done = state_ != State::Start && state_ != State::Tag;
    bool name_done = tag_done && state_ != State::Name;
    if (tag_done) err_.tag = cmd_.tag;
    if (name_done) err_.command = cmd_.name;
    err_.text = std::move(text);
    err_.resynced = resynced;
}

Parser::Status Parser::fail(std::string text, bool& used, Status status) {
    used = false;  // the byte is looked at again while discarding the rest of the command
    set_error(std::move(text), false);
    enter_skip();
    return status;
}

Parser::Status Parser::fail_eol(std::string text) {
    set_error(std::move(text), true);
    cmd_ = Command{};
    enter_start();
    return Status::Error;
}

Parser::Status Parser::feed(std::string_view in, std::size_t& consumed) {
    consumed = 0;
    if (state_ == State::Dead) return dead_status_;
    if (ready_) {
        ready_ = false;
        cmd_ = Command{};
    }
    while (consumed < in.size()) {
        if (state_ == State::Literal || state_ == State::SkipLiteral) {
            auto st = read_literal(in, consumed);
            if (st != Status::NeedMore) return st;
            continue;
        }
        bool used = true;
        auto st = step(static_cast<unsigned char>(in[consumed]), used);
        if (used) ++consumed;
        if (st != Status::NeedMore) return st;
    }
    return Status::NeedMore;
}

Parser::Status Parser::read_literal(std::string_view in, std::size_t& consumed) {
    std::uint64_t avail = in.size() - consumed;
    if (state_ == State::SkipLiteral) {
        auto k = static_cast<std::size_t>(std::min(skip_left_, avail));
        consumed += k;
        skip_left_ -= k;
        if (skip_left_ == 0) state_ = State::Skip;
        return Status::NeedMore;
    }
    auto k = static_cast<std::size_t>(std::min(lit_left_, avail));
    std::string_view chunk = in.substr(consumed, k);
    // CHAR8 excludes NUL: only literal8 may carry it (RFC 3516 §4.2).
    if (!lit8_ && !lit_nul_ && chunk.find('\0') != std::string_view::npos) lit_nul_ = true;
    cur_->text.append(chunk);
    consumed += k;
    lit_left_ -= k;
    if (lit_left_ > 0) return Status::NeedMore;
    state_ = State::AfterToken;
    if (!lit_nul_) return Status::NeedMore;
    set_error("NUL byte in literal (only literal8 ~{n} may carry NUL)", false);
    enter_skip();
    return Status::Error;
}

void Parser::push_tail(unsigned char c) {
    if (c == '\n') {
        tail_.clear();
        return;
    }
    if (tail_.size() >= kTailBytes) tail_.erase(0, kTailBytes / 2);
    tail_.push_back(static_cast<char>(c));
}

Parser::Status Parser::step(unsigned char c, bool& used) {
    used = true;
    if (state_ == State::Skip) return skip_byte(c);
    if (++line_bytes_ > limits_.max_line)
        return fail("Command line too long", used, Status::LineTooLong);
    Status st;
    if (cr_) {
        cr_ = false;
        if (c != '\n') return fail("CR not followed by LF", used);
        st = dispatch(c, used);
    } else if (c == '\r' && state_ != State::Quoted && state_ != State::QuotedEscape) {
        cr_ = true;
        st = Status::NeedMore;
    } else {
        st = dispatch(c, used);
    }
    if (used) push_tail(c);
    return st;
}

Parser::Status Parser::skip_byte(unsigned char c) {
    if (c != '\n') {
        push_tail(c);
        return Status::NeedMore;
    }
    // The broken command's line ends here. If it announces a non-synchronizing literal, the
    // client sends that data regardless: discard it and the rest of the command after it. A
    // synchronizing literal ends the command, since the client waits for a "+" that the
    // session's BAD replaced.
    Announced a = literal_at_end(tail_);
    tail_.clear();
    if (!a.found || a.sync) {
        enter_start();
        return Status::NeedMore;
    }
    if (a.size > limits_.max_skip_literal) {
        std::string tag = err_.tag, command = err_.command;
        err_ = ParseError{tag, command, "Literal too big to discard", false, true, a.size, false};
        state_ = State::Dead;
        dead_status_ = Status::LiteralTooBig;
        return dead_status_;
    }
    skip_left_ = a.size;
    state_ = a.size > 0 ? State::SkipLiteral : State::Skip;
    return Status::NeedMore;
}

Arg* Parser::new_arg(Arg::Kind kind) {
    if (++nargs_ > limits_.max_args) return nullptr;
    auto& items = *stack_.back().items;
    items.emplace_back();
    cur_ = &items.back();
    cur_->kind = kind;
    return cur_;
}

void Parser::start_literal(bool lit8) {
    lit8_ = lit8;
    lit_size_ = 0;
    lit_digits_ = 0;
    lit_overflow_ = false;
    state_ = State::LiteralSize;
}

void Parser::finish_atom() {
    if (!cur_->section && is_nil(cur_->text)) cur_->kind = Arg::Kind::Nil;
}

Parser::Status Parser::open(bool section, bool& used) {
    if (stack_.size() > limits_.max_depth) return fail("Too deeply nested", used, Status::TooDeep);
    std::vector<Arg>* items;
    if (section) {
        cur_->section = true;
        items = &cur_->items;
        in_section_ = true;
    } else {
        Arg* list = new_arg(Arg::Kind::List);
        if (!list) return fail("Too many arguments", used);
        items = &list->items;
    }
    stack_.push_back(Frame{items, section});
    state_ = State::Sep;
    return Status::NeedMore;
}

Parser::Status Parser::close_list(bool& used) {
    if (stack_.size() == 1) return fail("Unexpected ')'", used);
    if (stack_.back().section) return fail("Missing ']' before ')'", used);
    stack_.pop_back();
    state_ = State::AfterToken;
    return Status::NeedMore;
}

Parser::Status Parser::close_section(bool& used) {
    if (!stack_.back().section) return fail("Missing ')' before ']'", used);
    stack_.pop_back();
    in_section_ = false;
    cur_ = &stack_.back().items->back();  // the atom that owns the section
    state_ = State::Suffix;
    return Status::NeedMore;
}

Parser::Status Parser::end_of_line() {
    if (stack_.size() > 1) return fail_eol(in_section_ ? "Missing ']'" : "Missing ')'");
    enter_start();
    ready_ = true;
    return Status::Command;
}

Parser::Status Parser::finish_name_at_eol() {
    if (cmd_.name.empty()) return fail_eol("Missing command name");
    upper(cmd_.name);
    if (cmd_.name == "UID" && !cmd_.uid) return fail_eol("Missing command after UID");
    return end_of_line();
}

Parser::Status Parser::announce_literal() {
    std::uint64_t n = lit_overflow_ ? kNoSize : lit_size_;
    if (n > limits_.max_literal || n > limits_.max_command_literals - literal_total_)
        return reject_literal(Status::LiteralTooBig, "Literal too big");
    if (!lit_sync_ && n > limits_.max_nonsync_literal)
        return reject_literal(Status::LiteralTooBig,
                              "Non-synchronizing literal too big, use a synchronizing literal");
    Arg* a = new_arg(Arg::Kind::String);
    if (!a) return reject_literal(Status::Error, "Too many arguments");
    a->form = lit8_ ? Arg::Form::Literal8 : Arg::Form::Literal;
    a->text.reserve(static_cast<std::size_t>(n));  // the only allocation: data is copied once
    literal_total_ += n;
    lit_left_ = n;
    lit_nul_ = false;
    state_ = n > 0 ? State::Literal : State::AfterToken;
    return lit_sync_ ? Status::NeedContinuation : Status::NeedMore;
}

Parser::Status Parser::reject_literal(Status status, std::string text) {
    std::uint64_t n = lit_overflow_ ? kNoSize : lit_size_;
    if (lit_sync_) {
        // The client waits for "+": the session's reply ends the command.
        set_error(std::move(text), true);
        cmd_ = Command{};
        enter_start();
    } else if (n > limits_.max_skip_literal) {
        set_error(std::move(text), false);
        err_.fatal = true;
        state_ = State::Dead;
        dead_status_ = status;
    } else {
        // The data follows regardless: discard it, then the rest of the command.
        set_error(std::move(text), false);
        enter_skip();
        skip_left_ = n;
        if (n > 0) state_ = State::SkipLiteral;
    }
    err_.literal_size = n;
    err_.literal_sync = lit_sync_;
    return status;
}

Parser::Status Parser::dispatch(unsigned char c, bool& used) {
    for (;;) {
        switch (state_) {
            case State::Start:
                if (c == '\n') return fail_eol("Empty command line");
                if (c == ' ') return fail("Missing tag", used);
                if (!tag_char(c)) return fail("Invalid tag: " + describe(c), used);
                cmd_.tag.push_back(static_cast<char>(c));
                state_ = State::Tag;
                return Status::NeedMore;

            case State::Tag:
                if (tag_char(c)) {
                    cmd_.tag.push_back(static_cast<char>(c));
                    return Status::NeedMore;
                }
                if (c == ' ') {
                    state_ = State::Name;
                    return Status::NeedMore;
                }
                if (c == '\n') {
                    state_ = State::Name;  // the tag is whole: answer with a tagged BAD
                    return fail_eol("Missing command name");
                }
                return fail("Invalid character in tag: " + describe(c), used);

            case State::Name:
                if (atom_char(c) && c != '[' && c != ']') {
                    cmd_.name.push_back(static_cast<char>(c));
                    return Status::NeedMore;
                }
                if (c == '\n') return finish_name_at_eol();
                if (c != ' ')
                    return fail("Invalid character in command name: " + describe(c), used);
                if (cmd_.name.empty()) return fail("Missing command name", used);
                upper(cmd_.name);
                if (cmd_.name == "UID" && !cmd_.uid) {
                    cmd_.uid = true;
                    cmd_.name.clear();
                    return Status::NeedMore;
                }
                sections_ = cmd_.name == "FETCH";
                state_ = State::Sep;
                return Status::NeedMore;

            case State::Sep:
                switch (c) {
                    case ' ':
                        return Status::NeedMore;
                    case '\n':
                        return end_of_line();
                    case '(':
                        return open(false, used);
                    case ')':
                        return close_list(used);
                    case '"':
                        if (!new_arg(Arg::Kind::String)) return fail("Too many arguments", used);
                        state_ = State::Quoted;
                        return Status::NeedMore;
                    case '{':
                        start_literal(false);
                        return Status::NeedMore;
                    case '~':
                        state_ = State::Tilde;
                        return Status::NeedMore;
                    case ']':
                        if (in_section_) return close_section(used);
                        break;
                    default:
                        break;
                }
                if (!atom_char(c)) return fail("Invalid character: " + describe(c), used);
                if (!new_arg(Arg::Kind::Atom)) return fail("Too many arguments", used);
                cur_->text.push_back(static_cast<char>(c));
                state_ = State::Atom;
                return Status::NeedMore;

            case State::AfterToken:
                switch (c) {
                    case ' ':
                        state_ = State::Sep;
                        return Status::NeedMore;
                    case '\n':
                        return end_of_line();
                    case ')':
                        return close_list(used);
                    case ']':
                        if (in_section_) return close_section(used);
                        return fail("Unexpected ']'", used);
                    default:
                        return fail("Missing space before " + describe(c), used);
                }

            case State::Atom:
                if (c == '[' && sections_ && !in_section_) return open(true, used);
                if (c == ']' && in_section_) {
                    finish_atom();
                    return close_section(used);
                }
                if (atom_char(c)) {
                    cur_->text.push_back(static_cast<char>(c));
                    return Status::NeedMore;
                }
                if (c == ' ' || c == ')' || c == '\n') {
                    finish_atom();
                    state_ = State::AfterToken;
                    continue;
                }
                return fail("Invalid character in atom: " + describe(c), used);

            case State::Suffix:
                if (atom_char(c) && c != '[' && c != ']') {
                    cur_->suffix.push_back(static_cast<char>(c));
                    return Status::NeedMore;
                }
                if (c == ' ' || c == ')' || c == '\n') {
                    state_ = State::AfterToken;
                    continue;
                }
                return fail("Invalid character after ']': " + describe(c), used);

            case State::Tilde:
                if (c == '{') {
                    start_literal(true);
                    return Status::NeedMore;
                }
                if (!new_arg(Arg::Kind::Atom)) return fail("Too many arguments", used);
                cur_->text.push_back('~');
                state_ = State::Atom;
                continue;

            case State::Quoted:
                if (c == '"') {
                    state_ = State::AfterToken;
                    return Status::NeedMore;
                }
                if (c == '\\') {
                    state_ = State::QuotedEscape;
                    return Status::NeedMore;
                }
                if (c == '\n') return fail_eol("Unterminated quoted string");
                if (c == '\r') return fail("Unterminated quoted string", used);
                if (c == 0) return fail("NUL byte in quoted string", used);
                cur_->text.push_back(static_cast<char>(c));
                return Status::NeedMore;

            case State::QuotedEscape:
                if (c == '"' || c == '\\') {
                    cur_->text.push_back(static_cast<char>(c));
                    state_ = State::Quoted;
                    return Status::NeedMore;
                }
                if (c == '\n') return fail_eol("Unterminated quoted string");
                return fail("Invalid escape in quoted string: \\" + describe(c), used);

            case State::LiteralSize:
                if (c >= '0' && c <= '9') {
                    auto d = static_cast<std::uint64_t>(c - '0');
                    if (lit_size_ > (kNoSize - d) / 10)
                        lit_overflow_ = true;
                    else
                        lit_size_ = lit_size_ * 10 + d;
                    ++lit_digits_;
                    return Status::NeedMore;
                }
                if (lit_digits_ > 0 && c == '+') {
                    state_ = State::LiteralPlus;
                    return Status::NeedMore;
                }
                if (lit_digits_ > 0 && c == '}') {
                    lit_sync_ = true;
                    state_ = State::LiteralEnd;
                    return Status::NeedMore;
                }
                if (c == '\n') return fail_eol("Invalid literal announcement");
                return fail("Invalid literal announcement: " + describe(c), used);

            case State::LiteralPlus:
                if (c == '}') {
                    lit_sync_ = false;
                    state_ = State::LiteralEnd;
                    return Status::NeedMore;
                }
                if (c == '\n') return fail_eol("Invalid literal announcement");
                return fail("Invalid literal announcement: " + describe(c), used);

            case State::LiteralEnd:
                if (c == '\n') return announce_literal();
                return fail("Literal announcement must end the line", used);

            case State::Literal:
            case State::Skip:
            case State::SkipLiteral:
            case State::Dead:
                break;  // handled by feed() and step()
        }
        return Status::NeedMore;
    }
}

}  // namespace millipost::imap
