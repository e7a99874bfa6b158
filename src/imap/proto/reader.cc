#include "imap/proto/reader.h"

#include <algorithm>
#include <tuple>

namespace hato::imap {
namespace {

// While skipping, the reader keeps this many trailing bytes of an unfinished
// line so that a "{n+}" at its end is still recognised when the LF arrives:
// "{" + 20 digits + "+}" + CR is 24 bytes.
constexpr size_t kDiscardTail = 32;
// Feed() compacts the buffer once this much consumed input sits in front of it.
constexpr size_t kCompactAt = 64 * 1024;

struct LiteralHeader {
  uint64_t size;
  bool sync;
};

// The literal announced at the end of a line (CRLF already removed):
// "{" number ["+"] "}" (RFC 3501 section 9 literal, RFC 7888 section 8).
// More than 20 digits reads as an impossibly big literal (UINT64_MAX), so a
// padded length can neither overflow nor hide from the skipping code.
std::optional<LiteralHeader> TrailingLiteral(std::string_view line) {
  if (line.empty() || line.back() != '}') return std::nullopt;
  line.remove_suffix(1);
  bool sync = true;
  if (!line.empty() && line.back() == '+') {
    sync = false;
    line.remove_suffix(1);
  }
  size_t digits = 0;
  while (digits < line.size() && line[line.size() - 1 - digits] >= '0' &&
         line[line.size() - 1 - digits] <= '9') {
    ++digits;
    if (digits > 20) return LiteralHeader{UINT64_MAX, sync};
  }
  if (digits == 0 || digits == line.size() || line[line.size() - 1 - digits] != '{') {
    return std::nullopt;
  }
  uint64_t n = 0;
  for (char c : line.substr(line.size() - digits)) {
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (n > (UINT64_MAX - d) / 10) return LiteralHeader{UINT64_MAX, sync};
    n = n * 10 + d;
  }
  return LiteralHeader{n, sync};
}

// Whether a command (its first line at least) is an APPEND: "tag SP APPEND SP".
bool IsAppend(std::string_view so_far) {
  auto tag = ParseTag(so_far);
  if (!tag || so_far.size() < tag->size() + 1) return false;
  std::string_view rest = so_far.substr(tag->size() + 1);
  constexpr std::string_view kAppend = "APPEND ";
  if (rest.size() < kAppend.size()) return false;
  for (size_t i = 0; i < kAppend.size(); ++i) {
    char c = rest[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != kAppend[i]) return false;
  }
  return true;
}

std::string_view StripCr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// What the first line of a buffered command says about its use of sequence
// numbers (UsesSequenceNumbers): tag SP ["UID" SP] verb ...
enum class SeqUse { kNo, kYes, kParse };
SeqUse SeqUseOfFirstLine(std::string_view line, bool complete) {
  auto word = [line, complete](size_t& pos) {
    size_t end = line.find(' ', pos);
    std::string w;
    for (size_t i = pos; i < (end == std::string_view::npos ? line.size() : end); ++i) {
      char c = line[i];
      w += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    }
    bool whole = end != std::string_view::npos || complete;
    pos = end == std::string_view::npos ? line.size() : end + 1;
    return std::make_pair(w, whole);
  };
  size_t pos = 0;
  auto [tag, tag_whole] = word(pos);
  if (!tag_whole) return SeqUse::kYes;  // too early to tell
  auto [verb, verb_whole] = word(pos);
  bool uid = verb == "UID" && verb_whole;
  if (uid) std::tie(verb, verb_whole) = word(pos);
  if (!verb_whole) return SeqUse::kYes;
  bool search = verb == "SEARCH" || verb == "SORT" || verb == "THREAD";
  bool seq_verb = verb == "FETCH" || verb == "STORE" || search || verb == "COPY" || verb == "MOVE";
  if (!uid) return seq_verb ? SeqUse::kYes : SeqUse::kNo;
  return search ? SeqUse::kParse : SeqUse::kNo;
}

}  // namespace

bool CommandReader::PendingUsesSequenceNumbers() const {
  if (mode_ == Mode::kDead) return false;
  if (mode_ == Mode::kDiscard) return true;  // rare: wait until resynchronized
  size_t pos = head_;
  for (size_t n = 0; n < kMaxLookahead; ++n) {
    if (pos >= buf_.size()) return false;
    size_t start = pos;
    size_t lf = buf_.find('\n', pos);
    std::string_view first = StripCr(
        std::string_view(buf_).substr(pos, (lf == std::string::npos ? buf_.size() : lf) - pos));
    SeqUse use = SeqUseOfFirstLine(first, lf != std::string::npos);
    if (use == SeqUse::kYes) return true;
    // Find the end of this command: lines joined by literals.
    while (true) {
      if (lf == std::string::npos) return use == SeqUse::kParse;  // not all here yet
      auto lit = TrailingLiteral(StripCr(std::string_view(buf_).substr(pos, lf - pos)));
      if (!lit) break;
      if (lit->size > buf_.size() - (lf + 1)) return use == SeqUse::kParse;
      pos = lf + 1 + lit->size;
      lf = buf_.find('\n', pos);
    }
    if (use == SeqUse::kParse) {
      std::string_view text = std::string_view(buf_).substr(start, lf - start);
      if (lf > pos) text = StripCr(text);
      auto cmd = ParseCommand(text, limits_);
      if (cmd && UsesSequenceNumbers(*cmd)) return true;
    }
    pos = lf + 1;
  }
  return true;
}

CommandReader::CommandReader(Limits limits) : limits_(limits) {}

void CommandReader::Feed(std::string_view bytes) {
  if (mode_ == Mode::kDead) return;
  if (head_ >= kCompactAt && head_ * 2 >= buf_.size()) {
    buf_.erase(0, head_);
    auto shift = [this](size_t& off) { off = off >= head_ ? off - head_ : 0; };
    shift(line_start_);
    shift(scan_);
    shift(literal_end_);
    head_ = 0;
  }
  buf_.append(bytes);
}

void CommandReader::Consume(size_t to) {
  head_ = to;
  if (head_ == buf_.size()) {
    buf_.clear();
    head_ = 0;
  }
}

void CommandReader::ResetCommand() {
  line_start_ = scan_ = head_;
  in_literal_ = false;
  lines_started_ = false;
  literals_ = 0;
}

ReadResult CommandReader::Refuse(ReadError e, size_t consume_to) {
  e.discarded = consume_to - head_;
  Consume(consume_to);
  ResetCommand();
  return e;
}

ReadResult CommandReader::StartDiscard(ReadError e, uint64_t literal) {
  pending_ = std::move(e);
  discard_literal_ = literal;
  mode_ = Mode::kDiscard;
  if (literal > limits_.max_discard) return Die(pending_);
  return Next();
}

ReadResult CommandReader::Die(ReadError e) {
  mode_ = Mode::kDead;
  e.close = true;
  pending_ = e;
  buf_.clear();
  head_ = 0;
  ResetCommand();
  return e;
}

bool CommandReader::Discard() {
  for (;;) {
    if (discard_literal_ > 0) {
      uint64_t take = std::min<uint64_t>(buf_.size() - head_, discard_literal_);
      discard_literal_ -= take;
      pending_.discarded += take;
      Consume(head_ + take);
      scan_ = head_;
      if (discard_literal_ > 0) return false;
    }
    scan_ = std::max(scan_, head_);
    size_t lf = buf_.find('\n', scan_);
    if (lf == std::string::npos) {
      size_t keep = std::max(head_, buf_.size() > kDiscardTail ? buf_.size() - kDiscardTail : 0);
      pending_.discarded += keep - head_;
      Consume(keep);
      scan_ = buf_.size();
      if (pending_.discarded > limits_.max_discard) Die(pending_);
      return false;
    }
    auto lit = TrailingLiteral(StripCr(std::string_view(buf_).substr(head_, lf - head_)));
    pending_.discarded += lf + 1 - head_;
    Consume(lf + 1);
    scan_ = head_;
    if (pending_.discarded > limits_.max_discard) {
      Die(pending_);
      return false;
    }
    if (lit && !lit->sync) {
      // LITERAL+: the bytes follow whether we like it or not (RFC 7888 section 4).
      if (lit->size > limits_.max_discard - pending_.discarded) {
        Die(pending_);
        return false;
      }
      discard_literal_ = lit->size;
      continue;
    }
    // The end of the failed command, or a synchronizing literal the client
    // will not send since it gets our tagged reply instead of "+".
    return true;
  }
}

ReadResult CommandReader::Next() {
  if (mode_ == Mode::kDead) return pending_;
  if (mode_ == Mode::kDiscard) {
    if (!Discard()) {
      if (mode_ == Mode::kDead) return pending_;
      return NeedMore{};
    }
    mode_ = Mode::kCommand;
    ResetCommand();
    return pending_;
  }
  for (;;) {
    if (in_literal_) {
      if (buf_.size() < literal_end_) return NeedMore{};
      in_literal_ = false;
      line_start_ = scan_ = literal_end_;
    }
    size_t lf = buf_.find('\n', scan_);
    size_t line_end = lf == std::string::npos ? buf_.size() : lf + 1;
    std::string_view so_far = std::string_view(buf_).substr(head_, line_end - head_);
    if (line_end - line_start_ > limits_.max_line) {
      ReadError e;
      // Look for the tag only in the bytes every feeding pattern has by now,
      // and only if its end (SP) is among them, so the result never depends
      // on how the input was chunked.
      std::string_view seen = so_far.substr(0, line_start_ - head_ + limits_.max_line + 1);
      e.tag = ParseTag(seen);
      if (e.tag && e.tag->size() == seen.size()) e.tag.reset();
      e.kind = ReadErrorKind::kLineTooLong;
      e.message = "line too long";
      e.discarded = line_start_ - head_;
      Consume(line_start_);
      scan_ = head_;
      return StartDiscard(std::move(e), 0);
    }
    if (lf == std::string::npos) {
      scan_ = buf_.size();
      lines_started_ = buf_.size() > head_;
      return NeedMore{};
    }
    lines_started_ = true;
    std::string_view line = StripCr(std::string_view(buf_).substr(line_start_, lf - line_start_));
    uint64_t command_size = lf + 1 - head_;
    auto lit = TrailingLiteral(line);
    if (!lit) {
      // The command without its line end; a CR right after a literal is the literal's.
      std::string_view text = so_far.substr(0, so_far.size() - 1);
      if (lf > line_start_) text = StripCr(text);
      if (command_size > limits_.max_command) {
        return Refuse(ReadError{ParseTag(text), ReadErrorKind::kTooBig, "command too long"},
                      lf + 1);
      }
      auto cmd = ParseCommand(text, limits_);
      if (!cmd) {
        return Refuse(ReadError{ParseTag(text), ReadErrorKind::kBad, cmd.error().message}, lf + 1);
      }
      Consume(lf + 1);
      ResetCommand();
      return std::move(*cmd);
    }
    // A literal is announced.
    ReadError e;
    e.tag = ParseTag(so_far);
    bool too_many = ++literals_ > limits_.max_literals;
    uint64_t max_literal = limits_.max_literal;
    if (!IsAppend(so_far)) max_literal = std::min(max_literal, limits_.max_other_literal);
    bool too_big = lit->size > max_literal || command_size > limits_.max_command ||
                   lit->size > limits_.max_command - command_size;
    if (too_many || too_big) {
      e.kind = too_big ? ReadErrorKind::kTooBig : ReadErrorKind::kBad;
      e.message = too_big ? "literal too big" : "too many literals";
      if (lit->sync) {
        e.synchronizing = too_big;
        return Refuse(std::move(e), lf + 1);
      }
      e.discarded = lf + 1 - head_;
      Consume(lf + 1);
      scan_ = head_;
      return StartDiscard(std::move(e), lit->size);
    }
    literal_end_ = lf + 1 + lit->size;
    in_literal_ = true;
    if (lit->sync) {
      // Answer BAD rather than "+" when the command cannot succeed anyway.
      Status st = CheckCommandPrefix(so_far, limits_);
      if (!st) {
        e.kind = ReadErrorKind::kBad;
        e.message = st.error().message;
        return Refuse(std::move(e), lf + 1);
      }
      return NeedContinuation{lit->size};
    }
  }
}

LineResult CommandReader::NextLine() {
  if (mode_ == Mode::kDead) return LineTooLong{pending_.discarded, true};
  for (;;) {
    size_t lf = buf_.find('\n', scan_);
    if (line_discarding_) {
      if (lf == std::string::npos) {
        line_discarded_ += buf_.size() - head_;
        Consume(buf_.size());
        ResetCommand();
        if (line_discarded_ > limits_.max_discard) {
          Die(ReadError{std::nullopt, ReadErrorKind::kLineTooLong, "line too long"});
          pending_.discarded = line_discarded_;
          return LineTooLong{line_discarded_, true};
        }
        return NeedMore{};
      }
      line_discarded_ += lf + 1 - head_;
      Consume(lf + 1);
      ResetCommand();
      line_discarding_ = false;
      if (line_discarded_ > limits_.max_discard) {
        Die(ReadError{std::nullopt, ReadErrorKind::kLineTooLong, "line too long"});
        pending_.discarded = line_discarded_;
        return LineTooLong{line_discarded_, true};
      }
      return LineTooLong{line_discarded_, false};
    }
    size_t line_end = lf == std::string::npos ? buf_.size() : lf + 1;
    if (line_end - head_ > limits_.max_line) {
      line_discarding_ = true;
      line_discarded_ = 0;
      continue;
    }
    if (lf == std::string::npos) {
      scan_ = buf_.size();
      return NeedMore{};
    }
    Line l{std::string(StripCr(std::string_view(buf_).substr(head_, lf - head_)))};
    Consume(lf + 1);
    ResetCommand();
    return l;
  }
}

}  // namespace hato::imap
