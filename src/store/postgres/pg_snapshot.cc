// Backup of the PostgreSQL backend: the metadata, read in one REPEATABLE READ
// transaction, written as an embedded-store metadata database (the backup
// set format, store/sqlite/schema.cc at its latest version). Bodies stay in
// PostgreSQL: the snapshot's blob rows carry their SHA-256, and
// Store::ReadBlob finds them by it.
#include <filesystem>

#include "base/digest.h"
#include "base/strings.h"
#include "store/postgres/pg_ops.h"
#include "store/sqlite/db.h"
#include "store/sqlite/schema.h"

namespace hato::store::pg {
namespace {

struct TableCopy {
  const char* table;
  const char* pg_select;  // columns in the order of sqlite_columns
  const char* sqlite_columns;
  std::vector<int> bytea;  // columns that are bytea (BLOB in SQLite)
};

const std::vector<TableCopy>& Tables() {
  static const std::vector<TableCopy> kTables = {
      {"domains", "SELECT id, name, created_at FROM domains", "id, name, created_at", {}},
      {"accounts",
       "SELECT id, address, domain_id, password_hash, created_at, removed_at, quota_bytes, "
       "scram_sha256 FROM accounts",
       "id, address, domain_id, password_hash, created_at, removed_at, quota_bytes, scram_sha256",
       {}},
      {"mailboxes",
       "SELECT id, account_id, name, uidvalidity, uidnext, highest_modseq, special_use, "
       "subscribed, deleted_at, recent_uid FROM mailboxes",
       "id, account_id, name, uidvalidity, uidnext, highest_modseq, special_use, subscribed, "
       "deleted_at, recent_uid",
       {}},
      {"blobs",
       "SELECT id, sha256, 0, id, stored_length, size, codec, refs, mime, sort_keys, thread_id "
       "FROM blobs",
       "id, sha256, segment, offset, stored_length, size, codec, refs, mime, sort_keys, thread_id",
       {1, 8, 9}},
      {"messages",
       "SELECT id, mailbox_id, uid, blob_id, size, internal_date, flags, return_path, "
       "expunged_at, modseq, keywords, saved_at FROM messages",
       "id, mailbox_id, uid, blob_id, size, internal_date, flags, return_path, expunged_at, "
       "modseq, keywords, saved_at",
       {}},
      {"aliases",
       "SELECT id, address, domain_id, account_id, created_at FROM aliases",
       "id, address, domain_id, account_id, created_at",
       {}},
      {"outbound_messages",
       "SELECT id, blob_id, sender, envid, ret_hdrs, smtputf8, eight_bit, size, created_at FROM "
       "outbound_messages",
       "id, blob_id, sender, envid, ret_hdrs, smtputf8, eight_bit, size, created_at",
       {}},
      {"outbound_recipients",
       "SELECT id, message_id, address, domain, notify, orcpt, state, attempts, next_attempt_at, "
       "last_error, dsn_pending, delay_warned FROM outbound_recipients",
       "id, message_id, address, domain, notify, orcpt, state, attempts, next_attempt_at, "
       "last_error, dsn_pending, delay_warned",
       {}},
      {"submission_log", "SELECT account_id, at FROM submission_log", "account_id, at", {}},
      // JMAP's Identity choices and EmailSubmission records (issue 12).
      {"jmap_documents",
       "SELECT account_id, kind, body, updated_at FROM jmap_documents",
       "account_id, kind, body, updated_at",
       {}},
      // Mailing lists and their members (issue 14): backed up, restored and
      // merged like accounts (MetadataSnapshot::Lists).
      {"lists",
       "SELECT id, address, domain_id, mode, name, confirm_text, welcome_text, "
       "max_message_size, max_posts_per_hour, bounce_threshold, dmarc_rewrite, created_at, "
       "removed_at FROM lists",
       "id, address, domain_id, mode, name, confirm_text, welcome_text, max_message_size, "
       "max_posts_per_hour, bounce_threshold, dmarc_rewrite, created_at, removed_at",
       {}},
      {"list_members",
       "SELECT id, list_id, address, domain, name, roles, delivery, disabled, bounce_score, "
       "last_bounce, joined_at FROM list_members",
       "id, list_id, address, domain, name, roles, delivery, disabled, bounce_score, "
       "last_bounce, joined_at",
       {}},
  };
  return kTables;
}

// The tables taken from a shard: its accounts' mail, and the domains and
// account rows that mail refers to (the snapshot's foreign keys; the merge
// takes only the mail: main has every account).
// The snapshot's blobs.refs, counted from its own rows (what `hato backup
// verify` checks): PostgreSQL's counts include rows a snapshot does not take
// (held list posts; on a shard, the old copies of moved accounts).
constexpr const char* kRecountRefs =
    "UPDATE blobs SET refs = (SELECT count(*) FROM messages m WHERE m.blob_id = blobs.id) + "
    "(SELECT count(*) FROM outbound_messages o WHERE o.blob_id = blobs.id)";

bool IsShardPartTable(std::string_view table) {
  return table == "domains" || table == "accounts" || table == "mailboxes" || table == "messages" ||
         table == "blobs" || table == "jmap_documents";
}

// `select` restricted to the accounts whose mail lives in this database
// (accounts.moved_to IS NULL; store/postgres/sharded.h).
std::string HomedOnly(std::string_view table, const std::string& select) {
  const std::string homed = "(SELECT id FROM accounts WHERE moved_to IS NULL)";
  const std::string homed_mailboxes =
      "(SELECT id FROM mailboxes WHERE account_id IN " + homed + ")";
  if (table == "mailboxes" || table == "jmap_documents") {
    return select + " WHERE account_id IN " + homed;
  }
  if (table == "messages") return select + " WHERE mailbox_id IN " + homed_mailboxes;
  return select;
}

}  // namespace

Status WriteSqliteSnapshot(Conn& c, const std::string& path, SnapshotScope scope) {
  if (std::filesystem::exists(path)) {
    return Err(ErrorKind::kExists, path + " already exists");
  }
  sqlite::Db db;
  if (auto st = db.Open(path, false); !st) return st;
  if (auto st = sqlite::Migrate(db); !st) return st;
  // New accounts get default mailboxes from migration 3 only when accounts
  // exist; the database is empty here, so the tables are empty too.
  if (auto r = c.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !r) return r.error();
  auto fail = [&](const Error& e) -> Status {
    (void)c.Exec("ROLLBACK");
    (void)db.Exec("ROLLBACK");
    return e;
  };
  if (auto st = db.Exec("BEGIN IMMEDIATE"); !st) return fail(st.error());
  for (const auto& t : Tables()) {
    std::string select = t.pg_select;
    if (scope != SnapshotScope::kAll) {
      if (scope == SnapshotScope::kShardMail && !IsShardPartTable(t.table)) continue;
      select = HomedOnly(t.table, select);
      if (scope == SnapshotScope::kShardMail && std::string_view(t.table) == "accounts") {
        select += " WHERE moved_to IS NULL";
      }
      // A shard's bodies: those its kept messages use (main keeps them all:
      // the queue's bodies are there too).
      if (scope == SnapshotScope::kShardMail && std::string_view(t.table) == "blobs") {
        select +=
            " WHERE id IN (SELECT blob_id FROM messages WHERE mailbox_id IN (SELECT id FROM "
            "mailboxes WHERE account_id IN (SELECT id FROM accounts WHERE moved_to IS "
            "NULL)))";
      }
    }
    auto rows = c.Exec(select);
    if (!rows) return fail(rows.error());
    int ncols = 1;
    for (const char* p = t.sqlite_columns; *p; ++p) ncols += *p == ',';
    std::string sql = std::string("INSERT INTO ") + t.table + "(" + t.sqlite_columns + ") VALUES(";
    for (int i = 0; i < ncols; ++i) sql += i ? ",?" : "?";
    sql += ")";
    auto ins = db.Prepare(sql);
    if (!ins) return fail(ins.error());
    for (int i = 0; i < rows->size(); ++i) {
      ins->Reset();
      for (int col = 0; col < ncols; ++col) {
        if (rows->IsNull(i, col)) {
          ins->BindNull(col + 1);
        } else if (std::find(t.bytea.begin(), t.bytea.end(), col) != t.bytea.end()) {
          ins->BindBlob(col + 1, rows->Blob(i, col));
        } else {
          ins->Bind(col + 1, rows->Text(i, col));  // INTEGER affinity stores numbers as such
        }
      }
      if (auto st = ins->Run(); !st) return fail(st.error());
    }
  }
  if (auto st = db.Exec(kRecountRefs); !st) return fail(st.error());
  if (auto st = db.Exec("COMMIT"); !st) return fail(st.error());
  (void)c.Exec("COMMIT");
  // A rollback-journal file, like the embedded store's VACUUM INTO copy: a
  // WAL-mode one would get -wal and -shm files from its first (read-only)
  // reader, files the backup set's MANIFEST does not list (verify failed).
  return db.Exec("PRAGMA journal_mode=DELETE");
}

Status MergeShardSnapshot(const std::string& into, const std::string& part) {
  sqlite::Db db;
  if (auto st = db.Open(into, false); !st) return st;
  {
    auto attach = db.Prepare("ATTACH DATABASE ?1 AS part");
    if (!attach) return attach.error();
    attach->Bind(1, part);
    if (auto st = attach->Run(); !st) return st;
  }
  if (auto st = db.Exec("BEGIN IMMEDIATE"); !st) return st;
  auto fail = [&](const Error& e) -> Status {
    (void)db.Exec("ROLLBACK");
    return e;
  };
  std::string mailbox_cols, message_cols, document_cols;
  for (const auto& t : Tables()) {
    if (std::string_view(t.table) == "mailboxes") mailbox_cols = t.sqlite_columns;
    if (std::string_view(t.table) == "messages") message_cols = t.sqlite_columns;
    if (std::string_view(t.table) == "jmap_documents") document_cols = t.sqlite_columns;
  }
  // Mailbox and message ids are unique across shards (sharded.h); blob ids
  // are not, so a shard's bodies are found again by SHA-256 (one row each).
  // Every column of the snapshot's messages as it is, but blob_id.
  std::string message_select;
  for (size_t start = 0; start <= message_cols.size();) {
    size_t end = message_cols.find(',', start);
    if (end == std::string::npos) end = message_cols.size();
    std::string col(message_cols, start, end - start);
    col.erase(0, col.find_first_not_of(' '));
    col.erase(col.find_last_not_of(' ') + 1);
    if (!message_select.empty()) message_select += ", ";
    message_select +=
        col == "blob_id" ? "(SELECT x.id FROM main.blobs x WHERE x.sha256 = b.sha256)" : "m." + col;
    start = end + 1;
  }
  const std::string steps[] = {
      "INSERT INTO mailboxes(" + mailbox_cols + ") SELECT " + mailbox_cols + " FROM part.mailboxes",
      "INSERT INTO main.blobs(sha256, segment, \"offset\", stored_length, size, codec, refs, "
      "mime, sort_keys, thread_id) SELECT sha256, segment, \"offset\", stored_length, size, "
      "codec, refs, mime, sort_keys, thread_id FROM part.blobs WHERE sha256 NOT IN (SELECT "
      "sha256 FROM main.blobs)",
      "INSERT INTO main.messages(" + message_cols + ") SELECT " + message_select +
          " FROM part.messages m JOIN part.blobs b ON b.id = m.blob_id",
      "INSERT INTO main.jmap_documents(" + document_cols + ") SELECT " + document_cols +
          " FROM part.jmap_documents",
      kRecountRefs,
  };
  for (const auto& sql : steps) {
    if (auto st = db.Exec(sql); !st) return fail(st.error());
  }
  if (auto st = db.Exec("COMMIT"); !st) return fail(st.error());
  if (auto st = db.Exec("DETACH DATABASE part"); !st) return st;
  return db.Exec("PRAGMA journal_mode=DELETE");  // as WriteSqliteSnapshot leaves it
}

}  // namespace hato::store::pg

namespace hato::store::pg {

Status ImportSqliteSnapshot(Conn& c, const std::string& snapshot_path, const BodySource& source,
                            bool compress,
                            const std::function<void(uint64_t, uint64_t)>& progress) {
  sqlite::Db db;
  if (auto st = db.Open(snapshot_path, /*read_only=*/true); !st) return st;
  auto version = sqlite::SchemaVersion(db);
  if (!version) return version.error();
  if (*version != sqlite::LatestSchemaVersion()) {
    return Err(ErrorKind::kInvalid, snapshot_path + ": schema " + std::to_string(*version) +
                                        ", not this hato's " +
                                        std::to_string(sqlite::LatestSchemaVersion()));
  }
  if (auto r = c.Exec("BEGIN"); !r) return r.error();
  auto fail = [&](const Error& e) -> Status {
    (void)c.Exec("ROLLBACK");
    return e;
  };
  auto used = c.Exec("SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM messages)");
  if (!used) return fail(used.error());
  if (used->Int(0, 0) > 0) {
    return fail(Err(ErrorKind::kExists,
                    "the target database already holds accounts; copy into an empty one"));
  }
  // A fresh `hato init --postgres` made the first domain: the copy brings its own.
  if (auto r = c.Exec("DELETE FROM domains"); !r) return fail(r.error());
  Txn txn{c, compress, {}, {}};
  uint64_t bodies = 0, bytes = 0;
  for (const auto& t : Tables()) {
    std::string cols = t.sqlite_columns;
    int ncols = 1;
    for (char ch : cols) ncols += ch == ',';
    bool is_blobs = std::string(t.table) == "blobs";
    auto sel = db.Prepare("SELECT " + cols + " FROM " + t.table + " ORDER BY rowid");
    if (!sel) return fail(sel.error());
    std::string ins;
    if (is_blobs) {
      ins =
          "INSERT INTO blobs(id, sha256, stored_length, size, codec, refs, mime, sort_keys, "
          "thread_id) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9)";
    } else {
      ins = std::string("INSERT INTO ") + t.table + "(" + cols + ") VALUES(";
      for (int i = 0; i < ncols; ++i) ins += (i ? ",$" : "$") + std::to_string(i + 1);
      ins += ")";
    }
    Status row_status;
    auto st = sel->ForEachRow([&](sqlite::Stmt& row) {
      if (!row_status) return;
      std::vector<Param> params;
      if (is_blobs) {
        BlobRef ref;
        ref.sha256 = row.Blob(1);
        ref.segment = static_cast<uint32_t>(row.Int(2));
        ref.offset = static_cast<uint64_t>(row.Int(3));
        ref.stored_length = static_cast<uint64_t>(row.Int(4));
        ref.size = static_cast<uint64_t>(row.Int(5));
        ref.codec = static_cast<Codec>(row.Int(6));
        auto content = source(ref);  // verified against its SHA-256
        if (!content) {
          row_status = content.error();
          return;
        }
        Codec codec;
        std::string payload = EncodeBody(*content, compress, codec);
        params = {P(row.Int(0)),
                  Bytes(ref.sha256),
                  P(static_cast<int64_t>(payload.size())),
                  P(static_cast<int64_t>(content->size())),
                  P(static_cast<int64_t>(codec)),
                  P(row.Int(7)),
                  row.IsNull(8) ? Null() : Bytes(row.Blob(8)),
                  row.IsNull(9) ? Null() : Bytes(row.Blob(9)),
                  row.IsNull(10) ? Null() : P(row.Text(10))};
        if (auto r = c.Exec(ins, params); !r) {
          row_status = r.error();
          return;
        }
        row_status = WriteBodyChunks(txn, row.Int(0), payload);
        ++bodies;
        bytes += content->size();
        if (progress) progress(bodies, bytes);
        return;
      }
      for (int col = 0; col < ncols; ++col) {
        if (row.IsNull(col)) {
          params.push_back(Null());
        } else {
          params.push_back(P(row.Text(col)));
        }
      }
      if (auto r = c.Exec(ins, params); !r) row_status = r.error();
    });
    if (!st) return fail(st.error());
    if (!row_status) return fail(row_status.error());
    // The next ids continue after the copied ones.
    if (std::string(t.table) != "submission_log" && std::string(t.table) != "jmap_documents") {
      auto r = c.Exec(std::string("SELECT setval(pg_get_serial_sequence('") + t.table +
                      "', 'id'), coalesce((SELECT max(id) FROM " + t.table + "), 0) + 1, false)");
      if (!r) return fail(r.error());
    }
  }
  if (auto r = c.Exec("COMMIT"); !r) return r.error();
  return Ok();
}

Result<std::string> SnapshotDigest(const std::string& snapshot_path, uint64_t& messages) {
  sqlite::Db db;
  if (auto st = db.Open(snapshot_path, /*read_only=*/true); !st) return st.error();
  // Everything a user or an admin can see, by names rather than row ids.
  struct Query {
    const char* sql;
    int cols;
  };
  const Query queries[] = {
      {"SELECT name FROM domains ORDER BY name", 1},
      {"SELECT address, password_hash, coalesce(removed_at, 0), coalesce(quota_bytes, -1), "
       "coalesce(scram_sha256, '') FROM accounts ORDER BY address, removed_at",
       5},
      {"SELECT a.address, x.name, x.uidvalidity, x.uidnext, x.highest_modseq, x.special_use, "
       "x.subscribed, x.recent_uid, coalesce(x.deleted_at, 0) FROM mailboxes x JOIN accounts a ON "
       "a.id = x.account_id ORDER BY a.address, a.removed_at, x.name",
       9},
      {"SELECT a.address, x.name, m.uid, hex(b.sha256), m.size, m.internal_date, m.flags, "
       "m.keywords, m.return_path, coalesce(m.expunged_at, -1), m.modseq FROM messages m JOIN "
       "mailboxes x ON x.id = m.mailbox_id JOIN accounts a ON a.id = x.account_id JOIN blobs b "
       "ON b.id = m.blob_id ORDER BY a.address, a.removed_at, x.name, m.uid",
       11},
      {"SELECT l.address, a.address FROM aliases l JOIN accounts a ON a.id = l.account_id ORDER "
       "BY l.address",
       2},
      {"SELECT hex(b.sha256), o.sender, o.envid, o.size, o.created_at, r.address, r.state, "
       "r.attempts, r.next_attempt_at, r.dsn_pending FROM outbound_recipients r JOIN "
       "outbound_messages o ON o.id = r.message_id JOIN blobs b ON b.id = o.blob_id ORDER BY "
       "o.id, r.id",
       10},
  };
  std::string all;
  messages = 0;
  for (const auto& q : queries) {
    auto s = db.Prepare(q.sql);
    if (!s) return s.error();
    int cols = q.cols;
    bool counting = std::string(q.sql).find("FROM messages") != std::string::npos;
    auto st = s->ForEachRow([&](sqlite::Stmt& row) {
      for (int i = 0; i < cols; ++i) {
        std::string v = row.Text(i);
        all += std::to_string(v.size()) + ":" + v + ";";
      }
      all += "\n";
      if (counting) ++messages;
    });
    if (!st) return st.error();
    all += "--\n";
  }
  return HexEncode(Sha256(all));
}

}  // namespace hato::store::pg
