// Isolation of client-controlled work (issue 11, "the design lesson"): work
// whose cost a client decides must not run where it can stall other clients.
//
//   * PasswordChecks: password hashing (Argon2id) on its own threads with a
//     bounded queue; past auth.max_pending_checks (or past a quarter of it
//     from one network) a login fails temporarily at once (IMAP
//     NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP], SMTP 454 4.7.0) instead of
//     waiting behind a flood, and the pool that serves RCPT, SELECT and RETR
//     never runs a hash.
//   * AccountSlots: how many scans (SEARCH over message content) one account
//     runs at once (imap.max_searches_per_account); the scans themselves run
//     on Services::scans, their own pool, with a deadline and cancellation.
//   * LoopMonitor: the event loop's lag (how late a 50 ms timer fires), as the
//     histogram hato_event_loop_lag_seconds, and a warning in the log when the
//     loop was blocked longer than kLoopBlockedWarning.
//
// Thread-safety: every class here is safe to use from any thread, except
// LoopMonitor::Start and Stop (once each, with the loop it watches not yet
// running or stopped; server::EventLoops does this for each of its loops).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include "io/asio.h"
#include "metrics/registry.h"

namespace hato::server {

class PasswordChecks {
 public:
  PasswordChecks(size_t threads, size_t max_pending) : pool_(threads), max_pending_(max_pending) {}

  // A place in the queue, released when destroyed; empty when the queue is full.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(PasswordChecks* p, std::string network) : p_(p), network_(std::move(network)) {}
    Ticket(Ticket&& o) noexcept
        : p_(std::exchange(o.p_, nullptr)), network_(std::move(o.network_)) {}
    Ticket& operator=(Ticket&& o) noexcept {
      if (this != &o) {
        Ticket old(std::move(*this));
        p_ = std::exchange(o.p_, nullptr);
        network_ = std::move(o.network_);
      }
      return *this;
    }
    Ticket(const Ticket&) = delete;
    ~Ticket() {
      if (p_) p_->Leave(network_);
    }
    explicit operator bool() const { return p_ != nullptr; }

   private:
    PasswordChecks* p_ = nullptr;
    std::string network_;
  };

  // `network` is the client's network (auth::NetworkKey): one network may
  // hold at most a quarter of the queue (at least one place), so that a flood
  // from one network leaves room for everyone else's logins.
  Ticket TryEnter(const std::string& network) {
    std::lock_guard lock(mu_);
    size_t share = std::max<size_t>(1, max_pending_ / 4);
    size_t& mine = by_network_[network];
    if (pending_ >= max_pending_ || mine >= share) {
      if (mine == 0) by_network_.erase(network);
      ++refused_;
      return Ticket();
    }
    ++mine;
    ++pending_;
    return Ticket(this, network);
  }
  void SetMaxPending(size_t n) {
    std::lock_guard lock(mu_);
    max_pending_ = n;
  }
  asio::thread_pool& pool() { return pool_; }
  size_t pending() const {
    std::lock_guard lock(mu_);
    return pending_;
  }
  uint64_t refused() const {
    std::lock_guard lock(mu_);
    return refused_;
  }
  void Join() { pool_.join(); }

 private:
  void Leave(const std::string& network) {
    std::lock_guard lock(mu_);
    --pending_;
    auto it = by_network_.find(network);
    if (it != by_network_.end() && --it->second == 0) by_network_.erase(it);
  }

  asio::thread_pool pool_;
  mutable std::mutex mu_;
  size_t max_pending_;                                  // guarded by mu_
  size_t pending_ = 0;                                  // guarded by mu_
  uint64_t refused_ = 0;                                // guarded by mu_
  std::unordered_map<std::string, size_t> by_network_;  // guarded by mu_
};

// Per-account concurrency of one kind of work.
class AccountSlots {
 public:
  class Slot {
   public:
    Slot() = default;
    Slot(AccountSlots* s, int64_t account) : s_(s), account_(account) {}
    Slot(Slot&& o) noexcept : s_(std::exchange(o.s_, nullptr)), account_(o.account_) {}
    Slot& operator=(Slot&& o) noexcept {
      if (this != &o) {
        Slot old(std::move(*this));
        s_ = std::exchange(o.s_, nullptr);
        account_ = o.account_;
      }
      return *this;
    }
    Slot(const Slot&) = delete;
    ~Slot() {
      if (s_) s_->Release(account_);
    }
    explicit operator bool() const { return s_ != nullptr; }

   private:
    AccountSlots* s_ = nullptr;
    int64_t account_ = 0;
  };

  // An empty Slot when `account` already holds `max`; counted as refused
  // unless `retrying` (the caller tries again and calls Refused() when it
  // gives up).
  Slot TryTake(int64_t account, size_t max, bool retrying = false) {
    std::lock_guard lock(mu_);
    size_t& n = held_[account];
    if (n >= max) {
      if (n == 0) held_.erase(account);
      if (!retrying) ++refused_;
      return Slot();
    }
    ++n;
    return Slot(this, account);
  }
  void Refused() {
    std::lock_guard lock(mu_);
    ++refused_;
  }
  uint64_t refused() const {
    std::lock_guard lock(mu_);
    return refused_;
  }
  size_t held(int64_t account) const {
    std::lock_guard lock(mu_);
    auto it = held_.find(account);
    return it == held_.end() ? 0 : it->second;
  }

 private:
  void Release(int64_t account) {
    std::lock_guard lock(mu_);
    auto it = held_.find(account);
    if (it != held_.end() && --it->second == 0) held_.erase(it);
  }
  mutable std::mutex mu_;
  std::unordered_map<int64_t, size_t> held_;  // guarded by mu_
  uint64_t refused_ = 0;                      // guarded by mu_
};

inline constexpr std::chrono::milliseconds kLoopProbeInterval{50};
inline constexpr std::chrono::milliseconds kLoopBlockedWarning{100};

class LoopMonitor {
 public:
  ~LoopMonitor() { Stop(); }
  // Starts probing the loop of `executor` until Stop(), and a watchdog thread
  // that logs while the loop is blocked (not only once it is free again).
  // `name` names the loop in the log; each lag also goes into `also` (the
  // histogram of every loop together) when given.
  void Start(asio::any_io_executor executor, std::string name = "event loop",
             metrics::Histogram* also = nullptr);
  void Stop();
  const metrics::Histogram& lag() const { return lag_; }
  int64_t max_lag_ms() const { return max_lag_ms_.load(std::memory_order_relaxed); }
  uint64_t blocked() const { return blocked_.load(std::memory_order_relaxed); }

 private:
  void Arm();
  std::optional<asio::steady_timer> timer_;
  std::string name_ = "event loop";
  metrics::Histogram* also_ = nullptr;
  std::chrono::steady_clock::time_point expected_;
  metrics::Histogram lag_;
  std::atomic<int64_t> max_lag_ms_{0};
  std::atomic<uint64_t> blocked_{0};      // probes later than kLoopBlockedWarning
  std::atomic<int64_t> last_beat_ns_{0};  // steady clock of the last probe
  std::mutex watchdog_mu_;
  std::condition_variable watchdog_cv_;
  bool stop_ = false;  // guarded by watchdog_mu_
  std::thread watchdog_;
};

}  // namespace hato::server
