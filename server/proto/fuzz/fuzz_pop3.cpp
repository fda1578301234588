// proto/fuzz/fuzz_pop3.cpp: fuzz target for POP3 command parsing and the multi-line writer.
// Invariant: the writer's output is a well-formed multi-line block whatever the message bytes.
#include "proto/pop3/parser.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto cmd = millipost::pop3::parse_command(in.substr(0, 512));
    for (auto& a : cmd.args)
        millipost::pop3::parse_number(a);

    std::string out;
    millipost::pop3::append_multiline(out, in, size % 3 == 0 ? -1 : static_cast<long>(size % 5));
    // Ends with the terminator; every line ends in CRLF; no line but the last is a lone ".".
    if (out.size() < 3 || out.compare(out.size() - 3, 3, ".\r\n") != 0) std::abort();
    std::size_t pos = 0;
    while (pos < out.size()) {
        auto nl = out.find("\r\n", pos);
        if (nl == std::string::npos) std::abort();
        std::string_view line(out.data() + pos, nl - pos);
        if (line.find('\n') != std::string_view::npos) std::abort();
        bool last = nl + 2 == out.size();
        if (line == "." && !last) std::abort();
        pos = nl + 2;
    }
    return 0;
}
