// store/sqlite/sqlite_store.cpp: the SQLite MailStore backend (see sqlite_store.h).
#include "store/sqlite/sqlite_store.h"

#include "util/limits.h"

#include <algorithm>
#include <chrono>
#include <set>

namespace millipost::store {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS users(
  id INTEGER PRIMARY KEY,
  login TEXT NOT NULL UNIQUE,
  secret TEXT NOT NULL,
  state INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS mailboxes(
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  name TEXT NOT NULL,
  uidvalidity INTEGER NOT NULL,
  uidnext INTEGER NOT NULL DEFAULT 1,
  highestmodseq INTEGER NOT NULL DEFAULT 1,
  messages INTEGER NOT NULL DEFAULT 0,
  size INTEGER NOT NULL DEFAULT 0,
  special_use TEXT NOT NULL DEFAULT '',
  recent_uid INTEGER NOT NULL DEFAULT 1,
  vanished_floor INTEGER NOT NULL DEFAULT 0,
  UNIQUE(user_id, name));
CREATE TABLE IF NOT EXISTS bodies(
  id INTEGER PRIMARY KEY,
  refs INTEGER NOT NULL,
  data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS messages(
  mailbox_id INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  body_id INTEGER NOT NULL,
  size INTEGER NOT NULL,
  internaldate INTEGER NOT NULL,
  modseq INTEGER NOT NULL,
  flags TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes(
  user_id INTEGER NOT NULL,
  state INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  op INTEGER NOT NULL,
  object TEXT NOT NULL,
  PRIMARY KEY(user_id, state)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscriptions(
  user_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  PRIMARY KEY(user_id, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS expunged(
  mailbox_id INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  modseq INTEGER NOT NULL,
  PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbound(
  id INTEGER PRIMARY KEY,
  sender TEXT NOT NULL,
  recipients TEXT NOT NULL,
  data BLOB NOT NULL,
  queued_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS messages_modseq ON messages(mailbox_id, modseq);
)sql";

// Schema versions: 1 had no special_use/recent_uid columns and no expunged tombstones; 2 no
// vanished_floor; 3 no outbound schedule (attempts, next_attempt_at, last_error).
constexpr int kSchemaVersion = 4;

void migrate(sqlite::Db& db) {
    auto st = db.prepare("PRAGMA user_version");
    st.step();
    auto version = st.i64(0);
    st.run();
    if (version == 1) {
        db.exec("ALTER TABLE mailboxes ADD COLUMN special_use TEXT NOT NULL DEFAULT ''");
        db.exec("ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 1");
    }
    if (version == 1 || version == 2)
        db.exec("ALTER TABLE mailboxes ADD COLUMN vanished_floor INTEGER NOT NULL DEFAULT 0");
    if (version >= 1 && version <= 3) {
        // Version 1 and 2 files may predate the outbound table: it is created below with
        // every column, so only an existing one is altered.
        auto has = db.prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name='outbound'");
        if (has.step()) {
            has.run();
            db.exec("ALTER TABLE outbound ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0");
            db.exec("ALTER TABLE outbound ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0");
            db.exec("ALTER TABLE outbound ADD COLUMN last_error TEXT NOT NULL DEFAULT ''");
        }
    }
    if (version > kSchemaVersion)
        throw StoreError(StoreError::Kind::Backend, "database schema " + std::to_string(version) +
                                                        " is newer than this server's " +
                                                        std::to_string(kSchemaVersion));
    db.exec(kSchema);
    db.exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
}

std::string canonical_name(std::string_view name) {
    std::string n(name);
    std::string up = n;
    std::transform(up.begin(), up.end(), up.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    return up == "INBOX" ? std::string(kInbox) : n;
}

// A UIDVALIDITY for a new mailbox: the time, but always above every earlier one, so that a
// mailbox deleted and created again within a second still gets a new one (RFC 9051 §2.3.1.1).
std::uint32_t next_uidvalidity(sqlite::Db& db);

std::uint32_t now_uidvalidity() {
    return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

std::vector<std::string> split_flags(const std::string& s) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < s.size()) {
        auto sp = s.find(' ', pos);
        if (sp == std::string::npos) sp = s.size();
        if (sp > pos) out.push_back(s.substr(pos, sp - pos));
        pos = sp + 1;
    }
    return out;
}

std::string join_flags(const std::set<std::string>& flags) {
    std::string out;
    for (auto& f : flags) {
        if (!out.empty()) out.push_back(' ');
        out += f;
    }
    return out;
}

// Flags as stored: unique, sorted, separated by one space.
std::string normalize_flags(std::string_view flags) {
    if (flags.empty()) return {};
    auto v = split_flags(std::string(flags));
    return join_flags(std::set<std::string>(v.begin(), v.end()));
}

// Appends one change-log entry and returns the user's new state.
std::uint64_t log_change(sqlite::Db& db, UserId user, Change::Kind kind, Change::Op op,
                         std::string_view object) {
    auto st = db.prepare("UPDATE users SET state = state + 1 WHERE id = ? RETURNING state");
    st.bind(1, user);
    if (!st.step()) throw StoreError(StoreError::Kind::NotFound, "no such user");
    auto state = static_cast<std::uint64_t>(st.i64(0));
    st.run();
    db.prepare("INSERT INTO changes(user_id, state, kind, op, object) VALUES (?, ?, ?, ?, ?)")
        .bind(1, user)
        .bind(2, static_cast<std::int64_t>(state))
        .bind(3, static_cast<std::int64_t>(kind))
        .bind(4, static_cast<std::int64_t>(op))
        .bind(5, object)
        .run();
    return state;
}

std::string message_object(MailboxId mb, std::uint32_t uid) {
    return std::to_string(mb) + ":" + std::to_string(uid);
}

Mailbox read_mailbox(sqlite::Stmt& st) {
    Mailbox m;
    m.id = st.i64(0);
    m.user = st.i64(1);
    m.name = st.text(2);
    m.uidvalidity = static_cast<std::uint32_t>(st.i64(3));
    m.uidnext = static_cast<std::uint32_t>(st.i64(4));
    m.highestmodseq = static_cast<ModSeq>(st.i64(5));
    m.messages = static_cast<std::uint32_t>(st.i64(6));
    m.size = static_cast<std::uint64_t>(st.i64(7));
    m.special_use = st.text(8);
    m.recent = static_cast<std::uint32_t>(st.i64(9));
    return m;
}

// `recent` counts a range of the messages primary key: cheap unless nobody ever claims.
#define MAILBOX_COLUMNS                                                                     \
    "id, user_id, name, uidvalidity, uidnext, highestmodseq, messages, size, special_use, " \
    "(SELECT count(*) FROM messages r WHERE r.mailbox_id = mailboxes.id "                   \
    "AND r.uid >= mailboxes.recent_uid)"

std::uint32_t next_uidvalidity(sqlite::Db& db) {
    auto st = db.prepare(
        "INSERT INTO meta(key, value) VALUES ('uidvalidity', ?) ON CONFLICT(key) DO UPDATE "
        "SET value = max(value + 1, excluded.value) RETURNING value");
    st.bind(1, static_cast<std::int64_t>(now_uidvalidity()));
    st.step();
    auto v = static_cast<std::uint32_t>(st.i64(0));
    st.run();
    return v;
}

// Accounts for a message removed from `mailbox` and leaves a tombstone with the removal's
// MODSEQ, which QRESYNC's VANISHED and incremental session syncs read.
void bury(sqlite::Db& db, MailboxId mailbox, std::uint32_t uid, std::int64_t size) {
    auto up = db.prepare(
        "UPDATE mailboxes SET messages = messages - 1, size = size - ?, "
        "highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq");
    up.bind(1, size).bind(2, mailbox);
    up.step();
    auto modseq = up.i64(0);
    up.run();
    db.prepare("INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) VALUES (?, ?, ?)")
        .bind(1, mailbox)
        .bind(2, static_cast<std::int64_t>(uid))
        .bind(3, modseq)
        .run();
}

// Keeps at most limits::kTombstonesPerMailbox tombstones: the oldest go, and the mailbox's
// vanished_floor remembers the highest MODSEQ among them (below it VANISHED is not exact).
void compact_tombstones(sqlite::Db& db, MailboxId mailbox) {
    auto count = db.prepare("SELECT count(*) FROM expunged WHERE mailbox_id = ?");
    count.bind(1, mailbox);
    count.step();
    auto n = static_cast<std::size_t>(count.i64(0));
    count.run();
    // Compact in steps of a tenth, so that not every expunge pays for it.
    if (n <= limits::kTombstonesPerMailbox + limits::kTombstonesPerMailbox / 10) return;
    auto cut = db.prepare(
        "SELECT modseq FROM expunged WHERE mailbox_id = ? ORDER BY modseq LIMIT 1 OFFSET ?");
    cut.bind(1, mailbox).bind(2, static_cast<std::int64_t>(n - limits::kTombstonesPerMailbox - 1));
    if (!cut.step()) return;
    auto floor = cut.i64(0);
    cut.run();
    db.prepare("DELETE FROM expunged WHERE mailbox_id = ? AND modseq <= ?")
        .bind(1, mailbox)
        .bind(2, floor)
        .run();
    db.prepare("UPDATE mailboxes SET vanished_floor = max(vanished_floor, ?) WHERE id = ?")
        .bind(1, floor)
        .bind(2, mailbox)
        .run();
}

// Throws NotFound unless `mailbox` is one of `user`'s: every per-mailbox call checks ownership.
void check_owner(sqlite::Db& db, UserId user, MailboxId mailbox) {
    auto st = db.prepare("SELECT 1 FROM mailboxes WHERE id = ? AND user_id = ?");
    st.bind(1, mailbox).bind(2, user);
    if (!st.step()) throw StoreError(StoreError::Kind::NotFound, "no such mailbox");
    st.run();
}

// Adds a message to `mailbox` with the next UID and MODSEQ (the body row exists, its reference
// counted by the caller); returns the UID.
std::uint32_t link_message(sqlite::Db& db, MailboxId mailbox, std::int64_t body, std::int64_t size,
                           std::int64_t internaldate, const std::string& flags) {
    auto up = db.prepare(
        "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1, "
        "messages = messages + 1, size = size + ? WHERE id = ? "
        "RETURNING uidnext - 1, highestmodseq");
    up.bind(1, size).bind(2, mailbox);
    if (!up.step()) throw StoreError(StoreError::Kind::NotFound, "no such mailbox");
    auto uid = static_cast<std::uint32_t>(up.i64(0));
    auto modseq = up.i64(1);
    up.run();
    db.prepare(
          "INSERT INTO messages(mailbox_id, uid, body_id, size, internaldate, modseq, flags) "
          "VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(1, mailbox)
        .bind(2, static_cast<std::int64_t>(uid))
        .bind(3, body)
        .bind(4, size)
        .bind(5, internaldate)
        .bind(6, modseq)
        .bind(7, flags)
        .run();
    return uid;
}

Message read_message_row(sqlite::Stmt& st) {
    Message m;
    m.uid = static_cast<std::uint32_t>(st.i64(0));
    m.size = static_cast<std::uint64_t>(st.i64(1));
    m.internaldate = st.i64(2);
    m.modseq = static_cast<ModSeq>(st.i64(3));
    m.flags = split_flags(st.text(4));
    return m;
}

// Reserves `n` new mailbox ids and returns the first. Ids are never reused: a session holding the
// id of a deleted mailbox (IMAP SELECT, a JMAP client's Mailbox id, the change log's objects)
// must not reach a mailbox created after it. SQLite gives a new row the highest rowid + 1, which
// is the deleted one's when the newest mailbox was deleted; so ids come from a counter in meta,
// which starts above every id already there (databases from before the counter).
MailboxId reserve_mailbox_ids(sqlite::Db& db, std::int64_t n) {
    auto st = db.prepare(
        "INSERT INTO meta(key, value) VALUES ('mailbox_id', "
        "(SELECT coalesce(max(id), 0) FROM mailboxes) + ?) ON CONFLICT(key) DO UPDATE "
        "SET value = max(value, (SELECT coalesce(max(id), 0) FROM mailboxes)) + ? "
        "RETURNING value");
    st.bind(1, n).bind(2, n);
    st.step();
    auto last = st.i64(0);
    st.run();
    return last - n + 1;
}

MailboxId insert_mailbox(sqlite::Db& db, UserId user, std::string_view name) {
    auto id = reserve_mailbox_ids(db, 1);
    db.prepare("INSERT INTO mailboxes(id, user_id, name, uidvalidity) VALUES (?, ?, ?, ?)")
        .bind(1, id)
        .bind(2, user)
        .bind(3, name)
        .bind(4, static_cast<std::int64_t>(next_uidvalidity(db)))
        .run();
    return id;
}

// Connection settings for a bulk load, restored when it ends. A page cache that holds the
// indexes being filled (at the default 2 MB every insert into a million-user B-tree re-reads
// pages), and commits without fsync: the load ends with durable(), a checkpoint under
// synchronous=FULL, which syncs the WAL and then the database file, so what was loaded is
// durable when the bulk call returns, as the MailStore contract asks.
class BulkLoad {
  public:
    explicit BulkLoad(sqlite::Db& db) : db_(db) {
        auto cache = "PRAGMA cache_size = -" + std::to_string(limits::kBulkLoadCacheKiB);
        db_.exec(cache.c_str());
        db_.exec("PRAGMA synchronous = OFF");
    }
    ~BulkLoad() {
        if (!restored_) restore();
    }
    void durable() {
        restore();
        db_.exec("PRAGMA wal_checkpoint(PASSIVE)");
    }

  private:
    void restore() {
        restored_ = true;
        // Best effort in the destructor: a failure leaves a connection with a big cache.
        sqlite3_exec(db_.raw(), "PRAGMA synchronous = FULL", nullptr, nullptr, nullptr);
        sqlite3_exec(db_.raw(), "PRAGMA cache_size = -2000", nullptr, nullptr, nullptr);
    }
    sqlite::Db& db_;
    bool restored_ = false;
};

}  // namespace

SqliteStore::SqliteStore(std::string path) : path_(std::move(path)) {
    auto db = std::make_unique<sqlite::Db>(path_);
    {
        sqlite::Transaction tx(*db);
        migrate(*db);
        tx.commit();
    }
    pool_.push_back(std::move(db));
}

SqliteStore::~SqliteStore() {
    std::lock_guard lock(pool_mutex_);
    if (!pool_.empty()) {
        try {
            pool_.front()->exec("PRAGMA wal_checkpoint(TRUNCATE)");
        } catch (...) {
        }
    }
    pool_.clear();
}

SqliteStore::Lease::~Lease() {
    std::lock_guard lock(s_.pool_mutex_);
    s_.pool_.push_back(std::move(db_));
}

SqliteStore::Lease SqliteStore::lease() {
    {
        std::lock_guard lock(pool_mutex_);
        if (!pool_.empty()) {
            auto db = std::move(pool_.back());
            pool_.pop_back();
            return Lease(*this, std::move(db));
        }
    }
    return Lease(*this, std::make_unique<sqlite::Db>(path_));
}

UserId SqliteStore::add_user(std::string_view login, std::string_view secret) {
    auto db = lease();
    sqlite::Transaction tx(*db);
    auto st = db->prepare("INSERT INTO users(login, secret) VALUES (?, ?) ON CONFLICT DO NOTHING");
    st.bind(1, login).bind(2, secret).run();
    if (db->changes() == 0)
        throw StoreError(StoreError::Kind::Exists, "user exists: " + std::string(login));
    UserId id = db->last_insert_rowid();
    auto mb = insert_mailbox(*db, id, kInbox);
    log_change(*db, id, Change::Kind::Mailbox, Change::Op::Created, std::to_string(mb));
    tx.commit();
    return id;
}

std::optional<User> SqliteStore::find_user(std::string_view login) {
    auto db = lease();
    auto st = db->prepare("SELECT id, login, secret FROM users WHERE login = ?");
    st.bind(1, login);
    if (!st.step()) return std::nullopt;
    return User{st.i64(0), st.text(1), st.text(2)};
}

void SqliteStore::set_secret(std::string_view login, std::string_view secret) {
    auto db = lease();
    db->prepare("UPDATE users SET secret = ? WHERE login = ?").bind(1, secret).bind(2, login).run();
    if (db->changes() == 0)
        throw StoreError(StoreError::Kind::NotFound, "no such user: " + std::string(login));
}

std::size_t SqliteStore::add_users(std::span<const NewUser> users,
                                   const std::function<void(std::size_t)>& progress) {
    auto db = lease();
    BulkLoad bulk(*db);
    std::size_t added = 0;
    std::int64_t uidvalidity;
    {
        sqlite::Transaction tx(*db);
        uidvalidity = next_uidvalidity(*db);  // one for the whole batch: each user has one INBOX
        tx.commit();
    }
    for (std::size_t start = 0; start < users.size(); start += limits::kProvisionBatch) {
        sqlite::Transaction tx(*db);
        auto end = std::min(users.size(), start + limits::kProvisionBatch);
        // One block of ids per batch; those of logins that exist stay unused.
        auto next_id = reserve_mailbox_ids(*db, static_cast<std::int64_t>(end - start));
        for (std::size_t i = start; i < end; ++i) {
            auto mb = next_id++;
            auto ins = db->prepare(
                "INSERT INTO users(login, secret, state) VALUES (?, ?, 1) ON CONFLICT DO NOTHING");
            ins.bind(1, users[i].login).bind(2, users[i].secret).run();
            if (db->changes() == 0) continue;
            UserId id = db->last_insert_rowid();
            db->prepare(
                  "INSERT INTO mailboxes(id, user_id, name, uidvalidity) VALUES (?, ?, 'INBOX', ?)")
                .bind(1, mb)
                .bind(2, id)
                .bind(3, uidvalidity)
                .run();
            db->prepare(
                  "INSERT INTO changes(user_id, state, kind, op, object) VALUES (?, 1, ?, ?, ?)")
                .bind(1, id)
                .bind(2, static_cast<std::int64_t>(Change::Kind::Mailbox))
                .bind(3, static_cast<std::int64_t>(Change::Op::Created))
                .bind(4, std::to_string(mb))
                .run();
            ++added;
        }
        tx.commit();
        if (progress) progress(end);
    }
    bulk.durable();
    return added;
}

std::uint64_t SqliteStore::user_count() {
    auto db = lease();
    auto st = db->prepare("SELECT count(*) FROM users");
    st.step();
    return static_cast<std::uint64_t>(st.i64(0));
}

Mailbox SqliteStore::create_mailbox(UserId user, std::string_view name,
                                    std::string_view special_use) {
    auto n = canonical_name(name);
    if (n.empty()) throw StoreError(StoreError::Kind::Invalid, "empty mailbox name");
    std::uint64_t state;
    MailboxId id;
    {
        auto db = lease();
        sqlite::Transaction tx(*db);
        id = reserve_mailbox_ids(*db, 1);
        db->prepare(
              "INSERT INTO mailboxes(id, user_id, name, uidvalidity, special_use) "
              "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(1, id)
            .bind(2, user)
            .bind(3, n)
            .bind(4, static_cast<std::int64_t>(next_uidvalidity(*db)))
            .bind(5, special_use)
            .run();
        if (db->changes() == 0) throw StoreError(StoreError::Kind::Exists, "mailbox exists: " + n);
        state =
            log_change(*db, user, Change::Kind::Mailbox, Change::Op::Created, std::to_string(id));
        tx.commit();
    }
    notify(Event{Event::Kind::MailboxCreated, user, id, {}, state, n, {}});
    return *find_mailbox(user, n);
}

std::optional<Mailbox> SqliteStore::find_mailbox(UserId user, std::string_view name) {
    auto db = lease();
    auto st =
        db->prepare("SELECT " MAILBOX_COLUMNS " FROM mailboxes WHERE user_id = ? AND name = ?");
    auto n = canonical_name(name);
    st.bind(1, user).bind(2, n);
    if (!st.step()) return std::nullopt;
    return read_mailbox(st);
}

std::vector<Mailbox> SqliteStore::list_mailboxes(UserId user) {
    auto db = lease();
    auto st =
        db->prepare("SELECT " MAILBOX_COLUMNS " FROM mailboxes WHERE user_id = ? ORDER BY name");
    st.bind(1, user);
    std::vector<Mailbox> out;
    while (st.step())
        out.push_back(read_mailbox(st));
    return out;
}

void SqliteStore::delete_mailbox(UserId user, MailboxId mailbox) {
    std::uint64_t state;
    std::string name;
    {
        auto db = lease();
        sqlite::Transaction tx(*db);
        auto check = db->prepare("SELECT name FROM mailboxes WHERE id = ? AND user_id = ?");
        check.bind(1, mailbox).bind(2, user);
        if (!check.step()) throw StoreError(StoreError::Kind::NotFound, "no such mailbox");
        name = check.text(0);
        check.run();
        db->prepare(
              "UPDATE bodies SET refs = refs - 1 WHERE id IN "
              "(SELECT body_id FROM messages WHERE mailbox_id = ?)")
            .bind(1, mailbox)
            .run();
        db->prepare("DELETE FROM messages WHERE mailbox_id = ?").bind(1, mailbox).run();
        db->prepare("DELETE FROM expunged WHERE mailbox_id = ?").bind(1, mailbox).run();
        db->prepare("DELETE FROM bodies WHERE refs <= 0").run();
        db->prepare("DELETE FROM mailboxes WHERE id = ?").bind(1, mailbox).run();
        state = log_change(*db, user, Change::Kind::Mailbox, Change::Op::Destroyed,
                           std::to_string(mailbox));
        tx.commit();
    }
    notify(Event{Event::Kind::MailboxDeleted, user, mailbox, {}, state, name, {}});
}

void SqliteStore::rename_mailbox(UserId user, MailboxId mailbox, std::string_view new_name) {
    std::vector<Event> renamed;
    auto target = canonical_name(new_name);
    if (target.empty()) throw StoreError(StoreError::Kind::Invalid, "empty mailbox name");
    if (target == kInbox) throw StoreError(StoreError::Kind::Exists, "mailbox exists: INBOX");
    {
        auto db = lease();
        sqlite::Transaction tx(*db);
        auto check = db->prepare("SELECT name FROM mailboxes WHERE id = ? AND user_id = ?");
        check.bind(1, mailbox).bind(2, user);
        if (!check.step()) throw StoreError(StoreError::Kind::NotFound, "no such mailbox");
        std::string old = check.text(0);
        check.run();
        if (old == kInbox)
            throw StoreError(StoreError::Kind::Invalid, "INBOX cannot be renamed in place");
        if (target == old) throw StoreError(StoreError::Kind::Exists, "mailbox exists: " + target);
        if (target.size() > old.size() && target.compare(0, old.size() + 1, old + "/") == 0)
            throw StoreError(StoreError::Kind::Invalid, "cannot rename a mailbox below itself");
        // The mailbox and its descendants, each to the new prefix.
        std::vector<std::pair<MailboxId, std::string>> moves;
        auto sel = db->prepare(
            "SELECT id, name FROM mailboxes WHERE user_id = ? AND (name = ? OR "
            "substr(name, 1, ?) = ?)");
        const std::string prefix = old + "/";  // bound by reference: keep it alive
        sel.bind(1, user)
            .bind(2, old)
            .bind(3, static_cast<std::int64_t>(prefix.size()))
            .bind(4, prefix);
        while (sel.step())
            moves.emplace_back(sel.i64(0), target + sel.text(1).substr(old.size()));
        for (auto& [id, name] : moves) {
            auto exists = db->prepare("SELECT 1 FROM mailboxes WHERE user_id = ? AND name = ?");
            exists.bind(1, user).bind(2, name);
            if (exists.step())
                throw StoreError(StoreError::Kind::Exists, "mailbox exists: " + name);
        }
        for (auto& [id, name] : moves)
            db->prepare("UPDATE mailboxes SET name = ? WHERE id = ?")
                .bind(1, name)
                .bind(2, id)
                .run();
        std::uint64_t state = 0;
        for (auto& [id, name] : moves)
            state = log_change(*db, user, Change::Kind::Mailbox, Change::Op::Updated,
                               std::to_string(id));
        tx.commit();
        for (auto& [id, name] : moves)
            renamed.push_back(Event{Event::Kind::MailboxRenamed,
                                    user,
                                    id,
                                    {},
                                    state,
                                    name,
                                    old + name.substr(target.size())});
    }
    for (auto& e : renamed)
        notify(e);
}

void SqliteStore::add_subscription(UserId user, std::string_view name) {
    change_subscription(
        user, name,
        "INSERT INTO subscriptions(user_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING");
}

void SqliteStore::remove_subscription(UserId user, std::string_view name) {
    change_subscription(user, name, "DELETE FROM subscriptions WHERE user_id = ? AND name = ?");
}

void SqliteStore::change_subscription(UserId user, std::string_view name, const char* sql) {
    auto n = canonical_name(name);
    bool changed;
    {
        auto db = lease();
        db->prepare(sql).bind(1, user).bind(2, n).run();
        changed = db->changes() > 0;
    }
    if (changed) notify(Event{Event::Kind::SubscriptionChanged, user, 0, {}, 0, n, {}});
}

std::vector<std::string> SqliteStore::subscriptions(UserId user) {
    auto db = lease();
    auto st = db->prepare("SELECT name FROM subscriptions WHERE user_id = ? ORDER BY name");
    st.bind(1, user);
    std::vector<std::string> out;
    while (st.step())
        out.push_back(st.text(0));
    return out;
}

std::vector<Delivered> SqliteStore::deliver(std::span<const UserId> recipients,
                                            std::string_view mailbox_name, std::string_view bytes,
                                            std::int64_t internaldate,
                                            std::span<const std::string> flags) {
    std::vector<Delivered> out;
    std::vector<std::uint64_t> states;
    if (recipients.empty()) return out;
    auto name = canonical_name(mailbox_name);
    std::string flag_text = join_flags(std::set<std::string>(flags.begin(), flags.end()));
    {
        auto db = lease();
        sqlite::Transaction tx(*db);
        db->prepare("INSERT INTO bodies(refs, data) VALUES (?, ?)")
            .bind(1, static_cast<std::int64_t>(recipients.size()))
            .bind_blob(2, bytes)
            .run();
        auto body = db->last_insert_rowid();
        for (UserId user : recipients) {
            auto st = db->prepare("SELECT id FROM mailboxes WHERE user_id = ? AND name = ?");
            st.bind(1, user).bind(2, name);
            if (!st.step())
                throw StoreError(StoreError::Kind::NotFound, "no mailbox " + name + " for user");
            MailboxId mb = st.i64(0);
            st.run();
            Delivered d{user, mb,
                        link_message(*db, mb, body, static_cast<std::int64_t>(bytes.size()),
                                     internaldate, flag_text)};
            states.push_back(log_change(*db, user, Change::Kind::Message, Change::Op::Created,
                                        message_object(d.mailbox, d.uid)));
            out.push_back(d);
        }
        tx.commit();
    }
    for (std::size_t i = 0; i < out.size(); ++i)
        notify(Event{Event::Kind::Appended, out[i].user, out[i].mailbox, {out[i].uid}, states[i]});
    return out;
}

// One transaction; per run of messages for the same mailbox the counters are read once and
// written once, and per user the state moves once, so a message costs two inserts (body, row)
// and one change-log row.
std::size_t SqliteStore::bulk_append(std::span<const BulkMessage> messages) {
    if (messages.empty()) return 0;
    auto db = lease();
    BulkLoad bulk(*db);
    sqlite::Transaction tx(*db);
    // The special-use attribute of the usual names, for mailboxes created here.
    auto special = [](std::string_view n) -> std::string_view {
        if (n == "Sent") return "\\Sent";
        if (n == "Archive") return "\\Archive";
        if (n == "Drafts") return "\\Drafts";
        if (n == "Trash") return "\\Trash";
        if (n == "Junk") return "\\Junk";
        return {};
    };
    std::size_t done = 0;
    for (std::size_t i = 0; i < messages.size();) {
        const UserId user = messages[i].user;
        auto name = canonical_name(messages[i].mailbox);
        auto j = i;
        while (j < messages.size() && messages[j].user == user &&
               canonical_name(messages[j].mailbox) == name)
            ++j;
        const auto n = static_cast<std::int64_t>(j - i);
        // The user's state advances by one per message (and one for a new mailbox).
        auto st = db->prepare("SELECT state FROM users WHERE id = ?");
        st.bind(1, user);
        if (!st.step()) throw StoreError(StoreError::Kind::NotFound, "no such user");
        auto state = st.i64(0);
        st.run();
        auto mb = db->prepare(
            "SELECT id, uidnext, highestmodseq FROM mailboxes "
            "WHERE user_id = ? AND name = ?");
        mb.bind(1, user).bind(2, name);
        MailboxId mailbox;
        std::int64_t uid, modseq;
        if (mb.step()) {
            mailbox = mb.i64(0);
            uid = mb.i64(1);
            modseq = mb.i64(2);
            mb.run();
        } else {
            mb.run();
            mailbox = reserve_mailbox_ids(*db, 1);
            db->prepare(
                  "INSERT INTO mailboxes(id, user_id, name, uidvalidity, special_use) "
                  "VALUES (?, ?, ?, ?, ?)")
                .bind(1, mailbox)
                .bind(2, user)
                .bind(3, name)
                .bind(4, static_cast<std::int64_t>(next_uidvalidity(*db)))
                .bind(5, special(name))
                .run();
            db->prepare(
                  "INSERT INTO changes(user_id, state, kind, op, object) VALUES (?, ?, ?, ?, ?)")
                .bind(1, user)
                .bind(2, ++state)
                .bind(3, static_cast<std::int64_t>(Change::Kind::Mailbox))
                .bind(4, static_cast<std::int64_t>(Change::Op::Created))
                .bind(5, std::to_string(mailbox))
                .run();
            uid = 1;
            modseq = 1;
        }
        std::int64_t octets = 0;
        for (auto k = i; k < j; ++k, ++uid) {
            const auto& m = messages[k];
            db->prepare("INSERT INTO bodies(refs, data) VALUES (1, ?)").bind_blob(1, m.bytes).run();
            auto body = db->last_insert_rowid();
            auto size = static_cast<std::int64_t>(m.bytes.size());
            octets += size;
            db->prepare(
                  "INSERT INTO messages(mailbox_id, uid, body_id, size, internaldate, modseq, "
                  "flags) VALUES (?, ?, ?, ?, ?, ?, ?)")
                .bind(1, mailbox)
                .bind(2, uid)
                .bind(3, body)
                .bind(4, size)
                .bind(5, m.internaldate)
                .bind(6, ++modseq)
                .bind(7, normalize_flags(m.flags))
                .run();
            db->prepare(
                  "INSERT INTO changes(user_id, state, kind, op, object) VALUES (?, ?, ?, ?, ?)")
                .bind(1, user)
                .bind(2, ++state)
                .bind(3, static_cast<std::int64_t>(Change::Kind::Message))
                .bind(4, static_cast<std::int64_t>(Change::Op::Created))
                .bind(5, message_object(mailbox, static_cast<std::uint32_t>(uid)))
                .run();
        }
        db->prepare(
              "UPDATE mailboxes SET uidnext = ?, highestmodseq = ?, messages = messages + ?, "
              "size = size + ? WHERE id = ?")
            .bind(1, uid)
            .bind(2, modseq)
            .bind(3, n)
            .bind(4, octets)
            .bind(5, mailbox)
            .run();
        db->prepare("UPDATE users SET state = ? WHERE id = ?").bind(1, state).bind(2, user).run();
        done += j - i;
        i = j;
    }
    tx.commit();
    bulk.durable();
    return done;
}

std::vector<Message> SqliteStore::messages(UserId user, MailboxId mailbox) {
    auto db = lease();
    sqlite::Transaction tx(*db, false);  // one snapshot for the ownership check and the rows
    check_owner(*db, user, mailbox);
    auto st = db->prepare(
        "SELECT uid, size, internaldate, modseq, flags FROM messages "
        "WHERE mailbox_id = ? ORDER BY uid");
    st.bind(1, mailbox);
    std::vector<Message> out;
    while (st.step())
        out.push_back(read_message_row(st));
    tx.commit();
    return out;
}

MailboxDelta SqliteStore::mailbox_changes(UserId user, MailboxId mailbox, ModSeq since) {
    auto db = lease();
    sqlite::Transaction tx(*db, false);  // one snapshot for the counters and both lists
    auto mb = db->prepare("SELECT " MAILBOX_COLUMNS " FROM mailboxes WHERE id = ? AND user_id = ?");
    mb.bind(1, mailbox).bind(2, user);
    if (!mb.step()) throw StoreError(StoreError::Kind::NotFound, "no such mailbox");
    MailboxDelta out;
    out.mailbox = read_mailbox(mb);
    mb.run();
    auto fl = db->prepare("SELECT vanished_floor FROM mailboxes WHERE id = ?");
    fl.bind(1, mailbox);
    fl.step();
    out.vanished_complete = since >= static_cast<ModSeq>(fl.i64(0));
    fl.run();
    if (since < out.mailbox.highestmodseq) {
        auto st = db->prepare(
            "SELECT uid, size, internaldate, modseq, flags FROM messages "
            "WHERE mailbox_id = ? AND modseq > ? ORDER BY uid");
        st.bind(1, mailbox).bind(2, static_cast<std::int64_t>(since));
        while (st.step())
            out.changed.push_back(read_message_row(st));
        auto gone = db->prepare(
            "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid");
        gone.bind(1, mailbox).bind(2, static_cast<std::int64_t>(since));
        while (gone.step())
            out.vanished.push_back(static_cast<std::uint32_t>(gone.i64(0)));
    }
    tx.commit();
    return out;
}

std::pair<std::uint32_t, std::uint32_t> SqliteStore::claim_recent(UserId user, MailboxId mailbox) {
    auto db = lease();
    sqlite::Transaction tx(*db);
    auto st = db->prepare("SELECT recent_uid, uidnext FROM mailboxes WHERE id = ? AND user_id = ?");
    st.bind(1, mailbox).bind(2, user);
    if (!st.step()) throw StoreError(StoreError::Kind::NotFound, "no such mailbox");
    auto first = static_cast<std::uint32_t>(st.i64(0));
    auto end = static_cast<std::uint32_t>(st.i64(1));
    st.run();
    if (end != first)
        db->prepare("UPDATE mailboxes SET recent_uid = ? WHERE id = ?")
            .bind(1, static_cast<std::int64_t>(end))
            .bind(2, mailbox)
            .run();
    tx.commit();
    return {first, end};
}

Usage SqliteStore::usage(UserId user) {
    auto db = lease();
    auto st = db->prepare(
        "SELECT coalesce(sum(messages), 0), coalesce(sum(size), 0) FROM mailboxes "
        "WHERE user_id = ?");
    st.bind(1, user);
    st.step();
    return Usage{static_cast<std::uint64_t>(st.i64(0)), static_cast<std::uint64_t>(st.i64(1))};
}

std::vector<std::uint32_t> SqliteStore::append(UserId user, MailboxId mailbox,
                                               std::span<const NewMessage> messages) {
    std::vector<std::uint32_t> uids;
    std::uint64_t state = 0;
    {
        auto db = lease();
        sqlite::Transaction tx(*db);
        check_owner(*db, user, mailbox);
        for (auto& m : messages) {
            db->prepare("INSERT INTO bodies(refs, data) VALUES (1, ?)").bind_blob(1, m.bytes).run();
            auto body = db->last_insert_rowid();
            auto uid = link_message(
                *db, mailbox, body, static_cast<std::int64_t>(m.bytes.size()), m.internaldate,
                join_flags(std::set<std::string>(m.flags.begin(), m.flags.end())));
            state = log_change(*db, user, Change::Kind::Message, Change::Op::Created,
                               message_object(mailbox, uid));
            uids.push_back(uid);
        }
        tx.commit();
    }
    if (!uids.empty()) notify(Event{Event::Kind::Appended, user, mailbox, uids, state});
    return uids;
}

std::string SqliteStore::read_message(UserId user, MailboxId mailbox, std::uint32_t uid) {
    auto db = lease();
    auto st = db->prepare(
        "SELECT b.data FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id "
        "JOIN bodies b ON b.id = m.body_id WHERE m.mailbox_id = ? AND m.uid = ? AND x.user_id = ?");
    st.bind(1, mailbox).bind(2, static_cast<std::int64_t>(uid)).bind(3, user);
    if (!st.step()) throw StoreError(StoreError::Kind::NotFound, "no such message");
    return st.blob(0);
}

MailStore::FlagUpdate SqliteStore::update_flags(UserId user, MailboxId mailbox,
                                                std::span<const std::uint32_t> uids, FlagOp op,
                                                std::span<const std::string> flags,
                                                std::optional<ModSeq> unchanged_since) {
    FlagUpdate out;
    std::uint64_t state = 0;
    std::vector<std::uint32_t> sorted(uids.begin(), uids.end());
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    {
        auto db = lease();
        sqlite::Transaction tx(*db);
        auto mb = db->prepare("SELECT highestmodseq FROM mailboxes WHERE id = ? AND user_id = ?");
        mb.bind(1, mailbox).bind(2, user);
        if (!mb.step()) throw StoreError(StoreError::Kind::NotFound, "no such mailbox");
        ModSeq modseq = static_cast<ModSeq>(mb.i64(0));
        mb.run();
        for (auto uid : sorted) {
            auto sel =
                db->prepare("SELECT flags, modseq FROM messages WHERE mailbox_id = ? AND uid = ?");
            sel.bind(1, mailbox).bind(2, static_cast<std::int64_t>(uid));
            if (!sel.step()) continue;
            Message m;
            m.uid = uid;
            m.flags = split_flags(sel.text(0));
            m.modseq = static_cast<ModSeq>(sel.i64(1));
            sel.run();
            if (unchanged_since && m.modseq > *unchanged_since) {
                out.modified.push_back(uid);
                out.messages.push_back(std::move(m));
                continue;
            }
            std::set<std::string> before(m.flags.begin(), m.flags.end()), after;
            if (op == FlagOp::Replace) {
                after.insert(flags.begin(), flags.end());
            } else {
                after = before;
                for (auto& f : flags) {
                    if (op == FlagOp::Add)
                        after.insert(f);
                    else
                        after.erase(f);
                }
            }
            if (after != before) {
                if (out.changed.empty()) ++modseq;  // one MODSEQ for the whole command
                auto text = join_flags(after);
                db->prepare(
                      "UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?")
                    .bind(1, text)
                    .bind(2, static_cast<std::int64_t>(modseq))
                    .bind(3, mailbox)
                    .bind(4, static_cast<std::int64_t>(uid))
                    .run();
                state = log_change(*db, user, Change::Kind::Message, Change::Op::Updated,
                                   message_object(mailbox, uid));
                m.flags = split_flags(text);
                m.modseq = modseq;
                out.changed.push_back(uid);
            }
            out.messages.push_back(std::move(m));
        }
        if (!out.changed.empty())
            db->prepare("UPDATE mailboxes SET highestmodseq = ? WHERE id = ?")
                .bind(1, static_cast<std::int64_t>(modseq))
                .bind(2, mailbox)
                .run();
        out.modseq = modseq;
        tx.commit();
    }
    if (!out.changed.empty())
        notify(Event{Event::Kind::FlagsChanged, user, mailbox, out.changed, state});
    return out;
}

MailStore::UidMap SqliteStore::copy_messages(UserId user, MailboxId from,
                                             std::span<const std::uint32_t> uids, MailboxId to) {
    return transfer(user, from, uids, to, false);
}

MailStore::UidMap SqliteStore::move_messages(UserId user, MailboxId from,
                                             std::span<const std::uint32_t> uids, MailboxId to) {
    return transfer(user, from, uids, to, true);
}

MailStore::UidMap SqliteStore::transfer(UserId user, MailboxId from,
                                        std::span<const std::uint32_t> uids, MailboxId to,
                                        bool move) {
    UidMap map;
    std::uint64_t state = 0;
    std::vector<std::uint32_t> sorted(uids.begin(), uids.end());
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    {
        auto db = lease();
        sqlite::Transaction tx(*db);
        for (auto mb : {from, to})
            check_owner(*db, user, mb);
        // The UIDs name messages that exist when the call starts: a copy into the same mailbox
        // must not copy the copies it makes (UID uidnext asked for would be the first copy).
        auto next = db->prepare("SELECT uidnext FROM mailboxes WHERE id = ?");
        next.bind(1, from);
        next.step();
        auto uidnext = static_cast<std::uint32_t>(next.i64(0));
        next.run();
        sorted.erase(std::lower_bound(sorted.begin(), sorted.end(), uidnext), sorted.end());
        for (auto uid : sorted) {
            auto sel = db->prepare(
                "SELECT body_id, size, internaldate, flags FROM messages "
                "WHERE mailbox_id = ? AND uid = ?");
            sel.bind(1, from).bind(2, static_cast<std::int64_t>(uid));
            if (!sel.step()) continue;
            auto body = sel.i64(0);
            auto size = sel.i64(1);
            auto date = sel.i64(2);
            auto flags = sel.text(3);
            sel.run();
            auto new_uid = link_message(*db, to, body, size, date, flags);
            state = log_change(*db, user, Change::Kind::Message, Change::Op::Created,
                               message_object(to, new_uid));
            if (move) {
                db->prepare("DELETE FROM messages WHERE mailbox_id = ? AND uid = ?")
                    .bind(1, from)
                    .bind(2, static_cast<std::int64_t>(uid))
                    .run();
                bury(*db, from, uid, size);
                state = log_change(*db, user, Change::Kind::Message, Change::Op::Destroyed,
                                   message_object(from, uid));
            } else {
                db->prepare("UPDATE bodies SET refs = refs + 1 WHERE id = ?").bind(1, body).run();
            }
            map.emplace_back(uid, new_uid);
        }
        if (move && !map.empty()) compact_tombstones(*db, from);
        tx.commit();
    }
    if (!map.empty()) {
        std::vector<std::uint32_t> src, dst;
        for (auto& [a, b] : map) {
            src.push_back(a);
            dst.push_back(b);
        }
        notify(Event{Event::Kind::Appended, user, to, std::move(dst), state});
        if (move) notify(Event{Event::Kind::Expunged, user, from, std::move(src), state});
    }
    return map;
}

void SqliteStore::expunge(UserId user, MailboxId mailbox, std::span<const std::uint32_t> uids) {
    std::vector<std::uint32_t> removed;
    std::uint64_t state = 0;
    {
        auto db = lease();
        sqlite::Transaction tx(*db);
        check_owner(*db, user, mailbox);
        for (auto uid : uids) {
            auto del = db->prepare(
                "DELETE FROM messages WHERE mailbox_id = ? AND uid = ? "
                "RETURNING body_id, size");
            del.bind(1, mailbox).bind(2, static_cast<std::int64_t>(uid));
            if (!del.step()) continue;
            auto body = del.i64(0);
            auto size = del.i64(1);
            del.run();
            db->prepare("UPDATE bodies SET refs = refs - 1 WHERE id = ?").bind(1, body).run();
            db->prepare("DELETE FROM bodies WHERE id = ? AND refs <= 0").bind(1, body).run();
            bury(*db, mailbox, uid, size);
            state = log_change(*db, user, Change::Kind::Message, Change::Op::Destroyed,
                               message_object(mailbox, uid));
            removed.push_back(uid);
        }
        if (!removed.empty()) compact_tombstones(*db, mailbox);
        tx.commit();
    }
    if (!removed.empty())
        notify(Event{Event::Kind::Expunged, user, mailbox, std::move(removed), state});
}

std::uint64_t SqliteStore::state(UserId user) {
    auto db = lease();
    auto st = db->prepare("SELECT state FROM users WHERE id = ?");
    st.bind(1, user);
    if (!st.step()) throw StoreError(StoreError::Kind::NotFound, "no such user");
    return static_cast<std::uint64_t>(st.i64(0));
}

Changes SqliteStore::changes_since(UserId user, std::uint64_t since, std::size_t max) {
    auto db = lease();
    Changes out;
    out.since = since;
    out.state = since;
    auto st = db->prepare(
        "SELECT state, kind, op, object FROM changes "
        "WHERE user_id = ? AND state > ? ORDER BY state LIMIT ?");
    st.bind(1, user)
        .bind(2, static_cast<std::int64_t>(since))
        .bind(3, static_cast<std::int64_t>(max + 1));
    while (st.step()) {
        if (out.changes.size() == max) {
            out.has_more = true;
            break;
        }
        Change c;
        c.state = static_cast<std::uint64_t>(st.i64(0));
        c.kind = static_cast<Change::Kind>(st.i64(1));
        c.op = static_cast<Change::Op>(st.i64(2));
        c.id = st.text(3);
        out.state = c.state;
        out.changes.push_back(std::move(c));
    }
    return out;
}

}  // namespace millipost::store

namespace millipost::store {

// Recipients are stored one per line: a forward-path never holds CR or LF (the SMTP parser
// refuses them), so the separator is unambiguous.
namespace {

std::string join_lines(std::span<const std::string> items) {
    std::string out;
    for (auto& r : items) {
        if (!out.empty()) out += '\n';
        out += r;
    }
    return out;
}

std::vector<std::string> split_lines(const std::string& r) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos <= r.size() && !r.empty()) {
        auto nl = r.find('\n', pos);
        if (nl == std::string::npos) nl = r.size();
        out.push_back(r.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return out;
}

// (Db::prepare caches statements by the address of their text: string literals only.)
#define MILLIPOST_OUTBOUND_COLUMNS \
    "id, sender, recipients, data, queued_at, attempts, next_attempt_at, last_error"

OutboundMessage outbound_row(sqlite::Stmt& st) {
    OutboundMessage m{st.i64(0), st.text(1), split_lines(st.text(2)), st.blob(3), st.i64(4)};
    m.attempts = static_cast<int>(st.i64(5));
    m.next_attempt_at = st.i64(6);
    m.last_error = st.text(7);
    return m;
}

}  // namespace

std::int64_t SqliteStore::enqueue_outbound(std::string_view sender,
                                           std::span<const std::string> recipients,
                                           std::string_view bytes, std::int64_t queued_at) {
    auto db = lease();
    sqlite::Transaction tx(*db);
    db->prepare(
          "INSERT INTO outbound(sender, recipients, data, queued_at, next_attempt_at) "
          "VALUES (?, ?, ?, ?, ?)")
        .bind(1, sender)
        .bind(2, join_lines(recipients))
        .bind_blob(3, bytes)
        .bind(4, queued_at)
        .bind(5, queued_at)
        .run();
    auto id = db->last_insert_rowid();
    tx.commit();
    return id;
}

std::vector<OutboundMessage> SqliteStore::outbound_queue() {
    auto db = lease();
    auto st = db->prepare("SELECT " MILLIPOST_OUTBOUND_COLUMNS " FROM outbound ORDER BY id");
    std::vector<OutboundMessage> out;
    while (st.step())
        out.push_back(outbound_row(st));
    return out;
}

void SqliteStore::remove_outbound(std::int64_t id) {
    auto db = lease();
    db->prepare("DELETE FROM outbound WHERE id = ?").bind(1, id).run();
}

std::vector<std::int64_t> SqliteStore::outbound_due(std::int64_t now, std::size_t max) {
    auto db = lease();
    auto st = db->prepare(
        "SELECT id FROM outbound WHERE next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?");
    st.bind(1, now).bind(2, static_cast<std::int64_t>(max));
    std::vector<std::int64_t> out;
    while (st.step())
        out.push_back(st.i64(0));
    return out;
}

std::optional<OutboundMessage> SqliteStore::outbound_entry(std::int64_t id) {
    auto db = lease();
    auto st = db->prepare("SELECT " MILLIPOST_OUTBOUND_COLUMNS " FROM outbound WHERE id = ?");
    st.bind(1, id);
    if (!st.step()) return std::nullopt;
    auto m = outbound_row(st);
    st.run();
    return m;
}

std::optional<std::int64_t> SqliteStore::outbound_next_due(std::int64_t now) {
    auto db = lease();
    auto st = db->prepare(
        "SELECT COUNT(*), MIN(next_attempt_at) FROM outbound WHERE next_attempt_at > ?");
    st.bind(1, now);
    std::optional<std::int64_t> out;
    if (st.step() && st.i64(0) > 0) out = st.i64(1);
    st.run();
    return out;
}

void SqliteStore::outbound_done(std::int64_t id, std::span<const std::string> recipients) {
    auto db = lease();
    sqlite::Transaction tx(*db);
    auto st = db->prepare("SELECT recipients FROM outbound WHERE id = ?");
    st.bind(1, id);
    if (!st.step()) return;
    auto pending = split_lines(st.text(0));
    st.run();
    std::erase_if(pending, [&](const std::string& r) {
        return std::find(recipients.begin(), recipients.end(), r) != recipients.end();
    });
    if (pending.empty())
        db->prepare("DELETE FROM outbound WHERE id = ?").bind(1, id).run();
    else
        db->prepare("UPDATE outbound SET recipients = ? WHERE id = ?")
            .bind(1, join_lines(pending))
            .bind(2, id)
            .run();
    tx.commit();
}

void SqliteStore::outbound_defer(std::int64_t id, std::int64_t next_attempt_at,
                                 std::string_view error) {
    auto db = lease();
    db->prepare(
          "UPDATE outbound SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? "
          "WHERE id = ?")
        .bind(1, next_attempt_at)
        .bind(2, error)
        .bind(3, id)
        .run();
}

}  // namespace millipost::store
