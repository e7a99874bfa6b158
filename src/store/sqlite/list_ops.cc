#include "store/sqlite/list_ops.h"

#include <map>
#include <set>

#include "base/strings.h"
#include "lists/fanout.h"
#include "store/sqlite/queue_ops.h"

namespace hato::store::sqlite {
namespace {

// Binds each argument in order (int64_t or string_view).
void BindAll(Stmt&, int) {}
template <typename T, typename... Rest>
void BindAll(Stmt& s, int i, const T& v, const Rest&... rest) {
  if constexpr (std::is_integral_v<T>) {
    s.Bind(i, static_cast<int64_t>(v));
  } else {
    s.Bind(i, std::string_view(v));
  }
  BindAll(s, i + 1, rest...);
}

template <typename... Args>
Status Run(Db& db, const char* sql, const Args&... args) {
  auto s = db.Cached(sql);
  if (!s) return s.error();
  BindAll(**s, 1, args...);
  auto st = (*s)->Run();
  (*s)->Reset();
  return st;
}

Result<int64_t> ListIdOf(Db& db, const std::string& address) {
  auto s = db.Cached("SELECT id FROM lists WHERE address = ? AND removed_at IS NULL");
  if (!s) return s.error();
  auto row = (*s)->Bind(1, address).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, "no such list: " + address);
  int64_t id = (*s)->Int(0);
  (*s)->Reset();
  return id;
}

#define HATO_LIST_COLS                                                                    \
  "l.id, l.address, l.mode, l.name, l.confirm_text, l.welcome_text, l.max_message_size, " \
  "l.max_posts_per_hour, l.bounce_threshold, l.dmarc_rewrite, l.created_at, "             \
  "(SELECT count(*) FROM list_members m WHERE m.list_id = l.id), l.archive_account_id"

ListInfo ListFromRow(const Stmt& s) {
  ListInfo l;
  l.id = s.Int(0);
  l.address = s.Text(1);
  l.mode = static_cast<ListMode>(s.Int(2));
  l.name = s.Text(3);
  l.confirm_text = s.Text(4);
  l.welcome_text = s.Text(5);
  l.max_message_size = static_cast<uint64_t>(s.Int(6));
  l.max_posts_per_hour = static_cast<uint32_t>(s.Int(7));
  l.bounce_threshold = static_cast<uint32_t>(s.Int(8));
  l.dmarc_rewrite = s.Text(9);
  l.created_at = s.Int(10);
  l.members = static_cast<uint64_t>(s.Int(11));
  l.archive_account_id = s.Int(12);
  return l;
}

#define HATO_MEMBER_COLS \
  "address, name, roles, delivery, disabled, bounce_score, last_bounce, joined_at"

ListMember MemberFromRow(const Stmt& s) {
  ListMember m;
  m.address = s.Text(0);
  m.name = s.Text(1);
  m.roles = static_cast<uint32_t>(s.Int(2));
  m.delivery = s.Int(3) != 0;
  m.disabled = s.Int(4) != 0;
  m.bounce_score = static_cast<uint32_t>(s.Int(5));
  m.last_bounce = s.Text(6);
  m.joined_at = s.Int(7);
  return m;
}

}  // namespace

Result<int64_t> EnsureListArchive(Txn& t, int64_t list_id) {
  auto s = t.db.Cached("SELECT archive_account_id, address, domain_id FROM lists WHERE id = ?");
  if (!s) return s.error();
  auto row = (*s)->Bind(1, list_id).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, "no list " + std::to_string(list_id));
  int64_t archive = (*s)->Int(0);
  std::string address = (*s)->Text(1);
  int64_t domain_id = (*s)->Int(2);
  (*s)->Reset();
  if (archive != 0) return archive;
  // Nobody logs in as the archive (kListArchivePasswordHash); members read
  // it through the list (imap/server/archives.h).
  auto st = Run(t.db,
                "INSERT INTO accounts(address, domain_id, password_hash, created_at) "
                "VALUES(?,?,?,?)",
                address + std::string(kListArchiveSuffix) + std::to_string(list_id), domain_id,
                kListArchivePasswordHash, NowSeconds());
  if (!st) return st.error();
  archive = t.db.LastInsertId();
  if (st = ApplyCreateMailbox(t, archive, std::string(kInbox), ""); !st) return st.error();
  st = Run(t.db, "UPDATE lists SET archive_account_id = ? WHERE id = ?", archive, list_id);
  if (!st) return st.error();
  return archive;
}

Status ApplyCreateList(Txn& t, const std::string& address, ListMode mode) {
  std::string domain = AddressDomain(address);
  auto d = t.db.Cached("SELECT id FROM domains WHERE name = ?");
  if (!d) return d.error();
  auto row = (*d)->Bind(1, domain).Step();
  if (!row) return row.error();
  if (!*row) {
    return Err(ErrorKind::kNotFound,
               "domain " + domain + " is not local; add it with: hato domain add " + domain);
  }
  int64_t domain_id = (*d)->Int(0);
  (*d)->Reset();
  auto taken = t.db.Cached(
      "SELECT (SELECT count(*) FROM accounts WHERE address = ?1 AND removed_at IS NULL) + "
      "(SELECT count(*) FROM aliases WHERE address = ?1) + "
      "(SELECT count(*) FROM lists WHERE address = ?1 AND removed_at IS NULL)");
  if (!taken) return taken.error();
  auto trow = (*taken)->Bind(1, address).Step();
  if (!trow) return trow.error();
  int64_t n = (*taken)->Int(0);
  (*taken)->Reset();
  if (n > 0) return Err(ErrorKind::kExists, address + " is already an account, alias or list");
  // A removed list's row keeps its address for its reports; the new one replaces it.
  if (auto st = Run(t.db,
                    "UPDATE lists SET address = address || '#' || id WHERE address = ? "
                    "AND removed_at IS NOT NULL",
                    address);
      !st) {
    return st;
  }
  auto st = Run(t.db, "INSERT INTO lists(address, domain_id, mode, created_at) VALUES(?,?,?,?)",
                address, domain_id, static_cast<int64_t>(mode), NowSeconds());
  if (!st) return st;
  auto archive = EnsureListArchive(t, t.db.LastInsertId());
  if (!archive) return archive.error();
  return Ok();
}

Status ApplyRemoveList(Txn& t, const std::string& address) {
  auto id = ListIdOf(t.db, address);
  if (!id) return id.error();
  int64_t now = NowSeconds();
  // Remaining deliveries are cancelled and stay in the reports as failed.
  if (auto st = Run(t.db,
                    "UPDATE outbound_recipients SET state = 3, last_error = 'list removed', "
                    "inflight = 0 WHERE state IN (0, 1) AND message_id IN (SELECT queue_id FROM "
                    "list_posts WHERE list_id = ?)",
                    *id);
      !st) {
    return st;
  }
  if (auto st = Run(t.db,
                    "UPDATE outbound_messages SET finished_at = ? WHERE finished_at IS NULL AND "
                    "id IN (SELECT queue_id FROM list_posts WHERE list_id = ?)",
                    now, *id);
      !st) {
    return st;
  }
  if (auto st = Run(t.db,
                    "UPDATE blobs SET refs = refs - 1 WHERE id IN (SELECT blob_id FROM list_held "
                    "WHERE list_id = ?)",
                    *id);
      !st) {
    return st;
  }
  for (const char* sql :
       {"DELETE FROM list_held WHERE list_id = ?", "DELETE FROM list_tokens WHERE list_id = ?",
        "DELETE FROM list_members WHERE list_id = ?"}) {
    if (auto st = Run(t.db, sql, *id); !st) return st;
  }
  // The archive goes with the list: its account is removed like any other
  // (in retention until the purge; `hato user list --removed` shows it).
  if (auto st = Run(t.db,
                    "UPDATE accounts SET removed_at = ? WHERE removed_at IS NULL AND id = "
                    "(SELECT archive_account_id FROM lists WHERE id = ?)",
                    now, *id);
      !st) {
    return st;
  }
  return Run(t.db, "UPDATE lists SET removed_at = ? WHERE id = ?", now, *id);
}

Status ApplyUpdateList(Txn& t, const std::string& address, const ListSettings& s) {
  auto id = ListIdOf(t.db, address);
  if (!id) return id.error();
  if (s.mode) {
    auto st =
        Run(t.db, "UPDATE lists SET mode = ? WHERE id = ?", static_cast<int64_t>(*s.mode), *id);
    if (!st) return st;
  }
  auto text = [&](const char* sql, const std::optional<std::string>& v) -> Status {
    return v ? Run(t.db, sql, *v, *id) : Ok();
  };
  auto num = [&](const char* sql, auto v) -> Status {
    return v ? Run(t.db, sql, static_cast<int64_t>(*v), *id) : Ok();
  };
  Status st = text("UPDATE lists SET name = ? WHERE id = ?", s.name);
  if (st) st = text("UPDATE lists SET confirm_text = ? WHERE id = ?", s.confirm_text);
  if (st) st = text("UPDATE lists SET welcome_text = ? WHERE id = ?", s.welcome_text);
  if (st) st = text("UPDATE lists SET dmarc_rewrite = ? WHERE id = ?", s.dmarc_rewrite);
  if (st) st = num("UPDATE lists SET max_message_size = ? WHERE id = ?", s.max_message_size);
  if (st) st = num("UPDATE lists SET max_posts_per_hour = ? WHERE id = ?", s.max_posts_per_hour);
  if (st) st = num("UPDATE lists SET bounce_threshold = ? WHERE id = ?", s.bounce_threshold);
  return st;
}

Status ApplyAddListMembers(Txn& t, int64_t list_id, const std::vector<ListMember>& members,
                           bool update, ListMemberChange& change) {
  change = ListMemberChange{};
  auto ins = t.db.Cached(
      "INSERT INTO list_members(list_id, address, domain, name, roles, delivery, joined_at) "
      "VALUES(?,?,?,?,?,?,?) ON CONFLICT(list_id, address) DO NOTHING");
  if (!ins) return ins.error();
  int64_t now = NowSeconds();
  for (const auto& m : members) {
    (*ins)->Reset();
    BindAll(**ins, 1, list_id, m.address, AddressDomain(m.address), m.name,
            static_cast<int64_t>(m.roles), static_cast<int64_t>(m.delivery), now);
    if (auto st = (*ins)->Run(); !st) return st;
    if (t.db.Changes() > 0) {
      ++change.added;
      continue;
    }
    change.existing.push_back(m.address);
    if (update) {
      // A join confirmed again (or an import with --update): the member's
      // roles are merged, delivery on, and the bounce state cleared.
      auto st = Run(t.db,
                    "UPDATE list_members SET roles = roles | ?, name = CASE WHEN ? = '' THEN name "
                    "ELSE ? END, delivery = 1, disabled = 0, bounce_score = 0 WHERE list_id = ? "
                    "AND address = ?",
                    static_cast<int64_t>(m.roles), m.name, m.name, list_id, m.address);
      if (!st) return st;
      ++change.updated;
    }
  }
  (*ins)->Reset();
  return Ok();
}

Status ApplyRemoveListMember(Txn& t, int64_t list_id, const std::string& address) {
  auto st =
      Run(t.db, "DELETE FROM list_members WHERE list_id = ? AND address = ?", list_id, address);
  if (!st) return st;
  if (t.db.Changes() == 0) return Err(ErrorKind::kNotFound, address + " is not a member");
  return Ok();
}

Status ApplySetMemberDelivery(Txn& t, int64_t list_id, const std::string& address,
                              std::optional<bool> delivery, bool reenable) {
  Status st = Ok();
  if (delivery) {
    st = Run(t.db, "UPDATE list_members SET delivery = ? WHERE list_id = ? AND address = ?",
             static_cast<int64_t>(*delivery), list_id, address);
    if (st && t.db.Changes() == 0) return Err(ErrorKind::kNotFound, address + " is not a member");
  }
  if (st && reenable) {
    st = Run(t.db,
             "UPDATE list_members SET disabled = 0, bounce_score = 0 WHERE list_id = ? AND "
             "address = ?",
             list_id, address);
    if (st && t.db.Changes() == 0) return Err(ErrorKind::kNotFound, address + " is not a member");
  }
  return st;
}

Status ApplyListBounce(Txn& t, int64_t list_id, const std::string& address,
                       const std::string& reason, uint32_t threshold, ListMember& after) {
  if (threshold == 0) threshold = kDefaultBounceThreshold;
  auto st = Run(t.db,
                "UPDATE list_members SET bounce_score = bounce_score + 1, last_bounce = ?, "
                "disabled = CASE WHEN bounce_score + 1 >= ? THEN 1 ELSE disabled END "
                "WHERE list_id = ? AND address = ?",
                reason, static_cast<int64_t>(threshold), list_id, address);
  if (!st) return st;
  if (t.db.Changes() == 0) return Err(ErrorKind::kNotFound, address + " is not a member");
  auto s = t.db.Cached("SELECT " HATO_MEMBER_COLS
                       " FROM list_members WHERE list_id = ? AND address = ?");
  if (!s) return s.error();
  auto row = (*s)->Bind(1, list_id).Bind(2, address).Step();
  if (!row) return row.error();
  if (*row) after = MemberFromRow(**s);
  (*s)->Reset();
  return Ok();
}

Status ApplyCreateListToken(Txn& t, const ListToken& k) {
  return Run(t.db,
             "INSERT INTO list_tokens(token, list_id, kind, address, source, held_id, created_at, "
             "expires_at) VALUES(?,?,?,?,?,?,?,?)",
             k.token, k.list_id, static_cast<int64_t>(k.kind), k.address, k.source, k.held_id,
             k.created_at, k.expires_at);
}

Status ApplyConsumeListToken(Txn& t, const std::string& token, int64_t now, ListToken& out) {
  auto s = t.db.Cached(
      "UPDATE list_tokens SET used_at = ?1 WHERE token = ?2 AND used_at IS NULL AND "
      "expires_at > ?1 RETURNING list_id, kind, address, source, held_id, created_at, expires_at");
  if (!s) return s.error();
  auto row = (*s)->Bind(1, now).Bind(2, token).Step();
  if (!row) return row.error();
  if (!*row) {
    (*s)->Reset();
    return Err(ErrorKind::kNotFound, "unknown, used or expired confirmation token");
  }
  out.token = token;
  out.list_id = (*s)->Int(0);
  out.kind = static_cast<ListTokenKind>((*s)->Int(1));
  out.address = (*s)->Text(2);
  out.source = (*s)->Text(3);
  out.held_id = (*s)->Int(4);
  out.created_at = (*s)->Int(5);
  out.expires_at = (*s)->Int(6);
  (*s)->Reset();
  // Old tokens go: a used or expired one is kept a week (a second reply is
  // answered "already used" meanwhile by its absence, which is the same).
  return Run(t.db, "DELETE FROM list_tokens WHERE expires_at < ?", now - 7 * 86400);
}

Status ApplyHoldListPost(Txn& t, int64_t list_id, const std::string& content,
                         const std::string& sender, const std::string& reason, int64_t& id) {
  auto blob = PutBlob(t, content, "", 1);
  if (!blob) return blob.error();
  auto st = Run(t.db,
                "INSERT INTO list_held(list_id, blob_id, sender, reason, created_at) "
                "VALUES(?,?,?,?,?)",
                list_id, *blob, sender, reason, NowSeconds());
  if (!st) return st;
  id = t.db.LastInsertId();
  return Ok();
}

Status ApplyDropHeldPost(Txn& t, int64_t held_id) {
  auto st = Run(t.db,
                "UPDATE blobs SET refs = refs - 1 WHERE id = (SELECT blob_id FROM list_held "
                "WHERE id = ?)",
                held_id);
  if (!st) return st;
  st = Run(t.db, "DELETE FROM list_held WHERE id = ?", held_id);
  if (!st) return st;
  if (t.db.Changes() == 0)
    return Err(ErrorKind::kNotFound, "no held post " + std::to_string(held_id));
  return Run(t.db, "DELETE FROM list_tokens WHERE held_id = ?", held_id);
}

Status ApplyPostToList(Txn& t, const ListPostRequest& req, ListPostReceipt& receipt) {
  int64_t now = NowSeconds();
  if (req.held_id != 0) {
    // An approved post: the held copy goes in the same transaction, so a
    // second approval finds nothing to send.
    if (auto st = ApplyDropHeldPost(t, req.held_id); !st) return st;
  }
  // The archive copy (issue 14 item 7) in the same transaction: the post is
  // readable by the members once the poster has its 250. Same content, so
  // the queue entry below shares its blob.
  auto archive = EnsureListArchive(t, req.list_id);
  if (!archive) return archive.error();
  DeliveryRequest copy;
  copy.return_path = req.sender;
  copy.account_ids.push_back(*archive);
  copy.content = req.content;
  copy.mime = req.mime;
  copy.received_at = now;
  DeliveryReceipt stored;
  if (auto st = ApplyDelivery(t, copy, stored); !st) return st;
  auto blob = PutBlob(t, req.content, req.mime, 1);
  if (!blob) return blob.error();
  auto st = Run(t.db,
                "INSERT INTO outbound_messages(blob_id, sender, envid, smtputf8, eight_bit, size, "
                "created_at, verp) VALUES(?,?,'',?,?,?,?,1)",
                *blob, req.bounce_address, static_cast<int64_t>(req.smtputf8),
                static_cast<int64_t>(req.eight_bit), static_cast<int64_t>(req.content.size()), now);
  if (!st) return st;
  receipt.queue_id = t.db.LastInsertId();
  st = Run(t.db,
           "INSERT INTO list_posts(list_id, queue_id, sender, subject, recipients, created_at) "
           "VALUES(?,?,?,?,0,?)",
           req.list_id, receipt.queue_id, req.sender, req.subject, now);
  if (!st) return st;
  receipt.post_id = t.db.LastInsertId();
  // The post's ENVID names it, so a later DSN (RFC 3464 Original-Envelope-Id)
  // finds its report line.
  st = Run(t.db, "UPDATE outbound_messages SET list_post_id = ?, envid = ? WHERE id = ?",
           receipt.post_id, "post-" + std::to_string(receipt.post_id), receipt.queue_id);
  if (!st) return st;
  // One row per receiving member, domains interleaved in runs of
  // lists::kFanOutRun members (every domain's k-th run before the k+1-th of
  // any), so that the runner's scans find work for many destinations at
  // once and send each run over one connection.
  st = Run(t.db,
           "INSERT INTO outbound_recipients(message_id, address, domain, next_attempt_at, bulk) "
           "SELECT ?1, address, domain, ?2, 1 FROM (SELECT address, domain, row_number() OVER "
           "(PARTITION BY domain ORDER BY id) AS n FROM list_members WHERE list_id = ?3 AND "
           "(roles & 1) != 0 AND delivery = 1 AND disabled = 0) ORDER BY (n - 1) / ?4, domain, n",
           receipt.queue_id, now, req.list_id, lists::kFanOutRun);
  if (!st) return st;
  receipt.recipients = static_cast<uint64_t>(t.db.Changes());
  st = Run(t.db, "UPDATE list_posts SET recipients = ? WHERE id = ?",
           static_cast<int64_t>(receipt.recipients), receipt.post_id);
  if (!st) return st;
  if (receipt.recipients == 0) {
    st = Run(t.db, "UPDATE outbound_messages SET finished_at = ? WHERE id = ?", now,
             receipt.queue_id);
  }
  return st;
}

Status ApplyListPostFailure(Txn& t, int64_t post_id, const std::string& address,
                            const std::string& reason) {
  return Run(t.db,
             "UPDATE outbound_recipients SET state = 3, last_error = ? WHERE address = ? AND "
             "message_id = (SELECT queue_id FROM list_posts WHERE id = ?)",
             reason, address, post_id);
}

Status ApplyMarkInFlight(Txn& t, const std::vector<int64_t>& ids, std::vector<int64_t>& marked) {
  marked.clear();
  for (int64_t id : ids) {
    auto st =
        Run(t.db, "UPDATE outbound_recipients SET inflight = 1 WHERE id = ? AND state = 0", id);
    if (!st) return st;
    if (t.db.Changes() > 0) marked.push_back(id);
  }
  return Ok();
}

Status ApplyResolveInFlight(Txn& t, uint64_t& failed) {
  auto st = Run(t.db,
                "UPDATE outbound_recipients SET state = 3, inflight = 0, attempts = attempts + 1, "
                "last_error = 'outcome unknown: the server stopped while delivering (not sent "
                "again, to avoid a duplicate)' WHERE inflight != 0 AND state IN (0, 1)");
  if (!st) return st;
  failed = static_cast<uint64_t>(t.db.Changes());
  st = Run(t.db, "UPDATE outbound_recipients SET inflight = 0 WHERE inflight != 0");
  if (!st) return st;
  // Posts whose every recipient is now final are finished.
  return Run(t.db,
             "UPDATE outbound_messages SET finished_at = ? WHERE finished_at IS NULL AND "
             "list_post_id != 0 AND NOT EXISTS (SELECT 1 FROM outbound_recipients r WHERE "
             "r.message_id = outbound_messages.id AND r.state IN (0, 1))",
             NowSeconds());
}

Status ApplyListOutcomeScores(Txn& t, const std::vector<RecipientOutcome>& outcomes) {
  auto who = t.db.Cached(
      "SELECT p.list_id, r.address, l.bounce_threshold FROM outbound_recipients r JOIN "
      "outbound_messages m ON m.id = r.message_id JOIN list_posts p ON p.id = m.list_post_id "
      "JOIN lists l ON l.id = p.list_id WHERE r.id = ?");
  if (!who) return who.error();
  for (const auto& o : outcomes) {
    if (o.state != RecipientState::kDelivered && o.state != RecipientState::kFailed) continue;
    (*who)->Reset();
    auto row = (*who)->Bind(1, o.recipient_id).Step();
    if (!row) return row.error();
    if (!*row) continue;  // not a list post
    int64_t list_id = (*who)->Int(0);
    std::string address = (*who)->Text(1);
    auto threshold = static_cast<uint32_t>((*who)->Int(2));
    (*who)->Reset();
    if (o.state == RecipientState::kDelivered) {
      auto st = Run(t.db,
                    "UPDATE list_members SET bounce_score = 0, disabled = 0 WHERE list_id = ? AND "
                    "address = ? AND (bounce_score != 0 OR disabled != 0)",
                    list_id, address);
      if (!st) return st;
    } else {
      ListMember after;
      auto st = ApplyListBounce(t, list_id, address, o.diagnostic, threshold, after);
      if (!st && st.error().kind != ErrorKind::kNotFound) return st;
    }
  }
  (*who)->Reset();
  return Ok();
}

Result<std::vector<ListInfo>> QueryLists(Db& db) {
  auto s = db.Cached("SELECT " HATO_LIST_COLS
                     " FROM lists l WHERE l.removed_at IS NULL ORDER BY l.address");
  if (!s) return s.error();
  std::vector<ListInfo> out;
  auto st = (*s)->ForEachRow([&](Stmt& r) { out.push_back(ListFromRow(r)); });
  (*s)->Reset();
  if (!st) return st.error();
  return out;
}

Result<std::vector<ListInfo>> QueryMemberLists(Db& db, const std::string& address) {
  auto s = db.Cached("SELECT " HATO_LIST_COLS
                     " FROM lists l JOIN list_members m ON m.list_id = l.id WHERE m.address = ? "
                     "AND l.removed_at IS NULL ORDER BY l.address");
  if (!s) return s.error();
  (*s)->Bind(1, address);
  std::vector<ListInfo> out;
  auto st = (*s)->ForEachRow([&](Stmt& r) { out.push_back(ListFromRow(r)); });
  (*s)->Reset();
  if (!st) return st.error();
  return out;
}

Result<ListInfo> QueryList(Db& db, const std::string& address) {
  auto s = db.Cached("SELECT " HATO_LIST_COLS
                     " FROM lists l WHERE l.address = ? AND l.removed_at IS NULL");
  if (!s) return s.error();
  auto row = (*s)->Bind(1, address).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, "no such list: " + address);
  ListInfo l = ListFromRow(**s);
  (*s)->Reset();
  return l;
}

Result<std::vector<ListMember>> QueryListMembers(Db& db, int64_t list_id) {
  auto s =
      db.Cached("SELECT " HATO_MEMBER_COLS " FROM list_members WHERE list_id = ? ORDER BY address");
  if (!s) return s.error();
  (*s)->Bind(1, list_id);
  std::vector<ListMember> out;
  auto st = (*s)->ForEachRow([&](Stmt& r) { out.push_back(MemberFromRow(r)); });
  (*s)->Reset();
  if (!st) return st.error();
  return out;
}

Result<ListMember> QueryListMember(Db& db, int64_t list_id, const std::string& address) {
  auto s =
      db.Cached("SELECT " HATO_MEMBER_COLS " FROM list_members WHERE list_id = ? AND address = ?");
  if (!s) return s.error();
  auto row = (*s)->Bind(1, list_id).Bind(2, address).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, address + " is not a member");
  ListMember m = MemberFromRow(**s);
  (*s)->Reset();
  return m;
}

Result<uint64_t> QueryCountListTokens(Db& db, int64_t list_id, const std::string& address,
                                      const std::string& source, int64_t since) {
  auto s = db.Cached(
      "SELECT count(*) FROM list_tokens WHERE list_id = ?1 AND created_at >= ?4 AND "
      "((?2 != '' AND address = ?2) OR (?3 != '' AND source = ?3))");
  if (!s) return s.error();
  BindAll(**s, 1, list_id, address, source, since);
  auto row = (*s)->Step();
  if (!row) return row.error();
  auto n = static_cast<uint64_t>((*s)->Int(0));
  (*s)->Reset();
  return n;
}

Result<std::vector<HeldPost>> QueryHeldPosts(Db& db, int64_t list_id) {
  auto s = db.Cached(
      "SELECT h.id, h.list_id, h.sender, h.reason, h.created_at, b.size FROM list_held h JOIN "
      "blobs b ON b.id = h.blob_id WHERE h.list_id = ? ORDER BY h.id");
  if (!s) return s.error();
  (*s)->Bind(1, list_id);
  std::vector<HeldPost> out;
  auto st = (*s)->ForEachRow([&](Stmt& r) {
    out.push_back(HeldPost{r.Int(0), r.Int(1), r.Text(2), r.Text(3), r.Int(4),
                           static_cast<uint64_t>(r.Int(5))});
  });
  (*s)->Reset();
  if (!st) return st.error();
  return out;
}

Result<BlobRef> QueryHeldBlob(Db& db, int64_t held_id) {
  auto s = db.Cached(
      "SELECT b.sha256, b.segment, b.offset, b.stored_length, b.size, b.codec FROM list_held h "
      "JOIN blobs b ON b.id = h.blob_id WHERE h.id = ?");
  if (!s) return s.error();
  auto row = (*s)->Bind(1, held_id).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, "no held post " + std::to_string(held_id));
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

Result<std::vector<ListPostInfo>> QueryListPosts(Db& db, int64_t list_id) {
  auto s = db.Cached(
      "SELECT id, queue_id, sender, subject, recipients, created_at FROM list_posts WHERE "
      "list_id = ? ORDER BY id");
  if (!s) return s.error();
  (*s)->Bind(1, list_id);
  std::vector<ListPostInfo> out;
  auto st = (*s)->ForEachRow([&](Stmt& r) {
    out.push_back(ListPostInfo{r.Int(0), r.Int(1), r.Text(2), r.Text(3),
                               static_cast<uint64_t>(r.Int(4)), r.Int(5)});
  });
  (*s)->Reset();
  if (!st) return st.error();
  return out;
}

Result<uint64_t> QueryCountListPosts(Db& db, int64_t list_id, int64_t since) {
  auto s = db.Cached("SELECT count(*) FROM list_posts WHERE list_id = ? AND created_at >= ?");
  if (!s) return s.error();
  auto row = (*s)->Bind(1, list_id).Bind(2, since).Step();
  if (!row) return row.error();
  auto n = static_cast<uint64_t>((*s)->Int(0));
  (*s)->Reset();
  return n;
}

Result<ListReport> QueryListReport(Db& db, int64_t list_id, int64_t post_id) {
  auto p = db.Cached(
      "SELECT id, queue_id, sender, subject, recipients, created_at FROM list_posts WHERE "
      "list_id = ?1 AND (?2 = 0 OR id = ?2) ORDER BY id DESC LIMIT 1");
  if (!p) return p.error();
  auto row = (*p)->Bind(1, list_id).Bind(2, post_id).Step();
  if (!row) return row.error();
  if (!*row) {
    return Err(ErrorKind::kNotFound,
               post_id ? "no post " + std::to_string(post_id) + " in this list" : "no posts yet");
  }
  ListReport rep;
  rep.post = ListPostInfo{
      (*p)->Int(0), (*p)->Int(1), (*p)->Text(2), (*p)->Text(3), static_cast<uint64_t>((*p)->Int(4)),
      (*p)->Int(5)};
  (*p)->Reset();
  auto s = db.Cached(
      "SELECT domain, state, attempts > 0, last_error, address FROM outbound_recipients WHERE "
      "message_id = ? ORDER BY domain, state, last_error, address");
  if (!s) return s.error();
  (*s)->Bind(1, rep.post.queue_id);
  auto st = (*s)->ForEachRow([&](Stmt& r) {
    std::string domain = r.Text(0);
    auto state = static_cast<RecipientState>(r.Int(1));
    if (state == RecipientState::kHeld) state = RecipientState::kQueued;
    bool attempted = r.Int(2) != 0;
    std::string reason = state == RecipientState::kDelivered ? "" : r.Text(3);
    if (rep.lines.empty() || rep.lines.back().domain != domain || rep.lines.back().state != state ||
        rep.lines.back().reason != reason || rep.lines.back().attempted != attempted) {
      rep.lines.push_back(ListReportLine{domain, state, attempted, reason, 0, {}});
    }
    ListReportLine& line = rep.lines.back();
    ++line.count;
    if (state != RecipientState::kDelivered && line.addresses.size() < kReportAddresses) {
      line.addresses.push_back(r.Text(4));
    }
  });
  (*s)->Reset();
  if (!st) return st.error();
  return rep;
}

}  // namespace hato::store::sqlite
