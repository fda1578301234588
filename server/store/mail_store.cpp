// store/mail_store.cpp: the backend-independent part of MailStore (notifications, opening).
#include "store/mail_store.h"

#include "store/sqlite/sqlite_store.h"

#include <filesystem>
#include <string>
#include <vector>

namespace millipost::store {

MailStore::Subscription& MailStore::Subscription::operator=(Subscription&& o) noexcept {
    if (this != &o) {
        reset();
        store_ = o.store_;
        user_ = o.user_;
        id_ = o.id_;
        o.store_ = nullptr;
    }
    return *this;
}

void MailStore::Subscription::reset() {
    if (!store_) return;
    std::lock_guard lock(store_->listeners_mutex_);
    auto it = store_->listeners_.find(user_);
    if (it != store_->listeners_.end()) {
        it->second.erase(id_);
        if (it->second.empty()) store_->listeners_.erase(it);
    }
    store_ = nullptr;
}

MailStore::Subscription MailStore::subscribe(UserId user, Listener listener) {
    std::lock_guard lock(listeners_mutex_);
    auto id = next_listener_++;
    listeners_[user][id] = std::move(listener);
    return Subscription(this, user, id);
}

void MailStore::notify(const Event& event) {
    std::vector<Listener> targets;
    {
        std::lock_guard lock(listeners_mutex_);
        for (auto user : {event.user, kAllUsers}) {
            auto it = listeners_.find(user);
            if (it == listeners_.end()) continue;
            for (auto& [id, fn] : it->second)
                targets.push_back(fn);
        }
    }
    for (auto& fn : targets)
        fn(event);
}

// Generic bulk_append: append() per run of messages for the same mailbox (not atomic as a whole;
// backends override it with one transaction).
std::size_t MailStore::bulk_append(std::span<const BulkMessage> messages) {
    std::size_t done = 0;
    for (std::size_t i = 0; i < messages.size();) {
        auto j = i;
        while (j < messages.size() && messages[j].user == messages[i].user &&
               messages[j].mailbox == messages[i].mailbox)
            ++j;
        auto mb = find_mailbox(messages[i].user, messages[i].mailbox);
        if (!mb) mb = create_mailbox(messages[i].user, messages[i].mailbox);
        std::vector<NewMessage> run;
        for (auto k = i; k < j; ++k) {
            NewMessage m{messages[k].bytes, messages[k].internaldate, {}};
            std::string_view f = messages[k].flags;
            while (!f.empty()) {
                auto sp = f.find(' ');
                if (sp != 0) m.flags.emplace_back(f.substr(0, sp));
                f = sp == std::string_view::npos ? std::string_view() : f.substr(sp + 1);
            }
            run.push_back(std::move(m));
        }
        done += append(messages[i].user, mb->id, run).size();
        i = j;
    }
    return done;
}

std::unique_ptr<MailStore> open_store(const std::string& spec) {
    std::string path = spec;
    if (path.rfind("sqlite:", 0) == 0) {
        path = path.substr(7);
    } else if (auto colon = path.find("://"); colon != std::string::npos) {
        throw StoreError(StoreError::Kind::Invalid, "unknown store backend: " + spec);
    }
    std::filesystem::path p(path);
    if (std::filesystem::is_directory(p) || !p.has_extension()) {
        std::filesystem::create_directories(p);
        p /= "millipost.db";
    }
    return std::make_unique<SqliteStore>(p.string());
}

}  // namespace millipost::store
