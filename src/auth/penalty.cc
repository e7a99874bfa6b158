#include "auth/penalty.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <vector>

namespace hato::auth {
namespace {

// Parses `ip`; an IPv4-mapped IPv6 address comes back as IPv4.
bool Parse(const std::string& ip, bool& v6, unsigned char (&bytes)[16]) {
  if (inet_pton(AF_INET, ip.c_str(), bytes) == 1) {
    v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, ip.c_str(), bytes) != 1) return false;
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMapped, kMapped + 12, bytes)) {
    std::copy(bytes + 12, bytes + 16, bytes);
    v6 = false;
    return true;
  }
  v6 = true;
  return true;
}

std::string V6Prefix(const unsigned char (&bytes)[16], int bits) {
  unsigned char masked[16] = {};
  std::copy(bytes, bytes + bits / 8, masked);
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, masked, text, sizeof text);
  return std::string(text) + "/" + std::to_string(bits);
}

std::string V4Prefix24(const unsigned char (&bytes)[16]) {
  char text[32];
  std::snprintf(text, sizeof text, "%u.%u.%u.0/24", bytes[0], bytes[1], bytes[2]);
  return text;
}

}  // namespace

std::string ClientKey(const std::string& ip) {
  bool v6 = false;
  unsigned char b[16] = {};
  if (!Parse(ip, v6, b)) return ip;
  if (v6) return V6Prefix(b, 64);
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, b, text, sizeof text);
  return text;
}

std::string NetworkKey(const std::string& ip) {
  bool v6 = false;
  unsigned char b[16] = {};
  if (!Parse(ip, v6, b)) return ip;
  return v6 ? V6Prefix(b, 48) : V4Prefix24(b);
}

std::chrono::milliseconds LoginPenalty::DelayFor(int failures) const {
  if (failures <= 0 || base_ms_ == 0) return std::chrono::milliseconds(0);
  int64_t ms = base_ms_;
  for (int i = 1; i < failures && ms < max_ms_; ++i) ms *= 2;
  return std::chrono::milliseconds(std::min<int64_t>(ms, max_ms_));
}

int LoginPenalty::Failures(const std::string& key, Clock::time_point now) const {
  auto it = entries_.find(key);
  if (it == entries_.end() || now - it->second.last > kPenaltyForget) return 0;
  return it->second.failures;
}

void LoginPenalty::Prune(Clock::time_point now) {
  if (entries_.size() < kMaxPenaltyEntries) return;
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = (now - it->second.last > kPenaltyForget) ? entries_.erase(it) : std::next(it);
  }
  if (entries_.size() <= kPruneTo) return;
  // Under attack: drop what matters least (fewest failures, then oldest),
  // never everything.
  using It = std::unordered_map<std::string, Entry>::iterator;
  std::vector<It> all;
  all.reserve(entries_.size());
  for (auto it = entries_.begin(); it != entries_.end(); ++it) all.push_back(it);
  size_t drop = entries_.size() - kPruneTo;
  std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(drop), all.end(),
                   [](const It& a, const It& b) {
                     if (a->second.failures != b->second.failures) {
                       return a->second.failures < b->second.failures;
                     }
                     return a->second.last < b->second.last;
                   });
  for (size_t i = 0; i < drop; ++i) entries_.erase(all[i]);
}

std::chrono::milliseconds LoginPenalty::Failure(const std::string& ip, const std::string& user) {
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  Prune(now);
  std::string client = "c " + ClientKey(ip);
  const std::string keys[] = {client, client + "\n" + user, "n " + NetworkKey(ip), "a " + user};
  const int grace[] = {0, 0, kNetworkGrace, kAccountGrace};
  std::chrono::milliseconds worst(0);
  for (size_t i = 0; i < 4; ++i) {
    Entry& e = entries_[keys[i]];
    if (now - e.last > kPenaltyForget) e.failures = 0;
    ++e.failures;
    e.last = now;
    worst = std::max(worst, DelayFor(e.failures - grace[i]));
  }
  return worst;
}

std::chrono::milliseconds LoginPenalty::Pending(const std::string& ip, const std::string& user) {
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  // After a few failures, make every new attempt wait too: from the client
  // (after 2), its network (after kNetworkGrace + 2), or on the account.
  int client = Failures("c " + ClientKey(ip), now);
  int network = Failures("n " + NetworkKey(ip), now) - kNetworkGrace;
  int account = user.empty() ? 0 : Failures("a " + user, now) - kAccountGrace;
  int worst = std::max({client, network, account});
  return worst >= 3 ? DelayFor(worst - 2) : std::chrono::milliseconds(0);
}

void LoginPenalty::Success(const std::string& ip, const std::string& user) {
  std::lock_guard lock(mu_);
  entries_.erase("c " + ClientKey(ip) + "\n" + user);
}

void LoginPenalty::SetLimits(int base_ms, int max_ms) {
  std::lock_guard lock(mu_);
  base_ms_ = base_ms;
  max_ms_ = max_ms;
}

size_t LoginPenalty::entries() {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace hato::auth
