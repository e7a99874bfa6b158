// The scanners' pure pieces (issue 19): the HTTP response parser the rspamd
// client reads with (src/http/response.h), rspamd's and clamd's wire formats
// (src/scan/proto.h), the policy and trace fields (src/scan/policy.h), and
// which copies train rspamd (src/scan/trainer.h).
#include <gtest/gtest.h>

#include "http/response.h"
#include "scan/policy.h"
#include "scan/proto.h"
#include "scan/trainer.h"

namespace hato::scan {
namespace {

using http::ParseResponse;
using HttpVerdict = http::Verdict;

TEST(HttpResponse, ContentLengthChunkedAndToTheEnd) {
  auto r = ParseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello-extra", false, 4096,
                         1 << 20);
  ASSERT_EQ(r.verdict, HttpVerdict::kComplete);
  EXPECT_EQ(r.head.status, 200);
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(ParseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", false, 4096, 1 << 20)
                .verdict,
            HttpVerdict::kNeedMore);
  EXPECT_EQ(
      ParseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", true, 4096, 1 << 20).verdict,
      HttpVerdict::kBad);
  auto c = ParseResponse(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
      false, 4096, 1 << 20);
  ASSERT_EQ(c.verdict, HttpVerdict::kComplete);
  EXPECT_EQ(c.body, "abcde");
  auto e = ParseResponse("HTTP/1.0 200 OK\nServer: x\n\nall of it", false, 4096, 1 << 20);
  EXPECT_EQ(e.verdict, HttpVerdict::kNeedMore);
  e = ParseResponse("HTTP/1.0 200 OK\nServer: x\n\nall of it", true, 4096, 1 << 20);
  ASSERT_EQ(e.verdict, HttpVerdict::kComplete);
  EXPECT_EQ(e.body, "all of it");
  EXPECT_EQ(*e.head.Get("server"), "x");
  EXPECT_EQ(ParseResponse("HTTP/1.1 204 No Content\r\n\r\n", false, 4096, 1).verdict,
            HttpVerdict::kComplete);
}

TEST(HttpResponse, RefusesMalformedAndOversized) {
  for (const char* bad : {"HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "ICY 200 OK\r\n\r\n",
                          "HTTP/1.1 100 Continue\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: "
                          "3\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"}) {
    EXPECT_EQ(ParseResponse(bad, true, 4096, 1 << 20).verdict, HttpVerdict::kBad) << bad;
  }
  EXPECT_EQ(
      ParseResponse("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", false, 4096, 10).verdict,
      HttpVerdict::kTooLarge);
  EXPECT_EQ(
      ParseResponse(std::string("HTTP/1.1 200 OK\r\nX: ") + std::string(5000, 'a'), false, 4096, 10)
          .verdict,
      HttpVerdict::kTooLarge);
}

TEST(Rspamd, CheckRequestCarriesTheEnvelopeWithoutInjection) {
  Envelope env{"192.0.2.7", "mx.example", "a@b.example", {"c@d.example", "e@d.example"}, "0123abcd",
               ""};
  env.helo = "evil\r\nRcpt: x@y";
  std::string h = CheckRequestHead("127.0.0.1:11333", env, 42);
  EXPECT_EQ(h.rfind("POST /checkv2 HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(h.find("\r\nIP: 192.0.2.7\r\n"), std::string::npos);
  EXPECT_NE(h.find("\r\nFrom: a@b.example\r\n"), std::string::npos);
  EXPECT_NE(h.find("\r\nRcpt: c@d.example\r\nRcpt: e@d.example\r\n"), std::string::npos);
  EXPECT_NE(h.find("\r\nQueue-Id: 0123abcd\r\n"), std::string::npos);
  EXPECT_NE(h.find("\r\nHelo: evilRcpt: x@y\r\n"), std::string::npos);
  EXPECT_NE(h.find("\r\nContent-Length: 42\r\n"), std::string::npos);
  EXPECT_EQ(h.find("User:"), std::string::npos);
  EXPECT_EQ(h.substr(h.size() - 4), "\r\n\r\n");
  env.mail_from = "";
  EXPECT_NE(CheckRequestHead("h", env, 0).find("\r\nFrom: <>\r\n"), std::string::npos);
  std::string l = LearnRequestHead("h:1", true, "secret", 3);
  EXPECT_EQ(l.rfind("POST /learnspam HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(l.find("\r\nPassword: secret\r\n"), std::string::npos);
  EXPECT_EQ(LearnRequestHead("h:1", false, "", 3).rfind("POST /learnham ", 0), 0u);
}

TEST(Rspamd, ParsesItsReplies) {
  auto r =
      ParseCheckReply(R"({"is_skipped":false,"score":15.0,"required_score":15.0,"action":"reject",)"
                      R"("symbols":{"GTUBE":{"name":"GTUBE","score":0}},"time_real":0.25})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->action, "reject");
  EXPECT_DOUBLE_EQ(r->score, 15.0);
  EXPECT_DOUBLE_EQ(r->time_real, 0.25);
  EXPECT_EQ(r->symbols, (std::vector<std::string>{"GTUBE"}));
  EXPECT_FALSE(ParseCheckReply("not json").ok());
  EXPECT_FALSE(ParseCheckReply(R"({"score":1})").ok());
  EXPECT_FALSE(ParseCheckReply(R"({"error":"bad"})").ok());
  EXPECT_TRUE(ParseLearnReply(200, R"({"success":true})").ok());
  EXPECT_TRUE(ParseLearnReply(208, R"({"error":"already learned"})").ok());
  auto e = ParseLearnReply(403, R"({"error":"Unauthorized"})");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("Unauthorized"), std::string::npos);
}

TEST(Clamd, InstreamFramingAndReplies) {
  std::string req = InstreamRequest("abcde", 2);
  EXPECT_EQ(req, std::string("zINSTREAM\0"
                             "\0\0\0\2ab\0\0\0\2cd\0\0\0\1e\0\0\0\0",
                             10 + 6 + 6 + 5 + 4));
  EXPECT_EQ(InstreamRequest("", 2), std::string("zINSTREAM\0\0\0\0\0", 14));
  EXPECT_EQ(ParseClamdReply(std::string("stream: OK\0", 11)).kind, ClamdReply::Kind::kClean);
  auto f = ParseClamdReply(std::string("stream: Eicar-Test.Sig FOUND\0", 29));
  EXPECT_EQ(f.kind, ClamdReply::Kind::kFound);
  EXPECT_EQ(f.name, "Eicar-Test.Sig");
  EXPECT_EQ(ParseClamdReply("INSTREAM size limit exceeded. ERROR\n").kind,
            ClamdReply::Kind::kError);
  EXPECT_EQ(ParseClamdReply("").kind, ClamdReply::Kind::kError);
  EXPECT_EQ(ParseClamdReply("stream: \x01 FOUND").name, "unknown");
}

TEST(ScanPolicy, ActionsFollowTheConfiguration) {
  config::ScanConfig cfg;
  RspamdReply reply;
  reply.action = "reject";
  reply.score = 15;
  reply.required_score = 15;
  Verdict v;
  ApplySpam(cfg, reply, v);
  EXPECT_EQ(v.spam_action, SpamAction::kReject);
  EXPECT_TRUE(v.spam_scanned);
  cfg.on_reject = "junk";
  ApplySpam(cfg, reply, v);
  EXPECT_EQ(v.spam_action, SpamAction::kJunk);
  reply.action = "add header";
  cfg.on_spam = "mark";
  ApplySpam(cfg, reply, v);
  EXPECT_EQ(v.spam_action, SpamAction::kMark);
  reply.action = "soft reject";  // never held: no action
  ApplySpam(cfg, reply, v);
  EXPECT_EQ(v.spam_action, SpamAction::kNone);
  reply.action = "no action";
  reply.score = 9;
  cfg.spam_score = 8;
  ApplySpam(cfg, reply, v);
  EXPECT_EQ(v.spam_action, SpamAction::kMark);
  cfg.reject_score = 9;
  ApplySpam(cfg, reply, v);
  EXPECT_EQ(v.spam_action, SpamAction::kJunk);  // on_reject = junk
  reply.skipped = true;                         // GTUBE: rspamd skips the rest, the action stands
  reply.action = "reject";
  reply.score = 0;
  cfg.reject_score = 0;
  ApplySpam(cfg, reply, v);
  EXPECT_EQ(v.spam_action, SpamAction::kJunk);
}

TEST(ScanPolicy, TraceFieldsAndForgeries) {
  Verdict v;
  v.spam_scanned = true;
  v.spam_score = 7.2;
  v.spam_required = 15;
  v.spam_action = SpamAction::kMark;
  std::string f = ScanHeaderFields(v, {"ok", "unscanned (timed out\r\n)"});
  EXPECT_EQ(f,
            "X-Hato-Scan: spam=ok; virus=unscanned (timed out)\r\n"
            "X-Spam-Status: Yes, score=7.20 required=15.00\r\n"
            "X-Spam-Score: 7.20\r\nX-Spam-Flag: YES\r\n");
  EXPECT_EQ(ScanHeaderFields(Verdict{}, {}), "");
  std::string msg =
      "X-Spam-Flag: NO\r\nFrom: a\r\nx-hato-scan : spam=ok\r\n\tmore\r\nSubject: s\r\n"
      "X-Spam-Status: No\r\n\r\nX-Spam-Flag: body\r\n";
  EXPECT_EQ(RemoveScanHeaderFields(msg), "From: a\r\nSubject: s\r\n\r\nX-Spam-Flag: body\r\n");
  EXPECT_EQ(RemoveScanHeaderFields("From: a\r\n\r\nb"), "From: a\r\n\r\nb");
}

TEST(JunkTraining, IntoJunkIsSpamOutOfJunkIsHam) {
  std::vector<store::MailboxInfo> boxes(4);
  boxes[0].id = 1;  // INBOX
  boxes[1].id = 2;
  boxes[1].special_use = "\\Junk";
  boxes[2].id = 3;
  boxes[2].special_use = "\\Trash";
  boxes[3].id = 4;  // Work
  store::CopyResult c;
  c.dest_mailbox_id = 2;
  c.dest_ids = {10, 11};
  c.source_mailbox_ids = {1, 2};  // the second was already in Junk
  auto items = LearnItems(c, boxes);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].message_id, 10);
  EXPECT_TRUE(items[0].spam);
  c.dest_mailbox_id = 4;
  c.source_mailbox_ids = {2, 1};
  items = LearnItems(c, boxes);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].message_id, 10);
  EXPECT_FALSE(items[0].spam);
  c.dest_mailbox_id = 3;  // Junk -> Trash says nothing
  EXPECT_TRUE(LearnItems(c, boxes).empty());
}

}  // namespace
}  // namespace hato::scan
