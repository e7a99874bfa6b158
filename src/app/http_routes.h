// Where every HTTP feature registers its routes on the one server
// (src/http/server.h): JMAP, the web site and webmail, list unsubscribe,
// ACME challenges... Each feature adds one call in RegisterHttpRoutes, so
// features do not edit each other's code or serve.cc.
#pragma once

#include <string>

#include "http/server.h"
#include "server/services.h"

namespace hato::app {

struct HttpContext {
  server::Services* services = nullptr;
  std::string data_dir;
};

void RegisterHttpRoutes(http::Router& router, const HttpContext& ctx);

}  // namespace hato::app
