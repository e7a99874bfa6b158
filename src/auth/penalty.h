// Failed-login penalties: a delay before answering a failed authentication
// that doubles with each failure, counted in four tiers:
//   * the client: an IPv4 address, or a whole IPv6 /64 (one host can have
//     2^64 addresses), and the (client, account) pair: from the first failure;
//   * the client's network, an IPv4 /24 or an IPv6 /48: after
//     kNetworkGrace failures (a shared NAT or office network may mistype);
//   * the account, from anywhere: after kAccountGrace failures (a botnet
//     guessing one password from many addresses).
// Keyed per client first (not per account alone) so that a flood of bad
// passwords from one address does not lock the real user out from another;
// the account tier slows a distributed attack on one account, capped like
// the rest at auth.penalty_max_ms.
//
// SECURITY: the table is bounded (kMaxPenaltyEntries). When it is full,
// expired entries go first, then the entries that matter least (fewest
// failures, oldest) until it is at kPruneTo: a flood of new addresses can no
// longer reset everyone's penalties (issue 11, item 11).
// Thread-safe.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace hato::auth {

inline constexpr size_t kMaxPenaltyEntries = 200000;  // bounded memory
inline constexpr size_t kPruneTo = kMaxPenaltyEntries * 9 / 10;
inline constexpr std::chrono::minutes kPenaltyForget{15};
inline constexpr int kNetworkGrace = 8;   // failures from a network before its tier counts
inline constexpr int kAccountGrace = 10;  // failures against an account before its tier counts

// The client key of an address: the address itself for IPv4 (an IPv4-mapped
// IPv6 address counts as IPv4), its /64 for IPv6 ("2001:db8:1:2::/64");
// anything unparsable is returned as is.
std::string ClientKey(const std::string& ip);
// The network of an address: its /24 for IPv4 ("192.0.2.0/24"), /48 for IPv6.
std::string NetworkKey(const std::string& ip);

class LoginPenalty {
 public:
  using Clock = std::chrono::steady_clock;
  LoginPenalty(int base_ms, int max_ms) : base_ms_(base_ms), max_ms_(max_ms) {}

  // Records a failure and returns how long to wait before replying.
  std::chrono::milliseconds Failure(const std::string& ip, const std::string& user);
  // The delay a new attempt from `ip` (for `user`, when known) waits before
  // it is even checked.
  std::chrono::milliseconds Pending(const std::string& ip, const std::string& user = "");
  void Success(const std::string& ip, const std::string& user);
  void SetLimits(int base_ms, int max_ms);
  size_t entries();

 private:
  struct Entry {
    int failures = 0;
    Clock::time_point last;
  };
  std::chrono::milliseconds DelayFor(int failures) const;
  int Failures(const std::string& key, Clock::time_point now) const;
  void Prune(Clock::time_point now);

  std::mutex mu_;
  int base_ms_;
  int max_ms_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
};

}  // namespace hato::auth
