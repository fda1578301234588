// imap/sort_thread.cpp: SORT and THREAD keys and algorithms (see sort_thread.h).
#include "imap/sort_thread.h"

#include "proto/imap/args.h"
#include "proto/imap/utf8.h"
#include "util/limits.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <unordered_map>

namespace millipost::imap {

std::string fold_case(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        std::size_t start = i;
        char32_t cp = decode_utf8(s, i);
        if (cp == kBadCodePoint) {
            out.push_back(s[start]);
            continue;
        }
        if (cp >= 'A' && cp <= 'Z')
            cp += 32;
        else if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || (cp >= 0x391 && cp <= 0x3AB) ||
                 (cp >= 0x410 && cp <= 0x42F))
            cp += 32;
        else if (cp >= 0x400 && cp <= 0x40F)
            cp += 80;
        else if (cp >= 0x100 && cp <= 0x17F && cp % 2 == 0 && cp != 0x130 && cp != 0x138)
            cp += 1;
        append_utf8(out, cp);
    }
    return out;
}

std::string sort_fold(std::string_view s) {
    std::string out = fold_case(s);
    for (auto& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    return out;
}

namespace {

constexpr std::size_t npos = std::string::npos;

bool starts_with(const std::string& s, std::size_t pos, std::string_view p) {
    return s.compare(pos, p.size(), p) == 0;
}

// subj-blob = "[" *BLOBCHAR "]" *WSP at `pos`: its end, or npos.
std::size_t match_blob(const std::string& s, std::size_t pos) {
    if (pos >= s.size() || s[pos] != '[') return npos;
    std::size_t i = pos + 1;
    while (i < s.size() && s[i] != ']' && s[i] != '[')
        ++i;
    if (i >= s.size() || s[i] != ']') return npos;
    ++i;
    while (i < s.size() && s[i] == ' ')
        ++i;
    return i;
}

// subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" at `pos` (folded text): its end, or
// npos.
std::size_t match_refwd(const std::string& s, std::size_t pos) {
    std::size_t i;
    if (starts_with(s, pos, "re"))
        i = pos + 2;
    else if (starts_with(s, pos, "fwd"))
        i = pos + 3;
    else if (starts_with(s, pos, "fw"))
        i = pos + 2;
    else
        return npos;
    while (i < s.size() && s[i] == ' ')
        ++i;
    if (auto b = match_blob(s, i); b != npos) i = b;
    if (i < s.size() && s[i] == ':') return i + 1;
    return npos;
}

}  // namespace

BaseSubject base_subject(std::string_view decoded) {
    // (1) Folded, every run of whitespace one space.
    std::string s;
    bool space = false;
    for (char c : fold_case(decoded)) {
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            space = true;
            continue;
        }
        if (space && !s.empty()) s += ' ';
        space = false;
        s += c;
    }
    BaseSubject out;
    for (;;) {
        // (2) Trailers: "(fwd)" and whitespace.
        for (;;) {
            if (!s.empty() && s.back() == ' ')
                s.pop_back();
            else if (s.size() >= 5 && s.compare(s.size() - 5, 5, "(fwd)") == 0) {
                s.resize(s.size() - 5);
                out.reply = true;
            } else
                break;
        }
        // (3) Leaders "*subj-blob subj-refwd" and whitespace; (4) a leading subj-blob when text
        // remains after it; repeated until nothing changes.
        for (bool changed = true; changed;) {
            changed = false;
            for (;;) {
                if (!s.empty() && s.front() == ' ') {
                    s.erase(0, 1);
                    changed = true;
                    continue;
                }
                std::size_t p = 0;
                for (std::size_t b; (b = match_blob(s, p)) != npos;)
                    p = b;
                if (auto q = match_refwd(s, p); q != npos) {
                    s.erase(0, q);
                    out.reply = true;
                    changed = true;
                    continue;
                }
                break;
            }
            if (auto b = match_blob(s, 0); b != npos && b < s.size()) {
                s.erase(0, b);
                changed = true;
            }
        }
        // (5) "[fwd: ...]" wrapper: unwrap and start over at (2).
        if (s.size() >= 6 && starts_with(s, 0, "[fwd:") && s.back() == ']') {
            s = s.substr(5, s.size() - 6);
            out.reply = true;
            continue;
        }
        break;
    }
    // Compared in upper case, as Dovecot's i;unicode-casemap does: "C" < "[" < "_".
    for (auto& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    out.text = std::move(s);
    return out;
}

std::optional<std::int64_t> parse_message_date(std::string_view value) {
    // Tokens, with comments and commas dropped.
    std::vector<std::string> tok;
    std::string cur;
    int depth = 0;
    for (char c : value) {
        if (c == '(') {
            ++depth;
            continue;
        }
        if (c == ')' && depth > 0) {
            --depth;
            continue;
        }
        if (depth > 0) continue;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',') {
            if (!cur.empty()) tok.push_back(std::move(cur));
            cur.clear();
            continue;
        }
        cur += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (!cur.empty()) tok.push_back(std::move(cur));
    std::size_t i = 0;
    auto digits = [](const std::string& t) {
        return !t.empty() && t.size() <= 4 &&
               std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (i < tok.size() && !digits(tok[i])) ++i;  // day of week
    if (i + 2 >= tok.size() || !digits(tok[i]) || !digits(tok[i + 2])) return std::nullopt;
    int day = std::stoi(tok[i]);
    static constexpr std::string_view kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                   "jul", "aug", "sep", "oct", "nov", "dec"};
    int month = 0;
    for (int m = 0; m < 12; ++m)
        if (tok[i + 1].substr(0, 3) == kMonths[m]) month = m + 1;
    int year = std::stoi(tok[i + 2]);
    if (tok[i + 2].size() <= 2)
        year += year < 50 ? 2000 : 1900;
    else if (tok[i + 2].size() == 3)
        year += 1900;
    if (month == 0 || day < 1 || day > 31) return std::nullopt;
    i += 3;
    int h = 0, m = 0, sec = 0;
    if (i < tok.size()) {
        char colon1 = 0, colon2 = 0;
        int n = std::sscanf(tok[i].c_str(), "%2d%c%2d%c%2d", &h, &colon1, &m, &colon2, &sec);
        if (n < 3 || colon1 != ':' || (n == 5 && colon2 != ':')) return std::nullopt;
        if (n < 5) sec = 0;
        if (h > 23 || m > 59 || sec > 60) return std::nullopt;
        ++i;
    }
    int zone = 0;  // minutes east of UTC
    if (i < tok.size()) {
        const std::string& z = tok[i];
        if ((z[0] == '+' || z[0] == '-') && z.size() == 5 && digits(z.substr(1))) {
            int v = std::stoi(z.substr(1));
            zone = (v / 100) * 60 + v % 100;
            if (z[0] == '-') zone = -zone;
        } else {
            static constexpr std::pair<std::string_view, int> kZones[] = {
                {"est", -5}, {"edt", -4}, {"cst", -6}, {"cdt", -5},
                {"mst", -7}, {"mdt", -6}, {"pst", -8}, {"pdt", -7}};
            for (auto& [name, hours] : kZones)
                if (z == name) zone = hours * 60;  // UT, GMT, Z and military zones count as 0
        }
    }
    return epoch_from_civil(year, month, day, h, m, sec) - std::int64_t{zone} * 60;
}

std::vector<std::string> message_ids(std::string_view value) {
    std::vector<std::string> ids;
    std::size_t pos = 0;
    while ((pos = value.find('<', pos)) != std::string_view::npos) {
        auto end = value.find('>', pos + 1);
        if (end == std::string_view::npos) break;
        std::string id;
        for (char c : value.substr(pos, end - pos + 1))
            if (c != ' ' && c != '\t' && c != '\r' && c != '\n') id += c;
        if (id.size() > 2 && id.find('<', 1) == std::string::npos) ids.push_back(std::move(id));
        pos = end + 1;
    }
    return ids;
}

namespace {

bool earlier(const ThreadMessage& a, const ThreadMessage& b) {
    return a.date != b.date ? a.date < b.date : a.seq < b.seq;
}

}  // namespace

std::vector<ThreadNode> thread_orderedsubject(const std::vector<ThreadMessage>& messages) {
    std::vector<const ThreadMessage*> order;
    for (auto& m : messages)
        order.push_back(&m);
    std::sort(order.begin(), order.end(), [](const ThreadMessage* a, const ThreadMessage* b) {
        if (a->subject.text != b->subject.text) return a->subject.text < b->subject.text;
        return earlier(*a, *b);
    });
    std::vector<std::pair<const ThreadMessage*, ThreadNode>> threads;
    for (std::size_t i = 0; i < order.size();) {
        std::size_t j = i + 1;
        ThreadNode root{order[i]->id, {}};
        for (; j < order.size() && order[j]->subject.text == order[i]->subject.text; ++j)
            root.children.push_back(ThreadNode{order[j]->id, {}});
        threads.emplace_back(order[i], std::move(root));
        i = j;
    }
    std::stable_sort(threads.begin(), threads.end(),
                     [](const auto& a, const auto& b) { return earlier(*a.first, *b.first); });
    std::vector<ThreadNode> out;
    for (auto& t : threads)
        out.push_back(std::move(t.second));
    return out;
}

std::vector<ThreadNode> thread_references(const std::vector<ThreadMessage>& messages) {
    // (1) Containers linked by the message ids; msg -1 is a dummy.
    struct Container {
        int msg = -1;
        int parent = -1;
        std::vector<int> children;
    };
    std::vector<Container> cs;
    std::unordered_map<std::string, int> by_id;
    auto get = [&](const std::string& id) {
        auto [it, added] = by_id.try_emplace(id, static_cast<int>(cs.size()));
        if (added) cs.emplace_back();
        return it->second;
    };
    auto reaches = [&](int ancestor, int node) {  // ancestor is node or one of its parents
        for (int x = node; x != -1; x = cs[x].parent)
            if (x == ancestor) return true;
        return false;
    };
    auto unlink = [&](int child) {
        int p = cs[child].parent;
        if (p == -1) return;
        auto& v = cs[p].children;
        v.erase(std::find(v.begin(), v.end(), child));
        cs[child].parent = -1;
    };
    auto link = [&](int parent, int child) {
        cs[child].parent = parent;
        cs[parent].children.push_back(child);
    };
    std::vector<int> order(messages.size());
    for (std::size_t i = 0; i < order.size(); ++i)
        order[i] = static_cast<int>(i);
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return messages[a].seq < messages[b].seq; });
    for (int mi : order) {
        const ThreadMessage& m = messages[mi];
        const auto& refs = m.references;
        for (std::size_t i = 0; i + 1 < refs.size(); ++i) {
            int p = get(refs[i]), c = get(refs[i + 1]);
            if (cs[c].parent == -1 && !reaches(c, p)) link(p, c);
        }
        int me;
        if (!m.message_id.empty() &&
            (!by_id.count(m.message_id) || cs[get(m.message_id)].msg == -1)) {
            me = get(m.message_id);
        } else {  // no or a duplicate Message-ID: a container of its own
            me = static_cast<int>(cs.size());
            cs.emplace_back();
        }
        cs[me].msg = mi;
        unlink(me);
        if (!refs.empty()) {
            int p = get(refs.back());
            if (!reaches(me, p)) link(p, me);
        }
    }

    // (2)-(3) The root set, dummies pruned, as a tree of nodes (msg -1 is a dummy).
    struct Node {
        int msg = -1;
        std::vector<Node> children;
    };
    std::function<std::vector<Node>(const std::vector<int>&, bool)> build =
        [&](const std::vector<int>& ids, bool root) {
            std::vector<Node> level;
            for (int id : ids) {
                Node n{cs[id].msg, build(cs[id].children, false)};
                if (n.msg != -1) {
                    level.push_back(std::move(n));
                } else if (n.children.empty()) {
                    // dropped
                } else if (!root || n.children.size() == 1) {
                    for (auto& c : n.children)
                        level.push_back(std::move(c));
                } else {
                    level.push_back(std::move(n));
                }
            }
            return level;
        };
    std::vector<int> root_ids;
    for (std::size_t i = 0; i < cs.size(); ++i)
        if (cs[i].parent == -1) root_ids.push_back(static_cast<int>(i));
    // Containers deeper than kMaxThreadDepth become roots (breadth first, without recursion).
    {
        std::vector<std::pair<int, std::size_t>> queue;
        for (int r : root_ids)
            queue.emplace_back(r, 0);
        for (std::size_t q = 0; q < queue.size(); ++q) {
            auto [id, depth] = queue[q];
            std::vector<int> kids = cs[id].children;
            for (int c : kids) {
                if (depth + 1 >= limits::kMaxThreadDepth) {
                    unlink(c);
                    root_ids.push_back(c);
                    queue.emplace_back(c, 0);
                } else {
                    queue.emplace_back(c, depth + 1);
                }
            }
        }
    }
    std::vector<Node> roots = build(root_ids, true);

    // A node's representative message: its own, or a dummy's first child's (children sorted).
    std::function<const ThreadMessage&(const Node&)> rep =
        [&](const Node& n) -> const ThreadMessage& {
        return n.msg != -1 ? messages[n.msg] : rep(n.children.front());
    };
    std::function<void(std::vector<Node>&)> sort_tree = [&](std::vector<Node>& level) {
        for (auto& n : level)
            sort_tree(n.children);
        std::stable_sort(level.begin(), level.end(),
                         [&](const Node& a, const Node& b) { return earlier(rep(a), rep(b)); });
    };
    // (4) Sort.
    sort_tree(roots);

    // (5) Threads with the same base subject gathered.
    std::unordered_map<std::string, std::size_t> table;  // base subject -> root index
    for (std::size_t i = 0; i < roots.size(); ++i) {
        const BaseSubject& subj = rep(roots[i]).subject;
        if (subj.text.empty()) continue;
        auto [it, added] = table.try_emplace(subj.text, i);
        if (added) continue;
        const Node& old = roots[it->second];
        if ((roots[i].msg == -1 && old.msg != -1) ||
            (old.msg != -1 && rep(old).subject.reply && !subj.reply && roots[i].msg != -1))
            it->second = i;
    }
    std::vector<bool> gone(roots.size(), false);
    for (std::size_t i = 0; i < roots.size(); ++i) {
        const BaseSubject& subj = rep(roots[i]).subject;
        if (subj.text.empty()) continue;
        std::size_t t = table[subj.text];
        if (t == i || gone[i]) continue;
        Node& cur = roots[i];
        Node& tab = roots[t];
        if (cur.msg == -1 && tab.msg == -1) {
            for (auto& c : cur.children)
                tab.children.push_back(std::move(c));
        } else if (tab.msg == -1) {
            tab.children.push_back(std::move(cur));
        } else if (cur.msg == -1) {
            cur.children.push_back(std::move(tab));
            tab = std::move(cur);
        } else if (!rep(tab).subject.reply && subj.reply) {
            tab.children.push_back(std::move(cur));
        } else {
            Node dummy;
            dummy.children.push_back(std::move(tab));
            dummy.children.push_back(std::move(cur));
            tab = std::move(dummy);
        }
        gone[i] = true;
    }
    std::vector<Node> merged;
    for (std::size_t i = 0; i < roots.size(); ++i)
        if (!gone[i]) merged.push_back(std::move(roots[i]));

    // (6) Siblings sorted again, then converted.
    sort_tree(merged);
    std::function<ThreadNode(const Node&)> convert = [&](const Node& n) {
        ThreadNode t{n.msg == -1 ? 0 : messages[n.msg].id, {}};
        for (auto& c : n.children)
            t.children.push_back(convert(c));
        return t;
    };
    std::vector<ThreadNode> out;
    for (auto& n : merged)
        out.push_back(convert(n));
    return out;
}

namespace {

void render(const ThreadNode& n, std::string& out) {
    if (n.id) out += std::to_string(n.id);
    if (n.children.empty()) return;
    if (n.id) out += ' ';
    if (n.children.size() == 1) {
        render(n.children.front(), out);
        return;
    }
    for (auto& c : n.children) {
        out += '(';
        render(c, out);
        out += ')';
    }
}

}  // namespace

std::string render_threads(const std::vector<ThreadNode>& roots) {
    std::string out;
    for (auto& r : roots) {
        out += '(';
        render(r, out);
        out += ')';
    }
    return out;
}

}  // namespace millipost::imap
