// The Authentication-Results header field (RFC 8601 section 2.2), and the
// whole inbound check that fills it: SPF (MAIL FROM and HELO), DKIM and DMARC.
//
// SECURITY: a receiver must remove (or rename) Authentication-Results fields
// that claim its own authserv-id before adding its own (RFC 8601 section 5);
// RemoveOwnResults does that.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "msgauth/dkim.h"
#include "msgauth/dmarc.h"
#include "msgauth/spf.h"

namespace hato::msgauth {

struct AuthMethod {
  std::string method;                                           // "spf", "dkim", "dmarc"
  std::string result;                                           // "pass", "fail", ...
  std::string comment;                                          // optional, written as "(...)"
  std::vector<std::pair<std::string, std::string>> properties;  // "smtp.mailfrom" -> value
};

// "Authentication-Results: ID;\r\n\tMETHOD=RESULT (comment) ptype.prop=value;...\r\n",
// or "ID; none" without methods (section 2.2). Values that are not a
// token or an [local-part@]domain are quoted (section 2.2, pvalue).
std::string FormatAuthResults(std::string_view authserv_id, const std::vector<AuthMethod>& methods);

// The message without the Authentication-Results fields whose authserv-id is
// `authserv_id` (case-insensitive).
std::string RemoveOwnResults(std::string_view message, std::string_view authserv_id);

struct InboundCheck {
  IpAddress ip;
  std::string helo;
  std::string mail_from;    // empty for the null path
  std::string authserv_id;  // our host name
  int64_t now = 0;
  int dmarc_sample = 0;                   // uniform in [0, 100), for pct=
  VerifyOptions dkim;                     // now is taken from `now` when 0
  const PublicSuffixList* psl = nullptr;  // for DMARC; null: built-in suffixes
};

struct InboundResult {
  SpfOutcome spf;   // MAIL FROM identity (HELO's when the path is null)
  SpfOutcome helo;  // HELO identity
  std::vector<DkimResult> dkim;
  DmarcOutcome dmarc;
  std::string header;  // the Authentication-Results field, CRLF-terminated
};

// Runs SPF, DKIM, DMARC on `message` and formats the header.
InboundResult CheckInbound(DnsLookup& dns, const InboundCheck& in, std::string_view message);

}  // namespace hato::msgauth
