#include "smtp/command.h"

#include "base/strings.h"

namespace hato::smtp {
namespace {

struct VerbEntry {
  const char* name;
  Verb verb;
};

constexpr VerbEntry kVerbs[] = {
    {"HELO", Verb::kHelo},         {"EHLO", Verb::kEhlo}, {"MAIL", Verb::kMail},
    {"RCPT", Verb::kRcpt},         {"DATA", Verb::kData}, {"BDAT", Verb::kBdat},
    {"RSET", Verb::kRset},         {"NOOP", Verb::kNoop}, {"QUIT", Verb::kQuit},
    {"VRFY", Verb::kVrfy},         {"EXPN", Verb::kExpn}, {"HELP", Verb::kHelp},
    {"STARTTLS", Verb::kStartTls}, {"AUTH", Verb::kAuth}, {"BURL", Verb::kBurl},
};

// RFC 3461 section 4: ENVID and ORCPT values, once xtext-decoded, are printable
// US-ASCII (they are copied into DSNs, where a CR/LF would forge fields).
bool PrintableAscii(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// Splits "FROM:<a@b> SIZE=1 BODY=8BITMIME" after the verb into the path and params.
// Tolerates a space after the colon, as many clients send it.
Status ParsePathAndParams(std::string_view rest, std::string_view keyword, bool is_mail,
                          Command& cmd) {
  rest = TrimSpaces(rest);
  if (!StartsWithIgnoreCase(rest, keyword)) {
    return Err(ErrorKind::kInvalid, std::string("syntax: expected ") + std::string(keyword));
  }
  rest = TrimSpaces(rest.substr(keyword.size()));
  // The path ends at the first '>' that is not inside a quoted local part.
  size_t end = std::string_view::npos;
  bool quoted = false;
  for (size_t i = 0; i < rest.size(); ++i) {
    char c = rest[i];
    if (quoted && c == '\\') {
      ++i;
      continue;
    }
    if (c == '"') quoted = !quoted;
    if (!quoted && c == '>') {
      end = i;
      break;
    }
  }
  if (end == std::string_view::npos) return Err(ErrorKind::kInvalid, "syntax: bad path");
  std::string_view path = rest.substr(0, end + 1);
  std::string_view params = rest.substr(end + 1);
  if (!params.empty() && params.front() != ' ') {
    return Err(ErrorKind::kInvalid, "syntax: junk after path");
  }
  // Parameters first: SMTPUTF8 decides whether the path may carry UTF-8.
  for (std::string_view p : SplitWords(params)) {
    size_t eq = p.find('=');
    std::string key = AsciiUpper(p.substr(0, eq));
    std::string_view value = eq == std::string_view::npos ? std::string_view() : p.substr(eq + 1);
    if (is_mail && key == "SIZE") {
      auto n = ParseUint(value);
      if (!n) return Err(ErrorKind::kInvalid, "syntax: bad SIZE value");
      cmd.size = *n;
    } else if (is_mail && key == "BODY") {
      std::string v = AsciiUpper(value);
      if (v == "7BIT") {
        cmd.body = BodyType::k7Bit;
      } else if (v == "8BITMIME") {
        cmd.body = BodyType::k8BitMime;
      } else if (v == "BINARYMIME") {
        cmd.body = BodyType::kBinaryMime;
      } else {
        return Err(ErrorKind::kInvalid, "syntax: bad BODY value");
      }
    } else if (is_mail && key == "SMTPUTF8" && eq == std::string_view::npos) {
      cmd.smtputf8 = true;
    } else if (is_mail && key == "AUTH" && eq != std::string_view::npos) {
      cmd.auth_param = true;
    } else if (is_mail && key == "RET" && cmd.ret.empty()) {
      // RFC 3461 section 4.3
      std::string v = AsciiUpper(value);
      if (v != "FULL" && v != "HDRS") return Err(ErrorKind::kInvalid, "syntax: bad RET value");
      cmd.ret = v;
      cmd.dsn = true;
    } else if (is_mail && key == "ENVID" && eq != std::string_view::npos) {
      // RFC 3461 section 4.4
      auto v = DecodeXtext(value);
      if (!v || v->empty() || v->size() > kMaxEnvidLength || !PrintableAscii(*v)) {
        return Err(ErrorKind::kInvalid, "syntax: bad ENVID value");
      }
      cmd.envid = *v;
      cmd.dsn = true;
    } else if (!is_mail && key == "NOTIFY" && cmd.notify == 0) {
      // RFC 3461 section 4.1: NEVER, or a list of SUCCESS, FAILURE, DELAY.
      unsigned bits = 0;
      std::string v = AsciiUpper(value);
      size_t pos = 0;
      while (pos <= v.size()) {
        size_t comma = v.find(',', pos);
        std::string item = v.substr(pos, comma == std::string::npos ? comma : comma - pos);
        unsigned bit = item == "NEVER"     ? unsigned{kNotifyNever}
                       : item == "SUCCESS" ? kNotifySuccess
                       : item == "FAILURE" ? kNotifyFailure
                       : item == "DELAY"   ? kNotifyDelay
                                           : 0u;
        if (bit == 0 || (bits & bit)) return Err(ErrorKind::kInvalid, "syntax: bad NOTIFY value");
        bits |= bit;
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
      if ((bits & kNotifyNever) && bits != kNotifyNever) {
        return Err(ErrorKind::kInvalid, "syntax: NOTIFY=NEVER must be alone");
      }
      cmd.notify = bits;
      cmd.dsn = true;
    } else if (!is_mail && key == "ORCPT" && eq != std::string_view::npos) {
      // RFC 3461 section 4.2: addr-type ";" xtext
      size_t semi = value.find(';');
      auto addr =
          semi == std::string_view::npos ? std::nullopt : DecodeXtext(value.substr(semi + 1));
      if (semi == 0 || !addr || addr->empty() || addr->size() > kMaxOrcptLength ||
          !PrintableAscii(*addr) || !PrintableAscii(value.substr(0, semi))) {
        return Err(ErrorKind::kInvalid, "syntax: bad ORCPT value");
      }
      cmd.orcpt = std::string(value.substr(0, semi)) + ";" + *addr;
      cmd.dsn = true;
    } else {
      // RFC 5321 section 4.1.1.11: unrecognised parameters get 555.
      return Err(ErrorKind::kInvalid, std::string(kUnsupportedParameter) + ": " + key);
    }
  }
  // RFC 5321 4.1.1.3 and 4.5.1: "RCPT TO:<Postmaster>" (no domain, any case)
  // must be accepted; it is a Mailbox with an empty domain.
  if (!is_mail && EqualsIgnoreCase(path, "<postmaster>")) {
    cmd.path = Mailbox{"postmaster", ""};
    return Ok();
  }
  bool utf8 = cmd.smtputf8 || !is_mail;  // RCPT: the session checks SMTPUTF8 of the transaction
  auto parsed = ParsePath(path, /*allow_null=*/is_mail, utf8);
  if (!parsed) return Err(ErrorKind::kInvalid, "syntax: " + parsed.error().message);
  if (!is_mail && !parsed->has_value()) return Err(ErrorKind::kInvalid, "syntax: empty path");
  cmd.path = std::move(*parsed);
  return Ok();
}

}  // namespace

std::optional<std::string> DecodeXtext(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;  // RFC 3461: upper-case hex only
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '+') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex(s[i + 1]);
      int lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c < 33 || c > 126 || c == '=') {
      return std::nullopt;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string EncodeXtext(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (c < 33 || c > 126 || c == '+' || c == '=') {
      out.push_back('+');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

const char* VerbName(Verb v) {
  for (const auto& e : kVerbs) {
    if (e.verb == v) return e.name;
  }
  return "?";
}

Result<Command> ParseCommand(std::string_view line) {
  size_t sp = line.find(' ');
  std::string_view word = line.substr(0, sp);
  std::string_view rest = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  Command cmd;
  bool found = false;
  for (const auto& e : kVerbs) {
    if (EqualsIgnoreCase(word, e.name)) {
      cmd.verb = e.verb;
      found = true;
      break;
    }
  }
  if (!found) return Err(ErrorKind::kNotFound, "command unrecognized");

  switch (cmd.verb) {
    case Verb::kHelo:
    case Verb::kEhlo: {
      auto words = SplitWords(rest);
      if (words.size() != 1) return Err(ErrorKind::kInvalid, "syntax: EHLO/HELO hostname");
      // A domain or an address literal (RFC 5321 section 4.1.1.1). Be liberal
      // in its form but accept only printable ASCII: it is copied into the
      // Received header, where a control character could forge a header.
      for (unsigned char ch : words[0]) {
        if (ch <= 0x20 || ch >= 0x7f) return Err(ErrorKind::kInvalid, "syntax: bad hostname");
      }
      if (words[0].size() > kMaxHeloLength) {
        return Err(ErrorKind::kInvalid,
                   "syntax: hostname longer than " + std::to_string(kMaxHeloLength) + " octets");
      }
      cmd.arg = std::string(words[0]);
      break;
    }
    case Verb::kMail:
      if (auto st = ParsePathAndParams(rest, "FROM:", true, cmd); !st) return st.error();
      break;
    case Verb::kRcpt:
      if (auto st = ParsePathAndParams(rest, "TO:", false, cmd); !st) return st.error();
      break;
    case Verb::kBdat: {
      // RFC 3030 section 2: "BDAT" SP chunk-size [ SP end-marker ]
      auto words = SplitWords(rest);
      if (words.empty() || words.size() > 2) return Err(ErrorKind::kInvalid, "syntax: BDAT size");
      auto n = ParseUint(words[0]);
      if (!n) return Err(ErrorKind::kInvalid, "syntax: BDAT size");
      cmd.chunk_size = *n;
      if (words.size() == 2) {
        if (!EqualsIgnoreCase(words[1], "LAST")) return Err(ErrorKind::kInvalid, "syntax: LAST");
        cmd.last_chunk = true;
      }
      break;
    }
    case Verb::kBurl: {
      // burl-cmd = "BURL" SP absolute-URI [SP end-marker] (RFC 4468 section 3);
      // an absolute URI has no spaces.
      auto words = SplitWords(rest);
      if (words.empty() || words.size() > 2) return Err(ErrorKind::kInvalid, "syntax: BURL URL");
      if (!PrintableAscii(words[0])) return Err(ErrorKind::kInvalid, "syntax: BURL URL");
      cmd.arg = std::string(words[0]);
      if (words.size() == 2) {
        if (!EqualsIgnoreCase(words[1], "LAST")) return Err(ErrorKind::kInvalid, "syntax: LAST");
        cmd.last_chunk = true;
      }
      break;
    }
    case Verb::kData:
    case Verb::kRset:
    case Verb::kQuit:
    case Verb::kStartTls:
      if (!TrimSpaces(rest).empty())
        return Err(ErrorKind::kInvalid, "syntax: no parameters allowed");
      break;
    case Verb::kNoop:
    case Verb::kVrfy:
    case Verb::kExpn:
    case Verb::kHelp:
    case Verb::kAuth:
      cmd.arg = std::string(TrimSpaces(rest));
      break;
  }
  return cmd;
}

}  // namespace hato::smtp
