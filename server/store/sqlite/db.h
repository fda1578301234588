// store/sqlite/db.h: a thin RAII layer over the SQLite C API (connection, cached statements).
#pragma once
#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace millipost::store::sqlite {

class Stmt {
  public:
    Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
    ~Stmt() {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    Stmt& bind(int i, std::int64_t v);
    Stmt& bind(int i, std::string_view v);
    Stmt& bind_blob(int i, std::string_view v);
    // Steps once: true while a row is available; throws on error.
    bool step();
    void run() {
        while (step()) {
        }
    }

    std::int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
    std::string text(int col) const;
    std::string blob(int col) const;

  private:
    sqlite3* db_;
    sqlite3_stmt* s_;
};

class Db {
  public:
    explicit Db(const std::string& path);
    ~Db();
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;

    void exec(const char* sql);
    // A prepared statement cached per connection for the connection's lifetime.
    Stmt prepare(const char* sql);
    std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
    int changes() const { return sqlite3_changes(db_); }
    sqlite3* raw() { return db_; }

  private:
    sqlite3* db_ = nullptr;
    std::map<const char*, sqlite3_stmt*> cache_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when left by an exception.
class Transaction {
  public:
    explicit Transaction(Db& db, bool immediate = true);
    ~Transaction();
    void commit();

  private:
    Db& db_;
    bool done_ = false;
};

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what);

}  // namespace millipost::store::sqlite
