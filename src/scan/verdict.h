// What the content scanners (rspamd for spam, clamd for viruses; src/scan)
// said of one inbound message. Filled before the SMTP 250 and read by the
// delivery's filing decision: the Sieve spamtest/virustest tests (RFC 5235,
// src/sieve) and the default policy when an account has no script.
#pragma once

#include <string>

namespace hato::scan {

// The operator's policy for a spam verdict (hato.toml [scan]).
enum class SpamAction {
  kNone,    // clean, or not scanned
  kMark,    // X-Spam headers and the $Junk keyword, filed as usual
  kJunk,    // filed into the account's \Junk mailbox
  kReject,  // refused at SMTP time (5xx), never stored
};

struct Verdict {
  bool spam_scanned = false;  // rspamd answered in time
  double spam_score = 0;      // rspamd's score
  double spam_required = 0;   // rspamd's threshold for "spam"
  SpamAction spam_action = SpamAction::kNone;
  bool virus_scanned = false;  // clamd answered in time
  bool virus_found = false;
  std::string virus_name;  // clamd's signature name when found
};

}  // namespace hato::scan
