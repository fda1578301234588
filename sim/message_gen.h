// sim/message_gen.h: realistic RFC 5322/MIME messages generated from (seed, index) alone, so the
// simulator and its oracle can regenerate any message's exact bytes without storing them.
//
// Shape of the mail (all draws from derive(seed, index, field), see population.h):
// - Text body: lognormal octets, median 1,500, sigma 1.0 (p90 ~5.4 kB, p99 ~15 kB), capped at
//   200 kB; words from several scripts (Latin with diacritics, Cyrillic, Greek, CJK, Arabic,
//   or plain ASCII English), UTF-8, sent 7bit when ASCII, else quoted-printable or 8bit.
// - 55% text/plain; 35% multipart/alternative (text + an HTML rendering of it); 10% with
//   1-3 attachments in multipart/mixed (the text part plain or alternative).
// - Attachment octets (before base64): Pareto, x_m = 24 kB, alpha = 1.16 (median ~44 kB, p90
//   ~175 kB), 15 MB at most for all of a message's attachments; application/pdf or image/png
//   with the real magic numbers, then incompressible filler.
// - Headers: Date, From and To with display names (RFC 2047 encoded-words when non-ASCII),
//   Subject (encoded-words, B or Q), Message-ID, In-Reply-To and References when a parent is
//   given (with "Re: "), MIME-Version, X-Millipost-Id.
// Resulting message_size() over 100,000 indices (seed 42; message_gen_test asserts bounds):
// p10 1.1 kB, p50 3.3 kB, p90 40 kB, p99 450 kB, p99.9 2.8 MB, max 21.5 MB; mean ~30 kB.
// Generation runs at ~800 MB/s (~28,000 messages/s) on one core of the 2-core dev machine.
// Every line ends in CRLF and is at most 998 octets (RFC 5322 §2.1.1).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace millipost::sim {

// A profile's own distribution (docs/load.md, "[message]"), in place of the model above. Sizes:
// with probability tail_fraction a Pareto draw (x_m = size_median, index tail_alpha), else a
// lognormal one of median size_median (sigma 1), capped at size_max; the text carries it (HTML
// is twice the text in multipart/alternative), or the attachments when there are some.
// Structure: multipart/alternative, attachments (1-3, application/pdf or image/png) and non-ASCII
// text (a script other than English) each with its own probability. Replies are the caller's
// (MessageSpec::in_reply_to). Every draw still derives from (seed, index) alone.
struct MessageShape {
    double size_median = 6000;
    double tail_fraction = 0.05, tail_alpha = 1.2;
    std::size_t size_max = 10'000'000;
    double multipart_fraction = 0.5, attachment_fraction = 0.1, non_ascii_fraction = 0.3;
};

struct MessageSpec {
    std::uint64_t seed = 0;
    std::uint64_t index = 0;
    std::string from, to;  // addresses ("user1@localhost"), or "Name <address>" kept as written
    std::optional<std::string> in_reply_to;  // Message-ID of the parent, with or without <>
    std::optional<MessageShape> shape;       // none: the built-in model described above
};

struct GeneratedMessage {
    std::string bytes;       // CRLF lines, RFC 5322
    std::string id;          // the X-Millipost-Id value, unique per (seed, index)
    std::string message_id;  // the Message-ID value, with the angle brackets
    std::size_t size() const { return bytes.size(); }
};

// Deterministic: the same spec gives the same bytes.
GeneratedMessage generate_message(const MessageSpec& spec);

// The planned size of message (seed, index) without generating it: the heavy-tailed draw the
// generator follows. The generated message is within a few hundred octets of headers of it
// (the addresses and parent are not part of the plan).
std::size_t message_size(std::uint64_t seed, std::uint64_t index);
std::size_t message_size(std::uint64_t seed, std::uint64_t index, const MessageShape& shape);

// The X-Millipost-Id of (seed, index): "<seed hex>.<index hex>", unique and reversible.
std::string message_uid(std::uint64_t seed, std::uint64_t index);
// The Message-ID of (seed, index), angle brackets included (to reply to it without generating it).
std::string message_id(std::uint64_t seed, std::uint64_t index);

}  // namespace millipost::sim
