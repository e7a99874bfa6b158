#include "web/figures.h"

#include <algorithm>
#include <chrono>
#include <ctime>

namespace hato::web {

void Figures::Start() {
  SampleNow();
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, std::chrono::seconds(kFigureIntervalSeconds),
                   [this] { return stopping_; });
      if (stopping_) break;
      lock.unlock();
      SampleNow();
      lock.lock();
    }
  });
}

void Figures::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Figures::SampleNow() {
  FigureSample s;
  s.at = std::time(nullptr);
  if (watchdog_) {
    auto snap = watchdog_->Current();
    s.commit_latency_ms = snap->commit_latency_ms;
    if (snap->queue) {
      s.queue_messages = snap->queue->messages;
      if (snap->queue->oldest_created_at > 0)
        s.queue_oldest_s = std::max<int64_t>(0, s.at - snap->queue->oldest_created_at);
    }
  }
  uint64_t accepted = 0, sent = 0, failures = 0;
  if (counters_) {
    accepted = counters_->smtp_accepted.load(std::memory_order_relaxed);
    sent = counters_->outbound_delivered.load(std::memory_order_relaxed);
    for (const auto& f : counters_->login_failures) failures += f.load(std::memory_order_relaxed);
  }
  std::lock_guard lock(mu_);
  for (const auto& [name, admission] : connections_) {
    if (admission) s.connections[name] = admission->live();
  }
  if (last_at_ > 0 && s.at > last_at_) {
    double dt = static_cast<double>(s.at - last_at_);
    s.deliveries_per_s = static_cast<double>(accepted - last_accepted_) / dt;
    s.sent_per_s = static_cast<double>(sent - last_sent_) / dt;
  }
  s.login_failures = last_at_ > 0 ? failures - last_failures_ : 0;
  last_at_ = s.at;
  last_accepted_ = accepted;
  last_sent_ = sent;
  last_failures_ = failures;
  samples_.push_back(std::move(s));
  while (samples_.size() > kFigureSamples) samples_.pop_front();
}

std::deque<FigureSample> Figures::Samples() const {
  std::lock_guard lock(mu_);
  return samples_;
}

}  // namespace hato::web
