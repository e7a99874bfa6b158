// libFuzzer target for IMAP URLs (imap/proto/url.h, RFC 5092; the URL parts
// of APPEND CATENATE, RFC 4469).
//
// Invariants:
//   * ParseImapUrl never crashes; its errors are kInvalid;
//   * an accepted URL names a message: a UID >= 1, a mailbox exactly when the
//     form has one, a lower-case host only for imap:// URLs;
//   * decoded fields (user, mailbox, section) are valid UTF-8 without NUL;
//   * with URLAUTH, the rump URL is a prefix of the input that ends with
//     ";URLAUTH=" + access, and the token has at least 32 characters;
//   * the same input with its keywords in another case parses the same.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "fuzz_util.h"
#include "imap/proto/url.h"

namespace {

void CheckText(const std::string& s) {
  FUZZ_CHECK(hato::IsValidUtf8(s));
  FUZZ_CHECK(s.find('\0') == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hato::imap;  // NOLINT: a fuzz driver
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto url = ParseImapUrl(in);
  if (!url) {
    FUZZ_CHECK(url.error().kind == hato::ErrorKind::kInvalid);
    return 0;
  }
  FUZZ_CHECK(in.size() <= kMaxImapUrlBytes);
  FUZZ_CHECK(url->uid >= 1);
  bool absolute = url->form == ImapUrl::Form::kAbsolute;
  FUZZ_CHECK(url->mailbox.empty() == (url->form == ImapUrl::Form::kRelative));
  FUZZ_CHECK(absolute || (url->host.empty() && url->user.empty()));
  FUZZ_CHECK(hato::AsciiLower(url->host) == url->host);
  CheckText(url->user);
  CheckText(url->mailbox);
  CheckText(url->section);
  if (!url->access.empty()) {
    FUZZ_CHECK(url->rump_end <= in.size());
    std::string_view rump = in.substr(0, url->rump_end);
    FUZZ_CHECK(
        hato::EqualsIgnoreCase(rump.substr(rump.size() - url->access.size() - 9, 9), ";URLAUTH="));
    FUZZ_CHECK(rump.substr(rump.size() - url->access.size()) == url->access);
    FUZZ_CHECK(url->token.empty() || url->token.size() >= 32);
  }
  // The parameter names are case-insensitive: ";uid=" reads as ";UID=".
  std::string lower(in);
  for (const char* k : {";UID=", ";SECTION=", ";PARTIAL=", ";UIDVALIDITY="}) {
    std::string_view kw(k);
    for (size_t p = lower.find(kw); p != std::string::npos; p = lower.find(kw, p + 1)) {
      for (size_t i = p; i < p + kw.size(); ++i) {
        lower[i] = static_cast<char>(hato::AsciiLower(std::string(1, lower[i]))[0]);
      }
    }
  }
  auto again = ParseImapUrl(lower);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->uid == url->uid && again->mailbox == url->mailbox &&
             again->section == url->section && again->uidvalidity == url->uidvalidity);
  return 0;
}
