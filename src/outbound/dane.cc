#include "outbound/dane.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <memory>

namespace hato::outbound {
namespace {

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

X509Ptr FromDer(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (cert && p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    X509_free(cert);  // trailing bytes: not one certificate
    cert = nullptr;
  }
  return X509Ptr(cert, X509_free);
}

// The selected content (RFC 6698 2.1.2): the whole certificate or its
// SubjectPublicKeyInfo, DER.
std::string Selected(X509* cert, uint8_t selector) {
  unsigned char* buf = nullptr;
  int n = selector == 0 ? i2d_X509(cert, &buf) : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &buf);
  if (n <= 0) return "";
  std::string out(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
  OPENSSL_free(buf);
  return out;
}

// RFC 6698 2.1.3: 0 the content itself, 1 SHA-256, 2 SHA-512.
std::optional<std::string> Digest(const std::string& data, uint8_t matching_type) {
  if (matching_type == 0) return data;
  const EVP_MD* md = matching_type == 1 ? EVP_sha256() : EVP_sha512();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) return std::nullopt;
  return std::string(reinterpret_cast<char*>(out), len);
}

// RFC 7672 3.1: DANE-TA(2) and DANE-EE(3) with a known selector and
// matching type are usable for SMTP; anything else is ignored.
bool Usable(const TlsaRecord& r) {
  return (r.usage == 2 || r.usage == 3) && r.selector <= 1 && r.matching_type <= 2 &&
         !r.data.empty();
}

bool Matches(const TlsaRecord& r, X509* cert) {
  std::string selected = Selected(cert, r.selector);
  if (selected.empty()) return false;
  auto digest = Digest(selected, r.matching_type);
  return digest && *digest == r.data;
}

// DANE-TA (RFC 7672 3.1.2, 3.2.2): the server's certificate chains, through
// the certificates it sent, to chain[ta] as the trust anchor, is valid at
// `now`, and names one of `names`.
bool ChainsTo(const std::vector<X509Ptr>& chain, size_t ta, const std::vector<std::string>& names,
              int64_t now) {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  std::unique_ptr<STACK_OF(X509), void (*)(STACK_OF(X509)*)> untrusted(
      sk_X509_new_null(), [](STACK_OF(X509) * s) { sk_X509_free(s); });
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      X509_STORE_CTX_free);
  if (!store || !untrusted || !ctx) return false;
  if (X509_STORE_add_cert(store.get(), chain[ta].get()) != 1) return false;
  for (size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted.get(), chain[i].get());
  if (X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get()) != 1) {
    return false;
  }
  X509_VERIFY_PARAM* p = X509_STORE_CTX_get0_param(ctx.get());
  // The anchor need not be self-signed (an intermediate may be published).
  X509_VERIFY_PARAM_set_flags(p, X509_V_FLAG_PARTIAL_CHAIN);
  X509_VERIFY_PARAM_set_time(p, static_cast<time_t>(now));
  X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  bool first = true;
  for (const auto& n : names) {
    if (n.empty()) continue;
    int ok = first ? X509_VERIFY_PARAM_set1_host(p, n.c_str(), n.size())
                   : X509_VERIFY_PARAM_add1_host(p, n.c_str(), n.size());
    if (ok != 1) return false;
    first = false;
  }
  if (first) return false;  // no reference identifier: nothing can match
  return X509_verify_cert(ctx.get()) == 1;
}

}  // namespace

std::optional<TlsaRecord> ParseTlsa(std::string_view rdata) {
  if (rdata.size() < 4) return std::nullopt;
  TlsaRecord r;
  r.usage = static_cast<uint8_t>(rdata[0]);
  r.selector = static_cast<uint8_t>(rdata[1]);
  r.matching_type = static_cast<uint8_t>(rdata[2]);
  r.data = std::string(rdata.substr(3));
  return r;
}

DaneVerdict VerifyDane(const std::vector<TlsaRecord>& records,
                       const std::vector<std::string>& chain, const std::vector<std::string>& names,
                       int64_t now) {
  std::vector<X509Ptr> certs;
  for (const auto& der : chain) {
    X509Ptr c = FromDer(der);
    if (!c) break;  // an unparsable certificate ends what can be used
    certs.push_back(std::move(c));
  }
  bool usable = false;
  for (const auto& r : records) {
    if (!Usable(r)) continue;
    usable = true;
    if (certs.empty()) continue;
    if (r.usage == 3) {
      // DANE-EE: the server's own certificate or key, nothing else checked.
      if (Matches(r, certs[0].get())) return DaneVerdict::kMatch;
      continue;
    }
    for (size_t i = 0; i < certs.size(); ++i) {
      if (Matches(r, certs[i].get()) && ChainsTo(certs, i, names, now)) {
        return DaneVerdict::kMatch;
      }
    }
  }
  return usable ? DaneVerdict::kNoMatch : DaneVerdict::kUnusable;
}

}  // namespace hato::outbound
