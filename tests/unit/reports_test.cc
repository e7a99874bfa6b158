// The aggregate reports' pure half (src/reports/format.h): recorded lines,
// the RFC 8460 JSON, the RFC 7489 XML, rua parsing, gzip, the report mail.
#include <gtest/gtest.h>
#include <zlib.h>

#include <boost/json.hpp>

#include "reports/afrf.h"
#include "reports/format.h"

namespace hato::reports {
namespace {

namespace json = boost::json;

std::string Gunzip(const std::string& gz) {
  z_stream z{};
  inflateInit2(&z, 15 + 16);
  std::string out(1 << 20, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&z, Z_FINISH);
  out.resize(z.total_out);
  inflateEnd(&z);
  return rc == Z_STREAM_END ? out : "";
}

TlsSession Session(std::string result, std::string type = "sts") {
  TlsSession s;
  s.policy_domain = "example.net";
  s.policy_type = type;
  if (type == "sts") {
    s.policy_strings = {"version: STSv1", "mode: enforce", "mx: mx.example.net", "max_age: 86400"};
    s.mx_patterns = {"mx.example.net"};
  }
  s.mx_host = "mx.example.net";
  s.receiving_ip = "192.0.2.1";
  s.result = std::move(result);
  return s;
}

TEST(Reports, TlsSessionLineRoundTrips) {
  TlsSession s = Session("validation-failure");
  auto back = ParseTlsSession(ToJsonLine(s));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->policy_strings, s.policy_strings);
  EXPECT_EQ(back->result, "validation-failure");
  EXPECT_EQ(back->receiving_ip, "192.0.2.1");
  EXPECT_FALSE(ParseTlsSession("{\"domain\":\"x\""));  // a torn line
  EXPECT_FALSE(ParseTlsSession("[]"));
}

TEST(Reports, TlsReportCountsPerPolicyAndFailure) {
  std::vector<TlsSession> v = {Session("success"), Session("success"),
                               Session("validation-failure"), Session("validation-failure"),
                               Session("success", "no-policy-found")};
  ReportMeta m{"Hato Org", "postmaster@hato.test", "r1@mx.hato.test", 1764547200, 1764633599};
  json::value r = json::parse(TlsReportJson(m, "example.net", v));
  EXPECT_EQ(r.at("organization-name").as_string(), "Hato Org");
  EXPECT_EQ(r.at("date-range").at("start-datetime").as_string(), "2025-12-01T00:00:00Z");
  EXPECT_EQ(r.at("date-range").at("end-datetime").as_string(), "2025-12-01T23:59:59Z");
  EXPECT_EQ(r.at("report-id").as_string(), "r1@mx.hato.test");
  const auto& policies = r.at("policies").as_array();
  ASSERT_EQ(policies.size(), 2u);
  bool saw_sts = false;
  for (const auto& p : policies) {
    std::string type(p.at("policy").at("policy-type").as_string());
    EXPECT_EQ(p.at("policy").at("policy-domain").as_string(), "example.net");
    if (type == "sts") {
      saw_sts = true;
      EXPECT_EQ(p.at("policy").at("policy-string").as_array().size(), 4u);
      EXPECT_EQ(p.at("summary").at("total-successful-session-count").as_int64(), 2);
      EXPECT_EQ(p.at("summary").at("total-failure-session-count").as_int64(), 2);
      const auto& d = p.at("failure-details").as_array();
      ASSERT_EQ(d.size(), 1u);
      EXPECT_EQ(d[0].at("result-type").as_string(), "validation-failure");
      EXPECT_EQ(d[0].at("failed-session-count").as_int64(), 2);
      EXPECT_EQ(d[0].at("receiving-mx-hostname").as_string(), "mx.example.net");
    } else {
      EXPECT_EQ(type, "no-policy-found");
      EXPECT_EQ(p.at("summary").at("total-successful-session-count").as_int64(), 1);
      EXPECT_FALSE(p.as_object().contains("failure-details"));
    }
  }
  EXPECT_TRUE(saw_sts);
}

TEST(Reports, DmarcXmlCountsEqualRowsAndEscapes) {
  DmarcRow a;
  a.source_ip = "192.0.2.9";
  a.header_from = "example.net";
  a.policy_domain = "example.net";
  a.envelope_from = "example.net";
  a.disposition = "reject";
  a.dkim = {{"example.net", "fail"}};
  a.spf_domain = "example.net";
  a.spf_result = "fail";
  DmarcRow b = a;
  b.source_ip = "192.0.2.10";
  b.dkim_pass = true;
  b.disposition = "none";
  b.dkim = {{"example.net", "pass"}};
  auto back = ParseDmarcRow(ToJsonLine(b));
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->dkim_pass);
  EXPECT_EQ(back->dkim, b.dkim);
  ReportMeta m{"A & B <org>", "postmaster@hato.test", "id1", 100, 200};
  PublishedPolicy p{"example.net", "r", "s", "reject", "quarantine", 50};
  std::string x = DmarcReportXml(m, p, {a, a, b});
  EXPECT_NE(x.find("<org_name>A &amp; B &lt;org&gt;</org_name>"), std::string::npos) << x;
  EXPECT_NE(x.find("<begin>100</begin>"), std::string::npos);
  EXPECT_NE(x.find("<aspf>s</aspf>"), std::string::npos);
  EXPECT_NE(x.find("<sp>quarantine</sp>"), std::string::npos);
  EXPECT_NE(x.find("<pct>50</pct>"), std::string::npos);
  EXPECT_NE(x.find("<source_ip>192.0.2.9</source_ip>\n      <count>2</count>"), std::string::npos)
      << x;
  EXPECT_NE(x.find("<source_ip>192.0.2.10</source_ip>\n      <count>1</count>"), std::string::npos);
  EXPECT_NE(x.find("<disposition>reject</disposition>\n        <dkim>fail</dkim>"),
            std::string::npos);

  // XML 1.0 2.2: no control characters, no U+FFFE/U+FFFF (noncharacters a
  // From: or MAIL FROM domain can carry) in a well-formed report.
  DmarcRow c = a;
  c.header_from = "x\x01\xef\xbf\xbf.example.net\xef\xbf\xbe";
  c.spf_domain = "\xef\xbf\xbd";  // U+FFFD is a character: kept
  x = DmarcReportXml(m, p, {c});
  EXPECT_NE(x.find("<header_from>x.example.net</header_from>"), std::string::npos) << x;
  EXPECT_NE(x.find("<domain>\xef\xbf\xbd</domain>"), std::string::npos) << x;
}

TEST(Reports, MailtoAddressesOfRua) {
  EXPECT_EQ(MailtoAddresses("mailto:dmarc@Example.NET!10m, https://r.example/x,"
                            " mailto:a%2Bb@example.org"),
            (std::vector<std::string>{"dmarc@example.net", "a+b@example.org"}));
  EXPECT_TRUE(MailtoAddresses("mailto:").empty());
  EXPECT_TRUE(MailtoAddresses("mailto:no-at-sign").empty());
  EXPECT_TRUE(MailtoAddresses("mailto:a b@example.org").empty());
  // Percent-escapes cannot make a non-mailbox (RCPT TO, To:) out of a rua.
  EXPECT_TRUE(MailtoAddresses("mailto:%00@example.org").empty());
  EXPECT_TRUE(MailtoAddresses("mailto:a%01b@example.org,mailto:a@ex%7Fample.org").empty());
  EXPECT_TRUE(MailtoAddresses("mailto:a%FFb@example.org").empty());  // not UTF-8
  EXPECT_TRUE(MailtoAddresses("mailto:a..b@example.org").empty());
  EXPECT_EQ(MailtoAddresses("mailto:j%C3%B6rg@example.org"),
            (std::vector<std::string>{"j\xc3\xb6rg@example.org"}));
  EXPECT_EQ(HttpsRuaUrls("mailto:a@b.example, https://r.example/x,https://r.example:8443/y "
                         ",http://plain.example/,https://bad host/"),
            (std::vector<std::string>{"https://r.example/x", "https://r.example:8443/y"}));
  EXPECT_TRUE(HttpsRuaUrls("mailto:a@b.example").empty());
  EXPECT_EQ(TlsRptRua("v=TLSRPTv1; rua=mailto:tls@example.net"), "mailto:tls@example.net");
  EXPECT_EQ(TlsRptRua("v=TLSRPTv1;rua=mailto:x@y.z;"), "mailto:x@y.z");
  EXPECT_FALSE(TlsRptRua("v=spf1 -all"));
  EXPECT_FALSE(TlsRptRua("v=TLSRPTv1"));
}

TEST(Reports, GzipRoundTrips) {
  std::string text(5000, 'x');
  std::string gz = Gzip(text);
  ASSERT_GE(gz.size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);  // RFC 1952 ID1, ID2
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  EXPECT_EQ(Gunzip(gz), text);
}

TEST(Reports, MailIsMultipartReportWithTheAttachment) {
  ReportMail m;
  m.from = "postmaster@hato.test";
  m.to = {"tls@example.net"};
  m.subject = "Report Domain: example.net Submitter: mx.hato.test Report-ID: <x>\r\nBcc: evil";
  m.extra_headers = {{"TLS-Report-Domain", "example.net"}};
  m.date = "Tue, 1 Dec 2026 00:00:00 +0000";
  m.message_id = "abc@mx.hato.test";
  m.report_type = "tlsrpt";
  m.text = "line one\nline two\n";
  m.attachment = Gzip("{}");
  m.attachment_type = "application/tlsrpt+gzip";
  m.filename = ReportFilename("mx.hato.test", "example.net", 1, 2, "u", "json.gz");
  EXPECT_EQ(m.filename, "mx.hato.test!example.net!1!2!u.json.gz");
  std::string mail = ComposeReportMail(m);
  EXPECT_NE(mail.find("Content-Type: multipart/report; report-type=\"tlsrpt\""), std::string::npos);
  EXPECT_NE(mail.find("TLS-Report-Domain: example.net\r\n"), std::string::npos);
  EXPECT_EQ(mail.find("\r\nBcc: evil"), std::string::npos);  // no header injection
  EXPECT_NE(mail.find("line one\r\nline two\r\n"), std::string::npos);
  EXPECT_NE(mail.find("Content-Type: application/tlsrpt+gzip\r\n"), std::string::npos);
  EXPECT_NE(mail.find("filename=\"mx.hato.test!example.net!1!2!u.json.gz\""), std::string::npos);
  EXPECT_NE(mail.find("\r\n\r\n"), std::string::npos);
  for (size_t i = mail.find('\n'); i != std::string::npos; i = mail.find('\n', i + 1)) {
    ASSERT_EQ(mail[i - 1], '\r') << "bare LF at " << i;
  }
}

TEST(Reports, FailureOptions) {
  // RFC 7489 6.3 fo=.
  FailureFacts dmarc_fail;  // nothing aligned passes
  FailureFacts spf_only;
  spf_only.spf_aligned_pass = true;
  FailureFacts both;
  both.spf_aligned_pass = both.dkim_aligned_pass = true;
  FailureFacts bad_sig = spf_only;
  bad_sig.dkim_failed = true;
  FailureFacts spf_fail;
  spf_fail.spf_failed = true;
  spf_fail.dkim_aligned_pass = true;
  EXPECT_TRUE(FailureReportWanted("0", dmarc_fail));
  EXPECT_TRUE(FailureReportWanted("", dmarc_fail));
  EXPECT_FALSE(FailureReportWanted("0", spf_only));
  EXPECT_TRUE(FailureReportWanted("1", spf_only));
  EXPECT_FALSE(FailureReportWanted("1", both));
  EXPECT_FALSE(FailureReportWanted("d", dmarc_fail));
  EXPECT_TRUE(FailureReportWanted("d", bad_sig));
  EXPECT_FALSE(FailureReportWanted("s", bad_sig));
  EXPECT_TRUE(FailureReportWanted("s", spf_fail));
  EXPECT_TRUE(FailureReportWanted("d : s", spf_fail));
  EXPECT_FALSE(FailureReportWanted("x", dmarc_fail));  // unknown options: ignored
  EXPECT_EQ(AuthFailureType("0", dmarc_fail), "dmarc");
  EXPECT_EQ(AuthFailureType("d", bad_sig), "signature");
  EXPECT_EQ(AuthFailureType("s", spf_fail), "spf");
}

TEST(Reports, FailureReportIsAfrfWithTheHeaderOnly) {
  FailureReport r;
  r.from = "postmaster@example.org";
  r.to = {"ruf@example.com"};
  r.date = "Wed, 02 Dec 2026 12:00:00 +0000";
  r.message_id = "x1@mx.example.org";
  r.reporter = "mx.example.org";
  r.auth_failure = "dmarc";
  r.identity_alignment = "none";
  r.reported_domain = "example.com\r\nBcc: evil";  // a CRLF cannot add a field
  r.source_ip = "192.0.2.1";
  r.original_mail_from = "a@example.com";
  r.arrival_date = r.date;
  r.auth_results = "mx.example.org; dmarc=fail header.from=example.com";
  r.delivery_result = "reject";
  r.headers = HeaderBlock("From: a@example.com\r\nSubject: s\r\n\r\nsecret body\r\n");
  EXPECT_EQ(r.headers, "From: a@example.com\r\nSubject: s\r\n\r\n");
  std::string m = ComposeFailureReport(r);
  EXPECT_NE(m.find("report-type=feedback-report"), std::string::npos);
  EXPECT_NE(m.find("\r\nFeedback-Type: auth-failure\r\n"), std::string::npos);
  EXPECT_NE(m.find("\r\nAuth-Failure: dmarc\r\n"), std::string::npos);
  EXPECT_NE(m.find("\r\nSource-IP: 192.0.2.1\r\n"), std::string::npos);
  EXPECT_NE(m.find("Content-Type: text/rfc822-headers"), std::string::npos);
  EXPECT_EQ(m.find("\r\nBcc:"), std::string::npos);
  EXPECT_EQ(m.find("secret body"), std::string::npos);
}

}  // namespace
}  // namespace hato::reports
