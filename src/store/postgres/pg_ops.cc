#include "store/postgres/pg_ops.h"

#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "base/digest.h"
#include "base/strings.h"
#include "store/mailbox_keywords.h"
#include "store/mailbox_name.h"
#include "store/postgres/pg_lists.h"

namespace hato::store::pg {
namespace {

constexpr int kZstdLevel = 1;  // fast: bodies are compressed on the commit path
// Kept this long in submission_log: the longest sending-limit window and a day of slack.
constexpr int64_t kSubmissionLogSeconds = 2 * 86400;

std::string DomainOfAddress(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : AsciiLower(address.substr(at + 1));
}

// Text for a PostgreSQL text column: no NUL bytes, and valid UTF-8 (invalid
// sequences become '?'), so that derived data never fails a delivery.
std::string CleanText(std::string_view s) {
  // Most text is ASCII without NUL: copied whole, 8 bytes checked at a time.
  size_t i = 0;
  constexpr uint64_t kHigh = 0x8080808080808080ull, kOnes = 0x0101010101010101ull;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if ((w & kHigh) != 0 || ((w - kOnes) & ~w & kHigh) != 0) break;  // non-ASCII or a NUL
  }
  while (i < s.size() && static_cast<unsigned char>(s[i]) - 1u < 0x7fu) ++i;
  if (i == s.size()) return std::string(s);
  std::string out;
  out.reserve(s.size());
  out.append(s.substr(0, i));
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size() && c != 0 && !(n == 2 && c < 0xC2);
    for (size_t k = 1; ok && k < n; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    }
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

struct MailboxRow {
  int64_t id = 0;
  uint32_t uidvalidity = 0;
};

Result<MailboxRow> FindMailboxBy(Conn& c, const char* sql, int64_t account_id,
                                 std::string_view value) {
  auto r = c.Exec(sql, {P(account_id), P(value)});
  if (!r) return r.error();
  if (r->empty()) return Err(ErrorKind::kNotFound, "no such mailbox: " + std::string(value));
  return MailboxRow{r->Int(0, 0), static_cast<uint32_t>(r->Int(0, 1))};
}

Result<MailboxRow> FindMailbox(Conn& c, int64_t account_id, const std::string& name) {
  auto canonical = CanonicalMailboxName(name);
  if (!canonical) return canonical.error();
  return FindMailboxBy(c,
                       "SELECT id, uidvalidity FROM mailboxes WHERE account_id = $1 AND name = $2 "
                       "AND deleted_at IS NULL",
                       account_id, *canonical);
}

Result<MailboxRow> FindSpecialUse(Conn& c, int64_t account_id, std::string_view special_use) {
  return FindMailboxBy(c,
                       "SELECT id, uidvalidity FROM mailboxes WHERE account_id = $1 AND "
                       "special_use = $2 AND deleted_at IS NULL ORDER BY id LIMIT 1",
                       account_id, special_use);
}

struct Slot {
  uint32_t uid = 0;
  uint64_t modseq = 0;
};

// Takes the next UID and modseq of a mailbox. The row lock it takes orders
// concurrent writers (on this or other nodes): UIDs and modseqs only grow.
Result<Slot> NextSlot(Txn& t, int64_t mailbox_id) {
  auto r = t.c.Exec(
      "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1 "
      "WHERE id = $1 RETURNING uidnext - 1, highest_modseq",
      {P(mailbox_id)});
  if (!r) return r.error();
  if (r->empty()) return Err(ErrorKind::kNotFound, "mailbox vanished");
  t.touched.insert(mailbox_id);
  return Slot{static_cast<uint32_t>(r->Int(0, 0)), static_cast<uint64_t>(r->Int(0, 1))};
}

Result<uint64_t> NextModseq(Txn& t, int64_t mailbox_id) {
  auto r = t.c.Exec(
      "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1 "
      "RETURNING highest_modseq",
      {P(mailbox_id)});
  if (!r) return r.error();
  if (r->empty()) return Err(ErrorKind::kNotFound, "mailbox vanished");
  t.touched.insert(mailbox_id);
  return static_cast<uint64_t>(r->Int(0, 0));
}

constexpr const char* kIndexTextSql =
    "INSERT INTO blob_text(blob_id, header, body) VALUES($1, $2, $3) "
    "ON CONFLICT (blob_id) DO NOTHING";

std::vector<Param> IndexTextParams(int64_t blob_id, const IndexText& text) {
  return {P(blob_id), P(CleanText(text.header)), P(CleanText(text.body))};
}

Status IndexBlobRow(Txn& t, int64_t blob_id, const IndexText& text) {
  auto r = t.c.Exec(kIndexTextSql, IndexTextParams(blob_id, text));
  if (!r) return r.error();
  return Ok();
}

// The payload as stored: zstd when it saves at least 1/8 (as in store/blobs.cc).
std::string Encode(std::string_view content, bool compress, Codec& codec) {
  codec = Codec::kRaw;
  if (compress && content.size() >= 512) {
    std::string out(ZSTD_compressBound(content.size()), '\0');
    size_t n = ZSTD_compress(out.data(), out.size(), content.data(), content.size(), kZstdLevel);
    if (!ZSTD_isError(n) && n < content.size() - content.size() / 8) {
      out.resize(n);
      codec = Codec::kZstd;
      return out;
    }
  }
  return std::string(content);
}

Status WriteChunks(Txn& t, int64_t blob_id, std::string_view payload) {
  int seq = 0;
  for (size_t off = 0; off < payload.size() || seq == 0; off += kChunkBytes, ++seq) {
    auto part = payload.substr(off, kChunkBytes);
    auto r = t.c.Exec("INSERT INTO blob_chunks(blob_id, seq, data) VALUES($1, $2, $3)",
                      {P(blob_id), P(int64_t{seq}), Bytes(part)});
    if (!r) return r.error();
    if (payload.empty()) break;
  }
  return Ok();
}

// Reads rows [first, end) of (sha256, size, codec, stored_length, data), one
// body's chunks in order.
Result<std::string> Assemble(const Rows& r, const std::string& what, int first = 0, int end = -1) {
  if (end < 0) end = r.size();
  if (first >= end) return Err(ErrorKind::kNotFound, "no stored body " + what);
  std::string sha = r.Blob(first, 0);
  auto size = static_cast<uint64_t>(r.Int(first, 1));
  auto codec = static_cast<Codec>(r.Int(first, 2));
  auto stored = static_cast<uint64_t>(r.Int(first, 3));
  std::string payload;
  payload.reserve(stored);
  for (int i = first; i < end; ++i) payload += r.Blob(i, 4);
  if (payload.size() != stored) {
    return Err(ErrorKind::kCorrupt, "body " + HexEncode(sha) + " has " +
                                        std::to_string(payload.size()) + " stored bytes, want " +
                                        std::to_string(stored));
  }
  std::string content;
  if (codec == Codec::kZstd) {
    content.resize(size);
    size_t n = ZSTD_decompress(content.data(), content.size(), payload.data(), payload.size());
    if (ZSTD_isError(n) || n != size) {
      return Err(ErrorKind::kCorrupt, "body " + HexEncode(sha) + " does not decompress");
    }
  } else {
    content = std::move(payload);
  }
  if (Sha256(content) != sha) {
    return Err(ErrorKind::kCorrupt, "body checksum mismatch (want " + HexEncode(sha) + ")");
  }
  return content;
}

Status CheckQuota(Conn& c, int64_t account_id, uint64_t more) {
  auto q = QueryQuota(c, account_id);
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
  auto r = t.c.Exec(
      "INSERT INTO messages(mailbox_id, uid, blob_id, size, internal_date, flags, keywords, "
      "return_path, modseq, saved_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING id",
      {P(m.mailbox_id), P(int64_t{slot->uid}), P(m.blob_id), P(static_cast<int64_t>(m.size)),
       P(m.internal_date), P(int64_t{m.flags}), P(m.keywords), P(m.return_path),
       P(static_cast<int64_t>(slot->modseq)), P(NowSeconds())});  // save date: RFC 8514
  if (!r) return r.error();
  return std::make_pair(r->Int(0, 0), slot->uid);
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
  return std::any_of(words.begin(), words.end(),
                     [&](const std::string& w) { return EqualsIgnoreCase(w, k); });
}

// The distinct keywords (KeywordKey) of a mailbox's live messages, for the
// per-mailbox keyword limit (store/keyword_limits.h).
Result<std::set<std::string>> MailboxKeywords(Txn& t, int64_t mailbox_id) {
  auto all = t.c.Exec(
      "SELECT keywords FROM messages WHERE mailbox_id = $1 AND expunged_at IS NULL AND "
      "keywords <> ''",
      {P(mailbox_id)});
  if (!all) return all.error();
  std::set<std::string> distinct;
  for (int row = 0; row < static_cast<int>(all->size()); ++row) {
    for (const auto& k : SplitKeywords(all->Text(row, 0))) distinct.insert(KeywordKey(k));
  }
  return distinct;
}

// Whether each of `keys` (KeywordKey) is on some live message of the mailbox.
Result<bool> MailboxHasKeywords(Txn& t, int64_t mailbox_id, const std::vector<std::string>& keys) {
  for (const auto& k : keys) {
    auto r = t.c.Exec(
        "SELECT 1 FROM messages WHERE mailbox_id = $1 AND expunged_at IS NULL AND "
        "strpos(' ' || lower(keywords) || ' ', $2) > 0 LIMIT 1",
        {P(mailbox_id), P(" " + k + " ")});
    if (!r) return r.error();
    if (r->size() == 0) return false;
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

// Columns: id, uid, size, internal_date, flags, modseq, keywords, save date
// (the internal date for rows stored before save dates were kept, RFC 8514).
#define HATO_META_COLS \
  "id, uid, size, internal_date, flags, modseq, keywords, coalesce(saved_at, internal_date)"
MessageMeta MetaFromRow(const Rows& r, int i) {
  MessageMeta m;
  m.id = r.Int(i, 0);
  m.uid = static_cast<uint32_t>(r.Int(i, 1));
  m.size = static_cast<uint64_t>(r.Int(i, 2));
  m.internal_date = r.Int(i, 3);
  m.flags = static_cast<uint32_t>(r.Int(i, 4));
  m.modseq = static_cast<uint64_t>(r.Int(i, 5));
  m.keywords = r.Text(i, 6);
  m.saved_date = r.Int(i, 7);
  return m;
}

uint32_t NewUidValidity(Txn& t, int64_t account_id) {
  // Strictly greater than any UIDVALIDITY the account had (RFC 3501 2.3.1.1).
  int64_t prev = 0;
  if (auto r = t.c.Exec("SELECT coalesce(max(uidvalidity), 0) FROM mailboxes WHERE account_id = $1",
                        {P(account_id)})) {
    prev = r->Int(0, 0);
  }
  int64_t now = NowSeconds() & 0x7fffffff;
  return static_cast<uint32_t>(std::max(now, prev + 1) & 0x7fffffff);
}

Result<std::vector<int64_t>> Ids(Conn& c, const char* sql, const std::vector<Param>& params) {
  auto r = c.Exec(sql, params);
  if (!r) return r.error();
  std::vector<int64_t> out;
  for (int i = 0; i < r->size(); ++i) out.push_back(r->Int(i, 0));
  return out;
}

}  // namespace

std::string EncodeBody(std::string_view content, bool compress, Codec& codec) {
  return Encode(content, compress, codec);
}

Status WriteBodyChunks(Txn& t, int64_t blob_id, std::string_view payload) {
  return WriteChunks(t, blob_id, payload);
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t IndexMark::From(int64_t now_ms, int64_t max_id) {
  // Passes remembered at most (one a second, and one after each commit that
  // stored a body without its text): past it a pass is not remembered, which
  // only holds the mark back.
  constexpr size_t kMaxRemembered = 4096;
  while (!seen_.empty() && seen_.front().first <= now_ms - settle_ms_) {
    mark_ = std::max(mark_, seen_.front().second);
    seen_.pop_front();
  }
  if (seen_.size() < kMaxRemembered) seen_.emplace_back(now_ms, max_id);
  if (!full_done_ || now_ms - last_full_ms_ >= full_pass_ms_) {
    full_done_ = true;
    last_full_ms_ = now_ms;
    return 0;
  }
  return mark_;
}

void IndexMark::Failed(int64_t) {
  // Bodies this pass did not get to may fall below the mark while the
  // database is away: the next pass looks at every body.
  full_done_ = false;
}

Result<int64_t> PutBlob(Txn& t, std::string_view content, std::string_view mime, int64_t refs,
                        const std::optional<IndexText>& text, std::string_view sort_keys,
                        std::string_view thread_id) {
  std::string sha = Sha256(content);
  Param mime_param = mime.empty() ? Null() : Bytes(mime);
  Param keys_param = sort_keys.empty() ? Null() : Bytes(sort_keys);
  Param thread_param = thread_id.empty() ? Null() : P(std::string(thread_id));
  auto up = t.c.Exec(
      "UPDATE blobs SET refs = refs + $1, mime = coalesce(mime, $2), sort_keys = "
      "coalesce(sort_keys, $4), thread_id = coalesce(thread_id, $5) WHERE sha256 = $3 "
      "RETURNING id",
      {P(refs), mime_param, Bytes(sha), keys_param, thread_param});
  if (!up) return up.error();
  int64_t id = 0;
  if (!up->empty()) {
    id = up->Int(0, 0);
  } else {
    Codec codec;
    std::string payload = Encode(content, t.compress, codec);
    // Another node may store the same body at the same moment: the upsert
    // counts our references on its row, and only the inserter writes chunks.
    auto ins = t.c.Exec(
        "INSERT INTO blobs(sha256, stored_length, size, codec, refs, mime, sort_keys, "
        "thread_id) VALUES($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (sha256) DO UPDATE SET refs = "
        "blobs.refs + EXCLUDED.refs, mime = coalesce(blobs.mime, EXCLUDED.mime), sort_keys = "
        "coalesce(blobs.sort_keys, EXCLUDED.sort_keys), thread_id = coalesce(blobs.thread_id, "
        "EXCLUDED.thread_id) RETURNING id, xmax = 0",
        {Bytes(sha), P(static_cast<int64_t>(payload.size())),
         P(static_cast<int64_t>(content.size())), P(static_cast<int64_t>(codec)), P(refs),
         mime_param, keys_param, thread_param});
    if (!ins) return ins.error();
    id = ins->Int(0, 0);
    if (ins->Int(0, 1) != 0) {
      if (auto st = WriteChunks(t, id, payload); !st) return st.error();
      if (!text) t.unindexed = true;
    }
  }
  if (text) {
    if (auto st = IndexBlobRow(t, id, *text); !st) return st.error();
  }
  return id;
}

Result<std::string> ReadBlobById(Conn& c, int64_t blob_id) {
  auto r = c.Exec(
      "SELECT b.sha256, b.size, b.codec, b.stored_length, k.data FROM blobs b JOIN blob_chunks k "
      "ON k.blob_id = b.id WHERE b.id = $1 ORDER BY k.seq",
      {P(blob_id)});
  if (!r) return r.error();
  return Assemble(*r, "id " + std::to_string(blob_id));
}

Result<std::vector<std::string>> ReadBlobsById(Conn& c, const std::vector<int64_t>& blob_ids) {
  std::string list = "{";
  for (int64_t id : blob_ids) {
    if (list.size() > 1) list += ',';
    list += std::to_string(id);
  }
  auto r = c.Exec(
      "SELECT b.sha256, b.size, b.codec, b.stored_length, k.data, b.id FROM blobs b JOIN "
      "blob_chunks k ON k.blob_id = b.id WHERE b.id = ANY($1::bigint[]) ORDER BY b.id, k.seq",
      {P(list + "}")});
  if (!r) return r.error();
  std::map<int64_t, std::pair<int, int>> rows;  // blob id -> its rows [first, end)
  for (int i = 0; i < r->size(); ++i) {
    auto it = rows.try_emplace(r->Int(i, 5), i, i).first;
    it->second.second = i + 1;
  }
  std::vector<std::string> out;
  for (int64_t id : blob_ids) {
    auto at = rows.find(id);
    auto [first, end] = at == rows.end() ? std::pair<int, int>{0, 0} : at->second;
    auto content = Assemble(*r, "id " + std::to_string(id), first, end);
    if (!content) return content.error();
    out.push_back(std::move(*content));
  }
  return out;
}

Result<std::string> ReadBlobBySha(Conn& c, std::string_view sha256) {
  auto r = c.Exec(
      "SELECT b.sha256, b.size, b.codec, b.stored_length, k.data FROM blobs b JOIN blob_chunks k "
      "ON k.blob_id = b.id WHERE b.sha256 = $1 ORDER BY k.seq",
      {Bytes(sha256)});
  if (!r) return r.error();
  return Assemble(*r, HexEncode(sha256));
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
    return FindMailbox(t.c, f.account_id, kInbox);
  }
  if (f.mailbox[0] == '\\') {
    mb = FindSpecialUse(t.c, f.account_id, f.mailbox);
  } else {
    mb = FindMailbox(t.c, f.account_id, f.mailbox);
    if (!mb && mb.error().kind == ErrorKind::kNotFound && f.create) {
      auto canonical = CanonicalMailboxName(f.mailbox);
      // Checked before any write, so a refused name leaves the transaction clean.
      if (canonical && CheckNewMailboxName(*canonical).ok()) {
        if (auto st = ApplyCreateMailbox(t, f.account_id, *canonical, ""); !st) return st.error();
        mb = FindMailbox(t.c, f.account_id, *canonical);
      }
    }
  }
  if (mb) return mb;
  if (mb.error().kind != ErrorKind::kNotFound && mb.error().kind != ErrorKind::kInvalid) {
    return mb.error();
  }
  fell_back = true;
  return FindMailbox(t.c, f.account_id, kInbox);
}

// DeliveryRequest::filings: one copy per filing, one blob for all those
// that store the delivery's content; a filing with its own content
// (Filing::content) gets a blob of its own.
static Status ApplyFilings(Txn& t, const DeliveryRequest& req, DeliveryReceipt& receipt) {
  auto shared_refs = static_cast<int64_t>(std::count_if(
      req.filings.begin(), req.filings.end(), [](const Filing& f) { return f.content.empty(); }));
  Result<int64_t> shared = int64_t{0};
  if (shared_refs > 0)
    shared =
        PutBlob(t, req.content, req.mime, shared_refs, std::nullopt, req.sort_keys, req.thread_id);
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
    if (!f.content.empty())
      blob = PutBlob(t, f.content, f.mime, 1, std::nullopt, f.sort_keys, f.thread_id);
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

Status ApplyDelivery(Txn& t, const DeliveryRequest& req, DeliveryReceipt& receipt,
                     const IndexText* text) {
  receipt.content_id = HexEncode(Sha256(req.content));
  receipt.message_ids.clear();
  receipt.fell_back.clear();
  if (auto st = ApplyOutboundParts(t, req, receipt); !st) return st;
  // A list post's local member: the copy and its "delivered" in one transaction.
  if (!req.outcomes.empty()) {
    if (auto st = ApplyOutcomes(t, req.outcomes); !st) return st;
  }
  if (!req.filings.empty()) return ApplyFilings(t, req, receipt);
  if (req.account_ids.empty()) return Ok();
  auto blob =
      PutBlob(t, req.content, req.mime, static_cast<int64_t>(req.account_ids.size()),
              text ? std::optional<IndexText>(*text) : std::nullopt, req.sort_keys, req.thread_id);
  if (!blob) return blob.error();
  for (int64_t account : req.account_ids) {
    Result<MailboxRow> mb = Err(ErrorKind::kNotFound, "");
    if (req.junk) mb = FindSpecialUse(t.c, account, "\\Junk");
    if (!mb) mb = FindMailbox(t.c, account, kInbox);
    if (!mb) return mb.error();
    NewMessage m{mb->id, *blob, req.content.size(), req.received_at, 0, "", req.return_path};
    auto id = InsertMessage(t, m);
    if (!id) return id.error();
    receipt.message_ids.push_back(id->first);
  }
  return Ok();
}

// PipelinedDeliveries' statement, for deliveries 1..N (the arrays $1-$14,
// one element each) to their accounts ($15 the delivery of each, $16 the
// account): each body (counted once per account, its one chunk written only
// by the inserter, as in PutBlob; the bodies are distinct), its SEARCH text
// when given (blob_text: the text indexer then has nothing to read back),
// each account's mailbox (the first \Junk when the delivery's junk names it,
// else INBOX, as ApplyDelivery picks), the next UIDs and modseqs of each
// mailbox, one per message in the order of the deliveries (the row lock
// orders concurrent writers, as in NextSlot), and the messages. One
// statement for a batch of deliveries: the counter trigger
// (hato_messages_added), the executor's set-up and the foreign-key checks'
// plans are paid once per batch, not per message. Rows (delivery, message
// id, mailbox id) in the order of the deliveries and their accounts; fewer
// when an account has no such mailbox.
constexpr const char* kDeliveriesSql =
    "WITH d AS (SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::bigint[], "
    "$5::bigint[], $6::bytea[], $7::bytea[], $8::text[], $9::bytea[], $10::text[], $11::text[], "
    "$12::text[], $13::bigint[], $14::text[]) WITH ORDINALITY AS d(sha, stored, size, codec, refs, "
    "mime, keys, thread, payload, header, body, junk, received, rpath, ord)), "
    "b AS (INSERT INTO blobs(sha256, stored_length, size, codec, refs, mime, sort_keys, "
    "thread_id) SELECT sha, stored, size, codec, refs, mime, keys, thread FROM d ORDER BY ord "
    "ON CONFLICT (sha256) DO UPDATE SET refs = blobs.refs + EXCLUDED.refs, mime = "
    "coalesce(blobs.mime, EXCLUDED.mime), sort_keys = coalesce(blobs.sort_keys, "
    "EXCLUDED.sort_keys), thread_id = coalesce(blobs.thread_id, EXCLUDED.thread_id) "
    "RETURNING id, sha256, xmax = 0 AS fresh), "
    "k AS (INSERT INTO blob_chunks(blob_id, seq, data) SELECT b.id, 0, d.payload FROM b JOIN d "
    "ON d.sha = b.sha256 WHERE b.fresh), "
    "x AS (INSERT INTO blob_text(blob_id, header, body) SELECT b.id, d.header, d.body FROM b "
    "JOIN d ON d.sha = b.sha256 WHERE d.header IS NOT NULL ON CONFLICT (blob_id) DO NOTHING), "
    "r AS (SELECT a.ord AS rord, a.delivery, (SELECT x.id FROM mailboxes x WHERE x.account_id = "
    "a.account AND x.deleted_at IS NULL AND (x.name = 'INBOX' OR x.special_use = d.junk) ORDER "
    "BY coalesce(x.special_use = d.junk, false) DESC, x.id LIMIT 1) AS mailbox_id FROM "
    "unnest($15::bigint[], $16::bigint[]) WITH ORDINALITY a(delivery, account, ord) JOIN d ON "
    "d.ord = a.delivery), "
    "q AS (SELECT r.rord, r.delivery, r.mailbox_id, row_number() OVER (PARTITION BY r.mailbox_id "
    "ORDER BY r.rord) AS n FROM r WHERE r.mailbox_id IS NOT NULL), "
    "c AS (SELECT mailbox_id, count(*) AS k FROM q GROUP BY mailbox_id), "
    "s AS (UPDATE mailboxes x SET uidnext = x.uidnext + c.k, highest_modseq = x.highest_modseq "
    "+ c.k FROM c WHERE x.id = c.mailbox_id RETURNING x.id, x.uidnext - c.k AS uid0, "
    "x.highest_modseq - c.k AS modseq0), "
    "m AS (INSERT INTO messages(mailbox_id, uid, blob_id, size, internal_date, flags, keywords, "
    "return_path, modseq, saved_at) SELECT s.id, s.uid0 + q.n - 1, b.id, d.size, d.received, 0, "
    "'', d.rpath, s.modseq0 + q.n, $17::bigint FROM q JOIN s ON s.id = q.mailbox_id JOIN d ON "
    "d.ord = q.delivery JOIN b ON b.sha256 = d.sha ORDER BY q.rord RETURNING id, mailbox_id, "
    "uid) "
    "SELECT q.delivery, m.id, m.mailbox_id FROM m JOIN s ON s.id = m.mailbox_id JOIN q ON "
    "q.mailbox_id = m.mailbox_id AND m.uid = s.uid0 + q.n - 1 ORDER BY q.rord";

namespace {

// A one-dimensional array parameter in PostgreSQL's binary format
// (array_recv): dimensions, element type and each element's length and
// bytes; nullopt elements are NULL. No quoting or hex, however big the
// bodies.
constexpr uint32_t kByteaOid = 17;
constexpr uint32_t kInt8Oid = 20;
constexpr uint32_t kTextOid = 25;

void PutBE32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

Param BinaryArray(uint32_t oid, const std::vector<std::optional<std::string>>& values) {
  std::string out;
  bool nulls = false;
  size_t bytes = 20;
  for (const auto& v : values) {
    nulls = nulls || !v;
    bytes += 4 + (v ? v->size() : 0);
  }
  out.reserve(bytes);
  PutBE32(out, 1);  // dimensions
  PutBE32(out, nulls ? 1 : 0);
  PutBE32(out, oid);
  PutBE32(out, static_cast<uint32_t>(values.size()));
  PutBE32(out, 1);  // lower bound
  for (const auto& v : values) {
    if (!v) {
      PutBE32(out, 0xffffffffu);  // -1: NULL
      continue;
    }
    PutBE32(out, static_cast<uint32_t>(v->size()));
    out += *v;
  }
  return Bytes(out);
}

Param Int8Array(const std::vector<int64_t>& values) {
  std::vector<std::optional<std::string>> encoded;
  encoded.reserve(values.size());
  for (int64_t v : values) {
    std::string e;
    auto u = static_cast<uint64_t>(v);
    for (int shift = 56; shift >= 0; shift -= 8) e += static_cast<char>((u >> shift) & 0xff);
    encoded.emplace_back(std::move(e));
  }
  return BinaryArray(kInt8Oid, encoded);
}

std::optional<std::string> Nullable(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

}  // namespace

bool Pipelinable(const DeliveryRequest& req) {
  if (!req.filings.empty() || !req.outcomes.empty() || !req.dsn_for.empty() ||
      req.submitted_by != 0 || (req.outbound && !req.outbound->recipients.empty()) ||
      req.account_ids.empty() || req.content.size() > kChunkBytes) {
    return false;
  }
  // One UPDATE changes a mailbox row once per statement: an account twice
  // takes ApplyDelivery.
  std::vector<int64_t> distinct = req.account_ids;
  std::sort(distinct.begin(), distinct.end());
  return std::adjacent_find(distinct.begin(), distinct.end()) == distinct.end();
}

std::optional<EncodedDelivery> EncodeDelivery(const DeliveryRequest& req, bool compress,
                                              const IndexText* text) {
  if (!Pipelinable(req)) return std::nullopt;
  EncodedDelivery e;
  Codec codec;
  e.payload = Encode(req.content, compress, codec);
  if (e.payload.size() > kChunkBytes) return std::nullopt;
  e.codec = static_cast<int64_t>(codec);
  e.sha256 = Sha256(req.content);
  if (text) {
    e.header = CleanText(text->header);
    e.body = CleanText(text->body);
  }
  return e;
}

std::optional<PipelinedWrite> PipelinedDeliveries(const std::vector<DeliveryPart>& parts) {
  if (parts.empty()) return std::nullopt;
  std::vector<std::optional<std::string>> sha, mime, keys, thread, payload, header, body, junk,
      rpath;
  std::vector<int64_t> stored, size, codec, refs, received, delivery, account;
  std::vector<std::string> content_ids;
  std::set<std::string_view> seen;
  for (size_t i = 0; i < parts.size(); ++i) {
    const DeliveryRequest& req = *parts[i].req;
    const EncodedDelivery& e = *parts[i].encoded;
    if (!seen.insert(e.sha256).second) return std::nullopt;  // one upsert per body and statement
    content_ids.push_back(HexEncode(e.sha256));
    sha.emplace_back(e.sha256);
    stored.push_back(static_cast<int64_t>(e.payload.size()));
    size.push_back(static_cast<int64_t>(req.content.size()));
    codec.push_back(e.codec);
    refs.push_back(static_cast<int64_t>(req.account_ids.size()));
    mime.push_back(Nullable(req.mime));
    keys.push_back(Nullable(req.sort_keys));
    thread.push_back(Nullable(req.thread_id));
    payload.emplace_back(e.payload);
    header.push_back(e.header);
    body.push_back(e.body);
    junk.push_back(req.junk ? std::optional<std::string>("\\Junk") : std::nullopt);
    received.push_back(req.received_at);
    rpath.push_back(CleanText(req.return_path));
    for (int64_t a : req.account_ids) {
      delivery.push_back(static_cast<int64_t>(i + 1));
      account.push_back(a);
    }
  }
  PipelinedWrite w;
  w.statements.push_back(
      {kDeliveriesSql,
       {BinaryArray(kByteaOid, sha), Int8Array(stored), Int8Array(size), Int8Array(codec),
        Int8Array(refs), BinaryArray(kByteaOid, mime), BinaryArray(kByteaOid, keys),
        BinaryArray(kTextOid, thread), BinaryArray(kByteaOid, payload),
        BinaryArray(kTextOid, header), BinaryArray(kTextOid, body), BinaryArray(kTextOid, junk),
        Int8Array(received), BinaryArray(kTextOid, rpath), Int8Array(delivery), Int8Array(account),
        P(NowSeconds())}});  // save date: RFC 8514
  std::vector<bool> indexed;
  for (const auto& part : parts) indexed.push_back(part.encoded->header.has_value());
  w.finish = [parts, indexed, content_ids = std::move(content_ids)](
                 Txn& t, std::vector<Rows>& rows) -> Status {
    if (rows.size() != 1) return Err(ErrorKind::kInternal, "unexpected delivery results");
    const Rows& r = rows[0];
    // Every account of every delivery has its message, or the whole
    // statement is undone and each delivery goes alone (ApplyDelivery).
    std::vector<size_t> got(parts.size(), 0);
    for (int i = 0; i < r.size(); ++i) {
      auto d = static_cast<size_t>(r.Int(i, 0));
      if (d < 1 || d > parts.size()) return Err(ErrorKind::kInternal, "unexpected delivery row");
      ++got[d - 1];
    }
    for (size_t d = 0; d < parts.size(); ++d) {
      if (got[d] != parts[d].req->account_ids.size()) {
        return Err(ErrorKind::kNotFound, "a recipient has no mailbox for the delivery");
      }
    }
    for (size_t d = 0; d < parts.size(); ++d) {
      DeliveryReceipt& receipt = *parts[d].receipt;
      receipt.content_id = content_ids[d];
      receipt.message_ids.clear();
      receipt.fell_back.clear();
      if (!indexed[d]) t.unindexed = true;
    }
    for (int i = 0; i < r.size(); ++i) {
      parts[static_cast<size_t>(r.Int(i, 0)) - 1].receipt->message_ids.push_back(r.Int(i, 1));
      t.touched.insert(r.Int(i, 2));
    }
    return Ok();
  };
  return w;
}

PipelinedWrite PipelinedIndex(const std::vector<std::pair<int64_t, IndexText>>& rows) {
  PipelinedWrite w;
  for (const auto& row : rows) {
    w.statements.push_back({kIndexTextSql, IndexTextParams(row.first, row.second)});
  }
  w.finish = [](Txn&, std::vector<Rows>&) { return Ok(); };
  return w;
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
  auto mb = FindMailbox(t.c, req.account_id, req.mailbox);
  if (!mb) return mb.error();
  if (auto st = CheckQuota(t.c, req.account_id, req.content.size() + req.keywords.size()); !st) {
    return st;
  }
  if (auto st = CheckAppendKeywords(t, mb->id, req); !st) return st;
  auto blob = PutBlob(t, req.content, req.mime, 1, std::nullopt, req.sort_keys, req.thread_id);
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
  auto dest = FindMailbox(t.c, account_id, to_mailbox);
  if (!dest) return dest.error();
  result = CopyResult{};
  result.uidvalidity = dest->uidvalidity;
  result.dest_mailbox_id = dest->id;
  if (!move) {
    uint64_t total = 0;
    for (int64_t id : ids) {
      auto r = t.c.Exec(
          "SELECT coalesce(sum(m.size), 0) FROM messages m JOIN mailboxes x ON x.id = "
          "m.mailbox_id WHERE m.id = $1 AND x.account_id = $2 AND m.expunged_at IS NULL",
          {P(id), P(account_id)});
      if (!r) return r.error();
      total += static_cast<uint64_t>(r->Int(0, 0));
    }
    if (auto st = CheckQuota(t.c, account_id, total); !st) return st;
  }
  std::vector<int64_t> moved;
  for (int64_t id : ids) {
    auto r = t.c.Exec(
        "SELECT m.uid, m.blob_id, m.size, m.internal_date, m.flags, m.keywords, m.return_path, "
        "m.mailbox_id FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id WHERE m.id = $1 AND "
        "x.account_id = $2 AND m.expunged_at IS NULL",
        {P(id), P(account_id)});
    if (!r) return r.error();
    if (r->empty()) continue;  // expunged meanwhile (RFC 3501 6.4.7)
    auto uid = static_cast<uint32_t>(r->Int(0, 0));
    NewMessage m{dest->id,
                 r->Int(0, 1),
                 static_cast<uint64_t>(r->Int(0, 2)),
                 r->Int(0, 3),
                 static_cast<uint32_t>(r->Int(0, 4)),
                 r->Text(0, 5),
                 r->Text(0, 6)};
    if (auto u = t.c.Exec("UPDATE blobs SET refs = refs + 1 WHERE id = $1", {P(m.blob_id)}); !u) {
      return u.error();
    }
    auto added = InsertMessage(t, m);
    if (!added) return added.error();
    result.source_uids.push_back(uid);
    result.dest_uids.push_back(added->second);
    result.dest_ids.push_back(added->first);
    result.source_mailbox_ids.push_back(r->Int(0, 7));
    moved.push_back(id);
  }
  if (move) return ApplyExpunge(t, account_id, moved);
  return Ok();
}

Status ApplyExpunge(Txn& t, int64_t account_id, const std::vector<int64_t>& ids) {
  int64_t now = NowSeconds();
  for (int64_t id : ids) {
    auto r = t.c.Exec(
        "SELECT m.mailbox_id FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id "
        "WHERE m.id = $1 AND x.account_id = $2 AND m.expunged_at IS NULL",
        {P(id), P(account_id)});
    if (!r) return r.error();
    if (r->empty()) continue;
    auto modseq = NextModseq(t, r->Int(0, 0));
    if (!modseq) return modseq.error();
    auto u = t.c.Exec("UPDATE messages SET expunged_at = $1, modseq = $2 WHERE id = $3",
                      {P(now), P(static_cast<int64_t>(*modseq)), P(id)});
    if (!u) return u.error();
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
  result.refused.clear();
  for (int64_t id : ids) {
    auto r = t.c.Exec(
        "SELECT m.mailbox_id, m.flags, m.keywords, m.modseq FROM messages m JOIN mailboxes x ON "
        "x.id = m.mailbox_id WHERE m.id = $1 AND x.account_id = $2 AND m.expunged_at IS NULL",
        {P(id), P(account_id)});
    if (!r) return r.error();
    if (r->empty()) continue;
    int64_t mailbox_id = r->Int(0, 0);
    auto flags = static_cast<uint32_t>(r->Int(0, 1));
    std::vector<std::string> keywords = SplitKeywords(r->Text(0, 2));
    auto modseq = static_cast<uint64_t>(r->Int(0, 3));
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
    if (new_flags == flags && new_keywords == keywords) continue;
    auto next = NextModseq(t, mailbox_id);
    if (!next) return next.error();
    auto u = t.c.Exec("UPDATE messages SET flags = $1, keywords = $2, modseq = $3 WHERE id = $4",
                      {P(int64_t{new_flags}), P(JoinKeywords(new_keywords)),
                       P(static_cast<int64_t>(*next)), P(id)});
    if (!u) return u.error();
  }
  if (keyword_growth > 0) {
    // The usage read here already includes this change's rows.
    if (auto st = CheckQuota(t.c, account_id, 0); !st) return st;
  }
  return Ok();
}

// Subscriptions are names (RFC 3501 section 6.3.6): a live mailbox carries
// its own in mailboxes.subscribed; a subscribed name without a live mailbox
// is a row of orphan_subscriptions. A mailbox created or renamed onto such a
// name takes the subscription back.
static Status AdoptOrphanSubscriptions(Txn& t, int64_t account_id) {
  auto adopt = t.c.Exec(
      "UPDATE mailboxes SET subscribed = 1 WHERE account_id = $1 AND deleted_at IS NULL AND name "
      "IN (SELECT name FROM orphan_subscriptions WHERE account_id = $1)",
      {P(account_id)});
  if (!adopt) return adopt.error();
  auto drop = t.c.Exec(
      "DELETE FROM orphan_subscriptions WHERE account_id = $1 AND name IN (SELECT name FROM "
      "mailboxes WHERE account_id = $1 AND deleted_at IS NULL)",
      {P(account_id)});
  if (!drop) return drop.error();
  return Ok();
}

Status ApplyCreateMailbox(Txn& t, int64_t account_id, const std::string& name,
                          const std::string& special_use) {
  // Other nodes' NOTIFY sessions hear of names and subscriptions by the
  // record channel (RFC 5465 sections 5.4, 5.5; Store::SetRecordListener).
  t.records.insert(account_id);
  auto canonical = CanonicalMailboxName(name);
  if (!canonical) return canonical.error();
  std::vector<std::string> levels;
  for (size_t pos = canonical->find(kHierarchySeparator); pos != std::string::npos;
       pos = canonical->find(kHierarchySeparator, pos + 1)) {
    levels.push_back(canonical->substr(0, pos));
  }
  levels.push_back(*canonical);
  for (size_t i = 0; i < levels.size(); ++i) {
    auto r = t.c.Exec(
        "SELECT 1 FROM mailboxes WHERE account_id = $1 AND name = $2 AND deleted_at IS NULL",
        {P(account_id), P(levels[i])});
    if (!r) return r.error();
    bool last = i + 1 == levels.size();
    if (!r->empty()) {
      if (last) return Err(ErrorKind::kExists, "mailbox already exists: " + levels[i]);
      continue;
    }
    auto ins = t.c.Exec(
        "INSERT INTO mailboxes(account_id, name, uidvalidity, uidnext, special_use, subscribed) "
        "VALUES($1, $2, $3, 1, $4, 0)",
        {P(account_id), P(levels[i]), P(int64_t{NewUidValidity(t, account_id)}),
         P(last ? special_use : std::string())});
    if (!ins) return ins.error();
  }
  return AdoptOrphanSubscriptions(t, account_id);
}

Status ApplyDeleteMailbox(Txn& t, int64_t account_id, const std::string& name) {
  // Other nodes' NOTIFY sessions (the record channel, as in ApplyCreateMailbox).
  t.records.insert(account_id);
  auto mb = FindMailbox(t.c, account_id, name);
  if (!mb) return mb.error();
  auto canonical = *CanonicalMailboxName(name);
  if (canonical == kInbox) return Err(ErrorKind::kInvalid, "INBOX cannot be deleted");
  std::string prefix = canonical + kHierarchySeparator;
  auto children = t.c.Exec(
      "SELECT count(*) FROM mailboxes WHERE account_id = $1 AND deleted_at IS NULL AND "
      "left(name, $2) = $3",
      {P(account_id), P(static_cast<int64_t>(prefix.size())), P(prefix)});
  if (!children) return children.error();
  if (children->Int(0, 0) > 0) {
    return Err(ErrorKind::kInvalid, "mailbox has child mailboxes; delete them first");
  }
  auto live = Ids(t.c, "SELECT id FROM messages WHERE mailbox_id = $1 AND expunged_at IS NULL",
                  {P(mb->id)});
  if (!live) return live.error();
  if (auto st = ApplyExpunge(t, account_id, *live); !st) return st;
  // DELETE leaves the name subscribed (RFC 3501 section 6.3.6, RFC 5258
  // \NonExistent).
  auto keep = t.c.Exec(
      "INSERT INTO orphan_subscriptions(account_id, name) SELECT account_id, name FROM mailboxes "
      "WHERE id = $1 AND subscribed != 0 ON CONFLICT DO NOTHING",
      {P(mb->id)});
  if (!keep) return keep.error();
  auto hide = t.c.Exec(
      "UPDATE mailboxes SET deleted_at = $1, name = chr(1) || id || '/' || name WHERE id = $2",
      {P(NowSeconds()), P(mb->id)});
  if (!hide) return hide.error();
  return Ok();
}

Status ApplyRenameMailbox(Txn& t, int64_t account_id, const std::string& from,
                          const std::string& to) {
  // Other nodes' NOTIFY sessions (the record channel, as in ApplyCreateMailbox).
  t.records.insert(account_id);
  auto src = FindMailbox(t.c, account_id, from);
  if (!src) return src.error();
  auto from_c = *CanonicalMailboxName(from);
  auto to_c = CanonicalMailboxName(to);
  if (!to_c) return to_c.error();
  if (FindMailbox(t.c, account_id, *to_c)) {
    return Err(ErrorKind::kExists, "mailbox already exists: " + *to_c);
  }
  if (to_c->rfind(from_c + kHierarchySeparator, 0) == 0) {
    return Err(ErrorKind::kInvalid, "cannot rename a mailbox into itself");
  }
  if (from_c == kInbox) {
    if (auto st = ApplyCreateMailbox(t, account_id, *to_c, ""); !st) return st;
    auto live = Ids(t.c,
                    "SELECT id FROM messages WHERE mailbox_id = $1 AND expunged_at IS NULL "
                    "ORDER BY uid",
                    {P(src->id)});
    if (!live) return live.error();
    CopyResult ignored;
    return ApplyCopy(t, account_id, *live, *to_c, /*move=*/true, ignored);
  }
  size_t slash = to_c->rfind(kHierarchySeparator);
  if (slash != std::string::npos) {
    std::string parent = to_c->substr(0, slash);
    if (!FindMailbox(t.c, account_id, parent)) {
      if (auto st = ApplyCreateMailbox(t, account_id, parent, ""); !st) return st;
    }
  }
  std::string prefix = from_c + kHierarchySeparator;
  auto ren = t.c.Exec(
      "UPDATE mailboxes SET name = $1 || substr(name, $2) WHERE account_id = $3 AND deleted_at IS "
      "NULL AND (name = $4 OR left(name, $5) = $6)",
      {P(*to_c), P(static_cast<int64_t>(from_c.size() + 1)), P(account_id), P(from_c),
       P(static_cast<int64_t>(prefix.size())), P(prefix)});
  if (!ren) return ren.error();
  t.touched.insert(src->id);
  return AdoptOrphanSubscriptions(t, account_id);
}

Status ApplySetSubscribed(Txn& t, int64_t account_id, const std::string& name, bool subscribed) {
  // Other nodes' NOTIFY sessions (the record channel, as in ApplyCreateMailbox).
  t.records.insert(account_id);
  auto mb = FindMailbox(t.c, account_id, name);
  if (!subscribed) {
    // UNSUBSCRIBE also removes a name whose mailbox is gone (RFC 3501 6.3.7).
    auto canonical = CanonicalMailboxName(name);
    if (!canonical) return canonical.error();
    auto drop = t.c.Exec("DELETE FROM orphan_subscriptions WHERE account_id = $1 AND name = $2",
                         {P(account_id), P(*canonical)});
    if (!drop) return drop.error();
    if (!mb && mb.error().kind == ErrorKind::kNotFound) return Ok();
  }
  if (!mb) return mb.error();
  auto r = t.c.Exec("UPDATE mailboxes SET subscribed = $1 WHERE id = $2",
                    {P(int64_t{subscribed}), P(mb->id)});
  if (!r) return r.error();
  return Ok();
}

Status IndexBlob(Txn& t, int64_t blob_id, const IndexText& text) {
  return IndexBlobRow(t, blob_id, text);
}

Status ApplyClaimRecent(Txn& t, int64_t mailbox_id, uint32_t up_to_uid, uint32_t& previous) {
  // FOR UPDATE: two nodes claiming at once see one another's mark (\Recent
  // goes to exactly one session).
  auto r = t.c.Exec("SELECT recent_uid FROM mailboxes WHERE id = $1 FOR UPDATE", {P(mailbox_id)});
  if (!r) return r.error();
  if (r->empty()) return Err(ErrorKind::kNotFound, "no such mailbox");
  previous = static_cast<uint32_t>(r->Int(0, 0));
  if (up_to_uid <= previous) return Ok();
  auto u = t.c.Exec("UPDATE mailboxes SET recent_uid = $1 WHERE id = $2",
                    {P(int64_t{up_to_uid}), P(mailbox_id)});
  if (!u) return u.error();
  return Ok();
}

Status ApplyRestoreMessage(Txn& t, const RestoreRequest& req, RestoreResult& result) {
  auto mb = FindMailbox(t.c, req.account_id, req.mailbox);
  if (!mb && mb.error().kind == ErrorKind::kNotFound) {
    auto st = ApplyCreateMailbox(t, req.account_id, req.mailbox, req.special_use);
    if (!st) return st;
    mb = FindMailbox(t.c, req.account_id, req.mailbox);
  }
  if (!mb) return mb.error();
  std::string sha = Sha256(req.content);
  auto dup = t.c.Exec(
      "SELECT m.uid FROM blobs b JOIN messages m ON m.blob_id = b.id WHERE b.sha256 = $1 AND "
      "m.mailbox_id = $2 AND m.internal_date = $3 AND m.expunged_at IS NULL LIMIT 1",
      {Bytes(sha), P(mb->id), P(req.internal_date)});
  if (!dup) return dup.error();
  if (!dup->empty()) {
    result.added = false;
    result.uid = static_cast<uint32_t>(dup->Int(0, 0));
    return Ok();
  }
  auto blob = PutBlob(t, req.content, req.mime, 1, std::nullopt, req.sort_keys, req.thread_id);
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
  auto find = t.c.Exec("SELECT id FROM blobs WHERE sha256 = $1", {Bytes(sha)});
  if (!find) return find.error();
  if (find->empty()) return Err(ErrorKind::kNotFound, "no stored body " + HexEncode(sha));
  int64_t id = find->Int(0, 0);
  Codec codec;
  std::string payload = Encode(content, t.compress, codec);
  auto del = t.c.Exec("DELETE FROM blob_chunks WHERE blob_id = $1", {P(id)});
  if (!del) return del.error();
  if (auto st = WriteChunks(t, id, payload); !st) return st;
  auto up =
      t.c.Exec("UPDATE blobs SET stored_length = $1, size = $2, codec = $3 WHERE id = $4",
               {P(static_cast<int64_t>(payload.size())), P(static_cast<int64_t>(content.size())),
                P(static_cast<int64_t>(codec)), P(id)});
  if (!up) return up.error();
  return Ok();
}

Status ApplyUndelete(Txn& t, int64_t account_id, const std::string& mailbox, int64_t since,
                     uint64_t& restored) {
  std::string wanted;
  if (!mailbox.empty()) {
    auto c = CanonicalMailboxName(mailbox);
    if (!c) return c.error();
    wanted = *c;
  }
  auto r = t.c.Exec(
      "SELECT m.id, x.name, x.deleted_at IS NOT NULL, x.special_use, m.blob_id, m.size, "
      "m.internal_date, m.flags, m.keywords, m.return_path FROM messages m JOIN mailboxes x ON "
      "x.id = m.mailbox_id WHERE x.account_id = $1 AND m.expunged_at > 0 AND m.expunged_at >= $2 "
      "ORDER BY m.expunged_at, m.id",
      {P(account_id), P(since)});
  if (!r) return r.error();
  restored = 0;
  for (int i = 0; i < r->size(); ++i) {
    std::string name = r->Text(i, 1);
    if (r->Int(i, 2) != 0) {
      size_t slash = name.find(kHierarchySeparator);
      name = slash == std::string::npos ? name : name.substr(slash + 1);
    }
    if (!wanted.empty() && name != wanted) continue;
    NewMessage m{0,
                 r->Int(i, 4),
                 static_cast<uint64_t>(r->Int(i, 5)),
                 r->Int(i, 6),
                 static_cast<uint32_t>(r->Int(i, 7)) & ~uint32_t{kDeleted},
                 r->Text(i, 8),
                 r->Text(i, 9)};
    auto mb = FindMailbox(t.c, account_id, name);
    if (!mb && mb.error().kind == ErrorKind::kNotFound) {
      if (auto st = ApplyCreateMailbox(t, account_id, name, r->Text(i, 3)); !st) return st;
      mb = FindMailbox(t.c, account_id, name);
    }
    if (!mb) return mb.error();
    m.mailbox_id = mb->id;
    if (auto u = t.c.Exec("UPDATE blobs SET refs = refs + 1 WHERE id = $1", {P(m.blob_id)}); !u) {
      return u.error();
    }
    auto added = InsertMessage(t, m);
    if (!added) return added.error();
    if (auto u = t.c.Exec("UPDATE messages SET expunged_at = 0 WHERE id = $1", {P(r->Int(i, 0))});
        !u) {
      return u.error();
    }
    ++restored;
  }
  return Ok();
}

Result<std::vector<std::string>> QueryOrphanSubscriptions(Conn& c, int64_t account_id) {
  auto r = c.Exec(
      "SELECT name FROM orphan_subscriptions WHERE account_id = $1 ORDER BY name COLLATE \"C\"",
      {P(account_id)});
  if (!r) return r.error();
  std::vector<std::string> out;
  for (int i = 0; i < r->size(); ++i) out.push_back(r->Text(i, 0));
  return out;
}

Result<std::vector<MailboxInfo>> QueryMailboxes(Conn& c, int64_t account_id) {
  // The counts are the mailbox's own columns, kept by a trigger (schema.cc).
  auto r = c.Exec(
      "SELECT x.id, x.name, x.special_use, x.subscribed, x.uidvalidity, x.uidnext, "
      "x.highest_modseq, x.n_messages, x.n_unseen, x.n_size, x.n_deleted, x.n_deleted_size, "
      "x.n_recent, x.n_emails, x.n_threads, x.n_unread_threads FROM mailboxes x "
      "WHERE x.account_id = $1 AND "
      "x.deleted_at IS NULL ORDER BY x.name COLLATE \"C\"",
      {P(account_id)});
  if (!r) return r.error();
  std::vector<MailboxInfo> out;
  for (int i = 0; i < r->size(); ++i) {
    MailboxInfo m;
    m.id = r->Int(i, 0);
    m.name = r->Text(i, 1);
    m.special_use = r->Text(i, 2);
    m.subscribed = r->Int(i, 3) != 0;
    m.uidvalidity = static_cast<uint32_t>(r->Int(i, 4));
    m.uidnext = static_cast<uint32_t>(r->Int(i, 5));
    m.highest_modseq = static_cast<uint64_t>(r->Int(i, 6));
    m.messages = static_cast<uint64_t>(r->Int(i, 7));
    m.unseen = static_cast<uint64_t>(r->Int(i, 8));
    m.size = static_cast<uint64_t>(r->Int(i, 9));
    m.deleted = static_cast<uint64_t>(r->Int(i, 10));
    m.deleted_size = static_cast<uint64_t>(r->Int(i, 11));
    m.recent = static_cast<uint64_t>(r->Int(i, 12));
    m.emails = static_cast<uint64_t>(r->Int(i, 13));
    m.threads = static_cast<uint64_t>(r->Int(i, 14));
    m.unread_threads = static_cast<uint64_t>(r->Int(i, 15));
    out.push_back(std::move(m));
  }
  return out;
}

namespace {

// Each mailbox's counts recounted from its live messages, in the columns'
// order (mailboxes n_*); recent ones need the mailbox's recent_uid (x).
constexpr const char* kRecount =
    "SELECT count(*), count(*) FILTER (WHERE (m.flags & 1) = 0), coalesce(sum(m.size), 0), "
    "count(*) FILTER (WHERE (m.flags & 8) != 0), "
    "coalesce(sum(m.size) FILTER (WHERE (m.flags & 8) != 0), 0), "
    "count(*) FILTER (WHERE m.uid > x.recent_uid), count(DISTINCT m.blob_id) FROM messages m "
    "WHERE m.mailbox_id = x.id AND m.expunged_at IS NULL";
// The (mailbox, Thread) rows mailbox_threads should hold.
constexpr const char* kThreadRecount =
    "SELECT m.mailbox_id, coalesce(b.thread_id, '#' || b.id), count(*), "
    "count(*) FILTER (WHERE (m.flags & 1) = 0) FROM messages m JOIN blobs b ON b.id = m.blob_id "
    "WHERE m.expunged_at IS NULL GROUP BY 1, 2";
constexpr const char* kThreadCounts =
    "SELECT count(*), count(*) FILTER (WHERE t.unseen > 0) FROM mailbox_threads t "
    "WHERE t.mailbox_id = x.id";

}  // namespace

Result<std::vector<std::string>> QueryCounterDisagreements(Conn& c, int64_t limit) {
  std::string sql =
      std::string(
          "SELECT x.id, x.name FROM mailboxes x WHERE (x.n_messages, x.n_unseen, "
          "x.n_size, x.n_deleted, x.n_deleted_size, x.n_recent, x.n_emails) <> (") +
      kRecount + ") OR (x.n_threads, x.n_unread_threads) <> (" + kThreadCounts +
      ") OR x.id IN (SELECT mailbox_id FROM (SELECT mailbox_id, thread, n, unseen FROM "
      "mailbox_threads EXCEPT " +
      kThreadRecount + ") a UNION SELECT mailbox_id FROM (" + kThreadRecount +
      " EXCEPT SELECT mailbox_id, thread, n, unseen FROM mailbox_threads) b) ORDER BY x.id "
      "LIMIT $1";
  auto r = c.Exec(sql, {P(limit)});
  if (!r) return r.error();
  std::vector<std::string> out;
  for (int i = 0; i < r->size(); ++i) {
    out.push_back("mailbox " + r->Text(i, 0) + " (" + r->Text(i, 1) + ") " +
                  std::string(kCounterProblem));
  }
  return out;
}

Status ApplyRecountMailboxes(Txn& t) {
  // No message changes (on any node) while the counts are taken and written.
  for (std::string sql : {
           std::string("LOCK TABLE messages, mailbox_threads IN SHARE ROW EXCLUSIVE MODE"),
           std::string("UPDATE mailboxes x SET (n_messages, n_unseen, n_size, n_deleted, "
                       "n_deleted_size, n_recent, n_emails) = (") +
               kRecount + ")",
           std::string("DELETE FROM mailbox_threads"),
           std::string("INSERT INTO mailbox_threads(mailbox_id, thread, n, unseen) ") +
               kThreadRecount,
           std::string("UPDATE mailboxes x SET (n_threads, n_unread_threads) = (") + kThreadCounts +
               ")",
       }) {
    if (auto r = t.c.Exec(sql); !r) return r.error();
  }
  return Ok();
}

Result<MailboxSnapshot> QueryMessages(Conn& c, int64_t account_id, const std::string& mailbox) {
  auto canonical = CanonicalMailboxName(mailbox);
  if (!canonical) return canonical.error();
  // One statement: the mailbox row and its messages from one snapshot.
  auto r = c.Exec(
      "SELECT x.id, x.uidvalidity, x.uidnext, x.highest_modseq, x.recent_uid, m.id, m.uid, "
      "m.size, m.internal_date, m.flags, m.modseq, m.keywords, coalesce(m.saved_at, "
      "m.internal_date) FROM mailboxes x LEFT JOIN "
      "messages m ON m.mailbox_id = x.id AND m.expunged_at IS NULL WHERE x.account_id = $1 AND "
      "x.name = $2 AND x.deleted_at IS NULL ORDER BY m.uid",
      {P(account_id), P(*canonical)});
  if (!r) return r.error();
  if (r->empty()) return Err(ErrorKind::kNotFound, "no such mailbox: " + *canonical);
  MailboxSnapshot snap;
  snap.mailbox_id = r->Int(0, 0);
  snap.uidvalidity = static_cast<uint32_t>(r->Int(0, 1));
  snap.uidnext = static_cast<uint32_t>(r->Int(0, 2));
  snap.highest_modseq = static_cast<uint64_t>(r->Int(0, 3));
  snap.recent_uid = static_cast<uint32_t>(r->Int(0, 4));
  for (int i = 0; i < r->size(); ++i) {
    if (r->IsNull(i, 5)) continue;
    MessageMeta m;
    m.id = r->Int(i, 5);
    m.uid = static_cast<uint32_t>(r->Int(i, 6));
    m.size = static_cast<uint64_t>(r->Int(i, 7));
    m.internal_date = r->Int(i, 8);
    m.flags = static_cast<uint32_t>(r->Int(i, 9));
    m.modseq = static_cast<uint64_t>(r->Int(i, 10));
    m.keywords = r->Text(i, 11);
    m.saved_date = r->Int(i, 12);
    snap.messages.push_back(std::move(m));
  }
  return snap;
}

Result<std::vector<uint32_t>> QueryVanished(Conn& c, int64_t mailbox_id, uint64_t since) {
  auto r = c.Exec(
      "SELECT uid FROM messages WHERE mailbox_id = $1 AND expunged_at IS NOT NULL AND modseq > $2 "
      "ORDER BY uid",
      {P(mailbox_id), P(static_cast<int64_t>(since))});
  if (!r) return r.error();
  std::vector<uint32_t> out;
  for (int i = 0; i < r->size(); ++i) out.push_back(static_cast<uint32_t>(r->Int(i, 0)));
  return out;
}

Result<MailboxChanges> QueryChanges(Conn& c, int64_t mailbox_id, uint64_t since) {
  MailboxChanges out;
  auto mb = c.Exec("SELECT uidnext, highest_modseq FROM mailboxes WHERE id = $1", {P(mailbox_id)});
  if (!mb) return mb.error();
  if (mb->empty()) return Err(ErrorKind::kNotFound, "no such mailbox");
  out.uidnext = static_cast<uint32_t>(mb->Int(0, 0));
  out.highest_modseq = static_cast<uint64_t>(mb->Int(0, 1));
  auto r = c.Exec("SELECT " HATO_META_COLS
                  ", expunged_at IS NOT NULL FROM messages WHERE mailbox_id = $1 AND modseq > $2 "
                  "ORDER BY uid",
                  {P(mailbox_id), P(static_cast<int64_t>(since))});
  if (!r) return r.error();
  for (int i = 0; i < r->size(); ++i) {
    // Rows committed after the mailbox row was read: the session sees them next time.
    if (static_cast<uint64_t>(r->Int(i, 5)) > out.highest_modseq) continue;
    if (r->Int(i, 8) != 0) {
      out.expunged.push_back(static_cast<uint32_t>(r->Int(i, 1)));
      continue;
    }
    out.changed.push_back(MetaFromRow(*r, i));
  }
  return out;
}

Result<MailboxChanges> QueryChangesPage(Conn& c, int64_t mailbox_id, uint64_t since,
                                        size_t max_rows, size_t max_bytes) {
  MailboxChanges out;
  auto mb = c.Exec("SELECT uidnext, highest_modseq FROM mailboxes WHERE id = $1", {P(mailbox_id)});
  if (!mb) return mb.error();
  if (mb->empty()) return Err(ErrorKind::kNotFound, "no such mailbox");
  out.uidnext = static_cast<uint32_t>(mb->Int(0, 0));
  out.highest_modseq = static_cast<uint64_t>(mb->Int(0, 1));
  // Where the page ends: the first modseq at which the running size (or
  // count) of the rows reaches the bound; the rows up to it are the page.
  // Only that boundary crosses the wire, then only the page's rows.
  auto bound = c.Exec(
      "SELECT modseq FROM (SELECT modseq, sum(octet_length(keywords) + $4) OVER w AS bytes, "
      "count(*) OVER w AS n FROM messages WHERE mailbox_id = $1 AND modseq > $2 AND modseq <= "
      "$3 WINDOW w AS (ORDER BY modseq RANGE UNBOUNDED PRECEDING)) x WHERE bytes >= $5 OR n >= "
      "$6 ORDER BY modseq LIMIT 1",
      {P(mailbox_id), P(static_cast<int64_t>(since)), P(static_cast<int64_t>(out.highest_modseq)),
       P(static_cast<int64_t>(sizeof(MessageMeta))), P(static_cast<int64_t>(max_bytes)),
       P(static_cast<int64_t>(max_rows))});
  if (!bound) return bound.error();
  if (!bound->empty()) {
    auto last = static_cast<uint64_t>(bound->Int(0, 0));
    if (last < out.highest_modseq) {
      out.more = true;
      out.highest_modseq = last;
    }
  }
  auto r = c.Exec(
      "SELECT " HATO_META_COLS
      ", expunged_at IS NOT NULL FROM messages WHERE mailbox_id = $1 AND modseq > $2 "
      "AND modseq <= $3 ORDER BY uid",
      {P(mailbox_id), P(static_cast<int64_t>(since)), P(static_cast<int64_t>(out.highest_modseq))});
  if (!r) return r.error();
  for (int i = 0; i < r->size(); ++i) {
    if (r->Int(i, 8) != 0) {
      out.expunged.push_back(static_cast<uint32_t>(r->Int(i, 1)));
      continue;
    }
    out.changed.push_back(MetaFromRow(*r, i));
  }
  return out;
}

Status QueryMessagesByUid(Conn& c, int64_t mailbox_id, uint32_t first, uint32_t last,
                          std::vector<MessageMeta>& out) {
  auto r = c.Exec("SELECT " HATO_META_COLS
                  " FROM messages WHERE mailbox_id = $1 AND uid BETWEEN $2 AND $3 ORDER BY uid",
                  {P(mailbox_id), P(int64_t{first}), P(int64_t{last})});
  if (!r) return r.error();
  for (int i = 0; i < r->size(); ++i) out.push_back(MetaFromRow(*r, i));
  return Ok();
}

Result<QuotaUsage> QueryQuota(Conn& c, int64_t account_id) {
  auto r = c.Exec(
      "SELECT a.quota_bytes, CASE WHEN a.quota_bytes IS NULL THEN 0 ELSE "
      "(SELECT coalesce(sum(m.size + octet_length(m.keywords)), 0) FROM messages m "
      "JOIN mailboxes x ON x.id = m.mailbox_id "
      "WHERE x.account_id = a.id AND m.expunged_at IS NULL) END "
      "FROM accounts a WHERE a.id = $1",
      {P(account_id)});
  if (!r) return r.error();
  if (r->empty()) return Err(ErrorKind::kNotFound, "no such account");
  QuotaUsage u;
  if (!r->IsNull(0, 0)) u.limit_bytes = static_cast<uint64_t>(r->Int(0, 0));
  u.used_bytes = static_cast<uint64_t>(r->Int(0, 1));
  return u;
}

Result<TextMatches> QueryTextMatches(Conn& c, int64_t mailbox_id, std::string_view needle,
                                     bool with_header) {
  TextMatches out;
  // A case-insensitive substring scan of the decoded text (ASCII case
  // folding, as SQLite's lower()); strpos takes no pattern characters.
  const char* sql =
      with_header ? "SELECT m.uid FROM messages m JOIN blob_text t ON t.blob_id = m.blob_id WHERE "
                    "m.mailbox_id = $1 AND m.expunged_at IS NULL AND (strpos(lower(t.body), "
                    "lower($2::text)) > "
                    "0 OR strpos(lower(t.header), lower($2::text)) > 0) ORDER BY m.uid"
                  : "SELECT m.uid FROM messages m JOIN blob_text t ON t.blob_id = m.blob_id WHERE "
                    "m.mailbox_id = $1 AND m.expunged_at IS NULL AND strpos(lower(t.body), "
                    "lower($2::text)) > 0 "
                    "ORDER BY m.uid";
  auto r = c.Exec(sql, {P(mailbox_id), P(CleanText(needle))});
  if (!r) return r.error();
  for (int i = 0; i < r->size(); ++i) out.uids.push_back(static_cast<uint32_t>(r->Int(i, 0)));
  auto u = c.Exec(
      "SELECT uid FROM messages m WHERE mailbox_id = $1 AND expunged_at IS NULL AND NOT EXISTS "
      "(SELECT 1 FROM blob_text t WHERE t.blob_id = m.blob_id) ORDER BY uid",
      {P(mailbox_id)});
  if (!u) return u.error();
  for (int i = 0; i < u->size(); ++i) out.unindexed.push_back(static_cast<uint32_t>(u->Int(i, 0)));
  return out;
}

// ---- Outbound queue ----

namespace {

#define HATO_RCPT_COLS                                                                \
  "r.id, r.message_id, r.address, r.domain, r.notify, r.orcpt, r.state, r.attempts, " \
  "r.next_attempt_at, r.last_error, r.dsn_pending, r.delay_warned, r.retry_requests"
#define HATO_MSG_COLS                                                                            \
  "m.id, m.sender, m.envid, m.ret_hdrs, m.smtputf8, m.eight_bit, m.created_at, m.size, m.verp, " \
  "m.list_post_id"
constexpr int kMsgFirst = 13;

std::vector<QueuedMessage> Grouped(const Rows& r) {
  std::vector<QueuedMessage> out;
  std::map<int64_t, size_t> index;
  for (int i = 0; i < r.size(); ++i) {
    int64_t mid = r.Int(i, kMsgFirst);
    auto it = index.find(mid);
    if (it == index.end()) {
      it = index.emplace(mid, out.size()).first;
      QueuedMessage m;
      int f = kMsgFirst;
      m.id = r.Int(i, f);
      m.sender = r.Text(i, f + 1);
      m.envid = r.Text(i, f + 2);
      m.ret_hdrs = r.Int(i, f + 3) != 0;
      m.smtputf8 = r.Int(i, f + 4) != 0;
      m.eight_bit = r.Int(i, f + 5) != 0;
      m.created_at = r.Int(i, f + 6);
      m.size = static_cast<uint64_t>(r.Int(i, f + 7));
      m.verp = r.Int(i, f + 8) != 0;
      m.list_post_id = r.Int(i, f + 9);
      m.bulk = m.list_post_id != 0;
      out.push_back(std::move(m));
    }
    QueuedRecipient q;
    q.id = r.Int(i, 0);
    q.message_id = r.Int(i, 1);
    q.address = r.Text(i, 2);
    q.domain = r.Text(i, 3);
    q.notify = static_cast<unsigned>(r.Int(i, 4));
    q.orcpt = r.Text(i, 5);
    q.state = static_cast<RecipientState>(r.Int(i, 6));
    q.attempts = static_cast<int>(r.Int(i, 7));
    q.next_attempt_at = r.Int(i, 8);
    q.last_error = r.Text(i, 9);
    q.dsn = static_cast<DsnPending>(r.Int(i, 10));
    q.delay_warned = r.Int(i, 11) != 0;
    q.retry_requests = r.Int(i, 12);
    out[it->second].recipients.push_back(std::move(q));
  }
  return out;
}

Status RemoveMessage(Txn& t, int64_t message_id) {
  for (const char* sql :
       {"UPDATE blobs SET refs = refs - 1 WHERE id = (SELECT blob_id FROM outbound_messages "
        "WHERE id = $1)",
        "DELETE FROM outbound_recipients WHERE message_id = $1",
        "DELETE FROM outbound_messages WHERE id = $1"}) {
    if (auto r = t.c.Exec(sql, {P(message_id)}); !r) return r.error();
  }
  return Ok();
}

Status RemoveIfFinished(Txn& t, int64_t message_id) {
  // One probe of outbound_recipients_open (the predicate is the index's).
  auto r = t.c.Exec(
      "SELECT EXISTS(SELECT 1 FROM outbound_recipients WHERE message_id = $1 AND (state IN "
      "(0, 1) OR dsn_pending != 0))::int",
      {P(message_id)});
  if (!r) return r.error();
  if (r->Int(0, 0) != 0) return Ok();
  // A list post stays, finished: its rows are the post's delivery report
  // (store/postgres/pg_lists.h).
  auto fin =
      t.c.Exec("UPDATE outbound_messages SET finished_at = $1 WHERE id = $2 AND list_post_id != 0",
               {P(NowSeconds()), P(message_id)});
  if (!fin) return fin.error();
  if (fin->Affected() > 0) return Ok();
  // Its recipients' outcomes stay for JMAP (ListFinishedRecipients).
  auto keep = t.c.Exec(
      "INSERT INTO outbound_finished(message_id, address, state, last_error, attempts, "
      "finished_at) SELECT message_id, address, state, last_error, attempts, $1 FROM "
      "outbound_recipients WHERE message_id = $2",
      {P(NowSeconds()), P(message_id)});
  if (!keep) return keep.error();
  return RemoveMessage(t, message_id);
}

}  // namespace

Status ApplyOutboundParts(Txn& t, const DeliveryRequest& req, DeliveryReceipt& receipt) {
  int64_t now = NowSeconds();
  if (req.outbound && !req.outbound->recipients.empty()) {
    const OutboundRequest& o = *req.outbound;
    auto blob = PutBlob(t, o.content, "", 1);
    if (!blob) return blob.error();
    auto m = t.c.Exec(
        "INSERT INTO outbound_messages(blob_id, sender, envid, ret_hdrs, smtputf8, eight_bit, "
        "size, created_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id",
        {P(*blob), P(o.sender), P(o.envid), P(int64_t{o.ret_hdrs}), P(int64_t{o.smtputf8}),
         P(int64_t{o.eight_bit}), P(static_cast<int64_t>(o.content.size())),
         P(req.received_at ? req.received_at : now)});
    if (!m) return m.error();
    receipt.queue_id = m->Int(0, 0);
    for (const auto& rcpt : o.recipients) {
      auto r = t.c.Exec(
          "INSERT INTO outbound_recipients(message_id, address, domain, notify, orcpt, "
          "next_attempt_at) VALUES($1,$2,$3,$4,$5,$6)",
          {P(receipt.queue_id), P(rcpt.address), P(DomainOfAddress(rcpt.address)),
           P(int64_t{rcpt.notify}), P(rcpt.orcpt), P(now)});
      if (!r) return r.error();
    }
  }
  if (req.submitted_by != 0) {
    if (auto r = t.c.Exec("INSERT INTO submission_log(account_id, at) VALUES($1, $2)",
                          {P(req.submitted_by), P(now)});
        !r) {
      return r.error();
    }
    if (auto r = t.c.Exec("DELETE FROM submission_log WHERE account_id = $1 AND at < $2",
                          {P(req.submitted_by), P(now - kSubmissionLogSeconds)});
        !r) {
      return r.error();
    }
  }
  if (!req.dsn_for.empty()) {
    std::set<int64_t> messages;
    for (int64_t id : req.dsn_for) {
      auto r = t.c.Exec(
          "UPDATE outbound_recipients SET dsn_pending = 0 WHERE id = $1 RETURNING message_id",
          {P(id)});
      if (!r) return r.error();
      if (!r->empty()) messages.insert(r->Int(0, 0));
    }
    for (int64_t mid : messages) {
      if (auto st = RemoveIfFinished(t, mid); !st) return st;
    }
  }
  return Ok();
}

Status ApplyOutcomes(Txn& t, const std::vector<RecipientOutcome>& outcomes) {
  if (!outcomes.empty()) t.records.insert(0);  // EmailSubmission deliveryStatus
  std::set<int64_t> messages;
  for (const auto& o : outcomes) {
    auto r = t.c.Exec(
        // A deferral keeps an attempt an admin asked for since this one
        // began (retry_requests grew), as in the SQLite store.
        "UPDATE outbound_recipients SET state = CASE WHEN $1::int = 0 THEN state ELSE $1::int "
        "END, attempts = attempts + $2::int, next_attempt_at = CASE WHEN $1::int = 0 AND "
        "$7::bigint >= 0 AND retry_requests > $7::bigint THEN next_attempt_at ELSE $3 END, "
        "last_error = $4, "
        "dsn_pending = CASE WHEN $5::int != 0 THEN $5::int ELSE dsn_pending END, "
        "delay_warned = CASE WHEN $5::int = 2 THEN 1 ELSE delay_warned END, "
        "leased_by = NULL, leased_until = 0, inflight = 0 "
        "WHERE id = $6 AND state IN (0, 1) RETURNING message_id",
        {P(static_cast<int64_t>(o.state)), P(int64_t{o.counts_attempt}), P(o.next_attempt_at),
         P(o.diagnostic), P(static_cast<int64_t>(o.dsn)), P(o.recipient_id), P(o.retry_requests)});
    if (!r) return r.error();
    if (!r->empty()) messages.insert(r->Int(0, 0));
  }
  // List posts: members' bounce scores follow their outcomes.
  if (auto st = ApplyListOutcomeScores(t, outcomes); !st) return st;
  for (int64_t mid : messages) {
    if (auto st = RemoveIfFinished(t, mid); !st) return st;
  }
  return Ok();
}

Status ApplyQueueAction(Txn& t, int64_t message_id, QueueAction action) {
  auto find = t.c.Exec("SELECT 1 FROM outbound_messages WHERE id = $1", {P(message_id)});
  if (!find) return find.error();
  if (find->empty()) {
    return Err(ErrorKind::kNotFound, "no queued message " + std::to_string(message_id));
  }
  const char* sql = nullptr;
  switch (action) {
    case QueueAction::kRetry:
      sql =
          "UPDATE outbound_recipients SET next_attempt_at = $1, retry_requests = retry_requests + "
          "1 WHERE message_id = $2 AND state = 0";
      break;
    case QueueAction::kHold:
      sql =
          "UPDATE outbound_recipients SET state = 1 WHERE state = 0 AND $1::bigint > 0 AND "
          "message_id = $2";
      break;
    case QueueAction::kRelease:
      sql =
          "UPDATE outbound_recipients SET state = 0, next_attempt_at = $1, retry_requests = "
          "retry_requests + 1 WHERE message_id = $2 AND state = 1";
      break;
    case QueueAction::kDelete:
      return RemoveMessage(t, message_id);
  }
  auto r = t.c.Exec(sql, {P(NowSeconds()), P(message_id)});
  if (!r) return r.error();
  return Ok();
}

Result<std::vector<QueuedMessage>> QueryDueOutbound(Conn& c, int64_t now, size_t limit,
                                                    const std::string& node,
                                                    int64_t lease_seconds) {
  // The runner scans again whenever a delivery ends: during a fan-out that
  // is many scans a second over the same due rows. Rows this node leased
  // with more than half the lease left are returned as they are; only the
  // others are (re)leased, so a scan writes the rows it newly takes rather
  // than all `limit` of them (the cost that made fan-out slow on
  // PostgreSQL). Another node's concurrent UPDATE of a row waits for ours,
  // then re-checks the lease condition on the new version and skips it.
  auto r = c.Exec(
      "WITH due AS (SELECT id, COALESCE(leased_by = $3 AND leased_until > $1::bigint + "
      "$4::bigint / 2, false) AS fresh FROM outbound_recipients WHERE state = 0 AND "
      "next_attempt_at <= $1 AND (leased_by IS NULL OR leased_by = $3 OR leased_until <= $1) "
      "ORDER BY bulk, next_attempt_at, id LIMIT $2), "
      "taken AS (UPDATE outbound_recipients x SET leased_by = $3, leased_until = $1::bigint + "
      "$4::bigint FROM due WHERE x.id = due.id AND NOT due.fresh AND x.state = 0 AND "
      "(x.leased_by IS NULL OR x.leased_by = $3 OR x.leased_until <= $1) RETURNING x.id), "
      "mine AS (SELECT id FROM due WHERE fresh UNION ALL SELECT id FROM taken) "
      "SELECT " HATO_RCPT_COLS ", " HATO_MSG_COLS
      " FROM mine JOIN outbound_recipients r ON r.id = mine.id JOIN outbound_messages m ON "
      "m.id = r.message_id ORDER BY r.bulk, r.next_attempt_at, r.id",
      {P(now), P(static_cast<int64_t>(limit)), P(node), P(lease_seconds)});
  if (!r) return r.error();
  return Grouped(*r);
}

Result<std::vector<QueuedMessage>> QueryPendingDsn(Conn& c, size_t limit) {
  auto r = c.Exec("SELECT " HATO_RCPT_COLS ", " HATO_MSG_COLS
                  " FROM outbound_recipients r JOIN outbound_messages m ON m.id = "
                  "r.message_id WHERE r.dsn_pending != 0 ORDER BY r.message_id, r.id LIMIT $1",
                  {P(static_cast<int64_t>(limit))});
  if (!r) return r.error();
  return Grouped(*r);
}

Result<std::vector<QueuedMessage>> QueryQueue(Conn& c) {
  auto r = c.Exec("SELECT " HATO_RCPT_COLS ", " HATO_MSG_COLS
                  " FROM outbound_recipients r JOIN outbound_messages m ON m.id = "
                  "r.message_id WHERE m.finished_at IS NULL ORDER BY m.id, r.id");
  if (!r) return r.error();
  return Grouped(*r);
}

Result<QueueStats> QueryQueueStats(Conn& c) {
  auto r = c.Exec(
      "SELECT (SELECT count(*) FROM outbound_messages WHERE finished_at IS NULL), "
      "(SELECT count(*) FROM outbound_recipients WHERE state = 0), "
      "(SELECT count(*) FROM outbound_recipients WHERE state = 1), "
      "(SELECT created_at FROM outbound_messages WHERE finished_at IS NULL ORDER BY id LIMIT 1)");
  if (!r) return r.error();
  QueueStats q;
  q.messages = static_cast<uint64_t>(r->Int(0, 0));
  q.queued = static_cast<uint64_t>(r->Int(0, 1));
  q.held = static_cast<uint64_t>(r->Int(0, 2));
  q.oldest_created_at = r->IsNull(0, 3) ? 0 : r->Int(0, 3);
  return q;
}

Result<QueuedMessage> QueryQueued(Conn& c, int64_t message_id) {
  auto r = c.Exec("SELECT " HATO_RCPT_COLS ", " HATO_MSG_COLS
                  " FROM outbound_recipients r JOIN outbound_messages m ON m.id = "
                  "r.message_id WHERE m.id = $1 ORDER BY r.id",
                  {P(message_id)});
  if (!r) return r.error();
  auto g = Grouped(*r);
  if (g.empty())
    return Err(ErrorKind::kNotFound, "no queued message " + std::to_string(message_id));
  return std::move(g.front());
}

Result<std::vector<QueuedRecipient>> QueryFinishedRecipients(Conn& c, int64_t message_id) {
  auto r = c.Exec(
      "SELECT address, state, last_error, attempts FROM outbound_finished WHERE message_id = $1 "
      "ORDER BY ctid",
      {P(message_id)});
  if (!r) return r.error();
  std::vector<QueuedRecipient> out;
  for (int i = 0; i < r->size(); ++i) {
    QueuedRecipient q;
    q.message_id = message_id;
    q.address = r->Text(i, 0);
    q.state = static_cast<RecipientState>(r->Int(i, 1));
    q.last_error = r->Text(i, 2);
    q.attempts = static_cast<int>(r->Int(i, 3));
    out.push_back(std::move(q));
  }
  return out;
}

Result<uint64_t> QueryCountSubmissions(Conn& c, int64_t account_id, int64_t since) {
  auto r = c.Exec("SELECT count(*) FROM submission_log WHERE account_id = $1 AND at >= $2",
                  {P(account_id), P(since)});
  if (!r) return r.error();
  return static_cast<uint64_t>(r->Int(0, 0));
}

}  // namespace hato::store::pg
