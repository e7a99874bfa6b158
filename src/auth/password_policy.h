// The password policy of `hato user add|passwd` ([auth] min_password_length,
// refuse_common_passwords): long enough, and not one of the passwords that
// credential-stuffing lists try first. Pure (no I/O).
#pragma once

#include <string_view>

#include "base/result.h"

namespace hato::auth {

struct PasswordPolicy {
  size_t min_length = 8;      // in bytes of UTF-8
  bool refuse_common = true;  // the built-in list of the commonest passwords
};

// kInvalid with a message for the operator, naming the rule broken.
Status CheckPassword(std::string_view password, std::string_view address,
                     const PasswordPolicy& policy);

}  // namespace hato::auth
