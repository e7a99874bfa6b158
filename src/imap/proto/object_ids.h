// Object identifiers (RFC 8474 OBJECTID): MAILBOXID, EMAILID and THREADID,
// the same ids JMAP gives the same mailboxes, messages and threads (RFC 8621
// Mailbox/Email/Thread ids), so a client using both protocols can match them.
//
//   mailbox: "m" + the store's mailbox id (never reused: a mailbox deleted
//            and created again gets a new one);
//   email:   "e" + hex of the first 12 bytes of the body's SHA-256 (the
//            same body in several mailboxes is one Email, RFC 8621 section 4);
//   thread:  "t" + hex of 12 bytes of the SHA-256 of "<root>", the root being
//            the first id of References, else of In-Reply-To, else the
//            Message-ID; for a message with none of them, of the body.
//
// Pure. Each id is an objectid (RFC 8474 section 7: 1*255 of ALPHA / DIGIT
// / "_" / "-").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hato::imap {

std::string MailboxObjectId(int64_t mailbox_id);
// `sha256_raw`: the 32-byte digest of the body.
std::string EmailObjectId(std::string_view sha256_raw);
std::string ThreadObjectId(std::string_view content);
// RFC 8474 section 7: objectid = 1*255(ALPHA / DIGIT / "_" / "-").
bool IsObjectId(std::string_view s);

}  // namespace hato::imap
