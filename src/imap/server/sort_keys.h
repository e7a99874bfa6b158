// The SORT and THREAD keys of a message (RFC 5256, RFC 5957): read from the
// record stored with its body at delivery (imap/proto/sort_record.h), or for
// a body stored before records were kept, derived from its stored MIME tree
// (the envelope: Date, Subject, From, To, Cc, Message-ID, In-Reply-To) and,
// for THREAD=REFERENCES only, its References header field; then kept in a
// bounded cache shared by all IMAP sessions, as messages never change once
// stored. A SORT over a large mailbox then reads
// no message and parses nothing (issue 16: 100,000 messages in < 200 ms).
//
// Bounded by an estimate of the memory held (kSortKeyCacheBytes); past it the
// cache starts over (the keys are cheap to derive again from cached trees).
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "imap/proto/sort.h"
#include "mime/message.h"
#include "store/store.h"

namespace hato::imap {

// About 500 bytes a message with its References: 128 MiB keeps the keys of
// a 100,000-message mailbox and more (bench/sort_bench.py).
inline constexpr size_t kSortKeyCacheBytes = 128u << 20;

// Past this many uncached keys (or when none of the mailbox is cached), SORT
// reads the records of the whole mailbox in one store read
// (Store::ReadSortKeys) rather than message by message.
inline constexpr size_t kBulkSortKeysMin = 32;

// SortInput without what belongs to a session's view (seq, number).
struct SortKeys {
  SortInput keys;
  bool has_references = false;  // `keys.references` was read from the header
};

// The keys of a message from its metadata and tree; `header` (the raw header
// block, may be empty) gives the References field when `with_references`.
SortKeys DeriveSortKeys(const store::MessageMeta& meta, const mime::Part* tree,
                        std::string_view header, bool with_references);

class SortKeyCache {
 public:
  explicit SortKeyCache(size_t max_bytes = kSortKeyCacheBytes) : max_bytes_(max_bytes) {}

  // Keyed by the store's message id and size (an id reused after a purge
  // has another message, almost always of another size).
  std::shared_ptr<const SortKeys> Find(int64_t message_id, uint64_t size) const;
  void Insert(int64_t message_id, uint64_t size, std::shared_ptr<const SortKeys> keys);
  size_t entries() const;

 private:
  struct Entry {
    uint64_t size = 0;
    std::shared_ptr<const SortKeys> keys;
  };
  const size_t max_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<int64_t, Entry> entries_;
  size_t bytes_ = 0;
};

}  // namespace hato::imap
