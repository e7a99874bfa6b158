// Memory budget for client input held in memory before it is committed or
// parsed (IMAP command buffers and literals, SMTP DATA/BDAT content): a global
// cap and a cap per client address, so that a few connections that announce
// big literals (or send a message very slowly) cannot take the machine's
// memory. A Charge is one session's share; it grows and shrinks with what the
// session buffers, and a growth that would pass either cap is refused: the
// session then answers with its protocol's temporary refusal (IMAP
// "* BYE [UNAVAILABLE]", SMTP "421 4.3.2") and closes, which frees the bytes.
//
// SECURITY: issue 11, item 2 (ten unauthenticated IMAP connections held
// ~48 MB each). Keys: server.memory_budget_bytes and
// server.memory_budget_per_ip_bytes (0 = no cap).
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace hato::server {

class MemoryBudget {
 public:
  MemoryBudget(uint64_t total, uint64_t per_ip) : total_(total), per_ip_(per_ip) {}

  void SetLimits(uint64_t total, uint64_t per_ip) {
    std::lock_guard lock(mu_);
    total_ = total;
    per_ip_ = per_ip;
  }
  uint64_t used() const {
    std::lock_guard lock(mu_);
    return used_;
  }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

  // One session's share of the budget, released when destroyed.
  class Charge {
   public:
    Charge() = default;
    Charge(MemoryBudget* b, std::string ip) : b_(b), ip_(std::move(ip)) {}
    Charge(Charge&& o) noexcept
        : b_(std::exchange(o.b_, nullptr)), ip_(std::move(o.ip_)), held_(o.held_) {}
    Charge& operator=(Charge&& o) noexcept {
      if (this != &o) {
        Set(0);
        b_ = std::exchange(o.b_, nullptr);
        ip_ = std::move(o.ip_);
        held_ = o.held_;
      }
      return *this;
    }
    Charge(const Charge&) = delete;
    ~Charge() { Set(0); }

    // Holds `bytes` from now on. False (and the share unchanged) when growing
    // to it would pass a cap; shrinking always succeeds.
    bool Set(uint64_t bytes) {
      if (b_ == nullptr || bytes == held_) return true;
      if (!b_->Move(ip_, held_, bytes)) return false;
      held_ = bytes;
      return true;
    }
    uint64_t held() const { return held_; }

   private:
    MemoryBudget* b_ = nullptr;
    std::string ip_;
    uint64_t held_ = 0;
  };

  Charge Open(std::string ip) { return Charge(this, std::move(ip)); }

 private:
  bool Move(const std::string& ip, uint64_t from, uint64_t to) {
    std::lock_guard lock(mu_);
    uint64_t& mine = by_ip_[ip];
    if (to > from) {
      uint64_t grow = to - from;
      if ((total_ != 0 && used_ + grow > total_) || (per_ip_ != 0 && mine + grow > per_ip_)) {
        if (mine == 0) by_ip_.erase(ip);
        refused_.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
      used_ += grow;
      mine += grow;
    } else {
      used_ -= from - to;
      mine -= from - to;
    }
    if (mine == 0) by_ip_.erase(ip);
    return true;
  }

  mutable std::mutex mu_;
  uint64_t total_;                                   // guarded by mu_
  uint64_t per_ip_;                                  // guarded by mu_
  uint64_t used_ = 0;                                // guarded by mu_
  std::unordered_map<std::string, uint64_t> by_ip_;  // guarded by mu_
  std::atomic<uint64_t> refused_{0};
};

}  // namespace hato::server
