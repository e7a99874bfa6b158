// mbox (mboxrd) and Maildir formats for hato export/import (issue 6).
//
// mboxrd: each message starts with a "From SENDER DATE" line (asctime date);
// any body line matching ^>*From  gets one more ">" on export and loses one
// on import, so every message survives the round trip. Lines end in LF in the
// file and CRLF in the store. References: RFC 4155 (application/mbox) and the
// mboxrd convention (https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml).
//
// Maildir: one file per message in cur/ named "<unique>:2,<flags>"; flags D
// (draft), F (flagged), R (replied = \Answered), S (seen), T (trashed =
// \Deleted). Folders in Maildir++ layout: ".A.B" for A/B, names in IMAP
// modified UTF-7 (as Dovecot writes them).
//
// Pure: no I/O, fuzzed by fuzz/fuzz_mbox.cc.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace hato::transfer {

inline constexpr size_t kMaxImportMessage = 64u << 20;  // bytes; larger ones are skipped
inline constexpr size_t kMaxFromLine = 4096;            // bytes of a "From " line at most

// The "From " line (with its LF) that starts a message in an mbox.
std::string MboxFromLine(std::string_view return_path, int64_t internal_date);
// Appends one message (CRLF content) in mboxrd form, ending with an empty line.
void AppendMboxMessage(std::string& out, std::string_view return_path, int64_t internal_date,
                       std::string_view content);

struct MboxMessage {
  std::string return_path;    // from the From line; "" for MAILER-DAEMON or none
  int64_t internal_date = 0;  // from the From line; 0 when unparsable
  std::string content;        // CRLF line ends, unquoted
  bool too_large = false;     // content was cut at kMaxImportMessage
};

// Splits an mbox stream fed in chunks of any size. Memory: the current
// message plus one partial line.
class MboxSplitter {
 public:
  explicit MboxSplitter(size_t max_message = kMaxImportMessage)
      : max_(max_message), line_cap_(max_message + kMaxFromLine) {}
  void Feed(std::string_view chunk);
  // Call at the end of the input.
  void Finish();
  // The next complete message, if any.
  std::optional<MboxMessage> Next();
  // Bytes before the first From line that were not part of any message.
  uint64_t junk_bytes() const { return junk_; }

 private:
  void Line(std::string_view line);  // without its LF
  void EndMessage();

  size_t max_;
  size_t line_cap_;  // longer lines are cut here (a From line always fits)
  std::string partial_;
  bool in_message_ = false;
  bool pending_blank_ = false;  // an empty line that may be the separator
  MboxMessage cur_;
  std::deque<MboxMessage> ready_;
  uint64_t junk_ = 0;
};

// "From SENDER DATE" with a valid asctime DATE.
bool IsFromLine(std::string_view line);

// Parses "Sat Nov 22 03:16:50 2026" (asctime, UTC). nullopt when malformed.
std::optional<int64_t> ParseAsctime(std::string_view s);

// Maildir flags "<info>" after ":2," <-> store flag bits (store::Flag).
uint32_t MaildirFlags(std::string_view file_name);
std::string MaildirFlagSuffix(uint32_t flags);

// CRLF -> LF for a file, and back (bare LF -> CRLF; existing CRLF kept).
std::string ToLf(std::string_view crlf);
std::string ToCrlf(std::string_view text);

}  // namespace hato::transfer
