// Asynchronous DNS for outbound delivery: MX and address lookups behind a
// small interface so that tests (and a future DANE/MTA-STS layer) can swap
// the implementation. The production one is libunbound (resolver.cc), driven
// by the event loop: no lookup ever blocks a thread.
// Thread-safety: use a Resolver from its event loop only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "dns/rdata.h"
#include "io/asio.h"

namespace hato::dns {

// Errors: kNotFound = the name does not exist (NXDOMAIN, permanent);
// kTemporary = SERVFAIL, timeout or no answer (try later).
class Resolver {
 public:
  virtual ~Resolver() = default;
  // The MX records of an ASCII (A-label) domain; empty when it has none (NODATA).
  virtual awaitable<Result<std::vector<MxRecord>>> LookupMx(std::string domain) = 0;
  // The IPv4 and IPv6 addresses of a host (A then AAAA); empty when it has none.
  virtual awaitable<Result<std::vector<std::string>>> LookupAddresses(std::string host) = 0;
  // The TXT records of a name, each joined from its character-strings;
  // kNotFound for NXDOMAIN, empty for NODATA.
  virtual awaitable<Result<std::vector<std::string>>> LookupTxt(std::string name) = 0;
};

struct ResolverOptions {
  // "ip" or "ip@port" of a recursive resolver to forward to; empty: the
  // system's (/etc/resolv.conf).
  std::string forward_to;
  int timeout_seconds = 30;  // per lookup
};

// A libunbound resolver whose callbacks run on `executor`.
Result<std::unique_ptr<Resolver>> NewUnboundResolver(asio::any_io_executor executor,
                                                     const ResolverOptions& options);

// The ASCII (A-label, RFC 5890) form of a domain given in UTF-8 (IDNA2008 via
// libidn2); ASCII domains are returned lower-cased.
Result<std::string> ToAsciiDomain(std::string_view domain);

}  // namespace hato::dns
