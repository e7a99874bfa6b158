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
    auto it = ring.keys_.find(dk.domain);
    if (it == ring.keys_.end() || it->second.selector < dk.selector) {
      ring.keys_.insert_or_assign(dk.domain, std::move(dk));
    }
  }
  return ring;
}

const DomainKey* KeyRing::For(std::string_view domain) const {
  auto it = keys_.find(AsciiLower(domain));
  return it == keys_.end() ? nullptr : &it->second;
}

Result<std::string> KeyRing::SignatureFor(std::string_view message, int64_t now) const {
  auto from = FromDomain(message);
  if (!from) return std::string();
  return SignatureAs(*from, message, now);
}

Result<std::string> KeyRing::SignatureAs(std::string_view domain, std::string_view message,
                                         int64_t now) const {
  const DomainKey* dk = For(domain);
  if (dk == nullptr) return std::string();
  SignOptions so;
  so.domain = dk->domain;
  so.selector = dk->selector;
  so.timestamp = now;
  return Sign(dk->key, so, message);
}

Result<std::string> KeyRing::SignatureIfFrom(std::string_view domain, std::string_view message,
                                             int64_t now) const {
  auto from = FromDomain(message);
  if (!from || !EqualsIgnoreCase(*from, domain)) return std::string();
  return SignatureFor(message, now);
}

}  // namespace hato::msgauth
