#include "imap/proto/sort_record.h"

#include "mime/header.h"

namespace hato::imap {
namespace {

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
  return a ? SortFold(*a->mailbox) : std::string();
}

// RFC 5957 section 3.1: the display name of the first address, decoded, or
// else its addr-spec.
std::string Display(const std::vector<mime::Address>& list) {
  const mime::Address* a = First(list);
  if (!a) return {};
  if (a->name) {
    std::string name = mime::DecodeHeader(*a->name);
    if (!name.empty()) return SortFold(name);
  }
  std::string spec = *a->mailbox;
  if (!a->host->empty()) spec += "@" + *a->host;
  return SortFold(spec);
}

// The record: the version byte, a flags byte (1: has a Date, 2: the subject
// was a reply), the date as 8 bytes little-endian, then each string as a
// LEB128 length and its bytes: subject, from, to, cc, display_from,
// display_to, message_id, then the number of references and each of them.
void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void PutString(std::string& out, std::string_view s) {
  PutVarint(out, s.size());
  out += s;
}

struct Cursor {
  std::string_view in;
  bool ok = true;

  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in.empty()) break;
      auto b = static_cast<uint8_t>(in.front());
      in.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      // The canonical form only (no padding bytes), so that a record that
      // decodes re-encodes to the same bytes.
      if (!(b & 0x80)) {
        if ((b == 0 && shift > 0) || (shift == 63 && b > 1)) break;
        return v;
      }
    }
    ok = false;
    return 0;
  }
  std::string String() {
    uint64_t n = Varint();
    if (!ok || n > in.size()) {
      ok = false;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

}  // namespace

SortInput DeriveSortInput(const mime::Part* tree, std::string_view header, bool with_references,
                          bool* has_date) {
  SortInput k;
  if (has_date) *has_date = false;
  if (!tree || !tree->envelope) return k;
  const mime::Envelope& e = *tree->envelope;
  if (e.date) {
    if (auto d = ParseSentDate(*e.date)) {
      k.date = *d;
      if (has_date) *has_date = true;
    }
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
  return k;
}

std::string EncodeSortRecord(const SortInput& k, bool has_date) {
  std::string out;
  out += static_cast<char>(kSortRecordVersion);
  out += static_cast<char>((has_date ? 1 : 0) | (k.reply ? 2 : 0));
  auto date = static_cast<uint64_t>(has_date ? k.date : 0);
  for (int i = 0; i < 8; ++i) out += static_cast<char>((date >> (8 * i)) & 0xff);
  for (const std::string* s :
       {&k.subject, &k.from, &k.to, &k.cc, &k.display_from, &k.display_to, &k.message_id}) {
    PutString(out, *s);
  }
  PutVarint(out, k.references.size());
  for (const auto& r : k.references) PutString(out, r);
  return out;
}

std::optional<SortInput> DecodeSortRecord(std::string_view record, int64_t internal_date) {
  if (record.size() < 10 || static_cast<uint8_t>(record[0]) != kSortRecordVersion) {
    return std::nullopt;
  }
  auto flags = static_cast<uint8_t>(record[1]);
  if (flags & ~3u) return std::nullopt;
  uint64_t date = 0;
  for (int i = 0; i < 8; ++i)
    date |= static_cast<uint64_t>(static_cast<uint8_t>(record[2 + i])) << (8 * i);
  bool has_date = flags & 1;
  if (!has_date && date != 0) return std::nullopt;
  SortInput k;
  k.date = has_date ? static_cast<int64_t>(date) : internal_date;
  k.reply = flags & 2;
  Cursor c{record.substr(10)};
  for (std::string* s :
       {&k.subject, &k.from, &k.to, &k.cc, &k.display_from, &k.display_to, &k.message_id}) {
    *s = c.String();
  }
  uint64_t n = c.Varint();
  // Each reference takes one byte at least: a count past the rest is malformed.
  if (!c.ok || n > c.in.size()) return std::nullopt;
  k.references.reserve(n);
  for (uint64_t i = 0; i < n && c.ok; ++i) k.references.push_back(c.String());
  if (!c.ok || !c.in.empty()) return std::nullopt;
  return k;
}

std::string SortRecordOf(std::string_view content, std::string_view mime) {
  if (mime.empty()) return {};
  auto tree = mime::Deserialize(mime);
  if (!tree) return {};
  std::string_view header = content.substr(0, std::min(tree->header_end, content.size()));
  bool has_date = false;
  SortInput k = DeriveSortInput(&*tree, header, /*with_references=*/true, &has_date);
  std::string out = EncodeSortRecord(k, has_date);
  if (out.size() > kMaxSortRecordBytes) return {};
  return out;
}

}  // namespace hato::imap
