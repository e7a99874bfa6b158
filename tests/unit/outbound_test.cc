// Submission and outbound delivery: the pure pieces (DSN parameters, xtext,
// the client's reply reader and EHLO parsing, dot-stuffing, DNS rdata, the
// DSN builder) and the store's queue operations.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "dns/rdata.h"
#include "outbound/dsn.h"
#include "outbound/mta_sts_policy.h"
#include "outbound/relay_auth.h"
#include "outbound/tls_policy.h"
#include "smtp/command.h"
#include "smtp/reply.h"
#include "store/store.h"
#include "store_backends.h"
#include "test_util.h"

namespace hato {
namespace {

TEST(SmtpClient, EhloAuthMechanisms) {
  smtp::ReplyReader r;
  EXPECT_FALSE(*r.Feed("250-relay.example"));
  EXPECT_FALSE(*r.Feed("250-AUTH login CRAM-MD5"));
  EXPECT_TRUE(*r.Feed("250 STARTTLS"));
  smtp::Extensions e = smtp::ParseEhlo(r.Take());
  EXPECT_TRUE(e.auth_login);
  EXPECT_FALSE(e.auth_plain);
  EXPECT_FALSE(*r.Feed("250-relay.example"));
  EXPECT_TRUE(*r.Feed("250 AUTH=PLAIN"));  // the pre-RFC 4954 form
  e = smtp::ParseEhlo(r.Take());
  EXPECT_TRUE(e.auth_plain);
  EXPECT_FALSE(e.auth_login);
}

TEST(MtaSts, Record) {
  // RFC 8461 section 3.1 example, and its grammar's edges.
  EXPECT_EQ(outbound::ParseStsRecord("v=STSv1; id=20160831085700Z;"), "20160831085700Z");
  EXPECT_EQ(outbound::ParseStsRecord("v=STSv1;id=abc ; ext=1"), "abc");
  EXPECT_FALSE(outbound::ParseStsRecord("v=STSv2; id=abc"));
  EXPECT_FALSE(outbound::ParseStsRecord("id=abc; v=STSv1"));
  EXPECT_FALSE(outbound::ParseStsRecord("v=STSv1;"));
  EXPECT_FALSE(outbound::ParseStsRecord("v=STSv1; id=bad-char"));
  EXPECT_FALSE(outbound::ParseStsRecord("v=STSv1; id=" + std::string(33, 'a')));
}

TEST(MtaSts, PolicyAndMatching) {
  // RFC 8461 section 3.2 example.
  auto p = outbound::ParseStsPolicy(
      "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
      "mx: backupmx.example.com\r\nmax_age: 604800\r\n");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->mode, outbound::StsPolicy::Mode::kEnforce);
  EXPECT_EQ(p->max_age, 604800);
  ASSERT_EQ(p->mx.size(), 3u);
  EXPECT_TRUE(outbound::StsMxMatches(*p, "mail.example.com."));
  EXPECT_TRUE(outbound::StsMxMatches(*p, "MX1.example.net"));
  EXPECT_FALSE(outbound::StsMxMatches(*p, "example.net"));      // the wildcard is one label
  EXPECT_FALSE(outbound::StsMxMatches(*p, "a.b.example.net"));  // ... exactly one
  EXPECT_FALSE(outbound::StsMxMatches(*p, "evil.example.com"));
  EXPECT_FALSE(outbound::ParseStsPolicy("version: STSv1\nmode: enforce\nmax_age: 1\n").ok());
  EXPECT_FALSE(outbound::ParseStsPolicy("mode: none\nmax_age: 1\n").ok());
  EXPECT_TRUE(outbound::ParseStsPolicy("version: STSv1\nmode: none\nmax_age: 1\n").ok());
  EXPECT_FALSE(outbound::ParseStsPolicy("version: STSv1\nmode: on\nmx: a\nmax_age: 1\n").ok());
  EXPECT_FALSE(
      outbound::ParseStsPolicy("version: STSv1\nmode: testing\nmx: a\nmax_age: 31557601\n").ok());
}

TEST(MtaSts, HttpResponse) {
  auto b = outbound::ParseStsHttpResponse(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello+junk");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(*b, "hello");
  EXPECT_FALSE(outbound::ParseStsHttpResponse(
                   "HTTP/1.1 301 Moved\r\nLocation: https://x/\r\nContent-Type: text/plain\r\n\r\n")
                   .ok());  // no redirects (section 3.3)
  EXPECT_FALSE(
      outbound::ParseStsHttpResponse("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nx").ok());
  EXPECT_FALSE(outbound::ParseStsHttpResponse("HTTP/1.1 200 OK\r\nContent-Type: text/plain").ok());
}

TEST(RelayAuth, ParsesOneLine) {
  auto c = outbound::ParseRelayCredentials("user@example.net:pa:ss\r\nignored\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->username, "user@example.net");
  EXPECT_EQ(c->password, "pa:ss");
  EXPECT_FALSE(outbound::ParseRelayCredentials("no colon\n").ok());
  EXPECT_FALSE(outbound::ParseRelayCredentials(":password").ok());
  EXPECT_FALSE(outbound::ParseRelayCredentials("user:").ok());
  EXPECT_FALSE(outbound::ParseRelayCredentials(std::string("us\0er:pw", 8)).ok());
  EXPECT_FALSE(outbound::ParseRelayCredentials("").ok());
}

TEST(RelayAuth, RefusesFilesOthersCanRead) {
  testing::TempDir dir;
  std::string path = dir.path() + "/creds";
  { std::ofstream(path) << "u:p\n"; }
  ::chmod(path.c_str(), 0644);
  auto c = outbound::LoadRelayCredentials(path);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("chmod 600"), std::string::npos);
  ::chmod(path.c_str(), 0600);
  c = outbound::LoadRelayCredentials(path);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->password, "p");
  std::string link = dir.path() + "/link";
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  EXPECT_FALSE(outbound::LoadRelayCredentials(link).ok());  // O_NOFOLLOW
}

TEST(DsnParams, MailAndRcptParameters) {
  auto mail = smtp::ParseCommand("MAIL FROM:<a@b.example> RET=hdrs ENVID=Q+2BR AUTH=<>");
  ASSERT_TRUE(mail.ok()) << mail.error().message;
  EXPECT_TRUE(mail->dsn);
  EXPECT_EQ(mail->ret, "HDRS");
  EXPECT_EQ(mail->envid, "Q+R");
  EXPECT_TRUE(mail->auth_param);
  auto rcpt = smtp::ParseCommand("RCPT TO:<c@d.example> NOTIFY=success,DELAY ORCPT=rfc822;c+40d");
  ASSERT_TRUE(rcpt.ok()) << rcpt.error().message;
  EXPECT_EQ(rcpt->notify, unsigned{smtp::kNotifySuccess | smtp::kNotifyDelay});
  EXPECT_EQ(rcpt->orcpt, "rfc822;c@d");
  // RFC 3461 section 4.1: NEVER alone; values known; no repeats.
  EXPECT_FALSE(smtp::ParseCommand("RCPT TO:<c@d> NOTIFY=NEVER,FAILURE").ok());
  EXPECT_FALSE(smtp::ParseCommand("RCPT TO:<c@d> NOTIFY=SOMETIMES").ok());
  EXPECT_FALSE(smtp::ParseCommand("RCPT TO:<c@d> NOTIFY=DELAY,DELAY").ok());
  EXPECT_FALSE(smtp::ParseCommand("MAIL FROM:<a@b> RET=ALL").ok());
  EXPECT_FALSE(smtp::ParseCommand("MAIL FROM:<a@b> ENVID=bad+zz").ok());
  EXPECT_FALSE(smtp::ParseCommand("RCPT TO:<c@d> ORCPT=noaddrtype").ok());
  // DSN parameters belong to their command.
  EXPECT_FALSE(smtp::ParseCommand("RCPT TO:<c@d> RET=FULL").ok());
  EXPECT_FALSE(smtp::ParseCommand("MAIL FROM:<a@b> NOTIFY=NEVER").ok());
}

TEST(Xtext, RoundTrip) {
  EXPECT_EQ(smtp::EncodeXtext("a+b=c d"), "a+2Bb+3Dc+20d");
  EXPECT_EQ(*smtp::DecodeXtext("a+2Bb+3Dc+20d"), "a+b=c d");
  EXPECT_FALSE(smtp::DecodeXtext("a+2").has_value());
  EXPECT_FALSE(smtp::DecodeXtext("a+2b").has_value());  // upper-case hex only
  EXPECT_FALSE(smtp::DecodeXtext("a=b").has_value());
}

TEST(Reply, MultiLineAndEnhancedCodes) {
  smtp::ReplyReader r;
  EXPECT_FALSE(*r.Feed("250-mx.example greets you"));
  EXPECT_FALSE(*r.Feed("250-SIZE 1000"));
  EXPECT_FALSE(*r.Feed("250-STARTTLS"));
  EXPECT_FALSE(*r.Feed("250-dsn"));
  EXPECT_TRUE(*r.Feed("250 8BITMIME"));
  smtp::Reply reply = r.Take();
  EXPECT_EQ(reply.code, 250);
  smtp::Extensions e = smtp::ParseEhlo(reply);
  EXPECT_TRUE(e.starttls && e.dsn && e.eight_bit_mime);
  EXPECT_FALSE(e.smtputf8);
  EXPECT_EQ(e.size, 1000u);

  EXPECT_TRUE(*r.Feed("550 5.1.1 <x@y>: no such user"));
  reply = r.Take();
  EXPECT_TRUE(reply.permanent());
  EXPECT_EQ(reply.Enhanced(), "5.1.1");
  EXPECT_EQ(reply.Text(), "550 5.1.1 <x@y>: no such user");
  EXPECT_TRUE(*r.Feed("421"));
  EXPECT_EQ(r.Take().Enhanced(), "");

  EXPECT_FALSE(r.Feed("25x oops").ok());
  smtp::ReplyReader r2;
  EXPECT_FALSE(*r2.Feed("451-a"));
  EXPECT_FALSE(r2.Feed("452 b").ok());  // the code changed mid-reply
  EXPECT_FALSE(smtp::ReplyReader().Feed("199 too low").ok());
}

TEST(DotStuff, StuffsLineStartsAndTerminates) {
  EXPECT_EQ(smtp::DotStuff(".a\r\nb\r\n..c\r\n"), "..a\r\nb\r\n...c\r\n.\r\n");
  EXPECT_EQ(smtp::DotStuff("no newline"), "no newline\r\n.\r\n");
  EXPECT_EQ(smtp::DotStuff(""), ".\r\n");
  EXPECT_EQ(smtp::DotStuff("."), "..\r\n.\r\n");
  EXPECT_EQ(smtp::DotStuff("\n.\n."), "\n..\n..\r\n.\r\n");
  EXPECT_EQ(smtp::DotStuff("a\r\n.\r\n"), "a\r\n..\r\n.\r\n");
}

// The line-wise DotStuff equals the character-wise rule (RFC 5321 section
// 4.5.2) on every string of '.', '\r', '\n' and 'x' up to 7 characters.
TEST(DotStuff, EqualsTheCharacterRule) {
  auto rule = [](std::string_view content) {
    std::string out;
    bool line_start = true;
    for (char c : content) {
      if (line_start && c == '.') out.push_back('.');
      out.push_back(c);
      line_start = c == '\n';
    }
    if (!out.empty() && !line_start) out += "\r\n";
    return out + ".\r\n";
  };
  const char alphabet[] = {'.', '\r', '\n', 'x'};
  for (size_t len = 0; len <= 7; ++len) {
    size_t count = size_t{1} << (2 * len);
    for (size_t k = 0; k < count; ++k) {
      std::string s;
      for (size_t i = 0, v = k; i < len; ++i, v >>= 2) s.push_back(alphabet[v & 3]);
      ASSERT_EQ(smtp::DotStuff(s), rule(s)) << s;
    }
  }
}

TEST(DnsRdata, MxAndAddresses) {
  std::string mx(
      "\x00\x0a\x02mx\x06Remote\x07"
      "example\x00",
      21);
  auto rec = dns::ParseMx(mx);
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->preference, 10);
  EXPECT_EQ(rec->host, "mx.remote.example");
  EXPECT_FALSE(dns::ParseMx(std::string("\x00\x05\xc0\x0c", 4)).has_value());  // pointer
  EXPECT_FALSE(dns::ParseMx(mx + "x").has_value());                            // trailing byte
  auto null_mx = dns::ParseMx(std::string("\x00\x00\x00", 3));
  ASSERT_TRUE(null_mx.has_value());
  EXPECT_TRUE(dns::IsNullMx({*null_mx}));
  EXPECT_FALSE(dns::IsNullMx({*rec}));
  EXPECT_EQ(*dns::ParseAddress(std::string("\x7f\x00\x00\x01", 4)), "127.0.0.1");
  EXPECT_EQ(*dns::ParseAddress(std::string(15, '\0') + "\x01"), "::1");
  EXPECT_FALSE(dns::ParseAddress("abc").has_value());
  auto sorted = dns::SortMx({{20, "b"}, {10, "a"}, {20, "c"}, {5, "z"}}, 42);
  ASSERT_EQ(sorted.size(), 4u);
  EXPECT_EQ(sorted[0].host, "z");
  EXPECT_EQ(sorted[1].host, "a");
  EXPECT_EQ(sorted[3].preference, 20);
}

TEST(DnsRdata, Txt) {
  // RFC 1035 section 3.3.14: character-strings, concatenated (RFC 7208 section 3.3).
  EXPECT_EQ(*dns::ParseTxt(std::string("\x07v=spf1 \x04-all", 13)), "v=spf1 -all");
  EXPECT_EQ(*dns::ParseTxt(std::string("\x00", 1)), "");
  EXPECT_FALSE(dns::ParseTxt("").has_value());
  EXPECT_FALSE(dns::ParseTxt(std::string("\x05"
                                         "abc",
                                         4))
                   .has_value());  // runs past the end
}

TEST(TlsPolicy, LevelsAndConfigLookup) {
  for (auto l : {outbound::TlsLevel::kNone, outbound::TlsLevel::kMay, outbound::TlsLevel::kEncrypt,
                 outbound::TlsLevel::kVerify}) {
    EXPECT_EQ(outbound::ParseTlsLevel(outbound::TlsLevelName(l)), l);
  }
  EXPECT_FALSE(outbound::ParseTlsLevel("always").has_value());
  auto cfg = std::make_shared<config::Config>();
  cfg->outbound.tls_policy["bank.example"] = "verify";
  server::ConfigSource source(cfg);
  outbound::ConfigTlsPolicy policy(source);
  EXPECT_EQ(policy.For("Bank.Example"), outbound::TlsLevel::kVerify);
  EXPECT_EQ(policy.For("other.example"), outbound::TlsLevel::kMay);
  auto no_tls = std::make_shared<config::Config>(*cfg);
  no_tls->outbound.starttls = false;
  source.Set(no_tls);
  EXPECT_EQ(policy.For("other.example"), outbound::TlsLevel::kNone);
  EXPECT_EQ(policy.For("bank.example"), outbound::TlsLevel::kVerify);
}

TEST(Dsn, FailureReportStructure) {
  outbound::DsnInput in;
  in.reporting_mta = "mail.example.test";
  in.from = "MAILER-DAEMON@mail.example.test";
  in.to = "alice@example.test";
  in.envid = "env-7";
  in.arrival = 1700000000;
  in.now = 1700000100;
  in.original = "Subject: hi\r\n\r\nbody\r\n";
  in.boundary = "B";
  in.message_id = "<x@y>";
  in.recipients.push_back({"carol@remote.example", "rfc822;carol@remote.example", "failed",
                           "550 5.1.1 no such user", "mx.remote.example", 1700000100, 0});
  std::string dsn = outbound::BuildDsn(in);
  EXPECT_NE(dsn.find("Content-Type: multipart/report; report-type=delivery-status"),
            std::string::npos);
  EXPECT_NE(dsn.find("Original-Envelope-Id: env-7\r\n"), std::string::npos);
  EXPECT_NE(dsn.find("Final-Recipient: rfc822; carol@remote.example\r\n"), std::string::npos);
  EXPECT_NE(dsn.find("Original-Recipient: rfc822;carol@remote.example\r\n"), std::string::npos);
  EXPECT_NE(dsn.find("Action: failed\r\nStatus: 5.1.1\r\n"), std::string::npos);
  EXPECT_NE(dsn.find("Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"), std::string::npos);
  EXPECT_NE(dsn.find("Content-Type: message/rfc822\r\n\r\nSubject: hi\r\n\r\nbody\r\n"),
            std::string::npos);
  EXPECT_NE(dsn.find("\r\n--B--\r\n"), std::string::npos);
  in.headers_only = true;
  dsn = outbound::BuildDsn(in);
  EXPECT_NE(dsn.find("text/rfc822-headers\r\n\r\nSubject: hi\r\n\r\n"), std::string::npos);
  EXPECT_EQ(dsn.find("body\r\n"), std::string::npos);

  EXPECT_EQ(outbound::StatusOf("4.4.7 message expired", true), "4.4.7");
  EXPECT_EQ(outbound::StatusOf("451 try later", false), "4.0.0");
  EXPECT_EQ(outbound::StatusOf("cannot connect", true), "5.0.0");
}

class QueueStoreTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    if (!where_.Prepare()) GTEST_SKIP() << testing::kNoPostgres;
    auto s = where_.Open(store::StoreOptions{});
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
    ASSERT_TRUE(store_->AddDomain("example.test").ok());
    ASSERT_TRUE(store_->AddAccount("alice@example.test", "h").ok());
    alice_ = store_->FindAccount("alice@example.test")->id;
  }

  Result<store::DeliveryReceipt> Deliver(store::DeliveryRequest req) {
    return store::Wait<store::DeliveryReceipt>([&](store::Done<store::DeliveryReceipt> done) {
      store_->Deliver(std::move(req), std::move(done));
    });
  }

  int64_t Queue(std::vector<std::string> rcpts, std::vector<int64_t> local = {}) {
    store::DeliveryRequest req;
    req.return_path = "alice@example.test";
    req.account_ids = local;
    req.content = "Return-Path: <alice@example.test>\r\nSubject: x\r\n\r\nbody\r\n";
    req.received_at = 1700000000;
    req.submitted_by = alice_;
    store::OutboundRequest out;
    out.content = "Subject: x\r\n\r\nbody\r\n";
    out.sender = "alice@example.test";
    for (auto& r : rcpts) out.recipients.push_back({r, 0, ""});
    req.outbound = std::move(out);
    auto receipt = Deliver(std::move(req));
    EXPECT_TRUE(receipt.ok());
    return receipt->queue_id;
  }

  Status Record(std::vector<store::RecipientOutcome> o) {
    return store::Wait<void>(
        [&](store::Done<void> done) { store_->RecordOutcomes(std::move(o), std::move(done)); });
  }

  testing::TestStoreLocation where_{GetParam()};
  std::unique_ptr<store::Store> store_;
  int64_t alice_ = 0;
};
HATO_STORE_BACKENDS(QueueStoreTest);

TEST_P(QueueStoreTest, LocalCopyAndQueueEntryCommitTogether) {
  int64_t qid = Queue({"carol@Remote.Example", "dave@other.example"}, {alice_});
  ASSERT_NE(qid, 0);
  EXPECT_EQ(store_->ListMessages(alice_, "INBOX")->messages.size(), 1u);
  auto q = store_->GetQueued(qid);
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->recipients.size(), 2u);
  EXPECT_EQ(q->recipients[0].domain, "remote.example");
  EXPECT_EQ(*store_->ReadQueuedContent(qid), "Subject: x\r\n\r\nbody\r\n");
  EXPECT_EQ(*store_->CountSubmissions(alice_, 0), 1u);
  EXPECT_EQ(*store_->CountSubmissions(alice_, std::time(nullptr) + 10), 0u);
  auto due = store_->ListDueOutbound(std::time(nullptr), 100);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].recipients.size(), 2u);
  // The queue entry's reference to the body counts: `hato verify` is clean.
  auto report = store_->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->problems.empty()) << report->problems[0];
}

TEST_P(QueueStoreTest, OutcomesDsnAndRemoval) {
  int64_t qid = Queue({"carol@remote.example", "dave@other.example"});
  auto q = *store_->GetQueued(qid);
  int64_t now = std::time(nullptr);
  store::RecipientOutcome delivered{q.recipients[0].id,
                                    store::RecipientState::kDelivered,
                                    "250 ok",
                                    0,
                                    store::DsnPending::kNone,
                                    true};
  store::RecipientOutcome deferred{q.recipients[1].id, store::RecipientState::kQueued, "451 later",
                                   now + 600,          store::DsnPending::kNone,       true};
  ASSERT_TRUE(Record({delivered, deferred}).ok());
  q = *store_->GetQueued(qid);
  EXPECT_EQ(q.recipients[0].state, store::RecipientState::kDelivered);
  EXPECT_EQ(q.recipients[1].attempts, 1);
  EXPECT_EQ(q.recipients[1].last_error, "451 later");
  EXPECT_TRUE(store_->ListDueOutbound(now, 100)->empty());  // not due for 10 minutes
  // A delivered recipient is never attempted again, even when told to.
  ASSERT_TRUE(Record({{q.recipients[0].id, store::RecipientState::kQueued, "x", 0,
                       store::DsnPending::kNone, true}})
                  .ok());
  EXPECT_EQ(store_->GetQueued(qid)->recipients[0].state, store::RecipientState::kDelivered);

  store::RecipientOutcome failed{q.recipients[1].id,
                                 store::RecipientState::kFailed,
                                 "550 no",
                                 0,
                                 store::DsnPending::kFailure,
                                 true};
  ASSERT_TRUE(Record({failed}).ok());
  // Final, but a report is owed: the message stays until the DSN is stored.
  auto owed = store_->ListPendingDsn(10);
  ASSERT_EQ(owed->size(), 1u);
  ASSERT_EQ((*owed)[0].recipients.size(), 1u);
  store::DeliveryRequest dsn;
  dsn.account_ids = {alice_};
  dsn.content = "Return-Path: <>\r\nSubject: report\r\n\r\n";
  dsn.dsn_for = {q.recipients[1].id};
  ASSERT_TRUE(Deliver(std::move(dsn)).ok());
  EXPECT_TRUE(store_->ListPendingDsn(10)->empty());
  EXPECT_FALSE(store_->GetQueued(qid).ok());  // left the queue
  EXPECT_TRUE(store_->ListQueue()->empty());
}

TEST_P(QueueStoreTest, QueueStatsCountPendingRecipientsAndOldest) {
  auto empty = store_->GetQueueStats();
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->messages, 0u);
  EXPECT_EQ(empty->queued, 0u);
  EXPECT_EQ(empty->oldest_created_at, 0);
  int64_t first = Queue({"carol@remote.example", "dave@other.example"});
  int64_t second = Queue({"erin@remote.example"});
  ASSERT_TRUE(store_->ApplyQueueAction(second, store::QueueAction::kHold).ok());
  auto q = *store_->GetQueued(first);
  ASSERT_TRUE(Record({{q.recipients[0].id, store::RecipientState::kDelivered, "250 ok", 0,
                       store::DsnPending::kNone, true}})
                  .ok());
  auto stats = store_->GetQueueStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->messages, 2u);
  EXPECT_EQ(stats->queued, 1u);                     // dave; carol was delivered
  EXPECT_EQ(stats->held, 1u);                       // erin
  EXPECT_EQ(stats->oldest_created_at, 1700000000);  // the fixture's received_at
  EXPECT_EQ(stats->oldest_created_at, store_->GetQueued(first)->created_at);
  ASSERT_TRUE(store_->ApplyQueueAction(first, store::QueueAction::kDelete).ok());
  ASSERT_TRUE(store_->ApplyQueueAction(second, store::QueueAction::kDelete).ok());
  stats = store_->GetQueueStats();
  EXPECT_EQ(stats->messages, 0u);
  EXPECT_EQ(stats->held, 0u);
  EXPECT_EQ(stats->oldest_created_at, 0);
}

TEST_P(QueueStoreTest, AdminActions) {
  int64_t qid = Queue({"carol@remote.example"});
  ASSERT_TRUE(store_->ApplyQueueAction(qid, store::QueueAction::kHold).ok());
  EXPECT_EQ(store_->GetQueued(qid)->recipients[0].state, store::RecipientState::kHeld);
  EXPECT_TRUE(store_->ListDueOutbound(std::time(nullptr) + 10, 10)->empty());
  ASSERT_TRUE(store_->ApplyQueueAction(qid, store::QueueAction::kRelease).ok());
  EXPECT_EQ(store_->ListDueOutbound(std::time(nullptr) + 1, 10)->size(), 1u);
  ASSERT_TRUE(store_->ApplyQueueAction(qid, store::QueueAction::kDelete).ok());
  EXPECT_TRUE(store_->ListQueue()->empty());
  auto st = store_->ApplyQueueAction(qid, store::QueueAction::kRetry);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kNotFound);
}

// An admin retry or release asked while an attempt is in flight is not
// lost when that attempt ends deferred: the deferral keeps the recipient due
// (its next_attempt_at an hour away would have swallowed the request). The
// attempt made for the retry is then deferred as usual.
TEST_P(QueueStoreTest, DeferralKeepsAnAttemptAskedDuringIt) {
  int64_t qid = Queue({"carol@remote.example"});
  int64_t now = std::time(nullptr);
  auto defer = [&](const store::QueuedRecipient& r) {
    store::RecipientOutcome o;
    o.recipient_id = r.id;
    o.state = store::RecipientState::kQueued;
    o.diagnostic = "451 4.3.0 try again later";
    o.next_attempt_at = now + 3600;
    o.retry_requests = r.retry_requests;  // as read when the attempt began
    return Record({o});
  };
  auto begin = [&]() -> store::QueuedRecipient {
    auto due = store_->ListDueOutbound(now + 1, 10);
    EXPECT_TRUE(due.ok());
    if (!due.ok() || due->size() != 1) return {};
    return (*due)[0].recipients.at(0);
  };
  store::QueuedRecipient first = begin();
  ASSERT_NE(first.id, 0);
  ASSERT_TRUE(store_->ApplyQueueAction(qid, store::QueueAction::kRetry).ok());  // meanwhile
  ASSERT_TRUE(defer(first).ok());
  store::QueuedRecipient retried = begin();  // still due: the retry stands
  ASSERT_EQ(retried.id, first.id);
  EXPECT_EQ(retried.attempts, 1);
  ASSERT_TRUE(defer(retried).ok());  // nothing asked meanwhile: an hour away
  EXPECT_TRUE(store_->ListDueOutbound(now + 1, 10)->empty());
  EXPECT_EQ(store_->GetQueued(qid)->recipients[0].next_attempt_at, now + 3600);

  // The same for a release: held and released while an attempt runs.
  ASSERT_TRUE(store_->ApplyQueueAction(qid, store::QueueAction::kRetry).ok());
  store::QueuedRecipient third = begin();
  ASSERT_NE(third.id, 0);
  ASSERT_TRUE(store_->ApplyQueueAction(qid, store::QueueAction::kHold).ok());
  ASSERT_TRUE(store_->ApplyQueueAction(qid, store::QueueAction::kRelease).ok());
  ASSERT_TRUE(defer(third).ok());
  EXPECT_EQ(begin().id, third.id);
  EXPECT_EQ(store_->GetQueued(qid)->recipients[0].attempts, 3);
}

}  // namespace
}  // namespace hato
