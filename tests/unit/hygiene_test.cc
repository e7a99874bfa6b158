// Issue 11 (sec-b): the pure hygiene helpers.
#include <gtest/gtest.h>

#include "base/strings.h"
#include "server/account_sessions.h"
#include "server/message_hygiene.h"
#include "store/mailbox_name.h"

namespace hato {
namespace {

TEST(LogSafe, EscapesControlsAndBounds) {
  EXPECT_EQ(LogSafe("alice@example.org"), "alice@example.org");
  EXPECT_EQ(LogSafe("a\r\nb"), "a\\x0d\\x0ab");
  EXPECT_EQ(LogSafe("a\\b\x7f"), "a\\\\b\\x7f");
  std::string longer(kMaxLogValueBytes + 10, 'x');
  EXPECT_EQ(LogSafe(longer), std::string(kMaxLogValueBytes, 'x') + "...");
}

TEST(MailboxName, RefusesTraversalAndControls) {
  using store::CheckNewMailboxName;
  for (const char* ok : {"INBOX", "Work/2026", ".hidden", "a..b", "caf\xc3\xa9"}) {
    EXPECT_TRUE(CheckNewMailboxName(ok).ok()) << ok;
  }
  for (const char* bad : {"", "..", ".", "../../../../tmp/x", "a/../b", "a/./b", "a//b", "a/",
                          "a\tb", "a\x7f", "a\xc2\x85", "a*", "a%", "\xff"}) {
    auto st = CheckNewMailboxName(bad);
    EXPECT_FALSE(st.ok()) << bad;
    if (!st) {
      EXPECT_EQ(st.error().kind, ErrorKind::kInvalid);
    }
  }
  EXPECT_FALSE(CheckNewMailboxName(std::string(store::kMaxMailboxLevelBytes + 1, 'a')).ok());
  EXPECT_TRUE(CheckNewMailboxName(std::string(store::kMaxMailboxLevelBytes, 'a')).ok());
  std::string deep;
  for (size_t i = 0; i <= store::kMaxMailboxLevels; ++i) deep += (i ? "/a" : "a");
  EXPECT_FALSE(CheckNewMailboxName(deep).ok());
  EXPECT_FALSE(store::SafePathComponent(".."));
  EXPECT_FALSE(store::SafePathComponent("a/b"));
  EXPECT_FALSE(store::SafePathComponent(std::string("a\0b", 3)));
  EXPECT_TRUE(store::SafePathComponent("INBOX.mbox"));
}

TEST(Authors, FromAndSenderAddresses) {
  auto a = server::AuthorAddresses(
      "From: Alice <alice@Example.org>, bob@example.org\r\nSender: alice@example.org\r\n"
      "To: x@y\r\n\r\nFrom: body@evil\r\n");
  EXPECT_FALSE(a.unusable);
  EXPECT_EQ(a.from_domain, "example.org");
  ASSERT_EQ(a.addresses.size(), 3u);
  EXPECT_EQ(a.addresses[0], "alice@Example.org");
  EXPECT_EQ(a.addresses[1], "bob@example.org");
  EXPECT_TRUE(server::AuthorAddresses("From: nobody\r\n\r\n").unusable);
  EXPECT_TRUE(server::AuthorAddresses("Subject: none\r\n\r\n").addresses.empty());
  std::string many = "From: ";
  for (size_t i = 0; i <= server::kMaxAuthorAddresses; ++i) {
    many += (i ? ", a" : "a") + std::to_string(i) + "@x.example";
  }
  EXPECT_TRUE(server::AuthorAddresses(many + "\r\n\r\n").unusable);
}

TEST(Authors, ForgedResultsOfOurHostOnly) {
  std::string msg =
      "Authentication-Results: mx.example.org; dkim=pass\r\n"
      "Authentication-Results: other.example; spf=pass\r\n"
      "Subject: x\r\n\r\nbody\r\n";
  std::string cleaned = server::RemoveForgedAuthResults(msg, "MX.example.org");
  EXPECT_EQ(cleaned,
            "Authentication-Results: other.example; spf=pass\r\nSubject: x\r\n\r\nbody\r\n");
}

struct FakeMember : server::AccountSessions::Member {
  int ended = 0;
  void EndSession() override { ++ended; }
};

TEST(AccountSessions, EndsOlderEpochsOnly) {
  server::AccountSessions reg;
  FakeMember old_session, new_session, other;
  {
    server::AccountSessions::Registration a(&reg, 1, 5, &old_session);
    server::AccountSessions::Registration c(&reg, 2, 0, &other);
    EXPECT_EQ(reg.Changed(1, 6), 1u);
    EXPECT_EQ(old_session.ended, 1);
    EXPECT_EQ(other.ended, 0);
    // A login that read the old epoch registers after the change: ended at once.
    FakeMember late;
    server::AccountSessions::Registration l(&reg, 1, 5, &late);
    EXPECT_EQ(late.ended, 1);
    server::AccountSessions::Registration b(&reg, 1, 6, &new_session);
    EXPECT_EQ(reg.Changed(1, 6), 0u);
    EXPECT_EQ(new_session.ended, 0);
    EXPECT_EQ(reg.live(), 2u);
  }
  EXPECT_EQ(reg.live(), 0u);
}

}  // namespace
}  // namespace hato
