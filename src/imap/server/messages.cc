// Commands on the messages of the selected mailbox, APPEND and IDLE.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <cstdlib>
#include <set>
#include <thread>

#include "base/strings.h"
#include "imap/proto/response.h"
#include "imap/proto/strings.h"
#include "imap/server/archives.h"
#include "imap/server/render.h"
#include "imap/server/session.h"
#include "imap/server/text_search.h"
#include "imap/server/url_fetch.h"
#include "io/await.h"
#include "mime/message.h"

namespace hato::imap {

using namespace asio::experimental::awaitable_operators;  // NOLINT: operator|| for IDLE

namespace {
using std::chrono::seconds;

// A session in IDLE puts its view to sleep (view.h) after this long.
constexpr seconds kViewSleepAfter{1};

// FETCH output is rendered and written in slices of at most this many bytes,
// so that FETCH 1:* BODY[] on a large mailbox does not build it all in memory.
constexpr size_t kFetchSliceBytes = 4u << 20;

// A scan waits this long for its account's turn (imap.max_searches_per_account
// already running) before the client is told to try later: a phone and a
// desktop searching at the same moment both get their answer.
constexpr std::chrono::milliseconds kSearchSlotWait{3000};
constexpr std::chrono::milliseconds kSearchSlotPoll{5};

bool SetsSeen(const std::vector<FetchItem>& items) {
  for (const auto& i : items) {
    if ((i.att == FetchAtt::kBodySection || i.att == FetchAtt::kBinary) && !i.peek) return true;
    if (i.att == FetchAtt::kRfc822 || i.att == FetchAtt::kRfc822Text) return true;
  }
  return false;
}

// Keyword limits (issue 11 item 8; RFC 5530 [LIMIT]): each keyword at most
// imap.max_keyword_length bytes, at most max_keywords_per_message on one
// message, at most max_keywords_per_mailbox distinct ones in the mailbox
// (counted over `mailbox`, the selected mailbox's messages, when known).
// `targets` are the messages a STORE changes. Returns the reply text, or
// nullopt when within the limits.
std::optional<std::string> KeywordLimitError(const config::ImapLimits& lim,
                                             const store::FlagChange& change,
                                             const std::vector<store::MessageMeta>* mailbox,
                                             const std::vector<size_t>& targets) {
  if (change.op == store::FlagOp::kRemove || change.keywords.empty()) return std::nullopt;
  std::set<std::string> added;
  for (const auto& k : change.keywords) {
    if (k.size() > lim.max_keyword_length) {
      return "[LIMIT] keywords are limited to " + std::to_string(lim.max_keyword_length) + " bytes";
    }
    added.insert(k);
  }
  std::string per_message =
      "[LIMIT] at most " + std::to_string(lim.max_keywords_per_message) + " keywords per message";
  if (added.size() > lim.max_keywords_per_message) return per_message;
  if (mailbox == nullptr) return std::nullopt;
  auto words = [](const std::string& keywords, auto&& each) {
    for (size_t pos = 0; pos < keywords.size();) {
      size_t sp = keywords.find(' ', pos);
      if (sp == std::string::npos) sp = keywords.size();
      if (sp > pos) each(keywords.substr(pos, sp - pos));
      pos = sp + 1;
    }
  };
  if (change.op == store::FlagOp::kAdd) {
    for (size_t i : targets) {
      std::set<std::string> now = added;
      words((*mailbox)[i].keywords, [&now](std::string w) { now.insert(std::move(w)); });
      if (now.size() > lim.max_keywords_per_message) return per_message;
    }
  }
  std::set<std::string> distinct = added;
  for (const auto& m : *mailbox) {
    words(m.keywords, [&distinct](std::string w) { distinct.insert(std::move(w)); });
    if (distinct.size() > lim.max_keywords_per_mailbox) {
      return "[LIMIT] at most " + std::to_string(lim.max_keywords_per_mailbox) +
             " distinct keywords per mailbox";
    }
  }
  return std::nullopt;
}
}  // namespace

Result<std::vector<size_t>> Session::Resolve(const SeqSet& set, bool uid) const {
  const auto& msgs = selected_->view.metas();
  std::vector<size_t> out;
  if (set.saved) {
    // "$" (RFC 5182 section 2.1): the saved UIDs still in the mailbox.
    for (uint32_t u : saved_uids_) {
      if (auto i = selected_->view.Find(u)) out.push_back(*i);
    }
    return out;
  }
  if (uid) {
    IdSet ids = set.Resolve(selected_->view.MaxUid());
    auto by_uid = [](const store::MessageMeta& m, uint64_t u) { return m.uid < u; };
    for (const auto& r : ids.ranges()) {
      auto it = std::lower_bound(msgs.begin(), msgs.end(), r.first, by_uid);
      for (; it != msgs.end() && it->uid <= r.last; ++it) {
        out.push_back(static_cast<size_t>(it - msgs.begin()));
      }
    }
    return out;
  }
  // "1:*" on an empty mailbox selects nothing rather than failing (as other servers do).
  if (msgs.empty() && set.HasStar()) return out;
  IdSet seqs = set.Resolve(static_cast<uint32_t>(msgs.size()));
  if (!seqs.empty() && seqs.max() > msgs.size()) {
    return Err(ErrorKind::kInvalid, "invalid message sequence number");
  }
  for (const auto& r : seqs.ranges()) {
    for (uint64_t s = r.first; s <= r.last; ++s) out.push_back(static_cast<size_t>(s - 1));
  }
  return out;
}

awaitable<bool> Session::HandleFetch(const Command& c) {
  const auto& a = c.As<FetchArgs>();
  auto targets = Resolve(a.set, c.uid);
  if (!targets) {
    Tagged(c, "BAD", targets.error().message);
    co_return true;
  }
  // RFC 7162 section 3.1: CHANGEDSINCE and the MODSEQ item enable CONDSTORE.
  if (a.changed_since || std::any_of(a.items.begin(), a.items.end(), [](const FetchItem& f) {
        return f.att == FetchAtt::kModSeq;
      })) {
    EnableCondstore();
  }
  if (a.vanished) {
    // RFC 7162 section 3.2.6: the UIDs in the set expunged since CHANGEDSINCE,
    // before the FETCH responses; only once QRESYNC is enabled.
    if (!qresync_) {
      Tagged(c, "BAD", "VANISHED needs ENABLE QRESYNC");
      co_return true;
    }
    store::Store* store = svc_.store;
    int64_t mailbox_id = selected_->id;
    uint64_t since = *a.changed_since;
    auto list = [store, mailbox_id, since] {
      return std::optional<Result<std::vector<uint32_t>>>(store->ListVanished(mailbox_id, since));
    };
    auto vanished = co_await io::Offload(*svc_.blocking, std::move(list));
    if (!vanished->ok()) {
      Tagged(c, "NO", "[UNAVAILABLE] try again later");
      co_return true;
    }
    IdSet wanted = a.set.Resolve(std::max(selected_->view.MaxUid(), selected_->uidnext - 1));
    std::vector<uint32_t> uids;
    for (uint32_t uid : **vanished) {
      if (wanted.Contains(uid)) uids.push_back(uid);
    }
    if (!uids.empty()) Reply("* VANISHED (EARLIER) " + IdSet::FromIds(uids).ToString());
  }
  std::vector<size_t> idx;
  for (size_t i : *targets) {
    if (!a.changed_since || selected_->view[i].modseq > *a.changed_since) idx.push_back(i);
  }
  if (a.partial) {
    // RFC 9394 section 3.2: the messages at these positions of the rest.
    auto [begin, end] = PartialSlice(*a.partial, idx.size());
    idx = std::vector<size_t>(idx.begin() + static_cast<ptrdiff_t>(begin),
                              idx.begin() + static_cast<ptrdiff_t>(end));
  }
  // Fetching a body marks it \Seen (RFC 3501 section 6.4.5) in a read-write mailbox.
  std::vector<FetchItem> items = a.items;
  if (SetsSeen(items) && !selected_->read_only && selected_->archive) {
    // A list archive: the member's own \Seen (Store::SetArchiveSeen).
    std::vector<uint32_t> unseen;
    for (size_t i : idx) {
      if (!(selected_->view[i].flags & store::kSeen)) unseen.push_back(selected_->view[i].uid);
    }
    if (!unseen.empty()) {
      store::Store* store = svc_.store;
      int64_t member = account_id_, mailbox = selected_->id;
      auto op = [store, member, mailbox, unseen] {
        return std::optional<Status>(store->SetArchiveSeen(member, mailbox, unseen, true));
      };
      auto set = co_await io::Offload(*svc_.blocking, std::move(op));
      if (*set) {
        if (std::none_of(items.begin(), items.end(),
                         [](const FetchItem& f) { return f.att == FetchAtt::kFlags; })) {
          FetchItem flags;
          flags.att = FetchAtt::kFlags;
          items.push_back(flags);
        }
        for (size_t i : idx) selected_->view[i].flags |= store::kSeen;
      }
    }
  } else if (SetsSeen(items) && !selected_->read_only) {
    std::vector<int64_t> unseen;
    for (size_t i : idx) {
      if (!(selected_->view[i].flags & store::kSeen)) unseen.push_back(selected_->view[i].id);
    }
    if (!unseen.empty()) {
      store::Store* store = svc_.store;
      int64_t account = selected_->account;
      auto op = [store, account, unseen](store::Done<store::FlagResult> done) {
        store->SetFlags(account, unseen,
                        store::FlagChange{store::FlagOp::kAdd, store::kSeen, {}, 0, {}},
                        std::move(done));
      };
      auto set = co_await Write<store::FlagResult>(std::move(op));
      if (set) {
        bool has_flags = std::any_of(items.begin(), items.end(),
                                     [](const FetchItem& f) { return f.att == FetchAtt::kFlags; });
        if (!has_flags) {
          FetchItem flags;
          flags.att = FetchAtt::kFlags;
          items.push_back(flags);
        }
        for (size_t i : idx) selected_->view[i].flags |= store::kSeen;
      }
    }
  }
  bool content = NeedsContent(items);
  bool tree = NeedsTree(items);
  bool with_modseq = condstore_ && (a.changed_since.has_value() ||
                                    std::any_of(items.begin(), items.end(), [](const FetchItem& f) {
                                      return f.att == FetchAtt::kModSeq;
                                    }));
  store::Store* store = svc_.store;
  TreeCache* cache = &trees_;
  int64_t account = selected_->account;
  bool uid = c.uid;
  std::string failures;
  size_t pos = 0;
  while (pos < idx.size()) {
    // One slice: messages rendered on the blocking pool, then written.
    std::vector<std::pair<uint32_t, store::MessageMeta>> slice;
    size_t budget = 0;
    while (pos < idx.size() && (slice.empty() || budget < kFetchSliceBytes)) {
      size_t i = idx[pos++];
      slice.emplace_back(static_cast<uint32_t>(i + 1), selected_->view[i]);
      budget += content ? selected_->view[i].size : 512;
    }
    auto render = [store, cache, account, slice, items, content, tree, uid, with_modseq] {
      std::pair<std::string, std::string> out;  // responses, failed sequence numbers
      for (const auto& [seq, meta] : slice) {
        Loaded l = Load(store, cache, account, meta, content, tree);
        if (l.error) {
          spdlog::error("imap: message {} of account {}: {}", meta.id, account, l.error->message);
          if (!out.second.empty()) out.second += ',';
          out.second += std::to_string(seq);
          continue;
        }
        MessageData m{&meta, seq, l.raw, l.tree.get()};
        RenderFetch(out.first, m, items, uid, with_modseq);
      }
      return out;
    };
    // Metadata alone (FLAGS, UID, sizes, dates) is rendered right here: no
    // store access, so no reason to queue behind slow work on the pool.
    std::pair<std::string, std::string> rendered;
    if (content || tree) {
      rendered = co_await io::Offload(*svc_.blocking, std::move(render));
    } else {
      rendered = render();
    }
    conn_.output() += rendered.first;
    if (!rendered.second.empty()) {
      if (!failures.empty()) failures += ',';
      failures += rendered.second;
    }
    bool flushed = co_await Flush();
    if (!flushed) co_return false;
  }
  co_await SendUpdates(/*expunge_ok=*/c.uid);
  if (!failures.empty()) {
    Tagged(c, "NO", "[UNAVAILABLE] messages " + failures + " could not be read, try again later");
  } else {
    Tagged(c, "OK", std::string(c.uid ? "UID " : "") + "FETCH completed");
  }
  co_return true;
}

// The messages and the flag change a STORE names; nullopt after its BAD.
std::optional<Session::StoreNamed> Session::StoreTargets(const Command& c) {
  const auto& a = c.As<StoreArgs>();
  auto targets = Resolve(a.set, c.uid);
  if (!targets) {
    Tagged(c, "BAD", targets.error().message);
    return std::nullopt;
  }
  auto change = ParseFlags(a.flags);
  if (!change) {
    Tagged(c, "BAD", change.error().message);
    return std::nullopt;
  }
  return StoreNamed{std::move(*targets), std::move(*change)};
}

// STORE in a list archive: only \Seen, the member's own (Store::SetArchiveSeen);
// every other flag and keyword is the list's, answered NO [NOPERM] (RFC 5530).
// No MODSEQ: the archive's modseq does not move (UNCHANGEDSINCE is BAD here).
awaitable<bool> Session::HandleArchiveStore(const Command& c) {
  const auto& a = c.As<StoreArgs>();
  auto named = StoreTargets(c);
  if (!named) co_return true;
  std::vector<size_t>& targets = named->targets;
  store::FlagChange& change = named->change;
  if ((change.flags & ~store::kSeen) != 0 || !change.keywords.empty()) {
    Tagged(c, "NO", "[NOPERM] only \\Seen can be changed in a list archive");
    co_return true;
  }
  if (a.unchanged_since) {
    Tagged(c, "BAD", "UNCHANGEDSINCE is not supported in a list archive");
    co_return true;
  }
  bool seen = a.mode == StoreMode::kRemove ? false
              : a.mode == StoreMode::kAdd  ? true
                                           : (change.flags & store::kSeen) != 0;
  if (a.mode != StoreMode::kReplace && !(change.flags & store::kSeen)) {
    Tagged(c, "OK", std::string(c.uid ? "UID " : "") + "STORE completed");  // nothing to do
    co_return true;
  }
  std::vector<uint32_t> uids;
  for (size_t i : targets) uids.push_back(selected_->view[i].uid);
  store::Store* store = svc_.store;
  int64_t member = account_id_, mailbox = selected_->id;
  auto op = [store, member, mailbox, uids, seen] {
    return std::optional<Status>(store->SetArchiveSeen(member, mailbox, uids, seen));
  };
  auto st = co_await io::Offload(*svc_.blocking, std::move(op));
  if (!*st) {
    spdlog::error("imap: STORE in archive for {}: {}", address_, st->error().message);
    Tagged(c, "NO", "[UNAVAILABLE] flags not changed, try again later");
    co_return true;
  }
  for (size_t i : targets) {
    auto& m = selected_->view[i];
    m.flags = seen ? (m.flags | store::kSeen) : (m.flags & ~store::kSeen);
    if (a.silent) continue;
    std::string line = "* " + std::to_string(i + 1) + " FETCH (FLAGS " + FlagList(m);
    if (c.uid) line += " UID " + std::to_string(m.uid);
    Reply(line + ")");
  }
  Tagged(c, "OK", std::string(c.uid ? "UID " : "") + "STORE completed");
  co_return true;
}

awaitable<bool> Session::HandleStore(const Command& c) {
  const auto& a = c.As<StoreArgs>();
  if (selected_->archive && !selected_->read_only) co_return co_await HandleArchiveStore(c);
  if (selected_->read_only) {
    Tagged(c, "NO", "[READ-ONLY] mailbox is read-only");
    co_return true;
  }
  auto named = StoreTargets(c);
  if (!named) co_return true;
  std::vector<size_t>& targets = named->targets;
  store::FlagChange& change = named->change;
  change.op = a.mode == StoreMode::kAdd      ? store::FlagOp::kAdd
              : a.mode == StoreMode::kRemove ? store::FlagOp::kRemove
                                             : store::FlagOp::kReplace;
  if (auto limit = KeywordLimitError(cfg_->imap, change, &selected_->view.metas(), targets)) {
    Tagged(c, "NO", *limit);
    co_return true;
  }
  if (a.unchanged_since) {
    EnableCondstore();
    change.unchanged_since = *a.unchanged_since == 0 ? 1 : *a.unchanged_since;
  }
  std::vector<int64_t> ids;
  std::vector<uint32_t> uids;
  for (size_t i : targets) {
    ids.push_back(selected_->view[i].id);
    uids.push_back(selected_->view[i].uid);
  }
  store::Store* store = svc_.store;
  int64_t account = selected_->account;
  store::FlagChange fc = change;
  fc.keyword_limits = {cfg_->imap.max_keyword_length, cfg_->imap.max_keywords_per_message,
                       cfg_->imap.max_keywords_per_mailbox};
  auto op = [store, account, ids, fc](store::Done<store::FlagResult> done) {
    store->SetFlags(account, ids, fc, std::move(done));
  };
  auto result = co_await Write<store::FlagResult>(std::move(op));
  if (!result && result.error().kind == ErrorKind::kTooLarge) {
    // The store's own check (store/keyword_limits.h), e.g. a keyword another
    // session added to the mailbox since this one's view.
    // Keyword bytes count in the quota too (RFC 9208 OVERQUOTA).
    bool quota = result.error().message == "quota exceeded";
    Tagged(c, "NO", (quota ? "[OVERQUOTA] " : "[LIMIT] ") + result.error().message);
    co_return true;
  }
  if (!result) {
    spdlog::error("imap: STORE for {}: {}", address_, result.error().message);
    Tagged(c, "NO", "[UNAVAILABLE] flags not changed, try again later");
    co_return true;
  }
  // The new flags come back through the update diff; the messages this STORE
  // touched get their FETCH here unless .SILENT (RFC 3501 section 6.4.6).
  changed_ = true;
  co_await SendUpdates(/*expunge_ok=*/c.uid, uids);
  std::vector<uint32_t> refused;
  for (int64_t id : result->refused) {
    for (const auto& m : selected_->view.metas()) {
      if (m.id == id) refused.push_back(c.uid ? m.uid : 0);
    }
  }
  if (!a.silent) {
    for (size_t i = 0; i < selected_->view.size(); ++i) {
      const auto& m = selected_->view[i];
      if (std::find(uids.begin(), uids.end(), m.uid) == uids.end()) continue;
      // Expunged by another session, not announced yet: its flags did not change.
      if (selected_->pending_expunged.count(m.uid)) continue;
      std::string line = "* " + std::to_string(i + 1) + " FETCH (FLAGS " + FlagList(m);
      if (c.uid) line += " UID " + std::to_string(m.uid);
      if (condstore_) line += " MODSEQ (" + std::to_string(m.modseq) + ")";
      Reply(line + ")");
      if (!co_await FlushSlice()) co_return false;
    }
  }
  if (!result->refused.empty()) {
    // RFC 7162 section 3.1.3: MODIFIED lists what failed UNCHANGEDSINCE.
    std::vector<uint32_t> numbers;
    for (size_t i = 0; i < selected_->view.size(); ++i) {
      for (int64_t id : result->refused) {
        if (selected_->view[i].id == id) {
          numbers.push_back(c.uid ? selected_->view[i].uid : static_cast<uint32_t>(i + 1));
        }
      }
    }
    Tagged(c, "OK",
           "[MODIFIED " + IdSet::FromIds(numbers).ToString() + "] conditional STORE failed");
  } else {
    Tagged(c, "OK", std::string(c.uid ? "UID " : "") + "STORE completed");
  }
  co_return true;
}

void Session::ResolveSaved(SearchKey& key) const {
  for (auto& child : key.children) ResolveSaved(child);
  if ((key.op != SearchOp::kSequenceSet && key.op != SearchOp::kUid) || !key.set.saved) return;
  key.op = SearchOp::kUid;
  key.set = SeqSet{};
  IdSet set = IdSet::FromIds(saved_uids_);
  for (const auto& r : set.ranges()) key.set.ranges.push_back({r.first, r.last});
  // An empty set matches nothing.
}

awaitable<std::optional<Session::SearchFound>> Session::RunSearch(const Command& c, bool& ok) {
  ok = true;
  const auto& a = c.As<SearchArgs>();
  if (a.charset && !EqualsIgnoreCase(*a.charset, "UTF-8") &&
      !EqualsIgnoreCase(*a.charset, "US-ASCII")) {
    Tagged(c, "NO", "[BADCHARSET (UTF-8 US-ASCII)] charset not supported");
    co_return std::nullopt;
  }
  // Issue 11 item 5: a search string is bounded (imap.max_search_string);
  // every key is checked, however deeply nested.
  size_t longest = 0;
  bool recent_key = false;
  std::vector<const SearchKey*> keys{&a.key};
  while (!keys.empty()) {
    const SearchKey* k = keys.back();
    keys.pop_back();
    longest = std::max({longest, k->text.size(), k->field.size()});
    recent_key = recent_key || k->op == SearchOp::kNew || k->op == SearchOp::kOld ||
                 k->op == SearchOp::kRecent;
    for (const auto& ch : k->children) keys.push_back(&ch);
  }
  // RFC 9051 appendix E: IMAP4rev2 has no \Recent, and no NEW, OLD or RECENT
  // search key (search-key in section 9 lists none of them).
  if (rev2_ && recent_key) {
    Tagged(c, "BAD", "NEW, OLD and RECENT are not IMAP4rev2 search keys (RFC 9051 appendix E)");
    co_return std::nullopt;
  }
  if (longest > cfg_->imap.max_search_string) {
    Tagged(c, "NO",
           "[LIMIT] search strings are limited to " + std::to_string(cfg_->imap.max_search_string) +
               " bytes");
    co_return std::nullopt;
  }
  store::Store* store = svc_.store;
  TreeCache* cache = &trees_;
  int64_t account = selected_->account;
  // The session waits for the search, and only its own coroutine changes the
  // view, so the pool can read the metadata in place.
  const std::vector<store::MessageMeta>* metas = &selected_->view.metas();
  SearchKey key = a.key;
  ResolveSaved(key);
  int64_t mailbox_id = selected_->id;
  // A scan stops at its deadline (imap.search_timeout_seconds) or when the
  // client goes away (checked every kScanProbe messages).
  enum class Stop { kNone, kDeadline, kGone };
  struct Found {
    std::vector<uint32_t> seqs;  // matching indexes + 1
    uint64_t modseq = 0;         // their highest modseq
    Stop stop = Stop::kNone;
  };
  // The deadline counts from the start of the scan, not of the wait for a slot.
  seconds timeout(cfg_->imap.search_timeout_seconds);
  const io::Connection* conn = &conn_;
  // Test hook (tests/integration/test_hostile.py, SearchScanTest), only with
  // HATO_TEST_SCAN_DELAY_MS=N in the server's environment: each message of a
  // scan takes N ms more, so that a test can make a scan outlast its deadline
  // or its client without a machine-dependent mailbox size.
  static const int scan_delay_ms = [] {
    const char* v = std::getenv("HATO_TEST_SCAN_DELAY_MS");
    return v ? std::clamp(std::atoi(v), 0, 1000) : 0;
  }();
  auto search = [store, cache, account, mailbox_id, metas, key, timeout, conn]() mutable {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    constexpr size_t kScanProbe = 32;
    const std::vector<store::MessageMeta>& messages = *metas;
    Found out;
    UseTextIndex(*store, mailbox_id, key);              // BODY/TEXT through the full-text index
    UseEmailIdIndex(*store, account, mailbox_id, key);  // EMAILID through the body-hash index
    SearchNeeds needs = SearchNeedsOf(key);
    bool content = needs == SearchNeeds::kContent;
    bool tree = needs != SearchNeeds::kMeta;
    uint32_t max_seq = static_cast<uint32_t>(messages.size());
    uint32_t max_uid = messages.empty() ? 0 : messages.back().uid;
    for (size_t i = 0; i < messages.size(); ++i) {
      if (tree && std::chrono::steady_clock::now() > deadline) {
        out.stop = Stop::kDeadline;
        break;
      }
      if (tree && i % kScanProbe == kScanProbe - 1 && conn->PeerGone()) {
        out.stop = Stop::kGone;
        break;
      }
      if (tree && scan_delay_ms > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(scan_delay_ms));
      }
      Loaded l = Load(store, cache, account, messages[i], content, tree);
      MessageData m{&messages[i], static_cast<uint32_t>(i + 1), l.raw, l.tree.get()};
      if (!Matches(key, m, max_seq, max_uid)) continue;
      out.seqs.push_back(static_cast<uint32_t>(i + 1));
      out.modseq = std::max(out.modseq, messages[i].modseq);
    }
    return out;
  };
  Found result;
  if (SearchNeedsOf(key) == SearchNeeds::kMeta) {
    result = search();  // flags, sizes, dates, UIDs: no store access
  } else {
    // A scan: on its own pool (server/isolation.h), at most
    // imap.max_searches_per_account at once per account.
    server::AccountSlots::Slot slot;
    if (svc_.scan_slots) {
      auto wait_until = std::chrono::steady_clock::now() + kSearchSlotWait;
      asio::steady_timer wait(co_await asio::this_coro::executor);
      size_t max = cfg_->imap.max_searches_per_account;
      while (!(slot = svc_.scan_slots->TryTake(account, max, /*retrying=*/true))) {
        if (std::chrono::steady_clock::now() >= wait_until) {
          svc_.scan_slots->Refused();
          Tagged(c, "NO", "[LIMIT] too many searches running for this account, try again later");
          co_return std::nullopt;
        }
        wait.expires_after(kSearchSlotPoll);
        co_await wait.async_wait(asio::use_awaitable);
      }
    }
    asio::thread_pool& pool = svc_.scans ? *svc_.scans : *svc_.blocking;
    result = co_await io::Offload(pool, std::move(search));
  }
  if (result.stop == Stop::kGone) {
    spdlog::info("imap: search for {} cancelled: the client went away", address_);
    ok = false;
    co_return std::nullopt;
  }
  if (result.stop == Stop::kDeadline) {
    spdlog::warn("imap: search for {} stopped after {} s", address_,
                 cfg_->imap.search_timeout_seconds);
    Tagged(c, "NO", "[LIMIT] search took too long; narrow it down");
    co_return std::nullopt;
  }
  co_return SearchFound{std::move(result.seqs), result.modseq};
}

// Whether a key names messages by sequence number anywhere (an updating
// search could not follow them as they are renumbered).
static bool HasSequenceSetKey(const SearchKey& k) {
  if (k.op == SearchOp::kSequenceSet) return true;
  return std::any_of(k.children.begin(), k.children.end(), HasSequenceSetKey);
}

bool Session::UpdateTagInUse(const Command& c) {
  for (const auto& ctx : selected_->contexts) {
    if (ctx.tag != c.tag) continue;
    Tagged(c, "BAD", "the tag of an updating search is in use (RFC 5267 section 4.3)");
    return true;
  }
  return false;
}

void Session::StartUpdates(const Command& c, const std::vector<uint32_t>& seqs) {
  const auto& a = c.As<SearchArgs>();
  SearchKey key = a.key;
  ResolveSaved(key);
  // Section 4.3.1: a search this server does not keep up to date is
  // answered, with "* NO [NOUPDATE tag]" first and no updates after.
  std::string refused;
  if (SearchNeedsOf(key) != SearchNeeds::kMeta) {
    refused = "only searches on flags, sizes, dates and UIDs are updated";
  } else if (HasSequenceSetKey(key)) {
    refused = "searches by sequence number are not updated";
  } else if (selected_->contexts.size() >= kMaxUpdateContexts) {
    refused = "at most " + std::to_string(kMaxUpdateContexts) + " updating searches";
  }
  if (!refused.empty()) {
    std::string line = "* NO [NOUPDATE ";
    AppendString(line, c.tag);
    Reply(line + "] " + refused);
    return;
  }
  const auto& metas = selected_->view.metas();
  std::vector<uint32_t> uids;
  for (uint32_t seq : seqs) uids.push_back(metas[seq - 1].uid);
  std::vector<SortCriterion> sort;
  if (c.verb == Verb::kSort) sort = a.sort;
  selected_->contexts.push_back(
      UpdateContext{c.tag, c.uid, std::move(key), std::move(sort), std::move(uids)});
}

awaitable<bool> Session::HandleSearch(const Command& c) {
  const auto& a = c.As<SearchArgs>();
  const std::vector<store::MessageMeta>* metas = &selected_->view.metas();
  bool ok = true;
  // RFC 5267 section 4.3: UPDATE with the tag of a search still updated is BAD.
  if (a.return_update && UpdateTagInUse(c)) co_return true;
  // RFC 5182 section 2.1: a SEARCH with SAVE that fails leaves "$" empty.
  if (a.return_save) saved_uids_.clear();
  auto result = co_await RunSearch(c, ok);
  if (!result) co_return ok;
  std::pair<std::vector<uint32_t>, uint64_t> found{std::move(result->seqs), result->modseq};
  std::vector<uint32_t> numbers;
  for (uint32_t seq : found.first) numbers.push_back(c.uid ? (*metas)[seq - 1].uid : seq);
  bool modseq_key = HasModSeqKey(a.key);
  if (modseq_key) EnableCondstore();
  if (a.return_save) {
    // Section 2.1: with MIN and/or MAX alone only those are saved.
    std::vector<uint32_t> uids;
    for (uint32_t seq : found.first) uids.push_back((*metas)[seq - 1].uid);
    if ((a.return_min || a.return_max) && !a.return_all && !a.return_count && !uids.empty()) {
      std::vector<uint32_t> ends;
      if (a.return_min) ends.push_back(uids.front());
      if (a.return_max && (!a.return_min || uids.size() > 1)) ends.push_back(uids.back());
      uids = std::move(ends);
    }
    saved_uids_ = std::move(uids);
  }
  if (a.return_update) StartUpdates(c, found.first);
  bool save_only = a.return_save && !a.return_min && !a.return_max && !a.return_all &&
                   !a.return_count && !a.partial;
  if (save_only) {
    // Section 2.1: SAVE alone gives no ESEARCH response.
  } else if (a.esearch || rev2_) {  // RFC 9051 section 7.3.4: IMAP4rev2 answers ESEARCH
    // RFC 7162 section 3.1.5: with MODSEQ in the criteria, ESEARCH carries it too.
    std::optional<uint64_t> modseq;
    if (modseq_key) modseq = found.second;
    conn_.output() += FormatEsearch(c.tag, c.uid, a, numbers, modseq);  // CRLF included
  } else {
    std::string line = "* SEARCH";
    for (uint32_t n : numbers) line += " " + std::to_string(n);
    // RFC 7162 section 3.1.5: with MODSEQ in the criteria, the highest modseq.
    if (modseq_key && !numbers.empty()) line += " (MODSEQ " + std::to_string(found.second) + ")";
    Reply(line);
  }
  co_await SendUpdates(/*expunge_ok=*/c.uid);
  Tagged(c, "OK", std::string(c.uid ? "UID " : "") + "SEARCH completed");
  co_return true;
}

awaitable<bool> Session::HandleCopy(const Command& c) {
  const auto& a = c.As<CopyArgs>();
  bool move = c.verb == Verb::kMove;
  if (move && selected_->archive) {
    Tagged(c, "NO", "[NOPERM] list archives are read-only");
    co_return true;
  }
  if (move && selected_->read_only) {
    Tagged(c, "NO", "[READ-ONLY] mailbox is read-only");
    co_return true;
  }
  if (selected_->archive) {
    // The store copies within one account; a copy out of an archive would
    // need the body stored again for the member (not done yet).
    Tagged(c, "NO", "[CANNOT] copying out of a list archive is not supported");
    co_return true;
  }
  auto targets = Resolve(a.set, c.uid);
  if (!targets) {
    Tagged(c, "BAD", targets.error().message);
    co_return true;
  }
  auto dest = FromWire(a.mailbox);
  if (!dest) {
    Tagged(c, "NO", "[TRYCREATE] invalid mailbox name");
    co_return true;
  }
  if (IsArchiveName(*dest)) {
    Tagged(c, "NO", "[NOPERM] list archives are read-only");
    co_return true;
  }
  std::vector<int64_t> ids;
  for (size_t i : *targets) ids.push_back(selected_->view[i].id);
  store::Store* store = svc_.store;
  int64_t account = account_id_;
  std::string to = *dest;
  auto op = [store, account, ids, to, move](store::Done<store::CopyResult> done) {
    store->CopyMessages(account, ids, to, move, std::move(done));
  };
  auto result = co_await Write<store::CopyResult>(std::move(op));
  if (!result) {
    if (result.error().kind == ErrorKind::kNotFound) {
      Tagged(c, "NO", "[TRYCREATE] no such mailbox");
    } else if (result.error().kind == ErrorKind::kTooLarge) {
      Tagged(c, "NO", "[OVERQUOTA] quota exceeded");  // RFC 9208 section 5.1
    } else {
      spdlog::error("imap: {} for {}: {}", VerbName(c.verb), address_, result.error().message);
      Tagged(c, "NO", "[UNAVAILABLE] try again later");
    }
    co_return true;
  }
  std::string copyuid;
  if (!result->dest_uids.empty()) {
    // RFC 4315 section 3: source and destination UIDs in matching order.
    std::string src, dst;
    for (size_t i = 0; i < result->source_uids.size(); ++i) {
      src += (i ? "," : "") + std::to_string(result->source_uids[i]);
      dst += (i ? "," : "") + std::to_string(result->dest_uids[i]);
    }
    copyuid = "[COPYUID " + std::to_string(result->uidvalidity) + " " + src + " " + dst + "] ";
  }
  if (move) {
    // RFC 6851 section 4.3: COPYUID in an untagged OK, then the expunges.
    if (!copyuid.empty()) Reply("* OK " + copyuid + "moved");
    changed_ = true;
    co_await SendUpdates(true);
    Tagged(c, "OK", std::string(c.uid ? "UID " : "") + "MOVE completed");
  } else {
    co_await SendUpdates(true);
    Tagged(c, "OK", copyuid + std::string(c.uid ? "UID " : "") + "COPY completed");
  }
  co_return true;
}

awaitable<bool> Session::HandleExpunge(const Command& c, bool silent) {
  if (selected_->read_only || selected_->archive) {
    if (!silent) {
      Tagged(c, "NO",
             selected_->archive ? "[NOPERM] list archives are read-only"
                                : "[READ-ONLY] mailbox is read-only");
    }
    co_return true;
  }
  std::optional<IdSet> only;
  if (c.verb == Verb::kExpunge && c.uid) {  // UID EXPUNGE (RFC 4315 section 2.1)
    const SeqSet& set = c.As<ExpungeArgs>().set;
    only = set.saved ? IdSet::FromIds(saved_uids_) : set.Resolve(selected_->view.MaxUid());
  }
  std::vector<int64_t> ids;
  for (const auto& m : selected_->view.metas()) {
    if ((m.flags & store::kDeleted) && (!only || only->Contains(m.uid))) ids.push_back(m.id);
  }
  if (!ids.empty()) {
    store::Store* store = svc_.store;
    int64_t account = selected_->account;
    auto op = [store, account, ids](store::Done<void> done) {
      store->Expunge(account, ids, std::move(done));
    };
    auto result = co_await Write<void>(std::move(op));
    if (!result) {
      spdlog::error("imap: EXPUNGE for {}: {}", address_, result.error().message);
      if (!silent) Tagged(c, "NO", "[UNAVAILABLE] nothing expunged, try again later");
      co_return true;
    }
    changed_ = true;
  }
  if (silent) {
    changed_ = false;  // CLOSE: no untagged EXPUNGE responses
    co_return true;
  }
  co_await SendUpdates(true);
  Tagged(c, "OK", std::string(c.uid ? "UID " : "") + "EXPUNGE completed");
  co_return true;
}

awaitable<bool> Session::HandleAppend(const Command& c) {
  const auto& a = c.As<AppendArgs>();
  auto name = FromWire(a.mailbox);
  if (!name) {
    Tagged(c, "NO", "[TRYCREATE] invalid mailbox name");
    co_return true;
  }
  if (IsArchiveName(*name)) {
    Tagged(c, "NO", "[NOPERM] list archives are read-only");  // RFC 5530
    co_return true;
  }
  // MULTIAPPEND (RFC 3502): every message is checked before any is stored,
  // and all are stored in one transaction, or none.
  std::vector<const AppendMessage*> messages;
  AppendMessage first{a.flags, a.date_time, {}, {}};
  messages.push_back(&first);
  for (const auto& m : a.more) messages.push_back(&m);
  bool into_selected = selected_ && selected_->name == *name;
  // CATENATE (RFC 4469 section 3): messages given as parts are built first,
  // off the event loop; a URL that cannot be read fails the whole command
  // (every message of a MULTIAPPEND) with NO [BADURL], before anything is stored.
  std::vector<std::string> built;
  if (!a.catenate.empty() || std::any_of(a.more.begin(), a.more.end(),
                                         [](const auto& m) { return !m.catenate.empty(); })) {
    auto result = co_await BuildCatenated(c);
    if (!result) co_return true;  // answered
    built = std::move(*result);
  }
  std::vector<store::AppendRequest> reqs;
  for (size_t i = 0; i < messages.size(); ++i) {
    const AppendMessage& m = *messages[i];
    auto change = ParseFlags(m.flags);
    if (!change) {
      Tagged(c, "BAD", change.error().message);
      co_return true;
    }
    if (auto limit = KeywordLimitError(cfg_->imap, *change,
                                       into_selected ? &selected_->view.metas() : nullptr, {})) {
      Tagged(c, "NO", *limit);
      co_return true;
    }
    store::AppendRequest& req = reqs.emplace_back();
    req.account_id = account_id_;
    req.mailbox = *name;
    const std::vector<CatPart>& parts = i == 0 ? a.catenate : m.catenate;
    if (!parts.empty()) {
      req.content = std::move(built[i]);
    } else {
      req.content = i == 0 ? a.message : m.message;
    }
    req.flags = change->flags;
    for (const auto& k : change->keywords) {
      if (!req.keywords.empty()) req.keywords += ' ';
      req.keywords += k;
    }
    req.internal_date = m.date_time ? ToUnixTime(*m.date_time) : std::time(nullptr);
    // The store checks them too, against the mailbox as it is (selected or not).
    req.keyword_limits = {cfg_->imap.max_keyword_length, cfg_->imap.max_keywords_per_message,
                          cfg_->imap.max_keywords_per_mailbox};
  }
  if (svc_.disk && svc_.disk->low()) {
    Tagged(c, "NO", "[UNAVAILABLE] insufficient storage on the server, try again later");
    co_return true;
  }
  // Parse once here, off the event loop; FETCH reads the stored tree. (The
  // full-text index extracts the text later: search/text_index.h.)
  auto parse = [reqs = std::move(reqs)]() mutable {
    for (auto& req : reqs) {
      auto tree = mime::Parse(req.content);
      req.mime = tree ? mime::Serialize(*tree) : std::string();
    }
    return std::move(reqs);
  };
  reqs = co_await io::Offload(*svc_.blocking, std::move(parse));
  store::Store* store = svc_.store;
  std::vector<store::AppendResult> results;
  Status stored = Ok();
  if (reqs.size() == 1) {
    auto op = [store,
               req = std::move(reqs.front())](store::Done<store::AppendResult> done) mutable {
      store->Append(std::move(req), std::move(done));
    };
    auto result = co_await Write<store::AppendResult>(std::move(op));
    if (result) {
      results.push_back(*result);
    } else {
      stored = result.error();
    }
  } else {
    auto op = [store,
               reqs = std::move(reqs)](store::Done<std::vector<store::AppendResult>> done) mutable {
      store->AppendMany(std::move(reqs), std::move(done));
    };
    auto result = co_await Write<std::vector<store::AppendResult>>(std::move(op));
    if (result) {
      results = std::move(*result);
    } else {
      stored = result.error();
    }
  }
  if (!stored) {
    switch (stored.error().kind) {
      case ErrorKind::kNotFound:
        Tagged(c, "NO", "[TRYCREATE] no such mailbox");
        break;
      case ErrorKind::kTooLarge:
        // The quota, or the store's keyword limits (store/keyword_limits.h),
        // e.g. the mailbox's distinct keywords when it is not the selected one.
        if (stored.error().message == "quota exceeded") {
          Tagged(c, "NO", "[OVERQUOTA] quota exceeded");
        } else {
          Tagged(c, "NO", "[LIMIT] " + stored.error().message);
        }
        break;
      default:
        spdlog::error("imap: APPEND for {}: {}", address_, stored.error().message);
        Tagged(c, "NO", "[UNAVAILABLE] message not stored, try again later");
    }
    co_return true;
  }
  if (state_ == State::kSelected) co_await SendUpdates(true);
  // RFC 4315 section 3: APPENDUID with the UIDs of all the messages.
  std::vector<uint32_t> ids;
  for (const auto& r : results) ids.push_back(r.uid);
  IdSet uids = IdSet::FromIds(std::move(ids));
  Tagged(c, "OK",
         "[APPENDUID " + std::to_string(results.front().uidvalidity) + " " + uids.ToString() +
             "] APPEND completed");
  co_return true;
}

namespace {

// A URL as the text of a [BADURL] response code: url-resp-text is TEXT-CHARs
// other than "]" (RFC 4469 section 5, erratum 2002); anything else is
// percent-encoded, as in a URL.
std::string BadUrlText(std::string_view url) {
  std::string out;
  for (char ch : url) {
    auto u = static_cast<unsigned char>(ch);
    if (u <= 0x20 || u >= 0x7f || ch == ']') {
      constexpr char kHex[] = "0123456789ABCDEF";
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace

awaitable<std::optional<std::vector<std::string>>> Session::BuildCatenated(const Command& c) {
  const auto& a = c.As<AppendArgs>();
  UrlContext ctx;
  ctx.account_id = account_id_;
  ctx.user = address_;
  if (selected_) ctx.selected_mailbox = selected_->name;
  ctx.servers = ThisServerNames(cfg_->hostname);
  // Each message is bounded by APPENDLIMIT, and all of them together by what
  // one command may carry (Limits::max_command): a few URLs naming large
  // messages must not build more than a MULTIAPPEND of literals could send.
  uint64_t limit = cfg_->imap.max_message_size;
  uint64_t total_limit = reader_.limits().max_command;
  struct Built {
    uint64_t total = 0;  // of the messages built so far
    std::vector<std::string> contents;
    std::string bad_url;  // the URL that failed
    bool too_big = false;
    std::optional<Error> error;  // the store failed
  };
  store::Store* store = svc_.store;
  // `a` lives in the command, which outlives this await.
  auto build = [store, ctx = std::move(ctx), limit, total_limit, &a]() {
    Built b;
    auto one = [&](const std::vector<CatPart>& parts) -> std::string {
      std::string out;
      for (const CatPart& p : parts) {
        if (!b.bad_url.empty() || b.too_big || b.error) return out;
        if (!p.url) {
          out += p.data;
        } else {
          auto url = ParseImapUrl(p.data);
          Result<std::string> data =
              url ? FetchUrl(*store, *url, ctx) : Result<std::string>(url.error());
          if (!data) {
            ErrorKind k = data.error().kind;
            if (k == ErrorKind::kNotFound || k == ErrorKind::kInvalid) {
              b.bad_url = p.data;
            } else {
              b.error = data.error();
            }
            return out;
          }
          out += *data;
        }
        if (out.size() > limit || b.total + out.size() > total_limit) b.too_big = true;
      }
      return out;
    };
    auto add = [&](const std::vector<CatPart>& parts) {
      b.contents.push_back(one(parts));
      b.total += b.contents.back().size();
    };
    add(a.catenate);
    for (const AppendMessage& m : a.more) add(m.catenate);
    return b;
  };
  Built b = co_await io::Offload(*svc_.blocking, std::move(build));
  if (!b.bad_url.empty()) {
    Tagged(c, "NO",
           "[BADURL " + BadUrlText(b.bad_url) +
               "] CATENATE: the URL names no readable message or part");
    co_return std::nullopt;
  }
  if (b.too_big) {
    // RFC 4469 section 3 (and RFC 7889): the built message is over APPENDLIMIT.
    Tagged(c, "NO", "[TOOBIG] CATENATE: the message would exceed APPENDLIMIT");
    co_return std::nullopt;
  }
  if (b.error) {
    spdlog::error("imap: CATENATE for {}: {}", address_, b.error->message);
    Tagged(c, "NO", "[UNAVAILABLE] the URL could not be read, try again later");
    co_return std::nullopt;
  }
  co_return std::move(b.contents);
}

awaitable<bool> Session::HandleIdle(const Command& c) {
  // RFC 2177: updates are pushed as they happen until the client sends DONE.
  // With NOTIFY and no SELECTED filter nothing about the selected mailbox
  // is pushed (RFC 5465 sections 4 and 6.1): the changes wait for DONE.
  Reply("+ idling");
  if (state_ == State::kSelected && SelectedPushes()) co_await SendUpdates(true);
  while (true) {
    LineResult line = reader_.NextLine();
    if (auto* l = std::get_if<Line>(&line)) {
      if (EqualsIgnoreCase(TrimSpaces(l->text), "DONE")) {
        if (state_ == State::kSelected && !SelectedPushes()) co_await SendUpdates(true);
        Tagged(c, "OK", "IDLE terminated");
        co_return true;
      }
      Tagged(c, "BAD", "expected DONE");
      co_return true;
    }
    if (std::holds_alternative<LineTooLong>(line)) {
      Tagged(c, "BAD", "expected DONE");
      co_return true;
    }
    if (stopping_) {
      Reply(StopReason());
      co_return false;
    }
    if (changed_ && state_ == State::kSelected && SelectedPushes()) co_await SendUpdates(true);
    if (notify_) {
      bool sent = co_await SendNotifications();  // RFC 5465 section 3: also during IDLE
      if (!sent) co_return false;
    }
    bool flushed = co_await Flush();
    if (!flushed) co_return false;
    // Once the client has idled kViewSleepAfter, keep only what the view
    // needs (see view.h) and no buffers: a long wait costs little memory.
    // (Clients that IDLE briefly between commands keep their metadata.)
    seconds timeout(cfg_->imap.idle_timeout_seconds);
    // Updating searches (RFC 5267 section 4.3) are evaluated against the
    // metadata: a session with one keeps its view awake.
    bool keep = selected_ && !selected_->contexts.empty();
    bool nap = selected_ && selected_->view.awake() && timeout > kViewSleepAfter && !keep;
    if (nap) {
      timeout = kViewSleepAfter;
    } else {
      if (selected_ && !keep) selected_->view.Sleep();
      reader_.Trim();
      conn_.Trim();
    }
    // Wait for input or a change, whichever comes first (nullopt: a change).
    std::optional<io::ReadStatus> st;
    if (conn_.lean_wait()) {
      // The same wait without coroutines of its own (io/net.h WaitIdle):
      // wake_ expires at the timeout, MailboxChanged cancels it.
      wake_.expires_after(timeout);
      idle_ = true;
      io::Connection::IdleWake w = co_await conn_.WaitIdle(wake_);
      if (w == io::Connection::IdleWake::kInput && !stopping_) {
        st = co_await ReadMore(timeout);  // kTimeout: the readiness was spurious
      } else if (w == io::Connection::IdleWake::kTimeout) {
        st = io::ReadStatus::kTimeout;
      }
      idle_ = false;
    } else {
      wake_.expires_at(asio::steady_timer::time_point::max());
      boost::system::error_code wake_ec;
      auto wake_token = asio::redirect_error(asio::use_awaitable, wake_ec);
      auto input = ReadMore(timeout);
      auto woken = wake_.async_wait(wake_token);
      idle_ = true;
      std::variant<io::ReadStatus, std::monostate> r =
          co_await (std::move(input) || std::move(woken));
      idle_ = false;
      if (r.index() == 0) st = std::get<0>(r);
    }
    if (!st) continue;
    if (*st == io::ReadStatus::kTimeout && nap) {
      if (selected_) selected_->view.Sleep();
      continue;
    }
    if (*st == io::ReadStatus::kTimeout) {
      Reply("* BYE Autologout; idle for too long");
      co_return false;
    }
    if (*st != io::ReadStatus::kOk && !stopping_) co_return false;
  }
}

}  // namespace hato::imap
