// search/indexer.cpp: the background indexer (see indexer.h).
#include "search/indexer.h"

#include "search/catch_up.h"
#include "search/text_fields.h"
#include "util/limits.h"

#include <spdlog/spdlog.h>

namespace millipost::search {

BackgroundIndexer::BackgroundIndexer(store::MailStore& store, FullTextIndex& index)
    : store_(store), index_(index) {
    thread_ = std::thread([this] { run(); });
    subscription_ = store_.subscribe_all([this](const store::Event& e) { on_event(e); });
}

BackgroundIndexer::~BackgroundIndexer() {
    subscription_.reset();  // no new work
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void BackgroundIndexer::on_event(const store::Event& e) {
    if (e.kind != store::Event::Kind::Appended || e.uids.empty()) return;
    {
        std::lock_guard lock(mutex_);
        Key key{e.user, e.mailbox};
        if (queued_ + e.uids.size() > limits::kIndexQueue) {
            // Too far behind: remember the mailbox only, and compare it with the store later.
            full_.insert(key);
        } else {
            auto& set = pending_[key];
            for (auto uid : e.uids)
                queued_ += set.insert(uid).second ? 1 : 0;
        }
    }
    wake_.notify_one();
}

void BackgroundIndexer::drain() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [this] { return pending_.empty() && full_.empty() && !busy_; });
}

std::uint64_t BackgroundIndexer::indexed() const {
    std::lock_guard lock(mutex_);
    return indexed_;
}

void BackgroundIndexer::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stop_ || !pending_.empty() || !full_.empty(); });
        if (stop_) {
            // What is still queued is left to SEARCH's own catch-up: shutdown stays quick.
            pending_.clear();
            full_.clear();
            idle_.notify_all();
            return;
        }
        Key key;
        std::vector<std::uint32_t> uids;
        bool full = false;
        if (!full_.empty()) {
            key = *full_.begin();
            full_.erase(full_.begin());
            full = true;
            if (auto it = pending_.find(key); it != pending_.end()) {
                queued_ -= it->second.size();
                pending_.erase(it);
            }
        } else {
            auto it = pending_.begin();
            key = it->first;
            uids.assign(it->second.begin(), it->second.end());
            queued_ -= uids.size();
            pending_.erase(it);
        }
        busy_ = true;
        lock.unlock();
        try {
            index_mailbox(key, std::move(uids), full);
        } catch (const std::exception& e) {
            // Derived data: SEARCH catches up (or scans) by itself.
            spdlog::warn("full-text indexing of mailbox {} failed: {}", key.second, e.what());
        }
        lock.lock();
        busy_ = false;
        if (pending_.empty() && full_.empty()) idle_.notify_all();
    }
}

void BackgroundIndexer::index_mailbox(const Key& key, std::vector<std::uint32_t> uids, bool full) {
    auto [user, mb] = key;
    auto load = [this, user, mb](std::uint32_t uid) -> std::optional<std::string> {
        try {
            return store_.read_message(user, mb, uid);
        } catch (const store::StoreError&) {
            return std::nullopt;  // expunged meanwhile
        }
    };
    // SEARCH trusts an index whose highest UID reaches the session's newest message to hold
    // every message below it. Adding new UIDs keeps that true only when they follow the highest
    // indexed one; otherwise (a new index, lost events) compare the whole mailbox once.
    if (!full && !uids.empty()) {
        auto last = index_.last_indexed_uid(user, mb);
        if (last != 0 || uids.front() == 1) {
            bool follows = uids.front() <= last + 1;
            if (follows) {
                std::vector<Document> docs;
                for (auto uid : uids) {
                    if (uid <= last) continue;
                    if (auto raw = load(uid)) docs.push_back(Document{uid, text_fields(*raw)});
                }
                if (!docs.empty()) index_.add(user, mb, docs);
                std::lock_guard lock(mutex_);
                indexed_ += docs.size();
                return;
            }
        }
    }
    std::vector<std::uint32_t> all;
    try {
        for (auto& m : store_.messages(user, mb))
            all.push_back(m.uid);
    } catch (const store::StoreError&) {
        return;  // the mailbox is gone
    }
    auto stats = catch_up(index_, user, mb, all, load);
    std::lock_guard lock(mutex_);
    indexed_ += stats.added;
}

}  // namespace millipost::search
