// Metadata snapshots for backup and restore (issue 6): reading a snapshot
// made by Store::SnapshotMetadata (VACUUM INTO), and building a new store in
// an empty data dir from one. The SQL of backup and restore lives here.
#include <map>

#include "base/strings.h"
#include "store/blobs.h"
#include "store/sqlite/db.h"
#include "store/sqlite/schema.h"
#include "store/store.h"

namespace hato::store {
namespace {

using sqlite::Db;
using sqlite::Stmt;

BlobRef RefFromColumns(const sqlite::Stmt& s, int first) {
  BlobRef ref;
  ref.sha256 = s.Blob(first);
  ref.segment = static_cast<uint32_t>(s.Int(first + 1));
  ref.offset = static_cast<uint64_t>(s.Int(first + 2));
  ref.stored_length = static_cast<uint64_t>(s.Int(first + 3));
  ref.size = static_cast<uint64_t>(s.Int(first + 4));
  ref.codec = static_cast<Codec>(s.Int(first + 5));
  return ref;
}

class SqliteSnapshot final : public MetadataSnapshot {
 public:
  Status Open(const std::string& path) {
    if (auto st = db_.Open(path, /*read_only=*/true); !st) return st;
    auto v = sqlite::SchemaVersion(db_);
    if (!v) return v.error();
    version_ = *v;
    if (version_ < 3 || version_ > static_cast<int>(sqlite::Migrations().size())) {
      return Err(ErrorKind::kInvalid,
                 path + ": unsupported schema version " + std::to_string(version_));
    }
    return Ok();
  }

  int schema_version() const override { return version_; }

  Result<std::vector<std::string>> Domains() override {
    auto s = db_.Prepare("SELECT name FROM domains ORDER BY name");
    if (!s) return s.error();
    std::vector<std::string> out;
    auto st = s->ForEachRow([&](Stmt& row) { out.push_back(row.Text(0)); });
    if (!st) return st.error();
    return out;
  }

  // Without the lists' archive accounts (a merge brings an archive's
  // messages back with its list: backup::Restore, SnapshotList).
  Result<std::vector<SnapshotAccount>> Accounts() override {
    static constexpr int kScramSchema = 9;
    std::string scram = version_ >= kScramSchema ? "coalesce(scram_sha256, '')" : "''";
    auto s = db_.Prepare("SELECT id, address, password_hash, coalesce(removed_at, 0), " + scram +
                         " FROM accounts WHERE password_hash != '" +
                         std::string(kListArchivePasswordHash) + "' ORDER BY address, id");
    if (!s) return s.error();
    std::vector<SnapshotAccount> out;
    auto st = s->ForEachRow([&](Stmt& row) {
      out.push_back({row.Int(0), row.Text(1), row.Text(2), row.Int(3), row.Text(4)});
    });
    if (!st) return st.error();
    return out;
  }

  Result<std::vector<SnapshotMailbox>> Mailboxes(int64_t account_id) override {
    auto s = db_.Prepare(
        "SELECT name, special_use, subscribed FROM mailboxes WHERE account_id = ? AND "
        "deleted_at IS NULL ORDER BY name");
    if (!s) return s.error();
    s->Bind(1, account_id);
    std::vector<SnapshotMailbox> out;
    auto st = s->ForEachRow([&](Stmt& row) {
      out.push_back({row.Text(0), row.Text(1), row.Int(2) != 0});
    });
    if (!st) return st.error();
    return out;
  }

  Result<std::vector<std::string>> Aliases(int64_t account_id) override {
    static constexpr int kAliasesSchema = 8;
    std::vector<std::string> out;
    if (version_ < kAliasesSchema) return out;
    auto s = db_.Prepare("SELECT address FROM aliases WHERE account_id = ? ORDER BY address");
    if (!s) return s.error();
    s->Bind(1, account_id);
    auto st = s->ForEachRow([&](Stmt& row) { out.push_back(row.Text(0)); });
    if (!st) return st.error();
    return out;
  }

  Result<std::vector<SnapshotSieveScript>> SieveScripts(int64_t account_id) override {
    std::vector<SnapshotSieveScript> out;
    auto has = HasTable("sieve_scripts");
    if (!has) return has.error();
    if (!*has) return out;
    auto s = db_.Prepare(
        "SELECT name, content, active FROM sieve_scripts WHERE account_id = ? ORDER BY name");
    if (!s) return s.error();
    s->Bind(1, account_id);
    auto st = s->ForEachRow([&](Stmt& row) {
      out.push_back({row.Text(0), row.Text(1), row.Int(2) != 0});
    });
    if (!st) return st.error();
    return out;
  }

  Result<std::vector<SnapshotList>> Lists() override {
    std::vector<SnapshotList> out;
    auto has = HasTable("lists");
    if (!has) return has.error();
    if (!*has) return out;
    // The archive account (a column of later schemas; 0 before: no archive).
    auto col =
        db_.Prepare("SELECT 1 FROM pragma_table_info('lists') WHERE name = 'archive_account_id'");
    if (!col) return col.error();
    auto has_archive = col->Step();
    if (!has_archive) return has_archive.error();
    std::string archive = *has_archive ? "archive_account_id" : "0";
    auto s = db_.Prepare(
        "SELECT id, address, mode, name, confirm_text, welcome_text, max_message_size, "
        "max_posts_per_hour, bounce_threshold, dmarc_rewrite, created_at, " +
        archive + " FROM lists WHERE removed_at IS NULL ORDER BY address");
    if (!s) return s.error();
    auto st = s->ForEachRow([&](Stmt& r) {
      SnapshotList l;
      l.info.id = r.Int(0);
      l.info.address = r.Text(1);
      l.info.mode = static_cast<ListMode>(r.Int(2));
      l.info.name = r.Text(3);
      l.info.confirm_text = r.Text(4);
      l.info.welcome_text = r.Text(5);
      l.info.max_message_size = static_cast<uint64_t>(r.Int(6));
      l.info.max_posts_per_hour = static_cast<uint32_t>(r.Int(7));
      l.info.bounce_threshold = static_cast<uint32_t>(r.Int(8));
      l.info.dmarc_rewrite = r.Text(9);
      l.info.created_at = r.Int(10);
      l.info.archive_account_id = r.Int(11);
      out.push_back(std::move(l));
    });
    if (!st) return st.error();
    auto m = db_.Prepare(
        "SELECT address, name, roles, delivery, disabled, bounce_score, last_bounce, joined_at "
        "FROM list_members WHERE list_id = ? ORDER BY address");
    if (!m) return m.error();
    for (auto& l : out) {
      m->Reset();
      m->Bind(1, l.info.id);
      st = m->ForEachRow([&](Stmt& r) {
        ListMember x;
        x.address = r.Text(0);
        x.name = r.Text(1);
        x.roles = static_cast<uint32_t>(r.Int(2));
        x.delivery = r.Int(3) != 0;
        x.disabled = r.Int(4) != 0;
        x.bounce_score = static_cast<uint32_t>(r.Int(5));
        x.last_bounce = r.Text(6);
        x.joined_at = r.Int(7);
        l.members.push_back(std::move(x));
      });
      if (!st) return st.error();
      l.info.members = l.members.size();
    }
    return out;
  }

  Status ForEachMessage(int64_t account_id, bool include_expunged,
                        const std::function<Status(const SnapshotMessage&)>& fn) override {
    // expunged_at = 0: a row an undelete superseded (its message is live
    // again under a new UID): not part of the mail.
    auto s = db_.Prepare(
        "SELECT x.name, x.special_use, m.uid, b.sha256, b.segment, b.offset, b.stored_length, "
        "b.size, b.codec, m.internal_date, m.flags, m.keywords, m.return_path, "
        "coalesce(m.expunged_at, 0), x.deleted_at IS NOT NULL FROM messages m JOIN mailboxes x "
        "ON x.id = m.mailbox_id JOIN blobs b ON b.id = m.blob_id WHERE x.account_id = ? AND "
        "(? OR (m.expunged_at IS NULL AND x.deleted_at IS NULL)) AND "
        "(m.expunged_at IS NULL OR m.expunged_at != 0) ORDER BY x.name, m.uid");
    if (!s) return s.error();
    s->Bind(1, account_id).Bind(2, int64_t{include_expunged});
    while (true) {
      auto r = s->Step();
      if (!r) return r.error();
      if (!*r) break;
      SnapshotMessage m;
      m.mailbox = s->Text(0);
      if (s->Int(14) != 0) {
        // A deleted mailbox is hidden as "\x01<id>/<name>".
        size_t slash = m.mailbox.find(kHierarchySeparator);
        if (slash != std::string::npos) m.mailbox = m.mailbox.substr(slash + 1);
        if (m.expunged_at == 0) m.expunged_at = 1;
      }
      m.special_use = s->Text(1);
      m.uid = static_cast<uint32_t>(s->Int(2));
      m.body = RefFromColumns(*s, 3);
      m.internal_date = s->Int(9);
      m.flags = static_cast<uint32_t>(s->Int(10));
      m.keywords = s->Text(11);
      m.return_path = s->Text(12);
      m.expunged_at = std::max(m.expunged_at, s->Int(13));
      if (auto st = fn(m); !st) return st;
    }
    return Ok();
  }

  Status ForEachBody(const std::function<Status(const BlobRef&)>& fn) override {
    auto s = db_.Prepare(
        "SELECT sha256, segment, offset, stored_length, size, codec FROM blobs ORDER BY "
        "segment, offset");
    if (!s) return s.error();
    while (true) {
      auto r = s->Step();
      if (!r) return r.error();
      if (!*r) break;
      if (auto st = fn(RefFromColumns(*s, 0)); !st) return st;
    }
    return Ok();
  }

  Result<std::vector<std::string>> CheckIntegrity() override {
    return sqlite::CheckReferences(db_, sqlite::PageCheck::kFull);
  }

 private:
  Result<bool> HasTable(const char* name) {
    auto s = db_.Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
    if (!s) return s.error();
    s->Bind(1, name);
    return s->Step();
  }

  Db db_;
  int version_ = 0;
};

}  // namespace

Status Store::SnapshotForBackup(const std::string& path, const BackupBody& each) {
  if (auto st = SnapshotMetadata(path); !st) return st;
  if (!each) return Ok();
  auto snap = OpenMetadataSnapshot(path);
  if (!snap) return snap.error();
  return (*snap)->ForEachBody(
      [&](const BlobRef& ref) -> Status { return each(ref, [&]() { return ReadBlob(ref); }); });
}

Result<std::unique_ptr<MetadataSnapshot>> OpenMetadataSnapshot(const std::string& path) {
  auto snap = std::make_unique<SqliteSnapshot>();
  if (auto st = snap->Open(path); !st) return st.error();
  return std::unique_ptr<MetadataSnapshot>(std::move(snap));
}

Status RebuildStoreFromSnapshot(const std::string& snapshot_path, const std::string& data_dir,
                                const RebuildOptions& options, const BodySource& source) {
  io::FileSystem* fs = options.fs ? options.fs : io::FileSystem::Default();
  const std::string db_path = data_dir + "/meta.db";
  // A leftover -wal would be replayed into the new database: refuse it too.
  if (fs->Exists(db_path) || fs->Exists(db_path + "-wal") || fs->Exists(db_path + "-shm") ||
      fs->Exists(data_dir + "/blobs")) {
    return Err(ErrorKind::kExists, data_dir + " already holds a store (meta.db* or blobs/); " +
                                       "restore into an empty data dir, or use --merge");
  }
  if (auto st = fs->CreateDirs(data_dir); !st) return st;
  {
    Db src;
    if (auto st = src.Open(snapshot_path, /*read_only=*/true); !st) return st;
    auto s = src.Prepare("VACUUM INTO ?");
    if (!s) return s.error();
    if (auto st = s->Bind(1, db_path).Run(); !st) return st;
  }
  Db db;
  if (auto st = db.Open(db_path, false); !st) return st;
  if (auto st = sqlite::Migrate(db); !st) return st;
  if (auto st = db.Exec("BEGIN IMMEDIATE"); !st) return st;
  auto fail = [&db](Status st) {
    (void)db.Exec("ROLLBACK");
    return st;
  };
  if (!options.accounts.empty()) {
    if (auto st = db.Exec("CREATE TEMP TABLE keep(address TEXT PRIMARY KEY)"); !st) return fail(st);
    auto ins = db.Prepare("INSERT OR IGNORE INTO keep VALUES(?)");
    if (!ins) return fail(ins.error());
    for (const auto& a : options.accounts) {
      ins->Reset();
      if (auto st = ins->Bind(1, AsciiLower(a)).Run(); !st) return fail(st);
    }
    // A list's address names the list: lists come whole either way.
    auto missing = db.Prepare(
        "SELECT address FROM keep WHERE address NOT IN (SELECT address FROM accounts) AND "
        "address NOT IN (SELECT address FROM lists WHERE removed_at IS NULL)");
    if (!missing) return fail(missing.error());
    auto r = missing->Step();
    if (!r) return fail(r.error());
    if (*r) return fail(Err(ErrorKind::kNotFound, "no account " + missing->Text(0) + " in backup"));
    // The lists are kept whole, so their archives (system accounts) are too:
    // without them a list would come back with an empty archive.
    if (auto st =
            db.Exec("INSERT OR IGNORE INTO keep SELECT a.address FROM accounts a JOIN lists l ON "
                    "l.archive_account_id = a.id WHERE l.removed_at IS NULL");
        !st) {
      return fail(st);
    }
    const char* drop =
        "DELETE FROM messages WHERE mailbox_id IN (SELECT x.id FROM mailboxes x JOIN accounts a "
        "ON a.id = x.account_id WHERE a.address NOT IN (SELECT address FROM keep));"
        "DELETE FROM mailboxes WHERE account_id IN (SELECT id FROM accounts WHERE address NOT IN "
        "(SELECT address FROM keep));"
        "DELETE FROM aliases WHERE account_id IN (SELECT id FROM accounts WHERE address NOT IN "
        "(SELECT address FROM keep));"
        "DELETE FROM jmap_documents WHERE account_id IN (SELECT id FROM accounts WHERE address "
        "NOT IN (SELECT address FROM keep));"
        "DELETE FROM accounts WHERE address NOT IN (SELECT address FROM keep);"
        // Their other rows too: a later account given a dropped one's id
        // must not inherit its Sieve scripts or subscriptions.
        "DELETE FROM sieve_scripts WHERE account_id NOT IN (SELECT id FROM accounts);"
        "DELETE FROM sieve_state WHERE account_id NOT IN (SELECT id FROM accounts);"
        "DELETE FROM sieve_scripts_gone WHERE account_id NOT IN (SELECT id FROM accounts);"
        "DELETE FROM sieve_status WHERE account_id NOT IN (SELECT id FROM accounts);"
        "DELETE FROM sieve_memos WHERE account_id NOT IN (SELECT id FROM accounts);"
        "DELETE FROM orphan_subscriptions WHERE account_id NOT IN (SELECT id FROM accounts);"
        "DELETE FROM archive_seen WHERE account_id NOT IN (SELECT id FROM accounts);";
    if (auto st = db.Exec(drop); !st) return fail(st);
  }
  if (options.without_messages) {
    if (auto st = db.Exec("DELETE FROM messages"); !st) return fail(st);
  }
  // Queued messages, list posts (their report and archive copy) and posts
  // held for moderation keep their bodies too.
  const char* recount =
      "UPDATE blobs SET refs = (SELECT count(*) FROM messages m WHERE m.blob_id = blobs.id) + "
      "(SELECT count(*) FROM outbound_messages o WHERE o.blob_id = blobs.id) + "
      "(SELECT count(*) FROM list_held h WHERE h.blob_id = blobs.id);"
      "DELETE FROM blobs WHERE refs = 0;";
  if (auto st = db.Exec(recount); !st) return fail(st);

  BlobStore blobs(fs, data_dir + "/blobs",
                  BlobStore::Options{kDefaultSegmentSize, options.compress});
  if (auto st = blobs.Open(); !st) return fail(st);
  auto sel = db.Prepare(
      "SELECT id, sha256, segment, offset, stored_length, size, codec FROM blobs ORDER BY "
      "segment, offset");
  auto up = db.Prepare(
      "UPDATE blobs SET segment = ?, offset = ?, stored_length = ?, codec = ? WHERE id = ?");
  if (!sel) return fail(sel.error());
  if (!up) return fail(up.error());
  // Collect the rows first: updating the table while stepping over it is not stable.
  std::vector<std::pair<int64_t, BlobRef>> rows;
  while (true) {
    auto r = sel->Step();
    if (!r) return fail(r.error());
    if (!*r) break;
    BlobRef ref;
    ref.sha256 = sel->Blob(1);
    ref.segment = static_cast<uint32_t>(sel->Int(2));
    ref.offset = static_cast<uint64_t>(sel->Int(3));
    ref.stored_length = static_cast<uint64_t>(sel->Int(4));
    ref.size = static_cast<uint64_t>(sel->Int(5));
    ref.codec = static_cast<Codec>(sel->Int(6));
    rows.emplace_back(sel->Int(0), std::move(ref));
  }
  uint64_t bodies = 0, bytes = 0;
  for (const auto& [id, old] : rows) {
    auto content = source(old);
    if (!content) return fail(content.error());
    auto ref = blobs.Append(*content, old.sha256);
    if (!ref) return fail(ref.error());
    up->Reset();
    up->Bind(1, ref->segment).Bind(2, static_cast<int64_t>(ref->offset));
    up->Bind(3, static_cast<int64_t>(ref->stored_length)).Bind(4, static_cast<int64_t>(ref->codec));
    if (auto st = up->Bind(5, id).Run(); !st) return fail(st);
    ++bodies;
    bytes += content->size();
    if (options.progress) options.progress(bodies, bytes);
  }
  // Bodies durable first, then the metadata that points at them.
  if (auto st = blobs.Sync(); !st) return fail(st);
  if (auto st = db.Exec("COMMIT"); !st) return fail(st);
  return Ok();
}

}  // namespace hato::store
