#include "metrics/exporter.h"

#include <memory>

#include "io/await.h"

namespace hato::metrics {
namespace {
constexpr char kTextFormat[] = "text/plain; version=0.0.4; charset=utf-8";
}

void AddMetricsRoute(http::Router& router, std::function<std::string()> render,
                     asio::thread_pool* blocking) {
  auto fn = std::make_shared<std::function<std::string()>>(std::move(render));
  router.Add("GET", "/metrics", [fn, blocking](http::Request&) -> awaitable<http::Response> {
    std::string body;
    if (blocking) {
      auto call = [fn]() { return (*fn)(); };
      body = co_await io::Offload(*blocking, std::move(call));
    } else {
      body = (*fn)();
    }
    http::Response r;
    r.Set("Content-Type", kTextFormat);
    r.body = std::move(body);
    co_return r;
  });
}

}  // namespace hato::metrics
