// libFuzzer target for mailbox-name hygiene (src/store/mailbox_name.h).
//
// Invariants:
//   * CheckNewMailboxName and SafePathComponent return (never crash);
//   * an accepted name is valid UTF-8 within the named limits, and every one
//     of its levels is a SafePathComponent once ".mbox" is appended (so an
//     export never leaves its output folder), with no "." or ".." level;
//   * every prefix of an accepted name that ends at a level boundary (its
//     parents, created with it) is accepted too;
//   * SafePathComponent never accepts "/", NUL, "." or "..".
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "fuzz_util.h"
#include "store/mailbox_name.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view name(reinterpret_cast<const char*>(data), size);
  bool safe = hato::store::SafePathComponent(name);
  if (safe) {
    FUZZ_CHECK(name != "." && name != ".." && !name.empty());
    FUZZ_CHECK(name.find('/') == std::string_view::npos);
    FUZZ_CHECK(name.find('\0') == std::string_view::npos);
  }
  auto st = hato::store::CheckNewMailboxName(name);
  if (!st) {
    FUZZ_CHECK(st.error().kind == hato::ErrorKind::kInvalid);
    return 0;
  }
  FUZZ_CHECK(hato::IsValidUtf8(name));
  FUZZ_CHECK(name.size() <= hato::store::kMaxMailboxNameBytes);
  size_t levels = 0;
  size_t start = 0;
  while (true) {
    size_t end = name.find('/', start);
    std::string_view level = name.substr(start, end == std::string_view::npos ? end : end - start);
    ++levels;
    FUZZ_CHECK(level.size() <= hato::store::kMaxMailboxLevelBytes);
    FUZZ_CHECK(hato::store::SafePathComponent(level));
    FUZZ_CHECK(hato::store::SafePathComponent(std::string(level) + ".mbox"));
    if (end == std::string_view::npos) break;
    FUZZ_CHECK(hato::store::CheckNewMailboxName(name.substr(0, end)).ok());
    start = end + 1;
  }
  FUZZ_CHECK(levels <= hato::store::kMaxMailboxLevels);
  return 0;
}
