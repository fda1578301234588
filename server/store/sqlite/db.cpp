// store/sqlite/db.cpp: RAII layer over the SQLite C API (see db.h).
#include "store/sqlite/db.h"

#include "store/mail_store.h"

namespace millipost::store::sqlite {

void fail(sqlite3* db, int rc, std::string_view what) {
    std::string msg(what);
    msg += ": ";
    msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    auto kind =
        (rc & 0xff) == SQLITE_CONSTRAINT ? StoreError::Kind::Exists : StoreError::Kind::Backend;
    throw StoreError(kind, msg);
}

Stmt& Stmt::bind(int i, std::int64_t v) {
    if (int rc = sqlite3_bind_int64(s_, i, v); rc != SQLITE_OK) fail(db_, rc, "bind");
    return *this;
}

Stmt& Stmt::bind(int i, std::string_view v) {
    // An empty view may have no data pointer, which SQLite would bind as NULL.
    const char* data = v.data() ? v.data() : "";
    if (int rc = sqlite3_bind_text(s_, i, data, static_cast<int>(v.size()), SQLITE_STATIC);
        rc != SQLITE_OK)
        fail(db_, rc, "bind");
    return *this;
}

Stmt& Stmt::bind_blob(int i, std::string_view v) {
    const char* data = v.data() ? v.data() : "";  // as in bind(): empty, not NULL
    if (int rc = sqlite3_bind_blob64(s_, i, data, v.size(), SQLITE_STATIC); rc != SQLITE_OK)
        fail(db_, rc, "bind");
    return *this;
}

bool Stmt::step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, rc, sqlite3_sql(s_));
}

std::string Stmt::text(int col) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
}

std::string Stmt::blob(int col) const {
    auto p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
}

Db::Db(const std::string& path) {
    int rc =
        sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        throw StoreError(StoreError::Kind::Backend, "cannot open " + path + ": " + msg);
    }
    sqlite3_busy_timeout(db_, 30000);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");  // an acknowledged message survives power loss
    exec("PRAGMA foreign_keys=ON");
}

Db::~Db() {
    for (auto& [sql, s] : cache_)
        sqlite3_finalize(s);
    sqlite3_close(db_);
}

void Db::exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        std::string msg = err ? err : "";
        sqlite3_free(err);
        throw StoreError(StoreError::Kind::Backend, std::string(sql) + ": " + msg);
    }
}

Stmt Db::prepare(const char* sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
        sqlite3_stmt* s = nullptr;
        int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
        if (rc != SQLITE_OK) fail(db_, rc, sql);
        it = cache_.emplace(sql, s).first;
    }
    return Stmt(db_, it->second);
}

Transaction::Transaction(Db& db, bool immediate) : db_(db) {
    db_.exec(immediate ? "BEGIN IMMEDIATE" : "BEGIN");
}

Transaction::~Transaction() {
    if (!done_) sqlite3_exec(db_.raw(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
    db_.exec("COMMIT");
    done_ = true;
}

}  // namespace millipost::store::sqlite
