// IMAP sequence sets (RFC 3501 section 9 `sequence-set`, RFC 9051 section 9):
// the set as the client wrote it (with `*` kept explicit), its resolution
// against a mailbox into sorted disjoint ranges with fast membership tests,
// and the canonical compressed form used in responses ("1:3,7") by UIDPLUS
// (RFC 4315 section 3 COPYUID/APPENDUID), ESEARCH (RFC 4731 section 3 ALL) and
// QRESYNC (RFC 7162 section 3.2.10 VANISHED).
// Pure value types; not thread-safe to mutate, safe to share when const.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace hato::imap {

// `*` in a sequence set: "the largest number in use" (RFC 3501 section 9,
// seq-number). nz-number is never 0, so 0 is free to mean `*`.
inline constexpr uint32_t kStar = 0;

// Sorted, disjoint, non-adjacent closed ranges of numbers >= 1: a resolved
// set of message sequence numbers or UIDs.
class IdSet {
 public:
  struct Range {
    uint32_t first;
    uint32_t last;  // inclusive, >= first
    bool operator==(const Range&) const = default;
  };

  IdSet() = default;
  // Any order, duplicates allowed; zeros are ignored.
  static IdSet FromIds(std::vector<uint32_t> ids);
  // Any ranges (first may exceed last); overlapping/adjacent ranges merge.
  static IdSet FromRanges(std::vector<Range> ranges);

  bool empty() const { return ranges_.empty(); }
  // Number of ids in the set (up to 2^32 - 1, hence 64 bits).
  uint64_t size() const;
  uint32_t min() const { return ranges_.empty() ? 0 : ranges_.front().first; }
  uint32_t max() const { return ranges_.empty() ? 0 : ranges_.back().last; }
  // O(log ranges).
  bool Contains(uint32_t id) const;
  const std::vector<Range>& ranges() const { return ranges_; }

  // Canonical text: "1:3,7,9:12"; empty string for the empty set.
  std::string ToString() const;

  bool operator==(const IdSet&) const = default;

 private:
  std::vector<Range> ranges_;
};

// A sequence set as sent by the client: ranges in the client's order, bounds
// as written (kStar for `*`; `5:2` is kept as written, it means 2:5).
struct SeqSet {
  struct Range {
    uint32_t first;  // kStar or >= 1
    uint32_t last;   // kStar or >= 1; equal to first for a single number
    bool operator==(const Range&) const = default;
  };
  std::vector<Range> ranges;
  // "$": the saved search result (RFC 5182 SEARCHRES, RFC 9051 section 6.4.4.1),
  // resolved by the session; `ranges` is then empty and Resolve() empty.
  bool saved = false;
  // Set by whoever builds the set from an IdSet (ranges ascending, disjoint,
  // no `*`): Contains() then searches `ranges` instead of resolving them
  // for each message tested (a text search's matches can be thousands of
  // ranges, tested against every message of the mailbox).
  bool resolved = false;

  bool HasStar() const;
  // Replaces `*` with `star` (the highest sequence number or UID in the
  // mailbox; 0 when it is empty), orders each range and merges. Numbers above
  // `star` are kept: for UIDs they simply match nothing, for sequence numbers
  // the caller rejects them (RFC 9051 section 9, seq-number: BAD). With an
  // empty mailbox (`star` == 0) a bare `*` resolves to nothing.
  IdSet Resolve(uint32_t star) const;
  // Resolve(star).Contains(id): O(log ranges) when `resolved`.
  bool Contains(uint32_t id, uint32_t star) const;
  // The set as written: "1:*,5" (a `*`-free set of single numbers round-trips).
  std::string ToString() const;

  bool operator==(const SeqSet&) const = default;
};

// "1:3,7" from any list of ids (sorted or not): IdSet::FromIds(ids).ToString().
std::string CompressIds(std::span<const uint32_t> ids);

}  // namespace hato::imap
