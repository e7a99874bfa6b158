#include "imap/proto/object_ids.h"

#include "base/digest.h"
#include "base/strings.h"
#include "mime/header.h"

namespace hato::imap {
namespace {

std::string Prefixed(char prefix, std::string_view rest) {
  std::string out(1, prefix);
  out.append(rest);
  return out;
}

// The text between the first "<" and the next ">" of a field ("" if none).
std::string FirstMessageId(std::string_view value) {
  size_t lt = value.find('<');
  if (lt == std::string_view::npos) return {};
  size_t gt = value.find('>', lt);
  if (gt == std::string_view::npos || gt == lt + 1) return {};
  return std::string(value.substr(lt + 1, gt - lt - 1));
}

}  // namespace

std::string MailboxObjectId(int64_t mailbox_id) {
  return Prefixed('m', std::to_string(mailbox_id));
}

std::string EmailObjectId(std::string_view sha256_raw) {
  return Prefixed('e', HexEncode(sha256_raw.substr(0, 12)));
}

std::string ThreadObjectId(std::string_view content) {
  auto fields = mime::internal::ScanHeader(content).fields;
  std::string root;
  for (const char* name : {"References", "In-Reply-To", "Message-ID"}) {
    if (const auto* f = mime::internal::FindField(fields, name)) root = FirstMessageId(f->value);
    if (!root.empty()) break;
  }
  if (root.empty()) return Prefixed('t', HexEncode(Sha256(content).substr(0, 12)));
  // "<" + id + ">": a different input from a body hash, so no collision with the above.
  return Prefixed('t', HexEncode(Sha256("<" + root + ">").substr(0, 12)));
}

bool IsObjectId(std::string_view s) {
  if (s.empty() || s.size() > 255) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace hato::imap
