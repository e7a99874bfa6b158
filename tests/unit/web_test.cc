// The web side's pure parts: the health judgement and status page, the
// admin notes file, client autoconfig, and the security helpers.
#include <gtest/gtest.h>

#include "web/autoconfig.h"
#include "web/escape.h"
#include "web/health.h"
#include "web/security.h"

namespace hato::web {
namespace {

HealthInputs Idle() {
  HealthInputs in;
  in.now = 1700000000;
  in.slow_commit_ms = 1000;
  in.last_commit_ms = 4;
  in.protocols = {
      {"smtp", true, true, 0, 100}, {"imap", true, false, 3, 100}, {"pop3", false, false, 0, 0}};
  return in;
}

TEST(Health, AllUpWhenCommitsAreQuick) {
  HealthSnapshot s = Assess(Idle());
  EXPECT_EQ(s.overall, Level::kUp);
  EXPECT_EQ(s.storage, Level::kUp);
  ASSERT_EQ(s.protocols.size(), 3u);
  EXPECT_EQ(s.protocols[0].level, Level::kUp);
  EXPECT_EQ(s.protocols[2].level, Level::kOff);
  EXPECT_EQ(s.commit_latency_ms, 4);
}

TEST(Health, StalledCommitIsDegraded) {
  HealthInputs in = Idle();
  in.store.commit_in_flight_ms = 1500;  // a delivery's commit waiting on fsync
  HealthSnapshot s = Assess(in);
  EXPECT_EQ(s.storage, Level::kDegraded);
  EXPECT_EQ(s.overall, Level::kDegraded);
  EXPECT_EQ(s.protocols[0].level, Level::kDegraded);
  EXPECT_EQ(s.commit_latency_ms, 1500);
  EXPECT_NE(s.storage_reason.find("waiting"), std::string::npos);
}

TEST(Health, StalledProbeOnAnIdleServerIsDegraded) {
  HealthInputs in = Idle();
  in.probe_in_flight_ms = 1200;
  EXPECT_EQ(Assess(in).overall, Level::kDegraded);
  in.probe_in_flight_ms = 900;  // not yet past store.slow_commit_ms
  EXPECT_EQ(Assess(in).overall, Level::kUp);
}

TEST(Health, FailingWritesAreDownForSmtpDegradedForReaders) {
  HealthInputs in = Idle();
  in.last_write_error = "fsync: Input/output error";
  HealthSnapshot s = Assess(in);
  EXPECT_EQ(s.storage, Level::kDown);
  EXPECT_EQ(s.protocols[0].level, Level::kDown);
  EXPECT_EQ(s.protocols[1].level, Level::kDegraded);
  EXPECT_EQ(s.overall, Level::kDown);
}

TEST(Health, DiskLowAndFullQueueAndConnectionLimit) {
  HealthInputs in = Idle();
  in.disk_low = true;
  EXPECT_EQ(Assess(in).storage, Level::kDegraded);
  in = Idle();
  in.max_pending_writes = 100;
  in.store.pending_writes = 60;
  EXPECT_EQ(Assess(in).storage, Level::kDegraded);
  in = Idle();
  in.protocols[1].live = 100;
  HealthSnapshot s = Assess(in);
  EXPECT_EQ(s.storage, Level::kUp);
  EXPECT_EQ(s.protocols[1].level, Level::kDegraded);
  EXPECT_EQ(s.overall, Level::kDegraded);
}

TEST(Health, StaleSnapshotIsDegraded) {
  HealthSnapshot s = Assess(Idle());
  EXPECT_EQ(AtTime(s, s.at + 2).overall, Level::kUp);
  EXPECT_EQ(AtTime(s, s.at + kStaleSnapshotSeconds + 1).overall, Level::kDegraded);
}

TEST(Health, NotesRoundTripAndLimits) {
  std::vector<Note> notes = {{1700000000, "We are restoring from backup."},
                             {1700000100, "復旧作業中です。\nmore"}};
  auto back = ParseNotes(FormatNotes(notes));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].text, "We are restoring from backup.");
  EXPECT_EQ(back[1].text, "復旧作業中です。 more");
  EXPECT_EQ(back[1].at, 1700000100);
  EXPECT_TRUE(ParseNotes("garbage\nx\ty\n\t\n").empty());
  std::string many;
  for (int i = 0; i < 50; ++i) many += "1\tnote\n";
  EXPECT_EQ(ParseNotes(many).size(), kMaxNotes);
  EXPECT_EQ(ParseNotes("1\t" + std::string(5000, 'a')).at(0).text.size(), kMaxNoteBytes);
}

TEST(Health, PageSaysDegradedAndEscapesNotes) {
  HealthInputs in = Idle();
  in.store.commit_in_flight_ms = 5000;
  in.notes = {{1700000000, "<script>alert(1)</script> back by 18:00"}};
  in.queue = store::QueueStats{7, 7, 0, 1699990000};
  HealthSnapshot s = Assess(in);
  std::string html = RenderStatusHtml(s, Lang::kEn);
  EXPECT_NE(html.find("data-state=\"degraded\""), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("5000 ms"), std::string::npos);
  std::string ja = RenderStatusHtml(s, Lang::kJa);
  EXPECT_NE(ja.find("lang=\"ja\""), std::string::npos);
  EXPECT_NE(ja.find("低下"), std::string::npos);
  std::string json = RenderStatusJson(s);
  EXPECT_NE(json.find("\"status\":\"degraded\""), std::string::npos);
  EXPECT_NE(json.find("\"messages\":7"), std::string::npos);
  EXPECT_NE(json.find("\"smtp\":{\"status\":\"degraded\""), std::string::npos);
}

TEST(Health, PickLang) {
  EXPECT_EQ(PickLang("ja,en-US;q=0.9"), Lang::kJa);
  EXPECT_EQ(PickLang("en-US,ja;q=0.5"), Lang::kEn);
  EXPECT_EQ(PickLang("fr, ja-JP"), Lang::kJa);
  EXPECT_EQ(PickLang(""), Lang::kEn);
}

TEST(Escape, JsonAndHtml) {
  EXPECT_EQ(JsonString("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
  EXPECT_EQ(JsonString("日本"), "\"日本\"");
  EXPECT_EQ(JsonString("\xff"), "\"\xEF\xBF\xBD\"");
  EXPECT_EQ(HtmlEscape("<a href='x'>&</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
}

config::Config DemoConfig() {
  config::Config c;
  c.hostname = "mail.example.test";
  c.listen.imap = "127.0.0.1:1143";
  c.listen.imaps = "0.0.0.0:993";
  c.listen.pop3 = "127.0.0.1:1110";
  c.listen.submission = "127.0.0.1:587";
  c.listen.submissions = "0.0.0.0:465";
  c.tls_cert = "tls/cert.pem";
  return c;
}

TEST(Autoconfig, ParseEmailAddress) {
  EXPECT_EQ(ParseEmailAddress("Alice@Example.TEST").value(), "Alice@example.test");
  EXPECT_EQ(ParseEmailAddress("a.b+c@x-y.example").value(), "a.b+c@x-y.example");
  for (const char* bad : {"", "@x", "a@", "a..b@x", ".a@x", "a@-x", "a@x..y", "a b@x", "a@x/y",
                          "<a>@x", "a@x\"", "a@x<script>"}) {
    EXPECT_FALSE(ParseEmailAddress(bad)) << bad;
  }
  EXPECT_FALSE(ParseEmailAddress(std::string(300, 'a') + "@x"));
}

TEST(Autoconfig, ThunderbirdDocument) {
  ClientSettings s = SettingsFor(DemoConfig(), "Example.TEST");
  ASSERT_EQ(s.incoming.size(), 3u);
  EXPECT_EQ(s.incoming[0].port, 993);
  EXPECT_EQ(s.incoming[0].socket, Socket::kSsl);
  EXPECT_EQ(s.incoming[1].socket, Socket::kStartTls);
  std::string xml = ThunderbirdXml(s, "alice@example.test");
  EXPECT_NE(xml.find("<clientConfig version=\"1.1\">"), std::string::npos);
  EXPECT_NE(xml.find("<emailProvider id=\"example.test\">"), std::string::npos);
  EXPECT_NE(xml.find("<incomingServer type=\"imap\">"), std::string::npos);
  EXPECT_NE(xml.find("<hostname>mail.example.test</hostname>"), std::string::npos);
  EXPECT_NE(xml.find("<port>465</port>"), std::string::npos);
  EXPECT_NE(xml.find("<socketType>SSL</socketType>"), std::string::npos);
  EXPECT_NE(xml.find("<username>alice@example.test</username>"), std::string::npos);
  EXPECT_NE(ThunderbirdXml(s, "").find("%EMAILADDRESS%"), std::string::npos);
  // Without a certificate the plain ports are advertised as plain.
  config::Config c = DemoConfig();
  c.tls_cert.clear();
  c.listen.imaps.clear();
  c.listen.submissions.clear();
  ClientSettings plain = SettingsFor(c, "example.test");
  EXPECT_EQ(plain.incoming[0].socket, Socket::kPlain);
  EXPECT_EQ(plain.outgoing[0].port, 587);
}

TEST(Autoconfig, AppleProfile) {
  ClientSettings s = SettingsFor(DemoConfig(), "example.test");
  std::string p = AppleMobileConfig(s, "alice@example.test");
  EXPECT_NE(p.find("<key>PayloadType</key><string>com.apple.mail.managed</string>"),
            std::string::npos);
  EXPECT_NE(p.find("<key>IncomingMailServerPortNumber</key><integer>993</integer>"),
            std::string::npos);
  EXPECT_NE(p.find("<key>OutgoingMailServerPortNumber</key><integer>465</integer>"),
            std::string::npos);
  EXPECT_EQ(p, AppleMobileConfig(s, "alice@example.test"));  // stable UUIDs
  EXPECT_NE(p, AppleMobileConfig(s, "bob@example.test"));
  EXPECT_EQ(p.find("assword</key><string"), std::string::npos);  // no password in it
}

TEST(Security, CookiesAndCsrf) {
  EXPECT_EQ(CookieValue("a=1; hato_session=tok; b=2", "hato_session").value(), "tok");
  EXPECT_FALSE(CookieValue("hato_sessionx=1", "hato_session"));
  std::string c = SessionCookie("tok", 3600, false);
  EXPECT_NE(c.find("HttpOnly"), std::string::npos);
  EXPECT_NE(c.find("SameSite=Strict"), std::string::npos);
  EXPECT_EQ(c.find("Secure"), std::string::npos);
  EXPECT_NE(SessionCookie("tok", 3600, true).find("; Secure"), std::string::npos);
  std::string csrf = CsrfTokenFor("tok");
  EXPECT_EQ(csrf, CsrfTokenFor("tok"));
  EXPECT_NE(csrf, CsrfTokenFor("tok2"));
  EXPECT_EQ(csrf.find_first_of("+/="), std::string::npos);
  EXPECT_TRUE(CsrfOk("http://127.0.0.1:8080", "127.0.0.1:8080", false, csrf, "tok"));
  EXPECT_FALSE(CsrfOk("http://evil.example", "127.0.0.1:8080", false, csrf, "tok"));
  EXPECT_FALSE(CsrfOk("", "127.0.0.1:8080", false, csrf, "tok"));
  EXPECT_FALSE(CsrfOk("null", "127.0.0.1:8080", false, csrf, "tok"));
  EXPECT_FALSE(CsrfOk("https://127.0.0.1:8080", "127.0.0.1:8080", false, csrf, "tok"));
  EXPECT_FALSE(CsrfOk("http://127.0.0.1:8080", "127.0.0.1:8080", false, csrf + "x", "tok"));
  EXPECT_FALSE(CsrfOk("http://127.0.0.1:8080", "127.0.0.1:8080", false, "", "tok"));
}

TEST(Security, NoOpenRedirects) {
  EXPECT_EQ(SafeRedirectPath("/settings"), "/settings");
  EXPECT_EQ(SafeRedirectPath("//evil.example/"), "/");
  EXPECT_EQ(SafeRedirectPath("/\\evil.example"), "/");
  EXPECT_EQ(SafeRedirectPath("https://evil.example"), "/");
  EXPECT_EQ(SafeRedirectPath("/a\r\nSet-Cookie: x"), "/");
  EXPECT_EQ(SafeRedirectPath(""), "/");
}

TEST(Security, CspHasNoInlineScript) {
  std::string_view csp = kWebmailCsp;
  size_t s = csp.find("script-src");
  ASSERT_NE(s, std::string_view::npos);
  std::string_view directive = csp.substr(s, csp.find(';', s) - s);
  EXPECT_EQ(directive.find("unsafe-inline"), std::string_view::npos);
  EXPECT_EQ(directive.find("unsafe-eval"), std::string_view::npos);
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string_view::npos);
}

}  // namespace
}  // namespace hato::web
