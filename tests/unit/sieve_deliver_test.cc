// sieve::Filter over a real embedded store: the default spam policy, a
// failing script, vacation and reject outcomes (src/sieve/deliver.h).
#include <gtest/gtest.h>

#include "sieve/deliver.h"
#include "test_util.h"

namespace hato::sieve {
namespace {

class SieveDeliverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenEmbeddedStore(dir_.path(), store::StoreOptions{});
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
    ASSERT_TRUE(store_->AddDomain("example.test").ok());
    ASSERT_TRUE(store_->AddAccount("alice@example.test", "h").ok());
    alice_ = store_->FindAccount("alice@example.test")->id;
  }

  FilterResult Run(scan::Verdict verdict = {}) {
    in_.content = msg_;
    in_.return_path = "carol@remote.test";
    in_.accounts = {alice_};
    in_.rcpts = {"alice@example.test"};
    in_.verdict = verdict;
    in_.now = 1796212800;
    return Filter(*store_, in_);
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  int64_t alice_ = 0;
  FilterInput in_;
  std::string msg_ =
      "From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: hi\r\n"
      "Message-ID: <1@remote.test>\r\n\r\nbody\r\n";
};

TEST_F(SieveDeliverTest, NoScriptAppliesTheSpamPolicy) {
  auto clean = Run();
  EXPECT_FALSE(clean.filtered);
  ASSERT_EQ(clean.filings.size(), 1u);
  EXPECT_EQ(clean.filings[0].mailbox, "");
  scan::Verdict v;
  v.spam_scanned = true;
  v.spam_action = scan::SpamAction::kJunk;
  auto junk = Run(v);
  EXPECT_TRUE(junk.filtered);
  EXPECT_EQ(junk.filings[0].mailbox, "\\Junk");
  v.spam_action = scan::SpamAction::kMark;
  auto mark = Run(v);
  EXPECT_EQ(mark.filings[0].mailbox, "");
  EXPECT_EQ(mark.filings[0].flags, (std::vector<std::string>{"$Junk"}));
}

TEST_F(SieveDeliverTest, FailingScriptKeepsInInboxAndRecordsTheError) {
  ASSERT_TRUE(store_
                  ->PutSieveScript(alice_, "s",
                                   "require \"variables\"; set \"a\" \"x y\"; "
                                   "redirect \"${a}\";")
                  .ok());
  ASSERT_TRUE(store_->SetActiveSieveScript(alice_, "s").ok());
  auto r = Run();
  ASSERT_EQ(r.filings.size(), 1u);
  EXPECT_EQ(r.filings[0].mailbox, "");
  EXPECT_TRUE(r.redirects.empty());
  EXPECT_NE(store_->GetSieveStatus(alice_)->error.find("invalid address"), std::string::npos);
  // A clean run clears it.
  ASSERT_TRUE(store_->PutSieveScript(alice_, "s", "keep;").ok());
  Run();
  EXPECT_EQ(store_->GetSieveStatus(alice_)->error, "");
}

TEST_F(SieveDeliverTest, SpamtestSeesTheVerdictAndRejectIsReported) {
  ASSERT_TRUE(store_
                  ->PutSieveScript(alice_, "s",
                                   "require [\"spamtest\", \"relational\", "
                                   "\"comparator-i;ascii-numeric\", \"reject\"];\n"
                                   "if spamtest :value \"ge\" :comparator "
                                   "\"i;ascii-numeric\" \"10\" { reject \"spam\"; }\n")
                  .ok());
  ASSERT_TRUE(store_->SetActiveSieveScript(alice_, "s").ok());
  EXPECT_FALSE(Run().all_rejected);
  scan::Verdict v;
  v.spam_scanned = true;
  v.spam_score = 20;
  v.spam_required = 5;
  auto r = Run(v);
  EXPECT_TRUE(r.all_rejected);
  EXPECT_EQ(r.reject_reason, "spam");
  EXPECT_TRUE(r.filings.empty());
}

// The compiled script is cached per account (deliver.cc CompileCached) and
// must follow every change of what is active: a replaced text, another script
// activated, none active, and other limits.
TEST_F(SieveDeliverTest, CompiledScriptCacheFollowsReplaceActivateAndDeactivate) {
  auto filed = [&](const DeliveryLimits& limits = {}) {
    in_.content = msg_;
    in_.accounts = {alice_};
    in_.rcpts = {"alice@example.test"};
    auto r = Filter(*store_, in_, limits);
    EXPECT_EQ(r.filings.size(), 1u);
    return r.filings.empty() ? std::string("?") : r.filings[0].mailbox;
  };
  ASSERT_TRUE(store_->PutSieveScript(alice_, "a", "require \"fileinto\"; fileinto \"A\";").ok());
  ASSERT_TRUE(store_->SetActiveSieveScript(alice_, "a").ok());
  EXPECT_EQ(filed(), "A");
  EXPECT_EQ(filed(), "A");  // from the cache
  ASSERT_TRUE(store_->PutSieveScript(alice_, "a", "require \"fileinto\"; fileinto \"B\";").ok());
  EXPECT_EQ(filed(), "B");
  ASSERT_TRUE(store_->PutSieveScript(alice_, "c", "require \"fileinto\"; fileinto \"C\";").ok());
  ASSERT_TRUE(store_->SetActiveSieveScript(alice_, "c").ok());
  EXPECT_EQ(filed(), "C");
  ASSERT_TRUE(store_->SetActiveSieveScript(alice_, "").ok());
  EXPECT_EQ(filed(), "");
  ASSERT_TRUE(store_->SetActiveSieveScript(alice_, "a").ok());
  EXPECT_EQ(filed(), "B");
  // Limits the cached script was not compiled under: compiled again (and
  // refused here: too large), kept in INBOX with the error recorded.
  DeliveryLimits small;
  small.script.max_script_bytes = 10;
  EXPECT_EQ(filed(small), "");
  EXPECT_NE(store_->GetSieveStatus(alice_)->error.find("script \"a\""), std::string::npos);
  EXPECT_EQ(filed(), "B");
  // Another account's script is its own.
  ASSERT_TRUE(store_->AddAccount("bob@example.test", "h").ok());
  int64_t bob = store_->FindAccount("bob@example.test")->id;
  ASSERT_TRUE(store_->PutSieveScript(bob, "a", "require \"fileinto\"; fileinto \"Bob\";").ok());
  ASSERT_TRUE(store_->SetActiveSieveScript(bob, "a").ok());
  in_.content = msg_;
  in_.accounts = {alice_, bob};
  in_.rcpts = {"alice@example.test", "bob@example.test"};
  auto both = Filter(*store_, in_);
  ASSERT_EQ(both.filings.size(), 2u);
  EXPECT_EQ(both.filings[0].mailbox, "B");
  EXPECT_EQ(both.filings[1].mailbox, "Bob");
}

// Accounts whose active scripts have the same text run one shared compiled
// form (deliver.cc Caches::by_text): each run keeps its own state (a variable
// one run sets is not seen by the next), and a change of one account's script
// leaves the others' as they were.
TEST_F(SieveDeliverTest, AccountsWithTheSameScriptShareItsCompiledFormNotTheirRuns) {
  const std::string text =
      "require [\"fileinto\", \"variables\"];\n"
      "if string :is \"${seen}\" \"\" { set \"seen\" \"yes\"; fileinto \"First\"; }\n"
      "else { fileinto \"Leaked\"; }\n";
  std::vector<int64_t> ids;
  std::vector<std::string> rcpts;
  for (const char* user : {"u1@example.test", "u2@example.test", "u3@example.test"}) {
    ASSERT_TRUE(store_->AddAccount(user, "h").ok());
    ids.push_back(store_->FindAccount(user)->id);
    rcpts.emplace_back(user);
    ASSERT_TRUE(store_->PutSieveScript(ids.back(), "s", text).ok());
    ASSERT_TRUE(store_->SetActiveSieveScript(ids.back(), "s").ok());
  }
  auto filed = [&] {
    in_.content = msg_;
    in_.accounts = ids;
    in_.rcpts = rcpts;
    std::vector<std::string> out;
    for (const auto& f : Filter(*store_, in_).filings) out.push_back(f.mailbox);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(filed(), (V{"First", "First", "First"}));
  EXPECT_EQ(filed(), (V{"First", "First", "First"}));
  ASSERT_TRUE(
      store_->PutSieveScript(ids[1], "s", "require \"fileinto\"; fileinto \"Other\";").ok());
  EXPECT_EQ(filed(), (V{"First", "Other", "First"}));
  ASSERT_TRUE(store_->PutSieveScript(ids[1], "s", text).ok());
  EXPECT_EQ(filed(), (V{"First", "First", "First"}));
}

TEST_F(SieveDeliverTest, VacationMessageFollowsRfc3834) {
  Reply reply{alice_, "alice@example.test", {}};
  reply.vacation.to = "carol@remote.test";
  reply.vacation.subject = "Away";
  reply.vacation.reason = "Back\nsoon";
  std::string m = VacationMessage(reply, msg_, "mx.example.test", 1796212800);
  EXPECT_NE(m.find("Auto-Submitted: auto-replied"), std::string::npos);
  EXPECT_NE(m.find("In-Reply-To: <1@remote.test>\r\n"), std::string::npos);
  EXPECT_NE(m.find("To: <carol@remote.test>\r\n"), std::string::npos);
  EXPECT_NE(m.find("\r\n\r\nBack\r\nsoon\r\n"), std::string::npos);
  EXPECT_FALSE(CheckScriptName("jmap.vacation").ok());
  EXPECT_FALSE(CheckScriptName("a/b").ok());
  EXPECT_TRUE(CheckScriptName("My filters").ok());
}

}  // namespace
}  // namespace hato::sieve
