// Failed-login penalties: a delay before answering a failed authentication
// that doubles with each failure, per client IP and per (IP, account) pair.
// Keyed per IP (not per account alone) so that a flood of bad passwords from
// one address does not lock the real user out from another.
// Thread-safe.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace hato::auth {

inline constexpr size_t kMaxPenaltyEntries = 100000;  // bounded memory
inline constexpr std::chrono::minutes kPenaltyForget{15};

class LoginPenalty {
 public:
  using Clock = std::chrono::steady_clock;
  LoginPenalty(int base_ms, int max_ms) : base_ms_(base_ms), max_ms_(max_ms) {}

  // Records a failure and returns how long to wait before replying.
  std::chrono::milliseconds Failure(const std::string& ip, const std::string& user);
  // The delay a new attempt from `ip` waits before it is even checked.
  std::chrono::milliseconds Pending(const std::string& ip);
  void Success(const std::string& ip, const std::string& user);
  void SetLimits(int base_ms, int max_ms);

 private:
  struct Entry {
    int failures = 0;
    Clock::time_point last;
  };
  std::chrono::milliseconds DelayFor(int failures) const;
  void Prune(Clock::time_point now);

  std::mutex mu_;
  int base_ms_;
  int max_ms_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
};

}  // namespace hato::auth
