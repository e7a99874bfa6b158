// URLAUTH (RFC 4467): the mailbox access keys, URLAUTH-authorized URLs
// ("imap://user@host/box/;UID=n;URLAUTH=access:INTERNAL:token") and reading
// what such a URL names on behalf of someone else. IMAP GENURLAUTH, RESETKEY
// and URLFETCH (urlauth.cc's session handlers) and submission's BURL (RFC
// 4468, src/smtp/server.cc) use these, so a BURL naming this server is read
// straight from the store (url_fetch.h), with no IMAP round trip.
//
// Keys. Each mailbox has one random 256-bit access key per account, made on
// the first GENURLAUTH and replaced by RESETKEY (section 6.1), kept in one
// per-account store document (kind "imap-urlauth", Store::GetJmapDocument /
// PutJmapDocument, as METADATA keeps its entries): a JSON object from the
// mailbox id (never reused, so a deleted mailbox's URLs stay dead) to the
// key in hex. Writes in this process are serialized; two nodes writing one
// account's document at once keep the last write (a key lost that way only
// makes URLs generated at that moment fail, as after a RESETKEY).
//
// The INTERNAL mechanism (section 7): the token is HMAC-SHA-256 over the
// rump URL (up to and including the access identifier) with the mailbox's
// access key, in 64 lower-case hex digits.
//
// Blocking: every function here reads or writes the store; call them on the
// blocking pool.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "imap/proto/url.h"
#include "store/store.h"

namespace hato::imap {

// Who presents a URLAUTH URL (RFC 4467 section 3, the access identifiers).
struct UrlAuthRequester {
  std::string user;     // the authenticated account's address ("" = none)
  bool submit = false;  // the submission server acting for `user` (BURL)
};

// GENURLAUTH for one rump URL: the full URL (rump + ":internal:" + token).
// kInvalid for a URL that is not an absolute rump URL of this server with a
// user and an access identifier (BAD); kNotFound when the user is not
// `account_address`, or the mailbox or its UIDVALIDITY does not match (NO).
Result<std::string> GenerateUrlAuth(store::Store& store, int64_t account_id,
                                    const std::string& account_address,
                                    const std::vector<std::string>& servers,
                                    std::string_view rump_url);

// RESETKEY (section 6.1): new keys for one mailbox (UTF-8 canonical name)
// or, with none, for every mailbox of the account. kNotFound: no such mailbox.
Status ResetUrlAuthKeys(store::Store& store, int64_t account_id,
                        const std::optional<std::string>& mailbox);

// URLFETCH / BURL: the bytes a URLAUTH-authorized URL names, when `who` may
// read it (the access identifier, not expired at `now`, the token verified
// with the owner's current key). kNotFound (NIL, 554) for anything that does
// not verify or names nothing; other kinds are store failures.
Result<std::string> FetchAuthorizedUrl(store::Store& store, std::string_view url_text,
                                       const UrlAuthRequester& who,
                                       const std::vector<std::string>& servers, std::time_t now);

// RFC 3339 date-time (";EXPIRE=", RFC 4467 section 3) to Unix time.
std::optional<std::time_t> ParseRfc3339(std::string_view text);

}  // namespace hato::imap
