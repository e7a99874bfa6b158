// SPF evaluation: check_host() of RFC 7208 section 4, with the processing
// limits of section 4.6.4 and the explanation of section 6.2. DNS answers
// come through the DnsLookup seam (dns.h); the record syntax is in
// spf_record.h. Pure: no I/O of its own.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "msgauth/dns.h"
#include "msgauth/ip.h"

namespace hato::msgauth {

// Processing limits (RFC 7208 section 4.6.4).
inline constexpr int kMaxSpfDnsMechanisms = 10;  // include, a, mx, ptr, exists, redirect
inline constexpr int kMaxSpfVoidLookups = 2;     // NXDOMAIN or empty answers
inline constexpr size_t kMaxSpfMxNames = 10;     // per mx mechanism: more is permerror
inline constexpr size_t kMaxSpfPtrNames = 10;    // per ptr lookup: the rest is ignored

// Section 2.6.
enum class SpfResult { kNone, kNeutral, kPass, kFail, kSoftFail, kTempError, kPermError };
std::string_view SpfResultName(SpfResult r);

struct SpfRequest {
  IpAddress ip;           // the SMTP client
  std::string helo;       // the HELO/EHLO name
  std::string mail_from;  // the MAIL FROM address; empty for the null path
  std::string receiver;   // our host name (%{r}, explanations)
  int64_t now = 0;        // %{t}
};

struct SpfOutcome {
  SpfResult result = SpfResult::kNone;
  std::string domain;       // the domain checked (MAIL FROM domain, or HELO)
  std::string explanation;  // exp= text on fail (section 6.2), or empty
  std::string reason;       // the matching mechanism or the error, for A-R comments
};

// check_host() for the MAIL FROM identity (section 2.4): the domain of
// mail_from, or "postmaster@HELO" for the null path.
SpfOutcome CheckMailFrom(DnsLookup& dns, const SpfRequest& req);
// check_host() for the HELO identity (section 2.3).
SpfOutcome CheckHelo(DnsLookup& dns, const SpfRequest& req);
// check_host(ip, domain, sender) itself (section 4.1).
SpfOutcome CheckHost(DnsLookup& dns, const SpfRequest& req, std::string_view domain,
                     std::string_view sender);

}  // namespace hato::msgauth
