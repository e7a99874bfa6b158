// What every path that stores or sends a message a user handed us
// (submission; JMAP Email/import and EmailSubmission; list redistribution)
// does to it first, so that the rules are the same everywhere (issue 11).
//
//  - RemoveForgedAuthResults: Authentication-Results fields that name our
//    host (our authserv-id, the configured hostname) are removed (RFC 8601
//    section 5): only our own MX may claim our results, and a forged one would
//    make a local reader trust a spoofed sender.
//  - AuthorAddresses / FirstUnownedAuthor: the From: and Sender: addresses
//    must belong to the submitting account (its address or an alias), RFC
//    6409 section 8.1; the caller refuses the message (SMTP 550 5.7.1)
//    otherwise, and signs with DKIM only as the checked From domain.
//
// SECURITY: AuthorAddresses is pure and bounded (kMaxAuthorAddresses); the
// store lookups of FirstUnownedAuthor block: call it off the event loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/store.h"

namespace hato::server {

// The message without Authentication-Results fields whose authserv-id is
// `authserv_id` (the configured hostname), unchanged when there are none.
std::string RemoveForgedAuthResults(std::string_view message, std::string_view authserv_id);

// A message naming more distinct author addresses than this is refused.
inline constexpr size_t kMaxAuthorAddresses = 20;

struct Authors {
  // Every address of every From: and Sender: field, "local@domain" as
  // written (duplicates removed, order kept).
  std::vector<std::string> addresses;
  // The domain (lower-cased) of the first From: address: the only domain
  // whose DKIM key may sign the message. "" when there is no From: address.
  std::string from_domain;
  // Set when a field holds something that cannot be an owned address (an
  // address without a domain or local part, too many addresses): the text
  // for the reply.
  std::optional<std::string> unusable;
};
Authors AuthorAddresses(std::string_view message);

// The first author address (From:/Sender:) that is neither `account_address`
// nor an alias of `account_id`; nullopt when the account owns them all.
// kTemporary (or another store error) when a lookup failed.
Result<std::optional<std::string>> FirstUnownedAuthor(store::Store& store, int64_t account_id,
                                                      std::string_view account_address,
                                                      const Authors& authors);

}  // namespace hato::server
