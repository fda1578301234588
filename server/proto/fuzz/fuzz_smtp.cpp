// proto/fuzz/fuzz_smtp.cpp: fuzz target for the SMTP line splitter, command parser and DATA
// reader. Invariants: progress on every call, bounded memory, the same result at any split.
#include "proto/line.h"
#include "proto/smtp/parser.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {
void check(bool ok) {
    if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    // First byte picks a split step so that the same bytes are also fed in pieces.
    std::size_t step = 1 + data[0] % 17;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

    millipost::proto::LineParser lines(64);
    std::string_view rest = in;
    while (!rest.empty()) {
        std::size_t used = 0;
        auto st = lines.feed(rest.substr(0, step), used);
        check(used <= step && (used > 0 || st != millipost::proto::LineParser::Status::NeedMore));
        check(lines.pending() < 64);
        if (st == millipost::proto::LineParser::Status::Line) {
            auto r = millipost::smtp::parse_command(lines.line());
            check(r.command.has_value() != (r.error.code != 0));
        }
        rest.remove_prefix(used);
    }

    // DATA: whole versus split must agree.
    millipost::smtp::DataReader whole(1024), split(1024);
    std::string a, b;
    std::size_t used_whole = 0;
    bool done_whole = whole.feed(in, used_whole, a) == millipost::smtp::DataReader::Status::Done;
    bool done_split = false;
    std::size_t total = 0;
    for (std::size_t pos = 0; pos < in.size() && !done_split; pos += step) {
        std::size_t used = 0;
        auto piece = in.substr(pos, step);
        done_split = split.feed(piece, used, b) == millipost::smtp::DataReader::Status::Done;
        total += used;
    }
    check(done_whole == done_split);
    check(a == b);
    check(a.size() <= 1024);
    if (done_whole) check(used_whole == total);
    return 0;
}
