#include "auth/app_password.h"

#include "base/digest.h"
#include "base/strings.h"

namespace hato::auth {

static_assert(kAppPasswordAlphabet.size() == 32);

std::string FormatAppPassword(std::string_view random) {
  std::string out;
  for (size_t i = 0; i < kAppPasswordChars && i < random.size(); ++i) {
    if (i > 0 && i % 4 == 0) out += '-';
    out += kAppPasswordAlphabet[static_cast<unsigned char>(random[i]) % 32];
  }
  return out;
}

std::optional<std::string> NormalizeAppPassword(std::string_view typed) {
  std::string out;
  for (char c : typed) {
    if (c == '-' || c == ' ') continue;
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (kAppPasswordAlphabet.find(c) == std::string_view::npos) return std::nullopt;
    if (out.size() == kAppPasswordChars) return std::nullopt;
    out += c;
  }
  if (out.size() != kAppPasswordChars) return std::nullopt;
  return out;
}

std::string AppPasswordHash(std::string_view normalized) {
  return HexEncode(Sha256("app:" + std::string(normalized)));
}

}  // namespace hato::auth
