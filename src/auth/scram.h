// SCRAM-SHA-256 (RFC 5802, RFC 7677): the salted verifier stored per account
// (RFC 5803 form) and the server side of the exchange as a pure state machine:
// messages in, messages out; no I/O, no store. The protocol sessions (SMTP
// AUTH, IMAP AUTHENTICATE, POP3 AUTH) carry the messages base64-encoded and
// look the account's verifier up themselves (server/login.h).
//
// STANDARDS: RFC 5802 sections 3 (algorithm), 5.1 (attributes), 7 (grammar),
//            9 (unknown users); RFC 7677 (SHA-256, 4096 iterations minimum);
//            RFC 5803 (the stored "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>").
// Not supported: channel binding (-PLUS is not offered, so a client's "p="
// GS2 flag is refused); SASLprep of names and passwords (RFC 4013) is not
// applied: ASCII passwords are unaffected, others must be sent in the form
// they were set in.
// SECURITY: the client proof is compared in constant time; an unknown account
// or one without a verifier gets a made-up salt that is stable for the
// process, so the exchange looks the same as for a real account and fails at
// the proof. Thread-safe: free functions are; a ScramServer is one exchange.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace hato::auth {

inline constexpr std::string_view kScramSha256 = "SCRAM-SHA-256";
// RFC 7677 section 4: at least 4096 iterations. New verifiers use this count.
inline constexpr int kScramMinIterations = 4096;
// A stored verifier with more iterations is refused (a client would spend
// minutes on it).
inline constexpr int kScramMaxIterations = 10'000'000;
inline constexpr size_t kScramSaltBytes = 16;
// Random bytes of our nonce part (base64-encoded on the wire).
inline constexpr size_t kScramNonceBytes = 24;
// Longest client message accepted (the protocols bound lines before this).
inline constexpr size_t kScramMaxMessage = 4096;

// The stored credential (raw bytes, not base64).
struct ScramVerifier {
  int iterations = kScramMinIterations;
  std::string salt;
  std::string stored_key;  // H(ClientKey)
  std::string server_key;  // HMAC(SaltedPassword, "Server Key")
};

// RFC 5802 section 3 from the password.
Result<ScramVerifier> ComputeScramVerifier(std::string_view password, std::string_view salt,
                                           int iterations);
// A verifier for a new password: random salt, kScramMinIterations, in RFC
// 5803 form. Slow-ish (PBKDF2): call it off the event loop.
Result<std::string> NewScramVerifier(std::string_view password);
std::string FormatScramVerifier(const ScramVerifier& v);
std::optional<ScramVerifier> ParseScramVerifier(std::string_view text);

// kScramNonceBytes random bytes, base64-encoded (no ',' can occur).
std::string RandomScramNonce();

// The parsed client-first-message (RFC 5802 section 7).
struct ScramClientFirst {
  char gs2_flag = 'n';  // 'n' or 'y'
  std::string authzid;  // "a=", unescaped; empty when absent
  std::string user;     // "n=", unescaped
  std::string nonce;    // "r="
  std::string gs2_header;
  std::string bare;  // client-first-message-bare, for the AuthMessage
};
Result<ScramClientFirst> ParseScramClientFirst(std::string_view msg);

// The parsed client-final-message.
struct ScramClientFinal {
  std::string channel_binding;  // "c=", still base64
  std::string nonce;            // "r="
  std::string proof;            // "p=", decoded
  std::string without_proof;    // client-final-message-without-proof
};
Result<ScramClientFinal> ParseScramClientFinal(std::string_view msg);

// saslname (RFC 5802 section 5.1): "=2C" is ',', "=3D" is '='; any other '='
// or a ',' is an error.
std::optional<std::string> UnescapeSaslName(std::string_view s);
std::string EscapeSaslName(std::string_view s);

// One server-side exchange:
//   ReceiveClientFirst -> (caller finds the user's verifier) -> ServerFirst
//   -> ReceiveClientFinal, which verifies the proof and returns server-final.
// Errors: kInvalid for a malformed or out-of-order message, kAuth for a bad
// proof (or an exchange run without a verifier).
// The secret from which made-up salts for unknown accounts are derived
// (`hato serve` keeps one in DATA/scram-fake-salt.key, so they are stable
// across restarts). Call once at start-up, before any exchange; without it a
// random per-process secret is used.
void SetFakeSaltSecret(std::string_view secret);

class ScramServer {
 public:
  Result<ScramClientFirst> ReceiveClientFirst(std::string_view msg);
  // `verifier`: the account's, or nullopt (unknown account, no verifier): a
  // made-up one then, and the proof will not verify. `nonce_suffix`: our part
  // of the nonce (RandomScramNonce(); tests inject one); printable, no ','.
  std::string ServerFirst(const std::optional<ScramVerifier>& verifier,
                          std::string_view nonce_suffix);
  // On success, the server-final-message "v=<ServerSignature>".
  Result<std::string> ReceiveClientFinal(std::string_view msg);

 private:
  enum class Step { kStart, kGotClientFirst, kSentServerFirst, kDone };
  Step step_ = Step::kStart;
  ScramClientFirst first_;
  std::optional<ScramVerifier> verifier_;
  std::string server_first_;
  std::string nonce_;  // client + server
};

}  // namespace hato::auth
