#include "reports/afrf.h"

#include "base/strings.h"

namespace hato::reports {
namespace {

// Section 6.3: fo= is a colon-separated list; whitespace around options is
// tolerated.
bool HasOption(std::string_view fo, char option) {
  if (TrimSpaces(fo).empty()) return option == '0';
  size_t start = 0;
  while (start <= fo.size()) {
    size_t colon = fo.find(':', start);
    std::string_view o =
        TrimSpaces(fo.substr(start, colon == std::string_view::npos ? fo.npos : colon - start));
    start = colon == std::string_view::npos ? fo.size() + 1 : colon + 1;
    if (o.size() == 1 && (o[0] | 0x20) == option) return true;
  }
  return false;
}

// A header value on one line: CR and LF become spaces (an injected field
// cannot be smuggled into the report through a DNS or message value).
std::string OneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return out;
}

}  // namespace

bool FailureReportWanted(std::string_view fo, const FailureFacts& f) {
  if (HasOption(fo, '0') && !f.spf_aligned_pass && !f.dkim_aligned_pass) return true;
  if (HasOption(fo, '1') && (!f.spf_aligned_pass || !f.dkim_aligned_pass)) return true;
  if (HasOption(fo, 'd') && f.dkim_failed) return true;
  if (HasOption(fo, 's') && f.spf_failed) return true;
  return false;
}

std::string AuthFailureType(std::string_view fo, const FailureFacts& f) {
  bool dmarc_failed = !f.spf_aligned_pass && !f.dkim_aligned_pass;
  if ((dmarc_failed && HasOption(fo, '0')) || HasOption(fo, '1')) return "dmarc";
  if (HasOption(fo, 'd') && f.dkim_failed) return "signature";
  if (HasOption(fo, 's') && f.spf_failed) return "spf";
  return "dmarc";
}

std::string HeaderBlock(std::string_view message) {
  size_t end = message.size();
  if (size_t p = message.find("\r\n\r\n"); p != std::string_view::npos) {
    end = p + 4;
  } else if (size_t q = message.find("\n\n"); q != std::string_view::npos) {
    end = q + 2;
  }
  if (end > kMaxReportedHeaderBytes) {
    size_t nl = message.rfind('\n', kMaxReportedHeaderBytes - 1);
    end = nl == std::string_view::npos ? 0 : nl + 1;
  }
  return std::string(message.substr(0, end));
}

std::string ComposeFailureReport(const FailureReport& r) {
  std::string boundary = "=_hato_afrf_" + r.message_id.substr(0, r.message_id.find('@'));
  std::string to;
  for (const auto& a : r.to) to += (to.empty() ? "<" : ", <") + a + ">";
  // RFC 7489 7.3: the subject names the report type and the domain.
  std::string h = "From: <" + r.from + ">\r\nTo: " + to +
                  "\r\nSubject: FW: DMARC failure report for " + OneLine(r.reported_domain) +
                  " from " + OneLine(r.source_ip) + "\r\nDate: " + r.date + "\r\nMessage-ID: <" +
                  r.message_id +
                  ">\r\nMIME-Version: 1.0\r\n"
                  "Content-Type: multipart/report; report-type=feedback-report;\r\n\tboundary=\"" +
                  boundary + "\"\r\n";
  std::string b = "\r\nThis is a multi-part message in MIME format.\r\n\r\n--" + boundary +
                  "\r\nContent-Type: text/plain; charset=us-ascii\r\n"
                  "Content-Transfer-Encoding: 7bit\r\n\r\n"
                  "This is an authentication failure report (RFC 6591) for a message from " +
                  OneLine(r.source_ip) + " with From domain " + OneLine(r.reported_domain) +
                  ", received by " + OneLine(r.reporter) + " (" + OneLine(r.delivery_result) +
                  ").\r\n";
  // RFC 5965 3.1 and RFC 6591 3.1: the machine-readable part.
  b += "\r\n--" + boundary +
       "\r\nContent-Type: message/feedback-report\r\n\r\n"
       "Feedback-Type: auth-failure\r\nUser-Agent: hato (" +
       OneLine(r.reporter) +
       ")\r\nVersion: 1\r\n"
       "Original-Mail-From: <" +
       OneLine(r.original_mail_from) + ">\r\nArrival-Date: " + OneLine(r.arrival_date) +
       "\r\nSource-IP: " + OneLine(r.source_ip) +
       "\r\nReported-Domain: " + OneLine(r.reported_domain) + "\r\n";
  if (!r.auth_results.empty()) b += "Authentication-Results: " + OneLine(r.auth_results) + "\r\n";
  b += "Auth-Failure: " + OneLine(r.auth_failure) + "\r\n";
  b += "Identity-Alignment: " + OneLine(r.identity_alignment) + "\r\n";
  for (const auto& d : r.dkim_domains) b += "DKIM-Domain: " + OneLine(d) + "\r\n";
  b += "Delivery-Result: " + OneLine(r.delivery_result) + "\r\n";
  // RFC 5965 2(c): the original's header block only (RFC 7489 7.3 privacy).
  b += "\r\n--" + boundary + "\r\nContent-Type: text/rfc822-headers\r\n\r\n" + r.headers;
  if (!r.headers.empty() && r.headers.back() != '\n') b += "\r\n";
  b += "\r\n--" + boundary + "--\r\n";
  return h + b;
}

}  // namespace hato::reports
