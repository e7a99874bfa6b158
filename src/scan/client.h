// The scanners' clients (issue 19): one blocking exchange per request over
// TCP or a Unix socket, bounded by a deadline for everything (connect, send,
// receive), so a scanner that is down or slow costs at most [scan]
// timeout_ms. Called on the inbound-checks pool (server::Services::checks)
// and the Junk trainer's thread, never on the event loop.
// Thread-safe: no shared state.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/result.h"
#include "config/config.h"
#include "scan/policy.h"
#include "scan/proto.h"
#include "scan/verdict.h"

namespace hato::scan {

// A reply larger than this is refused (rspamd's JSON with every symbol is
// a few KiB; clamd's is one line).
inline constexpr size_t kMaxReplyBytes = 1 << 20;

struct Endpoint {
  std::string host;  // TCP
  std::string port;
  std::string unix_path;  // or a Unix socket
  std::string host_port;  // for HTTP's Host field
};
// "http://HOST:PORT[/]" (rspamd); kInvalid otherwise.
Result<Endpoint> ParseHttpUrl(std::string_view url);
// "HOST:PORT" or "/path/of/socket" (clamd).
Result<Endpoint> ParseSocketAddress(std::string_view address);

using Deadline = std::chrono::steady_clock::time_point;

// rspamd's /checkv2 for `content`. kTemporary when rspamd is down, slow or
// answers an error.
Result<RspamdReply> RspamdCheck(const config::ScanConfig& cfg, const Envelope& env,
                                std::string_view content, Deadline deadline);
// clamd's INSTREAM for `content`. kTemporary when clamd is down or slow; a
// kError reply (size limit, ...) is returned as a value.
Result<ClamdReply> ClamdScan(const config::ScanConfig& cfg, std::string_view content,
                             Deadline deadline);
// The controller's /learnspam or /learnham for `content`.
Status RspamdLearn(const config::ScanConfig& cfg, bool spam, std::string_view content,
                   Deadline deadline);

// After a scanner failed (down, slow, an error), it is not asked again for
// this long: messages meanwhile pass unscanned at once ("unscanned (not
// asked: failed in the last 10 s)"), so a hung scanner costs one timeout
// per period, not one per message, and cannot fill the checks pool. The
// first message after the period tries it again. Process-wide, per scanner.
inline constexpr std::chrono::seconds kScannerBackoff{10};

// Every configured scanner on one inbound message: the verdict under the
// [scan] policy and the trace fields to prepend (scan/policy.h).
struct ScanOutcome {
  Verdict verdict;
  ScanNotes notes;
  std::string fields;
  double rspamd_seconds = 0;  // rspamd's own time (time_real), when it answered
};
ScanOutcome ScanMessage(const config::ScanConfig& cfg, const Envelope& env,
                        std::string_view content);

}  // namespace hato::scan
