// The pure parts of mailing lists (src/lists/proto.h).
#include <gtest/gtest.h>

#include "lists/engine.h"
#include "lists/proto.h"

namespace hato::lists {
namespace {

TEST(ListAddress, Forms) {
  auto a = ParseListLocal("team");
  EXPECT_EQ(a.kind, AddressKind::kPost);
  EXPECT_EQ(a.list_local, "team");
  a = ParseListLocal("team+join");
  EXPECT_EQ(a.kind, AddressKind::kJoin);
  EXPECT_EQ(a.list_local, "team");
  EXPECT_EQ(ParseListLocal("team+unsubscribe").kind, AddressKind::kLeave);
  a = ParseListLocal("my-team+confirm-00ff");
  EXPECT_EQ(a.kind, AddressKind::kConfirm);
  EXPECT_EQ(a.list_local, "my-team");
  EXPECT_EQ(a.arg, "00ff");
  a = ParseListLocal("team-bounces+bob=remote.example");
  EXPECT_EQ(a.kind, AddressKind::kBounces);
  EXPECT_EQ(a.list_local, "team");
  EXPECT_EQ(a.arg, "bob@remote.example");
  // An unknown extension is a post to a list named with it (it will not exist).
  EXPECT_EQ(ParseListLocal("team+other").list_local, "team+other");
}

TEST(ListAddress, VerpRoundTrip) {
  std::string v = VerpAddress("team-bounces@example.test", "o'neil+x=y@remote.example");
  EXPECT_EQ(v, "team-bounces+o%27neil%2Bx%3Dy=remote.example@example.test");
  auto a = ParseListLocal(v.substr(0, v.rfind('@')));
  EXPECT_EQ(a.kind, AddressKind::kBounces);
  EXPECT_EQ(a.arg, "o'neil+x=y@remote.example");
  EXPECT_EQ(VerpMember("nodomain"), "");
  EXPECT_EQ(VerpMember("bad%zz=x.example"), "");
}

TEST(ListCsv, ErrorsPerLineValidOnesKept) {
  auto r = ParseMembersCsv(
      "Address,Name,Roles\r\n"
      "a@x.example,\"Smith, A\",owner|member\r\n"
      "not-an-address\r\n"
      "\r\n"
      "# comment\r\n"
      "A@X.example,dup\r\n"
      "b@x.example,\"multi\nline\"\r\n"
      "c@x.example,,chief\r\n"
      "d@x.example,\"open\r\n");
  ASSERT_EQ(r.members.size(), 2u);
  EXPECT_EQ(r.members[0].address, "a@x.example");
  EXPECT_EQ(r.members[0].name, "Smith, A");
  EXPECT_EQ(r.members[0].roles, "owner|member");
  EXPECT_EQ(r.members[1].name, "multi\nline");
  ASSERT_EQ(r.errors.size(), 4u);
  EXPECT_EQ(r.errors[0].line, 3u);
  EXPECT_EQ(r.errors[1].line, 6u);
  EXPECT_NE(r.errors[1].message.find("duplicate"), std::string::npos);
  EXPECT_EQ(r.errors[2].line, 9u);
  EXPECT_EQ(r.errors[3].line, 10u);
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
}

TEST(ListDsn, FailedRecipientAndEnvid) {
  std::string dsn =
      "From: MAILER-DAEMON@mx\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
      "--b\r\nContent-Type: text/plain\r\n\r\nsorry\r\n"
      "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
      "Reporting-MTA: dns; mx\r\nOriginal-Envelope-Id: post-12\r\n\r\n"
      "Final-Recipient: rfc822; <Bob@Remote.example>\r\nAction: failed\r\nStatus: 5.1.1\r\n"
      "Diagnostic-Code: smtp; 550 5.1.1\r\n  user unknown\r\n\r\n"
      "Final-Recipient: rfc822; carol@remote.example\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
      "\r\n--b--\r\n";
  DsnReport r = ParseDsn(dsn);
  EXPECT_TRUE(r.is_dsn);
  EXPECT_EQ(r.envid, "post-12");
  ASSERT_EQ(r.recipients.size(), 2u);
  EXPECT_EQ(r.recipients[0].final_recipient, "bob@remote.example");
  EXPECT_EQ(r.recipients[0].action, "failed");
  EXPECT_EQ(r.recipients[0].status, "5.1.1");
  EXPECT_EQ(r.recipients[0].diagnostic, "smtp; 550 5.1.1  user unknown");
  EXPECT_EQ(r.recipients[1].action, "delayed");
  EXPECT_FALSE(ParseDsn("Subject: hi\r\n\r\nnot a report\r\n").is_dsn);
}

TEST(ListPost, HeadersLoopAndDmarcRewrite) {
  PostHeaders h;
  h.list_address = "team@example.test";
  std::string in =
      "Return-Path: <x@y>\r\nFrom: \"Ann\" <ann@strict.example>\r\nList-Id: <evil.example>\r\n"
      "Subject: hi\r\n\r\nbody\r\n";
  std::string out = BuildPost(in, h);
  EXPECT_EQ(out.find("Return-Path"), std::string::npos);
  EXPECT_EQ(out.find("evil.example"), std::string::npos);
  EXPECT_NE(out.find("List-Id: team <team.example.test>\r\n"), std::string::npos);
  EXPECT_NE(out.find("List-Post: <mailto:team@example.test>\r\n"), std::string::npos);
  EXPECT_EQ(out.find("List-Unsubscribe-Post"), std::string::npos);  // no https URL given
  EXPECT_NE(out.find("List-Unsubscribe: <mailto:team+leave@example.test?subject=unsubscribe>\r\n"),
            std::string::npos);
  EXPECT_NE(out.find("From: \"Ann\" <ann@strict.example>\r\n"), std::string::npos);
  EXPECT_TRUE(out.size() >= 8 && out.substr(out.size() - 8) == "\r\nbody\r\n");
  EXPECT_TRUE(IsOwnPost(out, "team@example.test"));
  EXPECT_FALSE(IsOwnPost(in, "team@example.test"));
  h.rewrite_from = true;
  h.announce = true;
  h.per_member_unsubscribe = true;  // added per copy (MemberUnsubscribeFields)
  out = BuildPost(in, h);
  EXPECT_EQ(out.find("List-Unsubscribe"), std::string::npos);
  EXPECT_NE(out.find("From: \"Ann via team\" <team@example.test>\r\n"), std::string::npos);
  EXPECT_NE(out.find("Reply-To: \"Ann\" <ann@strict.example>\r\n"), std::string::npos);
  EXPECT_NE(out.find("X-Original-From: \"Ann\" <ann@strict.example>\r\n"), std::string::npos);
  EXPECT_NE(out.find("List-Post: NO\r\n"), std::string::npos);
}

TEST(ListModeration, Decision) {
  EXPECT_EQ(ModerationDecision("Subject: Re: x\r\n\r\nApprove.\r\n> quoted\r\n"), true);
  EXPECT_EQ(ModerationDecision("Subject: Re: x\r\n\r\n> approve\r\n\r\nreject\r\n"), false);
  EXPECT_EQ(ModerationDecision("Subject: Re: x\r\n\r\n承認します\r\n"), true);
  EXPECT_EQ(ModerationDecision("Subject: Re: approve\r\n\r\n"), true);
  EXPECT_EQ(ModerationDecision("Subject: Re: x\r\n\r\nmaybe\r\n"), std::nullopt);
  EXPECT_TRUE(IsAutomatic("Auto-Submitted: auto-replied\r\n\r\n"));
  EXPECT_FALSE(IsAutomatic("Auto-Submitted: no\r\n\r\n"));
}

TEST(ListUnsubscribe, TokenIsPerMemberAndNeedsTheKey) {
  const std::string key = "0123456789abcdef0123456789abcdef";
  std::string t = UnsubscribeToken(key, "Team@Example.test", "dan@far.example");
  auto target = CheckUnsubscribeToken(key, t);
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(target->list, "team@example.test");
  EXPECT_EQ(target->member, "dan@far.example");
  // URL-safe: no characters to escape in a query.
  EXPECT_EQ(
      t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
      std::string::npos);
  EXPECT_NE(t, UnsubscribeToken(key, "team@example.test", "carol@far.example"));
  EXPECT_FALSE(CheckUnsubscribeToken("another key of enough length....", t));
  // Another member's names with this MAC, a changed MAC, junk.
  std::string other = UnsubscribeToken(key, "team@example.test", "carol@far.example");
  EXPECT_FALSE(
      CheckUnsubscribeToken(key, other.substr(0, other.rfind('.')) + t.substr(t.rfind('.'))));
  std::string flipped = t;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  EXPECT_FALSE(CheckUnsubscribeToken(key, flipped));
  EXPECT_FALSE(CheckUnsubscribeToken(key, ""));
  EXPECT_FALSE(CheckUnsubscribeToken(key, "."));
  EXPECT_FALSE(CheckUnsubscribeToken(key, "abc.def"));
  EXPECT_FALSE(
      CheckUnsubscribeToken(key, std::string(5000, 'a') + "." + t.substr(t.rfind('.') + 1)));
}

TEST(ListUnsubscribe, FieldsUrlAndOneClickBody) {
  EXPECT_EQ(UnsubscribeUrl("https://h/lists/unsubscribe", "T"),
            "https://h/lists/unsubscribe?token=T");
  EXPECT_EQ(UnsubscribeUrl("https://h/u?x=1", "T"), "https://h/u?x=1&token=T");
  EXPECT_EQ(MemberUnsubscribeFields("team@example.test", "https://h/u?token=T"),
            "List-Unsubscribe: <https://h/u?token=T>,\r\n "
            "<mailto:team+leave@example.test?subject=unsubscribe>\r\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
  EXPECT_EQ(MemberUnsubscribeFields("team@example.test", ""),
            "List-Unsubscribe: <mailto:team+leave@example.test?subject=unsubscribe>\r\n");
  // RFC 8058 section 3.2: the body, form-urlencoded or multipart/form-data.
  EXPECT_TRUE(IsOneClickPost("application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"));
  EXPECT_TRUE(IsOneClickPost("", "a=b&List-Unsubscribe=One%2DClick"));
  EXPECT_FALSE(IsOneClickPost("application/x-www-form-urlencoded", "List-Unsubscribe=Yes"));
  EXPECT_FALSE(IsOneClickPost("text/plain", "List-Unsubscribe=One-Click"));
  EXPECT_TRUE(IsOneClickPost("multipart/form-data; boundary=b",
                             "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\""
                             "\r\n\r\nOne-Click\r\n--b--\r\n"));
  EXPECT_FALSE(IsOneClickPost("multipart/form-data; boundary=b", "--b\r\n\r\nOne-Click\r\n"));
  // Pages: escaped names; only the confirm page has the form.
  std::string page =
      RenderUnsubscribePage(UnsubscribePage::kConfirm, false, "team@x", "<b>@x", "/u?token=\"T");
  EXPECT_NE(page.find("&lt;b&gt;@x"), std::string::npos);
  EXPECT_NE(page.find("action=\"/u?token=&quot;T\""), std::string::npos);
  EXPECT_NE(page.find("value=\"One-Click\""), std::string::npos);
  page = RenderUnsubscribePage(UnsubscribePage::kDone, true, "team@x", "a@x", "");
  EXPECT_NE(page.find("lang=\"ja\""), std::string::npos);
  EXPECT_EQ(page.find("<form"), std::string::npos);
}

TEST(ListLanguage, FromTags) {
  EXPECT_EQ(LanguageFromTags(""), MailLanguage::kBoth);
  EXPECT_EQ(LanguageFromTags("ja"), MailLanguage::kJapanese);
  EXPECT_EQ(LanguageFromTags("en"), MailLanguage::kEnglish);
  EXPECT_EQ(LanguageFromTags("ja-JP, en;q=0.5"), MailLanguage::kJapanese);
  EXPECT_EQ(LanguageFromTags("fr, EN-gb;q=0.8, ja;q=0.7"), MailLanguage::kEnglish);
  // q=0 refuses a range; "jav" (Javanese) and "eng-x" are other languages.
  EXPECT_EQ(LanguageFromTags("ja;q=0, en"), MailLanguage::kEnglish);
  EXPECT_EQ(LanguageFromTags("en; q=0.000 ,ja"), MailLanguage::kJapanese);
  EXPECT_EQ(LanguageFromTags("jav, fr, *"), MailLanguage::kBoth);
}

TEST(ListLanguage, AccountFirstThenTheRequest) {
  const std::string ja_request =
      "From: a@b.example\r\nAccept-Language: ja, en;q=0.3\r\nSubject: join\r\n\r\n";
  const std::string en_content =
      "From: a@b.example\r\nContent-Language: en-US\r\nSubject: join\r\n\r\n";
  EXPECT_EQ(ChooseMailLanguage("", ja_request), MailLanguage::kJapanese);
  EXPECT_EQ(ChooseMailLanguage("en", ja_request), MailLanguage::kEnglish);
  EXPECT_EQ(ChooseMailLanguage("ja", ""), MailLanguage::kJapanese);
  EXPECT_EQ(ChooseMailLanguage("", en_content), MailLanguage::kEnglish);
  EXPECT_EQ(ChooseMailLanguage("", "From: a@b.example\r\n\r\nhello\r\n"), MailLanguage::kBoth);
  // In the body it is no header.
  EXPECT_EQ(ChooseMailLanguage("", "From: a@b\r\n\r\nAccept-Language: ja\r\n"),
            MailLanguage::kBoth);
}

TEST(ListLanguage, MailsInOneLanguageOrBoth) {
  store::ListInfo list;
  list.address = "team@example.test";
  auto en = ConfirmMail(list, "a@b.example", true, MailLanguage::kEnglish);
  auto ja = ConfirmMail(list, "a@b.example", true, MailLanguage::kJapanese);
  auto both = ConfirmMail(list, "a@b.example", true, MailLanguage::kBoth);
  EXPECT_NE(en.body.find("reply to this message"), std::string::npos);
  EXPECT_EQ(en.body.find("返信"), std::string::npos);
  EXPECT_EQ(en.subject, "Confirm: join team@example.test");
  EXPECT_NE(ja.body.find("返信"), std::string::npos);
  EXPECT_EQ(ja.body.find("reply"), std::string::npos);
  EXPECT_EQ(ja.subject.find("Confirm"), std::string::npos);
  EXPECT_LT(both.body.find("reply to this message"), both.body.find("返信"));
  for (auto lang : {MailLanguage::kEnglish, MailLanguage::kJapanese}) {
    for (const auto& m :
         {WelcomeMail(list, "a@b.example", lang), LeftMail(list, "a@b.example", lang),
          HelpMail(list, lang), ModerationMail(list, "p@q.example", "S", "why", 7, lang)}) {
      bool has_japanese = m.body.find("\xE3") != std::string::npos;  // kana/kanji lead bytes
      EXPECT_EQ(has_japanese, lang == MailLanguage::kJapanese) << m.body;
      EXPECT_NE(m.body.find("team"), std::string::npos) << m.body;
    }
  }
  // The list's own text wins whatever the language.
  list.confirm_text = "ようこそ {address}";
  EXPECT_EQ(ConfirmMail(list, "a@b.example", true, MailLanguage::kEnglish).body,
            "ようこそ a@b.example");
}

}  // namespace
}  // namespace hato::lists
