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
  std::shared_lock lock(mu_);
  auto it = entries_.find(message_id);
  if (it == entries_.end()) return nullptr;
  it->second->referenced.store(true, std::memory_order_relaxed);
  return it->second->tree;
}

void TreeCache::Insert(int64_t message_id, std::shared_ptr<const mime::Part> tree,
                       size_t serialized_size) {
  size_t charge = serialized_size * kChargeFactor + kEntryOverhead;
  if (charge > max_bytes_) return;
  std::unique_lock lock(mu_);
  auto [it, inserted] = entries_.try_emplace(message_id);
  if (!inserted) {  // replaces a stale entry (see Load in messages.cc)
    bytes_ -= it->second->charge;
  } else {
    it->second = std::make_unique<Entry>();
    ring_.push_back(message_id);
  }
  it->second->tree = std::move(tree);
  it->second->charge = charge;
  bytes_ += charge;
  EvictLocked();
}

void TreeCache::EvictLocked() {
  // Sweep: a referenced entry loses its bit and survives this pass; an
  // unreferenced one goes. Each entry's bit is cleared at most once per
  // pass, so this ends within two passes.
  while (bytes_ > max_bytes_ && !ring_.empty()) {
    if (hand_ >= ring_.size()) hand_ = 0;
    int64_t id = ring_[hand_];
    auto it = entries_.find(id);
    if (it->second->referenced.exchange(false, std::memory_order_relaxed)) {
      ++hand_;
      continue;
    }
    bytes_ -= it->second->charge;
    entries_.erase(it);
    ring_[hand_] = ring_.back();
    ring_.pop_back();
  }
}

size_t TreeCache::bytes() const {
  std::shared_lock lock(mu_);
  return bytes_;
}

size_t TreeCache::entries() const {
  std::shared_lock lock(mu_);
  return entries_.size();
}

}  // namespace hato::imap
