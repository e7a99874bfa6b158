// DMARC failure reports (RFC 7489 section 7.3) in the Authentication
// Failure Reporting Format (AFRF, RFC 6591, an extension of ARF, RFC 5965):
// which messages a domain's fo= asks a report for, and the report message.
// Pure: values in, bytes out (tests/unit/reports_test.cc); the sender, with
// its rate limit, is reports/failure.h.
//
// STANDARDS
//   RFC 7489 6.3 (ruf=, fo=: 0, 1, d, s, colon-separated), 7.1 (external
//     destinations, shared with aggregate reports), 7.3 (failure reports),
//     7.3.1 (Auth-Failure: dmarc, Identity-Alignment).
//   RFC 6591 3.1 (auth-failure fields), RFC 5965 2 and 3 (multipart/report;
//     report-type=feedback-report, message/feedback-report, the original's
//     header as text/rfc822-headers).
// SECURITY: only the original's header block is returned (never its body),
// so a report discloses no content beyond what RFC 7489 7.3 allows; header
// lines are copied as received, their CRLF kept, within kMaxHeaderBytes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hato::reports {

// The most of the original's header block copied into a report.
inline constexpr size_t kMaxReportedHeaderBytes = 64 * 1024;

// What the receiver found out about one message (RFC 7489 6.3 fo=).
struct FailureFacts {
  bool spf_aligned_pass = false;   // SPF passed and is aligned with From
  bool dkim_aligned_pass = false;  // a DKIM signature passed and is aligned
  bool spf_failed = false;         // the SPF result is "fail" (any alignment)
  bool dkim_failed = false;        // a DKIM signature failed to verify (any alignment)
};

// Whether fo= (e.g. "0", "1", "d:s"; "" = "0") asks for a report:
//   0  neither mechanism produced an aligned pass (DMARC failed);
//   1  some mechanism produced something other than an aligned pass;
//   d  a DKIM signature failed to verify;  s  SPF failed.
// Unknown options are ignored (section 6.3).
bool FailureReportWanted(std::string_view fo, const FailureFacts& facts);

// The Auth-Failure of a report (RFC 6591 3.1, RFC 7489 7.3.1): "dmarc" when
// DMARC failed or fo=1 asked, else "signature" (fo=d) or "spf" (fo=s).
std::string AuthFailureType(std::string_view fo, const FailureFacts& facts);

struct FailureReport {
  std::string from;             // the reporter's address
  std::vector<std::string> to;  // the permitted ruf= addresses
  std::string date;             // RFC 5322 date of the report
  std::string message_id;       // without <>
  std::string reporter;         // this server's host name (User-Agent, text)
  std::string auth_failure;     // "dmarc", "signature", "spf"
  std::string
      identity_alignment;  // RFC 7489 7.3.1: the aligned ones: "none", "dkim", "spf", "dkim, spf"
  std::string reported_domain;  // the RFC5322.From domain
  std::string source_ip;
  std::string original_mail_from;         // "" = null reverse-path
  std::string arrival_date;               // RFC 5322 date
  std::string auth_results;               // the Authentication-Results value we added, or ""
  std::string delivery_result;            // RFC 6591 3.1: "delivered", "spam", "reject"
  std::vector<std::string> dkim_domains;  // d= of the failing or unaligned signatures
  std::string headers;                    // the original's header block (CRLF lines)
};

// The report message (CRLF line ends): multipart/report with a text part,
// the message/feedback-report part and the original's header block.
std::string ComposeFailureReport(const FailureReport& r);

// The header block of `message` (up to and including the empty line, or all
// of it), at most kMaxReportedHeaderBytes, cut at a line end.
std::string HeaderBlock(std::string_view message);

}  // namespace hato::reports
