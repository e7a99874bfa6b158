#include "server/event_loops.h"

#include <algorithm>
#include <string>

#include "base/thread_name.h"

namespace hato::server {

namespace {
thread_local std::optional<asio::any_io_executor> t_loop;
}  // namespace

std::optional<asio::any_io_executor> CurrentLoop() { return t_loop; }

LoopThreadScope::LoopThreadScope(asio::any_io_executor ex) : previous_(t_loop) {
  t_loop = std::move(ex);
}

LoopThreadScope::~LoopThreadScope() { t_loop = previous_; }

EventLoops::EventLoops(size_t n) {
  if (n == 0) n = DefaultEventLoops(std::thread::hardware_concurrency());
  for (size_t i = 0; i < n; ++i) loops_.push_back(std::make_unique<Loop>());
}

EventLoops::~EventLoops() {
  Stop();
  // Last loop first: a coroutine abandoned on loop i > 0 may be a child of
  // one on loop 0 (the queue runner awaiting a session on its delivery loop)
  // and holds work on loop 0's context until its frame is destroyed here.
  while (!loops_.empty()) loops_.pop_back();
}

void EventLoops::Start() {
  for (size_t i = 0; i < loops_.size(); ++i) {
    Loop& l = *loops_[i];
    l.work.emplace(l.io.get_executor());
    l.monitor.Start(l.io.get_executor(), "event loop " + std::to_string(i), &lag_);
    l.thread = std::thread([&l, i] {
      NameThisThread(("hato-loop-" + std::to_string(i)).c_str());
      LoopThreadScope scope(l.io.get_executor());
      l.io.run();
    });
  }
}

void EventLoops::Stop() {
  for (auto& l : loops_) {
    l->work.reset();
    l->io.stop();
  }
  for (auto& l : loops_) {
    if (l->thread.joinable()) l->thread.join();
    l->monitor.Stop();  // its timer is bound to the (now stopped) loop
  }
}

int64_t EventLoops::max_lag_ms() const {
  int64_t m = 0;
  for (const auto& l : loops_) m = std::max(m, l->monitor.max_lag_ms());
  return m;
}

uint64_t EventLoops::blocked() const {
  uint64_t n = 0;
  for (const auto& l : loops_) n += l->monitor.blocked();
  return n;
}

}  // namespace hato::server
