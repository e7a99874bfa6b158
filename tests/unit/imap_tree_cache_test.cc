// TreeCache: hits return the cached tree, the byte bound holds, and the least
// recently used entries go first.
#include <gtest/gtest.h>

#include "imap/server/tree_cache.h"

namespace hato::imap {
namespace {

std::shared_ptr<const mime::Part> Tree(const std::string& subtype) {
  auto p = std::make_shared<mime::Part>();
  p->subtype = subtype;
  return p;
}

TEST(TreeCache, FindReturnsWhatWasInserted) {
  TreeCache cache(1 << 20);
  EXPECT_EQ(cache.Find(7), nullptr);
  cache.Insert(7, Tree("html"), 100);
  auto t = cache.Find(7);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->subtype, "html");
  EXPECT_EQ(cache.entries(), 1u);
}

TEST(TreeCache, StaysWithinItsBoundAndEvictsUnusedEntriesFirst) {
  const size_t bound = 64 * 1024;
  TreeCache cache(bound);
  for (int64_t id = 1; id <= 1000; ++id) {
    cache.Insert(id, Tree("plain"), 1000);
    if (id > 1) {
      ASSERT_NE(cache.Find(1), nullptr) << "entry 1 is used every time: kept";
    }
    ASSERT_LE(cache.bytes(), bound);
  }
  EXPECT_NE(cache.Find(1), nullptr);
  EXPECT_EQ(cache.Find(2), nullptr) << "the oldest unused entry was evicted";
  EXPECT_NE(cache.Find(1000), nullptr);
  EXPECT_LT(cache.entries(), 1000u);
}

TEST(TreeCache, RefusesAnEntryLargerThanTheWholeCache) {
  TreeCache cache(4096);
  cache.Insert(1, Tree("plain"), 1 << 20);
  EXPECT_EQ(cache.Find(1), nullptr);
  EXPECT_EQ(cache.bytes(), 0u);
}

}  // namespace
}  // namespace hato::imap

namespace hato::imap {
namespace {

TEST(TreeCache, InsertReplacesAnEntryForTheSameId) {
  TreeCache cache(1 << 20);
  cache.Insert(7, Tree("plain"), 100);
  size_t one = cache.bytes();
  cache.Insert(7, Tree("html"), 100);
  EXPECT_EQ(cache.Find(7)->subtype, "html");
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(cache.bytes(), one);
}

}  // namespace
}  // namespace hato::imap
