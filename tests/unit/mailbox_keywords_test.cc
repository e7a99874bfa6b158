// store/mailbox_keywords.h: a keyword limit check reads the whole mailbox's
// keywords only when the change brings a keyword new to the mailbox.
#include "store/mailbox_keywords.h"

#include <gtest/gtest.h>

namespace hato::store {
namespace {

struct Probe {
  std::set<std::string> on_messages;  // what the mailbox's live messages hold
  int probes = 0, scans = 0;
  Result<std::set<std::string>*> Known(std::map<int64_t, MailboxKeywordSet>& cache,
                                       const std::vector<std::string>& wanted) {
    return KnownMailboxKeywords(
        cache, 7, wanted,
        [&](const std::vector<std::string>& keys) -> Result<bool> {
          ++probes;
          for (const auto& k : keys) {
            if (on_messages.count(k) == 0) return false;
          }
          return true;
        },
        [&]() -> Result<std::set<std::string>> {
          ++scans;
          return on_messages;
        });
  }
};

TEST(MailboxKeywords, PresentKeywordsNeedNoScan) {
  Probe p{{"$label1", "$junk", "work"}};
  std::map<int64_t, MailboxKeywordSet> cache;
  auto k = p.Known(cache, {"$Label1", "WORK"});
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(p.scans, 0);
  EXPECT_EQ(p.probes, 1);
  // At the limit already (3 distinct, limit 3): adding present ones passes.
  KeywordLimits lim;
  lim.per_mailbox = 3;
  EXPECT_TRUE(CheckKeywordLimits(lim, {}, {"$Label1", "WORK"}, *k).ok());
  // The same keywords again: answered from the cache, no probe.
  ASSERT_TRUE(p.Known(cache, {"work"}).ok());
  EXPECT_EQ(p.probes, 1);
}

TEST(MailboxKeywords, ANewKeywordLoadsTheWholeSetAndCountsIt) {
  Probe p{{"$label1", "$junk", "work"}};
  std::map<int64_t, MailboxKeywordSet> cache;
  ASSERT_TRUE(p.Known(cache, {"work"}).ok());
  auto k = p.Known(cache, {"work", "fresh"});
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(p.scans, 1);
  EXPECT_EQ((*k)->size(), 3u);
  KeywordLimits lim;
  lim.per_mailbox = 3;
  // "fresh" would be the 4th distinct keyword of the mailbox: refused.
  EXPECT_FALSE(CheckKeywordLimits(lim, {}, {"work", "fresh"}, *k).ok());
  // Complete now: no more probes or scans for this operation.
  ASSERT_TRUE(p.Known(cache, {"other"}).ok());
  EXPECT_EQ(p.scans, 1);
  EXPECT_EQ(p.probes, 2);
}

}  // namespace
}  // namespace hato::store
