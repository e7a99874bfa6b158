// Backup, verified restore and repair (issue 6; docs/operations.md "Backup").
//
// A backup destination DEST holds content-addressed bodies shared by every set
// (so a new backup copies only bodies DEST does not have) and one directory
// per set:
//   DEST/HATO-BACKUP                    marker: "hato-backup 1"
//   DEST/bodies/ab/ab12...ef            a body, named by the hex SHA-256 of its bytes
//   DEST/sets/<ID>/meta.db              consistent copy of the metadata (VACUUM INTO)
//   DEST/sets/<ID>/config/...           hato.toml and tls/ of the data dir
//   DEST/sets/<ID>/MANIFEST             written last (manifest.h), with checksums
// Bodies are written without fsync and made durable by one syncfs before the
// MANIFEST is written atomically: a set with a MANIFEST is complete.
//
// Everything goes through io::FileSystem and the Store interface; the SQL is in
// store/sqlite/snapshot.cc. Not thread-safe; one command at a time per DEST
// (two concurrent backups are still safe: bodies are renamed into place).
#pragma once

#include <string>
#include <vector>

#include "backup/manifest.h"
#include "base/result.h"
#include "io/fs.h"
#include "store/store.h"

namespace hato::backup {

inline constexpr size_t kRestoreWindow = 256;  // restore --merge writes in flight

struct SetInfo {
  std::string id;
  bool complete = false;  // has a MANIFEST that parses
  Manifest manifest;
  std::string problem;  // why it is not complete
};

Result<Manifest> CreateBackup(store::Store& store, const std::string& data_dir,
                              const std::string& dest, io::FileSystem* fs = nullptr);

Result<std::vector<SetInfo>> ListBackups(const std::string& dest, io::FileSystem* fs = nullptr);

// Before `hato backup create`: DEST must already be a backup destination
// (has its marker), or `create` must be given. A missing or empty DEST
// without `create` is refused, so that a backup to an unmounted disk does not
// silently fill the root file system (issue 18, defect 9).
Status CheckDestination(const std::string& dest, bool create, io::FileSystem* fs = nullptr);

struct PruneResult {
  std::vector<std::string> removed_sets;
  uint64_t removed_bodies = 0;
  uint64_t removed_bytes = 0;
  bool bodies_kept = false;  // an incomplete set (a backup running or interrupted): no body removed
};
// Keeps the newest `keep` complete sets (keep >= 1) and removes older sets,
// then every body no remaining set references. Incomplete sets are never
// removed, and while one exists no body is removed either (it may belong to a
// backup in progress).
Result<PruneResult> PruneBackups(const std::string& dest, size_t keep,
                                 io::FileSystem* fs = nullptr);

struct VerifyResult {
  uint64_t sets = 0;
  uint64_t bodies = 0;
  uint64_t bytes = 0;
  std::vector<std::string> problems;  // each names the set, file, account and folder
};
// Re-reads every file of the set(s) (all complete sets when id is empty) and
// checks every checksum and reference.
Result<VerifyResult> VerifyBackup(const std::string& dest, const std::string& id,
                                  io::FileSystem* fs = nullptr);

struct RestoreOptions {
  std::string id;  // "" = the newest complete set
  // Canonical addresses; empty = all. Into an empty data dir the lists come
  // whole with their archives whatever is named; a merge merges the lists
  // named here (LIST@DOMAIN) and leaves the others out (RestoreResult).
  std::vector<std::string> accounts;
  bool accounts_only = false;  // domains, accounts, mailboxes; no messages
};

struct RestoreResult {
  std::string id;
  uint64_t messages = 0;  // considered
  uint64_t added = 0;
  uint64_t skipped = 0;  // already there (merge)
  uint64_t bytes = 0;
  double seconds = 0;
  uint64_t lists = 0;         // mailing lists merged (restore --merge)
  uint64_t list_members = 0;  // members added to them
  // Lists in the set that a merge with --account left out (not named): each
  // keeps its live state, its archive unmerged.
  std::vector<std::string> lists_left_out;
  std::vector<std::string> problems;
};

// Into an empty data dir (the server stopped): rebuilds the store from the set;
// copies hato.toml and tls/ when the data dir has none.
Result<RestoreResult> RestoreInto(const std::string& dest, const std::string& data_dir,
                                  const RestoreOptions& options, io::FileSystem* fs = nullptr);
// Into the live store (the server may run): accounts and mailboxes created as
// needed, each message added unless already there (Store::RestoreMessage).
Result<RestoreResult> RestoreMerge(const std::string& dest, store::Store& store,
                                   const RestoreOptions& options, io::FileSystem* fs = nullptr);

struct FsckResult {
  uint64_t bodies = 0;
  std::vector<std::string> problems;
  uint64_t repaired = 0;
  std::vector<std::string> unrepaired;
};
// Verifies the store. With `repair`: rewrites the mailbox counters that
// disagree with their messages (Store::RecountMailboxes) and, from the
// backup `repair_from`, writes good copies of damaged bodies (without one,
// they are unrepaired).
Result<FsckResult> Fsck(store::Store& store, bool repair, const std::string& repair_from,
                        io::FileSystem* fs = nullptr);

}  // namespace hato::backup
