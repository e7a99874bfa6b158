// The flags of a filed copy (store::Filing, src/store/store.h) in storage
// form, shared by both backends. Pure; no I/O.
#include "base/strings.h"
#include "store/store.h"

namespace hato::store {

StoredFlags SplitFilingFlags(const std::vector<std::string>& names) {
  static constexpr struct {
    const char* name;
    uint32_t bit;
  } kSystem[] = {{"\\Seen", kSeen},
                 {"\\Answered", kAnswered},
                 {"\\Flagged", kFlagged},
                 {"\\Deleted", kDeleted},
                 {"\\Draft", kDraft}};
  StoredFlags out;
  std::vector<std::string> seen_keywords;
  for (const auto& n : names) {
    if (n.empty()) continue;
    if (n[0] == '\\') {
      for (const auto& s : kSystem) {
        if (EqualsIgnoreCase(n, s.name)) out.flags |= s.bit;
      }
      continue;  // \Recent and unknown system flags are not settable
    }
    // An IMAP atom (RFC 3501 flag-keyword): no specials, spaces or controls.
    bool atom = true;
    for (unsigned char c : n) {
      if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')' || c == '{' || c == '%' || c == '*' ||
          c == '"' || c == '\\' || c == ']') {
        atom = false;
      }
    }
    if (!atom) continue;
    bool dup = false;
    for (const auto& k : seen_keywords) dup = dup || EqualsIgnoreCase(k, n);
    if (dup) continue;
    seen_keywords.push_back(n);
    if (!out.keywords.empty()) out.keywords += ' ';
    out.keywords += n;
  }
  return out;
}

}  // namespace hato::store
