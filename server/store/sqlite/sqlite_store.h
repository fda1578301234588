// store/sqlite/sqlite_store.h: the embedded MailStore backend: one SQLite file in WAL mode with
// synchronous=FULL, a pool of connections (readers run beside the one writer), bodies stored
// once per delivery and shared by reference count.
#pragma once
#include "store/mail_store.h"
#include "store/sqlite/db.h"

#include <cstdint>
#include <memory>
#include <mutex>

#include <vector>

namespace millipost::store {

class SqliteStore final : public MailStore {
  public:
    explicit SqliteStore(std::string path);
    ~SqliteStore() override;

    UserId add_user(std::string_view login, std::string_view secret) override;
    std::optional<User> find_user(std::string_view login) override;
    void set_secret(std::string_view login, std::string_view secret) override;
    std::size_t add_users(std::span<const NewUser> users,
                          const std::function<void(std::size_t)>& progress) override;
    std::uint64_t user_count() override;

    Mailbox create_mailbox(UserId user, std::string_view name,
                           std::string_view special_use = {}) override;
    std::optional<Mailbox> find_mailbox(UserId user, std::string_view name) override;
    std::vector<Mailbox> list_mailboxes(UserId user) override;
    void delete_mailbox(UserId user, MailboxId mailbox) override;
    void rename_mailbox(UserId user, MailboxId mailbox, std::string_view new_name) override;
    void add_subscription(UserId user, std::string_view name) override;
    void remove_subscription(UserId user, std::string_view name) override;
    std::vector<std::string> subscriptions(UserId user) override;

    std::vector<Delivered> deliver(std::span<const UserId> recipients,
                                   std::string_view mailbox_name, std::string_view bytes,
                                   std::int64_t internaldate,
                                   std::span<const std::string> flags) override;
    std::vector<std::uint32_t> append(UserId user, MailboxId mailbox,
                                      std::span<const NewMessage> messages) override;
    std::size_t bulk_append(std::span<const BulkMessage> messages) override;
    std::vector<Message> messages(UserId user, MailboxId mailbox) override;
    MailboxDelta mailbox_changes(UserId user, MailboxId mailbox, ModSeq since) override;
    std::pair<std::uint32_t, std::uint32_t> claim_recent(UserId user, MailboxId mailbox) override;
    Usage usage(UserId user) override;
    std::string read_message(UserId user, MailboxId mailbox, std::uint32_t uid) override;
    FlagUpdate update_flags(UserId user, MailboxId mailbox, std::span<const std::uint32_t> uids,
                            FlagOp op, std::span<const std::string> flags,
                            std::optional<ModSeq> unchanged_since) override;
    UidMap copy_messages(UserId user, MailboxId from, std::span<const std::uint32_t> uids,
                         MailboxId to) override;
    UidMap move_messages(UserId user, MailboxId from, std::span<const std::uint32_t> uids,
                         MailboxId to) override;
    void expunge(UserId user, MailboxId mailbox, std::span<const std::uint32_t> uids) override;

    std::uint64_t state(UserId user) override;
    Changes changes_since(UserId user, std::uint64_t since, std::size_t max) override;

    std::int64_t enqueue_outbound(std::string_view sender, std::span<const std::string> recipients,
                                  std::string_view bytes, std::int64_t queued_at) override;
    std::vector<OutboundMessage> outbound_queue() override;
    void remove_outbound(std::int64_t id) override;
    std::vector<std::int64_t> outbound_due(std::int64_t now, std::size_t max) override;
    std::optional<OutboundMessage> outbound_entry(std::int64_t id) override;
    std::optional<std::int64_t> outbound_next_due(std::int64_t now) override;
    void outbound_done(std::int64_t id, std::span<const std::string> recipients) override;
    void outbound_defer(std::int64_t id, std::int64_t next_attempt_at,
                        std::string_view error) override;

    const std::string& path() const { return path_; }

  private:
    // A pooled connection, returned to the pool when the lease ends.
    class Lease {
      public:
        Lease(SqliteStore& s, std::unique_ptr<sqlite::Db> db) : s_(s), db_(std::move(db)) {}
        ~Lease();
        sqlite::Db& operator*() { return *db_; }
        sqlite::Db* operator->() { return db_.get(); }

      private:
        SqliteStore& s_;
        std::unique_ptr<sqlite::Db> db_;
    };
    Lease lease();
    // Runs `sql` (user, name) on the subscriptions; notifies when it changed a row.
    void change_subscription(UserId user, std::string_view name, const char* sql);
    UidMap transfer(UserId user, MailboxId from, std::span<const std::uint32_t> uids, MailboxId to,
                    bool move);

    std::string path_;
    std::mutex pool_mutex_;
    std::vector<std::unique_ptr<sqlite::Db>> pool_;
};

}  // namespace millipost::store
