// The fault rules (io/fault_fs.h) and their effect on the store's two halves:
// blob segments through FaultFileSystem, metadata through the SQLite VFS.
#include "io/fault_fs.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "store/store.h"
#include "test_util.h"

namespace hato::io {
namespace {

TEST(FaultRules, ParsesRulesAndLegacyKeys) {
  auto r = ParseFaultRules(
      "# comment\n"
      "fsync file=db error=EIO nth=3 count=1\n"
      "write file=blobs error=ENOSPC\n"
      "fsync delay_ms=250   # slow\n"
      "write torn nth=2\n"
      "\n"
      "sync_delay_ms = 40\n"
      "append_error = 0\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 5u);  // append_error = 0 adds nothing
  EXPECT_EQ((*r)[0].op, FaultOp::kSync);
  EXPECT_EQ((*r)[0].file, FaultFile::kDb);
  EXPECT_EQ((*r)[0].error, EIO);
  EXPECT_EQ((*r)[0].nth, 3u);
  EXPECT_EQ((*r)[0].count, 1u);
  EXPECT_EQ((*r)[1].error, ENOSPC);
  EXPECT_EQ((*r)[1].file, FaultFile::kBlobs);
  EXPECT_EQ((*r)[2].delay_ms, 250);
  EXPECT_EQ((*r)[2].file, FaultFile::kAny);
  EXPECT_TRUE((*r)[3].torn);
  EXPECT_EQ((*r)[4].file, FaultFile::kBlobs);
  EXPECT_EQ((*r)[4].delay_ms, 40);
}

TEST(FaultRules, RejectsWhatItDoesNotKnow) {
  for (const char* bad :
       {"fsnc error=EIO", "fsync error=EPERM", "fsync file=wal", "fsync nth=0", "fsync torn",
        "write nth", "write delay_ms=x", "sync_error = maybe", "write delay_ms=99999999999"}) {
    EXPECT_FALSE(ParseFaultRules(bad).ok()) << bad;
  }
}

TEST(FaultInjector, NthAndCountSelectOccurrences) {
  FaultInjector f(FileSystem::Default());
  f.SetRules(*ParseFaultRules("fsync file=db error=EIO nth=2 count=2\n"));
  std::vector<int> errors;
  for (int i = 0; i < 5; ++i) errors.push_back(f.Check(FaultOp::kSync, FaultFile::kDb).error);
  EXPECT_EQ(errors, (std::vector<int>{0, EIO, EIO, 0, 0}));
  // Other files and operations are not counted against the rule.
  f.SetRules(*ParseFaultRules("fsync file=db error=EIO nth=2\n"));
  EXPECT_EQ(f.Check(FaultOp::kSync, FaultFile::kBlobs).error, 0);
  EXPECT_EQ(f.Check(FaultOp::kWrite, FaultFile::kDb).error, 0);
  EXPECT_EQ(f.Check(FaultOp::kSync, FaultFile::kDb).error, 0);
  EXPECT_EQ(f.Check(FaultOp::kSync, FaultFile::kDb).error, EIO);
  EXPECT_EQ(f.Check(FaultOp::kSync, FaultFile::kDb).error, EIO);  // no count: from nth on
}

TEST(FaultFileSystem, MkdirAndRenameFaults) {
  testing::TempDir dir;
  FaultFileSystem fs(FileSystem::Default());
  fs.SetRules(*ParseFaultRules("mkdir error=ENOSPC nth=1 count=1\nrename error=EIO\n"));
  auto st = fs.CreateDirs(dir.path() + "/a/b");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kTemporary);
  EXPECT_FALSE(fs.Exists(dir.path() + "/a"));
  EXPECT_TRUE(fs.CreateDirs(dir.path() + "/a/b").ok());  // only the 1st
  EXPECT_FALSE(fs.WriteFileAtomic(dir.path() + "/a/f", "x").ok());
  EXPECT_FALSE(fs.Exists(dir.path() + "/a/f"));
  fs.SetRules({});
  EXPECT_TRUE(fs.WriteFileAtomic(dir.path() + "/a/f", "x").ok());
}

class MetadataFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    store::StoreOptions options;
    options.fs = &faults_;
    auto s = store::OpenEmbeddedStore(dir_.path(), options);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
    ASSERT_TRUE(store_->AddDomain("example.test").ok());
    ASSERT_TRUE(store_->AddAccount("a@example.test", "x").ok());
    account_ = store_->FindAccount("a@example.test")->id;
  }
  Status Deliver(const std::string& subject) {
    store::DeliveryRequest req;
    req.account_ids = {account_};
    req.content = "Subject: " + subject + "\r\n\r\nbody\r\n";
    auto r = store::Wait<store::DeliveryReceipt>(
        [&](store::Done<store::DeliveryReceipt> done) { store_->Deliver(req, std::move(done)); });
    if (!r) return r.error();
    return Ok();
  }
  size_t Count() { return store_->ListMessages(account_, "INBOX")->messages.size(); }

  testing::TempDir dir_;
  FaultFileSystem faults_{FileSystem::Default()};
  std::unique_ptr<store::Store> store_;
  int64_t account_ = 0;
};

TEST_F(MetadataFaults, FailedWalFsyncFailsTheCommitAndIsNotRetriedIntoSuccess) {
  ASSERT_TRUE(Deliver("before").ok());
  faults_.SetRules(*ParseFaultRules("fsync file=db error=EIO\n"));
  auto st = Deliver("during");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kTemporary);
  EXPECT_EQ(Count(), 1u);  // reads go on and do not see the failed commit
  faults_.SetRules({});
  ASSERT_TRUE(Deliver("after").ok());
  EXPECT_EQ(Count(), 2u);
  EXPECT_TRUE(store_->Verify()->problems.empty());
}

TEST_F(MetadataFaults, FullDiskOnTheWalIsTemporary) {
  faults_.SetRules(*ParseFaultRules("write file=db error=ENOSPC\n"));
  auto st = Deliver("during");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kTemporary);
  faults_.SetRules({});
  ASSERT_TRUE(Deliver("after").ok());
  EXPECT_EQ(Count(), 1u);
}

}  // namespace
}  // namespace hato::io
