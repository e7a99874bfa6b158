// IMAP URLs (RFC 5092) naming a message or a part of one: the URL parts of
// APPEND CATENATE (RFC 4469 section 3) and, later, URLAUTH (RFC 4467) and
// submission BURL (RFC 4468). Pure: a string in, the parsed reference out; it
// never touches the store (imap/server/url_fetch.h resolves one). Fuzzed by
// fuzz/fuzz_imap_url.cc.
//
// Accepted forms (RFC 5092 section 11):
//   imapurl           "imap://" [user [";AUTH=" type] "@"] host [":" port] "/" imessagepart
//   iabsolute-path    "/" imessagepart                   (this server)
//   irelative-path    ";UID=" n [...]                    (the selected mailbox)
// where imessagepart = enc-mailbox [";UIDVALIDITY=" n] "/;UID=" n
// ["/;SECTION=" enc-section] ["/;PARTIAL=" offset ["." length]]
// [";EXPIRE=" date-time] [";URLAUTH=" access ":" mechanism ":" token].
// Keywords are case-insensitive; enc-* are percent-decoded (the mailbox as
// UTF-8, RFC 5092 section 3.3). Mailbox lists ("?search") and URLs that name
// only a server or a mailbox are not message references: kInvalid.
//
// SECURITY: the input is untrusted (a client's command); bounded by
// kMaxImapUrlBytes, no recursion.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace hato::imap {

// Longest URL accepted, in bytes (a mailbox name, a section and URLAUTH fit
// in far less).
inline constexpr size_t kMaxImapUrlBytes = 8192;

struct ImapUrl {
  enum class Form { kAbsolute, kAbsolutePath, kRelative };
  Form form = Form::kAbsolute;
  std::string user;     // decoded enc-user; "" when none (kAbsolute only)
  std::string auth;     // ";AUTH=" type as sent ("" when none)
  std::string host;     // lower-cased (kAbsolute only)
  uint16_t port = 0;    // 0 when none
  std::string mailbox;  // decoded UTF-8; "" for kRelative
  std::optional<uint32_t> uidvalidity;
  uint32_t uid = 0;
  std::string section;  // decoded enc-section ("" = the whole message)
  struct Partial {
    uint64_t offset = 0;
    std::optional<uint64_t> length;
  };
  std::optional<Partial> partial;
  // URLAUTH (RFC 4467 section 3): ";EXPIRE=" and ";URLAUTH=" as sent, and
  // where the rump URL (the URL up to and including the access) ends.
  std::string expire;
  std::string access;  // "" when the URL has no URLAUTH
  std::string mechanism;
  std::string token;
  size_t rump_end = 0;
};

Result<ImapUrl> ParseImapUrl(std::string_view text);

}  // namespace hato::imap
