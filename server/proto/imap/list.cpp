// proto/imap/list.cpp: LIST/LSUB argument interpreter (see list.h).
#include "proto/imap/list.h"

namespace millipost::imap {
namespace {

// list-mailbox = 1*list-char / string: an atom (which the parser lets carry '%' and '*') or a
// string, decoded like a mailbox name but without the INBOX rule. A pattern that does not
// decode (rev1 "&Jjo", not modified UTF-7) is kept as sent: it matches no mailbox and LIST
// answers OK with nothing, as imaptest's atoms group expects, rather than BAD.
Parsed<std::string> pattern(const Arg& a, bool utf8) {
    auto s = astring(a);
    if (!s) return bad("Expected a mailbox pattern");
    auto d = decode_mailbox(*s, utf8);
    if (!d && !d.error().code.empty()) return std::string(*s);
    return d;
}

}  // namespace

Parsed<ListArgs> parse_list(const Command& cmd, bool utf8) {
    const auto& args = cmd.args;
    ListArgs out;
    out.lsub = cmd.name == "LSUB";
    std::size_t i = 0;
    if (!out.lsub && i < args.size() && args[i].is_list()) {
        out.extended = true;
        for (auto& o : args[i].items) {
            std::string opt = upper_atom(o);
            if (opt == "SUBSCRIBED")
                out.select_subscribed = out.return_subscribed = true;
            else if (opt == "REMOTE")
                out.select_remote = true;
            else if (opt == "RECURSIVEMATCH")
                out.select_recursive_match = true;
            else if (opt == "SPECIAL-USE")
                out.select_special_use = true;
            else
                return bad("Unknown LIST selection option '" + o.text.substr(0, 64) + "'");
        }
        if (out.select_recursive_match && !out.select_subscribed && !out.select_special_use)
            return bad("RECURSIVEMATCH needs another selection option");
        ++i;
    }
    if (i + 2 > args.size())
        return bad(out.lsub ? "Syntax: LSUB reference pattern" : "Syntax: LIST reference pattern");
    auto ref = astring(args[i]);
    if (!ref) return bad("Expected a reference name");
    auto decoded = decode_mailbox(*ref, utf8);
    if (!decoded) return decoded.error();
    out.reference = std::move(*decoded);
    ++i;
    if (!out.lsub && args[i].is_list()) {
        out.extended = true;
        if (args[i].items.empty()) return bad("Empty list of mailbox patterns");
        for (auto& p : args[i].items) {
            auto pat = pattern(p, utf8);
            if (!pat && pat.error().code == kInvalidMailboxNameCode) continue;  // matches nothing
            if (!pat) return pat.error();
            out.patterns.push_back(std::move(*pat));
        }
    } else {
        auto pat = pattern(args[i], utf8);
        // A pattern that is not valid modified UTF-7 matches no mailbox: LIST answers OK with
        // nothing (as Dovecot does; imaptest's `atoms` script expects it).
        if (!pat && pat.error().code != kInvalidMailboxNameCode) return pat.error();
        if (pat) out.patterns.push_back(std::move(*pat));
    }
    ++i;
    if (i == args.size()) return out;
    if (out.lsub || upper_atom(args[i]) != "RETURN" || i + 2 != args.size() ||
        !args[i + 1].is_list())
        return bad("Unexpected arguments after the mailbox pattern");
    out.extended = true;
    const auto& opts = args[i + 1].items;
    for (std::size_t k = 0; k < opts.size(); ++k) {
        std::string opt = upper_atom(opts[k]);
        if (opt == "SUBSCRIBED") {
            out.return_subscribed = true;
        } else if (opt == "CHILDREN") {
            out.return_children = true;
        } else if (opt == "SPECIAL-USE") {
            out.return_special_use = true;
        } else if (opt == "STATUS") {
            if (out.return_status) return bad("STATUS given twice");
            if (k + 1 >= opts.size()) return bad("STATUS needs a list of status items");
            auto items = parse_status_items(opts[++k]);
            if (!items) return items.error();
            out.return_status = true;
            out.status_items = std::move(*items);
        } else {
            return bad("Unknown LIST return option '" + opts[k].text.substr(0, 64) + "'");
        }
    }
    return out;
}

}  // namespace millipost::imap
