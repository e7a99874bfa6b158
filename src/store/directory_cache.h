// The node-local cache of what every delivery looks up (issue 15): local
// domains, recipients (address or alias -> account, with its quota limit)
// and each account's delivery Sieve scripts (Store::DeliverySieveScripts).
// Both backends serve Store::IsLocalDomain, ResolveRecipient and
// DeliverySieveScripts from it, so an SMTP RCPT and the Sieve step at the end
// of DATA cost no database read once an entry is warm.
//
// Invalidation is the backend's duty, and must reach every node and process
// at once: the PostgreSQL backend relays changes over LISTEN/NOTIFY (the
// database's triggers on domains, accounts, aliases and sieve_scripts
// notify; a node drops its whole cache when its listening connection is
// lost and caches nothing until it listens again); the embedded store clears
// it after its own directory writes and when another process's write moved
// the data directory's stamp (sqlite_store.cc). A change to domains,
// accounts or aliases drops everything; a change to one account's scripts
// drops that account's entry.
//
// Race: a read of the database that began before a change and finishes
// after its invalidation must not be stored. Callers take generation()
// before reading and pass it to Put*; a Put whose generation is no longer
// current is dropped.
//
// Quota *usage* is never cached (only the limit): it stays an exact read.
//
// Bounds: at most kMaxDirectoryEntries entries of each kind; past it the
// kind starts empty again (a cache miss is one database read, never an error).
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/store.h"

namespace hato::store {

inline constexpr size_t kMaxDirectoryEntries = 100000;

class DirectoryCache {
 public:
  explicit DirectoryCache(size_t max_entries = kMaxDirectoryEntries) : max_(max_entries) {}
  DirectoryCache(const DirectoryCache&) = delete;
  DirectoryCache& operator=(const DirectoryCache&) = delete;

  // Whether the backend sees every change now. Either way the cache is
  // emptied; while not live nothing is served or stored.
  void SetLive(bool live);
  bool live() const;

  // Domains, accounts, aliases or quotas changed: everything goes.
  void Clear();
  // One account's Sieve scripts changed.
  void DropScripts(int64_t account_id);

  // Taken before a database read whose answer is then Put.
  uint64_t generation() const;

  std::optional<bool> Domain(std::string_view lower_name) const;
  void PutDomain(uint64_t generation, std::string_view lower_name, bool local);

  // Only found recipients are kept (a miss reads the database again).
  std::optional<Account> Recipient(std::string_view lower_address) const;
  void PutRecipient(uint64_t generation, std::string_view lower_address, const Account& account);

  // The scripts DeliverySieveScripts(account_id, prefix) returned.
  std::optional<std::vector<SieveScriptText>> Scripts(int64_t account_id,
                                                      std::string_view prefix) const;
  void PutScripts(uint64_t generation, int64_t account_id, std::string_view prefix,
                  std::vector<SieveScriptText> scripts);

  // Counters for tests and /metrics-style checks.
  uint64_t hits() const;
  uint64_t misses() const;

 private:
  struct ScriptEntry {
    std::string prefix;
    std::vector<SieveScriptText> scripts;
  };
  bool Storable(uint64_t generation) const;  // mu_ held
  void ClearLocked();                        // mu_ held

  const size_t max_;
  mutable std::mutex mu_;
  bool live_ = false;                                    // guarded by mu_
  uint64_t generation_ = 1;                              // guarded by mu_
  std::unordered_map<std::string, bool> domains_;        // guarded by mu_
  std::unordered_map<std::string, Account> recipients_;  // guarded by mu_
  std::unordered_map<int64_t, ScriptEntry> scripts_;     // guarded by mu_
  mutable uint64_t hits_ = 0;                            // guarded by mu_
  mutable uint64_t misses_ = 0;                          // guarded by mu_
};

}  // namespace hato::store
