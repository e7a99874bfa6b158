#include "base/strings.h"

#include <gtest/gtest.h>

namespace hato {
namespace {

TEST(Base64, RoundTripsAllLengths) {
  std::string s;
  for (int i = 0; i < 40; ++i) {
    auto decoded = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(*decoded, s);
    s += static_cast<char>(i * 37);
  }
}

TEST(Base64, KnownVectorsAndRejects) {
  EXPECT_EQ(Base64Encode(std::string("\0user\0pass", 10)), "AHVzZXIAcGFzcw==");
  EXPECT_EQ(*Base64Decode("AHVzZXIAcGFzcw=="), std::string("\0user\0pass", 10));
  EXPECT_FALSE(Base64Decode("abc").has_value());
  EXPECT_FALSE(Base64Decode("ab=c").has_value());
  EXPECT_FALSE(Base64Decode("a!cd").has_value());
}

TEST(ParseUint, BoundsAndJunk) {
  EXPECT_EQ(ParseUint("0"), 0u);
  EXPECT_EQ(ParseUint("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(ParseUint("18446744073709551616"));
  EXPECT_FALSE(ParseUint(""));
  EXPECT_FALSE(ParseUint("-1"));
  EXPECT_FALSE(ParseUint("12a"));
}

TEST(Utf8, ValidAndInvalid) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xe6\x97\xa5\xe6\x9c\xac"));  // 日本
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));                 // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));             // surrogate
  EXPECT_FALSE(IsValidUtf8("\xe6\x97"));                 // truncated
}

}  // namespace
}  // namespace hato
