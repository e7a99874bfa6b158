// What every protocol session shares: the store, a pool for blocking work,
// the current configuration snapshot, TLS, login penalties and counters.
// Thread-safety: every member is safe to use from any session.
#pragma once

#include <atomic>
#include <memory>

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

struct Services {
  store::Store* store = nullptr;
  asio::thread_pool* blocking = nullptr;  // store reads, password checks
  ConfigSource* config = nullptr;
  std::shared_ptr<asio::ssl::context> tls;  // null when no certificate is configured
  auth::LoginPenalty* penalty = nullptr;
};

}  // namespace hato::server
