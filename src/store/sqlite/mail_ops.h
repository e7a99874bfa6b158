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

// What a write sees while it runs inside the writer's batch transaction.
struct Txn {
  Db& db;
  BlobStore& blobs;
  bool appended = false;      // a blob was appended: Sync before COMMIT
  std::set<int64_t> touched;  // mailboxes changed by the batch
};

// Stores content once (content-addressed) with `refs` more references, its
// MIME tree, SORT keys record and threadId when given (kept if already stored);
// returns the blob id. `sha256`: the content's SHA-256 (raw) when the caller
// has it already, else computed here. `encoded`: the content's record built
// ahead (DeliveryRequest::encoded), written as it is; null = built here.
Result<int64_t> PutBlob(Txn& t, std::string_view content, std::string_view mime, int64_t refs,
                        std::string_view sort_keys = {}, std::string_view thread_id = {},
                        std::string_view sha256 = {}, const EncodedBlob* encoded = nullptr);

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
Status ApplyClaimRecent(Txn& t, int64_t mailbox_id, uint32_t up_to_uid, uint32_t& previous);
Status ApplyRestoreMessage(Txn& t, const RestoreRequest& req, RestoreResult& result);
Status ApplyRepairBlob(Txn& t, std::string_view content);
Status ApplyUndelete(Txn& t, int64_t account_id, const std::string& mailbox, int64_t since,
                     uint64_t& restored);

// Reads.
Result<std::vector<MailboxInfo>> QueryMailboxes(Db& db, int64_t account_id);
// Subscribed names without a live mailbox (Store::ListOrphanSubscriptions).
Result<std::vector<std::string>> QueryOrphanSubscriptions(Db& db, int64_t account_id);
Result<MailboxSnapshot> QueryMessages(Db& db, int64_t account_id, const std::string& mailbox);
Result<std::vector<uint32_t>> QueryVanished(Db& db, int64_t mailbox_id, uint64_t since);
Result<MailboxChanges> QueryChanges(Db& db, int64_t mailbox_id, uint64_t since);
// One page of QueryChanges (Store::ListChangesPage).
Result<MailboxChanges> QueryChangesPage(Db& db, int64_t mailbox_id, uint64_t since, size_t max_rows,
                                        size_t max_bytes);
// Messages (live, or expunged but not yet purged) with UIDs in [first, last].
Status QueryMessagesByUid(Db& db, int64_t mailbox_id, uint32_t first, uint32_t last,
                          std::vector<MessageMeta>& out);
Result<QuotaUsage> QueryQuota(Db& db, int64_t account_id);
// (uid, blob id) of the live messages of a mailbox, by UID (SEARCH BODY/TEXT).
Result<std::vector<std::pair<uint32_t, int64_t>>> QueryLiveBlobs(Db& db, int64_t mailbox_id);
// The (uid, blob id) of the mailbox's live messages whose body is above
// `above` or one of `ids` (ascending), in uid order: the few a text search
// needs when the index matched few bodies (messages_jmap_blob).
Result<std::vector<std::pair<uint32_t, int64_t>>> QueryLiveBlobsAboveOrIn(
    Db& db, int64_t mailbox_id, int64_t above, const std::vector<int64_t>& ids);
// The highest blob id in use (0: none).
Result<int64_t> QueryMaxBlobId(Db& db);
// Bodies above `after` by id, for the full-text indexer.
struct BlobToIndex {
  int64_t id = 0;
  BlobRef ref;
  std::string mime;  // the stored MIME tree
};
Result<std::vector<BlobToIndex>> QueryBlobsAbove(Db& db, int64_t after, int64_t limit);
// The bodies with these ids (those that still exist), for checking the
// full-text index's candidates against the stored text.
Result<std::vector<BlobToIndex>> QueryBlobsById(Db& db, const std::vector<int64_t>& ids);

}  // namespace hato::store::sqlite
