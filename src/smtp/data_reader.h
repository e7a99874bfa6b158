// Incremental readers for message content (RFC 5321 section 4.1.1.4 DATA and
// RFC 3030 BDAT). Pure state machines over bytes: fuzzed by fuzz/fuzz_smtp_data.cc.
//
// SMTP smuggling: only <CRLF>.<CRLF> ends DATA. A "." line ended by a bare LF or
// a bare CR is ordinary content, so a downstream server that treats <LF>.<LF> as
// the end can never be handed a second, hidden message. Bare CR and bare LF in
// content are normalised to CRLF, so every stored message uses CRLF line endings.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hato::smtp {

// Normalises line endings of a byte stream (bare CR or bare LF become CRLF),
// across calls. Used for BDAT chunks and by DataReader.
class LineEndingNormalizer {
 public:
  // Appends the normalised form of `in` to `out`, dropping output past `limit`
  // bytes of total output (sets overflowed()).
  void Feed(std::string_view in, std::string& out, uint64_t limit);
  // Flushes a pending CR at end of input.
  void Finish(std::string& out, uint64_t limit);
  bool overflowed() const { return overflowed_; }
  uint64_t total() const { return total_; }

 private:
  void Emit(std::string& out, std::string_view s, uint64_t limit);
  bool pending_cr_ = false;
  bool overflowed_ = false;
  uint64_t total_ = 0;
};

// Reads DATA content up to and including the terminating <CRLF>.<CRLF>,
// undoing dot-stuffing (RFC 5321 section 4.5.2).
class DataReader {
 public:
  explicit DataReader(uint64_t max_size) : max_size_(max_size) {}

  // Consumes bytes from `in`; returns how many were consumed (fewer than
  // in.size() only when the terminator was found).
  size_t Feed(std::string_view in);

  bool done() const { return state_ == State::kDone; }
  // True when the content exceeded max_size; content beyond it was discarded.
  bool too_large() const { return too_large_; }
  uint64_t size() const { return size_; }
  std::string& content() { return content_; }

 private:
  enum class State { kLineStart, kMid, kCr, kDot, kDotCr, kDone };
  void Emit(std::string_view s);

  uint64_t max_size_;
  uint64_t size_ = 0;
  bool too_large_ = false;
  State state_ = State::kLineStart;
  std::string content_;
};

}  // namespace hato::smtp
