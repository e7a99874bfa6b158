// search/terms.h and search/text_index.h: the full-text index's terms and
// the Xapian index itself, without a store.
#include <gtest/gtest.h>

#include <algorithm>

#include "search/terms.h"
#include "search/text_index.h"
#include "test_util.h"

namespace hato::search {
namespace {

TEST(SearchTerms, FoldsCaseOfCommonScriptsAndKeepsInvalidBytes) {
  EXPECT_EQ(Fold("HeLLo ÄÖÜ ΣΑΣ ПРИВЕТ ＡＢＣ 日本"), "hello äöü σασ привет ａｂｃ 日本");
  EXPECT_EQ(Fold(std::string("a\xff\xc3") + "B"), std::string("a\xff\xc3") + "b");
  EXPECT_EQ(CountChars("日本語abc"), 6u);
  EXPECT_EQ(CountChars("\xff\xfe"), 2u);
}

TEST(SearchTerms, TrigramsOfCodePointsWithSquashedSpace) {
  auto t = Trigrams("日本語です", "B");
  std::sort(t.begin(), t.end());
  EXPECT_EQ(t, (std::vector<std::string>{"B日本語", "B本語で", "B語です"}));
  auto s = Trigrams("a \r\n b", "H");
  std::sort(s.begin(), s.end());
  EXPECT_EQ(s, (std::vector<std::string>{"Ha b"}));
  EXPECT_TRUE(Trigrams("ab", "B").empty());
  EXPECT_EQ(Trigrams("aaaaaa", "B").size(), 1u);  // distinct only
  EXPECT_TRUE(MatchesFolded("foo\r\n  bar", "o bar"));
  EXPECT_FALSE(MatchesFolded("foobar", "o bar"));
}

TEST(TextIndex, NarrowsByTrigramsAndChecksExactly) {
  testing::TempDir dir;
  auto index = TextIndex::Open(dir.path() + "/index", 10);
  ASSERT_TRUE(index.ok()) << index.error().message;
  TextIndex& x = **index;
  ASSERT_TRUE(x.Add({{1, "Subject: 会議", "明日の会議は十時からです"},
                     {2, "Subject: lunch", "Foo BAR baz"},
                     {3, "Subject: x", "bar foo"}},
                    3)
                  .ok());
  EXPECT_FALSE(x.Contains(2));  // staged, not committed
  ASSERT_TRUE(x.Commit().ok());
  EXPECT_EQ(x.Watermark(), 3);
  EXPECT_TRUE(x.Contains(2));
  EXPECT_FALSE(x.Contains(4));
  std::vector<int64_t> all{1, 2, 3};
  EXPECT_EQ(*x.Search("会議は", false, all), (std::vector<int64_t>{1}));
  EXPECT_EQ(*x.Search("foo bar", false, all), (std::vector<int64_t>{2}));  // not 3: order
  EXPECT_EQ(*x.Search("会議", false, all), (std::vector<int64_t>{1}));     // short: checked
  EXPECT_EQ(*x.Search("LUNCH", true, all), (std::vector<int64_t>{2}));
  EXPECT_TRUE(x.Search("LUNCH", false, all)->empty());
  EXPECT_EQ(*x.Search("foo", false, {3}), (std::vector<int64_t>{3}));  // only the wanted
  // A body that is gone stops counting at once, and is removed at Flush.
  x.Forget({2}, 3);
  EXPECT_FALSE(x.Contains(2));
  EXPECT_TRUE(x.Search("foo bar", false, all)->empty());
  ASSERT_TRUE(x.Flush().ok());
  index->reset();
  // Reopened knowing the store's highest id is 1: 3 is stale, the watermark drops.
  auto again = TextIndex::Open(dir.path() + "/index", 1);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ((*again)->Watermark(), 1);
  EXPECT_TRUE((*again)->Contains(1));
  EXPECT_FALSE((*again)->Contains(3));
  EXPECT_EQ((*again)->DocCount(), 1u);
  // One writer at a time.
  auto second = TextIndex::Open(dir.path() + "/index", 1);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().kind, ErrorKind::kTemporary);
}

}  // namespace
}  // namespace hato::search
