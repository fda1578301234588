// proto/imap/fuzz_imap.cpp: fuzz target for the IMAP command parser and the interpreters run on
// what it produces. Invariants: progress on every feed, bounded memory, the same events at the
// same offsets whether the input comes whole or in pieces, interpreters never crash, and a
// mailbox name that decodes re-encodes to a name that decodes the same.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "proto/imap/args.h"
#include "proto/imap/fetch.h"
#include "proto/imap/list.h"
#include "proto/imap/mutf7.h"
#include "proto/imap/parser.h"
#include "proto/imap/search.h"
#include "proto/imap/writer.h"

using namespace millipost::imap;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

struct Event {
    Parser::Status status;
    std::size_t offset;
    Command cmd;
    ParseError err;
    bool operator==(const Event&) const = default;
};

// Small limits so that short inputs reach every one of them.
Limits fuzz_limits() {
    Limits l;
    l.max_line = 256;
    l.max_literal = 512;
    l.max_command_literals = 1024;
    l.max_depth = 8;
    l.max_args = 64;
    l.max_nonsync_literal = 128;
    l.max_skip_literal = 2048;
    return l;
}

void interpret(const Command& c) {
    for (bool utf8 : {false, true}) {
        (void)parse_list(c, utf8);
        (void)parse_status(c, utf8);
        (void)parse_append(c, utf8);
        (void)parse_create(c, utf8);
    }
    (void)parse_fetch(c);
    (void)parse_search(c);
    (void)parse_store(c);
    for (auto& a : c.args) {
        (void)parse_sequence_set(a);
        (void)parse_date(a);
        (void)parse_flag_list(a, FlagContext::PermanentFlags);
        if (auto s = astring(a)) {
            (void)parse_date_time(*s);
            // A URL that parses names a message: a UID, and a mailbox that is a valid name.
            if (auto u = parse_imap_url(*s)) check(u->uid != 0 && !u->mailbox.empty());
            if (auto m = mutf7_decode(*s)) {
                auto again = mutf7_encode(*m);
                check(again.has_value());
                check(mutf7_decode(*again) == *m);
            }
            std::string out;
            write_astring(out, *s, true);
            write_mailbox(out, *s, false);
        }
    }
}

std::vector<Event> run(std::string_view in, std::size_t step, bool with_interpreters) {
    Parser p(fuzz_limits());
    const Limits l = fuzz_limits();
    std::vector<Event> out;
    std::size_t pos = 0;
    int idle = 0;  // events in a row that consumed nothing
    while (pos < in.size()) {
        std::string_view piece = in.substr(pos, step);
        std::size_t used = 0;
        auto st = p.feed(piece, used);
        check(used <= piece.size());
        check(used > 0 || st != Parser::Status::NeedMore);
        check(p.buffered() <= l.max_line + l.max_command_literals);
        pos += used;
        if (st == Parser::Status::NeedMore) {
            check(used == piece.size());
            idle = 0;
            continue;
        }
        idle = used == 0 ? idle + 1 : 0;
        check(idle <= 2);  // an event may consume nothing, but then the next one must move on
        Event e{st, pos, {}, {}};
        if (st == Parser::Status::Command) {
            e.cmd = p.command();
            check(!e.cmd.tag.empty() && !e.cmd.name.empty());
            if (with_interpreters) interpret(e.cmd);
        } else if (st != Parser::Status::NeedContinuation) {
            e.err = p.error();
            if (e.err.fatal) {
                out.push_back(std::move(e));
                break;
            }
        }
        out.push_back(std::move(e));
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::size_t step = 1 + data[0] % 23;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
    auto whole = run(in, in.size() + 1, true);
    auto split = run(in, step, false);
    check(whole == split);
    return 0;
}
