// search/fts5_index.cpp: the SQLite FTS5 trigram implementation of FullTextIndex.
#include "search/fts5_index.h"

#include <sqlite3.h>

#include <mutex>
#include <stdexcept>
#include <utility>

namespace millipost::search {
namespace {

constexpr MailboxId kMaxMailbox = MailboxId{1} << 31;

// Fields are columns of one FTS5 table; Header and Text use column filters over several. The
// FTS5 shadow table text_docsize (one small row per message, id = rowid; present as long as the
// table keeps the default columnsize=1) lists the indexed rows without reading their text.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS mailboxes(mailbox INTEGER PRIMARY KEY, user INTEGER NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS text USING fts5(
    subject, from_addr, to_addr, cc_addr, bcc_addr, header, body,
    tokenize = 'trigram case_sensitive 0');
)sql";

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what) {
    std::string msg = "search index: ";
    msg += what;
    msg += ": ";
    msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    throw std::runtime_error(msg);
}

// A prepared statement, finalized on scope exit.
class Stmt {
  public:
    Stmt(sqlite3* db, const char* sql) : db_(db) {
        if (int rc = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); rc != SQLITE_OK)
            fail(db, rc, sql);
    }
    ~Stmt() { sqlite3_finalize(s_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    Stmt& bind(int i, std::int64_t v) {
        if (int rc = sqlite3_bind_int64(s_, i, v); rc != SQLITE_OK) fail(db_, rc, "bind");
        return *this;
    }
    Stmt& bind(int i, std::string_view v) {
        if (int rc = sqlite3_bind_text64(s_, i, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
            rc != SQLITE_OK)
            fail(db_, rc, "bind");
        return *this;
    }
    bool step() {
        int rc = sqlite3_step(s_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        fail(db_, rc, sqlite3_sql(s_));
    }
    // For reuse within one call: clears the previous run.
    void reset() {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }
    std::int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }

  private:
    sqlite3* db_;
    sqlite3_stmt* s_ = nullptr;
};

void exec(sqlite3* db, const char* sql) {
    char* err = nullptr;
    if (int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err); rc != SQLITE_OK) {
        std::string msg = err ? err : sqlite3_errstr(rc);
        sqlite3_free(err);
        throw std::runtime_error("search index: " + std::string(sql) + ": " + msg);
    }
}

sqlite3* open_db(const std::string& path) {
    sqlite3* db = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
        sqlite3_close(db);
        throw std::runtime_error("search index: cannot open " + path + ": " + msg);
    }
    sqlite3_busy_timeout(db, 30000);
    try {
        exec(db, "PRAGMA journal_mode=WAL");
        // The index is derived data, rebuildable from the store: losing the last transactions
        // on power loss only makes it lag, which callers repair (indexed_uids), so WAL's
        // synchronous=NORMAL (no fsync per commit) is enough.
        exec(db, "PRAGMA synchronous=NORMAL");
    } catch (...) {
        sqlite3_close(db);
        throw;
    }
    return db;
}

// BEGIN IMMEDIATE ... COMMIT, rolled back when left by an exception.
class Transaction {
  public:
    explicit Transaction(sqlite3* db) : db_(db) { exec(db_, "BEGIN IMMEDIATE"); }
    ~Transaction() {
        if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit() {
        exec(db_, "COMMIT");
        done_ = true;
    }

  private:
    sqlite3* db_;
    bool done_ = false;
};

std::int64_t row_lo(MailboxId mailbox) {
    if (mailbox < 0 || mailbox >= kMaxMailbox)
        throw std::invalid_argument("search index: mailbox id out of range");
    return mailbox << 32;
}
std::int64_t row_hi(MailboxId mailbox) {
    return row_lo(mailbox) | 0xffffffffLL;
}

// Valid UTF-8 without NUL: the number of characters; otherwise std::nullopt.
std::optional<std::size_t> utf8_chars(std::string_view s) {
    std::size_t chars = 0;
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t n;
        std::uint32_t cp;
        if (c == 0) return std::nullopt;
        if (c < 0x80) {
            n = 1;
            cp = c;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            cp = c & 0x07;
        } else {
            return std::nullopt;
        }
        if (i + n > s.size()) return std::nullopt;
        for (std::size_t k = 1; k < n; ++k) {
            auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xc0) != 0x80) return std::nullopt;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return std::nullopt;
        i += n;
        ++chars;
    }
    return chars;
}

const char* column_filter(Field field) {
    switch (field) {
        case Field::Subject:
            return "{subject}";
        case Field::From:
            return "{from_addr}";
        case Field::To:
            return "{to_addr}";
        case Field::Cc:
            return "{cc_addr}";
        case Field::Bcc:
            return "{bcc_addr}";
        case Field::Header:
            return "{header}";
        case Field::Body:
            return "{body}";
        case Field::Text:
            return "{header body}";
    }
    throw std::invalid_argument("search index: unknown field");
}

}  // namespace

std::string fts5_query(Field field, std::string_view needle) {
    std::string q = column_filter(field);
    q += " : \"";
    for (char c : needle) {
        if (c == '"') q += '"';
        q += c;
    }
    q += '"';
    return q;
}

struct Fts5Index::Impl {
    std::string path;
    std::mutex write_mutex;  // guards `writer`
    sqlite3* writer = nullptr;
    std::mutex pool_mutex;  // guards `readers`
    std::vector<sqlite3*> readers;

    // A read connection for the caller's exclusive use, returned to the pool on destruction.
    class Reader {
      public:
        explicit Reader(Impl& impl) : impl_(impl) {
            {
                std::lock_guard lock(impl_.pool_mutex);
                if (!impl_.readers.empty()) {
                    db_ = impl_.readers.back();
                    impl_.readers.pop_back();
                }
            }
            if (!db_) db_ = open_db(impl_.path);
        }
        ~Reader() {
            std::lock_guard lock(impl_.pool_mutex);
            impl_.readers.push_back(db_);
        }
        Reader(const Reader&) = delete;
        Reader& operator=(const Reader&) = delete;
        sqlite3* get() const { return db_; }

      private:
        Impl& impl_;
        sqlite3* db_ = nullptr;
    };

    ~Impl() {
        for (sqlite3* db : readers)
            sqlite3_close(db);
        sqlite3_close(writer);
    }

    // Whether `mailbox` is registered to `user` (an unknown mailbox has nothing indexed).
    static bool owned(sqlite3* db, UserId user, MailboxId mailbox) {
        Stmt s(db, "SELECT user FROM mailboxes WHERE mailbox = ?");
        s.bind(1, mailbox);
        return s.step() && s.i64(0) == user;
    }

    static void delete_range(sqlite3* db, MailboxId mailbox) {
        Stmt s(db, "DELETE FROM text WHERE rowid BETWEEN ? AND ?");
        s.bind(1, row_lo(mailbox)).bind(2, row_hi(mailbox)).step();
    }
};

Fts5Index::Fts5Index(const std::string& path) : impl_(std::make_unique<Impl>()) {
    impl_->path = path;
    impl_->writer = open_db(path);
    exec(impl_->writer, kSchema);
}

Fts5Index::~Fts5Index() = default;

void Fts5Index::add(UserId user, MailboxId mailbox, std::span<const Document> docs) {
    const std::int64_t lo = row_lo(mailbox);
    std::lock_guard lock(impl_->write_mutex);
    sqlite3* db = impl_->writer;
    Transaction tx(db);
    {
        Stmt find(db, "SELECT user FROM mailboxes WHERE mailbox = ?");
        find.bind(1, mailbox);
        bool known = find.step();
        if (known && find.i64(0) != user) {
            // The store reused the id of a mailbox whose drop the index missed: stale rows.
            Impl::delete_range(db, mailbox);
            known = false;
        }
        if (!known) {
            Stmt reg(db, "INSERT OR REPLACE INTO mailboxes(mailbox, user) VALUES (?, ?)");
            reg.bind(1, mailbox).bind(2, user).step();
        }
    }
    Stmt del(db, "DELETE FROM text WHERE rowid = ?");
    Stmt ins(db,
             "INSERT INTO text(rowid, subject, from_addr, to_addr, cc_addr, bcc_addr, header, "
             "body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    for (const Document& d : docs) {
        const std::int64_t row = lo | d.uid;
        del.reset();
        del.bind(1, row).step();
        const Fields& f = d.fields;
        ins.reset();
        ins.bind(1, row)
            .bind(2, f.subject)
            .bind(3, f.from)
            .bind(4, f.to)
            .bind(5, f.cc)
            .bind(6, f.bcc)
            .bind(7, f.header)
            .bind(8, f.body)
            .step();
    }
    tx.commit();
}

void Fts5Index::remove(UserId user, MailboxId mailbox, std::span<const std::uint32_t> uids) {
    const std::int64_t lo = row_lo(mailbox);
    std::lock_guard lock(impl_->write_mutex);
    sqlite3* db = impl_->writer;
    Transaction tx(db);
    if (!Impl::owned(db, user, mailbox)) return;
    Stmt del(db, "DELETE FROM text WHERE rowid = ?");
    for (std::uint32_t uid : uids) {
        del.reset();
        del.bind(1, lo | uid).step();
    }
    tx.commit();
}

void Fts5Index::drop_mailbox(UserId user, MailboxId mailbox) {
    row_lo(mailbox);  // validates
    std::lock_guard lock(impl_->write_mutex);
    sqlite3* db = impl_->writer;
    Transaction tx(db);
    if (!Impl::owned(db, user, mailbox)) return;
    Impl::delete_range(db, mailbox);
    Stmt s(db, "DELETE FROM mailboxes WHERE mailbox = ?");
    s.bind(1, mailbox).step();
    tx.commit();
}

std::vector<std::uint32_t> Fts5Index::indexed_uids(UserId user, MailboxId mailbox) {
    const std::int64_t lo = row_lo(mailbox), hi = row_hi(mailbox);
    Impl::Reader r(*impl_);
    std::vector<std::uint32_t> uids;
    if (!Impl::owned(r.get(), user, mailbox)) return uids;
    Stmt s(r.get(), "SELECT id FROM text_docsize WHERE id BETWEEN ? AND ? ORDER BY id");
    s.bind(1, lo).bind(2, hi);
    while (s.step())
        uids.push_back(static_cast<std::uint32_t>(s.i64(0) & 0xffffffff));
    return uids;
}

std::uint32_t Fts5Index::last_indexed_uid(UserId user, MailboxId mailbox) {
    const std::int64_t lo = row_lo(mailbox), hi = row_hi(mailbox);
    Impl::Reader r(*impl_);
    if (!Impl::owned(r.get(), user, mailbox)) return 0;
    Stmt s(r.get(), "SELECT max(id) FROM text_docsize WHERE id BETWEEN ? AND ?");
    s.bind(1, lo).bind(2, hi);
    if (!s.step() || s.i64(0) < lo) return 0;  // max() of no rows is NULL (0)
    return static_cast<std::uint32_t>(s.i64(0) & 0xffffffff);
}

std::optional<std::vector<std::uint32_t>> Fts5Index::find(UserId user, MailboxId mailbox,
                                                          Field field, std::string_view needle) {
    const std::int64_t lo = row_lo(mailbox), hi = row_hi(mailbox);
    auto chars = utf8_chars(needle);
    if (!chars || *chars < kMinNeedleChars) return std::nullopt;
    const std::string query = fts5_query(field, needle);
    Impl::Reader r(*impl_);
    std::vector<std::uint32_t> uids;
    if (!Impl::owned(r.get(), user, mailbox)) return uids;
    // A trigram phrase matches exactly the rows whose column holds the needle as a substring
    // after case folding (consecutive trigrams at consecutive positions): no false positives,
    // so no post-filter (fts5_index_test checks this against a reference).
    Stmt s(r.get(),
           "SELECT rowid FROM text WHERE text MATCH ? AND rowid BETWEEN ? AND ? ORDER BY rowid");
    s.bind(1, query).bind(2, lo).bind(3, hi);
    while (s.step())
        uids.push_back(static_cast<std::uint32_t>(s.i64(0) & 0xffffffff));
    return uids;
}

void Fts5Index::optimize() {
    std::lock_guard lock(impl_->write_mutex);
    exec(impl_->writer, "INSERT INTO text(text) VALUES('optimize')");
}

}  // namespace millipost::search
