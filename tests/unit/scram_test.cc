// SCRAM-SHA-256 (RFC 5802, RFC 7677): the RFC 7677 section 3 exchange, the
// stored verifier (RFC 5803 form), and the ways a client message is refused.
#include "auth/scram.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "base/strings.h"

namespace hato::auth {
namespace {

// RFC 7677 section 3.
constexpr std::string_view kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+"
    "Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

ScramVerifier PencilVerifier() {
  auto v = ComputeScramVerifier("pencil", *Base64Decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
  EXPECT_TRUE(v.ok());
  return *v;
}

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

// An independent client side (RFC 5802 section 3) for the proofs.
std::string ClientProof(std::string_view password, const ScramVerifier& v,
                        std::string_view auth_message) {
  unsigned char salted[32];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(v.salt.data()),
                    static_cast<int>(v.salt.size()), v.iterations, EVP_sha256(), 32, salted);
  std::string client_key =
      Hmac(std::string_view(reinterpret_cast<char*>(salted), 32), "Client Key");
  unsigned char stored[32];
  SHA256(reinterpret_cast<const unsigned char*>(client_key.data()), client_key.size(), stored);
  std::string sig = Hmac(std::string_view(reinterpret_cast<char*>(stored), 32), auth_message);
  for (size_t i = 0; i < sig.size(); ++i) sig[i] ^= client_key[i];
  return Base64Encode(sig);
}

TEST(Scram, Rfc7677Exchange) {
  ScramServer s;
  auto first = s.ReceiveClientFirst(kClientFirst);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->user, "user");
  EXPECT_EQ(first->authzid, "");
  EXPECT_EQ(first->nonce, "rOprNGfwEbeRWgbNEkqO");
  EXPECT_EQ(s.ServerFirst(PencilVerifier(), kServerNonce), kServerFirst);
  auto fin = s.ReceiveClientFinal(kClientFinal);
  ASSERT_TRUE(fin.ok()) << fin.error().message;
  EXPECT_EQ(*fin, kServerFinal);
}

TEST(Scram, VerifierFormatRoundTrip) {
  ScramVerifier v = PencilVerifier();
  std::string text = FormatScramVerifier(v);
  // The same keys as GNU SASL's `gsasl --mkpasswd --mechanism SCRAM-SHA-256
  // --password pencil --salt W22ZaJ0SNY7soEsUEjb6gQ== --iteration-count 4096`.
  EXPECT_EQ(
      text,
      "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
      ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
  auto back = ParseScramVerifier(text);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->iterations, 4096);
  EXPECT_EQ(back->salt, v.salt);
  EXPECT_EQ(back->stored_key, v.stored_key);
  EXPECT_EQ(back->server_key, v.server_key);

  EXPECT_FALSE(ParseScramVerifier(""));
  EXPECT_FALSE(ParseScramVerifier("$argon2id$v=19$m=19456,t=2,p=1$abc$def"));
  std::string low = text;
  low.replace(low.find("4096"), 4, "4095");  // below RFC 7677's minimum
  EXPECT_FALSE(ParseScramVerifier(low));
  EXPECT_FALSE(ParseScramVerifier(text.substr(0, text.size() - 4)));  // short ServerKey
  EXPECT_FALSE(ComputeScramVerifier("pencil", "salt", kScramMinIterations - 1).ok());
}

TEST(Scram, NewVerifierHasRandomSaltAndLogsIn) {
  auto a = NewScramVerifier("hunter2");
  auto b = NewScramVerifier("hunter2");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  auto v = ParseScramVerifier(*a);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->iterations, kScramMinIterations);
  EXPECT_EQ(v->salt.size(), kScramSaltBytes);

  std::string nonce = RandomScramNonce();
  EXPECT_GE(nonce.size(), 32u);  // 24 bytes, base64
  EXPECT_EQ(nonce.find(','), std::string::npos);
  EXPECT_NE(nonce, RandomScramNonce());

  for (std::string password : {"hunter2", "hunter3"}) {
    ScramServer s;
    ASSERT_TRUE(s.ReceiveClientFirst("n,a=bob@x.test,n=bob@x.test,r=abc").ok());
    std::string server_first = s.ServerFirst(*v, nonce);
    std::string without_proof = "c=" + Base64Encode("n,a=bob@x.test,") + ",r=abc" + nonce;
    std::string auth_message = "n=bob@x.test,r=abc," + server_first + "," + without_proof;
    auto fin =
        s.ReceiveClientFinal(without_proof + ",p=" + ClientProof(password, *v, auth_message));
    if (password == "hunter2") {
      EXPECT_TRUE(fin.ok()) << fin.error().message;
    } else {
      ASSERT_FALSE(fin.ok());
      EXPECT_EQ(fin.error().kind, ErrorKind::kAuth);
    }
  }
}

TEST(Scram, UnknownUserGetsAStableMadeUpSaltAndFails) {
  auto server_first = [](std::string_view user) {
    ScramServer s;
    EXPECT_TRUE(s.ReceiveClientFirst("n,,n=" + std::string(user) + ",r=abc").ok());
    return s.ServerFirst(std::nullopt, "xyz");
  };
  std::string a = server_first("ghost@x.test");
  EXPECT_EQ(a, server_first("ghost@x.test"));
  EXPECT_NE(a, server_first("other@x.test"));
  EXPECT_NE(a.find(",i=4096"), std::string::npos);

  ScramServer s;
  ASSERT_TRUE(s.ReceiveClientFirst("n,,n=ghost@x.test,r=abc").ok());
  s.ServerFirst(std::nullopt, "xyz");
  std::string proof = Base64Encode(std::string(32, 'x'));
  auto fin = s.ReceiveClientFinal("c=biws,r=abcxyz,p=" + proof);
  ASSERT_FALSE(fin.ok());
  EXPECT_EQ(fin.error().kind, ErrorKind::kAuth);
}

TEST(Scram, ClientFirstParsing) {
  auto ok = ParseScramClientFirst("y,a=a=3Db=2Cc,n=a=3Db=2Cc,r=N0nce!,x=ext");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->gs2_flag, 'y');
  EXPECT_EQ(ok->authzid, "a=b,c");
  EXPECT_EQ(ok->user, "a=b,c");
  EXPECT_EQ(ok->gs2_header, "y,a=a=3Db=2Cc,");
  EXPECT_EQ(ok->bare, "n=a=3Db=2Cc,r=N0nce!,x=ext");

  for (std::string_view bad :
       {"", "n,,", "n,,n=user", "p=tls-unique,,n=user,r=abc",  // channel binding refused
        "x,,n=user,r=abc", "n,b=x,n=user,r=abc", "n,,m=ext,n=user,r=abc", "n,,n=,r=abc",
        "n,,n=us=er,r=abc", "n,,n=us=2Xer,r=abc", "n,,r=abc,n=user", "n,,n=user,r=",
        "n,,n=user,r=a b", "n,,n=user,r=abc,1=x", "n,,n=user,r=abc,x", "n,a=,n=user,r=abc"}) {
    EXPECT_FALSE(ParseScramClientFirst(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseScramClientFirst(std::string("n,,n=u\0s,r=abc", 14)).ok());
  EXPECT_FALSE(ParseScramClientFirst("n,,n=user,r=" + std::string(kScramMaxMessage, 'a')).ok());
  EXPECT_EQ(EscapeSaslName("a=b,c"), "a=3Db=2Cc");
  EXPECT_EQ(*UnescapeSaslName(EscapeSaslName("=,==,,")), "=,==,,");
}

TEST(Scram, ClientFinalChecks) {
  auto run = [](std::string_view client_final) {
    ScramServer s;
    EXPECT_TRUE(s.ReceiveClientFirst(kClientFirst).ok());
    s.ServerFirst(PencilVerifier(), kServerNonce);
    return s.ReceiveClientFinal(client_final);
  };
  std::string nonce = "rOprNGfwEbeRWgbNEkqO" + std::string(kServerNonce);
  std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  // c= must be base64("n,,"); the nonce must be the combined one; p= last and 32 bytes.
  EXPECT_EQ(run("c=eSws,r=" + nonce + "," + proof).error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(run("c=biws,r=rOprNGfwEbeRWgbNEkqO," + proof).error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(run("c=biws,r=" + nonce + "x," + proof).error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(run(proof + ",c=biws,r=" + nonce).error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(run("c=biws,r=" + nonce + ",p=AAAA").error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(run("c=biws,r=" + nonce).error().kind, ErrorKind::kInvalid);
  // A flipped bit of the proof is a wrong password.
  std::string wrong = "c=biws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=";
  EXPECT_EQ(run(wrong).error().kind, ErrorKind::kAuth);
  // An extension before the proof changes the AuthMessage: the proof no longer matches.
  EXPECT_EQ(run("c=biws,r=" + nonce + ",x=1," + proof).error().kind, ErrorKind::kAuth);
  EXPECT_TRUE(run(kClientFinal).ok());
}

TEST(Scram, OutOfOrderMessagesAreRefused) {
  ScramServer s;
  EXPECT_FALSE(s.ReceiveClientFinal(kClientFinal).ok());
  ScramServer t;
  ASSERT_TRUE(t.ReceiveClientFirst(kClientFirst).ok());
  EXPECT_FALSE(t.ReceiveClientFirst(kClientFirst).ok());
  ScramServer u;
  ASSERT_TRUE(u.ReceiveClientFirst(kClientFirst).ok());
  u.ServerFirst(PencilVerifier(), kServerNonce);
  ASSERT_TRUE(u.ReceiveClientFinal(kClientFinal).ok());
  EXPECT_FALSE(u.ReceiveClientFinal(kClientFinal).ok());  // no replay in one exchange
}

}  // namespace
}  // namespace hato::auth
