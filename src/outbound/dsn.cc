#include "outbound/dsn.h"

#include <ctime>

#include "base/strings.h"

namespace hato::outbound {
namespace {

// The header block of a message (up to and including the blank line).
std::string HeaderOf(const std::string& msg) {
  size_t end = msg.find("\r\n\r\n");
  return end == std::string::npos ? msg : msg.substr(0, end + 2);
}

bool IsPermanentAction(const std::string& action) { return action == "failed"; }

}  // namespace

std::string Rfc5322Date(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

namespace {
// An RFC 3463 status code ("x.y.z") at `pos`, or "".
std::string EnhancedAt(const std::string& s, size_t pos) {
  size_t end = s.find(' ', pos);
  std::string code = s.substr(pos, end == std::string::npos ? end : end - pos);
  int dots = 0;
  bool ok = code.size() >= 5 && (code[0] == '2' || code[0] == '4' || code[0] == '5');
  for (size_t i = 1; ok && i < code.size(); ++i) {
    if (code[i] == '.') {
      ++dots;
      ok = code[i - 1] != '.';
    } else {
      ok = code[i] >= '0' && code[i] <= '9';
    }
  }
  return ok && dots == 2 && code.back() != '.' ? code : "";
}
}  // namespace

std::string StatusOf(const std::string& diagnostic, bool permanent) {
  // "x.y.z text" (a local reason) or "NNN x.y.z text" (a reply): use x.y.z.
  if (std::string code = EnhancedAt(diagnostic, 0); !code.empty()) return code;
  size_t sp = diagnostic.find(' ');
  if (sp == 3 && diagnostic.size() > 4) {
    if (std::string code = EnhancedAt(diagnostic, 4); !code.empty()) return code;
    if (diagnostic[0] == '5') return "5.0.0";
    if (diagnostic[0] == '4') return permanent ? "4.4.7" : "4.0.0";
  }
  return permanent ? "5.0.0" : "4.0.0";
}

std::string BuildDsn(const DsnInput& in) {
  bool any_failed = false, any_delayed = false;
  for (const auto& r : in.recipients) {
    any_failed = any_failed || r.action == "failed";
    any_delayed = any_delayed || r.action == "delayed";
  }
  bool ja = in.language == "ja";
  std::string subject = any_failed    ? "Undelivered Mail Returned to Sender"
                        : any_delayed ? "Delayed Mail (still being retried)"
                                      : "Successful Mail Delivery Report";
  if (ja) {
    // An RFC 2047 encoded-word (B, UTF-8): 8-bit text is not allowed in a
    // header field of a message that may leave over SMTP without SMTPUTF8.
    std::string_view text = any_failed    ? "配送できなかったメールの返送"
                            : any_delayed ? "配送の遅延 (再試行中)"
                                          : "配送の報告";
    subject = "=?UTF-8?B?" + Base64Encode(text) + "?=";
  }
  std::string out;
  out += "From: Mail Delivery System <" + in.from + ">\r\n";
  out += "To: <" + in.to + ">\r\n";
  out += "Subject: " + subject + "\r\n";
  out += "Date: " + Rfc5322Date(in.now) + "\r\n";
  out += "Message-ID: " + in.message_id + "\r\n";
  out += "Auto-Submitted: auto-replied\r\n";  // RFC 3834
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" +
         in.boundary + "\"\r\n\r\n";
  out += "This is a MIME-encapsulated delivery status notification.\r\n\r\n";

  // 1. Human-readable part.
  out += "--" + in.boundary + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
  if (ja) {
    out += in.reporting_mta + " のメールシステムからのお知らせです。\r\n\r\n";
    if (any_failed) {
      out += "あなたのメールを一部の宛先へ配送できませんでした。\r\n";
      out += "元のメールを下に添付します。\r\n\r\n";
    } else if (any_delayed) {
      out += "あなたのメールはまだ配送できていません。メールシステムが再試行を\r\n";
      out += "続けますので、送り直す必要はありません。\r\n\r\n";
    } else {
      out += "あなたのメールは配送通知を返さないサーバーへ引き渡されました。\r\n\r\n";
    }
  } else {
    out += "This is the mail system at " + in.reporting_mta + ".\r\n\r\n";
    if (any_failed) {
      out += "Your message could not be delivered to one or more recipients.\r\n";
      out += "It is attached below.\r\n\r\n";
    } else if (any_delayed) {
      out += "Your message could not be delivered yet. The mail system will keep\r\n";
      out += "trying; you do not need to send it again.\r\n\r\n";
    } else {
      out += "Your message was handed on to a server that sends no delivery reports.\r\n\r\n";
    }
  }
  for (const auto& r : in.recipients) {
    out += "<" + r.address + ">: " + r.action;
    if (!r.diagnostic.empty()) out += ": " + r.diagnostic;
    if (r.action == "delayed" && r.retry_until) {
      out += (ja ? " (再試行の期限: " : " (will retry until ") + Rfc5322Date(r.retry_until) + ")";
    }
    out += "\r\n";
  }
  out += "\r\n";

  // 2. message/delivery-status (RFC 3464 section 2).
  out += "--" + in.boundary + "\r\nContent-Type: message/delivery-status\r\n\r\n";
  out += "Reporting-MTA: dns; " + in.reporting_mta + "\r\n";
  if (!in.envid.empty()) out += "Original-Envelope-Id: " + in.envid + "\r\n";
  out += "Arrival-Date: " + Rfc5322Date(in.arrival) + "\r\n";
  for (const auto& r : in.recipients) {
    out += "\r\n";
    if (!r.orcpt.empty()) out += "Original-Recipient: " + r.orcpt + "\r\n";
    out += "Final-Recipient: rfc822; " + r.address + "\r\n";
    out += "Action: " + r.action + "\r\n";
    std::string status =
        r.action == "relayed" ? "2.0.0" : StatusOf(r.diagnostic, IsPermanentAction(r.action));
    out += "Status: " + status + "\r\n";
    if (!r.remote_mta.empty()) out += "Remote-MTA: dns; " + r.remote_mta + "\r\n";
    if (!r.diagnostic.empty()) {
      bool smtp = r.diagnostic.size() > 3 && r.diagnostic[3] == ' ' && r.diagnostic[0] >= '2' &&
                  r.diagnostic[0] <= '5';
      out += std::string("Diagnostic-Code: ") + (smtp ? "smtp; " : "x-local; ") + r.diagnostic +
             "\r\n";
    }
    if (r.last_attempt) out += "Last-Attempt-Date: " + Rfc5322Date(r.last_attempt) + "\r\n";
    if (r.action == "delayed" && r.retry_until) {
      out += "Will-Retry-Until: " + Rfc5322Date(r.retry_until) + "\r\n";
    }
  }
  out += "\r\n";

  // 3. The original (RFC 3462: message/rfc822, or text/rfc822-headers for RET=HDRS).
  if (in.headers_only) {
    out += "--" + in.boundary + "\r\nContent-Type: text/rfc822-headers\r\n\r\n";
    out += HeaderOf(in.original);
  } else {
    out += "--" + in.boundary + "\r\nContent-Type: message/rfc822\r\n\r\n";
    out += in.original;
    if (in.original.size() < 2 || in.original.compare(in.original.size() - 2, 2, "\r\n") != 0) {
      out += "\r\n";
    }
  }
  out += "\r\n--" + in.boundary + "--\r\n";
  return out;
}

}  // namespace hato::outbound
