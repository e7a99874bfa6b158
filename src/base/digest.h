// SHA-256 and HMAC-SHA-256 (OpenSSL libcrypto), as raw 32-byte strings: the
// content address of stored bodies, DKIM hashes, SCRAM keys.
#pragma once

#include <string>
#include <string_view>

namespace hato {

std::string Sha256(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);

}  // namespace hato
