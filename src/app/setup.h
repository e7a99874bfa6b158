// Setting up a domain on the internet: `hato init` (data directory, config,
// TLS certificate, first domain, its DKIM key, and the DNS records to
// publish with the next steps) and `hato dns check DOMAIN` (the records
// compared with what the resolver answers). The records themselves are
// dns::DomainRecords (src/dns/records.h).
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "config/config.h"
#include "dns/records.h"

namespace hato::app {

struct InitOptions {
  std::string data;
  std::string domain;
  std::string hostname;                // default mail.DOMAIN
  std::vector<std::string> addresses;  // --ip: the server's public addresses (A/AAAA)
  std::string dkim_selector = "hato";
  // A PostgreSQL connection string (issue 15): the store is that database and
  // the data dir keeps only config and keys; an existing Hato database is
  // attached to (a second node), never wiped.
  std::string postgres;
};

// Returns the exit status; prints the records and next steps on stdout.
int InitDataDir(const InitOptions& o);

struct DnsCheckOptions {
  std::string data;
  std::string domain;
  std::string resolver;  // "ip" or "ip@port"; "" = outbound.resolver of hato.toml
  int timeout_seconds = 10;
};

// What dns::DomainRecords needs for `domain` served by cfg.hostname: the
// DKIM record from the domain's key in DATA/dkim (none when it has no key)
// and the id of the MTA-STS policy served (none with [mta_sts] mode "off").
// Shared by `hato dns records|check` and the admin console (web/admin_api.h).
Result<dns::RecordInput> RecordInputFor(const std::string& data, const config::Config& cfg,
                                        const std::string& domain);

// The MTA-STS policy (RFC 8461 3.2) every local domain publishes from
// [mta_sts], as served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt
// (app/http_routes.cc); "" with mode "off".
std::string PublishedMtaStsPolicy(const config::Config& cfg);

struct DnsRecordsOptions {
  std::string data;
  std::string domain;
};

// `hato dns records DOMAIN`: the records to publish now (as `hato init`
// printed them, with the current DKIM key and MTA-STS policy id) and the
// policy file.
int DnsRecords(const DnsRecordsOptions& o);

// Each record of `in` compared with what `resolver` ("ip" or "ip@port"; ""
// = the system's) answers now: status OK, MISSING or DIFFERENT (SKIPPED for
// a record type it cannot query; none today), with what was found. SRV
// (RFC 6186) must name the host and port; a CNAME the host (or address
// records equal to the host's). Blocking. Shared by `hato dns check` and the
// admin console.
struct RecordCheck {
  dns::Record record;
  std::string status;
  std::string detail;
};
Result<std::vector<RecordCheck>> CheckDomainRecords(const dns::RecordInput& in,
                                                    const std::string& resolver,
                                                    int timeout_seconds);

// Prints one line per record (OK, MISSING, DIFFERENT, ERROR); exit 1 when a
// required record is missing or wrong, 0 otherwise.
int DnsCheck(const DnsCheckOptions& o);

// The canonical (A-label, lower-case) form of a domain or host name given on
// the command line (RFC 5890), validated; `what` names it in the error.
struct CanonicalName {
  bool ok = false;
  std::string name;   // when ok
  std::string error;  // when not
};
CanonicalName CanonicalHostName(const std::string& name, const std::string& what);

}  // namespace hato::app
