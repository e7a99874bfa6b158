#include "auth/password_policy.h"

#include <array>
#include <string>

#include "base/strings.h"

namespace hato::auth {
namespace {

// The commonest passwords of public breach corpora (lower-cased), which
// attackers try first; length alone does not rule these out.
constexpr std::array<std::string_view, 60> kCommon = {
    "password",      "password1", "password12", "password123", "passw0rd",  "p@ssw0rd",
    "12345678",      "123456789", "1234567890", "11111111",    "00000000",  "87654321",
    "qwertyuiop",    "qwerty123", "qwertyui",   "1q2w3e4r",    "1qaz2wsx",  "zaq12wsx",
    "iloveyou",      "sunshine",  "princess",   "football",    "baseball",  "superman",
    "trustno1",      "welcome1",  "welcome123", "abc12345",    "abcd1234",  "letmein1",
    "monkey123",     "dragon123", "master123",  "changeme",    "changeme1", "admin123",
    "administrator", "asdfghjkl", "asdf1234",   "zxcvbnm1",    "computer",  "internet",
    "starwars",      "whatever",  "michelle",   "jennifer",    "corvette",  "mercedes",
    "1234qwer",      "qwer1234",  "aa123456",   "a1b2c3d4",    "123qweasd", "passpass",
    "secret123",     "default1",  "letmein123", "q1w2e3r4",    "mustang1",  "shadow12",
};

}  // namespace

Status CheckPassword(std::string_view password, std::string_view address,
                     const PasswordPolicy& policy) {
  if (password.size() < policy.min_length) {
    return Err(ErrorKind::kInvalid, "the password is too short: at least " +
                                        std::to_string(policy.min_length) +
                                        " characters ([auth] min_password_length)");
  }
  if (!policy.refuse_common) return Ok();
  std::string lower = AsciiLower(password);
  for (std::string_view common : kCommon) {
    if (lower == common) {
      return Err(ErrorKind::kInvalid,
                 "the password is one of the commonest passwords; choose another "
                 "([auth] refuse_common_passwords)");
    }
  }
  // The address or its local part as the password.
  std::string addr = AsciiLower(address);
  std::string local = addr.substr(0, addr.find('@'));
  if (lower == addr || lower == local) {
    return Err(ErrorKind::kInvalid, "the password must not be the account's address");
  }
  return Ok();
}

}  // namespace hato::auth
