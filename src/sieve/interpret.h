// The Sieve interpreter (RFC 5228 and the extensions below): a checked
// script, one message and its envelope in; the actions to take out. Pure: the
// few things it needs from the store (does a mailbox exist, the text of an
// included script, was a duplicate seen) come through Environment callbacks,
// and everything it decides is returned in Outcome for the delivery
// (src/sieve/deliver.h) to commit.
//
// Capabilities (the `require` names; rfc/index.md lists what is partial):
//   fileinto, envelope, encoded-character (RFC 5228); reject, ereject
//   (RFC 5429); imap4flags (RFC 5232); copy (RFC 3894); body (RFC 5173);
//   variables (RFC 5229); vacation, vacation-seconds (RFC 5230, RFC 6131);
//   relational, comparator-i;ascii-numeric (RFC 5231, RFC 4790); subaddress
//   (RFC 5233); date, index (RFC 5260); mailbox (RFC 5490); include
//   (RFC 6609); editheader (RFC 5293); duplicate (RFC 7352); spamtest,
//   spamtestplus, virustest (RFC 5235, fed by scan::Verdict).
//
// Thread-safety: Check and Run are reentrant; the callbacks are called on the
// calling thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "scan/verdict.h"
#include "sieve/script.h"

namespace hato::sieve {

// The capabilities this interpreter implements (ManageSieve SIEVE capability).
const std::vector<std::string>& Capabilities();

// Validates a parsed script: known commands and tests, their tags and
// arguments, `require` before use, if/elsif/else shape (RFC 5228 section
// 2.10.5 "compile-time" errors). kInvalid with "line N: ..." when not.
Status Check(const Script& script);

// Parse then Check: what hato sieve check and ManageSieve CHECKSCRIPT do.
Result<Script> Compile(std::string_view text, const Limits& limits = {});

// The mailboxes a script's fileinto commands name (RFC 5228 section 4.1),
// at any depth of if/elsif/else, in order, each once: the folders its
// deliveries may land in besides INBOX (IMAP NOTIFY's INBOXES, RFC 5465
// section 6.2). Names holding a variable ("${", RFC 5229) are left out: they
// are known only when a message runs through the script.
std::vector<std::string> FileintoTargets(const Script& script);

struct Envelope {
  std::string from;  // MAIL FROM, "" for the null path
  std::string to;    // the recipient this run is for (RCPT TO)
};

struct Environment {
  std::string_view message;  // the whole message (CRLF line ends)
  Envelope envelope;
  scan::Verdict verdict;
  int64_t now = 0;                     // unix seconds (currentdate, vacation)
  std::vector<std::string> addresses;  // the user's own addresses (vacation, RFC 5230 4.5)
  std::function<bool(const std::string& mailbox)> mailbox_exists;
  // include (RFC 6609): the text of the user's (or the global) script.
  std::function<Result<std::string>(const std::string& name, bool global)> load_script;
  // duplicate (RFC 7352): was this tracking key seen within `seconds`?
  std::function<bool(const std::string& key, int64_t seconds)> duplicate_seen;
};

struct FileAction {
  std::string mailbox;  // "" = INBOX (keep)
  std::vector<std::string> flags;
  bool create = false;
};

struct VacationAction {
  std::string to;       // the envelope sender the reply goes to
  std::string from;     // :from, or "" (the recipient)
  std::string subject;  // :subject, or "Auto: " + the original subject
  std::string reason;
  bool mime = false;    // reason is a MIME entity (headers + body)
  int64_t seconds = 0;  // the once-per-period span (:days * 86400 or :seconds)
  std::string handle;   // :handle, or a digest of the arguments
};

struct DuplicateMark {
  std::string key;
  int64_t seconds = 0;
};

struct Outcome {
  std::vector<FileAction> files;       // keep, fileinto (in order, duplicates merged)
  std::vector<std::string> redirects;  // addresses
  bool reject = false;                 // reject or ereject (RFC 5429)
  bool ereject = false;
  std::string reject_reason;
  std::optional<VacationAction> vacation;
  std::vector<DuplicateMark> duplicates;  // keys to remember once delivered
  std::optional<std::string> header;      // editheader: the new header block (with its blank line)
  bool implicit_keep = false;             // the message was kept because nothing cancelled it
};

// A checked script made ready to run many times: every test and command of
// it bound to its table entry and arguments once, which a run otherwise does
// at every test (bench/sieve_run.sh; deliver.cc caches one per account).
// Immutable once built: concurrent runs on several threads may share one.
// Scripts that `include` loads at run time are bound as they run.
class Prepared {
 public:
  explicit Prepared(Script script);
  ~Prepared();
  Prepared(const Prepared&) = delete;  // the bindings point into script_
  Prepared& operator=(const Prepared&) = delete;
  const Script& script() const { return script_; }

  struct Bindings;  // interpret.cc
  const Bindings& bindings() const { return *bindings_; }

 private:
  Script script_;
  std::unique_ptr<const Bindings> bindings_;
};

// Runs a checked script. A runtime error (a limit, an action conflict, a
// bad address for redirect) is returned as an Error: the caller keeps the
// message in INBOX (RFC 5228 section 2.10.6) and records the error.
Result<Outcome> Run(const Script& script, const Environment& env, const Limits& limits = {});
Result<Outcome> Run(const Prepared& script, const Environment& env, const Limits& limits = {});

}  // namespace hato::sieve
