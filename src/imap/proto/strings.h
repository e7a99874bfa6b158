// IMAP string syntax (RFC 3501 section 4.3, RFC 9051 section 4.3) for response
// writers: atoms, quoted strings, literals and NIL, chosen by content.
// Pure; used by the response writer and by BODYSTRUCTURE/ENVELOPE rendering.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hato::imap {

// True when `s` can be sent as a quoted string: no CR, LF or NUL, no 8-bit
// bytes unless `utf8` (RFC 9051 / UTF8=ACCEPT), and short enough to be polite.
inline bool Quotable(std::string_view s, bool utf8 = false) {
  if (s.size() > 1024) return false;
  for (unsigned char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
    if (c >= 0x80 && !utf8) return false;
  }
  return true;
}

// Appends `s` as a quoted string if possible, else as a literal {n}\r\n....
inline void AppendString(std::string& out, std::string_view s, bool utf8 = false) {
  if (Quotable(s, utf8)) {
    out += '"';
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  } else {
    out += '{';
    out += std::to_string(s.size());
    out += "}\r\n";
    out.append(s);
  }
}

// nstring: NIL or a string.
inline void AppendNString(std::string& out, const std::optional<std::string_view>& s,
                          bool utf8 = false) {
  if (!s) {
    out += "NIL";
  } else {
    AppendString(out, *s, utf8);
  }
}

}  // namespace hato::imap
