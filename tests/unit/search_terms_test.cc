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

TEST(SearchTerms, TokensOfWordsCjkPunctuationAndSpace) {
  auto kinds = [](std::string_view text) {
    std::string out;
    for (const Token& t : Tokens(text)) {
      out += "wcps"[static_cast<int>(t.kind)];
      out += '[';
      out += t.text;
      out += ']';
    }
    return out;
  };
  EXPECT_EQ(kinds("user@example.com, 保守作業\r\n ok"),
            "w[user]p[@]w[example]p[.]w[com]p[,]s[ ]c[保]c[守]c[作]c[業]s[\r\n ]w[ok]");
  // Non-ASCII letters and invalid bytes are parts of words; U+2013 is punctuation.
  EXPECT_EQ(kinds("grüße\xff–привет"), "w[grüße\xff]p[–]w[привет]");
  EXPECT_EQ(kinds(""), "");
  EXPECT_TRUE(HasInvalidUtf8("ab\xe6\x97"));
  EXPECT_FALSE(HasInvalidUtf8("ab日"));
}

TEST(TextIndex, WordsAndPhrasesProveAndChecksAreExact) {
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
  auto proven = [&](std::string_view needle, bool header, const Ids& ids) {
    auto hits = x.Lookup(needle, header, ids);
    EXPECT_TRUE(hits.ok());
    EXPECT_TRUE(hits->candidates.empty()) << needle;
    return hits->matches;
  };
  // CJK characters each at a position: a phrase, of any length.
  EXPECT_EQ(proven("会議は", false, all), Ids{1});
  EXPECT_EQ(proven("会議", false, all), Ids{1});
  EXPECT_EQ(proven("議", false, all), Ids{1});
  EXPECT_EQ(proven("会議 は", false, all), Ids{});
  EXPECT_EQ(proven("foo bar", false, all), Ids{2});  // not 3 ("bar foo")
  // Across words: the first piece ends a word, the last starts one.
  EXPECT_EQ(proven("oo ba", false, all), Ids{2});
  EXPECT_EQ(proven("o b", false, all), Ids{2});
  EXPECT_EQ(proven("r f", false, all), Ids{3});
  EXPECT_EQ(proven("fo bar", false, all), Ids{});
  EXPECT_EQ(proven("oo  \r\n BA", false, all), Ids{2});  // whitespace runs as one space
  // Inside a word: the vocabulary's words that hold it.
  EXPECT_EQ(proven("a", false, all), (Ids{2, 3}));
  EXPECT_EQ(proven("AZ", false, all), Ids{2});
  EXPECT_EQ(proven("LUNCH", true, all), Ids{2});
  EXPECT_EQ(proven("LUNCH", false, all), Ids{});
  EXPECT_EQ(proven("foo qux", false, all), Ids{});
  // Punctuation and header words.
  EXPECT_EQ(proven("SUBJECT:", true, all), all);
  EXPECT_EQ(proven("ject: lun", true, all), Ids{2});
  EXPECT_EQ(proven("subject:lunch", true, all), Ids{});
  EXPECT_EQ(proven("foo", false, {3}), Ids{3});  // only the wanted
  ASSERT_TRUE(x.Add({{4, "", "invoices sent"},
                     {5, "", "reinvoice"},
                     {6, "", "invo ice"},
                     {7, "", "mail user@example.com, or User@Example.org."}},
                    7)
                  .ok());
  ASSERT_TRUE(x.Commit().ok());
  Ids more{1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(proven("INVOICE", false, more), (Ids{4, 5}));
  EXPECT_EQ(proven("voice", false, more), (Ids{4, 5}));
  EXPECT_EQ(proven("invoices sent", false, more), Ids{4});
  EXPECT_EQ(proven("o i", false, more), Ids{6});
  EXPECT_EQ(proven("ser@example.co", false, more), Ids{7});
  EXPECT_EQ(proven("@example.", false, more), Ids{7});
  EXPECT_EQ(proven(".com, or", false, more), Ids{7});
  EXPECT_EQ(proven(".com,or", false, more), Ids{});
  EXPECT_EQ(proven("org.", false, more), Ids{7});
  EXPECT_EQ(proven("user@example.net", false, more), Ids{});
  // Whitespace at an end of the needle, or a needle cut inside a character:
  // candidates, checked by the caller.
  auto edge = *x.Lookup(" sent", false, more);
  EXPECT_TRUE(edge.matches.empty());
  EXPECT_EQ(edge.candidates, Ids{4});
  EXPECT_EQ(x.Lookup(std::string("\xe8\xad"), false, more)->candidates, more);
  EXPECT_EQ(x.Lookup("  ", false, more)->candidates, more);
  // A body that is gone stops counting at once, and is removed at Flush.
  x.Forget({2}, 7);
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
  // The vocabulary is read again at Open: a needle inside a word still proven.
  EXPECT_EQ((*again)->Lookup("UBJEC", true, all)->matches, Ids{1});
  EXPECT_TRUE((*again)->Lookup("UBJEC", true, all)->candidates.empty());
  // One writer at a time.
  auto second = TextIndex::Open(dir.path() + "/index", 1);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().kind, ErrorKind::kTemporary);
}

// The oracle: over random texts of a small alphabet (words, CJK, punctuation,
// whitespace, capitals, invalid bytes), every lookup's matches hold the
// needle by search::MatchesFolded and every body that holds it is a match or
// a candidate; and every needle of valid UTF-8 without whitespace at its
// ends is proven without a candidate.
TEST(TextIndex, LookupsAgreeWithTheCheckOnRandomText) {
  testing::TempDir dir;
  auto index = TextIndex::Open(dir.path() + "/index", 1000);
  ASSERT_TRUE(index.ok()) << index.error().message;
  TextIndex& x = **index;
  std::mt19937 random(4);
  const std::vector<std::string> alphabet{"a",  "b", "ab", "A",    " ", "\r\n", "日",
                                          "本", ".", "@",  "\xff", "é", "É",    "–"};
  auto draw = [&](size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += alphabet[random() % alphabet.size()];
    return out;
  };
  constexpr int kDocs = 300;
  std::vector<std::string> bodies, headers;
  std::vector<IndexDoc> docs;
  std::vector<int64_t> ids;
  for (int i = 1; i <= kDocs; ++i) {
    docs.push_back({i, draw(random() % 12), draw(random() % 40)});
    headers.push_back(Fold(docs.back().header));
    bodies.push_back(Fold(docs.back().body));
    ids.push_back(i);
  }
  ASSERT_TRUE(x.Add(docs, kDocs).ok());
  ASSERT_TRUE(x.Commit().ok());
  int needles = 0, exact = 0, found = 0;
  for (int round = 0; round < 1500; ++round) {
    std::string needle = draw(1 + random() % 6);
    const std::string& from = docs[random() % kDocs].body;
    if (round % 2 && from.size() > 2) {  // often one that is there
      size_t at = random() % (from.size() - 1);
      needle = from.substr(at, 1 + random() % std::min<size_t>(12, from.size() - at));
    }
    bool with_header = round % 3 == 0;
    auto hits = x.Lookup(needle, with_header, ids);
    ASSERT_TRUE(hits.ok()) << hits.error().message;
    std::string folded = Fold(needle);
    std::string squashed = SquashSpace(folded);
    // Provable: valid UTF-8, no whitespace at either end.
    bool provable = !HasInvalidUtf8(squashed) && squashed.front() != ' ' && squashed.back() != ' ';
    needles += provable;
    exact += provable && hits->candidates.empty();
    for (int i = 1; i <= kDocs; ++i) {
      bool holds = MatchesFolded(bodies[i - 1], folded) ||
                   (with_header && MatchesFolded(headers[i - 1], folded));
      found += holds;
      bool matched = std::binary_search(hits->matches.begin(), hits->matches.end(), i);
      bool candidate = std::binary_search(hits->candidates.begin(), hits->candidates.end(), i);
      ASSERT_FALSE(matched && !holds) << "body [" << bodies[i - 1] << "] needle [" << needle << "]";
      ASSERT_TRUE(!holds || matched || candidate)
          << "body [" << bodies[i - 1] << "] header [" << headers[i - 1] << "] needle [" << needle
          << "] with header " << with_header;
    }
  }
  EXPECT_GT(found, 10000);
  EXPECT_GT(needles, 500);
  EXPECT_EQ(exact, needles);  // all of those proven by the index alone
}

TEST(TextIndex, FieldWithAWordTooLongForATermIsAlwaysACandidate) {
  testing::TempDir dir;
  auto index = TextIndex::Open(dir.path() + "/index", 10);
  ASSERT_TRUE(index.ok()) << index.error().message;
  std::string huge = "start " + std::string(kMaxWordTermBytes + 1, 'q') + "needle end";
  ASSERT_TRUE((*index)->Add({{1, "Subject: big", huge}, {2, "Subject: small", "tiny"}}, 2).ok());
  ASSERT_TRUE((*index)->Commit().ok());
  // Its terms still prove what they hold; their absence proves nothing.
  auto needle = *(*index)->Lookup("needle", false, {1, 2});
  EXPECT_TRUE(needle.matches.empty());
  EXPECT_EQ(needle.candidates, (std::vector<int64_t>{1}));
  auto start = *(*index)->Lookup("start", false, {1, 2});
  EXPECT_EQ(start.matches, (std::vector<int64_t>{1}));
  EXPECT_TRUE(start.candidates.empty());
  // A needle with a word too long for a term: only the overflowed field.
  std::string across = "start " + std::string(kMaxWordTermBytes + 1, 'q') + "needle";
  auto long_word = *(*index)->Lookup(across, false, {1, 2});
  EXPECT_TRUE(long_word.matches.empty());
  EXPECT_EQ(long_word.candidates, (std::vector<int64_t>{1}));
  auto middle = *(*index)->Lookup("t " + std::string(300, 'q') + " e", false, {1, 2});
  EXPECT_TRUE(middle.matches.empty());
  EXPECT_EQ(middle.candidates, (std::vector<int64_t>{1}));
  auto tiny = *(*index)->Lookup("tiny", false, {1, 2});
  EXPECT_EQ(tiny.matches, (std::vector<int64_t>{2}));
  EXPECT_EQ(tiny.candidates, (std::vector<int64_t>{1}));
}

// Past kMaxVocabularyWords words the needles inside a word walk the term
// list instead: the same answers, before and after a restart.
TEST(TextIndex, VocabularyTooLargeForMemoryWalksTheTermList) {
  testing::TempDir dir;
  using Ids = std::vector<int64_t>;
  constexpr size_t kPerDoc = 100000;
  size_t docs = kMaxVocabularyWords / kPerDoc + 1;
  {
    auto index = TextIndex::Open(dir.path() + "/index", 100);
    ASSERT_TRUE(index.ok()) << index.error().message;
    for (size_t d = 0; d < docs; ++d) {
      std::string body;
      for (size_t i = d * kPerDoc; i < (d + 1) * kPerDoc; ++i)
        body.append("w").append(std::to_string(i)).append(" ");
      ASSERT_TRUE((*index)->Add({{static_cast<int64_t>(d + 1), "", body}}, d + 1).ok());
    }
    ASSERT_TRUE((*index)->Commit().ok());
    Ids all;
    for (size_t d = 1; d <= docs; ++d) all.push_back(static_cast<int64_t>(d));
    auto check = [&](TextIndex& x) {
      EXPECT_EQ(x.Lookup("W5999", false, all)->matches, (Ids{1, static_cast<int64_t>(docs)}));
      EXPECT_TRUE(x.Lookup("W5999", false, all)->candidates.empty());
      EXPECT_EQ(x.Lookup("23 w124", false, all)->matches, (Ids{1, 2}));
      EXPECT_TRUE(x.Lookup("23 w125", false, all)->matches.size() == 2);
      EXPECT_TRUE(x.Lookup("qq", false, all)->matches.empty());
    };
    check(**index);
    index->reset();
    auto again = TextIndex::Open(dir.path() + "/index", 100);
    ASSERT_TRUE(again.ok()) << again.error().message;
    check(**again);
  }
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
  EXPECT_EQ((*x.LookupFew("ea", false, 10))->matches, Ids{4});  // inside a word
  EXPECT_FALSE(x.LookupFew(" ", false, 10)->has_value());       // narrows nothing
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
    // As an older Hato left it: format 3 (word terms after a tab, trigrams).
    Xapian::WritableDatabase old(dir.path() + "/index", Xapian::DB_CREATE_OR_OPEN);
    Xapian::Document doc;
    doc.add_boolean_term("B\tfoo");
    old.replace_document(1, doc);
    old.set_metadata("format", "3");
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
