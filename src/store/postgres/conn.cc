#include "store/postgres/conn.h"

#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>

namespace hato::store::pg {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::atomic<uint64_t> round_trips{0};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

uint64_t RoundTrips() { return round_trips.load(std::memory_order_relaxed); }

void Conn::CountRoundTrip() { round_trips.fetch_add(1, std::memory_order_relaxed); }

int64_t Rows::Int(int row, int col) const {
  const char* v = PQgetvalue(r_, row, col);
  if (v == nullptr || *v == '\0') return 0;
  if (v[0] == 't' && v[1] == '\0') return 1;  // boolean
  if (v[0] == 'f' && v[1] == '\0') return 0;
  return std::strtoll(v, nullptr, 10);
}

std::string Rows::Text(int row, int col) const {
  const char* v = PQgetvalue(r_, row, col);
  return v ? std::string(v, static_cast<size_t>(PQgetlength(r_, row, col))) : std::string();
}

std::string Rows::Blob(int row, int col) const {
  if (IsNull(row, col)) return {};
  const char* v = PQgetvalue(r_, row, col);
  size_t n = static_cast<size_t>(PQgetlength(r_, row, col));
  std::string out;
  if (n >= 2 && v[0] == '\\' && v[1] == 'x') {
    out.reserve((n - 2) / 2);
    for (size_t i = 2; i + 1 < n; i += 2) {
      int hi = HexValue(v[i]), lo = HexValue(v[i + 1]);
      if (hi < 0 || lo < 0) break;
      out += static_cast<char>((hi << 4) | lo);
    }
  }
  return out;
}

int64_t Rows::Affected() const {
  const char* n = r_ ? PQcmdTuples(r_) : nullptr;
  return n && *n ? std::strtoll(n, nullptr, 10) : 0;
}

ErrorKind KindOfSqlState(std::string_view s) {
  if (s.size() != 5) return ErrorKind::kTemporary;  // no SQLSTATE: the connection failed
  std::string_view cls = s.substr(0, 2);
  if (cls == "08" || cls == "53" || cls == "57" || cls == "40" || cls == "58") {
    return ErrorKind::kTemporary;
  }
  if (s == "55P03" || s == "25006" || s == "25P03") return ErrorKind::kTemporary;
  if (cls == "23") return ErrorKind::kExists;
  if (cls == "22") return ErrorKind::kInvalid;
  if (s == "XX001" || s == "XX002") return ErrorKind::kCorrupt;
  return ErrorKind::kInternal;
}

bool DropsConnection(std::string_view s) {
  return s.size() != 5 || s.substr(0, 2) == "08" || s.substr(0, 3) == "57P" || s == "25006";
}

bool LostARace(const Error& e) {
  return e.message.find("[40P01]") != std::string::npos ||
         e.message.find("[40001]") != std::string::npos;
}

std::string QuoteLiteral(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

void Conn::Close() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  seen_.clear();
  prepared_.clear();
}

namespace {
// Statements prepared per connection at most (and texts remembered as seen
// once): the store's fixed statements are fewer; texts past it run unnamed.
constexpr size_t kPreparedStatements = 256;
// Longer texts (lists of ids inlined) are neither remembered nor prepared.
constexpr size_t kPreparedSqlBytes = 16 * 1024;
}  // namespace

const std::string* Conn::Prepared(const std::string& sql, size_t params) {
  if (params == 0 || conn_ == nullptr || sql.size() > kPreparedSqlBytes) return nullptr;
  if (auto it = prepared_.find(sql); it != prepared_.end()) return &it->second;
  if (prepared_.size() >= kPreparedStatements) return nullptr;
  if (seen_.size() >= kPreparedStatements) seen_.clear();
  if (++seen_[sql] < 2) return nullptr;
  seen_.erase(sql);
  // Prepared synchronously, before the statement's own round trip: a
  // pipeline's Parse would be skipped after an earlier error in it.
  std::string name = "h";
  name += std::to_string(prepared_.size());
  CountRoundTrip();
  if (PQsendPrepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(params), nullptr) != 1)
    return nullptr;
  int64_t deadline = NowMs() + options_.query_timeout_ms;
  if (!Flush(deadline).ok()) return nullptr;
  bool ok = true;
  while (true) {
    auto r = NextResult(deadline);
    if (!r) return nullptr;  // the connection is dropped: the caller's Send fails
    if (*r == nullptr) break;
    ok = ok && PQresultStatus(*r) == PGRES_COMMAND_OK;
    PQclear(*r);
  }
  // Not prepared (in an aborted transaction, say): sent unnamed, which fails
  // or succeeds as it would have.
  if (!ok) return nullptr;
  return &prepared_.emplace(sql, std::move(name)).first->second;
}

Error Conn::Fail(ErrorKind kind, const std::string& message) {
  Close();
  return Err(kind, "postgres: " + message);
}

Status Conn::Connect() {
  if (conn_ != nullptr) {
    if (PQstatus(conn_) == CONNECTION_OK) return Ok();
    Close();
  }
  // Our defaults first; the connection string (expanded from dbname) overrides them.
  std::string timeout = std::to_string(options_.connect_timeout_seconds);
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), "hato", options_.conninfo.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr) return Err(ErrorKind::kTemporary, "postgres: out of memory");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return Err(ErrorKind::kTemporary, "postgres: cannot connect: " + msg);
  }
  conn_ = c;
  if (PQsetnonblocking(conn_, 1) != 0)
    return Fail(ErrorKind::kTemporary, "cannot set non-blocking");
  // client_min_messages: NOTICEs (CREATE ... IF NOT EXISTS) are not for the log.
  std::string set = "SET statement_timeout = " + std::to_string(options_.statement_timeout_ms) +
                    "; SET client_min_messages = warning; SET lock_timeout = " +
                    std::to_string(options_.statement_timeout_ms);
  if (!options_.listen.empty()) set += "; LISTEN " + options_.listen;
  if (auto r = Exec(set); !r) return r.error();
  return Ok();
}

Status Conn::WaitReadable(int64_t deadline_ms) {
  while (true) {
    int64_t left = deadline_ms - NowMs();
    if (left <= 0) return Err(ErrorKind::kTemporary, "timeout");
    pollfd p{PQsocket(conn_), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return Ok();
    if (n < 0 && errno != EINTR) return Err(ErrorKind::kTemporary, "poll failed");
  }
}

bool Conn::Send(const std::string& sql, const std::vector<Param>& params) {
  if (params.empty() && PQpipelineStatus(conn_) == PQ_PIPELINE_OFF) {
    return PQsendQuery(conn_, sql.c_str()) == 1;
  }
  std::vector<const char*> values(params.size());
  std::vector<int> lengths(params.size()), formats(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    values[i] = params[i].null ? nullptr : params[i].value.c_str();
    lengths[i] = static_cast<int>(params[i].value.size());
    formats[i] = params[i].binary ? 1 : 0;
  }
  if (auto it = prepared_.find(sql); it != prepared_.end()) {
    return PQsendQueryPrepared(conn_, it->second.c_str(), static_cast<int>(params.size()),
                               values.data(), lengths.data(), formats.data(), 0) == 1;
  }
  return PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                           values.data(), lengths.data(), formats.data(), 0) == 1;
}

// Flushes what libpq could not send at once (large parameters, a pipeline),
// reading meanwhile so that a server busy writing results never blocks us both.
Status Conn::Flush(int64_t deadline_ms) {
  while (true) {
    int f = PQflush(conn_);
    if (f == 0) return Ok();
    if (f < 0) return Fail(ErrorKind::kTemporary, PQerrorMessage(conn_));
    int64_t left = deadline_ms - NowMs();
    pollfd p{PQsocket(conn_), POLLIN | POLLOUT, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 0))) == 0) {
      return Fail(ErrorKind::kTemporary, "the database did not take the query in " +
                                             std::to_string(options_.query_timeout_ms) + " ms");
    }
    if ((p.revents & POLLIN) && !PQconsumeInput(conn_)) {
      return Fail(ErrorKind::kTemporary, PQerrorMessage(conn_));
    }
  }
}

Result<PGresult*> Conn::NextResult(int64_t deadline_ms) {
  while (PQisBusy(conn_)) {
    if (auto st = WaitReadable(deadline_ms); !st) {
      // A stalled server or network: drop the connection. No PQcancel: it
      // blocks on the same stalled server; the server's statement_timeout
      // (and the closed socket) end the query on its side.
      return Fail(ErrorKind::kTemporary, "the database did not answer in " +
                                             std::to_string(options_.query_timeout_ms) + " ms");
    }
    if (!PQconsumeInput(conn_)) return Fail(ErrorKind::kTemporary, PQerrorMessage(conn_));
  }
  return PQgetResult(conn_);
}

Error Conn::ResultError(PGresult* r, std::string_view sql, bool& drop) {
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  std::string error_state = state ? state : "";
  std::string msg = primary ? primary : PQerrorMessage(conn_);
  drop = DropsConnection(error_state);
  return Err(KindOfSqlState(error_state), "postgres: " + msg + " [" + error_state + "] (" +
                                              std::string(sql.substr(0, 120)) + ")");
}

Result<Rows> Conn::Exec(std::string_view sql, const std::vector<Param>& params) {
  // Never reconnect here: a new session would run the rest of a transaction
  // in autocommit. Callers Connect() before a transaction or a read.
  if (conn_ == nullptr) return Err(ErrorKind::kTemporary, "postgres: connection lost");
  std::string q(sql);
  (void)Prepared(q, params.size());
  if (conn_ == nullptr) return Err(ErrorKind::kTemporary, "postgres: connection lost");
  CountRoundTrip();
  if (!Send(q, params)) return Fail(ErrorKind::kTemporary, PQerrorMessage(conn_));
  int64_t deadline = NowMs() + options_.query_timeout_ms;
  if (auto st = Flush(deadline); !st) return st.error();
  Rows last;
  std::optional<Error> error;
  bool drop = false;
  while (true) {
    auto r = NextResult(deadline);
    if (!r) return r.error();
    if (*r == nullptr) break;
    ExecStatusType status = PQresultStatus(*r);
    if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) {
      if (!error) error = ResultError(*r, q, drop);
      PQclear(*r);
      continue;
    }
    last = Rows(*r);
  }
  if (!error && PQstatus(conn_) != CONNECTION_OK) {
    error = Err(ErrorKind::kTemporary, std::string("postgres: ") + PQerrorMessage(conn_));
  }
  if (error) {
    if (drop || PQstatus(conn_) != CONNECTION_OK) Close();
    return *error;
  }
  return last;
}

Result<std::vector<Result<Rows>>> Conn::ExecPipeline(const std::vector<Statement>& statements) {
  if (conn_ == nullptr) return Err(ErrorKind::kTemporary, "postgres: connection lost");
  std::vector<Result<Rows>> out;
  if (statements.empty()) return out;
  for (const auto& s : statements) (void)Prepared(s.sql, s.params.size());
  if (conn_ == nullptr) return Err(ErrorKind::kTemporary, "postgres: connection lost");
  CountRoundTrip();
  if (PQenterPipelineMode(conn_) != 1) return Fail(ErrorKind::kTemporary, PQerrorMessage(conn_));
  int64_t deadline = NowMs() + options_.query_timeout_ms;
  for (const auto& s : statements) {
    if (!Send(s.sql, s.params)) return Fail(ErrorKind::kTemporary, PQerrorMessage(conn_));
  }
  if (PQpipelineSync(conn_) != 1) return Fail(ErrorKind::kTemporary, PQerrorMessage(conn_));
  if (auto st = Flush(deadline); !st) return st.error();
  bool drop = false;
  out.reserve(statements.size());
  for (const auto& s : statements) {
    Result<Rows> one = Rows();
    while (true) {  // a statement's results end with nullptr
      auto r = NextResult(deadline);
      if (!r) return r.error();
      if (*r == nullptr) break;
      ExecStatusType status = PQresultStatus(*r);
      if (status == PGRES_PIPELINE_ABORTED) {
        one = Err(ErrorKind::kTemporary, "postgres: skipped after an earlier error");
        PQclear(*r);
      } else if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) {
        bool d = false;
        if (one) one = ResultError(*r, s.sql, d);
        drop = drop || d;
        PQclear(*r);
      } else {
        one = Rows(*r);
      }
    }
    out.push_back(std::move(one));
  }
  auto sync = NextResult(deadline);
  if (!sync) return sync.error();
  bool synced = *sync != nullptr && PQresultStatus(*sync) == PGRES_PIPELINE_SYNC;
  PQclear(*sync);
  if (!synced || PQexitPipelineMode(conn_) != 1 || drop || PQstatus(conn_) != CONNECTION_OK) {
    for (const auto& r : out) {
      if (!r && drop) {
        Close();
        return r.error();
      }
    }
    return Fail(ErrorKind::kTemporary, std::string("pipeline failed: ") + PQerrorMessage(conn_));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Conn::TakeNotifications() {
  std::vector<std::pair<std::string, std::string>> out;
  if (conn_ == nullptr) return out;
  while (PGnotify* n = PQnotifies(conn_)) {
    out.emplace_back(n->relname, n->extra);
    PQfreemem(n);
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> Conn::WaitNotifications(int timeout_ms) {
  if (conn_ == nullptr) return Err(ErrorKind::kTemporary, "postgres: connection lost");
  std::vector<std::pair<std::string, std::string>> out;
  auto drain = [&] {
    while (PGnotify* n = PQnotifies(conn_)) {
      out.emplace_back(n->relname, n->extra);
      PQfreemem(n);
    }
  };
  drain();
  if (!out.empty()) return out;
  pollfd p{PQsocket(conn_), POLLIN, 0};
  int n = ::poll(&p, 1, timeout_ms);
  if (n > 0) {
    if (!PQconsumeInput(conn_)) return Fail(ErrorKind::kTemporary, PQerrorMessage(conn_));
    drain();
  }
  return out;
}

}  // namespace hato::store::pg
