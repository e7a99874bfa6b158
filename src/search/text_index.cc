#include "search/text_index.h"

#include <spdlog/spdlog.h>
#include <xapian.h>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <limits>

#include "search/terms.h"

namespace hato::search {
namespace {

constexpr char kWatermarkKey[] = "watermark";
// The metadata key "holes": the ids up to the watermark that were read but
// could not be indexed (TextIndex::Skip), comma-separated.
constexpr char kHolesKey[] = "holes";
// The metadata key "format": what the terms are. 2: trigrams with positions
// and run ends (search::Postings); 3: and word terms (search::Words). An
// index without it (or another) is cleared at Open and built again.
constexpr char kFormatKey[] = "format";
constexpr char kFormat[] = "3";
// A needle's word prefix expands to at most this many word terms (the most
// frequent); documents with any other are proven by the phrase instead.
constexpr Xapian::termcount kMaxWordExpansion = 256;
// A search retries this often when the indexer commits under it (Xapian's
// DatabaseModifiedError), then gives up with kTemporary.
constexpr int kSearchAttempts = 3;

Error XapianError(const Xapian::Error& e, std::string_view what) {
  return Error{ErrorKind::kTemporary, "text index: " + std::string(what) + ": " + e.get_msg()};
}

// The prefix of each field's terms.
constexpr std::string_view kHeader = "H";
constexpr std::string_view kBody = "B";

// A field's word term (search::Words): the field's prefix and a tab, which
// no trigram or run end holds.
std::string WordTerm(std::string_view prefix, std::string_view word) {
  return std::string(prefix).append(1, '\t').append(word);
}

// The terms a field is indexed and searched by: its trigrams, less the
// common header words' in the header (search::IsCommonHeaderGram).
std::vector<std::string> FieldTerms(std::string_view folded, std::string_view prefix, bool needle,
                                    size_t* all = nullptr) {
  std::vector<std::string> terms =
      needle ? NeedleTrigrams(folded, prefix) : Trigrams(folded, prefix);
  if (all) *all = terms.size();
  if (prefix == kHeader) {
    terms.erase(
        std::remove_if(terms.begin(), terms.end(),
                       [&](const std::string& t) {
                         return IsCommonHeaderGram(std::string_view(t).substr(prefix.size()));
                       }),
        terms.end());
  }
  return terms;
}

// Adds the terms of one field with their positions (search::Postings), and
// its overflow mark when it has more trigrams than the index keeps.
void AddField(Xapian::Document& doc, std::string_view text, std::string_view prefix) {
  std::string folded = Fold(text);
  TrigramPostings postings = Postings(folded);
  std::string term(prefix);
  for (size_t i = 0; i < postings.grams.size(); ++i) {
    const std::string& gram = postings.grams[i];
    if (prefix == kHeader && IsCommonHeaderGram(gram)) continue;
    term.resize(prefix.size());
    term += gram;
    // No wdf: searches weigh nothing (BoolWeight).
    for (uint32_t p : postings.PositionsOf(i)) doc.add_posting(term, p, 0);
  }
  if (postings.cut) doc.add_boolean_term(OverflowTerm(prefix));
  for (const auto& word : Words(folded)) doc.add_boolean_term(WordTerm(prefix, word));
}

// The phrase that proves a field holds the needle (search::PhraseTerms), or
// nothing: in the header, a common header word's trigram is not indexed.
std::vector<std::string> FieldPhrase(std::string_view folded, std::string_view prefix) {
  std::vector<std::string> terms = PhraseTerms(folded, prefix);
  if (prefix == kHeader) {
    for (const auto& t : terms) {
      std::string_view gram = std::string_view(t).substr(prefix.size());
      if (gram.front() != '\n' && IsCommonHeaderGram(gram)) return {};
    }
  }
  return terms;
}

// Documents of the field that may hold a needle with these terms (every
// document when none is left).
Xapian::Query FieldQuery(const std::vector<std::string>& terms, std::string_view prefix) {
  if (terms.empty()) return Xapian::Query::MatchAll;
  return Xapian::Query(Xapian::Query::OP_OR,
                       Xapian::Query(Xapian::Query::OP_AND, terms.begin(), terms.end()),
                       Xapian::Query(OverflowTerm(prefix)));
}

Xapian::Query Or(const Xapian::Query& a, const Xapian::Query& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return Xapian::Query(Xapian::Query::OP_OR, a, b);
}

// The field's phrase query, and where the needle can be proven by a word
// term (search::WordPrefix) the documents with such a term first: the
// phrase's positions are read only in the documents without one (Xapian
// applies the AND_NOT before it checks the positions of an AND's phrase).
Xapian::Query FieldProof(std::string_view folded, const std::vector<std::string>& phrase,
                         std::string_view prefix) {
  Xapian::Query exact(Xapian::Query::OP_PHRASE, phrase.begin(), phrase.end(),
                      static_cast<Xapian::termcount>(phrase.size()));
  std::string word = WordPrefix(folded);
  if (word.empty() || phrase.size() < 2) return exact;
  Xapian::Query words(Xapian::Query::OP_WILDCARD, WordTerm(prefix, word), kMaxWordExpansion,
                      Xapian::Query::WILDCARD_LIMIT_MOST_FREQUENT);
  Xapian::Query rest(Xapian::Query::OP_AND_NOT, Xapian::Query(phrase.front()), words);
  return Xapian::Query(Xapian::Query::OP_OR, words,
                       Xapian::Query(Xapian::Query::OP_AND, exact, rest));
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
      AddField(doc, d.header, kHeader);
      AddField(doc, d.body, kBody);
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
  bool narrows = false;
};

TextIndex::Plan TextIndex::MakePlan(std::string_view folded, bool with_header) {
  // Per field: a needle whose phrase the positions prove (search::PhraseTerms)
  // matches where the phrase stands, and is checked only in fields cut at the
  // term limit; any other needle narrows by its trigrams and is checked.
  Plan plan;
  for (std::string_view prefix : {kBody, kHeader}) {
    if (prefix == kHeader && !with_header) break;
    std::vector<std::string> phrase = FieldPhrase(folded, prefix);
    if (!phrase.empty()) {
      plan.proven = Or(plan.proven, FieldProof(folded, phrase, prefix));
      plan.unproven = Or(plan.unproven, Xapian::Query(OverflowTerm(prefix)));
      plan.narrows = true;
    } else {
      std::vector<std::string> terms = FieldTerms(folded, prefix, true);
      plan.unproven = Or(plan.unproven, FieldQuery(terms, prefix));
      plan.narrows = plan.narrows || !terms.empty();
    }
  }
  return plan;
}

Result<TextHits> TextIndex::RunPlan(const Plan& plan, const Xapian::MatchDecider* decider,
                                    size_t limit, bool& over) {
  for (int attempt = 1;; ++attempt) {
    TextHits out;
    over = false;
    try {
      auto reader = impl_->TakeReader();
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
  Plan plan = MakePlan(folded, with_header);
  if (!plan.narrows) {  // nothing to narrow by: every one is a candidate
    for (size_t id = 0; id < want.size(); ++id) {
      if (want[id]) out.candidates.push_back(static_cast<int64_t>(id));
    }
    return out;
  }
  WantedDecider decider(want);
  bool over = false;
  return RunPlan(plan, &decider, 0, over);
}

Result<std::optional<TextHits>> TextIndex::LookupFew(std::string_view needle, bool with_header,
                                                     size_t limit) {
  Plan plan = MakePlan(Fold(needle), with_header);
  if (!plan.narrows) return std::optional<TextHits>();
  bool over = false;
  auto hits = RunPlan(plan, nullptr, std::max<size_t>(limit, 1), over);
  if (!hits) return hits.error();
  if (over) return std::optional<TextHits>();
  return std::optional<TextHits>(std::move(*hits));
}

}  // namespace hato::search
