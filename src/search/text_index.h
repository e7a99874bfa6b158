// The full-text index of message bodies (IMAP SEARCH BODY/TEXT): a Xapian
// database in its own directory (DATA/index), derived data that is rebuilt
// from the store at any time and never backed up.
//
// Documents are keyed by the store's blob id (one document per stored body,
// shared by every message that has that body). Format 4: each holds the
// tokens (search::Tokens) of its decoded header ("H") and body ("B") as
// terms with positions, one per word, CJK character and punctuation
// character, and one per whitespace run that is not the plain gap between
// two words; no document data. A needle inside a word is answered by the
// words of the vocabulary that hold it (an OR of terms, index-only); one
// across tokens by a phrase of its tokens, the first word piece widened to
// the words ending with it and the last to those starting with it. Both
// prove a match without reading any text. What the index cannot prove (a
// word too long for a term, a field cut at the token limit, a needle with
// whitespace at an end or cut inside a character) is a candidate, and the
// store checks those against the stored message itself (a copy of the text
// here cost about 2 GB of index per GB of mail and a zstd pass per message).
//
// The index knows how far it got: the metadata key "watermark" is the
// highest blob id it has read (committed with the documents), and it keeps
// in memory which ids it holds, so a search can say which bodies it has not
// seen (they are then scanned by the caller: SEARCH is always complete).
//
// Thread-safety: one indexer thread calls Add/Remove; any thread may call
// Lookup/Contains/Watermark concurrently (readers reopen the database).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace Xapian {
class Database;
class MatchDecider;
}  // namespace Xapian

namespace hato::search {

// The words of one field the index keeps in memory at most (some 100 bytes
// each, with the hash set), for the needles inside a word; past that those
// walk Xapian's term list (exact, slower).
inline constexpr size_t kMaxVocabularyWords = 500000;

struct IndexDoc {
  int64_t id = 0;
  std::string header;  // decoded text, as mime::ExtractSearchText gives it
  std::string body;
};

// What the index says about a needle: both ascending, disjoint.
struct TextHits {
  std::vector<int64_t> matches;     // hold it (proven by the terms' positions)
  std::vector<int64_t> candidates;  // may hold it: the caller checks them exactly
};

class TextIndex {
 public:
  // Opens or creates the index in `dir`. The database is locked by this
  // process: a second writer (another `hato serve`, `hato reindex` while
  // serving) gets kTemporary. `max_id` is the store's highest blob id now:
  // documents above it belong to bodies purged since and are dropped.
  static Result<std::unique_ptr<TextIndex>> Open(const std::string& dir, int64_t max_id);
  ~TextIndex();

  // Stages documents (added or replaced) read up to blob id `watermark`;
  // they count as indexed once Commit() has written them.
  Status Add(const std::vector<IndexDoc>& docs, int64_t watermark);
  // Writes what Add staged and the watermark in one Xapian commit.
  Status Commit();
  // Stages bodies read up to the watermark that could not be indexed
  // (unreadable): they stay unindexed (scanned by the caller), and Covered
  // names them. Committed with the watermark.
  void Skip(const std::vector<int64_t>& ids);
  // Forgets bodies that the store destroyed (ids may be reused by SQLite
  // above the store's highest id): they stop counting as indexed at once.
  void Forget(const std::vector<int64_t>& ids, int64_t max_id);
  // Writes the forgotten ids' removal (indexer thread).
  Status Flush();

  // The highest blob id read (staged or committed): the next round reads above it.
  int64_t Watermark() const;
  bool Contains(int64_t id) const;
  // What the committed index holds: every body up to `watermark` but the
  // `holes` (ascending; skipped, see Skip) and those destroyed since.
  struct Coverage {
    int64_t watermark = 0;
    std::vector<int64_t> holes;
  };
  Coverage Covered() const;
  // Contains() of each pair's second (a blob id), under one lock.
  std::vector<bool> ContainsEach(const std::vector<std::pair<uint32_t, int64_t>>& rows) const;
  uint64_t DocCount() const;

  // Which of the ids among `wanted` have a header (when `with_header`) or
  // body that holds `needle` as a case-insensitive substring (the rule of
  // search::MatchesFolded). Ids not Contains()ed are ignored: the caller
  // scans them.
  Result<TextHits> Lookup(std::string_view needle, bool with_header,
                          const std::vector<int64_t>& wanted);
  // The same over every document, when both the matches and the candidates
  // are at most `limit` (nullopt otherwise, or when the needle narrows
  // nothing): a search that finds few bodies need not list the mailbox's.
  // Call Covered() first: this reads the index as committed then or later.
  Result<std::optional<TextHits>> LookupFew(std::string_view needle, bool with_header,
                                            size_t limit);

 private:
  struct Impl;
  struct Plan;  // a needle's queries (text_index.cc)
  Plan MakePlan(Xapian::Database& db, std::string_view folded, bool with_header) const;
  // Plans a folded needle against the current revision and runs it over the
  // documents of `want` (by docid; null: all); `limit` (0: none) sets `over` when a query has more
  // documents; `narrows` false (and no hits): every document is a candidate.
  Result<TextHits> RunPlan(std::string_view folded, bool with_header, const std::vector<bool>* want,
                           size_t limit, bool& over, bool& narrows);
  explicit TextIndex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hato::search
