// The key figures of the last hours for the admin console's small charts
// (issue 13, item 3), kept in memory only: every kFigureIntervalSeconds a
// sampler thread reads the watchdog's health snapshot (web/watchdog.h: commit
// latency, queue size and age, connections per protocol) and the service
// counters (deliveries, login failures) — never the store — and keeps the
// last kFigureSamples samples. Lost on restart, by design. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "server/services.h"
#include "web/watchdog.h"

namespace hato::web {

inline constexpr int kFigureIntervalSeconds = 60;
inline constexpr size_t kFigureSamples = 6 * 60;  // six hours at one a minute

struct FigureSample {
  int64_t at = 0;                  // unix seconds
  double deliveries_per_s = 0;     // messages accepted over SMTP (durable) per second
  double sent_per_s = 0;           // outbound recipients delivered per second
  uint64_t queue_messages = 0;     // outbound queue size
  int64_t queue_oldest_s = 0;      // age of its oldest message; 0 when empty
  int64_t commit_latency_ms = -1;  // storage commit latency; -1 unknown
  uint64_t login_failures = 0;     // failed logins since the previous sample, all protocols
  std::map<std::string, uint64_t> connections;  // live connections per protocol
};

class Figures {
 public:
  using Connections = std::vector<std::pair<std::string, const server::Admission*>>;
  Figures(const Watchdog* watchdog, const server::Counters* counters, Connections connections)
      : watchdog_(watchdog), counters_(counters), connections_(std::move(connections)) {}
  ~Figures() { Stop(); }
  // Takes a first sample now, then one every kFigureIntervalSeconds.
  void Start();
  void Stop();
  // Takes a sample now (also what Start's thread calls).
  void SampleNow();
  std::deque<FigureSample> Samples() const;

 private:
  const Watchdog* watchdog_;
  const server::Counters* counters_;
  Connections connections_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                                           // guarded by mu_
  std::deque<FigureSample> samples_;                                // guarded by mu_
  uint64_t last_accepted_ = 0, last_sent_ = 0, last_failures_ = 0;  // guarded by mu_
  int64_t last_at_ = 0;                                             // guarded by mu_
  std::thread thread_;
};

}  // namespace hato::web
