// Aggregate reports this server sends (issue 18): what is recorded per
// event, and the reports and their mail built from it. Pure: values in,
// bytes out (unit-tested in tests/unit/reports_test.cc); recording and
// sending are reports/recorder.h and reports/send.h.
//
// STANDARDS
//   RFC 8460 (SMTP TLS Reporting): section 3 (the _smtp._tls record, rua),
//     4.3 (result types), 4.4 (the JSON report), 5.3 (the report mail:
//     multipart/report; report-type="tlsrpt", application/tlsrpt+gzip,
//     TLS-Report-Domain and TLS-Report-Submitter, DKIM-signed), 5.3.2
//     (https: rua, POSTed by reports/send.cc).
//   RFC 7489 (DMARC): 6.4 (rua), 7.1 (external destinations), 7.2 and
//     appendix C (the XML aggregate report), 7.2.1.1 (mail, filename).
//   RFC 1952 (gzip).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hato::reports {

// One outbound SMTP session to a recipient domain's MX (RFC 8460 4.4).
struct TlsSession {
  std::string policy_domain;                    // the recipient domain (A-label)
  std::string policy_type = "no-policy-found";  // "sts" | "no-policy-found"
  std::vector<std::string> policy_strings;      // the MTA-STS policy, one line each
  std::vector<std::string> mx_patterns;         // its mx: patterns
  std::string mx_host;                          // receiving-mx-hostname
  std::string receiving_ip;
  // "success", or an RFC 8460 4.3 result type ("starttls-not-supported",
  // "validation-failure", "certificate-host-mismatch", ...).
  std::string result = "success";
};

// One inbound message's DMARC evaluation (RFC 7489 appendix C "row").
struct DmarcRow {
  std::string source_ip;
  std::string header_from;           // the RFC5322.From domain
  std::string policy_domain;         // where the DMARC record was found
  std::string envelope_from;         // the SPF-checked domain
  std::string disposition = "none";  // none | quarantine | reject: what was applied
  bool dkim_pass = false;            // aligned DKIM pass (policy_evaluated)
  bool spf_pass = false;             // aligned SPF pass
  std::vector<std::pair<std::string, std::string>> dkim;  // d=, result (auth_results)
  std::string spf_domain;
  std::string spf_result = "none";
};

// One JSON object per line (the recorded form) and back; nullopt for a line
// that does not parse (a torn last line after a crash is skipped).
std::string ToJsonLine(const TlsSession& s);
std::string ToJsonLine(const DmarcRow& r);
std::optional<TlsSession> ParseTlsSession(std::string_view line);
std::optional<DmarcRow> ParseDmarcRow(std::string_view line);

struct ReportMeta {
  std::string org_name;   // organization-name / org_name
  std::string contact;    // contact-info / email: the reports' sender
  std::string report_id;  // unique per report
  int64_t begin = 0;      // unix seconds, the first second of the range
  int64_t end = 0;        // unix seconds, the last second of the range
};

// The RFC 8460 4.4 report of one policy domain (JSON, sessions aggregated
// by policy, failures by result type, MX and receiving IP).
std::string TlsReportJson(const ReportMeta& m, std::string_view policy_domain,
                          const std::vector<TlsSession>& sessions);

// The policy published (RFC 7489 appendix C "PolicyPublishedType").
struct PublishedPolicy {
  std::string domain;
  std::string adkim = "r";
  std::string aspf = "r";
  std::string p = "none";
  std::string sp = "none";
  int pct = 100;
};

// The RFC 7489 appendix C XML report; equal rows are counted together.
std::string DmarcReportXml(const ReportMeta& m, const PublishedPolicy& policy,
                           const std::vector<DmarcRow>& rows);

// The mailto: addresses of a rua= value (RFC 7489 6.4: comma-separated
// URIs, "!size" suffixes dropped; RFC 8460 3: the same with https: URIs):
// percent-decoded, lower-cased domains.
std::vector<std::string> MailtoAddresses(std::string_view rua);

// The https: URIs of a TLS-RPT rua= value (RFC 8460 3), each one that
// http::ParseHttpsUrl accepts, in order; reports are POSTed there (5.3.2).
std::vector<std::string> HttpsRuaUrls(std::string_view rua);

// The rua= of a "v=TLSRPTv1; rua=..." record (RFC 8460 3), or nullopt.
std::optional<std::string> TlsRptRua(std::string_view txt);

// gzip (RFC 1952) of `data`.
std::string Gzip(std::string_view data);

struct ReportMail {
  std::string from;
  std::vector<std::string> to;
  std::string subject;
  std::vector<std::pair<std::string, std::string>> extra_headers;  // name, value
  std::string date;                                                // RFC 5322 date
  std::string message_id;                                          // without <>
  std::string report_type;      // "tlsrpt": multipart/report; "" = multipart/mixed
  std::string text;             // the human-readable part
  std::string attachment;       // gzip bytes
  std::string attachment_type;  // "application/tlsrpt+gzip", "application/gzip"
  std::string filename;
};

// The whole message (CRLF line ends), attachment in base64.
std::string ComposeReportMail(const ReportMail& m);

// The report file names of RFC 8460 5.3 and RFC 7489 7.2.1.1:
// submitter!policy-domain!begin!end[!unique-id].EXT
std::string ReportFilename(std::string_view submitter, std::string_view policy_domain,
                           int64_t begin, int64_t end, std::string_view unique_id,
                           std::string_view ext);

// "2026-12-01T00:00:00Z" (RFC 3339, UTC).
std::string Rfc3339(int64_t t);

}  // namespace hato::reports
