// TLS set-up: the self-signed certificate `hato init` makes for a dev setup,
// and loading a certificate/key pair into an Asio SSL context.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "io/asio.h"

namespace hato::app {

// Writes an EC P-256 key and a self-signed certificate for `hostname`, valid 2 years.
Status GenerateSelfSigned(const std::string& cert_path, const std::string& key_path,
                          const std::string& hostname);

// TLS 1.2+ server context from PEM files.
Result<std::shared_ptr<asio::ssl::context>> LoadTlsContext(const std::string& cert_path,
                                                           const std::string& key_path);

}  // namespace hato::app
