// The request side of the metrics endpoint's HTTP/1.x (RFC 9112): just enough
// to read "GET /metrics HTTP/1.1" and its header section, and to refuse the
// rest. Pure: bytes in, a verdict out; no I/O (fuzzed by fuzz/fuzz_http.cc).
//
// Limits: the request line and headers together are at most
// kMaxHttpRequestBytes (past it: kTooLarge, answered 431, RFC 6585 section
// 5); a body is not accepted (Content-Length other than 0 or
// Transfer-Encoding: kBad, answered 400).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace hato::metrics {

inline constexpr size_t kMaxHttpRequestBytes = 8192;

struct HttpRequest {
  enum class Verdict { kNeedMore, kComplete, kBad, kTooLarge };
  Verdict verdict = Verdict::kNeedMore;
  std::string method;   // as sent (case-sensitive, RFC 9110 section 9.1)
  std::string target;   // origin-form path, query stripped
  size_t consumed = 0;  // bytes of the request, when kComplete
};

// Parses the start of `buf`. Lines end in CRLF or a bare LF (RFC 9112 section 2.2).
HttpRequest ParseHttpRequest(std::string_view buf);

// A complete response with Content-Length and "Connection: close".
std::string HttpResponse(int status, std::string_view reason, std::string_view content_type,
                         std::string_view body);

}  // namespace hato::metrics
