// The metrics endpoint (config `[metrics] listen`, off by default): `GET
// /metrics` answered with the Prometheus text format produced by a render
// function. It is served by the one HTTP server (src/http/server.h) on its
// own listener, so the HTTP limits and replies apply (404 elsewhere, 405
// for other methods, 431 for oversized heads, 408 on timeouts).
#pragma once

#include <functional>
#include <string>

#include "http/server.h"

namespace hato::metrics {

// Adds GET /metrics to `router`. `render` runs on `blocking` (it may read
// the store), or on the event loop when that is null.
void AddMetricsRoute(http::Router& router, std::function<std::string()> render,
                     asio::thread_pool* blocking);

}  // namespace hato::metrics
