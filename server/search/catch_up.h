// search/catch_up.h: brings a mailbox's full-text index in line with the store before a query.
#pragma once
#include "search/index.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

namespace millipost::search {

// Reads one message's raw octets from the store; std::nullopt when it is gone meanwhile.
using LoadMessage = std::function<std::optional<std::string>(std::uint32_t uid)>;

struct CatchUpStats {
    std::size_t added = 0;
    std::size_t removed = 0;
};

// Makes the indexed UIDs of `mailbox` equal `store_uids` (the mailbox's UIDs now, ascending):
// removes indexed UIDs the store no longer has, then indexes the missing ones (text_fields of
// `load(uid)`), `batch` messages per transaction. Cheap when nothing is missing; rebuilds a
// mailbox from nothing the same way.
CatchUpStats catch_up(FullTextIndex& index, UserId user, MailboxId mailbox,
                      std::span<const std::uint32_t> store_uids, const LoadMessage& load,
                      std::size_t batch = 500);

}  // namespace millipost::search
