#include "imap/server/tree_cache.h"

namespace hato::imap {
namespace {

// A deserialized tree takes a few times its serialized size (strings,
// vectors, the envelope's address lists); charge for that, plus the
// bookkeeping of the entry itself.
constexpr size_t kChargeFactor = 6;  // measured: 305 bytes serialized, 1.9 kB in memory
constexpr size_t kEntryOverhead = 128;

}  // namespace

std::shared_ptr<const mime::Part> TreeCache::Find(int64_t message_id) {
  std::lock_guard lock(mu_);
  auto it = index_.find(message_id);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->tree;
}

void TreeCache::Insert(int64_t message_id, std::shared_ptr<const mime::Part> tree,
                       size_t serialized_size) {
  size_t charge = serialized_size * kChargeFactor + kEntryOverhead;
  if (charge > max_bytes_) return;
  std::lock_guard lock(mu_);
  if (index_.count(message_id)) return;
  lru_.push_front(Entry{message_id, std::move(tree), charge});
  index_[message_id] = lru_.begin();
  bytes_ += charge;
  EvictLocked();
}

void TreeCache::EvictLocked() {
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    bytes_ -= lru_.back().charge;
    index_.erase(lru_.back().id);
    lru_.pop_back();
  }
}

size_t TreeCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

size_t TreeCache::entries() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

}  // namespace hato::imap
