// Reads what an IMAP URL (RFC 5092, imap/proto/url.h) names from the store:
// a message of one of the account's own mailboxes, or a section or a
// partial range of one. Used by APPEND CATENATE (RFC 4469 section 3); the one
// place URL references are resolved, so that URLAUTH's URLFETCH (RFC 4467)
// and submission's BURL (RFC 4468) can read through it without an IMAP round
// trip.
//
// Only store operations (ListMailboxHeads, ListMessagesByUid, ListVanished,
// ReadMessage): no SQL. Blocking: call it on the blocking pool
// (io::Offload), never on the event loop.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "imap/proto/url.h"
#include "store/store.h"

namespace hato::imap {

// Who asks, and the names under which this server is reached.
struct UrlContext {
  int64_t account_id = 0;
  std::string user;                  // the logged-in account's address
  std::string selected_mailbox;      // UTF-8 canonical name; "" when none
  std::vector<std::string> servers;  // host names that are this server (lower case)
};

// The host names an IMAP URL may give for this server: server.hostname,
// localhost and the loopback addresses (lower case).
std::vector<std::string> ThisServerNames(std::string_view hostname);

// Whether the URL names this server and this user (an absolute URL's host
// in ctx.servers, its user, if any, the logged-in one) and has a mailbox to
// read from (a relative URL needs a selected mailbox). kNotFound otherwise.
Status CheckUrlTarget(const ImapUrl& url, const UrlContext& ctx);

// The bytes the URL names: the whole message, BODY[section] for ;SECTION=
// (RFC 3501 section 6.4.5, without the \Seen side effect), cut to
// ;PARTIAL= (RFC 5092 section 5). kNotFound when the mailbox, the
// UIDVALIDITY, the message (expunged ones included) or the section does not
// exist; kInvalid for a section that does not parse; other kinds are the
// store's errors.
Result<std::string> FetchUrl(store::Store& store, const ImapUrl& url, const UrlContext& ctx);

}  // namespace hato::imap
