// Content decoding for SEARCH and BINARY: transfer encodings (RFC 2045
// section 6.7 quoted-printable, 6.8 base64), charsets to UTF-8 (glibc iconv),
// and RFC 2047 encoded-words in header values (sections 2-6; RFC 2231
// section 5 language suffixes).
//
// SECURITY: every decoder is linear and total (any input decodes to
// something). iconv descriptors are opened per call, so this is thread-safe.
#include <iconv.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "base/strings.h"
#include "mime/header.h"
#include "mime/message.h"

namespace hato::mime {
namespace {

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 2045 section 6.8, tolerant: characters outside the alphabet (line
// breaks, garbage, padding) are skipped; a trailing partial group yields the
// whole bytes it holds.
std::string DecodeBase64(std::string_view in) {
  std::string out;
  out.reserve(in.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = Base64Value(c);
    if (v < 0) continue;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

bool IsWsp(char c) { return c == ' ' || c == '\t'; }

// RFC 2045 section 6.7: "=XX" octets, soft line breaks "=" CRLF (and "=" LF,
// with transport padding before the break), trailing white space on a line
// removed (rule 3). Malformed "=" sequences are kept literally.
std::string DecodeQuotedPrintable(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    size_t nl = in.find('\n', i);
    size_t next = nl == std::string_view::npos ? in.size() : nl + 1;
    size_t end = nl == std::string_view::npos ? in.size() : nl;
    if (end > i && in[end - 1] == '\r') --end;
    std::string_view line = in.substr(i, end - i);
    while (!line.empty() && IsWsp(line.back())) line.remove_suffix(1);
    bool soft = !line.empty() && line.back() == '=';
    if (soft) line.remove_suffix(1);
    for (size_t k = 0; k < line.size(); ++k) {
      if (line[k] == '=' && k + 2 < line.size()) {
        int hi = HexValue(line[k + 1]);
        int lo = HexValue(line[k + 2]);
        if (hi >= 0 && lo >= 0) {
          out += static_cast<char>(hi * 16 + lo);
          k += 2;
          continue;
        }
      }
      out += line[k];
    }
    if (!soft && nl != std::string_view::npos) out.append(in.substr(end, next - end));
    i = next;
  }
  return out;
}

std::string NormalizeCharset(std::string_view charset) {
  std::string c = AsciiLower(TrimSpaces(charset));
  if (c.size() >= 2 && c.front() == '"' && c.back() == '"') c = c.substr(1, c.size() - 2);
  // Common labels glibc does not know, or knows with a different mapping.
  if (c == "shift_jis" || c == "shift-jis" || c == "sjis" || c == "x-sjis" || c == "ms_kanji" ||
      c == "csshiftjis" || c == "windows-31j") {
    return "cp932";  // ASCII-compatible (0x5C is "\", not YEN) with the vendor extensions
  }
  if (c == "ks_c_5601-1987" || c == "ks_c_5601" || c == "euc-kr") return "cp949";
  if (c == "gb2312" || c == "gbk" || c == "x-gbk") return "gb18030";  // supersets
  if (c == "utf8") return "utf-8";
  if (c == "ascii" || c == "us_ascii" || c == "ansi_x3.4-1968") return "us-ascii";
  if (c == "latin1" || c == "latin-1") return "iso-8859-1";
  return c;
}

bool IsPassThrough(const std::string& c) { return c.empty() || c == "us-ascii" || c == "utf-8"; }

// Charsets whose ASCII bytes may not mean ASCII.
bool AsciiMayDiffer(const std::string& c) {
  return c.starts_with("utf-16") || c.starts_with("utf-32") || c.starts_with("utf-7") ||
         c.starts_with("ucs") || c.starts_with("unicode");
}

class Iconv {
 public:
  explicit Iconv(const std::string& from) : cd_(iconv_open("UTF-8", from.c_str())) {}
  ~Iconv() {
    if (ok()) iconv_close(cd_);
  }
  Iconv(const Iconv&) = delete;
  Iconv& operator=(const Iconv&) = delete;
  bool ok() const { return cd_ != reinterpret_cast<iconv_t>(-1); }

  std::string Convert(std::string_view in) {
    std::string out;
    out.resize(in.size() * 2 + 16);
    char* src = const_cast<char*>(in.data());
    size_t src_left = in.size();
    size_t used = 0;
    bool flushing = false;
    while (true) {
      char* dst = out.data() + used;
      size_t dst_left = out.size() - used;
      size_t r = flushing ? iconv(cd_, nullptr, nullptr, &dst, &dst_left)
                          : iconv(cd_, &src, &src_left, &dst, &dst_left);
      used = out.size() - dst_left;
      if (r != static_cast<size_t>(-1)) {
        if (flushing) break;
        flushing = true;  // emit any final shift sequence
        continue;
      }
      if (errno == E2BIG) {
        out.resize(out.size() * 2);
        continue;
      }
      if (flushing) break;
      // EILSEQ (invalid) or EINVAL (truncated at the end): U+FFFD, skip a byte.
      if (out.size() - used < 3) out.resize(out.size() * 2);
      out.replace(used, 3, "\xEF\xBF\xBD");
      used += 3;
      if (src_left == 0) break;
      ++src;
      --src_left;
    }
    out.resize(used);
    return out;
  }

 private:
  iconv_t cd_;
};

// An RFC 2047 encoded-word at s[i] ("=?charset?B|Q?text?="); on success sets
// `end`, the charset (without an RFC 2231 "*lang" suffix) and the octets.
bool EncodedWord(std::string_view s, size_t i, size_t* end, std::string* charset,
                 std::string* octets) {
  if (s.compare(i, 2, "=?") != 0) return false;
  // Section 2 allows 75 characters; tolerate more, but a bounded window keeps
  // a header full of unterminated "=?" linear.
  s = s.substr(0, std::min(s.size(), i + kMaxEncodedWordLength));
  size_t q1 = s.find('?', i + 2);
  if (q1 == std::string_view::npos || q1 == i + 2 || q1 + 2 >= s.size() || s[q1 + 2] != '?') {
    return false;
  }
  char enc = s[q1 + 1];
  size_t text = q1 + 3;
  size_t close = s.find("?=", text);
  if (close == std::string_view::npos) return false;
  std::string_view payload = s.substr(text, close - text);
  for (char c : payload) {
    if (c == ' ' || c == '\t') return false;  // section 5: no white space inside
  }
  std::string cs(s.substr(i + 2, q1 - i - 2));
  size_t star = cs.find('*');
  if (star != std::string::npos) cs.resize(star);
  if (enc == 'B' || enc == 'b') {
    *octets = DecodeBase64(payload);
  } else if (enc == 'Q' || enc == 'q') {  // section 4.2
    octets->clear();
    for (size_t k = 0; k < payload.size(); ++k) {
      char c = payload[k];
      if (c == '_') {
        *octets += ' ';
      } else if (c == '=' && k + 2 < payload.size() && HexValue(payload[k + 1]) >= 0 &&
                 HexValue(payload[k + 2]) >= 0) {
        *octets += static_cast<char>(HexValue(payload[k + 1]) * 16 + HexValue(payload[k + 2]));
        k += 2;
      } else {
        *octets += c;
      }
    }
  } else {
    return false;
  }
  *charset = std::move(cs);
  *end = close + 2;
  return true;
}

}  // namespace

std::string DecodeTransfer(std::string_view body, std::string_view encoding) {
  std::string enc = AsciiLower(TrimSpaces(encoding));
  if (enc == "base64") return DecodeBase64(body);
  if (enc == "quoted-printable") return DecodeQuotedPrintable(body);
  return std::string(body);  // 7bit, 8bit, binary, and unknown encodings
}

bool KnownCharset(std::string_view charset) {
  std::string c = NormalizeCharset(charset);
  if (IsPassThrough(c)) return true;
  return Iconv(c).ok();
}

std::string ToUtf8(std::string_view bytes, std::string_view charset) {
  std::string c = NormalizeCharset(charset);
  if (IsPassThrough(c)) return internal::SanitizeUtf8(bytes);
  if (!AsciiMayDiffer(c)) {
    bool plain = true;  // pure ASCII without ESC (ISO-2022 shifts) converts to itself
    for (unsigned char b : bytes) {
      if (b >= 0x80 || b == 0x1B || b == 0x0E || b == 0x0F) {
        plain = false;
        break;
      }
    }
    if (plain) return std::string(bytes);
  }
  Iconv cv(c);
  if (!cv.ok()) return internal::SanitizeUtf8(bytes);
  return internal::SanitizeUtf8(cv.Convert(bytes));
}

std::string DecodeHeader(std::string_view value) {
  std::string s;
  s.reserve(value.size());
  while (!value.empty()) {  // unfold (RFC 5322 section 2.2.3): runs between line breaks
    size_t brk = value.find_first_of("\r\n");
    s.append(value.substr(0, brk));
    if (brk == std::string_view::npos) break;
    value.remove_prefix(brk + 1);
  }
  // Most fields hold no encoded-word (each begins "=?", RFC 2047 section 2):
  // the unfolded text as it is, without the walk below.
  if (s.find("=?") == std::string::npos) return internal::SanitizeUtf8(s);
  std::string out;
  std::string plain;    // undecoded text not yet emitted
  std::string pending;  // octets of adjacent encoded-words in one charset
  std::string pending_charset;
  bool last_was_word = false;
  std::string gap;  // white space after an encoded-word
  auto flush_pending = [&] {
    if (!pending.empty()) out += ToUtf8(pending, pending_charset);
    pending.clear();
  };
  auto flush_plain = [&] {
    if (!plain.empty()) out += internal::SanitizeUtf8(plain);  // RFC 6532: raw UTF-8
    plain.clear();
  };
  size_t i = 0;
  std::string charset, octets;
  while (i < s.size()) {
    size_t end = 0;
    if (s[i] == '=' && EncodedWord(s, i, &end, &charset, &octets)) {
      // Section 6.2: white space between adjacent encoded-words is ignored.
      if (!last_was_word) plain += gap;
      gap.clear();
      flush_plain();
      if (!EqualsIgnoreCase(charset, pending_charset)) flush_pending();
      pending_charset = charset;
      pending += octets;
      last_was_word = true;
      i = end;
      continue;
    }
    if (last_was_word && (s[i] == ' ' || s[i] == '\t')) {
      gap += s[i++];
      continue;
    }
    if (last_was_word) {
      flush_pending();
      plain += gap;
      gap.clear();
      last_was_word = false;
    }
    plain += s[i++];
  }
  flush_pending();
  plain += gap;
  flush_plain();
  return out;
}

std::string DecodedText(std::string_view raw, const Part& part) {
  if (part.body_end > raw.size() || part.header_end > part.body_end) return "";
  std::string_view body = raw.substr(part.header_end, part.body_end - part.header_end);
  return ToUtf8(DecodeTransfer(body, part.encoding), part.Charset());
}

}  // namespace hato::mime
