// The DKIM signing keys of the local domains: the files
// <data>/dkim/DOMAIN.SELECTOR.key written by `hato dkim generate` (PEM,
// mode 0600; SELECTOR is one DNS label). Loaded once at start-up or reload;
// immutable afterwards, so it may be shared by threads.
//
// Outbound signing (RFC 6376 section 5): a message is signed with the key of
// its From domain when there is one (DMARC alignment, RFC 7489 section 3.1);
// a domain with several selectors uses the greatest name, so dated selectors
// ("2026a", "2026b") rotate by adding a key and publishing its record first.
//
// A domain may hold an RSA and an Ed25519 key side by side: mailing-list
// copies signed one by one (one-click unsubscribe) can then be signed with
// Ed25519 (RFC 8463), alone or beside RSA (KeyChoice, [lists] copy_dkim).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/fs.h"
#include "msgauth/dkim.h"

namespace hato::msgauth {

struct DomainKey {
  std::string domain;
  std::string selector;
  SigningKey key;
};

// Which of a domain's keys sign a message (SignaturesAs).
enum class KeyChoice {
  kDomainKey,      // "key": the domain's key of the greatest selector (For)
  kEd25519,        // "ed25519": its Ed25519 key (RFC 8463); the domain's key when it has none
  kRsaAndEd25519,  // "rsa+ed25519": one signature by each (RFC 8463 section 6), those it has
};
// "key", "ed25519", "rsa+ed25519"; nullopt for anything else.
std::optional<KeyChoice> ParseKeyChoice(std::string_view name);

class KeyRing {
 public:
  // Reads every *.key of `dir`. A missing directory is an empty key ring; an
  // unreadable or invalid key file is an error naming the file.
  static Result<KeyRing> Load(io::FileSystem& fs, const std::string& dir);

  // The key for `domain` (case-insensitive), or nullptr.
  const DomainKey* For(std::string_view domain) const;
  // The key of `type` for `domain` with the greatest selector, or nullptr.
  const DomainKey* For(std::string_view domain, KeyType type) const;
  size_t size() const { return keys_.size(); }

  // The DKIM-Signature field for `message` by its From domain's key, or an
  // empty string when that domain has no key (the message goes unsigned).
  Result<std::string> SignatureFor(std::string_view message, int64_t now) const;
  // The same, signed as `domain` (a mailing list signs its posts with the
  // list domain's key, whatever the From); "" when that domain has no key.
  Result<std::string> SignatureAs(std::string_view domain, std::string_view message,
                                  int64_t now) const;
  // The DKIM-Signature field(s) signed as `domain` by the keys `choice`
  // names (one field per key, Ed25519 first); "" when the domain has no key.
  Result<std::string> SignaturesAs(std::string_view domain, std::string_view message, int64_t now,
                                   KeyChoice choice) const;
  // The DKIM-Signature by `domain`'s key, and only when the message's From
  // domain is `domain` (submission passes the From domain it checked the
  // account owns, issue 11): "" otherwise, so no other domain's key is used.
  Result<std::string> SignatureIfFrom(std::string_view domain, std::string_view message,
                                      int64_t now) const;

 private:
  std::map<std::string, DomainKey> keys_;  // by lower-case domain: the greatest selector
  // The greatest selector of each key type, by lower-case domain.
  std::map<std::string, DomainKey> rsa_keys_;
  std::map<std::string, DomainKey> ed25519_keys_;
};

}  // namespace hato::msgauth
