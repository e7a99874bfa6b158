// An optional capability of a store backend: the delivery look-ups
// (IsLocalDomain, ResolveRecipient) answered from the node's directory cache
// (store/directory_cache.h) alone, never from the database. For callers on
// an event loop (SMTP RCPT, and DATA's filtering step): a cached answer costs no hop to the
// blocking pool and back (two thread wake-ups per recipient, issue 17), and anything not cached
// goes the usual way, on the pool. A backend offers it by also deriving from CachedLookups; callers
// find it with dynamic_cast. Kept out of store.h so that backends need not change.
#pragma once

#include <optional>
#include <string_view>

#include "store/store.h"

namespace hato::store {

class CachedLookups {
 public:
  virtual ~CachedLookups() = default;
  // What IsLocalDomain(domain) would answer, when the cache holds it now;
  // nullopt otherwise (not cached, or the cache cannot serve right now).
  virtual std::optional<bool> CachedLocalDomain(std::string_view domain) = 0;
  // What ResolveRecipient(address) would answer, when the cache holds the
  // recipient (only found recipients are cached); nullopt otherwise.
  virtual std::optional<Account> CachedRecipient(std::string_view address) = 0;
  // Whether DeliverySieveScripts(account_id, prefix) would return any script,
  // when the cache holds the account's list; nullopt otherwise.
  virtual std::optional<bool> CachedHasDeliveryScripts(int64_t account_id,
                                                       std::string_view prefix) = 0;
};

}  // namespace hato::store
