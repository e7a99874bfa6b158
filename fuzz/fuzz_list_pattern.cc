// libFuzzer target for the LIST/LSUB pattern matcher (src/imap/proto/list_pattern.h).
//
// The input is "pattern NUL name" (without a NUL, a split point derived from
// the input). Invariants:
//   * Compile fails exactly when the pattern is over kMaxListPatternBytes;
//   * Collapse leaves no two wildcards side by side and is idempotent;
//   * the bit-parallel matcher agrees with the reference dynamic program, on
//     the pattern as given and on its collapsed form (collapsing changes
//     nothing about what matches).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "imap/proto/list_pattern.h"

using hato::imap::ListPattern;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t split = in.find('\0');
  std::string_view pattern, name;
  if (split != std::string_view::npos) {
    pattern = in.substr(0, split);
    name = in.substr(split + 1);
  } else {
    split = size == 0 ? 0 : hato::fuzz::Hash(in) % (size + 1);
    pattern = in.substr(0, split);
    name = in.substr(split);
  }
  char sep = '/';
  auto compiled = ListPattern::Compile(pattern, sep);
  FUZZ_CHECK(compiled.ok() == (pattern.size() <= hato::imap::kMaxListPatternBytes));
  if (!compiled) return 0;

  const std::string& norm = compiled->normalized();
  FUZZ_CHECK(norm.size() <= pattern.size());
  for (size_t i = 1; i < norm.size(); ++i) {
    bool w0 = norm[i - 1] == '*' || norm[i - 1] == '%';
    bool w1 = norm[i] == '*' || norm[i] == '%';
    FUZZ_CHECK(!(w0 && w1));
  }
  FUZZ_CHECK_EQ_STR(ListPattern::Collapse(norm), norm);

  if (pattern.size() * (name.size() + 1) > 200000) return 0;  // the reference is quadratic
  bool fast = compiled->Matches(name);
  bool slow = hato::imap::ListPatternMatchesSlow(pattern, name, sep);
  bool slow_norm = hato::imap::ListPatternMatchesSlow(norm, name, sep);
  if (fast != slow || slow != slow_norm) {
    hato::fuzz::Fail(__FILE__, __LINE__, "matchers disagree", std::string(pattern),
                     std::string(name));
  }
  return 0;
}
