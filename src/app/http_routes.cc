#include "app/http_routes.h"

#include <boost/json.hpp>

#include "http/static_files.h"

namespace hato::app {
namespace {

// GET /api/whoami: the authenticated account (web UI, tests).
awaitable<http::Response> WhoAmI(http::Request& req) {
  boost::json::object o;
  o["account"] = req.account->address;
  o["via"] = req.account->via;
  co_return http::Response::Json(200, boost::json::serialize(o));
}

}  // namespace

void RegisterHttpRoutes(http::Router& router, const HttpContext& ctx) {
  router.Add("GET", "/api/whoami", WhoAmI, http::Access::kAccount);
  // [http] static_dir: plain files under /static/ (no listing, ETag, .br/.gz).
  auto cfg = ctx.services->config->Get();
  if (!cfg->http.static_dir.empty()) {
    std::string dir = cfg->http.static_dir.front() == '/'
                          ? cfg->http.static_dir
                          : ctx.data_dir + "/" + cfg->http.static_dir;
    router.AddPrefix("GET", "/static/", http::StaticFiles(dir, ctx.services->blocking));
  }
}

}  // namespace hato::app
