// libFuzzer target for the HTTP/1.1 request syntax (src/http/request.h).
//
// Invariants:
//   * ParseRequestHead returns (never crashes); kComplete consumes no more
//     than the input, and no more than the limit plus skipped empty lines;
//   * a complete head re-parses identically with any suffix appended, and a
//     prefix of it is never kComplete with a different length;
//   * the limit is honoured: a head larger than the limit is never kComplete;
//   * the chunked decoder, fed the rest in two pieces split anywhere, gives
//     the same body and state as fed in one piece, never past its limit;
//   * SafeRelativePath never returns a path with a ".." or "." segment, a
//     leading '/' or a NUL; PercentDecode never yields a NUL.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "http/request.h"

using namespace hato::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  uint64_t h = hato::fuzz::Hash(in);
  size_t limit = 64 + h % 4096;
  HeadResult r = ParseRequestHead(in, limit);
  if (r.verdict == Verdict::kComplete) {
    FUZZ_CHECK(r.consumed <= in.size());
    std::string more(in.substr(0, r.consumed));
    more += "GET / HTTP/1.1\r\n";
    HeadResult again = ParseRequestHead(more, limit);
    FUZZ_CHECK(again.verdict == Verdict::kComplete);
    FUZZ_CHECK(again.consumed == r.consumed);
    FUZZ_CHECK_EQ_STR(again.head.path, r.head.path);
    FUZZ_CHECK(r.head.path.find('\0') == std::string::npos);
    if (r.consumed > 1) {
      HeadResult shorter = ParseRequestHead(in.substr(0, r.consumed - 1), limit);
      FUZZ_CHECK(shorter.verdict != Verdict::kComplete || shorter.consumed < r.consumed);
    }
    FUZZ_CHECK(!(r.head.chunked && r.head.content_length != 0));
    // The body, chunked.
    std::string_view rest = in.substr(r.consumed);
    uint64_t max_body = h % 10000;
    ChunkedDecoder one(max_body), two(max_body);
    std::string b1, b2;
    size_t used1 = one.Feed(rest, b1);
    size_t split = rest.empty() ? 0 : (h >> 8) % rest.size();
    size_t used2 = two.Feed(rest.substr(0, split), b2);
    if (!two.done() && !two.failed()) used2 += two.Feed(rest.substr(used2), b2);
    FUZZ_CHECK(b1.size() <= max_body);
    if (one.done() && two.done()) {
      FUZZ_CHECK_EQ_STR(b1, b2);
      FUZZ_CHECK(used1 == used2);
    }
    FUZZ_CHECK(used1 <= rest.size());
  }
  auto rel = SafeRelativePath(in);
  if (rel) {
    std::string s = "/" + *rel + "/";
    FUZZ_CHECK(s.find("/../") == std::string::npos);
    FUZZ_CHECK(s.find("/./") == std::string::npos);
    FUZZ_CHECK(s.find('\0') == std::string::npos);
    FUZZ_CHECK(rel->empty() || rel->front() != '/');
  }
  auto dec = PercentDecode(in, h & 1);
  if (dec) FUZZ_CHECK(dec->find('\0') == std::string::npos);
  (void)ParseQuery(in);
  (void)AcceptsEncoding(in, "br");
  (void)EtagMatches(in, "\"abc\"");
  return 0;
}
