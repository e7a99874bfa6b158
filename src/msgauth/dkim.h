// DKIM signing and verification (RFC 6376) with rsa-sha256 and
// ed25519-sha256 (RFC 8463), on OpenSSL. The key record comes through the
// DnsLookup seam (dns.h); the text formats are in dkim_record.h.
//
// Thread-safety: SigningKey is immutable after loading and may be shared by
// threads. Sign and Verify are reentrant.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "msgauth/dkim_record.h"
#include "msgauth/dns.h"

namespace hato::msgauth {

// Named limits of the verifier.
inline constexpr size_t kMaxVerifiedSignatures = 5;  // more DKIM-Signature fields are ignored
inline constexpr int kMinRsaBits = 1024;             // RFC 8301 section 3.2

class SigningKey {
 public:
  // A PEM private key (PKCS#8 or traditional RSA), RSA of at least
  // kMinRsaBits or Ed25519.
  static Result<SigningKey> FromPem(std::string_view pem);
  // A new key: RSA of `rsa_bits`, or Ed25519.
  static Result<SigningKey> Generate(KeyType type, int rsa_bits = 2048);

  KeyType type() const { return type_; }
  SigAlgorithm algorithm() const {
    return type_ == KeyType::kRsa ? SigAlgorithm::kRsaSha256 : SigAlgorithm::kEd25519Sha256;
  }
  // PKCS#8 PEM of the private key.
  Result<std::string> PrivatePem() const;
  // The key record to publish at SELECTOR._domainkey.DOMAIN (RFC 6376
  // section 3.6.1): "v=DKIM1; k=rsa; p=..." (p= is the DER
  // SubjectPublicKeyInfo for RSA, the raw 32-byte key for Ed25519).
  Result<std::string> DnsRecord() const;

  struct Impl;  // the OpenSSL key (dkim.cc)
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<Impl> impl_;
  KeyType type_ = KeyType::kRsa;
};

struct SignOptions {
  std::string domain;    // d=
  std::string selector;  // s=
  Canon header_canon = Canon::kRelaxed;
  Canon body_canon = Canon::kRelaxed;
  // Header fields to sign (h=). Empty: the default list (DefaultSignedHeaders),
  // each name as many times as it occurs, and the ones in
  // kOversignedHeaders once more, so that adding such a field later breaks
  // the signature (RFC 6376 section 8.15).
  std::vector<std::string> headers;
  int64_t timestamp = 0;     // t=, omitted when 0
  int64_t expire_after = 0;  // x = t + expire_after, omitted when 0
  std::string identity;      // i=, omitted when empty
  bool body_length = false;  // add l= (not recommended: section 8.2)
};

const std::vector<std::string>& DefaultSignedHeaders();

// Signs `message` (CRLF line ends, header and body). Returns the complete
// "DKIM-Signature: ...\r\n" field to prepend to the message.
Result<std::string> Sign(const SigningKey& key, const SignOptions& opts, std::string_view message);

// RFC 8601 section 2.7.1 result values for dkim.
enum class DkimStatus { kPass, kFail, kNeutral, kPolicy, kTempError, kPermError };
std::string_view DkimStatusName(DkimStatus s);

// What to do with l= (RFC 6376 section 8.2: content appended after the
// signed length is not covered by the signature).
enum class LengthPolicy {
  kAllowAppended,    // verify only the first l= octets; appended content is accepted
  kRejectAppended,   // default: a body longer than l= gives "policy"
  kRejectAnyLength,  // any signature with l= gives "policy"
};

struct VerifyOptions {
  int64_t now = 0;  // seconds since the epoch, for x= (section 3.5)
  LengthPolicy length_policy = LengthPolicy::kRejectAppended;
  size_t max_signatures = kMaxVerifiedSignatures;
};

struct DkimResult {
  DkimStatus status = DkimStatus::kPermError;
  std::string domain;     // d= (empty when the field did not parse)
  std::string selector;   // s=
  std::string identity;   // i= (default @d)
  std::string algorithm;  // a=
  std::string b_prefix;   // first characters of b= (header.b, RFC 6008)
  std::string reason;     // a short explanation for the A-R comment
  bool testing = false;   // the key record has t=y
};

// Verifies every DKIM-Signature field of `message` (top first, at most
// opts.max_signatures). An empty result means the message is unsigned
// (dkim=none).
std::vector<DkimResult> Verify(std::string_view message, DnsLookup& dns, const VerifyOptions& opts);

}  // namespace hato::msgauth
