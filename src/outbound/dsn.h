// Delivery status notifications (RFC 3464, RFC 3462/6522 multipart/report):
// builds the report sent to the envelope sender when delivery failed for
// good, is delayed, or was relayed to a server without DSN. Pure: values in,
// message text out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hato::outbound {

struct DsnRecipient {
  std::string address;     // the recipient as queued (Final-Recipient)
  std::string orcpt;       // RFC 3461 ORCPT "type;address", or ""
  std::string action;      // "failed", "delayed" or "relayed" (RFC 3464 section 2.3.3)
  std::string diagnostic;  // the remote reply ("550 5.1.1 ...") or a local reason
  std::string remote_mta;  // the server that answered, or ""
  int64_t last_attempt = 0;
  int64_t retry_until = 0;  // for "delayed": when the queue gives up
};

struct DsnInput {
  std::string reporting_mta;  // our host name
  std::string from;           // MAILER-DAEMON@host
  std::string to;             // the envelope sender of the original
  std::string envid;          // RFC 3461 ENVID of the original
  int64_t arrival = 0;        // when the original was queued
  int64_t now = 0;
  bool headers_only = false;  // RET=HDRS: return only the original's header
  std::string original;       // the original message (CRLF)
  std::string boundary;       // a unique MIME boundary
  std::string message_id;     // "<...>" for the report
  std::vector<DsnRecipient> recipients;
  // The language of the human-readable part and the subject: "ja" when the
  // sender is a local account that chose Japanese (issue 13), else English.
  std::string language;
};

// The RFC 3463 status of a diagnostic: its enhanced code when it has one,
// else derived from the reply code (or 4.0.0/5.0.0).
std::string StatusOf(const std::string& diagnostic, bool permanent);

std::string BuildDsn(const DsnInput& in);

// RFC 5322 date-time in UTC.
std::string Rfc5322Date(int64_t t);

}  // namespace hato::outbound
