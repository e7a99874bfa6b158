#include "acme/jose.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "base/digest.h"
#include "base/strings.h"

namespace hato::acme {
namespace {

// P-256: coordinates and signature halves are 32 bytes (RFC 7518 section 3.4).
constexpr size_t kCoordBytes = 32;

Error Fail(const std::string& what) { return Err(ErrorKind::kInternal, "acme: " + what); }

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Bio = std::unique_ptr<BIO, BioFree>;

std::string JsonString(std::string_view s) {
  // Only for values we made (base64url, URLs from the server, nonces): quote
  // and escape what JSON needs escaped.
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

}  // namespace

std::string Base64Url(std::string_view bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  auto b = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (b(i) << 16) | (b(i + 1) << 8) | b(i + 2);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (bytes.size() - i == 1) {
    uint32_t v = b(i) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (bytes.size() - i == 2) {
    uint32_t v = (b(i) << 16) | (b(i + 1) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

void EcKey::Free::operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }

Result<EcKey> EcKey::Generate() {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (k == nullptr) return Fail("EC key generation failed");
  EcKey key;
  key.key_ = std::shared_ptr<EVP_PKEY>(k, Free());
  return key;
}

Result<EcKey> EcKey::FromPem(std::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Fail("out of memory");
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (k == nullptr) return Err(ErrorKind::kInvalid, "acme: not a PEM private key");
  EcKey key;
  key.key_ = std::shared_ptr<EVP_PKEY>(k, Free());
  char group[64] = {0};
  size_t len = 0;
  if (!EVP_PKEY_is_a(k, "EC") ||
      EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) !=
          1 ||
      std::string_view(group, len) != "prime256v1") {
    return Err(ErrorKind::kInvalid, "acme: the key is not an EC P-256 key");
  }
  return key;
}

std::string EcKey::ToPem() const {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return "";
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string EcKey::Jwk() const {
  // The uncompressed point 0x04 || X || Y (SEC 1 section 2.3.3).
  unsigned char point[1 + 2 * kCoordBytes];
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(key_.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point,
                                      &len) != 1 ||
      len != sizeof point || point[0] != 0x04) {
    return "";
  }
  std::string_view x(reinterpret_cast<const char*>(point + 1), kCoordBytes);
  std::string_view y(reinterpret_cast<const char*>(point + 1 + kCoordBytes), kCoordBytes);
  return R"({"crv":"P-256","kty":"EC","x":")" + Base64Url(x) + R"(","y":")" + Base64Url(y) +
         R"("})";
}

std::string EcKey::Thumbprint() const { return Base64Url(Sha256(Jwk())); }

Result<std::string> EcKey::SignEs256(std::string_view signing_input) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!md || EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1) {
    return Fail("cannot start a signature");
  }
  size_t der_len = 0;
  auto in = reinterpret_cast<const unsigned char*>(signing_input.data());
  if (EVP_DigestSign(md.get(), nullptr, &der_len, in, signing_input.size()) != 1) {
    return Fail("cannot sign");
  }
  std::string der(der_len, '\0');
  if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(der.data()), &der_len, in,
                     signing_input.size()) != 1) {
    return Fail("cannot sign");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)), ECDSA_SIG_free);
  if (!sig) return Fail("bad ECDSA signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string out(2 * kCoordBytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(r, o, kCoordBytes) != kCoordBytes ||
      BN_bn2binpad(s, o + kCoordBytes, kCoordBytes) != kCoordBytes) {
    return Fail("bad ECDSA signature size");
  }
  return out;
}

Result<std::string> SignedRequest(const EcKey& key, std::string_view kid, std::string_view nonce,
                                  std::string_view url, std::string_view payload) {
  std::string header = R"({"alg":"ES256",)";
  if (kid.empty()) {
    header += R"("jwk":)" + key.Jwk();
  } else {
    header += R"("kid":)" + JsonString(kid);
  }
  header += R"(,"nonce":)" + JsonString(nonce) + R"(,"url":)" + JsonString(url) + "}";
  std::string protected64 = Base64Url(header);
  std::string payload64 = Base64Url(payload);
  auto sig = key.SignEs256(protected64 + "." + payload64);
  if (!sig) return sig.error();
  return R"({"protected":")" + protected64 + R"(","payload":")" + payload64 + R"(","signature":")" +
         Base64Url(*sig) + R"("})";
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  std::string b64(text);
  for (char& c : b64) {
    if (c == '-') {
      c = '+';
    } else if (c == '_') {
      c = '/';
    } else if (c == '+' || c == '/') {
      return std::nullopt;  // not of the URL alphabet
    }
  }
  while (b64.size() % 4 != 0) b64.push_back('=');
  return Base64Decode(b64);
}

Result<std::string> ExternalAccountBinding(const EcKey& account, std::string_view kid,
                                           std::string_view mac_key_b64url, std::string_view url) {
  std::optional<std::string> mac_key = Base64UrlDecode(mac_key_b64url);
  if (!mac_key || mac_key->empty()) {
    return Err(ErrorKind::kInvalid, "acme: the EAB MAC key is not base64url");
  }
  std::string header =
      R"({"alg":"HS256","kid":)" + JsonString(kid) + R"(,"url":)" + JsonString(url) + "}";
  std::string protected64 = Base64Url(header);
  std::string payload64 = Base64Url(account.Jwk());
  std::string sig = HmacSha256(*mac_key, protected64 + "." + payload64);
  return R"({"protected":")" + protected64 + R"(","payload":")" + payload64 + R"(","signature":")" +
         Base64Url(sig) + R"("})";
}

Result<std::string> KeyChangeInner(const EcKey& old_key, const EcKey& new_key, std::string_view kid,
                                   std::string_view url) {
  std::string header =
      R"({"alg":"ES256","jwk":)" + new_key.Jwk() + R"(,"url":)" + JsonString(url) + "}";
  std::string payload = R"({"account":)" + JsonString(kid) + R"(,"oldKey":)" + old_key.Jwk() + "}";
  std::string protected64 = Base64Url(header);
  std::string payload64 = Base64Url(payload);
  auto sig = new_key.SignEs256(protected64 + "." + payload64);
  if (!sig) return sig.error();
  return R"({"protected":")" + protected64 + R"(","payload":")" + payload64 + R"(","signature":")" +
         Base64Url(*sig) + R"("})";
}

Result<std::string> RevocationPayload(std::string_view pem, int reason) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Fail("out of memory");
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) return Err(ErrorKind::kInvalid, "acme: no PEM certificate");
  unsigned char* der = nullptr;
  int n = i2d_X509(cert.get(), &der);
  if (n <= 0) return Fail("cannot encode the certificate");
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return R"({"certificate":")" + Base64Url(bytes) + R"(","reason":)" + std::to_string(reason) + "}";
}

Result<ChallengeCertificate> TlsAlpnCertificate(std::string_view domain,
                                                std::string_view key_authorization) {
  auto key = EcKey::Generate();
  if (!key) return key.error();
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  if (!cert) return Fail("out of memory");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 7 * 86400);
  X509_set_pubkey(cert.get(), key->get());
  std::string cn(domain.substr(0, 64));
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  // subjectAltName: the one identifier being validated.
  std::string san = "DNS:" + std::string(domain);
  X509_EXTENSION* alt = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
  if (!alt) return Fail("cannot make the subjectAltName");
  X509_add_ext(cert.get(), alt, -1);
  X509_EXTENSION_free(alt);
  // acmeIdentifier (RFC 8737 3): critical, extnValue = DER OCTET STRING of
  // the 32-byte SHA-256 digest of the key authorization.
  std::string digest = Sha256(key_authorization);
  std::string der = std::string("\x04\x20", 2) + digest;
  std::unique_ptr<ASN1_OBJECT, decltype(&ASN1_OBJECT_free)> oid(
      OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1), ASN1_OBJECT_free);
  std::unique_ptr<ASN1_OCTET_STRING, decltype(&ASN1_OCTET_STRING_free)> value(
      ASN1_OCTET_STRING_new(), ASN1_OCTET_STRING_free);
  if (!oid || !value ||
      ASN1_OCTET_STRING_set(value.get(), reinterpret_cast<const unsigned char*>(der.data()),
                            static_cast<int>(der.size())) != 1) {
    return Fail("cannot make the acmeIdentifier");
  }
  X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 1, value.get());
  if (!ext) return Fail("cannot make the acmeIdentifier");
  X509_add_ext(cert.get(), ext, -1);
  X509_EXTENSION_free(ext);
  if (X509_sign(cert.get(), key->get(), EVP_sha256()) <= 0) return Fail("cannot sign");
  Bio out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509(out.get(), cert.get()) != 1) return Fail("cannot write PEM");
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  return ChallengeCertificate{std::string(data, static_cast<size_t>(n)), key->ToPem()};
}

Result<std::string> MakeCsr(const EcKey& key, const std::vector<std::string>& domains) {
  if (domains.empty()) return Err(ErrorKind::kInvalid, "acme: no domain for the certificate");
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(X509_REQ_new(), X509_REQ_free);
  if (!req) return Fail("out of memory");
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  // A CN is at most 64 characters (RFC 5280 ub-common-name); longer names
  // are only in the subjectAltName.
  if (domains[0].size() <= 64) {
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(domains[0].c_str()), -1, -1,
                               0);
  }
  if (X509_REQ_set_pubkey(req.get(), key.get()) != 1) return Fail("cannot set the CSR key");
  std::string san;
  for (const std::string& d : domains) {
    if (d.empty() || d.find_first_of(",: \t\r\n") != std::string::npos) {
      return Err(ErrorKind::kInvalid, "acme: bad domain name '" + d + "'");
    }
    san += (san.empty() ? "DNS:" : ",DNS:") + d;
  }
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
  if (ext == nullptr) return Fail("cannot make the subjectAltName");
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  sk_X509_EXTENSION_push(exts, ext);
  int added = X509_REQ_add_extensions(req.get(), exts);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  if (added != 1) return Fail("cannot add the CSR extensions");
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) == 0) return Fail("cannot sign the CSR");
  int n = i2d_X509_REQ(req.get(), nullptr);
  if (n <= 0) return Fail("cannot encode the CSR");
  std::string der(static_cast<size_t>(n), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509_REQ(req.get(), &p);
  return der;
}

Result<CertificateInfo> InspectCertificate(std::string_view pem,
                                           const std::vector<std::string>& domains) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Fail("out of memory");
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) return Err(ErrorKind::kInvalid, "acme: no PEM certificate");
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) {
    return Err(ErrorKind::kInvalid, "acme: the certificate has a bad notAfter");
  }
  CertificateInfo info;
  info.not_after = static_cast<int64_t>(timegm(&tm));
  info.covers_domains = true;
  for (const std::string& d : domains) {
    if (X509_check_host(cert.get(), d.data(), d.size(), X509_CHECK_FLAG_NO_WILDCARDS, nullptr) !=
        1) {
      info.covers_domains = false;
    }
  }
  return info;
}

}  // namespace hato::acme
