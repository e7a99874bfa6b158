// Small string helpers shared by the protocol parsers. Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hato {

// ASCII-only case folding (protocol keywords are ASCII; RFC 5321 section 2.4).
std::string AsciiLower(std::string_view s);
std::string AsciiUpper(std::string_view s);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix);

std::string_view TrimSpaces(std::string_view s);

// Splits on runs of SP/HTAB.
std::vector<std::string_view> SplitWords(std::string_view s);

// Parses a non-negative decimal number of 1 to 20 digits that fits in uint64
// (no sign, no spaces; RFC 1870's SIZE has at most 20 digits).
std::optional<uint64_t> ParseUint(std::string_view s);

// Base64 (RFC 4648 section 4). Decode rejects bad characters and bad padding.
std::string Base64Encode(std::string_view in);
std::optional<std::string> Base64Decode(std::string_view in);

// Lowercase hex of bytes.
std::string HexEncode(std::string_view bytes);

// True when the bytes are well-formed UTF-8 (RFC 3629).
bool IsValidUtf8(std::string_view s);

// A client-supplied value made safe for one log line (issue 11 item 10): control
// characters (C0, DEL) and backslash become "\xNN" / "\\", so a login name with
// CR/LF cannot forge a second line for fail2ban-style tools; values longer than
// kMaxLogValueBytes are cut and end with "...". Every logged value that a
// client chose (names, EHLO, addresses, mailbox names) goes through it.
inline constexpr size_t kMaxLogValueBytes = 256;
std::string LogSafe(std::string_view s);

}  // namespace hato
