// search/text_fields.h: a raw message turned into the search fields of the full-text index.
#pragma once
#include "search/index.h"

#include <string_view>

namespace millipost::search {

// Parses `raw` (RFC 5322 octets) with the mime library: Subject, From, To, Cc and Bcc are the
// RFC 2047 decoded values of every top-level field of that name, one per line; `header` has every
// top-level field as a decoded "Name: value" line; `body` the text of the text parts (and the
// headers of encapsulated messages), as mime::extract_text gives them. Never throws on bad mail.
Fields text_fields(std::string_view raw);

}  // namespace millipost::search
