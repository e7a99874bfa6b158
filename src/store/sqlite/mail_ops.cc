#include "store/sqlite/mail_ops.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <sstream>

#include "base/strings.h"
#include "store/mailbox_keywords.h"
#include "store/mailbox_name.h"
#include "store/sqlite/queue_ops.h"

namespace hato::store {

static_assert(kHierarchySeparator == '/', "store/mailbox_name.cc assumes '/'");

Result<std::string> CanonicalMailboxName(std::string_view name) {
  constexpr size_t kMaxMailboxName = 1000;  // bytes, in storage form
  if (name.empty() || name.size() > kMaxMailboxName) {
    return Err(ErrorKind::kInvalid, "invalid mailbox name");
  }
  if (name.front() == kHierarchySeparator || name.back() == kHierarchySeparator) {
    return Err(ErrorKind::kInvalid, "mailbox name must not start or end with /");
  }
  for (size_t i = 0; i < name.size(); ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f || c == '*' || c == '%') {
      return Err(ErrorKind::kInvalid, "invalid character in mailbox name");
    }
    if (c == kHierarchySeparator && i + 1 < name.size() && name[i + 1] == kHierarchySeparator) {
      return Err(ErrorKind::kInvalid, "empty hierarchy level in mailbox name");
    }
  }
  size_t first = name.find(kHierarchySeparator);
  std::string_view head = name.substr(0, first);
  if (EqualsIgnoreCase(head, kInbox)) {
    return std::string(kInbox) +
           std::string(first == std::string_view::npos ? "" : name.substr(first));
  }
  return std::string(name);
}

namespace sqlite {
namespace {

struct MailboxRow {
  int64_t id = 0;
  uint32_t uidvalidity = 0;
};

// The live mailbox of an account whose `column` is `value` (name or special_use).
Result<MailboxRow> FindMailboxBy(Db& db, const char* sql, int64_t account_id,
                                 std::string_view value, std::string_view what) {
  auto s = db.Cached(sql);
  if (!s) return s.error();
  auto row = (*s)->Bind(1, account_id).Bind(2, value).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, "no such mailbox: " + std::string(what));
  MailboxRow r{(*s)->Int(0), static_cast<uint32_t>((*s)->Int(1))};
  (*s)->Reset();
  return r;
}

Result<MailboxRow> FindMailbox(Db& db, int64_t account_id, const std::string& name) {
  auto canonical = CanonicalMailboxName(name);
  if (!canonical) return canonical.error();
  return FindMailboxBy(db,
                       "SELECT id, uidvalidity FROM mailboxes WHERE account_id = ? AND name = ? "
                       "AND deleted_at IS NULL",
                       account_id, *canonical, *canonical);
}

// The account's mailbox with a special-use attribute (RFC 6154), e.g. "\\Junk".
Result<MailboxRow> FindSpecialUse(Db& db, int64_t account_id, std::string_view special_use) {
  return FindMailboxBy(db,
                       "SELECT id, uidvalidity FROM mailboxes WHERE account_id = ? AND "
                       "special_use = ? AND deleted_at IS NULL ORDER BY id LIMIT 1",
                       account_id, special_use, special_use);
}

// Takes the next UID and modseq of a mailbox.
struct Slot {
  uint32_t uid = 0;
  uint64_t modseq = 0;
};
Result<Slot> NextSlot(Txn& t, int64_t mailbox_id) {
  auto s = t.db.Cached(
      "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1 "
      "WHERE id = ? RETURNING uidnext - 1, highest_modseq");
  if (!s) return s.error();
  auto row = (*s)->Bind(1, mailbox_id).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, "mailbox vanished");
  Slot slot{static_cast<uint32_t>((*s)->Int(0)), static_cast<uint64_t>((*s)->Int(1))};
  (*s)->Reset();
  t.touched.insert(mailbox_id);
  return slot;
}

Result<uint64_t> NextModseq(Txn& t, int64_t mailbox_id) {
  auto s = t.db.Cached(
      "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ? "
      "RETURNING highest_modseq");
  if (!s) return s.error();
  auto row = (*s)->Bind(1, mailbox_id).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, "mailbox vanished");
  auto modseq = static_cast<uint64_t>((*s)->Int(0));
  (*s)->Reset();
  t.touched.insert(mailbox_id);
  return modseq;
}

Result<int64_t> PutBlobBytes(Txn& t, std::string_view content, std::string_view mime, int64_t refs,
                             std::string_view sort_keys, std::string_view thread_id,
                             std::string_view known_sha, const EncodedBlob* encoded) {
  std::string sha = known_sha.empty() ? Sha256(content) : std::string(known_sha);
  auto find = t.db.Cached("SELECT id FROM blobs WHERE sha256 = ?");
  if (!find) return find.error();
  auto row = (*find)->BindBlob(1, sha).Step();
  if (!row) return row.error();
  if (*row) {
    int64_t blob_id = (*find)->Int(0);
    (*find)->Reset();
    auto up = t.db.Cached(
        "UPDATE blobs SET refs = refs + ?, mime = coalesce(mime, ?), "
        "sort_keys = coalesce(sort_keys, ?), thread_id = coalesce(thread_id, ?5) WHERE id = ?4");
    if (!up) return up.error();
    (*up)->Bind(1, refs);
    if (mime.empty()) {
      (*up)->BindNull(2);
    } else {
      (*up)->BindBlob(2, mime);
    }
    if (sort_keys.empty()) {
      (*up)->BindNull(3);
    } else {
      (*up)->BindBlob(3, sort_keys);
    }
    if (thread_id.empty()) {
      (*up)->BindNull(5);
    } else {
      (*up)->Bind(5, thread_id);
    }
    if (auto st = (*up)->Bind(4, blob_id).Run(); !st) return st.error();
    return blob_id;
  }
  (*find)->Reset();
  auto ref = encoded ? t.blobs.AppendEncoded(*encoded) : t.blobs.Append(content, sha);
  if (!ref) return ref.error();
  t.appended = true;
  auto ins = t.db.Cached(
      "INSERT INTO blobs(sha256, segment, offset, stored_length, size, codec, refs, mime, "
      "sort_keys, thread_id) VALUES(?,?,?,?,?,?,?,?,?,?)");
  if (!ins) return ins.error();
  (*ins)->BindBlob(1, sha).Bind(2, ref->segment).Bind(3, static_cast<int64_t>(ref->offset));
  (*ins)->Bind(4, static_cast<int64_t>(ref->stored_length));
  (*ins)->Bind(5, static_cast<int64_t>(ref->size)).Bind(6, static_cast<int64_t>(ref->codec));
  (*ins)->Bind(7, refs);
  if (mime.empty()) {
    (*ins)->BindNull(8);
  } else {
    (*ins)->BindBlob(8, mime);
  }
  if (sort_keys.empty()) {
    (*ins)->BindNull(9);
  } else {
    (*ins)->BindBlob(9, sort_keys);
  }
  if (thread_id.empty()) {
    (*ins)->BindNull(10);
  } else {
    (*ins)->Bind(10, thread_id);
  }
  if (auto st = (*ins)->Run(); !st) return st.error();
  return t.db.LastInsertId();
}

// kTooLarge when `more` octets would take the account past its quota.
Status CheckQuota(Db& db, int64_t account_id, uint64_t more) {
  auto q = QueryQuota(db, account_id);
  if (!q) return q.error();
  if (q->limit_bytes && q->used_bytes + more > *q->limit_bytes) {
    return Err(ErrorKind::kTooLarge, "quota exceeded");
  }
  return Ok();
}

struct NewMessage {
  int64_t mailbox_id = 0;
  int64_t blob_id = 0;
  uint64_t size = 0;
  int64_t internal_date = 0;
  uint32_t flags = 0;
  std::string keywords;
  std::string return_path;
};

Result<std::pair<int64_t, uint32_t>> InsertMessage(Txn& t, const NewMessage& m) {
  auto slot = NextSlot(t, m.mailbox_id);
  if (!slot) return slot.error();
  auto s = t.db.Cached(
      "INSERT INTO messages(mailbox_id, uid, blob_id, size, internal_date, flags, keywords, "
      "return_path, modseq, saved_at) VALUES(?,?,?,?,?,?,?,?,?,?)");
  if (!s) return s.error();
  (*s)->Bind(1, m.mailbox_id).Bind(2, int64_t{slot->uid}).Bind(3, m.blob_id);
  (*s)->Bind(4, static_cast<int64_t>(m.size)).Bind(5, m.internal_date);
  (*s)->Bind(6, int64_t{m.flags}).Bind(7, m.keywords).Bind(8, m.return_path);
  (*s)->Bind(9, static_cast<int64_t>(slot->modseq));
  // The save date (RFC 8514): now, whatever the internal date.
  if (auto st = (*s)->Bind(10, NowSeconds()).Run(); !st) return st.error();
  return std::make_pair(t.db.LastInsertId(), slot->uid);
}

std::vector<std::string> SplitKeywords(const std::string& s) {
  std::vector<std::string> out;
  for (auto w : SplitWords(s)) out.emplace_back(w);
  return out;
}

std::string JoinKeywords(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

bool HasKeyword(const std::vector<std::string>& words, const std::string& k) {
  // Keywords are case-insensitive (RFC 3501 section 2.3.2).
  return std::any_of(words.begin(), words.end(),
                     [&](const std::string& w) { return EqualsIgnoreCase(w, k); });
}

// The distinct keywords (KeywordKey) of a mailbox's live messages, for the
// per-mailbox keyword limit (store/keyword_limits.h).
Result<std::set<std::string>> MailboxKeywords(Txn& t, int64_t mailbox_id) {
  auto all = t.db.Cached(
      "SELECT keywords FROM messages WHERE mailbox_id = ? AND expunged_at IS NULL AND "
      "keywords <> ''");
  if (!all) return all.error();
  (*all)->Reset();
  (*all)->Bind(1, mailbox_id);
  std::set<std::string> distinct;
  while (true) {
    auto r = (*all)->Step();
    if (!r) return r.error();
    if (!*r) break;
    for (const auto& k : SplitKeywords((*all)->Text(0))) distinct.insert(KeywordKey(k));
  }
  (*all)->Reset();
  return distinct;
}

// Whether each of `keys` (KeywordKey) is on some live message of the mailbox.
Result<bool> MailboxHasKeywords(Txn& t, int64_t mailbox_id, const std::vector<std::string>& keys) {
  auto q = t.db.Cached(
      "SELECT 1 FROM messages WHERE mailbox_id = ? AND expunged_at IS NULL AND "
      "instr(' ' || lower(keywords) || ' ', ?) > 0 LIMIT 1");
  if (!q) return q.error();
  for (const auto& k : keys) {
    (*q)->Reset();
    (*q)->Bind(1, mailbox_id);
    (*q)->Bind(2, " " + k + " ");
    auto r = (*q)->Step();
    (*q)->Reset();
    if (!r) return r.error();
    if (!*r) return false;
  }
  return true;
}

// The mailbox's keywords as far as a change adding `wanted` needs them
// (store/mailbox_keywords.h), from the operation's `cache`.
Result<std::set<std::string>*> KnownKeywords(Txn& t, std::map<int64_t, MailboxKeywordSet>& cache,
                                             int64_t mailbox_id,
                                             const std::vector<std::string>& wanted) {
  return KnownMailboxKeywords(
      cache, mailbox_id, wanted,
      [&](const std::vector<std::string>& keys) { return MailboxHasKeywords(t, mailbox_id, keys); },
      [&] { return MailboxKeywords(t, mailbox_id); });
}

// A message row selected as HATO_META_COLS (the save date falls back to the
// internal date for rows stored before save dates were kept, RFC 8514).
#define HATO_META_COLS \
  "id, uid, size, internal_date, flags, modseq, keywords, coalesce(saved_at, internal_date)"
MessageMeta MetaFromRow(const Stmt& s) {
  MessageMeta m;
  m.id = s.Int(0);
  m.uid = static_cast<uint32_t>(s.Int(1));
  m.size = static_cast<uint64_t>(s.Int(2));
  m.internal_date = s.Int(3);
  m.flags = static_cast<uint32_t>(s.Int(4));
  m.modseq = static_cast<uint64_t>(s.Int(5));
  m.keywords = s.Text(6);
  m.saved_date = s.Int(7);
  return m;
}

uint32_t NewUidValidity(Txn& t, int64_t account_id) {
  // Strictly greater than any UIDVALIDITY the account had, so a mailbox deleted
  // and created again under the same name never reuses one (RFC 3501 2.3.1.1).
  auto s = t.db.Cached("SELECT coalesce(max(uidvalidity), 0) FROM mailboxes WHERE account_id = ?");
  int64_t prev = 0;
  if (s && (*s)->Bind(1, account_id).Step().ok()) prev = (*s)->Int(0);
  if (s) (*s)->Reset();
  int64_t now = NowSeconds() & 0x7fffffff;
  return static_cast<uint32_t>(std::max(now, prev + 1) & 0x7fffffff);
}

// Subscriptions are names (RFC 3501 section 6.3.6): a live mailbox carries
// its own in mailboxes.subscribed; a subscribed name without a live mailbox
// (deleted, or renamed away) is a row of orphan_subscriptions. A mailbox
// created or renamed onto such a name takes the subscription back.
Status AdoptOrphanSubscriptions(Txn& t, int64_t account_id) {
  auto adopt = t.db.Cached(
      "UPDATE mailboxes SET subscribed = 1 WHERE account_id = ? AND deleted_at IS NULL AND name "
      "IN (SELECT name FROM orphan_subscriptions WHERE account_id = ?)");
  if (!adopt) return adopt.error();
  if (auto st = (*adopt)->Bind(1, account_id).Bind(2, account_id).Run(); !st) return st;
  auto drop = t.db.Cached(
      "DELETE FROM orphan_subscriptions WHERE account_id = ? AND name IN (SELECT name FROM "
      "mailboxes WHERE account_id = ? AND deleted_at IS NULL)");
  if (!drop) return drop.error();
  return (*drop)->Bind(1, account_id).Bind(2, account_id).Run();
}

}  // namespace

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<int64_t> PutBlob(Txn& t, std::string_view content, std::string_view mime, int64_t refs,
                        std::string_view sort_keys, std::string_view thread_id,
                        std::string_view sha256, const EncodedBlob* encoded) {
  return PutBlobBytes(t, content, mime, refs, sort_keys, thread_id, sha256, encoded);
}

Status CreateDefaultMailboxes(Txn& t, int64_t account_id) {
  for (const auto& d : kDefaultMailboxes) {
    if (auto st = ApplyCreateMailbox(t, account_id, d.name, d.special_use); !st) return st;
    // The default folders are subscribed when the account is made; CREATE
    // alone subscribes nothing (RFC 3501 section 6.3.6).
    if (auto st = ApplySetSubscribed(t, account_id, d.name, true); !st) return st;
  }
  return Ok();
}

// The mailbox of one filed copy: the named one (created first when the
// filter asked, RFC 5490 section 3.2 / RFC 5228 section 4.1), a special-use
// name such as "\\Junk", or INBOX with `fell_back` set when the mailbox is
// missing or its name cannot be used. Storage errors are returned.
static Result<MailboxRow> FilingMailbox(Txn& t, const Filing& f, bool& fell_back) {
  fell_back = false;
  Result<MailboxRow> mb = Err(ErrorKind::kNotFound, "");
  if (f.mailbox.empty() || EqualsIgnoreCase(f.mailbox, kInbox)) {
    return FindMailbox(t.db, f.account_id, kInbox);
  }
  if (f.mailbox[0] == '\\') {
    mb = FindSpecialUse(t.db, f.account_id, f.mailbox);
  } else {
    mb = FindMailbox(t.db, f.account_id, f.mailbox);
    if (!mb && mb.error().kind == ErrorKind::kNotFound && f.create) {
      auto canonical = CanonicalMailboxName(f.mailbox);
      // Checked before any write, so a refused name leaves the transaction clean.
      if (canonical && CheckNewMailboxName(*canonical).ok()) {
        if (auto st = ApplyCreateMailbox(t, f.account_id, *canonical, ""); !st) return st.error();
        mb = FindMailbox(t.db, f.account_id, *canonical);
      }
    }
  }
  if (mb) return mb;
  if (mb.error().kind != ErrorKind::kNotFound && mb.error().kind != ErrorKind::kInvalid) {
    return mb.error();
  }
  fell_back = true;
  return FindMailbox(t.db, f.account_id, kInbox);
}

// The record prepared for the request's content (DeliveryRequest::encoded),
// or null when there is none or it was built from other content (its size
// differs: a cheap check, not a proof; the preparer promises the rest).
static const EncodedBlob* PreparedFor(const DeliveryRequest& req) {
  if (!req.encoded || req.encoded->size != req.content.size()) return nullptr;
  return req.encoded.get();
}

// DeliveryRequest::filings: one copy per filing, one blob for all those
// that store the delivery's content; a filing with its own content
// (Filing::content) gets a blob of its own.
static Status ApplyFilings(Txn& t, const DeliveryRequest& req, std::string_view sha,
                           DeliveryReceipt& receipt) {
  auto shared_refs = static_cast<int64_t>(std::count_if(
      req.filings.begin(), req.filings.end(), [](const Filing& f) { return f.content.empty(); }));
  Result<int64_t> shared = int64_t{0};
  if (shared_refs > 0) {
    shared = PutBlob(t, req.content, req.mime, shared_refs, req.sort_keys, req.thread_id, sha,
                     PreparedFor(req));
  }
  if (!shared) return shared.error();
  // The distinct keywords of each mailbox a copy with keywords goes to.
  std::map<int64_t, MailboxKeywordSet> mailbox_keywords;
  for (size_t i = 0; i < req.filings.size(); ++i) {
    const Filing& f = req.filings[i];
    bool fell_back = false;
    auto mb = FilingMailbox(t, f, fell_back);
    if (!mb) return mb.error();
    if (fell_back) receipt.fell_back.push_back(i);
    Result<int64_t> blob = *shared;
    if (!f.content.empty()) blob = PutBlob(t, f.content, f.mime, 1, f.sort_keys, f.thread_id);
    if (!blob) return blob.error();
    const std::string& content = f.content.empty() ? req.content : f.content;
    StoredFlags flags = SplitFilingFlags(f.flags);
    if (!flags.keywords.empty()) {
      // Keyword limits (issue 11 item 8): what is past one is dropped.
      std::vector<std::string> wanted = SplitKeywords(flags.keywords);
      auto known = KnownKeywords(t, mailbox_keywords, mb->id, wanted);
      if (!known) return known.error();
      flags.keywords = JoinKeywords(FitKeywords(req.keyword_limits, wanted, *known));
    }
    NewMessage m{mb->id,      *blob,          content.size(), req.received_at,
                 flags.flags, flags.keywords, req.return_path};
    auto id = InsertMessage(t, m);
    if (!id) return id.error();
    receipt.message_ids.push_back(id->first);
  }
  return Ok();
}

Status ApplyDelivery(Txn& t, const DeliveryRequest& req, DeliveryReceipt& receipt) {
  // One hash of the content: the receipt's content id and the blob's address.
  // Taken from the record prepared off the writer thread when there is one
  // (SqliteStore::PrepareDelivery), else a pass over every byte here.
  const EncodedBlob* encoded = PreparedFor(req);
  std::string sha = encoded ? encoded->sha256 : Sha256(req.content);
  receipt.content_id = HexEncode(sha);
  receipt.message_ids.clear();
  receipt.fell_back.clear();
  // Remote recipients, the submission log and DSN bookkeeping share the
  // transaction of the local delivery (queue_ops.h).
  if (auto st = ApplyOutboundParts(t, req, receipt); !st) return st;
  if (!req.outcomes.empty()) {
    if (auto st = ApplyOutcomes(t, req.outcomes); !st) return st;
  }
  if (!req.filings.empty()) return ApplyFilings(t, req, sha, receipt);
  if (req.account_ids.empty()) return Ok();
  auto blob = PutBlob(t, req.content, req.mime, static_cast<int64_t>(req.account_ids.size()),
                      req.sort_keys, req.thread_id, sha, encoded);
  if (!blob) return blob.error();
  for (int64_t account : req.account_ids) {
    Result<MailboxRow> mb = Err(ErrorKind::kNotFound, "");
    if (req.junk) mb = FindSpecialUse(t.db, account, "\\Junk");
    if (!mb) mb = FindMailbox(t.db, account, kInbox);
    if (!mb) return mb.error();
    NewMessage m{mb->id, *blob, req.content.size(), req.received_at, 0, "", req.return_path};
    auto id = InsertMessage(t, m);
    if (!id) return id.error();
    receipt.message_ids.push_back(id->first);
  }
  return Ok();
}

// Keyword limits on a stored message (issue 11 item 8): counted against the
// mailbox as it is in this transaction, so the earlier messages of a
// MULTIAPPEND count for the later ones.
static Status CheckAppendKeywords(Txn& t, int64_t mailbox_id, const AppendRequest& req) {
  if (req.keywords.empty()) return Ok();
  std::vector<std::string> wanted;
  for (auto& k : SplitKeywords(req.keywords)) {
    if (!HasKeyword(wanted, k)) wanted.push_back(std::move(k));
  }
  std::map<int64_t, MailboxKeywordSet> cache;
  auto known = KnownKeywords(t, cache, mailbox_id, wanted);
  if (!known) return known.error();
  return CheckKeywordLimits(req.keyword_limits, {}, wanted, *known);
}

Status ApplyAppend(Txn& t, const AppendRequest& req, AppendResult& result) {
  auto mb = FindMailbox(t.db, req.account_id, req.mailbox);
  if (!mb) return mb.error();
  // Quota (RFC 9208 section 5.1): the account's live messages plus this one.
  if (auto st = CheckQuota(t.db, req.account_id, req.content.size() + req.keywords.size()); !st) {
    return st;
  }
  if (auto st = CheckAppendKeywords(t, mb->id, req); !st) return st;
  auto blob = PutBlob(t, req.content, req.mime, 1, req.sort_keys, req.thread_id);
  if (!blob) return blob.error();
  NewMessage m{mb->id, *blob, req.content.size(), req.internal_date, req.flags, req.keywords, ""};
  auto id = InsertMessage(t, m);
  if (!id) return id.error();
  result.uidvalidity = mb->uidvalidity;
  result.uid = id->second;
  return Ok();
}

Status ApplyCopy(Txn& t, int64_t account_id, const std::vector<int64_t>& ids,
                 const std::string& to_mailbox, bool move, CopyResult& result) {
  auto dest = FindMailbox(t.db, account_id, to_mailbox);
  if (!dest) return dest.error();
  result = CopyResult{};
  result.uidvalidity = dest->uidvalidity;
  result.dest_mailbox_id = dest->id;
  auto src = t.db.Cached(
      "SELECT m.uid, m.blob_id, m.size, m.internal_date, m.flags, m.keywords, m.return_path, "
      "m.mailbox_id FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id "
      "WHERE m.id = ? AND x.account_id = ? AND m.expunged_at IS NULL");
  auto ref = t.db.Cached("UPDATE blobs SET refs = refs + 1 WHERE id = ?");
  if (!src) return src.error();
  if (!ref) return ref.error();
  if (!move) {
    // A copy adds to the account's usage (RFC 9208 section 5.1); a move does not.
    auto size = t.db.Cached(
        "SELECT coalesce(sum(m.size), 0) FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id "
        "WHERE m.id = ? AND x.account_id = ? AND m.expunged_at IS NULL");
    if (!size) return size.error();
    uint64_t total = 0;
    for (int64_t id : ids) {
      (*size)->Reset();
      auto row = (*size)->Bind(1, id).Bind(2, account_id).Step();
      if (!row) return row.error();
      total += static_cast<uint64_t>((*size)->Int(0));
    }
    (*size)->Reset();
    if (auto st = CheckQuota(t.db, account_id, total); !st) return st;
  }
  std::vector<int64_t> moved;
  for (int64_t id : ids) {
    (*src)->Reset();
    auto row = (*src)->Bind(1, id).Bind(2, account_id).Step();
    if (!row) return row.error();
    if (!*row) continue;  // expunged meanwhile: nothing to copy (RFC 3501 6.4.7)
    auto uid = static_cast<uint32_t>((*src)->Int(0));
    int64_t from_mailbox = (*src)->Int(7);
    NewMessage m{dest->id,
                 (*src)->Int(1),
                 static_cast<uint64_t>((*src)->Int(2)),
                 (*src)->Int(3),
                 static_cast<uint32_t>((*src)->Int(4)),
                 (*src)->Text(5),
                 (*src)->Text(6)};
    (*src)->Reset();
    (*ref)->Reset();
    if (auto st = (*ref)->Bind(1, m.blob_id).Run(); !st) return st;
    auto added = InsertMessage(t, m);
    if (!added) return added.error();
    result.source_uids.push_back(uid);
    result.dest_uids.push_back(added->second);
    result.dest_ids.push_back(added->first);
    result.source_mailbox_ids.push_back(from_mailbox);
    moved.push_back(id);
  }
  if (move) return ApplyExpunge(t, account_id, moved);
  return Ok();
}

Status ApplyExpunge(Txn& t, int64_t account_id, const std::vector<int64_t>& ids) {
  auto find = t.db.Cached(
      "SELECT m.mailbox_id FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id "
      "WHERE m.id = ? AND x.account_id = ? AND m.expunged_at IS NULL");
  auto s = t.db.Cached("UPDATE messages SET expunged_at = ?, modseq = ? WHERE id = ?");
  if (!find) return find.error();
  if (!s) return s.error();
  int64_t now = NowSeconds();
  for (int64_t id : ids) {
    (*find)->Reset();
    auto row = (*find)->Bind(1, id).Bind(2, account_id).Step();
    if (!row) return row.error();
    if (!*row) continue;
    int64_t mailbox_id = (*find)->Int(0);
    (*find)->Reset();
    // The expunge gets a modseq so that QRESYNC can report it as VANISHED.
    auto modseq = NextModseq(t, mailbox_id);
    if (!modseq) return modseq.error();
    (*s)->Reset();
    auto st = (*s)->Bind(1, now).Bind(2, static_cast<int64_t>(*modseq)).Bind(3, id).Run();
    if (!st) return st;
  }
  return Ok();
}

Status ApplySetFlags(Txn& t, int64_t account_id, const std::vector<int64_t>& ids,
                     const FlagChange& change, FlagResult& result) {
  // The distinct keywords of each mailbox touched, loaded when a change adds
  // a keyword (store/keyword_limits.h).
  std::map<int64_t, MailboxKeywordSet> mailbox_keywords;
  // Keyword bytes count in the quota (issue 11 item 8): what this change adds.
  uint64_t keyword_growth = 0;
  auto get = t.db.Cached(
      "SELECT m.mailbox_id, m.flags, m.keywords, m.modseq FROM messages m JOIN mailboxes x ON "
      "x.id = m.mailbox_id WHERE m.id = ? AND x.account_id = ? AND m.expunged_at IS NULL");
  auto set = t.db.Cached("UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE id = ?");
  if (!get) return get.error();
  if (!set) return set.error();
  result.refused.clear();
  for (int64_t id : ids) {
    (*get)->Reset();
    auto row = (*get)->Bind(1, id).Bind(2, account_id).Step();
    if (!row) return row.error();
    if (!*row) continue;  // not this account's, or expunged
    int64_t mailbox_id = (*get)->Int(0);
    auto flags = static_cast<uint32_t>((*get)->Int(1));
    std::vector<std::string> keywords = SplitKeywords((*get)->Text(2));
    auto modseq = static_cast<uint64_t>((*get)->Int(3));
    (*get)->Reset();
    if (change.unchanged_since != 0 && modseq > change.unchanged_since) {
      result.refused.push_back(id);
      continue;
    }
    uint32_t new_flags = flags;
    std::vector<std::string> new_keywords = keywords;
    switch (change.op) {
      case FlagOp::kReplace:
        new_flags = change.flags;
        new_keywords.clear();
        for (const auto& k : change.keywords) {
          if (!HasKeyword(new_keywords, k)) new_keywords.push_back(k);
        }
        break;
      case FlagOp::kAdd:
        new_flags |= change.flags;
        for (const auto& k : change.keywords) {
          if (!HasKeyword(new_keywords, k)) new_keywords.push_back(k);
        }
        break;
      case FlagOp::kRemove:
        new_flags &= ~change.flags;
        new_keywords.erase(
            std::remove_if(new_keywords.begin(), new_keywords.end(),
                           [&](const std::string& w) { return HasKeyword(change.keywords, w); }),
            new_keywords.end());
        break;
    }
    std::set<std::string>* known = nullptr;
    if (NeedsMailboxKeywords(keywords, new_keywords)) {
      auto loaded = KnownKeywords(t, mailbox_keywords, mailbox_id, new_keywords);
      if (!loaded) return loaded.error();
      known = *loaded;
    }
    if (auto st = CheckKeywordLimits(change.keyword_limits, keywords, new_keywords, known); !st) {
      return st;
    }
    {
      size_t before = JoinKeywords(keywords).size(), after = JoinKeywords(new_keywords).size();
      if (after > before) keyword_growth += after - before;
    }
    if (new_flags == flags && new_keywords == keywords) continue;  // no change, no modseq
    auto next = NextModseq(t, mailbox_id);
    if (!next) return next.error();
    (*set)->Reset();
    (*set)->Bind(1, int64_t{new_flags}).Bind(2, JoinKeywords(new_keywords));
    if (auto st = (*set)->Bind(3, static_cast<int64_t>(*next)).Bind(4, id).Run(); !st) return st;
  }
  if (keyword_growth > 0) {
    // The usage read here already includes this change's rows.
    if (auto st = CheckQuota(t.db, account_id, 0); !st) return st;
  }
  return Ok();
}

Status ApplyCreateMailbox(Txn& t, int64_t account_id, const std::string& name,
                          const std::string& special_use) {
  auto canonical = CanonicalMailboxName(name);
  if (!canonical) return canonical.error();
  // Every new name passes the one check (issue 11: no "..", no control characters).
  if (auto st = CheckNewMailboxName(*canonical); !st) return st;
  // Create missing parents too (RFC 3501 section 6.3.3).
  std::vector<std::string> levels;
  for (size_t pos = canonical->find(kHierarchySeparator); pos != std::string::npos;
       pos = canonical->find(kHierarchySeparator, pos + 1)) {
    levels.push_back(canonical->substr(0, pos));
  }
  levels.push_back(*canonical);
  auto exists = t.db.Cached(
      "SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ? AND deleted_at IS NULL");
  auto ins = t.db.Cached(
      "INSERT INTO mailboxes(account_id, name, uidvalidity, uidnext, special_use, subscribed) "
      "VALUES(?, ?, ?, 1, ?, 0)");
  if (!exists) return exists.error();
  if (!ins) return ins.error();
  for (size_t i = 0; i < levels.size(); ++i) {
    (*exists)->Reset();
    auto row = (*exists)->Bind(1, account_id).Bind(2, levels[i]).Step();
    if (!row) return row.error();
    bool last = i + 1 == levels.size();
    if (*row) {
      if (last) return Err(ErrorKind::kExists, "mailbox already exists: " + levels[i]);
      continue;
    }
    (*exists)->Reset();
    (*ins)->Reset();
    (*ins)->Bind(1, account_id).Bind(2, levels[i]).Bind(3, int64_t{NewUidValidity(t, account_id)});
    if (auto st = (*ins)->Bind(4, last ? special_use : "").Run(); !st) return st;
  }
  return AdoptOrphanSubscriptions(t, account_id);
}

Status ApplyDeleteMailbox(Txn& t, int64_t account_id, const std::string& name) {
  auto mb = FindMailbox(t.db, account_id, name);
  if (!mb) return mb.error();
  auto canonical = *CanonicalMailboxName(name);
  if (canonical == kInbox) return Err(ErrorKind::kInvalid, "INBOX cannot be deleted");
  auto children = t.db.Cached(
      "SELECT count(*) FROM mailboxes WHERE account_id = ? AND deleted_at IS NULL AND "
      "substr(name, 1, ?) = ?");
  if (!children) return children.error();
  std::string prefix = canonical + kHierarchySeparator;
  auto row = (*children)
                 ->Bind(1, account_id)
                 .Bind(2, static_cast<int64_t>(prefix.size()))
                 .Bind(3, prefix)
                 .Step();
  if (!row) return row.error();
  if ((*children)->Int(0) > 0) {
    return Err(ErrorKind::kInvalid, "mailbox has child mailboxes; delete them first");
  }
  (*children)->Reset();
  // The messages go to the retention area; the mailbox row stays, hidden
  // under a name that cannot collide, until the purge removes both.
  auto ids = t.db.Cached("SELECT id FROM messages WHERE mailbox_id = ? AND expunged_at IS NULL");
  if (!ids) return ids.error();
  (*ids)->Bind(1, mb->id);
  std::vector<int64_t> live;
  while (true) {
    auto r = (*ids)->Step();
    if (!r) return r.error();
    if (!*r) break;
    live.push_back((*ids)->Int(0));
  }
  (*ids)->Reset();
  if (auto st = ApplyExpunge(t, account_id, live); !st) return st;
  // DELETE leaves the name subscribed (RFC 3501 section 6.3.6, RFC 5258
  // \NonExistent).
  auto keep = t.db.Cached(
      "INSERT OR IGNORE INTO orphan_subscriptions(account_id, name) SELECT account_id, name FROM "
      "mailboxes WHERE id = ? AND subscribed != 0");
  if (!keep) return keep.error();
  if (auto st = (*keep)->Bind(1, mb->id).Run(); !st) return st;
  auto hide = t.db.Cached(
      "UPDATE mailboxes SET deleted_at = ?, name = char(1) || id || '/' || name WHERE id = ?");
  if (!hide) return hide.error();
  return (*hide)->Bind(1, NowSeconds()).Bind(2, mb->id).Run();
}

Status ApplyRenameMailbox(Txn& t, int64_t account_id, const std::string& from,
                          const std::string& to) {
  auto src = FindMailbox(t.db, account_id, from);
  if (!src) return src.error();
  auto from_c = *CanonicalMailboxName(from);
  auto to_c = CanonicalMailboxName(to);
  if (!to_c) return to_c.error();
  if (auto st = CheckNewMailboxName(*to_c); !st) return st;
  if (FindMailbox(t.db, account_id, *to_c)) {
    return Err(ErrorKind::kExists, "mailbox already exists: " + *to_c);
  }
  if (to_c->rfind(from_c + kHierarchySeparator, 0) == 0) {
    return Err(ErrorKind::kInvalid, "cannot rename a mailbox into itself");
  }
  if (from_c == kInbox) {
    // RFC 3501 section 6.3.5: INBOX's messages move to the new name, INBOX stays.
    if (auto st = ApplyCreateMailbox(t, account_id, *to_c, ""); !st) return st;
    auto ids = t.db.Cached(
        "SELECT id FROM messages WHERE mailbox_id = ? AND expunged_at IS NULL ORDER BY uid");
    if (!ids) return ids.error();
    (*ids)->Bind(1, src->id);
    std::vector<int64_t> live;
    while (true) {
      auto r = (*ids)->Step();
      if (!r) return r.error();
      if (!*r) break;
      live.push_back((*ids)->Int(0));
    }
    (*ids)->Reset();
    CopyResult ignored;
    return ApplyCopy(t, account_id, live, *to_c, /*move=*/true, ignored);
  }
  // Create missing parents of the new name, then rename the mailbox and its children.
  size_t slash = to_c->rfind(kHierarchySeparator);
  if (slash != std::string::npos) {
    std::string parent = to_c->substr(0, slash);
    if (!FindMailbox(t.db, account_id, parent)) {
      if (auto st = ApplyCreateMailbox(t, account_id, parent, ""); !st) return st;
    }
  }
  auto ren = t.db.Cached(
      "UPDATE mailboxes SET name = ? || substr(name, ?) WHERE account_id = ? AND deleted_at IS "
      "NULL AND (name = ? OR substr(name, 1, ?) = ?)");
  if (!ren) return ren.error();
  std::string prefix = from_c + kHierarchySeparator;
  (*ren)->Bind(1, *to_c).Bind(2, static_cast<int64_t>(from_c.size() + 1)).Bind(3, account_id);
  (*ren)->Bind(4, from_c).Bind(5, static_cast<int64_t>(prefix.size())).Bind(6, prefix);
  if (auto st = (*ren)->Run(); !st) return st;
  t.touched.insert(src->id);
  return AdoptOrphanSubscriptions(t, account_id);
}

Status ApplySetSubscribed(Txn& t, int64_t account_id, const std::string& name, bool subscribed) {
  auto mb = FindMailbox(t.db, account_id, name);
  if (!subscribed) {
    // UNSUBSCRIBE also removes a name whose mailbox is gone (RFC 3501 6.3.7).
    auto canonical = CanonicalMailboxName(name);
    if (!canonical) return canonical.error();
    auto drop = t.db.Cached("DELETE FROM orphan_subscriptions WHERE account_id = ? AND name = ?");
    if (!drop) return drop.error();
    if (auto st = (*drop)->Bind(1, account_id).Bind(2, *canonical).Run(); !st) return st;
    if (!mb && mb.error().kind == ErrorKind::kNotFound) return Ok();
  }
  if (!mb) return mb.error();
  auto s = t.db.Cached("UPDATE mailboxes SET subscribed = ? WHERE id = ?");
  if (!s) return s.error();
  return (*s)->Bind(1, int64_t{subscribed}).Bind(2, mb->id).Run();
}

Status ApplyRestoreMessage(Txn& t, const RestoreRequest& req, RestoreResult& result) {
  auto mb = FindMailbox(t.db, req.account_id, req.mailbox);
  if (!mb && mb.error().kind == ErrorKind::kNotFound) {
    auto st = ApplyCreateMailbox(t, req.account_id, req.mailbox, req.special_use);
    if (!st) return st;
    mb = FindMailbox(t.db, req.account_id, req.mailbox);
  }
  if (!mb) return mb.error();
  // The same body (its SHA-256 covers every header, Message-ID included) with
  // the same internal date already in this mailbox: nothing to do.
  std::string sha = Sha256(req.content);
  auto dup = t.db.Cached(
      "SELECT m.uid FROM blobs b JOIN messages m ON m.blob_id = b.id WHERE b.sha256 = ? AND "
      "m.mailbox_id = ? AND m.internal_date = ? AND m.expunged_at IS NULL LIMIT 1");
  if (!dup) return dup.error();
  auto row = (*dup)->BindBlob(1, sha).Bind(2, mb->id).Bind(3, req.internal_date).Step();
  if (!row) return row.error();
  if (*row) {
    result.added = false;
    result.uid = static_cast<uint32_t>((*dup)->Int(0));
    (*dup)->Reset();
    return Ok();
  }
  (*dup)->Reset();
  auto blob = PutBlob(t, req.content, req.mime, 1, req.sort_keys, req.thread_id);
  if (!blob) return blob.error();
  NewMessage m{mb->id,    *blob,        req.content.size(), req.internal_date,
               req.flags, req.keywords, req.return_path};
  auto id = InsertMessage(t, m);
  if (!id) return id.error();
  result.added = true;
  result.uid = id->second;
  return Ok();
}

Status ApplyRepairBlob(Txn& t, std::string_view content) {
  std::string sha = Sha256(content);
  auto find = t.db.Cached("SELECT id FROM blobs WHERE sha256 = ?");
  if (!find) return find.error();
  auto row = (*find)->BindBlob(1, sha).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, "no stored body " + HexEncode(sha));
  int64_t id = (*find)->Int(0);
  (*find)->Reset();
  auto ref = t.blobs.Append(content, sha);
  if (!ref) return ref.error();
  t.appended = true;
  auto up = t.db.Cached(
      "UPDATE blobs SET segment = ?, offset = ?, stored_length = ?, codec = ? WHERE id = ?");
  if (!up) return up.error();
  (*up)->Bind(1, ref->segment).Bind(2, static_cast<int64_t>(ref->offset));
  (*up)
      ->Bind(3, static_cast<int64_t>(ref->stored_length))
      .Bind(4, static_cast<int64_t>(ref->codec));
  return (*up)->Bind(5, id).Run();
}

Status ApplyUndelete(Txn& t, int64_t account_id, const std::string& mailbox, int64_t since,
                     uint64_t& restored) {
  std::string wanted;
  if (!mailbox.empty()) {
    auto c = CanonicalMailboxName(mailbox);
    if (!c) return c.error();
    wanted = *c;
  }
  // expunged_at = 0 marks a row already undeleted (superseded, purged next run).
  auto s = t.db.Cached(
      "SELECT m.id, x.name, x.deleted_at IS NOT NULL, x.special_use, m.blob_id, m.size, "
      "m.internal_date, m.flags, m.keywords, m.return_path FROM messages m JOIN mailboxes x ON "
      "x.id = m.mailbox_id WHERE x.account_id = ? AND m.expunged_at > 0 AND m.expunged_at >= ? "
      "ORDER BY m.expunged_at, m.id");
  if (!s) return s.error();
  (*s)->Bind(1, account_id).Bind(2, since);
  struct Row {
    int64_t id;
    std::string name, special_use;
    NewMessage m;
  };
  std::vector<Row> rows;
  while (true) {
    auto r = (*s)->Step();
    if (!r) return r.error();
    if (!*r) break;
    std::string name = (*s)->Text(1);
    if ((*s)->Int(2) != 0) {
      // A deleted mailbox is hidden as "\x01<id>/<name>" (ApplyDeleteMailbox).
      size_t slash = name.find(kHierarchySeparator);
      name = slash == std::string::npos ? name : name.substr(slash + 1);
    }
    if (!wanted.empty() && name != wanted) continue;
    NewMessage m{0,
                 (*s)->Int(4),
                 static_cast<uint64_t>((*s)->Int(5)),
                 (*s)->Int(6),
                 static_cast<uint32_t>((*s)->Int(7)) & ~uint32_t{kDeleted},
                 (*s)->Text(8),
                 (*s)->Text(9)};
    rows.push_back(Row{(*s)->Int(0), name, (*s)->Text(3), std::move(m)});
  }
  (*s)->Reset();
  auto ref = t.db.Cached("UPDATE blobs SET refs = refs + 1 WHERE id = ?");
  auto old = t.db.Cached("UPDATE messages SET expunged_at = 0 WHERE id = ?");
  // The same body with the same internal date already live in the folder
  // (restore --merge put it back, or an earlier undelete): skip it, so
  // undelete never makes a duplicate (issue 18, defect 10).
  auto live = t.db.Cached(
      "SELECT 1 FROM messages WHERE mailbox_id = ? AND blob_id = ? AND internal_date = ? AND "
      "expunged_at IS NULL LIMIT 1");
  if (!ref) return ref.error();
  if (!old) return old.error();
  if (!live) return live.error();
  restored = 0;
  for (auto& row : rows) {
    auto mb = FindMailbox(t.db, account_id, row.name);
    if (!mb && mb.error().kind == ErrorKind::kNotFound) {
      if (auto st = ApplyCreateMailbox(t, account_id, row.name, row.special_use); !st) return st;
      mb = FindMailbox(t.db, account_id, row.name);
    }
    if (!mb) return mb.error();
    row.m.mailbox_id = mb->id;
    (*live)->Reset();
    auto present =
        (*live)->Bind(1, mb->id).Bind(2, row.m.blob_id).Bind(3, row.m.internal_date).Step();
    if (!present) return present.error();
    (*live)->Reset();
    if (*present) {
      (*old)->Reset();
      if (auto st = (*old)->Bind(1, row.id).Run(); !st) return st;
      continue;
    }
    (*ref)->Reset();
    if (auto st = (*ref)->Bind(1, row.m.blob_id).Run(); !st) return st;
    // A new UID: an expunged UID never comes back (RFC 3501 section 2.3.1.1).
    auto added = InsertMessage(t, row.m);
    if (!added) return added.error();
    (*old)->Reset();
    if (auto st = (*old)->Bind(1, row.id).Run(); !st) return st;
    ++restored;
  }
  return Ok();
}

Result<std::vector<MailboxInfo>> QueryMailboxes(Db& db, int64_t account_id) {
  // The counts are the mailbox's own columns, kept by triggers (schema.cc):
  // no message row is read.
  auto s = db.Cached(
      "SELECT x.id, x.name, x.special_use, x.subscribed, x.uidvalidity, x.uidnext, "
      "x.highest_modseq, x.n_messages, x.n_unseen, x.n_size, x.n_deleted, x.n_deleted_size, "
      "x.n_recent, x.n_emails, x.n_threads, x.n_unread_threads FROM mailboxes x "
      "WHERE x.account_id = ? AND x.deleted_at IS NULL "
      "ORDER BY x.name");
  if (!s) return s.error();
  (*s)->Bind(1, account_id);
  std::vector<MailboxInfo> out;
  while (true) {
    auto row = (*s)->Step();
    if (!row) return row.error();
    if (!*row) break;
    MailboxInfo m;
    m.id = (*s)->Int(0);
    m.name = (*s)->Text(1);
    m.special_use = (*s)->Text(2);
    m.subscribed = (*s)->Int(3) != 0;
    m.uidvalidity = static_cast<uint32_t>((*s)->Int(4));
    m.uidnext = static_cast<uint32_t>((*s)->Int(5));
    m.highest_modseq = static_cast<uint64_t>((*s)->Int(6));
    m.messages = static_cast<uint64_t>((*s)->Int(7));
    m.unseen = static_cast<uint64_t>((*s)->Int(8));
    m.size = static_cast<uint64_t>((*s)->Int(9));
    m.deleted = static_cast<uint64_t>((*s)->Int(10));
    m.deleted_size = static_cast<uint64_t>((*s)->Int(11));
    m.recent = static_cast<uint64_t>((*s)->Int(12));
    m.emails = static_cast<uint64_t>((*s)->Int(13));
    m.threads = static_cast<uint64_t>((*s)->Int(14));
    m.unread_threads = static_cast<uint64_t>((*s)->Int(15));
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<std::string>> QueryOrphanSubscriptions(Db& db, int64_t account_id) {
  auto s = db.Cached("SELECT name FROM orphan_subscriptions WHERE account_id = ? ORDER BY name");
  if (!s) return s.error();
  (*s)->Bind(1, account_id);
  std::vector<std::string> out;
  if (auto r = (*s)->ForEachRow([&](Stmt& row) { out.push_back(row.Text(0)); }); !r)
    return r.error();
  return out;
}

Result<MailboxSnapshot> QueryMessages(Db& db, int64_t account_id, const std::string& mailbox) {
  auto canonical = CanonicalMailboxName(mailbox);
  if (!canonical) return canonical.error();
  auto mb = db.Cached(
      "SELECT id, uidvalidity, uidnext, highest_modseq, recent_uid FROM mailboxes WHERE "
      "account_id = ? AND name = ? AND deleted_at IS NULL");
  if (!mb) return mb.error();
  auto row = (*mb)->Bind(1, account_id).Bind(2, *canonical).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, "no such mailbox: " + *canonical);
  MailboxSnapshot snap;
  snap.mailbox_id = (*mb)->Int(0);
  snap.uidvalidity = static_cast<uint32_t>((*mb)->Int(1));
  snap.uidnext = static_cast<uint32_t>((*mb)->Int(2));
  snap.highest_modseq = static_cast<uint64_t>((*mb)->Int(3));
  snap.recent_uid = static_cast<uint32_t>((*mb)->Int(4));
  auto s = db.Cached("SELECT " HATO_META_COLS
                     " FROM messages "
                     "WHERE mailbox_id = ? AND expunged_at IS NULL ORDER BY uid");
  if (!s) return s.error();
  (*s)->Bind(1, snap.mailbox_id);
  while (true) {
    auto r = (*s)->Step();
    if (!r) return r.error();
    if (!*r) break;
    snap.messages.push_back(MetaFromRow(**s));
  }
  return snap;
}

Result<std::vector<uint32_t>> QueryVanished(Db& db, int64_t mailbox_id, uint64_t since) {
  auto s = db.Cached(
      "SELECT uid FROM messages WHERE mailbox_id = ? AND expunged_at IS NOT NULL AND modseq > ? "
      "ORDER BY uid");
  if (!s) return s.error();
  (*s)->Bind(1, mailbox_id).Bind(2, static_cast<int64_t>(since));
  std::vector<uint32_t> out;
  while (true) {
    auto r = (*s)->Step();
    if (!r) return r.error();
    if (!*r) break;
    out.push_back(static_cast<uint32_t>((*s)->Int(0)));
  }
  return out;
}

Result<MailboxChanges> QueryChanges(Db& db, int64_t mailbox_id, uint64_t since) {
  MailboxChanges out;
  auto mb = db.Cached("SELECT uidnext, highest_modseq FROM mailboxes WHERE id = ?");
  if (!mb) return mb.error();
  auto row = (*mb)->Bind(1, mailbox_id).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, "no such mailbox");
  out.uidnext = static_cast<uint32_t>((*mb)->Int(0));
  out.highest_modseq = static_cast<uint64_t>((*mb)->Int(1));
  auto s = db.Cached("SELECT " HATO_META_COLS
                     ", expunged_at IS NOT NULL "
                     "FROM messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid");
  if (!s) return s.error();
  (*s)->Bind(1, mailbox_id).Bind(2, static_cast<int64_t>(since));
  while (true) {
    auto r = (*s)->Step();
    if (!r) return r.error();
    if (!*r) break;
    if ((*s)->Int(8) != 0) {
      out.expunged.push_back(static_cast<uint32_t>((*s)->Int(1)));
      continue;
    }
    out.changed.push_back(MetaFromRow(**s));
  }
  return out;
}

Result<MailboxChanges> QueryChangesPage(Db& db, int64_t mailbox_id, uint64_t since, size_t max_rows,
                                        size_t max_bytes) {
  MailboxChanges out;
  auto mb = db.Cached("SELECT uidnext, highest_modseq FROM mailboxes WHERE id = ?");
  if (!mb) return mb.error();
  auto row = (*mb)->Bind(1, mailbox_id).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, "no such mailbox");
  out.uidnext = static_cast<uint32_t>((*mb)->Int(0));
  out.highest_modseq = static_cast<uint64_t>((*mb)->Int(1));
  (*mb)->Reset();
  // In modseq order along the (mailbox_id, modseq) index, so that stepping
  // stops early: only this page's rows are ever read.
  auto s = db.Cached(
      "SELECT " HATO_META_COLS
      ", expunged_at IS NOT NULL "
      "FROM messages WHERE mailbox_id = ? AND modseq > ? AND modseq <= ? ORDER BY modseq");
  if (!s) return s.error();
  (*s)->Reset();
  (*s)->Bind(1, mailbox_id)
      .Bind(2, static_cast<int64_t>(since))
      .Bind(3, static_cast<int64_t>(out.highest_modseq));
  size_t rows = 0, bytes = 0;
  uint64_t last = since;
  while (true) {
    auto r = (*s)->Step();
    if (!r) return r.error();
    if (!*r) break;
    auto modseq = static_cast<uint64_t>((*s)->Int(5));
    // Full, and this row starts another modseq: the page ends before it.
    if ((rows >= max_rows || bytes >= max_bytes) && modseq != last) {
      out.more = true;
      out.highest_modseq = last;
      break;
    }
    last = modseq;
    ++rows;
    if ((*s)->Int(8) != 0) {
      out.expunged.push_back(static_cast<uint32_t>((*s)->Int(1)));
      bytes += sizeof(uint32_t);
      continue;
    }
    out.changed.push_back(MetaFromRow(**s));
    bytes += sizeof(MessageMeta) + out.changed.back().keywords.size();
  }
  (*s)->Reset();
  std::sort(out.changed.begin(), out.changed.end(),
            [](const MessageMeta& a, const MessageMeta& b) { return a.uid < b.uid; });
  std::sort(out.expunged.begin(), out.expunged.end());
  return out;
}

Status QueryMessagesByUid(Db& db, int64_t mailbox_id, uint32_t first, uint32_t last,
                          std::vector<MessageMeta>& out) {
  auto s = db.Cached("SELECT " HATO_META_COLS
                     " FROM messages "
                     "WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid");
  if (!s) return s.error();
  (*s)->Bind(1, mailbox_id)
      .Bind(2, static_cast<int64_t>(first))
      .Bind(3, static_cast<int64_t>(last));
  while (true) {
    auto r = (*s)->Step();
    if (!r) return r.error();
    if (!*r) break;
    out.push_back(MetaFromRow(**s));
  }
  return Ok();
}

Status ApplyClaimRecent(Txn& t, int64_t mailbox_id, uint32_t up_to_uid, uint32_t& previous) {
  auto get = t.db.Cached("SELECT recent_uid FROM mailboxes WHERE id = ?");
  if (!get) return get.error();
  auto row = (*get)->Bind(1, mailbox_id).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, "no such mailbox");
  previous = static_cast<uint32_t>((*get)->Int(0));
  (*get)->Reset();
  if (up_to_uid <= previous) return Ok();
  auto set = t.db.Cached("UPDATE mailboxes SET recent_uid = ? WHERE id = ?");
  if (!set) return set.error();
  return (*set)->Bind(1, int64_t{up_to_uid}).Bind(2, mailbox_id).Run();
}

Result<QuotaUsage> QueryQuota(Db& db, int64_t account_id) {
  auto q = db.Cached(
      // The usage is summed only for accounts with a limit (CASE is lazy).
      "SELECT a.quota_bytes, CASE WHEN a.quota_bytes IS NULL THEN 0 ELSE "
      "(SELECT coalesce(sum(m.size + length(CAST(m.keywords AS BLOB))), 0) FROM messages m "
      "JOIN mailboxes x ON x.id = m.mailbox_id "
      "WHERE x.account_id = a.id AND m.expunged_at IS NULL) END "
      "FROM accounts a WHERE a.id = ?");
  if (!q) return q.error();
  auto row = (*q)->Bind(1, account_id).Step();
  if (!row) return row.error();
  if (!*row) return Err(ErrorKind::kNotFound, "no such account");
  QuotaUsage u;
  if (!(*q)->IsNull(0)) u.limit_bytes = static_cast<uint64_t>((*q)->Int(0));
  u.used_bytes = static_cast<uint64_t>((*q)->Int(1));
  (*q)->Reset();
  return u;
}

Result<std::vector<std::pair<uint32_t, int64_t>>> QueryLiveBlobs(Db& db, int64_t mailbox_id) {
  auto s = db.Cached(
      "SELECT uid, blob_id FROM messages WHERE mailbox_id = ? AND expunged_at IS NULL ORDER BY "
      "uid");
  if (!s) return s.error();
  (*s)->Bind(1, mailbox_id);
  std::vector<std::pair<uint32_t, int64_t>> out;
  auto st = (*s)->ForEachRow(
      [&](Stmt& row) { out.emplace_back(static_cast<uint32_t>(row.Int(0)), row.Int(1)); });
  if (!st) return st.error();
  return out;
}

Result<std::vector<std::pair<uint32_t, int64_t>>> QueryLiveBlobsAboveOrIn(
    Db& db, int64_t mailbox_id, int64_t above, const std::vector<int64_t>& ids) {
  std::vector<std::pair<uint32_t, int64_t>> out;
  auto collect = [&](Stmt& row) {
    out.emplace_back(static_cast<uint32_t>(row.Int(0)), row.Int(1));
  };
  auto s = db.Cached(
      "SELECT uid, blob_id FROM messages WHERE mailbox_id = ? AND blob_id > ? AND expunged_at IS "
      "NULL");
  if (!s) return s.error();
  (*s)->Bind(1, mailbox_id).Bind(2, above);
  if (auto st = (*s)->ForEachRow(collect); !st) return st.error();
  auto one = db.Cached(
      "SELECT uid, blob_id FROM messages WHERE mailbox_id = ? AND blob_id = ? AND expunged_at IS "
      "NULL");
  if (!one) return one.error();
  for (int64_t id : ids) {
    if (id > above) continue;  // listed above
    (*one)->Reset();
    (*one)->Bind(1, mailbox_id).Bind(2, id);
    if (auto st = (*one)->ForEachRow(collect); !st) return st.error();
  }
  (*one)->Reset();
  std::sort(out.begin(), out.end());
  return out;
}

Result<int64_t> QueryMaxBlobId(Db& db) {
  auto s = db.Cached("SELECT coalesce(max(id), 0) FROM blobs");
  if (!s) return s.error();
  int64_t max_id = 0;
  auto st = (*s)->ForEachRow([&](Stmt& row) { max_id = row.Int(0); });
  if (!st) return st.error();
  return max_id;
}

namespace {

// Reads a row of "SELECT id, sha256, segment, offset, stored_length, size,
// codec, mime FROM blobs".
BlobToIndex BlobToIndexOf(Stmt& row) {
  BlobToIndex b;
  b.id = row.Int(0);
  b.ref.sha256 = row.Blob(1);
  b.ref.segment = static_cast<uint32_t>(row.Int(2));
  b.ref.offset = static_cast<uint64_t>(row.Int(3));
  b.ref.stored_length = static_cast<uint64_t>(row.Int(4));
  b.ref.size = static_cast<uint64_t>(row.Int(5));
  b.ref.codec = static_cast<Codec>(row.Int(6));
  b.mime = row.Blob(7);
  return b;
}

}  // namespace

Result<std::vector<BlobToIndex>> QueryBlobsAbove(Db& db, int64_t after, int64_t limit) {
  auto s = db.Cached(
      "SELECT id, sha256, segment, offset, stored_length, size, codec, mime FROM blobs WHERE id > "
      "? AND refs > 0 ORDER BY id LIMIT ?");
  if (!s) return s.error();
  (*s)->Bind(1, after).Bind(2, limit);
  std::vector<BlobToIndex> out;
  auto st = (*s)->ForEachRow([&](Stmt& row) { out.push_back(BlobToIndexOf(row)); });
  if (!st) return st.error();
  return out;
}

Result<std::vector<BlobToIndex>> QueryBlobsById(Db& db, const std::vector<int64_t>& ids) {
  auto s = db.Cached(
      "SELECT id, sha256, segment, offset, stored_length, size, codec, mime FROM blobs WHERE id = "
      "?");
  if (!s) return s.error();
  std::vector<BlobToIndex> out;
  out.reserve(ids.size());
  for (int64_t id : ids) {
    (*s)->Reset();
    (*s)->Bind(1, id);
    auto st = (*s)->ForEachRow([&](Stmt& row) { out.push_back(BlobToIndexOf(row)); });
    if (!st) return st.error();
  }
  return out;
}

}  // namespace sqlite
}  // namespace hato::store
