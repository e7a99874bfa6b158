#include "imap/server/text_search.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "imap/proto/object_ids.h"

namespace hato::imap {
namespace {

SearchKey UidKey(const std::vector<uint32_t>& uids) {
  SearchKey k;
  k.op = SearchOp::kUid;
  IdSet set = IdSet::FromIds(uids);
  for (const auto& r : set.ranges()) k.set.ranges.push_back({r.first, r.last});
  k.set.resolved = true;  // tested against every message: no Resolve each time
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

void UseEmailIdIndex(store::Store& store, int64_t account_id, int64_t mailbox_id, SearchKey& key) {
  for (auto& child : key.children) UseEmailIdIndex(store, account_id, mailbox_id, child);
  if (key.op != SearchOp::kEmailId) return;
  // "e" + 24 lower-case hex digits (EmailObjectId); anything else names no body.
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const std::string& id = key.text;
  std::string prefix;
  bool valid = id.size() == 25 && id[0] == 'e';
  for (size_t i = 1; valid && i + 1 < id.size(); i += 2) {
    int hi = nibble(id[i]), lo = nibble(id[i + 1]);
    valid = hi >= 0 && lo >= 0;
    prefix.push_back(static_cast<char>(hi * 16 + lo));
  }
  if (!valid) {
    key = UidKey({});  // matches nothing
    return;
  }
  auto rows = store.FindEmailRows(account_id, {prefix});
  if (!rows) return;  // no index here: the key is evaluated on each body
  std::vector<uint32_t> uids;
  for (const auto& r : *rows) {
    if (r.mailbox_id == mailbox_id && !r.expunged && EmailObjectId(r.sha256) == id) {
      uids.push_back(r.uid);
    }
  }
  std::sort(uids.begin(), uids.end());
  key = UidKey(uids);
}

}  // namespace hato::imap
