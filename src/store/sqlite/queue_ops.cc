#include "store/sqlite/queue_ops.h"

#include <map>

#include "base/strings.h"
#include "store/sqlite/list_ops.h"

namespace hato::store::sqlite {
namespace {

// Kept this long in submission_log: the longest sending-limit window and a day of slack.
constexpr int64_t kSubmissionLogSeconds = 2 * 86400;

#define HATO_RCPT_COLS                                                                \
  "r.id, r.message_id, r.address, r.domain, r.notify, r.orcpt, r.state, r.attempts, " \
  "r.next_attempt_at, r.last_error, r.dsn_pending, r.delay_warned, r.retry_requests"
#define HATO_MSG_COLS                                                                            \
  "m.id, m.sender, m.envid, m.ret_hdrs, m.smtputf8, m.eight_bit, m.created_at, m.size, m.verp, " \
  "m.list_post_id"
constexpr int kMsgFirst = 13;

QueuedRecipient RecipientFromRow(const Stmt& s) {
  QueuedRecipient r;
  r.id = s.Int(0);
  r.message_id = s.Int(1);
  r.address = s.Text(2);
  r.domain = s.Text(3);
  r.notify = static_cast<unsigned>(s.Int(4));
  r.orcpt = s.Text(5);
  r.state = static_cast<RecipientState>(s.Int(6));
  r.attempts = static_cast<int>(s.Int(7));
  r.next_attempt_at = s.Int(8);
  r.last_error = s.Text(9);
  r.dsn = static_cast<DsnPending>(s.Int(10));
  r.delay_warned = s.Int(11) != 0;
  r.retry_requests = s.Int(12);
  return r;
}

QueuedMessage MessageFromRow(const Stmt& s, int f) {
  QueuedMessage m;
  m.id = s.Int(f);
  m.sender = s.Text(f + 1);
  m.envid = s.Text(f + 2);
  m.ret_hdrs = s.Int(f + 3) != 0;
  m.smtputf8 = s.Int(f + 4) != 0;
  m.eight_bit = s.Int(f + 5) != 0;
  m.created_at = s.Int(f + 6);
  m.size = static_cast<uint64_t>(s.Int(f + 7));
  m.verp = s.Int(f + 8) != 0;
  m.list_post_id = s.Int(f + 9);
  m.bulk = m.list_post_id != 0;
  return m;
}

// Reads rows of HATO_RCPT_COLS, HATO_MSG_COLS and groups them by message in
// the order the messages first appear.
Result<std::vector<QueuedMessage>> Grouped(Stmt& s) {
  std::vector<QueuedMessage> out;
  std::map<int64_t, size_t> index;
  while (true) {
    auto row = s.Step();
    if (!row) return row.error();
    if (!*row) break;
    int64_t mid = s.Int(kMsgFirst);
    auto it = index.find(mid);
    if (it == index.end()) {
      it = index.emplace(mid, out.size()).first;
      out.push_back(MessageFromRow(s, kMsgFirst));
    }
    out[it->second].recipients.push_back(RecipientFromRow(s));
  }
  s.Reset();
  return out;
}

// Removes a message from the queue with its recipients, dropping its body reference.
Status RemoveMessage(Txn& t, int64_t message_id) {
  const char* unref =
      "UPDATE blobs SET refs = refs - 1 WHERE id = (SELECT blob_id FROM outbound_messages "
      "WHERE id = ?)";
  const char* del_r = "DELETE FROM outbound_recipients WHERE message_id = ?";
  const char* del_m = "DELETE FROM outbound_messages WHERE id = ?";
  for (const char* sql : {unref, del_r, del_m}) {
    auto s = t.db.Cached(sql);
    if (!s) return s.error();
    if (auto st = (*s)->Bind(1, message_id).Run(); !st) return st;
  }
  return Ok();
}

// A message leaves the queue once every recipient is final and no DSN is owed.
Status RemoveIfFinished(Txn& t, int64_t message_id) {
  auto s = t.db.Cached(
      "SELECT EXISTS(SELECT 1 FROM outbound_recipients WHERE message_id = ? AND (state IN "
      "(0, 1) OR dsn_pending != 0))");
  if (!s) return s.error();
  auto row = (*s)->Bind(1, message_id).Step();
  if (!row) return row.error();
  int64_t open = (*s)->Int(0);
  (*s)->Reset();
  if (open > 0) return Ok();
  // A list post stays, finished: its rows are the post's delivery report and
  // its body the archive copy (src/lists).
  auto fin = t.db.Cached(
      "UPDATE outbound_messages SET finished_at = ? WHERE id = ? AND list_post_id != 0");
  if (!fin) return fin.error();
  if (auto st = (*fin)->Bind(1, NowSeconds()).Bind(2, message_id).Run(); !st) return st;
  if (t.db.Changes() > 0) return Ok();
  // Its recipients' outcomes stay for JMAP (ListFinishedRecipients).
  auto keep = t.db.Cached(
      "INSERT INTO outbound_finished(message_id, address, state, last_error, attempts, "
      "finished_at) SELECT message_id, address, state, last_error, attempts, ? FROM "
      "outbound_recipients WHERE message_id = ?");
  if (!keep) return keep.error();
  if (auto st = (*keep)->Bind(1, NowSeconds()).Bind(2, message_id).Run(); !st) return st;
  return RemoveMessage(t, message_id);
}

}  // namespace

std::string AddressDomain(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : AsciiLower(address.substr(at + 1));
}

Status ApplyOutboundParts(Txn& t, const DeliveryRequest& req, DeliveryReceipt& receipt) {
  int64_t now = NowSeconds();
  if (req.outbound && !req.outbound->recipients.empty()) {
    const OutboundRequest& o = *req.outbound;
    auto blob = PutBlob(t, o.content, "", 1);
    if (!blob) return blob.error();
    auto m = t.db.Cached(
        "INSERT INTO outbound_messages(blob_id, sender, envid, ret_hdrs, smtputf8, eight_bit, "
        "size, created_at) VALUES(?,?,?,?,?,?,?,?)");
    if (!m) return m.error();
    (*m)->Bind(1, *blob).Bind(2, o.sender).Bind(3, o.envid).Bind(4, int64_t{o.ret_hdrs});
    (*m)->Bind(5, int64_t{o.smtputf8}).Bind(6, int64_t{o.eight_bit});
    (*m)->Bind(7, static_cast<int64_t>(o.content.size()));
    if (auto st = (*m)->Bind(8, req.received_at ? req.received_at : now).Run(); !st) return st;
    receipt.queue_id = t.db.LastInsertId();
    auto r = t.db.Cached(
        "INSERT INTO outbound_recipients(message_id, address, domain, notify, orcpt, "
        "next_attempt_at) VALUES(?,?,?,?,?,?)");
    if (!r) return r.error();
    for (const auto& rcpt : o.recipients) {
      (*r)->Reset();
      (*r)->Bind(1, receipt.queue_id).Bind(2, rcpt.address).Bind(3, AddressDomain(rcpt.address));
      (*r)->Bind(4, int64_t{rcpt.notify}).Bind(5, rcpt.orcpt);
      if (auto st = (*r)->Bind(6, now).Run(); !st) return st;
    }
  }
  if (req.submitted_by != 0) {
    auto log = t.db.Cached("INSERT INTO submission_log(account_id, at) VALUES(?, ?)");
    auto old = t.db.Cached("DELETE FROM submission_log WHERE account_id = ? AND at < ?");
    if (!log) return log.error();
    if (!old) return old.error();
    if (auto st = (*log)->Bind(1, req.submitted_by).Bind(2, now).Run(); !st) return st;
    auto st = (*old)->Bind(1, req.submitted_by).Bind(2, now - kSubmissionLogSeconds).Run();
    if (!st) return st;
  }
  if (!req.dsn_for.empty()) {
    auto clear = t.db.Cached(
        "UPDATE outbound_recipients SET dsn_pending = 0 WHERE id = ? RETURNING message_id");
    if (!clear) return clear.error();
    std::set<int64_t> messages;
    for (int64_t id : req.dsn_for) {
      (*clear)->Reset();
      auto row = (*clear)->Bind(1, id).Step();
      if (!row) return row.error();
      if (*row) messages.insert((*clear)->Int(0));
    }
    (*clear)->Reset();
    for (int64_t mid : messages) {
      if (auto st = RemoveIfFinished(t, mid); !st) return st;
    }
  }
  return Ok();
}

Status ApplyOutcomes(Txn& t, const std::vector<RecipientOutcome>& outcomes) {
  // A deferral keeps the current state (an admin may have held the message
  // meanwhile) and an attempt asked for since its own began (an admin retry
  // or release: retry_requests grew); a final outcome is recorded whatever
  // the state, so that a confirmed 250 is never forgotten.
  auto s = t.db.Cached(
      "UPDATE outbound_recipients SET state = CASE WHEN ?1 = 0 THEN state ELSE ?1 END, "
      "attempts = attempts + ?2, next_attempt_at = CASE WHEN ?1 = 0 AND ?7 >= 0 AND "
      "retry_requests > ?7 THEN next_attempt_at ELSE ?3 END, last_error = ?4, "
      "dsn_pending = CASE WHEN ?5 != 0 THEN ?5 ELSE dsn_pending END, "
      "delay_warned = delay_warned OR (?5 = 2), inflight = 0 "
      "WHERE id = ?6 AND state IN (0, 1) RETURNING message_id");
  if (!s) return s.error();
  std::set<int64_t> messages;
  for (const auto& o : outcomes) {
    (*s)->Reset();
    (*s)->Bind(1, static_cast<int64_t>(o.state)).Bind(2, int64_t{o.counts_attempt});
    (*s)->Bind(3, o.next_attempt_at).Bind(4, o.diagnostic);
    (*s)->Bind(5, static_cast<int64_t>(o.dsn)).Bind(6, o.recipient_id);
    (*s)->Bind(7, o.retry_requests);
    auto row = (*s)->Step();
    if (!row) return row.error();
    if (*row) messages.insert((*s)->Int(0));
  }
  (*s)->Reset();
  if (auto st = ApplyListOutcomeScores(t, outcomes); !st) return st;
  for (int64_t mid : messages) {
    if (auto st = RemoveIfFinished(t, mid); !st) return st;
  }
  return Ok();
}

Status ApplyQueueAction(Txn& t, int64_t message_id, QueueAction action) {
  auto find = t.db.Cached("SELECT 1 FROM outbound_messages WHERE id = ?");
  if (!find) return find.error();
  auto row = (*find)->Bind(1, message_id).Step();
  if (!row) return row.error();
  (*find)->Reset();
  if (!*row) return Err(ErrorKind::kNotFound, "no queued message " + std::to_string(message_id));
  const char* sql = nullptr;
  switch (action) {
    case QueueAction::kRetry:
      sql =
          "UPDATE outbound_recipients SET next_attempt_at = ?, retry_requests = retry_requests + 1 "
          "WHERE message_id = ? AND state = 0";
      break;
    case QueueAction::kHold:
      sql = "UPDATE outbound_recipients SET state = 1 WHERE state = 0 AND ? > 0 AND message_id = ?";
      break;
    case QueueAction::kRelease:
      sql =
          "UPDATE outbound_recipients SET state = 0, next_attempt_at = ?, retry_requests = "
          "retry_requests + 1 WHERE message_id = ? AND state = 1";
      break;
    case QueueAction::kDelete:
      return RemoveMessage(t, message_id);
  }
  auto s = t.db.Cached(sql);
  if (!s) return s.error();
  return (*s)->Bind(1, NowSeconds()).Bind(2, message_id).Run();
}

Result<std::vector<QueuedMessage>> QueryDueOutbound(Db& db, int64_t now, size_t limit) {
  auto s = db.Cached("SELECT " HATO_RCPT_COLS ", " HATO_MSG_COLS
                     " FROM outbound_recipients r JOIN outbound_messages m ON m.id = "
                     "r.message_id WHERE r.state = 0 AND r.next_attempt_at <= ? "
                     "ORDER BY r.bulk, r.next_attempt_at, r.id LIMIT ?");
  if (!s) return s.error();
  (*s)->Bind(1, now).Bind(2, static_cast<int64_t>(limit));
  return Grouped(**s);
}

Result<std::vector<QueuedMessage>> QueryPendingDsn(Db& db, size_t limit) {
  auto s = db.Cached("SELECT " HATO_RCPT_COLS ", " HATO_MSG_COLS
                     // The partial index of owed DSNs: without INDEXED BY the planner
                     // walks every open recipient (outbound_recipients_open), O(queue)
                     // per runner pass during a broadcast.
                     " FROM outbound_recipients r INDEXED BY outbound_recipients_dsn JOIN "
                     "outbound_messages m ON m.id = r.message_id WHERE r.dsn_pending != 0 "
                     "ORDER BY r.message_id, r.id LIMIT ?");
  if (!s) return s.error();
  (*s)->Bind(1, static_cast<int64_t>(limit));
  return Grouped(**s);
}

Result<std::vector<QueuedMessage>> QueryQueue(Db& db) {
  auto s = db.Cached("SELECT " HATO_RCPT_COLS ", " HATO_MSG_COLS
                     " FROM outbound_recipients r JOIN outbound_messages m ON m.id = "
                     "r.message_id WHERE m.finished_at IS NULL ORDER BY m.id, r.id");
  if (!s) return s.error();
  return Grouped(**s);
}

Result<QueueStats> QueryQueueStats(Db& db) {
  // Counts over the partial indexes (state 0 and 1) and the primary key; the
  // oldest message is the lowest id (ids and created_at both only grow).
  auto s = db.Cached(
      "SELECT (SELECT count(*) FROM outbound_messages WHERE finished_at IS NULL), "
      "(SELECT count(*) FROM outbound_recipients WHERE state = 0), "
      "(SELECT count(*) FROM outbound_recipients WHERE state = 1), "
      "(SELECT created_at FROM outbound_messages WHERE finished_at IS NULL ORDER BY id LIMIT 1)");
  if (!s) return s.error();
  auto row = (*s)->Step();
  if (!row) return row.error();
  QueueStats q;
  q.messages = static_cast<uint64_t>((*s)->Int(0));
  q.queued = static_cast<uint64_t>((*s)->Int(1));
  q.held = static_cast<uint64_t>((*s)->Int(2));
  q.oldest_created_at = (*s)->IsNull(3) ? 0 : (*s)->Int(3);
  return q;
}

Result<QueuedMessage> QueryQueued(Db& db, int64_t message_id) {
  auto s = db.Cached("SELECT " HATO_RCPT_COLS ", " HATO_MSG_COLS
                     " FROM outbound_recipients r JOIN outbound_messages m ON m.id = "
                     "r.message_id WHERE m.id = ? ORDER BY r.id");
  if (!s) return s.error();
  (*s)->Bind(1, message_id);
  auto g = Grouped(**s);
  if (!g) return g.error();
  if (g->empty())
    return Err(ErrorKind::kNotFound, "no queued message " + std::to_string(message_id));
  return std::move(g->front());
}

Result<BlobRef> QueryQueuedBlob(Db& db, int64_t message_id) {
  auto s = db.Cached(
      "SELECT b.sha256, b.segment, b.offset, b.stored_length, b.size, b.codec FROM "
      "outbound_messages m JOIN blobs b ON b.id = m.blob_id WHERE m.id = ?");
  if (!s) return s.error();
  auto row = (*s)->Bind(1, message_id).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, "no queued message " + std::to_string(message_id));
  BlobRef ref;
  ref.sha256 = (*s)->Blob(0);
  ref.segment = static_cast<uint32_t>((*s)->Int(1));
  ref.offset = static_cast<uint64_t>((*s)->Int(2));
  ref.stored_length = static_cast<uint64_t>((*s)->Int(3));
  ref.size = static_cast<uint64_t>((*s)->Int(4));
  ref.codec = static_cast<Codec>((*s)->Int(5));
  (*s)->Reset();
  return ref;
}

Result<uint64_t> QueryCountSubmissions(Db& db, int64_t account_id, int64_t since) {
  auto s = db.Cached("SELECT count(*) FROM submission_log WHERE account_id = ? AND at >= ?");
  if (!s) return s.error();
  auto row = (*s)->Bind(1, account_id).Bind(2, since).Step();
  if (!row) return row.error();
  auto n = static_cast<uint64_t>((*s)->Int(0));
  (*s)->Reset();
  return n;
}

Result<std::vector<QueuedRecipient>> QueryFinishedRecipients(Db& db, int64_t message_id) {
  auto s = db.Cached(
      "SELECT address, state, last_error, attempts FROM outbound_finished WHERE message_id = ? "
      "ORDER BY rowid");
  if (!s) return s.error();
  (*s)->Bind(1, message_id);
  std::vector<QueuedRecipient> out;
  auto st = (*s)->ForEachRow([&](Stmt& r) {
    QueuedRecipient q;
    q.message_id = message_id;
    q.address = r.Text(0);
    q.domain = AddressDomain(q.address);
    q.state = static_cast<RecipientState>(r.Int(1));
    q.last_error = r.Text(2);
    q.attempts = static_cast<int>(r.Int(3));
    out.push_back(std::move(q));
  });
  if (!st) return st.error();
  return out;
}

}  // namespace hato::store::sqlite
