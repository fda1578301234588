// proto/line.cpp: incremental CRLF line splitter (see line.h).
#include "proto/line.h"

namespace millipost::proto {

LineParser::Status LineParser::feed(std::string_view in, std::size_t& consumed) {
    if (done_) {
        line_.clear();
        nul_ = false;
        done_ = false;
    }
    consumed = 0;
    while (consumed < in.size()) {
        char c = in[consumed++];
        if (skipping_) {
            if (c == '\n') skipping_ = false;
            continue;
        }
        if (c == '\n') {
            done_ = true;
            if (line_.empty() || line_.back() != '\r') return Status::BareLF;
            line_.pop_back();
            return nul_ ? Status::Nul : Status::Line;
        }
        if (c == '\0') nul_ = true;
        // max_line counts the CRLF, as the RFCs do: max_line-2 octets of text, then CR, then LF.
        if (line_.size() + 1 >= max_line_) {
            line_.clear();
            nul_ = false;
            skipping_ = true;
            return Status::TooLong;
        }
        line_.push_back(c);
    }
    return Status::NeedMore;
}

}  // namespace millipost::proto
