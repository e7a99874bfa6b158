#include "metrics/exporter.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>

#include "io/await.h"
#include "io/net.h"
#include "metrics/http.h"

namespace hato::metrics {
namespace {

constexpr char kTextFormat[] = "text/plain; version=0.0.4; charset=utf-8";

awaitable<void> ServeOne(tcp::socket socket, std::function<std::string()> render,
                         asio::thread_pool* blocking, std::shared_ptr<std::atomic<size_t>> live) {
  struct Release {
    std::atomic<size_t>& n;
    ~Release() { --n; }
  } release{*live};
  io::Connection conn(std::move(socket), nullptr);
  // One deadline for the whole request: a client trickling bytes cannot hold on.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kMetricsRequestSeconds);
  HttpRequest req;
  while (true) {
    req = ParseHttpRequest(conn.buffer());
    if (req.verdict != HttpRequest::Verdict::kNeedMore) break;
    auto left =
        std::chrono::ceil<std::chrono::seconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) co_return;
    io::ReadStatus st = co_await conn.ReadMore(left);
    if (st != io::ReadStatus::kOk) co_return;
  }
  std::string response;
  switch (req.verdict) {
    case HttpRequest::Verdict::kTooLarge:
      response = HttpResponse(431, "Request Header Fields Too Large", "text/plain", "too large\n");
      break;
    case HttpRequest::Verdict::kBad:
      response = HttpResponse(400, "Bad Request", "text/plain", "bad request\n");
      break;
    default:
      if (req.target != "/metrics") {
        response = HttpResponse(404, "Not Found", "text/plain", "try /metrics\n");
      } else if (req.method != "GET" && req.method != "HEAD") {
        response = HttpResponse(405, "Method Not Allowed", "text/plain", "GET only\n");
      } else {
        std::string body;
        if (blocking) {
          // Named, not a temporary in the co_await expression: see io/await.h.
          std::function<std::string()> job = render;
          body = co_await io::Offload(*blocking, std::move(job));
        } else {
          body = render();
        }
        response = HttpResponse(200, "OK", kTextFormat, body);
        if (req.method == "HEAD") response.resize(response.find("\r\n\r\n") + 4);
      }
  }
  bool written = co_await conn.Write(response);
  (void)written;
  conn.Close();
}

}  // namespace

awaitable<void> ServeMetrics(tcp::acceptor& acceptor, std::function<std::string()> render,
                             asio::thread_pool* blocking) {
  auto live = std::make_shared<std::atomic<size_t>>(0);
  while (true) {
    boost::system::error_code ec;
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    tcp::socket socket = co_await acceptor.async_accept(token);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await t.async_wait(token);
      continue;
    }
    if (live->load() >= kMaxMetricsConnections) {
      socket.close(ec);
      continue;
    }
    ++*live;
    auto one = ServeOne(std::move(socket), render, blocking, live);
    asio::co_spawn(acceptor.get_executor(), std::move(one), asio::detached);
  }
}

}  // namespace hato::metrics
