// proto/imap/list.h: LIST and LSUB arguments (RFC 9051 §6.3.9, LIST-EXTENDED RFC 5258,
// LIST-STATUS RFC 5819, SPECIAL-USE RFC 6154).
#pragma once
#include <string>
#include <vector>

#include "proto/imap/args.h"
#include "proto/imap/parsed.h"
#include "proto/imap/parser.h"

namespace millipost::imap {

struct ListArgs {
    bool lsub = false;
    // The LIST-EXTENDED syntax was used (selection options, several patterns or return
    // options): the session answers with extended LIST responses (RFC 5258 §3).
    bool extended = false;

    // Selection options.
    bool select_subscribed = false;
    bool select_remote = false;
    bool select_recursive_match = false;
    bool select_special_use = false;

    std::string reference;              // UTF-8 (decoded from modified UTF-7 for rev1)
    std::vector<std::string> patterns;  // UTF-8, with the wildcards '*' and '%'

    // Return options. SUBSCRIBED selection implies the SUBSCRIBED return option (RFC 5258 §3).
    bool return_subscribed = false;
    bool return_children = false;
    bool return_special_use = false;
    bool return_status = false;            // STATUS (...) given
    std::vector<StatusItem> status_items;  // its items
};

// LIST [SP "(" [select-opt *(SP select-opt)] ")"] SP mailbox SP (list-mailbox /
//      "(" list-mailbox *(SP list-mailbox) ")") [SP "RETURN" SP "(" [return-opt *(...)] ")"];
// LSUB mailbox SP list-mailbox. Unknown options are refused (RFC 5258 §3 lets servers do so),
// as is RECURSIVEMATCH without another selection option (RFC 5258 §3, BAD).
Parsed<ListArgs> parse_list(const Command& cmd, bool utf8);

}  // namespace millipost::imap
