// Incremental IMAP command reader: bytes in, framed and parsed commands out
// (RFC 3501 sections 2.2 and 4.3 framing, RFC 7888 LITERAL+, RFC 7889
// APPENDLIMIT, RFC 9051 section 7.1 [TOOBIG]). Pure: the session feeds it what
// it read from the socket and acts on what Next() returns; no I/O here.
//
// Framing. A command is lines joined by literals: a line that ends with
// "{n}" (synchronizing) or "{n+}" (non-synchronizing, LITERAL+) is followed by
// exactly n bytes, then the command goes on. CRLF ends a line; a bare LF is
// accepted too. Every line, literal and the whole command are bounded (Limits).
//
// Synchronizing literals. When a line announces "{n}", the reader checks the
// command so far (CheckCommandPrefix) and the limits, then returns
// NeedContinuation once: the session sends "+ Ready" and the client sends the
// n bytes. If the literal is refused, Next() returns a ReadError instead
// (tagged NO [TOOBIG] for size, BAD for syntax) and the reader forgets the
// command: the client, having got a tagged reply instead of "+", does not send
// the literal (RFC 3501 section 7.5).
//
// Errors and resynchronization (the choices RFC 7888 section 4 leaves open):
//   * syntax error in a complete command: the command is dropped, tagged BAD;
//   * line longer than max_line: the input is skipped up to the end of that
//     line, then BAD is reported (with how much was skipped);
//   * non-synchronizing literal over max_literal / max_command: the client
//     sends the bytes anyway; the reader skips them and the rest of the command
//     (further "{n+}" literals included) and then reports tagged BAD [TOOBIG];
//   * skipping is bounded by max_discard: a literal announced beyond it, or a
//     line that goes on past it, gives an error with close = true (send BYE
//     and close), and the reader is dead from then on.
//
// Plain lines. AUTHENTICATE continuation lines (RFC 3501 section 6.2.2) and
// IDLE's "DONE" (RFC 2177 section 3) are not commands: the session reads them
// with NextLine(), which shares the buffer (pipelined bytes are never lost).
//
// Thread safety: none; one reader per connection, used by its session only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "imap/proto/command.h"

namespace hato::imap {

struct NeedMore {};

// A synchronizing literal of `size` bytes is acceptable: send "+ Ready\r\n".
struct NeedContinuation {
  uint64_t size = 0;
};

enum class ReadErrorKind {
  kBad,          // syntax (or a parser limit): tagged BAD
  kTooBig,       // literal or command over its limit: NO [TOOBIG] / BAD [TOOBIG]
  kLineTooLong,  // a line over Limits::max_line: BAD
};

struct ReadError {
  std::optional<std::string> tag;  // when the command started with a valid tag
  ReadErrorKind kind = ReadErrorKind::kBad;
  std::string message;
  uint64_t discarded = 0;      // input bytes dropped for this error (the command's own included)
  bool synchronizing = false;  // kTooBig for a "{n}" literal the client has not sent: NO, not BAD
  bool close = false;          // cannot resynchronize: send "* BYE" and close the connection
};

using ReadResult = std::variant<NeedMore, NeedContinuation, Command, ReadError>;

// A plain line, without its CRLF (or LF).
struct Line {
  std::string text;
};
struct LineTooLong {
  uint64_t discarded = 0;
  bool close = false;  // it went on past Limits::max_discard
};
using LineResult = std::variant<NeedMore, Line, LineTooLong>;

class CommandReader {
 public:
  explicit CommandReader(Limits limits = {});

  // Appends input. Cheap; all the work happens in Next()/NextLine().
  void Feed(std::string_view bytes);

  // The next event. Call it until it returns NeedMore, then Feed() more.
  ReadResult Next();

  // The next plain line (see the file comment); not to be mixed into the
  // middle of a command (call it only when the last Next() returned a Command
  // or an error, or before any command).
  LineResult NextLine();

  // Releases the input buffer's memory when nothing is buffered (a session
  // about to wait a long time, as in IDLE).
  void Trim() {
    if (buf_.empty() && head_ == 0 && mode_ == Mode::kCommand) std::string().swap(buf_);
  }

  // Whether a command received after the last one Next() returned (complete
  // or not) uses message sequence numbers (UsesSequenceNumbers, RFC 3501
  // section 5.5). Looks at most kMaxLookahead commands ahead, and answers
  // true past them or when a partial command cannot be classified yet: the
  // session then holds EXPUNGE a little longer, which is always safe.
  bool PendingUsesSequenceNumbers() const;
  static constexpr size_t kMaxLookahead = 64;

  // Bytes fed and not yet consumed.
  size_t buffered() const { return buf_.size() - head_; }
  // A command has begun and is not complete.
  bool in_command() const { return lines_started_; }
  const Limits& limits() const { return limits_; }
  // New limits from the next literal announcement or line on (the session
  // raises them once the client has logged in).
  void set_limits(const Limits& l) { limits_ = l; }

 private:
  // Where the reader is within the input.
  enum class Mode {
    kCommand,  // reading a command (or waiting for one)
    kDiscard,  // skipping input after an error, then reporting pending_
    kDead,     // gave up (close = true was reported)
  };

  void Consume(size_t to);
  void ResetCommand();
  // Skips discard_literal_ bytes and lines (with their "{n+}" literals) up to
  // the end of the failed command. Returns true when resynchronized.
  bool Discard();
  ReadResult Refuse(ReadError e, size_t consume_to);
  ReadResult StartDiscard(ReadError e, uint64_t literal);
  ReadResult Die(ReadError e);

  Limits limits_;
  std::string buf_;
  size_t head_ = 0;          // start of unconsumed input (= start of the current command)
  size_t line_start_ = 0;    // start of the current line of the command
  size_t scan_ = 0;          // where to look for the next LF
  size_t literal_end_ = 0;   // while waiting for a literal's bytes: where they end
  bool in_literal_ = false;  // waiting for literal bytes
  bool lines_started_ = false;
  size_t literals_ = 0;
  Mode mode_ = Mode::kCommand;
  ReadError pending_;             // reported when the discard is done
  uint64_t discard_literal_ = 0;  // literal bytes still to skip
  bool line_discarding_ = false;  // NextLine() is skipping an over-long line
  uint64_t line_discarded_ = 0;
};

}  // namespace hato::imap
