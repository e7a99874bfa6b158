#include "http/url.h"

namespace hato::http {

std::optional<HttpsUrl> ParseHttpsUrl(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (url.size() > kMaxUrlBytes || url.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  url.remove_prefix(kScheme.size());
  size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  HttpsUrl out;
  out.path = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  for (char c : out.path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
  }
  if (authority.find('@') != std::string_view::npos) return std::nullopt;  // no userinfo
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {  // an IPv6 literal
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':') return std::nullopt;
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    authority = colon == std::string_view::npos ? "" : authority.substr(colon);
  }
  if (!authority.empty()) {  // ":port"
    std::string_view digits = authority.substr(1);
    if (digits.empty() || digits.size() > 5) return std::nullopt;
    int port = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) return std::nullopt;
    out.port = port;
  }
  if (host.empty()) return std::nullopt;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == ':';
    if (!ok) return std::nullopt;
  }
  out.host = std::string(host);
  return out;
}

std::string HostField(const HttpsUrl& u) {
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) about
  // operator+ on a one-character literal.
  bool v6 = u.host.find(':') != std::string::npos;
  std::string host;
  if (v6) host += '[';
  host += u.host;
  if (v6) host += ']';
  if (u.port != 443) {
    host += ':';
    host += std::to_string(u.port);
  }
  return host;
}

}  // namespace hato::http
