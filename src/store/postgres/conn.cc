#include "store/postgres/conn.h"

#include <poll.h>

#include <chrono>
#include <cstdlib>

namespace hato::store::pg {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

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

Result<Rows> Conn::Exec(std::string_view sql, const std::vector<Param>& params) {
  // Never reconnect here: a new session would run the rest of a transaction
  // in autocommit. Callers Connect() before a transaction or a read.
  if (conn_ == nullptr) return Err(ErrorKind::kTemporary, "postgres: connection lost");
  std::string q(sql);
  int sent = 0;
  if (params.empty()) {
    sent = PQsendQuery(conn_, q.c_str());
  } else {
    std::vector<const char*> values(params.size());
    std::vector<int> lengths(params.size()), formats(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      values[i] = params[i].null ? nullptr : params[i].value.c_str();
      lengths[i] = static_cast<int>(params[i].value.size());
      formats[i] = params[i].binary ? 1 : 0;
    }
    sent = PQsendQueryParams(conn_, q.c_str(), static_cast<int>(params.size()), nullptr,
                             values.data(), lengths.data(), formats.data(), 0);
  }
  if (!sent) return Fail(ErrorKind::kTemporary, PQerrorMessage(conn_));
  int64_t deadline = NowMs() + options_.query_timeout_ms;
  // Flush what libpq could not send at once (large parameters).
  while (true) {
    int f = PQflush(conn_);
    if (f == 0) break;
    if (f < 0) return Fail(ErrorKind::kTemporary, PQerrorMessage(conn_));
    int64_t left = deadline - NowMs();
    pollfd p{PQsocket(conn_), POLLIN | POLLOUT, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 0))) == 0) {
      return Fail(ErrorKind::kTemporary, "the database did not take the query in " +
                                             std::to_string(options_.query_timeout_ms) + " ms");
    }
    if (p.revents & POLLIN) PQconsumeInput(conn_);
  }
  Rows last;
  std::string error_state, error_message;
  while (true) {
    while (PQisBusy(conn_)) {
      if (auto st = WaitReadable(deadline); !st) {
        // A stalled server or network: drop the connection. No PQcancel: it
        // blocks on the same stalled server; the server's statement_timeout
        // (and the closed socket) end the query on its side.
        return Fail(ErrorKind::kTemporary, "the database did not answer in " +
                                               std::to_string(options_.query_timeout_ms) + " ms");
      }
      if (!PQconsumeInput(conn_)) return Fail(ErrorKind::kTemporary, PQerrorMessage(conn_));
    }
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) break;
    ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) {
      const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      const char* msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
      if (error_state.empty() && error_message.empty()) {
        error_state = state ? state : "";
        error_message = msg ? msg : PQerrorMessage(conn_);
      }
      PQclear(r);
      continue;
    }
    last = Rows(r);
  }
  if (!error_state.empty() || !error_message.empty() || PQstatus(conn_) != CONNECTION_OK) {
    ErrorKind kind = KindOfSqlState(error_state);
    std::string w = q.substr(0, 120);
    std::string msg = error_message + " [" + error_state + "] (" + w + ")";
    if (DropsConnection(error_state) || PQstatus(conn_) != CONNECTION_OK) return Fail(kind, msg);
    return Err(kind, "postgres: " + msg);
  }
  return last;
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
