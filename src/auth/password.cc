#include "auth/password.h"

#include <crypt.h>
#include <sodium.h>

#include <cstring>

namespace hato::auth {
namespace {
bool InitSodium() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}
}  // namespace

Result<std::string> HashPassword(std::string_view password) {
  if (!InitSodium()) return Err(ErrorKind::kInternal, "libsodium failed to initialise");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), kArgonOpsLimit, kArgonMemLimit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Err(ErrorKind::kTemporary, "out of memory hashing a password");
  }
  return std::string(out);
}

bool VerifyPassword(std::string_view hash, std::string_view password) {
  if (!InitSodium()) return false;
  std::string h(hash);
  if (h.rfind("$argon2", 0) == 0) {
    return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
  }
  if (h.empty() || h[0] != '$') return false;  // no DES or plaintext hashes
  std::string pw(password);
  if (pw.find('\0') != std::string::npos) return false;
  struct crypt_data data;
  std::memset(&data, 0, sizeof(data));
  const char* out = crypt_r(pw.c_str(), h.c_str(), &data);
  if (out == nullptr || out[0] == '*') return false;
  size_t n = std::strlen(out);
  return n == h.size() && sodium_memcmp(out, h.data(), n) == 0;
}

}  // namespace hato::auth
