// Accounts spread over several PostgreSQL clusters (issue 15, "sharding for
// internet scale"; docs/architecture.md "Shards").
//
// The main database (store.postgres) is the directory and holds everything
// that is not one account's mail: domains, accounts' identities (address,
// password, session epochs, admin role), aliases, tokens, the outbound queue
// and lists; and it is itself the shard "main". Each other shard
// ([store.shards] name = URL) is a complete database of the same schema that
// holds the mail of its accounts (mailboxes, messages, bodies, Sieve) and a
// copy of their account rows (same id). shard_directory (in main) says which
// shard holds an account's mail; every node caches it and drops an entry
// when main NOTIFYs hato_directory.
//
// Ids stay unique across shards: each shard numbers its mailboxes and
// messages from number << 40 (its row in `shards`), and a move copies rows
// with their ids, so IMAP clients see the same UIDs, UIDVALIDITY and
// MODSEQs after an account moved, and so do sessions already open.
//
// In every database accounts.moved_to is NULL where the account's mail lives
// and names its shard elsewhere; each mail write takes a share lock on the
// account row (NOWAIT) and fails with kTemporary when the row says the mail
// is elsewhere or a move holds it. The router then reads the directory again
// and retries on the account's shard (a few times, for up to
// kMoveRetrySeconds): writes are never applied to a copy being left.
//
// A delivery to accounts on several shards is one transaction per shard;
// the reply waits for all of them. If one fails the client gets a
// temporary error and retries, so those on the other shards may get the
// message twice (at most once per retry).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store/postgres/pg_store.h"

namespace hato::store {

inline constexpr const char* kMainShard = "main";
// Ids of shard number n start at n << kShardIdBits.
inline constexpr int kShardIdBits = 40;

struct ShardSpec {
  std::string name;
  std::string conninfo;
};

struct ShardingOptions {
  std::vector<ShardSpec> shards;  // besides main (PostgresOptions::conninfo)
  // Where new accounts go: "least-accounts" (the open shard with the fewest
  // live accounts) or "hash" (of the address, over the open shards).
  std::string placement = "least-accounts";
  std::vector<std::string> closed;  // shards that get no new accounts
  int64_t move_retention_seconds = 7 * 86400;
};

// Opens the main store and every shard (migrating each), numbers the new
// shards, copies the domains to them. Writes retry on a moved account.
Result<std::unique_ptr<Store>> OpenShardedStore(const PostgresOptions& main,
                                                const ShardingOptions& sharding,
                                                const StoreOptions& options);

// A configuration reload (SIGHUP): opens the shards `sharding` lists that
// `store` (opened by OpenShardedStore) does not have yet, and sets every
// shard's closed flag again; returns the names added. Shards removed from the
// list, new URLs and placement changes apply at restart. kInvalid for a store
// opened without shards. Blocks while the new databases are connected and
// migrated: call it off the event loop.
Result<std::vector<std::string>> ReloadShards(Store& store, const ShardingOptions& sharding);

// Where an account's mail lives (hato account where).
struct AccountHome {
  int64_t account_id = 0;
  std::string shard = kMainShard;
  std::string moving_to;     // a move in progress
  std::string previous;      // the source copy of the last move, until delete_after
  int64_t delete_after = 0;  // unix seconds
};
Result<AccountHome> FindAccountHome(const PostgresOptions& main, std::string_view address);

struct ShardUsage {
  std::string name;
  uint64_t accounts = 0;  // live accounts whose mail is there
  bool closed = false;
};
Result<std::vector<ShardUsage>> ListShardUsage(const PostgresOptions& main,
                                               const ShardingOptions& sharding);

struct MoveReport {
  std::string from;
  uint64_t mailboxes = 0;
  uint64_t messages = 0;  // message rows copied (the expunged ones in retention too)
  uint64_t bodies = 0;    // bodies written to the target (the others were there)
  uint64_t bytes = 0;
  int64_t freeze_ms = 0;  // how long the account's writes were refused
  std::string digest;     // the checksum both copies agreed on
};

// `hato account move ADDR --to SHARD`, online: copies the account's mail to
// `to` (bodies verified against their SHA-256 on the way), then holds the
// account's writes for a moment, copies what changed meanwhile, checks that
// both copies have the same checksum, switches the directory and lets the
// writes go to the new shard. The source copy stays (inert) until
// move_retention_seconds have passed; PurgeExpired then deletes it.
Result<MoveReport> MoveAccount(const PostgresOptions& main, const ShardingOptions& sharding,
                               std::string_view address, std::string_view to,
                               const std::function<void(const std::string&)>& log);

}  // namespace hato::store
