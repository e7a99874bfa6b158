// The health watchdog: keeps the in-memory HealthSnapshot (web/health.h)
// current, so /status, /healthz and /readyz answer from memory and never wait
// on the store. Two threads of its own:
//  - the tick thread (every kTickMs) reads only non-blocking state (the
//    store's writer timing, the commit tracker, the disk monitor, session
//    counts) and, when no write has committed for kProbeIdleMs, starts a
//    write probe (store::WriteProbe, one row group-committed with fsync): a
//    probe that does not come back within store.slow_commit_ms shows as
//    "degraded" even on an idle server;
//  - the slow thread reads what may block (the outbound queue size from the
//    store, the admin notes file) and hands the results to the tick thread;
//    if it hangs, the snapshot keeps the last values.
// Thread-safe: Current() may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/services.h"
#include "web/health.h"

namespace hato::web {

// Records the store's commits (StoreOptions::on_commit, on the writer thread).
class CommitTracker {
 public:
  void Record(int64_t ms);
  int64_t last_ms() const { return last_ms_.load(); }
  int64_t last_end_steady_ms() const { return last_end_.load(); }  // 0 = none yet

 private:
  std::atomic<int64_t> last_ms_{-1};
  std::atomic<int64_t> last_end_{0};
};

struct ProtocolSource {
  std::string name;
  bool writes = false;
  const server::Admission* admission = nullptr;  // null: no session count
  std::function<size_t()> max_sessions;          // its limit (from the live config)
};

struct WatchdogOptions {
  store::Store* store = nullptr;
  const server::DiskMonitor* disk = nullptr;
  const server::ConfigSource* config = nullptr;
  const CommitTracker* commits = nullptr;
  std::string notes_path;  // the admin notes file (ParseNotes format)
  std::vector<ProtocolSource> protocols;
};

class Watchdog {
 public:
  static constexpr int kTickMs = 250;
  static constexpr int kProbeIdleMs = 2000;
  static constexpr int kSlowEveryMs = 2000;

  explicit Watchdog(WatchdogOptions options);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void Start();
  void Stop();  // joins both threads; an unfinished probe completes into a no-op

  // The latest snapshot (never null after construction).
  std::shared_ptr<const HealthSnapshot> Current() const;

 private:
  struct Shared;  // state the store's probe callback may touch after Stop
  void TickLoop();
  void SlowLoop();
  void Tick();

  WatchdogOptions options_;
  std::shared_ptr<Shared> shared_;
  std::thread tick_, slow_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                       // guarded by mu_
  std::shared_ptr<const HealthSnapshot> snap_;  // guarded by mu_
};

}  // namespace hato::web
