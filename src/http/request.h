// HTTP/1.1 message syntax (RFC 9112) for src/http/server: the request head
// (request line and header fields), the chunked transfer coding of a request
// body, percent-decoding and query strings, and the head of a response.
// Pure: bytes in, values out; no I/O (fuzzed by fuzz/fuzz_http_request.cc).
//
// Limits: the head is at most `max_head_bytes` (the caller's named limit,
// answered 431, RFC 6585 section 5); a chunked body grows at most to
// `max_body_bytes` (413). Anything else malformed is kBad (400).
// Request smuggling (RFC 9112 section 6.3): Transfer-Encoding together with
// Content-Length, several differing Content-Length values, a transfer coding
// other than "chunked", obs-fold and whitespace before the colon are kBad.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hato::http {

struct Header {
  std::string name;  // lower-cased (field names are case-insensitive, RFC 9110 section 5.1)
  std::string value;
};

struct RequestHead {
  std::string method;     // case-sensitive (RFC 9110 section 9.1)
  std::string target;     // as sent (origin-form)
  std::string path;       // percent-decoded path of the target
  std::string query;      // raw query (after '?'), not decoded
  int minor_version = 1;  // HTTP/1.x
  std::vector<Header> headers;
  uint64_t content_length = 0;
  bool chunked = false;
  bool keep_alive = true;  // HTTP/1.1 default, "Connection: close" / HTTP/1.0 rules

  // The first field with this (lower-case) name, or nullopt.
  std::optional<std::string_view> Get(std::string_view lower_name) const;
};

enum class Verdict { kNeedMore, kComplete, kBad, kTooLarge };

struct HeadResult {
  Verdict verdict = Verdict::kNeedMore;
  RequestHead head;
  size_t consumed = 0;  // bytes of the head (with leading empty lines), when kComplete
  std::string error;    // for kBad: what was wrong (logs, 400 body)
};

// Parses the head at the start of `buf`. Lines end in CRLF or a bare LF
// (RFC 9112 section 2.2); empty lines before the request line are skipped.
HeadResult ParseRequestHead(std::string_view buf, size_t max_head_bytes);

// The chunked transfer coding (RFC 9112 section 7.1), decoded incrementally:
// Feed consumes what it can of `in`, appending data to `out`. Chunk
// extensions and trailer fields are read and dropped.
class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(uint64_t max_body_bytes) : max_(max_body_bytes) {}
  // Returns the bytes consumed from `in`; check done()/failed() after.
  size_t Feed(std::string_view in, std::string& out);
  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kBad || state_ == State::kTooLarge; }
  bool too_large() const { return state_ == State::kTooLarge; }

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone, kBad, kTooLarge };
  State state_ = State::kSize;
  uint64_t max_;
  uint64_t total_ = 0;
  uint64_t remaining_ = 0;  // of the current chunk
};

// Percent-decoding (RFC 3986 section 2.1). nullopt for a bad escape or a
// NUL, raw or decoded. With `plus_is_space` (form and query encoding) '+' is ' '.
std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space = false);

// "a=1&b=x%20y" -> {{"a","1"},{"b","x y"}}; bad escapes are kept as sent.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);

// The standard reason phrase of a status code ("" when unknown).
std::string_view ReasonPhrase(int status);

// The media type of a file name by its extension (application/octet-stream
// when unknown); text types carry "; charset=utf-8".
std::string_view ContentTypeFor(std::string_view file_name);

}  // namespace hato::http

namespace hato::http {

// A decoded URL path below a served directory, made safe to append to it:
// nullopt for "..", ".", empty inner segments, backslashes, NUL or control
// characters; "" for the directory itself. Leading '/' is dropped.
std::optional<std::string> SafeRelativePath(std::string_view decoded_path);

// Whether an Accept-Encoding value (RFC 9110 section 12.5.3) accepts `coding`
// (a q=0 refuses it; "*" accepts).
bool AcceptsEncoding(std::string_view accept_encoding, std::string_view coding);

// Whether an If-None-Match value matches `etag` (weak comparison, "*").
bool EtagMatches(std::string_view if_none_match, std::string_view etag);

}  // namespace hato::http
