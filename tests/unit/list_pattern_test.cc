// LIST/LSUB pattern matching (src/imap/proto/list_pattern.h): RFC 3501
// section 6.3.8 semantics, wildcard-run collapsing, the length limit, and
// linear time on the patterns that used to take a minute (issue 11, item 1).
#include "imap/proto/list_pattern.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace hato::imap {
namespace {

bool M(std::string_view pattern, std::string_view name) {
  auto p = ListPattern::Compile(pattern, '/');
  EXPECT_TRUE(p.ok());
  bool fast = p->Matches(name);
  EXPECT_EQ(fast, ListPatternMatchesSlow(pattern, name, '/')) << pattern << " vs " << name;
  return fast;
}

TEST(ListPattern, Rfc3501Semantics) {
  EXPECT_TRUE(M("*", "INBOX"));
  EXPECT_TRUE(M("*", ""));
  EXPECT_TRUE(M("*", "a/b/c"));
  EXPECT_TRUE(M("%", "Archive"));
  EXPECT_FALSE(M("%", "Archive/2024"));
  EXPECT_TRUE(M("%/%", "Archive/2024"));
  EXPECT_TRUE(M("Archive/*", "Archive/2024/01"));
  EXPECT_FALSE(M("Archive/%", "Archive/2024/01"));
  EXPECT_TRUE(M("Arch%e", "Archive"));
  EXPECT_FALSE(M("Arch%e", "Arch/e"));
  EXPECT_TRUE(M("Arch*e", "Arch/e"));
  EXPECT_TRUE(M("INBOX", "INBOX"));
  EXPECT_FALSE(M("INBOX", "INBOXES"));
  EXPECT_FALSE(M("", "x"));
  EXPECT_TRUE(M("", ""));
  EXPECT_TRUE(M("a*b*c", "aXbYc"));
  EXPECT_FALSE(M("a*b*c", "aXbY"));
  EXPECT_TRUE(M("%b%", "abc"));
  EXPECT_TRUE(M("*%", "x/y"));
  EXPECT_TRUE(M("%*", "x/y"));
  EXPECT_FALSE(M("%%", "x/y"));
}

TEST(ListPattern, CollapsesWildcardRuns) {
  EXPECT_EQ(ListPattern::Collapse("a**b"), "a*b");
  EXPECT_EQ(ListPattern::Collapse("a%%%b"), "a%b");
  EXPECT_EQ(ListPattern::Collapse("a%*%b"), "a*b");
  EXPECT_EQ(ListPattern::Collapse("%*"), "*");
  EXPECT_EQ(ListPattern::Collapse("abc"), "abc");
  EXPECT_EQ(ListPattern::Collapse(std::string(60, '*') + "y"), "*y");
}

TEST(ListPattern, LengthIsBounded) {
  EXPECT_TRUE(ListPattern::Compile(std::string(kMaxListPatternBytes, 'a'), '/').ok());
  auto too_long = ListPattern::Compile(std::string(kMaxListPatternBytes + 1, 'a'), '/');
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().kind, ErrorKind::kInvalid);
}

TEST(ListPattern, PathologicalPatternsAreFast) {
  // "<60 x *>y", alternating wildcards and literals of the maximum length,
  // against long names that almost match: each used to backtrack
  // exponentially. A thousand matches must take well under a second.
  std::string alternating;
  while (alternating.size() + 3 <= kMaxListPatternBytes) alternating += "%a";
  std::string starred;
  while (starred.size() + 3 <= kMaxListPatternBytes) starred += "*a";
  const std::string patterns[] = {std::string(60, '*') + "y", std::string(600, '%') + "y",
                                  alternating + "y", starred + "y"};
  const std::string name(1000, 'a');
  auto start = std::chrono::steady_clock::now();
  for (const auto& pattern : patterns) {
    auto p = ListPattern::Compile(pattern, '/');
    ASSERT_TRUE(p.ok());
    for (int i = 0; i < 250; ++i) EXPECT_FALSE(p->Matches(name));
  }
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(2));
}

TEST(ListPattern, AgreesWithReferenceOnSmallInputs) {
  // Every pattern over {a, /, *, %} of length <= 5 against every name over
  // {a, b, /} of length <= 4.
  const std::string pat_alpha = "a/*%";
  const std::string name_alpha = "ab/";
  std::vector<std::string> patterns{""}, names{""};
  for (size_t len = 1, begin = 0; len <= 5; ++len) {
    size_t end = patterns.size();
    for (size_t i = begin; i < end; ++i)
      for (char c : pat_alpha) patterns.push_back(patterns[i] + c);
    begin = end;
  }
  for (size_t len = 1, begin = 0; len <= 4; ++len) {
    size_t end = names.size();
    for (size_t i = begin; i < end; ++i)
      for (char c : name_alpha) names.push_back(names[i] + c);
    begin = end;
  }
  for (const auto& p : patterns) {
    auto compiled = ListPattern::Compile(p, '/');
    ASSERT_TRUE(compiled.ok());
    for (const auto& n : names) {
      ASSERT_EQ(compiled->Matches(n), ListPatternMatchesSlow(p, n, '/')) << p << " " << n;
    }
  }
}

}  // namespace
}  // namespace hato::imap
