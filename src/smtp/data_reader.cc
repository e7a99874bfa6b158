#include "smtp/data_reader.h"

#include <cstring>

namespace hato::smtp {
namespace {

// The index of the first CR or LF in in[from, in.size()), or in.size(). Eight
// bytes per step (a word compared against CR and LF at once, "has a zero
// byte"): the readers spend most of their time skipping ordinary bytes, and
// a message body is mostly ordinary bytes.
size_t FindLineEnd(std::string_view in, size_t from) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHighs = 0x8080808080808080ull;
  size_t i = from;
  for (; i + 8 <= in.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, in.data() + i, 8);
    uint64_t cr = w ^ (kOnes * '\r');
    uint64_t lf = w ^ (kOnes * '\n');
    if ((((cr - kOnes) & ~cr) | ((lf - kOnes) & ~lf)) & kHighs) break;
  }
  while (i < in.size() && in[i] != '\r' && in[i] != '\n') ++i;
  return i;
}

}  // namespace

void LineEndingNormalizer::Emit(std::string& out, std::string_view s, uint64_t limit) {
  total_ += s.size();
  if (total_ > limit) {
    overflowed_ = true;
    return;
  }
  out.append(s);
}

void LineEndingNormalizer::Feed(std::string_view in, std::string& out, uint64_t limit) {
  size_t run = 0;  // start of a run of ordinary bytes, copied in one append
  for (size_t i = 0; i < in.size(); ++i) {
    if (!pending_cr_) {
      i = FindLineEnd(in, i);  // ordinary bytes stay in the run
      if (i == in.size()) break;
    }
    char c = in[i];
    if (pending_cr_) {
      pending_cr_ = false;
      Emit(out, "\r\n", limit);
      if (c == '\n') {
        run = i + 1;
        continue;
      }
      run = i;
    }
    if (c == '\r' || c == '\n') {
      Emit(out, in.substr(run, i - run), limit);
      if (c == '\r') {
        pending_cr_ = true;
      } else {
        Emit(out, "\r\n", limit);
      }
      run = i + 1;
    }
  }
  if (run < in.size()) Emit(out, in.substr(run), limit);
}

void LineEndingNormalizer::Finish(std::string& out, uint64_t limit) {
  if (pending_cr_) {
    pending_cr_ = false;
    Emit(out, "\r\n", limit);
  }
}

void DataReader::Emit(std::string_view s) {
  size_ += s.size();
  if (size_ > max_size_) {
    too_large_ = true;
    return;
  }
  content_.append(s);
}

size_t DataReader::Feed(std::string_view in) {
  size_t i = 0;
  size_t run = 0;  // start of pending ordinary bytes in kMid state
  auto flush = [&](size_t end) {
    if (end > run) Emit(in.substr(run, end - run));
  };
  for (; i < in.size() && state_ != State::kDone; ++i) {
    char c = in[i];
    switch (state_) {
      case State::kMid:
        if (c != '\r' && c != '\n') {
          // Fast path: skip ordinary bytes up to the next line ending in one go
          // (to the last ordinary byte; the loop's ++i reaches the ending).
          i = FindLineEnd(in, i + 1) - 1;
          continue;  // stays in the pending run
        }
        if (c == '\r') {
          flush(i);
          state_ = State::kCr;
        } else {  // bare LF: content, normalised to CRLF
          flush(i);
          Emit("\r\n");
        }
        break;
      case State::kLineStart:
        if (c == '.') {
          state_ = State::kDot;
        } else if (c == '\r') {
          state_ = State::kCr;
        } else if (c == '\n') {
          Emit("\r\n");
          state_ = State::kMid;
        } else {
          run = i;
          state_ = State::kMid;
          continue;
        }
        break;
      case State::kCr:
        Emit("\r\n");
        if (c == '\n') {
          state_ = State::kLineStart;
        } else if (c == '\r') {
          state_ = State::kCr;  // bare CR, then another CR
        } else {
          state_ = State::kMid;  // bare CR: not a line start
          run = i;
          continue;
        }
        break;
      case State::kDot:
        if (c == '\r') {
          state_ = State::kDotCr;
        } else if (c == '\n') {
          Emit(".\r\n");  // "." ended by a bare LF is content, never the end
          state_ = State::kMid;
        } else {
          // Dot-stuffing: the leading dot is removed (RFC 5321 section 4.5.2).
          run = i;
          state_ = State::kMid;
          continue;
        }
        break;
      case State::kDotCr:
        if (c == '\n') {
          state_ = State::kDone;  // <CRLF>.<CRLF>
          break;
        }
        Emit(".\r\n");  // "." ended by a bare CR is content
        if (c == '\r') {
          state_ = State::kCr;
        } else if (c == '.') {
          Emit(".");  // after a bare CR we are not at a line start
          state_ = State::kMid;
          run = i + 1;
        } else {
          state_ = State::kMid;
          run = i;
          continue;
        }
        break;
      case State::kDone:
        break;
    }
    run = i + 1;
  }
  if (state_ == State::kMid) flush(i);
  return i;
}

}  // namespace hato::smtp
