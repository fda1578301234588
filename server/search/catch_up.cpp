// search/catch_up.cpp: index catch-up against the store's UIDs (see catch_up.h).
#include "search/catch_up.h"

#include "search/text_fields.h"

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>

namespace millipost::search {

CatchUpStats catch_up(FullTextIndex& index, UserId user, MailboxId mailbox,
                      std::span<const std::uint32_t> store_uids, const LoadMessage& load,
                      std::size_t batch) {
    CatchUpStats stats;
    const std::vector<std::uint32_t> indexed = index.indexed_uids(user, mailbox);
    std::vector<std::uint32_t> stale, missing;
    std::set_difference(indexed.begin(), indexed.end(), store_uids.begin(), store_uids.end(),
                        std::back_inserter(stale));
    std::set_difference(store_uids.begin(), store_uids.end(), indexed.begin(), indexed.end(),
                        std::back_inserter(missing));
    if (!stale.empty()) {
        index.remove(user, mailbox, stale);
        stats.removed = stale.size();
    }
    std::vector<Document> docs;
    auto flush = [&] {
        if (docs.empty()) return;
        index.add(user, mailbox, docs);
        stats.added += docs.size();
        docs.clear();
    };
    for (std::uint32_t uid : missing) {
        std::optional<std::string> raw = load(uid);
        if (!raw) continue;
        docs.push_back(Document{uid, text_fields(*raw)});
        if (docs.size() >= std::max<std::size_t>(batch, 1)) flush();
    }
    flush();
    return stats;
}

}  // namespace millipost::search
