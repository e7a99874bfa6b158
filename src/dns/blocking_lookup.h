// DNS for message authentication: msgauth::DnsLookup (TXT, A, AAAA, MX, PTR)
// over libunbound, for the inbound SPF, DKIM and DMARC checks that run on the
// blocking pool (msgauth/dns.h). The outbound queue uses the asynchronous
// Resolver (resolver.h) on the event loop instead.
//
// Bounded time: every query waits at most `query_timeout`, and a Budget caps
// all the queries of one message (SPF alone may make ten, RFC 7208 section
// 4.6.4), so a dead resolver delays a message by at most the budget and the
// checks then report temperror, never a hang.
//
// Thread-safety: one UnboundLookup serves any number of threads (libunbound
// contexts are thread-safe; answers are cached in the context).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "base/result.h"
#include "dns/rdata.h"
#include "msgauth/dns.h"

namespace hato::dns {

struct LookupOptions {
  // "ip" or "ip@port" of a recursive resolver; empty: /etc/resolv.conf.
  std::string forward_to;
  std::chrono::milliseconds query_timeout{5000};
};

class SharedLookup;  // the libunbound context, shared by threads

// A DnsLookup that gives up once `budget` has been spent on its queries.
// Make one per message over a shared context.
class BudgetLookup final : public msgauth::DnsLookup {
 public:
  BudgetLookup(std::shared_ptr<SharedLookup> shared, std::chrono::milliseconds budget);

  Result<std::vector<std::string>> Txt(std::string_view name) override;
  Result<std::vector<msgauth::IpAddress>> A(std::string_view name) override;
  Result<std::vector<msgauth::IpAddress>> Aaaa(std::string_view name) override;
  Result<std::vector<msgauth::MxRecord>> Mx(std::string_view name) override;
  Result<std::vector<std::string>> Ptr(const msgauth::IpAddress& ip) override;
  // For `hato dns check` (RFC 6186 SRV, autoconfig CNAME); not in msgauth::DnsLookup.
  Result<std::vector<SrvRecord>> Srv(std::string_view name);
  Result<std::vector<std::string>> Cname(std::string_view name);  // targets, no trailing dot

 private:
  std::shared_ptr<SharedLookup> shared_;
  std::chrono::steady_clock::time_point deadline_;
};

// Opens the libunbound context (kInvalid for a bad resolver address).
Result<std::shared_ptr<SharedLookup>> OpenSharedLookup(const LookupOptions& options);

}  // namespace hato::dns
