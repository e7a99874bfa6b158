#include "app/inbound_check.h"

#include <random>

#include "base/strings.h"
#include "msgauth/auth_results.h"
#include "reports/afrf.h"
#include "reports/format.h"

namespace hato::app {
namespace {

using server::InboundVerdict;

bool IsLoopback(const msgauth::IpAddress& ip) {
  if (!ip.v6) return ip.bytes[0] == 127;
  static const auto kLoopback6 = msgauth::IpAddress::Parse("::1");
  return ip == *kLoopback6;
}

msgauth::RejectHandling Handling(const std::string& name) {
  if (name == "junk") return msgauth::RejectHandling::kJunk;
  if (name == "none") return msgauth::RejectHandling::kNone;
  return msgauth::RejectHandling::kReject;
}

int Sample() {
  thread_local std::mt19937 rng{std::random_device{}()};
  return std::uniform_int_distribution<int>(0, 99)(rng);
}

}  // namespace

InboundCheckFn NewInboundCheck(const server::ConfigSource& config,
                               std::shared_ptr<dns::SharedLookup> dns, server::Counters* counters,
                               std::shared_ptr<const msgauth::PublicSuffixList> psl,
                               reports::Recorder* recorder, reports::FailureReporter* failures) {
  return [&config, dns, counters, psl, recorder, failures](const server::InboundInfo& info,
                                                           std::string_view message) {
    std::shared_ptr<const config::Config> cfg = config.Get();
    InboundVerdict v;
    // Forged results claiming to be ours go, whether or not we check.
    std::string cleaned = msgauth::RemoveOwnResults(message, cfg->hostname);
    if (cleaned.size() != message.size()) {
      v.cleaned = std::move(cleaned);
      message = *v.cleaned;
    }
    std::optional<msgauth::IpAddress> ip = msgauth::IpAddress::Parse(info.peer_ip);
    if (!cfg->msgauth.inbound_checks || !ip) return v;
    ip = ip->Unmapped();
    if (IsLoopback(*ip) && !cfg->msgauth.check_loopback) return v;

    dns::BudgetLookup lookup(dns, std::chrono::seconds(cfg->msgauth.check_timeout_seconds));
    msgauth::InboundCheck in;
    in.ip = *ip;
    in.helo = info.helo;
    in.mail_from = info.mail_from;
    in.authserv_id = cfg->hostname;
    in.now = std::time(nullptr);
    in.dmarc_sample = Sample();
    in.psl = psl.get();
    msgauth::InboundResult r = msgauth::CheckInbound(lookup, in, message);
    v.header = std::move(r.header);
    switch (msgauth::DecideDisposition(r.dmarc, Handling(cfg->msgauth.dmarc_reject))) {
      case msgauth::Disposition::kReject:
        v.action = InboundVerdict::Action::kReject;
        break;
      case msgauth::Disposition::kJunk:
        v.action = InboundVerdict::Action::kJunk;
        break;
      case msgauth::Disposition::kDeliver:
        break;
    }
    if (counters) {
      auto i = static_cast<size_t>(r.dmarc.status);
      if (i < counters->dmarc_results.size()) {
        counters->dmarc_results[i].fetch_add(1, std::memory_order_relaxed);
      }
      if (v.action == InboundVerdict::Action::kReject) {
        counters->dmarc_rejected.fetch_add(1, std::memory_order_relaxed);
      } else if (v.action == InboundVerdict::Action::kJunk) {
        counters->dmarc_junked.fetch_add(1, std::memory_order_relaxed);
      }
    }
    // The DMARC aggregate report's row (RFC 7489 7.2, appendix C), for a
    // domain that publishes a record.
    if (recorder && cfg->reports.dmarc && !r.dmarc.record_domain.empty() &&
        (r.dmarc.status == msgauth::DmarcStatus::kPass ||
         r.dmarc.status == msgauth::DmarcStatus::kFail)) {
      reports::DmarcRow row;
      row.source_ip = ip->ToString();
      row.header_from = r.dmarc.from_domain;
      row.policy_domain = r.dmarc.record_domain;
      row.envelope_from = r.spf.domain;
      row.disposition = v.action == InboundVerdict::Action::kReject ? "reject"
                        : v.action == InboundVerdict::Action::kJunk ? "quarantine"
                                                                    : "none";
      row.dkim_pass = r.dmarc.dkim_aligned;
      row.spf_pass = r.dmarc.spf_aligned;
      for (const auto& d : r.dkim) {
        if (!d.domain.empty()) {
          row.dkim.emplace_back(d.domain, std::string(msgauth::DkimStatusName(d.status)));
        }
      }
      row.spf_domain = r.spf.domain;
      row.spf_result = std::string(msgauth::SpfResultName(r.spf.result));
      recorder->Add(reports::Kind::kDmarc, in.now, reports::ToJsonLine(row));
    }
    // RFC 7489 7.3: a failure report when the record's ruf=/fo= ask.
    if (failures && cfg->reports.dmarc_failure && !r.dmarc.ruf.empty() &&
        (r.dmarc.status == msgauth::DmarcStatus::kPass ||
         r.dmarc.status == msgauth::DmarcStatus::kFail)) {
      reports::FailureEvent e;
      e.now = in.now;
      e.record_domain = r.dmarc.record_domain;
      e.from_domain = r.dmarc.from_domain;
      e.ruf = r.dmarc.ruf;
      e.fo = r.dmarc.fo;
      e.facts.spf_aligned_pass = r.dmarc.spf_aligned;
      e.facts.dkim_aligned_pass = r.dmarc.dkim_aligned;
      e.facts.spf_failed = r.spf.result == msgauth::SpfResult::kFail;
      for (const auto& d : r.dkim) {
        if (d.status != msgauth::DkimStatus::kFail) continue;
        e.facts.dkim_failed = true;
        if (!d.domain.empty()) e.dkim_domains.push_back(d.domain);
      }
      e.identity_alignment = r.dmarc.dkim_aligned && r.dmarc.spf_aligned ? "dkim, spf"
                             : r.dmarc.dkim_aligned                      ? "dkim"
                             : r.dmarc.spf_aligned                       ? "spf"
                                                                         : "none";
      e.source_ip = ip->ToString();
      e.mail_from = info.mail_from;
      std::string_view ar = v.header;
      if (size_t colon = ar.find(':'); colon != std::string_view::npos) ar.remove_prefix(colon + 1);
      e.auth_results = std::string(TrimSpaces(ar));
      e.delivery_result = v.action == InboundVerdict::Action::kReject ? "reject"
                          : v.action == InboundVerdict::Action::kJunk ? "spam"
                                                                      : "delivered";
      e.headers = reports::HeaderBlock(message);
      failures->Report(*cfg, lookup, e);
    }
    if (v.action != InboundVerdict::Action::kDeliver) {
      v.reason = "DMARC policy of " + r.dmarc.from_domain +
                 " (p=" + std::string(msgauth::DmarcPolicyName(r.dmarc.requested)) + ")";
    }
    return v;
  };
}

}  // namespace hato::app
