// Mailbox names: modified UTF-7 (RFC 3501 section 5.1.3, RFC 2152) to and from
// UTF-8, and the case-insensitive INBOX (RFC 3501 section 5.1, RFC 9051
// section 5.1). With UTF8=ACCEPT (RFC 6855) names travel as UTF-8 instead and
// these functions are not used. Pure functions.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace hato::imap {

// UTF-8 -> modified UTF-7: printable US-ASCII (0x20-0x7e) except "&" as itself,
// "&" as "&-", every other run of characters as "&" + modified BASE64 of its
// UTF-16BE + "-". kInvalid when `utf8` is not well-formed UTF-8.
Result<std::string> EncodeMailboxUtf7(std::string_view utf8);

// Modified UTF-7 -> UTF-8. Rejects (kInvalid) anything that is not the
// canonical encoding of some name: bytes outside 0x20-0x7e, an unterminated
// or empty-but-not-"&-" shift, characters outside the modified BASE64
// alphabet, non-zero padding bits, a partial UTF-16 unit, unpaired
// surrogates, printable ASCII inside a shift, and two adjacent shifts. So
// EncodeMailboxUtf7(Decode(x)) == x whenever decoding succeeds.
Result<std::string> DecodeMailboxUtf7(std::string_view mutf7);

// True for "INBOX" in any case (RFC 3501 section 5.1: INBOX is case-insensitive).
bool IsInbox(std::string_view name);

// "inbox" -> "INBOX", and with a hierarchy delimiter also "Inbox/Sub" ->
// "INBOX/Sub" (delimiter '\0' = only the exact name). Other names unchanged.
std::string NormalizeInbox(std::string_view name, char delimiter = '\0');

}  // namespace hato::imap
