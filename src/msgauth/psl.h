// The Public Suffix List (https://publicsuffix.org/list/): which suffixes
// are open for registration, so that DMARC can find the organizational
// domain (RFC 7489 section 3.2) of any name, private suffixes such as
// github.io included. Debian's `publicsuffix` package ships the list at
// kDebianPublicSuffixList; without it msgauth falls back to its small
// built-in table (dmarc.h).
//
// Rules (the list's format): one per line; "//" comments; "*.ck" matches any
// one label under ck; "!www.ck" is an exception (www.ck is registrable). The
// matching rule with the most labels wins, exceptions first; no match means
// the top-level label alone ("*"). Pure: text in, answers out; fuzzed by
// fuzz/fuzz_psl.cc.
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>

#include "base/result.h"

namespace hato::msgauth {

inline constexpr const char* kDebianPublicSuffixList =
    "/usr/share/publicsuffix/public_suffix_list.dat";

class PublicSuffixList {
 public:
  // kInvalid when no rule is found (an empty or wrong file).
  static Result<PublicSuffixList> Parse(std::string_view text);

  // The public suffix of a lower-cased domain without a trailing dot.
  std::string PublicSuffix(std::string_view domain) const;
  // The public suffix plus one label; the domain itself when it is a public
  // suffix (section 3.2 step 3-4).
  std::string OrganizationalDomain(std::string_view domain) const;
  size_t size() const { return rules_.size() + wildcards_.size() + exceptions_.size(); }

 private:
  std::unordered_set<std::string> rules_;       // "co.uk"
  std::unordered_set<std::string> wildcards_;   // "ck" for "*.ck"
  std::unordered_set<std::string> exceptions_;  // "www.ck" for "!www.ck"
};

}  // namespace hato::msgauth
