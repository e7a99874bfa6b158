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

TEST(SearchTerms, TrigramsOfCodePointsWithinWords) {
  auto t = Trigrams("日本語です", "B");
  std::sort(t.begin(), t.end());
  EXPECT_EQ(t, (std::vector<std::string>{"B日本語", "B本語で", "B語です"}));
  // Trigrams spanning whitespace are left out, in the text and the needle alike.
  auto h = Trigrams("ab cde\r\n\tfghi", "H");
  std::sort(h.begin(), h.end());
  EXPECT_EQ(h, (std::vector<std::string>{"Hcde", "Hfgh", "Hghi"}));
  // Short (packed) and long grams alike, each once.
  auto mixed = Trigrams("abcabc äöüäöü 日本語日本語", "B");
  std::sort(mixed.begin(), mixed.end());
  EXPECT_EQ(mixed, (std::vector<std::string>{"Babc", "Bbca", "Bcab", "Bäöü", "Böüä", "Büäö",
                                             "B日本語", "B本語日", "B語日本"}));
  EXPECT_TRUE(Trigrams("a \r\n b", "H").empty());
  EXPECT_TRUE(Trigrams("ab", "B").empty());
  EXPECT_EQ(Trigrams("aaaaaa", "B").size(), 1u);                  // distinct only
  EXPECT_EQ(Trigrams(std::string("a\xff\xfe"), "B").size(), 1u);  // invalid bytes count as one each
  // A needle cut inside a character: its trigrams with the broken piece
  // would not be the text's (where the piece is part of 日), so they are not looked up.
  EXPECT_EQ(Trigrams("ab\xe6\x97", "B").size(), 2u);
  EXPECT_EQ(NeedleTrigrams("ab\xe6\x97", "B"), (std::vector<std::string>{}));
  EXPECT_EQ(NeedleTrigrams("abc\xe6", "B"), (std::vector<std::string>{"Babc"}));
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
  // Candidates: a superset of the matches, which the store checks exactly.
  EXPECT_EQ(*x.Candidates("会議は", false, all), (std::vector<int64_t>{1}));
  EXPECT_EQ(*x.Candidates("foo bar", false, all), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(*x.Candidates("会議", false, all), all);  // short: every one
  EXPECT_EQ(*x.Candidates("LUNCH", true, all), (std::vector<int64_t>{2}));
  EXPECT_TRUE(x.Candidates("LUNCH", false, all)->empty());
  EXPECT_TRUE(x.Candidates("foo qux", false, all)->empty());
  // The common header words are not header terms: a needle made of them
  // alone takes every header; the rest of a needle still narrows.
  EXPECT_TRUE(IsCommonHeaderGram("sub"));
  EXPECT_FALSE(IsCommonHeaderGram("lun"));
  EXPECT_EQ(*x.Candidates("SUBJECT:", true, all), all);
  EXPECT_EQ(*x.Candidates("subject: lunch", true, all), (std::vector<int64_t>{2}));
  EXPECT_EQ(*x.Candidates("foo", false, {3}), (std::vector<int64_t>{3}));  // only the wanted
  // A body that is gone stops counting at once, and is removed at Flush.
  x.Forget({2}, 3);
  EXPECT_FALSE(x.Contains(2));
  EXPECT_EQ(*x.Candidates("foo bar", false, all), (std::vector<int64_t>{3}));
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

TEST(TextIndex, FieldCutAtTheTermLimitIsAlwaysACandidate) {
  testing::TempDir dir;
  auto index = TextIndex::Open(dir.path() + "/index", 10);
  ASSERT_TRUE(index.ok()) << index.error().message;
  // More distinct trigrams than one field keeps: CJK ideographs in an order
  // that never repeats a triple.
  std::string huge;
  for (size_t i = 0; i < kMaxTermsPerField + 1000; ++i) {
    char32_t cp = 0x4E00 + static_cast<char32_t>((i * 7919) % 20902);
    huge += static_cast<char>(0xE0 | (cp >> 12));
    huge += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    huge += static_cast<char>(0x80 | (cp & 0x3F));
  }
  ASSERT_EQ(Trigrams(huge, "B").size(), kMaxTermsPerField);
  ASSERT_TRUE((*index)->Add({{1, "Subject: big", huge}, {2, "Subject: small", "tiny"}}, 2).ok());
  ASSERT_TRUE((*index)->Commit().ok());
  EXPECT_EQ(*(*index)->Candidates("needle", false, {1, 2}), (std::vector<int64_t>{1}));
  EXPECT_EQ(*(*index)->Candidates("tiny", false, {1, 2}), (std::vector<int64_t>{1, 2}));
}

}  // namespace
}  // namespace hato::search
