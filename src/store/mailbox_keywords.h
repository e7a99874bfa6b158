// The distinct keywords of a mailbox, loaded only as far as a keyword limit
// check needs them (issue 11 item 8, store/keyword_limits.h). Reading every
// live message's keywords costs a scan of the mailbox, and it was done on
// every delivery a Sieve addflag touched, every APPEND and STORE adding a
// keyword: the cost grew with the mailbox. But a change whose keywords are
// all on some live message already adds nothing new to the mailbox, whatever
// the others are: one probe per keyword answers that. Only a keyword new to
// the mailbox needs the whole set. Shared by both stores; the probes are
// theirs.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "store/keyword_limits.h"

namespace hato::store {

struct MailboxKeywordSet {
  std::set<std::string> keys;  // KeywordKey of each
  bool complete = false;       // every live message's; else only keys known to be present
};

// The set for `mailbox` in `cache` (one per write operation), good for a
// check of a change adding `wanted` (keywords in any case): complete, or
// holding every one of `wanted`. `present(keys)`: whether each key is on
// some live message of the mailbox; `all()`: the complete set.
template <class PresentFn, class AllFn>
Result<std::set<std::string>*> KnownMailboxKeywords(std::map<int64_t, MailboxKeywordSet>& cache,
                                                    int64_t mailbox,
                                                    const std::vector<std::string>& wanted,
                                                    PresentFn present, AllFn all) {
  MailboxKeywordSet& entry = cache[mailbox];
  if (entry.complete) return &entry.keys;
  std::vector<std::string> missing;
  for (const auto& k : wanted) {
    std::string key = KeywordKey(k);
    if (entry.keys.count(key) == 0) missing.push_back(std::move(key));
  }
  if (missing.empty()) return &entry.keys;
  Result<bool> there = present(missing);
  if (!there) return there.error();
  if (*there) {
    entry.keys.insert(missing.begin(), missing.end());
    return &entry.keys;
  }
  Result<std::set<std::string>> full = all();
  if (!full) return full.error();
  entry.keys = std::move(*full);
  entry.complete = true;
  return &entry.keys;
}

}  // namespace hato::store
