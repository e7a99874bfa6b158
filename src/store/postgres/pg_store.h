// The PostgreSQL backend of the Store interface (issue 15): metadata and
// bodies in one PostgreSQL database, so one engine holds and replicates
// everything; several Hato nodes may share it.
//
// Threading is the embedded backend's: one writer thread owns a connection
// and group-commits queued writes (one transaction, a SAVEPOINT per write,
// `done` only after COMMIT returns); reads run on a bounded pool of
// connections, from the blocking pool (never on the event loop). Every query
// has a deadline (ConnOptions); a lost or stalled database fails writes and
// reads with kTemporary at once, and the next use reconnects. Commits that
// touch mailboxes NOTIFY hato_changes, and a listener connection forwards
// the other nodes' notifications to the change listener (IMAP IDLE).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "store/store.h"

namespace hato::store {

struct PostgresOptions {
  std::string conninfo;  // libpq connection string or URL; several hosts allowed
  size_t pool_size = 8;  // reader connections at most (the writer and listener have their own)
  int statement_timeout_ms = 10000;
  int connect_timeout_seconds = 5;
  // Set by the sharded store (store/postgres/sharded.h): account writes check
  // that the account's mail lives in this database (accounts.moved_to).
  bool guard_moves = false;
  // Names this node's outbound queue leases (FOR UPDATE SKIP LOCKED + expiry).
  // `hato serve` passes the id kept in its data dir (DATA/node.id), so a node
  // restarted after a crash takes its own leases back at once instead of
  // waiting out kOutboundLeaseSeconds; "" = a random id for this process
  // (CLI tools, which never lease).
  std::string node_id;
  // The text indexer's background passes (StoreOptions::index_text) look for
  // bodies without their SEARCH text only above a mark: the highest body id
  // that existed this long ago (a transaction that took a lower id has
  // committed or rolled back by then), so a pass reads the bodies of the last
  // seconds, not the whole store. A body that still got below the mark (a
  // transaction longer than this, a body whose text row went missing) is found
  // by a pass over every body every index_full_pass_ms; SEARCH reads a body
  // without text meanwhile (TextMatches::unindexed). Defaults:
  // pg::kIndexSettleMs, pg::kIndexFullPassMs (store/postgres/pg_ops.h).
  int64_t index_settle_ms = -1;
  int64_t index_full_pass_ms = -1;
};

// Connects, creates or migrates the schema, and starts the writer and the
// listener. The database may already hold the data of other nodes.
Result<std::unique_ptr<Store>> OpenPostgresStore(const PostgresOptions& pg,
                                                 const StoreOptions& options);

// Copies every account, mailbox, message (with its flags, UIDs are renumbered
// in order), alias and domain of a metadata snapshot (Store::SnapshotMetadata)
// into an empty PostgreSQL store, reading bodies from `source`; each body is
// verified against its SHA-256 on the way. kExists when the target holds accounts.
Status ImportSnapshotToPostgres(const std::string& snapshot_path, const PostgresOptions& pg,
                                const BodySource& source);

// A checksum of what a metadata snapshot holds (accounts, mailboxes with their
// UIDVALIDITY/UIDNEXT/modseqs, messages with body SHA-256 and flags, aliases,
// the queue), by names rather than row ids, so two stores' snapshots compare
// equal when they hold the same mail; `messages` gets the message count.
Result<std::string> SnapshotDigest(const std::string& snapshot_path, uint64_t& messages);

}  // namespace hato::store
