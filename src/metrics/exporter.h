// The metrics endpoint: a tiny HTTP/1.1 listener (config `[metrics] listen`,
// off by default) that answers `GET /metrics` with the Prometheus text
// format produced by a render function. One request per connection; the
// request must arrive within kMetricsRequestSeconds and fit in
// kMaxHttpRequestBytes (431 past it); anything but GET/HEAD /metrics gets
// 404/405/400. At most kMaxMetricsConnections at once (further ones are
// closed at once).
#pragma once

#include <functional>
#include <string>

#include "io/asio.h"

namespace hato::metrics {

inline constexpr int kMetricsRequestSeconds = 5;
inline constexpr size_t kMaxMetricsConnections = 16;

// Accepts until the acceptor is closed. `render` runs on `blocking` (it may
// read the store), or on the acceptor's executor when that is null.
awaitable<void> ServeMetrics(tcp::acceptor& acceptor, std::function<std::string()> render,
                             asio::thread_pool* blocking = nullptr);

}  // namespace hato::metrics
