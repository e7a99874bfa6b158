#include "app/http_routes.h"

#include <boost/json.hpp>

#include "app/setup.h"
#include "base/strings.h"
#include "http/static_files.h"
#include "io/await.h"
#include "jmap/api.h"
#include "lists/engine.h"
#include "lists/http.h"
#include "web/routes.h"

namespace hato::app {
namespace {

// GET /api/whoami: the authenticated account (web UI, tests).
awaitable<http::Response> WhoAmI(http::Request& req) {
  boost::json::object o;
  o["account"] = req.account->address;
  o["via"] = req.account->via;
  co_return http::Response::Json(200, boost::json::serialize(o));
}

// The built webmail: [web] root (relative to the data directory), else the
// folder web/ beside the binary (build/web after `make`).
std::string WebRoot(const HttpContext& ctx) {
  std::string root = ctx.services->config->Get()->web.root;
  if (root.empty()) return web::DefaultWebRoot();
  return root.front() == '/' ? root : ctx.data_dir + "/" + root;
}

// GET /.well-known/mta-sts.txt on the host mta-sts.DOMAIN (RFC 8461 3.3):
// the policy of [mta_sts] for a local DOMAIN, as text/plain; 404 for any
// other host, a domain that is not local, or mode "off". The policy is read
// from the configuration at each request, so a SIGHUP reload changes it.
http::Handler MtaStsPolicyHandler(server::Services* svc) {
  return [svc](http::Request& req) -> awaitable<http::Response> {
    std::string host = AsciiLower(req.Get("host").value_or(""));
    if (size_t colon = host.rfind(':');
        colon != std::string::npos && host.find(']') == std::string::npos) {
      host.resize(colon);
    }
    if (!host.empty() && host.back() == '.') host.pop_back();
    constexpr std::string_view kPrefix = "mta-sts.";
    auto cfg = svc->config->Get();
    std::string policy = PublishedMtaStsPolicy(*cfg);
    if (policy.empty() || host.size() <= kPrefix.size() || host.rfind(kPrefix, 0) != 0) {
      co_return http::Response::Text(404, "no MTA-STS policy here\n");
    }
    std::string domain = host.substr(kPrefix.size());
    store::Store* store = svc->store;
    auto check = [store, domain] { return store->IsLocalDomain(domain); };
    Result<bool> local = co_await io::Offload(*svc->blocking, std::move(check));
    if (!local) co_return http::Response::Text(503, "try again later\n");
    if (!*local) co_return http::Response::Text(404, "no MTA-STS policy for this domain\n");
    http::Response r = http::Response::Text(200, std::move(policy));
    r.Set("Content-Type", "text/plain");
    co_return r;
  };
}

}  // namespace

void RegisterHttpRoutes(http::Router& router, const HttpContext& ctx) {
  router.Add("GET", "/api/whoami", WhoAmI, http::Access::kAccount);
  // JMAP (RFC 8620, RFC 8621): /.well-known/jmap, /jmap/api/, upload,
  // download, eventsource.
  jmap::AddRoutes(router, *ctx.services, ctx.data_dir);
  // The web site: webmail at "/", login, status, autoconfig (web/routes.h).
  std::string web_root = WebRoot(ctx);
  web::RegisterWebRoutes(router, web::WebContext{ctx.services, ctx.watchdog, web_root, ctx.data_dir,
                                                 ctx.audit, ctx.figures});
  // Mailing lists: RFC 8058 one-click unsubscribe (lists/http.h), keyed by
  // DATA/list-unsubscribe.key (made by `serve` before the routes).
  if (auto key = lists::LoadUnsubscribeKey(*io::FileSystem::Default(), ctx.data_dir)) {
    lists::AddUnsubscribeRoutes(router, ctx.services, *key);
  }
  // ACME HTTP-01 (RFC 8555 section 8.3): GET
  // /.well-known/acme-challenge/TOKEN answers the key authorization of a
  // challenge the ACME client is taking part in; anything else is 404.
  if (ctx.acme_challenges != nullptr) {
    acme::HttpChallenges* challenges = ctx.acme_challenges;
    router.AddPrefix("GET", "/.well-known/acme-challenge/",
                     [challenges](http::Request& req) -> awaitable<http::Response> {
                       std::optional<std::string> answer;
                       if (acme::IsValidToken(req.rest)) answer = challenges->Get(req.rest);
                       if (!answer) co_return http::Response::Text(404, "no such challenge\n");
                       http::Response r = http::Response::Text(200, std::move(*answer));
                       r.Set("Content-Type", "application/octet-stream");
                       co_return r;
                     });
  }
  // MTA-STS (RFC 8461 3.2): the policy of every local domain.
  router.Add("GET", "/.well-known/mta-sts.txt", MtaStsPolicyHandler(ctx.services));
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
