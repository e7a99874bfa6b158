#include "imap/server/tree_cache.h"

#include <optional>
#include <string>

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

Loaded Load(store::Store* store, TreeCache* cache, int64_t account, const store::MessageMeta& m,
            bool content, bool tree) {
  Loaded l;
  if (content) {
    auto raw = store->ReadMessage(account, m.id);
    if (!raw) {
      l.error = raw.error();
      return l;
    }
    l.raw = std::move(*raw);
  }
  if (tree) {
    l.tree = cache->Find(m.id);
    // A tree is the parse of the whole message, so it ends at the message's
    // size; anything else is a stale entry (a store message id reused after a
    // purge) and is replaced.
    if (l.tree && l.tree->body_end == m.size) return l;
    l.tree = nullptr;
    size_t serialized_size = 0;
    auto stored = store->ReadMimeTree(account, m.id);
    if (stored && !stored->empty()) {
      auto t = mime::Deserialize(*stored);
      if (t) l.tree = std::make_shared<const mime::Part>(std::move(*t));
      serialized_size = stored->size();
    }
    if (!l.tree) {
      if (!content) {
        auto raw = store->ReadMessage(account, m.id);
        if (!raw) {
          l.error = raw.error();
          return l;
        }
        l.raw = std::move(*raw);
      }
      auto t = mime::Parse(l.raw);
      if (t) l.tree = std::make_shared<const mime::Part>(std::move(*t));
      serialized_size = l.raw.size() / 4;  // a rough estimate; this path is rare
    }
    if (l.tree) cache->Insert(m.id, l.tree, serialized_size);
  }
  return l;
}

}  // namespace hato::imap
