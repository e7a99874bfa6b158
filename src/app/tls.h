// TLS set-up: the self-signed certificate `hato init` makes for a dev setup,
// and loading a certificate/key pair into an Asio SSL context.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "io/asio.h"

namespace hato::acme {
class TlsAlpnChallenges;
}

namespace hato::app {

// Writes an EC P-256 key and a self-signed certificate for `hostname`, valid 2 years.
Status GenerateSelfSigned(const std::string& cert_path, const std::string& key_path,
                          const std::string& hostname);

// TLS 1.2+ server context from PEM files.
Result<std::shared_ptr<asio::ssl::context>> LoadTlsContext(const std::string& cert_path,
                                                           const std::string& key_path);

// SIGHUP: validates the pair (readable, parsable, key matching the
// certificate, certificate not expired) in a fresh context and only then
// installs it in `live`, whose later handshakes use it (sessions already
// secured keep theirs). On error `live` is unchanged. Any thread: the change
// is made under io::TlsContextLock, which connections on every event loop take
// while they create their TLS state from `live`.
Status ReloadTlsContext(asio::ssl::context& live, const std::string& cert_path,
                        const std::string& key_path);

// ACME TLS-ALPN-01 (RFC 8737 section 3): a client of `ctx` that offers only
// the ALPN protocol "acme-tls/1" for a name in `challenges` gets that
// name's challenge certificate (and "acme-tls/1" selected); one that offers
// it for another name is refused. Others are served as before (no ALPN).
// `challenges` must outlive the context's handshakes.
void EnableTlsAlpnChallenges(asio::ssl::context& ctx, acme::TlsAlpnChallenges* challenges);

}  // namespace hato::app
