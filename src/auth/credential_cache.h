// A bounded cache of recent successful password checks, like Dovecot's auth
// cache: mail clients log in again and again (POP3 polling, phones
// reconnecting), and each Argon2id check costs ~19 MiB and tens of
// milliseconds of CPU. After a successful check, the cache remembers a keyed
// hash of the password, HMAC-SHA-256 under a random key made at start and
// never stored, for `ttl`. A later login with the same password against the
// same stored hash costs one HMAC.
//
// Trade-off (docs/operations.md): for `ttl` after a successful login, a
// process memory dump would let an attacker test guesses for that password
// at HMAC speed rather than Argon2 speed. Failed checks are never cached,
// so guessing over the network costs Argon2 as before (and the penalties).
//
// Invalidation is by construction: entries are keyed by the account's stored
// password hash, so a password change (new hash, new salt) or a removed
// account (no hash to look up) never hits an old entry. Clear() empties it
// (SIGHUP). Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hato::auth {

class CredentialCache {
 public:
  // `max_entries` 0 or `ttl` 0 disables the cache.
  CredentialCache(size_t max_entries, std::chrono::seconds ttl);

  // True when `password` was checked good against `stored_hash` within the ttl.
  bool Check(std::string_view stored_hash, std::string_view password);
  // Remembers a successful check (call only after VerifyPassword succeeded).
  void Remember(std::string_view stored_hash, std::string_view password);
  void Clear();
  void Configure(size_t max_entries, std::chrono::seconds ttl);

  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    size_t entries = 0;
  };
  Stats GetStats();

 private:
  struct Entry {
    std::string mac;  // HMAC(key, stored_hash || 0 || password)
    std::chrono::steady_clock::time_point expires;
    std::list<std::string>::iterator order;  // position in lru_
  };
  std::string Mac(std::string_view stored_hash, std::string_view password) const;

  std::mutex mu_;
  std::string key_;  // random, per process
  size_t max_entries_;
  std::chrono::seconds ttl_;
  std::unordered_map<std::string, Entry> entries_;  // by stored hash
  std::list<std::string> lru_;                      // most recent first
  Stats stats_;
};

// Verifies through `cache` (may be null): a hit skips the slow check; a
// successful slow check is remembered.
bool VerifyPasswordCached(CredentialCache* cache, std::string_view stored_hash,
                          std::string_view password);

}  // namespace hato::auth
