// Versioned schema of the embedded metadata database and its migrations.
// PRAGMA user_version holds the version; Migrate() applies each missing step
// in one transaction at start-up. Every version ever released stays in the
// list, and tests/unit/schema_test.cc migrates from each of them.
#pragma once

#include <string>
#include <vector>

#include "store/sqlite/db.h"

namespace hato::store::sqlite {

// The SQL of each migration; migration i takes the schema from version i to i+1.
const std::vector<std::string>& Migrations();
inline int LatestSchemaVersion() { return static_cast<int>(Migrations().size()); }

Result<int> SchemaVersion(Db& db);
// Migrates up to `target` (default: latest). Refuses a database newer than this binary.
Status Migrate(Db& db, int target = -1);

// The references between metadata rows, checked by `hato verify` (the live
// store) and `hato backup verify` (a snapshot): PRAGMA integrity_check (or
// the faster quick_check), messages whose body or mailbox is missing, and
// bodies whose reference count is not the number of messages and queued
// outbound messages that use them. One line per problem; empty when sound.
enum class PageCheck { kQuick, kFull };
Result<std::vector<std::string>> CheckReferences(Db& db, PageCheck pages);

// The mailboxes (at most `limit`) whose counters (the n_* columns and the
// mailbox_threads rows the triggers keep) disagree with a recount of their
// live messages, one line each; and the recount that rewrites them all
// (`hato fsck --repair`; run it in a write transaction).
Result<std::vector<std::string>> CounterDisagreements(Db& db, size_t limit);
Status RecountMailboxCounters(Db& db);

}  // namespace hato::store::sqlite
