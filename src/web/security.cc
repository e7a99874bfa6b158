#include "web/security.h"

#include <openssl/crypto.h>

#include "base/digest.h"
#include "base/strings.h"

namespace hato::web {

std::optional<std::string> CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = TrimSpaces(header.substr(0, semi));
    header.remove_prefix(semi == std::string_view::npos ? header.size() : semi + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    if (TrimSpaces(pair.substr(0, eq)) != name) continue;
    std::string_view v = TrimSpaces(pair.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return std::string(v);
  }
  return std::nullopt;
}

std::string SessionCookie(std::string_view token, int64_t max_age_seconds, bool secure) {
  std::string c = std::string(kSessionCookie) + "=" + std::string(token) +
                  "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(max_age_seconds);
  if (secure) c += "; Secure";
  return c;
}

bool IsAccountLanguage(std::string_view language) {
  return language.empty() || language == "en" || language == "ja";
}

std::string LanguageCookie(std::string_view language, bool secure) {
  std::string c = std::string(kLanguageCookie) + "=" + std::string(language) +
                  "; Path=/; SameSite=Strict; Max-Age=" + (language.empty() ? "0" : "31536000");
  if (secure) c += "; Secure";
  return c;
}

std::string CsrfTokenFor(std::string_view session_token) {
  std::string b64 = Base64Encode(HmacSha256(session_token, "hato-web-csrf-v1"));
  std::string out;
  for (char c : b64) {
    if (c == '+')
      out += '-';
    else if (c == '/')
      out += '_';
    else if (c != '=')
      out += c;
  }
  return out;
}

bool SecretEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool IsSameOrigin(std::string_view origin, std::string_view host, bool tls) {
  if (host.empty() || origin.empty()) return false;
  std::string want = std::string(tls ? "https://" : "http://") + AsciiLower(host);
  return AsciiLower(origin) == want;
}

bool CsrfOk(std::string_view origin, std::string_view host, bool tls, std::string_view csrf_header,
            std::string_view session_token) {
  if (!IsSameOrigin(origin, host, tls)) return false;
  if (csrf_header.empty() || session_token.empty()) return false;
  return SecretEquals(csrf_header, CsrfTokenFor(session_token));
}

std::string SafeRedirectPath(std::string_view t) {
  if (t.empty() || t[0] != '/') return "/";
  if (t.size() > 1 && (t[1] == '/' || t[1] == '\\')) return "/";
  for (char c : t) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\') return "/";
  }
  return std::string(t);
}

}  // namespace hato::web
