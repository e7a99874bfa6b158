#include "imap/proto/utf7.h"

#include <cstdint>
#include <vector>

#include "base/strings.h"

namespace hato::imap {
namespace {

// Modified BASE64 (RFC 3501 section 5.1.3): RFC 2045 base64 with "," for "/", no padding.
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

int B64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == ',') return 63;
  return -1;
}

bool Printable(unsigned char c) { return c >= 0x20 && c <= 0x7e; }

// Decodes one UTF-8 sequence at s[i] (already validated as a whole).
uint32_t NextCodePoint(std::string_view s, size_t& i) {
  unsigned char c = static_cast<unsigned char>(s[i++]);
  if (c < 0x80) return c;
  int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
  uint32_t cp = c & (0x3f >> extra);
  for (int k = 0; k < extra; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i++]) & 0x3f);
  return cp;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

void AppendShifted(std::string& out, const std::vector<uint16_t>& units) {
  out += '&';
  uint32_t bits = 0;
  int nbits = 0;
  for (uint16_t u : units) {
    bits = (bits << 16) | u;
    nbits += 16;
    while (nbits >= 6) {
      nbits -= 6;
      out += kAlphabet[(bits >> nbits) & 63];
    }
    bits &= (1u << nbits) - 1;
  }
  if (nbits > 0) out += kAlphabet[(bits << (6 - nbits)) & 63];
  out += '-';
}

Error Bad(const char* why) {
  return Err(ErrorKind::kInvalid, std::string("bad mailbox name: ") + why);
}

}  // namespace

Result<std::string> EncodeMailboxUtf7(std::string_view utf8) {
  if (!IsValidUtf8(utf8)) return Bad("not UTF-8");
  std::string out;
  std::vector<uint16_t> units;
  size_t i = 0;
  while (i < utf8.size()) {
    unsigned char c = static_cast<unsigned char>(utf8[i]);
    if (Printable(c)) {
      if (!units.empty()) {
        AppendShifted(out, units);
        units.clear();
      }
      out += c == '&' ? std::string_view("&-") : std::string_view(&utf8[i], 1);
      ++i;
      continue;
    }
    uint32_t cp = NextCodePoint(utf8, i);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units.push_back(static_cast<uint16_t>(0xd800 | (cp >> 10)));
      units.push_back(static_cast<uint16_t>(0xdc00 | (cp & 0x3ff)));
    } else {
      units.push_back(static_cast<uint16_t>(cp));
    }
  }
  if (!units.empty()) AppendShifted(out, units);
  return out;
}

Result<std::string> DecodeMailboxUtf7(std::string_view s) {
  std::string out;
  size_t i = 0;
  bool prev_shift =
      false;  // the previous token was a shifted run (adjacent runs are not canonical)
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (!Printable(c)) return Bad("byte outside printable ASCII");
    if (c != '&') {
      out += static_cast<char>(c);
      ++i;
      prev_shift = false;
      continue;
    }
    size_t end = s.find('-', i + 1);
    if (end == std::string_view::npos) return Bad("unterminated &-shift");
    std::string_view b64 = s.substr(i + 1, end - i - 1);
    i = end + 1;
    if (b64.empty()) {  // "&-" is "&"
      out += '&';
      prev_shift = false;
      continue;
    }
    if (prev_shift) return Bad("adjacent &-shifts");
    prev_shift = true;
    uint32_t bits = 0;
    int nbits = 0;
    uint16_t high = 0;  // pending high surrogate
    for (char b : b64) {
      int v = B64Value(b);
      if (v < 0) return Bad("character outside modified BASE64");
      bits = (bits << 6) | static_cast<uint32_t>(v);
      nbits += 6;
      if (nbits < 16) continue;
      nbits -= 16;
      uint16_t u = static_cast<uint16_t>(bits >> nbits);
      bits &= (1u << nbits) - 1;
      if (high != 0) {
        if (u < 0xdc00 || u > 0xdfff) return Bad("unpaired surrogate");
        AppendUtf8(out, 0x10000 + ((static_cast<uint32_t>(high - 0xd800) << 10) | (u - 0xdc00)));
        high = 0;
      } else if (u >= 0xd800 && u <= 0xdbff) {
        high = u;
      } else if (u >= 0xdc00 && u <= 0xdfff) {
        return Bad("unpaired surrogate");
      } else if (Printable(static_cast<unsigned char>(u < 0x80 ? u : 0))) {
        return Bad("printable ASCII inside &-shift");
      } else {
        AppendUtf8(out, u);
      }
    }
    if (high != 0) return Bad("unpaired surrogate");
    // Leftover bits must be fewer than 6 (no extra sextet) and zero (RFC 2152 padding).
    if (nbits >= 6 || bits != 0) return Bad("bad BASE64 padding");
  }
  return out;
}

bool IsInbox(std::string_view name) { return EqualsIgnoreCase(name, "INBOX"); }

std::string NormalizeInbox(std::string_view name, char delimiter) {
  if (IsInbox(name)) return "INBOX";
  if (delimiter != '\0' && name.size() > 5 && name[5] == delimiter && IsInbox(name.substr(0, 5))) {
    return "INBOX" + std::string(name.substr(5));
  }
  return std::string(name);
}

}  // namespace hato::imap
