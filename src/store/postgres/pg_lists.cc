#include "store/postgres/pg_lists.h"

#include "base/strings.h"
#include "lists/fanout.h"

namespace hato::store::pg {
namespace {

std::string DomainOf(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : AsciiLower(address.substr(at + 1));
}

Status Run(Txn& t, const char* sql, const std::vector<Param>& params) {
  auto r = t.c.Exec(sql, params);
  if (!r) return r.error();
  return Ok();
}

Result<int64_t> ListIdOf(Conn& c, const std::string& address) {
  auto r = c.Exec("SELECT id FROM lists WHERE address = $1 AND removed_at IS NULL", {P(address)});
  if (!r) return r.error();
  if (r->empty()) return Err(ErrorKind::kNotFound, "no such list: " + address);
  return r->Int(0, 0);
}

#define HATO_LIST_COLS                                                                    \
  "l.id, l.address, l.mode, l.name, l.confirm_text, l.welcome_text, l.max_message_size, " \
  "l.max_posts_per_hour, l.bounce_threshold, l.dmarc_rewrite, l.created_at, "             \
  "(SELECT count(*) FROM list_members m WHERE m.list_id = l.id), l.archive_account_id"

ListInfo ListFromRow(const Rows& r, int i) {
  ListInfo l;
  l.id = r.Int(i, 0);
  l.address = r.Text(i, 1);
  l.mode = static_cast<ListMode>(r.Int(i, 2));
  l.name = r.Text(i, 3);
  l.confirm_text = r.Text(i, 4);
  l.welcome_text = r.Text(i, 5);
  l.max_message_size = static_cast<uint64_t>(r.Int(i, 6));
  l.max_posts_per_hour = static_cast<uint32_t>(r.Int(i, 7));
  l.bounce_threshold = static_cast<uint32_t>(r.Int(i, 8));
  l.dmarc_rewrite = r.Text(i, 9);
  l.created_at = r.Int(i, 10);
  l.members = static_cast<uint64_t>(r.Int(i, 11));
  l.archive_account_id = r.Int(i, 12);
  return l;
}

#define HATO_MEMBER_COLS \
  "address, name, roles, delivery, disabled, bounce_score, last_bounce, joined_at"

ListMember MemberFromRow(const Rows& r, int i) {
  ListMember m;
  m.address = r.Text(i, 0);
  m.name = r.Text(i, 1);
  m.roles = static_cast<uint32_t>(r.Int(i, 2));
  m.delivery = r.Int(i, 3) != 0;
  m.disabled = r.Int(i, 4) != 0;
  m.bounce_score = static_cast<uint32_t>(r.Int(i, 5));
  m.last_bounce = r.Text(i, 6);
  m.joined_at = r.Int(i, 7);
  return m;
}

ListPostInfo PostFromRow(const Rows& r, int i) {
  return ListPostInfo{
      r.Int(i, 0), r.Int(i, 1), r.Text(i, 2), r.Text(i, 3), static_cast<uint64_t>(r.Int(i, 4)),
      r.Int(i, 5)};
}

}  // namespace

Result<int64_t> EnsureListArchive(Txn& t, int64_t list_id) {
  auto r = t.c.Exec("SELECT archive_account_id, address, domain_id FROM lists WHERE id = $1",
                    {P(list_id)});
  if (!r) return r.error();
  if (r->empty()) return Err(ErrorKind::kNotFound, "no list " + std::to_string(list_id));
  if (r->Int(0, 0) != 0) return r->Int(0, 0);
  // No password verifies kListArchivePasswordHash. In a sharded store the account lives on main,
  // with the lists (no directory row).
  auto a = t.c.Exec(
      "INSERT INTO accounts(address, domain_id, password_hash, created_at) "
      "VALUES($1,$2,$3,$4) RETURNING id",
      {P(r->Text(0, 1) + std::string(kListArchiveSuffix) + std::to_string(list_id)),
       P(r->Int(0, 2)), P(std::string(kListArchivePasswordHash)), P(NowSeconds())});
  if (!a) return a.error();
  int64_t archive = a->Int(0, 0);
  if (auto st = ApplyCreateMailbox(t, archive, std::string(kInbox), ""); !st) return st.error();
  if (auto st = Run(t, "UPDATE lists SET archive_account_id = $1 WHERE id = $2",
                    {P(archive), P(list_id)});
      !st) {
    return st.error();
  }
  return archive;
}

Status ApplyCreateList(Txn& t, const std::string& address, ListMode mode) {
  std::string domain = DomainOf(address);
  auto d = t.c.Exec("SELECT id FROM domains WHERE name = $1", {P(domain)});
  if (!d) return d.error();
  if (d->empty()) {
    return Err(ErrorKind::kNotFound,
               "domain " + domain + " is not local; add it with: hato domain add " + domain);
  }
  int64_t domain_id = d->Int(0, 0);
  auto taken = t.c.Exec(
      "SELECT (SELECT count(*) FROM accounts WHERE address = $1 AND removed_at IS NULL) + "
      "(SELECT count(*) FROM aliases WHERE address = $1) + "
      "(SELECT count(*) FROM lists WHERE address = $1 AND removed_at IS NULL)",
      {P(address)});
  if (!taken) return taken.error();
  if (taken->Int(0, 0) > 0) {
    return Err(ErrorKind::kExists, address + " is already an account, alias or list");
  }
  // A removed list's row keeps its address for its reports; the new one replaces it.
  if (auto st = Run(t,
                    "UPDATE lists SET address = address || '#' || id WHERE address = $1 "
                    "AND removed_at IS NOT NULL",
                    {P(address)});
      !st) {
    return st;
  }
  auto l = t.c.Exec(
      "INSERT INTO lists(address, domain_id, mode, created_at) VALUES($1,$2,$3,$4) RETURNING id",
      {P(address), P(domain_id), P(static_cast<int64_t>(mode)), P(NowSeconds())});
  if (!l) return l.error();
  auto archive = EnsureListArchive(t, l->Int(0, 0));
  if (!archive) return archive.error();
  return Ok();
}

Status ApplyRemoveList(Txn& t, const std::string& address) {
  auto id = ListIdOf(t.c, address);
  if (!id) return id.error();
  int64_t now = NowSeconds();
  // Remaining deliveries are cancelled and stay in the reports as failed.
  const char* steps[] = {
      "UPDATE outbound_recipients SET state = 3, last_error = 'list removed', inflight = 0 "
      "WHERE state IN (0, 1) AND message_id IN (SELECT queue_id FROM list_posts WHERE list_id "
      "= $1)",
      "UPDATE blobs SET refs = refs - 1 WHERE id IN (SELECT blob_id FROM list_held WHERE "
      "list_id = $1)",
      "DELETE FROM list_held WHERE list_id = $1",
      "DELETE FROM list_tokens WHERE list_id = $1",
      "DELETE FROM list_members WHERE list_id = $1",
  };
  for (const char* sql : steps) {
    if (auto st = Run(t, sql, {P(*id)}); !st) return st;
  }
  if (auto st = Run(t,
                    "UPDATE outbound_messages SET finished_at = $1 WHERE finished_at IS NULL AND "
                    "id IN (SELECT queue_id FROM list_posts WHERE list_id = $2)",
                    {P(now), P(*id)});
      !st) {
    return st;
  }
  // The archive goes with the list: its account is removed like any other
  // (in retention until the purge; `hato user list --removed` shows it).
  if (auto st = Run(t,
                    "UPDATE accounts SET removed_at = $1 WHERE removed_at IS NULL AND id = "
                    "(SELECT archive_account_id FROM lists WHERE id = $2)",
                    {P(now), P(*id)});
      !st) {
    return st;
  }
  return Run(t, "UPDATE lists SET removed_at = $1 WHERE id = $2", {P(now), P(*id)});
}

Status ApplyUpdateList(Txn& t, const std::string& address, const ListSettings& s) {
  auto id = ListIdOf(t.c, address);
  if (!id) return id.error();
  Status st = Ok();
  auto text = [&](const char* sql, const std::optional<std::string>& v) {
    if (st && v) st = Run(t, sql, {P(*v), P(*id)});
  };
  auto num = [&](const char* sql, auto v) {
    if (st && v) st = Run(t, sql, {P(static_cast<int64_t>(*v)), P(*id)});
  };
  num("UPDATE lists SET mode = $1 WHERE id = $2",
      s.mode ? std::optional<int64_t>(static_cast<int64_t>(*s.mode)) : std::nullopt);
  text("UPDATE lists SET name = $1 WHERE id = $2", s.name);
  text("UPDATE lists SET confirm_text = $1 WHERE id = $2", s.confirm_text);
  text("UPDATE lists SET welcome_text = $1 WHERE id = $2", s.welcome_text);
  text("UPDATE lists SET dmarc_rewrite = $1 WHERE id = $2", s.dmarc_rewrite);
  num("UPDATE lists SET max_message_size = $1 WHERE id = $2", s.max_message_size);
  num("UPDATE lists SET max_posts_per_hour = $1 WHERE id = $2", s.max_posts_per_hour);
  num("UPDATE lists SET bounce_threshold = $1 WHERE id = $2", s.bounce_threshold);
  return st;
}

Status ApplyAddListMembers(Txn& t, int64_t list_id, const std::vector<ListMember>& members,
                           bool update, ListMemberChange& change) {
  change = ListMemberChange{};
  int64_t now = NowSeconds();
  for (const auto& m : members) {
    auto r = t.c.Exec(
        "INSERT INTO list_members(list_id, address, domain, name, roles, delivery, joined_at) "
        "VALUES($1,$2,$3,$4,$5,$6,$7) ON CONFLICT(list_id, address) DO NOTHING",
        {P(list_id), P(m.address), P(DomainOf(m.address)), P(m.name),
         P(static_cast<int64_t>(m.roles)), P(static_cast<int64_t>(m.delivery)), P(now)});
    if (!r) return r.error();
    if (r->Affected() > 0) {
      ++change.added;
      continue;
    }
    change.existing.push_back(m.address);
    if (update) {
      // A join confirmed again (or an import with --update): roles merged,
      // delivery on, the bounce state cleared.
      auto st = Run(t,
                    "UPDATE list_members SET roles = roles | $1::int, name = CASE WHEN $2 = '' "
                    "THEN name ELSE $2 END, delivery = 1, disabled = 0, bounce_score = 0 WHERE "
                    "list_id = $3 AND address = $4",
                    {P(static_cast<int64_t>(m.roles)), P(m.name), P(list_id), P(m.address)});
      if (!st) return st;
      ++change.updated;
    }
  }
  return Ok();
}

Status ApplyRemoveListMember(Txn& t, int64_t list_id, const std::string& address) {
  auto r = t.c.Exec("DELETE FROM list_members WHERE list_id = $1 AND address = $2",
                    {P(list_id), P(address)});
  if (!r) return r.error();
  if (r->Affected() == 0) return Err(ErrorKind::kNotFound, address + " is not a member");
  return Ok();
}

Status ApplySetMemberDelivery(Txn& t, int64_t list_id, const std::string& address,
                              std::optional<bool> delivery, bool reenable) {
  if (delivery) {
    auto r = t.c.Exec("UPDATE list_members SET delivery = $1 WHERE list_id = $2 AND address = $3",
                      {P(static_cast<int64_t>(*delivery)), P(list_id), P(address)});
    if (!r) return r.error();
    if (r->Affected() == 0) return Err(ErrorKind::kNotFound, address + " is not a member");
  }
  if (reenable) {
    auto r = t.c.Exec(
        "UPDATE list_members SET disabled = 0, bounce_score = 0 WHERE list_id = $1 AND "
        "address = $2",
        {P(list_id), P(address)});
    if (!r) return r.error();
    if (r->Affected() == 0) return Err(ErrorKind::kNotFound, address + " is not a member");
  }
  return Ok();
}

Status ApplyListBounce(Txn& t, int64_t list_id, const std::string& address,
                       const std::string& reason, uint32_t threshold, ListMember& after) {
  if (threshold == 0) threshold = kDefaultListBounceThreshold;
  auto r = t.c.Exec(
      "UPDATE list_members SET bounce_score = bounce_score + 1, last_bounce = $1, "
      "disabled = CASE WHEN bounce_score + 1 >= $2::int THEN 1 ELSE disabled END "
      "WHERE list_id = $3 AND address = $4 RETURNING " HATO_MEMBER_COLS,
      {P(reason), P(static_cast<int64_t>(threshold)), P(list_id), P(address)});
  if (!r) return r.error();
  if (r->empty()) return Err(ErrorKind::kNotFound, address + " is not a member");
  after = MemberFromRow(*r, 0);
  return Ok();
}

Status ApplyCreateListToken(Txn& t, const ListToken& k) {
  return Run(t,
             "INSERT INTO list_tokens(token, list_id, kind, address, source, held_id, created_at, "
             "expires_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8)",
             {P(k.token), P(k.list_id), P(static_cast<int64_t>(k.kind)), P(k.address), P(k.source),
              P(k.held_id), P(k.created_at), P(k.expires_at)});
}

Status ApplyConsumeListToken(Txn& t, const std::string& token, int64_t now, ListToken& out) {
  auto r = t.c.Exec(
      "UPDATE list_tokens SET used_at = $1 WHERE token = $2 AND used_at IS NULL AND "
      "expires_at > $1 RETURNING list_id, kind, address, source, held_id, created_at, "
      "expires_at",
      {P(now), P(token)});
  if (!r) return r.error();
  if (r->empty()) return Err(ErrorKind::kNotFound, "unknown, used or expired confirmation token");
  out.token = token;
  out.list_id = r->Int(0, 0);
  out.kind = static_cast<ListTokenKind>(r->Int(0, 1));
  out.address = r->Text(0, 2);
  out.source = r->Text(0, 3);
  out.held_id = r->Int(0, 4);
  out.created_at = r->Int(0, 5);
  out.expires_at = r->Int(0, 6);
  // Old tokens go after a week.
  return Run(t, "DELETE FROM list_tokens WHERE expires_at < $1", {P(now - 7 * 86400)});
}

Status ApplyHoldListPost(Txn& t, int64_t list_id, const std::string& content,
                         const std::string& sender, const std::string& reason, int64_t& id) {
  auto blob = PutBlob(t, content, "", 1);
  if (!blob) return blob.error();
  auto r = t.c.Exec(
      "INSERT INTO list_held(list_id, blob_id, sender, reason, created_at) "
      "VALUES($1,$2,$3,$4,$5) RETURNING id",
      {P(list_id), P(*blob), P(sender), P(reason), P(NowSeconds())});
  if (!r) return r.error();
  id = r->Int(0, 0);
  return Ok();
}

Status ApplyDropHeldPost(Txn& t, int64_t held_id) {
  auto st = Run(t,
                "UPDATE blobs SET refs = refs - 1 WHERE id = (SELECT blob_id FROM list_held "
                "WHERE id = $1)",
                {P(held_id)});
  if (!st) return st;
  auto r = t.c.Exec("DELETE FROM list_held WHERE id = $1", {P(held_id)});
  if (!r) return r.error();
  if (r->Affected() == 0) {
    return Err(ErrorKind::kNotFound, "no held post " + std::to_string(held_id));
  }
  return Run(t, "DELETE FROM list_tokens WHERE held_id = $1", {P(held_id)});
}

Status ApplyPostToList(Txn& t, const ListPostRequest& req, ListPostReceipt& receipt) {
  int64_t now = NowSeconds();
  if (req.held_id != 0) {
    // An approved post: the held copy goes in the same transaction.
    if (auto st = ApplyDropHeldPost(t, req.held_id); !st) return st;
  }
  // The archive copy (issue 14 item 7) in the same transaction (see the
  // SQLite backend); the queue entry shares its body.
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
  auto m = t.c.Exec(
      "INSERT INTO outbound_messages(blob_id, sender, envid, smtputf8, eight_bit, size, "
      "created_at, verp) VALUES($1,$2,'',$3,$4,$5,$6,1) RETURNING id",
      {P(*blob), P(req.bounce_address), P(static_cast<int64_t>(req.smtputf8)),
       P(static_cast<int64_t>(req.eight_bit)), P(static_cast<int64_t>(req.content.size())),
       P(now)});
  if (!m) return m.error();
  receipt.queue_id = m->Int(0, 0);
  auto p = t.c.Exec(
      "INSERT INTO list_posts(list_id, queue_id, sender, subject, recipients, created_at) "
      "VALUES($1,$2,$3,$4,0,$5) RETURNING id",
      {P(req.list_id), P(receipt.queue_id), P(req.sender), P(req.subject), P(now)});
  if (!p) return p.error();
  receipt.post_id = p->Int(0, 0);
  // The post's ENVID names it (a later DSN's Original-Envelope-Id).
  auto st =
      Run(t, "UPDATE outbound_messages SET list_post_id = $1, envid = $2 WHERE id = $3",
          {P(receipt.post_id), P(std::string("post-").append(std::to_string(receipt.post_id))),
           P(receipt.queue_id)});
  if (!st) return st;
  // One row per receiving member, domains interleaved in runs of
  // lists::kFanOutRun members (every domain's k-th run before the k+1-th of
  // any): the runner sends each run over one connection.
  auto r = t.c.Exec(
      "INSERT INTO outbound_recipients(message_id, address, domain, next_attempt_at, bulk) "
      "SELECT $1, address, domain, $2, 1 FROM (SELECT id, address, domain, row_number() OVER "
      "(PARTITION BY domain ORDER BY id) AS n FROM list_members WHERE list_id = $3 AND "
      "(roles & 1) != 0 AND delivery = 1 AND disabled = 0) x ORDER BY (n - 1) / $4, domain, n",
      {P(receipt.queue_id), P(now), P(req.list_id), P(lists::kFanOutRun)});
  if (!r) return r.error();
  receipt.recipients = static_cast<uint64_t>(r->Affected());
  st = Run(t, "UPDATE list_posts SET recipients = $1 WHERE id = $2",
           {P(static_cast<int64_t>(receipt.recipients)), P(receipt.post_id)});
  if (!st) return st;
  if (receipt.recipients == 0) {
    st = Run(t, "UPDATE outbound_messages SET finished_at = $1 WHERE id = $2",
             {P(now), P(receipt.queue_id)});
  }
  return st;
}

Status ApplyListPostFailure(Txn& t, int64_t post_id, const std::string& address,
                            const std::string& reason) {
  return Run(t,
             "UPDATE outbound_recipients SET state = 3, last_error = $1 WHERE address = $2 AND "
             "message_id = (SELECT queue_id FROM list_posts WHERE id = $3)",
             {P(reason), P(address), P(post_id)});
}

Status ApplyMarkInFlight(Txn& t, const std::vector<int64_t>& ids, std::vector<int64_t>& marked) {
  marked.clear();
  if (ids.empty()) return Ok();
  std::string array = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) array += ',';
    array += std::to_string(ids[i]);
  }
  array += "}";
  auto r = t.c.Exec(
      "UPDATE outbound_recipients SET inflight = 1 WHERE id = ANY($1::bigint[]) AND state = 0 "
      "RETURNING id",
      {P(array)});
  if (!r) return r.error();
  for (int i = 0; i < static_cast<int>(r->size()); ++i) marked.push_back(r->Int(i, 0));
  return Ok();
}

Status ApplyResolveInFlight(Txn& t, const std::string& node, int64_t now, uint64_t& failed) {
  // Only this node's own (or unleased, or expired) recipients: another live
  // node's deliveries in flight are its own business.
  const char* mine =
      "inflight != 0 AND (leased_by IS NULL OR leased_by = $1 OR leased_until <= $2)";
  auto r = t.c.Exec(
      std::string("UPDATE outbound_recipients SET state = 3, inflight = 0, attempts = attempts + "
                  "1, last_error = 'outcome unknown: the server stopped while delivering (not "
                  "sent again, to avoid a duplicate)' WHERE state IN (0, 1) AND ") +
          mine,
      {P(node), P(now)});
  if (!r) return r.error();
  failed = static_cast<uint64_t>(r->Affected());
  const std::string clear =
      std::string("UPDATE outbound_recipients SET inflight = 0 WHERE ") + mine;
  auto st = Run(t, clear.c_str(), {P(node), P(now)});
  if (!st) return st;
  // Posts whose every recipient is now final are finished.
  return Run(t,
             "UPDATE outbound_messages SET finished_at = $1 WHERE finished_at IS NULL AND "
             "list_post_id != 0 AND NOT EXISTS (SELECT 1 FROM outbound_recipients r WHERE "
             "r.message_id = outbound_messages.id AND r.state IN (0, 1))",
             {P(NowSeconds())});
}

Status ApplyListOutcomeScores(Txn& t, const std::vector<RecipientOutcome>& outcomes) {
  for (const auto& o : outcomes) {
    if (o.state != RecipientState::kDelivered && o.state != RecipientState::kFailed) continue;
    auto who = t.c.Exec(
        "SELECT p.list_id, r.address, l.bounce_threshold FROM outbound_recipients r JOIN "
        "outbound_messages m ON m.id = r.message_id JOIN list_posts p ON p.id = m.list_post_id "
        "JOIN lists l ON l.id = p.list_id WHERE r.id = $1",
        {P(o.recipient_id)});
    if (!who) return who.error();
    if (who->empty()) continue;  // not a list post
    int64_t list_id = who->Int(0, 0);
    std::string address = who->Text(0, 1);
    auto threshold = static_cast<uint32_t>(who->Int(0, 2));
    if (o.state == RecipientState::kDelivered) {
      auto st = Run(t,
                    "UPDATE list_members SET bounce_score = 0, disabled = 0 WHERE list_id = $1 "
                    "AND address = $2 AND (bounce_score != 0 OR disabled != 0)",
                    {P(list_id), P(address)});
      if (!st) return st;
    } else {
      ListMember after;
      auto st = ApplyListBounce(t, list_id, address, o.diagnostic, threshold, after);
      if (!st && st.error().kind != ErrorKind::kNotFound) return st;
    }
  }
  return Ok();
}

Result<std::vector<ListInfo>> QueryLists(Conn& c) {
  auto r = c.Exec("SELECT " HATO_LIST_COLS
                  " FROM lists l WHERE l.removed_at IS NULL ORDER BY l.address");
  if (!r) return r.error();
  std::vector<ListInfo> out;
  for (int i = 0; i < r->size(); ++i) out.push_back(ListFromRow(*r, i));
  return out;
}

Result<std::vector<ListInfo>> QueryMemberLists(Conn& c, const std::string& address) {
  auto r = c.Exec("SELECT " HATO_LIST_COLS
                  " FROM lists l JOIN list_members m ON m.list_id = l.id WHERE m.address = $1 "
                  "AND l.removed_at IS NULL ORDER BY l.address COLLATE \"C\"",
                  {P(address)});
  if (!r) return r.error();
  std::vector<ListInfo> out;
  for (int i = 0; i < r->size(); ++i) out.push_back(ListFromRow(*r, i));
  return out;
}

Result<ListInfo> QueryList(Conn& c, const std::string& address) {
  auto r =
      c.Exec("SELECT " HATO_LIST_COLS " FROM lists l WHERE l.address = $1 AND l.removed_at IS NULL",
             {P(address)});
  if (!r) return r.error();
  if (r->empty()) return Err(ErrorKind::kNotFound, "no such list: " + address);
  return ListFromRow(*r, 0);
}

Result<std::vector<ListMember>> QueryListMembers(Conn& c, int64_t list_id) {
  auto r = c.Exec("SELECT " HATO_MEMBER_COLS
                  " FROM list_members WHERE list_id = $1 ORDER BY address COLLATE \"C\"",
                  {P(list_id)});
  if (!r) return r.error();
  std::vector<ListMember> out;
  for (int i = 0; i < r->size(); ++i) out.push_back(MemberFromRow(*r, i));
  return out;
}

Result<ListMember> QueryListMember(Conn& c, int64_t list_id, const std::string& address) {
  auto r =
      c.Exec("SELECT " HATO_MEMBER_COLS " FROM list_members WHERE list_id = $1 AND address = $2",
             {P(list_id), P(address)});
  if (!r) return r.error();
  if (r->empty()) return Err(ErrorKind::kNotFound, address + " is not a member");
  return MemberFromRow(*r, 0);
}

Result<uint64_t> QueryCountListTokens(Conn& c, int64_t list_id, const std::string& address,
                                      const std::string& source, int64_t since) {
  auto r = c.Exec(
      "SELECT count(*) FROM list_tokens WHERE list_id = $1 AND created_at >= $4 AND "
      "(($2 != '' AND address = $2) OR ($3 != '' AND source = $3))",
      {P(list_id), P(address), P(source), P(since)});
  if (!r) return r.error();
  return static_cast<uint64_t>(r->Int(0, 0));
}

Result<std::vector<HeldPost>> QueryHeldPosts(Conn& c, int64_t list_id) {
  auto r = c.Exec(
      "SELECT h.id, h.list_id, h.sender, h.reason, h.created_at, b.size FROM list_held h JOIN "
      "blobs b ON b.id = h.blob_id WHERE h.list_id = $1 ORDER BY h.id",
      {P(list_id)});
  if (!r) return r.error();
  std::vector<HeldPost> out;
  for (int i = 0; i < r->size(); ++i) {
    out.push_back(HeldPost{r->Int(i, 0), r->Int(i, 1), r->Text(i, 2), r->Text(i, 3), r->Int(i, 4),
                           static_cast<uint64_t>(r->Int(i, 5))});
  }
  return out;
}

Result<std::string> QueryHeldContent(Conn& c, int64_t held_id) {
  auto r = c.Exec("SELECT blob_id FROM list_held WHERE id = $1", {P(held_id)});
  if (!r) return r.error();
  if (r->empty()) return Err(ErrorKind::kNotFound, "no held post " + std::to_string(held_id));
  return ReadBlobById(c, r->Int(0, 0));
}

Result<std::vector<ListPostInfo>> QueryListPosts(Conn& c, int64_t list_id) {
  auto r = c.Exec(
      "SELECT id, queue_id, sender, subject, recipients, created_at FROM list_posts WHERE "
      "list_id = $1 ORDER BY id",
      {P(list_id)});
  if (!r) return r.error();
  std::vector<ListPostInfo> out;
  for (int i = 0; i < r->size(); ++i) out.push_back(PostFromRow(*r, i));
  return out;
}

Result<uint64_t> QueryCountListPosts(Conn& c, int64_t list_id, int64_t since) {
  auto r = c.Exec("SELECT count(*) FROM list_posts WHERE list_id = $1 AND created_at >= $2",
                  {P(list_id), P(since)});
  if (!r) return r.error();
  return static_cast<uint64_t>(r->Int(0, 0));
}

Result<ListReport> QueryListReport(Conn& c, int64_t list_id, int64_t post_id) {
  auto p = c.Exec(
      "SELECT id, queue_id, sender, subject, recipients, created_at FROM list_posts WHERE "
      "list_id = $1 AND ($2::bigint = 0 OR id = $2::bigint) ORDER BY id DESC LIMIT 1",
      {P(list_id), P(post_id)});
  if (!p) return p.error();
  if (p->empty()) {
    return Err(ErrorKind::kNotFound,
               post_id ? "no post " + std::to_string(post_id) + " in this list" : "no posts yet");
  }
  ListReport rep;
  rep.post = PostFromRow(*p, 0);
  auto r = c.Exec(
      "SELECT domain, state, CASE WHEN attempts > 0 THEN 1 ELSE 0 END, last_error, address FROM "
      "outbound_recipients WHERE message_id = $1 ORDER BY domain COLLATE \"C\", state, "
      "last_error COLLATE \"C\", address COLLATE \"C\"",
      {P(rep.post.queue_id)});
  if (!r) return r.error();
  for (int i = 0; i < r->size(); ++i) {
    std::string domain = r->Text(i, 0);
    auto state = static_cast<RecipientState>(r->Int(i, 1));
    if (state == RecipientState::kHeld) state = RecipientState::kQueued;
    bool attempted = r->Int(i, 2) != 0;
    std::string reason = state == RecipientState::kDelivered ? "" : r->Text(i, 3);
    if (rep.lines.empty() || rep.lines.back().domain != domain || rep.lines.back().state != state ||
        rep.lines.back().reason != reason || rep.lines.back().attempted != attempted) {
      rep.lines.push_back(ListReportLine{domain, state, attempted, reason, 0, {}});
    }
    ListReportLine& line = rep.lines.back();
    ++line.count;
    if (state != RecipientState::kDelivered && line.addresses.size() < kReportAddresses) {
      line.addresses.push_back(r->Text(i, 4));
    }
  }
  return rep;
}

}  // namespace hato::store::pg
