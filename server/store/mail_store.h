// store/mail_store.h: the MailStore interface every storage backend implements (SQLite now,
// Ceph RADOS later): users, mailboxes, messages with UIDs/UIDVALIDITY, flags, MODSEQ, a per-user
// change log (JMAP state strings), and change notifications (IDLE, push).
//
// Contract for every backend:
// - Each method is atomic for the user it names and durable when it returns.
// - deliver() stores the body once and links it into every recipient's mailbox in one atomic
//   step: either every recipient has the message or none does.
// - UIDs in a mailbox are strictly ascending and never reused while UIDVALIDITY stays; MODSEQ
//   values never decrease; the per-user state counter increases with every change.
// - Methods are safe to call from several threads at once.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace millipost::store {

using UserId = std::int64_t;
using MailboxId = std::int64_t;
using ModSeq = std::uint64_t;

inline constexpr std::string_view kInbox = "INBOX";

class StoreError : public std::runtime_error {
  public:
    enum class Kind { Exists, NotFound, Invalid, Backend };
    StoreError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
    Kind kind() const { return kind_; }

  private:
    Kind kind_;
};

struct User {
    UserId id = 0;
    std::string login;
    std::string secret;  // auth/password.h format; never cleartext
};

struct NewUser {
    std::string login;
    std::string secret;
};

struct Mailbox {
    MailboxId id = 0;
    UserId user = 0;
    std::string name;
    std::uint32_t uidvalidity = 0;
    std::uint32_t uidnext = 1;
    ModSeq highestmodseq = 0;
    std::uint32_t messages = 0;
    std::uint64_t size = 0;    // octets of all messages
    std::string special_use;   // RFC 6154 attribute ("\\Sent"), empty for none
    std::uint32_t recent = 0;  // messages not yet claimed as \Recent (claim_recent)
};

// A user's usage for QUOTA (RFC 9208): all mailboxes together.
struct Usage {
    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;
};

// One message for append(): the bytes, internal date and initial flags.
struct NewMessage {
    std::string_view bytes;
    std::int64_t internaldate = 0;
    std::vector<std::string> flags;
};

// One message of a bulk load (bulk_append): for mailbox `mailbox` of `user`.
struct BulkMessage {
    UserId user = 0;
    std::string_view mailbox;  // created when missing
    std::string_view bytes;
    std::int64_t internaldate = 0;
    std::string_view flags;  // space-separated, as "\\Seen \\Flagged"
};

struct Message {
    std::uint32_t uid = 0;
    std::uint64_t size = 0;
    std::int64_t internaldate = 0;  // seconds since the epoch
    ModSeq modseq = 0;
    std::vector<std::string> flags;  // system flags ("\\Seen") and keywords
};

// What changed in a mailbox after a MODSEQ (incremental IMAP sync, CONDSTORE/QRESYNC).
struct MailboxDelta {
    Mailbox mailbox;                      // counters as of the same snapshot
    std::vector<Message> changed;         // messages with MODSEQ > since (new or flags changed)
    std::vector<std::uint32_t> vanished;  // UIDs expunged with MODSEQ > since, ascending
    // False when `since` is older than the oldest tombstone kept (the store keeps a bounded
    // number per mailbox): then `vanished` is incomplete and the caller must compare UID lists.
    bool vanished_complete = true;
};

struct Delivered {
    UserId user = 0;
    MailboxId mailbox = 0;
    std::uint32_t uid = 0;
};

enum class FlagOp { Replace, Add, Remove };

// A message accepted by submission for recipients in other domains, waiting for outbound
// delivery (docs/submission.md, server/outbound/). A recipient leaves `recipients` once it is
// final (delivered or bounced): an attempt never sends again to one the remote accepted.
struct OutboundMessage {
    std::int64_t id = 0;
    std::string sender;                   // envelope reverse-path
    std::vector<std::string> recipients;  // forward-paths still to deliver
    std::string bytes;
    std::int64_t queued_at = 0;        // seconds since the epoch
    int attempts = 0;                  // attempts that left recipients pending
    std::int64_t next_attempt_at = 0;  // seconds since the epoch; due when <= now
    std::string last_error;            // why the last attempt left recipients pending
};

// One entry of the change log: what changed at a given state of a user.
struct Change {
    enum class Kind { Mailbox, Message };
    enum class Op { Created, Updated, Destroyed };
    std::uint64_t state = 0;
    Kind kind = Kind::Message;
    Op op = Op::Created;
    std::string id;  // mailbox id, or "<mailbox id>:<uid>" for a message
};

struct Changes {
    std::uint64_t since = 0;
    std::uint64_t state = 0;  // the state after the returned changes
    bool has_more = false;    // more changes after `state` than `max` allowed
    std::vector<Change> changes;
};

// Pushed to subscribers after a change is durable.
struct Event {
    enum class Kind {
        Appended,
        FlagsChanged,
        Expunged,
        MailboxCreated,
        MailboxDeleted,
        MailboxRenamed,       // one per mailbox renamed (children too)
        SubscriptionChanged,  // mailbox 0; `name` subscribed or unsubscribed
    };
    Kind kind = Kind::Appended;
    UserId user = 0;
    MailboxId mailbox = 0;
    std::vector<std::uint32_t> uids;
    std::uint64_t state = 0;
    std::string name;      // mailbox events: the (new) name; subscriptions: the name
    std::string old_name;  // MailboxRenamed: the name before
};

class MailStore {
  public:
    using Listener = std::function<void(const Event&)>;

    // A registration for events of one user; unsubscribes when destroyed.
    class Subscription {
      public:
        Subscription() = default;
        Subscription(MailStore* store, UserId user, std::uint64_t id)
            : store_(store), user_(user), id_(id) {}
        Subscription(Subscription&& o) noexcept { *this = std::move(o); }
        Subscription& operator=(Subscription&& o) noexcept;
        ~Subscription() { reset(); }
        void reset();

      private:
        MailStore* store_ = nullptr;
        UserId user_ = 0;
        std::uint64_t id_ = 0;
    };

    virtual ~MailStore() = default;

    // Users. add_user throws StoreError::Exists for a taken login; the user gets an INBOX.
    virtual UserId add_user(std::string_view login, std::string_view secret) = 0;
    virtual std::optional<User> find_user(std::string_view login) = 0;
    // Replaces a user's secret; StoreError::NotFound for an unknown login.
    virtual void set_secret(std::string_view login, std::string_view secret) = 0;
    // Bulk path for provisioning: batched transactions. Logins that exist are skipped;
    // returns how many were added. `progress` (optional) gets the running count.
    virtual std::size_t add_users(std::span<const NewUser> users,
                                  const std::function<void(std::size_t)>& progress = {}) = 0;
    virtual std::uint64_t user_count() = 0;

    // Mailboxes. Names are the user's (hierarchy separator '/'); INBOX is case-insensitive.
    // `special_use` is an RFC 6154 attribute (CREATE-SPECIAL-USE) or empty.
    virtual Mailbox create_mailbox(UserId user, std::string_view name,
                                   std::string_view special_use = {}) = 0;
    virtual std::optional<Mailbox> find_mailbox(UserId user, std::string_view name) = 0;
    virtual std::vector<Mailbox> list_mailboxes(UserId user) = 0;
    virtual void delete_mailbox(UserId user, MailboxId mailbox) = 0;
    // Renames a mailbox and every mailbox below it ("a" -> "b" also renames "a/x" to "b/x"),
    // keeping their ids, UIDVALIDITY and messages. StoreError::Exists when a target name is
    // taken, NotFound for an unknown mailbox, Invalid for INBOX (the IMAP rename of INBOX moves
    // its messages instead: see move_messages) or an empty name.
    virtual void rename_mailbox(UserId user, MailboxId mailbox, std::string_view new_name) = 0;

    // Subscriptions (IMAP SUBSCRIBE/LSUB): names, which need not exist as mailboxes.
    virtual void add_subscription(UserId user, std::string_view name) = 0;
    virtual void remove_subscription(UserId user, std::string_view name) = 0;
    virtual std::vector<std::string> subscriptions(UserId user) = 0;

    // Stores `bytes` once and appends it to mailbox `mailbox_name` of every recipient.
    virtual std::vector<Delivered> deliver(std::span<const UserId> recipients,
                                           std::string_view mailbox_name, std::string_view bytes,
                                           std::int64_t internaldate,
                                           std::span<const std::string> flags = {}) = 0;
    // Appends several messages to one mailbox in one atomic step (IMAP APPEND, MULTIAPPEND);
    // returns their UIDs, ascending. NotFound for an unknown mailbox.
    virtual std::vector<std::uint32_t> append(UserId user, MailboxId mailbox,
                                              std::span<const NewMessage> messages) = 0;
    // Bulk path for pre-populating mailboxes (the load simulator's provisioning): appends every
    // message, UIDs ascending in the order given, creating missing mailboxes, in one atomic
    // step. Unlike append() it publishes no events: it loads a store before sessions use it
    // (full-text search indexes what it finds missing when it first searches a mailbox).
    // Returns how many were appended. NotFound for an unknown user.
    virtual std::size_t bulk_append(std::span<const BulkMessage> messages);
    virtual std::vector<Message> messages(UserId user, MailboxId mailbox) = 0;
    // What changed after MODSEQ `since`, read in one snapshot. Expunged UIDs are remembered
    // (tombstones, a bounded number per mailbox) so that `vanished` is exact for a recent
    // `since`; for an older one `vanished_complete` is false (QRESYNC VANISHED).
    virtual MailboxDelta mailbox_changes(UserId user, MailboxId mailbox, ModSeq since) = 0;
    // \Recent (IMAP4rev1): hands the UIDs that arrived since the last claim to the caller, once.
    // Returns [first, end): the UIDs recent for the caller.
    virtual std::pair<std::uint32_t, std::uint32_t> claim_recent(UserId user,
                                                                 MailboxId mailbox) = 0;
    // Messages and octets over all of the user's mailboxes (QUOTA).
    virtual Usage usage(UserId user) = 0;
    // The message's bytes; StoreError::NotFound when it is not the user's.
    virtual std::string read_message(UserId user, MailboxId mailbox, std::uint32_t uid) = 0;
    // Changes flags of the given UIDs; returns the new MODSEQ (unchanged when nothing changed).
    ModSeq store_flags(UserId user, MailboxId mailbox, std::span<const std::uint32_t> uids,
                       FlagOp op, std::span<const std::string> flags) {
        return update_flags(user, mailbox, uids, op, flags).modseq;
    }
    struct FlagUpdate {
        ModSeq modseq = 0;  // the mailbox's HIGHESTMODSEQ afterwards
        // Every UID asked for that exists, ascending, with its flags and MODSEQ afterwards
        // (size and internaldate are not filled in).
        std::vector<Message> messages;
        std::vector<std::uint32_t> changed;   // those whose flags changed
        std::vector<std::uint32_t> modified;  // refused: MODSEQ above `unchanged_since`
    };
    // As store_flags, and with `unchanged_since` (CONDSTORE STORE UNCHANGEDSINCE, RFC 7162
    // §3.1.3) leaves alone, and lists in `modified`, the messages changed after that MODSEQ.
    virtual FlagUpdate update_flags(UserId user, MailboxId mailbox,
                                    std::span<const std::uint32_t> uids, FlagOp op,
                                    std::span<const std::string> flags,
                                    std::optional<ModSeq> unchanged_since = {}) = 0;
    // Copies the given UIDs (those that exist, ascending) into mailbox `to` of the same user,
    // sharing the bodies and keeping flags and internal dates; new UIDs are allocated in
    // ascending order. Returns (source UID, new UID) pairs, what COPYUID reports. NotFound for an
    // unknown mailbox.
    using UidMap = std::vector<std::pair<std::uint32_t, std::uint32_t>>;
    virtual UidMap copy_messages(UserId user, MailboxId from, std::span<const std::uint32_t> uids,
                                 MailboxId to) = 0;
    // As copy_messages, then removes the originals, all in one atomic step (IMAP MOVE).
    virtual UidMap move_messages(UserId user, MailboxId from, std::span<const std::uint32_t> uids,
                                 MailboxId to) = 0;
    // Removes the given UIDs; bodies no mailbox references any more are freed.
    virtual void expunge(UserId user, MailboxId mailbox, std::span<const std::uint32_t> uids) = 0;

    // Change log for JMAP: the current state and what changed after `since`.
    virtual std::uint64_t state(UserId user) = 0;
    virtual Changes changes_since(UserId user, std::uint64_t since, std::size_t max) = 0;

    // The outbound queue: durable when enqueue_outbound returns (SMTP replies 250 after it).
    virtual std::int64_t enqueue_outbound(std::string_view sender,
                                          std::span<const std::string> recipients,
                                          std::string_view bytes, std::int64_t queued_at) = 0;
    virtual std::vector<OutboundMessage> outbound_queue() = 0;  // oldest first
    virtual void remove_outbound(std::int64_t id) = 0;          // no-op when absent
    // The queue runner's side. Ids of entries due at `now` (next_attempt_at <= now), earliest
    // first, at most `max`; one entry (nullopt when gone); the earliest next_attempt_at after
    // `now` (nullopt when none is scheduled later).
    virtual std::vector<std::int64_t> outbound_due(std::int64_t now, std::size_t max) = 0;
    virtual std::optional<OutboundMessage> outbound_entry(std::int64_t id) = 0;
    virtual std::optional<std::int64_t> outbound_next_due(std::int64_t now) = 0;
    // Takes final recipients (delivered, or bounced) off the entry's pending list, atomically;
    // the entry goes when none remain. Called right after the remote's reply, so that a crash
    // can at worst repeat the one transaction in flight.
    virtual void outbound_done(std::int64_t id, std::span<const std::string> recipients) = 0;
    // Records an attempt that left recipients pending: attempts + 1, the next attempt, the error.
    virtual void outbound_defer(std::int64_t id, std::int64_t next_attempt_at,
                                std::string_view error) = 0;

    // Events for one user, delivered on the thread that made the change, after it is durable.
    Subscription subscribe(UserId user, Listener listener);
    // Events of every user (the full-text indexer); same delivery rules.
    Subscription subscribe_all(Listener listener) {
        return subscribe(kAllUsers, std::move(listener));
    }
    static constexpr UserId kAllUsers = -1;

  protected:
    void notify(const Event& event);

  private:
    std::mutex listeners_mutex_;
    std::uint64_t next_listener_ = 1;
    std::map<UserId, std::map<std::uint64_t, Listener>> listeners_;
};

// Opens the backend named by a URL-like spec: "sqlite:PATH" (or a bare directory path, which
// holds millipost.db). Throws StoreError for an unknown backend.
std::unique_ptr<MailStore> open_store(const std::string& spec);

}  // namespace millipost::store
