// Sending the daily aggregate reports (issue 18): each recorded UTC day
// (reports/recorder.h) that has ended becomes, per policy domain, one
// TLS-RPT report (RFC 8460 section 4) to the rua of the domain's
// _smtp._tls TXT record (mailto: as mail, https: POSTed as
// application/tlsrpt+gzip through the HTTPS client, http/client.h, section
// 5.3.2; a POST that fails for a reason that may pass, no answer, a 5xx,
// 408 or 429, is kept in DATA/reports/posts/ and posted again by later runs
// after [reports] post_retry_seconds, doubling, up to kMaxPostAttempts
// attempts in all, RFC 8460 5.3) and one DMARC aggregate report (RFC 7489 section
// 7.2) to the rua of its _dmarc record, each a DKIM-signed message queued
// for delivery through the outbound queue. A domain without a rua gets
// none. The day's file is then renamed .sent; sent days are kept
// [reports] keep_days, unsent ones are dropped past it.
//
// DMARC external destinations (RFC 7489 section 7.1): a rua outside the
// policy domain's organizational domain gets reports only when
// POLICYDOMAIN._report._dmarc.RUADOMAIN has a "v=DMARC1" TXT record.
// Run by `hato serve` at [reports] send_hour, and by `hato reports send`
// (--today also sends the current day so far). Two runs never overlap
// (DATA/reports/send.lock).
// Thread-safety: blocking (store writes, DNS): run it on the blocking pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "config/config.h"
#include "msgauth/dns.h"
#include "msgauth/keyring.h"
#include "store/store.h"

namespace hato::reports {

// Posting a TLS-RPT report to an https: rua (RFC 8460 section 5.3.2):
// each exchange step within kPostTimeout; the reply's body is read up to
// kMaxPostReplyBytes (and ignored); redirects are not followed.
inline constexpr std::chrono::seconds kPostTimeout{30};
inline constexpr uint64_t kMaxPostReplyBytes = 64 * 1024;
// Attempts at one report and URL, the first included (RFC 8460 5.3: retried
// with backoff, then given up): with the default 30 min, 15.5 h in all.
inline constexpr int kMaxPostAttempts = 6;

struct SendOptions {
  int64_t now = 0;
  bool include_today = false;  // also the current, unfinished day (a forced run)
  bool retries_only = false;   // only the waiting https: posts that are due (before send_hour)
  // The resolver ("ip[@port]", "" = the system's) and extra trusted CAs
  // (PEM file, "" = the system's only) of https: rua hosts.
  std::string resolver;
  std::string ca_file;
};

struct SendSummary {
  size_t reports = 0;            // report messages queued
  size_t posted = 0;             // reports accepted (2xx) by an https: rua
  size_t skipped = 0;            // policy domains without a (permitted) mailto: rua
  std::vector<std::string> log;  // one line per report or skip
};

// RFC 7489 7.1: the mailto: addresses of `uris` (a rua= or ruf=) that may
// get `domain`'s reports: those in its organizational domain, and those
// whose domain publishes DOMAIN._report._dmarc.RUADOMAIN "v=DMARC1"; why
// each other one may not is appended to `log`.
std::vector<std::string> PermittedDmarcDestinations(msgauth::DnsLookup& dns,
                                                    const std::string& domain,
                                                    std::string_view uris,
                                                    std::vector<std::string>* log);

// Signs `content` (by its From domain's key in `keys`, null = unsigned) and
// hands it to the store: local recipients get it at once, remote ones through
// the outbound queue. False when no recipient was left (logged in `log`).
Result<bool> QueueReportMessage(store::Store& store, const msgauth::KeyRing* keys,
                                const std::string& from, int64_t now, std::string content,
                                const std::vector<std::string>& to, std::vector<std::string>* log);

Result<SendSummary> SendDueReports(store::Store& store, const std::string& data_dir,
                                   const config::Config& cfg, msgauth::DnsLookup& dns,
                                   const SendOptions& options);

}  // namespace hato::reports
