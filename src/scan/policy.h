// What Hato does with the scanners' answers (issue 19): the verdict from
// rspamd's reply and the [scan] policy, the trace fields added to the
// message, and the removal of forged copies of those fields. Pure.
//
// Fields added on port 25 when a scanner is on (docs/operations.md):
//   X-Hato-Scan: spam=ok virus=ok          (or "unscanned (timeout)", ...)
//   X-Spam-Status: Yes, score=7.20 required=15.00 action="add header"
//   X-Spam-Score: 7.20
//   X-Spam-Flag: YES                       (only for a spam verdict)
// A message arriving with any of these (ours to write) has them removed
// first, so a reader never trusts a sender's "X-Spam-Flag: NO".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "scan/proto.h"
#include "scan/verdict.h"

namespace hato::scan {

// "reject" | "junk" | "mark" | "none" (validated by config) as a SpamAction.
SpamAction ActionNamed(std::string_view name);

// The verdict for rspamd's reply under `cfg`'s policy: rspamd's "reject"
// (or a score >= reject_score > 0) gets on_reject; "add header" and
// "rewrite subject" (or a score >= spam_score > 0) get on_spam. "greylist"
// and "soft reject" ask for a retry: never honoured (mail is never held),
// counted as no action. A skipped task is judged by its action too.
void ApplySpam(const config::ScanConfig& cfg, const RspamdReply& reply, Verdict& v);

// What a scan gave, for X-Hato-Scan: "" when that scanner is off, else "ok"
// or "unscanned (REASON)".
struct ScanNotes {
  std::string spam;
  std::string virus;
};

// The fields to prepend (each with its CRLF), as listed above.
std::string ScanHeaderFields(const Verdict& v, const ScanNotes& notes);

// The message without the fields this file lists (case-insensitive names,
// continuation lines included); unchanged when it has none.
std::string RemoveScanHeaderFields(std::string_view message);

}  // namespace hato::scan
