// Password hashing and verification.
// New hashes are Argon2id (libsodium, "$argon2id$..." PHC strings). Existing
// crypt(3)-style hashes ("$6$", "$5$", "$2b$", "$y$", ... from an imported
// /etc/shadow or another server) are verified with libxcrypt.
// Thread-safe. Verification is deliberately slow: call it off the event loop.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace hato::auth {

// Argon2id cost, following OWASP's minimum (19 MiB, 2 passes).
inline constexpr unsigned long long kArgonOpsLimit = 2;
inline constexpr size_t kArgonMemLimit = 19u << 20;

Result<std::string> HashPassword(std::string_view password);
bool VerifyPassword(std::string_view hash, std::string_view password);

}  // namespace hato::auth
