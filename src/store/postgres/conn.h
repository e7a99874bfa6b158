// A thin layer over libpq for the PostgreSQL backend: one connection, queries
// with bound parameters, results read as text (bytea decoded), SQLSTATEs
// mapped to ErrorKind.
//
// No call waits without a deadline: a query is sent without blocking
// (PQsendQueryParams) and its socket polled until `query_timeout_ms`; a
// stalled or unreachable server then fails the query with kTemporary, the
// connection is dropped (the next use reconnects); the server's own
// statement_timeout, set at connect time, ends the query on its side.
// Connecting is bounded by connect_timeout (per host).
//
// ExecPipeline sends several statements in libpq's pipeline mode (libpq 14+:
// one Sync at the end) and reads all their results: one round trip for all,
// which is how the writer group-commits a batch of deliveries.
// Thread-safety: a Conn is used by one thread at a time.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "store/postgres/round_trips.h"

namespace hato::store::pg {

struct ConnOptions {
  std::string conninfo;              // libpq connection string or URL (several hosts allowed)
  int connect_timeout_seconds = 5;   // per host (libpq connect_timeout)
  int statement_timeout_ms = 10000;  // server side; a query past it is cancelled
  int query_timeout_ms = 12000;      // client side: no answer by then = the server is stalled
  // A channel this connection LISTENs on from each connect (TakeNotifications).
  std::string listen{};
};

// A query parameter: text, raw bytes (bytea, sent binary) or NULL.
struct Param {
  std::string value;
  bool binary = false;
  bool null = false;
};
inline Param P(int64_t v) { return Param{std::to_string(v), false, false}; }
inline Param P(std::string_view v) { return Param{std::string(v), false, false}; }
inline Param P(const char* v) { return Param{std::string(v), false, false}; }
inline Param P(const std::string& v) { return Param{v, false, false}; }
inline Param Bytes(std::string_view v) { return Param{std::string(v), true, false}; }
inline Param Null() { return Param{{}, false, true}; }

// One statement of a pipeline (Conn::ExecPipeline).
struct Statement {
  std::string sql;
  std::vector<Param> params;
};

class Rows {
 public:
  Rows() = default;
  explicit Rows(PGresult* r) : r_(r) {}
  Rows(Rows&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  Rows& operator=(Rows&& o) noexcept {
    std::swap(r_, o.r_);
    return *this;
  }
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows() { PQclear(r_); }

  int size() const { return r_ ? PQntuples(r_) : 0; }
  bool empty() const { return size() == 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  int64_t Int(int row, int col) const;
  std::string Text(int row, int col) const;
  // A bytea column (text format "\x..." decoded to raw bytes).
  std::string Blob(int row, int col) const;
  // Rows changed by an INSERT/UPDATE/DELETE.
  int64_t Affected() const;

 private:
  PGresult* r_ = nullptr;
};

class Conn {
 public:
  explicit Conn(ConnOptions options) : options_(std::move(options)) {}
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() { Close(); }

  // Connects unless connected; kTemporary when no server (read-write) answers.
  Status Connect();
  bool connected() const { return conn_ != nullptr; }
  void Close();

  // Runs one statement (or, without params, several separated by ';').
  Result<Rows> Exec(std::string_view sql, const std::vector<Param>& params = {});
  // Sends `statements` without waiting for one another (pipeline mode) and
  // reads every result: one round trip. The outer error is the connection's
  // (lost or stalled: it is dropped, as by Exec); the inner results are per
  // statement: after the first statement that fails the server skips the
  // rest (they fail with kTemporary, "skipped") and leaves an open
  // transaction block aborted. Only single statements with parameters
  // (extended query protocol); no COPY.
  Result<std::vector<Result<Rows>>> ExecPipeline(const std::vector<Statement>& statements);
  // Waits up to `timeout_ms` for notifications (LISTEN) and returns them as
  // (channel, payload) pairs; kTemporary when the connection is lost.
  Result<std::vector<std::pair<std::string, std::string>>> WaitNotifications(int timeout_ms);
  // The notifications already received (LISTEN; ConnOptions::listen),
  // without waiting or reading the socket: those that came with the results
  // read so far (a session's own NOTIFYs arrive with its COMMIT's result).
  std::vector<std::pair<std::string, std::string>> TakeNotifications();
  int backend_pid() const { return conn_ ? PQbackendPID(conn_) : 0; }

 private:
  Status WaitReadable(int64_t deadline_ms);
  bool Send(const std::string& sql, const std::vector<Param>& params);
  Status Flush(int64_t deadline_ms);
  // The next result (nullptr: the end of a statement's results), waiting
  // until the deadline without blocking past it.
  Result<PGresult*> NextResult(int64_t deadline_ms);
  // The error of a failed result, mapped (KindOfSqlState); `drop` is set
  // when the connection must be dropped after it.
  Error ResultError(PGresult* r, std::string_view sql, bool& drop);
  static void CountRoundTrip();
  Error Fail(ErrorKind kind, const std::string& message);
  // The name of `sql` prepared on this connection, preparing it (one round
  // trip, outside pipeline mode) at its second use; nullptr: sent unnamed
  // (first use, no parameters, the cache full, or the prepare failed).
  const std::string* Prepared(const std::string& sql, size_t params);

  ConnOptions options_;
  PGconn* conn_ = nullptr;
  // Per connection (cleared with it): statements with parameters seen once,
  // and those prepared (server-side named statements: the server parses and
  // plans them once, not at every execution). Both bounded
  // (kPreparedStatements); statement texts that vary (lists inlined) are
  // seen once each and never prepared.
  std::unordered_map<std::string, int> seen_;
  std::unordered_map<std::string, std::string> prepared_;
};

// The SQLSTATE of an error result mapped for a mail client: connection loss,
// timeouts, lack of resources, serialization failures, a read-only server
// (a standby after failover) are temporary; unique violations kExists.
ErrorKind KindOfSqlState(std::string_view sqlstate);
// Whether the connection must be dropped after this SQLSTATE (the server went
// away, shut down or is now read-only).
bool DropsConnection(std::string_view sqlstate);
// Whether an error of Conn (its message ends in "[SQLSTATE] (sql)") is a
// deadlock (40P01) or serialization failure (40001): the transaction lost a
// race with another writer and the same work may simply be run again.
bool LostARace(const Error& e);

// A value quoted as a SQL string literal ('...', quotes doubled), for the
// few statements that take no parameters (NOTIFY payloads, SET).
std::string QuoteLiteral(std::string_view s);

}  // namespace hato::store::pg
