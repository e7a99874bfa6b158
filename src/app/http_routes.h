// Where every HTTP feature registers its routes on the one server
// (src/http/server.h): JMAP, the web site and webmail, list unsubscribe,
// ACME challenges... Each feature adds one call in RegisterHttpRoutes, so
// features do not edit each other's code or serve.cc.
#pragma once

#include <string>

#include "acme/client.h"
#include "http/server.h"
#include "server/services.h"
#include "web/audit.h"
#include "web/figures.h"
#include "web/watchdog.h"

namespace hato::app {

struct HttpContext {
  server::Services* services = nullptr;
  std::string data_dir;
  const web::Watchdog* watchdog = nullptr;  // the health snapshot (web/watchdog.h)
  web::AuditLog* audit = nullptr;           // admin actions (web/audit.h)
  web::Figures* figures = nullptr;          // key figures for the admin console (web/figures.h)
  // HTTP-01 answers of the ACME client (acme/client.h); null when [acme] is off.
  acme::HttpChallenges* acme_challenges = nullptr;
};

void RegisterHttpRoutes(http::Router& router, const HttpContext& ctx);

}  // namespace hato::app
