#include "smtp/reply.h"

#include "base/strings.h"

namespace hato::smtp {

std::string Reply::Enhanced() const {
  if (lines.empty()) return "";
  std::string_view t = lines[0];
  // class "." subject "." detail, RFC 3463 section 2.
  size_t sp = t.find(' ');
  std::string_view code = t.substr(0, sp);
  int dots = 0;
  bool ok = code.size() >= 5 && (code[0] == '2' || code[0] == '4' || code[0] == '5');
  for (size_t i = 1; ok && i < code.size(); ++i) {
    if (code[i] == '.') {
      ++dots;
      ok = code[i - 1] != '.';
    } else {
      ok = code[i] >= '0' && code[i] <= '9';
    }
  }
  return ok && dots == 2 && code.back() != '.' ? std::string(code) : "";
}

std::string Reply::Text() const {
  std::string out = std::to_string(code);
  for (size_t i = 0; i < lines.size(); ++i) {
    out += i == 0 ? " " : "; ";
    out += lines[i];
  }
  return out;
}

Result<bool> ReplyReader::Feed(std::string_view line) {
  if (line.size() < 3 || line.size() > kMaxReplyLine) {
    return Err(ErrorKind::kInvalid, "bad reply line");
  }
  int code = 0;
  for (int i = 0; i < 3; ++i) {
    char c = line[static_cast<size_t>(i)];
    if (c < '0' || c > '9') return Err(ErrorKind::kInvalid, "bad reply code");
    code = code * 10 + (c - '0');
  }
  if (code < 200 || code > 599) return Err(ErrorKind::kInvalid, "reply code out of range");
  bool more = line.size() > 3 && line[3] == '-';
  if (line.size() > 3 && line[3] != '-' && line[3] != ' ') {
    return Err(ErrorKind::kInvalid, "bad reply separator");
  }
  if (!reply_.lines.empty() && code != reply_.code) {
    return Err(ErrorKind::kInvalid, "reply code changed in a multi-line reply");
  }
  if (reply_.lines.size() >= kMaxReplyLines) return Err(ErrorKind::kInvalid, "reply too long");
  reply_.code = code;
  reply_.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view());
  return !more;
}

Reply ReplyReader::Take() {
  Reply r = std::move(reply_);
  reply_ = Reply{};
  return r;
}

Extensions ParseEhlo(const Reply& ehlo) {
  Extensions e;
  for (size_t i = 1; i < ehlo.lines.size(); ++i) {
    auto words = SplitWords(ehlo.lines[i]);
    if (words.empty()) continue;
    std::string kw = AsciiUpper(words[0]);
    if (kw == "STARTTLS") e.starttls = true;
    if (kw == "PIPELINING") e.pipelining = true;
    if (kw == "8BITMIME") e.eight_bit_mime = true;
    if (kw == "SMTPUTF8") e.smtputf8 = true;
    if (kw == "DSN") e.dsn = true;
    if (kw == "AUTH" || kw.rfind("AUTH=", 0) == 0) {  // "AUTH=" is a pre-RFC form
      if (kw.size() > 5) words[0] = words[0].substr(5);
      for (size_t w = kw.size() > 5 ? 0 : 1; w < words.size(); ++w) {
        std::string mech = AsciiUpper(words[w]);
        e.auth_plain = e.auth_plain || mech == "PLAIN";
        e.auth_login = e.auth_login || mech == "LOGIN";
      }
    }
    if (kw == "SIZE" && words.size() > 1) {
      auto n = ParseUint(words[1]);
      if (n) e.size = *n;
    }
  }
  return e;
}

std::string DotStuff(std::string_view content) {
  // Whole lines are copied between the dots to double (a list broadcast
  // stuffs every member's copy: no per-character append).
  std::string out;
  out.reserve(content.size() + content.size() / 64 + 8);
  size_t pos = 0;
  if (!content.empty() && content.front() == '.') out.push_back('.');
  for (size_t dot; (dot = content.find("\n.", pos)) != std::string_view::npos; pos = dot + 1) {
    out.append(content.substr(pos, dot + 1 - pos));
    out.push_back('.');
  }
  out.append(content.substr(pos));
  if (!content.empty() && content.back() != '\n') out += "\r\n";
  out += ".\r\n";
  return out;
}

}  // namespace hato::smtp
