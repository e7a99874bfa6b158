#include "app/tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cctype>
#include <cstdio>
#include <mutex>

#include "acme/client.h"
#include "io/net.h"

namespace hato::app {
namespace {

struct Closer {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(FILE* f) const { std::fclose(f); }
};
template <typename T>
using Owned = std::unique_ptr<T, Closer>;

Status Fail(const std::string& what) { return Err(ErrorKind::kInternal, "tls: " + what); }

}  // namespace

Status GenerateSelfSigned(const std::string& cert_path, const std::string& key_path,
                          const std::string& hostname) {
  Owned<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return Fail("key generation failed");
  Owned<X509> cert(X509_new());
  if (!cert) return Fail("out of memory");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), static_cast<long>(time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 2L * 365 * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(hostname.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string san = "DNS:" + hostname;
  Owned<X509_EXTENSION> ext(
      X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str()));
  if (ext) X509_add_ext(cert.get(), ext.get(), -1);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return Fail("signing failed");

  {
    mode_t old = umask(077);
    Owned<FILE> kf(std::fopen(key_path.c_str(), "w"));
    umask(old);
    if (!kf) return Fail("cannot write " + key_path);
    if (!PEM_write_PrivateKey(kf.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr)) {
      return Fail("cannot write " + key_path);
    }
  }
  Owned<FILE> cf(std::fopen(cert_path.c_str(), "w"));
  if (!cf || !PEM_write_X509(cf.get(), cert.get())) return Fail("cannot write " + cert_path);
  return Ok();
}

// Mozilla "intermediate" (v5.7) TLS 1.2 suites: ECDHE/DHE key exchange, AES-GCM or
// ChaCha20-Poly1305; every CBC suite is left out (issue 11).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

Result<std::shared_ptr<asio::ssl::context>> LoadTlsContext(const std::string& cert_path,
                                                           const std::string& key_path) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  boost::system::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1,
                   ec);
  // TLS 1.2: forward-secret AEAD suites only (Mozilla's "intermediate"
  // profile, no CBC); TLS 1.3's suites are all AEAD and stay OpenSSL's default.
  if (SSL_CTX_set_cipher_list(ctx->native_handle(), kTls12Ciphers) != 1) {
    return Err(ErrorKind::kInternal, "tls: cannot set the TLS 1.2 cipher list");
  }
  ctx->use_certificate_chain_file(cert_path, ec);
  if (ec)
    return Err(ErrorKind::kInvalid,
               "tls: cannot load certificate " + cert_path + ": " + ec.message());
  ctx->use_private_key_file(key_path, asio::ssl::context::pem, ec);
  if (ec) return Err(ErrorKind::kInvalid, "tls: cannot load key " + key_path + ": " + ec.message());
  return ctx;
}

Status ReloadTlsContext(asio::ssl::context& live, const std::string& cert_path,
                        const std::string& key_path) {
  auto fresh = LoadTlsContext(cert_path, key_path);
  if (!fresh) return fresh.error();
  SSL_CTX* ctx = (*fresh)->native_handle();
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Err(ErrorKind::kInvalid,
               "tls: the key " + key_path + " does not match the certificate " + cert_path);
  }
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr || X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
    return Err(ErrorKind::kInvalid, "tls: the certificate " + cert_path + " has expired");
  }
  boost::system::error_code ec;
  std::unique_lock lock(io::TlsContextLock());  // no SSL_new on another loop meanwhile
  live.use_certificate_chain_file(cert_path, ec);
  if (!ec) live.use_private_key_file(key_path, asio::ssl::context::pem, ec);
  if (ec)
    return Err(ErrorKind::kInvalid, "tls: cannot install the new certificate: " + ec.message());
  return Ok();
}

namespace {

int SelectAcmeAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                   const unsigned char* in, unsigned int inlen, void* arg) {
  static const unsigned char kAcmeTls[] = {10, 'a', 'c', 'm', 'e', '-', 't', 'l', 's', '/', '1'};
  unsigned char* selected = nullptr;
  unsigned char len = 0;
  if (SSL_select_next_proto(&selected, &len, kAcmeTls, sizeof(kAcmeTls), in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // not an ACME validation: no ALPN, as without this
  }
  auto* challenges = static_cast<acme::TlsAlpnChallenges*>(arg);
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (sni == nullptr) return SSL_TLSEXT_ERR_ALERT_FATAL;
  std::string name(sni);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto cert = challenges->Get(name);
  if (!cert) return SSL_TLSEXT_ERR_ALERT_FATAL;
  std::unique_ptr<BIO, decltype(&BIO_free)> cb(
      BIO_new_mem_buf(cert->cert_pem.data(), static_cast<int>(cert->cert_pem.size())), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> kb(
      BIO_new_mem_buf(cert->key_pem.data(), static_cast<int>(cert->key_pem.size())), BIO_free);
  if (!cb || !kb) return SSL_TLSEXT_ERR_ALERT_FATAL;
  std::unique_ptr<X509, decltype(&X509_free)> x(
      PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr), X509_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> k(
      PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!x || !k || SSL_use_certificate(ssl, x.get()) != 1 || SSL_use_PrivateKey(ssl, k.get()) != 1) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  *outlen = len;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

void EnableTlsAlpnChallenges(asio::ssl::context& ctx, acme::TlsAlpnChallenges* challenges) {
  std::unique_lock lock(io::TlsContextLock());
  SSL_CTX_set_alpn_select_cb(ctx.native_handle(), SelectAcmeAlpn, challenges);
}

}  // namespace hato::app
