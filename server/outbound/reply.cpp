// outbound/reply.cpp: SMTP reply parsing, EHLO keywords, retry schedule, dot-stuffing.
#include "outbound/reply.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace millipost::outbound {

std::string Reply::summary() const {
    std::string s = std::to_string(code);
    if (!lines.empty() && !lines.front().empty()) s += " " + lines.front();
    return s;
}

void ReplyParser::reset() {
    partial_.clear();
    reply_ = {};
    error_.clear();
    done_ = false;
}

ReplyParser::Status ReplyParser::feed(std::string_view in, std::size_t& used) {
    used = 0;
    if (done_) reset();
    while (used < in.size()) {
        auto nl = in.find('\n', used);
        auto end = nl == std::string_view::npos ? in.size() : nl;
        // Bounded before it is buffered: a server cannot grow partial_ past one line.
        if (partial_.size() + (end - used) > max_line_) {
            used = in.size();
            error_ = "reply line too long";
            return Status::Bad;
        }
        partial_.append(in.substr(used, end - used));
        if (nl == std::string_view::npos) {
            used = in.size();
            return Status::NeedMore;
        }
        used = nl + 1;
        std::string l = std::move(partial_);
        partial_.clear();
        if (!l.empty() && l.back() == '\r') l.pop_back();
        auto st = line(l);
        if (st != Status::NeedMore) {
            done_ = st == Status::Done;
            return st;
        }
    }
    return Status::NeedMore;
}

ReplyParser::Status ReplyParser::line(std::string_view l) {
    if (l.size() < 3 || !std::all_of(l.begin(), l.begin() + 3, [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
        })) {
        error_ = "malformed reply line";
        return Status::Bad;
    }
    int code = 0;
    std::from_chars(l.data(), l.data() + 3, code);
    if (code < 200 || code > 599) {
        error_ = "reply code out of range";
        return Status::Bad;
    }
    if (reply_.lines.empty())
        reply_.code = code;
    else if (code != reply_.code) {
        error_ = "reply codes differ within one reply";
        return Status::Bad;
    }
    bool more = l.size() > 3 && l[3] == '-';
    if (l.size() > 3 && l[3] != '-' && l[3] != ' ') {
        error_ = "malformed reply line";
        return Status::Bad;
    }
    if (reply_.lines.size() >= max_lines_) {
        error_ = "too many reply lines";
        return Status::Bad;
    }
    reply_.lines.emplace_back(l.size() > 4 ? l.substr(4) : std::string_view());
    return more ? Status::NeedMore : Status::Done;
}

Extensions parse_ehlo(const Reply& r) {
    Extensions e;
    for (std::size_t i = 1; i < r.lines.size(); ++i) {
        std::string l = r.lines[i];
        std::transform(l.begin(), l.end(), l.begin(),
                       [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        std::string_view v(l);
        auto sp = v.find(' ');
        auto word = v.substr(0, sp);
        auto rest = sp == std::string_view::npos ? std::string_view() : v.substr(sp + 1);
        if (word == "STARTTLS")
            e.starttls = true;
        else if (word == "8BITMIME")
            e.eightbitmime = true;
        else if (word == "SIZE") {
            e.size = true;
            std::uint64_t n = 0;
            auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
            if (ec == std::errc() && p == rest.data() + rest.size()) e.max_size = n;
        } else if (word == "AUTH") {
            // "AUTH PLAIN LOGIN": the mechanisms, space-separated.
            while (!rest.empty()) {
                auto s2 = rest.find(' ');
                if (rest.substr(0, s2) == "PLAIN") e.auth_plain = true;
                rest = s2 == std::string_view::npos ? std::string_view() : rest.substr(s2 + 1);
            }
        }
    }
    return e;
}

std::chrono::seconds retry_delay(int attempts, std::chrono::seconds min, std::chrono::seconds max) {
    auto d = min;
    for (int i = 1; i < attempts && d < max; ++i)
        d *= 2;
    return std::min(d, max);
}

std::string dot_stuff(std::string_view message) {
    std::string out;
    out.reserve(message.size() + message.size() / 64 + 8);
    bool line_start = true;
    for (char c : message) {
        if (line_start && c == '.') out += '.';
        out += c;
        line_start = c == '\n';
    }
    if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
    out += ".\r\n";
    return out;
}

}  // namespace millipost::outbound
