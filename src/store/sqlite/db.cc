#include "store/sqlite/db.h"

#include <sys/stat.h>

namespace hato::store::sqlite {

Error SqliteError(sqlite3* db, int rc, std::string_view what) {
  int primary = rc & 0xff;
  ErrorKind kind = ErrorKind::kInternal;
  switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
      kind = ErrorKind::kTemporary;
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      kind = ErrorKind::kCorrupt;
      break;
    case SQLITE_CONSTRAINT:
      kind = ErrorKind::kExists;
      break;
    default:
      break;
  }
  std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string w(what.substr(0, 120));
  return Err(kind, "sqlite: " + msg + " (" + w + ")");
}

Status Db::Open(const std::string& path, bool read_only, const char* vfs, bool create) {
  int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (!read_only && create) flags |= SQLITE_OPEN_CREATE;
  flags |= SQLITE_OPEN_NOMUTEX;  // one thread at a time per connection
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, vfs);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, "open " + path);
  sqlite3_busy_timeout(db_, 5000);
  if (!read_only) {
    // Password hashes live here: owner only (issue 11). SQLite creates the
    // -wal and -shm files with the database file's mode, so this covers them
    // once they are recreated; existing ones are fixed too.
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::string p = path + suffix;
      (void)::chmod(p.c_str(), 0600);
    }
    if (auto s = Exec("PRAGMA journal_mode=WAL"); !s) return s;
  }
  // FULL: the WAL is fsync'd at every COMMIT, so a committed transaction
  // survives power loss, not just a process crash.
  if (auto s = Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON"); !s) return s;
  return Ok();
}

Status Db::Exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    sqlite3_free(err);
    return SqliteError(db_, rc, sql);
  }
  return Ok();
}

Result<Stmt> Db::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, sql);
  return Stmt(db_, stmt);
}

Result<Stmt*> Db::Cached(const char* sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    auto st = Prepare(sql);
    if (!st) return st.error();
    it = cache_.emplace(sql, std::move(*st)).first;
  } else {
    it->second.Reset();
  }
  return &it->second;
}

}  // namespace hato::store::sqlite
