// libFuzzer target for MTA-STS (src/outbound/mta_sts_policy.h): the TXT
// record, the HTTP response a policy comes in, the policy file and MX
// matching.
//
//   * a parsed record id is 1..32 alphanumerics;
//   * a parsed policy has version, mode and max_age within one year, and at
//     least one mx pattern unless its mode is "none"; every pattern matches
//     itself when it has no wildcard;
//   * a response body is at most kMaxPolicyBytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "outbound/mta_sts_policy.h"

namespace o = hato::outbound;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  if (auto id = o::ParseStsRecord(in)) {
    FUZZ_CHECK(!id->empty() && id->size() <= 32);
  }
  auto body = o::ParseStsHttpResponse(in);
  if (body) FUZZ_CHECK(body->size() <= o::kMaxPolicyBytes);
  for (std::string_view text : {in, body ? std::string_view(*body) : std::string_view()}) {
    auto p = o::ParseStsPolicy(text);
    if (!p) continue;
    FUZZ_CHECK(p->max_age >= 0 && p->max_age <= o::kMaxPolicyAge);
    FUZZ_CHECK(p->mode == o::StsPolicy::Mode::kNone || !p->mx.empty());
    for (const std::string& mx : p->mx) {
      if (mx.find('*') == std::string::npos && !mx.empty() && mx.back() != '.') {
        FUZZ_CHECK(o::StsMxMatches(*p, mx));
      }
      (void)o::StsMxMatches(*p, in.substr(0, 300));
    }
  }
  return 0;
}
