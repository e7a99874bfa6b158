// What every protocol session shares: the store, a pool for blocking work,
// the current configuration snapshot, TLS, login penalties and counters.
// Thread-safety: every member is safe to use from any session.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <set>

#include "auth/penalty.h"
#include "config/config.h"
#include "io/asio.h"
#include "store/store.h"

namespace hato::server {

// The current configuration. Readers take a snapshot and keep it for the
// duration of a command; SIGHUP swaps in a new, validated one.
class ConfigSource {
 public:
  explicit ConfigSource(std::shared_ptr<const config::Config> c) : current_(std::move(c)) {}
  std::shared_ptr<const config::Config> Get() const { return current_.load(); }
  void Set(std::shared_ptr<const config::Config> c) { current_.store(std::move(c)); }

 private:
  std::atomic<std::shared_ptr<const config::Config>> current_;
};

// Counts live sessions of one protocol; a Slot releases on destruction.
class ConnectionCounter {
 public:
  class Slot {
   public:
    explicit Slot(std::atomic<size_t>* n) : n_(n) {}
    Slot(Slot&& o) noexcept : n_(o.n_) { o.n_ = nullptr; }
    Slot(const Slot&) = delete;
    ~Slot() {
      if (n_) n_->fetch_sub(1);
    }

   private:
    std::atomic<size_t>* n_;
  };
  // Takes a slot; false when `limit` sessions are already live.
  bool TryAcquire(size_t limit) {
    if (n_.fetch_add(1) >= limit) {
      n_.fetch_sub(1);
      return false;
    }
    return true;
  }
  Slot Adopt() { return Slot(&n_); }
  size_t live() const { return n_.load(); }

 private:
  std::atomic<size_t> n_{0};
};

// The live sessions of one protocol, so that a graceful stop can ask each to
// finish: an idle session is closed at once (with the protocol's "shutting
// down" reply), a busy one after its current command or transaction.
class SessionRegistry {
 public:
  class Member {
   public:
    virtual ~Member() = default;
    virtual void RequestStop() = 0;  // called on the event-loop thread
  };
  void Add(Member* m) {
    std::lock_guard lock(mu_);
    members_.insert(m);
  }
  void Remove(Member* m) {
    std::lock_guard lock(mu_);
    members_.erase(m);
  }
  void StopAll() {
    std::set<Member*> copy;
    {
      std::lock_guard lock(mu_);
      copy = members_;
    }
    for (Member* m : copy) m->RequestStop();
  }

  // Registers a member for the lifetime of this object.
  class Scope {
   public:
    Scope(SessionRegistry& r, Member* m) : r_(r), m_(m) { r_.Add(m_); }
    Scope(const Scope&) = delete;
    ~Scope() { r_.Remove(m_); }

   private:
    SessionRegistry& r_;
    Member* m_;
  };

 private:
  std::mutex mu_;
  std::set<Member*> members_;  // guarded by mu_
};

// Whether the data volume has less free space than the configured reserve.
// Updated about once a second by `serve`; read by sessions before accepting
// new mail. Thread-safe.
class DiskMonitor {
 public:
  bool low() const { return low_.load(std::memory_order_relaxed); }
  // Returns true when the state changed.
  bool Update(uint64_t free_bytes, uint64_t reserve_bytes) {
    bool now_low = free_bytes < reserve_bytes;
    return low_.exchange(now_low) != now_low;
  }

 private:
  std::atomic<bool> low_{false};
};

struct Services {
  store::Store* store = nullptr;
  asio::thread_pool* blocking = nullptr;  // store reads, password checks
  ConfigSource* config = nullptr;
  std::shared_ptr<asio::ssl::context> tls;  // null when no certificate is configured
  auth::LoginPenalty* penalty = nullptr;
  DiskMonitor* disk = nullptr;  // null: never low
};

}  // namespace hato::server
