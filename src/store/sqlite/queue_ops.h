// The outbound queue of the embedded backend: SQL for queued messages, their
// recipients' retry and DSN state, and the submission log used for sending
// limits. Writes run inside the writer's batch transaction (Txn), so a
// submission's local delivery and its queue entry commit together.
#pragma once

#include <string>
#include <vector>

#include "store/blobs.h"
#include "store/sqlite/mail_ops.h"
#include "store/store.h"

namespace hato::store::sqlite {

// The outbound parts of a DeliveryRequest: the queue entry (req.outbound),
// the submission log (req.submitted_by) and DSNs now stored (req.dsn_for).
Status ApplyOutboundParts(Txn& t, const DeliveryRequest& req, DeliveryReceipt& receipt);
Status ApplyOutcomes(Txn& t, const std::vector<RecipientOutcome>& outcomes);
Status ApplyQueueAction(Txn& t, int64_t message_id, QueueAction action);

Result<std::vector<QueuedMessage>> QueryDueOutbound(Db& db, int64_t now, size_t limit);
Result<std::vector<QueuedMessage>> QueryPendingDsn(Db& db, size_t limit);
Result<std::vector<QueuedMessage>> QueryQueue(Db& db);
Result<QueueStats> QueryQueueStats(Db& db);
Result<QueuedMessage> QueryQueued(Db& db, int64_t message_id);
Result<BlobRef> QueryQueuedBlob(Db& db, int64_t message_id);
Result<uint64_t> QueryCountSubmissions(Db& db, int64_t account_id, int64_t since);
// The outcomes of a message that left the queue finished (outbound_finished).
Result<std::vector<QueuedRecipient>> QueryFinishedRecipients(Db& db, int64_t message_id);

// The domain of an address, lower-cased when ASCII.
std::string AddressDomain(std::string_view address);

}  // namespace hato::store::sqlite
