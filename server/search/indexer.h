// search/indexer.h: keeps the full-text index up to date as mail arrives. A background thread
// indexes the messages of each store "Appended" event, so that the first SEARCH of a mailbox
// does not pay for indexing it (IMAP SEARCH still catches up itself when the index lags, e.g.
// for mail stored before the index existed or when this queue overflowed).
#pragma once
#include "search/index.h"
#include "store/mail_store.h"

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace millipost::search {

class BackgroundIndexer {
  public:
    BackgroundIndexer(store::MailStore& store, FullTextIndex& index);
    ~BackgroundIndexer();  // finishes the mailbox at hand; the rest is left to SEARCH
    BackgroundIndexer(const BackgroundIndexer&) = delete;
    BackgroundIndexer& operator=(const BackgroundIndexer&) = delete;

    // Waits until everything queued so far is indexed (tests, benchmarks).
    void drain();
    std::uint64_t indexed() const;

  private:
    using Key = std::pair<store::UserId, store::MailboxId>;
    void on_event(const store::Event& e);
    void run();
    void index_mailbox(const Key& key, std::vector<std::uint32_t> uids, bool full);

    store::MailStore& store_;
    FullTextIndex& index_;
    mutable std::mutex mutex_;
    std::condition_variable wake_, idle_;
    std::map<Key, std::set<std::uint32_t>> pending_;
    std::set<Key> full_;  // overflowed: compare the whole mailbox with the store
    std::size_t queued_ = 0;
    bool busy_ = false;
    bool stop_ = false;
    std::uint64_t indexed_ = 0;
    store::MailStore::Subscription subscription_;
    std::thread thread_;
};

}  // namespace millipost::search
