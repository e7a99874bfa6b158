#include "store/postgres/pg_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "base/digest.h"
#include "base/strings.h"
#include "base/thread_name.h"
#include "store/directory_cache.h"
#include "store/postgres/conn.h"
#include "store/postgres/pg_lists.h"
#include "store/postgres/pg_ops.h"
#include "store/postgres/schema.h"

namespace hato::store {
namespace {

using pg::Bytes;
using pg::Conn;
using pg::ConnOptions;
using pg::Null;
using pg::P;
using pg::Txn;

constexpr const char* kChannel = "hato_changes";
// The delivery look-ups' changes (DirectoryCache), notified on kChannel by
// the database's triggers (schema.cc) on kLookupsChannel: "dir:" = domains,
// accounts or aliases changed; "dir:ID" = account ID's Sieve scripts changed.
// This node's own changes count too: the writer's connection listens, and
// applies them when its COMMIT returns, before the writes' callers hear of it.
constexpr std::string_view kDirectoryTag = "dir:";
constexpr const char* kLookupsChannel = "hato_lookups";
// Marks a payload of account ids whose records changed (Store::SetRecordListener).
constexpr std::string_view kRecordsTag = "r";
// A NOTIFY payload must stay under 8000 bytes: mailbox ids are sent in parts.
constexpr size_t kMaxPayload = 7000;
// After a failed connection attempt, calls fail at once for this long
// instead of each waiting for connect_timeout (prompt 4xx while the database is down).
constexpr int64_t kReconnectBackoffMs = 500;
// A run of pipelined writes carries this many parameter bytes at most (the
// rest goes in the next pipeline of the same transaction): libpq buffers a
// whole pipeline, and a batch may hold 512 bodies of up to 1 MiB each.
constexpr size_t kPipelineBytes = 8 << 20;
// Plain deliveries queued together go as one statement of at most this many
// (pg::PipelinedDeliveries; a batch has up to StoreOptions::max_batch).
constexpr size_t kDeliveriesPerStatement = 64;
// A delivery's body up to this size is hashed, compressed and its SEARCH text
// extracted by Store::Deliver's caller (an event-loop thread: microseconds
// for common mail); a bigger one by the writer and the text indexer.
constexpr size_t kEncodeOnCallerBytes = 64 << 10;
// A write that lost a race with another node's transaction (deadlock,
// serialization failure) is run this many times before its error stands.
constexpr int kRaceRetries = 3;
// A read that failed this fast because its pooled connection was dead is
// retried once on a new connection (WithReader).
constexpr int64_t kRetryLostReadWithinMs = 1000;

int64_t Now() { return pg::NowSeconds(); }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string DomainOf(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : AsciiLower(address.substr(at + 1));
}

struct WriteOp {
  std::function<Status(Txn&)> apply;
  std::function<void(Status)> done;
  // When set and it returns a plan: the same write as pipelined statements
  // (pg::PipelinedWrite), run on the writer thread; `apply` stays the
  // fallback. Consecutive such writes go to the database in one round trip.
  std::function<std::optional<pg::PipelinedWrite>()> pipelined = nullptr;
  // A plain delivery (pg::Pipelinable): consecutive ones are merged into one
  // statement (pg::PipelinedDeliveries) instead of `pipelined` each.
  std::optional<pg::DeliveryPart> delivery = std::nullopt;
  std::vector<int64_t> delivery_accounts{};  // for GuardPipelined
};

Status AsStatus(const Result<pg::Rows>& r) { return r ? Ok() : Status(r.error()); }

class PgStore final : public Store {
 public:
  using Store::AddAccount;
  using Store::SetPassword;

  PgStore(const PostgresOptions& pg, StoreOptions options)
      : pg_(pg),
        options_(std::move(options)),
        writer_conn_(MakeConnOptions(kLookupsChannel)),
        listen_conn_(MakeConnOptions()),
        index_mark_(pg.index_settle_ms >= 0 ? pg.index_settle_ms : pg::kIndexSettleMs,
                    pg.index_full_pass_ms >= 0 ? pg.index_full_pass_ms : pg::kIndexFullPassMs) {
    std::random_device rd;
    node_ = std::to_string((uint64_t{rd()} << 32) | rd());
    lease_node_ = pg.node_id.empty() ? node_ : pg.node_id;
  }

  ~PgStore() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    cv_index_.notify_all();
    if (writer_.joinable()) writer_.join();
    if (listener_thread_.joinable()) listener_thread_.join();
    if (indexer_.joinable()) indexer_.join();
  }

  Status Open() {
    if (auto st = writer_conn_.Connect(); !st) return st;
    if (auto st = pg::Migrate(writer_conn_); !st) return st;
    writer_ = std::thread([this] { WriterLoop(); });
    listener_thread_ = std::thread([this] { ListenLoop(); });
    if (options_.index_text) indexer_ = std::thread([this] { IndexLoop(); });
    return Ok();
  }

  // ---- Admin ----

  Status AddDomain(std::string_view domain) override {
    std::string name = AsciiLower(domain);
    if (name.empty() || name.find('@') != std::string::npos) {
      return Err(ErrorKind::kInvalid, "invalid domain name: " + std::string(domain));
    }
    return WriteSync([name](Txn& t) -> Status {
      auto r =
          t.c.Exec("INSERT INTO domains(name, created_at) VALUES($1, $2)", {P(name), P(Now())});
      if (!r && r.error().kind == ErrorKind::kExists) {
        return Err(ErrorKind::kExists, "domain already exists: " + name);
      }
      return AsStatus(r);
    });
  }

  Status RemoveDomain(std::string_view domain) override {
    std::string name = AsciiLower(domain);
    return WriteSync([name](Txn& t) -> Status {
      auto q = t.c.Exec(
          "SELECT d.id, (SELECT count(*) FROM accounts a WHERE a.domain_id = d.id AND "
          "a.removed_at IS NULL), (SELECT count(*) FROM aliases l WHERE l.domain_id = d.id), "
          "(SELECT count(*) FROM accounts a WHERE a.domain_id = d.id) FROM domains d WHERE "
          "d.name = $1",
          {P(name)});
      if (!q) return q.error();
      if (q->empty()) return Err(ErrorKind::kNotFound, "no such domain: " + name);
      int64_t id = q->Int(0, 0);
      if (q->Int(0, 1) > 0) {
        return Err(ErrorKind::kInvalid, "domain " + name + " still has " +
                                            std::to_string(q->Int(0, 1)) +
                                            " accounts; remove them first");
      }
      if (q->Int(0, 2) > 0) {
        return Err(ErrorKind::kInvalid, "domain " + name + " still has " +
                                            std::to_string(q->Int(0, 2)) +
                                            " aliases; remove them first (hato alias list)");
      }
      if (q->Int(0, 3) > 0) {
        return Err(ErrorKind::kInvalid,
                   "domain " + name + " has removed accounts in retention; purge first");
      }
      return AsStatus(t.c.Exec("DELETE FROM domains WHERE id = $1", {P(id)}));
    });
  }

  Result<std::vector<std::string>> ListDomains() override {
    return WithReader([](Conn& c) -> Result<std::vector<std::string>> {
      auto r = c.Exec("SELECT name FROM domains ORDER BY name COLLATE \"C\"");
      if (!r) return r.error();
      std::vector<std::string> out;
      for (int i = 0; i < r->size(); ++i) out.push_back(r->Text(i, 0));
      return out;
    });
  }

  Result<bool> IsLocalDomain(std::string_view domain) override {
    std::string name = AsciiLower(domain);
    if (auto hit = cache_.Domain(name)) return *hit;
    uint64_t generation = cache_.generation();
    auto local = WithReader([&name](Conn& c) -> Result<bool> {
      auto r = c.Exec("SELECT 1 FROM domains WHERE name = $1", {P(name)});
      if (!r) return r.error();
      return !r->empty();
    });
    if (local) cache_.PutDomain(generation, name, *local);
    return local;
  }

  Status AddAccount(std::string_view address, std::string_view password_hash,
                    std::string_view scram_sha256) override {
    std::string addr = AsciiLower(address);
    std::string domain = DomainOf(addr);
    if (domain.empty() || addr.front() == '@') {
      return Err(ErrorKind::kInvalid, "invalid address: " + std::string(address));
    }
    std::string hash(password_hash);
    std::string scram(scram_sha256);
    return WriteSync([addr, domain, hash, scram](Txn& t) -> Status {
      auto d = t.c.Exec("SELECT id FROM domains WHERE name = $1", {P(domain)});
      if (!d) return d.error();
      if (d->empty()) {
        return Err(ErrorKind::kNotFound,
                   "domain " + domain + " is not local; add it with: hato domain add " + domain);
      }
      int64_t domain_id = d->Int(0, 0);
      if (auto st = RefuseAliasAddress(t, addr); !st) return st;
      auto ins = t.c.Exec(
          "INSERT INTO accounts(address, domain_id, password_hash, created_at, scram_sha256) "
          "VALUES($1,$2,$3,$4,nullif($5,'')) RETURNING id",
          {P(addr), P(domain_id), P(hash), P(Now()), P(scram)});
      if (!ins) {
        if (ins.error().kind == ErrorKind::kExists) {
          return Err(ErrorKind::kExists, "account already exists: " + addr);
        }
        return ins.error();
      }
      return pg::CreateDefaultMailboxes(t, ins->Int(0, 0));
    });
  }

  Status SetPassword(std::string_view address, std::string_view password_hash,
                     std::string_view scram_sha256) override {
    std::string addr = AsciiLower(address);
    std::string hash(password_hash);
    std::string scram(scram_sha256);
    return WriteSync([addr, hash, scram](Txn& t) -> Status {
      auto r = t.c.Exec(
          "UPDATE accounts SET password_hash = $1, scram_sha256 = nullif($2,'') WHERE address = "
          "$3 AND removed_at IS NULL",
          {P(hash), P(scram), P(addr)});
      if (!r) return r.error();
      if (r->Affected() == 0) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      return EndSessionsIn(t, addr);
    });
  }

  Status RemoveAccount(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WriteSync([addr](Txn& t) -> Status {
      if (auto st = EndSessionsIn(t, addr); !st) return st;
      auto r =
          t.c.Exec("UPDATE accounts SET removed_at = $1 WHERE address = $2 AND removed_at IS NULL",
                   {P(Now()), P(addr)});
      if (!r) return r.error();
      if (r->Affected() == 0) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      return Ok();
    });
  }

  // Session ends (server/account_sessions.h), as the embedded store keeps them.
  static Status EndSessionsIn(Txn& t, const std::string& addr) {
    auto r = t.c.Exec(
        "INSERT INTO session_ends(account_id, at) SELECT id, $1 FROM accounts WHERE address = $2 "
        "AND removed_at IS NULL",
        {P(Now()), P(addr)});
    if (!r) return r.error();
    return Ok();
  }

  // ---- Sieve scripts (src/sieve) ----

  Result<std::vector<SieveScriptInfo>> ListSieveScripts(int64_t account_id) override {
    return WithReader([account_id](Conn& c) { return ReadSieveScripts(c, account_id); });
  }

  Result<uint64_t> SieveScriptsState(int64_t account_id) override {
    return WithReader([account_id](Conn& c) -> Result<uint64_t> {
      auto r = c.Exec("SELECT seq FROM sieve_state WHERE account_id = $1", {P(account_id)});
      if (!r) return r.error();
      return r->empty() ? uint64_t{0} : static_cast<uint64_t>(r->Int(0, 0));
    });
  }

  Result<SieveScriptChanges> SieveScriptsSince(int64_t account_id, uint64_t since) override {
    // One snapshot for the counter, the scripts and the tombstones.
    return WithReader([account_id, since](Conn& c) -> Result<SieveScriptChanges> {
      if (auto b = c.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !b) return b.error();
      auto read = [&]() -> Result<SieveScriptChanges> {
        SieveScriptChanges out;
        auto st =
            c.Exec("SELECT seq, forgotten FROM sieve_state WHERE account_id = $1", {P(account_id)});
        if (!st) return st.error();
        if (!st->empty()) {
          out.state = static_cast<uint64_t>(st->Int(0, 0));
          out.forgotten = static_cast<uint64_t>(st->Int(0, 1));
        }
        auto scripts = ReadSieveScripts(c, account_id);
        if (!scripts) return scripts.error();
        out.scripts = std::move(*scripts);
        auto g = c.Exec(
            "SELECT id, name, created_seq, gone_seq FROM sieve_scripts_gone WHERE account_id = "
            "$1 AND gone_seq > $2 ORDER BY gone_seq",
            {P(account_id), P(static_cast<int64_t>(since))});
        if (!g) return g.error();
        for (int i = 0; i < g->size(); ++i) {
          out.destroyed.push_back({g->Int(i, 0), g->Text(i, 1), static_cast<uint64_t>(g->Int(i, 2)),
                                   static_cast<uint64_t>(g->Int(i, 3))});
        }
        return out;
      };
      auto out = read();
      (void)c.Exec(out ? "COMMIT" : "ROLLBACK");
      return out;
    });
  }

  Result<std::string> GetSieveScript(int64_t account_id, std::string_view name) override {
    std::string n(name);
    return WithReader([account_id, &n](Conn& c) -> Result<std::string> {
      auto r = c.Exec("SELECT content FROM sieve_scripts WHERE account_id = $1 AND name = $2",
                      {P(account_id), P(n)});
      if (!r) return r.error();
      if (r->empty()) return Err(ErrorKind::kNotFound, "no such script: " + n);
      return r->Text(0, 0);
    });
  }

  Result<std::pair<std::string, std::string>> ActiveSieveScript(int64_t account_id) override {
    return WithReader([account_id](Conn& c) -> Result<std::pair<std::string, std::string>> {
      auto r = c.Exec("SELECT name, content FROM sieve_scripts WHERE account_id = $1 AND active",
                      {P(account_id)});
      if (!r) return r.error();
      if (r->empty()) return Err(ErrorKind::kNotFound, "no active script");
      return std::make_pair(r->Text(0, 0), r->Text(0, 1));
    });
  }

  Result<std::vector<SieveScriptText>> DeliverySieveScripts(int64_t account_id,
                                                            std::string_view prefix) override {
    if (auto hit = cache_.Scripts(account_id, prefix)) return std::move(*hit);
    uint64_t generation = cache_.generation();
    std::string p(prefix);
    auto scripts = WithReader([account_id, &p](Conn& c) -> Result<std::vector<SieveScriptText>> {
      // left(): no LIKE escaping of the prefix; the primary key
      // (account_id, name) narrows the scan to the account's few scripts.
      auto r = c.Exec(
          "SELECT name, content, active::int FROM sieve_scripts WHERE account_id = $1 AND "
          "(active OR left(name, length($2)) = $2)",
          {P(account_id), P(p)});
      if (!r) return r.error();
      std::vector<SieveScriptText> out;
      for (int i = 0; i < r->size(); ++i) {
        out.push_back({r->Text(i, 0), r->Text(i, 1), r->Int(i, 2) != 0});
      }
      return out;
    });
    if (scripts) cache_.PutScripts(generation, account_id, prefix, *scripts);
    return scripts;
  }

  Status PutSieveScript(int64_t account_id, std::string_view name,
                        std::string_view content) override {
    std::string n(name), body(content);
    return WriteSync([this, account_id, n, body](Txn& t) -> Status {
      if (auto st = GuardAccount(t, account_id); !st) return st;
      // Other nodes push it (JMAP SieveScript, IMAP NOTIFY's INBOXES).
      t.records.insert(account_id);
      auto counters = LockSieveCounters(t, account_id);
      if (!counters) return counters.error();
      int64_t seq = static_cast<int64_t>(counters->seq + 1);
      auto u = t.c.Exec(
          "UPDATE sieve_scripts SET content = $1, updated_at = $2, changed_seq = $3 WHERE "
          "account_id = $4 AND name = $5",
          {P(body), P(Now()), P(seq), P(account_id), P(n)});
      if (!u) return u.error();
      if (u->Affected() == 0) {
        auto i = t.c.Exec(
            "INSERT INTO sieve_scripts(account_id, name, content, active, updated_at, id, "
            "created_seq, changed_seq) VALUES($1, $2, $3, false, $4, $5, $6, $6)",
            {P(account_id), P(n), P(body), P(Now()), P(counters->next_id), P(seq)});
        if (!i) return i.error();
        ++counters->next_id;
      }
      counters->seq = static_cast<uint64_t>(seq);
      return WriteSieveCounters(t, account_id, *counters);
    });
  }

  Status SetActiveSieveScript(int64_t account_id, std::string_view name) override {
    std::string n(name);
    return WriteSync([this, account_id, n](Txn& t) -> Status {
      if (auto st = GuardAccount(t, account_id); !st) return st;
      t.records.insert(account_id);
      if (!n.empty()) {
        auto e = t.c.Exec("SELECT 1 FROM sieve_scripts WHERE account_id = $1 AND name = $2",
                          {P(account_id), P(n)});
        if (!e) return e.error();
        if (e->empty()) return Err(ErrorKind::kNotFound, "no such script: " + n);
      }
      auto counters = LockSieveCounters(t, account_id);
      if (!counters) return counters.error();
      int64_t seq = static_cast<int64_t>(counters->seq + 1);
      // Only the scripts whose activation changes (none when it is already so).
      auto r = t.c.Exec(
          "UPDATE sieve_scripts SET active = (name = $1), changed_seq = $2 WHERE account_id = "
          "$3 AND active IS DISTINCT FROM (name = $1)",
          {P(n), P(seq), P(account_id)});
      if (!r) return r.error();
      if (r->Affected() == 0) return Ok();
      counters->seq = static_cast<uint64_t>(seq);
      return WriteSieveCounters(t, account_id, *counters);
    });
  }

  Status DeleteSieveScript(int64_t account_id, std::string_view name) override {
    std::string n(name);
    return WriteSync([this, account_id, n](Txn& t) -> Status {
      if (auto st = GuardAccount(t, account_id); !st) return st;
      t.records.insert(account_id);
      auto counters = LockSieveCounters(t, account_id);
      if (!counters) return counters.error();
      auto e = t.c.Exec(
          "SELECT active::int, id, created_seq FROM sieve_scripts WHERE account_id = $1 AND "
          "name = $2",
          {P(account_id), P(n)});
      if (!e) return e.error();
      if (e->empty()) return Err(ErrorKind::kNotFound, "no such script: " + n);
      if (e->Int(0, 0) != 0) return Err(ErrorKind::kInUse, "script is active: " + n);
      int64_t id = e->Int(0, 1), created = e->Int(0, 2);
      counters->seq += 1;
      auto d = t.c.Exec("DELETE FROM sieve_scripts WHERE account_id = $1 AND name = $2",
                        {P(account_id), P(n)});
      if (!d) return d.error();
      auto g = t.c.Exec(
          "INSERT INTO sieve_scripts_gone(account_id, id, name, created_seq, gone_seq) "
          "VALUES($1, $2, $3, $4, $5) ON CONFLICT(account_id, id) DO UPDATE SET name = "
          "excluded.name, created_seq = excluded.created_seq, gone_seq = excluded.gone_seq",
          {P(account_id), P(id), P(n), P(created), P(static_cast<int64_t>(counters->seq))});
      if (!g) return g.error();
      // Past kMaxSieveTombstones the oldest are forgotten.
      auto old = t.c.Exec(
          "SELECT gone_seq FROM sieve_scripts_gone WHERE account_id = $1 ORDER BY gone_seq DESC "
          "LIMIT 1 OFFSET $2",
          {P(account_id), P(static_cast<int64_t>(kMaxSieveTombstones))});
      if (!old) return old.error();
      if (!old->empty()) {
        counters->forgotten = static_cast<uint64_t>(old->Int(0, 0));
        auto drop =
            t.c.Exec("DELETE FROM sieve_scripts_gone WHERE account_id = $1 AND gone_seq <= $2",
                     {P(account_id), P(static_cast<int64_t>(counters->forgotten))});
        if (!drop) return drop.error();
      }
      return WriteSieveCounters(t, account_id, *counters);
    });
  }

  Status RenameSieveScript(int64_t account_id, std::string_view from,
                           std::string_view to) override {
    std::string f(from), n(to);
    return WriteSync([this, account_id, f, n](Txn& t) -> Status {
      if (auto st = GuardAccount(t, account_id); !st) return st;
      t.records.insert(account_id);
      auto counters = LockSieveCounters(t, account_id);
      if (!counters) return counters.error();
      auto e = t.c.Exec("SELECT 1 FROM sieve_scripts WHERE account_id = $1 AND name = $2",
                        {P(account_id), P(n)});
      if (!e) return e.error();
      if (!e->empty()) return Err(ErrorKind::kExists, "script already exists: " + n);
      counters->seq += 1;
      auto r = t.c.Exec(
          "UPDATE sieve_scripts SET name = $1, updated_at = $2, changed_seq = $3 WHERE "
          "account_id = $4 AND name = $5",
          {P(n), P(Now()), P(static_cast<int64_t>(counters->seq)), P(account_id), P(f)});
      if (!r) return r.error();
      if (r->Affected() == 0) return Err(ErrorKind::kNotFound, "no such script: " + f);
      return WriteSieveCounters(t, account_id, *counters);
    });
  }

  Status SetSieveStatus(int64_t account_id, std::string_view error) override {
    auto cur = GetSieveStatus(account_id);
    if (cur && cur->error == error) return Ok();
    std::string e(error);
    return WriteSync([this, account_id, e](Txn& t) -> Status {
      if (auto st = GuardAccount(t, account_id); !st) return st;
      return AsStatus(
          t.c.Exec("INSERT INTO sieve_status(account_id, error, at) VALUES($1, $2, $3) "
                   "ON CONFLICT(account_id) DO UPDATE SET error = excluded.error, at = excluded.at",
                   {P(account_id), P(e), P(Now())}));
    });
  }

  Result<SieveStatus> GetSieveStatus(int64_t account_id) override {
    return WithReader([account_id](Conn& c) -> Result<SieveStatus> {
      auto r = c.Exec("SELECT error, at FROM sieve_status WHERE account_id = $1", {P(account_id)});
      if (!r) return r.error();
      SieveStatus out;
      if (!r->empty()) out = {r->Text(0, 0), r->Int(0, 1)};
      return out;
    });
  }

  Result<bool> SieveMemoSeen(int64_t account_id, SieveMemo kind, std::string_view key,
                             int64_t now) override {
    std::string k(key);
    return WithReader([account_id, kind, &k, now](Conn& c) -> Result<bool> {
      auto r = c.Exec(
          "SELECT 1 FROM sieve_memos WHERE account_id = $1 AND kind = $2 AND key = $3 AND "
          "until > $4",
          {P(account_id), P(static_cast<int64_t>(kind)), P(k), P(now)});
      if (!r) return r.error();
      return !r->empty();
    });
  }

  Status SieveMemoRecord(int64_t account_id, SieveMemo kind, std::string_view key,
                         int64_t until) override {
    std::string k(key);
    return WriteSync([this, account_id, kind, k, until](Txn& t) -> Status {
      if (auto st = GuardAccount(t, account_id); !st) return st;
      auto purge = t.c.Exec("DELETE FROM sieve_memos WHERE account_id = $1 AND until <= $2",
                            {P(account_id), P(Now())});
      if (!purge) return purge.error();
      return AsStatus(
          t.c.Exec("INSERT INTO sieve_memos(account_id, kind, key, until) VALUES($1, $2, $3, $4) "
                   "ON CONFLICT(account_id, kind, key) DO UPDATE SET until = excluded.until",
                   {P(account_id), P(static_cast<int64_t>(kind)), P(k), P(until)}));
    });
  }

  Status EndSessions(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WriteSync([addr](Txn& t) -> Status {
      auto live =
          t.c.Exec("SELECT 1 FROM accounts WHERE address = $1 AND removed_at IS NULL", {P(addr)});
      if (!live) return live.error();
      if (live->empty()) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      if (auto st = EndSessionsIn(t, addr); !st) return st;
      // Signing out everywhere also revokes the HTTP tokens (API clients and
      // web sessions) of the account, as in the embedded store.
      auto revoke = t.c.Exec(
          "DELETE FROM access_tokens WHERE account_id IN (SELECT id FROM accounts WHERE address "
          "= $1 AND removed_at IS NULL)",
          {P(addr)});
      if (!revoke) return revoke.error();
      return Ok();
    });
  }

  Result<std::vector<SessionEnd>> SessionEndsSince(int64_t since, size_t limit) override {
    return WithReader([since, limit](Conn& c) -> Result<std::vector<SessionEnd>> {
      auto r = c.Exec(
          "SELECT account_id, epoch FROM session_ends WHERE epoch > $1 ORDER BY epoch LIMIT $2",
          {P(since), P(static_cast<int64_t>(limit))});
      if (!r) return r.error();
      std::vector<SessionEnd> out;
      for (int i = 0; i < r->size(); ++i) {
        out.push_back(SessionEnd{r->Int(i, 0), r->Int(i, 1)});
      }
      return out;
    });
  }

  Result<std::vector<AccountSummary>> ListAccounts() override {
    return WithReader([](Conn& c) -> Result<std::vector<AccountSummary>> {
      auto r = c.Exec(
          "SELECT a.address, count(m.id), coalesce(sum(m.size), 0), a.quota_bytes, a.is_admin "
          "FROM accounts a LEFT JOIN mailboxes x ON x.account_id = a.id "
          "LEFT JOIN messages m ON m.mailbox_id = x.id AND m.expunged_at IS NULL "
          "WHERE a.removed_at IS NULL AND a.id NOT IN (SELECT archive_account_id FROM lists) "
          "GROUP BY a.id ORDER BY a.address COLLATE \"C\"");
      if (!r) return r.error();
      std::vector<AccountSummary> out;
      for (int i = 0; i < r->size(); ++i) {
        AccountSummary a{r->Text(i, 0), static_cast<uint64_t>(r->Int(i, 1)),
                         static_cast<uint64_t>(r->Int(i, 2)), std::nullopt};
        if (!r->IsNull(i, 3)) a.quota_bytes = static_cast<uint64_t>(r->Int(i, 3));
        a.admin = r->Int(i, 4) != 0;
        out.push_back(std::move(a));
      }
      return out;
    });
  }

  Result<Account> FindAccount(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WithReader([&addr](Conn& c) -> Result<Account> {
      auto r = c.Exec(
          "SELECT id, address, password_hash, coalesce(scram_sha256, ''), coalesce((SELECT "
          "max(epoch) FROM session_ends s WHERE s.account_id = accounts.id), 0) FROM accounts "
          "WHERE address = $1 AND removed_at IS NULL",
          {P(addr)});
      if (!r) return r.error();
      if (r->empty()) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      return Account{r->Int(0, 0), r->Text(0, 1), r->Text(0, 2), r->Text(0, 3), r->Int(0, 4), {}};
    });
  }

  Result<Account> ResolveRecipient(std::string_view address) override {
    std::string addr = AsciiLower(address);
    if (auto hit = cache_.Recipient(addr)) return *hit;
    uint64_t generation = cache_.generation();
    auto account = WithReader([&addr](Conn& c) -> Result<Account> {
      auto r = c.Exec(
          "SELECT id, address, password_hash, quota_bytes FROM accounts WHERE address = $1 AND "
          "removed_at IS NULL UNION ALL SELECT a.id, a.address, a.password_hash, a.quota_bytes "
          "FROM aliases l JOIN accounts a ON a.id = l.account_id WHERE l.address = $1 AND "
          "a.removed_at IS NULL LIMIT 1",
          {P(addr)});
      if (!r) return r.error();
      if (r->empty()) return Err(ErrorKind::kNotFound, "no such account or alias: " + addr);
      Account a{r->Int(0, 0), r->Text(0, 1), r->Text(0, 2), {}, 0, {}};
      if (!r->IsNull(0, 3)) a.quota_bytes = static_cast<uint64_t>(r->Int(0, 3));
      return a;
    });
    if (account) cache_.PutRecipient(generation, addr, *account);
    return account;
  }

  Status AddAlias(std::string_view alias, std::string_view account) override {
    std::string addr = AsciiLower(alias);
    std::string target = AsciiLower(account);
    std::string domain = DomainOf(addr);
    if (domain.empty() || addr.front() == '@') {
      return Err(ErrorKind::kInvalid, "invalid alias: " + std::string(alias));
    }
    return WriteSync([addr, target, domain](Txn& t) -> Status {
      auto d = t.c.Exec("SELECT id FROM domains WHERE name = $1", {P(domain)});
      if (!d) return d.error();
      if (d->empty()) {
        return Err(
            ErrorKind::kNotFound,
            "alias domain " + domain + " is not local; add it with: hato domain add " + domain);
      }
      int64_t domain_id = d->Int(0, 0);
      auto live = t.c.Exec(
          "SELECT address = $2 FROM accounts WHERE address IN ($1, $2) AND removed_at IS NULL",
          {P(addr), P(target)});
      if (!live) return live.error();
      bool target_live = false, alias_is_account = false;
      for (int i = 0; i < live->size(); ++i) {
        (live->Int(i, 0) != 0 ? target_live : alias_is_account) = true;
      }
      if (alias_is_account) return Err(ErrorKind::kExists, addr + " is an account's address");
      if (!target_live) return Err(ErrorKind::kNotFound, "no such account: " + target);
      if (auto st = RefuseAliasAddress(t, addr); !st) {
        return Err(ErrorKind::kExists, "alias already exists: " + addr);
      }
      return AsStatus(t.c.Exec(
          "INSERT INTO aliases(address, domain_id, account_id, created_at) SELECT $1, $2, id, $3 "
          "FROM accounts WHERE address = $4 AND removed_at IS NULL",
          {P(addr), P(domain_id), P(Now()), P(target)}));
    });
  }

  Status RemoveAlias(std::string_view alias) override {
    std::string addr = AsciiLower(alias);
    return WriteSync([addr](Txn& t) -> Status {
      auto r = t.c.Exec("DELETE FROM aliases WHERE address = $1", {P(addr)});
      if (!r) return r.error();
      if (r->Affected() == 0) return Err(ErrorKind::kNotFound, "no such alias: " + addr);
      return Ok();
    });
  }

  Result<std::vector<AliasInfo>> ListAliases(std::string_view account) override {
    std::string target = AsciiLower(account);
    return WithReader([&target](Conn& c) -> Result<std::vector<AliasInfo>> {
      if (!target.empty()) {
        auto k = c.Exec("SELECT 1 FROM accounts WHERE address = $1", {P(target)});
        if (!k) return k.error();
        if (k->empty()) return Err(ErrorKind::kNotFound, "no such account: " + target);
      }
      auto r = c.Exec(
          "SELECT l.address, a.address, a.removed_at IS NOT NULL FROM aliases l JOIN accounts a "
          "ON a.id = l.account_id WHERE $1 = '' OR a.address = $1 ORDER BY l.address COLLATE "
          "\"C\"",
          {P(target)});
      if (!r) return r.error();
      std::vector<AliasInfo> out;
      for (int i = 0; i < r->size(); ++i) {
        out.push_back(AliasInfo{r->Text(i, 0), r->Text(i, 1), r->Int(i, 2) != 0});
      }
      return out;
    });
  }

  Status SetQuota(std::string_view address, std::optional<uint64_t> limit_bytes) override {
    std::string addr = AsciiLower(address);
    return WriteSync([addr, limit_bytes](Txn& t) -> Status {
      auto r =
          t.c.Exec("UPDATE accounts SET quota_bytes = $1 WHERE address = $2 AND removed_at IS NULL",
                   {limit_bytes ? P(static_cast<int64_t>(*limit_bytes)) : Null(), P(addr)});
      if (!r) return r.error();
      if (r->Affected() == 0) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      return Ok();
    });
  }

  Result<QuotaUsage> GetQuota(int64_t account_id) override {
    return WithReader([&](Conn& c) { return pg::QueryQuota(c, account_id); });
  }

  // ---- JMAP (src/jmap) ----

  Result<std::vector<EmailRow>> ListEmailRows(int64_t account_id, int64_t mailbox_id,
                                              uint64_t since_modseq) override {
    return WithReader([=](Conn& c) -> Result<std::vector<EmailRow>> {
      auto r = c.Exec(
          "SELECT m.id, m.mailbox_id, m.uid, m.size, m.internal_date, m.flags, m.keywords, "
          "m.modseq, b.sha256, (m.expunged_at IS NOT NULL)::int FROM messages m "
          "JOIN mailboxes x ON x.id = m.mailbox_id JOIN blobs b ON b.id = m.blob_id "
          "WHERE x.account_id = $1 AND ($2::bigint = 0 OR m.mailbox_id = $2) AND "
          "(($3::bigint = 0 AND m.expunged_at IS NULL AND x.deleted_at IS NULL) OR "
          "($3 > 0 AND m.modseq > $3)) ORDER BY m.id",
          {P(account_id), P(mailbox_id), P(static_cast<int64_t>(since_modseq))});
      if (!r) return r.error();
      std::vector<EmailRow> out;
      out.reserve(static_cast<size_t>(r->size()));
      for (int i = 0; i < r->size(); ++i) {
        EmailRow e;
        e.message_id = r->Int(i, 0);
        e.mailbox_id = r->Int(i, 1);
        e.uid = static_cast<uint32_t>(r->Int(i, 2));
        e.size = static_cast<uint64_t>(r->Int(i, 3));
        e.internal_date = r->Int(i, 4);
        e.flags = static_cast<uint32_t>(r->Int(i, 5));
        e.keywords = r->Text(i, 6);
        e.modseq = static_cast<uint64_t>(r->Int(i, 7));
        e.sha256 = r->Blob(i, 8);
        e.expunged = r->Int(i, 9) != 0;
        out.push_back(std::move(e));
      }
      return out;
    });
  }

  // The columns of an EmailRow, in the order JMAP's reads select them.
  static EmailRow EmailRowOf(const pg::Rows& r, int i) {
    EmailRow e;
    e.message_id = r.Int(i, 0);
    e.mailbox_id = r.Int(i, 1);
    e.uid = static_cast<uint32_t>(r.Int(i, 2));
    e.size = static_cast<uint64_t>(r.Int(i, 3));
    e.internal_date = r.Int(i, 4);
    e.flags = static_cast<uint32_t>(r.Int(i, 5));
    e.keywords = r.Text(i, 6);
    e.modseq = static_cast<uint64_t>(r.Int(i, 7));
    e.sha256 = r.Blob(i, 8);
    return e;
  }

  Result<EmailPage> QueryMailboxEmails(int64_t account_id, int64_t mailbox_id, bool ascending,
                                       uint64_t position, uint64_t limit, bool count) override {
    return WithReader([=](Conn& c) -> Result<EmailPage> {
      EmailPage page;
      // The mailbox must be a live one of the account; a body's later rows
      // in this order are skipped (one Email per body). Index
      // messages_jmap_date serves the order, messages_jmap_blob the probe.
      std::string order = ascending ? "ASC" : "DESC";
      std::string before = ascending ? "<" : ">";
      auto clamp = [](uint64_t v) {
        return static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX));
      };
      // The mailbox's counters (schema.cc): the total, and whether any
      // body is there twice (else no probe: the page is `position` entries
      // into messages_jmap_date, an index-only scan, then `limit` rows).
      auto own = c.Exec(
          "SELECT n_messages, n_emails FROM mailboxes WHERE id = $1 AND account_id = $2 AND "
          "deleted_at IS NULL",
          {P(mailbox_id), P(account_id)});
      if (!own) return own.error();
      if (own->empty()) return page;
      const int64_t rows = own->Int(0, 0), emails = own->Int(0, 1);
      if (count) page.total = static_cast<uint64_t>(emails);
      if (rows == emails) {
        auto r = c.Exec(
            "SELECT m.id, m.mailbox_id, m.uid, m.size, m.internal_date, m.flags, m.keywords, "
            "m.modseq, b.sha256 FROM (SELECT id, internal_date FROM messages WHERE "
            "mailbox_id = $1 AND expunged_at IS NULL ORDER BY internal_date " +
                order + ", id " + order +
                " LIMIT $2 OFFSET $3) p JOIN messages m ON m.id = p.id JOIN blobs b ON "
                "b.id = m.blob_id ORDER BY p.internal_date " +
                order + ", p.id " + order,
            {P(mailbox_id), P(clamp(limit)), P(clamp(position))});
        if (!r) return r.error();
        for (int i = 0; i < r->size(); ++i) page.rows.push_back(EmailRowOf(*r, i));
        return page;
      }
      auto r = c.Exec(
          "SELECT m.id, m.mailbox_id, m.uid, m.size, m.internal_date, m.flags, m.keywords, "
          "m.modseq, b.sha256 FROM messages m JOIN blobs b ON b.id = m.blob_id "
          "WHERE m.mailbox_id = $1 AND m.expunged_at IS NULL AND EXISTS (SELECT 1 FROM "
          "mailboxes x WHERE x.id = $1 AND x.account_id = $2 AND x.deleted_at IS NULL) "
          "AND NOT EXISTS (SELECT 1 FROM messages d WHERE d.mailbox_id = $1 AND "
          "d.blob_id = m.blob_id AND d.expunged_at IS NULL AND (d.internal_date " +
              before + " m.internal_date OR (d.internal_date = m.internal_date AND d.id " + before +
              " m.id))) ORDER BY m.internal_date " + order + ", m.id " + order +
              " LIMIT $3 OFFSET $4",
          {P(mailbox_id), P(account_id), P(clamp(limit)), P(clamp(position))});
      if (!r) return r.error();
      for (int i = 0; i < r->size(); ++i) page.rows.push_back(EmailRowOf(*r, i));
      return page;
    });
  }

  Result<std::vector<EmailRow>> FindEmailRows(
      int64_t account_id, const std::vector<std::string>& sha_prefixes) override {
    return WithReader([&](Conn& c) -> Result<std::vector<EmailRow>> {
      std::vector<EmailRow> out;
      for (const std::string& prefix : sha_prefixes) {
        if (prefix.empty() || prefix.size() > 32) continue;
        std::string high = prefix + std::string(32 - prefix.size(), '\xff');
        auto r = c.Exec(
            "SELECT m.id, m.mailbox_id, m.uid, m.size, m.internal_date, m.flags, m.keywords, "
            "m.modseq, b.sha256 FROM blobs b JOIN messages m ON m.blob_id = b.id "
            "JOIN mailboxes x ON x.id = m.mailbox_id WHERE b.sha256 >= $1 AND b.sha256 <= $2 "
            "AND x.account_id = $3 AND m.expunged_at IS NULL AND x.deleted_at IS NULL",
            {Bytes(prefix), Bytes(high), P(account_id)});
        if (!r) return r.error();
        for (int i = 0; i < r->size(); ++i) out.push_back(EmailRowOf(*r, i));
      }
      std::sort(out.begin(), out.end(),
                [](const EmailRow& a, const EmailRow& b) { return a.message_id < b.message_id; });
      out.erase(std::unique(out.begin(), out.end(),
                            [](const EmailRow& a, const EmailRow& b) {
                              return a.message_id == b.message_id;
                            }),
                out.end());
      return out;
    });
  }

  Result<std::string> GetJmapDocument(int64_t account_id, std::string_view kind) override {
    std::string k(kind);
    return WithReader([account_id, &k](Conn& c) -> Result<std::string> {
      auto r = c.Exec("SELECT body FROM jmap_documents WHERE account_id = $1 AND kind = $2",
                      {P(account_id), P(k)});
      if (!r) return r.error();
      if (r->empty()) return Err(ErrorKind::kNotFound, "no " + k + " record");
      return r->Text(0, 0);
    });
  }

  Status PutJmapDocument(int64_t account_id, std::string_view kind,
                         std::string_view body) override {
    std::string k(kind), b(body);
    return WriteSync([this, account_id, k, b](Txn& t) -> Status {
      if (auto st = GuardAccount(t, account_id); !st) return st;  // moved to another shard
      t.records.insert(account_id);  // other nodes push it (SetRecordListener)
      auto r = t.c.Exec(
          "INSERT INTO jmap_documents(account_id, kind, body, updated_at) VALUES($1, $2, $3, $4) "
          "ON CONFLICT(account_id, kind) DO UPDATE SET body = excluded.body, "
          "updated_at = excluded.updated_at",
          {P(account_id), P(k), P(b), P(Now())});
      return AsStatus(r);
    });
  }

  Result<std::vector<MailboxInfo>> ListMailboxHeads(int64_t account_id) override {
    return WithReader([=](Conn& c) -> Result<std::vector<MailboxInfo>> {
      auto r = c.Exec(
          "SELECT id, name, special_use, subscribed, uidvalidity, uidnext, highest_modseq "
          "FROM mailboxes WHERE account_id = $1 AND deleted_at IS NULL "
          "ORDER BY name COLLATE \"C\"",
          {P(account_id)});
      if (!r) return r.error();
      std::vector<MailboxInfo> out;
      for (int i = 0; i < r->size(); ++i) {
        MailboxInfo m;
        m.id = r->Int(i, 0);
        m.name = r->Text(i, 1);
        m.special_use = r->Text(i, 2);
        m.subscribed = r->Int(i, 3) != 0;
        m.uidvalidity = static_cast<uint32_t>(r->Int(i, 4));
        m.uidnext = static_cast<uint32_t>(r->Int(i, 5));
        m.highest_modseq = static_cast<uint64_t>(r->Int(i, 6));
        out.push_back(std::move(m));
      }
      return out;
    });
  }

  // ---- Access tokens (http/auth.h) ----

  Result<int64_t> AddToken(int64_t account_id, std::string_view hash, std::string_view kind,
                           std::string_view label, int64_t expires_at,
                           size_t max_per_account) override {
    auto id = std::make_shared<int64_t>(0);
    std::string h(hash), k(kind), l(label);
    auto st = WriteSync([=](Txn& t) -> Status {
      int64_t now = Now();
      auto del = t.c.Exec(
          "DELETE FROM access_tokens WHERE account_id = $1 AND expires_at != 0 AND "
          "expires_at <= $2",
          {P(account_id), P(now)});
      if (!del) return del.error();
      auto acct = t.c.Exec("SELECT address FROM accounts WHERE id = $1 AND removed_at IS NULL",
                           {P(account_id)});
      if (!acct) return acct.error();
      if (acct->empty()) return Err(ErrorKind::kNotFound, "no such account");
      std::string address = acct->Text(0, 0);
      auto count =
          t.c.Exec("SELECT count(*) FROM access_tokens WHERE account_id = $1", {P(account_id)});
      if (!count) return count.error();
      if (static_cast<size_t>(count->Int(0, 0)) >= max_per_account)
        return Err(ErrorKind::kTooLarge, "too many tokens for this account");
      auto ins = t.c.Exec(
          "INSERT INTO access_tokens(hash, account_id, address, kind, label, created_at, "
          "expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
          {P(h), P(account_id), P(address), P(k), P(l), P(now), P(expires_at)});
      if (!ins) return ins.error();
      *id = ins->Int(0, 0);
      return Ok();
    });
    if (!st) return st.error();
    return *id;
  }

  Result<AccessToken> FindToken(std::string_view hash, int64_t now) override {
    std::string h(hash);
    return WithReader([&h, now](Conn& c) -> Result<AccessToken> {
      auto r = c.Exec(
          "SELECT t.id, t.account_id, t.address, t.kind, t.label, t.created_at, t.expires_at, "
          "t.last_used_at FROM access_tokens t JOIN accounts a ON a.id = t.account_id AND "
          "a.address = t.address "
          "WHERE t.hash = $1 AND a.removed_at IS NULL AND (t.expires_at = 0 OR t.expires_at > $2)",
          {P(h), P(now)});
      if (!r) return r.error();
      if (r->empty()) return Err(ErrorKind::kNotFound, "no such token");
      return AccessToken{r->Int(0, 0),  r->Int(0, 1), r->Text(0, 2), r->Text(0, 3),
                         r->Text(0, 4), r->Int(0, 5), r->Int(0, 6),  r->Int(0, 7)};
    });
  }

  Result<std::vector<AccessToken>> ListTokens(int64_t account_id, int64_t now) override {
    return WithReader([account_id, now](Conn& c) -> Result<std::vector<AccessToken>> {
      auto r = c.Exec(
          "SELECT id, account_id, address, kind, label, created_at, expires_at, last_used_at "
          "FROM access_tokens WHERE account_id = $1 AND (expires_at = 0 OR expires_at > $2) ORDER "
          "BY id DESC",
          {P(account_id), P(now)});
      if (!r) return r.error();
      std::vector<AccessToken> out;
      for (int i = 0; i < r->size(); ++i)
        out.push_back(AccessToken{r->Int(i, 0), r->Int(i, 1), r->Text(i, 2), r->Text(i, 3),
                                  r->Text(i, 4), r->Int(i, 5), r->Int(i, 6), r->Int(i, 7)});
      return out;
    });
  }

  Status RevokeToken(int64_t account_id, int64_t token_id) override {
    return WriteSync([account_id, token_id](Txn& t) -> Status {
      auto r = t.c.Exec("DELETE FROM access_tokens WHERE id = $1 AND account_id = $2",
                        {P(token_id), P(account_id)});
      if (!r) return r.error();
      if (r->Affected() == 0) return Err(ErrorKind::kNotFound, "no such token");
      return Ok();
    });
  }

  Status TouchToken(int64_t token_id, int64_t now) override {
    return WriteSync([token_id, now](Txn& t) -> Status {
      auto r = t.c.Exec("UPDATE access_tokens SET last_used_at = $1 WHERE id = $2",
                        {P(now), P(token_id)});
      if (!r) return r.error();
      return Ok();
    });
  }

  // ---- The admin role (issue 13) ----

  Status SetAdmin(std::string_view address, bool admin) override {
    std::string addr = AsciiLower(address);
    return WriteSync([addr, admin](Txn& t) -> Status {
      auto r =
          t.c.Exec("UPDATE accounts SET is_admin = $1 WHERE address = $2 AND removed_at IS NULL",
                   {P(int64_t{admin ? 1 : 0}), P(addr)});
      if (!r) return r.error();
      if (r->Affected() == 0) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      return Ok();
    });
  }

  Result<std::string> GetAccountLanguage(int64_t account_id) override {
    return WithReader([account_id](Conn& c) -> Result<std::string> {
      auto r = c.Exec("SELECT language FROM accounts WHERE id = $1 AND removed_at IS NULL",
                      {P(account_id)});
      if (!r) return r.error();
      return r->empty() ? std::string() : r->Text(0, 0);
    });
  }

  Status SetAccountLanguage(int64_t account_id, std::string_view language) override {
    std::string lang(language);
    return WriteSync([account_id, lang](Txn& t) -> Status {
      auto r = t.c.Exec("UPDATE accounts SET language = $1 WHERE id = $2 AND removed_at IS NULL",
                        {P(lang), P(account_id)});
      if (!r) return r.error();
      if (r->Affected() == 0) return Err(ErrorKind::kNotFound, "no such account");
      return Ok();
    });
  }

  Result<bool> IsAdmin(int64_t account_id) override {
    return WithReader([account_id](Conn& c) -> Result<bool> {
      auto r = c.Exec("SELECT is_admin FROM accounts WHERE id = $1 AND removed_at IS NULL",
                      {P(account_id)});
      if (!r) return r.error();
      return !r->empty() && r->Int(0, 0) != 0;
    });
  }

  // ---- Mail ----

  // StoreOptions::sort_keys: the record of a body, off the writer thread.
  template <typename Request>
  void AddSortKeys(Request& r) const {
    if (options_.sort_keys && r.sort_keys.empty())
      r.sort_keys = options_.sort_keys(r.content, r.mime);
    if (options_.thread_id && r.thread_id.empty()) r.thread_id = options_.thread_id(r.content);
  }

  void Deliver(DeliveryRequest request, Done<DeliveryReceipt> done) override {
    AddSortKeys(request);
    // A copy with its own content (Sieve editheader) gets its own keys too:
    // a body stored without them counts as a Thread of its own until a
    // restart's backfill (MailboxInfo::threads).
    for (Filing& f : request.filings) {
      if (!f.content.empty()) AddSortKeys(f);
    }
    // The body's SEARCH text, extracted here (off the writer thread) and
    // stored with it: the text indexer need not read the body back after
    // the commit. Filings and big bodies are left to the indexer.
    const bool small = request.content.size() <= kEncodeOnCallerBytes;
    auto text = std::make_shared<std::optional<IndexText>>();
    if (options_.index_text && small && !request.account_ids.empty() && request.filings.empty()) {
      *text = options_.index_text(request.content, request.mime);
    }
    auto req = std::make_shared<DeliveryRequest>(std::move(request));
    auto receipt = std::make_shared<DeliveryReceipt>();
    // Hashed, compressed and cleaned here too, for the writer's merged statement.
    auto encoded = std::make_shared<std::optional<pg::EncodedDelivery>>();
    if (small) {
      *encoded = pg::EncodeDelivery(*req, options_.compress, text->has_value() ? &**text : nullptr);
    }
    std::optional<pg::DeliveryPart> part;
    if (encoded->has_value()) part = pg::DeliveryPart{req.get(), receipt.get(), &**encoded};
    Submit(WriteOp{
        [this, req, receipt, text](Txn& t) -> Status {
          if (auto st = GuardAccounts(t, DeliveryAccounts(*req)); !st) return st;
          return pg::ApplyDelivery(t, *req, *receipt, text->has_value() ? &**text : nullptr);
        },
        Complete(receipt, std::move(done)),
        [this, req, receipt, encoded]() -> std::optional<pg::PipelinedWrite> {
          // A big body is encoded here, on the writer thread.
          auto mine = *encoded ? *encoded : pg::EncodeDelivery(*req, options_.compress, nullptr);
          if (!mine) return std::nullopt;
          auto w = pg::PipelinedDeliveries({pg::DeliveryPart{req.get(), receipt.get(), &*mine}});
          if (w) GuardPipelined(*w, req->account_ids);
          return w;
        },
        part, part ? req->account_ids : std::vector<int64_t>{}});
  }

  Result<MailboxSnapshot> ListMessages(int64_t account_id, std::string_view mailbox) override {
    std::string name(mailbox);
    return WithReader([&](Conn& c) { return pg::QueryMessages(c, account_id, name); });
  }

  Result<std::string> ReadMessage(int64_t account_id, int64_t message_id) override {
    return WithReader([&](Conn& c) -> Result<std::string> {
      auto r = c.Exec(
          "SELECT m.blob_id FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id WHERE m.id = "
          "$1 AND x.account_id = $2",
          {P(message_id), P(account_id)});
      if (!r) return r.error();
      if (r->empty()) return Err(ErrorKind::kNotFound, "no such message");
      return pg::ReadBlobById(c, r->Int(0, 0));
    });
  }

  void SetFlags(int64_t account_id, std::vector<int64_t> message_ids, FlagChange change,
                Done<FlagResult> done) override {
    auto ids = std::make_shared<std::vector<int64_t>>(std::move(message_ids));
    auto result = std::make_shared<FlagResult>();
    Submit(WriteOp{[this, account_id, ids, change = std::move(change), result](Txn& t) {
                     if (auto st = GuardAccount(t, account_id); !st) return st;
                     return pg::ApplySetFlags(t, account_id, *ids, change, *result);
                   },
                   Complete(result, std::move(done))});
  }

  void Expunge(int64_t account_id, std::vector<int64_t> message_ids, Done<void> done) override {
    auto ids = std::make_shared<std::vector<int64_t>>(std::move(message_ids));
    Submit(WriteOp{[this, account_id, ids](Txn& t) {
                     if (auto st = GuardAccount(t, account_id); !st) return st;
                     return pg::ApplyExpunge(t, account_id, *ids);
                   },
                   std::move(done)});
  }

  // ---- Mailboxes ----

  Result<std::vector<MailboxInfo>> ListMailboxes(int64_t account_id) override {
    return WithReader([&](Conn& c) { return pg::QueryMailboxes(c, account_id); });
  }

  void CreateMailbox(int64_t account_id, std::string name, std::string special_use,
                     Done<void> done) override {
    Submit(WriteOp{[=, this](Txn& t) {
                     if (auto st = GuardAccount(t, account_id); !st) return st;
                     return pg::ApplyCreateMailbox(t, account_id, name, special_use);
                   },
                   std::move(done)});
  }

  void DeleteMailbox(int64_t account_id, std::string name, Done<void> done) override {
    Submit(WriteOp{[=, this](Txn& t) {
                     if (auto st = GuardAccount(t, account_id); !st) return st;
                     return pg::ApplyDeleteMailbox(t, account_id, name);
                   },
                   std::move(done)});
  }

  void RenameMailbox(int64_t account_id, std::string from, std::string to,
                     Done<void> done) override {
    Submit(WriteOp{[=, this](Txn& t) {
                     if (auto st = GuardAccount(t, account_id); !st) return st;
                     return pg::ApplyRenameMailbox(t, account_id, from, to);
                   },
                   std::move(done)});
  }

  void SetSubscribed(int64_t account_id, std::string name, bool subscribed,
                     Done<void> done) override {
    Submit(WriteOp{[=, this](Txn& t) {
                     if (auto st = GuardAccount(t, account_id); !st) return st;
                     return pg::ApplySetSubscribed(t, account_id, name, subscribed);
                   },
                   std::move(done)});
  }

  void Append(AppendRequest request, Done<AppendResult> done) override {
    AddSortKeys(request);
    auto req = std::make_shared<AppendRequest>(std::move(request));
    auto result = std::make_shared<AppendResult>();
    Submit(WriteOp{[this, req, result](Txn& t) {
                     if (auto st = GuardAccount(t, req->account_id); !st) return st;
                     return pg::ApplyAppend(t, *req, *result);
                   },
                   Complete(result, std::move(done))});
  }

  void AppendMany(std::vector<AppendRequest> requests,
                  Done<std::vector<AppendResult>> done) override {
    for (auto& r : requests) AddSortKeys(r);
    auto reqs = std::make_shared<std::vector<AppendRequest>>(std::move(requests));
    auto results = std::make_shared<std::vector<AppendResult>>();
    Submit(WriteOp{[this, reqs, results](Txn& t) -> Status {
                     std::vector<int64_t> ids;
                     for (const auto& r : *reqs) ids.push_back(r.account_id);
                     if (auto st = GuardAccounts(t, ids); !st) return st;
                     results->assign(reqs->size(), AppendResult{});
                     for (size_t i = 0; i < reqs->size(); ++i) {
                       if (auto st = pg::ApplyAppend(t, (*reqs)[i], (*results)[i]); !st) return st;
                     }
                     return Ok();
                   },
                   Complete(results, std::move(done))});
  }

  void CopyMessages(int64_t account_id, std::vector<int64_t> message_ids, std::string to_mailbox,
                    bool move, Done<CopyResult> done) override {
    auto ids = std::make_shared<std::vector<int64_t>>(std::move(message_ids));
    auto result = std::make_shared<CopyResult>();
    Done<CopyResult> notify = [this, account_id,
                               done = std::move(done)](Result<CopyResult> r) mutable {
      if (r) {
        CopyListener listener;
        {
          std::lock_guard lock(mu_);
          listener = copy_listener_;
        }
        if (listener) listener(account_id, *r);
      }
      done(std::move(r));
    };
    Submit(WriteOp{[=, this](Txn& t) {
                     if (auto st = GuardAccount(t, account_id); !st) return st;
                     return pg::ApplyCopy(t, account_id, *ids, to_mailbox, move, *result);
                   },
                   Complete(result, std::move(notify))});
  }

  Result<MailboxChanges> ListChanges(int64_t mailbox_id, uint64_t since) override {
    return WithReader([&](Conn& c) { return pg::QueryChanges(c, mailbox_id, since); });
  }

  Result<MailboxChanges> ListChangesPage(int64_t mailbox_id, uint64_t since, size_t max_rows,
                                         size_t max_bytes) override {
    return WithReader(
        [&](Conn& c) { return pg::QueryChangesPage(c, mailbox_id, since, max_rows, max_bytes); });
  }

  Result<std::vector<MessageMeta>> ListMessagesByUid(
      int64_t mailbox_id, const std::vector<std::pair<uint32_t, uint32_t>>& ranges) override {
    return WithReader([&](Conn& c) -> Result<std::vector<MessageMeta>> {
      std::vector<MessageMeta> out;
      for (const auto& [first, last] : ranges) {
        if (auto st = pg::QueryMessagesByUid(c, mailbox_id, first, last, out); !st) {
          return st.error();
        }
      }
      return out;
    });
  }

  Result<std::vector<uint32_t>> ListVanished(int64_t mailbox_id, uint64_t since) override {
    return WithReader([&](Conn& c) { return pg::QueryVanished(c, mailbox_id, since); });
  }

  Result<std::vector<std::string>> ListOrphanSubscriptions(int64_t account_id) override {
    return WithReader([&](Conn& c) { return pg::QueryOrphanSubscriptions(c, account_id); });
  }

  void ClaimRecent(int64_t mailbox_id, uint32_t up_to_uid, Done<uint32_t> done) override {
    auto previous = std::make_shared<uint32_t>(0);
    Submit(WriteOp{[=, this](Txn& t) {
                     if (auto st = GuardMailbox(t, mailbox_id); !st) return st;
                     return pg::ApplyClaimRecent(t, mailbox_id, up_to_uid, *previous);
                   },
                   Complete(previous, std::move(done))});
  }

  Result<TextMatches> SearchText(int64_t mailbox_id, std::string_view needle,
                                 bool with_header) override {
    return WithReader(
        [&](Conn& c) { return pg::QueryTextMatches(c, mailbox_id, needle, with_header); });
  }

  Result<std::string> ReadMimeTree(int64_t account_id, int64_t message_id) override {
    return WithReader([&](Conn& c) -> Result<std::string> {
      auto r = c.Exec(
          "SELECT b.mime FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id JOIN blobs b "
          "ON b.id = m.blob_id WHERE m.id = $1 AND x.account_id = $2",
          {P(message_id), P(account_id)});
      if (!r) return r.error();
      if (r->empty()) return Err(ErrorKind::kNotFound, "no such message");
      return r->Blob(0, 0);
    });
  }

  Result<std::vector<std::pair<int64_t, std::string>>> ReadSortKeys(int64_t account_id,
                                                                    int64_t mailbox_id) override {
    return WithReader([&](Conn& c) -> Result<std::vector<std::pair<int64_t, std::string>>> {
      auto r = c.Exec(
          "SELECT m.id, b.sort_keys FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id "
          "JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = $1 AND x.account_id = $2 AND "
          "m.expunged_at IS NULL AND b.sort_keys IS NOT NULL",
          {P(mailbox_id), P(account_id)});
      if (!r) return r.error();
      std::vector<std::pair<int64_t, std::string>> out;
      out.reserve(static_cast<size_t>(r->size()));
      for (int i = 0; i < r->size(); ++i) out.emplace_back(r->Int(i, 0), r->Blob(i, 1));
      return out;
    });
  }

  // Also fills the threadId (StoreOptions::thread_id) of bodies stored
  // without one: the blobs_thread trigger moves their messages' Thread counts.
  Result<size_t> BackfillSortKeys(size_t max_bodies) override {
    if (!options_.sort_keys || max_bodies == 0) return size_t{0};
    struct Filled {
      int64_t id;
      std::string record;  // "" (not NULL) where none can be made
      std::string thread;  // "": left NULL (no StoreOptions::thread_id)
    };
    const bool threads = static_cast<bool>(options_.thread_id);
    auto records = WithReader([&](Conn& c) -> Result<std::vector<Filled>> {
      auto r = c.Exec(
          "SELECT id, mime, sort_keys IS NOT NULL FROM blobs WHERE (sort_keys IS NULL OR ($2 "
          "AND thread_id IS NULL)) AND refs > 0 LIMIT $1",
          {P(static_cast<int64_t>(max_bodies)), P(threads)});
      if (!r) return r.error();
      std::vector<Filled> out;
      for (int i = 0; i < r->size(); ++i) {
        Filled f{r->Int(i, 0), {}, {}};
        bool make_keys = r->Int(i, 2) == 0 && !r->IsNull(i, 1);
        if (make_keys || threads) {
          auto content = pg::ReadBlobById(c, f.id);
          if (!content) return content.error();
          if (make_keys) f.record = options_.sort_keys(*content, r->Blob(i, 1));
          if (threads) f.thread = options_.thread_id(*content);
        }
        out.push_back(std::move(f));
      }
      return out;
    });
    if (!records) return records.error();
    if (records->empty()) return size_t{0};
    auto shared = std::make_shared<std::vector<Filled>>(std::move(*records));
    auto st = WriteSync([shared](Txn& t) -> Status {
      for (const auto& f : *shared) {
        auto r = t.c.Exec(
            "UPDATE blobs SET sort_keys = coalesce(sort_keys, $1), thread_id = "
            "coalesce(thread_id, $2) WHERE id = $3",
            {Bytes(f.record), f.thread.empty() ? Null() : P(f.thread), P(f.id)});
        if (!r) return r.error();
      }
      return Ok();
    });
    if (!st) return st.error();
    return shared->size();
  }

  void SetChangeListener(std::function<void(const std::vector<int64_t>&)> listener) override {
    std::lock_guard lock(mu_);
    listener_ = std::move(listener);
  }

  void SetRecordListener(RecordListener listener) override {
    std::lock_guard lock(mu_);
    record_listener_ = std::move(listener);
  }

  void SetCopyListener(CopyListener listener) override {
    std::lock_guard lock(mu_);
    copy_listener_ = std::move(listener);
  }

  StoreHealth Health() override {
    StoreHealth h;
    {
      std::lock_guard lock(mu_);
      h.pending_writes = queue_.size();
    }
    int64_t now = NowMs();
    int64_t started = batch_started_ms_.load();
    if (started != 0) h.commit_in_flight_ms = now - started;
    if (now - last_commit_end_ms_.load() < kRecentCommitMs) {
      h.last_commit_ms = last_commit_ms_.load();
    }
    return h;
  }

  // ---- Mailing lists (issue 14; store/postgres/pg_lists.h) ----

  Status CreateList(std::string_view address, ListMode mode) override {
    std::string addr = AsciiLower(address);
    if (DomainOf(addr).empty() || addr.front() == '@' || addr.find('+') != std::string::npos) {
      return Err(ErrorKind::kInvalid, "invalid list address (no '+' allowed): " + addr);
    }
    return WriteSync([addr, mode](Txn& t) { return pg::ApplyCreateList(t, addr, mode); });
  }
  Status RemoveList(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WriteSync([addr](Txn& t) { return pg::ApplyRemoveList(t, addr); });
  }
  Result<std::vector<ListInfo>> ListLists() override {
    return WithReader([](Conn& c) { return pg::QueryLists(c); });
  }
  Result<std::vector<ListInfo>> ListsOfMember(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WithReader([&addr](Conn& c) { return pg::QueryMemberLists(c, addr); });
  }
  Result<ListInfo> FindList(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WithReader([&addr](Conn& c) { return pg::QueryList(c, addr); });
  }
  Status UpdateList(std::string_view address, const ListSettings& settings) override {
    std::string addr = AsciiLower(address);
    return WriteSync([addr, settings](Txn& t) { return pg::ApplyUpdateList(t, addr, settings); });
  }
  Result<ListMemberChange> AddListMembers(int64_t list_id, std::vector<ListMember> members,
                                          bool update) override {
    for (auto& m : members) m.address = AsciiLower(m.address);
    auto change = std::make_shared<ListMemberChange>();
    auto st = WriteSync(
        [=](Txn& t) { return pg::ApplyAddListMembers(t, list_id, members, update, *change); });
    if (!st) return st.error();
    return *change;
  }
  Status RemoveListMember(int64_t list_id, std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WriteSync([=](Txn& t) { return pg::ApplyRemoveListMember(t, list_id, addr); });
  }
  Result<std::vector<uint32_t>> ArchiveSeen(int64_t account_id, int64_t mailbox_id) override {
    return WithReader([=](Conn& c) -> Result<std::vector<uint32_t>> {
      auto r = c.Exec(
          "SELECT uid FROM archive_seen WHERE account_id = $1 AND mailbox_id = $2 ORDER BY uid",
          {P(account_id), P(mailbox_id)});
      if (!r) return r.error();
      std::vector<uint32_t> out;
      for (int i = 0; i < r->size(); ++i) out.push_back(static_cast<uint32_t>(r->Int(i, 0)));
      return out;
    });
  }
  Status SetArchiveSeen(int64_t account_id, int64_t mailbox_id, std::vector<uint32_t> uids,
                        bool seen) override {
    // One statement over the UIDs as an array literal ({1,2,3}).
    std::string arr = "{";
    for (size_t i = 0; i < uids.size(); ++i) {
      if (i) arr += ',';
      arr += std::to_string(uids[i]);
    }
    arr += "}";
    return WriteSync([=](Txn& t) -> Status {
      auto r = t.c.Exec(seen ? "INSERT INTO archive_seen(account_id, mailbox_id, uid) SELECT $1, "
                               "$2, u FROM unnest($3::bigint[]) u ON CONFLICT DO NOTHING"
                             : "DELETE FROM archive_seen WHERE account_id = $1 AND mailbox_id = "
                               "$2 AND uid = ANY($3::bigint[])",
                        {P(account_id), P(mailbox_id), P(arr)});
      if (!r) return r.error();
      return Ok();
    });
  }
  Result<std::vector<ListMember>> ListListMembers(int64_t list_id) override {
    return WithReader([=](Conn& c) { return pg::QueryListMembers(c, list_id); });
  }
  Result<ListMember> FindListMember(int64_t list_id, std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WithReader([&](Conn& c) { return pg::QueryListMember(c, list_id, addr); });
  }
  Status SetListMemberDelivery(int64_t list_id, std::string_view address,
                               std::optional<bool> delivery, bool reenable) override {
    std::string addr = AsciiLower(address);
    return WriteSync(
        [=](Txn& t) { return pg::ApplySetMemberDelivery(t, list_id, addr, delivery, reenable); });
  }
  Result<ListMember> RecordListBounce(int64_t list_id, std::string_view address,
                                      std::string_view reason, uint32_t threshold) override {
    std::string addr = AsciiLower(address);
    std::string why(reason);
    auto after = std::make_shared<ListMember>();
    auto st = WriteSync(
        [=](Txn& t) { return pg::ApplyListBounce(t, list_id, addr, why, threshold, *after); });
    if (!st) return st.error();
    return *after;
  }
  Status CreateListToken(const ListToken& token) override {
    return WriteSync([token](Txn& t) { return pg::ApplyCreateListToken(t, token); });
  }
  Result<ListToken> ConsumeListToken(std::string_view token, int64_t now) override {
    std::string key(token);
    auto out = std::make_shared<ListToken>();
    auto st = WriteSync([=](Txn& t) { return pg::ApplyConsumeListToken(t, key, now, *out); });
    if (!st) return st.error();
    return *out;
  }
  Result<uint64_t> CountListTokens(int64_t list_id, std::string_view address,
                                   std::string_view source, int64_t since) override {
    std::string a = AsciiLower(address), src(source);
    return WithReader([&](Conn& c) { return pg::QueryCountListTokens(c, list_id, a, src, since); });
  }
  Result<int64_t> HoldListPost(int64_t list_id, std::string_view content, std::string_view sender,
                               std::string_view reason) override {
    auto id = std::make_shared<int64_t>(0);
    std::string c(content), snd(sender), why(reason);
    auto st =
        WriteSync([=](Txn& t) { return pg::ApplyHoldListPost(t, list_id, c, snd, why, *id); });
    if (!st) return st.error();
    return *id;
  }
  Result<std::vector<HeldPost>> ListHeldPosts(int64_t list_id) override {
    return WithReader([=](Conn& c) { return pg::QueryHeldPosts(c, list_id); });
  }
  Result<std::string> ReadHeldPost(int64_t held_id) override {
    return WithReader([=](Conn& c) { return pg::QueryHeldContent(c, held_id); });
  }
  Status DropHeldPost(int64_t held_id) override {
    return WriteSync([=](Txn& t) { return pg::ApplyDropHeldPost(t, held_id); });
  }
  void PostToList(ListPostRequest request, Done<ListPostReceipt> done) override {
    auto req = std::make_shared<ListPostRequest>(std::move(request));
    auto receipt = std::make_shared<ListPostReceipt>();
    Submit(WriteOp{[req, receipt](Txn& t) { return pg::ApplyPostToList(t, *req, *receipt); },
                   Complete(receipt, std::move(done))});
  }
  Result<std::vector<ListPostInfo>> ListPosts(int64_t list_id) override {
    return WithReader([=](Conn& c) { return pg::QueryListPosts(c, list_id); });
  }
  Result<uint64_t> CountListPostsSince(int64_t list_id, int64_t since) override {
    return WithReader([=](Conn& c) { return pg::QueryCountListPosts(c, list_id, since); });
  }
  Result<ListReport> ListPostReport(int64_t list_id, int64_t post_id) override {
    return WithReader([=](Conn& c) { return pg::QueryListReport(c, list_id, post_id); });
  }
  Status RecordListPostFailure(int64_t post_id, std::string_view address,
                               std::string_view reason) override {
    std::string a(address), why(reason);
    return WriteSync([=](Txn& t) { return pg::ApplyListPostFailure(t, post_id, a, why); });
  }
  void MarkInFlight(std::vector<int64_t> recipient_ids, Done<std::vector<int64_t>> done) override {
    auto ids = std::make_shared<std::vector<int64_t>>(std::move(recipient_ids));
    auto marked = std::make_shared<std::vector<int64_t>>();
    Submit(WriteOp{[ids, marked](Txn& t) { return pg::ApplyMarkInFlight(t, *ids, *marked); },
                   [marked, done = std::move(done)](Status st) {
                     if (!st) return done(st.error());
                     done(std::move(*marked));
                   }});
  }
  Result<uint64_t> ResolveInFlight() override {
    auto n = std::make_shared<uint64_t>(0);
    auto st = WriteSync(
        [this, n](Txn& t) { return pg::ApplyResolveInFlight(t, lease_node_, Now(), *n); });
    if (!st) return st.error();
    return *n;
  }

  // ---- Outbound queue ----

  Result<std::vector<QueuedMessage>> ListDueOutbound(int64_t now, size_t limit) override {
    return WithReader([&](Conn& c) {
      return pg::QueryDueOutbound(c, now, limit, lease_node_, pg::kOutboundLeaseSeconds);
    });
  }
  Result<std::vector<QueuedMessage>> ListPendingDsn(size_t limit) override {
    return WithReader([&](Conn& c) { return pg::QueryPendingDsn(c, limit); });
  }
  Result<std::vector<QueuedMessage>> ListQueue() override {
    return WithReader([&](Conn& c) { return pg::QueryQueue(c); });
  }
  Result<QueuedMessage> GetQueued(int64_t message_id) override {
    return WithReader([&](Conn& c) { return pg::QueryQueued(c, message_id); });
  }
  Result<std::string> ReadQueuedContent(int64_t message_id) override {
    return WithReader([&](Conn& c) -> Result<std::string> {
      auto r = c.Exec("SELECT blob_id FROM outbound_messages WHERE id = $1", {P(message_id)});
      if (!r) return r.error();
      if (r->empty()) {
        return Err(ErrorKind::kNotFound, "no queued message " + std::to_string(message_id));
      }
      return pg::ReadBlobById(c, r->Int(0, 0));
    });
  }
  void RecordOutcomes(std::vector<RecipientOutcome> outcomes, Done<void> done) override {
    auto list = std::make_shared<std::vector<RecipientOutcome>>(std::move(outcomes));
    Submit(WriteOp{[list](Txn& t) { return pg::ApplyOutcomes(t, *list); }, std::move(done)});
  }
  Status ApplyQueueAction(int64_t message_id, QueueAction action) override {
    return WriteSync(
        [message_id, action](Txn& t) { return pg::ApplyQueueAction(t, message_id, action); });
  }
  Result<QueueStats> GetQueueStats() override {
    return WithReader([](Conn& c) { return pg::QueryQueueStats(c); });
  }
  Result<uint64_t> CountSubmissions(int64_t account_id, int64_t since) override {
    return WithReader([&](Conn& c) { return pg::QueryCountSubmissions(c, account_id, since); });
  }
  Result<std::vector<QueuedRecipient>> ListFinishedRecipients(int64_t queue_id) override {
    return WithReader([&](Conn& c) { return pg::QueryFinishedRecipients(c, queue_id); });
  }

  // ---- Maintenance ----

  Result<uint64_t> PurgeExpired(int64_t cutoff) override {
    auto purged = std::make_shared<uint64_t>(0);
    auto st = WriteSync([cutoff, purged](Txn& t) -> Status {
      const char* mark =
          "UPDATE messages SET expunged_at = coalesce(expunged_at, 0) WHERE mailbox_id IN "
          "(SELECT x.id FROM mailboxes x JOIN accounts a ON a.id = x.account_id "
          "WHERE a.removed_at IS NOT NULL AND a.removed_at < $1)";
      const char* unref =
          "UPDATE blobs b SET refs = b.refs - g.n FROM (SELECT blob_id, count(*) AS n FROM "
          "messages WHERE expunged_at < $1 GROUP BY blob_id) g WHERE b.id = g.blob_id";
      const char* del = "DELETE FROM messages WHERE expunged_at < $1";
      // Chunks and text rows go with their blob (ON DELETE CASCADE).
      const char* del_blobs = "DELETE FROM blobs WHERE refs <= 0";
      const char* del_mb =
          "DELETE FROM mailboxes WHERE account_id IN (SELECT id FROM accounts WHERE removed_at "
          "IS NOT NULL AND removed_at < $1)";
      const char* del_alias =
          "DELETE FROM aliases WHERE account_id IN (SELECT id FROM accounts WHERE removed_at IS "
          "NOT NULL AND removed_at < $1)";
      const char* del_subs =
          "DELETE FROM orphan_subscriptions WHERE account_id IN (SELECT id FROM accounts WHERE "
          "removed_at IS NOT NULL AND removed_at < $1)";
      const char* del_jmap =
          "DELETE FROM jmap_documents WHERE account_id IN (SELECT id FROM accounts WHERE "
          "removed_at IS NOT NULL AND removed_at < $1)";
      const char* del_acc = "DELETE FROM accounts WHERE removed_at IS NOT NULL AND removed_at < $1";
      const char* del_deleted_mb =
          "DELETE FROM mailboxes WHERE deleted_at IS NOT NULL AND deleted_at < $1 AND NOT EXISTS "
          "(SELECT 1 FROM messages m WHERE m.mailbox_id = mailboxes.id)";
      // Delivery outcomes kept for JMAP (outbound_finished), same retention.
      const char* del_finished = "DELETE FROM outbound_finished WHERE finished_at < $1";
      for (const char* sql : {mark, unref, del, del_blobs, del_mb, del_alias, del_subs, del_jmap,
                              del_acc, del_deleted_mb, del_finished}) {
        auto r = sql == del_blobs ? t.c.Exec(sql) : t.c.Exec(sql, {P(cutoff)});
        if (!r) return r.error();
        if (sql == del) *purged = static_cast<uint64_t>(r->Affected());
      }
      return Ok();
    });
    if (!st) return st.error();
    return *purged;
  }

  // `hato reindex`: every body without its text.
  Result<uint64_t> IndexMissingText(const TextExtractor& extract) override {
    return IndexMissingTextAfter(extract, 0);
  }

  // The bodies without their SEARCH text whose id is above `after`, read,
  // their text extracted and written; returns how many.
  Result<uint64_t> IndexMissingTextAfter(const TextExtractor& extract, int64_t after) {
    constexpr int64_t kBatch = 100;
    // Bodies read in one query at most (stored bytes; a bigger body alone).
    constexpr int64_t kReadBytes = 4 << 20;
    uint64_t indexed = 0;
    while (true) {
      struct Missing {
        int64_t id;
        std::string mime;
        int64_t stored;
      };
      auto ids = WithReader([after](Conn& c) -> Result<std::vector<Missing>> {
        auto r = c.Exec(
            "SELECT id, mime, stored_length FROM blobs b WHERE id > $1 AND refs > 0 AND NOT EXISTS "
            "(SELECT 1 FROM blob_text t WHERE t.blob_id = b.id) ORDER BY id LIMIT $2",
            {P(after), P(kBatch)});
        if (!r) return r.error();
        std::vector<Missing> out;
        for (int i = 0; i < r->size(); ++i)
          out.push_back({r->Int(i, 0), r->Blob(i, 1), r->Int(i, 2)});
        return out;
      });
      if (!ids) return ids.error();
      if (ids->empty()) return indexed;
      auto rows = std::make_shared<std::vector<std::pair<int64_t, IndexText>>>();
      for (size_t first = 0; first < ids->size();) {
        std::vector<int64_t> group;
        int64_t bytes = 0;
        size_t end = first;
        for (; end < ids->size() && (group.empty() || bytes + (*ids)[end].stored <= kReadBytes);
             ++end) {
          group.push_back((*ids)[end].id);
          bytes += (*ids)[end].stored;
        }
        auto contents = WithReader([&group](Conn& c) { return pg::ReadBlobsById(c, group); });
        if (!contents) return contents.error();
        for (size_t k = first; k < end; ++k) {
          after = (*ids)[k].id;
          rows->emplace_back(after, extract((*contents)[k - first], (*ids)[k].mime));
        }
        first = end;
      }
      auto st = WriteSync(
          [rows](Txn& t) -> Status {
            for (const auto& [id, text] : *rows) {
              if (auto s = pg::IndexBlob(t, id, text); !s) return s;
            }
            return Ok();
          },
          [rows]() -> std::optional<pg::PipelinedWrite> { return pg::PipelinedIndex(*rows); });
      if (!st) return st.error();
      indexed += rows->size();
    }
  }

  Result<VerifyReport> Verify() override {
    auto ids = WithReader([](Conn& c) -> Result<std::vector<std::pair<int64_t, BlobRef>>> {
      auto r = c.Exec("SELECT id, sha256, stored_length, size, codec FROM blobs ORDER BY id");
      if (!r) return r.error();
      std::vector<std::pair<int64_t, BlobRef>> out;
      for (int i = 0; i < r->size(); ++i) out.emplace_back(r->Int(i, 0), RefFromRow(*r, i, 1));
      return out;
    });
    if (!ids) return ids.error();
    VerifyReport report;
    for (const auto& [id, ref] : *ids) {
      ++report.blobs_checked;
      auto content = WithReader([id = id](Conn& c) { return pg::ReadBlobById(c, id); });
      if (!content) {
        report.problems.push_back(content.error().message);
        report.damaged.push_back(ref);
      }
    }
    auto checks = WithReader([](Conn& c) -> Result<std::vector<std::string>> {
      std::vector<std::string> out;
      auto missing = c.Exec(
          "SELECT a.address, x.name, m.uid FROM messages m JOIN mailboxes x ON x.id = "
          "m.mailbox_id JOIN accounts a ON a.id = x.account_id LEFT JOIN blobs b ON b.id = "
          "m.blob_id WHERE b.id IS NULL");
      if (!missing) return missing.error();
      for (int i = 0; i < missing->size(); ++i) {
        out.push_back("message " + missing->Text(i, 0) + "/" + missing->Text(i, 1) + " uid " +
                      missing->Text(i, 2) + " points at a missing body");
      }
      auto counters = pg::QueryCounterDisagreements(c, 10);
      if (!counters) return counters.error();
      for (auto& p : *counters) out.push_back(std::move(p));
      auto refs = c.Exec(
          "SELECT encode(b.sha256, 'hex'), b.refs, n FROM blobs b, LATERAL (SELECT (SELECT "
          "count(*) FROM messages m WHERE m.blob_id = b.id) + (SELECT count(*) FROM "
          "outbound_messages o WHERE o.blob_id = b.id) + (SELECT count(*) FROM list_held h WHERE "
          "h.blob_id = b.id) AS n) u WHERE b.refs != u.n");
      if (!refs) return refs.error();
      for (int i = 0; i < refs->size(); ++i) {
        out.push_back("body " + refs->Text(i, 0) + " has refs=" + refs->Text(i, 1) + " but " +
                      refs->Text(i, 2) + " users");
      }
      return out;
    });
    if (!checks) {
      report.problems.push_back(checks.error().message);
    } else {
      for (auto& p : *checks) report.problems.push_back(std::move(p));
    }
    return report;
  }

  Result<uint64_t> RecountMailboxes() override {
    auto fixed = std::make_shared<uint64_t>(0);
    auto st = WriteSync([fixed](Txn& t) -> Status {
      if (auto r = t.c.Exec("LOCK TABLE messages, mailbox_threads IN SHARE ROW EXCLUSIVE MODE");
          !r) {
        return r.error();
      }
      auto bad = pg::QueryCounterDisagreements(t.c, std::numeric_limits<int64_t>::max());
      if (!bad) return bad.error();
      *fixed = bad->size();
      return pg::ApplyRecountMailboxes(t);
    });
    if (!st) return st.error();
    return *fixed;
  }

  Status SnapshotMetadata(const std::string& path) override {
    return WithReader([&path](Conn& c) { return pg::WriteSqliteSnapshot(c, path); });
  }
  Status SnapshotForBackup(const std::string& path, const BackupBody& each) override {
    return WithReader(
        [&](Conn& c) { return pg::WriteSqliteSnapshot(c, path, pg::SnapshotScope::kAll, each); });
  }

  Result<std::string> ReadBlob(const BlobRef& ref) override {
    return WithReader([&](Conn& c) { return pg::ReadBlobBySha(c, ref.sha256); });
  }

  void RestoreMessage(RestoreRequest request, Done<RestoreResult> done) override {
    AddSortKeys(request);
    auto req = std::make_shared<RestoreRequest>(std::move(request));
    auto result = std::make_shared<RestoreResult>();
    Submit(WriteOp{[this, req, result](Txn& t) {
                     if (auto st = GuardAccount(t, req->account_id); !st) return st;
                     return pg::ApplyRestoreMessage(t, *req, *result);
                   },
                   Complete(result, std::move(done))});
  }

  Status RepairBlob(std::string_view content) override {
    std::string copy(content);
    return WriteSync([copy](Txn& t) { return pg::ApplyRepairBlob(t, copy); });
  }

  Result<uint64_t> Undelete(int64_t account_id, std::string_view mailbox, int64_t since) override {
    auto n = std::make_shared<uint64_t>(0);
    std::string name(mailbox);
    auto st = WriteSync([=, this](Txn& t) {
      if (auto g = GuardAccount(t, account_id); !g) return g;
      return pg::ApplyUndelete(t, account_id, name, since, *n);
    });
    if (!st) return st.error();
    return *n;
  }

  Status RestoreAccount(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WriteSync([addr](Txn& t) -> Status {
      auto live =
          t.c.Exec("SELECT 1 FROM accounts WHERE address = $1 AND removed_at IS NULL", {P(addr)});
      if (!live) return live.error();
      if (!live->empty()) return Err(ErrorKind::kExists, "account " + addr + " is not removed");
      if (auto st = RefuseAliasAddress(t, addr); !st) return st;
      auto r = t.c.Exec(
          "UPDATE accounts SET removed_at = NULL WHERE id = (SELECT id FROM accounts WHERE "
          "address = $1 AND removed_at > 0 ORDER BY removed_at DESC LIMIT 1)",
          {P(addr)});
      if (!r) return r.error();
      if (r->Affected() == 0) {
        return Err(ErrorKind::kNotFound, "no removed account " + addr + " in retention");
      }
      return Ok();
    });
  }

  Status PurgeAccount(std::string_view address) override {
    std::string addr = AsciiLower(address);
    auto st = WriteSync([addr](Txn& t) -> Status {
      auto r = t.c.Exec("UPDATE accounts SET removed_at = 1 WHERE address = $1", {P(addr)});
      if (!r) return r.error();
      if (r->Affected() == 0) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      return Ok();
    });
    if (!st) return st;
    auto n = PurgeExpired(2);
    if (!n) return n.error();
    return Ok();
  }

  Result<SnapshotAccount> FindAccountAny(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WithReader([&addr](Conn& c) -> Result<SnapshotAccount> {
      auto r = c.Exec(
          "SELECT id, address, password_hash, coalesce(removed_at, 0) FROM accounts WHERE "
          "address = $1 ORDER BY removed_at IS NULL DESC, removed_at DESC LIMIT 1",
          {P(addr)});
      if (!r) return r.error();
      if (r->empty()) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      return SnapshotAccount{r->Int(0, 0), r->Text(0, 1), r->Text(0, 2), r->Int(0, 3), {}};
    });
  }

  Result<std::vector<RemovedAccount>> ListRemovedAccounts() override {
    return WithReader([](Conn& c) -> Result<std::vector<RemovedAccount>> {
      auto r = c.Exec(
          "SELECT a.id, a.address, a.removed_at, count(m.id), coalesce(sum(m.size), 0) FROM "
          "accounts a LEFT JOIN mailboxes x ON x.account_id = a.id LEFT JOIN messages m ON "
          "m.mailbox_id = x.id WHERE a.removed_at IS NOT NULL GROUP BY a.id ORDER BY a.address "
          "COLLATE \"C\", a.removed_at");
      if (!r) return r.error();
      std::vector<RemovedAccount> out;
      for (int i = 0; i < r->size(); ++i) {
        out.push_back({r->Int(i, 0), r->Text(i, 1), r->Int(i, 2),
                       static_cast<uint64_t>(r->Int(i, 3)), static_cast<uint64_t>(r->Int(i, 4))});
      }
      return out;
    });
  }

  // Runs `f` on a pooled reader connection (for the snapshot writer). Reads
  // are idempotent: when a pooled connection turns out to be dead at once
  // (the server restarted since it was opened), the other idle ones were
  // opened to the same server, so they are dropped and `f` runs once more on
  // a new connection. A stalled server (a timeout) is not retried: the
  // client gets its "try later" within one query timeout.
  template <typename F>
  auto WithReader(F&& f) -> decltype(f(std::declval<Conn&>())) {
    for (int attempt = 0;; ++attempt) {
      auto conn = Acquire();
      if (!conn) return conn.error();
      int64_t started = NowMs();
      auto result = f(**conn);
      bool lost = !(*conn)->connected();
      Release(std::move(*conn));
      if (result || !lost || attempt > 0 || NowMs() - started > kRetryLostReadWithinMs) {
        return result;
      }
      DropIdleReaders();
    }
  }

  static BlobRef RefFromRow(const pg::Rows& r, int row, int first) {
    // A body in PostgreSQL is found by its SHA-256; segment/offset are unused.
    BlobRef ref;
    ref.sha256 = r.Blob(row, first);
    ref.stored_length = static_cast<uint64_t>(r.Int(row, first + 1));
    ref.size = static_cast<uint64_t>(r.Int(row, first + 2));
    ref.codec = static_cast<Codec>(r.Int(row, first + 3));
    return ref;
  }

 private:
  ConnOptions MakeConnOptions(std::string listen = {}) const {
    ConnOptions o;
    o.listen = std::move(listen);
    o.conninfo = pg_.conninfo;
    o.connect_timeout_seconds = pg_.connect_timeout_seconds;
    o.statement_timeout_ms = pg_.statement_timeout_ms;
    o.query_timeout_ms = pg_.statement_timeout_ms + 2000;
    return o;
  }

  // GuardAccounts for a pipelined write: its statement goes first, and a
  // moved account makes the write take its ordinary form (which refuses it).
  void GuardPipelined(pg::PipelinedWrite& w, std::vector<int64_t> ids) const {
    if (!pg_.guard_moves || ids.empty()) return;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    w.statements.insert(w.statements.begin(), pg::Statement{kGuardSql, {P(AccountList(ids))}});
    w.finish = [finish = std::move(w.finish)](Txn& t, std::vector<pg::Rows>& rows) -> Status {
      for (int i = 0; i < rows[0].size(); ++i) {
        if (!rows[0].IsNull(i, 1)) return Err(ErrorKind::kTemporary, "account moved");
      }
      rows.erase(rows.begin());
      return finish(t, rows);
    };
  }

  // Sharding (store/postgres/sharded.h): a write for an account whose mail
  // is not in this database (accounts.moved_to set, or being moved: the
  // mover holds the row lock) fails with kTemporary, and the router sends it
  // to the account's shard. The share lock keeps a move from switching the
  // account while this write's transaction is open.
  static constexpr const char* kGuardSql =
      "SELECT id, moved_to FROM accounts WHERE id = ANY($1::bigint[]) AND removed_at IS NULL "
      "ORDER BY id FOR SHARE NOWAIT";
  static std::string AccountList(const std::vector<int64_t>& ids) {
    std::string list = "{";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i > 0) list += ',';
      list += std::to_string(ids[i]);
    }
    return list + "}";
  }
  Status GuardAccounts(Txn& t, std::vector<int64_t> ids) const {
    if (!pg_.guard_moves || ids.empty()) return Ok();
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    auto r = t.c.Exec(kGuardSql, {P(AccountList(ids))});
    if (!r) {
      if (r.error().message.find("55P03") == std::string::npos) return r.error();
      return Err(ErrorKind::kTemporary, "account is being moved between shards; try again");
    }
    for (int i = 0; i < r->size(); ++i) {
      if (!r->IsNull(i, 1)) {
        return Err(ErrorKind::kTemporary,
                   "account " + r->Text(i, 0) + " moved to shard " + r->Text(i, 1) + "; try again");
      }
    }
    return Ok();
  }
  // An account's script counter, next script id and forgotten tombstones
  // (sieve_state), locked for the rest of the transaction so that two
  // writers of one account's scripts take turns.
  struct SieveCounters {
    uint64_t seq = 0;
    int64_t next_id = 1;
    uint64_t forgotten = 0;
  };
  static Result<SieveCounters> LockSieveCounters(Txn& t, int64_t account_id) {
    auto i = t.c.Exec(
        "INSERT INTO sieve_state(account_id, seq, next_id) VALUES($1, 0, 1) ON CONFLICT "
        "(account_id) DO NOTHING",
        {P(account_id)});
    if (!i) return i.error();
    auto r =
        t.c.Exec("SELECT seq, next_id, forgotten FROM sieve_state WHERE account_id = $1 FOR UPDATE",
                 {P(account_id)});
    if (!r) return r.error();
    SieveCounters c;
    if (!r->empty()) {
      c = {static_cast<uint64_t>(r->Int(0, 0)), r->Int(0, 1), static_cast<uint64_t>(r->Int(0, 2))};
    }
    return c;
  }
  static Status WriteSieveCounters(Txn& t, int64_t account_id, const SieveCounters& c) {
    return AsStatus(t.c.Exec(
        "UPDATE sieve_state SET seq = $1, next_id = $2, forgotten = $3 WHERE account_id = $4",
        {P(static_cast<int64_t>(c.seq)), P(c.next_id), P(static_cast<int64_t>(c.forgotten)),
         P(account_id)}));
  }
  static Result<std::vector<SieveScriptInfo>> ReadSieveScripts(Conn& c, int64_t account_id) {
    auto r = c.Exec(
        "SELECT name, active::int, octet_length(content), updated_at, id, created_seq, "
        "changed_seq FROM sieve_scripts WHERE account_id = $1 ORDER BY name COLLATE \"C\"",
        {P(account_id)});
    if (!r) return r.error();
    std::vector<SieveScriptInfo> out;
    for (int i = 0; i < r->size(); ++i) {
      out.push_back({r->Text(i, 0), r->Int(i, 1) != 0, static_cast<uint64_t>(r->Int(i, 2)),
                     r->Int(i, 3), r->Int(i, 4), static_cast<uint64_t>(r->Int(i, 5)),
                     static_cast<uint64_t>(r->Int(i, 6))});
    }
    return out;
  }

  Status GuardAccount(Txn& t, int64_t id) const { return GuardAccounts(t, {id}); }
  Status GuardMailbox(Txn& t, int64_t mailbox_id) const {
    if (!pg_.guard_moves) return Ok();
    auto r = t.c.Exec("SELECT account_id FROM mailboxes WHERE id = $1", {P(mailbox_id)});
    if (!r) return r.error();
    if (r->empty()) return Ok();
    return GuardAccount(t, r->Int(0, 0));
  }
  static std::vector<int64_t> DeliveryAccounts(const DeliveryRequest& req) {
    if (req.filings.empty()) return req.account_ids;
    std::vector<int64_t> ids;
    for (const auto& f : req.filings) ids.push_back(f.account_id);
    return ids;
  }

  // kExists when `address` is an alias (of a live or a removed account).
  static Status RefuseAliasAddress(Txn& t, const std::string& address) {
    auto r = t.c.Exec(
        "SELECT a.address FROM aliases l JOIN accounts a ON a.id = l.account_id WHERE l.address "
        "= $1",
        {P(address)});
    if (!r) return r.error();
    if (r->empty()) return Ok();
    return Err(ErrorKind::kExists, address + " is an alias of " + r->Text(0, 0) +
                                       "; remove it first with: hato alias remove " + address);
  }

  template <typename T>
  static std::function<void(Status)> Complete(std::shared_ptr<T> result, Done<T> done) {
    return [result, done = std::move(done)](const Status& st) {
      if (!st) {
        done(st.error());
      } else {
        done(std::move(*result));
      }
    };
  }

  Status WriteSync(std::function<Status(Txn&)> apply,
                   std::function<std::optional<pg::PipelinedWrite>()> pipelined = nullptr) {
    return Wait<void>([&](Done<void> done) {
      Submit(WriteOp{std::move(apply), [done = std::move(done)](Status st) { done(std::move(st)); },
                     std::move(pipelined)});
    });
  }

  void Submit(WriteOp op) {
    {
      std::lock_guard lock(mu_);
      if (!stopping_ && queue_.size() < options_.max_pending_writes) {
        queue_.push_back(std::move(op));
        cv_.notify_one();
        return;
      }
    }
    op.done(Err(ErrorKind::kTemporary,
                stopping_ ? "store is shutting down" : "store write queue is full"));
  }

  // ---- Connections ----

  // Connects `c` unless it is; fails at once while the database was just found down.
  Status EnsureConnected(Conn& c) {
    if (c.connected()) return Ok();
    int64_t now = NowMs();
    if (now < down_until_ms_.load()) {
      return Err(ErrorKind::kTemporary, "postgres: database unreachable: " + DownReason());
    }
    auto st = c.Connect();
    if (!st) {
      down_until_ms_ = NowMs() + kReconnectBackoffMs;
      std::lock_guard lock(down_mu_);
      down_reason_ = st.error().message;
      return st;
    }
    return Ok();
  }

  std::string DownReason() {
    std::lock_guard lock(down_mu_);
    return down_reason_;
  }

  Result<std::unique_ptr<Conn>> Acquire() {
    std::unique_ptr<Conn> conn;
    {
      std::unique_lock lock(pool_mu_);
      auto deadline =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(pg_.statement_timeout_ms);
      while (idle_.empty() && open_readers_ >= pg_.pool_size) {
        if (pool_cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
            open_readers_ >= pg_.pool_size) {
          return Err(ErrorKind::kTemporary,
                     "all " + std::to_string(pg_.pool_size) + " database connections are busy");
        }
      }
      if (!idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
      } else {
        ++open_readers_;
      }
    }
    if (!conn) conn = std::make_unique<Conn>(MakeConnOptions());
    if (auto st = EnsureConnected(*conn); !st) {
      Release(std::move(conn));
      return st.error();
    }
    return conn;
  }

  // Closes the idle reader connections (their server went away); the next
  // Acquire opens new ones.
  void DropIdleReaders() {
    std::lock_guard lock(pool_mu_);
    for (auto& c : idle_) c->Close();
  }

  void Release(std::unique_ptr<Conn> conn) {
    {
      std::lock_guard lock(pool_mu_);
      idle_.push_back(std::move(conn));
    }
    pool_cv_.notify_one();
  }

  // ---- Writer ----

  void WriterLoop() {
    NameThisThread("hato-writer");
    std::vector<WriteOp> batch;
    while (true) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty() && stopping_) return;
        while (!queue_.empty() && batch.size() < options_.max_batch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      RunBatch(batch);
      batch.clear();
    }
  }

  void RunBatch(std::vector<WriteOp>& batch) {
    int64_t started = NowMs();
    batch_started_ms_ = started;
    RunBatchTimed(batch);
    int64_t ended = NowMs();
    last_commit_ms_ = ended - started;
    last_commit_end_ms_ = ended;
    batch_started_ms_ = 0;
    if (options_.on_commit) options_.on_commit(ended - started);
  }

  // One transaction for the batch, `done` only after its COMMIT returns.
  // Runs of pipelined writes (WriteOp::pipelined) go in one round trip each,
  // inside a savepoint: if a statement of the run fails, or a write's rows
  // show it cannot be done that way, the run is rolled back to the savepoint,
  // that write takes its ordinary form and the others are sent again (a
  // failed framing statement: all of the run's writes take their ordinary
  // form). The other writes run one by one
  // inside a savepoint each, so a failed write is undone alone. Statements
  // that need no answer of their own (BEGIN, RELEASE, SAVEPOINT, NOTIFY,
  // COMMIT) ride with the next ones sent (`owed`), so a batch of pipelined
  // deliveries costs two round trips in all.
  void RunBatchTimed(std::vector<WriteOp>& batch) {
    const size_t n = batch.size();
    std::vector<Status> results(n);
    std::vector<std::optional<pg::PipelinedWrite>> plans(n);
    // merged_end[i]: the write after the run of deliveries that plans[i]
    // carries as one statement (i + 1 for any other write); the run's other
    // plans are empty and succeed with it, and fall back with it.
    std::vector<size_t> merged_end(n);
    for (size_t i = 0; i < n;) {
      merged_end[i] = i + 1;
      if (!batch[i].delivery) {
        if (batch[i].pipelined) plans[i] = batch[i].pipelined();
        ++i;
        continue;
      }
      size_t end = i;
      std::vector<pg::DeliveryPart> parts;
      std::vector<int64_t> accounts;
      std::set<std::string_view> bodies;  // one upsert per body and statement
      size_t bytes = 0;
      for (; end < n && batch[end].delivery && parts.size() < kDeliveriesPerStatement &&
             (parts.empty() || bytes < kPipelineBytes) &&
             bodies.insert(batch[end].delivery->encoded->sha256).second;
           ++end) {
        parts.push_back(*batch[end].delivery);
        bytes += batch[end].delivery->req->content.size();
        accounts.insert(accounts.end(), batch[end].delivery_accounts.begin(),
                        batch[end].delivery_accounts.end());
      }
      plans[i] = pg::PipelinedDeliveries(parts);
      if (!plans[i]) {  // each alone (pipelined, else one by one)
        if (batch[i].pipelined) plans[i] = batch[i].pipelined();
        ++i;
        continue;
      }
      GuardPipelined(*plans[i], accounts);
      merged_end[i] = end;
      for (size_t k = i + 1; k < end; ++k) {
        merged_end[k] = k + 1;
        plans[k] = pg::PipelinedWrite{{}, [](Txn&, std::vector<pg::Rows>&) { return Ok(); }};
      }
      i = end;
    }
    Txn txn{writer_conn_, options_.compress, {}, {}, false};
    std::vector<std::string> owed{"BEGIN"};
    // Sends the owed statements and `sql` (no parameters) in one simple query.
    auto send = [&](const std::string& sql) -> Status {
      std::string q;
      for (const auto& o : owed) q += o + "; ";
      owed.clear();
      return AsStatus(writer_conn_.Exec(q + sql));
    };
    // One write in a savepoint of its own. A write that lost a race with
    // another node's transaction (a deadlock between their row locks, the
    // victim chosen by the server) is undone and run again, a few times.
    auto one_by_one = [&](size_t i) -> Status {
      for (int attempt = 1;; ++attempt) {
        if (auto st = send("SAVEPOINT w"); !st) return st;
        results[i] = batch[i].apply(txn);
        if (!results[i]) owed.push_back("ROLLBACK TO w");
        owed.push_back("RELEASE w");
        if (results[i] || attempt == kRaceRetries || !pg::LostARace(results[i].error())) {
          return Ok();
        }
        spdlog::info("postgres: a write lost a race with another writer, again ({}): {}", attempt,
                     results[i].error().message);
      }
    };
    Status commit = EnsureConnected(writer_conn_);
    for (size_t i = 0; i < n && commit;) {
      if (!plans[i]) {
        commit = one_by_one(i++);
        continue;
      }
      size_t end = i;
      for (size_t bytes = 0; end < n && plans[end] && (end == i || bytes < kPipelineBytes);) {
        for (const auto& st : plans[end]->statements) {
          for (const auto& param : st.params) bytes += param.value.size();
        }
        end = merged_end[end];  // a merged run is never cut
      }
      std::vector<pg::Statement> statements;
      for (auto& o : owed) statements.push_back({std::move(o), {}});
      owed.clear();
      statements.push_back({"SAVEPOINT p", {}});
      constexpr size_t kFraming = SIZE_MAX;
      std::vector<size_t> write_of(statements.size(), kFraming);
      size_t at = statements.size();  // the first write's first statement
      for (size_t k = i; k < end; ++k) {
        for (const auto& st : plans[k]->statements) {
          statements.push_back(st);
          write_of.push_back(k);
        }
      }
      auto rows = writer_conn_.ExecPipeline(statements);
      if (!rows) {
        commit = rows.error();
        break;
      }
      // The first failing statement names the failed write (the rest were skipped).
      size_t failed = end;  // end: none
      for (size_t j = 0; j < rows->size() && failed == end; ++j) {
        if (!(*rows)[j]) failed = write_of[j];
      }
      for (size_t k = i; k < std::min(failed, end); ++k) {
        std::vector<pg::Rows> mine;
        for (size_t m = 0; m < plans[k]->statements.size(); ++m) {
          mine.push_back(std::move(*(*rows)[at++]));
        }
        results[k] = plans[k]->finish(txn, mine);
        if (!results[k]) {
          failed = k;
          break;
        }
      }
      if (failed == end) {
        owed.push_back("RELEASE p");
        i = end;
        continue;
      }
      // Undone; the writes before the failed one go again, it alone, then the rest.
      owed.push_back("ROLLBACK TO p");
      owed.push_back("RELEASE p");
      const bool all = failed == kFraming;  // a framing statement failed
      for (size_t k = all ? i : failed; k < (all ? end : merged_end[failed]); ++k) {
        plans[k].reset();
      }
    }
    if (commit) {
      // Other nodes learn of the change when this commits (LISTEN/NOTIFY).
      for (auto& notify : NotifyStatements(txn.touched)) owed.push_back(std::move(notify));
      for (auto& notify : NotifyStatements(txn.records, kRecordsTag)) {
        owed.push_back(std::move(notify));
      }
      commit = send("COMMIT");
    }
    if (!commit && writer_conn_.connected()) (void)writer_conn_.Exec("ROLLBACK");
    // This batch's changes to the delivery look-ups (and any other node's
    // that came along) leave the cache before the writes' callers return.
    ApplyLookupChanges(writer_conn_.TakeNotifications());
    if (commit && !txn.touched.empty()) {
      std::function<void(const std::vector<int64_t>&)> listener;
      {
        std::lock_guard lock(mu_);
        listener = listener_;
      }
      if (listener) listener(std::vector<int64_t>(txn.touched.begin(), txn.touched.end()));
    }
    for (size_t i = 0; i < n; ++i) {
      if (!commit && results[i]) results[i] = Err(ErrorKind::kTemporary, commit.error().message);
      batch[i].done(std::move(results[i]));
    }
    // Bodies stored without their text are indexed now; the rest (other
    // nodes' bodies, restores) within the indexer's second.
    if (commit && options_.index_text && txn.unindexed) {
      {
        std::lock_guard lock(mu_);
        index_kick_ = true;
      }
      cv_index_.notify_one();
    }
  }

  // pg_notify calls naming the changed mailboxes, payloads under the limit.
  // Payload: "NODE:" + mailbox ids, or "NODE:r" + account ids whose
  // records changed (`tag` kRecordsTag), comma-separated.
  std::vector<std::string> NotifyStatements(const std::set<int64_t>& mailboxes,
                                            std::string_view tag = "") const {
    std::vector<std::string> out;
    std::string payload = node_ + ":" + std::string(tag);
    const size_t head = payload.size();
    auto add = [&] {
      out.push_back(std::string("SELECT pg_notify(") + pg::QuoteLiteral(kChannel) + ", " +
                    pg::QuoteLiteral(payload) + ")");
      payload.resize(head);
    };
    for (int64_t id : mailboxes) {
      if (payload.size() > head) payload += ',';
      payload += std::to_string(id);
      if (payload.size() > kMaxPayload) add();
    }
    if (payload.size() > head) add();
    return out;
  }

  // The SEARCH text of new bodies (blob_text), off the delivery path: after
  // commits (and every second, for other nodes' bodies) the bodies without a
  // row are read and their text extracted (StoreOptions::index_text). Bodies
  // without a row are scanned by the caller meanwhile (TextMatches::unindexed).
  void IndexLoop() {
    NameThisThread("hato-indexer");
    while (true) {
      {
        std::unique_lock lock(mu_);
        cv_index_.wait_for(lock, std::chrono::seconds(1),
                           [this] { return stopping_ || index_kick_; });
        if (stopping_) return;
        index_kick_ = false;
      }
      // The pass starts above the mark (IndexMark): its cost follows the
      // bodies stored in the last seconds, not the size of the store.
      const int64_t began = NowMs();
      auto max_id = WithReader([](Conn& c) -> Result<int64_t> {
        auto r = c.Exec("SELECT coalesce(max(id), 0) FROM blobs");
        if (!r) return r.error();
        return r->Int(0, 0);
      });
      Result<uint64_t> n =
          max_id ? IndexMissingTextAfter(options_.index_text, index_mark_.From(began, *max_id))
                 : Result<uint64_t>(max_id.error());
      if (!n) index_mark_.Failed(began);
      if (!n && n.error().kind != ErrorKind::kTemporary) {
        spdlog::warn("store: text index not updated: {}", n.error().message);
      }
    }
  }

  // The delivery look-ups' changes among `notes` (kLookupsChannel) leave
  // the cache.
  void ApplyLookupChanges(const std::vector<std::pair<std::string, std::string>>& notes) {
    for (const auto& [channel, payload] : notes) {
      if (channel != kLookupsChannel) continue;
      std::string_view rest(payload);
      if (rest.substr(0, kDirectoryTag.size()) != kDirectoryTag) continue;
      rest.remove_prefix(kDirectoryTag.size());
      if (rest.empty()) {
        cache_.Clear();
      } else {
        cache_.DropScripts(std::strtoll(std::string(rest).c_str(), nullptr, 10));
      }
    }
  }

  // Forwards other nodes' changes to the listener (IMAP IDLE on this node),
  // and keeps the delivery look-ups' cache: it is used only while this
  // connection listens (a lost connection may have lost a notification).
  void ListenLoop() {
    bool listening = false;
    while (true) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
      }
      if (!listening) {
        listening =
            listen_conn_.Connect().ok() &&
            listen_conn_.Exec(std::string("LISTEN ") + kChannel + "; LISTEN " + kLookupsChannel)
                .ok();
        if (!listening) {
          listen_conn_.Close();
          std::this_thread::sleep_for(std::chrono::milliseconds(kReconnectBackoffMs));
          continue;
        }
        cache_.SetLive(true);
      }
      auto notes = listen_conn_.WaitNotifications(200);
      if (!notes) {
        cache_.SetLive(false);
        listening = false;
        continue;
      }
      ApplyLookupChanges(*notes);
      std::vector<int64_t> ids;
      std::set<int64_t> records;
      for (const auto& [channel, payload] : *notes) {
        if (channel == kLookupsChannel) continue;
        size_t colon = payload.find(':');
        if (colon == std::string::npos || payload.compare(0, colon, node_) == 0) continue;
        std::string_view rest = std::string_view(payload).substr(colon + 1);
        const bool is_records = rest.substr(0, kRecordsTag.size()) == kRecordsTag;
        if (is_records) rest.remove_prefix(kRecordsTag.size());
        while (!rest.empty()) {
          size_t comma = rest.find(',');
          std::string_view one = rest.substr(0, comma);
          int64_t id = std::strtoll(std::string(one).c_str(), nullptr, 10);
          if (is_records) {
            records.insert(id);
          } else {
            ids.push_back(id);
          }
          rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        }
      }
      std::function<void(const std::vector<int64_t>&)> listener;
      RecordListener record_listener;
      {
        std::lock_guard lock(mu_);
        listener = listener_;
        record_listener = record_listener_;
      }
      if (listener && !ids.empty()) listener(ids);
      if (record_listener)
        for (int64_t account : records) record_listener(account);
    }
  }

  PostgresOptions pg_;
  StoreOptions options_;
  // This process, in NOTIFY payloads: random even when node_id is set, so a
  // CLI run on the node's data dir is not taken for the node itself.
  std::string node_;
  std::string lease_node_;  // PostgresOptions::node_id, or node_ when none

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WriteOp> queue_;                                  // guarded by mu_
  std::function<void(const std::vector<int64_t>&)> listener_;  // guarded by mu_
  CopyListener copy_listener_;                                 // guarded by mu_
  RecordListener record_listener_;                             // guarded by mu_
  bool stopping_ = false;                                      // guarded by mu_
  std::thread writer_;
  std::thread listener_thread_;
  std::thread indexer_;
  std::condition_variable cv_index_;
  bool index_kick_ = false;   // guarded by mu_
  Conn writer_conn_;          // writer thread only (and Open before it starts)
  Conn listen_conn_;          // listener thread only
  pg::IndexMark index_mark_;  // the indexer thread only
  DirectoryCache cache_;      // live while listen_conn_ listens

  static constexpr int64_t kRecentCommitMs = 2000;
  std::atomic<int64_t> batch_started_ms_{0};
  std::atomic<int64_t> last_commit_ms_{0};
  std::atomic<int64_t> last_commit_end_ms_{0};

  std::atomic<int64_t> down_until_ms_{0};
  std::mutex down_mu_;
  std::string down_reason_;  // guarded by down_mu_

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Conn>> idle_;  // guarded by pool_mu_
  size_t open_readers_ = 0;                  // guarded by pool_mu_
};

}  // namespace

Result<std::unique_ptr<Store>> OpenPostgresStore(const PostgresOptions& pg,
                                                 const StoreOptions& options) {
  if (pg.conninfo.empty()) {
    return Err(ErrorKind::kInvalid, "no PostgreSQL connection string ([store] postgres)");
  }
  auto store = std::make_unique<PgStore>(pg, options);
  if (auto st = store->Open(); !st) return st.error();
  return std::unique_ptr<Store>(std::move(store));
}

Status ImportSnapshotToPostgres(const std::string& snapshot_path, const PostgresOptions& pg,
                                const BodySource& source) {
  ConnOptions o;
  o.conninfo = pg.conninfo;
  o.connect_timeout_seconds = pg.connect_timeout_seconds;
  // A whole installation in one transaction: no statement deadline.
  o.statement_timeout_ms = 0;
  o.query_timeout_ms = 24 * 3600 * 1000;
  Conn c(o);
  if (auto st = c.Connect(); !st) return st;
  if (auto st = pg::Migrate(c); !st) return st;
  return pg::ImportSqliteSnapshot(c, snapshot_path, source, true, nullptr);
}

Result<std::string> SnapshotDigest(const std::string& snapshot_path, uint64_t& messages) {
  return pg::SnapshotDigest(snapshot_path, messages);
}

}  // namespace hato::store
