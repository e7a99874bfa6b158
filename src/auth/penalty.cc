#include "auth/penalty.h"

#include <algorithm>

namespace hato::auth {

std::chrono::milliseconds LoginPenalty::DelayFor(int failures) const {
  if (failures <= 0 || base_ms_ == 0) return std::chrono::milliseconds(0);
  int64_t ms = base_ms_;
  for (int i = 1; i < failures && ms < max_ms_; ++i) ms *= 2;
  return std::chrono::milliseconds(std::min<int64_t>(ms, max_ms_));
}

void LoginPenalty::Prune(Clock::time_point now) {
  if (entries_.size() < kMaxPenaltyEntries) return;
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = (now - it->second.last > kPenaltyForget) ? entries_.erase(it) : std::next(it);
  }
  if (entries_.size() >= kMaxPenaltyEntries) entries_.clear();  // under attack: stay bounded
}

std::chrono::milliseconds LoginPenalty::Failure(const std::string& ip, const std::string& user) {
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  Prune(now);
  int worst = 0;
  for (const std::string& key : {ip, ip + "\n" + user}) {
    Entry& e = entries_[key];
    if (now - e.last > kPenaltyForget) e.failures = 0;
    ++e.failures;
    e.last = now;
    worst = std::max(worst, e.failures);
  }
  return DelayFor(worst);
}

std::chrono::milliseconds LoginPenalty::Pending(const std::string& ip) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(ip);
  if (it == entries_.end() || Clock::now() - it->second.last > kPenaltyForget) {
    return std::chrono::milliseconds(0);
  }
  // After a few failures from an address, make every new attempt wait too.
  return it->second.failures >= 3 ? DelayFor(it->second.failures - 2)
                                  : std::chrono::milliseconds(0);
}

void LoginPenalty::Success(const std::string& ip, const std::string& user) {
  std::lock_guard lock(mu_);
  entries_.erase(ip + "\n" + user);
}

void LoginPenalty::SetLimits(int base_ms, int max_ms) {
  std::lock_guard lock(mu_);
  base_ms_ = base_ms;
  max_ms_ = max_ms;
}

}  // namespace hato::auth
