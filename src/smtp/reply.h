// SMTP client-side protocol pieces (RFC 5321 sections 4.2 and 4.5.2): the
// reply reader, EHLO keyword parsing and dot-stuffing. Pure: no I/O; the
// reply reader is fuzzed by fuzz/fuzz_smtp_reply.cc.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::smtp {

// Longest reply we read (RFC 5321 section 4.5.3.1.5 sets 512 per line; be liberal).
inline constexpr size_t kMaxReplyLine = 4096;
inline constexpr size_t kMaxReplyLines = 100;

struct Reply {
  int code = 0;                    // 200..599
  std::vector<std::string> lines;  // the text after "NNN-" / "NNN "
  // RFC 3463 enhanced status code at the start of the first line, or "".
  std::string Enhanced() const;
  // "NNN text" on one line (continuations joined by "; "), for logs and DSNs.
  std::string Text() const;
  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
};

// Collects the lines of one (possibly multi-line) reply.
class ReplyReader {
 public:
  // Feeds one line without its line ending. Returns true when the reply is
  // complete (Take it), false when more lines are needed; kInvalid on a line
  // that is not a reply line or whose code differs from the first line's.
  Result<bool> Feed(std::string_view line);
  Reply Take();

 private:
  Reply reply_;
};

// The EHLO keywords a client acts on (RFC 5321 section 4.1.1.1).
struct Extensions {
  bool starttls = false;
  bool pipelining = false;
  bool eight_bit_mime = false;
  bool smtputf8 = false;
  bool dsn = false;
  uint64_t size = 0;  // 0 = no SIZE limit announced
  // RFC 4954 section 3: the SASL mechanisms after AUTH (upper-case).
  bool auth_plain = false;
  bool auth_login = false;
};
Extensions ParseEhlo(const Reply& ehlo);

// Dot-stuffs a message with CRLF line ends for DATA (RFC 5321 section
// 4.5.2) and appends the terminating "." line (after a CRLF if missing).
std::string DotStuff(std::string_view content);

}  // namespace hato::smtp
