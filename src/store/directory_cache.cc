#include "store/directory_cache.h"

namespace hato::store {

void DirectoryCache::SetLive(bool live) {
  std::lock_guard lock(mu_);
  live_ = live;
  ClearLocked();
}

bool DirectoryCache::live() const {
  std::lock_guard lock(mu_);
  return live_;
}

void DirectoryCache::Clear() {
  std::lock_guard lock(mu_);
  ClearLocked();
}

void DirectoryCache::ClearLocked() {
  ++generation_;
  domains_.clear();
  recipients_.clear();
  scripts_.clear();
}

void DirectoryCache::DropScripts(int64_t account_id) {
  std::lock_guard lock(mu_);
  // A read of another account's scripts that is under way is refused too
  // (one generation for all): rare, and only costs a read next time.
  ++generation_;
  scripts_.erase(account_id);
}

uint64_t DirectoryCache::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

bool DirectoryCache::Storable(uint64_t generation) const {
  return live_ && generation == generation_;
}

std::optional<bool> DirectoryCache::Domain(std::string_view lower_name) const {
  std::lock_guard lock(mu_);
  auto it = live_ ? domains_.find(std::string(lower_name)) : domains_.end();
  if (it == domains_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  return it->second;
}

void DirectoryCache::PutDomain(uint64_t generation, std::string_view lower_name, bool local) {
  std::lock_guard lock(mu_);
  if (!Storable(generation)) return;
  if (domains_.size() >= max_) domains_.clear();
  domains_[std::string(lower_name)] = local;
}

std::optional<Account> DirectoryCache::Recipient(std::string_view lower_address) const {
  std::lock_guard lock(mu_);
  auto it = live_ ? recipients_.find(std::string(lower_address)) : recipients_.end();
  if (it == recipients_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  return it->second;
}

void DirectoryCache::PutRecipient(uint64_t generation, std::string_view lower_address,
                                  const Account& account) {
  std::lock_guard lock(mu_);
  if (!Storable(generation)) return;
  if (recipients_.size() >= max_) recipients_.clear();
  recipients_[std::string(lower_address)] = account;
}

std::optional<std::vector<SieveScriptText>> DirectoryCache::Scripts(int64_t account_id,
                                                                    std::string_view prefix) const {
  std::lock_guard lock(mu_);
  auto it = live_ ? scripts_.find(account_id) : scripts_.end();
  if (it == scripts_.end() || it->second.prefix != prefix) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  return it->second.scripts;
}

void DirectoryCache::PutScripts(uint64_t generation, int64_t account_id, std::string_view prefix,
                                std::vector<SieveScriptText> scripts) {
  std::lock_guard lock(mu_);
  if (!Storable(generation)) return;
  if (scripts_.size() >= max_) scripts_.clear();
  scripts_[account_id] = ScriptEntry{std::string(prefix), std::move(scripts)};
}

uint64_t DirectoryCache::hits() const {
  std::lock_guard lock(mu_);
  return hits_;
}

uint64_t DirectoryCache::misses() const {
  std::lock_guard lock(mu_);
  return misses_;
}

}  // namespace hato::store
