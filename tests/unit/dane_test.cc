// DANE certificate checks (src/outbound/dane.h, RFC 7672 / RFC 6698) with
// certificates made here: a CA, an intermediate, MX leaf certificates.
#include "outbound/dane.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>

namespace hato::outbound {
namespace {

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

KeyPtr NewKey() { return KeyPtr(EVP_EC_gen("P-256"), EVP_PKEY_free); }

// A certificate for `cn` (and `san`, a DNS name, if not empty), valid from
// `not_before` to `not_after` (seconds from now), signed by `issuer_key` as
// `issuer` (self-signed when null).
CertPtr MakeCert(EVP_PKEY* key, const std::string& cn, const std::string& san, bool ca,
                 X509* issuer, EVP_PKEY* issuer_key, long not_before = -3600,
                 long not_after = 86400) {
  CertPtr c(X509_new(), X509_free);
  X509_set_version(c.get(), 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(c.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), not_before);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), not_after);
  X509_set_pubkey(c.get(), key);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(c.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer ? issuer : c.get(), c.get(), nullptr, nullptr, 0);
  auto add = [&](int nid, const char* value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    X509_add_ext(c.get(), ext, -1);
    X509_EXTENSION_free(ext);
  };
  add(NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  if (ca) add(NID_key_usage, "critical,keyCertSign,cRLSign");
  if (!san.empty()) add(NID_subject_alt_name, ("DNS:" + san).c_str());
  X509_sign(c.get(), issuer_key ? issuer_key : key, EVP_sha256());
  return c;
}

std::string Der(X509* c) {
  unsigned char* buf = nullptr;
  int n = i2d_X509(c, &buf);
  std::string out(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
  OPENSSL_free(buf);
  return out;
}

std::string SpkiDer(X509* c) {
  unsigned char* buf = nullptr;
  int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(c), &buf);
  std::string out(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
  OPENSSL_free(buf);
  return out;
}

std::string Sha256(const std::string& s) {
  unsigned char out[32];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), out, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Sha512(const std::string& s) {
  unsigned char out[64];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), out, &len, EVP_sha512(), nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

class DaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_key_ = NewKey();
    ca_ = MakeCert(ca_key_.get(), "Test Root", "", true, nullptr, nullptr);
    int_key_ = NewKey();
    int_ = MakeCert(int_key_.get(), "Test Intermediate", "", true, ca_.get(), ca_key_.get());
    leaf_key_ = NewKey();
    leaf_ = MakeCert(leaf_key_.get(), "mx.example.net", "mx.example.net", false, int_.get(),
                     int_key_.get());
    chain_ = {Der(leaf_.get()), Der(int_.get())};
    now_ = std::time(nullptr);
  }
  KeyPtr ca_key_{nullptr, EVP_PKEY_free}, int_key_{nullptr, EVP_PKEY_free},
      leaf_key_{nullptr, EVP_PKEY_free};
  CertPtr ca_{nullptr, X509_free}, int_{nullptr, X509_free}, leaf_{nullptr, X509_free};
  std::vector<std::string> chain_;
  std::vector<std::string> names_{"mx.example.net", "example.net"};
  int64_t now_ = 0;
};

TEST_F(DaneTest, DaneEeMatchesKeyOrCertificateIgnoringNameAndExpiry) {
  // 3 1 1: SHA-256 of the leaf's SubjectPublicKeyInfo (the common form).
  EXPECT_EQ(VerifyDane({{3, 1, 1, Sha256(SpkiDer(leaf_.get()))}}, chain_, names_, now_),
            DaneVerdict::kMatch);
  // 3 0 2 and 3 0 0: the whole certificate.
  EXPECT_EQ(VerifyDane({{3, 0, 2, Sha512(Der(leaf_.get()))}}, chain_, names_, now_),
            DaneVerdict::kMatch);
  EXPECT_EQ(VerifyDane({{3, 0, 0, Der(leaf_.get())}}, chain_, names_, now_), DaneVerdict::kMatch);
  // RFC 7672 3.1.1: neither the name nor the validity period matter.
  auto expired_key = NewKey();
  auto expired = MakeCert(expired_key.get(), "other.example", "other.example", false, nullptr,
                          nullptr, -7200, -3600);
  EXPECT_EQ(
      VerifyDane({{3, 1, 1, Sha256(SpkiDer(expired.get()))}}, {Der(expired.get())}, names_, now_),
      DaneVerdict::kMatch);
  // Another key: no match (do not deliver).
  auto other = NewKey();
  auto other_cert = MakeCert(other.get(), "x", "", false, nullptr, nullptr);
  EXPECT_EQ(VerifyDane({{3, 1, 1, Sha256(SpkiDer(other_cert.get()))}}, chain_, names_, now_),
            DaneVerdict::kNoMatch);
  // DANE-EE names the server's own certificate, not an issuer's.
  EXPECT_EQ(VerifyDane({{3, 1, 1, Sha256(SpkiDer(int_.get()))}}, chain_, names_, now_),
            DaneVerdict::kNoMatch);
}

TEST_F(DaneTest, DaneTaNeedsTheChainAndTheName) {
  // 2 0 1 of the intermediate the server sends.
  std::vector<TlsaRecord> ta = {{2, 0, 1, Sha256(Der(int_.get()))}};
  EXPECT_EQ(VerifyDane(ta, chain_, names_, now_), DaneVerdict::kMatch);
  // The TLSA base domain is a reference identifier too.
  EXPECT_EQ(VerifyDane(ta, chain_, {"mail.example.org", "mx.example.net"}, now_),
            DaneVerdict::kMatch);
  // Wrong name: no match.
  EXPECT_EQ(VerifyDane(ta, chain_, {"mx.attacker.example"}, now_), DaneVerdict::kNoMatch);
  // The anchor must be in what the server sent (the root is not).
  EXPECT_EQ(VerifyDane({{2, 1, 1, Sha256(SpkiDer(ca_.get()))}}, chain_, names_, now_),
            DaneVerdict::kNoMatch);
  EXPECT_EQ(VerifyDane({{2, 1, 1, Sha256(SpkiDer(ca_.get()))}},
                       {Der(leaf_.get()), Der(int_.get()), Der(ca_.get())}, names_, now_),
            DaneVerdict::kMatch);
  // A leaf signed by someone else does not chain to the anchor.
  auto rogue_key = NewKey();
  auto rogue_ca = MakeCert(rogue_key.get(), "Rogue", "", true, nullptr, nullptr);
  auto fake_key = NewKey();
  auto fake_leaf = MakeCert(fake_key.get(), "mx.example.net", "mx.example.net", false,
                            rogue_ca.get(), rogue_key.get());
  EXPECT_EQ(VerifyDane(ta, {Der(fake_leaf.get()), Der(int_.get())}, names_, now_),
            DaneVerdict::kNoMatch);
  // Expired leaf under DANE-TA: no match (validity is checked there).
  auto old_key = NewKey();
  auto old_leaf = MakeCert(old_key.get(), "mx.example.net", "mx.example.net", false, int_.get(),
                           int_key_.get(), -7200, -3600);
  EXPECT_EQ(VerifyDane(ta, {Der(old_leaf.get()), Der(int_.get())}, names_, now_),
            DaneVerdict::kNoMatch);
}

TEST_F(DaneTest, PkixUsagesAndUnknownTypesAreUnusable) {
  // RFC 7672 3.1: PKIX-TA(0) and PKIX-EE(1) are not used for SMTP.
  EXPECT_EQ(VerifyDane({{1, 1, 1, Sha256(SpkiDer(leaf_.get()))},
                        {0, 0, 1, Sha256(Der(ca_.get()))},
                        {3, 2, 1, "x"},
                        {3, 1, 9, "x"}},
                       chain_, names_, now_),
            DaneVerdict::kUnusable);
  EXPECT_EQ(VerifyDane({}, chain_, names_, now_), DaneVerdict::kUnusable);
  // One usable record among unusable ones decides.
  EXPECT_EQ(
      VerifyDane({{1, 1, 1, "x"}, {3, 1, 1, Sha256(SpkiDer(leaf_.get()))}}, chain_, names_, now_),
      DaneVerdict::kMatch);
  // Garbage instead of a certificate: usable records, nothing matches.
  EXPECT_EQ(
      VerifyDane({{3, 1, 1, Sha256(SpkiDer(leaf_.get()))}}, {"not a certificate"}, names_, now_),
      DaneVerdict::kNoMatch);
}

TEST(Tlsa, ParsesRdata) {
  auto r = ParseTlsa(std::string("\x03\x01\x01\xab\xcd", 5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->usage, 3);
  EXPECT_EQ(r->selector, 1);
  EXPECT_EQ(r->matching_type, 1);
  EXPECT_EQ(r->data, "\xab\xcd");
  EXPECT_FALSE(ParseTlsa(std::string("\x03\x01\x01", 3)));
}

}  // namespace
}  // namespace hato::outbound
