#include "imap/server/text_search.h"

#include <spdlog/spdlog.h>

namespace hato::imap {
namespace {

SearchKey UidKey(const std::vector<uint32_t>& uids) {
  SearchKey k;
  k.op = SearchOp::kUid;
  IdSet set = IdSet::FromIds(uids);
  for (const auto& r : set.ranges()) k.set.ranges.push_back({r.first, r.last});
  return k;
}

}  // namespace

void UseTextIndex(store::Store& store, int64_t mailbox_id, SearchKey& key) {
  for (auto& child : key.children) UseTextIndex(store, mailbox_id, child);
  if (key.op != SearchOp::kBody && key.op != SearchOp::kText) return;
  if (key.text.empty()) return;  // matches every message: nothing to look up
  auto found = store.SearchText(mailbox_id, key.text, key.op == SearchOp::kText);
  if (!found) {
    spdlog::warn("imap: text index unavailable ({}); scanning", found.error().message);
    return;
  }
  SearchKey matched = UidKey(found->uids);  // an empty set matches nothing
  if (found->unindexed.empty()) {
    key = std::move(matched);
    return;
  }
  // OR(indexed matches, AND(unindexed messages, the original key)).
  SearchKey scan;
  scan.op = SearchOp::kAnd;
  scan.children.push_back(UidKey(found->unindexed));
  scan.children.push_back(std::move(key));
  SearchKey either;
  either.op = SearchOp::kOr;
  either.children.push_back(std::move(matched));
  either.children.push_back(std::move(scan));
  key = std::move(either);
}

}  // namespace hato::imap
