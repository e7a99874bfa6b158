#include "web/routes.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <ctime>
#include <filesystem>

#include "base/strings.h"
#include "http/auth.h"
#include "http/static_files.h"
#include "io/await.h"
#include "server/login.h"
#include "web/account_api.h"
#include "web/admin_api.h"
#include "web/autoconfig.h"
#include "web/escape.h"
#include "web/health.h"
#include "web/security.h"

namespace hato::web {
namespace {

constexpr size_t kMaxLoginField = 512;

// Headers every page of the site carries.
http::Response& Harden(http::Response& r, std::string_view csp) {
  r.Set("Content-Security-Policy", std::string(csp));
  r.Set("X-Content-Type-Options", "nosniff");
  r.Set("Referrer-Policy", "no-referrer");
  r.Set("X-Frame-Options", "DENY");
  r.Set("Cross-Origin-Opener-Policy", "same-origin");
  return r;
}

http::Response JsonError(int status, std::string_view error) {
  http::Response r = http::Response::Json(status, "{\"error\":" + JsonString(error) + "}");
  r.Set("Cache-Control", "no-store");
  return r;
}

std::string Host(const http::Request& req) { return std::string(req.Get("host").value_or("")); }

bool Secure(const http::Request& req) { return req.is_tls; }

// The session token behind a cookie-authenticated request, with its expiry.
struct CookieSession {
  std::string token;
  store::AccessToken row;
};

awaitable<std::optional<CookieSession>> SessionOf(server::Services& svc, http::Request& req) {
  if (!req.account || req.account->via != "cookie") co_return std::nullopt;
  auto cookie = req.Cookie(http::kSessionCookie);
  if (!cookie) co_return std::nullopt;
  store::Store* store = svc.store;
  std::string hash = http::TokenHash(*cookie);
  auto find = [store, hash] { return store->FindToken(hash, std::time(nullptr)); };
  Result<store::AccessToken> row = co_await io::Offload(*svc.blocking, std::move(find));
  if (!row) co_return std::nullopt;
  co_return CookieSession{*cookie, *row};
}

std::string SessionJson(const std::string& address, const std::string& token, int64_t expires) {
  return "{\"username\":" + JsonString(address) +
         ",\"csrfToken\":" + JsonString(CsrfTokenFor(token)) +
         ",\"expiresAt\":" + std::to_string(expires) + "}";
}

// POST /web/login {"username","password"}: the shared login path (penalties
// as for IMAP/POP3), then a "session" token in an HttpOnly cookie.
http::Handler Login(server::Services* svc) {
  return [svc](http::Request& req) -> awaitable<http::Response> {
    // Login CSRF: only our own pages may log someone in.
    if (!IsSameOrigin(req.Get("origin").value_or(""), Host(req), Secure(req)))
      co_return JsonError(403, "forbidden");
    auto cfg = svc->config->Get();
    if (!req.is_tls && !(req.loopback && cfg->auth.allow_plaintext_on_loopback))
      co_return JsonError(403, "use https");
    std::string user, password;
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(req.body, ec);
    if (ec || !v.is_object()) co_return JsonError(400, "expected a JSON object");
    const auto& o = v.as_object();
    auto field = [&o](const char* k, std::string& out) {
      auto* p = o.if_contains(k);
      if (!p || !p->is_string() || p->as_string().size() > kMaxLoginField) return false;
      out = std::string(p->as_string());
      return true;
    };
    if (!field("username", user) || !field("password", password) || user.empty())
      co_return JsonError(400, "username and password are needed");
    server::LoginResult r =
        co_await server::CheckLogin(*svc, req.peer_ip, std::move(user), std::move(password), "web");
    if (r.outcome == server::LoginOutcome::kTemporary) {
      http::Response t = JsonError(503, "try later");
      t.Set("Retry-After", "5");
      co_return t;
    }
    if (r.outcome != server::LoginOutcome::kOk) co_return JsonError(401, "unauthorized");
    int64_t ttl = int64_t{cfg->web.session_hours} * 3600;
    store::Store* store = svc->store;
    int64_t account = r.account_id;
    auto language = std::make_shared<std::string>();
    auto create = [store, account, ttl, language] {
      auto t = http::CreateToken(*store, account, "session", "", ttl);
      if (t) {
        auto l = store->GetAccountLanguage(account);
        if (l) *language = *l;
      }
      return t;
    };
    Result<http::NewToken> token = co_await io::Offload(*svc->blocking, std::move(create));
    if (!token) {
      spdlog::error("web: cannot create a session for {}: {}", r.address, token.error().message);
      http::Response t = JsonError(503, "try later");
      t.Set("Retry-After", "5");
      co_return t;
    }
    spdlog::info("web: login {} from {}", r.address, req.peer_ip);
    http::Response ok =
        http::Response::Json(200, SessionJson(r.address, token->token, std::time(nullptr) + ttl));
    ok.Set("Cache-Control", "no-store");
    // The account's language for the pages ("" deletes an earlier
    // account's), before the session cookie: a client that keeps only the
    // last Set-Cookie still gets the session.
    if (IsAccountLanguage(*language))
      ok.headers.push_back({"Set-Cookie", LanguageCookie(*language, Secure(req))});
    ok.headers.push_back({"Set-Cookie", SessionCookie(token->token, ttl, Secure(req))});
    co_return ok;
  };
}

http::Handler SessionInfo(server::Services* svc) {
  return [svc](http::Request& req) -> awaitable<http::Response> {
    auto s = co_await SessionOf(*svc, req);
    if (!s) co_return JsonError(401, "no session");
    http::Response r =
        http::Response::Json(200, SessionJson(req.account->address, s->token, s->row.expires_at));
    r.Set("Cache-Control", "no-store");
    co_return r;
  };
}

http::Handler Logout(server::Services* svc) {
  return [svc](http::Request& req) -> awaitable<http::Response> {
    auto s = co_await SessionOf(*svc, req);
    http::Response r;
    r.status = 204;
    r.Set("Cache-Control", "no-store");
    r.Set("Set-Cookie", SessionCookie("", 0, Secure(req)));
    if (!s) co_return r;
    store::Store* store = svc->store;
    int64_t account = s->row.account_id, id = s->row.id;
    auto revoke = [store, account, id] { return store->RevokeToken(account, id); };
    Status st = co_await io::Offload(*svc->blocking, std::move(revoke));
    if (!st) {
      spdlog::error("web: logout: {}", st.error().message);
      co_return JsonError(503, "try later");
    }
    co_return r;
  };
}

// The status page and health checks: from the watchdog's snapshot in
// memory, never the store.
HealthSnapshot Snapshot(const Watchdog* w) {
  int64_t now = std::time(nullptr);
  if (!w) return UnreachableSnapshot(now, {}, {});
  return AtTime(*w->Current(), now);
}

http::Handler StatusPage(const Watchdog* w, bool json) {
  return [w, json](http::Request& req) -> awaitable<http::Response> {
    HealthSnapshot s = Snapshot(w);
    http::Response r;
    if (json) {
      r = http::Response::Json(200, RenderStatusJson(s));
    } else {
      r.body = RenderStatusHtml(s, PickLang(req.Get("accept-language").value_or("")));
      r.Set("Content-Type", "text/html; charset=utf-8");
      r.Set("Vary", "Accept-Language");
      Harden(r, kStatusCsp);
    }
    r.Set("Cache-Control", "no-cache");
    co_return r;
  };
}

http::Handler Readyz(const Watchdog* w) {
  return [w](http::Request&) -> awaitable<http::Response> {
    HealthSnapshot s = Snapshot(w);
    if (s.overall == Level::kDown) {
      http::Response r = http::Response::Text(503, "not ready: " + s.storage_reason + "\n");
      r.Set("Retry-After", "5");
      co_return r;
    }
    co_return http::Response::Text(200, std::string(LevelName(s.overall)) + "\n");
  };
}

// Autoconfig: the address must parse and its domain be ours.
http::Handler Autoconfig(server::Services* svc, bool apple) {
  return [svc, apple](http::Request& req) -> awaitable<http::Response> {
    std::string raw = req.Param("emailaddress").value_or("");
    std::optional<std::string> address;
    if (!raw.empty()) address = ParseEmailAddress(raw);
    if ((!raw.empty() && !address) || (apple && !address))
      co_return http::Response::Text(400, "expected ?emailaddress=local@domain\n");
    std::string domain;
    if (address) {
      domain = address->substr(address->rfind('@') + 1);
    } else {
      domain = AsciiLower(Host(req).substr(0, Host(req).rfind(':')));
      if (StartsWithIgnoreCase(domain, "autoconfig.")) domain = domain.substr(11);
    }
    store::Store* store = svc->store;
    auto local = [store, domain] { return store->IsLocalDomain(domain); };
    auto is_local = co_await io::Offload(*svc->blocking, std::move(local));
    if (!is_local) co_return http::Response::Text(503, "try later\n");
    if (!*is_local) co_return http::Response::Text(404, "not a domain of this server\n");
    ClientSettings s = SettingsFor(*svc->config->Get(), domain);
    http::Response r;
    r.Set("Cache-Control", "no-cache");
    if (apple) {
      r.body = AppleMobileConfig(s, *address);
      r.Set("Content-Type", "application/x-apple-aspen-config");
      r.Set("Content-Disposition", "attachment; filename=\"" + domain + ".mobileconfig\"");
    } else {
      r.body = ThunderbirdXml(s, address.value_or(""));
      r.Set("Content-Type", "application/xml; charset=utf-8");
    }
    co_return r;
  };
}

}  // namespace

std::string DefaultWebRoot() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "web";
  return (exe.parent_path() / "web").string();
}

void RegisterWebRoutes(http::Router& router, const WebContext& ctx) {
  server::Services* svc = ctx.services;
  // The webmail: index.html is revalidated, hashed assets are immutable.
  http::Handler index = http::StaticFiles(ctx.root, svc->blocking, "no-cache");
  http::Handler assets =
      http::StaticFiles(ctx.root + "/assets", svc->blocking, "public, max-age=31536000, immutable");
  router.Add("GET", "/", [index](http::Request& req) -> awaitable<http::Response> {
    req.rest = "index.html";
    http::Response r = co_await index(req);
    if (r.status == 404) {
      r = http::Response::Text(503, "The webmail is not built: run make (scripts/build-web.sh)\n");
    }
    co_return std::move(Harden(r, kWebmailCsp));
  });
  router.AddPrefix("GET", "/assets/", [assets](http::Request& req) -> awaitable<http::Response> {
    http::Response r = co_await assets(req);
    co_return std::move(Harden(r, kWebmailCsp));
  });
  // The member's pages and the admin console: pages of their own (built by
  // Vite beside index.html), so that they never load the mail views.
  for (const char* page : {"account", "admin"}) {
    std::string file = std::string(page) + ".html";
    router.Add("GET", std::string("/") + page,
               [index, file](http::Request& req) -> awaitable<http::Response> {
                 req.rest = file;
                 http::Response r = co_await index(req);
                 if (r.status == 404) {
                   r = http::Response::Text(
                       503, "The web site is not built: run make (scripts/build-web.sh)\n");
                 }
                 co_return std::move(Harden(r, kWebmailCsp));
               });
  }
  RegisterAccountRoutes(router, ctx);
  RegisterAdminRoutes(router, ctx);
  router.Add("POST", "/web/login", Login(svc));
  router.Add("GET", "/web/session", SessionInfo(svc));
  router.Add("POST", "/web/logout", Logout(svc), http::Access::kAccount);
  router.Add("GET", "/healthz", [](http::Request&) -> awaitable<http::Response> {
    co_return http::Response::Text(200, "ok\n");
  });
  router.Add("GET", "/readyz", Readyz(ctx.watchdog));
  router.Add("GET", "/status", StatusPage(ctx.watchdog, false));
  router.Add("GET", "/status.json", StatusPage(ctx.watchdog, true));
  router.Add("GET", "/.well-known/autoconfig/mail/config-v1.1.xml", Autoconfig(svc, false));
  router.Add("GET", "/mail/config-v1.1.xml", Autoconfig(svc, false));
  router.Add("GET", "/autoconfig/apple.mobileconfig", Autoconfig(svc, true));
}

}  // namespace hato::web
