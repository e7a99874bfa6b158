#include "lists/http.h"

#include <spdlog/spdlog.h>

#include "base/strings.h"
#include "io/await.h"
#include "lists/proto.h"
#include "web/health.h"

namespace hato::lists {
namespace {

http::Response Page(int status, UnsubscribePage page, bool japanese, std::string_view list,
                    std::string_view member, std::string_view action) {
  http::Response r;
  r.status = status;
  r.body = RenderUnsubscribePage(page, japanese, list, member, action);
  r.Set("Content-Type", "text/html; charset=utf-8");
  r.Set("Vary", "Accept-Language");
  r.Set("Cache-Control", "no-store");
  // Self-contained: no script, the form posts back to this server only.
  r.Set("Content-Security-Policy",
        "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  r.Set("X-Content-Type-Options", "nosniff");
  r.Set("Referrer-Policy", "no-referrer");  // the token stays out of other sites' logs
  return r;
}

enum class Outcome { kLeft, kNotMember, kError };

}  // namespace

void AddUnsubscribeRoutes(http::Router& router, server::Services* svc, std::string key) {
  auto handler = [svc, key](http::Request& req) -> awaitable<http::Response> {
    bool ja = web::PickLang(req.Get("accept-language").value_or("")) == web::Lang::kJa;
    std::string token = req.Param("token").value_or("");
    auto target = CheckUnsubscribeToken(key, token);
    std::string action = std::string(kUnsubscribePath) + "?token=" + token;
    if (!target) {
      co_return Page(400, UnsubscribePage::kInvalid, ja, "", "", "");
    }
    if (req.method != "POST") {
      co_return Page(200, UnsubscribePage::kConfirm, ja, target->list, target->member, action);
    }
    if (!IsOneClickPost(req.Get("content-type").value_or(""), req.body)) {
      http::Response r =
          http::Response::Text(400, "expected the body List-Unsubscribe=One-Click (RFC 8058)\n");
      co_return r;
    }
    store::Store* store = svc->store;
    auto leave = [store, t = *target]() -> Result<Outcome> {
      auto list = store->FindList(t.list);
      if (!list) {
        if (list.error().kind == ErrorKind::kNotFound) return Outcome::kNotMember;
        return list.error();
      }
      auto st = store->RemoveListMember(list->id, t.member);
      if (!st) {
        if (st.error().kind == ErrorKind::kNotFound) return Outcome::kNotMember;
        return st.error();
      }
      return Outcome::kLeft;
    };
    Result<Outcome> out = co_await io::Offload(*svc->blocking, std::move(leave));
    if (!out) {
      spdlog::error("lists: one-click unsubscribe of <{}> from {}: {}", target->member,
                    target->list, out.error().message);
      http::Response r = http::Response::Text(503, "try again later\n");
      r.Set("Retry-After", "60");
      co_return r;
    }
    if (*out == Outcome::kLeft) {
      spdlog::info("lists: {} <{}> left (one-click, {})", target->list, target->member,
                   req.peer_ip);
    }
    // Leaving twice is fine: the member is not on the list either way.
    co_return Page(200, UnsubscribePage::kDone, ja, target->list, target->member, "");
  };
  router.Add("GET", std::string(kUnsubscribePath), handler);
  router.Add("POST", std::string(kUnsubscribePath), handler);
}

}  // namespace hato::lists
