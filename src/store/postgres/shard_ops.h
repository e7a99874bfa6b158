// SQL shared by the sharded store (sharded.cc) and the account mover
// (account_move.cc): registering shards, their id ranges, copies of account
// rows and domains, deleting one account's mail from a database.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/postgres/conn.h"
#include "store/postgres/pg_ops.h"

namespace hato::store::pg {

// Sequences numbered per shard (store/postgres/sharded.h kShardIdBits).
inline constexpr const char* kShardSequences[] = {"mailboxes_id_seq", "messages_id_seq"};

// The shard's number in main's `shards` table, given on first sight (main is 0).
Result<int> RegisterShard(Conn& main, const std::string& name);
// Makes the shard's sequences start at number << kShardIdBits.
Status SetIdFloor(Conn& shard, int number);
// Adds to `shard` the domains of `main` it lacks.
Status CopyDomains(Conn& main, Conn& shard);

// The account's row of main, copied into a shard database with the same id
// (its domain added when missing) unless a row with that id is there;
// moved_to set as given ("" = NULL).
Status EnsureAccountCopy(Conn& main, Conn& shard, int64_t account_id, const std::string& moved_to);

// Deletes the account's mail from this database: messages (body references
// dropped, unreferenced bodies deleted), mailboxes, Sieve rows, orphan
// subscriptions; and the account row too when `drop_row`.
Status DeleteAccountMail(Conn& c, int64_t account_id, bool drop_row);

// The directory entry of an account (main): shard "main" when it has none.
struct DirectoryRow {
  std::string shard = "main";
  std::string moving_to;
  std::string previous;
  int64_t delete_after = 0;
};
Result<DirectoryRow> ReadDirectory(Conn& main, int64_t account_id);

// One checksum of everything of one account a user sees, by ids (which a
// move keeps): mailboxes with UIDVALIDITY/UIDNEXT/modseqs, messages with
// their body SHA-256, flags, keywords, dates, expunge marks, Sieve scripts
// and memos, subscriptions. Equal on two databases = the same mail.
Result<std::string> AccountDigest(Conn& c, int64_t account_id);

}  // namespace hato::store::pg
