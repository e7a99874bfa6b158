// SORT (RFC 5256 section 3, RFC 5957 SORT=DISPLAY, RFC 5267 ESORT) and
// THREAD (RFC 5256 section 3: ORDEREDSUBJECT, REFERENCES). The search part
// is SEARCH's (Session::RunSearch); the keys come from the shared
// SortKeyCache, filled on a miss from the records stored with each body at
// delivery (imap/proto/sort_record.h), else derived from the stored MIME
// trees (bodies stored before records were kept); the ordering
// and threading are the pure functions of imap/proto/sort.h.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>

#include "imap/proto/response.h"
#include "imap/proto/sort.h"
#include "imap/proto/sort_record.h"
#include "imap/proto/strings.h"
#include "imap/server/session.h"
#include "imap/server/sort_keys.h"
#include "io/await.h"

namespace hato::imap {

awaitable<std::optional<std::vector<SortInput>>> Session::LoadSortInputs(
    const std::vector<uint32_t>& seqs, bool uid, bool references) {
  store::Store* store = svc_.store;
  TreeCache* trees = &trees_;
  SortKeyCache* keys = &sort_keys_;
  int64_t account = selected_->account;
  // The session waits, and only its own coroutine changes the view.
  const std::vector<store::MessageMeta>* metas = &selected_->view.metas();
  int64_t mailbox_id = selected_->id;
  auto load = [store, trees, keys, account, mailbox_id, metas, seqs, uid,
               references]() -> std::optional<std::vector<SortInput>> {
    auto usable = [references](const std::shared_ptr<const SortKeys>& k) {
      return k && (!references || k->has_references);
    };
    // Keys not cached yet: from the records stored at delivery, all read at
    // once (a cold server: one query instead of a tree per message).
    std::unordered_map<int64_t, const store::MessageMeta*> missing;
    for (uint32_t seq : seqs) {
      const store::MessageMeta& m = (*metas)[seq - 1];
      if (!usable(keys->Find(m.id, m.size))) missing.emplace(m.id, &m);
    }
    if (missing.size() >= kBulkSortKeysMin || missing.size() == metas->size()) {
      auto records = store->ReadSortKeys(account, mailbox_id);
      if (records) {
        for (const auto& [id, record] : *records) {
          auto it = missing.find(id);
          if (it == missing.end()) continue;
          auto decoded = DecodeSortRecord(record, it->second->internal_date);
          if (!decoded) continue;  // another version: derived below
          auto k = std::make_shared<SortKeys>();
          k->keys = std::move(*decoded);
          k->keys.arrival = it->second->internal_date;
          k->keys.size = it->second->size;
          k->has_references = true;
          keys->Insert(id, it->second->size, std::move(k));
        }
      }
    }
    std::vector<SortInput> out;
    out.reserve(seqs.size());
    for (uint32_t seq : seqs) {
      const store::MessageMeta& m = (*metas)[seq - 1];
      auto k = keys->Find(m.id, m.size);
      if (!usable(k)) {
        // No record (a body stored before records were kept): from its tree.
        Loaded l = Load(store, trees, account, m, /*content=*/references, /*tree=*/true);
        if (l.error) return std::nullopt;
        std::string_view header = l.raw;
        if (l.tree) header = header.substr(0, std::min(l.tree->header_end, header.size()));
        auto derived =
            std::make_shared<const SortKeys>(DeriveSortKeys(m, l.tree.get(), header, references));
        keys->Insert(m.id, m.size, derived);
        k = std::move(derived);
      }
      SortInput& in = out.emplace_back(k->keys);
      in.seq = seq;
      in.number = uid ? m.uid : seq;
    }
    return out;
  };
  auto found = co_await io::Offload(*svc_.blocking, std::move(load));
  co_return found;
}

awaitable<bool> Session::HandleSort(const Command& c) {
  const auto& a = c.As<SearchArgs>();
  bool ok = true;
  if (a.return_save) saved_uids_.clear();  // RFC 5182 section 2.1: a failure saves nothing
  auto found = co_await RunSearch(c, ok);
  if (!found) co_return ok;
  auto inputs = co_await LoadSortInputs(found->seqs, c.uid, /*references=*/false);
  if (!inputs) {
    Tagged(c, "NO", "[UNAVAILABLE] try again later");
    co_return true;
  }
  std::vector<size_t> order = SortOrder(*inputs, a.sort);
  if (a.return_save) {
    // RFC 5182 section 2.1 (and RFC 5267 section 3): "$" is the result; with
    // MIN and/or MAX alone, only those (the first and last in sort order).
    const auto& metas = selected_->view.metas();
    auto uid_at = [&](size_t i) { return metas[(*inputs)[i].seq - 1].uid; };
    if ((a.return_min || a.return_max) && !a.return_all && !a.return_count && !order.empty()) {
      if (a.return_min) saved_uids_.push_back(uid_at(order.front()));
      if (a.return_max && (!a.return_min || order.size() > 1)) {
        saved_uids_.push_back(uid_at(order.back()));
      }
    } else {
      for (size_t i : order) saved_uids_.push_back(uid_at(i));
    }
    std::sort(saved_uids_.begin(), saved_uids_.end());
  }
  bool save_only = a.return_save && !a.return_min && !a.return_max && !a.return_all &&
                   !a.return_count && !a.partial;
  // RFC 7162 section 3.1.5: a MODSEQ criterion enables CONDSTORE, and the
  // result carries the highest mod-sequence of the messages returned.
  bool modseq_key = HasModSeqKey(a.key);
  if (modseq_key) EnableCondstore();
  if (save_only) {
    // RFC 5182 section 2.1: SAVE alone gives no ESEARCH response.
  } else if (a.esearch) {
    // RFC 5267 section 3.2: ESEARCH with the numbers in sort order; MIN and
    // MAX are the first and last in that order.
    std::string line = "* ESEARCH (TAG ";
    AppendString(line, c.tag);
    line += ')';
    if (c.uid) line += " UID";
    bool none = !a.return_min && !a.return_max && !a.return_count && !a.return_all &&
                !a.return_save && !a.partial;
    std::vector<uint32_t> sorted;
    sorted.reserve(order.size());
    for (size_t i : order) sorted.push_back((*inputs)[i].number);
    if (!order.empty()) {
      if (a.return_min) line += " MIN " + std::to_string(sorted.front());
      if (a.return_max) line += " MAX " + std::to_string(sorted.back());
    }
    if (a.return_count) line += " COUNT " + std::to_string(order.size());
    // A sequence-set in sort order: ascending runs become ranges.
    if ((a.return_all || none) && !order.empty()) line += " ALL " + SequenceInOrder(sorted);
    // RFC 5267 section 4.4 (CONTEXT=SORT): positions in sort order.
    if (a.partial) line += FormatPartial(*a.partial, sorted);
    if (modseq_key && !order.empty()) line += " MODSEQ " + std::to_string(found->modseq);
    Reply(line);
  } else {
    std::string line = "* SORT";
    for (size_t i : order) line += ' ' + std::to_string((*inputs)[i].number);
    // RFC 7162 section 7 (sort-data): "(MODSEQ n)" after the numbers.
    if (modseq_key && !order.empty()) line += " (MODSEQ " + std::to_string(found->modseq) + ")";
    Reply(line);
  }
  co_await SendUpdates(/*expunge_ok=*/c.uid);
  Tagged(c, "OK", std::string(c.uid ? "UID " : "") + "SORT completed");
  co_return true;
}

awaitable<bool> Session::HandleThread(const Command& c) {
  const auto& a = c.As<SearchArgs>();
  bool ok = true;
  auto found = co_await RunSearch(c, ok);
  if (!found) co_return ok;
  bool references = a.thread == ThreadAlgorithm::kReferences;
  auto inputs = co_await LoadSortInputs(found->seqs, c.uid, references);
  if (!inputs) {
    Tagged(c, "NO", "[UNAVAILABLE] try again later");
    co_return true;
  }
  // The threading itself is on the pool too: its cost grows with the mailbox.
  auto thread = [inputs = std::move(*inputs), references]() -> std::optional<std::string> {
    return references ? ThreadReferences(inputs) : ThreadOrderedSubject(inputs);
  };
  auto text = co_await io::Offload(*svc_.blocking, std::move(thread));
  std::string line = "* THREAD";
  if (text && !text->empty()) line += " " + *text;
  Reply(line);
  co_await SendUpdates(/*expunge_ok=*/c.uid);
  Tagged(c, "OK", std::string(c.uid ? "UID " : "") + "THREAD completed");
  co_return true;
}

}  // namespace hato::imap
