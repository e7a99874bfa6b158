// MTA-STS (RFC 8461), the pure half: the TXT record (section 3.1), the
// policy file (section 3.2), MX host matching (section 4.1) and the HTTP
// response a policy comes in (framed by http/response.h). Bytes in, values out; fuzzed by
// fuzz/fuzz_mta_sts.cc. The fetching and caching half is outbound/mta_sts.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "http/response.h"

namespace hato::outbound {

struct StsPolicy {
  enum class Mode { kNone, kTesting, kEnforce };
  Mode mode = Mode::kNone;
  std::vector<std::string> mx;  // patterns, lower-case: "mx.example.com", "*.example.net"
  int64_t max_age = 0;          // seconds
};

// Named limits (RFC 8461 section 3.3 suggests 64 KiB and a short timeout).
inline constexpr size_t kMaxPolicyBytes = 64 * 1024;
inline constexpr std::chrono::seconds kFetchTimeout{30};
inline constexpr int64_t kMaxPolicyAge = 31557600;  // section 3.2: at most one year
inline constexpr int64_t kTxtRecheckSeconds = 300;

// The id of a "v=STSv1; id=..." TXT record (section 3.1), or nullopt when
// the text is not a valid STSv1 record.
std::optional<std::string> ParseStsRecord(std::string_view txt);

// A policy file: "version: STSv1", "mode", "mx" (repeated), "max_age".
Result<StsPolicy> ParseStsPolicy(std::string_view text);

// Whether an MX host name matches one of the policy's patterns (section 4.1:
// a wildcard stands for exactly one leftmost label).
bool StsMxMatches(const StsPolicy& policy, std::string_view host);

// The body of a response with status 200 and a text/plain type, or why not
// (redirects are errors: section 3.3 forbids following them).
Result<std::string> StsPolicyBody(const http::ResponseHead& head, std::string body);
// The same for a whole HTTP/1.x response that ended with the connection.
Result<std::string> ParseStsHttpResponse(std::string_view response);

}  // namespace hato::outbound
