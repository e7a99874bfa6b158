#include "msgauth/keyring.h"

#include "base/strings.h"
#include "msgauth/dmarc.h"

namespace hato::msgauth {

Result<KeyRing> KeyRing::Load(io::FileSystem& fs, const std::string& dir) {
  KeyRing ring;
  if (!fs.Exists(dir)) return ring;
  auto names = fs.ListDir(dir);
  if (!names) return names.error();
  for (const auto& name : *names) {
    if (!name.ends_with(".key")) continue;  // e.g. "x.key.tmp" of an interrupted write
    std::string stem = name.substr(0, name.size() - 4);
    size_t dot = stem.rfind('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == stem.size()) {
      return Err(ErrorKind::kInvalid, "dkim: " + dir + "/" + name + " is not DOMAIN.SELECTOR.key");
    }
    auto pem = fs.ReadFile(dir + "/" + name);
    if (!pem) return pem.error();
    auto key = SigningKey::FromPem(*pem);
    if (!key) return Err(ErrorKind::kInvalid, dir + "/" + name + ": " + key.error().message);
    DomainKey dk{AsciiLower(stem.substr(0, dot)), stem.substr(dot + 1), std::move(*key)};
    auto keep_greatest = [](std::map<std::string, DomainKey>& keys, const DomainKey& k) {
      auto it = keys.find(k.domain);
      if (it == keys.end() || it->second.selector < k.selector) keys.insert_or_assign(k.domain, k);
    };
    keep_greatest(dk.key.type() == KeyType::kRsa ? ring.rsa_keys_ : ring.ed25519_keys_, dk);
    keep_greatest(ring.keys_, dk);
  }
  return ring;
}

std::optional<KeyChoice> ParseKeyChoice(std::string_view name) {
  if (name == "key") return KeyChoice::kDomainKey;
  if (name == "ed25519") return KeyChoice::kEd25519;
  if (name == "rsa+ed25519") return KeyChoice::kRsaAndEd25519;
  return std::nullopt;
}

const DomainKey* KeyRing::For(std::string_view domain) const {
  auto it = keys_.find(AsciiLower(domain));
  return it == keys_.end() ? nullptr : &it->second;
}

const DomainKey* KeyRing::For(std::string_view domain, KeyType type) const {
  const auto& keys = type == KeyType::kRsa ? rsa_keys_ : ed25519_keys_;
  auto it = keys.find(AsciiLower(domain));
  return it == keys.end() ? nullptr : &it->second;
}

namespace {

Result<std::string> SignWithKey(const DomainKey& dk, std::string_view message, int64_t now) {
  SignOptions so;
  so.domain = dk.domain;
  so.selector = dk.selector;
  so.timestamp = now;
  return Sign(dk.key, so, message);
}

}  // namespace

Result<std::string> KeyRing::SignatureFor(std::string_view message, int64_t now) const {
  auto from = FromDomain(message);
  if (!from) return std::string();
  return SignatureAs(*from, message, now);
}

Result<std::string> KeyRing::SignatureAs(std::string_view domain, std::string_view message,
                                         int64_t now) const {
  const DomainKey* dk = For(domain);
  if (dk == nullptr) return std::string();
  return SignWithKey(*dk, message, now);
}

Result<std::string> KeyRing::SignaturesAs(std::string_view domain, std::string_view message,
                                          int64_t now, KeyChoice choice) const {
  const DomainKey* ed = For(domain, KeyType::kEd25519);
  const DomainKey* rsa = For(domain, KeyType::kRsa);
  if (choice == KeyChoice::kDomainKey || ed == nullptr) return SignatureAs(domain, message, now);
  // Ed25519 on top; a verifier that does not know ed25519-sha256 ignores that
  // signature and judges the RSA one (RFC 8463 section 6, RFC 6376 section 6.1.1).
  auto fields = SignWithKey(*ed, message, now);
  if (!fields || choice == KeyChoice::kEd25519 || rsa == nullptr) return fields;
  auto rsa_field = SignWithKey(*rsa, message, now);
  if (!rsa_field) return rsa_field.error();
  return *fields + *rsa_field;
}

Result<std::string> KeyRing::SignatureIfFrom(std::string_view domain, std::string_view message,
                                             int64_t now) const {
  auto from = FromDomain(message);
  if (!from || !EqualsIgnoreCase(*from, domain)) return std::string();
  return SignatureFor(message, now);
}

}  // namespace hato::msgauth
