#include "msgauth/spf_record.h"

#include <algorithm>

#include "base/strings.h"

namespace hato::msgauth {
namespace {

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) { return IsAlpha(c) || IsDigit(c); }
bool IsDelimiter(char c) {
  return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

Error Invalid(std::string msg) { return Err(ErrorKind::kInvalid, "spf: " + std::move(msg)); }

// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
bool ValidTopLabel(std::string_view l) {
  if (l.empty() || !IsAlnum(l.front()) || !IsAlnum(l.back())) return false;
  bool alpha = false, dash = false;
  for (char c : l) {
    if (IsAlpha(c))
      alpha = true;
    else if (c == '-')
      dash = true;
    else if (!IsDigit(c))
      return false;
  }
  return alpha || dash;
}

// Walks a macro-string; calls on_literal/on_macro. Returns false on bad syntax.
struct Macro {
  char letter = 0;  // lower-case
  bool upper = false;
  int digits = 0;  // 0: all parts
  bool reverse = false;
  std::string delimiters;
};

template <typename Lit, typename Mac>
bool Walk(std::string_view s, bool exp, Lit on_literal, Mac on_macro) {
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c != '%') {
      // macro-literal = %x21-24 / %x26-7E (section 7.1); explain-string
      // also allows SP between macro-strings (section 6.2).
      if ((c < 0x21 || c > 0x7e) && !(exp && c == ' ')) return false;
      on_literal(std::string_view(&s[i], 1));
      ++i;
      continue;
    }
    if (i + 1 >= s.size()) return false;
    char n = s[i + 1];
    if (n == '%') {
      on_literal("%");
      i += 2;
      continue;
    }
    if (n == '_') {
      on_literal(" ");
      i += 2;
      continue;
    }
    if (n == '-') {
      on_literal("%20");
      i += 2;
      continue;
    }
    if (n != '{') return false;
    size_t close = s.find('}', i + 2);
    if (close == std::string_view::npos) return false;
    std::string_view body = s.substr(i + 2, close - i - 2);
    if (body.empty()) return false;
    Macro m;
    char letter = body[0];
    m.upper = letter >= 'A' && letter <= 'Z';
    m.letter = static_cast<char>(m.upper ? letter - 'A' + 'a' : letter);
    std::string_view valid = exp ? "slodiphcrtv" : "slodiphv";
    if (valid.find(m.letter) == std::string_view::npos) return false;
    size_t k = 1;
    size_t digits_begin = k;
    while (k < body.size() && IsDigit(body[k])) ++k;
    if (k > digits_begin) {
      if (k - digits_begin > 3) return false;
      m.digits = std::stoi(std::string(body.substr(digits_begin, k - digits_begin)));
      if (m.digits == 0) return false;  // "%{d0}" selects no part: refused
    }
    if (k < body.size() && (body[k] == 'r' || body[k] == 'R')) {
      m.reverse = true;
      ++k;
    }
    for (; k < body.size(); ++k) {
      if (!IsDelimiter(body[k])) return false;
      m.delimiters += body[k];
    }
    on_macro(m);
    i = close + 1;
  }
  return true;
}

// RFC 3986 unreserved characters stay; the rest is %XX (section 7.3, upper-case macros).
std::string UrlEscape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (IsAlnum(static_cast<char>(c)) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string Transform(std::string_view value, const Macro& m) {
  std::string delims = m.delimiters.empty() ? "." : m.delimiters;
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= value.size(); ++i) {
    if (i == value.size() || delims.find(value[i]) != std::string::npos) {
      parts.push_back(value.substr(start, i - start));
      start = i + 1;
    }
  }
  if (m.reverse) std::reverse(parts.begin(), parts.end());
  size_t keep = m.digits == 0 ? parts.size() : std::min<size_t>(parts.size(), m.digits);
  std::string out;
  for (size_t i = parts.size() - keep; i < parts.size(); ++i) {
    if (i > parts.size() - keep) out += '.';
    out += parts[i];
  }
  return m.upper ? UrlEscape(out) : out;
}

std::optional<int> ParseCidr(std::string_view s, int max) {
  // ip4-cidr-length = "/" ("0" / %x31-39 0*1DIGIT); ip6 up to 3 digits.
  if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  for (char c : s) {
    if (!IsDigit(c)) return std::nullopt;
  }
  int v = std::stoi(std::string(s));
  if (v > max) return std::nullopt;
  return v;
}

// Splits "domain-spec/cidr4//cidr6" (section 5.6, dual-cidr-length).
// A CIDR length is "/" 1*DIGIT at the very end; any other '/' belongs to the
// domain-spec (which then fails its own syntax check, or is a macro delimiter).
bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return IsDigit(c); });
}

bool ParseDualCidr(std::string_view arg, std::string* spec, int* c4, int* c6) {
  size_t dbl = arg.rfind("//");
  if (dbl != std::string_view::npos && AllDigits(arg.substr(dbl + 2))) {
    auto v6 = ParseCidr(arg.substr(dbl + 2), 128);
    if (!v6) return false;
    *c6 = *v6;
    arg = arg.substr(0, dbl);
  }
  size_t slash = arg.rfind('/');
  if (slash != std::string_view::npos && AllDigits(arg.substr(slash + 1))) {
    auto v4 = ParseCidr(arg.substr(slash + 1), 32);
    if (!v4) return false;
    *c4 = *v4;
    arg = arg.substr(0, slash);
  }
  *spec = std::string(arg);
  return true;
}

}  // namespace

bool IsSpfRecord(std::string_view txt) {
  return StartsWithIgnoreCase(txt, "v=spf1") && (txt.size() == 6 || txt[6] == ' ');
}

bool ValidMacroString(std::string_view s, bool exp) {
  return Walk(
      s, exp, [](std::string_view) {}, [](const Macro&) {});
}

bool ValidDomainSpec(std::string_view s) {
  if (s.empty() || !ValidMacroString(s, false)) return false;
  if (s.back() == '}') {
    // Ends in a macro-expand (but not an escaped "%%}" literal).
    size_t open = s.rfind("%{");
    return open != std::string_view::npos;
  }
  std::string_view t = s;
  if (t.back() == '.') t.remove_suffix(1);
  size_t dot = t.rfind('.');
  if (dot == std::string_view::npos) return false;
  return ValidTopLabel(t.substr(dot + 1));
}

Result<std::string> ExpandMacros(std::string_view s, const MacroContext& ctx, bool exp) {
  std::string out;
  std::optional<std::string> p;
  auto value = [&](char letter) -> std::string {
    switch (letter) {
      case 's':
        return ctx.sender;
      case 'l':
        return ctx.local;
      case 'o':
        return ctx.sender_domain;
      case 'd':
        return ctx.domain;
      case 'i':
        return ctx.ip.DottedForm();
      case 'p':
        if (!p) p = ctx.validated_domain ? ctx.validated_domain() : "unknown";
        return *p;
      case 'v':
        return ctx.ip.v6 ? "ip6" : "in-addr";
      case 'h':
        return ctx.helo;
      case 'c':
        return ctx.ip.ToString();
      case 'r':
        return ctx.receiver.empty() ? "unknown" : ctx.receiver;
      case 't':
        return std::to_string(ctx.now);
    }
    return "";
  };
  bool ok = Walk(
      s, exp, [&out](std::string_view lit) { out += lit; },
      [&](const Macro& m) { out += Transform(value(m.letter), m); });
  if (!ok) return Invalid("bad macro-string");
  return out;
}

std::string TruncateDomain(std::string_view d) {
  if (!d.empty() && d.back() == '.') d.remove_suffix(1);
  while (d.size() > kMaxDomainLength) {
    size_t dot = d.find('.');
    if (dot == std::string_view::npos) break;
    d.remove_prefix(dot + 1);
  }
  return std::string(d);
}

Result<SpfRecord> ParseSpfRecord(std::string_view txt) {
  if (txt.size() > kMaxSpfRecordBytes) return Invalid("record too long");
  if (!IsSpfRecord(txt)) return Invalid("not an SPF record");
  SpfRecord rec;
  size_t terms = 0;
  for (std::string_view term : SplitWords(txt.substr(6))) {
    if (++terms > kMaxSpfTerms) return Invalid("too many terms");
    // A modifier is name "=" macro-string (section 4.6.1, 12).
    size_t sep = term.find_first_of("=:/");
    if (sep != std::string_view::npos && term[sep] == '=') {
      std::string_view name = term.substr(0, sep);
      std::string_view value = term.substr(sep + 1);
      if (name.empty() || !IsAlpha(name[0])) return Invalid("bad modifier name");
      for (char c : name) {
        if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') return Invalid("bad modifier name");
      }
      if (EqualsIgnoreCase(name, "redirect") || EqualsIgnoreCase(name, "exp")) {
        auto& slot = EqualsIgnoreCase(name, "redirect") ? rec.redirect : rec.exp;
        if (slot) return Invalid("repeated " + std::string(name) + "= (section 6)");
        if (!ValidDomainSpec(value)) return Invalid("bad domain-spec in " + std::string(name));
        slot = std::string(value);
      } else if (!ValidMacroString(value, false)) {
        return Invalid("bad macro-string in modifier");
      }
      continue;
    }
    Mechanism m;
    switch (term[0]) {
      case '+':
        m.qualifier = SpfQualifier::kPass;
        term.remove_prefix(1);
        break;
      case '-':
        m.qualifier = SpfQualifier::kFail;
        term.remove_prefix(1);
        break;
      case '~':
        m.qualifier = SpfQualifier::kSoftFail;
        term.remove_prefix(1);
        break;
      case '?':
        m.qualifier = SpfQualifier::kNeutral;
        term.remove_prefix(1);
        break;
      default:
        break;
    }
    size_t name_end = term.find_first_of(":/");
    std::string name = AsciiLower(term.substr(0, name_end));
    std::string_view rest = name_end == std::string_view::npos ? "" : term.substr(name_end);
    auto need_spec = [&](bool required) -> bool {
      if (rest.empty()) return !required;
      if (rest[0] != ':') return false;
      m.domain_spec = std::string(rest.substr(1));
      return ValidDomainSpec(m.domain_spec);
    };
    if (name == "all") {
      m.kind = MechKind::kAll;
      if (!rest.empty()) return Invalid("bad all");
    } else if (name == "include" || name == "exists") {
      m.kind = name == "include" ? MechKind::kInclude : MechKind::kExists;
      if (!need_spec(true)) return Invalid("bad " + name);
    } else if (name == "ptr") {
      m.kind = MechKind::kPtr;
      if (!need_spec(false)) return Invalid("bad ptr");
    } else if (name == "a" || name == "mx") {
      m.kind = name == "a" ? MechKind::kA : MechKind::kMx;
      std::string spec;
      std::string_view arg = rest;
      bool has_colon = !arg.empty() && arg[0] == ':';
      if (has_colon) arg.remove_prefix(1);
      if (!ParseDualCidr(arg, &spec, &m.cidr4, &m.cidr6)) return Invalid("bad CIDR in " + name);
      if (has_colon && !ValidDomainSpec(spec)) return Invalid("bad domain-spec in " + name);
      if (!has_colon && !spec.empty()) return Invalid("bad " + name);
      m.domain_spec = spec;
    } else if (name == "ip4" || name == "ip6") {
      m.kind = name == "ip4" ? MechKind::kIp4 : MechKind::kIp6;
      if (rest.empty() || rest[0] != ':') return Invalid("bad " + name);
      std::string_view net = rest.substr(1);
      size_t slash = net.find('/');
      std::optional<int> cidr = name == "ip4" ? 32 : 128;
      if (slash != std::string_view::npos) {
        cidr = ParseCidr(net.substr(slash + 1), name == "ip4" ? 32 : 128);
        net = net.substr(0, slash);
      }
      auto ip = IpAddress::Parse(net);
      if (!cidr || !ip || ip->v6 != (name == "ip6")) return Invalid("bad " + name + " network");
      m.ip = *ip;
      (name == "ip4" ? m.cidr4 : m.cidr6) = *cidr;
    } else {
      return Invalid("unknown mechanism " + name);
    }
    rec.mechanisms.push_back(std::move(m));
  }
  return rec;
}

}  // namespace hato::msgauth
