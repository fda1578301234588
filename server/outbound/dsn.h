// outbound/dsn.h: delivery status notifications (RFC 3464 inside RFC 3462 multipart/report) for
// recipients that failed for good, sent back to the (local) sender with a null reverse-path.
#pragma once
#include "outbound/client.h"

#include <cstdint>
#include <span>
#include <string>

namespace millipost::outbound {

struct DsnInput {
    std::string reporting_mta;  // our host name
    std::string queue_id;       // the outbound entry, for the Message-ID and the text
    std::string sender;         // the original envelope sender (the DSN's To:)
    std::int64_t arrival = 0;   // when the message was queued (seconds since the epoch)
    std::int64_t now = 0;
    std::span<const RcptResult> failed;  // Bounced (or Deferred past the queue lifetime)
    std::string_view original;           // the message, whose header section is quoted
};

// The whole DSN message, CRLF line ends, headers starting with Return-Path: <>.
std::string make_dsn(const DsnInput& in);

}  // namespace millipost::outbound
