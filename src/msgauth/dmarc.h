// DMARC (RFC 7489): the policy record (section 6.3), record discovery with
// the organizational-domain fallback (section 6.6.3), identifier alignment
// (section 3.1) and the policy to apply, with pct= sampling (section 6.6.4).
// Pure: DNS through the DnsLookup seam.
//
// Organizational domain (section 3.2) uses a small embedded public-suffix
// list: every single label (a TLD) is a public suffix, plus the common
// registry second-level suffixes listed in dmarc.cc (co.uk, com.au, co.jp,
// ...), unless the caller passes the full Public Suffix List (psl.h), which
// the server loads from Debian's publicsuffix package. Without it private
// suffixes (e.g. github.io) are not known, so two such sites count as one
// organization under relaxed alignment.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "msgauth/dns.h"
#include "msgauth/psl.h"
#include "msgauth/spf.h"

namespace hato::msgauth {

enum class DmarcPolicy { kNone, kQuarantine, kReject };
std::string_view DmarcPolicyName(DmarcPolicy p);

struct DmarcRecord {
  DmarcPolicy policy = DmarcPolicy::kNone;      // p=
  std::optional<DmarcPolicy> subdomain_policy;  // sp=
  bool strict_dkim = false;                     // adkim=s
  bool strict_spf = false;                      // aspf=s
  int pct = 100;                                // pct=
  std::string rua;                              // rua= (aggregate reports, reports/send.h)
  std::string ruf;                              // ruf= (failure reports, reports/failure.h)
  std::string fo = "0";                         // fo= (section 6.3), as published
};

// Parses a record ("v=DMARC1; p=..."). kInvalid when v= is not first or not
// DMARC1, on tag-list syntax errors, or when p= is missing or unknown and no
// valid rua= is present (section 6.6.3: with rua=, p=none is assumed).
// Bad sp=, adkim=, aspf=, pct= values are ignored (their defaults apply).
Result<DmarcRecord> ParseDmarcRecord(std::string_view text);

// The organizational domain (section 3.2), lower-cased: by the Public
// Suffix List when given, else by the built-in table above.
std::string OrganizationalDomain(std::string_view domain, const PublicSuffixList* psl = nullptr);

// The RFC5322.From domain (section 6.6.1): kInvalid when the message has no
// From, several From fields, or From addresses in different domains.
Result<std::string> FromDomain(std::string_view message);

// RFC 8601 section 2.7.1 values for dmarc.
enum class DmarcStatus { kNone, kPass, kFail, kTempError, kPermError };
std::string_view DmarcStatusName(DmarcStatus s);

struct DmarcInput {
  std::string from_domain;
  SpfResult spf = SpfResult::kNone;
  std::string spf_domain;  // the domain SPF checked (MAIL FROM, or HELO for <>)
  // d= of each DKIM signature that passed.
  std::vector<std::string> dkim_pass_domains;
  int sample = 0;                         // a uniform random number in [0, 100) for pct=
  const PublicSuffixList* psl = nullptr;  // null: the built-in suffix table
};

struct DmarcOutcome {
  DmarcStatus status = DmarcStatus::kNone;
  std::string from_domain;
  std::string record_domain;                   // where the record was found
  DmarcPolicy requested = DmarcPolicy::kNone;  // p= or sp=, what the owner asks
  DmarcPolicy applied = DmarcPolicy::kNone;    // after pct= (none unless status is fail)
  bool spf_aligned = false;
  bool dkim_aligned = false;
  std::string reason;
  std::string ruf;  // the record's ruf= and fo= (failure reports, RFC 7489 7.3)
  std::string fo = "0";
};

DmarcOutcome CheckDmarc(DnsLookup& dns, const DmarcInput& in);

// What the receiver does with the message. Section 6.7 leaves the final say
// to local policy: the operator picks what a p=reject failure gets
// (RejectHandling); p=quarantine means "suspicious", i.e. the Junk folder
// (section 6.3), unless the operator only records results (kNone).
enum class Disposition { kDeliver, kJunk, kReject };
enum class RejectHandling { kReject, kJunk, kNone };
// The policy actually applied (after pct=) decides; temperror and permerror
// never reject (section 6.6.3 asks the receiver to deliver or defer).
Disposition DecideDisposition(const DmarcOutcome& outcome, RejectHandling on_reject);

}  // namespace hato::msgauth
