// https URLs as the HTTP client takes them (RFC 9110 section 4.2.2): the
// host, port and path a request goes to. Pure; used by http/client.h and by
// the configuration checks of its users (acme.directory, report rua).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hato::http {

// The longest URL accepted.
inline constexpr size_t kMaxUrlBytes = 2048;

// An https URL split into host, port and path (query included); nullopt for
// any other scheme, userinfo, a bad port, or a control character or space.
struct HttpsUrl {
  std::string host;  // a name or an IP literal (IPv6 without brackets)
  int port = 443;
  std::string path;  // starts with "/"
};
std::optional<HttpsUrl> ParseHttpsUrl(std::string_view url);

// The Host field of a request to `u` (RFC 9110 section 7.2): the port only
// when it is not 443, an IPv6 literal in brackets.
std::string HostField(const HttpsUrl& u);

}  // namespace hato::http
