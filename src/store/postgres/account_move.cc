// `hato account move`: one account's mail copied online from its shard to
// another (sharded.h describes the protocol with the writers).
//
// 1. main: the directory row gets moving_to (nodes that see a refused write
//    keep retrying instead of failing).
// 2. target: any old copy of the account is deleted, its row is made inert
//    (moved_to set, writes refused there).
// 3. bulk copy from a REPEATABLE READ snapshot of the source, writers going
//    on meanwhile; bodies are read verified and re-read from the target.
// 4. freeze: the source account row is locked FOR UPDATE (in-flight writes
//    finish first; new ones fail at once with "being moved" and are retried
//    by their node); the rows changed since the snapshot (modseq above the
//    mailbox's highest at snapshot time), the mailboxes and the Sieve rows
//    are copied again, rows gone from the source are deleted from the target.
// 5. verify: AccountDigest of source (under the lock) and target (in its
//    transaction) must be equal, else everything is rolled back.
// 6. switch: target row live, directory says the target (NOTIFY
//    hato_directory), source row marked moved_to; the lock goes and the
//    retried writes land on the target.
// The source copy is deleted by the first PurgeExpired after
// move_retention_seconds (ShardedStore::DeleteMovedCopies).
#include <chrono>
#include <map>
#include <set>
#include <unordered_map>

#include "base/strings.h"
#include "store/postgres/schema.h"
#include "store/postgres/shard_ops.h"
#include "store/postgres/sharded.h"

namespace hato::store {
namespace {

using pg::Bytes;
using pg::Conn;
using pg::ConnOptions;
using pg::Null;
using pg::P;

// Marks the target's row while the copy is not the account's home yet.
constexpr const char* kMovingMark = "(moving)";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

ConnOptions MoverOptions(const PostgresOptions& pg, const std::string& conninfo) {
  ConnOptions o;
  o.conninfo = conninfo;
  o.connect_timeout_seconds = pg.connect_timeout_seconds;
  // A big mailbox takes long to copy: no server deadline, a generous client one.
  o.statement_timeout_ms = 0;
  o.query_timeout_ms = 3600 * 1000;
  return o;
}

Status Run(Conn& c, std::string_view sql, const std::vector<pg::Param>& params = {}) {
  auto r = c.Exec(sql, params);
  return r ? Ok() : Status(r.error());
}

class Mover {
 public:
  Mover(Conn& src, Conn& dst, int64_t account_id, MoveReport& report)
      : src_(src), dst_(dst), id_(account_id), report_(report) {}

  // Copies the mailboxes, and the messages with a modseq above their
  // mailbox's floor (all of a mailbox not in floors); returns each
  // mailbox's highest modseq as read.
  Result<std::map<int64_t, int64_t>> Copy(const std::map<int64_t, int64_t>& floors, bool delta) {
    auto mbs = src_.Exec(
        "SELECT id, name, uidvalidity, uidnext, highest_modseq, special_use, subscribed, "
        "deleted_at, recent_uid FROM mailboxes WHERE account_id = $1 ORDER BY id",
        {P(id_)});
    if (!mbs) return mbs.error();
    std::map<int64_t, int64_t> highest;
    std::set<int64_t> live;
    for (int i = 0; i < mbs->size(); ++i) {
      int64_t mb = mbs->Int(i, 0);
      live.insert(mb);
      highest[mb] = mbs->Int(i, 4);
      // The name is unique per account: a rename onto a name another
      // mailbox of the target still has is settled by parking that one first.
      if (delta) {
        auto park = dst_.Exec(
            "UPDATE mailboxes SET name = name || ' (moving ' || id || ')' WHERE account_id = $1 "
            "AND name = $2 AND id != $3",
            {P(id_), P(mbs->Text(i, 1)), P(mb)});
        if (!park) return park.error();
      }
      auto up = dst_.Exec(
          "INSERT INTO mailboxes(id, account_id, name, uidvalidity, uidnext, highest_modseq, "
          "special_use, subscribed, deleted_at, recent_uid) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,"
          "$10) ON CONFLICT (id) DO UPDATE SET name = excluded.name, uidvalidity = "
          "excluded.uidvalidity, uidnext = excluded.uidnext, highest_modseq = "
          "excluded.highest_modseq, special_use = excluded.special_use, subscribed = "
          "excluded.subscribed, deleted_at = excluded.deleted_at, recent_uid = "
          "excluded.recent_uid",
          {P(mb), P(id_), P(mbs->Text(i, 1)), P(mbs->Int(i, 2)), P(mbs->Int(i, 3)),
           P(mbs->Int(i, 4)), P(mbs->Text(i, 5)), P(mbs->Int(i, 6)),
           mbs->IsNull(i, 7) ? Null() : P(mbs->Int(i, 7)), P(mbs->Int(i, 8))});
      if (!up) return up.error();
      if (!delta) ++report_.mailboxes;
    }
    for (int64_t mb : live) {
      auto f = floors.find(mb);
      int64_t floor = f == floors.end() ? -1 : f->second;
      if (auto st = CopyMessages(mb, floor); !st) return st.error();
    }
    if (delta) {
      if (auto st = DropGone(live); !st) return st.error();
      if (auto st = CopySmallTables(); !st) return st.error();
    } else if (auto st = CopySmallTables(); !st) {
      return st.error();
    }
    return highest;
  }

 private:
  Status CopyMessages(int64_t mailbox_id, int64_t floor) {
    auto rows = src_.Exec(
        "SELECT m.id, m.uid, m.blob_id, m.size, m.internal_date, m.flags, m.return_path, "
        "m.expunged_at, m.modseq, m.keywords, b.sha256, m.saved_at FROM messages m JOIN blobs b "
        "ON b.id = "
        "m.blob_id WHERE m.mailbox_id = $1 AND m.modseq > $2 ORDER BY m.id",
        {P(mailbox_id), P(floor)});
    if (!rows) return rows.error();
    for (int i = 0; i < rows->size(); ++i) {
      auto blob = TargetBlob(rows->Int(i, 2), rows->Blob(i, 10));
      if (!blob) return blob.error();
      auto up = dst_.Exec(
          "INSERT INTO messages(id, mailbox_id, uid, blob_id, size, internal_date, flags, "
          "return_path, expunged_at, modseq, keywords, saved_at) "
          "VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) "
          "ON CONFLICT (id) DO UPDATE SET mailbox_id = excluded.mailbox_id, uid = excluded.uid, "
          "flags = excluded.flags, expunged_at = excluded.expunged_at, modseq = excluded.modseq, "
          "keywords = excluded.keywords RETURNING xmax = 0",
          {P(rows->Int(i, 0)), P(mailbox_id), P(rows->Int(i, 1)), P(*blob), P(rows->Int(i, 3)),
           P(rows->Int(i, 4)), P(rows->Int(i, 5)), P(rows->Text(i, 6)),
           rows->IsNull(i, 7) ? Null() : P(rows->Int(i, 7)), P(rows->Int(i, 8)),
           P(rows->Text(i, 9)), rows->IsNull(i, 11) ? Null() : P(rows->Int(i, 11))});
      if (!up) return up.error();
      if (up->Text(0, 0) == "t") {
        ++report_.messages;
        if (auto st = Run(dst_, "UPDATE blobs SET refs = refs + 1 WHERE id = $1", {P(*blob)});
            !st) {
          return st;
        }
      }
    }
    return Ok();
  }

  // The target's id of a body, copied (verified both ways) when missing.
  Result<int64_t> TargetBlob(int64_t src_blob, const std::string& sha) {
    if (auto it = blob_ids_.find(sha); it != blob_ids_.end()) return it->second;
    auto have = dst_.Exec("SELECT id FROM blobs WHERE sha256 = $1", {Bytes(sha)});
    if (!have) return have.error();
    int64_t id = 0;
    if (!have->empty()) {
      id = have->Int(0, 0);
    } else {
      auto content = pg::ReadBlobById(src_, src_blob);  // verified against its SHA-256
      if (!content) return content.error();
      auto meta = src_.Exec(
          "SELECT b.mime, t.header, t.body, b.sort_keys, b.thread_id FROM blobs b LEFT JOIN "
          "blob_text t ON "
          "t.blob_id = b.id WHERE b.id = $1",
          {P(src_blob)});
      if (!meta) return meta.error();
      std::string mime = meta->empty() || meta->IsNull(0, 0) ? "" : meta->Blob(0, 0);
      std::optional<IndexText> text;
      if (!meta->empty() && !meta->IsNull(0, 1))
        text = IndexText{meta->Text(0, 1), meta->Text(0, 2)};
      // The SORT keys record (issue 16) and the threadId move with the body.
      std::string sort_keys = meta->empty() || meta->IsNull(0, 3) ? "" : meta->Blob(0, 3);
      std::string thread_id = meta->empty() || meta->IsNull(0, 4) ? "" : meta->Text(0, 4);
      pg::Txn t{dst_, true, {}, {}, false};
      auto put = pg::PutBlob(t, *content, mime, 0, text, sort_keys, thread_id);
      if (!put) return put.error();
      id = *put;
      // Read back what the target stored: its chunks must give the same SHA-256.
      auto back = pg::ReadBlobById(dst_, id);
      if (!back) return back.error();
      if (*back != *content) {
        return Err(ErrorKind::kCorrupt, "a body read back from the target differs");
      }
      ++report_.bodies;
      report_.bytes += content->size();
    }
    blob_ids_[sha] = id;
    return id;
  }

  // Messages and mailboxes the source no longer has (purged past retention).
  Status DropGone(const std::set<int64_t>& live) {
    auto src_ids = src_.Exec(
        "SELECT m.id FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id WHERE x.account_id "
        "= $1",
        {P(id_)});
    if (!src_ids) return src_ids.error();
    std::string list = "{";
    for (int i = 0; i < src_ids->size(); ++i) {
      if (i > 0) list += ',';
      list += src_ids->Text(i, 0);
    }
    list += "}";
    auto gone = dst_.Exec(
        "DELETE FROM messages m USING mailboxes x WHERE x.id = m.mailbox_id AND x.account_id = "
        "$1 AND NOT (m.id = ANY($2::bigint[])) RETURNING m.blob_id",
        {P(id_), P(list)});
    if (!gone) return gone.error();
    for (int i = 0; i < gone->size(); ++i) {
      if (auto st =
              Run(dst_, "UPDATE blobs SET refs = refs - 1 WHERE id = $1", {P(gone->Int(i, 0))});
          !st) {
        return st;
      }
    }
    std::string mbs = "{";
    bool first = true;
    for (int64_t mb : live) {
      if (!first) mbs += ',';
      mbs += std::to_string(mb);
      first = false;
    }
    mbs += "}";
    if (auto st = Run(dst_,
                      "DELETE FROM mailboxes WHERE account_id = $1 AND NOT (id = "
                      "ANY($2::bigint[]))",
                      {P(id_), P(mbs)});
        !st) {
      return st;
    }
    return Run(dst_, "DELETE FROM blobs WHERE refs <= 0");
  }

  // Sieve scripts, status and memos, orphan subscriptions and the quota:
  // small, copied whole each time.
  Status CopySmallTables() {
    for (const char* table : {"sieve_scripts", "sieve_state", "sieve_scripts_gone", "sieve_status",
                              "sieve_memos", "orphan_subscriptions", "jmap_documents"}) {
      if (auto st =
              Run(dst_, std::string("DELETE FROM ") + table + " WHERE account_id = $1", {P(id_)});
          !st) {
        return st;
      }
    }
    auto scripts = src_.Exec(
        "SELECT name, content, active::int, updated_at, id, created_seq, changed_seq FROM "
        "sieve_scripts WHERE account_id = $1",
        {P(id_)});
    if (!scripts) return scripts.error();
    for (int i = 0; i < scripts->size(); ++i) {
      if (auto st = Run(dst_,
                        "INSERT INTO sieve_scripts(account_id, name, content, active, updated_at, "
                        "id, created_seq, changed_seq) VALUES($1, $2, $3, $4 != 0, $5, $6, $7, $8)",
                        {P(id_), P(scripts->Text(i, 0)), P(scripts->Text(i, 1)),
                         P(scripts->Int(i, 2)), P(scripts->Int(i, 3)), P(scripts->Int(i, 4)),
                         P(scripts->Int(i, 5)), P(scripts->Int(i, 6))});
          !st) {
        return st;
      }
    }
    // The script counter and the tombstones (JMAP SieveScript ids and states
    // stay valid across the move).
    auto counters = src_.Exec(
        "SELECT seq, next_id, forgotten FROM sieve_state WHERE account_id = $1", {P(id_)});
    if (!counters) return counters.error();
    for (int i = 0; i < counters->size(); ++i) {
      if (auto st =
              Run(dst_,
                  "INSERT INTO sieve_state(account_id, seq, next_id, forgotten) "
                  "VALUES($1, $2, $3, $4)",
                  {P(id_), P(counters->Int(i, 0)), P(counters->Int(i, 1)), P(counters->Int(i, 2))});
          !st) {
        return st;
      }
    }
    auto gone = src_.Exec(
        "SELECT id, name, created_seq, gone_seq FROM sieve_scripts_gone WHERE account_id = $1",
        {P(id_)});
    if (!gone) return gone.error();
    for (int i = 0; i < gone->size(); ++i) {
      if (auto st = Run(dst_,
                        "INSERT INTO sieve_scripts_gone(account_id, id, name, created_seq, "
                        "gone_seq) VALUES($1, $2, $3, $4, $5)",
                        {P(id_), P(gone->Int(i, 0)), P(gone->Text(i, 1)), P(gone->Int(i, 2)),
                         P(gone->Int(i, 3))});
          !st) {
        return st;
      }
    }
    auto status = src_.Exec("SELECT error, at FROM sieve_status WHERE account_id = $1", {P(id_)});
    if (!status) return status.error();
    for (int i = 0; i < status->size(); ++i) {
      if (auto st = Run(dst_, "INSERT INTO sieve_status(account_id, error, at) VALUES($1, $2, $3)",
                        {P(id_), P(status->Text(i, 0)), P(status->Int(i, 1))});
          !st) {
        return st;
      }
    }
    auto memos =
        src_.Exec("SELECT kind, key, until FROM sieve_memos WHERE account_id = $1", {P(id_)});
    if (!memos) return memos.error();
    for (int i = 0; i < memos->size(); ++i) {
      if (auto st =
              Run(dst_, "INSERT INTO sieve_memos(account_id, kind, key, until) VALUES($1,$2,$3,$4)",
                  {P(id_), P(memos->Int(i, 0)), P(memos->Text(i, 1)), P(memos->Int(i, 2))});
          !st) {
        return st;
      }
    }
    auto subs = src_.Exec("SELECT name FROM orphan_subscriptions WHERE account_id = $1", {P(id_)});
    if (!subs) return subs.error();
    for (int i = 0; i < subs->size(); ++i) {
      if (auto st = Run(dst_, "INSERT INTO orphan_subscriptions(account_id, name) VALUES($1, $2)",
                        {P(id_), P(subs->Text(i, 0))});
          !st) {
        return st;
      }
    }
    // JMAP's Identity choices and EmailSubmission records (issue 12).
    auto docs = src_.Exec("SELECT kind, body, updated_at FROM jmap_documents WHERE account_id = $1",
                          {P(id_)});
    if (!docs) return docs.error();
    for (int i = 0; i < docs->size(); ++i) {
      if (auto st = Run(dst_,
                        "INSERT INTO jmap_documents(account_id, kind, body, updated_at) "
                        "VALUES($1, $2, $3, $4)",
                        {P(id_), P(docs->Text(i, 0)), P(docs->Text(i, 1)), P(docs->Int(i, 2))});
          !st) {
        return st;
      }
    }
    auto quota = src_.Exec("SELECT quota_bytes FROM accounts WHERE id = $1", {P(id_)});
    if (!quota) return quota.error();
    if (quota->empty()) return Err(ErrorKind::kNotFound, "the account left the source");
    return Run(dst_, "UPDATE accounts SET quota_bytes = $2 WHERE id = $1",
               {P(id_), quota->IsNull(0, 0) ? Null() : P(quota->Int(0, 0))});
  }

  Conn& src_;
  Conn& dst_;
  int64_t id_;
  MoveReport& report_;
  std::unordered_map<std::string, int64_t> blob_ids_;  // SHA-256 -> target blob id
};

std::string ConninfoOf(const PostgresOptions& main, const ShardingOptions& sharding,
                       std::string_view name) {
  if (name == kMainShard) return main.conninfo;
  for (const auto& s : sharding.shards) {
    if (s.name == name) return s.conninfo;
  }
  return {};
}

Result<int64_t> LiveAccountId(Conn& main, std::string_view address) {
  auto r = main.Exec("SELECT id FROM accounts WHERE address = $1 AND removed_at IS NULL",
                     {P(AsciiLower(address))});
  if (!r) return r.error();
  if (r->empty()) return Err(ErrorKind::kNotFound, "no such account: " + std::string(address));
  return r->Int(0, 0);
}

}  // namespace

Result<AccountHome> FindAccountHome(const PostgresOptions& main, std::string_view address) {
  Conn c(MoverOptions(main, main.conninfo));
  if (auto st = c.Connect(); !st) return st.error();
  if (auto st = pg::Migrate(c); !st) return st.error();
  auto id = LiveAccountId(c, address);
  if (!id) return id.error();
  auto row = pg::ReadDirectory(c, *id);
  if (!row) return row.error();
  return AccountHome{*id, row->shard, row->moving_to, row->previous, row->delete_after};
}

Result<std::vector<ShardUsage>> ListShardUsage(const PostgresOptions& main,
                                               const ShardingOptions& sharding) {
  Conn c(MoverOptions(main, main.conninfo));
  if (auto st = c.Connect(); !st) return st.error();
  if (auto st = pg::Migrate(c); !st) return st.error();
  auto r = c.Exec(
      "SELECT coalesce(d.shard, 'main'), count(*) FROM accounts a LEFT JOIN shard_directory d "
      "ON d.account_id = a.id WHERE a.removed_at IS NULL GROUP BY 1");
  if (!r) return r.error();
  std::vector<ShardUsage> out;
  auto add = [&](const std::string& name) {
    ShardUsage u{name, 0, false};
    for (int i = 0; i < r->size(); ++i) {
      if (r->Text(i, 0) == name) u.accounts = static_cast<uint64_t>(r->Int(i, 1));
    }
    for (const auto& c : sharding.closed) u.closed = u.closed || c == name;
    out.push_back(u);
  };
  add(kMainShard);
  for (const auto& s : sharding.shards) add(s.name);
  return out;
}

Result<MoveReport> MoveAccount(const PostgresOptions& main, const ShardingOptions& sharding,
                               std::string_view address, std::string_view to,
                               const std::function<void(const std::string&)>& log) {
  std::string target(to);
  std::string target_info = ConninfoOf(main, sharding, target);
  if (target_info.empty()) {
    return Err(ErrorKind::kInvalid, "no shard named " + target + " in [store.shards]");
  }
  Conn main_conn(MoverOptions(main, main.conninfo));
  if (auto st = main_conn.Connect(); !st) return st.error();
  if (auto st = pg::Migrate(main_conn); !st) return st.error();
  auto id = LiveAccountId(main_conn, address);
  if (!id) return id.error();
  auto dir = pg::ReadDirectory(main_conn, *id);
  if (!dir) return dir.error();
  std::string from = dir->shard;
  if (from == target) {
    return Err(ErrorKind::kExists, std::string(address) + " is already on shard " + target);
  }
  if (!dir->moving_to.empty() && dir->moving_to != target) {
    return Err(ErrorKind::kInUse, std::string(address) + " is being moved to " + dir->moving_to +
                                      " (an interrupted move is resumed by moving it there again)");
  }
  std::string source_info = ConninfoOf(main, sharding, from);
  if (source_info.empty()) {
    return Err(ErrorKind::kInvalid,
               "the account is on shard " + from + ", which is not in [store.shards]");
  }
  // main is one connection whatever role it plays, so that its steps share
  // one transaction when it is the source or the target.
  std::unique_ptr<Conn> src_own, dst_own;
  Conn* src = &main_conn;
  Conn* dst = &main_conn;
  if (from != kMainShard) {
    src_own = std::make_unique<Conn>(MoverOptions(main, source_info));
    src = src_own.get();
  }
  if (target != kMainShard) {
    dst_own = std::make_unique<Conn>(MoverOptions(main, target_info));
    dst = dst_own.get();
  }
  for (Conn* c : {src, dst}) {
    if (auto st = c->Connect(); !st) return st.error();
    if (auto st = pg::Migrate(*c); !st) return st.error();
  }
  MoveReport report;
  report.from = from;
  int64_t account = *id;
  auto say = [&](const std::string& s) {
    if (log) log(s);
  };

  // 1. The directory announces the move.
  if (auto st = Run(main_conn,
                    "INSERT INTO shard_directory(account_id, shard, moving_to) VALUES($1, $2, $3) "
                    "ON CONFLICT (account_id) DO UPDATE SET moving_to = excluded.moving_to, "
                    "previous = CASE WHEN shard_directory.previous = excluded.moving_to THEN NULL "
                    "ELSE shard_directory.previous END",
                    {P(account), P(from), P(target)});
      !st) {
    return st.error();
  }
  auto abandon = [&](const Error& e) -> Result<MoveReport> {
    for (Conn* c : {src, dst, &main_conn}) {
      if (c->connected()) (void)c->Exec("ROLLBACK");
    }
    (void)Run(main_conn, "UPDATE shard_directory SET moving_to = NULL WHERE account_id = $1",
              {P(account)});
    return Err(e.kind, "move abandoned (the account stays on " + from + "): " + e.message);
  };

  // 2. The target: no old copy, an inert row.
  say("preparing " + target);
  if (auto st = Run(*dst, "BEGIN"); !st) return abandon(st.error());
  if (auto st = pg::DeleteAccountMail(*dst, account, false); !st) return abandon(st.error());
  if (target != kMainShard) {
    if (auto st = pg::EnsureAccountCopy(main_conn, *dst, account, kMovingMark); !st) {
      return abandon(st.error());
    }
  }
  if (auto st = Run(*dst, "COMMIT"); !st) return abandon(st.error());

  // 3. Bulk copy from a snapshot, writers going on.
  say("copying from " + from);
  Mover mover(*src, *dst, account, report);
  if (auto st = Run(*src, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !st) {
    return abandon(st.error());
  }
  if (auto st = Run(*dst, "BEGIN"); !st) return abandon(st.error());
  auto floors = mover.Copy({}, false);
  if (!floors) return abandon(floors.error());
  if (auto st = Run(*src, "COMMIT"); !st) return abandon(st.error());
  if (auto st = Run(*dst, "COMMIT"); !st) return abandon(st.error());

  // 4. Freeze the account on the source, copy what changed meanwhile.
  say("copied " + std::to_string(report.messages) +
      " messages; holding writes for the last changes");
  int64_t frozen = NowMs();
  if (auto st = Run(*src, "BEGIN"); !st) return abandon(st.error());
  if (auto st = Run(*src, "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", {P(account)}); !st) {
    return abandon(st.error());
  }
  if (dst != src) {
    if (auto st = Run(*dst, "BEGIN"); !st) return abandon(st.error());
  }
  if (auto delta = mover.Copy(*floors, true); !delta) return abandon(delta.error());

  // 5. Verify.
  auto a = pg::AccountDigest(*src, account);
  if (!a) return abandon(a.error());
  auto b = pg::AccountDigest(*dst, account);
  if (!b) return abandon(b.error());
  if (*a != *b) {
    return abandon(
        Err(ErrorKind::kCorrupt, "the copies differ after the copy (" + *a + " vs " + *b + ")"));
  }
  report.digest = *a;

  // 6. Switch.
  int64_t now = pg::NowSeconds();
  auto switch_directory = [&](Conn& c) -> Status {
    if (auto st =
            Run(c,
                "UPDATE shard_directory SET shard = $2, moving_to = NULL, previous = $3, "
                "delete_after = $4, moved_at = $5 WHERE account_id = $1",
                {P(account), P(target), P(from), P(now + sharding.move_retention_seconds), P(now)});
        !st) {
      return st;
    }
    return Run(c, "SELECT pg_notify('hato_directory', $1)", {P(account)});
  };
  if (auto st = Run(*dst, "UPDATE accounts SET moved_to = NULL WHERE id = $1", {P(account)}); !st) {
    return abandon(st.error());
  }
  if (dst == &main_conn) {
    if (auto st = switch_directory(main_conn); !st) return abandon(st.error());
  }
  if (auto st = Run(*dst, "COMMIT"); !st) return abandon(st.error());
  // From here the target holds the account; a failure below leaves the
  // source locked only until this process ends, and the directory is fixed
  // by running the move again (it resumes: the target copy is redone).
  if (src != &main_conn && dst != &main_conn) {
    Status st = Run(main_conn, "BEGIN");
    if (st) st = switch_directory(main_conn);
    if (st) {
      st = Run(main_conn, "UPDATE accounts SET moved_to = $2 WHERE id = $1",
               {P(account), P(target)});
    }
    if (st) st = Run(main_conn, "COMMIT");
    if (!st) return st.error();
  }
  if (auto st =
          Run(*src, "UPDATE accounts SET moved_to = $2 WHERE id = $1", {P(account), P(target)});
      !st) {
    return st.error();
  }
  if (src == &main_conn) {
    if (auto st = switch_directory(main_conn); !st) return st.error();
  }
  if (auto st = Run(*src, "COMMIT"); !st) return st.error();
  report.freeze_ms = NowMs() - frozen;
  say("switched to " + target + " (writes held " + std::to_string(report.freeze_ms) + " ms)");
  return report;
}

}  // namespace hato::store
