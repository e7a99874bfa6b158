// MTA-STS (RFC 8461): a recipient domain that publishes a policy gets mail
// only over TLS with a certificate that verifies, and only at the MX hosts
// its policy names, so that an attacker who strips STARTTLS or forges MX
// answers gets nothing.
//
// The pure half (outbound/mta_sts_policy.h) parses the TXT record, the policy
// file and matches MX host names; StsPolicies fetches
// and caches policies for the outbound queue (section 3.3, 5): the TXT
// record's id is looked up at most every kTxtRecheckSeconds, the policy is
// fetched over HTTPS (http/client.h: verified, no redirects, at most
// kMaxPolicyBytes, within kFetchTimeout) when the id changes, and a cached policy is kept until its
// max_age even when DNS or the fetch fails (a downgrade attacker who blocks
// them gains nothing). The cache is in memory: after a restart a policy is
// fetched again before the first delivery to its domain.
// Thread-safety: StsPolicies runs on the queue's event loop only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "dns/resolver.h"
#include "http/client.h"
#include "io/asio.h"
#include "outbound/mta_sts_policy.h"

namespace hato::outbound {

class StsPolicies {
 public:
  // `verify_tls`: a client context that trusts the system's CAs (and
  // outbound.tls_ca_file); `https_port` is 443 except in tests.
  StsPolicies(dns::Resolver* resolver, std::shared_ptr<asio::ssl::context> verify_tls,
              int https_port)
      : resolver_(resolver), http_(resolver, std::move(verify_tls)), port_(https_port) {}

  // The policy that applies to `domain` (ASCII, lower-case) now, or nullopt.
  awaitable<std::optional<StsPolicy>> For(std::string domain);

 private:
  struct Entry {
    std::optional<StsPolicy> policy;
    std::string id;
    int64_t expires_at = 0;  // of the policy (max_age after the fetch)
    int64_t checked_at = 0;  // last TXT lookup
  };
  awaitable<Result<StsPolicy>> Fetch(const std::string& domain);

  dns::Resolver* resolver_;
  http::Client http_;  // verifying, follows no redirect
  int port_;
  std::map<std::string, Entry> cache_;
};

}  // namespace hato::outbound
