// The MX's message authentication (server::MessageHooks::authenticate_inbound):
// SPF, DKIM and DMARC through msgauth::CheckInbound over libunbound, the
// DMARC disposition of [msgauth] dmarc_reject, and the removal of forged
// Authentication-Results fields that claim our host name (RFC 8601 section 5).
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "dns/blocking_lookup.h"
#include "msgauth/psl.h"
#include "reports/failure.h"
#include "reports/recorder.h"
#include "server/services.h"

namespace hato::app {

using InboundCheckFn =
    std::function<server::InboundVerdict(const server::InboundInfo&, std::string_view)>;

// Reads [msgauth] from `config` at each message, so SIGHUP changes apply
// (except the resolver, fixed when `dns` was opened).
// Counts results in `counters` (null: not counted). `psl` (null: the
// built-in suffixes) finds organizational domains for DMARC. Each DMARC
// evaluation of a domain with a record is recorded in `recorder` for the
// aggregate reports (RFC 7489 7.2; [reports] dmarc; null: not recorded).
// A message the domain's ruf=/fo= ask about goes to `failures` (RFC 7489
// 7.3; [reports] dmarc_failure; null: no failure reports).
InboundCheckFn NewInboundCheck(const server::ConfigSource& config,
                               std::shared_ptr<dns::SharedLookup> dns, server::Counters* counters,
                               std::shared_ptr<const msgauth::PublicSuffixList> psl,
                               reports::Recorder* recorder = nullptr,
                               reports::FailureReporter* failures = nullptr);

}  // namespace hato::app
