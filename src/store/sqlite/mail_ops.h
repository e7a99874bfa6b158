// The mail operations of the embedded backend, as functions over a writer
// transaction (Txn) or a reader connection. SqliteStore queues the writes to
// its single writer and runs the reads on pooled connections; these functions
// hold the SQL. Each write records the mailboxes it changed in Txn::touched so
// that, after COMMIT, sessions can be told (IMAP IDLE, RFC 2177).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "store/blobs.h"
#include "store/sqlite/db.h"
#include "store/store.h"

namespace hato::store::sqlite {

int64_t NowSeconds();

// SEARCH BODY/TEXT needles of at least this many characters use the FTS5
// trigram index; shorter ones scan the indexed text.
inline constexpr size_t kMinIndexedChars = 3;

// What a write sees while it runs inside the writer's batch transaction.
// A full-text index row to write after the commit (see Txn::deferred_index).
struct PendingIndex {
  int64_t blob_id = 0;
  std::string sha256;  // the blob's, checked before writing (ids of rolled-back blobs are reused)
  IndexText text;
};

struct Txn {
  Db& db;
  BlobStore& blobs;
  bool appended = false;      // a blob was appended: Sync before COMMIT
  std::set<int64_t> touched;  // mailboxes changed by the batch
  // Non-null: index rows are collected here and written after the commit, off
  // the acknowledgement path (the writer's batches); null: written inline.
  std::vector<PendingIndex>* deferred_index = nullptr;
};

// Writes deferred index rows whose blob still exists with the same content.
Status WritePendingIndex(Txn& t, const PendingIndex& p);

// Stores content once (content-addressed) with `refs` more references;
// returns the blob id.
Result<int64_t> PutBlob(Txn& t, std::string_view content, std::string_view mime, int64_t refs);

// Writes (run by the writer thread inside a batch).
Status CreateDefaultMailboxes(Txn& t, int64_t account_id);
Status ApplyDelivery(Txn& t, const DeliveryRequest& req, DeliveryReceipt& receipt);
Status ApplyAppend(Txn& t, const AppendRequest& req, AppendResult& result);
Status ApplyCopy(Txn& t, int64_t account_id, const std::vector<int64_t>& ids,
                 const std::string& to_mailbox, bool move, CopyResult& result);
Status ApplyExpunge(Txn& t, int64_t account_id, const std::vector<int64_t>& ids);
Status ApplySetFlags(Txn& t, int64_t account_id, const std::vector<int64_t>& ids,
                     const FlagChange& change, FlagResult& result);
Status ApplyCreateMailbox(Txn& t, int64_t account_id, const std::string& name,
                          const std::string& special_use);
Status ApplyDeleteMailbox(Txn& t, int64_t account_id, const std::string& name);
Status ApplyRenameMailbox(Txn& t, int64_t account_id, const std::string& from,
                          const std::string& to);
Status ApplySetSubscribed(Txn& t, int64_t account_id, const std::string& name, bool subscribed);
// Adds the full-text index row of a blob unless it has one (one row per blob).
Status IndexBlob(Txn& t, int64_t blob_id, const IndexText& text);
Status ApplyClaimRecent(Txn& t, int64_t mailbox_id, uint32_t up_to_uid, uint32_t& previous);
Status ApplyRestoreMessage(Txn& t, const RestoreRequest& req, RestoreResult& result);
Status ApplyRepairBlob(Txn& t, std::string_view content);
Status ApplyUndelete(Txn& t, int64_t account_id, const std::string& mailbox, int64_t since,
                     uint64_t& restored);

// Reads.
Result<std::vector<MailboxInfo>> QueryMailboxes(Db& db, int64_t account_id);
Result<MailboxSnapshot> QueryMessages(Db& db, int64_t account_id, const std::string& mailbox);
Result<std::vector<uint32_t>> QueryVanished(Db& db, int64_t mailbox_id, uint64_t since);
Result<MailboxChanges> QueryChanges(Db& db, int64_t mailbox_id, uint64_t since);
// Messages (live, or expunged but not yet purged) with UIDs in [first, last].
Status QueryMessagesByUid(Db& db, int64_t mailbox_id, uint32_t first, uint32_t last,
                          std::vector<MessageMeta>& out);
Result<QuotaUsage> QueryQuota(Db& db, int64_t account_id);
Result<TextMatches> QueryTextMatches(Db& db, int64_t mailbox_id, std::string_view needle,
                                     bool with_header);

}  // namespace hato::store::sqlite
