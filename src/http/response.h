// HTTP/1.1 responses as a client reads them (RFC 9112): the status line,
// the header fields and the body framed by Content-Length, the chunked
// coding, or the end of the connection (RFC 9112 section 6.3). Used by the
// clients of HTTP services Hato talks to (rspamd, src/scan). Pure: bytes in,
// values out; no I/O (fuzzed by fuzz/fuzz_http_response.cc).
//
// Limits: the head is at most `max_head_bytes`, the body at most
// `max_body_bytes` (kTooLarge past either); anything malformed is kBad.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/request.h"

namespace hato::http {

struct ResponseHead {
  int status = 0;  // 100..999 (RFC 9110 section 15)
  int minor_version = 1;
  std::vector<Header> headers;             // names lower-cased
  std::optional<uint64_t> content_length;  // nullopt: chunked or to the end
  bool chunked = false;
  // The first field with this (lower-case) name, or nullopt.
  std::optional<std::string_view> Get(std::string_view lower_name) const;
};

struct ResponseHeadResult {
  Verdict verdict = Verdict::kNeedMore;
  ResponseHead head;
  size_t consumed = 0;  // bytes of the head, when kComplete
  std::string error;    // for kBad
};

// Parses the response head at the start of `buf` (CRLF or bare LF lines).
ResponseHeadResult ParseResponseHead(std::string_view buf, size_t max_head_bytes);

struct ResponseResult {
  Verdict verdict = Verdict::kNeedMore;
  ResponseHead head;
  std::string body;  // decoded (chunked coding removed)
  std::string error;
};

// A whole response at the start of `buf`. `eof`: the server closed the
// connection after these bytes, which ends a body without a length and
// makes a short one kBad. A 1xx interim response is kBad (never asked for).
ResponseResult ParseResponse(std::string_view buf, bool eof, size_t max_head_bytes,
                             uint64_t max_body_bytes);

}  // namespace hato::http
