// JMAP requests (RFC 8620 section 3.3) decoded from JSON into typed calls,
// result references (section 3.7) resolved against earlier responses, and
// the problem-details bodies of request-level errors (section 3.6.1).
// Pure: no I/O, no store (fuzzed by fuzz/fuzz_jmap_request.cc).
//
// Bounds: the body is at most Limits::max_size_request bytes (checked before
// parsing), JSON nesting at most kMaxJsonDepth, at most max_calls_in_request
// method calls; past them the request-level "limit" error names the limit.
#pragma once

#include <boost/json.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace hato::jmap {

namespace json = boost::json;

inline constexpr const char* kCapCore = "urn:ietf:params:jmap:core";
inline constexpr const char* kCapMail = "urn:ietf:params:jmap:mail";
inline constexpr const char* kCapSubmission = "urn:ietf:params:jmap:submission";
inline constexpr const char* kCapVacation = "urn:ietf:params:jmap:vacationresponse";
inline constexpr size_t kMaxJsonDepth = 32;
inline constexpr size_t kMaxIdLength = 255;  // RFC 8620 section 1.2

struct Invocation {
  std::string name;
  json::object args;
  std::string id;  // the method call id
};

struct ApiRequest {
  std::vector<std::string> using_capabilities;
  std::vector<Invocation> calls;
  std::optional<std::map<std::string, std::string>> created_ids;
};

// A request-level error (RFC 8620 section 3.6.1), sent as RFC 7807 problem details.
struct RequestError {
  std::string type;  // full URN
  int status = 400;
  std::string detail;
  std::string limit;  // for type "limit": the limit's name
};

struct DecodeLimits {
  size_t max_size_request = 10'000'000;
  size_t max_calls_in_request = 64;
};

// Decodes a request body. `known_capabilities` are those the server has:
// any other in "using" is unknownCapability.
std::variant<ApiRequest, RequestError> DecodeApiRequest(
    std::string_view body, const DecodeLimits& limits,
    const std::vector<std::string>& known_capabilities);

// Parses JSON with the depth bound (nullopt when not JSON or too deep).
std::optional<json::value> ParseJson(std::string_view text);

// The JSON body of a RequestError (application/problem+json).
std::string ProblemJson(const RequestError& e);

// Well-known error types (RFC 8620 section 3.6.1).
std::string ErrorUrn(
    std::string_view short_type);  // "notJSON" -> "urn:ietf:params:jmap:error:notJSON"

// Result references (section 3.7): every "#name" argument is replaced by
// the value its ResultReference points to in `responses` (earlier method
// responses of this request: name, arguments, call id). Returns the method
// error type ("invalidResultReference" / "invalidArguments") on failure.
struct Response {
  std::string name;
  json::object args;
  std::string id;
};
std::optional<std::string> ResolveReferences(json::object& args,
                                             const std::vector<Response>& responses);

// Evaluates a JSON Pointer (RFC 6901) with JMAP's "*" extension
// (section 3.7): nullopt when the path does not resolve.
std::optional<json::value> EvaluatePointer(const json::value& root, std::string_view pointer);

// Whether `s` is a valid Id (RFC 8620 section 1.2: 1-255 of A-Z a-z 0-9 - _).
bool IsValidId(std::string_view s);

}  // namespace hato::jmap
