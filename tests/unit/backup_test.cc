// Backup building blocks (issue 6): the manifest format, the mbox reader and
// writer, and the store operations restore --merge and undelete rely on.
#include "backup/backup.h"

#include <gtest/gtest.h>

#include "backup/manifest.h"
#include "store/store.h"
#include "store_backends.h"
#include "test_util.h"
#include "transfer/mbox.h"

namespace hato {
namespace {

TEST(Manifest, RoundTripAndRefusals) {
  backup::Manifest m;
  m.id = "20261122T031650Z";
  m.created = 1763781410;
  m.schema = 4;
  m.files.push_back({"meta.db", 12288, std::string(64, 'a')});
  m.counts["messages"] = 17;
  auto text = backup::FormatManifest(m);
  auto back = backup::ParseManifest(text + "some-future-key 1\n");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->id, m.id);
  EXPECT_EQ(back->files[0].size, 12288u);
  EXPECT_EQ(back->counts["messages"], 17u);
  EXPECT_EQ(backup::FormatManifest(*back), text);
  EXPECT_FALSE(backup::ParseManifest("hato-backup 2\nid x\n").ok());  // newer format
  EXPECT_FALSE(backup::ParseManifest("hato-backup 1\n").ok());        // no id
  EXPECT_FALSE(backup::ParseManifest("hato-backup 1\nid x\nfile ../etc/passwd 1 " +
                                     std::string(64, 'a') + "\n")
                   .ok());
  EXPECT_FALSE(
      backup::ParseManifest("hato-backup 1\nid x\nfile meta.db 1 " + std::string(64, 'A') + "\n")
          .ok());
}

std::vector<transfer::MboxMessage> SplitAll(std::string_view data) {
  transfer::MboxSplitter s;
  std::vector<transfer::MboxMessage> out;
  s.Feed(data);
  s.Finish();
  while (auto m = s.Next()) out.push_back(std::move(*m));
  return out;
}

TEST(Mbox, QuotingRoundTrip) {
  std::string content =
      "Subject: x\r\n\r\nFrom here\r\n>From there\r\n>>From  far\r\nFromage\r\n\r\n";
  std::string mbox;
  transfer::AppendMboxMessage(mbox, "a@b.test", 1700000000, content);
  transfer::AppendMboxMessage(mbox, "", 1700000001, "Subject: y\r\n\r\nlast\r\n");
  EXPECT_NE(mbox.find("\n>From here\n>>From there\n>>>From  far\nFromage\n"), std::string::npos);
  auto msgs = SplitAll(mbox);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].content, content);
  EXPECT_EQ(msgs[0].return_path, "a@b.test");
  EXPECT_EQ(msgs[0].internal_date, 1700000000);
  EXPECT_EQ(msgs[1].return_path, "");  // MAILER-DAEMON
  EXPECT_EQ(msgs[1].content, "Subject: y\r\n\r\nlast\r\n");
}

TEST(Mbox, UnquotedFromWithoutDateStaysInTheMessage) {
  auto msgs = SplitAll(
      "From a@b Sat Nov 21 10:00:00 2026\nSubject: 1\n\nFrom me to you\n\n"
      "From c@d Sun Nov 22 10:00:00 2026\nSubject: 2\n\nx\n");
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].content, "Subject: 1\r\n\r\nFrom me to you\r\n");
}

TEST(Maildir, Flags) {
  EXPECT_EQ(transfer::MaildirFlags("123.x.host:2,FRS"),
            store::kFlagged | store::kAnswered | store::kSeen);
  EXPECT_EQ(transfer::MaildirFlags("123.x.host"), 0u);
  EXPECT_EQ(transfer::MaildirFlagSuffix(store::kDraft | store::kDeleted), ":2,DT");
}

class RestoreStoreTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    if (!where_.Prepare()) GTEST_SKIP() << testing::kNoPostgres;
    auto s = where_.Open(store::StoreOptions{});
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
    ASSERT_TRUE(store_->AddDomain("example.test").ok());
    ASSERT_TRUE(store_->AddAccount("a@example.test", "h").ok());
    account_ = store_->FindAccount("a@example.test")->id;
  }

  Result<store::RestoreResult> Restore(const std::string& box, const std::string& content,
                                       int64_t date, uint32_t flags = 0) {
    store::RestoreRequest r;
    r.account_id = account_;
    r.mailbox = box;
    r.content = content;
    r.internal_date = date;
    r.flags = flags;
    return store::Wait<store::RestoreResult>([&](store::Done<store::RestoreResult> done) {
      store_->RestoreMessage(std::move(r), std::move(done));
    });
  }

  testing::TestStoreLocation where_{GetParam()};
  std::unique_ptr<store::Store> store_;
  int64_t account_ = 0;
};
HATO_STORE_BACKENDS(RestoreStoreTest);

TEST_P(RestoreStoreTest, RestoreMessageDeduplicatesAndCreatesFolders) {
  auto a = Restore("INBOX", "Subject: 1\r\n\r\nx\r\n", 100, store::kSeen);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(a->added);
  auto again = Restore("INBOX", "Subject: 1\r\n\r\nx\r\n", 100);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->added);
  EXPECT_EQ(again->uid, a->uid);
  // Another date or another folder is another message.
  EXPECT_TRUE(Restore("INBOX", "Subject: 1\r\n\r\nx\r\n", 101)->added);
  EXPECT_TRUE(Restore("Old/Ärchiv", "Subject: 1\r\n\r\nx\r\n", 100)->added);
  auto snap = store_->ListMessages(account_, "Old/Ärchiv");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->messages.size(), 1u);
  auto inbox = store_->ListMessages(account_, "INBOX");
  ASSERT_EQ(inbox->messages.size(), 2u);
  EXPECT_EQ(inbox->messages[0].flags, uint32_t{store::kSeen});
  auto report = store_->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->problems.empty()) << report->problems[0];
}

TEST_P(RestoreStoreTest, UndeleteBringsBackWithNewUids) {
  ASSERT_TRUE(Restore("INBOX", "Subject: 1\r\n\r\nx\r\n", 100, store::kDeleted).ok());
  ASSERT_TRUE(Restore("INBOX", "Subject: 2\r\n\r\ny\r\n", 100).ok());
  auto inbox = store_->ListMessages(account_, "INBOX");
  ASSERT_EQ(inbox->messages.size(), 2u);
  auto st = store::Wait<void>([&](store::Done<void> done) {
    store_->Expunge(account_, {inbox->messages[0].id}, std::move(done));
  });
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*store_->Undelete(account_, "Sent", 0), 0u);
  EXPECT_EQ(*store_->Undelete(account_, "", 0), 1u);
  EXPECT_EQ(*store_->Undelete(account_, "", 0), 0u);  // once
  auto after = store_->ListMessages(account_, "INBOX");
  ASSERT_EQ(after->messages.size(), 2u);
  EXPECT_GT(after->messages[1].uid, inbox->messages[1].uid);  // a new UID
  EXPECT_EQ(after->messages[1].flags & store::kDeleted, 0u);
  auto report = store_->Verify();
  EXPECT_TRUE(report->problems.empty()) << report->problems[0];
  // The superseded row goes too; the embedded store counts only rows whose
  // retention ended (issue 18), the PostgreSQL one still counts it.
  EXPECT_EQ(*store_->PurgeExpired(1LL << 40), where_.postgres() ? 1u : 0u);
  EXPECT_TRUE(store_->Verify()->problems.empty());
}

}  // namespace
}  // namespace hato
