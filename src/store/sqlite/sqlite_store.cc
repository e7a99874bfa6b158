// The embedded backend: SQLite (WAL) for metadata, BlobStore segments for bodies.
//
// One writer thread owns the read-write connection and the blob appender.
// Writes are queued (bounded by StoreOptions::max_pending_writes) and applied
// in batches: one transaction, one SAVEPOINT per write so that one failing
// write does not fail its neighbours, one blob fdatasync, one WAL fsync at
// COMMIT. Only then is each write's `done` called. Readers use their own
// connections from a pool; WAL lets them run while the writer commits.
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_set>

#include "base/strings.h"
#include "base/thread_name.h"
#include "io/fault_fs.h"
#include "search/terms.h"
#include "search/text_index.h"
#include "store/blobs.h"
#include "store/cached_lookups.h"
#include "store/directory_cache.h"
#include "store/probe.h"
#include "store/sqlite/db.h"
#include "store/sqlite/fault_vfs.h"
#include "store/sqlite/list_ops.h"
#include "store/sqlite/mail_ops.h"
#include "store/sqlite/queue_ops.h"
#include "store/sqlite/schema.h"
#include "store/store.h"

namespace hato::store {
namespace {

using sqlite::Db;
using sqlite::Stmt;

int64_t Now() { return sqlite::NowSeconds(); }

std::string DomainOf(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : AsciiLower(address.substr(at + 1));
}

using sqlite::Txn;

// The delivery look-ups' cache (store/directory_cache.h) in the embedded
// store. The writer connection's TEMP triggers (its own writes only) note
// what a batch changed of what the look-ups read, in temp.lookup_changes
// (0: domains, accounts or aliases; else an account whose Sieve scripts
// changed); after its COMMIT the cache drops it, and the data dir's stamp
// file gets a new random value. Every process on the data dir (hato serve and
// the CLI: hato user, hato sieve, ...) does so, and a look-up that finds the
// stamp moved since it last looked clears its cache first.
constexpr const char* kLookupsStampFile = "lookups.stamp";
constexpr size_t kStampBytes = 16;
constexpr const char* kLookupTriggers = R"sql(
CREATE TEMP TABLE IF NOT EXISTS lookup_changes(account_id INTEGER NOT NULL);
CREATE TEMP TRIGGER IF NOT EXISTS lookups_domains_i AFTER INSERT ON main.domains
  BEGIN INSERT INTO lookup_changes VALUES(0); END;
CREATE TEMP TRIGGER IF NOT EXISTS lookups_domains_u AFTER UPDATE ON main.domains
  BEGIN INSERT INTO lookup_changes VALUES(0); END;
CREATE TEMP TRIGGER IF NOT EXISTS lookups_domains_d AFTER DELETE ON main.domains
  BEGIN INSERT INTO lookup_changes VALUES(0); END;
CREATE TEMP TRIGGER IF NOT EXISTS lookups_aliases_i AFTER INSERT ON main.aliases
  BEGIN INSERT INTO lookup_changes VALUES(0); END;
CREATE TEMP TRIGGER IF NOT EXISTS lookups_aliases_u AFTER UPDATE ON main.aliases
  BEGIN INSERT INTO lookup_changes VALUES(0); END;
CREATE TEMP TRIGGER IF NOT EXISTS lookups_aliases_d AFTER DELETE ON main.aliases
  BEGIN INSERT INTO lookup_changes VALUES(0); END;
CREATE TEMP TRIGGER IF NOT EXISTS lookups_accounts_i AFTER INSERT ON main.accounts
  BEGIN INSERT INTO lookup_changes VALUES(0); END;
CREATE TEMP TRIGGER IF NOT EXISTS lookups_accounts_u
  AFTER UPDATE OF id, address, password_hash, scram_sha256, quota_bytes, removed_at
  ON main.accounts BEGIN INSERT INTO lookup_changes VALUES(0); END;
CREATE TEMP TRIGGER IF NOT EXISTS lookups_accounts_d AFTER DELETE ON main.accounts
  BEGIN INSERT INTO lookup_changes VALUES(0); END;
CREATE TEMP TRIGGER IF NOT EXISTS lookups_sieve_i AFTER INSERT ON main.sieve_scripts
  BEGIN INSERT INTO lookup_changes VALUES(NEW.account_id); END;
CREATE TEMP TRIGGER IF NOT EXISTS lookups_sieve_u AFTER UPDATE ON main.sieve_scripts
  BEGIN INSERT INTO lookup_changes VALUES(NEW.account_id); INSERT INTO lookup_changes
  VALUES(OLD.account_id); END;
CREATE TEMP TRIGGER IF NOT EXISTS lookups_sieve_d AFTER DELETE ON main.sieve_scripts
  BEGIN INSERT INTO lookup_changes VALUES(OLD.account_id); END;
)sql";

std::string NewStamp() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string out(kStampBytes, '0');
  for (char& c : out) c = kHex[rd() % 16];
  return out;
}

struct WriteOp {
  std::function<Status(Txn&)> apply;
  std::function<void(Status)> done;
};

// Gives the account `addr` (live only, or any) a new session epoch
// (server/account_sessions.h): one session_ends row. t.db.Changes() tells
// whether there was such an account.
Status EndSessionsIn(Txn& t, const std::string& addr, bool live_only) {
  auto s = t.db.Cached(live_only ? "INSERT INTO session_ends(account_id, at) SELECT id, ? FROM "
                                   "accounts WHERE address = ? AND removed_at IS NULL"
                                 : "INSERT INTO session_ends(account_id, at) SELECT id, ? FROM "
                                   "accounts WHERE address = ?");
  if (!s) return s.error();
  return (*s)->Bind(1, Now()).Bind(2, addr).Run();
}

BlobRef RefFromRow(Stmt& s, int first) {
  BlobRef ref;
  ref.sha256 = s.Blob(first);
  ref.segment = static_cast<uint32_t>(s.Int(first + 1));
  ref.offset = static_cast<uint64_t>(s.Int(first + 2));
  ref.stored_length = static_cast<uint64_t>(s.Int(first + 3));
  ref.size = static_cast<uint64_t>(s.Int(first + 4));
  ref.codec = static_cast<Codec>(s.Int(first + 5));
  return ref;
}

class SqliteStore final : public Store, public WriteProbe, public CachedLookups {
 public:
  using Store::AddAccount;
  using Store::SetPassword;
  SqliteStore(std::string data_dir, StoreOptions options)
      : data_dir_(std::move(data_dir)),
        db_path_(data_dir_ + "/meta.db"),
        stamp_path_(data_dir_ + "/" + kLookupsStampFile),
        options_(options),
        fs_(options.fs ? options.fs : io::FileSystem::Default()),
        blobs_(fs_, data_dir_ + "/blobs",
               BlobStore::Options{kDefaultSegmentSize, options.compress}) {
    // A file system that injects faults (tests, drills) injects them into
    // the metadata database too.
    if (auto* faults = dynamic_cast<io::FaultInjector*>(fs_)) vfs_ = sqlite::UseFaultVfs(faults);
  }

  ~SqliteStore() override {
    {
      std::lock_guard lock(index_mu_);
      index_stopping_ = true;
    }
    index_cv_.notify_all();
    if (indexer_.joinable()) indexer_.join();
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (writer_.joinable()) writer_.join();
  }

  Status Open() {
    if (auto st = fs_->CreateDirs(data_dir_); !st) return st;
    if (auto st = writer_db_.Open(db_path_, false, vfs_); !st) return st;
    if (auto st = sqlite::Migrate(writer_db_); !st) return st;
    if (auto st = writer_db_.Exec(kLookupTriggers); !st) return st;
    if (!fs_->Exists(stamp_path_)) {
      if (auto st = fs_->WriteFile(stamp_path_, NewStamp()); !st) {
        spdlog::warn("store: {}", st.error().message);
      }
    }
    if (auto f = fs_->OpenRead(stamp_path_); f) {
      stamp_file_ = std::move(*f);
      cache_.SetLive(true);
    } else {
      spdlog::warn("store: {}: delivery look-ups not cached", f.error().message);
    }
    if (auto st = blobs_.Open(); !st) return st;
    writer_ = std::thread([this] { WriterLoop(); });
    if (options_.index_text) {
      // A store without the index still answers every search, by scanning.
      if (auto st = OpenTextIndex(); !st) {
        spdlog::warn("store: full-text index not available, SEARCH scans: {}", st.error().message);
      } else {
        indexer_ = std::thread([this] { IndexerLoop(); });
      }
    }
    return Ok();
  }

  // ---- Admin ----

  Status AddDomain(std::string_view domain) override {
    std::string name = AsciiLower(domain);
    if (name.empty() || name.find('@') != std::string::npos) {
      return Err(ErrorKind::kInvalid, "invalid domain name: " + std::string(domain));
    }
    return WriteSync([name](Txn& t) -> Status {
      auto s = t.db.Cached("INSERT INTO domains(name, created_at) VALUES(?, ?)");
      if (!s) return s.error();
      auto st = (*s)->Bind(1, name).Bind(2, Now()).Run();
      if (!st && st.error().kind == ErrorKind::kExists) {
        return Err(ErrorKind::kExists, "domain already exists: " + name);
      }
      return st;
    });
  }

  Status RemoveDomain(std::string_view domain) override {
    std::string name = AsciiLower(domain);
    return WriteSync([name](Txn& t) -> Status {
      auto q = t.db.Cached(
          "SELECT d.id, (SELECT count(*) FROM accounts a WHERE a.domain_id = d.id AND "
          "a.removed_at IS NULL) FROM domains d WHERE d.name = ?");
      if (!q) return q.error();
      auto row = (*q)->Bind(1, name).Step();
      if (!row) return row.error();
      if (!*row) return Err(ErrorKind::kNotFound, "no such domain: " + name);
      int64_t id = (*q)->Int(0);
      if ((*q)->Int(1) > 0) {
        return Err(ErrorKind::kInvalid, "domain " + name + " still has " +
                                            std::to_string((*q)->Int(1)) +
                                            " accounts; remove them first");
      }
      (*q)->Reset();
      auto al = t.db.Cached("SELECT count(*) FROM aliases WHERE domain_id = ?");
      if (!al) return al.error();
      auto arow = (*al)->Bind(1, id).Step();
      if (!arow) return arow.error();
      if ((*al)->Int(0) > 0) {
        return Err(ErrorKind::kInvalid, "domain " + name + " still has " +
                                            std::to_string((*al)->Int(0)) +
                                            " aliases; remove them first (hato alias list)");
      }
      (*al)->Reset();
      // Removed accounts keep their mail for the retention period: they keep the domain row.
      auto k = t.db.Cached("SELECT count(*) FROM accounts WHERE domain_id = ?");
      if (!k) return k.error();
      auto krow = (*k)->Bind(1, id).Step();
      if (!krow) return krow.error();
      if ((*k)->Int(0) > 0) {
        return Err(ErrorKind::kInvalid,
                   "domain " + name + " has removed accounts in retention; purge first");
      }
      auto d = t.db.Cached("DELETE FROM domains WHERE id = ?");
      if (!d) return d.error();
      return (*d)->Bind(1, id).Run();
    });
  }

  Result<std::vector<std::string>> ListDomains() override {
    return WithReader([](Db& db) -> Result<std::vector<std::string>> {
      auto s = db.Cached("SELECT name FROM domains ORDER BY name");
      if (!s) return s.error();
      std::vector<std::string> out;
      while (true) {
        auto row = (*s)->Step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back((*s)->Text(0));
      }
      return out;
    });
  }

  Result<bool> IsLocalDomain(std::string_view domain) override {
    std::string name = AsciiLower(domain);
    const bool cached = CacheUsable();
    if (cached) {
      if (auto hit = cache_.Domain(name)) return *hit;
    }
    uint64_t generation = cache_.generation();
    auto local = WithReader([&name](Db& db) -> Result<bool> {
      auto s = db.Cached("SELECT 1 FROM domains WHERE name = ?");
      if (!s) return s.error();
      auto row = (*s)->Bind(1, name).Step();
      if (!row) return row.error();
      return *row;
    });
    if (cached && local) cache_.PutDomain(generation, name, *local);
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
      auto d = t.db.Cached("SELECT id FROM domains WHERE name = ?");
      if (!d) return d.error();
      auto row = (*d)->Bind(1, domain).Step();
      if (!row) return row.error();
      if (!*row) {
        return Err(ErrorKind::kNotFound,
                   "domain " + domain + " is not local; add it with: hato domain add " + domain);
      }
      int64_t domain_id = (*d)->Int(0);
      (*d)->Reset();
      if (auto st = RefuseAliasAddress(t, addr); !st) return st;
      auto ins = t.db.Cached(
          "INSERT INTO accounts(address, domain_id, password_hash, created_at, scram_sha256) "
          "VALUES(?,?,?,?,nullif(?,''))");
      if (!ins) return ins.error();
      auto st = (*ins)
                    ->Bind(1, addr)
                    .Bind(2, domain_id)
                    .Bind(3, hash)
                    .Bind(4, Now())
                    .Bind(5, scram)
                    .Run();
      if (!st) {
        if (st.error().kind == ErrorKind::kExists) {
          return Err(ErrorKind::kExists, "account already exists: " + addr);
        }
        return st;
      }
      return sqlite::CreateDefaultMailboxes(t, t.db.LastInsertId());
    });
  }

  Status SetPassword(std::string_view address, std::string_view password_hash,
                     std::string_view scram_sha256) override {
    std::string addr = AsciiLower(address);
    std::string hash(password_hash);
    std::string scram(scram_sha256);
    return WriteSync([addr, hash, scram](Txn& t) -> Status {
      // The verifier is replaced too: an old one would still accept the old password.
      auto s = t.db.Cached(
          "UPDATE accounts SET password_hash = ?, scram_sha256 = nullif(?,'') WHERE address = ? "
          "AND removed_at IS NULL");
      if (!s) return s.error();
      if (auto st = (*s)->Bind(1, hash).Bind(2, scram).Bind(3, addr).Run(); !st) return st;
      if (t.db.Changes() == 0) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      // Sessions logged in with the old password end (issue 11).
      return EndSessionsIn(t, addr, /*live_only=*/true);
    });
  }

  Status RemoveAccount(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WriteSync([addr](Txn& t) -> Status {
      if (auto st = EndSessionsIn(t, addr, /*live_only=*/true); !st) return st;
      auto s = t.db.Cached(
          "UPDATE accounts SET removed_at = ? WHERE address = ? AND removed_at IS NULL");
      if (!s) return s.error();
      if (auto st = (*s)->Bind(1, Now()).Bind(2, addr).Run(); !st) return st;
      if (t.db.Changes() == 0) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      return Ok();
    });
  }

  // ---- Sieve scripts (src/sieve) ----

  Result<std::vector<SieveScriptInfo>> ListSieveScripts(int64_t account_id) override {
    return WithReader([account_id](Db& db) { return ReadSieveScripts(db, account_id); });
  }

  Result<uint64_t> SieveScriptsState(int64_t account_id) override {
    return WithReader([account_id](Db& db) -> Result<uint64_t> {
      auto c = ReadSieveCounters(db, account_id);
      if (!c) return c.error();
      return c->seq;
    });
  }

  Result<SieveScriptChanges> SieveScriptsSince(int64_t account_id, uint64_t since) override {
    return WithReader([account_id, since](Db& db) -> Result<SieveScriptChanges> {
      SieveScriptChanges out;
      auto c = ReadSieveCounters(db, account_id);
      if (!c) return c.error();
      out.state = c->seq;
      out.forgotten = c->forgotten;
      auto scripts = ReadSieveScripts(db, account_id);
      if (!scripts) return scripts.error();
      out.scripts = std::move(*scripts);
      auto s = db.Cached(
          "SELECT id, name, created_seq, gone_seq FROM sieve_scripts_gone WHERE account_id = ? "
          "AND gone_seq > ? ORDER BY gone_seq");
      if (!s) return s.error();
      (*s)->Bind(1, account_id).Bind(2, static_cast<int64_t>(since));
      auto st = (*s)->ForEachRow([&](Stmt& r) {
        out.destroyed.push_back({r.Int(0), r.Text(1), static_cast<uint64_t>(r.Int(2)),
                                 static_cast<uint64_t>(r.Int(3))});
      });
      (*s)->Reset();
      if (!st) return st.error();
      return out;
    });
  }

  Result<std::string> GetSieveScript(int64_t account_id, std::string_view name) override {
    std::string n(name);
    return WithReader([account_id, &n](Db& db) -> Result<std::string> {
      auto s = db.Cached("SELECT content FROM sieve_scripts WHERE account_id = ? AND name = ?");
      if (!s) return s.error();
      auto row = (*s)->Bind(1, account_id).Bind(2, n).Step();
      if (!row) return row.error();
      if (!*row) return Err(ErrorKind::kNotFound, "no such script: " + n);
      std::string content = (*s)->Text(0);
      (*s)->Reset();
      return content;
    });
  }

  Result<std::pair<std::string, std::string>> ActiveSieveScript(int64_t account_id) override {
    return WithReader([account_id](Db& db) -> Result<std::pair<std::string, std::string>> {
      auto s =
          db.Cached("SELECT name, content FROM sieve_scripts WHERE account_id = ? AND active != 0");
      if (!s) return s.error();
      auto row = (*s)->Bind(1, account_id).Step();
      if (!row) return row.error();
      if (!*row) return Err(ErrorKind::kNotFound, "no active script");
      auto out = std::make_pair((*s)->Text(0), (*s)->Text(1));
      (*s)->Reset();
      return out;
    });
  }

  Result<std::vector<SieveScriptText>> DeliverySieveScripts(int64_t account_id,
                                                            std::string_view prefix) override {
    const bool cached = CacheUsable();
    if (cached) {
      if (auto hit = cache_.Scripts(account_id, prefix)) return std::move(*hit);
    }
    uint64_t generation = cache_.generation();
    std::string p(prefix);
    auto scripts = WithReader([account_id, &p](Db& db) -> Result<std::vector<SieveScriptText>> {
      // substr(): no LIKE escaping of the prefix; the primary key
      // (account_id, name) narrows the scan to the account's few scripts.
      auto s = db.Cached(
          "SELECT name, content, active FROM sieve_scripts WHERE account_id = ? AND "
          "(active != 0 OR substr(name, 1, length(?)) = ?)");
      if (!s) return s.error();
      (*s)->Bind(1, account_id).Bind(2, p).Bind(3, p);
      std::vector<SieveScriptText> out;
      auto st = (*s)->ForEachRow([&](Stmt& r) {
        out.push_back({r.Text(0), r.Text(1), r.Int(2) != 0});
      });
      (*s)->Reset();
      if (!st) return st.error();
      return out;
    });
    if (cached && scripts) cache_.PutScripts(generation, account_id, prefix, *scripts);
    return scripts;
  }

  Status PutSieveScript(int64_t account_id, std::string_view name,
                        std::string_view content) override {
    std::string n(name), c(content);
    return WriteSync([account_id, n, c](Txn& t) -> Status {
      auto counters = ReadSieveCounters(t.db, account_id);
      if (!counters) return counters.error();
      uint64_t seq = counters->seq + 1;
      auto u = t.db.Cached(
          "UPDATE sieve_scripts SET content = ?, updated_at = ?, changed_seq = ? WHERE "
          "account_id = ? AND name = ?");
      if (!u) return u.error();
      if (auto st = (*u)->Bind(1, c)
                        .Bind(2, Now())
                        .Bind(3, static_cast<int64_t>(seq))
                        .Bind(4, account_id)
                        .Bind(5, n)
                        .Run();
          !st) {
        return st;
      }
      if (t.db.Changes() == 0) {
        auto s = t.db.Cached(
            "INSERT INTO sieve_scripts(account_id, name, content, active, updated_at, id, "
            "created_seq, changed_seq) VALUES(?, ?, ?, 0, ?, ?, ?, ?)");
        if (!s) return s.error();
        if (auto st = (*s)->Bind(1, account_id)
                          .Bind(2, n)
                          .Bind(3, c)
                          .Bind(4, Now())
                          .Bind(5, counters->next_id)
                          .Bind(6, static_cast<int64_t>(seq))
                          .Bind(7, static_cast<int64_t>(seq))
                          .Run();
            !st) {
          return st;
        }
        ++counters->next_id;
      }
      counters->seq = seq;
      return WriteSieveCounters(t, account_id, *counters);
    });
  }

  Status SetActiveSieveScript(int64_t account_id, std::string_view name) override {
    std::string n(name);
    return WriteSync([account_id, n](Txn& t) -> Status {
      if (!n.empty()) {
        auto e = t.db.Cached("SELECT 1 FROM sieve_scripts WHERE account_id = ? AND name = ?");
        if (!e) return e.error();
        auto row = (*e)->Bind(1, account_id).Bind(2, n).Step();
        if (!row) return row.error();
        (*e)->Reset();
        if (!*row) return Err(ErrorKind::kNotFound, "no such script: " + n);
      }
      auto counters = ReadSieveCounters(t.db, account_id);
      if (!counters) return counters.error();
      uint64_t seq = counters->seq + 1;
      // Only the scripts whose activation changes (none when it is already so).
      auto s = t.db.Cached(
          "UPDATE sieve_scripts SET active = (name = ?), changed_seq = ? WHERE account_id = ? "
          "AND active != (name = ?)");
      if (!s) return s.error();
      if (auto st = (*s)->Bind(1, n)
                        .Bind(2, static_cast<int64_t>(seq))
                        .Bind(3, account_id)
                        .Bind(4, n)
                        .Run();
          !st) {
        return st;
      }
      if (t.db.Changes() == 0) return Ok();
      counters->seq = seq;
      return WriteSieveCounters(t, account_id, *counters);
    });
  }

  Status DeleteSieveScript(int64_t account_id, std::string_view name) override {
    std::string n(name);
    return WriteSync([account_id, n](Txn& t) -> Status {
      auto e = t.db.Cached(
          "SELECT active, id, created_seq FROM sieve_scripts WHERE account_id = ? AND name = ?");
      if (!e) return e.error();
      auto row = (*e)->Bind(1, account_id).Bind(2, n).Step();
      if (!row) return row.error();
      if (!*row) return Err(ErrorKind::kNotFound, "no such script: " + n);
      bool active = (*e)->Int(0) != 0;
      int64_t id = (*e)->Int(1);
      int64_t created = (*e)->Int(2);
      (*e)->Reset();
      if (active) return Err(ErrorKind::kInUse, "script is active: " + n);
      auto counters = ReadSieveCounters(t.db, account_id);
      if (!counters) return counters.error();
      counters->seq += 1;
      auto d = t.db.Cached("DELETE FROM sieve_scripts WHERE account_id = ? AND name = ?");
      if (!d) return d.error();
      if (auto st = (*d)->Bind(1, account_id).Bind(2, n).Run(); !st) return st;
      auto g = t.db.Cached(
          "INSERT OR REPLACE INTO sieve_scripts_gone(account_id, id, name, created_seq, gone_seq) "
          "VALUES(?, ?, ?, ?, ?)");
      if (!g) return g.error();
      if (auto st = (*g)->Bind(1, account_id)
                        .Bind(2, id)
                        .Bind(3, n)
                        .Bind(4, created)
                        .Bind(5, static_cast<int64_t>(counters->seq))
                        .Run();
          !st) {
        return st;
      }
      // Past kMaxSieveTombstones the oldest are forgotten.
      auto old = t.db.Cached(
          "SELECT gone_seq FROM sieve_scripts_gone WHERE account_id = ? ORDER BY gone_seq DESC "
          "LIMIT 1 OFFSET ?");
      if (!old) return old.error();
      auto o =
          (*old)->Bind(1, account_id).Bind(2, static_cast<int64_t>(kMaxSieveTombstones)).Step();
      if (!o) return o.error();
      if (*o) {
        counters->forgotten = static_cast<uint64_t>((*old)->Int(0));
        (*old)->Reset();
        auto drop =
            t.db.Cached("DELETE FROM sieve_scripts_gone WHERE account_id = ? AND gone_seq <= ?");
        if (!drop) return drop.error();
        if (auto st = (*drop)
                          ->Bind(1, account_id)
                          .Bind(2, static_cast<int64_t>(counters->forgotten))
                          .Run();
            !st) {
          return st;
        }
      }
      return WriteSieveCounters(t, account_id, *counters);
    });
  }

  Status RenameSieveScript(int64_t account_id, std::string_view from,
                           std::string_view to) override {
    std::string f(from), n(to);
    return WriteSync([account_id, f, n](Txn& t) -> Status {
      auto e = t.db.Cached("SELECT 1 FROM sieve_scripts WHERE account_id = ? AND name = ?");
      if (!e) return e.error();
      auto row = (*e)->Bind(1, account_id).Bind(2, n).Step();
      if (!row) return row.error();
      (*e)->Reset();
      if (*row) return Err(ErrorKind::kExists, "script already exists: " + n);
      auto counters = ReadSieveCounters(t.db, account_id);
      if (!counters) return counters.error();
      counters->seq += 1;
      auto u = t.db.Cached(
          "UPDATE sieve_scripts SET name = ?, updated_at = ?, changed_seq = ? WHERE account_id = "
          "? AND name = ?");
      if (!u) return u.error();
      if (auto st = (*u)->Bind(1, n)
                        .Bind(2, Now())
                        .Bind(3, static_cast<int64_t>(counters->seq))
                        .Bind(4, account_id)
                        .Bind(5, f)
                        .Run();
          !st) {
        return st;
      }
      if (t.db.Changes() == 0) return Err(ErrorKind::kNotFound, "no such script: " + f);
      return WriteSieveCounters(t, account_id, *counters);
    });
  }

  Status SetSieveStatus(int64_t account_id, std::string_view error) override {
    auto cur = GetSieveStatus(account_id);
    if (cur && cur->error == error) return Ok();
    std::string e(error);
    return WriteSync([account_id, e](Txn& t) -> Status {
      auto s = t.db.Cached(
          "INSERT INTO sieve_status(account_id, error, at) VALUES(?, ?, ?) "
          "ON CONFLICT(account_id) DO UPDATE SET error = excluded.error, at = excluded.at");
      if (!s) return s.error();
      return (*s)->Bind(1, account_id).Bind(2, e).Bind(3, Now()).Run();
    });
  }

  Result<SieveStatus> GetSieveStatus(int64_t account_id) override {
    return WithReader([account_id](Db& db) -> Result<SieveStatus> {
      auto s = db.Cached("SELECT error, at FROM sieve_status WHERE account_id = ?");
      if (!s) return s.error();
      auto row = (*s)->Bind(1, account_id).Step();
      if (!row) return row.error();
      SieveStatus out;
      if (*row) out = {(*s)->Text(0), (*s)->Int(1)};
      (*s)->Reset();
      return out;
    });
  }

  Result<bool> SieveMemoSeen(int64_t account_id, SieveMemo kind, std::string_view key,
                             int64_t now) override {
    std::string k(key);
    return WithReader([account_id, kind, &k, now](Db& db) -> Result<bool> {
      auto s = db.Cached(
          "SELECT 1 FROM sieve_memos WHERE account_id = ? AND kind = ? AND key = ? AND until > ?");
      if (!s) return s.error();
      auto row = (*s)->Bind(1, account_id)
                     .Bind(2, static_cast<int64_t>(kind))
                     .Bind(3, k)
                     .Bind(4, now)
                     .Step();
      if (!row) return row.error();
      bool seen = *row;
      (*s)->Reset();
      return seen;
    });
  }

  Status SieveMemoRecord(int64_t account_id, SieveMemo kind, std::string_view key,
                         int64_t until) override {
    std::string k(key);
    return WriteSync([account_id, kind, k, until](Txn& t) -> Status {
      auto s = t.db.Cached(
          "INSERT INTO sieve_memos(account_id, kind, key, until) VALUES(?, ?, ?, ?) "
          "ON CONFLICT(account_id, kind, key) DO UPDATE SET until = excluded.until");
      if (!s) return s.error();
      // Expired memories of the account go with each new one.
      auto purge = t.db.Cached("DELETE FROM sieve_memos WHERE account_id = ? AND until <= ?");
      if (!purge) return purge.error();
      if (auto st = (*purge)->Bind(1, account_id).Bind(2, Now()).Run(); !st) return st;
      return (*s)
          ->Bind(1, account_id)
          .Bind(2, static_cast<int64_t>(kind))
          .Bind(3, k)
          .Bind(4, until)
          .Run();
    });
  }

  Status EndSessions(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WriteSync([addr](Txn& t) -> Status {
      if (auto st = EndSessionsIn(t, addr, /*live_only=*/true); !st) return st;
      if (t.db.Changes() == 0) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      // Signing out everywhere also revokes the HTTP tokens (API clients and
      // web sessions) of the account.
      auto revoke = t.db.Cached(
          "DELETE FROM access_tokens WHERE account_id IN (SELECT id FROM accounts WHERE address "
          "= ? AND removed_at IS NULL)");
      if (!revoke) return revoke.error();
      return (*revoke)->Bind(1, addr).Run();
    });
  }

  Result<std::vector<SessionEnd>> SessionEndsSince(int64_t since, size_t limit) override {
    return WithReader([since, limit](Db& db) -> Result<std::vector<SessionEnd>> {
      auto s = db.Cached(
          "SELECT epoch, account_id FROM session_ends WHERE epoch > ? ORDER BY epoch LIMIT ?");
      if (!s) return s.error();
      (*s)->Bind(1, since).Bind(2, static_cast<int64_t>(limit));
      std::vector<SessionEnd> out;
      while (true) {
        auto row = (*s)->Step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back(SessionEnd{(*s)->Int(1), (*s)->Int(0)});
      }
      (*s)->Reset();
      return out;
    });
  }

  Result<std::vector<AccountSummary>> ListAccounts() override {
    return WithReader([](Db& db) -> Result<std::vector<AccountSummary>> {
      auto s = db.Cached(
          "SELECT a.address, count(m.id), coalesce(sum(m.size), 0), a.quota_bytes, a.is_admin "
          "FROM accounts a "
          "JOIN mailboxes x ON x.account_id = a.id "
          "LEFT JOIN messages m ON m.mailbox_id = x.id AND m.expunged_at IS NULL "
          "WHERE a.removed_at IS NULL AND a.id NOT IN (SELECT archive_account_id FROM lists) "
          "GROUP BY a.id ORDER BY a.address");
      if (!s) return s.error();
      std::vector<AccountSummary> out;
      while (true) {
        auto row = (*s)->Step();
        if (!row) return row.error();
        if (!*row) break;
        AccountSummary a{(*s)->Text(0), static_cast<uint64_t>((*s)->Int(1)),
                         static_cast<uint64_t>((*s)->Int(2)), std::nullopt};
        if (!(*s)->IsNull(3)) a.quota_bytes = static_cast<uint64_t>((*s)->Int(3));
        a.admin = (*s)->Int(4) != 0;
        out.push_back(std::move(a));
      }
      return out;
    });
  }

  Result<Account> FindAccount(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WithReader([&addr](Db& db) -> Result<Account> {
      auto s = db.Cached(
          "SELECT id, address, password_hash, coalesce(scram_sha256, ''), coalesce((SELECT "
          "max(e.epoch) FROM session_ends e WHERE e.account_id = accounts.id), 0) FROM accounts "
          "WHERE address = ? AND removed_at IS NULL");
      if (!s) return s.error();
      auto row = (*s)->Bind(1, addr).Step();
      if (!row) return row.error();
      if (!*row) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      return Account{(*s)->Int(0), (*s)->Text(1), (*s)->Text(2), (*s)->Text(3), (*s)->Int(4), {}};
    });
  }

  // CachedLookups (store/cached_lookups.h): the cache alone. CacheUsable
  // reads the 16-byte stamp file (the page cache holds it) to see other
  // processes' changes, as every look-up does.
  std::optional<bool> CachedLocalDomain(std::string_view domain) override {
    if (!CacheUsable()) return std::nullopt;
    return cache_.Domain(AsciiLower(domain));
  }

  std::optional<Account> CachedRecipient(std::string_view address) override {
    if (!CacheUsable()) return std::nullopt;
    return cache_.Recipient(AsciiLower(address));
  }

  std::optional<bool> CachedHasDeliveryScripts(int64_t account_id,
                                               std::string_view prefix) override {
    if (!CacheUsable()) return std::nullopt;
    auto scripts = cache_.Scripts(account_id, prefix);
    if (!scripts) return std::nullopt;
    return !scripts->empty();
  }

  Result<Account> ResolveRecipient(std::string_view address) override {
    std::string addr = AsciiLower(address);
    const bool cached = CacheUsable();
    if (cached) {
      if (auto hit = cache_.Recipient(addr)) return *hit;
    }
    uint64_t generation = cache_.generation();
    auto account = WithReader([&addr](Db& db) -> Result<Account> {
      // The account's own address first; an alias never equals a live one.
      auto s = db.Cached(
          "SELECT id, address, password_hash, quota_bytes FROM accounts WHERE address = ?1 AND "
          "removed_at IS NULL UNION ALL SELECT a.id, a.address, a.password_hash, a.quota_bytes "
          "FROM aliases l JOIN accounts a ON a.id = l.account_id WHERE l.address = ?1 AND "
          "a.removed_at IS NULL LIMIT 1");
      if (!s) return s.error();
      auto row = (*s)->Bind(1, addr).Step();
      if (!row) return row.error();
      if (!*row) return Err(ErrorKind::kNotFound, "no such account or alias: " + addr);
      Account a{(*s)->Int(0), (*s)->Text(1), (*s)->Text(2), {}, 0, {}};
      if (!(*s)->IsNull(3)) a.quota_bytes = static_cast<uint64_t>((*s)->Int(3));
      (*s)->Reset();
      return a;
    });
    if (cached && account) cache_.PutRecipient(generation, addr, *account);
    return account;
  }

  Result<Account> FirstAccount() override {
    return WithReader([](Db& db) -> Result<Account> {
      auto s = db.Cached(
          "SELECT id, address, password_hash, coalesce(scram_sha256, '') FROM accounts WHERE "
          "removed_at IS NULL ORDER BY id LIMIT 1");
      if (!s) return s.error();
      auto row = (*s)->Step();
      if (!row) return row.error();
      if (!*row) return Err(ErrorKind::kNotFound, "no account");
      return Account{(*s)->Int(0), (*s)->Text(1), (*s)->Text(2), (*s)->Text(3), 0, {}};
    });
  }

  Status AddAlias(std::string_view alias, std::string_view account) override {
    std::string addr = AsciiLower(alias);
    std::string target = AsciiLower(account);
    std::string domain = DomainOf(addr);
    // "@domain" is the domain's catch-all alias.
    if (domain.empty() || (addr.front() == '@' && addr != "@" + domain)) {
      return Err(ErrorKind::kInvalid, "invalid alias: " + std::string(alias));
    }
    return WriteSync([addr, target, domain](Txn& t) -> Status {
      auto d = t.db.Cached("SELECT id FROM domains WHERE name = ?");
      if (!d) return d.error();
      auto row = (*d)->Bind(1, domain).Step();
      if (!row) return row.error();
      if (!*row) {
        return Err(
            ErrorKind::kNotFound,
            "alias domain " + domain + " is not local; add it with: hato domain add " + domain);
      }
      int64_t domain_id = (*d)->Int(0);
      (*d)->Reset();
      auto live = t.db.Cached(
          "SELECT address = ?2 FROM accounts WHERE address IN (?1, ?2) AND removed_at IS NULL");
      if (!live) return live.error();
      (*live)->Bind(1, addr).Bind(2, target);
      bool target_live = false, alias_is_account = false;
      while (true) {
        auto r = (*live)->Step();
        if (!r) return r.error();
        if (!*r) break;
        ((*live)->Int(0) != 0 ? target_live : alias_is_account) = true;
      }
      (*live)->Reset();
      if (alias_is_account) return Err(ErrorKind::kExists, addr + " is an account's address");
      if (!target_live) return Err(ErrorKind::kNotFound, "no such account: " + target);
      auto ins = t.db.Cached(
          "INSERT INTO aliases(address, domain_id, account_id, created_at) SELECT ?, ?, id, ? "
          "FROM accounts WHERE address = ? AND removed_at IS NULL");
      if (!ins) return ins.error();
      auto st = (*ins)->Bind(1, addr).Bind(2, domain_id).Bind(3, Now()).Bind(4, target).Run();
      if (!st && st.error().kind == ErrorKind::kExists) {
        auto taken = RefuseAliasAddress(t, addr);  // names the account it is an alias of
        return taken ? Status(Err(ErrorKind::kExists, "alias already exists: " + addr)) : taken;
      }
      return st;
    });
  }

  Status RemoveAlias(std::string_view alias) override {
    std::string addr = AsciiLower(alias);
    return WriteSync([addr](Txn& t) -> Status {
      auto s = t.db.Cached("DELETE FROM aliases WHERE address = ?");
      if (!s) return s.error();
      if (auto st = (*s)->Bind(1, addr).Run(); !st) return st;
      if (t.db.Changes() == 0) return Err(ErrorKind::kNotFound, "no such alias: " + addr);
      return Ok();
    });
  }

  Result<std::vector<AliasInfo>> ListAliases(std::string_view account) override {
    std::string target = AsciiLower(account);
    return WithReader([&target](Db& db) -> Result<std::vector<AliasInfo>> {
      if (!target.empty()) {
        auto k = db.Cached("SELECT 1 FROM accounts WHERE address = ?");
        if (!k) return k.error();
        auto row = (*k)->Bind(1, target).Step();
        if (!row) return row.error();
        if (!*row) return Err(ErrorKind::kNotFound, "no such account: " + target);
      }
      auto s = db.Cached(
          "SELECT l.address, a.address, a.removed_at IS NOT NULL FROM aliases l JOIN accounts a "
          "ON a.id = l.account_id WHERE ?1 = '' OR a.address = ?1 ORDER BY l.address");
      if (!s) return s.error();
      (*s)->Bind(1, target);
      std::vector<AliasInfo> out;
      while (true) {
        auto row = (*s)->Step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back(AliasInfo{(*s)->Text(0), (*s)->Text(1), (*s)->Int(2) != 0});
      }
      return out;
    });
  }

  Status SetQuota(std::string_view address, std::optional<uint64_t> limit_bytes) override {
    std::string addr = AsciiLower(address);
    return WriteSync([addr, limit_bytes](Txn& t) -> Status {
      auto s = t.db.Cached(
          "UPDATE accounts SET quota_bytes = ? WHERE address = ? AND removed_at IS NULL");
      if (!s) return s.error();
      if (limit_bytes) {
        (*s)->Bind(1, static_cast<int64_t>(*limit_bytes));
      } else {
        (*s)->BindNull(1);
      }
      if (auto st = (*s)->Bind(2, addr).Run(); !st) return st;
      if (t.db.Changes() == 0) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      return Ok();
    });
  }

  // ---- JMAP (src/jmap) ----

  Result<std::vector<EmailRow>> ListEmailRows(int64_t account_id, int64_t mailbox_id,
                                              uint64_t since_modseq) override {
    return WithReader([=](Db& db) -> Result<std::vector<EmailRow>> {
      auto s = db.Cached(
          "SELECT m.id, m.mailbox_id, m.uid, m.size, m.internal_date, m.flags, m.keywords, "
          "m.modseq, b.sha256, m.expunged_at IS NOT NULL FROM messages m "
          "JOIN mailboxes x ON x.id = m.mailbox_id JOIN blobs b ON b.id = m.blob_id "
          "WHERE x.account_id = ?1 AND (?2 = 0 OR m.mailbox_id = ?2) AND "
          "((?3 = 0 AND m.expunged_at IS NULL AND x.deleted_at IS NULL) OR "
          "(?3 > 0 AND m.modseq > ?3)) ORDER BY m.id");
      if (!s) return s.error();
      (*s)->Bind(1, account_id).Bind(2, mailbox_id).Bind(3, static_cast<int64_t>(since_modseq));
      std::vector<EmailRow> out;
      auto st = (*s)->ForEachRow([&out](Stmt& r) {
        EmailRow e = EmailRowOf(r);
        e.expunged = r.Int(9) != 0;
        out.push_back(std::move(e));
      });
      if (!st) return st.error();
      return out;
    });
  }

  // The columns of an EmailRow, in the order JMAP's reads select them.
  static EmailRow EmailRowOf(Stmt& r) {
    EmailRow e;
    e.message_id = r.Int(0);
    e.mailbox_id = r.Int(1);
    e.uid = static_cast<uint32_t>(r.Int(2));
    e.size = static_cast<uint64_t>(r.Int(3));
    e.internal_date = r.Int(4);
    e.flags = static_cast<uint32_t>(r.Int(5));
    e.keywords = r.Text(6);
    e.modseq = static_cast<uint64_t>(r.Int(7));
    e.sha256 = r.Blob(8);
    return e;
  }

  Result<EmailPage> QueryMailboxEmails(int64_t account_id, int64_t mailbox_id, bool ascending,
                                       uint64_t position, uint64_t limit, bool count) override {
    return WithReader([=](Db& db) -> Result<EmailPage> {
      EmailPage page;
      // The mailbox must be a live one of the account.
      auto own = db.Cached(
          "SELECT n_messages, n_emails FROM mailboxes WHERE id = ?1 AND account_id = ?2 AND "
          "deleted_at IS NULL");
      if (!own) return own.error();
      (*own)->Bind(1, mailbox_id).Bind(2, account_id);
      auto found = (*own)->Step();
      if (!found) return found.error();
      if (!*found) return page;
      // The mailbox's counters (schema.cc): the total, and whether any body
      // is there twice.
      const int64_t rows = (*own)->Int(0), emails = (*own)->Int(1);
      (*own)->Reset();
      if (count) page.total = static_cast<uint64_t>(emails);
      auto clamp = [](uint64_t v) {
        return static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX));
      };
      if (rows == emails) {
        // No body twice (the usual case): the page is `position` entries
        // into the covering index, then `limit` rows read.
        static constexpr const char* kPageDesc =
            "SELECT m.id, m.mailbox_id, m.uid, m.size, m.internal_date, m.flags, m.keywords, "
            "m.modseq, b.sha256 FROM (SELECT id, internal_date FROM messages INDEXED BY "
            "messages_jmap_date WHERE mailbox_id = ?1 AND expunged_at IS NULL "
            "ORDER BY internal_date DESC, id DESC LIMIT ?2 OFFSET ?3) p "
            "CROSS JOIN messages m ON m.id = p.id CROSS JOIN blobs b ON b.id = m.blob_id "
            "ORDER BY p.internal_date DESC, p.id DESC";
        static constexpr const char* kPageAsc =
            "SELECT m.id, m.mailbox_id, m.uid, m.size, m.internal_date, m.flags, m.keywords, "
            "m.modseq, b.sha256 FROM (SELECT id, internal_date FROM messages INDEXED BY "
            "messages_jmap_date WHERE mailbox_id = ?1 AND expunged_at IS NULL "
            "ORDER BY internal_date ASC, id ASC LIMIT ?2 OFFSET ?3) p "
            "CROSS JOIN messages m ON m.id = p.id CROSS JOIN blobs b ON b.id = m.blob_id "
            "ORDER BY p.internal_date ASC, p.id ASC";
        auto s = db.Cached(ascending ? kPageAsc : kPageDesc);
        if (!s) return s.error();
        (*s)->Bind(1, mailbox_id).Bind(2, clamp(limit)).Bind(3, clamp(position));
        auto st = (*s)->ForEachRow([&page](Stmt& r) { page.rows.push_back(EmailRowOf(r)); });
        if (!st) return st.error();
        return page;
      }
      // A body's later rows in this order are skipped (one Email per body):
      // the NOT EXISTS probes messages_jmap_blob, only for the rows read.
      static constexpr const char* kDesc =
          "SELECT m.id, m.mailbox_id, m.uid, m.size, m.internal_date, m.flags, m.keywords, "
          "m.modseq, b.sha256 FROM messages m INDEXED BY messages_jmap_date "
          "JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ?1 AND m.expunged_at IS NULL "
          "AND NOT EXISTS (SELECT 1 FROM messages d INDEXED BY messages_jmap_blob "
          "WHERE d.mailbox_id = ?1 AND d.blob_id = m.blob_id AND d.expunged_at IS NULL AND "
          "(d.internal_date > m.internal_date OR "
          "(d.internal_date = m.internal_date AND d.id > m.id))) "
          "ORDER BY m.internal_date DESC, m.id DESC LIMIT ?2 OFFSET ?3";
      static constexpr const char* kAsc =
          "SELECT m.id, m.mailbox_id, m.uid, m.size, m.internal_date, m.flags, m.keywords, "
          "m.modseq, b.sha256 FROM messages m INDEXED BY messages_jmap_date "
          "JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ?1 AND m.expunged_at IS NULL "
          "AND NOT EXISTS (SELECT 1 FROM messages d INDEXED BY messages_jmap_blob "
          "WHERE d.mailbox_id = ?1 AND d.blob_id = m.blob_id AND d.expunged_at IS NULL AND "
          "(d.internal_date < m.internal_date OR "
          "(d.internal_date = m.internal_date AND d.id < m.id))) "
          "ORDER BY m.internal_date ASC, m.id ASC LIMIT ?2 OFFSET ?3";
      auto s = db.Cached(ascending ? kAsc : kDesc);
      if (!s) return s.error();
      (*s)->Bind(1, mailbox_id).Bind(2, clamp(limit)).Bind(3, clamp(position));
      auto st = (*s)->ForEachRow([&page](Stmt& r) { page.rows.push_back(EmailRowOf(r)); });
      if (!st) return st.error();
      return page;
    });
  }

  Result<std::vector<EmailRow>> FindEmailRows(
      int64_t account_id, const std::vector<std::string>& sha_prefixes) override {
    return WithReader([&](Db& db) -> Result<std::vector<EmailRow>> {
      // CROSS JOIN fixes the order (SQLite has no statistics here): the
      // body-hash range first (its unique index), then that body's messages
      // (messages_blob), never the account's messages first.
      auto s = db.Cached(
          "SELECT m.id, m.mailbox_id, m.uid, m.size, m.internal_date, m.flags, m.keywords, "
          "m.modseq, b.sha256 FROM blobs b CROSS JOIN messages m ON m.blob_id = b.id "
          "CROSS JOIN mailboxes x ON x.id = m.mailbox_id WHERE b.sha256 >= ?1 AND b.sha256 <= ?2 "
          "AND x.account_id = ?3 AND m.expunged_at IS NULL AND x.deleted_at IS NULL");
      if (!s) return s.error();
      std::vector<EmailRow> out;
      for (const std::string& prefix : sha_prefixes) {
        if (prefix.empty() || prefix.size() > 32) continue;
        std::string high = prefix + std::string(32 - prefix.size(), '\xff');
        (*s)->Reset();
        (*s)->BindBlob(1, prefix).BindBlob(2, high).Bind(3, account_id);
        auto st = (*s)->ForEachRow([&out](Stmt& r) { out.push_back(EmailRowOf(r)); });
        if (!st) return st.error();
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
    return WithReader([account_id, &k](Db& db) -> Result<std::string> {
      auto s = db.Cached("SELECT body FROM jmap_documents WHERE account_id = ?1 AND kind = ?2");
      if (!s) return s.error();
      (*s)->Bind(1, account_id).Bind(2, k);
      auto row = (*s)->Step();
      if (!row) return row.error();
      if (!*row) return Err(ErrorKind::kNotFound, "no " + k + " record");
      return (*s)->Text(0);
    });
  }

  Status PutJmapDocument(int64_t account_id, std::string_view kind,
                         std::string_view body) override {
    std::string k(kind), b(body);
    return WriteSync([account_id, k, b](Txn& t) -> Status {
      auto s = t.db.Cached(
          "INSERT INTO jmap_documents(account_id, kind, body, updated_at) VALUES(?1, ?2, ?3, ?4) "
          "ON CONFLICT(account_id, kind) DO UPDATE SET body = excluded.body, "
          "updated_at = excluded.updated_at");
      if (!s) return s.error();
      return (*s)->Bind(1, account_id).Bind(2, k).Bind(3, b).Bind(4, Now()).Run();
    });
  }

  Result<std::vector<MailboxInfo>> ListMailboxHeads(int64_t account_id) override {
    return WithReader([=](Db& db) -> Result<std::vector<MailboxInfo>> {
      auto s = db.Cached(
          "SELECT id, name, special_use, subscribed, uidvalidity, uidnext, highest_modseq "
          "FROM mailboxes WHERE account_id = ?1 AND deleted_at IS NULL ORDER BY name");
      if (!s) return s.error();
      (*s)->Bind(1, account_id);
      std::vector<MailboxInfo> out;
      auto st = (*s)->ForEachRow([&out](Stmt& r) {
        MailboxInfo m;
        m.id = r.Int(0);
        m.name = r.Text(1);
        m.special_use = r.Text(2);
        m.subscribed = r.Int(3) != 0;
        m.uidvalidity = static_cast<uint32_t>(r.Int(4));
        m.uidnext = static_cast<uint32_t>(r.Int(5));
        m.highest_modseq = static_cast<uint64_t>(r.Int(6));
        out.push_back(std::move(m));
      });
      if (!st) return st.error();
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
      auto del = t.db.Cached(
          "DELETE FROM access_tokens WHERE account_id = ? AND expires_at != 0 AND expires_at <= ?");
      if (!del) return del.error();
      if (auto d = (*del)->Bind(1, account_id).Bind(2, now).Run(); !d) return d;
      auto acct = t.db.Cached("SELECT address FROM accounts WHERE id = ? AND removed_at IS NULL");
      if (!acct) return acct.error();
      auto row = (*acct)->Bind(1, account_id).Step();
      if (!row) return row.error();
      if (!*row) {
        (*acct)->Reset();
        return Err(ErrorKind::kNotFound, "no such account");
      }
      std::string address = (*acct)->Text(0);
      (*acct)->Reset();
      auto count = t.db.Cached("SELECT count(*) FROM access_tokens WHERE account_id = ?");
      if (!count) return count.error();
      auto crow = (*count)->Bind(1, account_id).Step();
      if (!crow) return crow.error();
      int64_t n = (*count)->Int(0);
      (*count)->Reset();
      if (static_cast<size_t>(n) >= max_per_account)
        return Err(ErrorKind::kTooLarge, "too many tokens for this account");
      auto ins = t.db.Cached(
          "INSERT INTO access_tokens(hash, account_id, address, kind, label, created_at, "
          "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
      if (!ins) return ins.error();
      auto r = (*ins)
                   ->Bind(1, h)
                   .Bind(2, account_id)
                   .Bind(3, address)
                   .Bind(4, k)
                   .Bind(5, l)
                   .Bind(6, now)
                   .Bind(7, expires_at)
                   .Run();
      if (!r) return r;
      *id = t.db.LastInsertId();
      return Ok();
    });
    if (!st) return st.error();
    return *id;
  }

  Result<AccessToken> FindToken(std::string_view hash, int64_t now) override {
    std::string h(hash);
    return WithReader([&h, now](Db& db) -> Result<AccessToken> {
      auto s = db.Cached(
          "SELECT t.id, t.account_id, t.address, t.kind, t.label, t.created_at, t.expires_at, "
          "t.last_used_at FROM access_tokens t JOIN accounts a ON a.id = t.account_id AND "
          "a.address = t.address "
          "WHERE t.hash = ? AND a.removed_at IS NULL AND (t.expires_at = 0 OR t.expires_at > ?)");
      if (!s) return s.error();
      auto row = (*s)->Bind(1, h).Bind(2, now).Step();
      if (!row) return row.error();
      if (!*row) return Err(ErrorKind::kNotFound, "no such token");
      AccessToken t{(*s)->Int(0),  (*s)->Int(1), (*s)->Text(2), (*s)->Text(3),
                    (*s)->Text(4), (*s)->Int(5), (*s)->Int(6),  (*s)->Int(7)};
      (*s)->Reset();
      return t;
    });
  }

  Result<std::vector<AccessToken>> ListTokens(int64_t account_id, int64_t now) override {
    return WithReader([account_id, now](Db& db) -> Result<std::vector<AccessToken>> {
      auto s = db.Cached(
          "SELECT id, account_id, address, kind, label, created_at, expires_at, last_used_at FROM "
          "access_tokens "
          "WHERE account_id = ? AND (expires_at = 0 OR expires_at > ?) ORDER BY id DESC");
      if (!s) return s.error();
      (*s)->Bind(1, account_id).Bind(2, now);
      std::vector<AccessToken> out;
      auto st = (*s)->ForEachRow([&out](Stmt& r) {
        out.push_back(AccessToken{r.Int(0), r.Int(1), r.Text(2), r.Text(3), r.Text(4), r.Int(5),
                                  r.Int(6), r.Int(7)});
      });
      if (!st) return st.error();
      return out;
    });
  }

  Status RevokeToken(int64_t account_id, int64_t token_id) override {
    return WriteSync([account_id, token_id](Txn& t) -> Status {
      auto s = t.db.Cached("DELETE FROM access_tokens WHERE id = ? AND account_id = ?");
      if (!s) return s.error();
      if (auto st = (*s)->Bind(1, token_id).Bind(2, account_id).Run(); !st) return st;
      if (t.db.Changes() == 0) return Err(ErrorKind::kNotFound, "no such token");
      return Ok();
    });
  }

  Status TouchToken(int64_t token_id, int64_t now) override {
    return WriteSync([token_id, now](Txn& t) -> Status {
      auto s = t.db.Cached("UPDATE access_tokens SET last_used_at = ? WHERE id = ?");
      if (!s) return s.error();
      return (*s)->Bind(1, now).Bind(2, token_id).Run();
    });
  }

  // ---- The admin role (issue 13) ----

  Status SetAdmin(std::string_view address, bool admin) override {
    std::string addr = AsciiLower(address);
    return WriteSync([addr, admin](Txn& t) -> Status {
      auto s =
          t.db.Cached("UPDATE accounts SET is_admin = ? WHERE address = ? AND removed_at IS NULL");
      if (!s) return s.error();
      if (auto st = (*s)->Bind(1, int64_t{admin ? 1 : 0}).Bind(2, addr).Run(); !st) return st;
      if (t.db.Changes() == 0) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      return Ok();
    });
  }

  Result<bool> IsAdmin(int64_t account_id) override {
    return WithReader([account_id](Db& db) -> Result<bool> {
      auto s = db.Cached("SELECT is_admin FROM accounts WHERE id = ? AND removed_at IS NULL");
      if (!s) return s.error();
      auto row = (*s)->Bind(1, account_id).Step();
      if (!row) return row.error();
      bool admin = *row && (*s)->Int(0) != 0;
      (*s)->Reset();
      return admin;
    });
  }

  Result<std::string> GetAccountLanguage(int64_t account_id) override {
    return WithReader([account_id](Db& db) -> Result<std::string> {
      auto s = db.Cached("SELECT language FROM accounts WHERE id = ? AND removed_at IS NULL");
      if (!s) return s.error();
      auto row = (*s)->Bind(1, account_id).Step();
      if (!row) return row.error();
      std::string lang = *row ? (*s)->Text(0) : std::string();
      (*s)->Reset();
      return lang;
    });
  }

  Status SetAccountLanguage(int64_t account_id, std::string_view language) override {
    std::string lang(language);
    return WriteSync([account_id, lang](Txn& t) -> Status {
      auto s = t.db.Cached("UPDATE accounts SET language = ? WHERE id = ? AND removed_at IS NULL");
      if (!s) return s.error();
      if (auto st = (*s)->Bind(1, lang).Bind(2, account_id).Run(); !st) return st;
      if (t.db.Changes() == 0) return Err(ErrorKind::kNotFound, "no such account");
      return Ok();
    });
  }

  Result<QuotaUsage> GetQuota(int64_t account_id) override {
    return WithReader([&](Db& db) { return sqlite::QueryQuota(db, account_id); });
  }

  // ---- Mail ----

  // StoreOptions::sort_keys: the record of a body, off the writer thread.
  template <typename Request>
  void AddSortKeys(Request& r) const {
    if (options_.sort_keys && r.sort_keys.empty())
      r.sort_keys = options_.sort_keys(r.content, r.mime);
    if (options_.thread_id && r.thread_id.empty()) r.thread_id = options_.thread_id(r.content);
  }

  // The writer's CPU work done by the caller (issue 17): the SHA-256 and the
  // zstd-compressed segment record of the shared content, when a local copy
  // will store it. The writer thread is one for the whole store, so every
  // microsecond it spends per message caps the delivery rate.
  void PrepareDelivery(DeliveryRequest& request) const override {
    AddSortKeys(request);
    if (request.encoded || request.content.empty()) return;
    if (request.account_ids.empty() && request.filings.empty()) return;
    request.encoded = std::make_shared<const EncodedBlob>(blobs_.Encode(request.content));
  }

  void Deliver(DeliveryRequest request, Done<DeliveryReceipt> done) override {
    AddSortKeys(request);
    // A copy with its own content (Sieve editheader) gets its own keys too:
    // a body stored without them counts as a Thread of its own until a
    // restart's backfill (MailboxInfo::threads).
    for (Filing& f : request.filings) {
      if (!f.content.empty()) AddSortKeys(f);
    }
    auto req = std::make_shared<DeliveryRequest>(std::move(request));
    auto receipt = std::make_shared<DeliveryReceipt>();
    Submit(WriteOp{[req, receipt](Txn& t) { return sqlite::ApplyDelivery(t, *req, *receipt); },
                   [receipt, done = std::move(done)](const Status& st) {
                     if (!st) {
                       done(st.error());
                     } else {
                       done(std::move(*receipt));
                     }
                   }});
  }

  Result<MailboxSnapshot> ListMessages(int64_t account_id, std::string_view mailbox) override {
    std::string name(mailbox);
    return WithReader([&](Db& db) { return sqlite::QueryMessages(db, account_id, name); });
  }

  Result<std::string> ReadMessage(int64_t account_id, int64_t message_id) override {
    auto ref = WithReader([&](Db& db) -> Result<BlobRef> {
      auto s = db.Cached(
          "SELECT b.sha256, b.segment, b.offset, b.stored_length, b.size, b.codec "
          "FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id JOIN blobs b ON b.id = "
          "m.blob_id WHERE m.id = ? AND x.account_id = ?");
      if (!s) return s.error();
      auto row = (*s)->Bind(1, message_id).Bind(2, account_id).Step();
      if (!row) return row.error();
      if (!*row) return Err(ErrorKind::kNotFound, "no such message");
      return RefFromRow(**s, 0);
    });
    if (!ref) return ref.error();
    return blobs_.Read(*ref);
  }

  void SetFlags(int64_t account_id, std::vector<int64_t> message_ids, FlagChange change,
                Done<FlagResult> done) override {
    auto ids = std::make_shared<std::vector<int64_t>>(std::move(message_ids));
    auto result = std::make_shared<FlagResult>();
    Submit(WriteOp{[account_id, ids, change = std::move(change), result](Txn& t) {
                     return sqlite::ApplySetFlags(t, account_id, *ids, change, *result);
                   },
                   Complete(result, std::move(done))});
  }

  void Expunge(int64_t account_id, std::vector<int64_t> message_ids, Done<void> done) override {
    auto ids = std::make_shared<std::vector<int64_t>>(std::move(message_ids));
    Submit(WriteOp{[account_id, ids](Txn& t) { return sqlite::ApplyExpunge(t, account_id, *ids); },
                   std::move(done)});
  }

  // ---- Mailboxes (IMAP) ----

  Result<std::vector<MailboxInfo>> ListMailboxes(int64_t account_id) override {
    return WithReader([&](Db& db) { return sqlite::QueryMailboxes(db, account_id); });
  }

  void CreateMailbox(int64_t account_id, std::string name, std::string special_use,
                     Done<void> done) override {
    Submit(WriteOp{
        [=](Txn& t) { return sqlite::ApplyCreateMailbox(t, account_id, name, special_use); },
        std::move(done)});
  }

  void DeleteMailbox(int64_t account_id, std::string name, Done<void> done) override {
    Submit(WriteOp{[=](Txn& t) { return sqlite::ApplyDeleteMailbox(t, account_id, name); },
                   std::move(done)});
  }

  void RenameMailbox(int64_t account_id, std::string from, std::string to,
                     Done<void> done) override {
    Submit(WriteOp{[=](Txn& t) { return sqlite::ApplyRenameMailbox(t, account_id, from, to); },
                   std::move(done)});
  }

  void SetSubscribed(int64_t account_id, std::string name, bool subscribed,
                     Done<void> done) override {
    Submit(
        WriteOp{[=](Txn& t) { return sqlite::ApplySetSubscribed(t, account_id, name, subscribed); },
                std::move(done)});
  }

  void Append(AppendRequest request, Done<AppendResult> done) override {
    AddSortKeys(request);
    auto req = std::make_shared<AppendRequest>(std::move(request));
    auto result = std::make_shared<AppendResult>();
    Submit(WriteOp{[req, result](Txn& t) { return sqlite::ApplyAppend(t, *req, *result); },
                   Complete(result, std::move(done))});
  }

  void AppendMany(std::vector<AppendRequest> requests,
                  Done<std::vector<AppendResult>> done) override {
    for (auto& r : requests) AddSortKeys(r);
    auto reqs = std::make_shared<std::vector<AppendRequest>>(std::move(requests));
    auto results = std::make_shared<std::vector<AppendResult>>();
    Submit(WriteOp{[reqs, results](Txn& t) -> Status {
                     results->assign(reqs->size(), AppendResult{});
                     for (size_t i = 0; i < reqs->size(); ++i) {
                       if (auto st = sqlite::ApplyAppend(t, (*reqs)[i], (*results)[i]); !st)
                         return st;
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
    Submit(WriteOp{
        [=](Txn& t) { return sqlite::ApplyCopy(t, account_id, *ids, to_mailbox, move, *result); },
        Complete(result, std::move(notify))});
  }

  Result<MailboxChanges> ListChanges(int64_t mailbox_id, uint64_t since) override {
    return WithReader([&](Db& db) { return sqlite::QueryChanges(db, mailbox_id, since); });
  }

  Result<MailboxChanges> ListChangesPage(int64_t mailbox_id, uint64_t since, size_t max_rows,
                                         size_t max_bytes) override {
    return WithReader([&](Db& db) {
      return sqlite::QueryChangesPage(db, mailbox_id, since, max_rows, max_bytes);
    });
  }

  Result<std::vector<MessageMeta>> ListMessagesByUid(
      int64_t mailbox_id, const std::vector<std::pair<uint32_t, uint32_t>>& ranges) override {
    return WithReader([&](Db& db) -> Result<std::vector<MessageMeta>> {
      std::vector<MessageMeta> out;
      for (const auto& [first, last] : ranges) {
        if (auto st = sqlite::QueryMessagesByUid(db, mailbox_id, first, last, out); !st) {
          return st.error();
        }
      }
      return out;
    });
  }

  Result<std::vector<uint32_t>> ListVanished(int64_t mailbox_id, uint64_t since) override {
    return WithReader([&](Db& db) { return sqlite::QueryVanished(db, mailbox_id, since); });
  }

  Result<std::vector<std::string>> ListOrphanSubscriptions(int64_t account_id) override {
    return WithReader([&](Db& db) { return sqlite::QueryOrphanSubscriptions(db, account_id); });
  }

  void ClaimRecent(int64_t mailbox_id, uint32_t up_to_uid, Done<uint32_t> done) override {
    auto previous = std::make_shared<uint32_t>(0);
    Submit(WriteOp{
        [=](Txn& t) { return sqlite::ApplyClaimRecent(t, mailbox_id, up_to_uid, *previous); },
        Complete(previous, std::move(done))});
  }

  // At most this many bodies found by the index (matches and candidates
  // each) are looked up one by one in the mailbox instead of listing all of
  // its messages (the floor of a search on a large mailbox).
  static constexpr size_t kFewTextHits = 1000;

  Result<TextMatches> SearchText(int64_t mailbox_id, std::string_view needle,
                                 bool with_header) override {
    // rows: (uid, blob) in uid order; held: whether the index holds each.
    std::vector<std::pair<uint32_t, int64_t>> rows;
    std::vector<bool> held;
    search::TextHits found;
    bool listed = true;
    if (index_) {
      search::TextIndex::Coverage covered = index_->Covered();  // before the lookup
      auto few = index_->LookupFew(needle, with_header, kFewTextHits);
      if (!few) return few.error();
      if (*few) {
        found = std::move(**few);
        std::vector<int64_t> ids(found.matches);
        ids.insert(ids.end(), found.candidates.begin(), found.candidates.end());
        ids.insert(ids.end(), covered.holes.begin(), covered.holes.end());
        auto some = WithReader([&](Db& db) {
          return sqlite::QueryLiveBlobsAboveOrIn(db, mailbox_id, covered.watermark, ids);
        });
        if (!some) return some.error();
        rows = std::move(*some);
        for (const auto& row : rows) {
          int64_t blob = row.second;
          held.push_back(blob <= covered.watermark &&
                         !std::binary_search(covered.holes.begin(), covered.holes.end(), blob));
        }
        listed = false;
      }
    }
    if (listed) {
      auto all = WithReader([&](Db& db) { return sqlite::QueryLiveBlobs(db, mailbox_id); });
      if (!all) return all.error();
      rows = std::move(*all);
      held = index_ ? index_->ContainsEach(rows) : std::vector<bool>(rows.size());
    }
    TextMatches out;
    std::vector<int64_t> wanted;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (held[i]) {
        wanted.push_back(rows[i].second);
      } else {
        out.unindexed.push_back(rows[i].first);  // the caller scans it
      }
    }
    if (wanted.empty()) return out;
    if (listed) {
      auto lookup = index_->Lookup(needle, with_header, wanted);
      if (!lookup) return lookup.error();
      found = std::move(*lookup);
    } else {  // the candidates of this mailbox only
      std::sort(wanted.begin(), wanted.end());
      std::erase_if(found.candidates, [&](int64_t id) {
        return !std::binary_search(wanted.begin(), wanted.end(), id);
      });
    }
    auto checked = CheckCandidates(found.candidates, needle, with_header);
    if (!checked) return checked.error();
    // All ascending: tested by binary search.
    std::vector<int64_t> hit(checked->begin(), checked->end());
    std::sort(hit.begin(), hit.end());
    auto in = [](const std::vector<int64_t>& v, int64_t id) {
      return std::binary_search(v.begin(), v.end(), id);
    };
    for (size_t i = 0; i < rows.size(); ++i) {
      if (!held[i]) continue;
      auto [uid, blob] = rows[i];
      if (in(found.matches, blob) || in(hit, blob)) {
        out.uids.push_back(uid);
      } else if (!options_.index_text && in(found.candidates, blob)) {
        out.unindexed.push_back(uid);  // no extractor to check it with: the caller scans it
      }
    }
    std::sort(out.unindexed.begin(), out.unindexed.end());
    return out;
  }

  // The index's candidates that really hold `needle` (the rule of
  // search::MatchesFolded), checked against the stored bodies' text: the
  // index keeps no copy of it (search/text_index.h).
  Result<std::unordered_set<int64_t>> CheckCandidates(const std::vector<int64_t>& ids,
                                                      std::string_view needle, bool with_header) {
    std::unordered_set<int64_t> hit;
    const TextExtractor& extract = options_.index_text;
    if (ids.empty() || !extract) return hit;
    auto blobs = WithReader([&](Db& db) { return sqlite::QueryBlobsById(db, ids); });
    if (!blobs) return blobs.error();
    std::string folded = search::SquashSpace(search::Fold(needle));
    for (const auto& b : *blobs) {
      auto content = blobs_.Read(b.ref);
      if (!content) {
        // Storage missing (kTemporary): the search fails, the caller scans
        // (and fails the same way). kCorrupt: `hato verify` names the body;
        // nothing readable in it matches.
        if (content.error().kind != ErrorKind::kCorrupt) return content.error();
        spdlog::warn("text search: body {} unreadable: {}", b.id, content.error().message);
        continue;
      }
      IndexText text = extract(*content, b.mime);
      if (search::SquashSpace(search::Fold(text.body)).find(folded) != std::string::npos ||
          (with_header &&
           search::SquashSpace(search::Fold(text.header)).find(folded) != std::string::npos)) {
        hit.insert(b.id);
      }
    }
    return hit;
  }

  Result<std::string> ReadMimeTree(int64_t account_id, int64_t message_id) override {
    return WithReader([&](Db& db) -> Result<std::string> {
      auto s = db.Cached(
          "SELECT b.mime FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id JOIN blobs b "
          "ON b.id = m.blob_id WHERE m.id = ? AND x.account_id = ?");
      if (!s) return s.error();
      auto row = (*s)->Bind(1, message_id).Bind(2, account_id).Step();
      if (!row) return row.error();
      if (!*row) return Err(ErrorKind::kNotFound, "no such message");
      return (*s)->Blob(0);
    });
  }

  Result<std::vector<std::pair<int64_t, std::string>>> ReadSortKeys(int64_t account_id,
                                                                    int64_t mailbox_id) override {
    return WithReader([&](Db& db) -> Result<std::vector<std::pair<int64_t, std::string>>> {
      auto s = db.Cached(
          "SELECT m.id, b.sort_keys FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id "
          "JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ? AND x.account_id = ? AND "
          "m.expunged_at IS NULL AND b.sort_keys IS NOT NULL");
      if (!s) return s.error();
      (*s)->Bind(1, mailbox_id).Bind(2, account_id);
      std::vector<std::pair<int64_t, std::string>> out;
      auto st = (*s)->ForEachRow([&out](Stmt& r) { out.emplace_back(r.Int(0), r.Blob(1)); });
      (*s)->Reset();
      if (!st) return st.error();
      return out;
    });
  }

  // Also fills the threadId (StoreOptions::thread_id) of bodies stored
  // without one: the blobs_thread trigger moves their messages' Thread counts.
  Result<size_t> BackfillSortKeys(size_t max_bodies) override {
    if (!options_.sort_keys || max_bodies == 0) return size_t{0};
    struct Body {
      int64_t id;
      BlobRef ref;
      std::string mime;
      bool has_keys;
    };
    const bool threads = static_cast<bool>(options_.thread_id);
    auto bodies = WithReader([&](Db& db) -> Result<std::vector<Body>> {
      auto s = db.Cached(
          "SELECT id, sha256, segment, offset, stored_length, size, codec, mime, "
          "sort_keys IS NOT NULL FROM blobs WHERE (sort_keys IS NULL OR (?2 AND thread_id IS "
          "NULL)) AND refs > 0 LIMIT ?1");
      if (!s) return s.error();
      (*s)->Bind(1, static_cast<int64_t>(max_bodies)).Bind(2, int64_t{threads});
      std::vector<Body> out;
      auto st = (*s)->ForEachRow([&out](Stmt& r) {
        out.push_back(Body{r.Int(0), RefFromRow(r, 1), r.IsNull(7) ? std::string() : r.Blob(7),
                           r.Int(8) != 0});
      });
      (*s)->Reset();
      if (!st) return st.error();
      return out;
    });
    if (!bodies) return bodies.error();
    if (bodies->empty()) return size_t{0};
    struct Filled {
      int64_t id;
      std::string record;  // "" (an empty BLOB, not NULL) where none can be made
      std::string thread;  // "": left NULL (no StoreOptions::thread_id)
    };
    auto filled = std::make_shared<std::vector<Filled>>();
    for (const auto& b : *bodies) {
      Filled f{b.id, {}, {}};
      if ((!b.has_keys && !b.mime.empty()) || threads) {
        auto content = blobs_.Read(b.ref);
        if (!content) return content.error();
        if (!b.has_keys && !b.mime.empty()) f.record = options_.sort_keys(*content, b.mime);
        if (threads) f.thread = options_.thread_id(*content);
      }
      filled->push_back(std::move(f));
    }
    auto st = WriteSync([filled](Txn& t) -> Status {
      auto u = t.db.Cached(
          "UPDATE blobs SET sort_keys = coalesce(sort_keys, ?1), thread_id = coalesce(thread_id, "
          "?2) WHERE id = ?3");
      if (!u) return u.error();
      for (const auto& f : *filled) {
        (*u)->Reset();
        (*u)->BindBlob(1, f.record);
        if (f.thread.empty()) {
          (*u)->BindNull(2);
        } else {
          (*u)->Bind(2, f.thread);
        }
        if (auto r = (*u)->Bind(3, f.id).Run(); !r) return r;
      }
      return Ok();
    });
    if (!st) return st.error();
    return filled->size();
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
    if (now - last_commit_end_ms_.load() < kRecentCommitMs)
      h.last_commit_ms = last_commit_ms_.load();
    return h;
  }

  // WriteProbe (store/probe.h): one row of health_probe, group-committed.
  void ProbeWrite(Done<void> done) override {
    int64_t at = Now();
    Submit(WriteOp{[at](Txn& t) -> Status {
                     auto s = t.db.Cached(
                         "INSERT INTO health_probe(id, probed_at) VALUES(1, ?) "
                         "ON CONFLICT(id) DO UPDATE SET probed_at = excluded.probed_at");
                     if (!s) return s.error();
                     return (*s)->Bind(1, at).Run();
                   },
                   [done = std::move(done)](Status st) { done(std::move(st)); }});
  }

  void SetChangeListener(std::function<void(const std::vector<int64_t>&)> listener) override {
    std::lock_guard lock(mu_);
    listener_ = std::move(listener);
  }

  void SetCopyListener(CopyListener listener) override {
    std::lock_guard lock(mu_);
    copy_listener_ = std::move(listener);
  }

  // ---- Outbound queue ----

  Result<std::vector<QueuedMessage>> ListDueOutbound(int64_t now, size_t limit) override {
    return WithReader([&](Db& db) { return sqlite::QueryDueOutbound(db, now, limit); });
  }
  Result<std::vector<QueuedMessage>> ListPendingDsn(size_t limit) override {
    return WithReader([&](Db& db) { return sqlite::QueryPendingDsn(db, limit); });
  }
  Result<std::vector<QueuedMessage>> ListQueue() override {
    return WithReader([&](Db& db) { return sqlite::QueryQueue(db); });
  }
  Result<QueuedMessage> GetQueued(int64_t message_id) override {
    return WithReader([&](Db& db) { return sqlite::QueryQueued(db, message_id); });
  }
  Result<std::string> ReadQueuedContent(int64_t message_id) override {
    auto ref = WithReader([&](Db& db) { return sqlite::QueryQueuedBlob(db, message_id); });
    if (!ref) return ref.error();
    return blobs_.Read(*ref);
  }
  void RecordOutcomes(std::vector<RecipientOutcome> outcomes, Done<void> done) override {
    auto list = std::make_shared<std::vector<RecipientOutcome>>(std::move(outcomes));
    Submit(WriteOp{[list](Txn& t) { return sqlite::ApplyOutcomes(t, *list); }, std::move(done)});
  }
  Status ApplyQueueAction(int64_t message_id, QueueAction action) override {
    return WriteSync(
        [message_id, action](Txn& t) { return sqlite::ApplyQueueAction(t, message_id, action); });
  }
  Result<QueueStats> GetQueueStats() override {
    return WithReader([](Db& db) { return sqlite::QueryQueueStats(db); });
  }
  Result<uint64_t> CountSubmissions(int64_t account_id, int64_t since) override {
    return WithReader([&](Db& db) { return sqlite::QueryCountSubmissions(db, account_id, since); });
  }
  Result<std::vector<QueuedRecipient>> ListFinishedRecipients(int64_t queue_id) override {
    return WithReader([&](Db& db) { return sqlite::QueryFinishedRecipients(db, queue_id); });
  }

  // ---- Maintenance ----

  Result<uint64_t> PurgeExpired(int64_t cutoff) override {
    auto purged = std::make_shared<uint64_t>(0);
    auto gone = std::make_shared<std::vector<int64_t>>();  // destroyed bodies
    auto max_id = std::make_shared<int64_t>(0);
    auto st = WriteSync([cutoff, purged, gone, max_id](Txn& t) -> Status {
      // Messages of accounts removed before the cutoff go with their account.
      const char* mark =
          "UPDATE messages SET expunged_at = coalesce(expunged_at, 1) WHERE mailbox_id IN "
          "(SELECT x.id FROM mailboxes x JOIN accounts a ON a.id = x.account_id "
          "WHERE a.removed_at IS NOT NULL AND a.removed_at < ?)";
      const char* unref =
          "UPDATE blobs SET refs = refs - (SELECT count(*) FROM messages m WHERE m.blob_id = "
          "blobs.id AND m.expunged_at < ?) WHERE id IN (SELECT blob_id FROM messages WHERE "
          "expunged_at < ?)";
      // Counted: messages whose retention ended. Not counted: the rows an
      // undelete superseded (expunged_at = 0, ApplyUndelete), which are
      // copies of messages that are live again.
      const char* del = "DELETE FROM messages WHERE expunged_at > 0 AND expunged_at < ?";
      const char* del_superseded = "DELETE FROM messages WHERE expunged_at = 0";
      // The blobs about to go, for the text index (SEARCH BODY/TEXT).
      const char* list_gone = "SELECT id FROM blobs WHERE refs <= 0";
      const char* del_blobs = "DELETE FROM blobs WHERE refs <= 0";
      const char* del_mb =
          "DELETE FROM mailboxes WHERE account_id IN (SELECT id FROM accounts WHERE removed_at "
          "IS NOT NULL AND removed_at < ?)";
      const char* del_alias =
          "DELETE FROM aliases WHERE account_id IN (SELECT id FROM accounts WHERE removed_at IS "
          "NOT NULL AND removed_at < ?)";
      const char* del_subs =
          "DELETE FROM orphan_subscriptions WHERE account_id IN (SELECT id FROM accounts WHERE "
          "removed_at IS NOT NULL AND removed_at < ?)";
      const char* del_jmap =
          "DELETE FROM jmap_documents WHERE account_id IN (SELECT id FROM accounts WHERE "
          "removed_at IS NOT NULL AND removed_at < ?)";
      // The account's Sieve scripts, their counter and tombstones, status
      // and memories.
      const char* del_sieve =
          "DELETE FROM sieve_scripts WHERE account_id IN (SELECT id FROM accounts WHERE "
          "removed_at IS NOT NULL AND removed_at < ?)";
      const char* del_sieve_state =
          "DELETE FROM sieve_state WHERE account_id IN (SELECT id FROM accounts WHERE "
          "removed_at IS NOT NULL AND removed_at < ?)";
      const char* del_sieve_gone =
          "DELETE FROM sieve_scripts_gone WHERE account_id IN (SELECT id FROM accounts WHERE "
          "removed_at IS NOT NULL AND removed_at < ?)";
      const char* del_sieve_status =
          "DELETE FROM sieve_status WHERE account_id IN (SELECT id FROM accounts WHERE "
          "removed_at IS NOT NULL AND removed_at < ?)";
      const char* del_sieve_memos =
          "DELETE FROM sieve_memos WHERE account_id IN (SELECT id FROM accounts WHERE "
          "removed_at IS NOT NULL AND removed_at < ?)";
      // The account's \Seen in list archives (Store::SetArchiveSeen).
      const char* del_archive_seen =
          "DELETE FROM archive_seen WHERE account_id IN (SELECT id FROM accounts WHERE "
          "removed_at IS NOT NULL AND removed_at < ?)";
      const char* del_acc = "DELETE FROM accounts WHERE removed_at IS NOT NULL AND removed_at < ?";
      const char* del_deleted_mb =
          "DELETE FROM mailboxes WHERE deleted_at IS NOT NULL AND deleted_at < ? AND NOT EXISTS "
          "(SELECT 1 FROM messages m WHERE m.mailbox_id = mailboxes.id)";
      // Delivery outcomes kept for JMAP (outbound_finished) go after the
      // same retention.
      const char* del_finished = "DELETE FROM outbound_finished WHERE finished_at < ?";
      for (const char* sql :
           {mark, unref, del, del_superseded, list_gone, del_blobs, del_mb, del_alias, del_subs,
            del_jmap, del_sieve, del_sieve_state, del_sieve_gone, del_sieve_status, del_sieve_memos,
            del_archive_seen, del_acc, del_deleted_mb, del_finished}) {
        auto s = t.db.Cached(sql);
        if (!s) return s.error();
        if (sql == list_gone) {
          if (auto r = (*s)->ForEachRow([&](Stmt& row) { gone->push_back(row.Int(0)); }); !r) {
            return r;
          }
          continue;
        }
        for (int i = 1; i <= (*s)->ParamCount(); ++i) (*s)->Bind(i, cutoff);
        if (auto r = (*s)->Run(); !r) return r;
        if (sql == del) *purged = static_cast<uint64_t>(t.db.Changes());
      }
      auto m = sqlite::QueryMaxBlobId(t.db);
      if (!m) return m.error();
      *max_id = *m;
      return Ok();
    });
    if (!st) return st.error();
    if (index_ && !gone->empty()) index_->Forget(*gone, *max_id);
    return *purged;
  }

  // `hato reindex`: brings the text index up to date now (what the indexer
  // thread of a running `hato serve` does in the background).
  Result<uint64_t> IndexMissingText(const TextExtractor& extract) override {
    if (indexer_.joinable()) {
      return Err(ErrorKind::kInvalid, "the store's indexer is running; it indexes by itself");
    }
    if (!index_) {
      if (auto st = OpenTextIndex(); !st) return st.error();
    }
    uint64_t indexed = 0;
    while (true) {
      auto n = IndexFor(extract, std::chrono::seconds(10));
      if (!n) return n.error();
      if (*n == 0) break;
      indexed += *n;
    }
    if (auto st = index_->Flush(); !st) return st.error();
    return indexed;
  }

  Result<VerifyReport> Verify() override {
    auto refs = WithReader([](Db& db) -> Result<std::vector<BlobRef>> {
      auto s = db.Cached("SELECT sha256, segment, offset, stored_length, size, codec FROM blobs");
      if (!s) return s.error();
      std::vector<BlobRef> out;
      while (true) {
        auto row = (*s)->Step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back(RefFromRow(**s, 0));
      }
      return out;
    });
    if (!refs) return refs.error();
    VerifyReport report;
    for (const auto& ref : *refs) {
      ++report.blobs_checked;
      auto r = blobs_.Read(ref);
      if (!r) {
        report.problems.push_back(r.error().message + " " + UsersOf(ref.sha256));
        report.damaged.push_back(ref);
      }
    }
    auto checks = WithReader([](Db& db) -> Result<std::vector<std::string>> {
      return sqlite::CheckReferences(db, sqlite::PageCheck::kQuick);
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
      auto bad = sqlite::CounterDisagreements(t.db, std::numeric_limits<int64_t>::max());
      if (!bad) return bad.error();
      *fixed = bad->size();
      return sqlite::RecountMailboxCounters(t.db);
    });
    if (!st) return st.error();
    return *fixed;
  }

  Status SnapshotMetadata(const std::string& path) override {
    return WithReader([&path](Db& db) -> Status {
      // One read transaction: a consistent copy while the writer goes on (WAL).
      auto s = db.Prepare("VACUUM INTO ?");
      if (!s) return s.error();
      return s->Bind(1, path).Run();
    });
  }

  Result<std::string> ReadBlob(const BlobRef& ref) override { return blobs_.Read(ref); }

  void RestoreMessage(RestoreRequest request, Done<RestoreResult> done) override {
    AddSortKeys(request);
    auto req = std::make_shared<RestoreRequest>(std::move(request));
    auto result = std::make_shared<RestoreResult>();
    Submit(WriteOp{[req, result](Txn& t) { return sqlite::ApplyRestoreMessage(t, *req, *result); },
                   Complete(result, std::move(done))});
  }

  Status RepairBlob(std::string_view content) override {
    std::string copy(content);
    return WriteSync([copy](Txn& t) { return sqlite::ApplyRepairBlob(t, copy); });
  }

  Result<uint64_t> Undelete(int64_t account_id, std::string_view mailbox, int64_t since) override {
    auto n = std::make_shared<uint64_t>(0);
    std::string name(mailbox);
    auto st =
        WriteSync([=](Txn& t) { return sqlite::ApplyUndelete(t, account_id, name, since, *n); });
    if (!st) return st.error();
    return *n;
  }

  Status RestoreAccount(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WriteSync([addr](Txn& t) -> Status {
      auto live = t.db.Cached("SELECT 1 FROM accounts WHERE address = ? AND removed_at IS NULL");
      if (!live) return live.error();
      auto row = (*live)->Bind(1, addr).Step();
      if (!row) return row.error();
      if (*row) {
        return Err(ErrorKind::kExists,
                   "a live account " + addr +
                       " exists (added after the removal): the removed one cannot be restored "
                       "while it exists (see hato user list --removed)");
      }
      (*live)->Reset();
      if (auto st = RefuseAliasAddress(t, addr); !st) return st;
      auto s = t.db.Cached(
          "UPDATE accounts SET removed_at = NULL WHERE id = (SELECT id FROM accounts WHERE "
          "address = ? AND removed_at > 0 ORDER BY removed_at DESC LIMIT 1)");
      if (!s) return s.error();
      if (auto st = (*s)->Bind(1, addr).Run(); !st) return st;
      if (t.db.Changes() == 0) {
        return Err(ErrorKind::kNotFound, "no removed account " + addr + " in retention");
      }
      return Ok();
    });
  }

  Status PurgeAccount(std::string_view address) override {
    std::string addr = AsciiLower(address);
    auto st = WriteSync([addr](Txn& t) -> Status {
      if (auto st = EndSessionsIn(t, addr, /*live_only=*/false); !st) return st;
      // Mark as removed at the epoch (1): the purge below takes it at once.
      auto s = t.db.Cached("UPDATE accounts SET removed_at = 1 WHERE address = ?");
      if (!s) return s.error();
      if (auto r = (*s)->Bind(1, addr).Run(); !r) return r;
      if (t.db.Changes() == 0) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      return Ok();
    });
    if (!st) return st;
    auto n = PurgeExpired(2);
    if (!n) return n.error();
    return Ok();
  }

  Result<std::vector<RemovedAccount>> ListRemovedAccounts() override {
    return WithReader([](Db& db) -> Result<std::vector<RemovedAccount>> {
      auto s = db.Cached(
          "SELECT a.id, a.address, a.removed_at, count(m.id), coalesce(sum(m.size), 0) FROM "
          "accounts a LEFT JOIN mailboxes x ON x.account_id = a.id LEFT JOIN messages m ON "
          "m.mailbox_id = x.id AND m.expunged_at IS NULL WHERE a.removed_at IS NOT NULL GROUP BY "
          "a.id ORDER BY a.address, a.removed_at, a.id");
      if (!s) return s.error();
      std::vector<RemovedAccount> out;
      while (true) {
        auto row = (*s)->Step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back(RemovedAccount{(*s)->Int(0), (*s)->Text(1), (*s)->Int(2),
                                     static_cast<uint64_t>((*s)->Int(3)),
                                     static_cast<uint64_t>((*s)->Int(4))});
      }
      return out;
    });
  }

  Status PurgeAccountById(int64_t id) override {
    auto st = WriteSync([id](Txn& t) -> Status {
      // Mark as removed at the epoch (1): the purge below takes it at once.
      auto s = t.db.Cached("UPDATE accounts SET removed_at = 1 WHERE id = ?");
      if (!s) return s.error();
      if (auto r = (*s)->Bind(1, id).Run(); !r) return r;
      if (t.db.Changes() == 0) {
        return Err(ErrorKind::kNotFound, "no account with id " + std::to_string(id));
      }
      return Ok();
    });
    if (!st) return st;
    auto n = PurgeExpired(2);
    if (!n) return n.error();
    return Ok();
  }

  Result<SnapshotAccount> FindAccountAny(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WithReader([&addr](Db& db) -> Result<SnapshotAccount> {
      auto s = db.Cached(
          "SELECT id, address, password_hash, coalesce(removed_at, 0) FROM accounts WHERE "
          "address = ? ORDER BY removed_at IS NULL DESC, removed_at DESC LIMIT 1");
      if (!s) return s.error();
      auto row = (*s)->Bind(1, addr).Step();
      if (!row) return row.error();
      if (!*row) return Err(ErrorKind::kNotFound, "no such account: " + addr);
      return SnapshotAccount{(*s)->Int(0), (*s)->Text(1), (*s)->Text(2), (*s)->Int(3), {}};
    });
  }

 private:
  // An account's script counter, next script id and forgotten tombstones
  // (sieve_state; zeros and id 1 before its first script).
  struct SieveCounters {
    uint64_t seq = 0;
    int64_t next_id = 1;
    uint64_t forgotten = 0;
  };
  static Result<SieveCounters> ReadSieveCounters(Db& db, int64_t account_id) {
    auto s = db.Cached("SELECT seq, next_id, forgotten FROM sieve_state WHERE account_id = ?");
    if (!s) return s.error();
    auto row = (*s)->Bind(1, account_id).Step();
    if (!row) return row.error();
    SieveCounters c;
    if (*row) {
      c = {static_cast<uint64_t>((*s)->Int(0)), (*s)->Int(1), static_cast<uint64_t>((*s)->Int(2))};
    }
    (*s)->Reset();
    return c;
  }
  static Status WriteSieveCounters(Txn& t, int64_t account_id, const SieveCounters& c) {
    auto s = t.db.Cached(
        "INSERT INTO sieve_state(account_id, seq, next_id, forgotten) VALUES(?, ?, ?, ?) "
        "ON CONFLICT(account_id) DO UPDATE SET seq = excluded.seq, next_id = excluded.next_id, "
        "forgotten = excluded.forgotten");
    if (!s) return s.error();
    return (*s)
        ->Bind(1, account_id)
        .Bind(2, static_cast<int64_t>(c.seq))
        .Bind(3, c.next_id)
        .Bind(4, static_cast<int64_t>(c.forgotten))
        .Run();
  }
  static Result<std::vector<SieveScriptInfo>> ReadSieveScripts(Db& db, int64_t account_id) {
    auto s = db.Cached(
        "SELECT name, active, length(CAST(content AS BLOB)), updated_at, id, created_seq, "
        "changed_seq FROM sieve_scripts WHERE account_id = ? ORDER BY name");
    if (!s) return s.error();
    (*s)->Bind(1, account_id);
    std::vector<SieveScriptInfo> out;
    auto st = (*s)->ForEachRow([&](Stmt& r) {
      out.push_back({r.Text(0), r.Int(1) != 0, static_cast<uint64_t>(r.Int(2)), r.Int(3), r.Int(4),
                     static_cast<uint64_t>(r.Int(5)), static_cast<uint64_t>(r.Int(6))});
    });
    (*s)->Reset();
    if (!st) return st.error();
    return out;
  }

  // kExists when `address` is an alias (of a live or a removed account).
  static Status RefuseAliasAddress(Txn& t, const std::string& address) {
    auto s = t.db.Cached(
        "SELECT a.address FROM aliases l JOIN accounts a ON a.id = l.account_id WHERE l.address = "
        "?");
    if (!s) return s.error();
    auto row = (*s)->Bind(1, address).Step();
    if (!row) return row.error();
    if (!*row) return Ok();
    std::string owner = (*s)->Text(0);
    (*s)->Reset();
    return Err(ErrorKind::kExists, address + " is an alias of " + owner +
                                       "; remove it first with: hato alias remove " + address);
  }

  // "(used by alice@example.org/INBOX uid 7)": who a damaged body belongs to.
  std::string UsersOf(const std::string& sha256) {
    auto who = WithReader([&sha256](Db& db) -> Result<std::string> {
      auto s = db.Cached(
          "SELECT a.address, x.name, m.uid, count(*) OVER () FROM blobs b JOIN messages m ON "
          "m.blob_id = b.id JOIN mailboxes x ON x.id = m.mailbox_id JOIN accounts a ON a.id = "
          "x.account_id WHERE b.sha256 = ? LIMIT 1");
      if (!s) return s.error();
      auto row = (*s)->BindBlob(1, sha256).Step();
      if (!row) return row.error();
      if (!*row) return std::string("(no message uses it)");
      std::string out = "(used by " + (*s)->Text(0) + "/" + (*s)->Text(1) + " uid " +
                        std::to_string((*s)->Int(2));
      if ((*s)->Int(3) > 1) out += " and " + std::to_string((*s)->Int(3) - 1) + " more";
      return out + ")";
    });
    return who ? *who : "(" + who.error().message + ")";
  }

  // ---- Mailing lists (issue 14; list_ops.h) ----

  Status CreateList(std::string_view address, ListMode mode) override {
    std::string addr = AsciiLower(address);
    if (DomainOf(addr).empty() || addr.front() == '@' || addr.find('+') != std::string::npos) {
      return Err(ErrorKind::kInvalid, "invalid list address (no '+' allowed): " + addr);
    }
    return WriteSync([addr, mode](Txn& t) { return sqlite::ApplyCreateList(t, addr, mode); });
  }
  Status RemoveList(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WriteSync([addr](Txn& t) { return sqlite::ApplyRemoveList(t, addr); });
  }
  Result<std::vector<ListInfo>> ListLists() override {
    return WithReader([](Db& db) { return sqlite::QueryLists(db); });
  }
  Result<std::vector<ListInfo>> ListsOfMember(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WithReader([&addr](Db& db) { return sqlite::QueryMemberLists(db, addr); });
  }
  Result<ListInfo> FindList(std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WithReader([&addr](Db& db) { return sqlite::QueryList(db, addr); });
  }
  Status UpdateList(std::string_view address, const ListSettings& settings) override {
    std::string addr = AsciiLower(address);
    return WriteSync(
        [addr, settings](Txn& t) { return sqlite::ApplyUpdateList(t, addr, settings); });
  }
  Result<ListMemberChange> AddListMembers(int64_t list_id, std::vector<ListMember> members,
                                          bool update) override {
    for (auto& m : members) m.address = AsciiLower(m.address);
    auto change = std::make_shared<ListMemberChange>();
    auto st = WriteSync(
        [=](Txn& t) { return sqlite::ApplyAddListMembers(t, list_id, members, update, *change); });
    if (!st) return st.error();
    return *change;
  }
  Status RemoveListMember(int64_t list_id, std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WriteSync([=](Txn& t) { return sqlite::ApplyRemoveListMember(t, list_id, addr); });
  }
  Result<std::vector<uint32_t>> ArchiveSeen(int64_t account_id, int64_t mailbox_id) override {
    return WithReader([=](Db& db) -> Result<std::vector<uint32_t>> {
      auto s = db.Cached(
          "SELECT uid FROM archive_seen WHERE account_id = ? AND mailbox_id = ? ORDER BY uid");
      if (!s) return s.error();
      (*s)->Bind(1, account_id).Bind(2, mailbox_id);
      std::vector<uint32_t> out;
      auto st = (*s)->ForEachRow([&](Stmt& r) { out.push_back(static_cast<uint32_t>(r.Int(0))); });
      (*s)->Reset();
      if (!st) return st.error();
      return out;
    });
  }
  Status SetArchiveSeen(int64_t account_id, int64_t mailbox_id, std::vector<uint32_t> uids,
                        bool seen) override {
    return WriteSync([=](Txn& t) -> Status {
      auto s = t.db.Cached(seen ? "INSERT OR IGNORE INTO archive_seen(account_id, mailbox_id, uid) "
                                  "VALUES(?, ?, ?)"
                                : "DELETE FROM archive_seen WHERE account_id = ? AND "
                                  "mailbox_id = ? AND uid = ?");
      if (!s) return s.error();
      for (uint32_t uid : uids) {
        (*s)->Bind(1, account_id).Bind(2, mailbox_id).Bind(3, static_cast<int64_t>(uid));
        auto st = (*s)->Run();
        (*s)->Reset();
        if (!st) return st;
      }
      return Ok();
    });
  }
  Result<std::vector<ListMember>> ListListMembers(int64_t list_id) override {
    return WithReader([=](Db& db) { return sqlite::QueryListMembers(db, list_id); });
  }
  Result<ListMember> FindListMember(int64_t list_id, std::string_view address) override {
    std::string addr = AsciiLower(address);
    return WithReader([&](Db& db) { return sqlite::QueryListMember(db, list_id, addr); });
  }
  Status SetListMemberDelivery(int64_t list_id, std::string_view address,
                               std::optional<bool> delivery, bool reenable) override {
    std::string addr = AsciiLower(address);
    return WriteSync([=](Txn& t) {
      return sqlite::ApplySetMemberDelivery(t, list_id, addr, delivery, reenable);
    });
  }
  Result<ListMember> RecordListBounce(int64_t list_id, std::string_view address,
                                      std::string_view reason, uint32_t threshold) override {
    std::string addr = AsciiLower(address);
    std::string why(reason);
    auto after = std::make_shared<ListMember>();
    auto st = WriteSync(
        [=](Txn& t) { return sqlite::ApplyListBounce(t, list_id, addr, why, threshold, *after); });
    if (!st) return st.error();
    return *after;
  }
  Status CreateListToken(const ListToken& token) override {
    return WriteSync([token](Txn& t) { return sqlite::ApplyCreateListToken(t, token); });
  }
  Result<ListToken> ConsumeListToken(std::string_view token, int64_t now) override {
    std::string key(token);
    auto out = std::make_shared<ListToken>();
    auto st = WriteSync([=](Txn& t) { return sqlite::ApplyConsumeListToken(t, key, now, *out); });
    if (!st) return st.error();
    return *out;
  }
  Result<uint64_t> CountListTokens(int64_t list_id, std::string_view address,
                                   std::string_view source, int64_t since) override {
    std::string a = AsciiLower(address), src(source);
    return WithReader(
        [&](Db& db) { return sqlite::QueryCountListTokens(db, list_id, a, src, since); });
  }
  Result<int64_t> HoldListPost(int64_t list_id, std::string_view content, std::string_view sender,
                               std::string_view reason) override {
    auto id = std::make_shared<int64_t>(0);
    std::string c(content), snd(sender), why(reason);
    auto st =
        WriteSync([=](Txn& t) { return sqlite::ApplyHoldListPost(t, list_id, c, snd, why, *id); });
    if (!st) return st.error();
    return *id;
  }
  Result<std::vector<HeldPost>> ListHeldPosts(int64_t list_id) override {
    return WithReader([=](Db& db) { return sqlite::QueryHeldPosts(db, list_id); });
  }
  Result<std::string> ReadHeldPost(int64_t held_id) override {
    auto ref = WithReader([=](Db& db) { return sqlite::QueryHeldBlob(db, held_id); });
    if (!ref) return ref.error();
    return blobs_.Read(*ref);
  }
  Status DropHeldPost(int64_t held_id) override {
    return WriteSync([=](Txn& t) { return sqlite::ApplyDropHeldPost(t, held_id); });
  }
  void PostToList(ListPostRequest request, Done<ListPostReceipt> done) override {
    auto req = std::make_shared<ListPostRequest>(std::move(request));
    auto receipt = std::make_shared<ListPostReceipt>();
    Submit(WriteOp{[req, receipt](Txn& t) { return sqlite::ApplyPostToList(t, *req, *receipt); },
                   Complete(receipt, std::move(done))});
  }
  Result<std::vector<ListPostInfo>> ListPosts(int64_t list_id) override {
    return WithReader([=](Db& db) { return sqlite::QueryListPosts(db, list_id); });
  }
  Result<uint64_t> CountListPostsSince(int64_t list_id, int64_t since) override {
    return WithReader([=](Db& db) { return sqlite::QueryCountListPosts(db, list_id, since); });
  }
  Result<ListReport> ListPostReport(int64_t list_id, int64_t post_id) override {
    return WithReader([=](Db& db) { return sqlite::QueryListReport(db, list_id, post_id); });
  }
  Status RecordListPostFailure(int64_t post_id, std::string_view address,
                               std::string_view reason) override {
    std::string a(address), why(reason);
    return WriteSync([=](Txn& t) { return sqlite::ApplyListPostFailure(t, post_id, a, why); });
  }
  void MarkInFlight(std::vector<int64_t> recipient_ids, Done<std::vector<int64_t>> done) override {
    auto ids = std::make_shared<std::vector<int64_t>>(std::move(recipient_ids));
    auto marked = std::make_shared<std::vector<int64_t>>();
    Submit(WriteOp{[ids, marked](Txn& t) { return sqlite::ApplyMarkInFlight(t, *ids, *marked); },
                   [marked, done = std::move(done)](Status st) {
                     if (!st) return done(st.error());
                     done(std::move(*marked));
                   }});
  }
  Result<uint64_t> ResolveInFlight() override {
    auto n = std::make_shared<uint64_t>(0);
    auto st = WriteSync([n](Txn& t) { return sqlite::ApplyResolveInFlight(t, *n); });
    if (!st) return st.error();
    return *n;
  }

  // A `done` for WriteOp that hands the op's result to a typed Done<T>.
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

  Status WriteSync(std::function<Status(Txn&)> apply) {
    return Wait<void>([&](Done<void> done) {
      Submit(
          WriteOp{std::move(apply), [done = std::move(done)](Status st) { done(std::move(st)); }});
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

  void WriterLoop() {
    NameThisThread("hato-writer");
    std::vector<WriteOp> batch;
    while (true) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty() && stopping_) return;  // everything queued was written
        while (!queue_.empty() && batch.size() < options_.max_batch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      RunBatch(batch);
      batch.clear();
    }
  }

  // ---- The full-text index (SEARCH BODY/TEXT; search/text_index.h) ----
  //
  // Derived data, kept entirely off the acknowledgement path: the writer
  // never touches it. The indexer thread, at the lowest CPU priority, reads
  // bodies committed above the index's watermark in batches, extracts their
  // text (StoreOptions::index_text) and adds them. A body not indexed yet is
  // reported by SearchText as `unindexed`, and the caller scans it.

  Status OpenTextIndex() {
    auto max_id = WithReader([](Db& db) { return sqlite::QueryMaxBlobId(db); });
    if (!max_id) return max_id.error();
    auto index = search::TextIndex::Open(data_dir_ + "/index", *max_id);
    if (!index) return index.error();
    index_ = std::move(*index);
    return Ok();
  }

  // Indexes the next batch of bodies above the watermark; returns how many
  // it read (0: caught up).
  Result<uint64_t> IndexRound(const TextExtractor& extract) {
    int64_t mark = index_->Watermark();
    auto batch = WithReader(
        [mark](Db& db) { return sqlite::QueryBlobsAbove(db, mark, kIndexCommitBodies); });
    if (!batch) return batch.error();
    if (batch->empty()) return uint64_t{0};
    std::vector<search::IndexDoc> docs;
    std::vector<int64_t> skipped;
    int64_t read_up_to = mark;
    for (const auto& b : *batch) {
      // The store is closing: stop at once (the thread runs at the lowest
      // priority, so a whole batch could take long on a busy machine); the
      // rest is read again at the next start.
      if (index_stopping_) break;
      read_up_to = b.id;
      auto content = blobs_.Read(b.ref);
      if (!content) {  // kCorrupt: `hato verify` names it; nothing to index
        spdlog::warn("text index: body {} not indexed: {}", b.id, content.error().message);
        skipped.push_back(b.id);  // stays unindexed: searches scan it
        continue;
      }
      IndexText text = extract(*content, b.mime);
      docs.push_back({b.id, std::move(text.header), std::move(text.body)});
    }
    if (read_up_to == mark) return uint64_t{0};
    index_->Skip(skipped);
    if (auto st = index_->Add(docs, read_up_to); !st) return st.error();
    return batch->size();
  }

  // Indexes until caught up or `budget` has passed, committing every round
  // (kIndexCommitBodies bodies). Stops early (index_deferred_) while
  // IndexShouldWait().
  Result<uint64_t> IndexFor(const TextExtractor& extract, std::chrono::milliseconds budget) {
    auto until = std::chrono::steady_clock::now() + budget;
    uint64_t total = 0;
    index_deferred_ = false;
    while (true) {
      if (IndexShouldWait()) {
        index_deferred_ = true;
        break;
      }
      auto n = IndexRound(extract);  // 0: nothing read, nothing staged
      if (!n) return n.error();
      if (*n == 0) break;
      total += *n;
      if (auto st = index_->Commit(); !st) return st.error();
      if (std::chrono::steady_clock::now() >= until) break;
      std::lock_guard lock(index_mu_);
      if (index_stopping_) break;
    }
    return total;
  }
  // Bodies per round and per Xapian commit. Xapian buffers a commit's
  // postings and positions in memory, and its CPU per document grows with
  // that buffer: one commit per 1,024 bodies (a second of indexing was
  // 300-1,000) cost 2-50% more per 4 KiB message than one per 256 (bench/README.md,
  // `hato-index-cost --batch`); 64 cost the same as 256. A search that sees
  // its revision replaced under it reopens and retries (text_index.cc,
  // kSearchAttempts): at this size it has a quarter second or more.
  static constexpr int64_t kIndexCommitBodies = 256;

  // Deferred indexing: while the writer is storing bodies (a group commit
  // that stored some ended within kIndexQuiet), the indexer leaves new bodies for
  // later, as long as fewer than kIndexDeferBodies blob ids wait above its
  // watermark: a burst of mail is not slowed by indexing it, and the index
  // catches up once the writer is quiet. Past that many it indexes during the
  // burst too, so under steady load it stays about that far behind. Searches
  // stay complete meanwhile: the bodies not indexed are scanned.
  bool IndexShouldWait() {
    const int64_t now = NowMs();
    // Only commits that stored bodies count: a steady stream of flag changes
    // must not hold the index back.
    if (now - last_append_end_ms_.load() >= kIndexQuiet.count()) return false;
    auto max_id = WithReader([](Db& db) { return sqlite::QueryMaxBlobId(db); });
    if (!max_id) return false;
    return *max_id - index_->Watermark() < kIndexDeferBodies;
  }
  static constexpr std::chrono::milliseconds kIndexQuiet{250};
  static constexpr int64_t kIndexDeferBodies = 10000;

  void IndexerLoop() {
    NameThisThread("hato-indexer");
    // The lowest priority: under load the index waits, deliveries do not.
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
    while (true) {
      Result<uint64_t> n = uint64_t{0};
      if (auto st = index_->Flush(); !st) {
        n = st.error();
      } else {
        n = IndexFor(options_.index_text, kIndexCommitEvery);
      }
      if (!n) spdlog::warn("text index: {}", n.error().message);
      std::unique_lock lock(index_mu_);
      if (index_stopping_) return;
      // Deferred while the writer commits: look again once it may be quiet.
      if (n && index_deferred_) {
        index_cv_.wait_for(lock, kIndexQuiet, [this] { return index_stopping_.load(); });
        if (index_stopping_) return;
        continue;
      }
      // Caught up (or failing): sleep until a commit wakes us; in any case
      // at most one round a second, so that the index's writes come in
      // large batches.
      if (!n || *n == 0) {
        index_cv_.wait_for(lock, std::chrono::seconds(n ? 10 : 30),
                           [this] { return index_stopping_ || index_wake_; });
        index_wake_ = false;
        if (index_stopping_) return;
      }
      index_cv_.wait_for(lock, kIndexCommitEvery, [this] { return index_stopping_.load(); });
      if (index_stopping_) return;
    }
  }
  static constexpr std::chrono::milliseconds kIndexCommitEvery{1000};

  void WakeIndexer() {
    if (!indexer_.joinable()) return;
    {
      std::lock_guard lock(index_mu_);
      index_wake_ = true;
    }
    index_cv_.notify_one();
  }

  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
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

  void RunBatchTimed(std::vector<WriteOp>& batch) {
    std::vector<Status> results(batch.size());
    Txn txn{writer_db_, blobs_, false, {}};
    std::vector<int64_t> lookup_changes;
    Status commit = writer_db_.Exec("BEGIN IMMEDIATE");
    if (commit) {
      for (size_t i = 0; i < batch.size(); ++i) {
        if (auto sp = writer_db_.Exec("SAVEPOINT w"); !sp) {
          results[i] = sp;
          continue;
        }
        results[i] = batch[i].apply(txn);
        if (!results[i]) {
          writer_db_.ResetAll();
          (void)writer_db_.Exec("ROLLBACK TO w");
        }
        (void)writer_db_.Exec("RELEASE w");
      }
      writer_db_.ResetAll();
      // Bodies first, then the rows that point at them.
      if (txn.appended) commit = blobs_.Sync();
      if (commit) commit = CheckStoragePresent();
      if (commit) commit = TakeLookupChanges(lookup_changes);
      if (commit) commit = writer_db_.Exec("COMMIT");
      if (!commit) (void)writer_db_.Exec("ROLLBACK");
    }
    if (commit && !lookup_changes.empty()) LookupsChanged(lookup_changes);
    // Commit, then notify (IDLE pushes follow the durable write), then
    // complete: a client that saw its own change acknowledged finds other
    // sessions already told about it.
    if (commit && !txn.touched.empty()) {
      std::function<void(const std::vector<int64_t>&)> listener;
      {
        std::lock_guard lock(mu_);
        listener = listener_;
      }
      if (listener) listener(std::vector<int64_t>(txn.touched.begin(), txn.touched.end()));
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!commit && results[i]) results[i] = Err(ErrorKind::kTemporary, commit.error().message);
      batch[i].done(std::move(results[i]));
    }
    if (commit && txn.appended) {
      last_append_end_ms_ = NowMs();
      WakeIndexer();
    }
  }

  // What this transaction changed of the delivery look-ups (kLookupTriggers),
  // taken out of temp.lookup_changes (the taking commits or rolls back with it).
  Status TakeLookupChanges(std::vector<int64_t>& out) {
    auto s = writer_db_.Cached("SELECT DISTINCT account_id FROM temp.lookup_changes");
    if (!s) return s.error();
    auto st = (*s)->ForEachRow([&](Stmt& r) { out.push_back(r.Int(0)); });
    (*s)->Reset();
    if (!st || out.empty()) return st;
    return writer_db_.Exec("DELETE FROM temp.lookup_changes");
  }

  // After the COMMIT of such changes: this process's cache drops them, and
  // the stamp tells the other processes on the data dir to drop theirs.
  void LookupsChanged(const std::vector<int64_t>& changes) {
    for (int64_t account : changes) {
      if (account == 0) {
        cache_.Clear();
      } else {
        cache_.DropScripts(account);
      }
    }
    if (auto st = fs_->WriteFile(stamp_path_, NewStamp()); !st) {
      spdlog::warn("store: {} not updated: {}", stamp_path_, st.error().message);
    }
  }

  // Whether the look-ups' cache may serve now: the stamp is readable, and if
  // another process moved it since, the cache has been emptied first.
  bool CacheUsable() {
    if (!stamp_file_) return false;
    auto stamp = stamp_file_->ReadAt(0, kStampBytes);  // a stamp being written: not now
    if (!stamp) return false;
    std::lock_guard lock(stamp_mu_);
    if (*stamp != stamp_seen_) {
      cache_.Clear();
      stamp_seen_ = std::move(*stamp);
    }
    return true;
  }

  // SQLite keeps writing to a database file deleted under it (and so would we,
  // to segments): refuse to commit, so nothing is acknowledged that is not
  // stored (docs/operations.md, "Storage destroyed").
  Status CheckStoragePresent() {
    for (const std::string& path : {db_path_, blobs_.dir()}) {
      if (!fs_->Exists(path)) {
        return Err(ErrorKind::kTemporary, "message storage is missing: " + path + " was removed");
      }
    }
    return Ok();
  }

  template <typename F>
  auto WithReader(F&& f) -> decltype(f(std::declval<Db&>())) {
    std::unique_ptr<Db> db;
    {
      std::lock_guard lock(pool_mu_);
      if (!readers_.empty()) {
        db = std::move(readers_.back());
        readers_.pop_back();
      }
    }
    if (!db) {
      db = std::make_unique<Db>();
      if (auto st = db->Open(db_path_, false, vfs_, /*create=*/false); !st) return st.error();
    }
    auto result = f(*db);
    db->ResetAll();  // end the read transaction: an idle snapshot would pin the WAL
    std::lock_guard lock(pool_mu_);
    readers_.push_back(std::move(db));
    return result;
  }

  std::string data_dir_;
  std::string db_path_;
  std::string stamp_path_;  // kLookupsStampFile
  StoreOptions options_;
  io::FileSystem* fs_;
  const char* vfs_ = nullptr;  // SQLite's default unless faults are injected
  BlobStore blobs_;
  DirectoryCache cache_;                          // the delivery look-ups
  std::unique_ptr<io::ReadableFile> stamp_file_;  // kLookupsStampFile, kept open
  std::mutex stamp_mu_;
  std::string stamp_seen_;  // guarded by stamp_mu_

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WriteOp> queue_;                                  // guarded by mu_
  std::function<void(const std::vector<int64_t>&)> listener_;  // guarded by mu_
  CopyListener copy_listener_;                                 // guarded by mu_
  bool stopping_ = false;                                      // guarded by mu_
  std::thread writer_;
  // Write-path timing for Health() (steady clock, ms).
  static constexpr int64_t kRecentCommitMs = 2000;
  std::atomic<int64_t> batch_started_ms_{0};
  // The full-text index and its thread (null / not running: searches scan).
  std::unique_ptr<search::TextIndex> index_;
  std::thread indexer_;
  std::mutex index_mu_;
  std::condition_variable index_cv_;
  std::atomic<bool> index_stopping_{false};  // set under index_mu_; read anywhere
  bool index_wake_ = false;                  // guarded by index_mu_: a commit appended bodies
  bool index_deferred_ = false;              // indexer thread only: the last round waited
  std::atomic<int64_t> last_commit_ms_{0};
  std::atomic<int64_t> last_commit_end_ms_{0};
  std::atomic<int64_t> last_append_end_ms_{0};  // the last commit that stored bodies
  Db writer_db_;                                // writer thread only (and Open before it starts)

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<Db>> readers_;  // guarded by pool_mu_
};

}  // namespace

Result<std::unique_ptr<Store>> OpenEmbeddedStore(const std::string& data_dir,
                                                 const StoreOptions& options) {
  auto store = std::make_unique<SqliteStore>(data_dir, options);
  if (auto st = store->Open(); !st) return st.error();
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace hato::store
