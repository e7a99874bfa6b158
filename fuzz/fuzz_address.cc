// libFuzzer target for SMTP mailboxes and paths (src/smtp/address.h).
//
// For allow_utf8 false and true:
//   * a parsed Mailbox respects the RFC 5321 section 4.5.3.1 limits, its domain is
//     lower-cased, it is ASCII unless UTF-8 was allowed and valid UTF-8 when it was;
//   * Mailbox::ToString() re-parses to an equal Mailbox;
//   * accepting without UTF-8 implies accepting, identically, with UTF-8;
//   * ParsePath("<" + s + ">") agrees with ParseMailbox(s) (no source route);
//     a parsed path's mailbox, re-wrapped in <>, re-parses equal; "<>" is the only
//     null path;
//   * AccountKey is a valid mailbox, idempotent (the key of the key is the key),
//     and ignores the case of an unquoted local part.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "fuzz_util.h"
#include "smtp/address.h"

namespace {

using hato::fuzz::HasAsciiUpper;
using hato::fuzz::IsAscii;
using hato::smtp::AccountKey;
using hato::smtp::Mailbox;
using hato::smtp::ParseMailbox;
using hato::smtp::ParsePath;

void CheckMailbox(const Mailbox& m, bool utf8) {
  FUZZ_CHECK(!m.local.empty() && m.local.size() <= hato::smtp::kMaxLocalPartLength);
  FUZZ_CHECK(!m.domain.empty() && m.domain.size() <= hato::smtp::kMaxDomainLength);
  FUZZ_CHECK(!HasAsciiUpper(m.domain));
  std::string text = m.ToString();
  if (!utf8) FUZZ_CHECK(IsAscii(text));
  FUZZ_CHECK(hato::IsValidUtf8(text));

  auto again = ParseMailbox(text, utf8);
  if (!again.ok()) {
    hato::fuzz::Fail(__FILE__, __LINE__, "ToString() does not re-parse", text,
                     again.error().message);
  }
  FUZZ_CHECK(*again == m);

  // AccountKey: a valid mailbox, idempotent, case-insensitive for unquoted local parts.
  std::string key = AccountKey(m);
  auto km = ParseMailbox(key, utf8);
  if (!km.ok()) hato::fuzz::Fail(__FILE__, __LINE__, "AccountKey does not parse", key, "");
  FUZZ_CHECK_EQ_STR(AccountKey(*km), key);
  FUZZ_CHECK_EQ_STR(key, km->ToString());
  if (m.local.front() != '"') {
    FUZZ_CHECK_EQ_STR(AccountKey(Mailbox{hato::AsciiUpper(m.local), m.domain}), key);
  } else {
    FUZZ_CHECK_EQ_STR(km->local, m.local);  // quoted local parts are case-sensitive
  }
}

void CheckOne(std::string_view s, bool utf8) {
  auto m = ParseMailbox(s, utf8);
  if (m.ok()) {
    CheckMailbox(*m, utf8);
    if (!utf8) {
      auto u = ParseMailbox(s, true);
      FUZZ_CHECK(u.ok() && *u == *m);
    }
  }

  // A path around a mailbox without a source route means the same mailbox.
  if (!s.empty() && s.front() != '@' && s.size() <= hato::smtp::kMaxPathLength) {
    auto p = ParsePath("<" + std::string(s) + ">", false, utf8);
    FUZZ_CHECK(p.ok() == m.ok());
    if (p.ok()) FUZZ_CHECK(p->has_value() && **p == *m);
  }

  for (bool allow_null : {false, true}) {
    auto p = ParsePath(s, allow_null, utf8);
    if (!p.ok()) continue;
    if (!p->has_value()) {
      FUZZ_CHECK(allow_null && s == "<>");
      continue;
    }
    const Mailbox& pm = **p;
    CheckMailbox(pm, utf8);
    auto again = ParsePath("<" + pm.ToString() + ">", allow_null, utf8);
    FUZZ_CHECK(again.ok() && again->has_value() && **again == pm);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  CheckOne(s, false);
  CheckOne(s, true);
  return 0;
}
