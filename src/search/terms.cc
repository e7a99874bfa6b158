#include "search/terms.h"

#include <algorithm>
#include <cstdint>
#include <unordered_set>

namespace hato::search {
namespace {

// Decodes one code point at s[i]; on invalid UTF-8 returns the byte itself
// with length 1 (and `valid` false) so callers never stall or throw.
struct CodePoint {
  char32_t cp;
  size_t len;
  bool valid;
};

CodePoint Decode(std::string_view s, size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return {b, 1, true};
  size_t len = b >= 0xF0 && b < 0xF5 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 && b < 0xE0 ? 2 : 0;
  if (len == 0 || i + len > s.size()) return {b, 1, false};
  char32_t cp = len == 2 ? b & 0x1F : len == 3 ? b & 0x0F : b & 0x07;
  for (size_t k = 1; k < len; ++k) {
    auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return {b, 1, false};
    cp = (cp << 6) | (c & 0x3F);
  }
  // Overlong forms and surrogates are invalid.
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return {b, 1, false};
  }
  return {cp, len, true};
}

void Encode(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

char32_t FoldCodePoint(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0xC0) return c;
  if (c <= 0xDE && c != 0xD7) return c + 32;                  // Latin-1 capitals
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;  // Greek capitals
  if (c >= 0x410 && c <= 0x42F) return c + 32;                // Cyrillic capitals
  if (c >= 0x400 && c <= 0x40F) return c + 80;                // Cyrillic Ѐ..Џ
  if (c >= 0xFF21 && c <= 0xFF3A) return c + 32;              // full-width A..Z
  return c;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

std::string Fold(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    CodePoint p = Decode(s, i);
    if (p.valid) {
      Encode(FoldCodePoint(p.cp), out);
    } else {
      out += s[i];
    }
    i += p.len;
  }
  return out;
}

std::string SquashSpace(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool space = false;
  for (char c : s) {
    if (IsSpace(c)) {
      if (!space) out += ' ';
      space = true;
    } else {
      out += c;
      space = false;
    }
  }
  return out;
}

size_t CountChars(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); i += Decode(s, i).len) ++n;
  return n;
}

namespace {

// Trigrams and NeedleTrigrams: with `valid_only`, grams holding a byte that
// is not part of a valid UTF-8 sequence are left out.
std::vector<std::string> Grams(std::string_view folded, std::string_view prefix, bool valid_only) {
  // Distinct grams, cheaply: a gram of up to kPackedBytes bytes (every
  // ASCII gram, and those of two-byte scripts) is packed with its length
  // into one 64-bit key, and the keys are sorted as integers; the longer
  // ones (three- and four-byte characters: CJK) are sorted as strings.
  // Sorting every gram as a string cost more than the rest of indexing.
  constexpr size_t kPackedBytes = 7;
  std::vector<uint64_t> packed;
  std::vector<std::string_view> longer;
  packed.reserve(folded.size());
  // One pass over the code points: `start` holds where each of the last
  // kGramChars code points of the current whitespace-free run begins.
  size_t start[kGramChars] = {};
  size_t run = 0;
  size_t last_invalid = 0;  // 1 + the run index of the last invalid byte (0: none)
  for (size_t i = 0; i < folded.size();) {
    if (IsSpace(folded[i])) {
      run = 0;
      last_invalid = 0;
      ++i;
      continue;
    }
    CodePoint p = Decode(folded, i);
    start[run % kGramChars] = i;
    ++run;
    if (!p.valid) last_invalid = run;
    i += p.len;
    if (run < kGramChars) continue;
    if (valid_only && last_invalid > run - kGramChars) continue;
    size_t first = start[run % kGramChars];  // the oldest of the last kGramChars
    size_t bytes = i - first;
    if (bytes <= kPackedBytes) {
      uint64_t key = static_cast<uint64_t>(bytes) << 56;
      for (size_t k = 0; k < bytes; ++k) {
        key |= static_cast<uint64_t>(static_cast<unsigned char>(folded[first + k])) << (8 * k);
      }
      packed.push_back(key);
    } else {
      longer.emplace_back(folded.data() + first, bytes);
    }
  }
  std::sort(packed.begin(), packed.end());
  packed.erase(std::unique(packed.begin(), packed.end()), packed.end());
  std::sort(longer.begin(), longer.end());
  longer.erase(std::unique(longer.begin(), longer.end()), longer.end());
  std::vector<std::string> out;
  out.reserve(std::min(packed.size() + longer.size(), kMaxTermsPerField));
  for (uint64_t key : packed) {
    if (out.size() == kMaxTermsPerField) return out;
    std::string term(prefix);
    for (size_t k = 0, n = key >> 56; k < n; ++k)
      term += static_cast<char>((key >> (8 * k)) & 0xff);
    out.push_back(std::move(term));
  }
  for (std::string_view g : longer) {
    if (out.size() == kMaxTermsPerField) return out;
    std::string term;
    term.reserve(prefix.size() + g.size());
    term.append(prefix).append(g);
    out.push_back(std::move(term));
  }
  return out;
}

}  // namespace

std::vector<std::string> Trigrams(std::string_view folded, std::string_view prefix) {
  return Grams(folded, prefix, false);
}

std::vector<std::string> NeedleTrigrams(std::string_view folded, std::string_view prefix) {
  return Grams(folded, prefix, true);
}

bool IsCommonHeaderGram(std::string_view gram) {
  static const std::unordered_set<std::string> grams = [] {
    static constexpr const char* kWords[] = {"return-path:",
                                             "received:",
                                             "from:",
                                             "to:",
                                             "cc:",
                                             "subject:",
                                             "date:",
                                             "message-id:",
                                             "mime-version:",
                                             "content-type:",
                                             "content-transfer-encoding:",
                                             "content-disposition:",
                                             "reply-to:",
                                             "sender:",
                                             "references:",
                                             "in-reply-to:",
                                             "user-agent:",
                                             "x-mailer:",
                                             "authentication-results:",
                                             "dkim-signature:",
                                             "arc-seal:",
                                             "list-id:",
                                             "list-unsubscribe:",
                                             "precedence:",
                                             "delivered-to:",
                                             "text/plain;",
                                             "text/html;",
                                             "multipart/alternative;",
                                             "multipart/mixed;",
                                             "charset=us-ascii",
                                             "charset=utf-8",
                                             "charset=\"utf-8\"",
                                             "boundary=",
                                             "7bit",
                                             "8bit",
                                             "quoted-printable",
                                             "base64",
                                             "esmtp",
                                             "esmtps",
                                             "with",
                                             "from",
                                             "for",
                                             "+0000",
                                             "mon,",
                                             "tue,",
                                             "wed,",
                                             "thu,",
                                             "fri,",
                                             "sat,",
                                             "sun,",
                                             "jan",
                                             "feb",
                                             "mar",
                                             "apr",
                                             "may",
                                             "jun",
                                             "jul",
                                             "aug",
                                             "sep",
                                             "oct",
                                             "nov",
                                             "dec",
                                             "1.0"};
    std::unordered_set<std::string> out;
    for (const char* w : kWords) {
      for (auto& g : Trigrams(w, "")) out.insert(std::move(g));
    }
    return out;
  }();
  return grams.count(std::string(gram)) != 0;
}

std::string OverflowTerm(std::string_view prefix) { return std::string(prefix) + ' '; }

bool MatchesFolded(std::string_view folded_text, std::string_view folded_needle) {
  std::string needle = SquashSpace(folded_needle);
  if (needle.empty()) return true;
  return SquashSpace(folded_text).find(needle) != std::string::npos;
}

}  // namespace hato::search
