// The DNS records a mail domain served by Hato publishes, and host-name
// validation. `hato init` prints the records; `hato dns check` compares them
// with what the resolver answers. Pure: values in, values out (unit-tested in
// tests/unit/records_test.cc).
//
// Records (RFC): MX (5321 5.1), the host's A/AAAA, SPF (7208), DKIM (6376
// 3.6.1), DMARC (7489 6.1), MTA-STS (8461 3.1) with its policy file (3.2),
// TLS-RPT (8460 3), client service discovery SRV (6186 3.1, 8314 5.1) and a
// CNAME for Thunderbird-style autoconfig.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::dns {

// Limits of RFC 1035 2.3.4 (in octets of the ASCII form).
inline constexpr size_t kMaxLabelLength = 63;
inline constexpr size_t kMaxNameLength = 253;

// Checks an ASCII (A-label) host or domain name: dot-separated labels of
// letters, digits and hyphens (RFC 952, RFC 1123 2.1), none empty, none
// starting or ending with '-', within the limits above; a trailing dot is
// refused. `what` names the value in the error ("domain", "hostname").
Status ValidateHostName(std::string_view name, std::string_view what);

enum class Need {
  kRequired,     // mail is refused or fails authentication without it
  kRecommended,  // delivery works without it, but less securely or less easily
};

struct Record {
  std::string name;   // owner name, no trailing dot
  std::string type;   // MX, A, AAAA, TXT, SRV, CNAME
  std::string value;  // as in a zone file, without quotes for TXT
  Need need = Need::kRequired;
  std::string purpose;       // one line for the operator
  bool placeholder = false;  // value is a hint to fill in (the server's address)
};

struct RecordInput {
  std::string domain;    // the mail domain, A-label
  std::string hostname;  // the MX host (the server's name)
  std::string dkim_selector;
  std::string dkim_record;             // "v=DKIM1; k=...; p=..."; empty: no DKIM record
  std::vector<std::string> addresses;  // the host's public IPv4/IPv6; empty: placeholders
  // id= of the MTA-STS record (MtaStsPolicyId of the served policy); "" = no
  // policy is served: no _mta-sts and mta-sts records.
  std::string mta_sts_id;
};

// Every record to publish for `in.domain`, required first.
std::vector<Record> DomainRecords(const RecordInput& in);

// One zone-file line: "NAME. 3600 IN TYPE VALUE" (TXT values quoted, split
// into strings of at most 255 octets, RFC 1035 3.3.14).
std::string ZoneLine(const Record& r);

// The MTA-STS policy file served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt
// (RFC 8461 3.2); `mode` is "testing", "enforce" or "none"; `mx` the MX
// patterns after the hostname; `max_age` in seconds.
std::string MtaStsPolicy(std::string_view hostname, std::string_view mode,
                         const std::vector<std::string>& mx = {}, int max_age = 604800);

// The id= of the _mta-sts TXT record for a policy text (RFC 8461 3.1: 1 to 32
// letters and digits): 20 hex digits of its SHA-256, so it changes whenever
// the policy does and stays the same while it does not.
std::string MtaStsPolicyId(std::string_view policy);

}  // namespace hato::dns
