#include <gtest/gtest.h>

#include "pop3/command.h"

namespace hato::pop3 {
namespace {

TEST(Pop3Command, Basics) {
  auto c = ParseCommand("user Alice@Example.test");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->verb, Verb::kUser);
  EXPECT_EQ(c->arg, "Alice@Example.test");

  auto pass = ParseCommand("PASS secret with spaces");
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->arg, "secret with spaces");

  auto top = ParseCommand("TOP 3 10");
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(*top->msg, 3u);
  EXPECT_EQ(top->lines, 10u);

  auto list = ParseCommand("LIST");
  ASSERT_TRUE(list.ok());
  EXPECT_FALSE(list->msg.has_value());

  auto auth = ParseCommand("AUTH plain AHUAcA==");
  ASSERT_TRUE(auth.ok());
  EXPECT_EQ(auth->arg, "PLAIN");
  EXPECT_EQ(auth->arg2, "AHUAcA==");
}

TEST(Pop3Command, Rejects) {
  EXPECT_EQ(ParseCommand("XTND").error().kind, ErrorKind::kNotFound);
  EXPECT_FALSE(ParseCommand("RETR").ok());
  EXPECT_FALSE(ParseCommand("RETR 0").ok());
  EXPECT_FALSE(ParseCommand("RETR x").ok());
  EXPECT_FALSE(ParseCommand("DELE 1 2").ok());
  EXPECT_FALSE(ParseCommand("TOP 1").ok());
  EXPECT_FALSE(ParseCommand("STAT now").ok());
  EXPECT_FALSE(ParseCommand("USER").ok());
}

}  // namespace
}  // namespace hato::pop3
