// The cryptography of an ACME client (RFC 8555) on OpenSSL: EC P-256 keys,
// their JWK (RFC 7517, RFC 7518 section 6.2) and thumbprint (RFC 7638),
// flattened JWS signatures with ES256 (RFC 7515, RFC 7518 section 3.4), the
// certificate signing request of a finalize (RFC 2986, RFC 8555 section
// 7.4) and the expiry of an issued certificate. Pure: no I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace hato::acme {

// base64url without padding (RFC 4648 section 5; RFC 7515 section 2).
std::string Base64Url(std::string_view bytes);

// An EC P-256 private key (the ACME account key and each certificate key).
class EcKey {
 public:
  static Result<EcKey> Generate();
  // A PEM private key ("BEGIN PRIVATE KEY" or "BEGIN EC PRIVATE KEY") that
  // must be on P-256.
  static Result<EcKey> FromPem(std::string_view pem);
  std::string ToPem() const;  // PKCS #8, unencrypted

  // {"crv":"P-256","kty":"EC","x":...,"y":...}: the members in the order
  // and form RFC 7638 section 3 hashes.
  std::string Jwk() const;
  // RFC 7638: base64url(SHA-256(Jwk())).
  std::string Thumbprint() const;
  // ES256 over `signing_input`: the 64 bytes R || S (RFC 7518 section 3.4),
  // not the DER that OpenSSL produces.
  Result<std::string> SignEs256(std::string_view signing_input) const;
  EVP_PKEY* get() const { return key_.get(); }

 private:
  struct Free {
    void operator()(EVP_PKEY* p) const;
  };
  std::shared_ptr<EVP_PKEY> key_;
};

// A flattened JWS JSON object (RFC 7515 section 7.2.2) for an ACME POST
// (RFC 8555 section 6.2): the protected header carries alg ES256, `nonce`,
// `url`, and either the account key's `jwk` (newAccount) or `kid` (the
// account URL). `payload` is the JSON text; "" is a POST-as-GET (section
// 6.3), whose payload is the empty string.
Result<std::string> SignedRequest(const EcKey& key, std::string_view kid, std::string_view nonce,
                                  std::string_view url, std::string_view payload);

// base64url decoding (RFC 4648 section 5), padding optional; nullopt for a
// character outside the alphabet.
std::optional<std::string> Base64UrlDecode(std::string_view text);

// The externalAccountBinding of a newAccount request (RFC 8555 section
// 7.3.4): a flattened JWS with the protected header {alg HS256, kid: the key
// identifier the CA gave, url: the newAccount URL}, the account key's JWK as
// payload, and HMAC-SHA-256 under the CA's MAC key (`mac_key_b64url`,
// base64url as CAs hand it out). kInvalid for a key that does not decode or
// is empty.
Result<std::string> ExternalAccountBinding(const EcKey& account, std::string_view kid,
                                           std::string_view mac_key_b64url, std::string_view url);

// The inner JWS of a key change (RFC 8555 section 7.3.5): signed by
// `new_key`, protected header {alg, jwk: new key, url} without a nonce,
// payload {"account": kid, "oldKey": old key's JWK}. It is the payload of
// the outer request, signed by the old key.
Result<std::string> KeyChangeInner(const EcKey& old_key, const EcKey& new_key, std::string_view kid,
                                   std::string_view url);

// The revocation request's payload (section 7.6): {"certificate":
// base64url(DER of the first certificate of `pem`), "reason": reason}
// (RFC 5280 5.3.1 CRLReason codes).
Result<std::string> RevocationPayload(std::string_view pem, int reason);

// The TLS-ALPN-01 challenge certificate (RFC 8737 section 3): self-signed
// for `domain` (its only dNSName), with the critical acmeIdentifier
// extension (1.3.6.1.5.5.7.1.31) holding SHA-256 of the key authorization;
// a fresh P-256 key. Returned as PEM: certificate, then key.
struct ChallengeCertificate {
  std::string cert_pem;
  std::string key_pem;
};
Result<ChallengeCertificate> TlsAlpnCertificate(std::string_view domain,
                                                std::string_view key_authorization);

// The DER of a PKCS #10 request for `domains` (the first is the subject's
// CN; all are subjectAltName dNSNames), signed by `key`.
Result<std::string> MakeCsr(const EcKey& key, const std::vector<std::string>& domains);

// The first certificate of a PEM chain: its notAfter (seconds since the
// epoch), and whether it is valid for every one of `domains`.
struct CertificateInfo {
  int64_t not_after = 0;
  bool covers_domains = false;
};
Result<CertificateInfo> InspectCertificate(std::string_view pem,
                                           const std::vector<std::string>& domains);

}  // namespace hato::acme
