// libFuzzer target for the fault-injection control file parser
// (src/io/fault_rules.h; test-only input, but a parser all the same).
//
// Invariants:
//   * never crashes;
//   * every parsed rule is within range: nth >= 1, 0 <= delay_ms <= 1 h,
//     error is 0, EIO or ENOSPC, and only writes are torn;
//   * parsing is line-wise: the text of a valid input followed by a blank
//     line and a comment parses to the same number of rules.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "io/fault_rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto rules = hato::io::ParseFaultRules(in);
  if (!rules) return 0;
  for (const auto& r : *rules) {
    FUZZ_CHECK(r.nth >= 1);
    FUZZ_CHECK(r.delay_ms >= 0 && r.delay_ms <= 3600 * 1000);
    FUZZ_CHECK(r.error == 0 || r.error == EIO || r.error == ENOSPC);
    FUZZ_CHECK(!r.torn || r.op == hato::io::FaultOp::kWrite);
  }
  std::string more(in);
  more += "\n\n# comment\n";
  auto again = hato::io::ParseFaultRules(more);
  FUZZ_CHECK(again.ok() && again->size() == rules->size());
  return 0;
}
