#include "outbound/tls_policy.h"

#include "base/strings.h"

namespace hato::outbound {

std::optional<TlsLevel> ParseTlsLevel(std::string_view name) {
  if (name == "none") return TlsLevel::kNone;
  if (name == "may") return TlsLevel::kMay;
  if (name == "encrypt") return TlsLevel::kEncrypt;
  if (name == "verify") return TlsLevel::kVerify;
  return std::nullopt;
}

std::string_view TlsLevelName(TlsLevel level) {
  switch (level) {
    case TlsLevel::kNone:
      return "none";
    case TlsLevel::kMay:
      return "may";
    case TlsLevel::kEncrypt:
      return "encrypt";
    case TlsLevel::kVerify:
      return "verify";
  }
  return "may";
}

TlsLevel ConfigTlsPolicy::For(std::string_view domain) const {
  std::shared_ptr<const config::Config> cfg = config_.Get();
  const auto& table = cfg->outbound.tls_policy;
  auto it = table.find(AsciiLower(domain));
  if (it != table.end()) {
    if (auto level = ParseTlsLevel(it->second)) return *level;
  }
  return cfg->outbound.starttls ? TlsLevel::kMay : TlsLevel::kNone;
}

}  // namespace hato::outbound
