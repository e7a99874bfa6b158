// The ManageSieve command parser (RFC 5804 section 4).
#include <gtest/gtest.h>

#include "managesieve/proto.h"

namespace hato::managesieve {
namespace {

TEST(ManageSieveParse, QuotedLiteralNumberAndIncomplete) {
  size_t n = 0;
  std::string in = "putscript \"my \\\"s\\\\\" {9+}\r\nkeep;\r\n\r\n\r\nNOOP\r\n";
  auto r = Parse(in, &n);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->name, "PUTSCRIPT");
  ASSERT_EQ((*r)->args.size(), 2u);
  EXPECT_EQ((*r)->args[0], "my \"s\\");
  EXPECT_EQ((*r)->args[1], "keep;\r\n\r\n");
  EXPECT_EQ(in.substr(n), "NOOP\r\n");
  // Every strict prefix is incomplete.
  for (size_t i = 0; i < n; ++i) {
    size_t m = 0;
    auto p = Parse(std::string_view(in).substr(0, i), &m);
    ASSERT_TRUE(p.ok()) << i << ": " << p.error().message;
    EXPECT_FALSE(p->has_value()) << i;
  }
  auto h = Parse("HAVESPACE \"x\" 1234\r\n", &n);
  ASSERT_TRUE(h.ok() && h->has_value());
  EXPECT_TRUE((*h)->numbers[1]);
}

TEST(ManageSieveParse, ErrorsAndLimits) {
  size_t n = 0;
  Limits l;
  l.max_literal = 10;
  auto big = Parse("PUTSCRIPT \"a\" {11+}\r\n01234567890\r\nNOOP\r\n", &n, l);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().kind, ErrorKind::kTooLarge);
  auto bad = Parse("GETSCRIPT foo\r\nNOOP\r\n", &n);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(n, 15u);  // the bad line is dropped, NOOP stays
  EXPECT_FALSE(Parse("\"x\"\r\n", &n).ok());
}

TEST(ManageSieveQuote, RoundTrips) {
  for (std::string s : {"plain", "q\"uo\\te", "two\r\nlines", ""}) {
    size_t n = 0;
    auto r = Parse("X " + Quote(s) + "\r\n", &n);
    ASSERT_TRUE(r.ok() && r->has_value()) << s;
    EXPECT_EQ((*r)->args[0], s);
  }
}

}  // namespace
}  // namespace hato::managesieve
