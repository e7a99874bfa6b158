#include "store/mailbox_name.h"

#include "base/strings.h"

namespace hato::store {
namespace {

constexpr char kSeparator = '/';           // store::kHierarchySeparator (store.h)
constexpr size_t kMaxFileNameBytes = 255;  // NAME_MAX

Status Invalid(std::string what) { return Err(ErrorKind::kInvalid, std::move(what)); }

}  // namespace

Status CheckNewMailboxName(std::string_view name) {
  if (name.empty()) return Invalid("empty mailbox name");
  if (name.size() > kMaxMailboxNameBytes) {
    return Invalid("mailbox name longer than " + std::to_string(kMaxMailboxNameBytes) + " bytes");
  }
  if (!IsValidUtf8(name)) return Invalid("mailbox name is not valid UTF-8");
  size_t levels = 0;
  size_t start = 0;
  while (true) {
    size_t end = name.find(kSeparator, start);
    std::string_view level = name.substr(start, end == std::string_view::npos ? end : end - start);
    if (++levels > kMaxMailboxLevels) {
      return Invalid("mailbox name has more than " + std::to_string(kMaxMailboxLevels) + " levels");
    }
    if (level.empty()) return Invalid("empty hierarchy level in mailbox name");
    if (level == "." || level == "..") return Invalid("'.' and '..' are not mailbox names");
    if (level.size() > kMaxMailboxLevelBytes) {
      return Invalid("mailbox name level longer than " + std::to_string(kMaxMailboxLevelBytes) +
                     " bytes");
    }
    for (size_t i = 0; i < level.size(); ++i) {
      auto c = static_cast<unsigned char>(level[i]);
      if (c < 0x20 || c == 0x7f) return Invalid("control character in mailbox name");
      // C1 controls U+0080..U+009F are C2 80..C2 9F in UTF-8 (valid, checked above).
      if (c == 0xc2 && i + 1 < level.size() && static_cast<unsigned char>(level[i + 1]) < 0xa0) {
        return Invalid("control character in mailbox name");
      }
      if (c == '*' || c == '%') return Invalid("wildcard character in mailbox name");
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return Ok();
}

bool SafePathComponent(std::string_view c) {
  if (c.empty() || c == "." || c == ".." || c.size() > kMaxFileNameBytes) return false;
  for (char ch : c) {
    auto u = static_cast<unsigned char>(ch);
    if (u == '/' || u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

}  // namespace hato::store
