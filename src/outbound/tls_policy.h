// Which TLS outbound delivery needs, per destination domain: the seam where
// DANE (RFC 7672) and MTA-STS (RFC 8461) plug in. Both end in the same
// decision this interface returns: TLS is optional (RFC 7435 opportunistic,
// the default), required, or required with a certificate that verifies and
// names the MX host.
//
// The built-in policy is static, from [outbound] tls_policy (like Postfix's
// smtp_tls_policy_maps): a table of domain = "none" | "may" | "encrypt" |
// "verify". Thread-safety: For() is called from the event loop only.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "server/services.h"

namespace hato::outbound {

enum class TlsLevel {
  kNone,     // never STARTTLS
  kMay,      // STARTTLS when offered, certificate not checked (RFC 7435)
  kEncrypt,  // STARTTLS required, certificate not checked
  kVerify,   // STARTTLS required, certificate trusted and naming the MX host
};

std::optional<TlsLevel> ParseTlsLevel(std::string_view name);
std::string_view TlsLevelName(TlsLevel level);

class TlsPolicy {
 public:
  virtual ~TlsPolicy() = default;
  // `domain`: the recipient domain, lower-cased A-label.
  virtual TlsLevel For(std::string_view domain) const = 0;
};

// [outbound] tls_policy, read at each call (SIGHUP applies): the domain's
// entry, else "may" (or "none" when outbound.starttls is off).
class ConfigTlsPolicy final : public TlsPolicy {
 public:
  explicit ConfigTlsPolicy(const server::ConfigSource& config) : config_(config) {}
  TlsLevel For(std::string_view domain) const override;

 private:
  const server::ConfigSource& config_;
};

}  // namespace hato::outbound
