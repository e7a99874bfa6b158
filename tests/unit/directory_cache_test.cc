// The delivery look-ups' cache (store/directory_cache.h): what is served,
// what a change drops, and that a read begun before a change is not kept.
#include "store/directory_cache.h"

#include <gtest/gtest.h>

namespace hato::store {
namespace {

Account Alice(std::optional<uint64_t> quota = std::nullopt) {
  Account a{7, "alice@example.test", "hash", {}, 0, {}};
  a.quota_bytes = quota;
  return a;
}

TEST(DirectoryCacheTest, ServesNothingUntilLive) {
  DirectoryCache c;
  c.PutDomain(c.generation(), "example.test", true);
  EXPECT_FALSE(c.Domain("example.test"));
  c.SetLive(true);
  c.PutDomain(c.generation(), "example.test", true);
  c.PutDomain(c.generation(), "remote.test", false);
  EXPECT_EQ(c.Domain("example.test"), true);
  EXPECT_EQ(c.Domain("remote.test"), false);
  // Not live any more (a lost LISTEN connection): everything goes.
  c.SetLive(false);
  EXPECT_FALSE(c.Domain("example.test"));
  c.SetLive(true);
  EXPECT_FALSE(c.Domain("example.test"));
}

TEST(DirectoryCacheTest, ClearDropsEverythingAndDropScriptsOneAccount) {
  DirectoryCache c;
  c.SetLive(true);
  c.PutRecipient(c.generation(), "alice@example.test", Alice(1000));
  c.PutScripts(c.generation(), 7, "jmap.", {{"s", "keep;", true}});
  c.PutScripts(c.generation(), 8, "jmap.", {});
  ASSERT_TRUE(c.Recipient("alice@example.test"));
  EXPECT_EQ(c.Recipient("alice@example.test")->quota_bytes, 1000u);
  ASSERT_TRUE(c.Scripts(7, "jmap."));
  EXPECT_EQ(c.Scripts(7, "jmap.")->size(), 1u);
  EXPECT_FALSE(c.Scripts(7, "other."));  // another prefix is another read
  c.DropScripts(7);
  EXPECT_FALSE(c.Scripts(7, "jmap."));
  EXPECT_TRUE(c.Scripts(8, "jmap."));
  EXPECT_TRUE(c.Recipient("alice@example.test"));
  c.Clear();
  EXPECT_FALSE(c.Recipient("alice@example.test"));
  EXPECT_FALSE(c.Scripts(8, "jmap."));
}

TEST(DirectoryCacheTest, AReadBegunBeforeAChangeIsNotKept) {
  DirectoryCache c;
  c.SetLive(true);
  uint64_t before = c.generation();                       // a reader reads the old quota ...
  c.Clear();                                              // ... the change commits and is heard ...
  c.PutRecipient(before, "alice@example.test", Alice());  // ... then it would store it
  EXPECT_FALSE(c.Recipient("alice@example.test"));
  uint64_t scripts_before = c.generation();
  c.DropScripts(7);
  c.PutScripts(scripts_before, 7, "jmap.", {});
  EXPECT_FALSE(c.Scripts(7, "jmap."));
}

TEST(DirectoryCacheTest, BoundedPerKind) {
  DirectoryCache c(3);
  c.SetLive(true);
  for (const char* name : {"d0.test", "d1.test", "d2.test"}) {
    c.PutDomain(c.generation(), name, true);
  }
  EXPECT_TRUE(c.Domain("d2.test"));
  c.PutDomain(c.generation(), "d3.test", true);  // past the bound: starts empty again
  EXPECT_FALSE(c.Domain("d0.test"));
  EXPECT_TRUE(c.Domain("d3.test"));
}

}  // namespace
}  // namespace hato::store
