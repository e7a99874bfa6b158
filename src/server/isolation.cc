#include "server/isolation.h"

#include <spdlog/spdlog.h>

namespace hato::server {

namespace {
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void LoopMonitor::Start(asio::any_io_executor executor, std::string name,
                        metrics::Histogram* also) {
  name_ = std::move(name);
  also_ = also;
  timer_.emplace(executor);
  last_beat_ns_ = NowNs();
  Arm();
  watchdog_ = std::thread([this] {
    int64_t reported_beat = 0;
    std::unique_lock lock(watchdog_mu_);
    while (!watchdog_cv_.wait_for(lock, kLoopBlockedWarning, [this] { return stop_; })) {
      int64_t beat = last_beat_ns_.load(std::memory_order_relaxed);
      auto since = std::chrono::nanoseconds(NowNs() - beat);
      if (since > kLoopProbeInterval + kLoopBlockedWarning && beat != reported_beat) {
        reported_beat = beat;  // once per blocked stretch
        spdlog::warn("watchdog: the {} has been blocked for {} ms", name_,
                     std::chrono::duration_cast<std::chrono::milliseconds>(since).count() -
                         kLoopProbeInterval.count());
      }
    }
  });
}

void LoopMonitor::Stop() {
  {
    std::lock_guard lock(watchdog_mu_);
    stop_ = true;
  }
  watchdog_cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  if (timer_) timer_->cancel();
}

void LoopMonitor::Arm() {
  expected_ = std::chrono::steady_clock::now() + kLoopProbeInterval;
  timer_->expires_at(expected_);
  timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    last_beat_ns_.store(NowNs(), std::memory_order_relaxed);
    auto late = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - expected_);
    int64_t ms = std::max<int64_t>(0, late.count());
    lag_.Observe(ms);
    if (also_) also_->Observe(ms);
    int64_t prev = max_lag_ms_.load(std::memory_order_relaxed);
    while (ms > prev && !max_lag_ms_.compare_exchange_weak(prev, ms)) {
    }
    if (late > kLoopBlockedWarning) {
      blocked_.fetch_add(1, std::memory_order_relaxed);
      // The watchdog line: something ran on the event loop for this long.
      spdlog::warn("{} was blocked for {} ms (every session on it waited)", name_, ms);
    }
    Arm();
  });
}

}  // namespace hato::server
