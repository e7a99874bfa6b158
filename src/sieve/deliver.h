// Filtering at delivery (issue 19): for each local recipient of a message,
// its active Sieve script (or, without one, the operator's spam policy)
// decides where the copies go. The result is data for the one durable
// delivery (store::DeliveryRequest::filings + redirects queued as outbound
// in the same transaction), plus what to do after it commits (vacation
// replies, duplicate tracking) and whether SMTP should refuse (every
// recipient rejected, RFC 5429 section 2.1).
//
// A script that fails to load, compile or run never loses the message: the
// recipient gets an INBOX copy and the error is recorded for its user
// (store SetSieveStatus; hato sieve list shows it).
//
// Thread-safety: Filter and Finish do blocking store calls: run them on the
// blocking pool (io/await.h Offload), never on the network event loop.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scan/verdict.h"
#include "sieve/interpret.h"
#include "store/store.h"

namespace hato::config {
struct SieveConfig;
}

namespace hato::sieve {

// The prefix of the server's own script names (IsReservedScriptName).
inline constexpr const char* kReservedPrefix = "jmap.";

// The reserved script name under which JMAP's VacationResponse (RFC 8621
// section 8; src/jmap/vacation.h) keeps its generated vacation script: run
// after the user's active script; not a name users can give (CheckScriptName).
inline constexpr const char* kVacationScript = "jmap.vacation";

// The reserved script name under which the member's page keeps the
// account's forwarding (issue 13, src/web/account_api.h): a generated
// `redirect` script (with `keep` when a copy stays) whose first line keeps
// the setting; run before the user's active script. Redirect's loop and rate
// limits apply; a refused forward keeps the message.
inline constexpr const char* kForwardScript = "jmap.forward";

struct Forwarding {
  std::string to;    // the address mail is forwarded to
  bool keep = true;  // a copy stays in this account (filed by its own script)
  bool operator==(const Forwarding&) const = default;
};

// The Sieve text for a forwarding (RFC 5228 section 4.2 redirect, 4.3 keep),
// and back: nullopt for a text without the setting line (none or disabled).
std::string ForwardScript(const Forwarding& f);
std::optional<Forwarding> ParseForwardScript(std::string_view text);

// Operator limits for redirect (RFC 5228 section 4.2 asks for loop and
// rate protection).
struct DeliveryLimits {
  Limits script;
  size_t max_redirects_per_hour = 100;    // per account
  size_t max_received_for_redirect = 30;  // more Received fields: a loop, no redirect
};

// The operator's limits ([sieve] in hato.toml).
DeliveryLimits LimitsFrom(const config::SieveConfig& c);

// Whether a user may store `text` as script `name` (hato sieve put,
// ManageSieve PUTSCRIPT, JMAP SieveScript/set): it compiles within the
// limits, and a new name stays within max_scripts. Blocking (a store read
// for a new name).
struct StoreCheck {
  enum class Kind { kOk, kInvalid, kTooLarge, kTooMany, kTemporary };
  Kind kind = Kind::kOk;
  std::string message;
  bool ok() const { return kind == Kind::kOk; }
};
StoreCheck CheckStore(store::Store& store, int64_t account_id, std::string_view name,
                      std::string_view text, const config::SieveConfig& c);

struct FilterInput {
  std::string_view content;  // the message as it will be stored
  std::string return_path;   // envelope sender, "" for the null path
  std::vector<int64_t> accounts;
  std::vector<std::string> rcpts;  // the RCPT TO addresses as given (for envelope "to")
  // Per account, the RFC 5233 detail of its address (user+detail@domain) when
  // it was reached that way, else "" (or no entry). Without an active script
  // and without a spam verdict, the copy is filed into the folder of that
  // name (matched without regard to case) when the account has it, or when
  // `create_detail_folders`; else INBOX ([delivery] subaddress_folders).
  std::vector<std::string> details;
  bool create_detail_folders = false;
  scan::Verdict verdict;
  bool junk = false;  // DMARC quarantine: kept copies go to \Junk (DeliveryRequest::junk)
  int64_t now = 0;
};

struct Reply {
  int64_t account_id = 0;
  std::string user;  // the account's address
  VacationAction vacation;
};

struct FilterResult {
  // One per copy; empty with `none_kept` when every recipient discarded,
  // rejected or redirected without a copy.
  std::vector<store::Filing> filings;
  bool none_kept = false;
  std::vector<std::string> redirects;      // queued as outbound with the delivery
  std::vector<std::string> redirected_by;  // the redirecting users (loop marker header)
  std::vector<Reply> vacations;            // sent after the delivery commits
  std::vector<std::pair<int64_t, DuplicateMark>> duplicates;  // recorded after it commits
  size_t rejected = 0;  // recipients whose script rejected the message
  std::vector<std::pair<std::string, std::string>> rejections;  // user, reason (for the bounce)
  std::string reject_reason;
  bool all_rejected = false;  // every recipient rejected: refuse at SMTP time
  bool filtered = false;      // some recipient had a script or a spam policy applied
};

// Decides the filings of one message. Store errors while reading a script
// count as a failing script (INBOX, error recorded), never as a lost message.
FilterResult Filter(store::Store& store, const FilterInput& in, const DeliveryLimits& limits = {});

// The outbound request that carries `result.redirects` (the original sender
// kept as envelope sender; SRS is not done yet), or nullopt when none.
std::optional<store::OutboundRequest> RedirectRequest(const FilterResult& result,
                                                      std::string_view content,
                                                      const std::string& sender);

// After the delivery committed: a bounce for recipients whose script
// rejected when SMTP could not refuse (RFC 5429 section 2.1), vacation replies (once per sender and
// period, RFC 5230 section 4.2; queued as outbound with the null sender)
// and duplicate tracking; reports filings that fell back to INBOX. Returns
// how many replies were queued.
// Whether Finish has anything to do for this delivery (most have nothing:
// the caller then skips a hop to the blocking pool).
bool HasAfterCommitWork(const FilterResult& result, const store::DeliveryReceipt& receipt);
size_t Finish(store::Store& store, const FilterInput& in, const FilterResult& result,
              const store::DeliveryReceipt& receipt, const std::string& hostname);

// The reply message for a vacation action (RFC 5230 section 5, RFC 3834).
std::string VacationMessage(const Reply& reply, std::string_view original,
                            const std::string& hostname, int64_t now);

// A ManageSieve / CLI script name (RFC 5804 section 1.6): 1..128 bytes of
// UTF-8 without controls or "/".
Status CheckScriptName(std::string_view name);

// Whether `name` is one of the server's own scripts (kForwardScript,
// kVacationScript: any "jmap." name). They are kept by the member's page and
// JMAP's VacationResponse only: ManageSieve and JMAP SieveScript neither list
// them nor read, activate, rename or delete them (they do not exist there).
bool IsReservedScriptName(std::string_view name);

}  // namespace hato::sieve
