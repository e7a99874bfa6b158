#include "server/message_hygiene.h"

#include <algorithm>

#include "base/strings.h"
#include "mime/header.h"
#include "mime/message.h"
#include "msgauth/auth_results.h"

namespace hato::server {

std::string RemoveForgedAuthResults(std::string_view message, std::string_view authserv_id) {
  return msgauth::RemoveOwnResults(message, authserv_id);
}

Authors AuthorAddresses(std::string_view message) {
  Authors out;
  auto scan = mime::internal::ScanHeader(message);
  for (const auto& f : scan.fields) {
    bool from = EqualsIgnoreCase(f.name, "From");
    if (!from && !EqualsIgnoreCase(f.name, "Sender")) continue;
    for (const auto& a : mime::ParseAddressList(mime::internal::Unfold(f.value))) {
      if (!a.host) continue;  // a group's start or end marker (RFC 5322 section 3.4)
      if (a.host->empty() || !a.mailbox || a.mailbox->empty()) {
        out.unusable = "an address without a domain in " + std::string(f.name) + ":";
        return out;
      }
      std::string addr = *a.mailbox + "@" + *a.host;
      if (from && out.from_domain.empty()) out.from_domain = AsciiLower(*a.host);
      if (std::find(out.addresses.begin(), out.addresses.end(), addr) != out.addresses.end()) {
        continue;
      }
      if (out.addresses.size() == kMaxAuthorAddresses) {
        out.unusable = "more than " + std::to_string(kMaxAuthorAddresses) + " author addresses";
        return out;
      }
      out.addresses.push_back(std::move(addr));
    }
  }
  return out;
}

Result<std::optional<std::string>> FirstUnownedAuthor(store::Store& store, int64_t account_id,
                                                      std::string_view account_address,
                                                      const Authors& authors) {
  for (const std::string& addr : authors.addresses) {
    if (EqualsIgnoreCase(addr, account_address)) continue;
    auto owner = store.ResolveRecipient(addr);
    if (!owner) {
      if (owner.error().kind != ErrorKind::kNotFound) return owner.error();
      return std::optional<std::string>(addr);
    }
    if (owner->id != account_id) return std::optional<std::string>(addr);
  }
  return std::optional<std::string>();
}

}  // namespace hato::server
