#include "search/terms.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
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

// A byte of a word term: any but ASCII other than letters and digits (so
// "invoice." and "invoice," share the term "invoice").
bool IsWordByte(unsigned char b) {
  return b >= 0x80 || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9');
}

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

namespace {

// Scripts written without spaces between words: CJK radicals, punctuation,
// kana, ideographs, Hangul, compatibility forms, full- and half-width forms.
bool IsCjk(char32_t c) {
  return (c >= 0x2E80 && c <= 0x9FFF) || (c >= 0xA960 && c <= 0xA97F) ||
         (c >= 0xAC00 && c <= 0xD7FF) || (c >= 0xF900 && c <= 0xFAFF) ||
         (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFFEF) ||
         (c >= 0x20000 && c <= 0x3FFFF);
}

TokenKind KindOf(const CodePoint& p) {
  if (!p.valid) return TokenKind::kWord;
  char32_t c = p.cp;
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
      return TokenKind::kWord;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') return TokenKind::kSpace;
    return TokenKind::kPunct;
  }
  if (c >= 0x2000 && c <= 0x206F) return TokenKind::kPunct;
  if (IsCjk(c)) return TokenKind::kCjk;
  return TokenKind::kWord;
}

}  // namespace

std::vector<Token> Tokens(std::string_view s) {
  std::vector<Token> out;
  out.reserve(s.size() / 4 + 1);
  for (size_t i = 0; i < s.size();) {
    CodePoint p = Decode(s, i);
    TokenKind kind = KindOf(p);
    size_t start = i;
    i += p.len;
    if (kind == TokenKind::kWord || kind == TokenKind::kSpace) {
      while (i < s.size()) {
        CodePoint q = Decode(s, i);
        if (KindOf(q) != kind) break;
        i += q.len;
      }
    }
    out.push_back({kind, s.substr(start, i - start)});
  }
  return out;
}

bool HasInvalidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    CodePoint p = Decode(s, i);
    if (!p.valid) return true;
    i += p.len;
  }
  return false;
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

// Distinct grams, cheaply: a gram of up to kPackedBytes bytes (every ASCII
// gram, and those of two-byte scripts) is packed with its length into one
// 64-bit key, and the keys are sorted as integers; the longer ones (three-
// and four-byte characters: CJK) are sorted as strings. Sorting every gram
// as a string cost more than the rest of indexing.
constexpr size_t kPackedBytes = 7;

uint64_t Pack(const char* gram, size_t bytes) {
  uint64_t key = static_cast<uint64_t>(bytes) << 56;
  for (size_t k = 0; k < bytes; ++k) {
    key |= static_cast<uint64_t>(static_cast<unsigned char>(gram[k])) << (8 * k);
  }
  return key;
}

void AppendUnpacked(uint64_t key, std::string& out) {
  for (size_t k = 0, n = key >> 56; k < n; ++k) out += static_cast<char>((key >> (8 * k)) & 0xff);
}

// The end of a run of `run` code points: a run with a trigram has its end
// at the next position (`pending` until the next run's first character is
// known); a shorter one (nothing of it is indexed) only takes a position, so
// that no run end stands right after a trigram of the run before it. Fewer
// run ends: about a quarter of the words of prose are shorter than three
// characters.
inline void EndRun(size_t run, uint32_t& position, uint32_t& pending) {
  if (run >= kGramChars) {
    pending = ++position;
  } else if (run > 0) {
    ++position;
  }
}

// One pass over the code points of folded text: calls gram(gram, position)
// for each trigram within a whitespace-free run (with `valid_only`, only
// those of valid UTF-8) and run_end(position, next) at the end of each run
// of three or more characters, `next` being the first character of the run
// after it (empty at the end). The positions are those of TrigramPostings.
// Returns the number of positions taken.
template <typename OnGram, typename OnRunEnd>
uint32_t ScanGrams(std::string_view folded, bool valid_only, OnGram gram, OnRunEnd run_end) {
  // `start` holds where each of the last kGramChars code points of the
  // current run begins.
  size_t start[kGramChars] = {};
  size_t run = 0;
  size_t last_invalid = 0;  // 1 + the run index of the last invalid byte (0: none)
  uint32_t position = 0;
  uint32_t pending = 0;  // the position of a run end whose next run has not begun
  for (size_t i = 0; i < folded.size();) {
    if (IsSpace(folded[i])) {
      EndRun(run, position, pending);
      run = 0;
      last_invalid = 0;
      ++i;
      continue;
    }
    CodePoint p = Decode(folded, i);
    if (pending != 0) {
      run_end(pending, folded.substr(i, p.len));
      pending = 0;
    }
    start[run % kGramChars] = i;
    ++run;
    if (!p.valid) last_invalid = run;
    i += p.len;
    if (run < kGramChars) continue;
    ++position;
    if (valid_only && last_invalid > run - kGramChars) continue;
    size_t first = start[run % kGramChars];  // the oldest of the last kGramChars
    gram(std::string_view(folded.data() + first, i - first), position);
  }
  EndRun(run, position, pending);
  if (pending != 0) run_end(pending, std::string_view());
  return position;
}

// Trigrams and NeedleTrigrams: with `valid_only`, grams holding a byte that
// is not part of a valid UTF-8 sequence are left out.
std::vector<std::string> Grams(std::string_view folded, std::string_view prefix, bool valid_only) {
  std::vector<uint64_t> packed;
  std::vector<std::string_view> longer;
  packed.reserve(folded.size());
  ScanGrams(
      folded, valid_only,
      [&](std::string_view g, uint32_t) {
        if (g.size() <= kPackedBytes) {
          packed.push_back(Pack(g.data(), g.size()));
        } else {
          longer.push_back(g);
        }
      },
      [](uint32_t, std::string_view) {});
  std::sort(packed.begin(), packed.end());
  packed.erase(std::unique(packed.begin(), packed.end()), packed.end());
  std::sort(longer.begin(), longer.end());
  longer.erase(std::unique(longer.begin(), longer.end()), longer.end());
  std::vector<std::string> out;
  out.reserve(std::min(packed.size() + longer.size(), kMaxTermsPerField));
  for (uint64_t key : packed) {
    if (out.size() == kMaxTermsPerField) return out;
    std::string term(prefix);
    AppendUnpacked(key, term);
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

namespace {

// The distinct grams of one field and where each stands, in one pass: an
// open-addressing table from a gram's bytes (a trigram is at most 12 bytes, a
// run end 5) to its index in order of first sight. Sorting every occurrence
// (a pair per position) cost more than the rest of Postings.
class GramTable {
 public:
  static constexpr size_t kMaxGramBytes = 15;
  struct Gram {
    uint64_t lo, hi;  // the bytes, zero-padded; the size in hi's top byte
    uint32_t count;   // positions
    size_t size() const { return hi >> 56; }
    void CopyTo(std::string& out) const {
      char bytes[16];
      std::memcpy(bytes, &lo, 8);
      std::memcpy(bytes + 8, &hi, 8);
      out.assign(bytes, size());
    }
  };

  explicit GramTable(size_t expected) {
    size_t capacity = 64;
    while (capacity < expected) capacity *= 2;
    slots_.assign(capacity, kEmpty);
  }

  // The index of `gram` (added when new); `gram` is at most kMaxGramBytes.
  uint32_t Find(std::string_view gram) {
    char bytes[16] = {};
    std::memcpy(bytes, gram.data(), gram.size());
    uint64_t lo, hi;
    std::memcpy(&lo, bytes, 8);
    std::memcpy(&hi, bytes + 8, 8);
    hi |= static_cast<uint64_t>(gram.size()) << 56;
    size_t mask = slots_.size() - 1;
    for (size_t i = Hash(lo, hi) & mask;; i = (i + 1) & mask) {
      uint32_t slot = slots_[i];
      if (slot == kEmpty) {
        grams_.push_back({lo, hi, 0});
        slots_[i] = static_cast<uint32_t>(grams_.size() - 1);
        if (grams_.size() * 2 > slots_.size()) Grow();
        return static_cast<uint32_t>(grams_.size() - 1);
      }
      const Gram& g = grams_[slot];
      if (g.lo == lo && g.hi == hi) return slot;
    }
  }

  std::vector<Gram>& grams() { return grams_; }

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;

  static uint64_t Hash(uint64_t lo, uint64_t hi) {
    uint64_t h = (lo ^ (hi * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
  }

  void Grow() {
    std::vector<uint32_t> old(slots_.size() * 2, kEmpty);
    old.swap(slots_);
    size_t mask = slots_.size() - 1;
    for (uint32_t index = 0; index < grams_.size(); ++index) {
      size_t i = Hash(grams_[index].lo, grams_[index].hi) & mask;
      while (slots_[i] != kEmpty) i = (i + 1) & mask;
      slots_[i] = index;
    }
  }

  std::vector<uint32_t> slots_;
  std::vector<Gram> grams_;
};

}  // namespace

TrigramPostings Postings(std::string_view folded) {
  // Each occurrence as (gram index, position), positions ascending.
  std::vector<std::pair<uint32_t, uint32_t>> occurrences;
  occurrences.reserve(folded.size());
  GramTable table(folded.size() / 4);
  ScanGrams(
      folded, false,
      [&](std::string_view g, uint32_t position) {
        uint32_t index = table.Find(g);
        ++table.grams()[index].count;
        occurrences.emplace_back(index, position);
      },
      [&](uint32_t position, std::string_view next) {
        // RunEndTerm's text: a line feed and the next character (4 bytes at most).
        char key[1 + 4] = {'\n'};
        size_t n = next.copy(key + 1, 4);
        uint32_t index = table.Find(std::string_view(key, 1 + n));
        ++table.grams()[index].count;
        occurrences.emplace_back(index, position);
      });
  std::vector<GramTable::Gram>& grams = table.grams();
  // The order of the result: grams of up to kPackedBytes bytes by their
  // packed key, then the longer ones by their bytes.
  std::vector<std::pair<uint64_t, uint32_t>> keys(grams.size());
  for (uint32_t i = 0; i < grams.size(); ++i) {
    const GramTable::Gram& g = grams[i];
    // Pack() of up to kPackedBytes bytes: the bytes, the size in the top byte.
    keys[i] = {g.size() <= kPackedBytes ? g.lo | (g.hi & (uint64_t{0xff} << 56)) : UINT64_MAX, i};
  }
  std::string x, y;
  std::sort(keys.begin(), keys.end(), [&](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    grams[a.second].CopyTo(x);
    grams[b.second].CopyTo(y);
    return x < y;
  });
  std::vector<uint32_t> order(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) order[i] = keys[i].second;
  TrigramPostings out;
  if (order.size() > kMaxTermsPerField) {
    order.resize(kMaxTermsPerField);
    out.cut = true;
  }
  // Where the next position of each kept gram goes in `out.positions`
  // (UINT32_MAX: cut): a counting sort, stable, so each gram's positions stay ascending.
  std::vector<uint32_t> next(grams.size(), UINT32_MAX);
  out.grams.resize(order.size());
  out.starts.resize(order.size() + 1);
  uint32_t total = 0;
  for (uint32_t i = 0; i < order.size(); ++i) {
    const GramTable::Gram& g = grams[order[i]];
    g.CopyTo(out.grams[i]);
    out.starts[i] = total;
    next[order[i]] = total;
    total += g.count;
  }
  out.starts[order.size()] = total;
  out.positions.resize(total);
  for (const auto& [index, position] : occurrences) {
    if (next[index] != UINT32_MAX) out.positions[next[index]++] = position;
  }
  return out;
}

std::string RunEndTerm(std::string_view prefix, std::string_view next) {
  return std::string(prefix).append(1, '\n').append(next);
}

std::vector<std::string> PhraseTerms(std::string_view folded, std::string_view prefix) {
  std::vector<std::string> out;
  if (folded.empty() || IsSpace(folded.front()) || IsSpace(folded.back())) return {};
  uint32_t expected = 1;  // the position the next term must have
  bool ok = true;
  uint32_t taken = ScanGrams(
      folded, true,
      [&](std::string_view g, uint32_t position) {
        ok = ok && position == expected++;
        out.push_back(std::string(prefix).append(g));
      },
      [&](uint32_t position, std::string_view next) {
        ok = ok && position == expected++;
        out.push_back(RunEndTerm(prefix, next));
      });
  // Every position must hold a term: one skipped is a gram of invalid UTF-8
  // (NeedleTrigrams), or a run with fewer than kGramChars characters, which
  // has no trigram (what it holds is not in the index).
  if (!ok || out.empty() || taken != out.size()) return {};
  out.pop_back();  // the needle's last run may go on in the text
  return out;
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

std::vector<std::string> Words(std::string_view folded) {
  // Distinct by an open-addressing table of the runs (FNV-1a of their bytes).
  std::vector<std::string_view> runs;
  std::vector<uint32_t> slots(64, UINT32_MAX);
  for (size_t i = 0; i < folded.size();) {
    if (IsSpace(folded[i])) {
      ++i;
      continue;
    }
    size_t start = i, end = i, chars = 0;
    uint64_t h = 1469598103934665603ull;
    for (; i < folded.size() && !IsSpace(folded[i]); ++i) {
      auto b = static_cast<unsigned char>(folded[i]);
      if (end == i && i - start < kMaxWordBytes && IsWordByte(b)) {
        chars += (b & 0xC0) != 0x80;  // a lead byte (or an invalid one)
        h = (h ^ b) * 1099511628211ull;
        ++end;
      }
    }
    if (chars < kWordMinChars) continue;
    std::string_view run = folded.substr(start, end - start);
    size_t mask = slots.size() - 1;
    for (size_t k = h & mask;; k = (k + 1) & mask) {
      if (slots[k] == UINT32_MAX) {
        slots[k] = static_cast<uint32_t>(runs.size());
        runs.push_back(run);
        break;
      }
      if (runs[slots[k]] == run) break;
    }
    if (runs.size() == kMaxTermsPerField) break;
    if (runs.size() * 2 > slots.size()) {  // grow: hash the runs again
      slots.assign(slots.size() * 2, UINT32_MAX);
      mask = slots.size() - 1;
      for (uint32_t r = 0; r < runs.size(); ++r) {
        uint64_t g = 1469598103934665603ull;
        for (char c : runs[r]) g = (g ^ static_cast<unsigned char>(c)) * 1099511628211ull;
        size_t k = g & mask;
        while (slots[k] != UINT32_MAX) k = (k + 1) & mask;
        slots[k] = r;
      }
    }
  }
  return {runs.begin(), runs.end()};
}

std::string WordPrefix(std::string_view folded_needle) {
  if (folded_needle.size() > kMaxWordBytes) return {};
  for (char c : folded_needle) {
    if (!IsWordByte(static_cast<unsigned char>(c))) return {};
  }
  if (CountChars(folded_needle) < kWordMinChars) return {};
  return std::string(folded_needle);
}

std::string OverflowTerm(std::string_view prefix) { return std::string(prefix) + ' '; }

bool MatchesFolded(std::string_view folded_text, std::string_view folded_needle) {
  std::string needle = SquashSpace(folded_needle);
  if (needle.empty()) return true;
  return SquashSpace(folded_text).find(needle) != std::string::npos;
}

}  // namespace hato::search
