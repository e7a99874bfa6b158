// The web site's routes on the one HTTP server (src/http/server.h):
//   GET  /, /assets/...        the webmail (web/, built by scripts/build-web.sh)
//   POST /web/login            address + password -> session cookie + CSRF token
//   GET  /web/session          who the cookie is for (and its CSRF token)
//   POST /web/logout           ends the session (token revoked)
//   GET  /healthz, /readyz     for load balancers (liveness, readiness)
//   GET  /status, /status.json the status page, from the watchdog's snapshot
//   GET  /.well-known/autoconfig/mail/config-v1.1.xml, /mail/config-v1.1.xml
//   GET  /autoconfig/apple.mobileconfig
// Every HTML answer carries a CSP without inline script (web/security.h).
// SECURITY: the login takes the shared penalty path (server::CheckLogin);
// passwords and tokens never appear in URLs or logs; the session cookie is
// HttpOnly, SameSite=Strict, Secure over TLS.
#pragma once

#include <string>

#include "http/server.h"
#include "server/services.h"
#include "web/watchdog.h"

namespace hato::web {

// A web login lasts this long by default ([web] session_hours); then the
// login page again.
inline constexpr int64_t kSessionSeconds = 12 * 3600;

class AuditLog;
class Figures;

struct WebContext {
  server::Services* services = nullptr;
  const Watchdog* watchdog = nullptr;  // null: /status says "down"
  std::string root;                    // the built webmail's folder
  std::string data_dir;                // the server's data directory
  AuditLog* audit = nullptr;           // admin actions (web/audit.h); null: not recorded
  Figures* figures = nullptr;          // key figures of the last hours (web/figures.h)
};

// The folder "web" beside the running binary (the default [web] root).
std::string DefaultWebRoot();

void RegisterWebRoutes(http::Router& router, const WebContext& ctx);

}  // namespace hato::web
