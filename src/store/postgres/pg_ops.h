// The operations of the PostgreSQL backend as functions over a writer
// transaction (Txn) or a pooled reader connection; PgStore queues the writes
// to its writer thread and runs the reads on the pool. The same semantics as
// store/sqlite/mail_ops.h and queue_ops.h, in PostgreSQL's SQL; bodies are
// rows (blobs + blob_chunks) instead of segment records.
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "store/postgres/conn.h"
#include "store/store.h"

namespace hato::store::pg {

int64_t NowSeconds();

// How long a node's claim on due outbound recipients lasts: longer than any
// delivery attempt (connect and command timeouts), so that only a node that
// died mid-delivery has its recipients taken over; at most one duplicate
// attempt per recipient if an attempt outlasts it.
inline constexpr int64_t kOutboundLeaseSeconds = 900;

// The text indexer's mark (PostgresOptions::index_settle_ms,
// index_full_pass_ms): a body id becomes the mark this long after it was the
// highest, and every body is looked at again this often.
inline constexpr int64_t kIndexSettleMs = 10'000;
inline constexpr int64_t kIndexFullPassMs = 10 * 60'000;

// Where the text indexer's next background pass starts (IndexMark::From):
// the highest body id seen by a pass that began at least `settle_ms` ago, or
// 0 when a pass over every body is due (every `full_pass_ms`, and the first).
// Time in milliseconds of a steady clock.
class IndexMark {
 public:
  IndexMark(int64_t settle_ms, int64_t full_pass_ms)
      : settle_ms_(settle_ms), full_pass_ms_(full_pass_ms) {}
  // A pass begins at `now_ms`; the highest body id is `max_id`. Returns
  // the id after which it looks.
  int64_t From(int64_t now_ms, int64_t max_id);
  // The pass that began at `now_ms` (From) failed: the next one starts from
  // the same place.
  void Failed(int64_t now_ms);

 private:
  int64_t settle_ms_, full_pass_ms_;
  int64_t mark_ = 0;
  int64_t last_full_ms_ = 0;
  bool full_done_ = false;
  std::deque<std::pair<int64_t, int64_t>> seen_;  // (pass began, highest id then)
};

// Bodies are stored in chunks of at most this many (compressed) bytes.
inline constexpr size_t kChunkBytes = 1 << 20;

struct Txn {
  Conn& c;
  bool compress = true;
  std::set<int64_t> touched;  // mailboxes changed by the batch (NOTIFY, IDLE)
  // Accounts whose JMAP records the batch changed, 0 for outbound outcomes
  // (NOTIFY: Store::SetRecordListener on the other nodes).
  std::set<int64_t> records;
  // A body was stored without its SEARCH text (blob_text): the text
  // indexer is woken after the commit.
  bool unindexed = false;
};

// Stores content once (content-addressed) with `refs` more references, its
// MIME tree, SORT keys record and threadId when given (kept if already stored), and
// its text for SEARCH when given; returns the blob id.
Result<int64_t> PutBlob(Txn& t, std::string_view content, std::string_view mime, int64_t refs,
                        const std::optional<IndexText>& text = std::nullopt,
                        std::string_view sort_keys = {}, std::string_view thread_id = {});
// A body's stored payload (zstd when that saves 1/8) and its chunk rows.
std::string EncodeBody(std::string_view content, bool compress, Codec& codec);
Status WriteBodyChunks(Txn& t, int64_t blob_id, std::string_view payload);
// Reads and verifies a body by blob id or SHA-256 (kCorrupt on a mismatch).
Result<std::string> ReadBlobById(Conn& c, int64_t blob_id);
Result<std::string> ReadBlobBySha(Conn& c, std::string_view sha256);
// Several bodies in one query, in the order of `blob_ids` (the caller bounds
// their total size); an error when one is missing or fails to verify.
Result<std::vector<std::string>> ReadBlobsById(Conn& c, const std::vector<int64_t>& blob_ids);

// A write as statements that need no answer before the next is sent, so the
// writer sends those of a whole batch in one round trip (Conn::ExecPipeline).
// `finish` reads the statements' rows, in order, and fills the operation's
// result; an error from it means the rows show the write cannot be done this
// way (a missing mailbox): the writer rolls the pipeline back and runs the
// write's ordinary form, which gives the proper error. A statement failing
// does the same.
struct PipelinedWrite {
  std::vector<Statement> statements;
  std::function<Status(Txn&, std::vector<Rows>&)> finish;
};

// Whether the delivery is a plain one, for PipelinedDeliveries: to distinct
// accounts' INBOX (or Junk), no filings, queue parts or outcomes, a body of
// one chunk at most.
bool Pipelinable(const DeliveryRequest& req);
// A delivery's body as PipelinedDeliveries stores it, made by EncodeDelivery
// on the delivering thread (hashing, compressing and cleaning the text are
// then not done on the writer's one thread).
struct EncodedDelivery {
  std::string sha256;
  std::string payload;  // as stored: zstd when that saves 1/8
  int64_t codec = 0;
  std::optional<std::string> header, body;  // the SEARCH text, cleaned; nullopt: none
};
// nullopt when PipelinedDeliveries cannot take the request (Pipelinable, or
// its stored body is past one chunk).
std::optional<EncodedDelivery> EncodeDelivery(const DeliveryRequest& req, bool compress,
                                              const IndexText* text);
// One delivery of PipelinedDeliveries: the request, where its receipt goes and
// its encoded body; all must outlive the write.
struct DeliveryPart {
  const DeliveryRequest* req;
  DeliveryReceipt* receipt;
  const EncodedDelivery* encoded;
};
// Several plain deliveries as one statement: nullopt when two carry the
// same body. When an account of any of them has no such mailbox, `finish` fails
// the write and each delivery is to be run alone.
std::optional<PipelinedWrite> PipelinedDeliveries(const std::vector<DeliveryPart>& parts);
// Search text rows (IndexBlob) as independent statements.
PipelinedWrite PipelinedIndex(const std::vector<std::pair<int64_t, IndexText>>& rows);

Status CreateDefaultMailboxes(Txn& t, int64_t account_id);
Status ApplyDelivery(Txn& t, const DeliveryRequest& req, DeliveryReceipt& receipt,
                     const IndexText* text = nullptr);
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
Status IndexBlob(Txn& t, int64_t blob_id, const IndexText& text);
Status ApplyClaimRecent(Txn& t, int64_t mailbox_id, uint32_t up_to_uid, uint32_t& previous);
Status ApplyRestoreMessage(Txn& t, const RestoreRequest& req, RestoreResult& result);
Status ApplyRepairBlob(Txn& t, std::string_view content);
Status ApplyUndelete(Txn& t, int64_t account_id, const std::string& mailbox, int64_t since,
                     uint64_t& restored);

Result<std::vector<MailboxInfo>> QueryMailboxes(Conn& c, int64_t account_id);
// The mailboxes (at most `limit`) whose counters (the n_* columns and the
// mailbox_threads rows the triggers keep) disagree with a recount of their
// live messages, one line each (as the SQLite store's); and the recount
// that rewrites them all (`hato fsck --repair`), which locks out message
// writers until its transaction ends.
Result<std::vector<std::string>> QueryCounterDisagreements(Conn& c, int64_t limit);
Status ApplyRecountMailboxes(Txn& t);
// Subscribed names without a live mailbox (Store::ListOrphanSubscriptions).
Result<std::vector<std::string>> QueryOrphanSubscriptions(Conn& c, int64_t account_id);
Result<MailboxSnapshot> QueryMessages(Conn& c, int64_t account_id, const std::string& mailbox);
Result<std::vector<uint32_t>> QueryVanished(Conn& c, int64_t mailbox_id, uint64_t since);
Result<MailboxChanges> QueryChanges(Conn& c, int64_t mailbox_id, uint64_t since);
// One page of QueryChanges (Store::ListChangesPage).
Result<MailboxChanges> QueryChangesPage(Conn& c, int64_t mailbox_id, uint64_t since,
                                        size_t max_rows, size_t max_bytes);
Status QueryMessagesByUid(Conn& c, int64_t mailbox_id, uint32_t first, uint32_t last,
                          std::vector<MessageMeta>& out);
Result<QuotaUsage> QueryQuota(Conn& c, int64_t account_id);
Result<TextMatches> QueryTextMatches(Conn& c, int64_t mailbox_id, std::string_view needle,
                                     bool with_header);

// Outbound queue (store/sqlite/queue_ops.h).
Status ApplyOutboundParts(Txn& t, const DeliveryRequest& req, DeliveryReceipt& receipt);
Status ApplyOutcomes(Txn& t, const std::vector<RecipientOutcome>& outcomes);
Status ApplyQueueAction(Txn& t, int64_t message_id, QueueAction action);
// Due recipients not leased by another node (or whose lease expired), claimed
// for `node` until now + lease_seconds (FOR UPDATE SKIP LOCKED: two nodes
// scanning at once never claim the same recipient).
Result<std::vector<QueuedMessage>> QueryDueOutbound(Conn& c, int64_t now, size_t limit,
                                                    const std::string& node, int64_t lease_seconds);
Result<std::vector<QueuedMessage>> QueryPendingDsn(Conn& c, size_t limit);
Result<std::vector<QueuedMessage>> QueryQueue(Conn& c);
Result<QueueStats> QueryQueueStats(Conn& c);
Result<QueuedMessage> QueryQueued(Conn& c, int64_t message_id);
Result<uint64_t> QueryCountSubmissions(Conn& c, int64_t account_id, int64_t since);
// The outcomes of a message that left the queue finished (outbound_finished).
Result<std::vector<QueuedRecipient>> QueryFinishedRecipients(Conn& c, int64_t message_id);

// Backup (pg_snapshot.cc): writes the metadata, from one REPEATABLE READ
// snapshot, as an embedded-store metadata database (store/sqlite schema) at
// `path`, so backup sets, `hato backup verify` and restore read it like any
// other. Its BlobRefs name bodies by SHA-256 (segment 0, offset = blob id).
// Sharded stores (sharded.h) snapshot each database with a scope: main with
// kHomedMail (everything, but only the mail of the accounts that live in it),
// the other shards with kShardMail (only their own accounts, their domains
// and their mail), and MergeShardSnapshot adds each shard's mail to main's.
enum class SnapshotScope { kAll, kHomedMail, kShardMail };
// With `bodies`, each body the snapshot references is handed to it, read
// inside the same transaction (Store::SnapshotForBackup).
Status WriteSqliteSnapshot(Conn& c, const std::string& path,
                           SnapshotScope scope = SnapshotScope::kAll,
                           const Store::BackupBody& bodies = nullptr);
// Adds the mail of a kShardMail snapshot `part` to the snapshot `into`.
Status MergeShardSnapshot(const std::string& into, const std::string& part);
// `hato store copy`: every table of an embedded-format snapshot (latest
// schema) into this empty database, ids kept (UIDs, UIDVALIDITY and modseqs
// too, so IMAP clients see the same mailboxes), bodies read from `source`
// (verified against their SHA-256), in one transaction.
Status ImportSqliteSnapshot(Conn& c, const std::string& snapshot_path, const BodySource& source,
                            bool compress, const std::function<void(uint64_t, uint64_t)>& progress);
// A checksum of everything a snapshot holds that users and admins see
// (accounts, mailboxes with UIDVALIDITY/UIDNEXT/modseqs, messages with their
// body SHA-256 and flags, aliases, the queue, Sieve scripts, lists and their
// members, access tokens), by names rather than row ids;
// `messages` gets the number of message rows.
Result<std::string> SnapshotDigest(const std::string& snapshot_path, uint64_t& messages);

}  // namespace hato::store::pg
