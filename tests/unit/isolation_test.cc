// Isolation and bounds (issue 11): the memory budget (server/budget.h), the
// bounded password-check queue and per-account slots (server/isolation.h),
// penalties aggregated per network and account with a pruning that never
// resets everyone (auth/penalty.h), and the IMAP reader's pre-auth and
// non-APPEND literal limits (imap/proto/reader.h).
#include "server/isolation.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "auth/penalty.h"
#include "imap/proto/reader.h"
#include "server/budget.h"

namespace hato {
namespace {

// "prefix" + n without operator+(const char*, std::string&&), which g++ 12
// flags with a false -Wrestrict.
std::string Cat(std::string prefix, uint64_t n) {
  prefix += std::to_string(n);
  return prefix;
}

TEST(MemoryBudget, PerAddressAndGlobalCaps) {
  server::MemoryBudget b(100, 60);
  auto a1 = b.Open("10.0.0.1");
  auto a2 = b.Open("10.0.0.1");
  auto c = b.Open("10.0.0.2");
  EXPECT_TRUE(a1.Set(40));
  EXPECT_FALSE(a2.Set(30));  // 70 > 60 from one address
  EXPECT_EQ(a2.held(), 0u);
  EXPECT_TRUE(a2.Set(20));
  EXPECT_TRUE(c.Set(40));
  EXPECT_FALSE(c.Set(41));  // 101 > 100 in all
  EXPECT_EQ(b.used(), 100u);
  EXPECT_EQ(b.refused(), 2u);
  EXPECT_TRUE(a1.Set(0));  // shrinking always works
  EXPECT_TRUE(c.Set(60));
  {
    auto gone = b.Open("10.0.0.3");
    EXPECT_TRUE(gone.Set(20));
  }
  EXPECT_EQ(b.used(), 80u);  // released with the charge
}

TEST(MemoryBudget, ZeroMeansNoCap) {
  server::MemoryBudget b(0, 0);
  auto a = b.Open("x");
  EXPECT_TRUE(a.Set(uint64_t{1} << 40));
}

TEST(PasswordChecks, QueueIsBoundedAndShared) {
  server::PasswordChecks p(1, 8);
  // One network holds at most a quarter of the queue.
  auto a1 = p.TryEnter("n1");
  auto a2 = p.TryEnter("n1");
  EXPECT_TRUE(a1);
  EXPECT_TRUE(a2);
  EXPECT_FALSE(p.TryEnter("n1"));
  std::vector<server::PasswordChecks::Ticket> others;
  for (int i = 0; i < 6; ++i) {
    others.push_back(p.TryEnter(Cat("m", i)));
    EXPECT_TRUE(others.back());
  }
  EXPECT_FALSE(p.TryEnter("fresh"));  // 8 in all
  EXPECT_EQ(p.refused(), 2u);
  { auto moved = std::move(a1); }
  EXPECT_TRUE(p.TryEnter("n1"));
  EXPECT_EQ(p.pending(), 7u);  // the temporary above was released at once
  p.Join();
}

TEST(AccountSlots, PerAccountConcurrency) {
  server::AccountSlots s;
  auto a = s.TryTake(1, 1);
  EXPECT_TRUE(a);
  EXPECT_FALSE(s.TryTake(1, 1));
  EXPECT_TRUE(s.TryTake(2, 1));  // another account
  { auto released = std::move(a); }
  EXPECT_TRUE(s.TryTake(1, 1));
  EXPECT_EQ(s.refused(), 1u);
  // A caller that polls counts one refusal, when it gives up.
  auto b = s.TryTake(1, 1);
  EXPECT_FALSE(s.TryTake(1, 1, /*retrying=*/true));
  EXPECT_FALSE(s.TryTake(1, 1, /*retrying=*/true));
  EXPECT_EQ(s.refused(), 1u);
  s.Refused();
  EXPECT_EQ(s.refused(), 2u);
}

TEST(Penalty, ClientAndNetworkKeys) {
  EXPECT_EQ(auth::ClientKey("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(auth::ClientKey("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(auth::ClientKey("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  EXPECT_EQ(auth::ClientKey("2001:db8:1:2::9"), "2001:db8:1:2::/64");
  EXPECT_EQ(auth::NetworkKey("192.0.2.7"), "192.0.2.0/24");
  EXPECT_EQ(auth::NetworkKey("::ffff:192.0.2.7"), "192.0.2.0/24");
  EXPECT_EQ(auth::NetworkKey("2001:db8:1:2::9"), "2001:db8:1::/48");
  EXPECT_EQ(auth::ClientKey("not an address"), "not an address");
}

TEST(Penalty, AnIpv6Slash64IsOneClient) {
  auth::LoginPenalty p(100, 800);
  // Every failure from a new address of the same /64 still grows the delay.
  EXPECT_EQ(p.Failure("2001:db8::1", "u").count(), 100);
  EXPECT_EQ(p.Failure("2001:db8::2", "v").count(), 200);
  EXPECT_EQ(p.Failure("2001:db8::3", "w").count(), 400);
  EXPECT_GT(p.Pending("2001:db8::4").count(), 0);
  EXPECT_EQ(p.Pending("2001:db8:0:1::4").count(), 0);  // another /64
}

TEST(Penalty, NetworkTierAfterItsGrace) {
  auth::LoginPenalty p(100, 100000);
  // One failure each from many addresses of one /24.
  for (int i = 1; i <= auth::kNetworkGrace; ++i) {
    EXPECT_EQ(p.Failure(Cat("198.51.100.", i), Cat("u", i)).count(), 100);
  }
  EXPECT_EQ(p.Failure("198.51.100.200", "x").count(), 100);  // grace + 1: 100 ms
  EXPECT_EQ(p.Failure("198.51.100.201", "y").count(), 200);  // the network tier grows
  EXPECT_EQ(p.Failure("198.51.100.202", "z").count(), 400);
  EXPECT_GT(p.Pending("198.51.100.250").count(), 0);
  EXPECT_EQ(p.Pending("198.51.101.1").count(), 0);  // another /24
}

TEST(Penalty, AccountTierSlowsADistributedGuess) {
  auth::LoginPenalty p(100, 100000);
  for (int i = 0; i < auth::kAccountGrace + 3; ++i) {
    p.Failure(Cat("203.0.", i) + ".1", "victim");  // every address new
  }
  EXPECT_GT(p.Pending("192.0.2.1", "victim").count(), 0);
  EXPECT_EQ(p.Pending("192.0.2.1", "someone-else").count(), 0);
}

TEST(Penalty, PruneKeepsTheWorstOffenders) {
  auth::LoginPenalty p(100, 100000);
  for (int i = 0; i < 6; ++i) p.Failure("192.0.2.1", "target");
  // A flood of single failures from fresh addresses fills the table.
  for (size_t i = 0; p.entries() < auth::kMaxPenaltyEntries; ++i) {
    std::string ip = Cat("10.", i / 65536 % 256);
    ip += Cat(".", i / 256 % 256);
    ip += Cat(".", i % 256);
    p.Failure(ip, Cat("u", i));
  }
  p.Failure("10.255.255.255", "last");  // prunes
  EXPECT_LE(p.entries(), auth::kPruneTo + 4);
  // The old code cleared the whole table here; the repeat offender keeps its penalty.
  EXPECT_GT(p.Pending("192.0.2.1").count(), 0);
}

imap::Limits PreAuth() {
  imap::Limits l;
  l.max_literal = 8192;
  l.max_other_literal = 8192;
  l.max_command = 64 * 1024 + 4 * 8192;
  return l;
}

TEST(ImapReader, PreAuthLiteralsAreSmall) {
  imap::CommandReader r(PreAuth());
  r.Feed("a LOGIN {50000000}\r\n");
  imap::ReadResult first = r.Next();
  auto e = std::get_if<imap::ReadError>(&first);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->kind, imap::ReadErrorKind::kTooBig);
  EXPECT_TRUE(e->synchronizing);
  // LITERAL+: the bytes would follow; past max_discard the reader gives up.
  r.Feed("b LOGIN {50000000+}\r\n");
  imap::ReadResult second = r.Next();
  auto e2 = std::get_if<imap::ReadError>(&second);
  ASSERT_NE(e2, nullptr);
  EXPECT_TRUE(e2->close);
}

TEST(ImapReader, LargeLiteralsOnlyForAppend) {
  imap::Limits l;
  l.max_other_literal = 1024;
  imap::CommandReader r(l);
  r.Feed("a APPEND INBOX {100000}\r\n");
  EXPECT_TRUE(std::holds_alternative<imap::NeedContinuation>(r.Next()));
  imap::CommandReader s(l);
  s.Feed("a SEARCH BODY {100000}\r\n");
  imap::ReadResult refused = s.Next();
  auto e = std::get_if<imap::ReadError>(&refused);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->kind, imap::ReadErrorKind::kTooBig);
  imap::CommandReader t(l);
  t.Feed("a append INBOX (\\Seen) {100000}\r\n");  // case-insensitive
  EXPECT_TRUE(std::holds_alternative<imap::NeedContinuation>(t.Next()));
}

}  // namespace
}  // namespace hato
