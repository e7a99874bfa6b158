#include "auth/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <vector>

#include "base/digest.h"
#include "base/strings.h"

namespace hato::auth {
namespace {

constexpr size_t kKeyBytes = SHA256_DIGEST_LENGTH;
constexpr std::string_view kVerifierPrefix = "SCRAM-SHA-256$";

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    // The OpenSSL DRBG does not fail once seeded; never fall back to a weak source.
    std::abort();
  }
  return out;
}

// The secret behind made-up salts: SetFakeSaltSecret's, else one per process.
std::string& FakeSecret() {
  static std::string secret = RandomBytes(kKeyBytes);
  return secret;
}

// A made-up verifier for an unknown account (RFC 5802 section 9): the salt
// depends only on the canonical (lower-cased, as accounts are looked up) name
// and the secret, so "Bob" and "bob" see the same one, and with a persistent
// secret it survives restarts like a real account's (no enumeration).
ScramVerifier FakeVerifier(std::string_view user_in) {
  const std::string& secret = FakeSecret();
  std::string user = AsciiLower(user_in);
  ScramVerifier v;
  v.salt = HmacSha256(secret, "salt:" + user).substr(0, kScramSaltBytes);
  v.stored_key = HmacSha256(secret, "stored:" + user);
  v.server_key = HmacSha256(secret, "server:" + user);
  return v;
}

// printable = %x21-2B / %x2D-7E (any printable ASCII but ',').
bool IsPrintableNonce(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

std::vector<std::string_view> SplitCommas(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    if (comma == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
}

// attr-val = ALPHA "=" value (section 7); value has no ',' and no NUL.
bool IsAttr(std::string_view part, char name) {
  return part.size() >= 2 && part[0] == name && part[1] == '=';
}

bool IsExtension(std::string_view part) {
  if (part.size() < 2 || part[1] != '=') return false;
  char c = part[0];
  if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  return part.find('\0') == std::string_view::npos;
}

Error Invalid(std::string what) { return Err(ErrorKind::kInvalid, "SCRAM: " + std::move(what)); }

}  // namespace

Result<ScramVerifier> ComputeScramVerifier(std::string_view password, std::string_view salt,
                                           int iterations) {
  if (iterations < kScramMinIterations || iterations > kScramMaxIterations) {
    return Invalid("iteration count out of range");
  }
  unsigned char salted[kKeyBytes];
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(), sizeof(salted),
                        salted) != 1) {
    return Err(ErrorKind::kInternal, "SCRAM: PBKDF2 failed");
  }
  std::string salted_password(reinterpret_cast<const char*>(salted), sizeof(salted));
  OPENSSL_cleanse(salted, sizeof(salted));
  ScramVerifier v;
  v.iterations = iterations;
  v.salt = std::string(salt);
  v.stored_key = Sha256(HmacSha256(salted_password, "Client Key"));
  v.server_key = HmacSha256(salted_password, "Server Key");
  OPENSSL_cleanse(salted_password.data(), salted_password.size());
  return v;
}

Result<std::string> NewScramVerifier(std::string_view password) {
  auto v = ComputeScramVerifier(password, RandomBytes(kScramSaltBytes), kScramMinIterations);
  if (!v) return v.error();
  return FormatScramVerifier(*v);
}

std::string FormatScramVerifier(const ScramVerifier& v) {
  return std::string(kVerifierPrefix) + std::to_string(v.iterations) + ":" + Base64Encode(v.salt) +
         "$" + Base64Encode(v.stored_key) + ":" + Base64Encode(v.server_key);
}

std::optional<ScramVerifier> ParseScramVerifier(std::string_view text) {
  if (!text.starts_with(kVerifierPrefix)) return std::nullopt;
  text.remove_prefix(kVerifierPrefix.size());
  size_t dollar = text.find('$');
  if (dollar == std::string_view::npos) return std::nullopt;
  std::string_view params = text.substr(0, dollar);
  std::string_view keys = text.substr(dollar + 1);
  size_t c1 = params.find(':');
  size_t c2 = keys.find(':');
  if (c1 == std::string_view::npos || c2 == std::string_view::npos) return std::nullopt;
  auto iter = ParseUint(params.substr(0, c1));
  auto salt = Base64Decode(params.substr(c1 + 1));
  auto stored = Base64Decode(keys.substr(0, c2));
  auto server = Base64Decode(keys.substr(c2 + 1));
  if (!iter || *iter < static_cast<uint64_t>(kScramMinIterations) ||
      *iter > static_cast<uint64_t>(kScramMaxIterations) || !salt || salt->empty() || !stored ||
      stored->size() != kKeyBytes || !server || server->size() != kKeyBytes) {
    return std::nullopt;
  }
  return ScramVerifier{static_cast<int>(*iter), std::move(*salt), std::move(*stored),
                       std::move(*server)};
}

std::string RandomScramNonce() { return Base64Encode(RandomBytes(kScramNonceBytes)); }

std::optional<std::string> UnescapeSaslName(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == ',' || c == '\0') return std::nullopt;
    if (c != '=') {
      out += c;
      continue;
    }
    std::string_view esc = s.substr(i + 1, 2);
    if (esc == "2C") {
      out += ',';
    } else if (esc == "3D") {
      out += '=';
    } else {
      return std::nullopt;
    }
    i += 2;
  }
  return out;
}

std::string EscapeSaslName(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
  return out;
}

// RFC 5802 section 7:
//   client-first-message = gs2-header client-first-message-bare
//   gs2-header = gs2-cbind-flag "," [ authzid ] ","
//   client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
Result<ScramClientFirst> ParseScramClientFirst(std::string_view msg) {
  if (msg.size() > kScramMaxMessage) return Invalid("message too long");
  if (msg.find('\0') != std::string_view::npos) return Invalid("NUL in message");
  std::vector<std::string_view> parts = SplitCommas(msg);
  if (parts.size() < 4) return Invalid("malformed client-first-message");
  ScramClientFirst out;
  if (parts[0] == "n" || parts[0] == "y") {
    out.gs2_flag = parts[0][0];
  } else if (parts[0].starts_with("p=")) {
    return Invalid("channel binding is not supported");
  } else {
    return Invalid("bad GS2 channel-binding flag");
  }
  if (!parts[1].empty()) {
    if (!IsAttr(parts[1], 'a')) return Invalid("bad authzid");
    auto authzid = UnescapeSaslName(parts[1].substr(2));
    if (!authzid || authzid->empty()) return Invalid("bad authzid");
    out.authzid = std::move(*authzid);
  }
  size_t header_len = parts[0].size() + parts[1].size() + 2;
  out.gs2_header = std::string(msg.substr(0, header_len));
  out.bare = std::string(msg.substr(header_len));
  // Section 5.1: "m" is reserved; its presence is a failure.
  if (IsAttr(parts[2], 'm')) return Invalid("mandatory extension not supported");
  if (!IsAttr(parts[2], 'n')) return Invalid("expected n=username");
  auto user = UnescapeSaslName(parts[2].substr(2));
  if (!user || user->empty()) return Invalid("bad username");
  out.user = std::move(*user);
  if (!IsAttr(parts[3], 'r') || !IsPrintableNonce(parts[3].substr(2))) {
    return Invalid("expected r=nonce");
  }
  out.nonce = std::string(parts[3].substr(2));
  for (size_t i = 4; i < parts.size(); ++i) {
    if (!IsExtension(parts[i])) return Invalid("bad extension");
  }
  return out;
}

//   client-final-message-without-proof = channel-binding "," nonce ["," extensions]
//   client-final-message = client-final-message-without-proof "," proof
Result<ScramClientFinal> ParseScramClientFinal(std::string_view msg) {
  if (msg.size() > kScramMaxMessage) return Invalid("message too long");
  if (msg.find('\0') != std::string_view::npos) return Invalid("NUL in message");
  std::vector<std::string_view> parts = SplitCommas(msg);
  if (parts.size() < 3) return Invalid("malformed client-final-message");
  ScramClientFinal out;
  if (!IsAttr(parts[0], 'c')) return Invalid("expected c=channel-binding");
  out.channel_binding = std::string(parts[0].substr(2));
  if (!IsAttr(parts[1], 'r') || !IsPrintableNonce(parts[1].substr(2))) {
    return Invalid("expected r=nonce");
  }
  out.nonce = std::string(parts[1].substr(2));
  for (size_t i = 2; i + 1 < parts.size(); ++i) {
    if (!IsExtension(parts[i])) return Invalid("bad extension");
  }
  std::string_view last = parts.back();
  if (!IsAttr(last, 'p')) return Invalid("expected p=proof last");
  auto proof = Base64Decode(last.substr(2));
  if (!proof || proof->size() != kKeyBytes) return Invalid("bad proof");
  out.proof = std::move(*proof);
  out.without_proof = std::string(msg.substr(0, msg.size() - last.size() - 1));
  return out;
}

Result<ScramClientFirst> ScramServer::ReceiveClientFirst(std::string_view msg) {
  if (step_ != Step::kStart) return Invalid("unexpected client-first-message");
  auto first = ParseScramClientFirst(msg);
  if (!first) {
    step_ = Step::kDone;
    return first.error();
  }
  first_ = *first;
  step_ = Step::kGotClientFirst;
  return first;
}

void SetFakeSaltSecret(std::string_view secret) {
  if (!secret.empty()) FakeSecret() = std::string(secret);
}

std::string ScramServer::ServerFirst(const std::optional<ScramVerifier>& verifier,
                                     std::string_view nonce_suffix) {
  if (step_ != Step::kGotClientFirst) {
    step_ = Step::kDone;
    return std::string();
  }
  verifier_ = verifier;
  ScramVerifier shown = verifier ? *verifier : FakeVerifier(first_.user);
  nonce_ = first_.nonce + std::string(nonce_suffix);
  server_first_ =
      "r=" + nonce_ + ",s=" + Base64Encode(shown.salt) + ",i=" + std::to_string(shown.iterations);
  step_ = Step::kSentServerFirst;
  return server_first_;
}

Result<std::string> ScramServer::ReceiveClientFinal(std::string_view msg) {
  if (step_ != Step::kSentServerFirst) return Invalid("unexpected client-final-message");
  step_ = Step::kDone;
  auto final_msg = ParseScramClientFinal(msg);
  if (!final_msg) return final_msg.error();
  // Section 5.1: c= is the base64 of the GS2 header (no channel binding data).
  if (final_msg->channel_binding != Base64Encode(first_.gs2_header)) {
    return Invalid("channel binding does not match the GS2 header");
  }
  if (final_msg->nonce != nonce_) return Invalid("nonce does not match");
  if (!verifier_) return Err(ErrorKind::kAuth, "SCRAM: no verifier");
  // Section 3: ClientKey = ClientProof XOR ClientSignature; H(ClientKey) must
  // be StoredKey.
  std::string auth_message = first_.bare + "," + server_first_ + "," + final_msg->without_proof;
  std::string client_key = HmacSha256(verifier_->stored_key, auth_message);
  for (size_t i = 0; i < client_key.size(); ++i) client_key[i] ^= final_msg->proof[i];
  std::string stored = Sha256(client_key);
  OPENSSL_cleanse(client_key.data(), client_key.size());
  if (stored.size() != verifier_->stored_key.size() ||
      CRYPTO_memcmp(stored.data(), verifier_->stored_key.data(), stored.size()) != 0) {
    return Err(ErrorKind::kAuth, "SCRAM: invalid proof");
  }
  return "v=" + Base64Encode(HmacSha256(verifier_->server_key, auth_message));
}

}  // namespace hato::auth
