#include "outbound/srs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "base/strings.h"

namespace hato::outbound {
namespace {

constexpr std::string_view kSecret = "0123456789abcdef0123456789abcdef";
constexpr int64_t kNow = 1'796'000'000;  // 2026-12
constexpr int64_t kDay = 86400;

std::string Local(const std::string& address) { return address.substr(0, address.rfind('@')); }

TEST(Srs, ForwardThenReverseGivesTheSender) {
  std::string fwd = SrsForward("Alice.Smith@example.com", "hato.test", kSecret, kNow);
  EXPECT_TRUE(fwd.starts_with("SRS0=")) << fwd;
  EXPECT_TRUE(fwd.ends_with("=example.com=Alice.Smith@hato.test")) << fwd;
  auto back = SrsReverse(Local(fwd), kSecret, kNow + 3 * kDay);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, "Alice.Smith@example.com");
  // Some MTAs fold the local part to lower case: still accepted.
  auto folded = SrsReverse(AsciiLower(Local(fwd)), kSecret, kNow);
  ASSERT_TRUE(folded.ok());
  EXPECT_EQ(*folded, "alice.smith@example.com");
}

TEST(Srs, NullSenderAndOwnDomainUnchanged) {
  EXPECT_EQ(SrsForward("", "hato.test", kSecret, kNow), "");
  EXPECT_EQ(SrsForward("bob@Hato.Test", "hato.test", kSecret, kNow), "bob@Hato.Test");
}

TEST(Srs, WrongHashOrSecretOrExpiredIsRefused) {
  std::string local = Local(SrsForward("alice@example.com", "hato.test", kSecret, kNow));
  EXPECT_FALSE(SrsReverse(local, "another secret, another server..", kNow).ok());
  std::string forged = local;
  forged[5] = forged[5] == 'A' ? 'B' : 'A';  // the first hash character
  EXPECT_FALSE(SrsReverse(forged, kSecret, kNow).ok());
  std::string retargeted = local.substr(0, local.rfind('=')) + "=mallory";
  EXPECT_FALSE(SrsReverse(retargeted, kSecret, kNow).ok());
  EXPECT_TRUE(SrsReverse(local, kSecret, kNow + kSrsMaxAgeDays * kDay).ok());
  auto old = SrsReverse(local, kSecret, kNow + (kSrsMaxAgeDays + 1) * kDay);
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.error().message.find("expired"), std::string::npos);
  EXPECT_FALSE(SrsReverse("SRS0=", kSecret, kNow).ok());
  EXPECT_FALSE(SrsReverse("SRS0=abcd=AA", kSecret, kNow).ok());
  EXPECT_FALSE(SrsReverse("alice", kSecret, kNow).ok());
}

TEST(Srs, ForwardingAnSrsAddressAgainMakesSrs1ToTheFirstForwarder) {
  // fwd1.example forwarded alice's mail to us; we forward it again.
  std::string first = "SRS0=HhHh=AB=example.com=alice@fwd1.example";
  std::string again = SrsForward(first, "hato.test", kSecret, kNow);
  EXPECT_TRUE(again.starts_with("SRS1=")) << again;
  EXPECT_NE(again.find("=fwd1.example==HhHh=AB=example.com=alice@hato.test"), std::string::npos)
      << again;
  auto back = SrsReverse(Local(again), kSecret, kNow);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, first);  // the bounce goes to the first forwarder, who reverses it
  // An SRS1 address forwarded once more keeps the first forwarder.
  std::string thrice = SrsForward(Local(again) + "@fwd2.example", "hato.test", kSecret, kNow);
  EXPECT_NE(thrice.find("=fwd1.example==HhHh="), std::string::npos) << thrice;
  EXPECT_EQ(*SrsReverse(Local(thrice), kSecret, kNow), first);
}

TEST(Srs, SecretIsCreatedOnceWithMode0600) {
  io::FileSystem* fs = io::FileSystem::Default();
  std::string dir = testing::TempDir() + "/srs_secret_test";
  (void)fs->CreateDirs(dir);
  (void)fs->Remove(dir + "/srs.key");
  auto a = LoadOrCreateSrsSecret(*fs, dir);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size(), 64u);
  auto b = LoadOrCreateSrsSecret(*fs, dir);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/srs.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace hato::outbound
