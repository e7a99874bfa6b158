#include "imap/server/sort_keys.h"

#include "imap/proto/sort_record.h"

namespace hato::imap {
namespace {

size_t Charge(const SortKeys& k) {
  size_t n = sizeof(SortKeys) + 64 + k.keys.subject.size() + k.keys.from.size() + k.keys.to.size() +
             k.keys.cc.size() + k.keys.display_from.size() + k.keys.display_to.size() +
             k.keys.message_id.size();
  for (const auto& r : k.keys.references) n += r.size() + sizeof(std::string);
  return n;
}

}  // namespace

SortKeys DeriveSortKeys(const store::MessageMeta& meta, const mime::Part* tree,
                        std::string_view header, bool with_references) {
  SortKeys out;
  bool has_date = false;
  out.keys = DeriveSortInput(tree, header, with_references, &has_date);
  out.keys.arrival = meta.internal_date;
  // RFC 5256 section 2.2: INTERNALDATE when Date cannot be used.
  if (!has_date) out.keys.date = meta.internal_date;
  out.keys.size = meta.size;
  out.has_references = with_references && tree && tree->envelope;
  return out;
}

std::shared_ptr<const SortKeys> SortKeyCache::Find(int64_t message_id, uint64_t size) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(message_id);
  if (it == entries_.end() || it->second.size != size) return nullptr;
  return it->second.keys;
}

void SortKeyCache::Insert(int64_t message_id, uint64_t size, std::shared_ptr<const SortKeys> keys) {
  size_t charge = Charge(*keys);
  std::lock_guard lock(mu_);
  if (bytes_ + charge > max_bytes_) {
    entries_.clear();
    bytes_ = 0;
  }
  auto& e = entries_[message_id];
  if (e.keys) bytes_ -= std::min(bytes_, Charge(*e.keys));
  e.size = size;
  e.keys = std::move(keys);
  bytes_ += charge;
}

size_t SortKeyCache::entries() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace hato::imap
