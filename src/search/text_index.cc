#include "search/text_index.h"

#include <spdlog/spdlog.h>
#include <xapian.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <limits>
#include <optional>
#include <unordered_set>

#include "search/terms.h"

namespace hato::search {
namespace {

constexpr char kWatermarkKey[] = "watermark";
// The metadata key "holes": the ids up to the watermark that were read but
// could not be indexed (TextIndex::Skip), comma-separated.
constexpr char kHolesKey[] = "holes";
// The metadata key "format": what the terms are. 2: trigrams with positions
// and run ends (search::Postings); 3: and word terms (search::Words); 4:
// tokens with positions (search::Tokens, AddField below). An index without
// it (or another) is cleared at Open and built again.
constexpr char kFormatKey[] = "format";
constexpr char kFormat[] = "4";
// A word piece of a needle expands to at most this many words of the
// vocabulary; one with more only narrows by the needle's other pieces.
constexpr size_t kMaxWordExpansion = 10000;
// A search retries this often when the indexer commits under it (Xapian's
// DatabaseModifiedError), then gives up with kTemporary.
constexpr int kSearchAttempts = 3;

Error XapianError(const Xapian::Error& e, std::string_view what) {
  return Error{ErrorKind::kTemporary, "text index: " + std::string(what) + ": " + e.get_msg()};
}

// The prefix of each field's terms.
constexpr std::string_view kHeader = "H";
constexpr std::string_view kBody = "B";

// The words of one field (its word terms without the prefix), in memory for
// the needles inside a word: "\0word\0word\0...", so that the words holding
// a needle are one memmem pass over it (a walk of Xapian's term list cost
// 20 ms per search at 20,000 messages, most of it in the header's
// vocabulary). Never shrinks: a word whose documents are all gone only adds
// a term that matches nothing to a query.
class Vocabulary {
 public:
  // True for a word known, or any once the vocabulary is full.
  bool Has(std::string_view word) const { return full_ || words_.find(word) != words_.end(); }
  void Add(const std::string& word) {
    if (full_ || !words_.insert(word).second) return;
    if (words_.size() > kMaxVocabularyWords) {  // the term list answers from now on
      full_ = true;
      words_ = {};
      blob_ = {};
      return;
    }
    blob_.append(word).push_back('\0');
  }
  bool full() const { return full_; }
  // The terms (`prefix` and the word) of the words that end with `piece`
  // (`ends`) or hold it, or nullopt when more than `limit`.
  std::optional<std::vector<std::string>> Find(std::string_view piece, bool ends,
                                               std::string_view prefix, size_t limit) const {
    std::string pattern(piece);
    if (ends) pattern.push_back('\0');
    std::vector<std::string> out;
    const char* base = blob_.data();
    for (size_t at = 0; at < blob_.size();) {
      const void* hit = memmem(base + at, blob_.size() - at, pattern.data(), pattern.size());
      if (hit == nullptr) break;
      size_t h = static_cast<size_t>(static_cast<const char*>(hit) - base);
      size_t start = blob_.rfind('\0', h) + 1;  // the piece holds no NUL; the blob starts with one
      size_t end = blob_.find('\0', h);
      if (out.size() == limit) return std::nullopt;
      out.push_back(std::string(prefix).append(blob_, start, end - start));
      at = end + 1;
    }
    return out;
  }

 private:
  std::string blob_ = std::string(1, '\0');
  bool full_ = false;
  // Looked up by string_view: no string built per token.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_set<std::string, Hash, std::equal_to<>> words_;
};

// A token's term in a field: the prefix and the token's text. A whitespace
// run that takes a position is kSpaceMark, a word longer than
// kMaxWordTermBytes kLongMark (neither is the text of any token, nor
// OverflowTerm's).
constexpr char kSpaceMark = '\n';
constexpr char kLongMark = '\x01';

// A whitespace run takes no position between two words (the common gap:
// two words at consecutive positions had only whitespace between them), nor
// at either end of the field (no needle's proof starts or ends with one).
bool Implied(const std::vector<Token>& tokens, size_t i) {
  return i == 0 || i + 1 == tokens.size() ||
         (tokens[i - 1].kind == TokenKind::kWord && tokens[i + 1].kind == TokenKind::kWord);
}

// Adds the terms of one field with their positions (format 4, search::Tokens),
// and its overflow mark when a word is too long for a term or the field has
// more tokens than the index keeps.
void AddField(Xapian::Document& doc, std::string_view text, std::string_view prefix,
              const Vocabulary& vocabulary, std::vector<std::string>& new_words) {
  std::string folded = Fold(text);
  std::vector<Token> tokens = Tokens(folded);
  std::string term(prefix);
  Xapian::termpos position = 0;
  bool cut = false;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    term.resize(prefix.size());
    if (t.kind == TokenKind::kSpace) {
      if (Implied(tokens, i)) continue;
      term += kSpaceMark;
    } else if (t.kind == TokenKind::kWord && t.text.size() > kMaxWordTermBytes) {
      term += kLongMark;
      cut = true;
    } else {
      term += t.text;
      if (t.kind == TokenKind::kWord && !vocabulary.Has(t.text)) new_words.emplace_back(t.text);
    }
    if (position == kMaxTokensPerField) {
      cut = true;
      break;
    }
    // No wdf: searches weigh nothing (BoolWeight).
    doc.add_posting(term, ++position, 0);
  }
  if (cut) doc.add_boolean_term(OverflowTerm(prefix));
}

Xapian::Query Or(const Xapian::Query& a, const Xapian::Query& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return Xapian::Query(Xapian::Query::OP_OR, a, b);
}

// One positioned piece of a needle: a token's term, or for a word at an end
// of the needle the words of the vocabulary it can be part of.
struct Piece {
  enum Role { kExact, kStarts, kEnds, kContains } role;
  std::string text;  // without prefix
};

// The pieces of a folded, squashed needle (valid UTF-8) at consecutive
// positions, by the rule of AddField; `exact` false when the needle started
// or ended with whitespace (left out: the pieces then only narrow).
std::vector<Piece> Pieces(std::string_view needle, bool& exact) {
  std::vector<Token> tokens = Tokens(needle);
  exact = true;
  if (!tokens.empty() && tokens.front().kind == TokenKind::kSpace) {
    tokens.erase(tokens.begin());
    exact = false;
  }
  if (!tokens.empty() && tokens.back().kind == TokenKind::kSpace) {
    tokens.pop_back();
    exact = false;
  }
  std::vector<Piece> out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    if (t.kind == TokenKind::kSpace) {
      if (!Implied(tokens, i)) out.push_back({Piece::kExact, std::string(1, kSpaceMark)});
    } else if (t.kind != TokenKind::kWord) {
      out.push_back({Piece::kExact, std::string(t.text)});
    } else {
      // A word with a token before it in the needle starts a word of the
      // text; one with a token after it ends one.
      bool first = i == 0, last = i + 1 == tokens.size();
      Piece::Role role = first && last ? Piece::kContains
                         : first       ? Piece::kEnds
                         : last        ? Piece::kStarts
                                       : Piece::kExact;
      out.push_back({role, std::string(t.text)});
    }
  }
  return out;
}

// The terms of the field's vocabulary that a word piece can stand for, or
// nullopt when more than kMaxWordExpansion.
std::optional<std::vector<std::string>> Expand(Xapian::Database& db, const Vocabulary& vocabulary,
                                               std::string_view prefix, const Piece& piece) {
  std::vector<std::string> out;
  if (piece.role == Piece::kExact) {
    out.push_back(std::string(prefix).append(piece.text));
    return out;
  }
  if (piece.role != Piece::kStarts && !vocabulary.full()) {
    return vocabulary.Find(piece.text, piece.role == Piece::kEnds, prefix, kMaxWordExpansion);
  }
  // A word starting with the piece, or any word when the vocabulary is full
  // (a walk of the whole term list: a word piece holds no byte of a CJK,
  // punctuation or whitespace term, so those never fit).
  std::string from = std::string(prefix);
  if (piece.role == Piece::kStarts) from += piece.text;
  for (auto it = db.allterms_begin(from); it != db.allterms_end(from); ++it) {
    const std::string& term = *it;
    std::string_view word = std::string_view(term).substr(prefix.size());
    bool fits = piece.role == Piece::kStarts ||
                (piece.role == Piece::kEnds ? word.ends_with(piece.text)
                                            : word.find(piece.text) != std::string_view::npos);
    if (!fits) continue;
    if (out.size() == kMaxWordExpansion) return std::nullopt;
    out.push_back(term);
  }
  return out;
}

// True for a term's text (without prefix) that is one word token.
bool IsWord(std::string_view text) {
  auto tokens = Tokens(text);
  return tokens.size() == 1 && tokens[0].kind == TokenKind::kWord;
}

// Documents among the wanted ones (a bitmap by docid).
class WantedDecider : public Xapian::MatchDecider {
 public:
  explicit WantedDecider(const std::vector<bool>& wanted) : wanted_(wanted) {}
  bool operator()(const Xapian::Document& doc) const override {
    Xapian::docid id = doc.get_docid();
    return id < wanted_.size() && wanted_[id];
  }

 private:
  const std::vector<bool>& wanted_;
};

}  // namespace

struct TextIndex::Impl {
  std::string dir;
  Xapian::WritableDatabase writer;  // indexer thread only

  mutable std::shared_mutex mu;  // guards `held`, `watermark`, `holes`, `forgotten`
  std::vector<bool> held;        // by blob id: a document exists
  int64_t watermark = 0;
  std::vector<int64_t> holes;      // ascending: read up to the watermark, not indexed
  std::vector<int64_t> forgotten;  // ids to delete at the next Flush
  // Indexer thread only: added since the last Commit.
  std::vector<int64_t> staged;
  std::vector<int64_t> staged_holes;
  int64_t staged_watermark = 0;

  std::mutex readers_mu;
  std::vector<std::unique_ptr<Xapian::Database>> readers;

  // The words of the body and the header. Written by the indexer thread
  // (Open, Add) under vocabulary_mu held exclusively; it reads without.
  mutable std::shared_mutex vocabulary_mu;
  Vocabulary body_words, header_words;

  std::unique_ptr<Xapian::Database> TakeReader() {
    {
      std::lock_guard lock(readers_mu);
      if (!readers.empty()) {
        auto r = std::move(readers.back());
        readers.pop_back();
        r->reopen();
        return r;
      }
    }
    return std::make_unique<Xapian::Database>(dir);
  }
  void GiveBack(std::unique_ptr<Xapian::Database> r) {
    std::lock_guard lock(readers_mu);
    readers.push_back(std::move(r));
  }
  void SetHeld(int64_t id, bool on) {  // mu held exclusively
    if (id <= 0) return;
    auto i = static_cast<size_t>(id);
    if (i >= held.size()) {
      if (!on) return;
      held.resize(std::max(i + 1, held.size() * 2));
    }
    held[i] = on;
  }
};

TextIndex::TextIndex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TextIndex::~TextIndex() = default;

Result<std::unique_ptr<TextIndex>> TextIndex::Open(const std::string& dir, int64_t max_id) {
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  for (int attempt = 0;; ++attempt) {
    try {
      // No fsync: the index is derived data. After a crash it is at some
      // earlier commit (its watermark with it), or unreadable and rebuilt.
      impl->writer = Xapian::WritableDatabase(
          dir, Xapian::DB_CREATE_OR_OPEN | Xapian::DB_NO_SYNC | Xapian::DB_BACKEND_GLASS);
      Xapian::WritableDatabase& w = impl->writer;
      if (w.get_metadata(kFormatKey) != kFormat) {
        if (w.get_doccount() > 0 || !w.get_metadata(kWatermarkKey).empty()) {
          // Written by an older Hato: its terms would answer wrongly (no
          // positions). Derived data: rebuilt from the store.
          if (attempt > 0)
            return Err(ErrorKind::kTemporary, "text index " + dir + ": cannot clear");
          spdlog::info("text index {} has an older format; rebuilding it", dir);
          w.close();
          std::error_code ec;
          std::filesystem::remove_all(dir, ec);
          continue;
        }
        w.set_metadata(kFormatKey, kFormat);
        w.commit();
      }
      break;
    } catch (const Xapian::DatabaseLockError& e) {
      return Err(ErrorKind::kTemporary,
                 "text index " + dir + " is in use by another process (" + e.get_msg() + ")");
    } catch (const Xapian::Error& e) {
      if (attempt > 0) return XapianError(e, "cannot open " + dir);
      spdlog::warn("text index {} unreadable ({}); rebuilding it", dir, e.get_msg());
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
  try {
    Xapian::WritableDatabase& w = impl->writer;
    std::string mark = w.get_metadata(kWatermarkKey);
    impl->watermark = mark.empty() ? 0 : std::stoll(mark);
    std::string holes = w.get_metadata(kHolesKey);
    for (size_t at = 0; at < holes.size();) {
      size_t comma = std::min(holes.find(',', at), holes.size());
      int64_t id = std::stoll(holes.substr(at, comma - at));
      if (id <= max_id) impl->holes.push_back(id);
      at = comma + 1;
    }
    std::sort(impl->holes.begin(), impl->holes.end());
    // Bodies purged while we were not running: SQLite may hand their ids out
    // again, so what the index holds above the store's highest id is stale.
    std::vector<Xapian::docid> stale;
    for (auto it = w.postlist_begin(""); it != w.postlist_end(""); ++it) {
      Xapian::docid id = *it;
      if (static_cast<int64_t>(id) > max_id) {
        stale.push_back(id);
      } else {
        impl->SetHeld(id, true);
      }
    }
    for (auto [prefix, vocabulary] :
         {std::pair{kBody, &impl->body_words}, std::pair{kHeader, &impl->header_words}}) {
      std::string from(prefix);
      for (auto it = w.allterms_begin(from); it != w.allterms_end(from); ++it) {
        std::string word = (*it).substr(prefix.size());
        if (IsWord(word)) vocabulary->Add(word);
      }
    }
    for (auto id : stale) w.delete_document(id);
    if (impl->watermark > max_id) impl->watermark = max_id;
    if (!stale.empty()) {
      w.set_metadata(kWatermarkKey, std::to_string(impl->watermark));
      w.commit();
    }
  } catch (const Xapian::Error& e) {
    return XapianError(e, "cannot read " + dir);
  } catch (const std::exception& e) {
    return Err(ErrorKind::kCorrupt, "text index " + dir + ": bad watermark: " + e.what());
  }
  return std::unique_ptr<TextIndex>(new TextIndex(std::move(impl)));
}

Status TextIndex::Add(const std::vector<IndexDoc>& docs, int64_t watermark) {
  try {
    for (const auto& d : docs) {
      if (d.id <= 0 || d.id > std::numeric_limits<Xapian::docid>::max()) continue;  // scanned
      Xapian::Document doc;
      std::vector<std::string> new_header, new_body;
      AddField(doc, d.header, kHeader, impl_->header_words, new_header);
      AddField(doc, d.body, kBody, impl_->body_words, new_body);
      if (!new_header.empty() || !new_body.empty()) {
        std::unique_lock lock(impl_->vocabulary_mu);
        for (const auto& word : new_header) impl_->header_words.Add(word);
        for (const auto& word : new_body) impl_->body_words.Add(word);
      }
      impl_->writer.replace_document(static_cast<Xapian::docid>(d.id), doc);
      impl_->staged.push_back(d.id);
    }
    std::unique_lock lock(impl_->mu);
    impl_->staged_watermark = std::max(impl_->staged_watermark, watermark);
    return Ok();
  } catch (const Xapian::Error& e) {
    return XapianError(e, "cannot add documents");
  }
}

Status TextIndex::Commit() {
  try {
    int64_t mark;
    std::vector<int64_t> holes;
    {
      std::shared_lock lock(impl_->mu);
      mark = std::max(impl_->watermark, impl_->staged_watermark);
      holes = impl_->holes;
      // A body forgotten while we read it is no hole.
      std::vector<int64_t> gone(impl_->forgotten);
      std::sort(gone.begin(), gone.end());
      for (int64_t id : impl_->staged_holes) {
        if (id <= mark && !std::binary_search(gone.begin(), gone.end(), id)) holes.push_back(id);
      }
    }
    std::sort(holes.begin(), holes.end());
    holes.erase(std::unique(holes.begin(), holes.end()), holes.end());
    std::string list;
    for (int64_t id : holes) {
      if (!list.empty()) list += ',';
      list += std::to_string(id);
    }
    impl_->writer.set_metadata(kWatermarkKey, std::to_string(mark));
    impl_->writer.set_metadata(kHolesKey, list);
    impl_->writer.commit();
    std::unique_lock lock(impl_->mu);
    for (int64_t id : impl_->staged) impl_->SetHeld(id, true);
    // A body forgotten while we indexed it must not come back.
    for (int64_t id : impl_->forgotten) impl_->SetHeld(id, false);
    impl_->holes = std::move(holes);
    impl_->staged_holes.clear();
    impl_->watermark = std::max(impl_->watermark, impl_->staged_watermark);
    impl_->staged.clear();
    return Ok();
  } catch (const Xapian::Error& e) {
    return XapianError(e, "cannot commit");
  }
}

void TextIndex::Skip(const std::vector<int64_t>& ids) {
  impl_->staged_holes.insert(impl_->staged_holes.end(), ids.begin(), ids.end());
}

void TextIndex::Forget(const std::vector<int64_t>& ids, int64_t max_id) {
  std::unique_lock lock(impl_->mu);
  for (int64_t id : ids) {
    impl_->SetHeld(id, false);
    impl_->forgotten.push_back(id);
  }
  std::vector<int64_t> gone(ids);
  std::sort(gone.begin(), gone.end());
  std::erase_if(impl_->holes, [&](int64_t id) {
    return id > max_id || std::binary_search(gone.begin(), gone.end(), id);
  });
  // Ids above the store's highest are handed out again: read them again.
  if (impl_->watermark > max_id) impl_->watermark = max_id;
  if (impl_->staged_watermark > max_id) impl_->staged_watermark = max_id;
}

Status TextIndex::Flush() {
  std::vector<int64_t> ids;
  int64_t mark;
  {
    std::unique_lock lock(impl_->mu);
    ids.swap(impl_->forgotten);
    mark = impl_->watermark;
  }
  if (ids.empty()) return Ok();
  try {
    for (int64_t id : ids) {
      if (id > 0 && id <= std::numeric_limits<Xapian::docid>::max()) {
        impl_->writer.delete_document(static_cast<Xapian::docid>(id));
      }
    }
    impl_->writer.set_metadata(kWatermarkKey, std::to_string(mark));
    impl_->writer.commit();
    return Ok();
  } catch (const Xapian::DocNotFoundError&) {
    return Ok();
  } catch (const Xapian::Error& e) {
    return XapianError(e, "cannot remove documents");
  }
}

int64_t TextIndex::Watermark() const {
  std::shared_lock lock(impl_->mu);
  return std::max(impl_->watermark, impl_->staged_watermark);
}

TextIndex::Coverage TextIndex::Covered() const {
  std::shared_lock lock(impl_->mu);
  return {impl_->watermark, impl_->holes};
}

bool TextIndex::Contains(int64_t id) const {
  std::shared_lock lock(impl_->mu);
  return id > 0 && static_cast<size_t>(id) < impl_->held.size() && impl_->held[id];
}

std::vector<bool> TextIndex::ContainsEach(
    const std::vector<std::pair<uint32_t, int64_t>>& rows) const {
  std::vector<bool> out(rows.size());
  std::shared_lock lock(impl_->mu);
  const std::vector<bool>& held = impl_->held;
  for (size_t i = 0; i < rows.size(); ++i) {
    int64_t id = rows[i].second;
    out[i] = id > 0 && static_cast<size_t>(id) < held.size() && held[id];
  }
  return out;
}

uint64_t TextIndex::DocCount() const {
  std::shared_lock lock(impl_->mu);
  uint64_t n = 0;
  for (bool b : impl_->held) n += b;
  return n;
}

// A needle's queries: `proven` matches hold it; `unproven` ones may (the
// caller checks them). `narrows` false: every document is a candidate.
struct TextIndex::Plan {
  Xapian::Query proven, unproven;
  // Matches too: the documents holding any of these terms (a needle inside
  // a word), read from their posting lists without Enquire (an MSet of
  // 100,000 documents costs more than the lists).
  std::vector<std::string> proven_terms;
  bool narrows = false;
};

TextIndex::Plan TextIndex::MakePlan(Xapian::Database& db, std::string_view folded,
                                    bool with_header) const {
  // Per field: the phrase of the needle's pieces (a single piece alone)
  // proves a match; a field with a word too long for a term, or cut at the
  // token limit, is a candidate. A piece with too many words to expand
  // leaves the rest of the pieces to narrow (every document when none).
  Plan plan;
  std::string needle = SquashSpace(folded);
  if (HasInvalidUtf8(needle)) return plan;  // may be cut inside a character of the text
  bool exact = true;
  std::vector<Piece> pieces = Pieces(needle, exact);
  if (pieces.empty()) return plan;  // whitespace alone
  plan.narrows = true;
  for (std::string_view prefix : {kBody, kHeader}) {
    if (prefix == kHeader && !with_header) break;
    std::vector<Xapian::Query> parts;
    bool too_many = false, none = false;
    for (const Piece& piece : pieces) {
      std::optional<std::vector<std::string>> terms;
      {
        std::shared_lock lock(impl_->vocabulary_mu);
        terms =
            Expand(db, prefix == kBody ? impl_->body_words : impl_->header_words, prefix, piece);
      }
      if (!terms) {
        too_many = true;
        continue;
      }
      if (terms->empty()) none = true;
      if (pieces.size() == 1 && exact) {  // the matches are those holding any of them
        plan.proven_terms.insert(plan.proven_terms.end(), terms->begin(), terms->end());
      }
      parts.push_back(terms->size() == 1
                          ? Xapian::Query(terms->front())
                          : Xapian::Query(Xapian::Query::OP_OR, terms->begin(), terms->end()));
    }
    Xapian::Query overflow(OverflowTerm(prefix));
    if (too_many) {
      if (parts.empty()) {
        plan.narrows = false;
        return plan;
      }
      plan.unproven =
          Or(plan.unproven,
             Or(Xapian::Query(Xapian::Query::OP_AND, parts.begin(), parts.end()), overflow));
      continue;
    }
    plan.unproven = Or(plan.unproven, overflow);
    if (none || (pieces.size() == 1 && exact)) continue;  // none, or in proven_terms
    Xapian::Query q = parts.size() == 1
                          ? parts.front()
                          : Xapian::Query(Xapian::Query::OP_PHRASE, parts.begin(), parts.end(),
                                          static_cast<Xapian::termcount>(parts.size()));
    if (exact) {
      plan.proven = Or(plan.proven, q);
    } else {
      plan.unproven = Or(plan.unproven, q);
    }
  }
  return plan;
}

Result<TextHits> TextIndex::RunPlan(std::string_view folded, bool with_header,
                                    const std::vector<bool>* want, size_t limit, bool& over,
                                    bool& narrows) {
  for (int attempt = 1;; ++attempt) {
    TextHits out;
    over = false;
    try {
      auto reader = impl_->TakeReader();
      Plan plan = MakePlan(*reader, folded, with_header);
      narrows = plan.narrows;
      if (!narrows) {
        impl_->GiveBack(std::move(reader));
        return out;
      }
      std::optional<WantedDecider> wanted;
      if (want) wanted.emplace(*want);
      const Xapian::MatchDecider* decider = want ? &*wanted : nullptr;
      auto run = [&](const Xapian::Query& q, std::vector<int64_t>& ids) {
        if (q.empty() || over) return;
        Xapian::Enquire enquire(*reader);
        enquire.set_query(q);
        enquire.set_weighting_scheme(Xapian::BoolWeight());
        enquire.set_docid_order(Xapian::Enquire::ASCENDING);
        Xapian::doccount most =
            limit == 0 ? reader->get_doccount() : static_cast<Xapian::doccount>(limit + 1);
        Xapian::MSet mset = enquire.get_mset(0, most, 0, nullptr, decider);
        if (limit != 0 && mset.size() > limit) over = true;
        for (auto it = mset.begin(); it != mset.end(); ++it) ids.push_back(*it);
      };
      run(plan.proven, out.matches);
      for (const std::string& term : plan.proven_terms) {
        if (over) break;
        for (auto it = reader->postlist_begin(term); it != reader->postlist_end(term); ++it) {
          Xapian::docid id = *it;
          if (want && (id >= want->size() || !(*want)[id])) continue;
          out.matches.push_back(id);
          if (limit != 0 && out.matches.size() > limit && plan.proven_terms.size() == 1) {
            over = true;
            break;
          }
        }
      }
      if (!plan.proven_terms.empty()) {
        std::sort(out.matches.begin(), out.matches.end());
        out.matches.erase(std::unique(out.matches.begin(), out.matches.end()), out.matches.end());
        if (limit != 0 && out.matches.size() > limit) over = true;
      }
      run(plan.unproven, out.candidates);
      impl_->GiveBack(std::move(reader));
      // A proven match needs no check.
      std::vector<int64_t> rest;
      std::set_difference(out.candidates.begin(), out.candidates.end(), out.matches.begin(),
                          out.matches.end(), std::back_inserter(rest));
      out.candidates.swap(rest);
      return out;
    } catch (const Xapian::DatabaseModifiedError& e) {
      if (attempt >= kSearchAttempts) return XapianError(e, "search");
    } catch (const Xapian::Error& e) {
      return XapianError(e, "search");
    }
  }
}

Result<TextHits> TextIndex::Lookup(std::string_view needle, bool with_header,
                                   const std::vector<int64_t>& wanted) {
  std::string folded = Fold(needle);
  std::vector<bool> want;  // by docid: wanted and held
  bool any = false;
  {
    std::shared_lock lock(impl_->mu);
    const std::vector<bool>& held = impl_->held;
    for (int64_t id : wanted) {
      if (id <= 0 || static_cast<size_t>(id) >= held.size() || !held[id]) continue;
      if (static_cast<size_t>(id) >= want.size())
        want.resize(std::max<size_t>(id + 1, want.size() * 2));
      want[id] = true;
      any = true;
    }
  }
  TextHits out;
  if (!any) return out;
  bool over = false, narrows = false;
  auto hits = RunPlan(folded, with_header, &want, 0, over, narrows);
  if (!hits || narrows) return hits;
  // Nothing to narrow by: every one is a candidate.
  for (size_t id = 0; id < want.size(); ++id) {
    if (want[id]) out.candidates.push_back(static_cast<int64_t>(id));
  }
  return out;
}

Result<std::optional<TextHits>> TextIndex::LookupFew(std::string_view needle, bool with_header,
                                                     size_t limit) {
  bool over = false, narrows = false;
  auto hits =
      RunPlan(Fold(needle), with_header, nullptr, std::max<size_t>(limit, 1), over, narrows);
  if (!hits) return hits.error();
  if (over || !narrows) return std::optional<TextHits>();
  return std::optional<TextHits>(std::move(*hits));
}

}  // namespace hato::search
