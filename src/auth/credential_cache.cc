#include "auth/credential_cache.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth/password.h"
#include "base/digest.h"

namespace hato::auth {

CredentialCache::CredentialCache(size_t max_entries, std::chrono::seconds ttl)
    : key_(32, '\0'), max_entries_(max_entries), ttl_(ttl) {
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key_.data()), static_cast<int>(key_.size())) !=
      1) {
    max_entries_ = 0;  // no good key: no cache
  }
}

std::string CredentialCache::Mac(std::string_view stored_hash, std::string_view password) const {
  std::string data(stored_hash);
  data += '\0';
  data += password;
  std::string mac = HmacSha256(key_, data);
  OPENSSL_cleanse(data.data(), data.size());
  return mac;
}

bool CredentialCache::Check(std::string_view stored_hash, std::string_view password) {
  std::lock_guard lock(mu_);
  if (max_entries_ == 0 || ttl_.count() <= 0) return false;
  auto it = entries_.find(std::string(stored_hash));
  if (it == entries_.end()) {
    ++stats_.misses;
    return false;
  }
  if (it->second.expires <= std::chrono::steady_clock::now()) {
    lru_.erase(it->second.order);
    entries_.erase(it);
    ++stats_.misses;
    return false;
  }
  std::string mac = Mac(stored_hash, password);
  bool same = mac.size() == it->second.mac.size() &&
              CRYPTO_memcmp(mac.data(), it->second.mac.data(), mac.size()) == 0;
  if (!same) {  // a different password: the slow check decides
    ++stats_.misses;
    return false;
  }
  ++stats_.hits;
  return true;
}

void CredentialCache::Remember(std::string_view stored_hash, std::string_view password) {
  std::lock_guard lock(mu_);
  if (max_entries_ == 0 || ttl_.count() <= 0) return;
  std::string key(stored_hash);
  auto expires = std::chrono::steady_clock::now() + ttl_;
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    it->second.mac = Mac(stored_hash, password);
    it->second.expires = expires;
    lru_.splice(lru_.begin(), lru_, it->second.order);
    return;
  }
  while (entries_.size() >= max_entries_ && !lru_.empty()) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(key);
  entries_.emplace(key, Entry{Mac(stored_hash, password), expires, lru_.begin()});
}

void CredentialCache::Clear() {
  std::lock_guard lock(mu_);
  entries_.clear();
  lru_.clear();
}

void CredentialCache::Configure(size_t max_entries, std::chrono::seconds ttl) {
  std::lock_guard lock(mu_);
  max_entries_ = max_entries;
  ttl_ = ttl;
  entries_.clear();
  lru_.clear();
}

CredentialCache::Stats CredentialCache::GetStats() {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.entries = entries_.size();
  return s;
}

bool VerifyPasswordCached(CredentialCache* cache, std::string_view stored_hash,
                          std::string_view password) {
  if (cache && cache->Check(stored_hash, password)) return true;
  if (!VerifyPassword(stored_hash, password)) return false;
  if (cache) cache->Remember(stored_hash, password);
  return true;
}

}  // namespace hato::auth
