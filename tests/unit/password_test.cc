#include "auth/password.h"

#include <gtest/gtest.h>

#include "auth/penalty.h"

namespace hato::auth {
namespace {

TEST(Password, Argon2idRoundTrip) {
  auto h = HashPassword("correct horse");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->rfind("$argon2id$", 0), 0u);
  EXPECT_TRUE(VerifyPassword(*h, "correct horse"));
  EXPECT_FALSE(VerifyPassword(*h, "correct horse "));
}

TEST(Password, CryptStyleHashes) {
  // SHA-512 crypt of "secret" with salt "saltsalt" (Python's crypt.crypt('secret', '$6$saltsalt')).
  const char* sha512 =
      "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq."
      "H91p5hVO1";
  EXPECT_TRUE(VerifyPassword(sha512, "secret"));
  EXPECT_FALSE(VerifyPassword(sha512, "Secret"));
  EXPECT_FALSE(VerifyPassword("plaintext", "plaintext"));
  EXPECT_FALSE(VerifyPassword("", ""));
}

TEST(Penalty, GrowsPerIpAndSparesOtherAddresses) {
  LoginPenalty p(100, 800);
  EXPECT_EQ(p.Failure("10.0.0.1", "u").count(), 100);
  EXPECT_EQ(p.Failure("10.0.0.1", "u").count(), 200);
  EXPECT_EQ(p.Failure("10.0.0.1", "v").count(), 400);  // per IP, whatever the user
  EXPECT_EQ(p.Failure("10.0.0.1", "u").count(), 800);
  EXPECT_EQ(p.Failure("10.0.0.1", "u").count(), 800);  // capped
  EXPECT_GT(p.Pending("10.0.0.1").count(), 0);
  EXPECT_EQ(p.Pending("10.0.0.2").count(), 0);  // the real user elsewhere is not delayed
}

}  // namespace
}  // namespace hato::auth
