#include "imap/proto/list_pattern.h"

namespace hato::imap {

std::string ListPattern::Collapse(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size());
  for (size_t i = 0; i < pattern.size();) {
    char ch = pattern[i];
    if (ch != '*' && ch != '%') {
      out += ch;
      ++i;
      continue;
    }
    // A run of wildcards: '*' if it holds one (it then matches anything), else '%'.
    bool star = false;
    for (; i < pattern.size() && (pattern[i] == '*' || pattern[i] == '%'); ++i) {
      star = star || pattern[i] == '*';
    }
    out += star ? '*' : '%';
  }
  return out;
}

Result<ListPattern> ListPattern::Compile(std::string_view pattern, char separator) {
  if (pattern.size() > kMaxListPatternBytes) {
    return Err(ErrorKind::kInvalid,
               "pattern longer than " + std::to_string(kMaxListPatternBytes) + " bytes");
  }
  ListPattern p;
  p.pattern_ = Collapse(pattern);
  p.separator_ = separator;
  p.masks_.emplace_back();  // index 0: a byte the pattern does not hold
  for (size_t i = 0; i < p.pattern_.size(); ++i) {
    auto ch = static_cast<unsigned char>(p.pattern_[i]);
    if (ch == '*') {
      p.star_.set(i);
    } else if (ch == '%') {
      p.percent_.set(i);
    } else {
      if (p.index_[ch] == 0) {
        p.index_[ch] = static_cast<uint8_t>(p.masks_.size());
        p.masks_.emplace_back();
      }
      p.masks_[p.index_[ch]].set(i);
    }
  }
  p.accept_.set(p.pattern_.size());
  return p;
}

bool ListPattern::Matches(std::string_view name) const {
  const Bits wild = star_ | percent_;
  // Active states; a wildcard may match nothing, so being at a wildcard also
  // means being just past it (wildcards are never adjacent after Collapse).
  Bits active;
  active.set(0);
  active |= (active & wild) << 1;
  for (char ch : name) {
    const Bits& lit = masks_[index_[static_cast<unsigned char>(ch)]];
    Bits next = (active & lit) << 1;  // a literal consumed
    next |= active & star_;           // '*' consumes anything
    if (ch != separator_) next |= active & percent_;
    next |= (next & wild) << 1;
    if (next.none()) return false;
    active = next;
  }
  return (active & accept_).any();
}

bool ListPatternMatchesSlow(std::string_view pattern, std::string_view name, char separator) {
  // m[i][j]: pattern[i..] matches name[j..].
  size_t P = pattern.size(), N = name.size();
  std::vector<std::vector<char>> m(P + 1, std::vector<char>(N + 1, 0));
  m[P][N] = 1;
  for (size_t i = P; i-- > 0;) {
    for (size_t j = N + 1; j-- > 0;) {
      char p = pattern[i];
      bool r = false;
      if (p == '*') {
        r = m[i + 1][j] || (j < N && m[i][j + 1]);
      } else if (p == '%') {
        r = m[i + 1][j] || (j < N && name[j] != separator && m[i][j + 1]);
      } else {
        r = j < N && name[j] == p && m[i + 1][j + 1];
      }
      m[i][j] = r;
    }
  }
  return m[0][0];
}

}  // namespace hato::imap
