// auth/credential_cache.h: remembered successes, never failures; keyed by
// the stored hash, so a new password or hash never hits an old entry.
#include "auth/credential_cache.h"

#include <gtest/gtest.h>

#include <thread>

#include "auth/password.h"

namespace hato::auth {
namespace {

TEST(CredentialCache, RemembersOnlySuccessForTheSameStoredHash) {
  CredentialCache cache(100, std::chrono::seconds(60));
  auto hash = HashPassword("right");
  ASSERT_TRUE(hash.ok());
  EXPECT_FALSE(cache.Check(*hash, "right"));  // nothing yet
  EXPECT_TRUE(VerifyPasswordCached(&cache, *hash, "right"));
  EXPECT_TRUE(cache.Check(*hash, "right"));
  EXPECT_FALSE(cache.Check(*hash, "wrong"));
  EXPECT_FALSE(VerifyPasswordCached(&cache, *hash, "wrong"));  // slow path, not remembered
  EXPECT_FALSE(cache.Check(*hash, "wrong"));
  // The password changed: a new hash, so the old entry never answers for it.
  auto changed = HashPassword("right");
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(cache.Check(*changed, "right"));
  cache.Clear();
  EXPECT_FALSE(cache.Check(*hash, "right"));
  auto s = cache.GetStats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.entries, 0u);
}

TEST(CredentialCache, BoundedAndExpiring) {
  CredentialCache cache(2, std::chrono::seconds(1));
  cache.Remember("h1", "p");
  cache.Remember("h2", "p");
  cache.Remember("h3", "p");  // evicts the least recently used
  EXPECT_FALSE(cache.Check("h1", "p"));
  EXPECT_TRUE(cache.Check("h3", "p"));
  EXPECT_EQ(cache.GetStats().entries, 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_FALSE(cache.Check("h3", "p"));  // expired
  CredentialCache off(0, std::chrono::seconds(60));
  off.Remember("h", "p");
  EXPECT_FALSE(off.Check("h", "p"));
}

}  // namespace
}  // namespace hato::auth
