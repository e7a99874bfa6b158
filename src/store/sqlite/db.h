// A thin RAII layer over the SQLite C API for the embedded backend.
// Thread-safety: a Db is used by one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.h"

namespace hato::store::sqlite {

// SQLITE_BUSY/IOERR/FULL/... are temporary for a mail client; the rest internal.
Error SqliteError(sqlite3* db, int rc, std::string_view what);

class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Stmt(Stmt&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(stmt_); }

  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Stmt& Bind(int i, std::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(int i, std::string_view v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindNull(int i) {
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  // Returns true when a row is available, false when done.
  Result<bool> Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, sqlite3_sql(stmt_));
  }
  // Calls row(*this) for each row, to the end.
  template <typename F>
  Status ForEachRow(F row) {
    while (true) {
      auto r = Step();
      if (!r) return r.error();
      if (!*r) return Ok();
      row(*this);
    }
  }
  // Runs to completion (for statements without rows).
  Status Run() {
    auto r = Step();
    if (!r) return r.error();
    return Ok();
  }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  int ParamCount() const { return sqlite3_bind_parameter_count(stmt_); }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string Text(int col) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : "";
  }
  std::string Blob(int col) const {
    auto p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : "";
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class Db {
 public:
  Db() = default;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db() {
    cache_.clear();
    sqlite3_close_v2(db_);
  }

  // Opens with WAL journaling and synchronous=FULL: a COMMIT returns only
  // after the WAL is fsync'd (docs/storage.md). `vfs` null: SQLite's default
  // (tests pass the fault-injecting one, fault_vfs.h).
  // `create`: make the file when missing (the writer); readers never do, so a
  // deleted database is an error, not a new empty store.
  Status Open(const std::string& path, bool read_only, const char* vfs = nullptr,
              bool create = true);
  Status Exec(std::string_view sql);
  Result<Stmt> Prepare(std::string_view sql);
  // A prepared statement kept for the life of the connection, reset and ready
  // to bind. `sql` must be a string literal (its address is the cache key).
  Result<Stmt*> Cached(const char* sql);
  // Resets every cached statement, ending any read they hold open.
  void ResetAll() {
    for (auto& [sql, stmt] : cache_) stmt.Reset();
  }
  int64_t LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }
  sqlite3* raw() { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, Stmt> cache_;
};

}  // namespace hato::store::sqlite
