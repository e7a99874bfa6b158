// A bounded cache of parsed MIME trees, shared by all IMAP sessions.
//
// FETCH ENVELOPE/BODYSTRUCTURE and SEARCH on header fields need each
// message's part tree. The tree is parsed once at delivery and stored
// (store::ReadMimeTree); this cache keeps the deserialized form of recently
// used trees so that a client that walks its mailbox, or a SEARCH over
// thousands of messages, does not read and decode every tree again
// (Dovecot keeps a similar per-mailbox cache file). Trees never change once
// stored, so an entry never goes stale; it only ages out.
//
// Bounded by an estimate of the memory the trees use (kTreeCacheBytes).
// Eviction is CLOCK (second chance), so a hit only sets a bit under a shared
// lock: a SEARCH over thousands of messages from several pool threads does
// not serialize on an LRU list. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "mime/message.h"
#include "store/store.h"

namespace hato::imap {

inline constexpr size_t kTreeCacheBytes = 64u << 20;

class TreeCache {
 public:
  explicit TreeCache(size_t max_bytes = kTreeCacheBytes) : max_bytes_(max_bytes) {}

  // The tree of a message (store message id), or null when not cached.
  std::shared_ptr<const mime::Part> Find(int64_t message_id);
  // Caches a tree whose serialized form had `serialized_size` bytes,
  // replacing any tree cached for the same id.
  void Insert(int64_t message_id, std::shared_ptr<const mime::Part> tree, size_t serialized_size);

  size_t bytes() const;
  size_t entries() const;

 private:
  struct Entry {
    std::shared_ptr<const mime::Part> tree;
    size_t charge = 0;
    mutable std::atomic<bool> referenced{false};
  };
  void EvictLocked();

  const size_t max_bytes_;
  mutable std::shared_mutex mu_;
  std::unordered_map<int64_t, std::unique_ptr<Entry>> entries_;
  std::vector<int64_t> ring_;  // ids in insertion order; the clock hand sweeps it
  size_t hand_ = 0;
  size_t bytes_ = 0;
};

// What rendering, SEARCH or SORT needs of one message: its MIME tree and,
// if asked, its verified content. `error` is set when the store fails.
struct Loaded {
  std::string raw;
  std::shared_ptr<const mime::Part> tree;
  std::optional<Error> error;
};
// Loads the tree stored at delivery (through `cache`; parsed now if there
// is none) and, with `content`, the message itself. Blocking: on a pool.
Loaded Load(store::Store* store, TreeCache* cache, int64_t account, const store::MessageMeta& m,
            bool content, bool tree);

}  // namespace hato::imap
