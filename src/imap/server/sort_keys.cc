#include "imap/server/sort_keys.h"

#include "mime/header.h"

namespace hato::imap {
namespace {

std::string UpperAscii(const std::string& s) { return SortFold(s); }

// The first mailbox of an address list (group markers skipped).
const mime::Address* First(const std::vector<mime::Address>& list) {
  for (const auto& a : list) {
    if (a.host && a.mailbox) return &a;
  }
  return nullptr;
}

// RFC 5256 section 3: the addr-mailbox of the first address.
std::string Mailbox(const std::vector<mime::Address>& list) {
  const mime::Address* a = First(list);
  return a ? UpperAscii(*a->mailbox) : std::string();
}

// RFC 5957 section 3.1: the display name of the first address, decoded, or
// else its addr-spec.
std::string Display(const std::vector<mime::Address>& list) {
  const mime::Address* a = First(list);
  if (!a) return {};
  if (a->name) {
    std::string name = mime::DecodeHeader(*a->name);
    if (!name.empty()) return UpperAscii(std::move(name));
  }
  std::string spec = *a->mailbox;
  if (!a->host->empty()) spec += "@" + *a->host;
  return UpperAscii(std::move(spec));
}

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
  SortInput& k = out.keys;
  k.arrival = meta.internal_date;
  k.date = meta.internal_date;  // RFC 5256 section 2.2: when Date cannot be used
  k.size = meta.size;
  if (!tree || !tree->envelope) return out;
  const mime::Envelope& e = *tree->envelope;
  if (e.date) {
    if (auto d = ParseSentDate(*e.date)) k.date = *d;
  }
  if (e.subject) k.subject = BaseSubject(mime::DecodeHeader(*e.subject), &k.reply);
  k.from = Mailbox(e.from);
  k.to = Mailbox(e.to);
  k.cc = Mailbox(e.cc);
  k.display_from = Display(e.from);
  k.display_to = Display(e.to);
  if (e.message_id) {
    auto ids = ParseMessageIds(*e.message_id);
    if (!ids.empty()) k.message_id = ids.front();
  }
  if (with_references) {
    out.has_references = true;
    // RFC 5256 section 3 (REFERENCES, step 1): References, or else the
    // first message id of In-Reply-To.
    std::string refs = mime::HeaderFields(header, {"References"}, false);
    size_t colon = refs.find(':');
    if (colon != std::string::npos) k.references = ParseMessageIds(refs.substr(colon + 1));
    if (k.references.empty() && e.in_reply_to) {
      auto ids = ParseMessageIds(*e.in_reply_to);
      if (!ids.empty()) k.references.push_back(ids.front());
    }
  }
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
