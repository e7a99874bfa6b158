#include "web/watchdog.h"

#include <chrono>
#include <ctime>

#include "io/fs.h"
#include "store/probe.h"

namespace hato::web {
namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void CommitTracker::Record(int64_t ms) {
  last_ms_ = ms;
  last_end_ = SteadyMs();
}

struct Watchdog::Shared {
  std::mutex mu;
  int64_t probe_started = 0;  // steady ms; 0 = no probe in flight
  int64_t probe_ended = 0;
  std::string last_error;  // of the last probe ("" = it succeeded)
  // From the slow thread.
  std::optional<store::QueueStats> queue;
  std::vector<Note> notes;
};

Watchdog::Watchdog(WatchdogOptions options)
    : options_(std::move(options)),
      shared_(std::make_shared<Shared>()),
      snap_(std::make_shared<const HealthSnapshot>()) {}

Watchdog::~Watchdog() { Stop(); }

void Watchdog::Start() {
  Tick();
  tick_ = std::thread([this] { TickLoop(); });
  slow_ = std::thread([this] { SlowLoop(); });
}

void Watchdog::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (tick_.joinable()) tick_.join();
  if (slow_.joinable()) slow_.join();
}

std::shared_ptr<const HealthSnapshot> Watchdog::Current() const {
  std::lock_guard lock(mu_);
  return snap_;
}

void Watchdog::TickLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(kTickMs));
    if (stopping_) break;
    lock.unlock();
    Tick();
    lock.lock();
  }
}

void Watchdog::SlowLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    std::vector<Note> notes;
    if (!options_.notes_path.empty()) {
      auto text = io::FileSystem::Default()->ReadFile(options_.notes_path);
      if (text) notes = ParseNotes(*text);
    }
    std::optional<store::QueueStats> queue;
    if (options_.store) {
      auto q = options_.store->GetQueueStats();
      if (q) queue = *q;
    }
    {
      std::lock_guard g(shared_->mu);
      shared_->notes = std::move(notes);
      if (queue) shared_->queue = queue;
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(kSlowEveryMs));
  }
}

void Watchdog::Tick() {
  auto cfg = options_.config ? options_.config->Get() : nullptr;
  int64_t now = SteadyMs();
  HealthInputs in;
  in.now = std::time(nullptr);
  if (cfg) {
    in.slow_commit_ms = cfg->store_slow_commit_ms;
    in.max_pending_writes = cfg->store_max_pending_writes;
  }
  if (options_.store) in.store = options_.store->Health();
  if (options_.disk) in.disk_low = options_.disk->low();
  int64_t last_end = options_.commits ? options_.commits->last_end_steady_ms() : 0;
  if (options_.commits && last_end > 0) {
    in.last_commit_ms = options_.commits->last_ms();
    in.last_commit_age_s = (now - last_end) / 1000;
  }
  bool start_probe = false;
  {
    std::lock_guard g(shared_->mu);
    if (shared_->probe_started) in.probe_in_flight_ms = now - shared_->probe_started;
    in.last_write_error = shared_->last_error;
    in.queue = shared_->queue;
    in.notes = shared_->notes;
    bool idle = last_end == 0 || now - last_end >= kProbeIdleMs || !shared_->last_error.empty();
    if (options_.store && shared_->probe_started == 0 && idle &&
        now - shared_->probe_ended >= kProbeIdleMs) {
      shared_->probe_started = now;
      start_probe = true;
    }
  }
  auto* probe = dynamic_cast<store::WriteProbe*>(options_.store);
  if (start_probe && !probe) {
    std::lock_guard g(shared_->mu);
    shared_->probe_started = 0;
    shared_->probe_ended = INT64_MAX / 2;  // a backend without a probe: never again
    start_probe = false;
  }
  if (start_probe) {
    // The callback may run after Stop (the writer drains at shutdown): it
    // only touches the shared state it owns a reference to.
    probe->ProbeWrite([shared = shared_](Status st) {
      std::lock_guard g(shared->mu);
      shared->probe_started = 0;
      shared->probe_ended = SteadyMs();
      if (st) {
        shared->last_error.clear();
      } else {
        shared->last_error = st.error().message;
      }
    });
  }
  for (const auto& p : options_.protocols) {
    ProtocolInput pi;
    pi.name = p.name;
    pi.listening = true;
    pi.writes = p.writes;
    if (p.admission) pi.live = p.admission->live();
    if (p.max_sessions) pi.max = p.max_sessions();
    in.protocols.push_back(std::move(pi));
  }
  auto snap = std::make_shared<const HealthSnapshot>(Assess(in));
  std::lock_guard lock(mu_);
  snap_ = std::move(snap);
}

}  // namespace hato::web
