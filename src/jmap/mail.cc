#include "jmap/mail.h"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>

#include "base/digest.h"
#include "base/strings.h"
#include "imap/proto/object_ids.h"
#include "io/fs.h"
#include "jmap/sieve.h"
#include "jmap/state.h"
#include "mime/header.h"
#include "mime/message.h"
#include "server/message_hygiene.h"

namespace hato::jmap {

// ---- Ids, states, the session ----

std::vector<std::string_view> SplitOn(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    size_t p = s.find(sep);
    std::string_view item = TrimSpaces(s.substr(0, p));
    if (!item.empty()) out.push_back(item);
    if (p == std::string_view::npos) break;
    s.remove_prefix(p + 1);
  }
  return out;
}

// g++ 12 at -O3 warns (-Wrestrict, a false positive) on "literal" +
// std::string&&; ids are built by appending instead.
std::string Prefixed(char prefix, std::string_view rest) {
  std::string out(1, prefix);
  out.append(rest);
  return out;
}

std::string EmailIdOf(std::string_view sha) { return imap::EmailObjectId(sha); }

namespace {

std::string MailboxIdOf(int64_t id) { return imap::MailboxObjectId(id); }
std::string BlobIdOf(std::string_view sha) { return Prefixed('b', HexEncode(sha)); }

std::optional<int64_t> ParseMailboxId(std::string_view s) {
  if (s.size() < 2 || s.front() != 'm') return std::nullopt;
  auto n = ParseUint(s.substr(1));
  if (!n || *n > INT64_MAX) return std::nullopt;
  return static_cast<int64_t>(*n);
}

// The JMAP role of a special-use attribute (RFC 8621 section 2, RFC 6154).
std::string RoleOf(const store::MailboxInfo& m) {
  if (m.name == store::kInbox) return "inbox";
  if (m.special_use.size() > 1) return AsciiLower(m.special_use.substr(1));
  return "";
}

// A Mailbox's sortOrder (RFC 8621 section 2): fixed, the Inbox first.
uint32_t SortOrderOf(const store::MailboxInfo& m) { return m.name == store::kInbox ? 0 : 10; }

std::vector<MailboxMark> Marks(const std::vector<store::MailboxInfo>& mailboxes, bool meta) {
  std::vector<MailboxMark> marks;
  for (const auto& m : mailboxes) {
    MailboxMark k{m.id, m.highest_modseq, m.uidnext, 0};
    if (meta) k.meta = Hash32(m.name + "\n" + m.special_use + (m.subscribed ? "\n1" : "\n0"));
    marks.push_back(k);
  }
  std::sort(marks.begin(), marks.end(),
            [](const MailboxMark& a, const MailboxMark& b) { return a.id < b.id; });
  return marks;
}

}  // namespace

std::string EmailState(const std::vector<store::MailboxInfo>& mailboxes) {
  return EncodeState('e', Marks(mailboxes, false));
}

std::string MailboxState(const std::vector<store::MailboxInfo>& mailboxes) {
  return EncodeState('m', Marks(mailboxes, true));
}

std::string SessionState(std::string_view address, const std::vector<SharedAccount>& shared) {
  std::string key(address);
  key += "\n1";
  for (const auto& a : shared) {
    key += '\n';
    key += std::to_string(a.account_id);
  }
  return Prefixed('s', std::to_string(Hash32(key)));
}

Result<std::vector<SharedAccount>> SharedAccounts(store::Store& store, const std::string& address) {
  auto lists = store.ListsOfMember(address);
  if (!lists) return lists.error();
  std::vector<SharedAccount> out;
  for (const auto& l : *lists) {
    if (l.archive_account_id != 0) out.push_back(SharedAccount{l.archive_account_id, l.address});
  }
  return out;
}

const std::vector<std::string>& SupportedCapabilities() {
  static const std::vector<std::string> caps = {kCapCore, kCapMail, kCapSubmission, kCapVacation,
                                                kCapSieve};
  return caps;
}

json::object SessionObject(const config::Config& cfg, int64_t account_id,
                           const std::string& address, const std::string& base,
                           const std::vector<SharedAccount>& shared) {
  const config::JmapLimits& l = cfg.jmap;
  json::object core;
  core["maxSizeUpload"] = std::min<uint64_t>(l.max_size_upload, cfg.http.max_body_bytes);
  core["maxConcurrentUpload"] = l.max_concurrent_upload;
  core["maxSizeRequest"] = std::min<uint64_t>(l.max_size_request, cfg.http.max_body_bytes);
  core["maxConcurrentRequests"] = l.max_concurrent_requests;
  core["maxCallsInRequest"] = l.max_calls_in_request;
  core["maxObjectsInGet"] = l.max_objects_in_get;
  core["maxObjectsInSet"] = l.max_objects_in_set;
  core["collationAlgorithms"] = json::array{"i;ascii-casemap", "i;unicode-casemap"};
  json::object caps;
  caps[kCapCore] = core;
  caps[kCapMail] = json::object{};
  caps[kCapSubmission] = json::object{};
  caps[kCapVacation] = json::object{};         // RFC 8621 section 8 (jmap/vacation.h)
  caps[kCapSieve] = SieveSessionCapability();  // RFC 9661 (jmap/sieve.h)
  json::object mail;
  mail["maxMailboxesPerEmail"] = nullptr;
  mail["maxMailboxDepth"] = nullptr;
  mail["maxSizeMailboxName"] = 255;
  mail["maxSizeAttachmentsPerEmail"] = cfg.imap.max_message_size;
  mail["emailQuerySortOptions"] =
      json::array{"receivedAt", "size", "from", "to", "subject", "sentAt", "hasKeyword"};
  mail["mayCreateTopLevelMailbox"] = true;
  json::object submission;
  submission["maxDelayedSend"] = 0;
  submission["submissionExtensions"] = json::object{};
  json::object acct_caps;
  acct_caps[kCapMail] = mail;
  acct_caps[kCapSubmission] = submission;
  acct_caps[kCapVacation] = json::object{};
  acct_caps[kCapSieve] = SieveAccountCapability(cfg);
  json::object acct;
  acct["name"] = address;
  acct["isPersonal"] = true;
  acct["isReadOnly"] = false;
  acct["accountCapabilities"] = acct_caps;
  std::string id = AccountId(account_id);
  json::object accounts{{id, acct}};
  for (const auto& a : shared) {
    // A list archive: mail reads only (RFC 8620 section 2, isReadOnly).
    json::object shared_mail = mail;
    shared_mail["mayCreateTopLevelMailbox"] = false;
    json::object s;
    s["name"] = a.name;
    s["isPersonal"] = false;
    s["isReadOnly"] = true;
    s["accountCapabilities"] = json::object{{kCapMail, shared_mail}};
    accounts[AccountId(a.account_id)] = std::move(s);
  }
  json::object o;
  o["capabilities"] = caps;
  o["accounts"] = std::move(accounts);
  o["primaryAccounts"] =
      json::object{{kCapMail, id}, {kCapSubmission, id}, {kCapVacation, id}, {kCapSieve, id}};
  o["username"] = address;
  o["apiUrl"] = base + "/jmap/api/";
  o["downloadUrl"] = base + "/jmap/download/{accountId}/{blobId}/{name}?accept={type}";
  o["uploadUrl"] = base + "/jmap/upload/{accountId}/";
  o["eventSourceUrl"] =
      base + "/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}";
  o["state"] = SessionState(address, shared);
  return o;
}

// ---- Blobs ----

Result<std::string> SaveUpload(store::Store& store, int64_t account_id, const std::string& dir,
                               const std::string& body) {
  namespace fs = std::filesystem;
  io::FileSystem* f = io::FileSystem::Default();
  if (auto st = f->CreateDirs(dir); !st) return st.error();
  // Uploads count against the account's quota (RFC 9208 STORAGE) while kept.
  uint64_t pending = 0;
  std::error_code ec;
  auto now = fs::file_time_type::clock::now();
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::error_code e2;
    auto age = now - fs::last_write_time(e.path(), e2);
    if (!e2 && age > std::chrono::seconds(kUploadLifetimeSeconds)) {
      fs::remove(e.path(), e2);
      continue;
    }
    pending += fs::file_size(e.path(), e2);
  }
  auto quota = store.GetQuota(account_id);
  if (!quota) return quota.error();
  if (quota->limit_bytes && quota->used_bytes + pending + body.size() > *quota->limit_bytes)
    return Err(ErrorKind::kTooLarge, "the upload would exceed the account's quota");
  std::string sha = Sha256(body);
  std::string path = dir + "/" + HexEncode(sha);
  if (!f->Exists(path)) {
    if (auto st = f->WriteFileAtomic(path, body); !st) return st.error();
  }
  return BlobIdOf(sha);
}

namespace {

// The store row holding an Email's body, by its full hash.
const store::EmailRow* RowBySha(const AccountData& d, std::string_view hex_sha) {
  for (const auto& r : d.rows)
    if (HexEncode(r.sha256) == hex_sha) return &r;
  return nullptr;
}

const store::EmailRow* RowByEmail(const AccountData& d, const std::string& email_id) {
  auto it = d.emails.find(email_id);
  if (it == d.emails.end()) return nullptr;
  return &d.rows[it->second.front()];
}

// A part by its part id ("1", "1.2", ...): the same numbering as IMAP
// sections (RFC 3501 section 6.4.5).
const mime::Part* PartById(const mime::Part& root, std::string_view id) {
  const mime::Part* p = &root;
  for (auto num : SplitOn(id, '.')) {
    auto n = ParseUint(num);
    if (!n || *n == 0) return nullptr;
    if (p->IsMessage() && !p->children.empty()) p = &p->children[0];
    if (p->IsMultipart()) {
      if (*n > p->children.size()) return nullptr;
      p = &p->children[*n - 1];
    } else if (*n != 1) {
      return nullptr;
    }
  }
  return p;
}

}  // namespace

Result<std::string> ReadBlob(Context& ctx, const std::string& blob_id) {
  if (blob_id.size() < 65 || blob_id[0] != 'b') return Err(ErrorKind::kNotFound, "no such blob");
  std::string hex = blob_id.substr(1, 64);
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return Err(ErrorKind::kNotFound, "no such blob");
  std::string part;
  if (blob_id.size() > 65) {
    if (blob_id[65] != '_') return Err(ErrorKind::kNotFound, "no such blob");
    part = blob_id.substr(66);
    std::replace(part.begin(), part.end(), '-', '.');
  }
  // A download names one body: only its rows are read (the body-hash
  // index), unless the request has loaded the account anyway.
  std::optional<AccountData> some;
  if (!ctx.data) {
    std::string raw;
    for (size_t i = 0; i < hex.size(); i += 2)
      raw.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    auto rows = ctx.svc.store->FindEmailRows(ctx.account_id, {raw});
    if (rows) {
      some.emplace();
      some->rows = std::move(*rows);
    }
  }
  const AccountData* d = some ? &*some : ctx.Load();
  if (!d) return Err(ErrorKind::kTemporary, ctx.error);
  std::string content;
  if (const store::EmailRow* row = RowBySha(*d, hex)) {
    auto c = ctx.svc.store->ReadMessage(ctx.account_id, row->message_id);
    if (!c) return c.error();
    content = std::move(*c);
  } else {
    std::string path = ctx.data_dir + "/jmap-uploads/" + std::to_string(ctx.account_id) + "/" + hex;
    if (!io::FileSystem::Default()->Exists(path)) {
      // A Sieve script's text (jmap/sieve.h) has no part ids.
      if (!part.empty()) return Err(ErrorKind::kNotFound, "no such blob");
      return ReadSieveBlob(ctx, hex);
    }
    auto c = io::FileSystem::Default()->ReadFile(path);
    if (!c) return c.error();
    content = std::move(*c);
  }
  if (part.empty()) return content;
  auto tree = mime::Parse(content);
  if (!tree) return Err(ErrorKind::kNotFound, "no such part");
  const mime::Part* p = PartById(*tree, part);
  if (!p || p->body_end > content.size()) return Err(ErrorKind::kNotFound, "no such part");
  std::string_view body = std::string_view(content).substr(p->header_end, p->size);
  return mime::DecodeTransfer(body, p->encoding);
}

// ---- Method helpers ----

namespace {

using Output = MethodOutput;

Output ServerFail(Context& ctx) {
  spdlog::error("jmap: store read failed for {}: {}", ctx.address, ctx.error);
  return Output::Error("serverFail", "the store is temporarily failing; try again");
}

// Ids from a "ids" argument (null = all); #creation ids resolved.
std::optional<std::vector<std::string>> IdList(Context& ctx, const json::object& args,
                                               const char* key, bool& bad) {
  bad = false;
  const json::value* v = args.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_array()) {
    bad = true;
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const auto& x : v->get_array()) {
    if (!x.is_string()) {
      bad = true;
      return std::nullopt;
    }
    std::string id(x.get_string());
    if (!id.empty() && id[0] == '#') {
      auto it = ctx.created_ids.find(id.substr(1));
      if (it != ctx.created_ids.end()) id = it->second;
    }
    out.push_back(std::move(id));
  }
  return out;
}

std::optional<std::set<std::string>> Properties(const json::object& args, const char* key,
                                                bool& bad) {
  bad = false;
  const json::value* v = args.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_array()) {
    bad = true;
    return std::nullopt;
  }
  std::set<std::string> out;
  for (const auto& x : v->get_array()) {
    if (!x.is_string()) {
      bad = true;
      return std::nullopt;
    }
    out.insert(std::string(x.get_string()));
  }
  return out;
}

// Unknown arguments are invalidArguments (RFC 8620 section 3.6.2).
bool OnlyKnown(const json::object& args, std::initializer_list<std::string_view> known,
               std::string& which) {
  for (const auto& kv : args) {
    bool ok = false;
    for (auto k : known) ok = ok || kv.key() == k;
    if (!ok) {
      which = std::string(kv.key());
      return false;
    }
  }
  return true;
}

#define HATO_KNOWN(...)                                                         \
  do {                                                                          \
    std::string unknown_;                                                       \
    if (!OnlyKnown(args, {__VA_ARGS__}, unknown_))                              \
      return Output::Error("invalidArguments", "unknown argument " + unknown_); \
  } while (0)

// ---- Mailbox (RFC 8621 section 2) ----

json::object MailboxObject(const store::MailboxInfo& m, const std::vector<store::MailboxInfo>& all,
                           const std::set<std::string>* props, bool read_only) {
  auto want = [props](const char* p) { return !props || props->count(p); };
  json::object o;
  o["id"] = MailboxIdOf(m.id);
  size_t slash = m.name.rfind(store::kHierarchySeparator);
  if (want("name")) o["name"] = slash == std::string::npos ? m.name : m.name.substr(slash + 1);
  if (want("parentId")) {
    json::value parent = nullptr;
    if (slash != std::string::npos) {
      std::string pn = m.name.substr(0, slash);
      for (const auto& x : all)
        if (x.name == pn) parent = json::string(MailboxIdOf(x.id));
    }
    o["parentId"] = parent;
  }
  if (want("role")) {
    std::string role = RoleOf(m);
    o["role"] = role.empty() ? json::value(nullptr) : json::value(json::string(role));
  }
  if (want("sortOrder")) o["sortOrder"] = SortOrderOf(m);
  // The store keeps these counts with the mailbox (no message is read).
  // Threads (section 2): those with an Email here, and those with one here
  // without $seen; the store counts them by the threadId it keeps with each
  // body (StoreOptions::thread_id, the ThreadOf rule below).
  if (want("totalEmails")) o["totalEmails"] = m.emails;
  if (want("unreadEmails")) o["unreadEmails"] = std::min(m.unseen, m.emails);
  if (want("totalThreads")) o["totalThreads"] = m.threads;
  if (want("unreadThreads")) o["unreadThreads"] = std::min(m.unread_threads, m.threads);
  if (want("myRights")) {
    json::object r;
    for (const char* k :
         {"mayReadItems", "mayAddItems", "mayRemoveItems", "maySetSeen", "maySetKeywords",
          "mayCreateChild", "mayRename", "mayDelete", "maySubmit"})
      r[k] = true;
    if (m.name == store::kInbox) {
      r["mayRename"] = false;
      r["mayDelete"] = false;
    }
    if (read_only) {  // a list archive (Context::read_only): reading only
      for (auto& kv : r) kv.value() = kv.key() == "mayReadItems";
    }
    o["myRights"] = r;
  }
  if (want("isSubscribed")) o["isSubscribed"] = m.subscribed;
  return o;
}

// The account's mailboxes with their counts but without its message rows
// (what Mailbox/get, /changes and /query need): nullopt when the request has
// loaded the account already (use it) or the store failed (Load says why).
std::optional<AccountData> MailboxesOnly(Context& ctx) {
  if (ctx.data) return std::nullopt;
  auto list = ctx.svc.store->ListMailboxes(ctx.account_id);
  if (!list) return std::nullopt;
  AccountData d;
  d.mailboxes = std::move(*list);
  return d;
}

Output MailboxGet(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "ids", "properties");
  bool bad = false;
  auto ids = IdList(ctx, args, "ids", bad);
  if (bad) return Output::Error("invalidArguments", "ids must be null or an array of Ids");
  auto props = Properties(args, "properties", bad);
  if (bad) return Output::Error("invalidArguments", "properties must be null or an array");
  if (ids && ids->size() > ctx.cfg.jmap.max_objects_in_get)
    return Output::Error("requestTooLarge", "more ids than maxObjectsInGet");
  std::optional<AccountData> some = MailboxesOnly(ctx);
  const AccountData* d = some ? &*some : ctx.Load();
  if (!d) return ServerFail(ctx);
  json::array list, not_found;
  if (!ids) {
    for (const auto& m : d->mailboxes)
      list.push_back(MailboxObject(m, d->mailboxes, props ? &*props : nullptr, ctx.read_only));
  } else {
    for (const auto& id : *ids) {
      auto n = ParseMailboxId(id);
      const store::MailboxInfo* found = nullptr;
      for (const auto& m : d->mailboxes)
        if (n && m.id == *n) found = &m;
      if (found) {
        list.push_back(
            MailboxObject(*found, d->mailboxes, props ? &*props : nullptr, ctx.read_only));
      } else {
        not_found.push_back(json::string(id));
      }
    }
  }
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["state"] = MailboxState(d->mailboxes);
  r["list"] = std::move(list);
  r["notFound"] = std::move(not_found);
  return Output::One("Mailbox/get", std::move(r));
}

// maxChanges (RFC 8620 section 5.2): the first maxChanges changed
// Mailboxes in id order, and an intermediate state that has the current
// mark of those and the old mark of the others, with hasMoreChanges.
Output MailboxChanges(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "sinceState", "maxChanges");
  const json::value* since = args.if_contains("sinceState");
  if (!since || !since->is_string()) return Output::Error("invalidArguments", "sinceState");
  std::optional<uint64_t> limit;
  if (!ReadMaxChanges(args, limit)) return Output::Error("invalidArguments", "maxChanges");
  size_t max_changes = limit.value_or(0);  // 0: no limit
  auto old = DecodeState('m', since->get_string());
  if (!old) return Output::Error("cannotCalculateChanges", "unknown state");
  std::optional<AccountData> some = MailboxesOnly(ctx);
  const AccountData* d = some ? &*some : ctx.Load();
  if (!d) return ServerFail(ctx);
  auto cur = Marks(d->mailboxes, true);
  std::map<int64_t, const MailboxMark*> old_by_id, cur_by_id, ids;
  for (const auto& o : *old) old_by_id[o.id] = &o, ids[o.id] = nullptr;
  for (const auto& c : cur) cur_by_id[c.id] = &c, ids[c.id] = nullptr;
  json::array created, updated, destroyed;
  std::vector<MailboxMark> next;
  bool only_counts = true, more = false;
  size_t count = 0;
  for (const auto& entry : ids) {
    int64_t id = entry.first;
    auto o = old_by_id.find(id);
    auto c = cur_by_id.find(id);
    bool changed = o == old_by_id.end() || c == cur_by_id.end() || !(*o->second == *c->second);
    if (changed && max_changes > 0 && count == max_changes) more = true;
    if (!changed || more) {
      if (o != old_by_id.end()) next.push_back(*o->second);
      continue;
    }
    ++count;
    if (c != cur_by_id.end()) next.push_back(*c->second);
    if (o == old_by_id.end()) {
      created.push_back(json::string(MailboxIdOf(id)));
    } else if (c == cur_by_id.end()) {
      destroyed.push_back(json::string(MailboxIdOf(id)));
    } else {
      if (o->second->meta != c->second->meta) only_counts = false;
      updated.push_back(json::string(MailboxIdOf(id)));
    }
  }
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["oldState"] = since->get_string();
  r["newState"] = more ? EncodeState('m', next) : MailboxState(d->mailboxes);
  r["hasMoreChanges"] = more;
  r["created"] = std::move(created);
  r["updated"] = updated;
  r["destroyed"] = std::move(destroyed);
  // Only counts changed: the client may fetch just those (section 2.2).
  if (only_counts && !updated.empty()) {
    r["updatedProperties"] =
        json::array{"totalEmails", "unreadEmails", "totalThreads", "unreadThreads"};
  } else {
    r["updatedProperties"] = nullptr;
  }
  return Output::One("Mailbox/changes", std::move(r));
}

// ---- Mailbox/query (RFC 8621 section 2.3, RFC 8620 section 5.5) ----

// RFC 8620 section 5.5: the window of a query's full result list that the
// client asked for (position, or anchor and anchorOffset; limit, capped at
// maxObjectsInGet and then reported), and its total when calculateTotal.
// Fills r["position"], r["ids"] (r["total"], r["limit"]); an error otherwise.
std::optional<Output> QueryWindow(Context& ctx, const json::object& args,
                                  const std::vector<std::string>& all, json::object& r) {
  const int64_t total = static_cast<int64_t>(all.size());
  int64_t position = 0;
  if (const json::value* p = args.if_contains("position"); p && !p->is_null()) {
    if (!p->is_int64()) return Output::Error("invalidArguments", "position");
    position = p->to_number<int64_t>();
    // A negative position counts from the end, clamped to 0.
    if (position < 0) position = std::max<int64_t>(0, total + position);
  }
  // With an anchor, position is ignored; index + anchorOffset, clamped to 0.
  if (const json::value* a = args.if_contains("anchor"); a && !a->is_null()) {
    if (!a->is_string()) return Output::Error("invalidArguments", "anchor");
    auto it = std::find(all.begin(), all.end(), std::string_view(a->get_string()));
    if (it == all.end()) return Output::Error("anchorNotFound");
    int64_t off = 0;
    if (const json::value* o = args.if_contains("anchorOffset"); o && !o->is_null()) {
      if (!o->is_int64()) return Output::Error("invalidArguments", "anchorOffset");
      off = std::clamp(o->to_number<int64_t>(), -total, total);  // no overflow below
    }
    position = std::max<int64_t>(0, (it - all.begin()) + off);
  }
  position = std::min(position, total);  // past the end: no ids, not an error
  const int64_t cap = static_cast<int64_t>(ctx.cfg.jmap.max_objects_in_get);
  int64_t limit = cap;
  bool capped = false;
  if (const json::value* l = args.if_contains("limit"); l && !l->is_null()) {
    if (!l->is_int64() || l->to_number<int64_t>() < 0)
      return Output::Error("invalidArguments", "limit");
    limit = std::min(cap, l->to_number<int64_t>());
    capped = l->to_number<int64_t>() > cap;
  } else {
    capped = total - position > cap;
  }
  bool want_total = false;
  if (const json::value* ct = args.if_contains("calculateTotal"); ct && !ct->is_null()) {
    if (!ct->is_bool()) return Output::Error("invalidArguments", "calculateTotal");
    want_total = ct->get_bool();
  }
  json::array ids;
  for (int64_t i = position; i < total && i < position + limit; ++i)
    ids.push_back(json::string(all[static_cast<size_t>(i)]));
  r["position"] = position;
  r["ids"] = std::move(ids);
  if (want_total) r["total"] = total;
  if (capped) r["limit"] = limit;  // the server's limit, not the client's
  return std::nullopt;
}

// A FilterOperator (RFC 8620 section 5.5): AND, OR or NOT of its
// conditions, each matched by `each` (a FilterCondition or another
// operator). An error is "unsupportedFilter:<what>" or the invalid part;
// FilterError makes it the method error.
using FilterEach = std::function<std::optional<std::string>(const json::object&, bool&)>;
std::optional<std::string> MatchOperator(const json::object& f, bool& result,
                                         const FilterEach& each) {
  const json::value* op = f.if_contains("operator");
  const json::value* conds = f.if_contains("conditions");
  if (!op || !op->is_string() || !conds || !conds->is_array())
    return std::string("bad FilterOperator");
  std::string o(op->get_string());
  if (o != "AND" && o != "OR" && o != "NOT") return std::string("bad operator " + o);
  bool any = false, all = true;
  for (const auto& c : conds->get_array()) {
    if (!c.is_object()) return std::string("bad condition");
    bool r = false;
    if (auto e = each(c.get_object(), r)) return e;
    any = any || r;
    all = all && r;
  }
  result = o == "AND" ? all : o == "OR" ? any : !any;
  return std::nullopt;
}

Output FilterError(const std::string& e) {
  if (e.rfind("unsupportedFilter:", 0) == 0)
    return Output::Error("unsupportedFilter", e.substr(18));
  return Output::Error("invalidArguments", "filter: " + e);
}

// FilterOperator nesting allowed in Mailbox/query and Email/query.
constexpr int kMaxFilterDepth = 16;

std::string_view LeafName(const store::MailboxInfo& m) {
  size_t slash = m.name.rfind(store::kHierarchySeparator);
  return slash == std::string::npos ? std::string_view(m.name)
                                    : std::string_view(m.name).substr(slash + 1);
}

// The Mailbox's parent (parentId), if the name above it is a Mailbox.
struct MailboxTree {
  std::map<std::string_view, const store::MailboxInfo*> by_name;
  explicit MailboxTree(const std::vector<store::MailboxInfo>& all) {
    for (const auto& m : all) by_name[m.name] = &m;
  }
  const store::MailboxInfo* Parent(const store::MailboxInfo& m) const {
    size_t slash = m.name.rfind(store::kHierarchySeparator);
    if (slash == std::string::npos) return nullptr;
    auto it = by_name.find(std::string_view(m.name).substr(0, slash));
    return it == by_name.end() ? nullptr : it->second;
  }
};

// One FilterCondition (section 2.3: parentId, name, role, hasAnyRole,
// isSubscribed) or FilterOperator against `m`; errors as MatchOperator's.
std::optional<std::string> MailboxMatches(const MailboxTree& tree, const store::MailboxInfo& m,
                                          const json::object& f, int depth, bool& result) {
  if (depth > kMaxFilterDepth) return std::string("the filter is nested too deeply");
  if (f.contains("operator"))
    return MatchOperator(f, result, [&](const json::object& c, bool& r) {
      return MailboxMatches(tree, m, c, depth + 1, r);
    });
  result = true;
  for (const auto& kv : f) {
    std::string_view k = kv.key();
    const json::value& v = kv.value();
    if (k == "parentId") {
      if (!v.is_null() && !v.is_string()) return std::string("parentId");
      const store::MailboxInfo* p = tree.Parent(m);
      if (v.is_null() ? p != nullptr : (!p || MailboxIdOf(p->id) != v.get_string())) result = false;
    } else if (k == "name") {
      if (!v.is_string()) return std::string("name");
      if (AsciiLower(std::string(LeafName(m))).find(AsciiLower(std::string(v.get_string()))) ==
          std::string::npos)
        result = false;
    } else if (k == "role") {
      if (!v.is_null() && !v.is_string()) return std::string("role");
      std::string r = RoleOf(m);
      if (v.is_null() ? !r.empty() : v.get_string() != r) result = false;
    } else if (k == "hasAnyRole") {
      if (!v.is_bool()) return std::string("hasAnyRole");
      if (v.get_bool() == RoleOf(m).empty()) result = false;
    } else if (k == "isSubscribed") {
      if (!v.is_bool()) return std::string("isSubscribed");
      if (v.get_bool() != m.subscribed) result = false;
    } else {
      return "unsupportedFilter:" + std::string(k);
    }
  }
  return std::nullopt;
}

bool FilterReadsParent(const json::value& f) {
  const json::object* o = f.if_object();
  if (!o) return false;
  if (o->contains("parentId")) return true;
  if (const json::value* c = o->if_contains("conditions"); c && c->is_array())
    for (const auto& x : c->get_array())
      if (FilterReadsParent(x)) return true;
  return false;
}

bool IsTrue(const json::object& args, const char* k) {
  const json::value* v = args.if_contains(k);
  return v && v->is_bool() && v->get_bool();
}

// Mailbox/queryChanges is exact unless the query depends on a Mailbox's
// parent: IMAP may create or delete a parent without the child changing (its
// name stays), so a parentId filter, filterAsTree or sortAsTree is not exact.
bool MailboxQueryExact(const json::object& args) {
  const json::value* f = args.if_contains("filter");
  return !(f && FilterReadsParent(*f)) && !IsTrue(args, "sortAsTree") &&
         !IsTrue(args, "filterAsTree");
}

// `all_ids` (Mailbox/queryChanges): every id of the result, in order, and no
// response.
Output MailboxQueryImpl(Context& ctx, json::object& args, std::vector<std::string>* all_ids) {
  std::optional<AccountData> some = MailboxesOnly(ctx);
  const AccountData* d = some ? &*some : ctx.Load();
  if (!d) return ServerFail(ctx);
  for (const char* k : {"sortAsTree", "filterAsTree"})
    if (const json::value* v = args.if_contains(k); v && !v->is_null() && !v->is_bool())
      return Output::Error("invalidArguments", k);
  const bool sort_as_tree = IsTrue(args, "sortAsTree");
  const bool filter_as_tree = IsTrue(args, "filterAsTree");
  const MailboxTree tree(d->mailboxes);

  const json::object* filter = nullptr;
  if (const json::value* f = args.if_contains("filter"); f && !f->is_null()) {
    filter = f->if_object();
    if (!filter) return Output::Error("invalidArguments", "filter must be an object");
  }
  std::set<const store::MailboxInfo*> matched;
  for (const auto& m : d->mailboxes) {
    bool ok = true;
    if (filter)
      if (auto e = MailboxMatches(tree, m, *filter, 0, ok)) return FilterError(*e);
    if (ok) matched.insert(&m);
  }
  // filterAsTree: only Mailboxes whose ancestors all match too.
  std::vector<const store::MailboxInfo*> v;
  for (const auto& m : d->mailboxes) {
    if (!matched.count(&m)) continue;
    bool keep = true;
    for (const auto* p = tree.Parent(m); filter_as_tree && p && keep; p = tree.Parent(*p))
      keep = matched.count(p) > 0;
    if (keep) v.push_back(&m);
  }

  // Sort (section 2.3): sortOrder and name, each ascending or not; ties and
  // no sort at all: the Inbox first, then by full name.
  struct Key {
    bool by_name;
    bool ascending;
  };
  std::vector<Key> keys;
  if (const json::value* sv = args.if_contains("sort"); sv && !sv->is_null()) {
    if (!sv->is_array()) return Output::Error("invalidArguments", "sort");
    for (const auto& c : sv->get_array()) {
      const json::object* o = c.if_object();
      if (!o || !o->contains("property") || !o->at("property").is_string())
        return Output::Error("invalidArguments", "sort");
      std::string_view p = o->at("property").get_string();
      if (p != "sortOrder" && p != "name") return Output::Error("unsupportedSort", std::string(p));
      if (const json::value* col = o->if_contains("collation"); col && !col->is_null())
        return Output::Error("unsupportedSort", "collation");
      bool asc = true;
      if (const json::value* a = o->if_contains("isAscending"); a && !a->is_null()) {
        if (!a->is_bool()) return Output::Error("invalidArguments", "isAscending");
        asc = a->get_bool();
      }
      keys.push_back({p == "name", asc});
    }
  }
  auto before = [&keys](const store::MailboxInfo* a, const store::MailboxInfo* b) {
    for (const Key& k : keys) {
      if (k.by_name) {
        std::string x = AsciiLower(std::string(LeafName(*a)));
        std::string y = AsciiLower(std::string(LeafName(*b)));
        if (x != y) return k.ascending ? x < y : x > y;
        if (LeafName(*a) != LeafName(*b))
          return k.ascending ? LeafName(*a) < LeafName(*b) : LeafName(*a) > LeafName(*b);
      } else if (SortOrderOf(*a) != SortOrderOf(*b)) {
        return k.ascending ? SortOrderOf(*a) < SortOrderOf(*b) : SortOrderOf(*a) > SortOrderOf(*b);
      }
    }
    bool ai = a->name == store::kInbox, bi = b->name == store::kInbox;
    if (ai != bi) return ai;
    return a->name < b->name;
  };
  std::vector<std::string> all;
  if (!sort_as_tree) {
    std::sort(v.begin(), v.end(), before);
    for (auto* m : v) all.push_back(MailboxIdOf(m->id));
  } else {
    // sortAsTree: an ancestor comes before its descendants; two others
    // compare as their nearest ancestors with the same parent do. That is a
    // depth-first walk of the whole tree with siblings in sort order, keeping
    // the Mailboxes of the result.
    std::set<const store::MailboxInfo*> in(v.begin(), v.end());
    std::map<const store::MailboxInfo*, std::vector<const store::MailboxInfo*>> children;
    for (const auto& m : d->mailboxes) children[tree.Parent(m)].push_back(&m);
    for (auto& [parent, kids] : children) std::sort(kids.begin(), kids.end(), before);
    std::vector<const store::MailboxInfo*> stack(children[nullptr].rbegin(),
                                                 children[nullptr].rend());
    while (!stack.empty()) {
      const store::MailboxInfo* m = stack.back();
      stack.pop_back();
      if (in.count(m)) all.push_back(MailboxIdOf(m->id));
      auto it = children.find(m);
      if (it != children.end()) stack.insert(stack.end(), it->second.rbegin(), it->second.rend());
    }
  }
  if (all_ids) {
    *all_ids = std::move(all);
    return Output{};
  }
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["queryState"] = MailboxState(d->mailboxes);
  r["canCalculateChanges"] = MailboxQueryExact(args);
  if (auto e = QueryWindow(ctx, args, all, r)) return *e;
  return Output::One("Mailbox/query", std::move(r));
}

Output MailboxQuery(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "filter", "sort", "position", "anchor", "anchorOffset", "limit",
             "calculateTotal", "sortAsTree", "filterAsTree");
  return MailboxQueryImpl(ctx, args, nullptr);
}

const store::MailboxInfo* MailboxById(const AccountData& d, int64_t id);

// Mailbox/set (section 2.5): create, rename/move, subscribe, destroy. Roles
// are the special-use folders every account has; they are not set here.
Status WaitVoid(const std::function<void(store::Done<void>)>& op);
json::object SetError(std::string type, std::string description = {});

Output MailboxSet(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "ifInState", "create", "update", "destroy", "onDestroyRemoveEmails");
  const AccountData* d = ctx.Load();
  if (!d) return ServerFail(ctx);
  std::string old_state = MailboxState(d->mailboxes);
  if (const json::value* s = args.if_contains("ifInState"); s && !s->is_null()) {
    if (!s->is_string()) return Output::Error("invalidArguments", "ifInState");
    if (s->get_string() != old_state) return Output::Error("stateMismatch");
  }
  bool remove_emails = false;
  if (const json::value* r = args.if_contains("onDestroyRemoveEmails"); r && r->is_bool())
    remove_emails = r->get_bool();
  store::Store* store = ctx.svc.store;
  auto full_name = [&](const json::object& o, const std::string& current_leaf,
                       const std::string& current_parent) -> std::optional<std::string> {
    std::string leaf = current_leaf, parent = current_parent;
    if (const json::value* n = o.if_contains("name")) {
      if (!n->is_string() || n->get_string().empty() ||
          std::string_view(n->get_string()).find(store::kHierarchySeparator) !=
              std::string_view::npos)
        return std::nullopt;
      leaf = std::string(n->get_string());
    }
    if (const json::value* p = o.if_contains("parentId")) {
      if (p->is_null()) {
        parent.clear();
      } else if (p->is_string()) {
        std::string pid(p->get_string());
        if (!pid.empty() && pid[0] == '#' && ctx.created_ids.count(pid.substr(1)))
          pid = ctx.created_ids[pid.substr(1)];
        auto n = ParseMailboxId(pid);
        const AccountData* cur = ctx.Load();
        const store::MailboxInfo* m = nullptr;
        if (n && cur)
          for (const auto& x : cur->mailboxes)
            if (x.id == *n) m = &x;
        if (!m) return std::nullopt;
        parent = m->name;
      } else {
        return std::nullopt;
      }
    }
    if (leaf.empty()) return std::nullopt;
    auto canonical = store::CanonicalMailboxName(
        parent.empty() ? leaf : parent + store::kHierarchySeparator + leaf);
    if (!canonical) return std::nullopt;
    return *canonical;
  };
  json::object created, not_created, updated, not_updated, not_destroyed;
  json::array destroyed;
  if (const json::value* c = args.if_contains("create"); c && c->is_object()) {
    for (const auto& kv : c->get_object()) {
      std::string cid(kv.key());
      const json::object* o = kv.value().if_object();
      auto name = o ? full_name(*o, "", "") : std::nullopt;
      if (!name) {
        not_created[cid] = SetError("invalidProperties", "name/parentId");
        continue;
      }
      std::string n = *name;
      auto st = WaitVoid([&](store::Done<void> done) {
        store->CreateMailbox(ctx.account_id, n, "", std::move(done));
      });
      ctx.data.reset();
      if (!st) {
        not_created[cid] =
            SetError(st.error().kind == ErrorKind::kExists ? "invalidProperties" : "serverFail",
                     st.error().message);
        continue;
      }
      // The store's CreateMailbox subscribes nothing (IMAP CREATE, RFC 3501
      // 6.3.6); a JMAP-created mailbox is subscribed unless asked otherwise.
      if (const json::value* sub = o->if_contains("isSubscribed");
          !sub || !sub->is_bool() || sub->get_bool()) {
        (void)WaitVoid([&](store::Done<void> done) {
          store->SetSubscribed(ctx.account_id, n, true, std::move(done));
        });
      }
      const AccountData* cur = ctx.Load();
      if (!cur) return ServerFail(ctx);
      for (const auto& m : cur->mailboxes) {
        if (m.name != n) continue;
        created[cid] = json::object{{"id", MailboxIdOf(m.id)}};
        ctx.created_ids[cid] = MailboxIdOf(m.id);
      }
    }
  }
  if (const json::value* u = args.if_contains("update"); u && u->is_object()) {
    for (const auto& kv : u->get_object()) {
      std::string id(kv.key());
      if (!id.empty() && id[0] == '#' && ctx.created_ids.count(id.substr(1)))
        id = ctx.created_ids[id.substr(1)];
      const AccountData* cur = ctx.Load();
      if (!cur) return ServerFail(ctx);
      auto n = ParseMailboxId(id);
      const store::MailboxInfo* m = n ? MailboxById(*cur, *n) : nullptr;
      const json::object* o = kv.value().if_object();
      if (!m || !o) {
        not_updated[id] = SetError(m ? "invalidPatch" : "notFound", "");
        continue;
      }
      std::string old_name = m->name;
      size_t slash = old_name.rfind(store::kHierarchySeparator);
      std::string leaf = slash == std::string::npos ? old_name : old_name.substr(slash + 1);
      std::string parent = slash == std::string::npos ? "" : old_name.substr(0, slash);
      bool bad = false;
      for (const auto& p : *o)
        if (p.key() != "name" && p.key() != "parentId" && p.key() != "isSubscribed" &&
            p.key() != "sortOrder")
          bad = true;
      auto name = full_name(*o, leaf, parent);
      if (bad || !name || (old_name == store::kInbox && *name != old_name)) {
        not_updated[id] = SetError("invalidProperties", "");
        continue;
      }
      if (*name != old_name) {
        std::string to = *name;
        auto st = WaitVoid([&](store::Done<void> done) {
          store->RenameMailbox(ctx.account_id, old_name, to, std::move(done));
        });
        ctx.data.reset();
        if (!st) {
          not_updated[id] = SetError("invalidProperties", st.error().message);
          continue;
        }
      }
      if (const json::value* sub = o->if_contains("isSubscribed"); sub && sub->is_bool()) {
        std::string nm = *name;
        bool on = sub->get_bool();
        auto st = WaitVoid([&](store::Done<void> done) {
          store->SetSubscribed(ctx.account_id, nm, on, std::move(done));
        });
        ctx.data.reset();
        if (!st) {
          not_updated[id] = SetError("serverFail", st.error().message);
          continue;
        }
      }
      updated[id] = nullptr;
    }
  }
  if (const json::value* x = args.if_contains("destroy"); x && x->is_array()) {
    for (const auto& v : x->get_array()) {
      if (!v.is_string()) return Output::Error("invalidArguments", "destroy");
      std::string id(v.get_string());
      const AccountData* cur = ctx.Load();
      if (!cur) return ServerFail(ctx);
      auto n = ParseMailboxId(id);
      const store::MailboxInfo* m = n ? MailboxById(*cur, *n) : nullptr;
      if (!m) {
        not_destroyed[id] = SetError("notFound", "");
        continue;
      }
      if (m->name == store::kInbox || !m->special_use.empty()) {
        not_destroyed[id] = SetError("forbidden", "the special-use mailboxes stay");
        continue;
      }
      bool has_child = false;
      for (const auto& o : cur->mailboxes)
        if (o.name.rfind(m->name + store::kHierarchySeparator, 0) == 0) has_child = true;
      if (has_child) {
        not_destroyed[id] = SetError("mailboxHasChild", "");
        continue;
      }
      if (m->messages > 0 && !remove_emails) {
        not_destroyed[id] = SetError("mailboxHasEmail", "");
        continue;
      }
      std::string nm = m->name;
      // Its messages go to the retention area (recoverable with hato undelete).
      auto st = WaitVoid([&](store::Done<void> done) {
        store->DeleteMailbox(ctx.account_id, nm, std::move(done));
      });
      ctx.data.reset();
      if (!st) {
        not_destroyed[id] = SetError("serverFail", st.error().message);
        continue;
      }
      destroyed.push_back(json::string(id));
    }
  }
  const AccountData* after = ctx.Load();
  if (!after) return ServerFail(ctx);
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["oldState"] = old_state;
  r["newState"] = MailboxState(after->mailboxes);
  // Names and subscriptions touch no mailbox's messages: IMAP NOTIFY
  // (MailboxName, SubscriptionChange) hears of them on the record channel.
  if (r["newState"] != r["oldState"] && ctx.svc.changes) {
    ctx.svc.changes->PublishRecords(ctx.account_id);
  }
  r["created"] = created.empty() ? json::value(nullptr) : json::value(created);
  r["updated"] = updated.empty() ? json::value(nullptr) : json::value(updated);
  r["destroyed"] = destroyed.empty() ? json::value(nullptr) : json::value(destroyed);
  r["notCreated"] = not_created.empty() ? json::value(nullptr) : json::value(not_created);
  r["notUpdated"] = not_updated.empty() ? json::value(nullptr) : json::value(not_updated);
  r["notDestroyed"] = not_destroyed.empty() ? json::value(nullptr) : json::value(not_destroyed);
  return Output::One("Mailbox/set", std::move(r));
}

// ---- Email (RFC 8621 section 4) ----

struct Keywords {
  uint32_t flags = 0;
  std::vector<std::string> keywords;
};

// JMAP keywords <-> IMAP flags (RFC 8621 section 4.1.1).
json::object KeywordsOf(const store::EmailRow& r) {
  json::object k;
  if (r.flags & store::kSeen) k["$seen"] = true;
  if (r.flags & store::kAnswered) k["$answered"] = true;
  if (r.flags & store::kFlagged) k["$flagged"] = true;
  if (r.flags & store::kDraft) k["$draft"] = true;
  for (auto w : SplitWords(r.keywords)) k[AsciiLower(w)] = true;
  return k;
}

bool ValidKeyword(std::string_view k) {
  // RFC 8621 section 4.1.1: 1-255 of %x21-%x7e except ( ) { ] % * " \.
  if (k.empty() || k.size() > 255) return false;
  for (char c : k)
    if (c < 0x21 || c > 0x7e || std::string_view("(){]%*\"\\").find(c) != std::string_view::npos)
      return false;
  return true;
}

std::optional<Keywords> KeywordsFrom(const json::object& o) {
  Keywords out;
  for (const auto& kv : o) {
    if (!kv.value().is_bool() || !kv.value().get_bool()) return std::nullopt;
    std::string k = AsciiLower(kv.key());
    if (!ValidKeyword(k)) return std::nullopt;
    if (k == "$seen") {
      out.flags |= store::kSeen;
    } else if (k == "$answered") {
      out.flags |= store::kAnswered;
    } else if (k == "$flagged") {
      out.flags |= store::kFlagged;
    } else if (k == "$draft") {
      out.flags |= store::kDraft;
    } else {
      out.keywords.push_back(k);
    }
  }
  return out;
}

json::value AddressList(std::string_view value) {
  json::array out;
  for (const mime::Address& a : mime::ParseAddressList(value)) {
    if (!a.host) continue;  // group markers
    json::object o;
    std::string name = a.name ? mime::DecodeHeader(*a.name) : "";
    o["name"] = name.empty() ? json::value(nullptr) : json::value(json::string(name));
    o["email"] = a.mailbox.value_or("") + (a.host->empty() ? "" : "@" + *a.host);
    out.push_back(std::move(o));
  }
  return out;
}

json::value MessageIds(std::string_view value) {
  json::array out;
  std::string_view s = value;
  while (true) {
    size_t lt = s.find('<');
    if (lt == std::string_view::npos) break;
    size_t gt = s.find('>', lt);
    if (gt == std::string_view::npos) break;
    out.push_back(json::string(s.substr(lt + 1, gt - lt - 1)));
    s.remove_prefix(gt + 1);
  }
  if (out.empty()) return nullptr;
  return out;
}

// RFC 5322 date-time -> RFC 3339 UTC "2024-01-02T03:04:05Z" (nullopt if unparsable).
std::optional<std::string> ParseDate(std::string_view v) {
  static const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                  "jul", "aug", "sep", "oct", "nov", "dec"};
  std::string s = mime::internal::StripComments(v);
  size_t comma = s.find(',');
  if (comma != std::string::npos) s = s.substr(comma + 1);
  auto words = SplitWords(s);
  if (words.size() < 4) return std::nullopt;
  auto day = ParseUint(words[0]);
  int mon = -1;
  for (int i = 0; i < 12; ++i)
    if (words[1].size() >= 3 && AsciiLower(words[1].substr(0, 3)) == kMonths[i]) mon = i;
  auto year = ParseUint(words[2]);
  if (!day || mon < 0 || !year) return std::nullopt;
  int y = static_cast<int>(*year);
  if (y < 50)
    y += 2000;
  else if (y < 1000)
    y += 1900;
  int hh = 0, mm = 0, ss = 0;
  if (std::sscanf(std::string(words[3]).c_str(), "%d:%d:%d", &hh, &mm, &ss) < 2)
    return std::nullopt;
  int off = 0;
  if (words.size() >= 5) {
    std::string_view z = words[4];
    if ((z[0] == '+' || z[0] == '-') && z.size() == 5) {
      auto n = ParseUint(z.substr(1));
      if (n) off = static_cast<int>((*n / 100) * 60 + *n % 100) * (z[0] == '-' ? -1 : 1);
    }
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mon;
  tm.tm_mday = static_cast<int>(*day);
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  time_t t = timegm(&tm) - off * 60;
  char buf[32];
  std::tm out{};
  gmtime_r(&t, &out);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &out);
  return std::string(buf);
}

std::string UtcDate(int64_t t) {
  char buf[32];
  std::tm out{};
  time_t tt = static_cast<time_t>(t);
  gmtime_r(&tt, &out);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &out);
  return buf;
}

std::optional<int64_t> ParseUtcDate(std::string_view s) {
  std::tm tm{};
  int y, mo, d, h, mi, se;
  if (std::sscanf(std::string(s).c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &se) != 6)
    return std::nullopt;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  return static_cast<int64_t>(timegm(&tm));
}

// One parsed message: content, part tree and header fields.
struct Parsed {
  std::string content;
  mime::Part tree;
  std::vector<mime::internal::Field> fields;
  std::string_view header;
};

std::optional<Parsed> ParseContent(std::string content) {
  Parsed p;
  p.content = std::move(content);
  auto t = mime::Parse(p.content);
  if (!t) return std::nullopt;
  p.tree = std::move(*t);
  p.header = std::string_view(p.content).substr(0, p.tree.header_end);
  p.fields = mime::internal::ScanHeader(p.header).fields;
  return p;
}

std::optional<Parsed> ParseMessage(Context& ctx, int64_t message_id) {
  auto c = ctx.svc.store->ReadMessage(ctx.account_id, message_id);
  if (!c) return std::nullopt;
  Parsed p;
  p.content = std::move(*c);
  auto t = mime::Parse(p.content);
  if (!t) return std::nullopt;
  p.tree = std::move(*t);
  p.header = std::string_view(p.content).substr(0, p.tree.header_end);
  p.fields = mime::internal::ScanHeader(p.header).fields;
  return p;
}

// ---- Threads (RFC 8621 section 3) ----
//
// An Email's Thread is named by the root of its reply chain as the message
// itself records it: the first message id of References (RFC 5322 section
// 3.6.4: a reply's References begins with the first message of the
// conversation), else of In-Reply-To, else the message's own Message-ID; a
// message with none of these is a Thread of its own. Because it derives
// from the message alone, a threadId never changes (section 3 requires
// that) and is the same after a restart or a restore. The store keeps it
// with each body too (StoreOptions::thread_id = the same function) to count
// each mailbox's Threads (Mailbox totalThreads/unreadThreads). Messages are
// not joined by Subject alone (section 3 leaves the algorithm to the
// server; joining by Subject merges unrelated mail).
//
// The id of each body is cached by its hash (bodies never change), so
// Thread/get and collapseThreads read each message at most once per process.

// The id rules are IMAP OBJECTID's too (imap/proto/object_ids.h, RFC 8474).
std::string ThreadIdOfContent(std::string_view content) { return imap::ThreadObjectId(content); }

// Bodies whose thread is cached; past this the cache starts again empty.
inline constexpr size_t kMaxThreadCacheEntries = 200000;

struct ThreadCache {
  std::mutex mu;
  std::unordered_map<std::string, std::string> by_sha;  // raw body hash -> threadId
};
ThreadCache& Threads() {
  static ThreadCache cache;
  return cache;
}

void RememberThread(std::string_view sha, const std::string& thread_id) {
  ThreadCache& c = Threads();
  std::lock_guard lock(c.mu);
  if (c.by_sha.size() >= kMaxThreadCacheEntries) c.by_sha.clear();
  c.by_sha[std::string(sha)] = thread_id;
}

std::optional<std::string> CachedThread(std::string_view sha) {
  ThreadCache& c = Threads();
  std::lock_guard lock(c.mu);
  auto it = c.by_sha.find(std::string(sha));
  if (it == c.by_sha.end()) return std::nullopt;
  return it->second;
}

// The threadId of a stored Email (read once, then cached).
std::string ThreadOf(Context& ctx, const store::EmailRow& row) {
  if (auto t = CachedThread(row.sha256)) return *t;
  auto c = ctx.svc.store->ReadMessage(ctx.account_id, row.message_id);
  // Unreadable (e.g. expunged meanwhile): the body hash, not cached.
  if (!c) return Prefixed('t', HexEncode(row.sha256.substr(0, 12)));
  std::string t = ThreadIdOfContent(*c);
  RememberThread(row.sha256, t);
  return t;
}

std::string ThreadOfNew(const std::string& content) {
  std::string t = ThreadIdOfContent(content);
  RememberThread(Sha256(content), t);
  return t;
}

const mime::internal::Field* Field(const Parsed& p, std::string_view name) {
  return mime::internal::FindField(p.fields, name);
}

std::string Unfolded(const Parsed& p, std::string_view name) {
  const auto* f = Field(p, name);
  return f ? mime::internal::Unfold(f->value) : std::string();
}

// A header:{name}:as{Form}[:all] property (RFC 8621 section 4.1.2-3).
std::optional<json::value> HeaderProperty(const Parsed& p, std::string_view prop) {
  auto parts = SplitOn(prop, ':');
  if (parts.size() < 2 || parts.size() > 4 || parts[0] != "header") return std::nullopt;
  std::string_view name = parts[1];
  std::string_view form = "asRaw";
  bool all = false;
  for (size_t i = 2; i < parts.size(); ++i) {
    if (parts[i] == "all") {
      all = true;
    } else if (i == 2) {
      form = parts[i];
    } else {
      return std::nullopt;
    }
  }
  auto convert = [&](std::string_view raw) -> std::optional<json::value> {
    std::string unfolded = mime::internal::Unfold(raw);
    if (form == "asRaw") return json::value(json::string(raw));
    if (form == "asText") return json::value(json::string(mime::DecodeHeader(unfolded)));
    if (form == "asAddresses") return AddressList(unfolded);
    if (form == "asMessageIds") return MessageIds(unfolded);
    if (form == "asDate") {
      auto d = ParseDate(unfolded);
      return d ? json::value(json::string(*d)) : json::value(nullptr);
    }
    if (form == "asURLs") {
      json::array out;
      for (auto u : SplitOn(unfolded, ',')) {
        if (u.size() > 2 && u.front() == '<' && u.back() == '>')
          out.push_back(json::string(u.substr(1, u.size() - 2)));
      }
      return json::value(std::move(out));
    }
    if (form == "asGroupedAddresses") {
      json::object g;
      g["name"] = nullptr;
      g["addresses"] = AddressList(unfolded);
      return json::value(json::array{std::move(g)});
    }
    return std::nullopt;
  };
  if (!convert("").has_value()) return std::nullopt;  // unknown form
  if (all) {
    json::array out;
    for (const auto& f : p.fields)
      if (EqualsIgnoreCase(f.name, name)) out.push_back(*convert(f.value));
    return json::value(std::move(out));
  }
  const mime::internal::Field* last = nullptr;
  for (const auto& f : p.fields)
    if (EqualsIgnoreCase(f.name, name)) last = &f;
  if (!last) return json::value(nullptr);
  return convert(last->value);
}

std::string PartIdOf(const std::vector<uint32_t>& path) {
  if (path.empty()) return "1";
  std::string s;
  for (uint32_t n : path) {
    if (!s.empty()) s += '.';
    s += std::to_string(n);
  }
  return s;
}

std::string BlobIdOfPart(const std::string& email_sha_hex, const std::string& part_id) {
  std::string p = part_id;
  std::replace(p.begin(), p.end(), '.', '-');
  return "b" + email_sha_hex + "_" + p;
}

struct Leaf {
  const mime::Part* part;
  std::string part_id;
};

bool IsInline(const mime::Part& p) { return !p.disposition || *p.disposition != "attachment"; }

// RFC 8621 section 4.1.4: textBody, htmlBody and attachments.
void Flatten(const mime::Part& part, std::vector<uint32_t> path, const std::string& multipart_type,
             bool in_alternative, std::vector<Leaf>& html, std::vector<Leaf>& text,
             std::vector<Leaf>& attachments, int depth) {
  if (depth > mime::kMaxDepth) return;
  if (part.IsMultipart()) {
    for (size_t i = 0; i < part.children.size(); ++i) {
      auto p = path;
      p.push_back(static_cast<uint32_t>(i + 1));
      Flatten(part.children[i], p, part.subtype, in_alternative || part.subtype == "alternative",
              html, text, attachments, depth + 1);
    }
    return;
  }
  Leaf leaf{&part, PartIdOf(path)};
  bool is_text = part.type == "text" && (part.subtype == "plain" || part.subtype == "html");
  bool first = path.empty() || path.back() == 1;
  bool inline_media =
      (part.type == "image" || part.type == "audio" || part.type == "video") && IsInline(part);
  if (IsInline(part) && is_text && (multipart_type != "related" || first)) {
    if (part.subtype == "plain") {
      text.push_back(leaf);
      if (!in_alternative) html.push_back(leaf);
    } else {
      html.push_back(leaf);
      if (!in_alternative) text.push_back(leaf);
    }
  } else if (inline_media && multipart_type != "related") {
    text.push_back(leaf);
    html.push_back(leaf);
    attachments.push_back(leaf);
  } else {
    attachments.push_back(leaf);
  }
}

std::string DecodedPartText(const Parsed& p, const mime::Part& part) {
  return mime::DecodedText(p.content, part);  // offsets index the whole message
}

std::string Preview(const Parsed& p, const std::vector<Leaf>& text) {
  std::string out;
  for (const Leaf& l : text) {
    if (l.part->type != "text") continue;
    std::string t = DecodedPartText(p, *l.part);
    if (l.part->subtype == "html") {
      std::string plain;
      bool tag = false;
      for (char c : t) {
        if (c == '<')
          tag = true;
        else if (c == '>')
          tag = false;
        else if (!tag)
          plain.push_back(c);
      }
      t = plain;
    }
    for (char c : t) {
      char ch = (c == '\r' || c == '\n' || c == '\t') ? ' ' : c;
      if (ch == ' ' && !out.empty() && out.back() == ' ') continue;
      out.push_back(ch);
    }
    if (out.size() > 256) break;
  }
  // At most 256 characters (section 4.1.4), cut on a UTF-8 boundary.
  if (out.size() > 256) {
    size_t n = 256;
    while (n > 0 && (static_cast<unsigned char>(out[n]) & 0xC0) == 0x80) --n;
    out.resize(n);
  }
  return std::string(TrimSpaces(out));
}

json::object BodyPart(const Parsed& p, const mime::Part& part, const std::string& part_id,
                      const std::string& sha_hex, const std::set<std::string>& props,
                      bool with_children, int depth);

json::object BodyPart(const Parsed& p, const mime::Part& part, const std::string& part_id,
                      const std::string& sha_hex, const std::set<std::string>& props,
                      bool with_children, int depth) {
  json::object o;
  bool multipart = part.IsMultipart();
  if (props.count("partId"))
    o["partId"] = multipart ? json::value(nullptr) : json::value(json::string(part_id));
  if (props.count("blobId"))
    o["blobId"] = multipart ? json::value(nullptr)
                            : json::value(json::string(BlobIdOfPart(sha_hex, part_id)));
  if (props.count("size")) o["size"] = part.size;
  if (props.count("type")) o["type"] = part.type + "/" + part.subtype;
  if (props.count("charset")) {
    const std::string* cs = part.FindParam("charset");
    if (cs) {
      o["charset"] = *cs;
    } else if (part.type == "text") {
      o["charset"] = "us-ascii";
    } else {
      o["charset"] = nullptr;
    }
  }
  if (props.count("name")) {
    const std::string* n = nullptr;
    for (const auto& dp : part.disposition_params)
      if (dp.name == "filename") n = &dp.value;
    if (!n) n = part.FindParam("name");
    o["name"] = n ? json::value(json::string(mime::DecodeHeader(*n))) : json::value(nullptr);
  }
  if (props.count("disposition"))
    o["disposition"] =
        part.disposition ? json::value(json::string(*part.disposition)) : json::value(nullptr);
  if (props.count("cid")) {
    if (part.id) {
      std::string cid = *part.id;
      if (cid.size() > 2 && cid.front() == '<' && cid.back() == '>')
        cid = cid.substr(1, cid.size() - 2);
      o["cid"] = cid;
    } else {
      o["cid"] = nullptr;
    }
  }
  if (props.count("language")) {
    if (part.language.empty()) {
      o["language"] = nullptr;
    } else {
      json::array l;
      for (const auto& x : part.language) l.push_back(json::string(x));
      o["language"] = l;
    }
  }
  if (props.count("location"))
    o["location"] =
        part.location ? json::value(json::string(*part.location)) : json::value(nullptr);
  if (props.count("headers")) {
    json::array hs;
    if (part.header_end <= p.content.size()) {
      auto scan = mime::internal::ScanHeader(std::string_view(p.content).substr(
          part.header_begin, part.header_end - part.header_begin));
      for (const auto& f : scan.fields)
        hs.push_back(json::object{{"name", std::string(f.name)}, {"value", std::string(f.value)}});
    }
    o["headers"] = hs;
  }
  if (with_children && multipart && props.count("subParts") && depth < mime::kMaxDepth) {
    json::array subs;
    for (size_t i = 0; i < part.children.size(); ++i) {
      std::string cid =
          part_id == "0" ? std::to_string(i + 1) : part_id + "." + std::to_string(i + 1);
      subs.push_back(BodyPart(p, part.children[i], cid, sha_hex, props, true, depth + 1));
    }
    o["subParts"] = subs;
  }
  return o;
}

// Email address properties and their header fields (RFC 8621 section 4.1.2.3).
constexpr std::pair<const char*, const char*> kAddressHeaders[] = {
    {"sender", "Sender"}, {"from", "From"}, {"to", "To"},
    {"cc", "Cc"},         {"bcc", "Bcc"},   {"replyTo", "Reply-To"}};

const std::set<std::string> kDefaultEmailProps = {
    "id",        "blobId",    "threadId",   "mailboxIds", "keywords",      "size",    "receivedAt",
    "messageId", "inReplyTo", "references", "sender",     "from",          "to",      "cc",
    "bcc",       "replyTo",   "subject",    "sentAt",     "hasAttachment", "preview", "bodyValues",
    "textBody",  "htmlBody",  "attachments"};
const std::set<std::string> kDefaultBodyProps = {"partId",   "blobId",  "size",        "name",
                                                 "type",     "charset", "disposition", "cid",
                                                 "language", "location"};
const std::set<std::string> kMetadataProps = {"id",       "blobId", "threadId",  "mailboxIds",
                                              "keywords", "size",   "receivedAt"};

// What a client asks of an Email's content (Email/get, Email/parse).
struct ContentRequest {
  const std::set<std::string>* want;
  const std::set<std::string>* body_props;
  bool fetch_text = false, fetch_html = false, fetch_all = false;
  uint64_t max_value = 0;
};

// Fills the properties of `o` that come from the message itself (headers,
// body parts, preview, bodyValues: section 4.1); an error text for a bad
// header:... property.
std::optional<std::string> ContentProperties(const Parsed& p, const std::string& sha_hex,
                                             const ContentRequest& cr, json::object& o) {
  const std::set<std::string>& want = *cr.want;
  const std::set<std::string>& bprops = *cr.body_props;
  const bool fetch_text = cr.fetch_text, fetch_html = cr.fetch_html, fetch_all = cr.fetch_all;
  const uint64_t max_value = cr.max_value;
  if (want.count("messageId")) o["messageId"] = MessageIds(Unfolded(p, "Message-ID"));
  if (want.count("inReplyTo")) o["inReplyTo"] = MessageIds(Unfolded(p, "In-Reply-To"));
  if (want.count("references")) o["references"] = MessageIds(Unfolded(p, "References"));
  for (auto [prop, hdr] : kAddressHeaders) {
    if (!want.count(prop)) continue;
    o[prop] = Field(p, hdr) ? AddressList(Unfolded(p, hdr)) : json::value(nullptr);
  }
  if (want.count("subject"))
    o["subject"] = Field(p, "Subject")
                       ? json::value(json::string(mime::DecodeHeader(Unfolded(p, "Subject"))))
                       : json::value(nullptr);
  if (want.count("sentAt")) {
    auto dt = ParseDate(Unfolded(p, "Date"));
    o["sentAt"] = dt ? json::value(json::string(*dt)) : json::value(nullptr);
  }
  if (want.count("headers")) {
    json::array hs;
    for (const auto& f : p.fields)
      hs.push_back(json::object{{"name", std::string(f.name)}, {"value", std::string(f.value)}});
    o["headers"] = hs;
  }
  for (const auto& prop : want) {
    if (prop.rfind("header:", 0) != 0) continue;
    auto v = HeaderProperty(p, prop);
    if (!v) return "bad header property " + prop;
    o[prop] = std::move(*v);
  }
  std::vector<Leaf> html, text, attachments;
  Flatten(p.tree, {}, "", false, html, text, attachments, 0);
  auto leaves = [&](const std::vector<Leaf>& v) {
    json::array a;
    for (const Leaf& l : v) a.push_back(BodyPart(p, *l.part, l.part_id, sha_hex, bprops, false, 0));
    return a;
  };
  if (want.count("textBody")) o["textBody"] = leaves(text);
  if (want.count("htmlBody")) o["htmlBody"] = leaves(html);
  if (want.count("attachments")) o["attachments"] = leaves(attachments);
  if (want.count("hasAttachment")) o["hasAttachment"] = !attachments.empty();
  if (want.count("preview")) o["preview"] = Preview(p, text);
  if (want.count("bodyStructure")) {
    std::set<std::string> sp = bprops;
    sp.insert("subParts");
    o["bodyStructure"] =
        BodyPart(p, p.tree, p.tree.IsMultipart() ? "0" : "1", sha_hex, sp, true, 0);
  }
  if (want.count("bodyValues")) {
    json::object values;
    auto add = [&](const std::vector<Leaf>& v) {
      for (const Leaf& l : v) {
        if (l.part->type != "text" || values.contains(l.part_id)) continue;
        std::string t = DecodedPartText(p, *l.part);
        bool truncated = false;
        if (max_value > 0 && t.size() > max_value) {
          size_t n = max_value;
          while (n > 0 && (static_cast<unsigned char>(t[n]) & 0xC0) == 0x80) --n;
          t.resize(n);
          truncated = true;
        }
        values[l.part_id] =
            json::object{{"value", t}, {"isEncodingProblem", false}, {"isTruncated", truncated}};
      }
    };
    if (fetch_text || fetch_all) add(text);
    if (fetch_html || fetch_all) add(html);
    if (fetch_all) add(attachments);
    o["bodyValues"] = values;
  }
  return std::nullopt;
}

// Email/get's content properties (without body values) of recently asked
// bodies, by body hash and property set: bodies never change, so an entry is
// never stale. Bounded in entries; past the bound it starts again empty.
inline constexpr size_t kMaxSummaryCacheEntries = 20000;

struct SummaryCache {
  std::mutex mu;
  std::unordered_map<std::string, json::object> entries;
};
SummaryCache& Summaries() {
  static SummaryCache cache;
  return cache;
}

std::optional<json::object> CachedSummary(const std::string& key) {
  SummaryCache& c = Summaries();
  std::lock_guard lock(c.mu);
  auto it = c.entries.find(key);
  if (it == c.entries.end()) return std::nullopt;
  return it->second;
}

void RememberSummary(const std::string& key, const json::object& content) {
  SummaryCache& c = Summaries();
  std::lock_guard lock(c.mu);
  if (c.entries.size() >= kMaxSummaryCacheEntries) c.entries.clear();
  c.entries[key] = content;
}

// The raw hash prefix an Email id names ("e" + 24 lower-case hex digits),
// or nullopt for anything else.
std::optional<std::string> EmailIdPrefix(std::string_view id) {
  if (id.size() != 25 || id.front() != 'e') return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 1; i + 1 < id.size(); i += 2) {
    int hi = nibble(id[i]), lo = nibble(id[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

// The account's data as far as these Emails need it: the mailbox heads (for
// the state) and the rows of the named Emails, read through the body-hash
// index (Store::FindEmailRows). nullopt when the store lacks the
// operation or fails: the caller then loads everything (Context::Load).
std::optional<AccountData> LoadEmails(Context& ctx, const std::vector<std::string>& ids) {
  std::vector<std::string> prefixes;
  for (const auto& id : ids)
    if (auto p = EmailIdPrefix(id)) prefixes.push_back(std::move(*p));
  auto heads = ctx.svc.store->ListMailboxHeads(ctx.account_id);
  if (!heads) return std::nullopt;
  auto rows = ctx.svc.store->FindEmailRows(ctx.account_id, prefixes);
  if (!rows) return std::nullopt;
  AccountData d;
  d.mailboxes = std::move(*heads);
  d.rows = std::move(*rows);
  for (size_t i = 0; i < d.rows.size(); ++i) d.emails[EmailIdOf(d.rows[i].sha256)].push_back(i);
  return d;
}

Output EmailGet(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "ids", "properties", "bodyProperties", "fetchTextBodyValues",
             "fetchHTMLBodyValues", "fetchAllBodyValues", "maxBodyValueBytes");
  bool bad = false;
  auto ids = IdList(ctx, args, "ids", bad);
  if (bad) return Output::Error("invalidArguments", "ids must be null or an array of Ids");
  auto props = Properties(args, "properties", bad);
  if (bad) return Output::Error("invalidArguments", "properties");
  auto body_props = Properties(args, "bodyProperties", bad);
  if (bad) return Output::Error("invalidArguments", "bodyProperties");
  auto flag = [&](const char* k) {
    const json::value* v = args.if_contains(k);
    return v && v->is_bool() && v->get_bool();
  };
  bool fetch_text = flag("fetchTextBodyValues"), fetch_html = flag("fetchHTMLBodyValues"),
       fetch_all = flag("fetchAllBodyValues");
  uint64_t max_value = 0;
  if (const json::value* v = args.if_contains("maxBodyValueBytes")) {
    if (!v->is_number() || v->to_number<double>() < 0)
      return Output::Error("invalidArguments", "maxBodyValueBytes");
    max_value = v->to_number<uint64_t>();
  }
  const std::set<std::string>& want = props ? *props : kDefaultEmailProps;
  const std::set<std::string>& bprops = body_props ? *body_props : kDefaultBodyProps;
  for (const auto& p : want) {
    if (!kDefaultEmailProps.count(p) && p != "headers" && p != "bodyStructure" &&
        p.rfind("header:", 0) != 0)
      return Output::Error("invalidArguments", "unknown property " + p);
  }
  // Asked by id (a list view's page): only those Emails' rows are read.
  std::optional<AccountData> some;
  if (ids && !ctx.data && ids->size() <= ctx.cfg.jmap.max_objects_in_get)
    some = LoadEmails(ctx, *ids);
  const AccountData* d = some ? &*some : ctx.Load();
  if (!d) return ServerFail(ctx);
  std::vector<std::string> list_ids;
  if (ids) {
    list_ids = *ids;
  } else {
    for (const auto& [id, rows] : d->emails) {
      list_ids.push_back(id);
      if (list_ids.size() >= ctx.cfg.jmap.max_objects_in_get) break;
    }
  }
  if (list_ids.size() > ctx.cfg.jmap.max_objects_in_get)
    return Output::Error("requestTooLarge", "more ids than maxObjectsInGet");
  bool need_content = false;
  for (const auto& p : want)
    if (!kMetadataProps.count(p)) need_content = true;
  // Content properties without body values are cached (SummaryCache).
  bool cacheable = !fetch_text && !fetch_html && !fetch_all && !want.count("bodyValues");
  std::string summary_key;
  for (const auto& p : want) summary_key += "\n" + p;
  summary_key += "\n|";
  for (const auto& p : bprops) summary_key += "\n" + p;
  json::array list, not_found;
  for (const auto& id : list_ids) {
    auto it = d->emails.find(id);
    if (it == d->emails.end()) {
      not_found.push_back(json::string(id));
      continue;
    }
    const store::EmailRow& row = d->rows[it->second.front()];
    std::string sha_hex = HexEncode(row.sha256);
    json::object o;
    o["id"] = id;
    if (want.count("blobId")) o["blobId"] = BlobIdOf(row.sha256);
    if (want.count("threadId")) o["threadId"] = ThreadOf(ctx, row);
    if (want.count("mailboxIds")) {
      json::object mb;
      for (size_t i : it->second) mb[MailboxIdOf(d->rows[i].mailbox_id)] = true;
      o["mailboxIds"] = mb;
    }
    if (want.count("keywords")) o["keywords"] = KeywordsOf(row);
    if (want.count("size")) o["size"] = row.size;
    if (want.count("receivedAt")) o["receivedAt"] = UtcDate(row.internal_date);
    if (need_content) {
      // A list view asks the same summary of the same bodies again and
      // again: without body values it is cached by the body's hash.
      std::string key;
      if (cacheable) key = row.sha256 + summary_key;
      if (auto hit = cacheable ? CachedSummary(key) : std::nullopt) {
        for (const auto& kv : *hit) o[kv.key()] = kv.value();
      } else {
        auto parsed = ParseMessage(ctx, row.message_id);
        if (!parsed) {
          not_found.push_back(json::string(id));
          continue;
        }
        ContentRequest cr{&want, &bprops, fetch_text, fetch_html, fetch_all, max_value};
        json::object content;
        if (auto e = ContentProperties(*parsed, sha_hex, cr, content))
          return Output::Error("invalidArguments", *e);
        if (cacheable) RememberSummary(key, content);
        for (const auto& kv : content) o[kv.key()] = kv.value();
      }
    }
    list.push_back(std::move(o));
  }
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["state"] = EmailState(d->mailboxes);
  r["list"] = std::move(list);
  r["notFound"] = std::move(not_found);
  return Output::One("Email/get", std::move(r));
}

// ---- Email/parse (section 4.9) ----

const std::set<std::string> kParseDefaultProps = {
    "messageId", "inReplyTo",  "references", "sender",   "from",       "to",
    "cc",        "bcc",        "replyTo",    "subject",  "sentAt",     "hasAttachment",
    "preview",   "bodyValues", "textBody",   "htmlBody", "attachments"};

Output EmailParse(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "blobIds", "properties", "bodyProperties", "fetchTextBodyValues",
             "fetchHTMLBodyValues", "fetchAllBodyValues", "maxBodyValueBytes");
  const json::value* blobs = args.if_contains("blobIds");
  if (!blobs || !blobs->is_array()) return Output::Error("invalidArguments", "blobIds");
  if (blobs->get_array().size() > ctx.cfg.jmap.max_objects_in_get)
    return Output::Error("requestTooLarge");
  bool bad = false;
  auto props = Properties(args, "properties", bad);
  if (bad) return Output::Error("invalidArguments", "properties");
  auto body_props = Properties(args, "bodyProperties", bad);
  if (bad) return Output::Error("invalidArguments", "bodyProperties");
  auto flag = [&](const char* k) {
    const json::value* v = args.if_contains(k);
    return v && v->is_bool() && v->get_bool();
  };
  ContentRequest cr{props ? &*props : &kParseDefaultProps,
                    body_props ? &*body_props : &kDefaultBodyProps,
                    flag("fetchTextBodyValues"),
                    flag("fetchHTMLBodyValues"),
                    flag("fetchAllBodyValues"),
                    0};
  if (const json::value* v = args.if_contains("maxBodyValueBytes")) {
    if (!v->is_number() || v->to_number<double>() < 0)
      return Output::Error("invalidArguments", "maxBodyValueBytes");
    cr.max_value = v->to_number<uint64_t>();
  }
  const std::set<std::string>& want = *cr.want;
  for (const auto& p : want)
    if (!kDefaultEmailProps.count(p) && p != "headers" && p != "bodyStructure" &&
        p.rfind("header:", 0) != 0)
      return Output::Error("invalidArguments", "unknown property " + p);
  json::object parsed;
  json::array not_parsable, not_found;
  for (const auto& v : blobs->get_array()) {
    if (!v.is_string()) return Output::Error("invalidArguments", "blobIds");
    std::string blob_id(v.get_string());
    auto content = ReadBlob(ctx, blob_id);
    if (!content) {
      if (content.error().kind != ErrorKind::kNotFound) return ServerFail(ctx);
      not_found.push_back(json::string(blob_id));
      continue;
    }
    uint64_t size = content->size();
    std::string sha_hex = HexEncode(Sha256(*content));
    auto p = ParseContent(std::move(*content));
    if (!p || p->fields.empty()) {
      not_parsable.push_back(json::string(blob_id));
      continue;
    }
    // Not stored: no id, Mailboxes, keywords or Thread (section 4.9).
    json::object o;
    if (want.count("id")) o["id"] = nullptr;
    if (want.count("blobId")) o["blobId"] = blob_id;
    if (want.count("threadId")) o["threadId"] = nullptr;
    if (want.count("mailboxIds")) o["mailboxIds"] = nullptr;
    if (want.count("keywords")) o["keywords"] = json::object{};
    if (want.count("size")) o["size"] = size;
    if (want.count("receivedAt")) o["receivedAt"] = nullptr;
    if (auto e = ContentProperties(*p, sha_hex, cr, o))
      return Output::Error("invalidArguments", *e);
    parsed[blob_id] = std::move(o);
  }
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["parsed"] = parsed.empty() ? json::value(nullptr) : json::value(parsed);
  r["notParsable"] = not_parsable.empty() ? json::value(nullptr) : json::value(not_parsable);
  r["notFound"] = not_found.empty() ? json::value(nullptr) : json::value(not_found);
  return Output::One("Email/parse", std::move(r));
}

// ---- Email/query (section 4.4) ----

struct QueryItem {
  std::string id;
  const store::EmailRow* row;
  std::vector<const store::EmailRow*> all;
  std::optional<Parsed> parsed;  // read when a filter or sort needs it
};

const Parsed* Content(Context& ctx, QueryItem& q) {
  if (!q.parsed) q.parsed = ParseMessage(ctx, q.row->message_id);
  return q.parsed ? &*q.parsed : nullptr;
}

bool ContainsCi(std::string_view hay, std::string_view needle) {
  return AsciiLower(hay).find(AsciiLower(needle)) != std::string::npos;
}

bool HasKeyword(const store::EmailRow& r, std::string_view k) {
  std::string lk = AsciiLower(k);
  if (lk == "$seen") return r.flags & store::kSeen;
  if (lk == "$answered") return r.flags & store::kAnswered;
  if (lk == "$flagged") return r.flags & store::kFlagged;
  if (lk == "$draft") return r.flags & store::kDraft;
  for (auto w : SplitWords(r.keywords))
    if (AsciiLower(w) == lk) return true;
  return false;
}

std::optional<std::string> Matches(Context& ctx, QueryItem& q, const json::object& f, int depth,
                                   bool& result);

std::optional<std::string> Matches(Context& ctx, QueryItem& q, const json::object& f, int depth,
                                   bool& result) {
  if (depth > kMaxFilterDepth) return std::string("the filter is nested too deeply");
  if (f.contains("operator"))
    return MatchOperator(f, result, [&](const json::object& c, bool& r) {
      return Matches(ctx, q, c, depth + 1, r);
    });
  result = true;
  for (const auto& kv : f) {
    std::string_view k = kv.key();
    const json::value& v = kv.value();
    auto str = [&]() -> std::optional<std::string> {
      if (!v.is_string()) return std::nullopt;
      return std::string(v.get_string());
    };
    if (k == "inMailbox") {
      auto s = str();
      if (!s) return std::string("inMailbox");
      std::string id = *s;
      if (!id.empty() && id[0] == '#' && ctx.created_ids.count(id.substr(1)))
        id = ctx.created_ids[id.substr(1)];
      auto n = ParseMailboxId(id);
      bool in = false;
      for (auto* r : q.all) in = in || (n && r->mailbox_id == *n);
      if (!in) result = false;
    } else if (k == "inMailboxOtherThan") {
      if (!v.is_array()) return std::string("inMailboxOtherThan");
      std::set<int64_t> ex;
      for (const auto& x : v.get_array()) {
        if (!x.is_string()) return std::string("inMailboxOtherThan");
        if (auto n = ParseMailboxId(x.get_string())) ex.insert(*n);
      }
      bool other = false;
      for (auto* r : q.all) other = other || !ex.count(r->mailbox_id);
      if (!other) result = false;
    } else if (k == "before" || k == "after") {
      auto s = str();
      auto t = s ? ParseUtcDate(*s) : std::nullopt;
      if (!t) return std::string(k);
      if (k == "before" ? !(q.row->internal_date < *t) : !(q.row->internal_date >= *t))
        result = false;
    } else if (k == "minSize" || k == "maxSize") {
      if (!v.is_number()) return std::string(k);
      uint64_t n = v.to_number<uint64_t>();
      if (k == "minSize" ? q.row->size < n : q.row->size >= n) result = false;
    } else if (k == "hasKeyword" || k == "allInThreadHaveKeyword" ||
               k == "someInThreadHaveKeyword") {
      auto s = str();
      if (!s) return std::string(k);
      if (!HasKeyword(*q.row, *s)) result = false;
    } else if (k == "notKeyword" || k == "noneInThreadHaveKeyword") {
      auto s = str();
      if (!s) return std::string(k);
      if (HasKeyword(*q.row, *s)) result = false;
    } else if (k == "hasAttachment") {
      if (!v.is_bool()) return std::string(k);
      const Parsed* p = Content(ctx, q);
      if (!p) {
        result = false;
        continue;
      }
      std::vector<Leaf> html, text, att;
      Flatten(p->tree, {}, "", false, html, text, att, 0);
      if (att.empty() == v.get_bool()) result = false;
    } else if (k == "from" || k == "to" || k == "cc" || k == "bcc" || k == "subject" ||
               k == "text" || k == "body") {
      auto s = str();
      if (!s) return std::string(k);
      const Parsed* p = Content(ctx, q);
      if (!p) {
        result = false;
        continue;
      }
      auto in_header = [&](const char* name) {
        return ContainsCi(mime::DecodeHeader(Unfolded(*p, name)), *s);
      };
      auto in_body = [&]() {
        std::vector<Leaf> html, text, att;
        Flatten(p->tree, {}, "", false, html, text, att, 0);
        for (const Leaf& l : text)
          if (l.part->type == "text" && ContainsCi(DecodedPartText(*p, *l.part), *s)) return true;
        return false;
      };
      bool hit = false;
      if (k == "from")
        hit = in_header("From");
      else if (k == "to")
        hit = in_header("To");
      else if (k == "cc")
        hit = in_header("Cc");
      else if (k == "bcc")
        hit = in_header("Bcc");
      else if (k == "subject")
        hit = in_header("Subject");
      else if (k == "body")
        hit = in_body();
      else
        hit = in_header("From") || in_header("To") || in_header("Cc") || in_header("Bcc") ||
              in_header("Subject") || in_body();
      if (!hit) result = false;
    } else if (k == "header") {
      if (!v.is_array() || v.get_array().empty() || v.get_array().size() > 2)
        return std::string("header");
      const auto& a = v.get_array();
      if (!a[0].is_string() || (a.size() == 2 && !a[1].is_string())) return std::string("header");
      const Parsed* p = Content(ctx, q);
      if (!p) {
        result = false;
        continue;
      }
      const auto* fld = Field(*p, a[0].get_string());
      if (!fld ||
          (a.size() == 2 &&
           !ContainsCi(mime::DecodeHeader(mime::internal::Unfold(fld->value)), a[1].get_string())))
        result = false;
    } else {
      return std::string("unsupportedFilter:") + std::string(k);
    }
  }
  return std::nullopt;
}

std::string SortKeyText(Context& ctx, QueryItem& q, const std::string& prop) {
  const Parsed* p = Content(ctx, q);
  if (!p) return "";
  if (prop == "subject") {
    std::string s = AsciiLower(mime::DecodeHeader(Unfolded(*p, "Subject")));
    // Base subject, roughly (RFC 5256 section 2.1): leading "re:" / "fwd:".
    while (true) {
      std::string_view t = TrimSpaces(s);
      if (t.rfind("re:", 0) == 0)
        s = std::string(t.substr(3));
      else if (t.rfind("fwd:", 0) == 0 || t.rfind("fw:", 0) == 0)
        s = std::string(t.substr(t.find(':') + 1));
      else {
        s = std::string(t);
        break;
      }
    }
    return s;
  }
  const char* hdr = prop == "from" ? "From" : "To";
  auto list = mime::ParseAddressList(Unfolded(*p, hdr));
  for (const auto& a : list) {
    if (!a.host) continue;
    std::string name = a.name ? mime::DecodeHeader(*a.name) : "";
    return AsciiLower(name.empty() ? a.mailbox.value_or("") + "@" + *a.host : name);
  }
  return "";
}

// The webmail's list view, the common case of Email/query: `inMailbox`
// alone, sorted by receivedAt (or no sort), not collapsed, paged by
// position: answered from the store's index (Store::QueryMailboxEmails)
// without listing the account. nullopt when the request is another shape
// (or the store lacks the operation): the general path below answers it.
// Within one mailbox an Email's receivedAt is that of its row there.
std::optional<Output> FastEmailQuery(Context& ctx, const json::object& args,
                                     std::vector<std::string>* all_ids) {
  const json::value* f = args.if_contains("filter");
  if (!f || !f->is_object() || f->get_object().size() != 1) return std::nullopt;
  const json::value* in = f->get_object().if_contains("inMailbox");
  if (!in || !in->is_string()) return std::nullopt;
  std::string mailbox_id(in->get_string());
  if (!mailbox_id.empty() && mailbox_id[0] == '#') {
    auto it = ctx.created_ids.find(mailbox_id.substr(1));
    if (it == ctx.created_ids.end()) return std::nullopt;
    mailbox_id = it->second;
  }
  auto mailbox = ParseMailboxId(mailbox_id);
  if (!mailbox) return std::nullopt;
  bool ascending = false;
  if (const json::value* s = args.if_contains("sort"); s && !s->is_null()) {
    if (!s->is_array() || s->get_array().size() > 1) return std::nullopt;
    for (const auto& c : s->get_array()) {
      const json::object* o = c.if_object();
      if (!o) return std::nullopt;
      for (const auto& kv : *o)
        if (kv.key() != "property" && kv.key() != "isAscending" && kv.key() != "collation")
          return std::nullopt;
      const json::value* prop = o->if_contains("property");
      if (!prop || !prop->is_string() || prop->get_string() != "receivedAt") return std::nullopt;
      ascending = true;
      if (const json::value* a = o->if_contains("isAscending")) {
        if (!a->is_bool()) return std::nullopt;
        ascending = a->get_bool();
      }
    }
  }
  if (const json::value* ct = args.if_contains("collapseThreads");
      ct && !(ct->is_null() || (ct->is_bool() && !ct->get_bool())))
    return std::nullopt;
  if (const json::value* a = args.if_contains("anchor"); a && !a->is_null()) return std::nullopt;
  int64_t position = 0;
  if (const json::value* p = args.if_contains("position")) {
    if (!p->is_number()) return std::nullopt;
    position = p->to_number<int64_t>();
    if (position < 0) return std::nullopt;
  }
  const uint64_t max = ctx.cfg.jmap.max_objects_in_get;
  uint64_t limit = max;
  bool capped = true;  // the server's limit applies: said in the response (section 5.5)
  if (const json::value* l = args.if_contains("limit"); l && !l->is_null()) {
    if (!l->is_number() || l->to_number<double>() < 0) return std::nullopt;
    limit = l->to_number<uint64_t>();
    capped = limit > max;
    limit = std::min(limit, max);
  }
  const json::value* ct = args.if_contains("calculateTotal");
  bool want_total = ct && ct->is_bool() && ct->get_bool();
  if (all_ids) {
    position = 0;
    limit = UINT64_MAX;
    want_total = false;
  }
  auto heads = ctx.svc.store->ListMailboxHeads(ctx.account_id);
  if (!heads) return std::nullopt;
  auto page = ctx.svc.store->QueryMailboxEmails(ctx.account_id, *mailbox, ascending,
                                                static_cast<uint64_t>(position), limit, want_total);
  if (!page) return std::nullopt;
  if (all_ids) {
    for (const auto& row : page->rows) all_ids->push_back(EmailIdOf(row.sha256));
    return Output{};
  }
  uint64_t total = page->total;
  if (page->rows.empty() && position > 0 && !want_total) {
    // Past the end: the position said is the total (section 5.5).
    auto counted =
        ctx.svc.store->QueryMailboxEmails(ctx.account_id, *mailbox, ascending, 0, 0, true);
    if (!counted) return std::nullopt;
    total = counted->total;
  }
  json::array ids;
  for (const auto& row : page->rows) ids.push_back(json::string(EmailIdOf(row.sha256)));
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["queryState"] = EmailState(*heads);
  r["canCalculateChanges"] = true;
  uint64_t pos = static_cast<uint64_t>(position);
  r["position"] = page->rows.empty() && pos > total ? total : pos;
  r["ids"] = std::move(ids);
  if (want_total) r["total"] = total;
  if (capped) r["limit"] = limit;
  return Output::One("Email/query", std::move(r));
}

// Email/query; with `all_ids`, only the whole sorted result is computed
// into it (Email/queryChanges) and the Output is empty unless an error.
Output EmailQueryImpl(Context& ctx, json::object& args, std::vector<std::string>* all_ids) {
  if (auto fast = FastEmailQuery(ctx, args, all_ids)) return std::move(*fast);
  const AccountData* d = ctx.Load();
  if (!d) return ServerFail(ctx);
  std::vector<QueryItem> items;
  for (const auto& [id, idx] : d->emails) {
    QueryItem q{id, &d->rows[idx.front()], {}, std::nullopt};
    for (size_t i : idx) q.all.push_back(&d->rows[i]);
    items.push_back(std::move(q));
  }
  const json::object* filter = nullptr;
  if (const json::value* f = args.if_contains("filter"); f && !f->is_null()) {
    filter = f->if_object();
    if (!filter) return Output::Error("invalidArguments", "filter must be an object");
  }
  std::vector<QueryItem*> hits;
  for (auto& q : items) {
    bool ok = true;
    if (filter) {
      if (auto e = Matches(ctx, q, *filter, 0, ok)) return FilterError(*e);
    }
    if (ok) hits.push_back(&q);
  }
  // Sort (section 4.4.2); the default is receivedAt descending? No: the
  // RFC leaves it to the server; newest first is what a webmail wants.
  struct Comparator {
    std::string property;
    bool ascending = true;
    std::string keyword;
  };
  std::vector<Comparator> sort;
  if (const json::value* s = args.if_contains("sort"); s && !s->is_null()) {
    if (!s->is_array()) return Output::Error("invalidArguments", "sort must be an array");
    for (const auto& c : s->get_array()) {
      const json::object* o = c.if_object();
      if (!o || !o->contains("property") || !o->at("property").is_string())
        return Output::Error("invalidArguments", "bad Comparator");
      Comparator cmp;
      cmp.property = std::string(o->at("property").get_string());
      if (const json::value* a = o->if_contains("isAscending")) {
        if (!a->is_bool()) return Output::Error("invalidArguments", "isAscending");
        cmp.ascending = a->get_bool();
      }
      if (const json::value* kw = o->if_contains("keyword"); kw && kw->is_string())
        cmp.keyword = std::string(kw->get_string());
      static const std::set<std::string> known = {"receivedAt",
                                                  "size",
                                                  "from",
                                                  "to",
                                                  "subject",
                                                  "sentAt",
                                                  "hasKeyword",
                                                  "allInThreadHaveKeyword",
                                                  "someInThreadHaveKeyword"};
      if (!known.count(cmp.property)) return Output::Error("unsupportedSort", cmp.property);
      sort.push_back(cmp);
    }
  }
  if (sort.empty()) sort.push_back(Comparator{"receivedAt", false, ""});
  // Keys are computed once per item.
  std::map<QueryItem*, std::vector<std::string>> text_keys;
  for (auto* q : hits) {
    for (const auto& c : sort) {
      std::string key;
      if (c.property == "from" || c.property == "to" || c.property == "subject") {
        key = SortKeyText(ctx, *q, c.property);
      } else if (c.property == "sentAt") {
        const Parsed* p = Content(ctx, *q);
        auto dt = p ? ParseDate(Unfolded(*p, "Date")) : std::nullopt;
        key = dt.value_or(UtcDate(q->row->internal_date));
      }
      text_keys[q].push_back(key);
    }
  }
  std::stable_sort(hits.begin(), hits.end(), [&](QueryItem* a, QueryItem* b) {
    for (size_t i = 0; i < sort.size(); ++i) {
      const Comparator& c = sort[i];
      int cmp = 0;
      if (c.property == "receivedAt") {
        cmp = a->row->internal_date < b->row->internal_date
                  ? -1
                  : a->row->internal_date > b->row->internal_date;
      } else if (c.property == "size") {
        cmp = a->row->size < b->row->size ? -1 : a->row->size > b->row->size;
      } else if (c.property.find("Keyword") != std::string::npos) {
        bool ka = HasKeyword(*a->row, c.keyword), kb = HasKeyword(*b->row, c.keyword);
        cmp = ka == kb ? 0 : (ka ? 1 : -1);
      } else {
        const std::string& x = text_keys[a][i];
        const std::string& y = text_keys[b][i];
        cmp = x < y ? -1 : x > y;
      }
      if (cmp != 0) return c.ascending ? cmp < 0 : cmp > 0;
    }
    // Ties: the newer stored message first when the first sort is
    // descending (arrival order), then the id: a stable total order.
    if (a->row->message_id != b->row->message_id)
      return sort.front().ascending ? a->row->message_id < b->row->message_id
                                    : a->row->message_id > b->row->message_id;
    return a->id < b->id;
  });
  // collapseThreads (section 4.4.3): only the first Email of each Thread
  // in the sorted results.
  if (const json::value* ct = args.if_contains("collapseThreads"); ct && !ct->is_null()) {
    if (!ct->is_bool()) return Output::Error("invalidArguments", "collapseThreads");
    if (ct->get_bool()) {
      std::set<std::string> seen;
      std::vector<QueryItem*> kept;
      for (QueryItem* q : hits)
        if (seen.insert(ThreadOf(ctx, *q->row)).second) kept.push_back(q);
      hits = std::move(kept);
    }
  }
  if (all_ids) {
    for (QueryItem* q : hits) all_ids->push_back(q->id);
    return Output{};
  }
  int64_t total = static_cast<int64_t>(hits.size());
  int64_t position = 0;
  if (const json::value* p = args.if_contains("position")) {
    if (!p->is_number()) return Output::Error("invalidArguments", "position");
    position = p->to_number<int64_t>();
  }
  if (const json::value* a = args.if_contains("anchor"); a && !a->is_null()) {
    if (!a->is_string()) return Output::Error("invalidArguments", "anchor");
    int64_t found = -1;
    for (int64_t i = 0; i < total; ++i)
      if (hits[static_cast<size_t>(i)]->id == a->get_string()) found = i;
    if (found < 0) return Output::Error("anchorNotFound");
    int64_t off = 0;
    if (const json::value* o = args.if_contains("anchorOffset"); o && o->is_number())
      off = o->to_number<int64_t>();
    position = std::max<int64_t>(0, found + off);
  } else if (position < 0) {
    position = std::max<int64_t>(0, total + position);
  }
  int64_t limit = total;
  if (const json::value* l = args.if_contains("limit"); l && !l->is_null()) {
    if (!l->is_number() || l->to_number<double>() < 0)
      return Output::Error("invalidArguments", "limit");
    limit = l->to_number<int64_t>();
  }
  limit = std::min<int64_t>(limit, static_cast<int64_t>(ctx.cfg.jmap.max_objects_in_get));
  json::array ids;
  for (int64_t i = position; i < total && i < position + limit; ++i)
    ids.push_back(json::string(hits[static_cast<size_t>(i)]->id));
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["queryState"] = EmailState(d->mailboxes);
  // Email/queryChanges answers for any query but a collapsed one.
  const json::value* collapse = args.if_contains("collapseThreads");
  r["canCalculateChanges"] = !(collapse && collapse->is_bool() && collapse->get_bool());
  r["position"] = position > total ? total : position;
  r["ids"] = std::move(ids);
  const json::value* ct = args.if_contains("calculateTotal");
  if (ct && ct->is_bool() && ct->get_bool()) r["total"] = total;
  if (limit < total) r["limit"] = limit;
  return Output::One("Email/query", std::move(r));
}

Output EmailQuery(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "filter", "sort", "position", "anchor", "anchorOffset", "limit",
             "calculateTotal", "collapseThreads");
  return EmailQueryImpl(ctx, args, nullptr);
}

// ---- Email/changes (section 4.3), Thread/changes ----

// maxChanges (RFC 8620 section 5.2): at most that many ids, and then an
// intermediate state with hasMoreChanges. The state is a mark per mailbox,
// so the changed mailboxes are taken in id order and the last one taken may
// be cut after a modseq M (never inside one modseq): its intermediate mark
// is M, and its uidnext U is past every row taken, the rows new since the
// old state below U being taken too, whatever their modseq (they existed at
// the intermediate state: a later call sees them as updated, never misses
// their creation). A later call may repeat an id as updated, which section
// 5.2 allows. One modseq with more rows than maxChanges, or a deleted
// mailbox's rows (no mark can cut them), first and too many:
// cannotCalculateChanges.
Output EmailChangesImpl(Context& ctx, json::object& args, const char* name, bool threads) {
  HATO_KNOWN("accountId", "sinceState", "maxChanges");
  const json::value* since = args.if_contains("sinceState");
  if (!since || !since->is_string()) return Output::Error("invalidArguments", "sinceState");
  std::optional<uint64_t> limit;
  if (!ReadMaxChanges(args, limit)) return Output::Error("invalidArguments", "maxChanges");
  size_t max_changes = limit.value_or(0);  // 0: no limit
  auto old = DecodeState('e', since->get_string());
  if (!old) return Output::Error("cannotCalculateChanges", "unknown state");
  const AccountData* d = ctx.Load();
  if (!d) return ServerFail(ctx);
  std::map<std::string, std::string> touched;  // Email id -> raw body hash
  std::map<int64_t, MailboxMark> old_by_id;
  for (const auto& m : *old) old_by_id[m.id] = m;
  std::map<int64_t, MailboxMark> next = old_by_id;  // the state this answer moves to
  bool more = false;
  // Rows of one unit (a mailbox's modseq group and the new rows it pulls
  // in) join only together: the ids they would add, or false when too many.
  auto fits = [&](const std::vector<const store::EmailRow*>& unit) {
    if (max_changes == 0) return true;
    std::set<std::string> add;
    for (const store::EmailRow* r : unit) {
      std::string id = EmailIdOf(r->sha256);
      if (!touched.count(id)) add.insert(std::move(id));
    }
    return touched.size() + add.size() <= max_changes;
  };
  // Emails with a row, live or expunged, that the old state already had
  // (a moved Email is updated, not created: section 5.2).
  std::set<std::string> had;
  auto take = [&](const std::vector<const store::EmailRow*>& unit) {
    for (const store::EmailRow* r : unit) {
      std::string id = EmailIdOf(r->sha256);
      auto o = old_by_id.find(r->mailbox_id);
      if (o != old_by_id.end() && r->uid < o->second.uidnext) had.insert(id);
      touched.emplace(std::move(id), r->sha256);
    }
  };
  for (const auto& m : d->mailboxes) {
    auto it = old_by_id.find(m.id);
    if (it != old_by_id.end() && it->second.modseq == m.highest_modseq) continue;
    uint64_t since_modseq = it == old_by_id.end() ? 0 : it->second.modseq;
    uint32_t old_uidnext = it == old_by_id.end() ? 0 : it->second.uidnext;
    auto rows = since_modseq == 0
                    ? ctx.svc.store->ListEmailRows(ctx.account_id, m.id, 0)
                    : ctx.svc.store->ListEmailRows(ctx.account_id, m.id, since_modseq);
    if (!rows) {
      ctx.error = rows.error().message;
      return ServerFail(ctx);
    }
    std::vector<const store::EmailRow*> all;
    for (const auto& r : *rows) all.push_back(&r);
    if (fits(all)) {
      take(all);
      next[m.id] = MailboxMark{m.id, m.highest_modseq, m.uidnext, 0};
      continue;
    }
    // Cut this mailbox: modseq groups in order, each with the new rows
    // (uid >= the old uidnext) below the uidnext it reaches.
    std::vector<const store::EmailRow*> by_modseq = all, by_uid = all;
    std::sort(by_modseq.begin(), by_modseq.end(),
              [](const auto* a, const auto* b) { return a->modseq < b->modseq; });
    std::sort(by_uid.begin(), by_uid.end(),
              [](const auto* a, const auto* b) { return a->uid < b->uid; });
    size_t g = 0, u = 0;
    while (u < by_uid.size() && by_uid[u]->uid < old_uidnext) ++u;
    uint32_t uidnext = old_uidnext;
    uint64_t cut = 0;
    while (g < by_modseq.size()) {
      size_t end = g;
      uint32_t reach = uidnext;
      std::vector<const store::EmailRow*> unit;
      while (end < by_modseq.size() && by_modseq[end]->modseq == by_modseq[g]->modseq) {
        unit.push_back(by_modseq[end]);
        reach = std::max(reach, by_modseq[end]->uid + 1);
        ++end;
      }
      size_t uend = u;
      while (uend < by_uid.size() && by_uid[uend]->uid < reach) unit.push_back(by_uid[uend++]);
      if (!fits(unit)) break;
      take(unit);
      cut = by_modseq[g]->modseq;
      uidnext = reach;
      g = end;
      u = uend;
    }
    if (cut == 0 && touched.empty())
      return Output::Error("cannotCalculateChanges", "one change has more Emails than maxChanges");
    if (cut != 0) next[m.id] = MailboxMark{m.id, cut, uidnext, 0};
    more = true;
    break;
  }
  for (const auto& [id, mark] : old_by_id) {
    if (more) break;
    bool gone = std::none_of(d->mailboxes.begin(), d->mailboxes.end(),
                             [&id = id](const store::MailboxInfo& m) { return m.id == id; });
    if (!gone) continue;
    auto rows = ctx.svc.store->ListEmailRows(ctx.account_id, id, 1);
    if (!rows) continue;
    std::vector<const store::EmailRow*> all;
    for (const auto& r : *rows) all.push_back(&r);
    if (!fits(all)) {
      if (touched.empty())
        return Output::Error("cannotCalculateChanges",
                             "a deleted Mailbox had more Emails than maxChanges");
      more = true;
      break;
    }
    take(all);
    next.erase(id);
  }
  json::array created, updated, destroyed;
  std::set<std::string> new_emails;
  for (const auto& [id, sha] : touched) {
    auto it = d->emails.find(id);
    if (it == d->emails.end()) {
      if (!threads) destroyed.push_back(json::string(id));
      continue;
    }
    bool existed = had.count(id) > 0;
    for (size_t i : it->second) {
      const auto& r = d->rows[i];
      auto o = old_by_id.find(r.mailbox_id);
      if (o != old_by_id.end() && r.uid < o->second.uidnext) existed = true;
    }
    if (!existed) new_emails.insert(id);
    if (!threads) (existed ? updated : created).push_back(json::string(id));
  }
  if (threads && !touched.empty()) {
    // A Thread is created when all its Emails are new, destroyed when it
    // has none left, updated otherwise (section 3.2).
    std::map<std::string, bool> live;  // threadId -> every Email of it is new
    for (const auto& [id, idx] : d->emails) {
      std::string t = ThreadOf(ctx, d->rows[idx.front()]);
      auto [pos, first] = live.emplace(t, true);
      pos->second = pos->second && new_emails.count(id) > 0;
      (void)first;
    }
    std::set<std::string> seen;
    for (const auto& [id, sha] : touched) {
      auto it = d->emails.find(id);
      std::string t;
      if (it != d->emails.end()) {
        t = ThreadOf(ctx, d->rows[it->second.front()]);
      } else if (auto c = CachedThread(sha)) {
        t = *c;
      } else {
        t = Prefixed('t', HexEncode(std::string_view(sha).substr(0, 12)));
      }
      if (!seen.insert(t).second) continue;
      auto l = live.find(t);
      if (l == live.end())
        destroyed.push_back(json::string(t));
      else
        (l->second ? created : updated).push_back(json::string(t));
    }
  }
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["oldState"] = since->get_string();
  if (more) {
    std::vector<MailboxMark> marks;
    for (const auto& [id, mark] : next) marks.push_back(mark);
    r["newState"] = EncodeState('e', marks);
  } else {
    r["newState"] = EmailState(d->mailboxes);
  }
  r["hasMoreChanges"] = more;
  r["created"] = std::move(created);
  r["updated"] = std::move(updated);
  r["destroyed"] = std::move(destroyed);
  return Output::One(name, std::move(r));
}

Output EmailChanges(Context& ctx, json::object& args) {
  return EmailChangesImpl(ctx, args, "Email/changes", false);
}
Output ThreadChanges(Context& ctx, json::object& args) {
  return EmailChangesImpl(ctx, args, "Thread/changes", true);
}

// ---- /queryChanges (RFC 8620 section 5.6) ----
//
// One /queryChanges for every type whose query state is its /changes state
// (Mailbox, Email): every id the type's /changes reports since the old state
// (created, updated or destroyed) is removed, and added back at its index
// when the query has it now. Exact when the query reads only properties that
// a change to an object shows in /changes, which section 5.6 allows ("MAY
// return extra ids"); upToId is ignored (the sorted properties change). More
// changes than maxChanges: tooManyChanges. `changes` answers the type's
// /changes for {accountId, sinceState}; `query` fills every id the query
// gives, in order, or returns its error.
Output QueryChangesOf(
    Context& ctx, json::object& args, const char* name,
    const std::function<Output(json::object&)>& changes,
    const std::function<Output(json::object&, std::vector<std::string>&)>& query) {
  const json::value* since = args.if_contains("sinceQueryState");
  if (!since || !since->is_string()) return Output::Error("invalidArguments", "sinceQueryState");
  std::optional<uint64_t> max_changes;
  if (!ReadMaxChanges(args, max_changes)) return Output::Error("invalidArguments", "maxChanges");
  json::object cargs;
  cargs["accountId"] = AccountId(ctx.account_id);
  cargs["sinceState"] = since->get_string();
  Output ch = changes(cargs);
  if (!ch.error_type.empty()) return ch;
  std::set<std::string> touched;
  for (const char* k : {"created", "updated", "destroyed"})
    for (const auto& v : ch.responses.front().second.at(k).get_array())
      touched.insert(std::string(v.get_string()));
  json::object qargs;
  for (const char* k : {"accountId", "filter", "sort"})
    if (const json::value* v = args.if_contains(k)) qargs[k] = *v;
  std::vector<std::string> all;
  Output q = query(qargs, all);
  if (!q.error_type.empty()) return q;
  json::array removed, added;
  for (const auto& id : touched) removed.push_back(json::string(id));
  for (size_t i = 0; i < all.size(); ++i)
    if (touched.count(all[i]))
      added.push_back(json::object{{"id", all[i]}, {"index", static_cast<uint64_t>(i)}});
  if (max_changes && removed.size() + added.size() > *max_changes)
    return Output::Error("tooManyChanges");
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["oldQueryState"] = since->get_string();
  r["newQueryState"] = ch.responses.front().second.at("newState");
  const json::value* ct = args.if_contains("calculateTotal");
  if (ct && ct->is_bool() && ct->get_bool()) r["total"] = static_cast<uint64_t>(all.size());
  r["removed"] = std::move(removed);
  r["added"] = std::move(added);
  return Output::One(name, std::move(r));
}

// Email/queryChanges (section 4.5): exact for filters and sorts on an
// Email's own properties (its content never changes; keywords and Mailboxes
// change its modseq). A collapsed query depends on other Emails of the
// Thread: cannotCalculateChanges.
Output EmailQueryChanges(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "filter", "sort", "sinceQueryState", "maxChanges", "upToId",
             "calculateTotal", "collapseThreads");
  if (const json::value* c = args.if_contains("collapseThreads");
      c && c->is_bool() && c->get_bool())
    return Output::Error("cannotCalculateChanges", "collapsed queries are not tracked");
  return QueryChangesOf(
      ctx, args, "Email/queryChanges",
      [&](json::object& cargs) { return EmailChangesImpl(ctx, cargs, "Email/changes", false); },
      [&](json::object& qargs, std::vector<std::string>& all) {
        return EmailQueryImpl(ctx, qargs, &all);
      });
}

// Mailbox/queryChanges (section 2.4): the query state is the Mailbox state.
// Exact when /query's filters and order read only name, role, isSubscribed
// and sortOrder: a change to any of them is an update in Mailbox/changes.
// The parent is another matter (MailboxQueryExact): cannotCalculateChanges.
Output MailboxQueryChanges(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "filter", "sort", "sinceQueryState", "maxChanges", "upToId",
             "calculateTotal", "sortAsTree", "filterAsTree");
  if (!MailboxQueryExact(args))
    return Output::Error("cannotCalculateChanges",
                         "parentId, sortAsTree and filterAsTree queries are not tracked");
  return QueryChangesOf(
      ctx, args, "Mailbox/queryChanges",
      [&](json::object& cargs) { return MailboxChanges(ctx, cargs); },
      [&](json::object& qargs, std::vector<std::string>& all) {
        return MailboxQueryImpl(ctx, qargs, &all);
      });
}

// ---- Email/copy (section 4.7) ----
//
// Copies between two accounts. Every session here has exactly one account
// (its own; there is no sharing), so a fromAccountId other than this
// account is fromAccountNotFound and the same account is invalidArguments
// (RFC 8620 section 5.4: the two MUST differ); a Mailbox move is Email/set.
Output EmailCopy(Context& ctx, json::object& args) {
  HATO_KNOWN("fromAccountId", "ifFromInState", "accountId", "ifInState", "create",
             "onSuccessDestroyOriginal", "destroyFromIfInState");
  const json::value* from = args.if_contains("fromAccountId");
  if (!from || !from->is_string()) return Output::Error("invalidArguments", "fromAccountId");
  const json::value* create = args.if_contains("create");
  if (!create || !create->is_object()) return Output::Error("invalidArguments", "create");
  if (from->get_string() == AccountId(ctx.account_id))
    return Output::Error("invalidArguments", "fromAccountId must differ from accountId");
  return Output::Error("fromAccountNotFound");
}

// ---- Thread/get (section 3) ----

Output ThreadGet(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "ids", "properties");
  bool bad = false;
  auto ids = IdList(ctx, args, "ids", bad);
  if (bad || !ids) return Output::Error("invalidArguments", "ids must be an array of Ids");
  if (ids->size() > ctx.cfg.jmap.max_objects_in_get) return Output::Error("requestTooLarge");
  const AccountData* d = ctx.Load();
  if (!d) return ServerFail(ctx);
  std::set<std::string> wanted(ids->begin(), ids->end());
  // The Emails of each wanted Thread, oldest receivedAt first (section 3.1).
  std::map<std::string, std::vector<std::pair<const store::EmailRow*, std::string>>> members;
  for (const auto& [id, idx] : d->emails) {
    const store::EmailRow& row = d->rows[idx.front()];
    std::string t = ThreadOf(ctx, row);
    if (wanted.count(t)) members[t].emplace_back(&row, id);
  }
  json::array list, not_found;
  for (const auto& id : *ids) {
    auto it = members.find(id);
    if (it == members.end()) {
      not_found.push_back(json::string(id));
      continue;
    }
    auto& m = it->second;
    std::sort(m.begin(), m.end(), [](const auto& a, const auto& b) {
      if (a.first->internal_date != b.first->internal_date)
        return a.first->internal_date < b.first->internal_date;
      return a.first->message_id < b.first->message_id;
    });
    json::array emails;
    for (const auto& e : m) emails.push_back(json::string(e.second));
    list.push_back(json::object{{"id", id}, {"emailIds", std::move(emails)}});
  }
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["state"] = EmailState(d->mailboxes);
  r["list"] = std::move(list);
  r["notFound"] = std::move(not_found);
  return Output::One("Thread/get", std::move(r));
}

// ---- Email/set (section 4.6) ----

Status WaitVoid(const std::function<void(store::Done<void>)>& op) { return store::Wait<void>(op); }

json::object SetError(std::string type, std::string description) {
  json::object e;
  e["type"] = std::move(type);
  if (!description.empty()) e["description"] = std::move(description);
  return e;
}

const store::MailboxInfo* MailboxById(const AccountData& d, int64_t id) {
  for (const auto& m : d.mailboxes)
    if (m.id == id) return &m;
  return nullptr;
}

// Applies an Email update (keywords, mailboxIds); returns a SetError or nullopt.
std::optional<json::object> UpdateEmail(Context& ctx, const std::string& id,
                                        const json::object& patch) {
  const AccountData* d = ctx.Load();
  if (!d) return SetError("serverFail");
  auto it = d->emails.find(id);
  if (it == d->emails.end()) return SetError("notFound");
  std::vector<store::EmailRow> rows;
  for (size_t i : it->second) rows.push_back(d->rows[i]);
  // Keywords: whole or "keywords/name" patches (RFC 8620 section 5.3 PatchObject).
  json::object kw = KeywordsOf(rows.front());
  bool kw_changed = false;
  std::set<int64_t> want_mailboxes;
  for (const auto& r : rows) want_mailboxes.insert(r.mailbox_id);
  bool mb_changed = false;
  for (const auto& kv : patch) {
    std::string_view k = kv.key();
    const json::value& v = kv.value();
    if (k == "keywords") {
      if (!v.is_object()) return SetError("invalidProperties", "keywords");
      kw = v.get_object();
      kw_changed = true;
    } else if (k.rfind("keywords/", 0) == 0) {
      std::string name = AsciiLower(k.substr(9));
      if (!ValidKeyword(name)) return SetError("invalidProperties", std::string(k));
      if (v.is_null() || (v.is_bool() && !v.get_bool())) {
        kw.erase(name);
      } else if (v.is_bool()) {
        kw[name] = true;
      } else {
        return SetError("invalidProperties", std::string(k));
      }
      kw_changed = true;
    } else if (k == "mailboxIds") {
      if (!v.is_object()) return SetError("invalidProperties", "mailboxIds");
      want_mailboxes.clear();
      for (const auto& m : v.get_object()) {
        std::string mid(m.key());
        if (!mid.empty() && mid[0] == '#' && ctx.created_ids.count(mid.substr(1)))
          mid = ctx.created_ids[mid.substr(1)];
        auto n = ParseMailboxId(mid);
        if (!n || !MailboxById(*d, *n) || !m.value().is_bool() || !m.value().get_bool())
          return SetError("invalidProperties", "mailboxIds");
        want_mailboxes.insert(*n);
      }
      mb_changed = true;
    } else if (k.rfind("mailboxIds/", 0) == 0) {
      std::string mid(k.substr(11));
      if (!mid.empty() && mid[0] == '#' && ctx.created_ids.count(mid.substr(1)))
        mid = ctx.created_ids[mid.substr(1)];
      auto n = ParseMailboxId(mid);
      if (!n || !MailboxById(*d, *n)) return SetError("invalidProperties", std::string(k));
      if (v.is_null() || (v.is_bool() && !v.get_bool())) {
        want_mailboxes.erase(*n);
      } else if (v.is_bool()) {
        want_mailboxes.insert(*n);
      } else {
        return SetError("invalidProperties", std::string(k));
      }
      mb_changed = true;
    } else {
      // Other properties are immutable (section 4.6).
      return SetError("invalidProperties", "cannot change " + std::string(k));
    }
  }
  if (mb_changed && want_mailboxes.empty())
    return SetError("invalidProperties", "an Email must be in at least one mailbox");
  // The target mailboxes' names now: a write below reloads ctx.data (and `d`
  // would dangle).
  std::map<int64_t, std::string> names;
  for (int64_t mb : want_mailboxes)
    if (const store::MailboxInfo* m = MailboxById(*d, mb)) names[mb] = m->name;
  d = nullptr;
  store::Store* store = ctx.svc.store;
  if (kw_changed) {
    auto parsed = KeywordsFrom(kw);
    if (!parsed) return SetError("invalidProperties", "keywords");
    std::vector<int64_t> ids;
    for (const auto& r : rows) ids.push_back(r.message_id);
    // \Deleted is an IMAP flag JMAP does not see: keep it as it is.
    uint32_t deleted = rows.front().flags & store::kDeleted;
    store::FlagChange change{
        store::FlagOp::kReplace, parsed->flags | deleted, parsed->keywords, 0, {}};
    {
      auto cfg = ctx.svc.config->Get();  // the same keyword limits as IMAP (issue 11 item 8)
      change.keyword_limits = {cfg->imap.max_keyword_length, cfg->imap.max_keywords_per_message,
                               cfg->imap.max_keywords_per_mailbox};
    }
    auto r = store::Wait<store::FlagResult>([&](store::Done<store::FlagResult> done) {
      store->SetFlags(ctx.account_id, ids, change, std::move(done));
    });
    ctx.data.reset();
    if (!r && r.error().kind == ErrorKind::kTooLarge) {
      if (r.error().message == "quota exceeded") return SetError("overQuota");
      return SetError("invalidProperties", "keywords: " + r.error().message);
    }
    if (!r) return SetError("serverFail", r.error().message);
  }
  if (mb_changed) {
    // Copy into the new mailboxes first, then expunge from the old ones: a
    // crash in between leaves the Email in both, never in none.
    std::set<int64_t> have;
    for (const auto& r : rows) have.insert(r.mailbox_id);
    for (int64_t mb : want_mailboxes) {
      if (have.count(mb)) continue;
      std::string name = names[mb];
      auto r = store::Wait<store::CopyResult>([&](store::Done<store::CopyResult> done) {
        store->CopyMessages(ctx.account_id, {rows.front().message_id}, name, false,
                            std::move(done));
      });
      if (!r) {
        ctx.data.reset();
        if (r.error().kind == ErrorKind::kTooLarge) return SetError("overQuota");
        return SetError("serverFail", r.error().message);
      }
    }
    std::vector<int64_t> drop;
    for (const auto& r : rows)
      if (!want_mailboxes.count(r.mailbox_id)) drop.push_back(r.message_id);
    if (!drop.empty()) {
      auto st = WaitVoid(
          [&](store::Done<void> done) { store->Expunge(ctx.account_id, drop, std::move(done)); });
      if (!st) {
        ctx.data.reset();
        return SetError("serverFail", st.error().message);
      }
    }
    ctx.data.reset();
  }
  return std::nullopt;
}

std::string HeaderValue(std::string_view s) {
  // RFC 2047 encoded-word for non-ASCII (B encoding, UTF-8).
  bool ascii = true;
  for (unsigned char c : s) ascii = ascii && c < 0x80 && c != '\r' && c != '\n';
  if (ascii) return std::string(s);
  return "=?UTF-8?B?" + Base64Encode(s) + "?=";
}

std::string FormatAddresses(const json::value& v) {
  std::string out;
  if (!v.is_array()) return out;
  for (const auto& a : v.get_array()) {
    const json::object* o = a.if_object();
    if (!o || !o->contains("email") || !o->at("email").is_string()) continue;
    std::string email(o->at("email").get_string());
    if (email.find_first_of("\r\n<>,") != std::string::npos) continue;
    std::string name;
    if (const json::value* n = o->if_contains("name"); n && n->is_string())
      name = std::string(n->get_string());
    if (!out.empty()) out += ", ";
    if (name.empty()) {
      out += email;
    } else {
      std::string q = HeaderValue(name);
      if (q == name) {
        std::string esc;
        for (char c : name) {
          if (c == '"' || c == '\\') esc.push_back('\\');
          if (c != '\r' && c != '\n') esc.push_back(c);
        }
        q = "\"" + esc + "\"";
      }
      out += q + " <" + email + ">";
    }
  }
  return out;
}

// A MIME parameter value: a quoted string when ASCII, else the RFC 2231
// extended form (name*=UTF-8''...).
std::string MimeParam(const std::string& name, const std::string& value) {
  bool ascii = true;
  for (unsigned char c : value) ascii = ascii && c >= 0x20 && c < 0x7f;
  if (ascii) {
    std::string q;
    for (char c : value) {
      if (c == '"' || c == '\\') q.push_back('\\');
      q.push_back(c);
    }
    return name + "=\"" + q + "\"";
  }
  static const char* kHex = "0123456789ABCDEF";
  std::string out = name + "*=UTF-8''";
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// A MIME type token from a client ("text/plain"), or the default when it is not one.
std::string MimeType(const json::object& part) {
  const json::value* t = part.if_contains("type");
  if (!t || !t->is_string()) return "application/octet-stream";
  std::string type = AsciiLower(std::string(t->get_string()));
  size_t slash = type.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == type.size() ||
      type.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789!#$&^_.+-/") != std::string::npos)
    return "application/octet-stream";
  return type;
}

// Builds a message from an Email create object (section 4.6): the header
// properties, a text and/or HTML body from bodyValues, and attachments by
// blobId (uploads, RFC 8620 section 6.1, or parts of stored Emails) in a
// multipart/mixed.
std::optional<std::string> BuildMessage(Context& ctx, const json::object& e,
                                        const std::string& from_default, std::string& why) {
  std::string head;
  auto add = [&](const char* name, const std::string& value) {
    if (!value.empty()) head += std::string(name) + ": " + value + "\r\n";
  };
  for (auto [prop, name] : kAddressHeaders) {
    if (const json::value* v = e.if_contains(prop)) add(name, FormatAddresses(*v));
  }
  if (!e.contains("from")) add("From", from_default);
  if (const json::value* s = e.if_contains("subject"); s && s->is_string())
    add("Subject", HeaderValue(std::string(s->get_string())));
  char date[64];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  add("Date", date);
  auto ids = [](const json::value* v) {
    std::string out;
    if (!v || !v->is_array()) return out;
    for (const auto& x : v->get_array())
      if (x.is_string() && x.get_string().find_first_of("<>\r\n ") == json::string::npos)
        out += (out.empty() ? "<" : " <") + std::string(x.get_string()) + ">";
    return out;
  };
  add("Message-ID", ids(e.if_contains("messageId")));
  add("In-Reply-To", ids(e.if_contains("inReplyTo")));
  add("References", ids(e.if_contains("references")));
  head += "MIME-Version: 1.0\r\n";
  // Bodies: textBody / htmlBody parts whose partId names a bodyValues entry.
  const json::object* values = e.contains("bodyValues") ? e.at("bodyValues").if_object() : nullptr;
  auto body_of = [&](const char* prop) -> std::optional<std::string> {
    const json::value* v = e.if_contains(prop);
    if (!v || !v->is_array() || v->get_array().empty()) return std::nullopt;
    const json::object* part = v->get_array()[0].if_object();
    if (!part || !part->contains("partId") || !part->at("partId").is_string() || !values)
      return std::nullopt;
    const json::value* bv = values->if_contains(part->at("partId").get_string());
    if (!bv || !bv->is_object() || !bv->get_object().contains("value") ||
        !bv->get_object().at("value").is_string())
      return std::nullopt;
    return std::string(bv->get_object().at("value").get_string());
  };
  auto normalize = [](const std::string& t) {
    std::string out;
    for (size_t i = 0; i < t.size(); ++i) {
      if (t[i] == '\n' && (i == 0 || t[i - 1] != '\r'))
        out += "\r\n";
      else
        out.push_back(t[i]);
    }
    return out;
  };
  auto qp_part = [&](const std::string& type, const std::string& text) {
    return "Content-Type: " + type +
           "; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + [&] {
             std::string b = Base64Encode(normalize(text)), out;
             for (size_t i = 0; i < b.size(); i += 76) out += b.substr(i, 76) + "\r\n";
             return out;
           }();
  };
  auto text = body_of("textBody");
  auto html = body_of("htmlBody");
  if (e.contains("bodyStructure")) {
    why = "bodyStructure is not supported for create yet; use textBody/htmlBody";
    return std::nullopt;
  }
  // The body entity: its header fields (Content-*) and content.
  std::string body;
  if (text && html) {
    std::string boundary = "=_hato_" + HexEncode(Sha256(*text + *html)).substr(0, 24);
    body = "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n\r\n" + "--" +
           boundary + "\r\n" + qp_part("text/plain", *text) + "--" + boundary + "\r\n" +
           qp_part("text/html", *html) + "--" + boundary + "--\r\n";
  } else if (html) {
    body = qp_part("text/html", *html);
  } else {
    body = qp_part("text/plain", text.value_or(""));
  }
  const json::value* atts = e.if_contains("attachments");
  if (!atts || atts->is_null() || (atts->is_array() && atts->get_array().empty()))
    return head + body;
  if (!atts->is_array()) {
    why = "attachments";
    return std::nullopt;
  }
  std::string parts = "--{B}\r\n" + body;
  for (const auto& a : atts->get_array()) {
    const json::object* part = a.if_object();
    if (!part || !part->contains("blobId") || !part->at("blobId").is_string()) {
      why = "attachments: each needs a blobId";
      return std::nullopt;
    }
    auto blob = ReadBlob(ctx, std::string(part->at("blobId").get_string()));
    if (!blob) {
      why = "attachments: no blob " + std::string(part->at("blobId").get_string());
      return std::nullopt;
    }
    std::string name;
    if (const json::value* n = part->if_contains("name"); n && n->is_string())
      for (char c : n->get_string())
        if (static_cast<unsigned char>(c) >= 0x20) name.push_back(c);
    bool inline_part = false;
    if (const json::value* d = part->if_contains("disposition"); d && d->is_string())
      inline_part = d->get_string() == "inline";
    std::string ph = "Content-Type: " + MimeType(*part);
    if (!name.empty()) ph += "; " + MimeParam("name", name);
    ph += "\r\nContent-Disposition: ";
    ph += inline_part ? "inline" : "attachment";
    if (!name.empty()) ph += "; " + MimeParam("filename", name);
    ph += "\r\n";
    if (const json::value* c = part->if_contains("cid"); c && c->is_string()) {
      std::string cid(c->get_string());
      if (!cid.empty() && cid.find_first_of("<>\r\n ") == std::string::npos)
        ph += "Content-ID: <" + cid + ">\r\n";
    }
    ph += "Content-Transfer-Encoding: base64\r\n\r\n";
    std::string b = Base64Encode(*blob);
    for (size_t i = 0; i < b.size(); i += 76) ph += b.substr(i, 76) + "\r\n";
    parts += "--{B}\r\n" + ph;
  }
  std::string boundary = "=_hato_mixed_" + HexEncode(Sha256(parts)).substr(0, 24);
  std::string out = head + "Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n\r\n";
  size_t pos = 0;
  for (size_t at; (at = parts.find("--{B}\r\n", pos)) != std::string::npos; pos = at + 7) {
    out.append(parts, pos, at - pos);
    out += "--" + boundary + "\r\n";
  }
  out.append(parts, pos, std::string::npos);
  return out + "--" + boundary + "--\r\n";
}

// The SetError of a failed AppendEmail (RFC 8621 section 4.6/4.8): the
// quota is overQuota; the store's keyword limits (store/keyword_limits.h)
// and bad arguments are invalidProperties.
static json::object AppendError(const Error& e) {
  if (e.kind == ErrorKind::kTooLarge) {
    if (e.message == "quota exceeded") return SetError("overQuota", e.message);
    return SetError("invalidProperties", "keywords: " + e.message);
  }
  if (e.kind == ErrorKind::kInvalid || e.kind == ErrorKind::kNotFound) {
    return SetError("invalidProperties", e.message);
  }
  return SetError("serverFail", e.message);
}

Result<std::string> AppendEmail(Context& ctx, int64_t mailbox, const std::string& content,
                                const Keywords& kw, int64_t received_at) {
  const AccountData* d = ctx.Load();
  if (!d) return Err(ErrorKind::kTemporary, ctx.error);
  const store::MailboxInfo* m = MailboxById(*d, mailbox);
  if (!m) return Err(ErrorKind::kNotFound, "no such mailbox");
  store::AppendRequest req;
  req.account_id = ctx.account_id;
  req.mailbox = m->name;
  req.content = content;
  req.flags = kw.flags;
  for (const auto& k : kw.keywords) req.keywords += (req.keywords.empty() ? "" : " ") + k;
  req.internal_date = received_at;
  {
    auto cfg = ctx.svc.config->Get();
    req.keyword_limits = {cfg->imap.max_keyword_length, cfg->imap.max_keywords_per_message,
                          cfg->imap.max_keywords_per_mailbox};
  }
  if (auto tree = mime::Parse(content)) {
    req.mime = mime::Serialize(*tree);
  }
  store::Store* store = ctx.svc.store;
  auto r = store::Wait<store::AppendResult>([&](store::Done<store::AppendResult> done) {
    store->Append(std::move(req), std::move(done));
  });
  ctx.data.reset();
  if (!r) return r.error();
  return EmailIdOf(Sha256(content));
}

Output EmailSet(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "ifInState", "create", "update", "destroy");
  const AccountData* d = ctx.Load();
  if (!d) return ServerFail(ctx);
  std::string old_state = EmailState(d->mailboxes);
  if (const json::value* s = args.if_contains("ifInState"); s && !s->is_null()) {
    if (!s->is_string()) return Output::Error("invalidArguments", "ifInState");
    if (s->get_string() != old_state) return Output::Error("stateMismatch");
  }
  size_t n = 0;
  for (const char* k : {"create", "update"})
    if (const json::value* v = args.if_contains(k); v && v->is_object())
      n += v->get_object().size();
  if (const json::value* v = args.if_contains("destroy"); v && v->is_array())
    n += v->get_array().size();
  if (n > ctx.cfg.jmap.max_objects_in_set) return Output::Error("requestTooLarge");
  if (ctx.svc.disk && ctx.svc.disk->low())
    return Output::Error("serverUnavailable",
                         "insufficient storage on the server, try again later");
  json::object created, not_created, updated, not_updated, not_destroyed;
  json::array destroyed;
  if (const json::value* c = args.if_contains("create"); c && !c->is_null()) {
    if (!c->is_object()) return Output::Error("invalidArguments", "create");
    for (const auto& kv : c->get_object()) {
      std::string cid(kv.key());
      const json::object* e = kv.value().if_object();
      if (!e) {
        not_created[cid] = SetError("invalidProperties");
        continue;
      }
      std::set<int64_t> mbs;
      bool bad = false;
      if (const json::value* m = e->if_contains("mailboxIds"); m && m->is_object()) {
        for (const auto& x : m->get_object()) {
          std::string mid(x.key());
          if (!mid.empty() && mid[0] == '#' && ctx.created_ids.count(mid.substr(1)))
            mid = ctx.created_ids[mid.substr(1)];
          auto id = ParseMailboxId(mid);
          if (!id || !MailboxById(*ctx.Load(), *id))
            bad = true;
          else
            mbs.insert(*id);
        }
      }
      if (bad || mbs.empty()) {
        not_created[cid] = SetError("invalidProperties", "mailboxIds");
        continue;
      }
      Keywords kw;
      if (const json::value* k = e->if_contains("keywords")) {
        auto p = k->is_object() ? KeywordsFrom(k->get_object()) : std::nullopt;
        if (!p) {
          not_created[cid] = SetError("invalidProperties", "keywords");
          continue;
        }
        kw = *p;
      }
      std::string why;
      auto content = BuildMessage(ctx, *e, ctx.address, why);
      if (!content) {
        not_created[cid] = SetError("invalidProperties", why);
        continue;
      }
      int64_t received = std::time(nullptr);
      Result<std::string> id = Err(ErrorKind::kInternal, "");
      for (int64_t mb : mbs) {
        id = AppendEmail(ctx, mb, *content, kw, received);
        if (!id) break;
      }
      if (!id) {
        not_created[cid] = AppendError(id.error());
        continue;
      }
      std::string sha = Sha256(*content);
      created[cid] = json::object{{"id", *id},
                                  {"blobId", BlobIdOf(sha)},
                                  {"threadId", ThreadOfNew(*content)},
                                  {"size", content->size()}};
      ctx.created_ids[cid] = *id;
    }
  }
  if (const json::value* u = args.if_contains("update"); u && !u->is_null()) {
    if (!u->is_object()) return Output::Error("invalidArguments", "update");
    for (const auto& kv : u->get_object()) {
      std::string id(kv.key());
      if (!id.empty() && id[0] == '#' && ctx.created_ids.count(id.substr(1)))
        id = ctx.created_ids[id.substr(1)];
      if (!kv.value().is_object()) {
        not_updated[id] = SetError("invalidPatch");
        continue;
      }
      auto err = UpdateEmail(ctx, id, kv.value().get_object());
      if (err) {
        not_updated[id] = std::move(*err);
      } else {
        updated[id] = nullptr;
      }
    }
  }
  if (const json::value* x = args.if_contains("destroy"); x && !x->is_null()) {
    if (!x->is_array()) return Output::Error("invalidArguments", "destroy");
    for (const auto& v : x->get_array()) {
      if (!v.is_string()) return Output::Error("invalidArguments", "destroy");
      std::string id(v.get_string());
      if (!id.empty() && id[0] == '#' && ctx.created_ids.count(id.substr(1)))
        id = ctx.created_ids[id.substr(1)];
      const AccountData* cur = ctx.Load();
      if (!cur) return ServerFail(ctx);
      auto it = cur->emails.find(id);
      if (it == cur->emails.end()) {
        not_destroyed[id] = SetError("notFound");
        continue;
      }
      std::vector<int64_t> ids;
      for (size_t i : it->second) ids.push_back(cur->rows[i].message_id);
      store::Store* store = ctx.svc.store;
      auto st = WaitVoid(
          [&](store::Done<void> done) { store->Expunge(ctx.account_id, ids, std::move(done)); });
      ctx.data.reset();
      if (!st) {
        not_destroyed[id] = SetError("serverFail", st.error().message);
      } else {
        destroyed.push_back(json::string(id));
      }
    }
  }
  const AccountData* after = ctx.Load();
  if (!after) return ServerFail(ctx);
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["oldState"] = old_state;
  r["newState"] = EmailState(after->mailboxes);
  r["created"] = created.empty() ? json::value(nullptr) : json::value(created);
  r["updated"] = updated.empty() ? json::value(nullptr) : json::value(updated);
  r["destroyed"] = destroyed.empty() ? json::value(nullptr) : json::value(destroyed);
  r["notCreated"] = not_created.empty() ? json::value(nullptr) : json::value(not_created);
  r["notUpdated"] = not_updated.empty() ? json::value(nullptr) : json::value(not_updated);
  r["notDestroyed"] = not_destroyed.empty() ? json::value(nullptr) : json::value(not_destroyed);
  return Output::One("Email/set", std::move(r));
}

// ---- Email/import (section 4.8) ----

Output EmailImport(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "ifInState", "emails");
  const json::value* emails = args.if_contains("emails");
  if (!emails || !emails->is_object()) return Output::Error("invalidArguments", "emails");
  if (emails->get_object().size() > ctx.cfg.jmap.max_objects_in_set)
    return Output::Error("requestTooLarge");
  const AccountData* d = ctx.Load();
  if (!d) return ServerFail(ctx);
  std::string old_state = EmailState(d->mailboxes);
  if (const json::value* s = args.if_contains("ifInState");
      s && s->is_string() && s->get_string() != old_state)
    return Output::Error("stateMismatch");
  json::object created, not_created;
  for (const auto& kv : emails->get_object()) {
    std::string cid(kv.key());
    const json::object* e = kv.value().if_object();
    if (!e || !e->contains("blobId") || !e->at("blobId").is_string() ||
        !e->contains("mailboxIds") || !e->at("mailboxIds").is_object()) {
      not_created[cid] = SetError("invalidProperties");
      continue;
    }
    auto blob = ReadBlob(ctx, std::string(e->at("blobId").get_string()));
    if (!blob) {
      not_created[cid] =
          SetError(blob.error().kind == ErrorKind::kNotFound ? "blobNotFound" : "serverFail");
      continue;
    }
    Keywords kw;
    if (const json::value* k = e->if_contains("keywords")) {
      auto p = k->is_object() ? KeywordsFrom(k->get_object()) : std::nullopt;
      if (!p) {
        not_created[cid] = SetError("invalidProperties", "keywords");
        continue;
      }
      kw = *p;
    }
    int64_t received = std::time(nullptr);
    if (const json::value* r = e->if_contains("receivedAt"); r && r->is_string()) {
      if (auto t = ParseUtcDate(r->get_string())) received = *t;
    }
    std::string content = std::move(*blob);
    // Stored with CRLF line ends (the store's form).
    if (content.find("\r\n") == std::string::npos && content.find('\n') != std::string::npos) {
      std::string c;
      for (char ch : content) {
        if (ch == '\n')
          c += "\r\n";
        else
          c.push_back(ch);
      }
      content = std::move(c);
    }
    // A user's message: Authentication-Results naming our host are removed
    // as on submission (RFC 8601 section 5, server/message_hygiene.h), or a
    // forged one would vouch for a spoofed sender in our users' readers.
    content = server::RemoveForgedAuthResults(content, ctx.cfg.hostname);
    Result<std::string> id = Err(ErrorKind::kInvalid, "mailboxIds");
    for (const auto& m : e->at("mailboxIds").get_object()) {
      std::string mid(m.key());
      if (!mid.empty() && mid[0] == '#' && ctx.created_ids.count(mid.substr(1)))
        mid = ctx.created_ids[mid.substr(1)];
      auto n = ParseMailboxId(mid);
      if (!n) {
        id = Err(ErrorKind::kInvalid, "mailboxIds");
        break;
      }
      id = AppendEmail(ctx, *n, content, kw, received);
      if (!id) break;
    }
    if (!id) {
      not_created[cid] = AppendError(id.error());
      continue;
    }
    std::string sha = Sha256(content);
    created[cid] = json::object{{"id", *id},
                                {"blobId", BlobIdOf(sha)},
                                {"threadId", ThreadOfNew(content)},
                                {"size", content.size()}};
    ctx.created_ids[cid] = *id;
  }
  const AccountData* after = ctx.Load();
  if (!after) return ServerFail(ctx);
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["oldState"] = old_state;
  r["newState"] = EmailState(after->mailboxes);
  r["created"] = created.empty() ? json::value(nullptr) : json::value(created);
  r["notCreated"] = not_created.empty() ? json::value(nullptr) : json::value(not_created);
  return Output::One("Email/import", std::move(r));
}

std::string IdentityIdOf(const std::string& address);

// ---- Identity (RFC 8621 section 6): the account's address and aliases ----
//
// An account has one Identity per address it may send as (its own and its
// aliases: `hato alias add`), so Identity/set cannot create or destroy one;
// it updates what the user may choose: name, replyTo, bcc and signatures.
// Those are kept in the store (Store::GetJmapDocument, kind "identities"),
// so backups have them and every node of a PostgreSQL store sees them;
// files of older versions (data/jmap-identities/{accountId}.json) are moved
// into the store at start (ImportJmapFiles).

std::atomic<io::FileSystem*> g_data_files{nullptr};

inline constexpr size_t kMaxIdentityNameBytes = 256;
inline constexpr size_t kMaxSignatureBytes = 64 * 1024;
inline constexpr size_t kMaxIdentityAddresses = 50;  // in replyTo or bcc

inline constexpr const char* kIdentitiesDocument = "identities";
inline constexpr const char* kSubmissionsDocument = "submissions";

// Serialises the read-modify-write of an account's documents in this
// process (two nodes of one PostgreSQL store may still interleave: the last
// write wins, as with two clients).
std::mutex& IdentityFileLock() {
  static std::mutex mu;
  return mu;
}

// A JMAP document of the account as a JSON object; nullopt when none was stored.
Result<std::optional<json::object>> LoadDocument(const Context& ctx, const char* kind) {
  auto text = ctx.svc.store->GetJmapDocument(ctx.account_id, kind);
  if (!text) {
    if (text.error().kind == ErrorKind::kNotFound) return std::optional<json::object>{};
    return text.error();
  }
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec || !v.is_object())
    return Err(ErrorKind::kCorrupt, std::string("unreadable JMAP ") + kind + " record");
  return std::optional<json::object>(v.get_object());
}

// The saved choices by Identity id; an empty object when none were saved.
Result<json::object> LoadIdentityChoices(const Context& ctx) {
  auto doc = LoadDocument(ctx, kIdentitiesDocument);
  if (!doc) return doc.error();
  return doc->value_or(json::object{});
}

json::object IdentityObject(const std::string& address, const json::object& choices) {
  json::object o{{"id", IdentityIdOf(address)}, {"name", ""},        {"email", address},
                 {"replyTo", nullptr},          {"bcc", nullptr},    {"textSignature", ""},
                 {"htmlSignature", ""},         {"mayDelete", false}};
  if (const json::value* c = choices.if_contains(o["id"].get_string()); c && c->is_object())
    for (const auto& kv : c->get_object()) o[kv.key()] = kv.value();
  return o;
}

std::vector<std::string> IdentityAddresses(Context& ctx) {
  std::vector<std::string> addresses{ctx.address};
  auto aliases = ctx.svc.store->ListAliases(ctx.address);
  if (aliases)
    for (const auto& a : *aliases) addresses.push_back(a.alias);
  return addresses;
}

std::string IdentityState(const json::array& list) {
  return Prefixed('i', std::to_string(Hash32(json::serialize(list))));
}

Output IdentityGet(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "ids", "properties");
  bool bad = false;
  auto ids = IdList(ctx, args, "ids", bad);
  if (bad) return Output::Error("invalidArguments", "ids");
  auto choices = LoadIdentityChoices(ctx);
  if (!choices) {
    ctx.error = choices.error().message;
    return ServerFail(ctx);
  }
  json::array all, list, not_found;
  std::set<std::string> seen;
  for (const auto& a : IdentityAddresses(ctx)) {
    json::object o = IdentityObject(a, *choices);
    std::string id(o["id"].get_string());
    seen.insert(id);
    all.push_back(o);
    if (ids && std::find(ids->begin(), ids->end(), id) == ids->end()) continue;
    list.push_back(std::move(o));
  }
  if (ids)
    for (const auto& id : *ids)
      if (!seen.count(id)) not_found.push_back(json::string(id));
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["state"] = IdentityState(all);
  r["list"] = std::move(list);
  r["notFound"] = std::move(not_found);
  return Output::One("Identity/get", std::move(r));
}

// A valid EmailAddress[]|null for replyTo/bcc (RFC 8621 section 6.1).
bool ValidAddressList(const json::value& v) {
  if (v.is_null()) return true;
  if (!v.is_array() || v.get_array().size() > kMaxIdentityAddresses) return false;
  for (const auto& a : v.get_array()) {
    const json::object* o = a.if_object();
    if (!o || !o->contains("email") || !o->at("email").is_string()) return false;
    std::string_view e = o->at("email").get_string();
    if (e.empty() || e.size() > 320 || e.find('@') == std::string_view::npos ||
        e.find_first_of("\r\n<>, ") != std::string_view::npos)
      return false;
    for (const auto& kv : *o) {
      if (kv.key() == "email") continue;
      if (kv.key() != "name" || !(kv.value().is_null() || kv.value().is_string())) return false;
      if (kv.value().is_string() && kv.value().get_string().size() > kMaxIdentityNameBytes)
        return false;
    }
  }
  return true;
}

// The error for one Identity patch, or nullopt (and `choice` updated).
std::optional<json::object> PatchIdentity(const json::object& patch, const json::object& current,
                                          json::object& choice) {
  for (const auto& kv : patch) {
    std::string_view k = kv.key();
    const json::value& v = kv.value();
    if (k == "id" || k == "email" || k == "mayDelete") {
      // Immutable: allowed only when unchanged (RFC 8620 section 5.3).
      if (!current.contains(k) || current.at(k) != v)
        return SetError("invalidProperties", std::string(k) + " cannot be changed");
      continue;
    }
    bool ok = false;
    if (k == "name")
      ok = v.is_string() && v.get_string().size() <= kMaxIdentityNameBytes;
    else if (k == "textSignature" || k == "htmlSignature")
      ok = v.is_string() && v.get_string().size() <= kMaxSignatureBytes;
    else if (k == "replyTo" || k == "bcc")
      ok = ValidAddressList(v);
    else
      return SetError("invalidProperties", "unknown property " + std::string(k));
    if (!ok) return SetError("invalidProperties", std::string(k));
    choice[k] = v;
  }
  return std::nullopt;
}

Output IdentitySet(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "ifInState", "create", "update", "destroy");
  std::lock_guard lock(IdentityFileLock());
  auto choices = LoadIdentityChoices(ctx);
  if (!choices) {
    ctx.error = choices.error().message;
    return ServerFail(ctx);
  }
  std::vector<std::string> addresses = IdentityAddresses(ctx);
  json::array before;
  std::map<std::string, json::object> current;
  for (const auto& a : addresses) {
    json::object o = IdentityObject(a, *choices);
    current[std::string(o["id"].get_string())] = o;
    before.push_back(std::move(o));
  }
  std::string old_state = IdentityState(before);
  if (const json::value* s = args.if_contains("ifInState");
      s && !s->is_null() && (!s->is_string() || s->get_string() != old_state))
    return Output::Error("stateMismatch");
  json::object not_created, updated, not_updated, not_destroyed;
  if (const json::value* c = args.if_contains("create"); c && !c->is_null()) {
    if (!c->is_object()) return Output::Error("invalidArguments", "create");
    for (const auto& kv : c->get_object())
      not_created[kv.key()] = SetError(
          "forbidden", "an Identity exists for each address of the account (hato alias add)");
  }
  if (const json::value* d = args.if_contains("destroy"); d && !d->is_null()) {
    if (!d->is_array()) return Output::Error("invalidArguments", "destroy");
    for (const auto& v : d->get_array())
      if (v.is_string())
        not_destroyed[v.get_string()] =
            current.count(std::string(v.get_string()))
                ? SetError("forbidden", "mayDelete is false: remove the alias instead")
                : SetError("notFound");
  }
  json::object next = *choices;
  if (const json::value* u = args.if_contains("update"); u && !u->is_null()) {
    if (!u->is_object()) return Output::Error("invalidArguments", "update");
    if (u->get_object().size() > ctx.cfg.jmap.max_objects_in_set)
      return Output::Error("requestTooLarge");
    for (const auto& kv : u->get_object()) {
      std::string id(kv.key());
      auto it = current.find(id);
      if (it == current.end()) {
        not_updated[id] = SetError("notFound");
        continue;
      }
      if (!kv.value().is_object()) {
        not_updated[id] = SetError("invalidPatch");
        continue;
      }
      json::object choice;
      if (const json::value* c = next.if_contains(id); c && c->is_object())
        choice = c->get_object();
      if (auto e = PatchIdentity(kv.value().get_object(), it->second, choice)) {
        not_updated[id] = std::move(*e);
        continue;
      }
      next[id] = std::move(choice);
      updated[id] = nullptr;
    }
  }
  // Choices of addresses the account no longer has are dropped.
  for (auto it = next.begin(); it != next.end();)
    it = current.count(std::string(it->key())) ? std::next(it) : next.erase(it);
  std::string new_state = old_state;
  if (!updated.empty()) {
    Status st =
        ctx.svc.store->PutJmapDocument(ctx.account_id, kIdentitiesDocument, json::serialize(next));
    if (!st) {
      spdlog::error("jmap: cannot save identities of {}: {}", ctx.address, st.error().message);
      return Output::Error("serverFail", "cannot save; try again");
    }
    json::array after;
    for (const auto& a : addresses) after.push_back(IdentityObject(a, next));
    new_state = IdentityState(after);
  }
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["oldState"] = old_state;
  r["newState"] = new_state;
  r["created"] = nullptr;
  r["updated"] = updated.empty() ? json::value(nullptr) : json::value(updated);
  r["destroyed"] = nullptr;
  r["notCreated"] = not_created.empty() ? json::value(nullptr) : json::value(not_created);
  r["notUpdated"] = not_updated.empty() ? json::value(nullptr) : json::value(not_updated);
  r["notDestroyed"] = not_destroyed.empty() ? json::value(nullptr) : json::value(not_destroyed);
  return Output::One("Identity/set", std::move(r));
}

// ---- EmailSubmission (RFC 8621 section 7): the same path as SMTP submission ----

// The addresses the account may send as: its own and its aliases (RFC 6409
// section 8.1 ownership, as on port 587).
std::vector<std::string> OwnedAddresses(Context& ctx) {
  std::vector<std::string> out{ctx.address};
  auto aliases = ctx.svc.store->ListAliases(ctx.address);
  if (aliases)
    for (const auto& a : *aliases) out.push_back(a.alias);
  return out;
}

std::string IdentityIdOf(const std::string& address) {
  return Prefixed('i', HexEncode(Sha256(address)).substr(0, 16));
}

std::string NewMessageId(const std::string& host) {
  unsigned char r[12];
  randombytes_buf(r, sizeof r);
  return "<" + HexEncode(std::string_view(reinterpret_cast<char*>(r), sizeof r)) + "." +
         std::to_string(std::time(nullptr)) + "@" + host + ">";
}

// The message as sent: Bcc removed (section 7.5), Message-ID and Date added
// when missing (RFC 6409 section 8.2, 8.3).
std::string Outgoing(const std::string& content, const std::string& host) {
  auto scan = mime::internal::ScanHeader(content);
  std::string out;
  size_t pos = 0;
  for (const auto& f : scan.fields) {
    out.append(content, pos, f.begin - pos);
    if (!EqualsIgnoreCase(f.name, "Bcc")) out.append(content, f.begin, f.end - f.begin);
    pos = f.end;
  }
  out.append(content, pos, std::string::npos);
  std::string added;
  if (!mime::internal::FindField(scan.fields, "Message-ID"))
    added += "Message-ID: " + NewMessageId(host) + "\r\n";
  if (!mime::internal::FindField(scan.fields, "Date")) {
    char date[64];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    added += std::string("Date: ") + date + "\r\n";
  }
  return added + out;
}

// ---- EmailSubmission records (RFC 8621 section 7.1) ----
//
// Each accepted submission is recorded for EmailSubmission/get, /query and
// /changes in the store (Store::PutJmapDocument, kind "submissions": the
// newest kMaxKeptSubmissions, written after the store acknowledged the
// delivery; before, data/jmap-submissions/{accountId}.json, moved into the
// store at start). Submissions are sent at once: undoStatus is "final". The
// deliveryStatus of each recipient is read from the outbound queue when
// asked: local recipients were delivered in the same transaction; a queued
// one is "queued" until the queue records it delivered or failed (with the
// last reply); the outcome stays readable once the queue has let go of the
// message (Store::ListFinishedRecipients), until the retention purge: only
// a message an admin deleted, or one purged, is "unknown" then.

inline constexpr size_t kMaxKeptSubmissions = 1000;

std::mutex& SubmissionFileLock() {
  static std::mutex mu;
  return mu;
}

// {"seq": N, "list": [record...]}: records oldest first; seq counts every
// submission ever recorded (the state), "destroyed" the ids destroyed since.
Result<json::object> LoadSubmissions(const Context& ctx) {
  auto doc = LoadDocument(ctx, kSubmissionsDocument);
  if (!doc) return doc.error();
  if (!*doc) return json::object{{"seq", 0}, {"list", json::array{}}, {"destroyed", json::array{}}};
  json::object o = std::move(**doc);
  if (!o.contains("list") || !o.at("list").is_array() || !o.contains("seq"))
    return Err(ErrorKind::kCorrupt, "unreadable JMAP submissions record");
  if (!o.contains("destroyed") || !o.at("destroyed").is_array()) o["destroyed"] = json::array{};
  return o;
}

Status SaveSubmissions(const Context& ctx, json::object& all) {
  // Trimmed history raises "floor": /changes from a state below it cannot
  // be calculated.
  int64_t floor = all.contains("floor") ? all["floor"].to_number<int64_t>() : 0;
  for (const char* k : {"list", "destroyed"}) {
    json::array& a = all[k].as_array();
    while (a.size() > kMaxKeptSubmissions) {
      floor = std::max(floor, a.front().at("seq").to_number<int64_t>());
      a.erase(a.begin());
    }
  }
  all["floor"] = floor;
  return ctx.svc.store->PutJmapDocument(ctx.account_id, kSubmissionsDocument, json::serialize(all));
}

std::string SubmissionState(const json::object& all) {
  return Prefixed('q', std::to_string(all.at("seq").to_number<int64_t>()));
}

// A record's deliveryStatus (section 7.1): stored once it is settled, else
// read from the queue. `settled`: it can no longer change (every remote
// recipient delivered or failed, or the queue has let go of the message).
json::object DeliveryStatus(Context& ctx, const json::object& rec, bool& settled) {
  if (const json::value* done = rec.if_contains("deliveryStatus"); done && done->is_object()) {
    settled = true;
    return done->get_object();
  }
  int64_t queue_id = rec.contains("queueId") ? rec.at("queueId").to_number<int64_t>() : 0;
  std::set<std::string> remote;
  if (const json::value* r = rec.if_contains("remote"); r && r->is_array())
    for (const auto& x : r->get_array())
      if (x.is_string()) remote.insert(std::string(x.get_string()));
  std::optional<store::QueuedMessage> queued;
  bool unread = false;  // the store failed: nothing is settled on that
  if (queue_id != 0) {
    auto q = ctx.svc.store->GetQueued(queue_id);
    if (q) {
      queued = std::move(*q);
    } else if (q.error().kind != ErrorKind::kNotFound) {
      unread = true;
    } else {
      // Gone from the queue: finished, with each recipient's outcome kept
      // (Store::ListFinishedRecipients); none kept (deleted by an admin,
      // or purged): "unknown".
      auto done = ctx.svc.store->ListFinishedRecipients(queue_id);
      if (!done) {
        unread = true;
      } else if (!done->empty()) {
        queued.emplace();
        queued->id = queue_id;
        queued->recipients = std::move(*done);
      }
    }
  }
  settled = !unread;
  json::object status;
  for (const auto& r : rec.at("envelope").at("rcptTo").get_array()) {
    std::string addr(r.at("email").get_string());
    json::object st{{"smtpReply", "250 2.1.5 delivered locally"},
                    {"delivered", "yes"},
                    {"displayed", "unknown"}};
    if (remote.count(addr)) {
      st["delivered"] = "unknown";
      st["smtpReply"] = "250 2.0.0 handed to the outbound queue";
      if (queued) {
        for (const auto& qr : queued->recipients) {
          if (!EqualsIgnoreCase(qr.address, addr)) continue;
          st["delivered"] = qr.state == store::RecipientState::kDelivered ? "yes"
                            : qr.state == store::RecipientState::kFailed  ? "no"
                                                                          : "queued";
          if (qr.state != store::RecipientState::kDelivered &&
              qr.state != store::RecipientState::kFailed)
            settled = false;
          if (!qr.last_error.empty()) st["smtpReply"] = qr.last_error;
        }
      }
    }
    status[addr] = std::move(st);
  }
  return status;
}

// The record as EmailSubmission/get shows it.
json::object SubmissionObject(Context& ctx, const json::object& rec) {
  json::object o = rec;
  bool settled = false;
  o["deliveryStatus"] = DeliveryStatus(ctx, rec, settled);
  for (const char* internal : {"queueId", "seq", "remote", "updatedSeq", "observed"})
    o.erase(internal);
  o["undoStatus"] = "final";
  o["dsnBlobIds"] = json::array{};
  o["mdnBlobIds"] = json::array{};
  return o;
}

// The records with what the queue did since they were last read
// (section 7: deliveryStatus changes as the queue delivers): a record whose
// status changed gets a new "updatedSeq" from the state's counter, so
// EmailSubmission/changes reports it in `updated`; a settled status is
// stored in the record and never read from the queue again. Every read of
// the records goes through here, so a state never hides a change made
// before it was given.
Result<json::object> ObservedSubmissions(Context& ctx) {
  auto all = LoadSubmissions(ctx);
  if (!all) return all;
  auto pending = [](const json::value& v) {
    const json::object& rec = v.get_object();
    return rec.contains("queueId") && !rec.contains("deliveryStatus");
  };
  const json::array& list = all->at("list").get_array();
  if (std::none_of(list.begin(), list.end(), pending)) return all;
  std::lock_guard lock(SubmissionFileLock());
  all = LoadSubmissions(ctx);  // again, under the lock
  if (!all) return all;
  int64_t seq = all->at("seq").to_number<int64_t>();
  bool changed = false;
  for (auto& v : (*all)["list"].as_array()) {
    if (!pending(v)) continue;
    json::object& rec = v.as_object();
    bool settled = false;
    json::object status = DeliveryStatus(ctx, rec, settled);
    std::string seen = std::to_string(Hash32(json::serialize(status)));
    const json::value* before = rec.if_contains("observed");
    bool differs = !before || !before->is_string() || before->get_string() != seen;
    if (settled) rec["deliveryStatus"] = status;
    // A first look is no change (nobody was shown another status).
    if (settled || (before && differs)) rec["updatedSeq"] = ++seq;
    rec["observed"] = seen;
    changed = changed || settled || differs;
  }
  if (!changed) return all;
  (*all)["seq"] = seq;
  if (Status st = SaveSubmissions(ctx, *all); !st) return st.error();
  if (ctx.svc.changes) ctx.svc.changes->PublishRecords(ctx.account_id);
  return all;
}

}  // namespace

Result<SubmissionPush> SubmissionPushState(Context& ctx) {
  auto all = ObservedSubmissions(ctx);
  if (!all) return all.error();
  SubmissionPush out;
  out.state = SubmissionState(*all);
  for (const auto& v : all->at("list").get_array()) {
    const json::object& rec = v.get_object();
    if (rec.contains("queueId") && !rec.contains("deliveryStatus")) out.pending = true;
  }
  return out;
}

namespace {

Output EmailSubmissionGet(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "ids", "properties");
  bool bad = false;
  auto ids = IdList(ctx, args, "ids", bad);
  if (bad) return Output::Error("invalidArguments", "ids");
  if (ids && ids->size() > ctx.cfg.jmap.max_objects_in_get) return Output::Error("requestTooLarge");
  auto props = Properties(args, "properties", bad);
  if (bad) return Output::Error("invalidArguments", "properties");
  auto all = ObservedSubmissions(ctx);
  if (!all) {
    ctx.error = all.error().message;
    return ServerFail(ctx);
  }
  std::map<std::string, const json::object*> by_id;
  for (const auto& v : all->at("list").get_array())
    by_id[std::string(v.at("id").get_string())] = &v.get_object();
  std::vector<std::string> wanted;
  if (ids) {
    wanted = *ids;
  } else {
    for (const auto& v : all->at("list").get_array()) {
      if (wanted.size() >= ctx.cfg.jmap.max_objects_in_get) break;
      wanted.emplace_back(v.at("id").get_string());
    }
  }
  json::array list, not_found;
  for (const auto& id : wanted) {
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      not_found.push_back(json::string(id));
      continue;
    }
    json::object o = SubmissionObject(ctx, *it->second);
    if (props) {
      json::object picked{{"id", o["id"]}};
      for (const auto& p : *props)
        if (o.contains(p)) picked[p] = o[p];
      o = std::move(picked);
    }
    list.push_back(std::move(o));
  }
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["state"] = SubmissionState(*all);
  r["list"] = std::move(list);
  r["notFound"] = std::move(not_found);
  return Output::One("EmailSubmission/get", std::move(r));
}

// EmailSubmission/changes (RFC 8620 section 5.2): created and destroyed
// records, and `updated` those whose deliveryStatus changed since the state
// (ObservedSubmissions; undoStatus is final at once and never changes).
// maxChanges (RFC 8620 section 5.2): every change has its own number in
// the account's counter (a record's seq, updatedSeq, a tombstone's seq), so
// the first maxChanges changes in that order are answered and the state
// moves to the last one's number, with hasMoreChanges.
Output EmailSubmissionChanges(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "sinceState", "maxChanges");
  std::optional<uint64_t> limit;
  if (!ReadMaxChanges(args, limit)) return Output::Error("invalidArguments", "maxChanges");
  size_t max_changes = limit.value_or(0);  // 0: no limit
  const json::value* since = args.if_contains("sinceState");
  if (!since || !since->is_string() || since->get_string().size() < 2 ||
      since->get_string()[0] != 'q')
    return Output::Error("cannotCalculateChanges");
  auto n = ParseUint(std::string_view(since->get_string()).substr(1));
  auto all = ObservedSubmissions(ctx);
  if (!all) {
    ctx.error = all.error().message;
    return ServerFail(ctx);
  }
  int64_t seq = all->at("seq").to_number<int64_t>();
  const json::array& list = all->at("list").get_array();
  int64_t floor = all->contains("floor") ? all->at("floor").to_number<int64_t>() : 0;
  if (!n || static_cast<int64_t>(*n) > seq || static_cast<int64_t>(*n) < floor)
    return Output::Error("cannotCalculateChanges");
  const auto since_seq = static_cast<int64_t>(*n);
  struct Change {
    int64_t seq;
    int kind;  // 0 created, 1 updated, 2 destroyed
    json::value id;
  };
  std::vector<Change> changes;
  for (const auto& v : list) {
    if (int64_t s = v.at("seq").to_number<int64_t>(); s > since_seq) {
      changes.push_back({s, 0, v.at("id")});
    } else if (const json::value* u = v.get_object().if_contains("updatedSeq");
               u && u->to_number<int64_t>() > since_seq) {
      changes.push_back({u->to_number<int64_t>(), 1, v.at("id")});
    }
  }
  for (const auto& v : all->at("destroyed").get_array())
    if (v.is_object() && v.get_object().at("seq").to_number<int64_t>() > since_seq)
      changes.push_back(
          {v.get_object().at("seq").to_number<int64_t>(), 2, v.get_object().at("id")});
  std::stable_sort(changes.begin(), changes.end(),
                   [](const Change& a, const Change& b) { return a.seq < b.seq; });
  size_t take = changes.size();
  if (max_changes > 0 && take > max_changes) {
    take = max_changes;
    // Never split the changes of one number.
    while (take > 0 && changes[take - 1].seq == changes[take].seq) --take;
    if (take == 0)
      return Output::Error("cannotCalculateChanges", "one change has more ids than maxChanges");
  }
  json::array lists[3];
  for (size_t i = 0; i < take; ++i) lists[changes[i].kind].push_back(changes[i].id);
  bool more = take < changes.size();
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["oldState"] = since->get_string();
  r["newState"] =
      more ? Prefixed('q', std::to_string(changes[take - 1].seq)) : SubmissionState(*all);
  r["hasMoreChanges"] = more;
  r["created"] = std::move(lists[0]);
  r["updated"] = std::move(lists[1]);
  r["destroyed"] = std::move(lists[2]);
  return Output::One("EmailSubmission/changes", std::move(r));
}

// EmailSubmission/query (section 7.3): filter identityIds, emailIds,
// threadIds, undoStatus, before, after; sort emailId, threadId, sentAt.
Output EmailSubmissionQuery(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "filter", "sort", "position", "anchor", "anchorOffset", "limit",
             "calculateTotal");
  auto all = ObservedSubmissions(ctx);
  if (!all) {
    ctx.error = all.error().message;
    return ServerFail(ctx);
  }
  std::vector<const json::object*> hits;
  const json::object* f = nullptr;
  if (const json::value* fv = args.if_contains("filter"); fv && !fv->is_null()) {
    f = fv->if_object();
    if (!f) return Output::Error("invalidArguments", "filter");
    for (const auto& kv : *f)
      if (kv.key() != "identityIds" && kv.key() != "emailIds" && kv.key() != "threadIds" &&
          kv.key() != "undoStatus" && kv.key() != "before" && kv.key() != "after")
        return Output::Error("unsupportedFilter", std::string(kv.key()));
  }
  for (const auto& v : all->at("list").get_array()) {
    const json::object& rec = v.get_object();
    bool ok = true;
    if (f) {
      for (const char* k : {"identityIds", "emailIds", "threadIds"}) {
        const json::value* want = f->if_contains(k);
        if (!want) continue;
        if (!want->is_array()) return Output::Error("invalidArguments", k);
        std::string prop(k);
        prop.pop_back();  // "identityIds" -> "identityId"
        bool in = false;
        for (const auto& x : want->get_array()) in = in || x == rec.at(prop);
        ok = ok && in;
      }
      if (const json::value* u = f->if_contains("undoStatus"))
        ok = ok && u->is_string() && u->get_string() == "final";
      for (const char* k : {"before", "after"}) {
        const json::value* t = f->if_contains(k);
        if (!t) continue;
        auto when = t->is_string() ? ParseUtcDate(t->get_string()) : std::nullopt;
        if (!when) return Output::Error("invalidArguments", k);
        auto sent = ParseUtcDate(rec.at("sendAt").get_string()).value_or(0);
        ok = ok && (std::string_view(k) == "before" ? sent < *when : sent >= *when);
      }
    }
    if (ok) hits.push_back(&rec);
  }
  // Default order: oldest first (as recorded); a sort may change it.
  if (const json::value* sv = args.if_contains("sort"); sv && !sv->is_null()) {
    if (!sv->is_array()) return Output::Error("invalidArguments", "sort");
    std::vector<std::pair<std::string, bool>> keys;
    for (const auto& c : sv->get_array()) {
      const json::object* o = c.if_object();
      if (!o || !o->contains("property") || !o->at("property").is_string())
        return Output::Error("invalidArguments", "sort");
      std::string p(o->at("property").get_string());
      if (p == "sentAt") p = "sendAt";
      if (p != "emailId" && p != "threadId" && p != "sendAt")
        return Output::Error("unsupportedSort", p);
      bool asc = true;
      if (const json::value* a = o->if_contains("isAscending"); a && a->is_bool())
        asc = a->get_bool();
      keys.emplace_back(p, asc);
    }
    std::stable_sort(hits.begin(), hits.end(), [&](const json::object* a, const json::object* b) {
      for (const auto& [p, asc] : keys) {
        std::string_view x = a->at(p).get_string(), y = b->at(p).get_string();
        if (x != y) return asc ? x < y : x > y;
      }
      return false;
    });
  }
  std::vector<std::string> ids;
  for (const json::object* h : hits) ids.push_back(std::string(h->at("id").get_string()));
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["queryState"] = SubmissionState(*all);
  r["canCalculateChanges"] = false;
  if (auto e = QueryWindow(ctx, args, ids, r)) return *e;
  return Output::One("EmailSubmission/query", std::move(r));
}

Output EmailSubmissionSet(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "ifInState", "create", "update", "destroy", "onSuccessUpdateEmail",
             "onSuccessDestroyEmail");
  const json::value* create = args.if_contains("create");
  if (create && !create->is_null() && !create->is_object())
    return Output::Error("invalidArguments", "create");
  if (create && create->is_object() &&
      create->get_object().size() > ctx.cfg.jmap.max_objects_in_set)
    return Output::Error("requestTooLarge");
  std::vector<std::string> owned = OwnedAddresses(ctx);
  auto all = ObservedSubmissions(ctx);
  if (!all) {
    ctx.error = all.error().message;
    return ServerFail(ctx);
  }
  std::string old_state = SubmissionState(*all);
  if (const json::value* st = args.if_contains("ifInState");
      st && !st->is_null() && (!st->is_string() || st->get_string() != old_state))
    return Output::Error("stateMismatch");
  json::array records;  // of the submissions made here
  json::object created, not_created, not_updated, not_destroyed;
  json::array destroyed;
  std::map<std::string, std::string> email_of;  // creation id -> emailId, for onSuccess*
  if (create && create->is_object()) {
    for (const auto& kv : create->get_object()) {
      std::string cid(kv.key());
      const json::object* sub = kv.value().if_object();
      if (!sub || !sub->contains("emailId") || !sub->at("emailId").is_string() ||
          !sub->contains("identityId") || !sub->at("identityId").is_string()) {
        not_created[cid] = SetError("invalidProperties", "emailId and identityId are required");
        continue;
      }
      std::string email_id(sub->at("emailId").get_string());
      if (!email_id.empty() && email_id[0] == '#' && ctx.created_ids.count(email_id.substr(1)))
        email_id = ctx.created_ids[email_id.substr(1)];
      std::string identity(sub->at("identityId").get_string());
      std::string from_address;
      for (const auto& a : owned)
        if (IdentityIdOf(a) == identity) from_address = a;
      if (from_address.empty()) {
        not_created[cid] = SetError("invalidProperties", "no such identity");
        continue;
      }
      const AccountData* d = ctx.Load();
      if (!d) return ServerFail(ctx);
      const store::EmailRow* row = RowByEmail(*d, email_id);
      if (!row) {
        not_created[cid] = SetError("invalidEmail", "no such Email");
        continue;
      }
      auto parsed = ParseMessage(ctx, row->message_id);
      if (!parsed) {
        not_created[cid] = SetError("invalidEmail", "the Email cannot be read");
        continue;
      }
      std::string thread_id = ThreadOf(ctx, *row);
      // The envelope: given, or from the identity and the To/Cc/Bcc fields (section 7).
      std::string mail_from = from_address;
      std::vector<std::string> rcpts;
      if (const json::value* env = sub->if_contains("envelope"); env && !env->is_null()) {
        const json::object* e = env->if_object();
        if (!e || !e->contains("mailFrom") || !e->at("mailFrom").is_object() ||
            !e->contains("rcptTo") || !e->at("rcptTo").is_array()) {
          not_created[cid] = SetError("invalidProperties", "envelope");
          continue;
        }
        const json::object& mf = e->at("mailFrom").get_object();
        if (!mf.contains("email") || !mf.at("email").is_string()) {
          not_created[cid] = SetError("invalidProperties", "envelope/mailFrom");
          continue;
        }
        mail_from = AsciiLower(std::string(mf.at("email").get_string()));
        for (const auto& r : e->at("rcptTo").get_array())
          if (r.is_object() && r.get_object().contains("email") &&
              r.get_object().at("email").is_string())
            rcpts.emplace_back(r.get_object().at("email").get_string());
      } else {
        for (const char* h : {"To", "Cc", "Bcc"}) {
          for (const mime::Address& a : mime::ParseAddressList(Unfolded(*parsed, h)))
            if (a.host && a.mailbox && !a.host->empty())
              rcpts.push_back(*a.mailbox + "@" + *a.host);
        }
      }
      if (std::find(owned.begin(), owned.end(), mail_from) == owned.end()) {
        not_created[cid] = SetError("forbiddenMailFrom", "the account does not own " + mail_from);
        continue;
      }
      if (rcpts.empty()) {
        not_created[cid] = SetError("noRecipients");
        continue;
      }
      if (rcpts.size() > ctx.cfg.smtp.max_recipients) {
        not_created[cid] = SetError("tooManyRecipients");
        continue;
      }
      // The per-account sending limits of submission (config [submission]).
      const config::SubmissionLimits& lim = ctx.cfg.submission;
      int64_t now = std::time(nullptr);
      auto hour = ctx.svc.store->CountSubmissions(ctx.account_id, now - 3600);
      auto day = ctx.svc.store->CountSubmissions(ctx.account_id, now - 86400);
      if (!hour || !day) return Output::Error("serverFail", "cannot count submissions; try again");
      if ((lim.max_messages_per_hour && *hour >= lim.max_messages_per_hour) ||
          (lim.max_messages_per_day && *day >= lim.max_messages_per_day)) {
        not_created[cid] = SetError("forbiddenToSend", "sending limit exceeded; try again later");
        continue;
      }
      store::DeliveryRequest req;
      req.return_path = mail_from;
      req.received_at = now;
      req.submitted_by = ctx.account_id;
      std::vector<store::OutboundRecipient> remote;
      json::object bad_rcpts;
      bool temp_fail = false;
      for (const auto& r : rcpts) {
        size_t at = r.rfind('@');
        if (at == std::string::npos || at == 0 || r.find_first_of(" \r\n<>") != std::string::npos) {
          bad_rcpts[r] = true;
          continue;
        }
        std::string domain = AsciiLower(r.substr(at + 1));
        auto local = ctx.svc.store->IsLocalDomain(domain);
        if (!local) {
          temp_fail = true;
          break;
        }
        if (*local) {
          auto acct = ctx.svc.store->ResolveRecipient(AsciiLower(r));
          if (!acct) {
            bad_rcpts[r] = true;
            continue;
          }
          if (std::find(req.account_ids.begin(), req.account_ids.end(), acct->id) ==
              req.account_ids.end())
            req.account_ids.push_back(acct->id);
        } else {
          remote.push_back(store::OutboundRecipient{r, 0, ""});
        }
      }
      if (temp_fail)
        return Output::Error("serverFail", "the store is temporarily failing; try again");
      if (!bad_rcpts.empty()) {
        json::object e = SetError("invalidRecipients");
        json::array list;
        for (const auto& b : bad_rcpts) list.push_back(json::string(b.key()));
        e["invalidRecipients"] = list;
        not_created[cid] = e;
        continue;
      }
      // The same hygiene as SMTP submission (server/message_hygiene.h): the
      // author fields must name the account or an alias (RFC 6409 section
      // 8.1; RFC 8621 section 7.5 forbiddenFrom), and Authentication-Results
      // naming our host are removed (RFC 8601 section 5).
      server::Authors authors = server::AuthorAddresses(parsed->content);
      if (authors.unusable) {
        not_created[cid] = SetError("forbiddenFrom", *authors.unusable);
        continue;
      }
      auto unowned =
          server::FirstUnownedAuthor(*ctx.svc.store, ctx.account_id, ctx.address, authors);
      if (!unowned) return Output::Error("serverFail", "cannot check the author; try again");
      if (*unowned) {
        not_created[cid] =
            SetError("forbiddenFrom", "the account does not own the author address " + **unowned);
        continue;
      }
      std::string content = Outgoing(
          server::RemoveForgedAuthResults(parsed->content, ctx.cfg.hostname), ctx.cfg.hostname);
      const server::MessageHooks* hooks = ctx.svc.hooks;
      if (hooks && hooks->sign_outbound) {
        auto sig = hooks->sign_outbound(mail_from.substr(mail_from.rfind('@') + 1), content);
        if (!sig) return Output::Error("serverFail", "message signing failed; try again");
        content = *sig + content;
      }
      if (!remote.empty()) {
        store::OutboundRequest out;
        out.content = content;
        out.sender = mail_from;
        bool ascii = true;
        for (unsigned char c : content) ascii = ascii && c < 0x80;
        out.eight_bit = !ascii;
        out.recipients = remote;
        req.outbound = std::move(out);
      }
      req.content = "Return-Path: <" + mail_from + ">\r\n" + content;
      if (auto tree = mime::Parse(req.content)) {
        req.mime = mime::Serialize(*tree);
      }
      store::Store* store = ctx.svc.store;
      auto receipt =
          store::Wait<store::DeliveryReceipt>([&](store::Done<store::DeliveryReceipt> done) {
            store->Deliver(std::move(req), std::move(done));
          });
      ctx.data.reset();
      if (!receipt) {
        spdlog::warn("jmap: submission for {} failed: {}", ctx.address, receipt.error().message);
        not_created[cid] = SetError("serverFail", "not sent; try again later");
        continue;
      }
      if (receipt->queue_id != 0 && ctx.svc.outbound_queued) ctx.svc.outbound_queued();
      spdlog::info("jmap: submission from {} <{}> rcpts={} remote={} queue={}", ctx.address,
                   mail_from, rcpts.size(), remote.size(), receipt->queue_id);
      std::string sid = Prefixed('s', receipt->content_id.substr(0, 16)) + std::to_string(now);
      created[cid] = json::object{
          {"id", sid}, {"undoStatus", "final"}, {"sendAt", UtcDate(now)}, {"threadId", thread_id}};
      json::array rcpt_to, remote_list;
      for (const auto& r : rcpts)
        rcpt_to.push_back(json::object{{"email", r}, {"parameters", nullptr}});
      for (const auto& r : remote) remote_list.push_back(json::string(r.address));
      records.push_back(json::object{
          {"id", sid},
          {"identityId", identity},
          {"emailId", email_id},
          {"threadId", thread_id},
          {"envelope",
           json::object{{"mailFrom", json::object{{"email", mail_from}, {"parameters", nullptr}}},
                        {"rcptTo", std::move(rcpt_to)}}},
          {"sendAt", UtcDate(now)},
          {"queueId", receipt->queue_id},
          {"remote", std::move(remote_list)}});
      ctx.created_ids[cid] = sid;
      email_of[cid] = email_id;
    }
  }
  // `all` is read again under the lock below: look the id up in its
  // current list every time (a reference kept across the reload dangled).
  auto known = [&all](std::string_view id) {
    for (const auto& v : all->at("list").get_array())
      if (v.at("id").get_string() == id) return true;
    return false;
  };
  auto resolve = [&ctx](std::string_view id) {
    std::string s(id);
    if (!s.empty() && s[0] == '#' && ctx.created_ids.count(s.substr(1)))
      return ctx.created_ids[s.substr(1)];
    return s;
  };
  // Sent at once, a submission cannot be changed or cancelled (section 7.5).
  if (const json::value* u = args.if_contains("update"); u && u->is_object())
    for (const auto& kv : u->get_object())
      not_updated[resolve(kv.key())] =
          !known(resolve(kv.key())) ? SetError("notFound")
          : kv.value().is_object() && kv.value().get_object().contains("undoStatus")
              ? SetError("cannotUnsend", "the message was sent at once")
              : SetError("invalidProperties", "only undoStatus may be updated");
  // The records change under the lock, read again (another request of the
  // account may have recorded meanwhile).
  std::unique_lock lock(SubmissionFileLock());
  if (auto again = LoadSubmissions(ctx)) *all = std::move(*again);
  json::array& list2 = (*all)["list"].as_array();
  int64_t seq = all->at("seq").to_number<int64_t>();
  // Destroying a submission forgets its record; the mail is not recalled.
  if (const json::value* x = args.if_contains("destroy"); x && x->is_array()) {
    for (const auto& x_id : x->get_array()) {
      if (!x_id.is_string()) continue;
      json::string v(resolve(x_id.get_string()));
      if (!known(v)) {
        not_destroyed[v] = SetError("notFound");
        continue;
      }
      for (size_t i = 0; i < list2.size(); ++i)
        if (list2[i].at("id").get_string() == v)
          list2.erase(list2.begin() + static_cast<std::ptrdiff_t>(i--));
      (*all)["destroyed"].as_array().push_back(json::object{{"id", v}, {"seq", ++seq}});
      destroyed.push_back(v);
    }
  }
  for (auto& rec : records) {
    rec.as_object()["seq"] = ++seq;
    list2.push_back(std::move(rec));
  }
  (*all)["seq"] = seq;
  if (!records.empty() || !destroyed.empty()) {
    if (Status st = SaveSubmissions(ctx, *all); !st) {
      spdlog::error("jmap: cannot record submissions of {}: {}", ctx.address, st.error().message);
    } else if (ctx.svc.changes) {
      ctx.svc.changes->PublishRecords(ctx.account_id);  // push (RFC 8620 section 7)
    }
  }
  lock.unlock();
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["oldState"] = old_state;
  r["newState"] = SubmissionState(*all);
  r["created"] = created.empty() ? json::value(nullptr) : json::value(created);
  r["updated"] = nullptr;
  r["destroyed"] = destroyed.empty() ? json::value(nullptr) : json::value(destroyed);
  r["notCreated"] = not_created.empty() ? json::value(nullptr) : json::value(not_created);
  r["notUpdated"] = not_updated.empty() ? json::value(nullptr) : json::value(not_updated);
  r["notDestroyed"] = not_destroyed.empty() ? json::value(nullptr) : json::value(not_destroyed);
  Output out = Output::One("EmailSubmission/set", std::move(r));
  // onSuccessUpdateEmail / onSuccessDestroyEmail (section 7.5): an implicit
  // Email/set after the submissions.
  json::object update;
  json::array destroy;
  if (const json::value* ou = args.if_contains("onSuccessUpdateEmail"); ou && ou->is_object()) {
    for (const auto& kv : ou->get_object()) {
      std::string key(kv.key());
      std::string cid = !key.empty() && key[0] == '#' ? key.substr(1) : "";
      if (email_of.count(cid)) update[email_of[cid]] = kv.value();
    }
  }
  if (const json::value* od = args.if_contains("onSuccessDestroyEmail"); od && od->is_array()) {
    for (const auto& v : od->get_array()) {
      if (!v.is_string()) continue;
      std::string key(v.get_string());
      std::string cid = !key.empty() && key[0] == '#' ? key.substr(1) : "";
      if (email_of.count(cid)) destroy.push_back(json::string(email_of[cid]));
    }
  }
  if (!update.empty() || !destroy.empty()) {
    json::object set_args;
    set_args["accountId"] = AccountId(ctx.account_id);
    if (!update.empty()) set_args["update"] = update;
    if (!destroy.empty()) set_args["destroy"] = destroy;
    Output s2 = EmailSet(ctx, set_args);
    for (auto& resp : s2.responses) out.responses.push_back(std::move(resp));
  }
  return out;
}

// ---- SearchSnippet/get (RFC 8621 section 5) ----

// The words a filter searches for in text (text, subject, body), from every
// condition of a FilterOperator tree, bounded in depth like Email/query.
void SnippetTerms(const json::object& f, int depth, std::vector<std::string>& out) {
  if (depth > 10 || out.size() > 16) return;
  if (const json::value* c = f.if_contains("conditions"); c && c->is_array()) {
    for (const auto& x : c->get_array())
      if (x.is_object()) SnippetTerms(x.get_object(), depth + 1, out);
    return;
  }
  for (const char* k : {"text", "subject", "body"})
    if (const json::value* v = f.if_contains(k); v && v->is_string() && !v->get_string().empty())
      out.emplace_back(AsciiLower(std::string(v->get_string())));
}

// `text` HTML-escaped with each (ASCII case-insensitive) occurrence of a
// term in <mark></mark> (section 5.1); nullopt when no term occurs.
std::optional<std::string> Highlight(std::string_view text, const std::vector<std::string>& terms) {
  std::string lower = AsciiLower(std::string(text));
  std::vector<std::pair<size_t, size_t>> hits;  // [begin, end)
  for (const auto& t : terms)
    for (size_t at = lower.find(t); at != std::string::npos; at = lower.find(t, at + t.size()))
      hits.emplace_back(at, at + t.size());
  if (hits.empty()) return std::nullopt;
  std::sort(hits.begin(), hits.end());
  std::string out;
  size_t pos = 0, h = 0;
  auto escape = [&out](char c) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  };
  while (pos < text.size()) {
    while (h < hits.size() && hits[h].second <= pos) ++h;
    if (h < hits.size() && hits[h].first <= pos) {
      size_t end = hits[h].second;
      while (h + 1 < hits.size() && hits[h + 1].first <= end) end = std::max(end, hits[++h].second);
      out += "<mark>";
      for (; pos < end; ++pos) escape(text[pos]);
      out += "</mark>";
      continue;
    }
    escape(text[pos++]);
  }
  return out;
}

// The message's text as one line (tags of HTML parts dropped), as for preview.
std::string PlainText(const Parsed& p) {
  std::vector<Leaf> html, text, att;
  Flatten(p.tree, {}, "", false, html, text, att, 0);
  std::string out;
  for (const Leaf& l : text) {
    if (l.part->type != "text") continue;
    std::string t = DecodedPartText(p, *l.part);
    bool tag = false;
    for (char c : t) {
      if (l.part->subtype == "html" && (c == '<' || c == '>')) {
        tag = c == '<';
        continue;
      }
      if (tag) continue;
      char ch = (c == '\r' || c == '\n' || c == '\t') ? ' ' : c;
      if (ch == ' ' && (out.empty() || out.back() == ' ')) continue;
      out.push_back(ch);
    }
    out.push_back(' ');
  }
  return out;
}

// Snippet length: the preview window around the first hit (section 5.1 "at
// most 255 octets" before highlighting).
inline constexpr size_t kSnippetBytes = 255;
inline constexpr size_t kSnippetLead = 60;

Output SearchSnippetGet(Context& ctx, json::object& args) {
  HATO_KNOWN("accountId", "filter", "emailIds");
  const json::value* f = args.if_contains("filter");
  if (f && !f->is_null() && !f->is_object()) return Output::Error("invalidArguments", "filter");
  const json::value* ids = args.if_contains("emailIds");
  if (!ids || !ids->is_array()) return Output::Error("invalidArguments", "emailIds");
  if (ids->get_array().size() > ctx.cfg.jmap.max_objects_in_get)
    return Output::Error("requestTooLarge");
  std::vector<std::string> terms;
  if (f && f->is_object()) SnippetTerms(f->get_object(), 0, terms);
  const AccountData* d = ctx.Load();
  if (!d) return ServerFail(ctx);
  json::array list, not_found;
  for (const auto& v : ids->get_array()) {
    if (!v.is_string()) return Output::Error("invalidArguments", "emailIds");
    std::string id(v.get_string());
    if (!id.empty() && id[0] == '#' && ctx.created_ids.count(id.substr(1)))
      id = ctx.created_ids[id.substr(1)];
    const store::EmailRow* row = RowByEmail(*d, id);
    std::optional<Parsed> p = row ? ParseMessage(ctx, row->message_id) : std::nullopt;
    if (!p) {
      not_found.push_back(json::string(id));
      continue;
    }
    json::object sn;
    sn["emailId"] = id;
    sn["subject"] = nullptr;
    sn["preview"] = nullptr;
    if (!terms.empty()) {
      if (auto s = Highlight(mime::DecodeHeader(Unfolded(*p, "Subject")), terms))
        sn["subject"] = *s;
      std::string body = PlainText(*p);
      std::string lower = AsciiLower(body);
      size_t first = std::string::npos;
      for (const auto& t : terms) first = std::min(first, lower.find(t));
      if (first != std::string::npos) {
        size_t begin = first > kSnippetLead ? first - kSnippetLead : 0;
        while (begin > 0 && (static_cast<unsigned char>(body[begin]) & 0xC0) == 0x80) --begin;
        size_t end = std::min(body.size(), begin + kSnippetBytes);
        while (end < body.size() && end > begin &&
               (static_cast<unsigned char>(body[end]) & 0xC0) == 0x80)
          --end;
        std::string window(TrimSpaces(std::string_view(body).substr(begin, end - begin)));
        if (auto s = Highlight(window, terms)) sn["preview"] = *s;
      }
    }
    list.push_back(std::move(sn));
  }
  json::object r;
  r["accountId"] = AccountId(ctx.account_id);
  r["list"] = std::move(list);
  r["notFound"] = not_found.empty() ? json::value(nullptr) : json::value(not_found);
  return Output::One("SearchSnippet/get", std::move(r));
}

}  // namespace

void SetDataFiles(io::FileSystem* fs) { g_data_files.store(fs); }

size_t ImportJmapFiles(store::Store& store, const std::string& data_dir) {
  io::FileSystem* f = g_data_files.load();
  if (!f) f = io::FileSystem::Default();
  size_t moved = 0;
  for (auto [dir, kind] : {std::pair{"jmap-identities", kIdentitiesDocument},
                           std::pair{"jmap-submissions", kSubmissionsDocument}}) {
    std::string path = data_dir + "/" + dir;
    if (!f->Exists(path)) continue;
    auto names = f->ListDir(path);
    if (!names) {
      spdlog::warn("jmap: cannot list {}: {}", path, names.error().message);
      continue;
    }
    for (const std::string& name : *names) {
      constexpr std::string_view kExt = ".json";
      if (name.size() <= kExt.size() || !name.ends_with(kExt)) continue;
      auto id = ParseUint(std::string_view(name).substr(0, name.size() - kExt.size()));
      if (!id || *id == 0 || *id > INT64_MAX) continue;
      std::string file = path + "/" + name;
      auto text = f->ReadFile(file);
      boost::system::error_code ec;
      json::value v = text ? json::parse(*text, ec) : json::value();
      if (!text || ec || !v.is_object()) {
        spdlog::warn("jmap: {} is unreadable; left in place", file);
        continue;
      }
      int64_t account = static_cast<int64_t>(*id);
      // A record already in the store is newer than the file: keep it.
      auto have = store.GetJmapDocument(account, kind);
      if (!have && have.error().kind != ErrorKind::kNotFound) {
        spdlog::warn("jmap: cannot read the {} of account {}: {}", kind, account,
                     have.error().message);
        continue;
      }
      if (!have) {
        if (auto st = store.PutJmapDocument(account, kind, json::serialize(v)); !st) {
          spdlog::warn("jmap: cannot move {} into the store: {}", file, st.error().message);
          continue;
        }
      }
      // Kept beside, renamed: never read again, there for an admin.
      if (auto st = f->Rename(file, file + ".migrated"); !st)
        spdlog::warn("jmap: cannot rename {}: {}", file, st.error().message);
      ++moved;
    }
  }
  if (moved > 0) spdlog::info("jmap: moved {} identity and submission files into the store", moved);
  return moved;
}

const std::vector<MethodEntry>& MailMethods() {
  static const std::vector<MethodEntry> methods = {
      {"Mailbox/get", kCapMail, MailboxGet},
      {"Mailbox/changes", kCapMail, MailboxChanges},
      {"Mailbox/query", kCapMail, MailboxQuery},
      {"Mailbox/queryChanges", kCapMail, MailboxQueryChanges},
      {"Mailbox/set", kCapMail, MailboxSet},
      {"Email/get", kCapMail, EmailGet},
      {"Email/query", kCapMail, EmailQuery},
      {"Email/changes", kCapMail, EmailChanges},
      {"Email/set", kCapMail, EmailSet},
      {"Email/import", kCapMail, EmailImport},
      {"Email/parse", kCapMail, EmailParse},
      {"Email/queryChanges", kCapMail, EmailQueryChanges},
      {"Email/copy", kCapMail, EmailCopy},
      {"Thread/get", kCapMail, ThreadGet},
      {"SearchSnippet/get", kCapMail, SearchSnippetGet},
      {"Thread/changes", kCapMail, ThreadChanges},
      {"Identity/get", kCapSubmission, IdentityGet},
      {"Identity/set", kCapSubmission, IdentitySet},
      {"EmailSubmission/get", kCapSubmission, EmailSubmissionGet},
      {"EmailSubmission/changes", kCapSubmission, EmailSubmissionChanges},
      {"EmailSubmission/query", kCapSubmission, EmailSubmissionQuery},
      {"EmailSubmission/set", kCapSubmission, EmailSubmissionSet},
  };
  return methods;
}

}  // namespace hato::jmap
