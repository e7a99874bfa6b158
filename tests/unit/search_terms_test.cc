// search/terms.h and search/text_index.h: the full-text index's terms and
// the Xapian index itself, without a store.
#include <gtest/gtest.h>
#include <xapian.h>

#include <algorithm>
#include <random>

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

// What the index's phrase query does (Xapian's exact phrase): the terms at
// consecutive positions somewhere in the field.
bool PhraseStands(const TrigramPostings& field, const std::vector<std::string>& phrase) {
  auto positions = [&](const std::string& term) -> std::vector<uint32_t> {
    for (size_t i = 0; i < field.grams.size(); ++i) {
      if (field.grams[i] == term) {
        return {field.PositionsOf(i).begin(), field.PositionsOf(i).end()};
      }
    }
    return {};
  };
  for (uint32_t start : positions(phrase[0])) {
    bool all = true;
    for (size_t i = 1; i < phrase.size() && all; ++i) {
      auto at = positions(phrase[i]);
      all = std::binary_search(at.begin(), at.end(), start + static_cast<uint32_t>(i));
    }
    if (all) return true;
  }
  return false;
}

TEST(SearchTerms, PositionsProveExactlyWhatTheCheckFinds) {
  auto p = Postings("ab  abcd\r\nxyz");
  // Runs: "ab" (no trigram: takes position 1), "abcd" (2, 3; its end, before
  // an "x", at 4), "xyz" (5; end of the text at 6).
  EXPECT_EQ(p.grams, (std::vector<std::string>{"\n", "\nx", "abc", "bcd", "xyz"}));
  EXPECT_EQ(p.positions, (std::vector<uint32_t>{6, 4, 2, 3, 5}));
  auto twice = Postings("abc abc");
  EXPECT_EQ(twice.grams, (std::vector<std::string>{"\n", "\na", "abc"}));
  EXPECT_EQ(twice.positions, (std::vector<uint32_t>{4, 2, 1, 3}));
  EXPECT_EQ(twice.starts, (std::vector<uint32_t>{0, 1, 2, 4}));
  EXPECT_EQ(PhraseTerms("bcd xy", "B"), std::vector<std::string>{});  // "xy": too short
  EXPECT_EQ(PhraseTerms("ab abcd", "B"), std::vector<std::string>{});
  EXPECT_EQ(PhraseTerms("abcd ab xyz", "B"), std::vector<std::string>{});
  EXPECT_EQ(PhraseTerms("bcd xyz", "B"), (std::vector<std::string>{"Bbcd", "B\nx", "Bxyz"}));
  EXPECT_TRUE(PhraseTerms(" xyz", "B").empty());
  EXPECT_TRUE(PhraseTerms("xyz ", "B").empty());
  EXPECT_TRUE(PhraseTerms("ab\xe6\x97", "B").empty());
  // Every needle that can be proven stands in the positions exactly when the
  // check finds it: texts and needles of a small alphabet, so that both happen.
  std::mt19937 random(17);
  const std::vector<std::string> alphabet{"a", "b", " ", "\r\n", "日", "\xff", "\xe6"};
  auto draw = [&](size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += alphabet[random() % alphabet.size()];
    return out;
  };
  int proven = 0, found = 0;
  for (int round = 0; round < 100000; ++round) {
    std::string text = draw(random() % 40);
    std::string needle = draw(3 + random() % 7);
    if (round % 2 && text.size() > 3) {  // often one that is there
      size_t from = random() % (text.size() - 3);
      needle = text.substr(from, 3 + random() % (text.size() - from - 2));
    }
    auto phrase = PhraseTerms(needle, "");
    if (phrase.empty()) continue;
    ++proven;
    bool matches = MatchesFolded(text, needle);
    found += matches;
    ASSERT_EQ(PhraseStands(Postings(text), phrase), matches)
        << "text [" << text << "] needle [" << needle << "]";
  }
  EXPECT_GT(proven, 1000);
  EXPECT_GT(found, 300);
}

// The word terms' proof (search::Words, search::WordPrefix): a document with
// a word term that starts with the needle's word prefix holds the needle.
// It proves only (documents without one go to the phrase), so it must never
// claim a match the check does not find, and on random text it proves most
// needles that start a word.
TEST(SearchTerms, WordTermsProveOnlyWhatTheCheckFinds) {
  EXPECT_EQ(Words("ab abcd\r\nabcd. x日本語です abcd, <ab@cd> abc.def"),
            (std::vector<std::string>{"abcd", "x日本語です"}));
  EXPECT_EQ(Words(std::string(100, 'a')),
            (std::vector<std::string>{std::string(kMaxWordBytes, 'a')}));
  EXPECT_EQ(WordPrefix("invoice"), "invoice");
  EXPECT_EQ(WordPrefix("日本語で"), "日本語で");
  EXPECT_EQ(WordPrefix("abc"), "");  // a single trigram proves it alone
  EXPECT_EQ(WordPrefix("ab cd"), "");
  EXPECT_EQ(WordPrefix("abcd."), "");  // no word term holds the dot
  EXPECT_EQ(WordPrefix(std::string(kMaxWordBytes + 1, 'a')), "");
  std::mt19937 random(17);
  const std::vector<std::string> alphabet{"a", "b", " ", "\r\n", "日", "\xff", "\xe6", "."};
  auto draw = [&](size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += alphabet[random() % alphabet.size()];
    return out;
  };
  int proven = 0;
  for (int round = 0; round < 100000; ++round) {
    std::string text = draw(random() % 60);
    std::string needle = draw(1 + random() % 9);
    if (round % 2 && text.size() > 4) {  // often one that is there
      size_t from = random() % (text.size() - 4);
      needle = text.substr(from, 1 + random() % (text.size() - from - 1));
    }
    std::string word = WordPrefix(needle);
    if (word.empty()) continue;
    bool by_word = false;
    for (const auto& w : Words(text)) by_word = by_word || w.compare(0, word.size(), word) == 0;
    if (!by_word) continue;
    ++proven;
    ASSERT_TRUE(MatchesFolded(text, needle)) << "text [" << text << "] needle [" << needle << "]";
  }
  EXPECT_GT(proven, 300);
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
  using Ids = std::vector<int64_t>;
  // Needles of runs of three or more characters are proven by the positions.
  auto hits = *x.Lookup("会議は", false, all);
  EXPECT_EQ(hits.matches, Ids{1});
  EXPECT_TRUE(hits.candidates.empty());
  EXPECT_EQ(x.Lookup("foo bar", false, all)->matches, Ids{2});  // not 3 ("bar foo")
  EXPECT_TRUE(x.Lookup("foo bar", false, all)->candidates.empty());
  EXPECT_TRUE(x.Lookup("oo ba", false, all)->matches.empty());  // "oo": too short to prove
  EXPECT_EQ(x.Lookup("oo ba", false, all)->candidates, all);    // and "ba" to narrow
  EXPECT_EQ(x.Lookup("会議", false, all)->candidates, all);     // short: every one
  EXPECT_EQ(x.Lookup("LUNCH", true, all)->matches, Ids{2});
  EXPECT_TRUE(x.Lookup("LUNCH", false, all)->matches.empty());
  EXPECT_TRUE(x.Lookup("LUNCH", false, all)->candidates.empty());
  EXPECT_TRUE(x.Lookup("foo qux", false, all)->matches.empty());
  EXPECT_TRUE(x.Lookup("foo qux", false, all)->candidates.empty());
  // The common header words are not header terms: a needle made of them
  // alone takes every header; the rest of a needle still narrows.
  EXPECT_TRUE(IsCommonHeaderGram("sub"));
  EXPECT_FALSE(IsCommonHeaderGram("lun"));
  EXPECT_EQ(x.Lookup("SUBJECT:", true, all)->candidates, all);
  EXPECT_EQ(x.Lookup("subject: lunch", true, all)->candidates, Ids{2});
  EXPECT_EQ(x.Lookup("foo", false, {3})->matches, Ids{3});  // only the wanted
  // A needle that starts a word is proven by the word terms; one inside a
  // word by its phrase: either way the same matches.
  ASSERT_TRUE(x.Add({{4, "", "invoices sent"}, {5, "", "reinvoice"}, {6, "", "invo ice"}}, 6).ok());
  ASSERT_TRUE(x.Commit().ok());
  Ids more{1, 2, 3, 4, 5, 6};
  EXPECT_EQ(x.Lookup("INVOICE", false, more)->matches, (Ids{4, 5}));
  EXPECT_TRUE(x.Lookup("INVOICE", false, more)->candidates.empty());
  EXPECT_EQ(x.Lookup("voice", false, more)->matches, (Ids{4, 5}));
  EXPECT_EQ(x.Lookup("invoices sent", false, more)->matches, Ids{4});
  // A body that is gone stops counting at once, and is removed at Flush.
  x.Forget({2}, 3);
  EXPECT_FALSE(x.Contains(2));
  EXPECT_TRUE(x.Lookup("foo bar", false, all)->matches.empty());
  EXPECT_EQ(x.Lookup("bar", false, all)->matches, Ids{3});
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
  // Its positions still prove what they hold; its absence proves nothing.
  auto needle = *(*index)->Lookup("needle", false, {1, 2});
  EXPECT_TRUE(needle.matches.empty());
  EXPECT_EQ(needle.candidates, (std::vector<int64_t>{1}));
  auto tiny = *(*index)->Lookup("tiny", false, {1, 2});
  EXPECT_EQ(tiny.matches, (std::vector<int64_t>{2}));
  EXPECT_EQ(tiny.candidates, (std::vector<int64_t>{1}));
}

TEST(TextIndex, FewHitsAreFoundWithoutTheWantedListAndHolesAreKept) {
  testing::TempDir dir;
  auto index = TextIndex::Open(dir.path() + "/index", 10);
  ASSERT_TRUE(index.ok()) << index.error().message;
  TextIndex& x = **index;
  using Ids = std::vector<int64_t>;
  ASSERT_TRUE(x.Add({{1, "", "apple pie"}, {2, "", "apple tart"}, {4, "", "pear"}}, 4).ok());
  x.Skip({3});  // read, unreadable: stays unindexed
  ASSERT_TRUE(x.Commit().ok());
  EXPECT_EQ(x.Covered().watermark, 4);
  EXPECT_EQ(x.Covered().holes, Ids{3});
  EXPECT_FALSE(x.Contains(3));
  auto few = x.LookupFew("apple", false, 2);
  ASSERT_TRUE(few.ok() && few->has_value());
  EXPECT_EQ((*few)->matches, (Ids{1, 2}));
  EXPECT_FALSE(x.LookupFew("apple", false, 1)->has_value());  // more than the limit
  EXPECT_TRUE((*x.LookupFew("plum", false, 1))->matches.empty());
  EXPECT_FALSE(x.LookupFew("pi", false, 10)->has_value());  // narrows nothing
  auto oo = x.LookupFew("ea", false, 10);                   // no trigram: every one
  EXPECT_FALSE(oo->has_value());
  index->reset();
  auto again = TextIndex::Open(dir.path() + "/index", 10);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ((*again)->Covered().holes, Ids{3});  // committed with the watermark
  (*again)->Forget({3}, 10);                     // destroyed: no hole any more
  EXPECT_TRUE((*again)->Covered().holes.empty());
  ASSERT_TRUE((*again)->Commit().ok());
  EXPECT_TRUE((*again)->Covered().holes.empty());
}

TEST(TextIndex, IndexOfAnOlderFormatIsBuiltAgain) {
  testing::TempDir dir;
  {
    // As an older Hato left it: terms without positions, no "format".
    Xapian::WritableDatabase old(dir.path() + "/index", Xapian::DB_CREATE_OR_OPEN);
    Xapian::Document doc;
    doc.add_boolean_term("Bfoo");
    old.replace_document(1, doc);
    old.set_metadata("watermark", "1");
    old.commit();
  }
  auto index = TextIndex::Open(dir.path() + "/index", 10);
  ASSERT_TRUE(index.ok()) << index.error().message;
  EXPECT_EQ((*index)->Watermark(), 0);  // the indexer reads every body again
  EXPECT_FALSE((*index)->Contains(1));  // meanwhile it is scanned
  ASSERT_TRUE((*index)->Add({{1, "", "foo"}}, 1).ok());
  ASSERT_TRUE((*index)->Commit().ok());
  EXPECT_EQ((*index)->Lookup("foo", false, {1})->matches, (std::vector<int64_t>{1}));
  index->reset();
  auto again = TextIndex::Open(dir.path() + "/index", 10);  // now of this format: kept
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ((*again)->Watermark(), 1);
  EXPECT_TRUE((*again)->Contains(1));
}

}  // namespace
}  // namespace hato::search
