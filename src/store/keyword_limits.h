// Keyword limits every store enforces when a flag change sets keywords, an
// APPEND (or MULTIAPPEND, JMAP Email/import) stores a message with keywords,
// or a delivery files a copy with keywords (issue 11 item 8): one STORE of
// many long keywords grew the metadata by tens of MB while the quota did not
// see it, and JMAP Email/set had no limit at all. The protocols check first and answer with their
// own codes (IMAP NO [LIMIT]); this check in the store operation holds for every path (IMAP, JMAP,
// tools), inside the transaction that writes the change. Pure.
#pragma once

#include <algorithm>
#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/strings.h"

namespace hato::store {

// Defaults equal imap.max_keyword_length, max_keywords_per_message and
// max_keywords_per_mailbox; callers pass the configured values.
struct KeywordLimits {
  size_t max_length = 256;    // bytes per keyword
  size_t per_message = 64;    // keywords on one message
  size_t per_mailbox = 1000;  // distinct keywords in one mailbox
};

// Keywords compare case-insensitively (RFC 3501 section 2.3.2); the set
// holds them lower-cased.
inline std::string KeywordKey(const std::string& k) { return AsciiLower(k); }

// Whether a message may go from keywords `before` to `after`. `mailbox`: the
// distinct keywords (KeywordKey) of the message's mailbox, loaded by the
// caller when `after` has a keyword `before` lacks (NeedsMailboxKeywords);
// the keywords this change adds are inserted, so that the next message of
// the same operation counts them. A message already past a limit may still
// lose keywords. kTooLarge names the limit.
inline bool NeedsMailboxKeywords(const std::vector<std::string>& before,
                                 const std::vector<std::string>& after) {
  for (const auto& k : after) {
    if (std::none_of(before.begin(), before.end(),
                     [&](const std::string& b) { return EqualsIgnoreCase(b, k); })) {
      return true;
    }
  }
  return false;
}

inline Status CheckKeywordLimits(const KeywordLimits& lim, const std::vector<std::string>& before,
                                 const std::vector<std::string>& after,
                                 std::set<std::string>* mailbox) {
  std::vector<std::string> added;
  for (const auto& k : after) {
    bool had = std::any_of(before.begin(), before.end(),
                           [&](const std::string& b) { return EqualsIgnoreCase(b, k); });
    if (had) continue;
    if (k.size() > lim.max_length) {
      return Err(ErrorKind::kTooLarge,
                 "keywords are limited to " + std::to_string(lim.max_length) + " bytes");
    }
    added.push_back(KeywordKey(k));
  }
  if (added.empty()) return Ok();
  if (after.size() > lim.per_message) {
    return Err(ErrorKind::kTooLarge,
               "at most " + std::to_string(lim.per_message) + " keywords per message");
  }
  if (mailbox == nullptr) return Ok();
  size_t fresh = 0;
  for (const auto& k : added) fresh += mailbox->count(k) == 0;
  if (fresh > 0 && mailbox->size() + fresh > lim.per_mailbox) {
    return Err(ErrorKind::kTooLarge,
               "at most " + std::to_string(lim.per_mailbox) + " distinct keywords per mailbox");
  }
  mailbox->insert(added.begin(), added.end());
  return Ok();
}

// The keywords a delivered copy keeps (a Sieve addflag/setflag, RFC 5232):
// mail is never refused over a flag, so keywords past a limit are dropped
// instead: longer than max_length, past per_message on the copy, or new to a
// mailbox that already has per_mailbox distinct ones (`mailbox` as for
// CheckKeywordLimits; the kept ones are inserted). Duplicates (in any case)
// keep their first spelling.
inline std::vector<std::string> FitKeywords(const KeywordLimits& lim,
                                            const std::vector<std::string>& wanted,
                                            std::set<std::string>* mailbox) {
  std::vector<std::string> kept;
  for (const auto& k : wanted) {
    if (kept.size() >= lim.per_message) break;
    if (k.empty() || k.size() > lim.max_length) continue;
    if (std::any_of(kept.begin(), kept.end(),
                    [&](const std::string& b) { return EqualsIgnoreCase(b, k); })) {
      continue;
    }
    if (mailbox != nullptr) {
      std::string key = KeywordKey(k);
      if (mailbox->count(key) == 0) {
        if (mailbox->size() >= lim.per_mailbox) continue;
        mailbox->insert(std::move(key));
      }
    }
    kept.push_back(k);
  }
  return kept;
}

}  // namespace hato::store
