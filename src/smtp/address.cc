#include "smtp/address.h"

#include "base/strings.h"

namespace hato::smtp {
namespace {

bool IsAtext(unsigned char c, bool allow_utf8) {
  // RFC 5322 section 3.2.3 atext.
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '/':
    case '=':
    case '?':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~':
      return true;
    default:
      return allow_utf8 && c >= 0x80;
  }
}

bool IsLetDig(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

Status CheckDomain(std::string_view d, bool allow_utf8) {
  if (d.empty()) return Err(ErrorKind::kInvalid, "empty domain");
  if (d.size() > kMaxDomainLength) return Err(ErrorKind::kInvalid, "domain too long");
  if (d.front() == '[') {
    // address-literal (RFC 5321 section 4.1.3): accept IPv4/IPv6 text loosely but safely.
    if (d.back() != ']' || d.size() < 3) return Err(ErrorKind::kInvalid, "bad address literal");
    for (char c : d.substr(1, d.size() - 2)) {
      auto u = static_cast<unsigned char>(c);
      if (!(IsLetDig(u) || c == '.' || c == ':' || c == '-')) {
        return Err(ErrorKind::kInvalid, "bad address literal");
      }
    }
    return Ok();
  }
  // sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]
  size_t start = 0;
  while (true) {
    size_t dot = d.find('.', start);
    std::string_view label = d.substr(start, dot == std::string_view::npos ? d.npos : dot - start);
    if (label.empty() || label.size() > 63) return Err(ErrorKind::kInvalid, "bad domain label");
    for (size_t i = 0; i < label.size(); ++i) {
      auto u = static_cast<unsigned char>(label[i]);
      bool ok =
          IsLetDig(u) || (allow_utf8 && u >= 0x80) || (u == '-' && i != 0 && i + 1 != label.size());
      if (!ok) return Err(ErrorKind::kInvalid, "bad character in domain");
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return Ok();
}

Status CheckLocalPart(std::string_view l, bool allow_utf8) {
  if (l.empty()) return Err(ErrorKind::kInvalid, "empty local part");
  if (l.size() > kMaxLocalPartLength) return Err(ErrorKind::kInvalid, "local part too long");
  if (l.front() == '"') {
    // Quoted-string: qtextSMTP / quoted-pairSMTP (RFC 5321 section 4.1.2).
    if (l.size() < 2 || l.back() != '"') return Err(ErrorKind::kInvalid, "bad quoted local part");
    for (size_t i = 1; i + 1 < l.size(); ++i) {
      auto u = static_cast<unsigned char>(l[i]);
      if (u == '\\') {
        ++i;
        if (i + 1 >= l.size()) return Err(ErrorKind::kInvalid, "bad quoted-pair");
        u = static_cast<unsigned char>(l[i]);
        // quoted-pairSMTP is %d92 %d32-126, also under SMTPUTF8 (RFC 6531 section 3.3).
        if (u < 32 || u > 126) return Err(ErrorKind::kInvalid, "bad quoted-pair");
      } else if (u == '"' || u < 32 || u == 127 || (u >= 0x80 && !allow_utf8)) {
        return Err(ErrorKind::kInvalid, "bad character in quoted local part");
      }
    }
    return Ok();
  }
  // Dot-string = Atom *("." Atom)
  bool prev_dot = true;
  for (char c : l) {
    if (c == '.') {
      if (prev_dot) return Err(ErrorKind::kInvalid, "bad dot in local part");
      prev_dot = true;
    } else if (IsAtext(static_cast<unsigned char>(c), allow_utf8)) {
      prev_dot = false;
    } else {
      return Err(ErrorKind::kInvalid, "bad character in local part");
    }
  }
  if (prev_dot) return Err(ErrorKind::kInvalid, "local part ends with a dot");
  return Ok();
}

}  // namespace

Result<Mailbox> ParseMailbox(std::string_view s, bool allow_utf8) {
  if (allow_utf8 && !IsValidUtf8(s)) return Err(ErrorKind::kInvalid, "invalid UTF-8 in address");
  // The domain cannot contain '@' or '"', so the last '@' splits the mailbox.
  size_t at = s.rfind('@');
  if (at == std::string_view::npos) return Err(ErrorKind::kInvalid, "address lacks a domain");
  std::string_view local = s.substr(0, at);
  std::string_view domain = s.substr(at + 1);
  if (auto st = CheckLocalPart(local, allow_utf8); !st) return st.error();
  if (auto st = CheckDomain(domain, allow_utf8); !st) return st.error();
  return Mailbox{std::string(local), AsciiLower(domain)};
}

Result<std::optional<Mailbox>> ParsePath(std::string_view s, bool allow_null, bool allow_utf8) {
  if (s.size() > kMaxPathLength + 2) return Err(ErrorKind::kInvalid, "path too long");
  if (s.size() < 2 || s.front() != '<' || s.back() != '>') {
    return Err(ErrorKind::kInvalid, "path must be enclosed in <>");
  }
  std::string_view inner = s.substr(1, s.size() - 2);
  if (inner.empty()) {
    if (!allow_null) return Err(ErrorKind::kInvalid, "null path not allowed here");
    return std::optional<Mailbox>();
  }
  // Source routes ("@a,@b:user@c") are obsolete; RFC 5321 section 4.1.2 says accept
  // and ignore them.
  if (inner.front() == '@') {
    // A-d-l = At-domain *( "," At-domain ), each one checked though ignored.
    size_t colon = inner.find(':');
    if (colon == std::string_view::npos) return Err(ErrorKind::kInvalid, "bad source route");
    std::string_view route = inner.substr(0, colon);
    while (true) {
      size_t comma = route.find(',');
      std::string_view hop = route.substr(0, comma);
      if (hop.size() < 2 || hop.front() != '@' || !CheckDomain(hop.substr(1), allow_utf8)) {
        return Err(ErrorKind::kInvalid, "bad source route");
      }
      if (comma == std::string_view::npos) break;
      route = route.substr(comma + 1);
    }
    inner = inner.substr(colon + 1);
  }
  auto m = ParseMailbox(inner, allow_utf8);
  if (!m) return m.error();
  return std::optional<Mailbox>(std::move(*m));
}

std::string AccountKey(const Mailbox& m) {
  std::string local = m.local.front() == '"' ? m.local : AsciiLower(m.local);
  return local + "@" + AsciiLower(m.domain);
}

}  // namespace hato::smtp
