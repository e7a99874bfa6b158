// The web side's security rules, as pure functions (issue 13, item 6):
//  - every page carries a Content-Security-Policy without inline script;
//  - a state change made with the session cookie must come from our own
//    origin (the Origin header, RFC 6454 section 7) and carry the CSRF token
//    (header X-Hato-CSRF), besides the cookie's SameSite=Strict;
//  - the session cookie is HttpOnly, SameSite=Strict, Path=/, Secure over TLS;
//  - redirects go only to our own paths (no open redirects).
// The CSRF token is derived from the session token (HMAC), so it needs no
// storage and changes with the session; it is never in a URL or a log.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hato::web {

// The webmail's policy. img-src allows remote images only because a message's
// own frame (a srcdoc iframe, which inherits this policy and adds its own)
// shows them after the user asks; the webmail itself loads none.
inline constexpr std::string_view kWebmailCsp =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob: https: http:; connect-src 'self'; font-src 'self' data:; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

inline constexpr std::string_view kSessionCookie = "hato_session";
inline constexpr std::string_view kCsrfHeader = "X-Hato-CSRF";

// The value of cookie `name` in a Cookie header (RFC 6265 section 5.4), or nullopt.
std::optional<std::string> CookieValue(std::string_view cookie_header, std::string_view name);

// A Set-Cookie value for the session; max_age_seconds 0 deletes it.
std::string SessionCookie(std::string_view token, int64_t max_age_seconds, bool secure);

// The account's language (issue 13), told to the pages in a cookie they
// read before they render (not HttpOnly: it holds no secret): "en" or "ja";
// without it the pages follow the browser's languages.
inline constexpr std::string_view kLanguageCookie = "hato_lang";
// "" (none chosen), "en" or "ja".
bool IsAccountLanguage(std::string_view language);
// A Set-Cookie value for the language; "" deletes the cookie.
std::string LanguageCookie(std::string_view language, bool secure);

// The CSRF token that goes with a session token (base64url, no padding).
std::string CsrfTokenFor(std::string_view session_token);

// Constant-time comparison of two secrets.
bool SecretEquals(std::string_view a, std::string_view b);

// True when `origin` (an Origin header) names the site the request was sent
// to: scheme "https" when `tls` else "http", and `host` (the Host header,
// with its port). "null" and a missing Origin are not our origin.
bool IsSameOrigin(std::string_view origin, std::string_view host, bool tls);

// The check for a cookie-authenticated state change: same origin and the
// CSRF token of the session.
bool CsrfOk(std::string_view origin, std::string_view host, bool tls, std::string_view csrf_header,
            std::string_view session_token);

// A redirect target that stays on this site: a path starting with one "/"
// (not "//" or "/\", which browsers read as another host), without control
// characters; anything else becomes "/".
std::string SafeRedirectPath(std::string_view target);

}  // namespace hato::web
