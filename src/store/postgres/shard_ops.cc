#include "store/postgres/shard_ops.h"

#include "store/postgres/sharded.h"

namespace hato::store::pg {

Result<int> RegisterShard(Conn& main, const std::string& name) {
  // Two nodes may start together: the unique constraints settle it, and the
  // loser reads the winner's row.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto r = main.Exec("SELECT number FROM shards WHERE name = $1", {P(name)});
    if (!r) return r.error();
    if (!r->empty()) return static_cast<int>(r->Int(0, 0));
    auto ins = main.Exec(
        "INSERT INTO shards(name, number) SELECT $1, coalesce(max(number), 0) + 1 FROM shards "
        "ON CONFLICT DO NOTHING",
        {P(name)});
    if (!ins && ins.error().kind != ErrorKind::kExists) return ins.error();
  }
  return Err(ErrorKind::kTemporary, "could not number shard " + name);
}

Status SetIdFloor(Conn& shard, int number) {
  if (number <= 0) return Ok();
  int64_t floor = int64_t{number} << kShardIdBits;
  for (const char* seq : kShardSequences) {
    std::string s = seq;
    auto r = shard.Exec(
        "SELECT setval('" + s + "', greatest((SELECT last_value FROM " + s + "), $1::bigint))",
        {P(floor)});
    if (!r) return r.error();
  }
  return Ok();
}

Status CopyDomains(Conn& main, Conn& shard) {
  auto d = main.Exec("SELECT name, created_at FROM domains");
  if (!d) return d.error();
  for (int i = 0; i < d->size(); ++i) {
    auto r = shard.Exec(
        "INSERT INTO domains(name, created_at) VALUES($1, $2) ON CONFLICT (name) DO NOTHING",
        {P(d->Text(i, 0)), P(d->Int(i, 1))});
    if (!r) return r.error();
  }
  return Ok();
}

Status EnsureAccountCopy(Conn& main, Conn& shard, int64_t account_id, const std::string& moved_to) {
  auto have = shard.Exec("SELECT 1 FROM accounts WHERE id = $1", {P(account_id)});
  if (!have) return have.error();
  Param mt = moved_to.empty() ? Null() : P(moved_to);
  if (!have->empty()) {
    auto u = shard.Exec("UPDATE accounts SET moved_to = $2 WHERE id = $1", {P(account_id), mt});
    return u ? Ok() : Status(u.error());
  }
  auto a = main.Exec(
      "SELECT a.address, d.name, a.password_hash, a.created_at, a.removed_at, a.quota_bytes, "
      "a.scram_sha256, d.created_at FROM accounts a JOIN domains d ON d.id = a.domain_id WHERE "
      "a.id = $1",
      {P(account_id)});
  if (!a) return a.error();
  if (a->empty()) return Err(ErrorKind::kNotFound, "no account " + std::to_string(account_id));
  auto dom = shard.Exec(
      "INSERT INTO domains(name, created_at) VALUES($1, $2) ON CONFLICT (name) DO NOTHING",
      {P(a->Text(0, 1)), P(a->Int(0, 7))});
  if (!dom) return dom.error();
  auto ins = shard.Exec(
      "INSERT INTO accounts(id, address, domain_id, password_hash, created_at, removed_at, "
      "quota_bytes, scram_sha256, moved_to) SELECT $1, $2, d.id, $3, $4, $5, $6, $7, $8 FROM "
      "domains d WHERE d.name = $9",
      {P(account_id), P(a->Text(0, 0)), P(a->Text(0, 2)), P(a->Int(0, 3)),
       a->IsNull(0, 4) ? Null() : P(a->Int(0, 4)), a->IsNull(0, 5) ? Null() : P(a->Int(0, 5)),
       a->IsNull(0, 6) ? Null() : P(a->Text(0, 6)), mt, P(a->Text(0, 1))});
  return ins ? Ok() : Status(ins.error());
}

Status DeleteAccountMail(Conn& c, int64_t account_id, bool drop_row) {
  const char* unref =
      "UPDATE blobs b SET refs = b.refs - g.n FROM (SELECT m.blob_id, count(*) AS n FROM "
      "messages m JOIN mailboxes x ON x.id = m.mailbox_id WHERE x.account_id = $1 GROUP BY "
      "m.blob_id) g WHERE b.id = g.blob_id";
  const char* del_msgs =
      "DELETE FROM messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = $1)";
  const char* del_mb = "DELETE FROM mailboxes WHERE account_id = $1";
  const char* del_scripts = "DELETE FROM sieve_scripts WHERE account_id = $1";
  const char* del_status = "DELETE FROM sieve_status WHERE account_id = $1";
  const char* del_memos = "DELETE FROM sieve_memos WHERE account_id = $1";
  const char* del_sieve_state = "DELETE FROM sieve_state WHERE account_id = $1";
  const char* del_sieve_gone = "DELETE FROM sieve_scripts_gone WHERE account_id = $1";
  const char* del_subs = "DELETE FROM orphan_subscriptions WHERE account_id = $1";
  const char* del_jmap = "DELETE FROM jmap_documents WHERE account_id = $1";
  for (const char* sql : {unref, del_msgs, del_mb, del_scripts, del_status, del_memos,
                          del_sieve_state, del_sieve_gone, del_subs, del_jmap}) {
    auto r = c.Exec(sql, {P(account_id)});
    if (!r) return r.error();
  }
  // Only bodies this account referenced can have dropped to zero.
  auto blobs = c.Exec("DELETE FROM blobs WHERE refs <= 0");
  if (!blobs) return blobs.error();
  if (drop_row) {
    auto r = c.Exec("DELETE FROM accounts WHERE id = $1", {P(account_id)});
    if (!r) return r.error();
  }
  return Ok();
}

Result<DirectoryRow> ReadDirectory(Conn& main, int64_t account_id) {
  auto r = main.Exec(
      "SELECT shard, coalesce(moving_to, ''), coalesce(previous, ''), delete_after FROM "
      "shard_directory WHERE account_id = $1",
      {P(account_id)});
  if (!r) return r.error();
  DirectoryRow row;
  if (!r->empty()) {
    row.shard = r->Text(0, 0);
    row.moving_to = r->Text(0, 1);
    row.previous = r->Text(0, 2);
    row.delete_after = r->Int(0, 3);
  }
  return row;
}

Result<std::string> AccountDigest(Conn& c, int64_t account_id) {
  auto r = c.Exec(
      "SELECT count(*), md5(coalesce(string_agg(x, E'\\n' ORDER BY x COLLATE \"C\"), '')) FROM ("
      "SELECT concat_ws('|', 'b', id, name, uidvalidity, uidnext, highest_modseq, special_use, "
      "subscribed, coalesce(deleted_at, -1), recent_uid) AS x FROM mailboxes WHERE account_id = "
      "$1 "
      "UNION ALL SELECT concat_ws('|', 'm', m.id, m.mailbox_id, m.uid, encode(b.sha256, 'hex'), "
      "m.size, m.internal_date, m.flags, m.return_path, coalesce(m.expunged_at, -1), m.modseq, "
      "m.keywords) FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id JOIN blobs b ON b.id "
      "= m.blob_id WHERE x.account_id = $1 "
      "UNION ALL SELECT concat_ws('|', 's', name, md5(content), active, id, created_seq, "
      "changed_seq) FROM sieve_scripts WHERE account_id = $1 "
      "UNION ALL SELECT concat_ws('|', 'c', seq, next_id, forgotten) FROM sieve_state WHERE "
      "account_id = $1 "
      "UNION ALL SELECT concat_ws('|', 'g', id, name, created_seq, gone_seq) FROM "
      "sieve_scripts_gone WHERE account_id = $1 "
      "UNION ALL SELECT concat_ws('|', 'e', error, at) FROM sieve_status WHERE account_id = $1 "
      "UNION ALL SELECT concat_ws('|', 'k', kind, key, until) FROM sieve_memos WHERE account_id "
      "= $1 "
      "UNION ALL SELECT concat_ws('|', 'o', name) FROM orphan_subscriptions WHERE account_id = $1 "
      "UNION ALL SELECT concat_ws('|', 'j', kind, md5(body)) FROM jmap_documents WHERE "
      "account_id = $1 "
      "UNION ALL SELECT concat_ws('|', 'q', coalesce(quota_bytes, -1)) FROM accounts WHERE id = "
      "$1) t",
      {P(account_id)});
  if (!r) return r.error();
  return r->Text(0, 1) + "/" + r->Text(0, 0);
}

}  // namespace hato::store::pg
