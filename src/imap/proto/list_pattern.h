// LIST and LSUB mailbox patterns (RFC 3501 section 6.3.8): '*' matches any
// run of characters, '%' any run without the hierarchy separator, and every
// other character itself. Pure; fuzzed by fuzz/fuzz_list_pattern.cc.
//
// SECURITY: the pattern comes from the client and used to be matched by a
// recursive backtracking function on the event loop: "<60 x *>y" took a
// minute and a run of '%' never finished (issue 11, item 1). Here a pattern
// is compiled once (runs of wildcards collapsed: any run holding a '*' is one
// '*', a run of '%' is one '%') into a bit-parallel automaton, and a name is
// matched in one pass: O(|name| * |pattern| / 64) steps, never backtracking.
// Patterns are bounded by kMaxListPatternBytes (reference and pattern
// together); past it the session answers "NO [LIMIT]".
//
// Thread safety: a ListPattern is immutable after Compile().
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::imap {

// Longest reference + pattern a LIST/LSUB may use, in bytes.
inline constexpr size_t kMaxListPatternBytes = 1024;
// Patterns in one LIST (RFC 5258 allows a parenthesized list of them).
inline constexpr size_t kMaxListPatterns = 64;

class ListPattern {
 public:
  // kInvalid when `pattern` is longer than kMaxListPatternBytes.
  static Result<ListPattern> Compile(std::string_view pattern, char separator);

  bool Matches(std::string_view name) const;

  // The pattern after wildcard runs were collapsed (for tests).
  const std::string& normalized() const { return pattern_; }

  // The same pattern with runs of wildcards collapsed.
  static std::string Collapse(std::string_view pattern);

 private:
  // One state per pattern position, plus the accepting one.
  static constexpr size_t kStates = kMaxListPatternBytes + 1;
  using Bits = std::bitset<kStates>;

  std::string pattern_;
  char separator_ = '/';
  Bits star_;     // positions holding '*'
  Bits percent_;  // positions holding '%'
  Bits accept_;   // the position past the end
  // Positions holding each literal byte: masks_[index_[byte]] (index 0 = none).
  std::array<uint8_t, 256> index_{};
  std::vector<Bits> masks_;
};

// Reference implementation for tests and the fuzzer: a dynamic program over
// (pattern position, name position), O(|pattern| * |name|) time and memory.
bool ListPatternMatchesSlow(std::string_view pattern, std::string_view name, char separator);

}  // namespace hato::imap
