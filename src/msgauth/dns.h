// The DNS seam of message authentication (SPF, DKIM, DMARC).
//
// src/msgauth/ never talks to a resolver itself: every lookup goes through a
// DnsLookup, so the evaluators are pure functions of (message, envelope, DNS
// answers, time) and tests use a fake table (dns_table.h). The server wires
// this interface to its asynchronous resolver (src/dns/, libunbound).
//
// Answers distinguish the three outcomes SPF and DMARC treat differently
// (RFC 7208 section 4.4 and 4.6.4, RFC 7489 section 6.6.3):
//   * ok with records, or ok and empty (NOERROR/NODATA: the name exists,
//     but has no record of that type);
//   * Err(kNotFound): NXDOMAIN (RCODE 3), the name does not exist;
//   * Err(kTemporary): SERVFAIL, timeout or any other failure to get an
//     answer (the evaluators turn it into temperror).
//
// Thread-safety: the evaluators call one DnsLookup from one thread at a time.
// Calls may block (the evaluators run on the blocking pool, never on the
// event loop); an implementation enforces its own per-query timeout.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "msgauth/ip.h"

namespace hato::msgauth {

struct MxRecord {
  uint16_t preference = 0;
  std::string exchange;  // host name, without the trailing dot
};

class DnsLookup {
 public:
  virtual ~DnsLookup() = default;
  // TXT records of `name` (no trailing dot). Each element is one record, its
  // character-strings already concatenated (RFC 7208 section 3.3, RFC 6376
  // section 3.6.2.2).
  virtual Result<std::vector<std::string>> Txt(std::string_view name) = 0;
  virtual Result<std::vector<IpAddress>> A(std::string_view name) = 0;
  virtual Result<std::vector<IpAddress>> Aaaa(std::string_view name) = 0;
  virtual Result<std::vector<MxRecord>> Mx(std::string_view name) = 0;
  // PTR names of the reverse zone of `ip` (in-addr.arpa / ip6.arpa), without
  // the trailing dot.
  virtual Result<std::vector<std::string>> Ptr(const IpAddress& ip) = 0;
};

// True when the error is NXDOMAIN (the name does not exist).
inline bool IsNxDomain(const Error& e) { return e.kind == ErrorKind::kNotFound; }

}  // namespace hato::msgauth
