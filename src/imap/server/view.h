// The client's view of the selected mailbox: message sequence numbers
// (RFC 3501 section 2.3.1.2) in step with what the client was told, each with
// its UID and, while the session is active, its metadata (flags, size,
// dates, modseq).
//
// A session in IDLE puts its view to sleep: the metadata is dropped and only
// the UIDs are kept, as runs of consecutive UIDs packed in a few bytes each,
// which for a mailbox without many holes is a few bytes however many messages
// it has. That is what lets
// tens of thousands of IDLE connections fit in memory (issue 3: at most
// 16 kB per connection). While asleep the view still follows the mailbox
// (new UIDs appended, expunged ones removed), and Wake() reloads the
// metadata when the client sends its next command.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"

namespace hato::imap {

class MessageView {
 public:
  size_t size() const { return awake_ ? metas_.size() : asleep_size_; }
  bool empty() const { return size() == 0; }
  bool awake() const { return awake_; }

  uint32_t Uid(size_t index) const;
  uint32_t MaxUid() const;  // 0 when empty
  // The index (sequence number - 1) of a UID in the view.
  std::optional<size_t> Find(uint32_t uid) const;

  // Metadata by index; only while awake.
  const store::MessageMeta& operator[](size_t index) const { return metas_[index]; }
  store::MessageMeta& operator[](size_t index) { return metas_[index]; }
  const std::vector<store::MessageMeta>& metas() const { return metas_; }

  void Assign(std::vector<store::MessageMeta> metas);
  // Appends a message with a UID above MaxUid() (asleep: only its UID is kept).
  void Append(const store::MessageMeta& m);
  void Erase(size_t index);

  // Session-only flags (IMAP \Recent: bits of MessageMeta::flags the store
  // does not keep) survive Sleep/Wake. Sets `flag` on the messages with UIDs
  // in (after_uid, up_to_uid].
  void SetSessionFlag(uint32_t after_uid, uint32_t up_to_uid, uint32_t flag);
  size_t CountFlag(uint32_t flag) const;
  // The session flags of the message at `index`.
  uint32_t SessionFlags(size_t index) const;

  // Drops the metadata, keeping the UIDs as runs and the session flags.
  void Sleep();
  // The UIDs as [first, last] ranges, for reloading the metadata.
  std::vector<std::pair<uint32_t, uint32_t>> UidRanges() const;
  // Back to awake with the metadata of the view's UIDs, as found in the store
  // (in UID order). A UID the store no longer has (purged) gets a placeholder
  // with id 0, whose reads fail, so sequence numbers stay right.
  void Wake(const std::vector<store::MessageMeta>& found);

  // Approximate heap bytes held, for tests and metrics.
  size_t MemoryBytes() const;

 private:
  struct Run {
    uint32_t first;
    uint32_t count;
  };
  // The runs asleep, ascending and non-adjacent, decoded; and replaced.
  std::vector<Run> Runs() const;
  void SetRuns(const std::vector<Run>& runs);
  // Calls f(run) for each run asleep, in order, until f returns false.
  template <typename F>
  void ForEachRun(F f) const;
  void PackTail();  // moves tail_ into packed_

  bool awake_ = true;
  std::vector<store::MessageMeta> metas_;  // awake: sequence number n is metas_[n - 1]
  // Asleep: every run but the last as two LEB128 varints, (its first UID
  // minus the end of the run before, its length - 1): 2 to 4 bytes a run
  // instead of 8, for the sessions that idle on a mailbox with many holes
  // (issue 17: memory per IMAP IDLE connection). The last run, the one
  // Append extends, is tail_ (count 0: the view is empty).
  std::string packed_;
  uint32_t packed_end_ = 0;  // one past the last UID of the packed runs
  Run tail_{0, 0};
  size_t asleep_size_ = 0;
  std::vector<std::pair<uint32_t, uint32_t>> session_flags_;  // asleep: (UID, flags), by UID
  uint32_t session_mask_ = 0;                                 // every session flag ever set
};

}  // namespace hato::imap
