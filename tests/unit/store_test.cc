#include "store/store.h"

#include <gtest/gtest.h>
#include <xapian.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "io/fault_fs.h"
#include "store/blobs.h"
#include "store/cached_lookups.h"
#include "store/postgres/conn.h"
#include "store/sqlite/db.h"
#include "store_backends.h"
#include "test_util.h"

namespace hato::store {
namespace {

// A test extractor: the header is what precedes the blank line.
IndexText SplitText(std::string_view content, std::string_view) {
  size_t blank = content.find("\r\n\r\n");
  if (blank == std::string_view::npos) return {std::string(content), ""};
  return {std::string(content.substr(0, blank)), std::string(content.substr(blank + 4))};
}

class StoreTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    if (!where_.Prepare()) GTEST_SKIP() << testing::kNoPostgres;
    Reopen();
  }

  // index_text: with the full-text index and its indexer (SplitText's header and body).
  void Reopen(bool index_text = false) {
    store_.reset();
    StoreOptions options;
    options.fs = &faults_;
    options.sort_keys = sort_keys_;
    if (index_text) options.index_text = SplitText;
    auto s = where_.Open(options);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
  }

  int64_t MakeAccount(const std::string& addr) {
    (void)store_->AddDomain("example.test");
    EXPECT_TRUE(store_->AddAccount(addr, "hash").ok());
    auto a = store_->FindAccount(addr);
    EXPECT_TRUE(a.ok());
    return a->id;
  }

  Result<DeliveryReceipt> Deliver(std::vector<int64_t> to, std::string content) {
    DeliveryRequest req;
    req.return_path = "sender@remote.test";
    req.account_ids = std::move(to);
    req.content = std::move(content);
    req.received_at = 1700000000;
    return Wait<DeliveryReceipt>(
        [&](Done<DeliveryReceipt> done) { store_->Deliver(std::move(req), std::move(done)); });
  }

  testing::TestStoreLocation where_{GetParam()};
  io::FaultFileSystem faults_{io::FileSystem::Default()};
  std::function<std::string(std::string_view, std::string_view)> sort_keys_;
  std::unique_ptr<Store> store_;
};
HATO_STORE_BACKENDS(StoreTest);
// The same suite through the sharded store (issue 15): two databases.
INSTANTIATE_TEST_SUITE_P(Shards, StoreTest, ::testing::Values(testing::Backend::kSharded),
                         testing::BackendName);

// Tests of the embedded store's files (segments, meta.db, fsync faults).
class EmbeddedStoreTest : public StoreTest {};
INSTANTIATE_TEST_SUITE_P(Backends, EmbeddedStoreTest,
                         ::testing::Values(testing::Backend::kEmbedded), testing::BackendName);

TEST_P(StoreTest, DomainsAndAccounts) {
  ASSERT_TRUE(store_->AddDomain("Example.TEST").ok());
  EXPECT_EQ(store_->AddDomain("example.test").error().kind, ErrorKind::kExists);
  EXPECT_TRUE(*store_->IsLocalDomain("EXAMPLE.test"));
  EXPECT_FALSE(*store_->IsLocalDomain("other.test"));
  EXPECT_EQ(store_->AddAccount("a@other.test", "h").error().kind, ErrorKind::kNotFound);
  ASSERT_TRUE(store_->AddAccount("Alice@example.test", "h1").ok());
  EXPECT_EQ(store_->AddAccount("alice@example.test", "h").error().kind, ErrorKind::kExists);
  EXPECT_EQ(store_->FindAccount("ALICE@example.test")->password_hash, "h1");
  ASSERT_TRUE(store_->SetPassword("alice@example.test", "h2").ok());
  EXPECT_EQ(store_->FindAccount("alice@example.test")->password_hash, "h2");
  EXPECT_EQ(store_->RemoveDomain("example.test").error().kind, ErrorKind::kInvalid);
  ASSERT_TRUE(store_->RemoveAccount("alice@example.test").ok());
  EXPECT_EQ(store_->FindAccount("alice@example.test").error().kind, ErrorKind::kNotFound);
  // A removed account's address can be reused while the old mail is retained.
  EXPECT_TRUE(store_->AddAccount("alice@example.test", "h3").ok());
}

TEST_P(StoreTest, DeliverListReadSurvivesReopen) {
  int64_t a = MakeAccount("a@example.test");
  std::string msg = "Subject: hi\r\n\r\n" + std::string(5000, 'x') + "\r\n";
  auto r = Deliver({a}, msg);
  ASSERT_TRUE(r.ok()) << r.error().message;
  Reopen();
  auto snap = store_->ListMessages(a, kInbox);
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->messages.size(), 1u);
  EXPECT_EQ(snap->messages[0].uid, 1u);
  EXPECT_EQ(snap->messages[0].size, msg.size());
  auto body = store_->ReadMessage(a, snap->messages[0].id);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, msg);
}

// Mailing lists through every backend (the sharded store forwards the list
// operations to main: Store's defaults would answer "not supported").
TEST_P(StoreTest, ListsMembersAndAPost) {
  int64_t a = MakeAccount("a@example.test");
  ASSERT_TRUE(store_->CreateList("Team@example.test", ListMode::kDiscussion).ok());
  EXPECT_EQ(store_->CreateList("team@example.test", ListMode::kAnnounce).error().kind,
            ErrorKind::kExists);
  auto list = store_->FindList("TEAM@example.test");
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(list->address, "team@example.test");
  std::vector<ListMember> members(3);
  members[0].address = "carol@remote.example";
  members[1].address = "dan@far.example";
  members[2].address = "a@example.test";
  auto added = store_->AddListMembers(list->id, members, false);
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_EQ(added->added, 3u);
  EXPECT_EQ(store_->AddListMembers(list->id, {members[0]}, false)->existing.size(), 1u);
  ASSERT_TRUE(store_->RemoveListMember(list->id, "dan@far.example").ok());
  EXPECT_EQ(store_->ListListMembers(list->id)->size(), 2u);
  EXPECT_TRUE(store_->FindListMember(list->id, "carol@remote.example").ok());
  auto lists = store_->ListLists();
  ASSERT_TRUE(lists.ok());
  ASSERT_EQ(lists->size(), 1u);
  EXPECT_EQ((*lists)[0].members, 2u);

  ListPostRequest post;
  post.list_id = list->id;
  post.content = "From: a@example.test\r\nSubject: hello\r\n\r\nbody\r\n";
  post.bounce_address = "team-bounces@example.test";
  post.sender = "a@example.test";
  post.subject = "hello";
  auto receipt = Wait<ListPostReceipt>(
      [&](Done<ListPostReceipt> done) { store_->PostToList(std::move(post), std::move(done)); });
  ASSERT_TRUE(receipt.ok()) << receipt.error().message;
  EXPECT_EQ(receipt->recipients, 2u);
  auto posts = store_->ListPosts(list->id);
  ASSERT_TRUE(posts.ok());
  ASSERT_EQ(posts->size(), 1u);
  auto report = store_->ListPostReport(list->id, 0);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->post.id, receipt->post_id);
  uint64_t counted = 0;
  for (const auto& line : report->lines) counted += line.count;
  EXPECT_EQ(counted, 2u);
  EXPECT_EQ(*store_->CountListPostsSince(list->id, 0), 1u);
  (void)a;
  ASSERT_TRUE(store_->RemoveList("team@example.test").ok());
  EXPECT_EQ(store_->FindList("team@example.test").error().kind, ErrorKind::kNotFound);
}

// The outbound queue starts list-post deliveries from recipients it read
// earlier (its backlog): MarkInFlight marks, and returns for sending, only
// those still queued, so a post cancelled meanwhile (its list removed) is
// not sent.
TEST_P(StoreTest, MarkInFlightOnlyMarksRecipientsStillQueued) {
  MakeAccount("a@example.test");  // the list's domain
  ASSERT_TRUE(store_->CreateList("team@example.test", ListMode::kDiscussion).ok());
  auto list = store_->FindList("team@example.test");
  ASSERT_TRUE(list.ok()) << list.error().message;
  std::vector<ListMember> members(2);
  members[0].address = "carol@remote.example";
  members[1].address = "dan@far.example";
  ASSERT_TRUE(store_->AddListMembers(list->id, members, false).ok());
  ListPostRequest post;
  post.list_id = list->id;
  post.content = "From: carol@remote.example\r\nSubject: hello\r\n\r\nbody\r\n";
  post.bounce_address = "team-bounces@example.test";
  post.sender = "carol@remote.example";
  post.subject = "hello";
  ASSERT_TRUE(Wait<ListPostReceipt>([&](Done<ListPostReceipt> done) {
                store_->PostToList(std::move(post), std::move(done));
              }).ok());
  auto due = store_->ListDueOutbound(std::time(nullptr) + 1, 10);
  ASSERT_TRUE(due.ok()) << due.error().message;
  ASSERT_EQ(due->size(), 1u);
  ASSERT_EQ((*due)[0].recipients.size(), 2u);
  int64_t x = (*due)[0].recipients[0].id;
  int64_t y = (*due)[0].recipients[1].id;
  auto mark = [&](std::vector<int64_t> ids) {
    return Wait<std::vector<int64_t>>(
        [&](Done<std::vector<int64_t>> done) { store_->MarkInFlight(ids, std::move(done)); });
  };
  auto first = mark({x});
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(*first, std::vector<int64_t>{x});
  ASSERT_TRUE(store_->RemoveList("team@example.test").ok());  // cancels y
  auto second = mark({y});
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_TRUE(second->empty());
}

TEST_P(StoreTest, ManyRecipientsStoredOnce) {
  int64_t a = MakeAccount("a@example.test");
  int64_t b = MakeAccount("b@example.test");
  auto r = Deliver({a, b}, "Subject: both\r\n\r\nhello\r\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->message_ids.size(), 2u);
  auto report = store_->Verify();
  ASSERT_TRUE(report.ok());
  // One body for two recipients (sharded: a and b are placed on different
  // shards by hash, and each shard keeps its own copy).
  EXPECT_EQ(report->blobs_checked, where_.sharded() ? 2u : 1u);
  EXPECT_TRUE(report->problems.empty());
  EXPECT_EQ(store_->ListMessages(b, kInbox)->messages.size(), 1u);
}

TEST_P(StoreTest, ConcurrentDeliveriesAllLandWithUniqueUids) {
  int64_t a = MakeAccount("a@example.test");
  constexpr int kThreads = 8, kEach = 25;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = Deliver({a}, "Subject: " + std::to_string(t * 1000 + i) + "\r\n\r\nx\r\n");
        if (r.ok()) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  auto snap = store_->ListMessages(a, kInbox);
  ASSERT_EQ(snap->messages.size(), size_t{kThreads * kEach});
  for (size_t i = 0; i < snap->messages.size(); ++i) EXPECT_EQ(snap->messages[i].uid, i + 1);
}

TEST_P(StoreTest, ExpungeKeepsForRetentionThenPurges) {
  int64_t a = MakeAccount("a@example.test");
  ASSERT_TRUE(Deliver({a}, "Subject: 1\r\n\r\none\r\n").ok());
  ASSERT_TRUE(Deliver({a}, "Subject: 2\r\n\r\ntwo\r\n").ok());
  auto snap = store_->ListMessages(a, kInbox);
  int64_t first = snap->messages[0].id;
  auto st = Wait<void>([&](Done<void> done) { store_->Expunge(a, {first}, std::move(done)); });
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(store_->ListMessages(a, kInbox)->messages.size(), 1u);
  EXPECT_TRUE(store_->ReadMessage(a, first).ok());  // still readable in retention
  // Not purged while within retention...
  EXPECT_EQ(*store_->PurgeExpired(0), 0u);
  EXPECT_EQ(store_->Verify()->blobs_checked, 2u);
  // ...purged once past it, and its body goes with it.
  EXPECT_EQ(*store_->PurgeExpired(INT64_MAX), 1u);
  EXPECT_EQ(store_->Verify()->blobs_checked, 1u);
}

TEST_P(StoreTest, TextIndexFindsSubstringsOncePerBodyAndForgetsPurgedBodies) {
  int64_t a = MakeAccount("a@example.test");
  // Stored while no index runs (as `hato user add` and the other CLI commands open the store).
  ASSERT_TRUE(Deliver({a}, "Subject: old\r\n\r\nstored before the index\r\n").ok());
  auto snap = store_->ListMessages(a, kInbox);
  ASSERT_TRUE(store_->SearchText(snap->mailbox_id, "before", false)->uids.empty());
  EXPECT_EQ(store_->SearchText(snap->mailbox_id, "before", false)->unindexed,
            (std::vector<uint32_t>{1}));  // the caller scans it
  Reopen(/*index_text=*/true);
  std::string content = "Subject: x\r\n\r\nthe needle in the haystack\r\n";
  ASSERT_TRUE(Deliver({a}, content).ok());
  ASSERT_TRUE(Deliver({a}, content).ok());  // one body, one document
  snap = store_->ListMessages(a, kInbox);
  ASSERT_EQ(snap->messages.size(), 3u);
  auto caught_up = [&] {
    for (int i = 0; i < 1000; ++i) {
      auto r = store_->SearchText(snap->mailbox_id, "zzz", false);
      if (r.ok() && r->unindexed.empty()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  ASSERT_TRUE(caught_up());  // the background indexer read all three
  auto found = store_->SearchText(snap->mailbox_id, "NEEDLE", false);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->uids, (std::vector<uint32_t>{2, 3}));
  EXPECT_TRUE(found->unindexed.empty());
  EXPECT_EQ(store_->SearchText(snap->mailbox_id, "eedl", false)->uids,
            (std::vector<uint32_t>{2, 3}));  // substrings, not words
  EXPECT_EQ(store_->SearchText(snap->mailbox_id, "in the hay", false)->uids.size(), 2u);
  EXPECT_TRUE(store_->SearchText(snap->mailbox_id, "in the  stack", false)->uids.empty());
  EXPECT_TRUE(store_->SearchText(snap->mailbox_id, "Subject", false)->uids.empty());
  EXPECT_EQ(store_->SearchText(snap->mailbox_id, "Subject", true)->uids.size(), 3u);
  EXPECT_EQ(store_->SearchText(snap->mailbox_id, "ne", false)->uids.size(), 2u);  // short
  EXPECT_EQ(store_->SearchText(snap->mailbox_id, "before", false)->uids,
            (std::vector<uint32_t>{1}));
  // Expunged: not found; purged: the bodies leave the index, and a new body
  // that SQLite gives a purged body's id is not matched by the old text.
  std::vector<int64_t> ids;
  for (const auto& m : snap->messages) ids.push_back(m.id);
  ASSERT_TRUE(Wait<void>([&](Done<void> d) { store_->Expunge(a, ids, std::move(d)); }).ok());
  EXPECT_TRUE(store_->SearchText(snap->mailbox_id, "needle", false)->uids.empty());
  EXPECT_EQ(*store_->PurgeExpired(INT64_MAX), 3u);
  ASSERT_TRUE(Deliver({a}, "Subject: y\r\n\r\nsomething else entirely\r\n").ok());
  EXPECT_TRUE(store_->SearchText(snap->mailbox_id, "needle", false)->uids.empty());
  ASSERT_TRUE(caught_up());
  EXPECT_TRUE(store_->SearchText(snap->mailbox_id, "needle", false)->uids.empty());
  EXPECT_EQ(store_->SearchText(snap->mailbox_id, "ELSE ENT", false)->uids,
            (std::vector<uint32_t>{4}));
}

TEST_P(StoreTest, QuotaAndRecent) {
  int64_t a = MakeAccount("a@example.test");
  EXPECT_FALSE(store_->GetQuota(a)->limit_bytes);
  ASSERT_TRUE(store_->SetQuota("A@example.test", 100).ok());
  EXPECT_EQ(store_->SetQuota("nobody@example.test", 1).error().kind, ErrorKind::kNotFound);
  ASSERT_TRUE(Deliver({a}, std::string(60, 'x')).ok());
  EXPECT_EQ(*store_->GetQuota(a)->limit_bytes, 100u);
  EXPECT_EQ(store_->GetQuota(a)->used_bytes, 60u);
  AppendRequest req{a, "INBOX", std::string(50, 'y'), "", 0, "", 1700000000, {}, "", ""};
  auto appended =
      Wait<AppendResult>([&](Done<AppendResult> d) { store_->Append(req, std::move(d)); });
  EXPECT_EQ(appended.error().kind, ErrorKind::kTooLarge);
  auto snap = store_->ListMessages(a, kInbox);
  auto copied = Wait<CopyResult>([&](Done<CopyResult> d) {
    store_->CopyMessages(a, {snap->messages[0].id}, "Archive", false, std::move(d));
  });
  EXPECT_EQ(copied.error().kind, ErrorKind::kTooLarge);
  auto moved = Wait<CopyResult>([&](Done<CopyResult> d) {
    store_->CopyMessages(a, {snap->messages[0].id}, "Archive", true, std::move(d));
  });
  EXPECT_TRUE(moved.ok());
  // \Recent: the first claim gets everything above the mark.
  auto archive = store_->ListMessages(a, "Archive");
  EXPECT_EQ(archive->recent_uid, 0u);
  auto claim = [&](uint32_t up_to) {
    return Wait<uint32_t>(
        [&](Done<uint32_t> d) { store_->ClaimRecent(archive->mailbox_id, up_to, std::move(d)); });
  };
  EXPECT_EQ(*claim(1), 0u);
  EXPECT_EQ(*claim(1), 1u);  // a second session: nothing new
  EXPECT_EQ(store_->ListMessages(a, "Archive")->recent_uid, 1u);
  ASSERT_TRUE(store_->SetQuota("a@example.test", std::nullopt).ok());
  EXPECT_FALSE(store_->GetQuota(a)->limit_bytes);
}

TEST_P(StoreTest, SetFlagsAddRemoveReplace) {
  int64_t a = MakeAccount("a@example.test");
  int64_t b = MakeAccount("b@example.test");
  ASSERT_TRUE(Deliver({a}, "Subject: f\r\n\r\nflags\r\n").ok());
  int64_t id = store_->ListMessages(a, kInbox)->messages[0].id;
  auto set = [&](int64_t account, FlagOp op, uint32_t flags, std::vector<std::string> keywords = {},
                 uint64_t unchanged_since = 0) {
    return Wait<FlagResult>([&](Done<FlagResult> done) {
      store_->SetFlags(account, {id}, FlagChange{op, flags, keywords, unchanged_since, {}},
                       std::move(done));
    });
  };
  auto meta = [&] { return store_->ListMessages(a, kInbox)->messages[0]; };
  uint64_t m0 = meta().modseq;
  ASSERT_TRUE(set(a, FlagOp::kAdd, kSeen | kFlagged, {"$Forwarded"}).ok());
  EXPECT_EQ(meta().flags, kSeen | kFlagged);
  EXPECT_EQ(meta().keywords, "$Forwarded");
  uint64_t m1 = meta().modseq;
  EXPECT_GT(m1, m0);
  ASSERT_TRUE(set(a, FlagOp::kAdd, kSeen, {"$forwarded"}).ok());  // no change: same modseq
  EXPECT_EQ(meta().modseq, m1);
  EXPECT_EQ(meta().keywords, "$Forwarded");
  ASSERT_TRUE(set(a, FlagOp::kRemove, kFlagged, {"$FORWARDED"}).ok());
  EXPECT_EQ(meta().flags, uint32_t{kSeen});
  EXPECT_EQ(meta().keywords, "");
  ASSERT_TRUE(set(a, FlagOp::kReplace, kAnswered, {"Work", "Later"}).ok());
  EXPECT_EQ(meta().flags, uint32_t{kAnswered});
  EXPECT_EQ(meta().keywords, "Work Later");
  // RFC 7162 UNCHANGEDSINCE: refused when the message changed after that modseq.
  auto refused = set(a, FlagOp::kAdd, kDraft, {}, m1);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->refused, std::vector<int64_t>{id});
  EXPECT_EQ(meta().flags & kDraft, 0u);
  // Another account cannot touch it.
  ASSERT_TRUE(set(b, FlagOp::kAdd, kDeleted).ok());
  EXPECT_EQ(meta().flags, uint32_t{kAnswered});
}

// Issue 11 item 8: the store itself refuses keywords past the limits, for
// every caller (JMAP had no check of its own), and changes nothing then.
TEST_P(StoreTest, SetFlagsEnforcesKeywordLimits) {
  int64_t a = MakeAccount("a@example.test");
  ASSERT_TRUE(Deliver({a}, "Subject: 1\r\n\r\none\r\n").ok());
  ASSERT_TRUE(Deliver({a}, "Subject: 2\r\n\r\ntwo\r\n").ok());
  auto list = store_->ListMessages(a, kInbox);
  ASSERT_TRUE(list.ok());
  std::vector<int64_t> ids = {list->messages[0].id, list->messages[1].id};
  KeywordLimits lim{8, 3, 4};
  auto add = [&](std::vector<int64_t> on, std::vector<std::string> keywords) {
    return Wait<FlagResult>([&](Done<FlagResult> done) {
      FlagChange c{FlagOp::kAdd, 0, keywords, 0, lim};
      c.keyword_limits = lim;
      store_->SetFlags(a, on, c, std::move(done));
    });
  };
  auto keywords = [&](size_t i) { return store_->ListMessages(a, kInbox)->messages[i].keywords; };
  auto too_long = add(ids, {"abcdefghi"});
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().kind, ErrorKind::kTooLarge);
  ASSERT_TRUE(add(ids, {"k1", "k2"}).ok());
  auto per_message = add({ids[0]}, {"k3", "k4"});
  ASSERT_FALSE(per_message.ok());
  EXPECT_EQ(per_message.error().kind, ErrorKind::kTooLarge);
  EXPECT_EQ(keywords(0), "k1 k2");
  ASSERT_TRUE(add({ids[0]}, {"K1", "k3"}).ok());  // k1 again (any case): not new
  ASSERT_TRUE(add({ids[1]}, {"k4"}).ok());        // 4 distinct in the mailbox
  auto per_mailbox = add({ids[1]}, {"k5"});
  ASSERT_FALSE(per_mailbox.ok());
  EXPECT_EQ(per_mailbox.error().kind, ErrorKind::kTooLarge);
  EXPECT_EQ(keywords(1), "k1 k2 k4");
  // Removing is always allowed.
  EXPECT_TRUE(
      Wait<FlagResult>([&](Done<FlagResult> done) {
        store_->SetFlags(a, ids, FlagChange{FlagOp::kRemove, 0, {"k1"}, 0, {}}, std::move(done));
      }).ok());
}

// Keyword bytes count in the quota (issue 11 item 8: 43 MB of keywords
// behind a quota that said 98/100 KiB).
TEST_P(StoreTest, KeywordBytesCountInTheQuota) {
  int64_t a = MakeAccount("a@example.test");
  ASSERT_TRUE(store_->SetQuota("a@example.test", 100).ok());
  ASSERT_TRUE(Deliver({a}, std::string(60, 'x')).ok());
  int64_t id = store_->ListMessages(a, kInbox)->messages[0].id;
  auto add = [&](std::vector<std::string> keywords) {
    return Wait<FlagResult>([&](Done<FlagResult> done) {
      store_->SetFlags(a, {id}, FlagChange{FlagOp::kAdd, 0, keywords, 0, {}}, std::move(done));
    });
  };
  ASSERT_TRUE(add({std::string(30, 'k')}).ok());
  EXPECT_EQ(store_->GetQuota(a)->used_bytes, 90u);
  auto over = add({std::string(20, 'q')});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().kind, ErrorKind::kTooLarge);
  EXPECT_EQ(store_->GetQuota(a)->used_bytes, 90u);  // nothing changed
  // System flags cost nothing and are still allowed.
  EXPECT_TRUE(
      Wait<FlagResult>([&](Done<FlagResult> done) {
        store_->SetFlags(a, {id}, FlagChange{FlagOp::kAdd, kSeen, {}, 0, {}}, std::move(done));
      }).ok());
}

// Issue 11 item 3: APPEND (and MULTIAPPEND) are held to the keyword limits
// by the store, counted against the mailbox as it is, whoever asks.
TEST_P(StoreTest, AppendEnforcesKeywordLimits) {
  int64_t a = MakeAccount("a@example.test");
  KeywordLimits lim{8, 3, 4};
  auto req = [&](std::string keywords) {
    AppendRequest r{
        a,  "Drafts", "Subject: k\r\n\r\nx\r\n", "", 0, std::move(keywords), 1700000000, lim,
        "", ""};
    return r;
  };
  auto append = [&](AppendRequest r) {
    return Wait<AppendResult>([&](Done<AppendResult> d) { store_->Append(r, std::move(d)); });
  };
  auto many = [&](std::vector<AppendRequest> reqs) {
    return Wait<std::vector<AppendResult>>(
        [&](Done<std::vector<AppendResult>> d) { store_->AppendMany(reqs, std::move(d)); });
  };
  EXPECT_EQ(append(req("abcdefghi")).error().kind, ErrorKind::kTooLarge);    // too long
  EXPECT_EQ(append(req("k1 k2 k3 k4")).error().kind, ErrorKind::kTooLarge);  // per message
  ASSERT_TRUE(append(req("k1 k2 k3")).ok());
  ASSERT_TRUE(append(req("K1 k2 k1")).ok());  // nothing new (any case, repeated)
  // The first message's k4 makes four; the second's k5 a fifth: all or nothing.
  auto over = many({req("k4"), req("k5")});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().kind, ErrorKind::kTooLarge);
  EXPECT_EQ(store_->ListMessages(a, "Drafts")->messages.size(), 2u);
  ASSERT_TRUE(many({req("k4"), req("k4 k1")}).ok());
  EXPECT_EQ(store_->ListMessages(a, "Drafts")->messages.size(), 4u);
  // Another mailbox counts its own keywords.
  AppendRequest other = req("k5 k6");
  other.mailbox = "Sent";
  EXPECT_TRUE(append(other).ok());
}

// Delivery never fails over a flag: keywords past a limit are dropped.
TEST_P(StoreTest, FilingsDropKeywordsPastTheLimits) {
  int64_t a = MakeAccount("a@example.test");
  DeliveryRequest req;
  req.return_path = "sender@remote.test";
  req.content = "Subject: filed\r\n\r\nhello\r\n";
  req.received_at = 1700000000;
  req.keyword_limits = KeywordLimits{8, 3, 4};
  req.filings.push_back(
      {a, "", {"\\Seen", "toolongword", "$a", "$b", "$A", "$c", "$d"}, false, {}, {}, {}, {}});
  req.filings.push_back({a, "", {"$e", "$f", "$a"}, false, {}, {}, {}, {}});
  auto r = Wait<DeliveryReceipt>(
      [&](Done<DeliveryReceipt> done) { store_->Deliver(std::move(req), std::move(done)); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto inbox = store_->ListMessages(a, kInbox);
  ASSERT_EQ(inbox->messages.size(), 2u);
  EXPECT_EQ(inbox->messages[0].flags, uint32_t{kSeen});
  EXPECT_EQ(inbox->messages[0].keywords, "$a $b $c");  // 3 per message
  EXPECT_EQ(inbox->messages[1].keywords, "$e $a");     // $f would be a 5th in the mailbox
}

// Issue 11 item 2: the change list comes in pages, each bounded, never
// splitting a modseq, together exactly the whole list.
TEST_P(StoreTest, ListChangesPageSlicesABurst) {
  int64_t a = MakeAccount("a@example.test");
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(Deliver({a}, "Subject: " + std::to_string(i) + "\r\n\r\nx\r\n").ok());
  }
  auto list = store_->ListMessages(a, kInbox);
  ASSERT_TRUE(list.ok());
  int64_t mailbox = list->mailbox_id;
  std::vector<int64_t> ids;
  for (const auto& m : list->messages) ids.push_back(m.id);
  uint64_t before = store_->ListChanges(mailbox, 0)->highest_modseq;
  ASSERT_TRUE(Wait<FlagResult>([&](Done<FlagResult> done) {
                store_->SetFlags(a, ids,
                                 FlagChange{FlagOp::kAdd, 0, {std::string(100, 'k')}, 0, {}},
                                 std::move(done));
              }).ok());
  ASSERT_TRUE(Wait<void>([&](Done<void> d) {
                store_->Expunge(a, {ids[3], ids[7]}, std::move(d));
              }).ok());
  auto whole = store_->ListChanges(mailbox, before);
  ASSERT_TRUE(whole.ok());
  ASSERT_EQ(whole->changed.size(), 28u);
  ASSERT_EQ(whole->expunged.size(), 2u);
  for (size_t max_rows : {size_t{7}, size_t{1000}}) {
    std::vector<uint32_t> changed, expunged;
    uint64_t since = before;
    int pages = 0;
    while (true) {
      auto page = store_->ListChangesPage(mailbox, since, max_rows, 1 << 20);
      ASSERT_TRUE(page.ok()) << page.error().message;
      ++pages;
      EXPECT_LE(page->changed.size() + page->expunged.size(), max_rows);
      for (const auto& m : page->changed) {
        EXPECT_GT(m.modseq, since);
        EXPECT_LE(m.modseq, page->highest_modseq);
        changed.push_back(m.uid);
      }
      expunged.insert(expunged.end(), page->expunged.begin(), page->expunged.end());
      EXPECT_GT(page->highest_modseq, since);
      since = page->highest_modseq;
      if (!page->more) break;
      ASSERT_LT(pages, 100);
    }
    EXPECT_EQ(since, whole->highest_modseq);
    EXPECT_EQ(pages, max_rows == 7 ? 5 : 1);
    std::sort(changed.begin(), changed.end());
    std::sort(expunged.begin(), expunged.end());
    std::vector<uint32_t> want;
    for (const auto& m : whole->changed) want.push_back(m.uid);
    EXPECT_EQ(changed, want);
    EXPECT_EQ(expunged, whole->expunged);
  }
  // A byte bound: each row carries 100 bytes of keywords.
  auto small = store_->ListChangesPage(mailbox, before, 1000, 1);
  ASSERT_TRUE(small.ok());
  EXPECT_TRUE(small->more);
  EXPECT_EQ(small->changed.size() + small->expunged.size(), 1u);
}

TEST(KeywordLimitsTest, FitKeywordsDropsWhatIsPastALimit) {
  KeywordLimits lim{4, 3, 4};
  std::set<std::string> mailbox = {"old1", "old2"};
  EXPECT_EQ(FitKeywords(lim, {"toolong", "a", "A", "b", "", "c", "d"}, &mailbox),
            (std::vector<std::string>{"a", "b"}));  // a, b new: the mailbox is full at 4
  EXPECT_EQ(mailbox.size(), 4u);
  EXPECT_EQ(FitKeywords(lim, {"old1", "z", "B", "a"}, &mailbox),
            (std::vector<std::string>{"old1", "B", "a"}));
  EXPECT_EQ(FitKeywords(lim, {"p", "q", "r", "s"}, nullptr),
            (std::vector<std::string>{"p", "q", "r"}));
}

TEST_P(StoreTest, NewAccountsGetSpecialUseMailboxes) {
  int64_t a = MakeAccount("a@example.test");
  auto list = store_->ListMailboxes(a);
  ASSERT_TRUE(list.ok());
  std::vector<std::string> names;
  for (const auto& m : *list) names.push_back(m.name + "=" + m.special_use);
  EXPECT_EQ(names, (std::vector<std::string>{"Archive=\\Archive", "Drafts=\\Drafts", "INBOX=",
                                             "Junk=\\Junk", "Sent=\\Sent", "Trash=\\Trash"}));
}

TEST_P(StoreTest, FilingsPlaceCopiesWithFlagsAndCreateMailboxes) {
  int64_t a = MakeAccount("a@example.test");
  int64_t b = MakeAccount("b@example.test");
  DeliveryRequest req;
  req.return_path = "sender@remote.test";
  req.content = "Subject: filed\r\n\r\nhello\r\n";
  req.received_at = 1700000000;
  // a: fileinto :create "Lists/Hato" with flags, plus a :copy kept in INBOX.
  req.filings.push_back(
      {a, "Lists/Hato", {"\\Seen", "\\flagged", "$Label1", "\\Recent"}, true, {}, {}, {}, {}});
  req.filings.push_back({a, "", {}, false, {}, {}, {}, {}});
  // b: a missing mailbox without :create falls back to INBOX (reported);
  // "\\Junk" is the special-use mailbox; a name that cannot be created too.
  req.filings.push_back({b, "Nowhere", {"$Junk"}, false, {}, {}, {}, {}});
  req.filings.push_back({b, "\\Junk", {}, false, {}, {}, {}, {}});
  req.filings.push_back({b, "bad/../name", {}, true, {}, {}, {}, {}});
  auto r = Wait<DeliveryReceipt>(
      [&](Done<DeliveryReceipt> done) { store_->Deliver(std::move(req), std::move(done)); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->message_ids.size(), 5u);
  EXPECT_EQ(r->fell_back, (std::vector<size_t>{2, 4}));
  auto filed = store_->ListMessages(a, "Lists/Hato");
  ASSERT_TRUE(filed.ok()) << filed.error().message;
  ASSERT_EQ(filed->messages.size(), 1u);
  EXPECT_EQ(filed->messages[0].flags, uint32_t{kSeen | kFlagged});
  EXPECT_EQ(filed->messages[0].keywords, "$Label1");
  EXPECT_TRUE(store_->ListMessages(a, "Lists").ok());  // the parent was created too
  EXPECT_EQ(store_->ListMessages(a, kInbox)->messages.size(), 1u);
  auto inbox_b = store_->ListMessages(b, kInbox);
  ASSERT_EQ(inbox_b->messages.size(), 2u);
  EXPECT_EQ(inbox_b->messages[0].keywords, "$Junk");
  EXPECT_EQ(store_->ListMessages(b, "Junk")->messages.size(), 1u);
  EXPECT_FALSE(store_->ListMessages(b, "Nowhere").ok());
  // One body for the five copies, references counted right.
  auto report = store_->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->blobs_checked, where_.sharded() ? 2u : 1u);  // one per shard
  EXPECT_TRUE(report->problems.empty());
}

// A filing with its own content (Sieve editheader) is stored as a body of
// its own; the other copies share the delivery's.
TEST_P(StoreTest, FilingWithItsOwnContentGetsItsOwnBody) {
  int64_t a = MakeAccount("a@example.test");
  int64_t b = MakeAccount("b@example.test");
  DeliveryRequest req;
  req.content = "Subject: filed\r\n\r\nhello\r\n";
  req.received_at = 1700000000;
  std::string edited = "X-Edited: yes\r\nSubject: filed\r\n\r\nhello\r\n";
  req.filings.push_back({a, "", {}, false, edited, "", {}, {}});
  req.filings.push_back({b, "", {}, false, {}, {}, {}, {}});
  auto r = Wait<DeliveryReceipt>(
      [&](Done<DeliveryReceipt> done) { store_->Deliver(std::move(req), std::move(done)); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto inbox_a = store_->ListMessages(a, kInbox);
  ASSERT_EQ(inbox_a->messages.size(), 1u);
  EXPECT_EQ(inbox_a->messages[0].size, edited.size());
  auto body_a = store_->ReadMessage(a, inbox_a->messages[0].id);
  ASSERT_TRUE(body_a.ok()) << body_a.error().message;
  EXPECT_EQ(*body_a, edited);
  auto inbox_b = store_->ListMessages(b, kInbox);
  ASSERT_EQ(inbox_b->messages.size(), 1u);
  EXPECT_EQ(*store_->ReadMessage(b, inbox_b->messages[0].id), "Subject: filed\r\n\r\nhello\r\n");
  auto report = store_->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->blobs_checked, 2u);
  EXPECT_TRUE(report->problems.empty());
}

TEST_P(StoreTest, SieveScriptsStatusAndMemos) {
  int64_t a = MakeAccount("a@example.test");
  int64_t b = MakeAccount("b@example.test");
  EXPECT_EQ(store_->ActiveSieveScript(a).error().kind, ErrorKind::kNotFound);
  ASSERT_TRUE(store_->PutSieveScript(a, "main", "keep;").ok());
  ASSERT_TRUE(store_->PutSieveScript(a, "main", "discard;").ok());  // replaces
  ASSERT_TRUE(store_->PutSieveScript(a, "other", "keep;").ok());
  EXPECT_EQ(*store_->GetSieveScript(a, "main"), "discard;");
  EXPECT_EQ(store_->GetSieveScript(b, "main").error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(store_->SetActiveSieveScript(a, "nope").error().kind, ErrorKind::kNotFound);
  ASSERT_TRUE(store_->SetActiveSieveScript(a, "main").ok());
  ASSERT_TRUE(store_->SetActiveSieveScript(a, "other").ok());  // at most one active
  auto list = store_->ListSieveScripts(a);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "main");
  EXPECT_FALSE((*list)[0].active);
  EXPECT_EQ((*list)[0].size, 8u);
  EXPECT_TRUE((*list)[1].active);
  EXPECT_EQ(store_->ActiveSieveScript(a)->first, "other");
  EXPECT_EQ(store_->DeleteSieveScript(a, "other").error().kind, ErrorKind::kInUse);
  EXPECT_EQ(store_->RenameSieveScript(a, "main", "other").error().kind, ErrorKind::kExists);
  ASSERT_TRUE(store_->RenameSieveScript(a, "main", "third").ok());
  ASSERT_TRUE(store_->DeleteSieveScript(a, "third").ok());
  ASSERT_TRUE(store_->SetActiveSieveScript(a, "").ok());
  EXPECT_EQ(store_->ActiveSieveScript(a).error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(store_->ListSieveScripts(b)->empty());
  // Delivery's one read: the active script and the reserved ones by prefix.
  ASSERT_TRUE(store_->PutSieveScript(a, "jmap.vacation", "# v").ok());
  ASSERT_TRUE(store_->PutSieveScript(a, "jmapx", "keep;").ok());
  EXPECT_EQ(store_->DeliverySieveScripts(a, "jmap.")->size(), 1u);
  ASSERT_TRUE(store_->SetActiveSieveScript(a, "other").ok());
  auto both = store_->DeliverySieveScripts(a, "jmap.");
  ASSERT_TRUE(both.ok());
  ASSERT_EQ(both->size(), 2u);
  for (const auto& s : *both) {
    EXPECT_EQ(s.active, s.name == "other");
    EXPECT_EQ(s.content, s.active ? "keep;" : "# v");
  }
  EXPECT_TRUE(store_->DeliverySieveScripts(b, "jmap.")->empty());
  ASSERT_TRUE(store_->SetActiveSieveScript(a, "").ok());
  // The last run's error.
  EXPECT_EQ(store_->GetSieveStatus(a)->error, "");
  ASSERT_TRUE(store_->SetSieveStatus(a, "line 1: boom").ok());
  EXPECT_EQ(store_->GetSieveStatus(a)->error, "line 1: boom");
  ASSERT_TRUE(store_->SetSieveStatus(a, "").ok());
  EXPECT_EQ(store_->GetSieveStatus(a)->error, "");
  // Memories: seen until their end, per account and kind.
  ASSERT_TRUE(store_->SieveMemoRecord(a, SieveMemo::kVacation, "h\nx@y", 4000000000).ok());
  EXPECT_TRUE(*store_->SieveMemoSeen(a, SieveMemo::kVacation, "h\nx@y", 3999999999));
  EXPECT_FALSE(*store_->SieveMemoSeen(a, SieveMemo::kVacation, "h\nx@y", 4000000000));
  EXPECT_FALSE(*store_->SieveMemoSeen(a, SieveMemo::kDuplicate, "h\nx@y", 1));
  EXPECT_FALSE(*store_->SieveMemoSeen(b, SieveMemo::kVacation, "h\nx@y", 1));
}

// JMAP SieveScript ids and states (RFC 9661): ids survive renames and are
// never reused, every write that changes something moves the account's
// counter, and deletes leave tombstones (the oldest forgotten past
// kMaxSieveTombstones).
TEST_P(StoreTest, SieveScriptIdsCounterAndTombstones) {
  int64_t a = MakeAccount("a@example.test");
  int64_t b = MakeAccount("b@example.test");
  EXPECT_EQ(*store_->SieveScriptsState(a), 0u);
  ASSERT_TRUE(store_->PutSieveScript(a, "one", "keep;").ok());
  ASSERT_TRUE(store_->PutSieveScript(a, "two", "keep;").ok());
  auto all = store_->SieveScriptsSince(a, 0);
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(all->state, 2u);
  ASSERT_EQ(all->scripts.size(), 2u);
  int64_t one = all->scripts[0].id, two = all->scripts[1].id;
  EXPECT_NE(one, two);
  EXPECT_EQ(all->scripts[0].created_seq, 1u);
  EXPECT_EQ(all->scripts[1].changed_seq, 2u);
  // A replacement keeps the id; a rename too.
  ASSERT_TRUE(store_->PutSieveScript(a, "one", "discard;").ok());
  ASSERT_TRUE(store_->RenameSieveScript(a, "one", "uno").ok());
  all = store_->SieveScriptsSince(a, 2);
  ASSERT_EQ(all->scripts.size(), 2u);
  EXPECT_EQ(all->scripts[1].name, "uno");
  EXPECT_EQ(all->scripts[1].id, one);
  EXPECT_EQ(all->scripts[1].created_seq, 1u);
  EXPECT_EQ(all->scripts[1].changed_seq, 4u);
  EXPECT_EQ(all->state, 4u);
  // Activation stamps the scripts whose activation changed; again is no change.
  ASSERT_TRUE(store_->SetActiveSieveScript(a, "two").ok());
  ASSERT_TRUE(store_->SetActiveSieveScript(a, "two").ok());
  EXPECT_EQ(*store_->SieveScriptsState(a), 5u);
  ASSERT_TRUE(store_->SetActiveSieveScript(a, "uno").ok());
  all = store_->SieveScriptsSince(a, 5);
  EXPECT_EQ(all->scripts[0].changed_seq, 6u);
  EXPECT_EQ(all->scripts[1].changed_seq, 6u);
  // A refused write changes nothing.
  EXPECT_EQ(store_->DeleteSieveScript(a, "uno").error().kind, ErrorKind::kInUse);
  EXPECT_EQ(store_->RenameSieveScript(a, "uno", "two").error().kind, ErrorKind::kExists);
  EXPECT_EQ(*store_->SieveScriptsState(a), 6u);
  // A delete leaves a tombstone; a new script never gets an old id.
  ASSERT_TRUE(store_->DeleteSieveScript(a, "two").ok());
  ASSERT_TRUE(store_->PutSieveScript(a, "two", "keep;").ok());
  all = store_->SieveScriptsSince(a, 6);
  EXPECT_EQ(all->state, 8u);
  ASSERT_EQ(all->destroyed.size(), 1u);
  EXPECT_EQ(all->destroyed[0].id, two);
  EXPECT_EQ(all->destroyed[0].name, "two");
  EXPECT_EQ(all->destroyed[0].gone_seq, 7u);
  EXPECT_EQ(all->destroyed[0].created_seq, 2u);
  for (const auto& s : all->scripts) {
    EXPECT_NE(s.id, two);
    if (s.name == "two") {
      EXPECT_EQ(s.created_seq, 8u);
    }
  }
  EXPECT_TRUE(store_->SieveScriptsSince(a, 7)->destroyed.empty());
  EXPECT_EQ(all->forgotten, 0u);
  // Other accounts are apart.
  EXPECT_EQ(*store_->SieveScriptsState(b), 0u);
  EXPECT_TRUE(store_->SieveScriptsSince(b, 0)->scripts.empty());
  // Past kMaxSieveTombstones the oldest tombstones are forgotten.
  for (size_t i = 0; i < kMaxSieveTombstones + 1; ++i) {
    ASSERT_TRUE(store_->PutSieveScript(b, "t", "keep;").ok());
    ASSERT_TRUE(store_->DeleteSieveScript(b, "t").ok());
  }
  auto many = store_->SieveScriptsSince(b, 0);
  EXPECT_EQ(many->destroyed.size(), kMaxSieveTombstones);
  EXPECT_EQ(many->forgotten, 2u);  // the first delete's counter
  EXPECT_EQ(many->destroyed.front().gone_seq, 4u);
}

TEST_P(StoreTest, MailboxLifecycle) {
  int64_t a = MakeAccount("a@example.test");
  auto op = [&](auto&& fn) { return Wait<void>([&](Done<void> done) { fn(std::move(done)); }); };
  ASSERT_TRUE(
      op([&](Done<void> d) { store_->CreateMailbox(a, "Work/2026", "", std::move(d)); }).ok());
  auto exists = op([&](Done<void> d) { store_->CreateMailbox(a, "Work", "", std::move(d)); });
  EXPECT_EQ(exists.error().kind, ErrorKind::kExists);  // the parent was created too
  EXPECT_EQ(op([&](Done<void> d) { store_->CreateMailbox(a, "Bad//Name", "", std::move(d)); })
                .error()
                .kind,
            ErrorKind::kInvalid);
  ASSERT_TRUE(
      op([&](Done<void> d) { store_->RenameMailbox(a, "Work", "Jobs", std::move(d)); }).ok());
  EXPECT_TRUE(store_->ListMessages(a, "Jobs/2026").ok());
  EXPECT_FALSE(store_->ListMessages(a, "Work/2026").ok());
  EXPECT_EQ(op([&](Done<void> d) { store_->DeleteMailbox(a, "Jobs", std::move(d)); }).error().kind,
            ErrorKind::kInvalid);  // has children
  EXPECT_EQ(op([&](Done<void> d) { store_->DeleteMailbox(a, "inbox", std::move(d)); }).error().kind,
            ErrorKind::kInvalid);
  // Deleting keeps the messages in retention; the name can be created again
  // with a new UIDVALIDITY.
  AppendRequest req{a, "Jobs/2026", "Subject: x\r\n\r\ny\r\n", "", 0, "", 1700000000, {}, "", ""};
  ASSERT_TRUE(
      Wait<AppendResult>([&](Done<AppendResult> d) { store_->Append(req, std::move(d)); }).ok());
  uint32_t old_validity = store_->ListMessages(a, "Jobs/2026")->uidvalidity;
  ASSERT_TRUE(op([&](Done<void> d) { store_->DeleteMailbox(a, "Jobs/2026", std::move(d)); }).ok());
  EXPECT_FALSE(store_->ListMessages(a, "Jobs/2026").ok());
  EXPECT_EQ(store_->Verify()->blobs_checked, 1u);
  ASSERT_TRUE(
      op([&](Done<void> d) { store_->CreateMailbox(a, "Jobs/2026", "", std::move(d)); }).ok());
  EXPECT_GT(store_->ListMessages(a, "Jobs/2026")->uidvalidity, old_validity);
  EXPECT_TRUE(store_->ListMessages(a, "Jobs/2026")->messages.empty());
}

// Subscriptions are names (RFC 3501 section 6.3.6, issue 16): CREATE adds
// none, DELETE keeps the name, a new mailbox of that name takes it back.
TEST_P(StoreTest, SubscriptionsAreNames) {
  int64_t a = MakeAccount("a@example.test");
  auto op = [&](auto&& fn) { return Wait<void>([&](Done<void> done) { fn(std::move(done)); }); };
  auto subscribed = [&](const std::string& name) {
    auto list = store_->ListMailboxes(a);
    for (const auto& m : *list) {
      if (m.name == name) return m.subscribed;
    }
    return false;
  };
  EXPECT_TRUE(subscribed("Sent"));  // default folders are subscribed
  ASSERT_TRUE(op([&](Done<void> d) { store_->CreateMailbox(a, "Box", "", std::move(d)); }).ok());
  EXPECT_FALSE(subscribed("Box"));
  ASSERT_TRUE(op([&](Done<void> d) { store_->SetSubscribed(a, "Box", true, std::move(d)); }).ok());
  EXPECT_TRUE(subscribed("Box"));
  ASSERT_TRUE(op([&](Done<void> d) { store_->DeleteMailbox(a, "Box", std::move(d)); }).ok());
  EXPECT_EQ(*store_->ListOrphanSubscriptions(a), std::vector<std::string>{"Box"});
  ASSERT_TRUE(op([&](Done<void> d) { store_->CreateMailbox(a, "Box", "", std::move(d)); }).ok());
  EXPECT_TRUE(subscribed("Box"));
  EXPECT_TRUE(store_->ListOrphanSubscriptions(a)->empty());
  ASSERT_TRUE(op([&](Done<void> d) { store_->DeleteMailbox(a, "Box", std::move(d)); }).ok());
  ASSERT_TRUE(op([&](Done<void> d) { store_->SetSubscribed(a, "Box", false, std::move(d)); }).ok());
  EXPECT_TRUE(store_->ListOrphanSubscriptions(a)->empty());
  EXPECT_TRUE(
      op([&](Done<void> d) { store_->SetSubscribed(a, "Never", false, std::move(d)); }).ok());
  EXPECT_EQ(
      op([&](Done<void> d) { store_->SetSubscribed(a, "Never", true, std::move(d)); }).error().kind,
      ErrorKind::kNotFound);
}

// MULTIAPPEND (RFC 3502): all of the messages or none.
TEST_P(StoreTest, AppendManyIsAllOrNothing) {
  int64_t a = MakeAccount("a@example.test");
  AppendRequest one{a, "Drafts", "Subject: 1\r\n\r\nx\r\n", "", 0, "", 1700000000, {}, "", ""};
  AppendRequest bad = one;
  bad.mailbox = "Nowhere";
  auto many = [&](std::vector<AppendRequest> reqs) {
    return Wait<std::vector<AppendResult>>(
        [&](Done<std::vector<AppendResult>> d) { store_->AppendMany(reqs, std::move(d)); });
  };
  EXPECT_EQ(many({one, bad}).error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(store_->ListMessages(a, "Drafts")->messages.empty());
  AppendRequest two = one;
  two.content = "Subject: 2\r\n\r\ny\r\n";
  auto done = many({one, two});
  ASSERT_TRUE(done.ok());
  ASSERT_EQ(done->size(), 2u);
  EXPECT_EQ((*done)[0].uid + 1, (*done)[1].uid);
  EXPECT_EQ(store_->ListMessages(a, "Drafts")->messages.size(), 2u);
}

TEST_P(StoreTest, AppendCopyMoveAndVanished) {
  int64_t a = MakeAccount("a@example.test");
  auto append = [&](std::string subject) {
    AppendRequest req{a,          "Drafts", "Subject: " + subject + "\r\n\r\nbody\r\n",
                      "",         kDraft,   "$Later",
                      1600000000, {},       "",
                      ""};
    return Wait<AppendResult>([&](Done<AppendResult> d) { store_->Append(req, std::move(d)); });
  };
  auto r1 = append("one");
  auto r2 = append("two");
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(r1->uid, 1u);
  EXPECT_EQ(r2->uid, 2u);
  auto drafts = store_->ListMessages(a, "Drafts");
  EXPECT_EQ(drafts->messages[0].internal_date, 1600000000);
  EXPECT_EQ(drafts->messages[0].keywords, "$Later");
  uint64_t before_move = drafts->highest_modseq;
  std::vector<int64_t> ids = {drafts->messages[1].id, drafts->messages[0].id};
  auto copied = Wait<CopyResult>(
      [&](Done<CopyResult> d) { store_->CopyMessages(a, ids, "Archive", false, std::move(d)); });
  ASSERT_TRUE(copied.ok());
  EXPECT_EQ(copied->source_uids, (std::vector<uint32_t>{2, 1}));
  EXPECT_EQ(copied->dest_uids, (std::vector<uint32_t>{1, 2}));
  auto moved = Wait<CopyResult>(
      [&](Done<CopyResult> d) { store_->CopyMessages(a, ids, "Trash", true, std::move(d)); });
  ASSERT_TRUE(moved.ok());
  EXPECT_TRUE(store_->ListMessages(a, "Drafts")->messages.empty());
  EXPECT_EQ(store_->ListMessages(a, "Trash")->messages.size(), 2u);
  EXPECT_EQ(store_->ListMessages(a, "Archive")->messages[0].flags, uint32_t{kDraft});
  auto vanished = store_->ListVanished(drafts->mailbox_id, before_move);
  ASSERT_TRUE(vanished.ok());
  EXPECT_EQ(*vanished, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(store_->Verify()->blobs_checked, 2u);  // copies share bodies
  EXPECT_EQ(Wait<CopyResult>([&](Done<CopyResult> d) {
              store_->CopyMessages(a, ids, "Nowhere", false, std::move(d));
            })
                .error()
                .kind,
            ErrorKind::kNotFound);
}

// The copy listener (Junk training, scan/trainer.h) hears each committed
// copy with its source mailboxes and the new message ids, on both backends.
TEST_P(StoreTest, CopyListenerHearsCommittedCopies) {
  int64_t a = MakeAccount("a@example.test");
  ASSERT_TRUE(Deliver({a}, "Subject: 1\r\n\r\none\r\n").ok());
  auto inbox = store_->ListMessages(a, kInbox);
  ASSERT_TRUE(inbox.ok());
  std::mutex mu;
  std::vector<std::pair<int64_t, CopyResult>> heard;
  store_->SetCopyListener([&](int64_t account, const CopyResult& r) {
    std::lock_guard lock(mu);
    heard.emplace_back(account, r);
  });
  auto moved = Wait<CopyResult>([&](Done<CopyResult> d) {
    store_->CopyMessages(a, {inbox->messages[0].id}, "Junk", true, std::move(d));
  });
  ASSERT_TRUE(moved.ok());
  (void)Wait<CopyResult>([&](Done<CopyResult> d) {
    store_->CopyMessages(a, {inbox->messages[0].id}, "Nowhere", false, std::move(d));
  });
  store_->SetCopyListener(nullptr);
  std::lock_guard lock(mu);
  ASSERT_EQ(heard.size(), 1u);  // the failed copy is not heard
  EXPECT_EQ(heard[0].first, a);
  const CopyResult& r = heard[0].second;
  auto junk = store_->ListMessages(a, "Junk");
  ASSERT_TRUE(junk.ok());
  ASSERT_EQ(junk->messages.size(), 1u);
  EXPECT_EQ(r.dest_mailbox_id, junk->mailbox_id);
  EXPECT_EQ(r.dest_ids, (std::vector<int64_t>{junk->messages[0].id}));
  EXPECT_EQ(r.source_mailbox_ids, (std::vector<int64_t>{inbox->mailbox_id}));
}

TEST_P(StoreTest, RenameInboxMovesItsMessages) {
  int64_t a = MakeAccount("a@example.test");
  ASSERT_TRUE(Deliver({a}, "Subject: 1\r\n\r\none\r\n").ok());
  ASSERT_TRUE(Wait<void>([&](Done<void> d) {
                store_->RenameMailbox(a, "INBOX", "Old", std::move(d));
              }).ok());
  EXPECT_TRUE(store_->ListMessages(a, kInbox)->messages.empty());
  EXPECT_EQ(store_->ListMessages(a, "Old")->messages.size(), 1u);
}

TEST_P(StoreTest, ChangeListenerHearsCommittedChanges) {
  int64_t a = MakeAccount("a@example.test");
  std::mutex mu;
  std::vector<int64_t> heard;
  store_->SetChangeListener([&](const std::vector<int64_t>& ids) {
    std::lock_guard lock(mu);
    heard.insert(heard.end(), ids.begin(), ids.end());
  });
  ASSERT_TRUE(Deliver({a}, "Subject: n\r\n\r\nnotify\r\n").ok());
  std::lock_guard lock(mu);
  EXPECT_EQ(heard, std::vector<int64_t>{store_->ListMessages(a, kInbox)->mailbox_id});
}

TEST(MailboxName, Canonical) {
  EXPECT_EQ(*CanonicalMailboxName("inbox"), "INBOX");
  EXPECT_EQ(*CanonicalMailboxName("Inbox/Sub"), "INBOX/Sub");
  EXPECT_EQ(*CanonicalMailboxName("Inboxes"), "Inboxes");
  for (const char* bad : {"", "/a", "a/", "a//b", "a*", "a%b", "a\x01"}) {
    EXPECT_FALSE(CanonicalMailboxName(bad).ok()) << bad;
  }
}

// The delivery look-ups from the directory cache alone (store/cached_lookups.h,
// what SMTP RCPT answers on its event loop): nothing until a look-up has read
// the database, then the same answers; nothing again after a change of the
// directory in this process, or in another one (the data dir's stamp moved).
TEST_P(EmbeddedStoreTest, CachedLookupsAnswerOnlyWhatTheCacheHolds) {
  auto* fast = dynamic_cast<CachedLookups*>(store_.get());
  ASSERT_NE(fast, nullptr);
  int64_t id = MakeAccount("alice@example.test");
  EXPECT_FALSE(fast->CachedLocalDomain("example.test"));
  EXPECT_FALSE(fast->CachedRecipient("alice@example.test"));
  ASSERT_TRUE(*store_->IsLocalDomain("example.test"));
  ASSERT_FALSE(*store_->IsLocalDomain("elsewhere.test"));
  ASSERT_TRUE(store_->ResolveRecipient("alice@example.test").ok());
  ASSERT_FALSE(store_->ResolveRecipient("bob@example.test").ok());
  EXPECT_EQ(fast->CachedLocalDomain("EXAMPLE.test"), std::optional<bool>(true));
  EXPECT_EQ(fast->CachedLocalDomain("elsewhere.test"), std::optional<bool>(false));
  auto alice = fast->CachedRecipient("Alice@Example.test");
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->id, id);
  EXPECT_FALSE(alice->quota_bytes);
  EXPECT_FALSE(fast->CachedRecipient("bob@example.test"));  // not found: never cached

  // A quota set here drops the cached recipient; read again, it carries the limit.
  ASSERT_TRUE(store_->SetQuota("alice@example.test", 1000).ok());
  EXPECT_FALSE(fast->CachedRecipient("alice@example.test"));
  ASSERT_TRUE(store_->ResolveRecipient("alice@example.test").ok());
  alice = fast->CachedRecipient("alice@example.test");
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->quota_bytes, std::optional<uint64_t>(1000));

  // Another process's change (hato user remove ...) moves the stamp: the
  // cache is dropped before it answers.
  {
    std::ofstream stamp(where_.dir() + "/lookups.stamp", std::ios::trunc);
    stamp << "0123456789abcdef";
  }
  EXPECT_FALSE(fast->CachedRecipient("alice@example.test"));
  EXPECT_FALSE(fast->CachedLocalDomain("example.test"));
}

// Whether an account has delivery scripts, from the cache alone (what SMTP
// DATA checks on its loop before it skips the filtering hop): nothing until
// DeliverySieveScripts has read the list; a script's change drops it.
TEST_P(EmbeddedStoreTest, CachedDeliveryScriptsAnswerOnlyWhatTheCacheHolds) {
  auto* fast = dynamic_cast<CachedLookups*>(store_.get());
  ASSERT_NE(fast, nullptr);
  int64_t a = MakeAccount("alice@example.test");
  EXPECT_FALSE(fast->CachedHasDeliveryScripts(a, "jmap."));
  ASSERT_TRUE(store_->DeliverySieveScripts(a, "jmap.").ok());
  EXPECT_EQ(fast->CachedHasDeliveryScripts(a, "jmap."), std::optional<bool>(false));
  // An inactive script is not for delivery; the change drops the entry all the same.
  ASSERT_TRUE(store_->PutSieveScript(a, "main", "keep;").ok());
  EXPECT_FALSE(fast->CachedHasDeliveryScripts(a, "jmap."));
  ASSERT_TRUE(store_->DeliverySieveScripts(a, "jmap.").ok());
  EXPECT_EQ(fast->CachedHasDeliveryScripts(a, "jmap."), std::optional<bool>(false));
  ASSERT_TRUE(store_->SetActiveSieveScript(a, "main").ok());
  EXPECT_FALSE(fast->CachedHasDeliveryScripts(a, "jmap."));
  ASSERT_TRUE(store_->DeliverySieveScripts(a, "jmap.").ok());
  EXPECT_EQ(fast->CachedHasDeliveryScripts(a, "jmap."), std::optional<bool>(true));
}

TEST_P(EmbeddedStoreTest, CorruptBodyIsDetectedNotServed) {
  int64_t a = MakeAccount("a@example.test");
  std::string msg = "Subject: c\r\n\r\nprecious bytes\r\n";
  ASSERT_TRUE(Deliver({a}, msg).ok());
  int64_t id = store_->ListMessages(a, kInbox)->messages[0].id;
  store_.reset();
  // Flip a byte of the stored payload (raw: short messages are not compressed).
  std::string seg = where_.dir() + "/blobs/seg-00000001.hb";
  std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(-5, std::ios::end);
  f.put('#');
  f.close();
  Reopen();
  auto body = store_->ReadMessage(a, id);
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.error().kind, ErrorKind::kCorrupt);
  EXPECT_EQ(store_->Verify()->problems.size(), 1u);
}

// A body the indexer cannot read stays unindexed (a hole of the index, kept
// across restarts): a search that the index answers with few bodies, which
// looks those up instead of listing the mailbox, still hands it to the caller
// to scan.
TEST_P(EmbeddedStoreTest, UnreadableBodyStaysUnindexedForTextSearch) {
  int64_t a = MakeAccount("a@example.test");
  ASSERT_TRUE(Deliver({a}, "Subject: c\r\n\r\nprecious bytes\r\n").ok());
  store_.reset();
  std::string seg = where_.dir() + "/blobs/seg-00000001.hb";
  std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(-5, std::ios::end);
  f.put('#');
  f.close();
  Reopen(/*index_text=*/true);
  ASSERT_TRUE(Deliver({a}, "Subject: d\r\n\r\nother precious words\r\n").ok());
  int64_t box = store_->ListMessages(a, kInbox)->mailbox_id;
  auto indexed = [&] {  // the second body is indexed
    for (int i = 0; i < 1000; ++i) {
      auto r = store_->SearchText(box, "words", false);
      if (r.ok() && r->uids == std::vector<uint32_t>{2}) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  ASSERT_TRUE(indexed());
  for (int round = 0; round < 2; ++round) {
    auto found = store_->SearchText(box, "precious", false);
    ASSERT_TRUE(found.ok()) << found.error().message;
    EXPECT_EQ(found->uids, std::vector<uint32_t>{2});
    EXPECT_EQ(found->unindexed, std::vector<uint32_t>{1});  // the caller scans it
    EXPECT_EQ(store_->SearchText(box, "qqxxzz", false)->unindexed, std::vector<uint32_t>{1});
    Reopen(/*index_text=*/true);  // the hole is committed with the watermark
  }
}

// Deferred indexing (sqlite_store.cc, IndexShouldWait): while deliveries keep
// the writer committing, the indexer leaves their bodies to the caller's scan
// (searches stay complete), and indexes them once the writer is quiet.
TEST_P(EmbeddedStoreTest, IndexerWaitsWhileTheWriterCommitsThenCatchesUp) {
  int64_t a = MakeAccount("a@example.test");
  Reopen(/*index_text=*/true);
  // Mail keeps coming for 2 s (a delivery every 20 ms: never 250 ms quiet).
  uint32_t sent = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_TRUE(Deliver({a}, "Subject: m\r\n\r\nthe needle " + std::to_string(sent) + "\r\n").ok());
    ++sent;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int64_t box = store_->ListMessages(a, kInbox)->mailbox_id;
  auto during = store_->SearchText(box, "needle", false);
  ASSERT_TRUE(during.ok());
  EXPECT_TRUE(during->uids.empty());
  EXPECT_EQ(during->unindexed.size(), sent);  // every one scanned by the caller
  // Quiet: the indexer catches up, and the index finds them all.
  bool caught_up = false;
  for (int i = 0; i < 1000 && !caught_up; ++i) {
    auto r = store_->SearchText(box, "zzz", false);
    caught_up = r.ok() && r->unindexed.empty();
    if (!caught_up) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(caught_up);
  auto after = store_->SearchText(box, "needle", false);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->uids.size(), sent);
  EXPECT_TRUE(after->unindexed.empty());
}

// The indexer commits the index every 256 bodies (sqlite_store.cc,
// kIndexCommitBodies), not once per second of indexing: Xapian's cost per
// document grows with what one commit buffers. `hato reindex` of 600 bodies
// makes three commits of bodies, and every body is found.
TEST_P(EmbeddedStoreTest, IndexerCommitsEvery256Bodies) {
  int64_t a = MakeAccount("a@example.test");
  constexpr int kBodies = 600;
  for (int i = 0; i < kBodies; ++i) {
    ASSERT_TRUE(Deliver({a}, "Subject: r\r\n\r\nreindexed " + std::to_string(i) + "\r\n").ok());
  }
  // The indexer leaves bodies for later while the writer has just stored some
  // (kIndexQuiet, 250 ms).
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  {
    auto n = store_->IndexMissingText(SplitText);  // opens (creates) the index first
    ASSERT_TRUE(n.ok()) << n.error().message;
    EXPECT_EQ(*n, static_cast<uint64_t>(kBodies));
  }
  store_.reset();  // closes the index
  Xapian::Database index(where_.dir() + "/index");
  EXPECT_EQ(index.get_doccount(), static_cast<Xapian::doccount>(kBodies));
  // One commit at creation (the format), then one per 256 bodies: 256, 256, 88.
  EXPECT_GE(index.get_revision(), Xapian::rev{1 + (kBodies + 255) / 256});
  Reopen(/*index_text=*/true);
  int64_t box = store_->ListMessages(a, kInbox)->mailbox_id;
  auto found = store_->SearchText(box, "reindexed", false);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->uids.size(), static_cast<size_t>(kBodies));
  EXPECT_TRUE(found->unindexed.empty());
}

// Only commits that store bodies hold the indexer back: a steady stream of
// flag changes (a commit every 20 ms) does not.
TEST_P(EmbeddedStoreTest, FlagChangesDoNotHoldTheIndexerBack) {
  int64_t a = MakeAccount("a@example.test");
  Reopen(/*index_text=*/true);
  ASSERT_TRUE(Deliver({a}, "Subject: f\r\n\r\nflagged words\r\n").ok());
  auto snap = store_->ListMessages(a, kInbox);
  int64_t id = snap->messages[0].id;
  bool indexed = false;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int i = 0; !indexed && std::chrono::steady_clock::now() < until; ++i) {
    auto op = i % 2 == 0 ? FlagOp::kAdd : FlagOp::kRemove;
    ASSERT_TRUE(Wait<FlagResult>([&](Done<FlagResult> d) {
                  store_->SetFlags(a, {id}, FlagChange{op, kSeen, {}, 0, {}}, std::move(d));
                }).ok());
    auto r = store_->SearchText(snap->mailbox_id, "flagged", false);
    ASSERT_TRUE(r.ok());
    indexed = r->uids == std::vector<uint32_t>{1};
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(indexed);
}

TEST_P(EmbeddedStoreTest, TornTailIsIgnoredAfterCrash) {
  int64_t a = MakeAccount("a@example.test");
  ASSERT_TRUE(Deliver({a}, "Subject: 1\r\n\r\none\r\n").ok());
  store_.reset();
  // A crash mid-append leaves a partial record after the last committed one.
  std::ofstream(where_.dir() + "/blobs/seg-00000001.hb", std::ios::app | std::ios::binary)
      << "HBL1\x00garbage";
  Reopen();
  ASSERT_TRUE(Deliver({a}, "Subject: 2\r\n\r\ntwo\r\n").ok());
  auto snap = store_->ListMessages(a, kInbox);
  ASSERT_EQ(snap->messages.size(), 2u);
  for (const auto& m : snap->messages) EXPECT_TRUE(store_->ReadMessage(a, m.id).ok());
  EXPECT_TRUE(store_->Verify()->problems.empty());
}

TEST_P(EmbeddedStoreTest, FailedFsyncFailsTheDeliveryAndHidesIt) {
  int64_t a = MakeAccount("a@example.test");
  ASSERT_TRUE(Deliver({a}, "Subject: before\r\n\r\nkept\r\n").ok());
  faults_.sync_error = true;
  auto failed = Deliver({a}, "Subject: during\r\n\r\nlost in the fault\r\n");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().kind, ErrorKind::kTemporary);            // SMTP answers 451 4.3.0
  EXPECT_EQ(store_->ListMessages(a, kInbox)->messages.size(), 1u);  // nothing half-written
  // The failed fsync is not retried into a success: after the fault clears the
  // next delivery goes to a fresh segment, and everything verifies.
  faults_.sync_error = false;
  ASSERT_TRUE(Deliver({a}, "Subject: after\r\n\r\nrecovered\r\n").ok());
  EXPECT_TRUE(std::filesystem::exists(where_.dir() + "/blobs/seg-00000002.hb"));
  Reopen();
  auto snap = store_->ListMessages(a, kInbox);
  ASSERT_EQ(snap->messages.size(), 2u);
  EXPECT_NE(store_->ReadMessage(a, snap->messages[1].id)->find("recovered"), std::string::npos);
  EXPECT_TRUE(store_->Verify()->problems.empty());
}

TEST_P(EmbeddedStoreTest, FullDiskFailsOnlyTheWritesThatNeedIt) {
  int64_t a = MakeAccount("a@example.test");
  std::string dup = "Subject: dup\r\n\r\nalready stored\r\n";
  ASSERT_TRUE(Deliver({a}, dup).ok());
  faults_.append_error = true;
  EXPECT_FALSE(Deliver({a}, "Subject: new\r\n\r\nneeds space\r\n").ok());
  // Content already stored needs no new bytes: it is still accepted.
  EXPECT_TRUE(Deliver({a}, dup).ok());
  faults_.append_error = false;
  EXPECT_TRUE(Deliver({a}, "Subject: later\r\n\r\nfits again\r\n").ok());
  Reopen();
  EXPECT_EQ(store_->ListMessages(a, kInbox)->messages.size(), 3u);
  EXPECT_TRUE(store_->Verify()->problems.empty());
}

TEST_P(EmbeddedStoreTest, ConcurrentDeliveriesShareFsyncs) {
  int64_t a = MakeAccount("a@example.test");
  int before = faults_.syncs.load();
  constexpr int kThreads = 16, kEach = 20;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        EXPECT_TRUE(
            Deliver({a}, "Subject: g" + std::to_string(t * 100 + i) + "\r\n\r\nx\r\n").ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  int syncs = faults_.syncs.load() - before;
  // Group commit: many deliveries per blob fsync (each thread waits for its
  // commit, so up to kThreads deliveries can share one).
  EXPECT_LT(syncs, kThreads * kEach / 2) << syncs << " fsyncs for " << kThreads * kEach;
  std::printf("%d fsyncs for %d deliveries\n", syncs, kThreads * kEach);
}

TEST(BlobStore, CompressesLargeRepetitiveContent) {
  testing::TempDir dir;
  BlobStore blobs(io::FileSystem::Default(), dir.path(), BlobStore::Options{});
  ASSERT_TRUE(blobs.Open().ok());
  std::string content(100000, 'a');
  auto ref = blobs.Append(content, Sha256(content));
  ASSERT_TRUE(ref.ok());
  ASSERT_TRUE(blobs.Sync().ok());
  EXPECT_EQ(ref->codec, Codec::kZstd);
  EXPECT_LT(ref->stored_length, content.size() / 10);
  EXPECT_EQ(*blobs.Read(*ref), content);
}

// Issue 17: a record encoded ahead (off the writer thread) is the record
// Append writes, compressed or not, and reads back verified.
TEST(BlobStore, EncodedRecordsAreTheRecordsAppendWrites) {
  testing::TempDir dir;
  BlobStore blobs(io::FileSystem::Default(), dir.path(), BlobStore::Options{});
  ASSERT_TRUE(blobs.Open().ok());
  std::string noise;
  for (uint32_t x = 1; noise.size() < 4000; x = x * 1103515245u + 12345u) {
    noise += static_cast<char>(x >> 24);
  }
  for (const std::string& content : {std::string(100000, 'a'), std::string("short\r\n"), noise}) {
    EncodedBlob e = blobs.Encode(content);
    EXPECT_EQ(e.sha256, Sha256(content));
    EXPECT_EQ(e.size, content.size());
    EXPECT_EQ(e.codec, content.size() == 100000 ? Codec::kZstd : Codec::kRaw);
    auto direct = blobs.Append(content, Sha256(content));
    auto ahead = blobs.AppendEncoded(e);
    ASSERT_TRUE(direct.ok() && ahead.ok());
    ASSERT_TRUE(blobs.Sync().ok());
    EXPECT_EQ(ahead->codec, direct->codec);
    EXPECT_EQ(ahead->stored_length, direct->stored_length);
    EXPECT_EQ(ahead->offset, direct->offset + 56 + direct->stored_length);  // 56: the header
    EXPECT_EQ(*blobs.Read(*direct), content);
    EXPECT_EQ(*blobs.Read(*ahead), content);
  }
}

// Issue 17: PrepareDelivery moves the hashing and compression to the caller;
// the writer writes the prepared record as it is (here one built without
// compression: the segment grows by the whole content), and a record
// prepared for other content is not used.
TEST_P(EmbeddedStoreTest, PreparedDeliveriesWriteThePreparedRecord) {
  int64_t a = MakeAccount("a@example.test");
  std::string content = "Subject: big\r\n\r\n" + std::string(200000, 'x') + "\r\n";
  std::string seg = where_.dir() + "/blobs/seg-00000001.hb";
  auto deliver = [&](DeliveryRequest req) {
    return Wait<DeliveryReceipt>(
        [&](Done<DeliveryReceipt> done) { store_->Deliver(std::move(req), std::move(done)); });
  };
  DeliveryRequest req;
  req.account_ids = {a};
  req.content = content;
  req.received_at = 1700000000;
  store_->PrepareDelivery(req);
  ASSERT_NE(req.encoded, nullptr);
  EXPECT_EQ(req.encoded->sha256, Sha256(content));
  EXPECT_EQ(req.encoded->codec, Codec::kZstd);
  DeliveryRequest no_local;  // nothing stored locally: nothing to prepare
  no_local.content = content;
  store_->PrepareDelivery(no_local);
  EXPECT_EQ(no_local.encoded, nullptr);

  // Prepared raw: the writer must not recompress it.
  testing::TempDir other;
  BlobStore::Options raw_options;
  raw_options.compress = false;
  BlobStore raw(io::FileSystem::Default(), other.path(), raw_options);
  req.encoded = std::make_shared<const EncodedBlob>(raw.Encode(content));
  auto before = std::filesystem::file_size(seg);
  auto r = deliver(std::move(req));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->content_id, HexEncode(Sha256(content)));
  EXPECT_GE(std::filesystem::file_size(seg) - before, content.size());
  auto snap = store_->ListMessages(a, kInbox);
  ASSERT_EQ(snap->messages.size(), 1u);
  EXPECT_EQ(*store_->ReadMessage(a, snap->messages[0].id), content);

  // A record prepared for other content (another size) is ignored: the
  // writer encodes this content itself.
  DeliveryRequest stale;
  stale.account_ids = {a};
  stale.content = content + "more\r\n";
  stale.received_at = 1700000000;
  stale.encoded = std::make_shared<const EncodedBlob>(raw.Encode(content));
  before = std::filesystem::file_size(seg);
  auto s = deliver(std::move(stale));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->content_id, HexEncode(Sha256(content + "more\r\n")));
  EXPECT_LT(std::filesystem::file_size(seg) - before, content.size() / 10);  // compressed here
  snap = store_->ListMessages(a, kInbox);
  ASSERT_EQ(snap->messages.size(), 2u);
  EXPECT_EQ(*store_->ReadMessage(a, snap->messages[1].id), content + "more\r\n");
}

// Issue 16: the SORT keys record of a body is derived when it is stored
// (StoreOptions::sort_keys, unless the request carries one) and read back
// for a whole mailbox at once; messages without one are left out.
TEST_P(StoreTest, SortKeysRecordsAreKeptWithTheBody) {
  sort_keys_ = [](std::string_view content, std::string_view) -> std::string {
    if (content.starts_with("Subject: none")) return "";
    return "rec:" + std::string(content.substr(9, 3));
  };
  Reopen();
  int64_t a = MakeAccount("a@example.test");
  int64_t b = MakeAccount("b@example.test");
  ASSERT_TRUE(Deliver({a, b}, "Subject: one\r\n\r\nx\r\n").ok());
  ASSERT_TRUE(Deliver({a}, "Subject: none\r\n\r\nx\r\n").ok());
  AppendRequest req{a,       "INBOX", "Subject: two\r\n\r\ny\r\n", "", 0, "", 1700000000, {},
                    "given", ""};
  ASSERT_TRUE(
      Wait<AppendResult>([&](Done<AppendResult> d) { store_->Append(req, std::move(d)); }).ok());
  auto snap = store_->ListMessages(a, kInbox);
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->messages.size(), 3u);
  auto keys = store_->ReadSortKeys(a, snap->mailbox_id);
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  std::map<int64_t, std::string> got(keys->begin(), keys->end());
  EXPECT_EQ(got, (std::map<int64_t, std::string>{{snap->messages[0].id, "rec:one"},
                                                 {snap->messages[2].id, "given"}}));
  // Another account's mailbox id gives nothing; expunged messages are left out.
  EXPECT_TRUE(store_->ReadSortKeys(b, snap->mailbox_id)->empty());
  ASSERT_TRUE(Wait<void>([&](Done<void> d) {
                store_->Expunge(a, {snap->messages[0].id}, std::move(d));
              }).ok());
  keys = store_->ReadSortKeys(a, snap->mailbox_id);
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].second, "given");
  // The other recipient's copy shares the body and its record.
  auto bsnap = store_->ListMessages(b, kInbox);
  keys = store_->ReadSortKeys(b, bsnap->mailbox_id);
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].second, "rec:one");
}

// A copy filed with its own content (Sieve editheader) gets the record of
// that content when it is stored, like any delivered body (not only from a
// restart's backfill); the shared copy keeps the delivery's.
TEST_P(StoreTest, FilingWithItsOwnContentGetsItsOwnSortKeys) {
  sort_keys_ = [](std::string_view content, std::string_view) -> std::string {
    return "rec:" + std::string(content.substr(0, 6));
  };
  Reopen();
  int64_t a = MakeAccount("a@example.test");
  int64_t b = MakeAccount("b@example.test");
  DeliveryRequest req;
  req.content = "Subject: filed\r\n\r\nhello\r\n";
  req.received_at = 1700000000;
  req.filings.push_back({a, "", {}, false, "X-Edited: yes\r\n" + req.content, "", {}, {}});
  req.filings.push_back({b, "", {}, false, {}, {}, {}, {}});
  auto r = Wait<DeliveryReceipt>(
      [&](Done<DeliveryReceipt> done) { store_->Deliver(std::move(req), std::move(done)); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  for (auto [account, want] : {std::pair{a, "rec:X-Edit"}, std::pair{b, "rec:Subjec"}}) {
    auto snap = store_->ListMessages(account, kInbox);
    ASSERT_TRUE(snap.ok());
    auto keys = store_->ReadSortKeys(account, snap->mailbox_id);
    ASSERT_TRUE(keys.ok()) << keys.error().message;
    ASSERT_EQ(keys->size(), 1u) << want;
    EXPECT_EQ((*keys)[0].second, want);
  }
}

}  // namespace
}  // namespace hato::store

// ---- JMAP's indexed reads and records (issue 12) ----

namespace hato::store {
namespace {

// QueryMailboxEmails pages a mailbox by (internal date, id) with one row per
// body, whatever the order the messages were stored in; FindEmailRows finds
// an Email's rows by a prefix of its body hash, in live mailboxes of the
// account only; ListMailboxHeads gives the state's fields without counts.
TEST_P(StoreTest, JmapIndexedEmailReads) {
  int64_t a = MakeAccount("a@example.test");
  int64_t b = MakeAccount("b@example.test");
  auto append = [&](int64_t account, const std::string& content, int64_t date) {
    AppendRequest req{account, "INBOX", content, "", 0, "", date, {}, "", ""};
    auto r = Wait<AppendResult>([&](Done<AppendResult> d) { store_->Append(req, std::move(d)); });
    ASSERT_TRUE(r.ok()) << r.error().message;
  };
  // Dates out of order; "dup" twice (the same body: one Email).
  const int64_t dates[] = {50, 10, 40, 20, 30, 60};
  for (int i = 0; i < 6; ++i)
    append(a, "Subject: m" + std::to_string(i) + "\r\n\r\nx\r\n", 1700000000 + dates[i]);
  append(a, "Subject: dup\r\n\r\ny\r\n", 1700000035);
  append(a, "Subject: dup\r\n\r\ny\r\n", 1700000035);
  append(b, "Subject: m0\r\n\r\nx\r\n", 1700000000);  // b has a's first body too
  auto mailboxes = store_->ListMailboxes(a);
  ASSERT_TRUE(mailboxes.ok());
  int64_t inbox = 0;
  for (const auto& m : *mailboxes)
    if (m.name == kInbox) inbox = m.id;
  auto subject = [&](const EmailRow& r) {
    auto c = store_->ReadMessage(a, r.message_id);
    EXPECT_TRUE(c.ok());
    return c.ok() ? c->substr(9, c->find('\r') - 9) : std::string();
  };
  auto page = store_->QueryMailboxEmails(a, inbox, false, 0, 100, true);
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->total, 7u);
  std::vector<std::string> got;
  for (const auto& r : page->rows) got.push_back(subject(r));
  EXPECT_EQ(got, (std::vector<std::string>{"m5", "m0", "m2", "dup", "m4", "m3", "m1"}));
  // Position and limit; ascending; past the end.
  page = store_->QueryMailboxEmails(a, inbox, false, 2, 2, false);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->rows.size(), 2u);
  EXPECT_EQ(subject(page->rows[0]), "m2");
  EXPECT_EQ(subject(page->rows[1]), "dup");
  page = store_->QueryMailboxEmails(a, inbox, true, 0, 3, false);
  ASSERT_TRUE(page.ok());
  got.clear();
  for (const auto& r : page->rows) got.push_back(subject(r));
  EXPECT_EQ(got, (std::vector<std::string>{"m1", "m3", "m4"}));
  page = store_->QueryMailboxEmails(a, inbox, true, 50, 3, true);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->rows.empty());
  EXPECT_EQ(page->total, 7u);
  // Another account's mailbox is an empty page.
  page = store_->QueryMailboxEmails(b, inbox, false, 0, 100, true);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->rows.empty());
  EXPECT_EQ(page->total, 0u);

  // By hash prefix: both rows of "dup"; a's row of m0 only, not b's.
  auto all = store_->ListEmailRows(a, 0, 0);
  ASSERT_TRUE(all.ok());
  std::string dup_sha, m0_sha;
  for (const auto& r : *all) {
    if (subject(r) == "dup") dup_sha = r.sha256;
    if (subject(r) == "m0") m0_sha = r.sha256;
  }
  auto rows = store_->FindEmailRows(a, {dup_sha.substr(0, 12), m0_sha.substr(0, 12), "\x01"});
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_LT((*rows)[0].message_id, (*rows)[1].message_id);
  for (const auto& r : *rows) EXPECT_EQ(r.mailbox_id, inbox);
  // Expunged rows are not found or paged.
  std::vector<int64_t> gone;
  for (const auto& r : *rows) gone.push_back(r.message_id);
  auto ex = Wait<void>([&](Done<void> d) { store_->Expunge(a, gone, std::move(d)); });
  ASSERT_TRUE(ex.ok()) << ex.error().message;
  rows = store_->FindEmailRows(a, {dup_sha, m0_sha});
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->empty());
  page = store_->QueryMailboxEmails(a, inbox, false, 0, 100, true);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 5u);
  EXPECT_EQ(page->rows.size(), 5u);

  auto heads = store_->ListMailboxHeads(a);
  ASSERT_TRUE(heads.ok());
  ASSERT_EQ(heads->size(), mailboxes->size());
  for (size_t i = 0; i < heads->size(); ++i) {
    EXPECT_EQ((*heads)[i].id, (*mailboxes)[i].id);
    EXPECT_EQ((*heads)[i].name, (*mailboxes)[i].name);
    EXPECT_EQ((*heads)[i].uidnext, (*mailboxes)[i].uidnext);
  }
}

TEST_P(StoreTest, JmapDocumentsPutGetAndGoWithTheAccount) {
  int64_t a = MakeAccount("a@example.test");
  auto none = store_->GetJmapDocument(a, "identities");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().kind, ErrorKind::kNotFound);
  ASSERT_TRUE(store_->PutJmapDocument(a, "identities", R"({"i1":{"name":"A"}})").ok());
  ASSERT_TRUE(store_->PutJmapDocument(a, "identities", R"({"i1":{"name":"B"}})").ok());
  ASSERT_TRUE(store_->PutJmapDocument(a, "submissions", R"({"seq":1})").ok());
  Reopen();
  auto got = store_->GetJmapDocument(a, "identities");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(*got, R"({"i1":{"name":"B"}})");
  ASSERT_TRUE(store_->PurgeAccount("a@example.test").ok());
  EXPECT_FALSE(store_->GetJmapDocument(a, "submissions").ok());
}

// Issue 12 item 3: the mailbox counts (ListMailboxes: STATUS, LIST, JMAP
// Mailbox/get) are kept by the store, not counted from the message rows;
// they must equal a count of the rows after every kind of change.
TEST_P(StoreTest, MailboxCountersFollowEveryChange) {
  int64_t a = MakeAccount("a@example.test");
  // What the counts must be: recounted from the live messages.
  auto expect_counts = [&](const char* when) {
    auto list = store_->ListMailboxes(a);
    ASSERT_TRUE(list.ok()) << list.error().message;
    for (const auto& m : *list) {
      auto snap = store_->ListMessages(a, m.name);
      ASSERT_TRUE(snap.ok()) << snap.error().message;
      uint64_t n = 0, unseen = 0, size = 0, deleted = 0, deleted_size = 0, recent = 0;
      std::set<std::string> bodies;
      for (const auto& x : snap->messages) {
        ++n;
        unseen += (x.flags & kSeen) == 0;
        size += x.size;
        deleted += (x.flags & kDeleted) != 0;
        deleted_size += (x.flags & kDeleted) != 0 ? x.size : 0;
        recent += x.uid > snap->recent_uid;
        auto c = store_->ReadMessage(a, x.id);
        ASSERT_TRUE(c.ok());
        bodies.insert(*c);
      }
      EXPECT_EQ(m.messages, n) << when << " " << m.name;
      EXPECT_EQ(m.unseen, unseen) << when << " " << m.name;
      EXPECT_EQ(m.size, size) << when << " " << m.name;
      EXPECT_EQ(m.deleted, deleted) << when << " " << m.name;
      EXPECT_EQ(m.deleted_size, deleted_size) << when << " " << m.name;
      EXPECT_EQ(m.recent, recent) << when << " " << m.name;
      EXPECT_EQ(m.emails, bodies.size()) << when << " " << m.name;
    }
  };
  auto inbox_ids = [&]() {
    std::vector<int64_t> ids;
    auto inbox = store_->ListMessages(a, kInbox);  // kept: the loop reads into it
    EXPECT_TRUE(inbox.ok());
    if (inbox.ok())
      for (const auto& x : inbox->messages) ids.push_back(x.id);
    return ids;
  };
  expect_counts("new account");
  ASSERT_TRUE(Deliver({a}, "Subject: one\r\n\r\n1\r\n").ok());
  ASSERT_TRUE(Deliver({a}, "Subject: two\r\n\r\n22\r\n").ok());
  ASSERT_TRUE(Deliver({a}, "Subject: two\r\n\r\n22\r\n").ok());  // the same body again
  AppendRequest req{a,  kInbox, "Subject: three\r\n\r\n333\r\n", "", kSeen | kDeleted, "", 0, {},
                    "", ""};
  ASSERT_TRUE(
      Wait<AppendResult>([&](Done<AppendResult> d) { store_->Append(req, std::move(d)); }).ok());
  expect_counts("deliveries");
  auto flags = [&](std::vector<int64_t> ids, FlagOp op, uint32_t f) {
    FlagChange change;
    change.op = op;
    change.flags = f;
    ASSERT_TRUE(Wait<FlagResult>([&](Done<FlagResult> d) {
                  store_->SetFlags(a, std::move(ids), change, std::move(d));
                }).ok());
  };
  auto ids = inbox_ids();
  ASSERT_EQ(ids.size(), 4u);
  flags({ids[0], ids[1]}, FlagOp::kAdd, kSeen | kFlagged);
  flags({ids[3]}, FlagOp::kRemove, kDeleted);
  flags({ids[2]}, FlagOp::kReplace, kDeleted);
  expect_counts("flags");
  auto mailbox_id = [&](const char* name) {
    auto list = store_->ListMailboxes(a);
    if (list.ok())
      for (const auto& m : *list)
        if (m.name == name) return m.id;
    return int64_t{0};
  };
  ASSERT_TRUE(Wait<uint32_t>([&](Done<uint32_t> d) {
                store_->ClaimRecent(mailbox_id(kInbox), 2, std::move(d));
              }).ok());
  expect_counts("recent claimed");
  // A move of one of the two rows of one body, and a copy of another.
  ASSERT_TRUE(Wait<CopyResult>([&](Done<CopyResult> d) {
                store_->CopyMessages(a, {ids[1]}, "Archive", true, std::move(d));
              }).ok());
  ASSERT_TRUE(Wait<CopyResult>([&](Done<CopyResult> d) {
                store_->CopyMessages(a, {ids[0], ids[2]}, "Archive", false, std::move(d));
              }).ok());
  expect_counts("move and copy");
  ASSERT_TRUE(Wait<void>([&](Done<void> d) {
                store_->Expunge(a, {ids[2], ids[3]}, std::move(d));
              }).ok());
  expect_counts("expunge");
  auto undeleted = store_->Undelete(a, kInbox, 0);
  ASSERT_TRUE(undeleted.ok()) << undeleted.error().message;
  EXPECT_GE(*undeleted, 2u);
  expect_counts("undelete");
  ASSERT_TRUE(Wait<void>([&](Done<void> d) {
                store_->RenameMailbox(a, kInbox, "Old", std::move(d));
              }).ok());
  expect_counts("INBOX renamed");
  ASSERT_TRUE(
      Wait<void>([&](Done<void> d) { store_->DeleteMailbox(a, "Archive", std::move(d)); }).ok());
  expect_counts("mailbox deleted");
  ASSERT_TRUE(store_->PurgeExpired(INT64_MAX).ok());
  expect_counts("purged");
  Reopen();
  expect_counts("reopened");
  // Email/query's total and pages agree with the counters: with no body
  // twice the page comes from the covering index alone.
  auto old_box = mailbox_id("Old");
  auto page = store_->QueryMailboxEmails(a, old_box, false, 0, 10, true);
  ASSERT_TRUE(page.ok()) << page.error().message;
  auto list = store_->ListMailboxes(a);
  ASSERT_TRUE(list.ok());
  for (const auto& m : *list) {
    if (m.id == old_box) {
      EXPECT_EQ(page->total, m.emails);
    }
  }
  EXPECT_EQ(page->rows.size(), page->total);
  auto verify = store_->Verify();
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->problems.empty()) << (verify->problems.empty() ? "" : verify->problems[0]);
}

// Issue 12 item 1: the outcomes of a message that left the queue stay
// readable (JMAP EmailSubmission deliveryStatus), until the purge.
TEST_P(StoreTest, FinishedOutboundRecipientsAreKept) {
  int64_t a = MakeAccount("a@example.test");
  DeliveryRequest req;
  req.return_path = "a@example.test";
  req.content = "Subject: out\r\n\r\nbody\r\n";
  req.received_at = 1700000000;
  req.submitted_by = a;
  OutboundRequest out;
  out.content = req.content;
  out.sender = "a@example.test";
  out.recipients.push_back({"x@remote.test", 0, ""});
  out.recipients.push_back({"y@remote.test", 0, ""});
  req.outbound = std::move(out);
  auto receipt =
      Wait<DeliveryReceipt>([&](Done<DeliveryReceipt> d) { store_->Deliver(req, std::move(d)); });
  ASSERT_TRUE(receipt.ok()) << receipt.error().message;
  int64_t qid = receipt->queue_id;
  auto none = store_->ListFinishedRecipients(qid);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());  // still queued
  auto q = store_->GetQueued(qid);
  ASSERT_TRUE(q.ok());
  std::vector<RecipientOutcome> outcomes;
  for (const auto& r : q->recipients) {
    RecipientOutcome o;
    o.recipient_id = r.id;
    bool first = r.address == "x@remote.test";
    o.state = first ? RecipientState::kDelivered : RecipientState::kFailed;
    o.diagnostic = first ? "250 2.0.0 ok" : "550 5.1.1 no such user";
    outcomes.push_back(o);
  }
  ASSERT_TRUE(
      Wait<void>([&](Done<void> d) { store_->RecordOutcomes(outcomes, std::move(d)); }).ok());
  EXPECT_EQ(store_->GetQueued(qid).error().kind, ErrorKind::kNotFound);
  auto done = store_->ListFinishedRecipients(qid);
  ASSERT_TRUE(done.ok()) << done.error().message;
  ASSERT_EQ(done->size(), 2u);
  std::map<std::string, std::pair<RecipientState, std::string>> got;
  for (const auto& r : *done) got[r.address] = {r.state, r.last_error};
  EXPECT_EQ(got["x@remote.test"].first, RecipientState::kDelivered);
  EXPECT_EQ(got["x@remote.test"].second, "250 2.0.0 ok");
  EXPECT_EQ(got["y@remote.test"].first, RecipientState::kFailed);
  EXPECT_EQ(got["y@remote.test"].second, "550 5.1.1 no such user");
  ASSERT_TRUE(store_->PurgeExpired(INT64_MAX).ok());
  EXPECT_TRUE(store_->ListFinishedRecipients(qid)->empty());
}

}  // namespace
}  // namespace hato::store
