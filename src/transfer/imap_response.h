// Reading another IMAP server's responses for hato migrate (RFC 3501 section
// 7, RFC 9051 section 7): an incremental reader that joins a response's line
// and its literals ({N} CRLF then N octets), and parsers for the two responses
// migrate uses (LIST and FETCH). Pure: no I/O (fuzz/fuzz_imap_response.cc).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::transfer {

inline constexpr size_t kMaxResponseLine = 1 << 20;  // bytes of one line, literals excluded
inline constexpr size_t kMaxLiteral = 64u << 20;     // a message body at most

struct ImapResponse {
  // The response's text with each literal replaced by "{}" ("* 1 FETCH (BODY[] {})").
  std::string text;
  std::vector<std::string> literals;
};

class ImapResponseReader {
 public:
  void Feed(std::string_view bytes);
  // The next complete response; kInvalid (and the reader is unusable) when a
  // line or literal exceeds its limit.
  Result<std::optional<ImapResponse>> Next();

 private:
  std::string buf_;
  size_t pos_ = 0;
  ImapResponse cur_;
  size_t literal_left_ = 0;
  bool in_literal_ = false;
  bool failed_ = false;
};

struct ListEntry {
  std::string name;    // as sent (modified UTF-7), separator as sent
  char separator = 0;  // 0 for NIL
  bool noselect = false;
};
// "* LIST (\HasNoChildren) "/" "INBOX"" -> entry; nullopt when not a LIST response.
std::optional<ListEntry> ParseListResponse(const ImapResponse& r);

struct FetchItem {
  uint32_t uid = 0;
  std::vector<std::string> flags;   // as sent, e.g. "\\Seen", "$Forwarded"
  std::string internal_date;        // between the DQUOTEs
  std::optional<std::string> body;  // BODY[]
};
// "* n FETCH (...)" -> the items migrate asks for; nullopt when not a FETCH.
std::optional<FetchItem> ParseFetchResponse(const ImapResponse& r);

// Quotes a string for a command (RFC 3501 quoted; kInvalid for CR/LF/NUL).
Result<std::string> Quote(std::string_view s);

}  // namespace hato::transfer
