#include "store/store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "fault_fs.h"
#include "store/blobs.h"
#include "test_util.h"

namespace hato::store {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    store_.reset();
    StoreOptions options;
    options.fs = &faults_;
    auto s = OpenEmbeddedStore(dir_.path(), options);
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
    DeliveryRequest req{"sender@remote.test", std::move(to), std::move(content), 1700000000};
    return Wait<DeliveryReceipt>(
        [&](Done<DeliveryReceipt> done) { store_->Deliver(std::move(req), std::move(done)); });
  }

  testing::TempDir dir_;
  testing::FaultFileSystem faults_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, DomainsAndAccounts) {
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

TEST_F(StoreTest, DeliverListReadSurvivesReopen) {
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

TEST_F(StoreTest, ManyRecipientsStoredOnce) {
  int64_t a = MakeAccount("a@example.test");
  int64_t b = MakeAccount("b@example.test");
  auto r = Deliver({a, b}, "Subject: both\r\n\r\nhello\r\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->message_ids.size(), 2u);
  auto report = store_->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->blobs_checked, 1u);  // one body for two recipients
  EXPECT_TRUE(report->problems.empty());
  EXPECT_EQ(store_->ListMessages(b, kInbox)->messages.size(), 1u);
}

TEST_F(StoreTest, ConcurrentDeliveriesAllLandWithUniqueUids) {
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

TEST_F(StoreTest, ExpungeKeepsForRetentionThenPurges) {
  int64_t a = MakeAccount("a@example.test");
  ASSERT_TRUE(Deliver({a}, "Subject: 1\r\n\r\none\r\n").ok());
  ASSERT_TRUE(Deliver({a}, "Subject: 2\r\n\r\ntwo\r\n").ok());
  auto snap = store_->ListMessages(a, kInbox);
  int64_t first = snap->messages[0].id;
  auto st = Wait<void>([&](Done<void> done) { store_->Expunge(a, {first}, std::move(done)); });
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(store_->ListMessages(a, kInbox)->messages.size(), 1u);
  EXPECT_FALSE(store_->ReadMessage(a, first).ok());
  // Not purged while within retention...
  EXPECT_EQ(*store_->PurgeExpired(0), 0u);
  EXPECT_EQ(store_->Verify()->blobs_checked, 2u);
  // ...purged once past it, and its body goes with it.
  EXPECT_EQ(*store_->PurgeExpired(INT64_MAX), 1u);
  EXPECT_EQ(store_->Verify()->blobs_checked, 1u);
}

TEST_F(StoreTest, SetFlagsAddRemoveReplace) {
  int64_t a = MakeAccount("a@example.test");
  int64_t b = MakeAccount("b@example.test");
  ASSERT_TRUE(Deliver({a}, "Subject: f\r\n\r\nflags\r\n").ok());
  int64_t id = store_->ListMessages(a, kInbox)->messages[0].id;
  auto set = [&](int64_t account, FlagOp op, uint32_t flags) {
    return Wait<void>(
        [&](Done<void> done) { store_->SetFlags(account, {id}, op, flags, std::move(done)); });
  };
  ASSERT_TRUE(set(a, FlagOp::kAdd, kSeen | kFlagged).ok());
  EXPECT_EQ(store_->ListMessages(a, kInbox)->messages[0].flags, kSeen | kFlagged);
  ASSERT_TRUE(set(a, FlagOp::kRemove, kFlagged).ok());
  EXPECT_EQ(store_->ListMessages(a, kInbox)->messages[0].flags, uint32_t{kSeen});
  ASSERT_TRUE(set(a, FlagOp::kReplace, kAnswered).ok());
  EXPECT_EQ(store_->ListMessages(a, kInbox)->messages[0].flags, uint32_t{kAnswered});
  // Another account cannot touch it.
  ASSERT_TRUE(set(b, FlagOp::kAdd, kDeleted).ok());
  EXPECT_EQ(store_->ListMessages(a, kInbox)->messages[0].flags, uint32_t{kAnswered});
}

TEST_F(StoreTest, CorruptBodyIsDetectedNotServed) {
  int64_t a = MakeAccount("a@example.test");
  std::string msg = "Subject: c\r\n\r\nprecious bytes\r\n";
  ASSERT_TRUE(Deliver({a}, msg).ok());
  int64_t id = store_->ListMessages(a, kInbox)->messages[0].id;
  store_.reset();
  // Flip a byte of the stored payload (raw: short messages are not compressed).
  std::string seg = dir_.path() + "/blobs/seg-00000001.hb";
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

TEST_F(StoreTest, TornTailIsIgnoredAfterCrash) {
  int64_t a = MakeAccount("a@example.test");
  ASSERT_TRUE(Deliver({a}, "Subject: 1\r\n\r\none\r\n").ok());
  store_.reset();
  // A crash mid-append leaves a partial record after the last committed one.
  std::ofstream(dir_.path() + "/blobs/seg-00000001.hb", std::ios::app | std::ios::binary)
      << "HBL1\x00garbage";
  Reopen();
  ASSERT_TRUE(Deliver({a}, "Subject: 2\r\n\r\ntwo\r\n").ok());
  auto snap = store_->ListMessages(a, kInbox);
  ASSERT_EQ(snap->messages.size(), 2u);
  for (const auto& m : snap->messages) EXPECT_TRUE(store_->ReadMessage(a, m.id).ok());
  EXPECT_TRUE(store_->Verify()->problems.empty());
}

TEST_F(StoreTest, FailedFsyncFailsTheDeliveryAndHidesIt) {
  int64_t a = MakeAccount("a@example.test");
  ASSERT_TRUE(Deliver({a}, "Subject: before\r\n\r\nkept\r\n").ok());
  faults_.fail_sync = true;
  auto failed = Deliver({a}, "Subject: during\r\n\r\nlost in the fault\r\n");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().kind, ErrorKind::kTemporary);            // SMTP answers 451 4.3.0
  EXPECT_EQ(store_->ListMessages(a, kInbox)->messages.size(), 1u);  // nothing half-written
  // The failed fsync is not retried into a success: after the fault clears the
  // next delivery goes to a fresh segment, and everything verifies.
  faults_.fail_sync = false;
  ASSERT_TRUE(Deliver({a}, "Subject: after\r\n\r\nrecovered\r\n").ok());
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/blobs/seg-00000002.hb"));
  Reopen();
  auto snap = store_->ListMessages(a, kInbox);
  ASSERT_EQ(snap->messages.size(), 2u);
  EXPECT_NE(store_->ReadMessage(a, snap->messages[1].id)->find("recovered"), std::string::npos);
  EXPECT_TRUE(store_->Verify()->problems.empty());
}

TEST_F(StoreTest, FullDiskFailsOnlyTheWritesThatNeedIt) {
  int64_t a = MakeAccount("a@example.test");
  std::string dup = "Subject: dup\r\n\r\nalready stored\r\n";
  ASSERT_TRUE(Deliver({a}, dup).ok());
  faults_.fail_append = true;
  EXPECT_FALSE(Deliver({a}, "Subject: new\r\n\r\nneeds space\r\n").ok());
  // Content already stored needs no new bytes: it is still accepted.
  EXPECT_TRUE(Deliver({a}, dup).ok());
  faults_.fail_append = false;
  EXPECT_TRUE(Deliver({a}, "Subject: later\r\n\r\nfits again\r\n").ok());
  Reopen();
  EXPECT_EQ(store_->ListMessages(a, kInbox)->messages.size(), 3u);
  EXPECT_TRUE(store_->Verify()->problems.empty());
}

TEST_F(StoreTest, ConcurrentDeliveriesShareFsyncs) {
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

}  // namespace
}  // namespace hato::store
