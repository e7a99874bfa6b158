// Sending DMARC failure reports (RFC 7489 section 7.3) as the MX receives
// mail: when a domain's DMARC record has ruf= and its fo= asks about the
// message (reports/afrf.h FailureReportWanted), one AFRF report (RFC 6591)
// goes to the ruf= addresses that may receive it (section 7.1, the same
// check as aggregate reports), DKIM-signed and queued through the outbound
// queue like every report (reports/send.h QueueReportMessage).
//
// Off unless [reports] dmarc_failure = true. Rate limit (section 7.3 asks
// receivers to bound them): at most [reports] dmarc_failure_per_hour reports
// per reported (From) domain in each clock hour; the rest are counted in
// the log line and dropped. The limiter remembers at most
// kMaxLimitedDomains domains (it starts over each hour). The hour's counts
// survive a restart: each report admitted appends its domain to
// DATA/reports/failure-limit (first line: the clock hour), read back at the
// first report after a start; a new hour starts the file again. It is not
// fsynced: a crash may forget the last few, never count one twice.
// Thread-safety: Report may be called from any thread (the limiter has a
// mutex); it blocks (DNS, store), so call it on the blocking pool.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "io/fs.h"
#include "msgauth/dns.h"
#include "reports/afrf.h"
#include "store/store.h"

namespace hato::reports {

inline constexpr size_t kMaxLimitedDomains = 10000;

// One message the checks found failing in some way.
struct FailureEvent {
  int64_t now = 0;
  std::string record_domain;  // where the DMARC record was found
  std::string from_domain;    // the RFC5322.From domain (Reported-Domain)
  std::string ruf;            // the record's ruf=
  std::string fo;             // the record's fo=
  FailureFacts facts;
  std::string identity_alignment;  // "none", "dkim", "spf", "dkim, spf"
  std::vector<std::string> dkim_domains;
  std::string source_ip;
  std::string mail_from;
  std::string auth_results;     // the Authentication-Results value
  std::string delivery_result;  // "delivered", "spam", "reject"
  std::string headers;          // the original's header block
};

class FailureReporter {
 public:
  // `kick`: called after a report was queued (wakes the outbound queue).
  FailureReporter(store::Store& store, std::string data_dir, std::function<void()> kick)
      : store_(store), data_dir_(std::move(data_dir)), kick_(std::move(kick)) {}

  // Queues the report `e` asks for, if fo= wants one, a ruf= address may
  // receive it and the domain is within its hourly limit. True when queued;
  // why not goes to the log.
  bool Report(const config::Config& cfg, msgauth::DnsLookup& dns, const FailureEvent& e);

 private:
  // Counts one report for `domain`; false past the hourly limit.
  bool Admit(const std::string& domain, int64_t now, int limit);
  // DATA/reports/failure-limit: the counts of `hour` read back (once), and
  // one admitted report appended. Failures are logged: the limit then holds
  // in memory only. mu_ is held.
  void LoadCounts(int64_t hour);
  void SaveAdmitted(const std::string& domain, int64_t hour);

  store::Store& store_;
  std::string data_dir_;
  std::function<void()> kick_;
  std::mutex mu_;
  int64_t hour_ = 0;                       // the clock hour counts_ is for
  std::map<std::string, int> counts_;      // reports per domain this hour
  std::map<std::string, int> suppressed_;  // over the limit this hour
  bool loaded_ = false;                    // LoadCounts done
  int64_t file_hour_ = -1;                 // the hour counts_file_ holds
  std::unique_ptr<io::WritableFile> counts_file_;
};

}  // namespace hato::reports
