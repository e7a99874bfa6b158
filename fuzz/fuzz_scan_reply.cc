// libFuzzer target for what the content scanners' clients read (issue 19):
// HTTP responses (src/http/response.h, rspamd's transport), rspamd's JSON
// replies and clamd's reply lines (src/scan/proto.h), and the removal of
// forged scan fields (src/scan/policy.h).
//
// Invariants:
//   * ParseResponse never crashes; a complete response's body is at most the
//     limit; with more bytes appended a complete response stays complete with
//     the same status and body (framing by length or chunks), and a
//     response complete without eof is complete with eof too;
//   * ParseCheckReply / ParseLearnReply / ParseClamdReply never crash; a
//     found signature name is printable ASCII and never empty;
//   * RemoveScanHeaderFields is idempotent, never grows the message, and
//     leaves no field of ours at the start of a header line.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "fuzz_util.h"
#include "http/response.h"
#include "scan/policy.h"
#include "scan/proto.h"

using namespace hato;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  uint64_t h = fuzz::Hash(in);
  size_t max_head = 64 + h % 4096;
  uint64_t max_body = (h >> 12) % 8192;

  for (bool eof : {false, true}) {
    http::ResponseResult r = http::ParseResponse(in, eof, max_head, max_body);
    if (r.verdict != http::Verdict::kComplete) continue;
    FUZZ_CHECK(r.body.size() <= max_body);
    FUZZ_CHECK(r.head.status >= 200 && r.head.status <= 999);
    if (!eof) {
      http::ResponseResult again =
          http::ParseResponse(std::string(in) + "trailing junk", false, max_head, max_body);
      FUZZ_CHECK(again.verdict == http::Verdict::kComplete);
      FUZZ_CHECK(again.head.status == r.head.status);
      FUZZ_CHECK_EQ_STR(again.body, r.body);
      http::ResponseResult closed = http::ParseResponse(in, true, max_head, max_body);
      FUZZ_CHECK(closed.verdict == http::Verdict::kComplete);
      FUZZ_CHECK_EQ_STR(closed.body, r.body);
    }
  }

  (void)scan::ParseCheckReply(in);
  (void)scan::ParseLearnReply(static_cast<int>(h % 600), in);
  scan::ClamdReply c = scan::ParseClamdReply(in);
  if (c.kind == scan::ClamdReply::Kind::kFound) {
    FUZZ_CHECK(!c.name.empty());
    for (char ch : c.name) FUZZ_CHECK(ch >= 0x20 && ch < 0x7f);
  }

  std::string cleaned = scan::RemoveScanHeaderFields(in);
  FUZZ_CHECK(cleaned.size() <= in.size());
  FUZZ_CHECK_EQ_STR(scan::RemoveScanHeaderFields(cleaned), cleaned);
  // No field of ours starts a line of the header.
  size_t pos = 0;
  while (pos < cleaned.size()) {
    size_t nl = cleaned.find('\n', pos);
    std::string_view line = std::string_view(cleaned).substr(
        pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (line.empty() || line == "\r") break;
    if (line[0] != ' ' && line[0] != '\t') {
      std::string name = AsciiLower(line.substr(0, line.find(':')));
      while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
      if (line.find(':') != std::string_view::npos) {
        FUZZ_CHECK(name != "x-hato-scan" && name != "x-spam-flag" && name != "x-spam-status" &&
                   name != "x-spam-score");
      }
    }
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return 0;
}
