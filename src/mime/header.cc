// Header block scanning, unfolding, comments and MIME parameters
// (RFC 5322 sections 2.2 and 3.2.2, RFC 2045 section 5.1, RFC 2231 sections 3-4).
#include "mime/header.h"

#include <algorithm>
#include <map>
#include <optional>

#include "base/strings.h"

namespace hato::mime::internal {
namespace {

bool IsWsp(char c) { return c == ' ' || c == '\t'; }

// RFC 5322 section 2.2 ftext: printable US-ASCII except ":".
bool IsFtext(char c) { return c >= 33 && c <= 126 && c != ':'; }

// RFC 2045 section 5.1 token characters (8-bit bytes tolerated).
bool IsTokenChar(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u <= 32 || u == 127) return false;
  switch (c) {
    case '(':
    case ')':
    case '<':
    case '>':
    case '@':
    case ',':
    case ';':
    case ':':
    case '\\':
    case '"':
    case '/':
    case '[':
    case ']':
    case '?':
    case '=':
      return false;
    default:
      return true;
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

struct RawParam {
  std::string name;  // lower-cased, as written (may contain '*')
  std::string value;
};

// RFC 2231 section 3-4: collates name*N / name*N* sections and decodes
// charset'language'%XX values. Keeps the order of first appearance.
std::vector<Param> Collate(const std::vector<RawParam>& raw) {
  struct Sections {
    std::optional<std::string> plain;
    std::map<uint32_t, std::pair<std::string, bool>> parts;  // index -> (value, encoded)
  };
  std::vector<std::string> order;
  std::map<std::string, Sections> by_name;
  for (const RawParam& p : raw) {
    std::string base = p.name;
    std::optional<uint32_t> index;
    bool encoded = false;
    size_t star = p.name.find('*');
    if (star != std::string::npos && star > 0) {
      std::string_view rest = std::string_view(p.name).substr(star + 1);
      if (rest.empty()) {
        index = 0;
        encoded = true;
      } else {
        if (rest.back() == '*') {
          encoded = true;
          rest.remove_suffix(1);
        }
        auto n = ParseUint(rest);
        if (n && *n < kMaxParamSections) index = static_cast<uint32_t>(*n);
      }
      if (index) base = p.name.substr(0, star);
    }
    if (!by_name.count(base)) order.push_back(base);
    Sections& s = by_name[base];
    if (!index) {
      if (!s.plain) s.plain = p.value;
    } else {
      s.parts.emplace(*index, std::make_pair(p.value, encoded));  // first wins
    }
  }
  std::vector<Param> out;
  for (const std::string& name : order) {
    const Sections& s = by_name[name];
    if (s.parts.empty()) {
      out.push_back(Param{name, s.plain.value_or("")});
      continue;
    }
    // The extended form wins over a plain one (RFC 2231 aware readers).
    std::string charset;
    std::string bytes;
    bool any_encoded = false;
    for (const auto& [index, section] : s.parts) {
      std::string_view v = section.first;
      if (section.second) {
        if (index == 0) {
          size_t q1 = v.find('\'');
          size_t q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
          if (q2 != std::string_view::npos) {
            charset = std::string(v.substr(0, q1));
            v = v.substr(q2 + 1);
          }
        }
        any_encoded = true;
        bytes += PercentDecode(v);
      } else {
        bytes.append(v);
      }
    }
    if (any_encoded && !charset.empty() && KnownCharset(charset)) bytes = ToUtf8(bytes, charset);
    out.push_back(Param{name, std::move(bytes)});
  }
  return out;
}

}  // namespace

HeaderScan ScanHeader(std::string_view text, size_t max_bytes) {
  HeaderScan scan;
  size_t pos = 0;
  size_t interpreted = 0;
  Field* current = nullptr;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t next = nl == std::string_view::npos ? text.size() : nl + 1;
    size_t content_end = nl == std::string_view::npos ? text.size() : nl;
    if (content_end > pos && text[content_end - 1] == '\r') --content_end;
    std::string_view line = text.substr(pos, content_end - pos);
    if (line.empty()) {  // the blank line that ends the header (RFC 5322 section 2.1)
      scan.end = next;
      return scan;
    }
    if (IsWsp(line[0])) {  // continuation of a folded field (section 2.2.3)
      if (current != nullptr) {
        current->value = text.substr(current->value.data() - text.data(),
                                     content_end - (current->value.data() - text.data()));
        current->end = next;
      }
      pos = next;
      continue;
    }
    size_t name_end = 0;
    while (name_end < line.size() && IsFtext(line[name_end])) ++name_end;
    size_t colon = name_end;
    while (colon < line.size() && IsWsp(line[colon])) ++colon;  // obs-optional (section 4.5)
    if (name_end == 0 || colon >= line.size() || line[colon] != ':') {
      scan.end = pos;  // not a header field: the body starts here, without a blank line
      return scan;
    }
    interpreted += next - pos;
    if (interpreted <= max_bytes) {
      scan.fields.push_back(Field{line.substr(0, name_end), line.substr(colon + 1), pos, next});
      current = &scan.fields.back();
    } else {
      current = nullptr;  // past kMaxHeaderBytes: kept in the header, not interpreted
    }
    pos = next;
  }
  scan.end = text.size();
  return scan;
}

const Field* FindField(const std::vector<Field>& fields, std::string_view name) {
  for (const Field& f : fields) {
    if (EqualsIgnoreCase(f.name, name)) return &f;
  }
  return nullptr;
}

std::string Unfold(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c != '\r' && c != '\n') out += c;
  }
  return std::string(TrimSpaces(out));
}

std::string StripComments(std::string_view v) {
  std::string out;
  int depth = 0;
  bool quoted = false;
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (quoted) {
      out += c;
      if (c == '\\' && i + 1 < v.size()) {
        out += v[++i];
      } else if (c == '"') {
        quoted = false;
      }
    } else if (depth > 0) {
      if (c == '\\') {
        ++i;
      } else if (c == '(') {
        ++depth;
      } else if (c == ')') {
        --depth;
      }
    } else if (c == '(') {
      depth = 1;
      out += ' ';
    } else {
      if (c == '"') quoted = true;
      out += c;
    }
  }
  return out;
}

bool ParseContentHeader(std::string_view value, bool with_subtype, std::string* type,
                        std::string* subtype, std::vector<Param>* params) {
  std::string clean = StripComments(Unfold(value));
  std::string_view s = clean;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < s.size() && IsWsp(s[i])) ++i;
  };
  auto token = [&] {
    size_t start = i;
    while (i < s.size() && IsTokenChar(s[i])) ++i;
    return s.substr(start, i - start);
  };
  skip_ws();
  std::string_view t = token();
  if (t.empty()) return false;
  std::string_view st;
  if (with_subtype) {
    skip_ws();
    if (i >= s.size() || s[i] != '/') return false;
    ++i;
    skip_ws();
    st = token();
    if (st.empty()) return false;
  }
  // Parameters (RFC 2045 section 5.1), tolerant: missing ";" or "=" skip ahead.
  std::vector<RawParam> raw;
  while (i < s.size()) {
    skip_ws();
    if (i < s.size() && s[i] == ';') {
      ++i;
      continue;
    }
    size_t name_start = i;
    while (i < s.size() && s[i] != '=' && s[i] != ';' && !IsWsp(s[i])) ++i;
    std::string_view name = s.substr(name_start, i - name_start);
    skip_ws();
    if (name.empty() || i >= s.size() || s[i] != '=') {
      while (i < s.size() && s[i] != ';') ++i;  // junk: skip to the next parameter
      if (name.empty() && i < s.size() && s[i] != ';') ++i;
      continue;
    }
    ++i;  // '='
    skip_ws();
    std::string v;
    if (i < s.size() && s[i] == '"') {
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        v += s[i++];
      }
      if (i < s.size()) ++i;  // closing quote (a missing one ends at the end)
    } else {
      size_t start = i;
      while (i < s.size() && s[i] != ';') ++i;
      v = std::string(TrimSpaces(s.substr(start, i - start)));
    }
    raw.push_back(RawParam{AsciiLower(name), std::move(v)});
  }
  *type = AsciiLower(t);
  if (with_subtype) *subtype = AsciiLower(st);
  *params = Collate(raw);
  return true;
}

std::string SanitizeUtf8(std::string_view s) {
  if (IsValidUtf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    if (c < 0x80) {
      out += s[i++];
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    if (c >= 0xE0 && c <= 0xEF) len = 3;
    if (c >= 0xF0 && c <= 0xF4) len = 4;
    if (len > 0 && i + len <= s.size() && IsValidUtf8(s.substr(i, len))) {
      out.append(s.substr(i, len));
      i += len;
      continue;
    }
    out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
    ++i;
  }
  return out;
}

}  // namespace hato::mime::internal
