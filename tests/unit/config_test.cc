#include "config/config.h"

#include <gtest/gtest.h>

namespace hato::config {
namespace {

TEST(Config, DefaultTextParsesToDefaults) {
  auto c = Parse(DefaultText("mail.example.test"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  Config d;
  EXPECT_EQ(c->hostname, "mail.example.test");
  EXPECT_EQ(c->smtp.max_message_size, d.smtp.max_message_size);
  EXPECT_EQ(c->smtp.max_recipients, d.smtp.max_recipients);
  EXPECT_EQ(c->retention_days, 30);
  EXPECT_EQ(c->listen.smtp, "0.0.0.0:25");
  EXPECT_EQ(c->tls_cert, "tls/cert.pem");
}

TEST(Config, EventLoops) {
  auto d = Parse(DefaultText("mx.example.test"));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->event_loops, Config().event_loops);
  auto four = Parse("[server]\nevent_loops = 4\n");
  ASSERT_TRUE(four.ok());
  EXPECT_EQ(four->event_loops, 4);
  auto bad = Parse("[server]\nevent_loops = -1\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("server.event_loops"), std::string::npos);
}

TEST(Config, UnknownKeyIsNamed) {
  auto c = Parse("[smtp]\nmax_mesage_size = 10\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("smtp.max_mesage_size"), std::string::npos);
}

TEST(Config, WrongTypeAndRangeAreNamed) {
  auto t = Parse("[smtp]\nmax_recipients = \"many\"\n");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("smtp.max_recipients"), std::string::npos);
  auto r = Parse("[smtp]\nmax_recipients = 5\n");  // RFC 5321 requires at least 100
  ASSERT_FALSE(r.ok());
  auto l = Parse("[listen]\nsmtp = \"nohostport\"\n");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("listen.smtp"), std::string::npos);
}

TEST(Config, Msgauth) {
  auto d = Parse(DefaultText("mx.example.test"));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(d->msgauth.inbound_checks);
  EXPECT_FALSE(d->msgauth.check_loopback);
  EXPECT_EQ(d->msgauth.dmarc_reject, "reject");
  auto c = Parse("[msgauth]\ndmarc_reject = \"junk\"\ncheck_timeout_seconds = 7\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->msgauth.dmarc_reject, "junk");
  EXPECT_EQ(c->msgauth.check_timeout_seconds, 7);
  auto bad = Parse("[msgauth]\ndmarc_reject = \"bounce\"\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("msgauth.dmarc_reject"), std::string::npos);
  EXPECT_FALSE(Parse("[msgauth]\ndns_timeout_seconds = 0\n").ok());
}

TEST(Config, ListCopyDkim) {
  auto d = Parse(DefaultText("mx.example.test"));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->lists.copy_dkim, "key");
  EXPECT_TRUE(d->lists.copy_dkim_domains.empty());
  auto c = Parse(
      "[lists]\ncopy_dkim = \"rsa+ed25519\"\n"
      "copy_dkim_domains = { \"Big.Example\" = \"ed25519\", \"small.example\" = \"key\" }\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->lists.copy_dkim, "rsa+ed25519");
  EXPECT_EQ(c->lists.CopyDkimFor("big.example"), "ed25519");
  EXPECT_EQ(c->lists.CopyDkimFor("small.example"), "key");
  EXPECT_EQ(c->lists.CopyDkimFor("other.example"), "rsa+ed25519");
  auto bad = Parse("[lists]\ncopy_dkim = \"ed448\"\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("lists.copy_dkim"), std::string::npos);
  auto bad_domain = Parse("[lists]\ncopy_dkim_domains = { \"a.example\" = \"rsa\" }\n");
  ASSERT_FALSE(bad_domain.ok());
  EXPECT_NE(bad_domain.error().message.find("lists.copy_dkim_domains.a.example"),
            std::string::npos);
}

TEST(Config, OutboundTlsPolicy) {
  auto d = Parse(DefaultText("mx.example.test"));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(d->outbound.tls_policy.empty());
  auto c = Parse(
      "[outbound]\ntls_policy = { \"Bank.Example\" = \"verify\", \"p.example\" = \"encrypt\" }\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->outbound.tls_policy.at("bank.example"), "verify");  // domains lower-cased
  EXPECT_EQ(c->outbound.tls_policy.at("p.example"), "encrypt");
  auto bad = Parse("[outbound]\ntls_policy = { \"x.example\" = \"always\" }\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("outbound.tls_policy.x.example"), std::string::npos);
  EXPECT_FALSE(Parse("[outbound]\ntls_policy = \"verify\"\n").ok());
}

TEST(Config, SyntaxErrorHasLine) {
  auto c = Parse("[smtp]\nmax_errors = = 3\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("line 2"), std::string::npos);
}

}  // namespace
}  // namespace hato::config

namespace hato::config {
namespace {

// [scan] (issue 19): off when absent, validated when set.
TEST(Config, ScanIsOffByDefaultAndValidated) {
  auto d = Parse(DefaultText("mx.example.test"));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_FALSE(d->scan.enabled());
  EXPECT_EQ(d->scan.on_reject, "reject");
  EXPECT_EQ(d->scan.on_spam, "junk");
  auto c = Parse(
      "[scan]\nrspamd_url = \"http://127.0.0.1:11333/\"\nclamd = \"/run/clamav/clamd.ctl\"\n"
      "on_spam = \"mark\"\nreject_score = 12.5\nspam_score = 6\ntimeout_ms = 300\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->scan.enabled());
  EXPECT_EQ(c->scan.on_spam, "mark");
  EXPECT_DOUBLE_EQ(c->scan.reject_score, 12.5);
  EXPECT_DOUBLE_EQ(c->scan.spam_score, 6);
  EXPECT_EQ(c->scan.timeout_ms, 300);
  for (const char* bad :
       {"[scan]\non_spam = \"drop\"\n", "[scan]\nrspamd_url = \"https://h:1\"\n",
        "[scan]\nrspamd_url = \"http://nohost\"\n", "[scan]\nclamd = \"noport\"\n",
        "[scan]\nreject_score = -1\n", "[scan]\ntimeout_ms = 0\n"}) {
    EXPECT_FALSE(Parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace hato::config
