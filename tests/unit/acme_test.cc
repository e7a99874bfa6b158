// ACME (src/acme): base64url, the account key's JWK and thumbprint, ES256
// signatures a verifier accepts, the CSR of a finalize, and the parsers of
// the CA's resources (directory, order, authorization, problem, URLs).
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/json.hpp>

#include "acme/jose.h"
#include "acme/messages.h"
#include "base/digest.h"
#include "base/strings.h"

namespace hato::acme {
namespace {

std::string FromB64Url(std::string s) {
  for (char& c : s) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (s.size() % 4) s += '=';
  return Base64Decode(s).value_or("<bad>");
}

TEST(Acme, Base64UrlHasNoPaddingAndUrlAlphabet) {
  // RFC 4648 section 10 vectors, without '='.
  EXPECT_EQ(Base64Url(""), "");
  EXPECT_EQ(Base64Url("f"), "Zg");
  EXPECT_EQ(Base64Url("fo"), "Zm8");
  EXPECT_EQ(Base64Url("foo"), "Zm9v");
  EXPECT_EQ(Base64Url("foob"), "Zm9vYg");
  EXPECT_EQ(Base64Url(std::string("\xfb\xff\xbf", 3)), "-_-_");
}

TEST(Acme, KeyRoundTripsThroughPemAndHasAStableThumbprint) {
  auto key = EcKey::Generate();
  ASSERT_TRUE(key);
  auto again = EcKey::FromPem(key->ToPem());
  ASSERT_TRUE(again);
  EXPECT_EQ(key->Jwk(), again->Jwk());
  EXPECT_EQ(key->Thumbprint(), again->Thumbprint());
  // RFC 7638 section 3.2: the members crv, kty, x, y in that order, no spaces.
  std::string jwk = key->Jwk();
  ASSERT_EQ(jwk.rfind(R"({"crv":"P-256","kty":"EC","x":")", 0), 0u) << jwk;
  EXPECT_EQ(jwk.find(' '), std::string::npos);
  EXPECT_EQ(key->Thumbprint(), Base64Url(Sha256(jwk)));
  EXPECT_EQ(key->Thumbprint().size(), 43u);
  EXPECT_FALSE(EcKey::FromPem("not a key"));
}

TEST(Acme, RefusesAKeyNotOnP256) {
  EVP_PKEY* rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  ASSERT_NE(rsa, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, rsa, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(rsa);
  auto k = EcKey::FromPem(pem);
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message.find("P-256"), std::string::npos);
}

// Verifies a JWS ES256 signature (R || S) with OpenSSL, as a CA would.
bool VerifyEs256(const EcKey& key, const std::string& input, const std::string& sig) {
  if (sig.size() != 64) return false;
  ECDSA_SIG* s = ECDSA_SIG_new();
  ECDSA_SIG_set0(s, BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr),
                 BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr));
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(s, &der);
  ECDSA_SIG_free(s);
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  bool ok =
      EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
      EVP_DigestVerify(md, der, static_cast<size_t>(der_len),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(md);
  OPENSSL_free(der);
  return ok;
}

TEST(Acme, SignedRequestIsAFlattenedJwsThatVerifies) {
  auto key = EcKey::Generate();
  ASSERT_TRUE(key);
  // newAccount: the key itself (jwk), no kid.
  auto body = SignedRequest(*key, "", "nonce-1", "https://ca.test/new-acct",
                            R"({"termsOfServiceAgreed":true})");
  ASSERT_TRUE(body);
  auto v = boost::json::parse(*body).as_object();
  std::string prot(v["protected"].as_string()), payload(v["payload"].as_string()),
      sig(v["signature"].as_string());
  auto header = boost::json::parse(FromB64Url(prot)).as_object();
  EXPECT_EQ(header["alg"].as_string(), "ES256");
  EXPECT_EQ(header["nonce"].as_string(), "nonce-1");
  EXPECT_EQ(header["url"].as_string(), "https://ca.test/new-acct");
  EXPECT_TRUE(header.contains("jwk"));
  EXPECT_FALSE(header.contains("kid"));
  EXPECT_EQ(boost::json::serialize(header["jwk"]), key->Jwk());
  EXPECT_EQ(FromB64Url(payload), R"({"termsOfServiceAgreed":true})");
  EXPECT_TRUE(VerifyEs256(*key, prot + "." + payload, FromB64Url(sig)));
  EXPECT_FALSE(VerifyEs256(*key, prot + "." + payload + "x", FromB64Url(sig)));

  // POST-as-GET with the account URL: kid, and an empty payload.
  auto get = SignedRequest(*key, "https://ca.test/acct/1", "n2", "https://ca.test/order/1", "");
  ASSERT_TRUE(get);
  auto g = boost::json::parse(*get).as_object();
  EXPECT_EQ(g["payload"].as_string(), "");
  auto gh = boost::json::parse(FromB64Url(std::string(g["protected"].as_string()))).as_object();
  EXPECT_EQ(gh["kid"].as_string(), "https://ca.test/acct/1");
  EXPECT_FALSE(gh.contains("jwk"));
}

// RFC 8555 7.3.4: the binding is an HS256 JWS of the account key's JWK
// under the CA's MAC key, its header naming the kid and the newAccount URL.
TEST(Acme, ExternalAccountBindingIsAnHmacOfTheAccountKey) {
  auto key = EcKey::Generate();
  ASSERT_TRUE(key);
  const std::string mac_b64url = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
  auto eab = ExternalAccountBinding(*key, "kid-1", mac_b64url, "https://ca.test/new-acct");
  ASSERT_TRUE(eab) << eab.error().message;
  auto v = boost::json::parse(*eab).as_object();
  std::string prot(v["protected"].as_string()), payload(v["payload"].as_string()),
      sig(v["signature"].as_string());
  auto header = boost::json::parse(FromB64Url(prot)).as_object();
  EXPECT_EQ(header.size(), 3u);
  EXPECT_EQ(header["alg"].as_string(), "HS256");
  EXPECT_EQ(header["kid"].as_string(), "kid-1");
  EXPECT_EQ(header["url"].as_string(), "https://ca.test/new-acct");
  EXPECT_EQ(FromB64Url(payload), key->Jwk());
  std::string mac_key = FromB64Url(mac_b64url);
  EXPECT_EQ(mac_key.size(), 48u);
  EXPECT_EQ(FromB64Url(sig), HmacSha256(mac_key, prot + "." + payload));
  EXPECT_NE(FromB64Url(sig), HmacSha256(mac_key + "x", prot + "." + payload));

  EXPECT_FALSE(ExternalAccountBinding(*key, "kid-1", "", "https://ca.test/new-acct"));
  EXPECT_FALSE(ExternalAccountBinding(*key, "kid-1", "a+b/", "https://ca.test/new-acct"));
  EXPECT_EQ(Base64UrlDecode("-_8"), std::string("\xfb\xff", 2));
  EXPECT_EQ(Base64UrlDecode("Zm9vYg=="), "foob");
  EXPECT_FALSE(Base64UrlDecode("Zm9v*"));
}

TEST(Acme, CsrNamesEveryDomainAndIsSignedByTheKey) {
  auto key = EcKey::Generate();
  ASSERT_TRUE(key);
  auto der = MakeCsr(*key, {"mail.example.test", "mta-sts.example.test"});
  ASSERT_TRUE(der);
  const auto* p = reinterpret_cast<const unsigned char*>(der->data());
  X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(der->size()));
  ASSERT_NE(req, nullptr);
  EXPECT_EQ(X509_REQ_verify(req, key->get()), 1);
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  ASSERT_NE(exts, nullptr);
  auto* names =
      static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts, NID_subject_alt_name, nullptr, nullptr));
  ASSERT_NE(names, nullptr);
  std::vector<std::string> got;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    ASSERT_EQ(g->type, GEN_DNS);
    got.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)));
  }
  EXPECT_EQ(got, (std::vector<std::string>{"mail.example.test", "mta-sts.example.test"}));
  GENERAL_NAMES_free(names);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_free(req);
  EXPECT_FALSE(MakeCsr(*key, {}));
  EXPECT_FALSE(MakeCsr(*key, {"a.example, DNS:evil.example"}));
}

TEST(Acme, ParsesTheDirectory) {
  auto d = ParseDirectory(
      R"({"newNonce":"https://ca/n","newAccount":"https://ca/a","newOrder":"https://ca/o",)"
      R"("meta":{"termsOfService":"x"}})");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->new_nonce, "https://ca/n");
  EXPECT_EQ(d->new_account, "https://ca/a");
  EXPECT_EQ(d->new_order, "https://ca/o");
  EXPECT_FALSE(ParseDirectory(R"({"newNonce":"https://ca/n","newAccount":"https://ca/a"})"));
  EXPECT_FALSE(ParseDirectory(R"({"newNonce":1,"newAccount":"a","newOrder":"o"})"));
  EXPECT_FALSE(ParseDirectory("[]"));
  EXPECT_FALSE(ParseDirectory("{"));
}

TEST(Acme, ParsesOrdersAndTheirErrors) {
  auto o = ParseOrder(
      R"({"status":"pending","finalize":"https://ca/f","authorizations":["https://ca/z1","https://ca/z2"]})");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, "pending");
  EXPECT_EQ(o->authorizations.size(), 2u);
  EXPECT_EQ(o->certificate, "");
  auto bad =
      ParseOrder(R"({"status":"invalid","finalize":"f","authorizations":[],)"
                 R"("error":{"type":"urn:ietf:params:acme:error:unauthorized","detail":"no"}})");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->error, "urn:ietf:params:acme:error:unauthorized: no");
  EXPECT_FALSE(ParseOrder(R"({"status":"pending","finalize":"f","authorizations":[1]})"));
  EXPECT_FALSE(ParseOrder(R"({"status":"pending","finalize":"f"})"));
  std::string many = R"({"status":"pending","finalize":"f","authorizations":[)";
  for (size_t i = 0; i <= kMaxAuthorizations; ++i) many += (i ? ",\"u\"" : "\"u\"");
  EXPECT_FALSE(ParseOrder(many + "]}"));
}

TEST(Acme, ParsesAuthorizationsAndFindsTheHttpChallenge) {
  auto a = ParseAuthorization(
      R"({"status":"pending","identifier":{"type":"dns","value":"mail.example.test"},)"
      R"("challenges":[{"type":"dns-01","url":"https://ca/c1","token":"t1","status":"pending"},)"
      R"({"type":"http-01","url":"https://ca/c2","token":"t2","status":"pending"}]})");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->identifier, "mail.example.test");
  ASSERT_NE(a->Find("http-01"), nullptr);
  EXPECT_EQ(a->Find("http-01")->url, "https://ca/c2");
  EXPECT_EQ(a->Find("tls-alpn-01"), nullptr);
  EXPECT_FALSE(ParseAuthorization(R"({"status":"pending","challenges":[]})"));
}

TEST(Acme, ProblemsAndTokens) {
  auto p = ParseProblem(R"({"type":"urn:ietf:params:acme:error:badNonce","detail":"stale"})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->type, "urn:ietf:params:acme:error:badNonce");
  EXPECT_EQ(p->detail, "stale");
  EXPECT_FALSE(ParseProblem("<html>"));
  EXPECT_TRUE(IsValidToken("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"));
  EXPECT_FALSE(IsValidToken("short"));
  EXPECT_FALSE(IsValidToken("../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaa"));
  EXPECT_FALSE(IsValidToken("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0="));
  EXPECT_EQ(KeyAuthorization("tok", "thumb"), "tok.thumb");
}

}  // namespace
}  // namespace hato::acme
