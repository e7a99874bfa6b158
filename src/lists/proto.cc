#include "lists/proto.h"

#include <algorithm>
#include <set>

#include "base/digest.h"
#include "base/strings.h"
#include "mime/header.h"
#include "mime/message.h"
#include "web/escape.h"
#include "web/security.h"

namespace hato::lists {
namespace {

using mime::internal::FindField;
using mime::internal::ScanHeader;
using mime::internal::Unfold;

bool Plain(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// A plausible address: local@domain, no spaces or controls, a dot-less domain allowed.
bool ValidAddress(std::string_view a) {
  size_t at = a.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == a.size()) return false;
  if (a.size() > 254) return false;
  for (unsigned char c : a) {
    if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' || c == '"' || c == '(' ||
        c == ')' || c == ';' || c == '\\' || c == '[' || c == ']')
      return false;
  }
  std::string_view domain = a.substr(at + 1);
  if (domain.find('@') != std::string_view::npos) return false;
  if (domain.front() == '.' || domain.back() == '.' || domain.find("..") != std::string_view::npos)
    return false;
  return true;
}

std::string AddressOnly(std::string_view v) {
  // "rfc822; a@b" -> "a@b"
  std::string s = Unfold(v);
  size_t semi = s.find(';');
  if (semi != std::string::npos) s = s.substr(semi + 1);
  std::string_view t = TrimSpaces(s);
  if (!t.empty() && t.front() == '<' && t.back() == '>') t = t.substr(1, t.size() - 2);
  return AsciiLower(t);
}

// The header blocks (fields separated by empty lines) of a delivery-status body.
std::vector<std::vector<std::pair<std::string, std::string>>> StatusBlocks(std::string_view body) {
  std::vector<std::vector<std::pair<std::string, std::string>>> blocks;
  size_t pos = 0;
  while (pos < body.size() && blocks.size() <= kMaxDsnRecipients) {
    // Skip blank lines between blocks.
    while (pos < body.size() && (body[pos] == '\r' || body[pos] == '\n')) ++pos;
    if (pos >= body.size()) break;
    auto scan = ScanHeader(body.substr(pos));
    std::vector<std::pair<std::string, std::string>> block;
    for (const auto& f : scan.fields) {
      block.emplace_back(AsciiLower(f.name), Unfold(f.value));
    }
    if (scan.end == 0) break;
    if (!block.empty()) blocks.push_back(std::move(block));
    if (scan.fields.empty()) {
      // Not a field line: skip it.
      size_t nl = body.find('\n', pos);
      pos = nl == std::string_view::npos ? body.size() : nl + 1;
      continue;
    }
    pos += scan.end;
  }
  return blocks;
}

const mime::Part* FindType(const mime::Part& p, std::string_view type, std::string_view sub,
                           int depth = 0) {
  if (p.type == type && p.subtype == sub) return &p;
  if (depth > 8) return nullptr;
  for (const auto& c : p.children) {
    if (const mime::Part* f = FindType(c, type, sub, depth + 1)) return f;
  }
  return nullptr;
}

// The header block of a message (up to and including the blank line) and its body.
std::pair<std::string_view, std::string_view> SplitMessage(std::string_view m) {
  auto scan = ScanHeader(m);
  return {m.substr(0, scan.end), m.substr(scan.end)};
}

bool IsListField(std::string_view name) {
  std::string n = AsciiLower(name);
  return n == "list-id" || n == "list-unsubscribe" || n == "list-unsubscribe-post" ||
         n == "list-post" || n == "list-help" || n == "list-subscribe" || n == "list-archive" ||
         n == "list-owner" || n == "return-path" || n == "bcc" || n == "x-loop" ||
         n == "precedence";
}

}  // namespace

ListAddress ParseListLocal(std::string_view local) {
  ListAddress a;
  a.list_local = std::string(local);
  size_t plus = local.find('+');
  std::string_view base = local.substr(0, plus);
  std::string_view ext = plus == std::string_view::npos ? "" : local.substr(plus + 1);
  constexpr std::string_view kBounces = "-bounces";
  if (base.size() > kBounces.size() && base.substr(base.size() - kBounces.size()) == kBounces) {
    a.list_local = std::string(base.substr(0, base.size() - kBounces.size()));
    a.kind = AddressKind::kBounces;
    a.arg = VerpMember(ext);
    return a;
  }
  if (plus == std::string_view::npos) return a;
  struct Word {
    std::string_view word;
    AddressKind kind;
  };
  static constexpr Word kWords[] = {
      {"join", AddressKind::kJoin},   {"subscribe", AddressKind::kJoin},
      {"leave", AddressKind::kLeave}, {"unsubscribe", AddressKind::kLeave},
      {"help", AddressKind::kHelp},   {"owner", AddressKind::kOwner},
  };
  for (const auto& w : kWords) {
    if (ext == w.word) {
      a.list_local = std::string(base);
      a.kind = w.kind;
      return a;
    }
  }
  for (auto [prefix, kind] : {std::pair{std::string_view("confirm-"), AddressKind::kConfirm},
                              std::pair{std::string_view("moderate-"), AddressKind::kModerate}}) {
    if (StartsWith(ext, prefix)) {
      a.list_local = std::string(base);
      a.kind = kind;
      a.arg = std::string(ext.substr(prefix.size()));
      return a;
    }
  }
  return a;
}

std::string VerpAddress(std::string_view bounce_address, std::string_view member) {
  auto [blocal, bdomain] = SplitAddress(bounce_address);
  auto [mlocal, mdomain] = SplitAddress(member);
  std::string out = blocal + "+";
  static const char* kHex = "0123456789ABCDEF";
  for (unsigned char c : mlocal) {
    if (Plain(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  out += "=" + mdomain + "@" + bdomain;
  return out;
}

std::string VerpMember(std::string_view encoded) {
  size_t eq = encoded.rfind('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == encoded.size()) return "";
  std::string local;
  for (size_t i = 0; i < eq; ++i) {
    if (encoded[i] == '%' && i + 2 < eq + 1 && i + 2 < encoded.size()) {
      int hi = HexValue(encoded[i + 1]), lo = HexValue(encoded[i + 2]);
      if (hi < 0 || lo < 0) return "";
      local += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      local += encoded[i];
    }
  }
  std::string addr = AsciiLower(local) + "@" + AsciiLower(encoded.substr(eq + 1));
  return ValidAddress(addr) ? addr : "";
}

std::pair<std::string, std::string> SplitAddress(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos) return {std::string(address), ""};
  return {std::string(address.substr(0, at)), std::string(address.substr(at + 1))};
}

std::string FirstAddress(std::string_view header_value) {
  for (const auto& a : mime::ParseAddressList(header_value)) {
    if (a.mailbox && a.host && !a.host->empty()) {
      std::string addr = AsciiLower(*a.mailbox + "@" + *a.host);
      if (ValidAddress(addr)) return addr;
    }
  }
  return "";
}

DsnReport ParseDsn(std::string_view message) {
  DsnReport r;
  auto tree = mime::Parse(message);
  if (!tree) return r;
  const mime::Part* status = FindType(*tree, "message", "delivery-status");
  if (status == nullptr) status = FindType(*tree, "message", "global-delivery-status");
  if (status == nullptr || status->body_end > message.size() ||
      status->header_end > status->body_end) {
    return r;
  }
  r.is_dsn = true;
  auto blocks =
      StatusBlocks(message.substr(status->header_end, status->body_end - status->header_end));
  for (size_t i = 0; i < blocks.size(); ++i) {
    DsnRecipient rc;
    for (const auto& [name, value] : blocks[i]) {
      if (name == "original-envelope-id") r.envid = std::string(TrimSpaces(value));
      if (name == "final-recipient") rc.final_recipient = AddressOnly(value);
      if (name == "original-recipient") rc.original_recipient = AddressOnly(value);
      if (name == "action") rc.action = AsciiLower(TrimSpaces(value));
      if (name == "status") rc.status = std::string(TrimSpaces(value).substr(0, 16));
      if (name == "diagnostic-code") rc.diagnostic = value.substr(0, 1000);
    }
    // The first block is per-message (RFC 3464 section 2.2); the others per recipient.
    if (!rc.final_recipient.empty() && r.recipients.size() < kMaxDsnRecipients) {
      r.recipients.push_back(std::move(rc));
    }
  }
  return r;
}

std::string CsvField(std::string_view value) {
  bool quote = value.find_first_of(",\"\r\n") != std::string_view::npos ||
               (!value.empty() && (value.front() == ' ' || value.back() == ' '));
  if (!quote) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

CsvResult ParseMembersCsv(std::string_view text) {
  CsvResult r;
  std::set<std::string> seen;
  size_t pos = 0, line_no = 0;
  bool first = true;
  while (pos < text.size() && line_no < kMaxCsvRows) {
    ++line_no;
    size_t start_line = line_no;
    // One record; quoted fields may span lines.
    std::vector<std::string> fields(1);
    bool quoted = false, ok = true, was_quoted = false;
    size_t begin = pos;
    while (pos < text.size()) {
      char c = text[pos];
      if (quoted) {
        if (c == '"') {
          if (pos + 1 < text.size() && text[pos + 1] == '"') {
            fields.back() += '"';
            pos += 2;
            continue;
          }
          quoted = false;
          ++pos;
          continue;
        }
        if (c == '\n') ++line_no;
        fields.back() += c;
        ++pos;
        continue;
      }
      if (c == '\r' && pos + 1 < text.size() && text[pos + 1] == '\n') {
        pos += 2;
        break;
      }
      if (c == '\n' || c == '\r') {
        ++pos;
        break;
      }
      if (c == ',') {
        fields.emplace_back();
        was_quoted = false;
      } else if (c == '"' && TrimSpaces(fields.back()).empty() && !was_quoted) {
        fields.back().clear();
        quoted = true;
        was_quoted = true;
      } else if (was_quoted && c != ' ') {
        ok = false;  // text after a closing quote
        fields.back() += c;
      } else {
        fields.back() += c;
      }
      ++pos;
    }
    if (pos - begin > kMaxCsvLineBytes) {
      r.errors.push_back(
          CsvError{start_line, "line longer than " + std::to_string(kMaxCsvLineBytes) + " bytes"});
      continue;
    }
    if (quoted) {
      r.errors.push_back(CsvError{start_line, "unterminated quoted field"});
      continue;
    }
    std::string address = AsciiLower(TrimSpaces(fields[0]));
    bool was_first = first;
    first = false;
    if (fields.size() == 1 && address.empty()) continue;  // empty line
    if (!address.empty() && address[0] == '#') continue;  // comment
    if (was_first && address == "address") continue;      // header row
    if (!ok) {
      r.errors.push_back(CsvError{start_line, "text after a closing quote"});
      continue;
    }
    if (fields.size() > 3) {
      r.errors.push_back(CsvError{start_line, "more than 3 fields (address,name,roles)"});
      continue;
    }
    if (!ValidAddress(address)) {
      r.errors.push_back(CsvError{start_line, "invalid address '" + address + "'"});
      continue;
    }
    CsvMember m;
    m.line = start_line;
    m.address = address;
    if (fields.size() > 1) m.name = std::string(TrimSpaces(fields[1]));
    if (fields.size() > 2) m.roles = AsciiLower(TrimSpaces(fields[2]));
    bool roles_ok = true;
    for (auto w : SplitWords(m.roles)) {
      for (size_t b = 0, e; b <= w.size(); b = e + 1) {
        e = w.find('|', b);
        if (e == std::string_view::npos) e = w.size();
        std::string_view role = w.substr(b, e - b);
        if (!role.empty() && role != "member" && role != "owner" && role != "moderator")
          roles_ok = false;
      }
    }
    if (!roles_ok) {
      r.errors.push_back(
          CsvError{start_line, "unknown role in '" + m.roles + "' (member, owner, moderator)"});
      continue;
    }
    if (!seen.insert(address).second) {
      r.errors.push_back(CsvError{start_line, "duplicate address " + address});
      continue;
    }
    r.members.push_back(std::move(m));
  }
  return r;
}

std::string BuildPost(std::string_view message, const PostHeaders& h) {
  auto [header, body] = SplitMessage(message);
  auto scan = ScanHeader(header);
  auto [local, domain] = SplitAddress(h.list_address);
  std::string name = h.list_name.empty() ? local : h.list_name;
  std::string top;
  // RFC 2919 section 3: List-Id: phrase <list-label.domain>.
  top += "List-Id: " + name + " <" + local + "." + domain + ">\r\n";
  // RFC 2369 section 3; per member (MemberUnsubscribeFields) for RFC 8058.
  if (!h.per_member_unsubscribe) top += MemberUnsubscribeFields(h.list_address, "");
  top += "List-Subscribe: <mailto:" + local + "+join@" + domain + "?subject=subscribe>\r\n";
  top += "List-Help: <mailto:" + local + "+help@" + domain + "?subject=help>\r\n";
  top +=
      "List-Post: " + (h.announce ? std::string("NO") : "<mailto:" + h.list_address + ">") + "\r\n";
  top += "List-Owner: <mailto:" + local + "+owner@" + domain + ">\r\n";
  if (!h.archive_url.empty()) top += "List-Archive: <" + h.archive_url + ">\r\n";
  top += "Precedence: list\r\n";
  top += "X-Loop: " + h.list_address + "\r\n";
  std::string kept;
  std::string from_value, reply_to;
  size_t last = 0;
  for (const auto& f : scan.fields) {
    std::string_view raw = header.substr(f.begin, f.end - f.begin);
    last = f.end;
    if (IsListField(f.name)) continue;
    if (h.rewrite_from && EqualsIgnoreCase(f.name, "From")) {
      from_value = Unfold(f.value);
      continue;
    }
    if (EqualsIgnoreCase(f.name, "Reply-To")) reply_to = Unfold(f.value);
    kept += raw;
  }
  if (h.rewrite_from && !from_value.empty()) {
    // RFC 7489 section 6.6 does not say how; this is what lists commonly do.
    std::string display;
    auto addrs = mime::ParseAddressList(from_value);
    if (!addrs.empty() && addrs[0].name) display = *addrs[0].name;
    if (display.size() >= 2 && display.front() == '"')
      display = display.substr(1, display.size() - 2);
    if (display.empty()) display = FirstAddress(from_value);
    std::string quoted;
    for (char c : display + " via " + name) {
      if (c == '"' || c == '\\') quoted += '\\';
      if (c != '\r' && c != '\n') quoted += c;
    }
    top += "From: \"" + quoted + "\" <" + h.list_address + ">\r\n";
    top += "X-Original-From: " + from_value + "\r\n";
    if (reply_to.empty()) top += "Reply-To: " + from_value + "\r\n";
  }
  // What follows the last field (the blank line, or nothing for a header-only message).
  std::string_view rest = header.substr(last);
  if (rest.empty()) rest = "\r\n";
  return top + kept + std::string(rest) + std::string(body);
}

bool IsOwnPost(std::string_view message, std::string_view list_address) {
  auto [header, body] = SplitMessage(message);
  auto scan = ScanHeader(header);
  auto [local, domain] = SplitAddress(list_address);
  std::string id = AsciiLower("<" + local + "." + domain + ">");
  for (const auto& f : scan.fields) {
    std::string v = AsciiLower(Unfold(f.value));
    if (EqualsIgnoreCase(f.name, "List-Id") && v.find(id) != std::string::npos) return true;
    if (EqualsIgnoreCase(f.name, "X-Loop") && v.find(AsciiLower(list_address)) != std::string::npos)
      return true;
  }
  return false;
}

bool IsAutomatic(std::string_view message) {
  auto [header, body] = SplitMessage(message);
  auto scan = ScanHeader(header);
  for (const auto& f : scan.fields) {
    std::string v = AsciiLower(TrimSpaces(Unfold(f.value)));
    if (EqualsIgnoreCase(f.name, "Auto-Submitted") && !StartsWith(v, "no")) return true;
    if (EqualsIgnoreCase(f.name, "Precedence") && (v == "bulk" || v == "junk" || v == "list"))
      return true;
  }
  return false;
}

std::optional<bool> ModerationDecision(std::string_view message) {
  auto [header, body] = SplitMessage(message);
  auto word = [](std::string_view line) -> std::optional<bool> {
    line = TrimSpaces(line);
    auto words = SplitWords(line);
    if (words.empty()) return std::nullopt;
    std::string w = AsciiLower(words[0]);
    while (!w.empty() && (w.back() == '.' || w.back() == '!' || w.back() == ',')) w.pop_back();
    if (w == "approve" || w == "approved" || w == "accept" || w == "yes" || w == "ok" ||
        StartsWith(words[0], "承認"))
      return true;
    if (w == "reject" || w == "rejected" || w == "discard" || w == "no" ||
        StartsWith(words[0], "却下"))
      return false;
    return std::nullopt;
  };
  size_t pos = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    std::string_view line = body.substr(pos, nl == std::string_view::npos ? body.npos : nl - pos);
    pos = nl == std::string_view::npos ? body.size() : nl + 1;
    std::string_view t = TrimSpaces(line);
    if (!t.empty() && t.back() == '\r') t = TrimSpaces(t.substr(0, t.size() - 1));
    if (t.empty() || t.front() == '>') continue;
    return word(t);  // the first real line decides
  }
  // An empty reply: the Subject may carry the word ("approve" / "Re: approve").
  std::string subject = SubjectOf(message);
  std::string_view s = subject;
  while (StartsWithIgnoreCase(s, "re:")) s = TrimSpaces(s.substr(3));
  return word(s);
}

std::string SubjectOf(std::string_view message) {
  auto [header, body] = SplitMessage(message);
  auto scan = ScanHeader(header);
  const auto* f = FindField(scan.fields, "Subject");
  return f ? Unfold(f->value) : "";
}

// ---- The language of the list's own mails (issue 13) ----

MailLanguage LanguageFromTags(std::string_view tags) {
  size_t pos = 0;
  while (pos < tags.size()) {
    size_t comma = tags.find(',', pos);
    std::string_view item =
        tags.substr(pos, comma == std::string_view::npos ? tags.npos : comma - pos);
    pos = comma == std::string_view::npos ? tags.size() : comma + 1;
    size_t semi = item.find(';');
    std::string_view range = TrimSpaces(item.substr(0, semi));
    if (semi != std::string_view::npos) {
      // "q=0" (also "q=0.0", "q=0.000") refuses the range (RFC 9110 section 12.4.2).
      std::string params = AsciiLower(item.substr(semi + 1));
      params.erase(std::remove(params.begin(), params.end(), ' '), params.end());
      size_t q = params.find("q=");
      if (q != std::string::npos) {
        std::string_view v = std::string_view(params).substr(q + 2);
        v = v.substr(0, v.find(';'));
        if (!v.empty() && v.find_first_not_of("0.") == std::string_view::npos) continue;
      }
    }
    auto family = [&](std::string_view lang) {
      return EqualsIgnoreCase(range, lang) ||
             (range.size() > lang.size() && StartsWithIgnoreCase(range, lang) &&
              range[lang.size()] == '-');
    };
    if (family("ja")) return MailLanguage::kJapanese;
    if (family("en")) return MailLanguage::kEnglish;
  }
  return MailLanguage::kBoth;
}

MailLanguage ChooseMailLanguage(std::string_view account_language, std::string_view request) {
  if (MailLanguage l = LanguageFromTags(account_language); l != MailLanguage::kBoth) return l;
  if (request.empty()) return MailLanguage::kBoth;
  auto [header, body] = SplitMessage(request);
  auto scan = ScanHeader(header);
  for (const char* name : {"Accept-Language", "Content-Language"}) {
    const auto* f = FindField(scan.fields, name);
    if (!f) continue;
    if (MailLanguage l = LanguageFromTags(Unfold(f->value)); l != MailLanguage::kBoth) return l;
  }
  return MailLanguage::kBoth;
}

// ---- One-click unsubscribe (RFC 8058) ----

namespace {

std::string Base64Url(std::string_view in) {
  std::string b = Base64Encode(in);
  while (!b.empty() && b.back() == '=') b.pop_back();
  for (char& c : b) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return b;
}

std::optional<std::string> Base64UrlDecode(std::string_view in) {
  std::string b;
  b.reserve(in.size() + 3);
  for (char c : in) {
    if (c == '+' || c == '/' || c == '=') return std::nullopt;
    b += c == '-' ? '+' : c == '_' ? '/' : c;
  }
  while (b.size() % 4 != 0) b += '=';
  return Base64Decode(b);
}

std::string UnsubscribeMac(std::string_view key, std::string_view list, std::string_view member) {
  std::string data = "hato-unsubscribe\n";
  data += list;
  data += '\n';
  data += member;
  return HexEncode(HmacSha256(key, data)).substr(0, kUnsubscribeMacHexChars);
}

// application/x-www-form-urlencoded value decoding (+ and %XX).
std::string FormDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::string UnsubscribeToken(std::string_view key, std::string_view list, std::string_view member) {
  std::string l = AsciiLower(list), m = AsciiLower(member);
  return Base64Url(l + "\n" + m) + "." + UnsubscribeMac(key, l, m);
}

std::optional<UnsubscribeTarget> CheckUnsubscribeToken(std::string_view key,
                                                       std::string_view token) {
  if (token.size() > kMaxUnsubscribeTokenBytes) return std::nullopt;
  size_t dot = token.rfind('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto names = Base64UrlDecode(token.substr(0, dot));
  if (!names) return std::nullopt;
  size_t nl = names->find('\n');
  if (nl == std::string::npos) return std::nullopt;
  UnsubscribeTarget t{names->substr(0, nl), names->substr(nl + 1)};
  if (!ValidAddress(t.list) || !ValidAddress(t.member)) return std::nullopt;
  if (AsciiLower(t.list) != t.list || AsciiLower(t.member) != t.member) return std::nullopt;
  if (!web::SecretEquals(token.substr(dot + 1), UnsubscribeMac(key, t.list, t.member)))
    return std::nullopt;
  return t;
}

std::string UnsubscribeUrl(std::string_view base, std::string_view token) {
  std::string url(base);
  url += base.find('?') == std::string_view::npos ? "?token=" : "&token=";
  url += token;
  return url;
}

std::string MemberUnsubscribeFields(std::string_view list_address, std::string_view url) {
  auto [local, domain] = SplitAddress(list_address);
  std::string mailto = "<mailto:" + local + "+leave@" + domain + "?subject=unsubscribe>";
  if (url.empty()) return "List-Unsubscribe: " + mailto + "\r\n";
  return "List-Unsubscribe: <" + std::string(url) + ">,\r\n " + mailto +
         "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";
}

bool IsOneClickPost(std::string_view content_type, std::string_view body) {
  std::string type = AsciiLower(TrimSpaces(content_type.substr(0, content_type.find(';'))));
  if (type == "multipart/form-data") {
    // A part named List-Unsubscribe whose value is One-Click (RFC 7578).
    std::string lower = AsciiLower(body);
    size_t p = lower.find("name=\"list-unsubscribe\"");
    if (p == std::string::npos) return false;
    size_t blank = body.find("\r\n\r\n", p);
    size_t skip = 4;
    if (blank == std::string_view::npos) {
      blank = body.find("\n\n", p);
      skip = 2;
    }
    if (blank == std::string_view::npos) return false;
    std::string_view value = body.substr(blank + skip);
    value = value.substr(0, value.find_first_of("\r\n"));
    return TrimSpaces(value) == "One-Click";
  }
  if (!type.empty() && type != "application/x-www-form-urlencoded") return false;
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t amp = body.find('&', pos);
    if (amp == std::string_view::npos) amp = body.size();
    std::string_view pair = TrimSpaces(body.substr(pos, amp - pos));
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && FormDecode(pair.substr(0, eq)) == "List-Unsubscribe" &&
        FormDecode(pair.substr(eq + 1)) == "One-Click")
      return true;
    pos = amp + 1;
  }
  return false;
}

std::string RenderUnsubscribePage(UnsubscribePage page, bool japanese, std::string_view list,
                                  std::string_view member, std::string_view action) {
  std::string l = web::HtmlEscape(list), m = web::HtmlEscape(member);
  std::string title, text, form;
  switch (page) {
    case UnsubscribePage::kConfirm:
      title = japanese ? "配信停止の確認" : "Unsubscribe";
      text = japanese ? m + " を " + l + " から退会させますか？"
                      : "Stop sending " + l + " to " + m + "?";
      form = "<form method=\"post\" action=\"" + web::HtmlEscape(action) +
             "\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
             "<button type=\"submit\">" +
             (japanese ? std::string("配信を停止する") : std::string("Unsubscribe")) +
             "</button></form>";
      break;
    case UnsubscribePage::kDone:
      title = japanese ? "配信を停止しました" : "Unsubscribed";
      text =
          japanese ? m + " は " + l + " から退会しました。" : m + " no longer receives " + l + ".";
      break;
    case UnsubscribePage::kInvalid:
      title = japanese ? "無効なリンク" : "Invalid link";
      text = japanese ? "この配信停止リンクは無効です。メールのリンクをそのまま開いてください。"
                      : "This unsubscribe link is not valid. Open the link from the message as "
                        "it is.";
      break;
  }
  return std::string("<!DOCTYPE html>\n<html lang=\"") + (japanese ? "ja" : "en") +
         "\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
         "content=\"width=device-width\"><title>" +
         title + "</title></head><body><h1>" + title + "</h1><p>" + text + "</p>" + form +
         "</body></html>\n";
}

}  // namespace hato::lists
