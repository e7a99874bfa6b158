// Tests of IMAP URL parsing (src/imap/proto/url.h, RFC 5092) on the URLs of
// RFC 4469 (CATENATE) and RFC 4467 (URLAUTH) examples, and of the APPEND
// CATENATE and URLAUTH command syntax (RFC 4469 section 5, RFC 4467 section 9).
#include <gtest/gtest.h>

#include <string>

#include "imap/proto/command.h"
#include "imap/proto/url.h"

namespace hato::imap {
namespace {

TEST(ImapUrl, RelativeAndAbsolutePaths) {
  // RFC 4469 appendix A.
  auto u = ParseImapUrl("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->form, ImapUrl::Form::kAbsolutePath);
  EXPECT_EQ(u->mailbox, "Drafts");
  EXPECT_EQ(u->uidvalidity, 385759045u);
  EXPECT_EQ(u->uid, 20u);
  EXPECT_EQ(u->section, "1.MIME");
  u = ParseImapUrl(";UID=3/;SECTION=HEADER.FIELDS%20(To%20From)/;PARTIAL=0.1024");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->form, ImapUrl::Form::kRelative);
  EXPECT_EQ(u->section, "HEADER.FIELDS (To From)");
  ASSERT_TRUE(u->partial);
  EXPECT_EQ(u->partial->offset, 0u);
  EXPECT_EQ(u->partial->length, 1024u);
  u = ParseImapUrl("/a%2Fb/c/;UID=9");  // hierarchy and an encoded '/'
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->mailbox, "a/b/c");
}

TEST(ImapUrl, AbsoluteWithUrlAuth) {
  // RFC 4467 section 9 (example), mechanism and token after the rump.
  std::string rump = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred";
  std::string full = rump + ":internal:91354a473744909de610943775f92038";
  auto u = ParseImapUrl(full);
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->user, "joe");
  EXPECT_EQ(u->host, "example.com");
  EXPECT_EQ(u->mailbox, "INBOX");
  EXPECT_EQ(u->access, "submit+fred");
  EXPECT_EQ(u->mechanism, "internal");
  EXPECT_EQ(u->rump_end, rump.size());
  u = ParseImapUrl(
      "imap://a%40b.test;AUTH=*@Mail.Example:1143/Box/"
      ";UID=1;EXPIRE=2030-01-01T00:00:00Z;URLAUTH=anonymous");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->user, "a@b.test");
  EXPECT_EQ(u->auth, "*");
  EXPECT_EQ(u->host, "mail.example");
  EXPECT_EQ(u->port, 1143);
  EXPECT_EQ(u->expire, "2030-01-01T00:00:00Z");
  EXPECT_TRUE(u->token.empty());
}

TEST(ImapUrl, Rejected) {
  for (const char* bad :
       {"", "imap://host/Box", "imap://host/Box?SUBJECT%20x", "/Box", "/Box;UID=1", "/Box/;UID=0",
        "/Box/;UID=01", ";SECTION=1", "/Box/;UID=1/;PARTIAL=x", "/Box/;UID=1/;FOO=1",
        "//host/Box/;UID=1", "/Box/;UID=1;URLAUTH=anonymous:internal:short", "/B x/;UID=1",
        "/Box/;UID=1/;SECTION=%ZZ", "imap://host:99999/Box/;UID=1"}) {
    EXPECT_FALSE(ParseImapUrl(bad).ok()) << bad;
  }
}

TEST(ImapUrl, CatenateSyntax) {
  using namespace std::string_literals;
  auto c = ParseCommand(
      "A003 APPEND Drafts (\\Seen) CATENATE (URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/"
      ";section=HEADER\" TEXT {4}\r\nab\r\n URL \";UID=1\") CATENATE (TEXT ~{1}\r\n\0)"s);
  ASSERT_TRUE(c.ok()) << c.error().message;
  const auto& a = c->As<AppendArgs>();
  ASSERT_EQ(a.catenate.size(), 3u);
  EXPECT_TRUE(a.catenate[0].url);
  EXPECT_EQ(a.catenate[1].data, "ab\r\n");
  ASSERT_EQ(a.more.size(), 1u);
  EXPECT_EQ(a.more[0].catenate.size(), 1u);
  EXPECT_EQ(ParseCommand(FormatCommand(*c))->As<AppendArgs>().catenate[2].data, ";UID=1");
  for (const char* bad : {"a APPEND x CATENATE ()", "a APPEND x CATENATE (TEXT x)",
                          "a APPEND x CATENATE (URL)", "a APPEND x CATENATE (FOO x)"}) {
    EXPECT_FALSE(ParseCommand(bad).ok()) << bad;
  }
}

TEST(ImapUrl, UrlAuthCommands) {
  auto c = ParseCommand("a GENURLAUTH \"imap://joe@h/INBOX/;UID=1;URLAUTH=anonymous\" INTERNAL");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->As<GenUrlAuthArgs>().urls.at(0).second, "INTERNAL");
  c = ParseCommand("a RESETKEY");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->As<ResetKeyArgs>().mailbox);
  c = ParseCommand("a RESETKEY INBOX internal");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->As<ResetKeyArgs>().mechanisms.at(0), "INTERNAL");
  c = ParseCommand("a URLFETCH \"x\" y");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->As<UrlFetchArgs>().urls.size(), 2u);
  EXPECT_FALSE(ParseCommand("a URLFETCH").ok());
  EXPECT_FALSE(ParseCommand("a GENURLAUTH x").ok());
}

}  // namespace
}  // namespace hato::imap
