// IMAP URL parsing (RFC 5092 section 11); see url.h.
#include "imap/proto/url.h"

#include <charconv>

#include "base/strings.h"
#include "http/request.h"

namespace hato::imap {
namespace {

Error Bad(std::string what) { return Err(ErrorKind::kInvalid, "bad IMAP URL: " + what); }

bool ParseNumber(std::string_view s, uint64_t max, uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && out <= max;
}

// nz-number (RFC 3501 section 9): no leading zero.
bool ParseNz32(std::string_view s, uint32_t& out) {
  uint64_t v = 0;
  if (s.empty() || s[0] == '0' || !ParseNumber(s, UINT32_MAX, v)) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

// The decoded value of an enc-* production (RFC 5092: percent-encoded UTF-8).
Result<std::string> Decode(std::string_view s, const char* what) {
  auto d = http::PercentDecode(s);
  if (!d || !IsValidUtf8(*d)) return Bad(std::string("bad escape in ") + what);
  return std::move(*d);
}

// The ";NAME=value" parameters after the mailbox (or from the start of a
// relative URL), in RFC 5092's order: UIDVALIDITY before "/", then UID,
// SECTION, PARTIAL each after a "/", then EXPIRE and URLAUTH. `rest` starts
// at a ';' (or "/;").
Status ParseParams(std::string_view text, size_t start, bool allow_uidvalidity, ImapUrl& url) {
  enum Stage { kStart, kUidValidity, kUid, kSection, kPartial, kExpire, kUrlAuth };
  Stage stage = kStart;
  size_t pos = start;
  bool have_uid = false;
  while (pos < text.size()) {
    bool slash = false;
    if (text[pos] == '/') {
      slash = true;
      ++pos;
    }
    if (pos >= text.size() || text[pos] != ';') return Bad("expected ';'");
    ++pos;
    size_t eq = text.find('=', pos);
    if (eq == std::string_view::npos) return Bad("expected '='");
    std::string name = AsciiUpper(text.substr(pos, eq - pos));
    size_t end = eq + 1;
    // A value ends at the next ';' or at a "/;" (the '/' of the next part).
    while (end < text.size() && text[end] != ';' &&
           !(text[end] == '/' && end + 1 < text.size() && text[end + 1] == ';')) {
      ++end;
    }
    std::string_view value = text.substr(eq + 1, end - eq - 1);
    if (name == "UIDVALIDITY") {
      if (!allow_uidvalidity || slash || stage != kStart) return Bad("misplaced UIDVALIDITY");
      uint32_t v = 0;
      if (!ParseNz32(value, v)) return Bad("bad UIDVALIDITY");
      url.uidvalidity = v;
      stage = kUidValidity;
    } else if (name == "UID") {
      // iuid = "/" iuid-only after a mailbox; iuid-only alone in a relative URL.
      if (stage > kUidValidity || (allow_uidvalidity && !slash) || (!allow_uidvalidity && slash)) {
        return Bad("misplaced UID");
      }
      if (!ParseNz32(value, url.uid)) return Bad("bad UID");
      have_uid = true;
      stage = kUid;
    } else if (name == "SECTION") {
      if (stage != kUid || !slash) return Bad("misplaced SECTION");
      auto s = Decode(value, "SECTION");
      if (!s) return s.error();
      if (s->empty()) return Bad("empty SECTION");
      url.section = std::move(*s);
      stage = kSection;
    } else if (name == "PARTIAL") {
      if (stage < kUid || stage > kSection || !slash) return Bad("misplaced PARTIAL");
      // partial-range = number ["." nz-number] (RFC 5092 section 11).
      ImapUrl::Partial p;
      size_t dot = value.find('.');
      if (!ParseNumber(value.substr(0, dot), UINT32_MAX, p.offset)) return Bad("bad PARTIAL");
      if (dot != std::string_view::npos) {
        uint32_t len = 0;
        if (!ParseNz32(value.substr(dot + 1), len)) return Bad("bad PARTIAL length");
        p.length = len;
      }
      url.partial = p;
      stage = kPartial;
    } else if (name == "EXPIRE") {
      if (stage < kUid || stage >= kExpire || slash || value.empty()) {
        return Bad("misplaced EXPIRE");
      }
      url.expire = std::string(value);
      stage = kExpire;
    } else if (name == "URLAUTH") {
      // iurlauth-rump = [expire] ";URLAUTH=" access; iua-verifier = ":"
      // uauth-mechanism ":" enc-urlauth (RFC 5092 section 11, RFC 4467 3).
      if (stage < kUid || stage >= kUrlAuth || slash) return Bad("misplaced URLAUTH");
      size_t c1 = value.find(':');
      url.access = std::string(value.substr(0, c1));
      if (url.access.empty()) return Bad("empty URLAUTH access");
      url.rump_end = eq + 1 + url.access.size();
      if (c1 != std::string_view::npos) {
        std::string_view verifier = value.substr(c1 + 1);
        size_t c2 = verifier.find(':');
        if (c2 == std::string_view::npos || c2 == 0) return Bad("bad URLAUTH verifier");
        url.mechanism = std::string(verifier.substr(0, c2));
        url.token = std::string(verifier.substr(c2 + 1));
        if (url.token.size() < 32) return Bad("short URLAUTH token");
      }
      stage = kUrlAuth;
    } else {
      return Bad("unknown parameter " + name);
    }
    pos = end;
  }
  if (!have_uid) return Bad("no UID");
  return Ok();
}

// enc-mailbox [uidvalidity] iuid ...: the mailbox is what precedes the first
// ';' (a ';' inside a name is percent-encoded), less the '/' before ";UID=".
Status ParseMessagePart(std::string_view text, size_t start, ImapUrl& url) {
  size_t semi = text.find(';', start);
  if (semi == std::string_view::npos) return Bad("no UID");
  size_t name_end = semi;
  if (name_end > start && text[name_end - 1] == '/') --name_end;
  std::string_view enc = text.substr(start, name_end - start);
  if (enc.empty()) return Bad("no mailbox");
  if (enc.find('?') != std::string_view::npos) return Bad("a search is not a message");
  auto m = Decode(enc, "mailbox");
  if (!m) return m.error();
  url.mailbox = std::move(*m);
  return ParseParams(text, name_end, /*allow_uidvalidity=*/true, url);
}

}  // namespace

Result<ImapUrl> ParseImapUrl(std::string_view text) {
  if (text.empty()) return Bad("empty");
  if (text.size() > kMaxImapUrlBytes) return Bad("too long");
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return Bad("a character that must be escaped");
  }
  ImapUrl url;
  if (StartsWithIgnoreCase(text, "imap://")) {
    url.form = ImapUrl::Form::kAbsolute;
    size_t auth_start = 7;
    size_t path = text.find('/', auth_start);
    if (path == std::string_view::npos) return Bad("no message");
    std::string_view server = text.substr(auth_start, path - auth_start);
    // iserver = [iuserinfo "@"] host [":" port]
    size_t at = server.rfind('@');
    if (at != std::string_view::npos) {
      std::string_view userinfo = server.substr(0, at);
      server = server.substr(at + 1);
      size_t semi = userinfo.find(';');
      if (semi != std::string_view::npos) {
        std::string_view a = userinfo.substr(semi);
        if (!StartsWithIgnoreCase(a, ";AUTH=") || a.size() == 6) return Bad("bad ;AUTH=");
        url.auth = std::string(a.substr(6));
        userinfo = userinfo.substr(0, semi);
      }
      auto u = Decode(userinfo, "user");
      if (!u) return u.error();
      url.user = std::move(*u);
    }
    size_t colon = server.rfind(':');
    if (colon != std::string_view::npos && server.find(']', colon) == std::string_view::npos) {
      uint64_t port = 0;
      if (!ParseNumber(server.substr(colon + 1), 65535, port) || port == 0) {
        return Bad("bad port");
      }
      url.port = static_cast<uint16_t>(port);
      server = server.substr(0, colon);
    }
    if (server.empty()) return Bad("no host");
    url.host = AsciiLower(server);
    if (auto st = ParseMessagePart(text, path + 1, url); !st) return st.error();
    return url;
  }
  if (text.substr(0, 2) == "//") return Bad("a network path needs imap:");
  if (text[0] == '/') {
    url.form = ImapUrl::Form::kAbsolutePath;
    if (auto st = ParseMessagePart(text, 1, url); !st) return st.error();
    return url;
  }
  // irelative-path: iuid-only [isection] [ipartial] in the selected mailbox.
  url.form = ImapUrl::Form::kRelative;
  if (text[0] != ';') return Bad("expected imap://, '/' or ';UID='");
  if (auto st = ParseParams(text, 0, /*allow_uidvalidity=*/false, url); !st) return st.error();
  return url;
}

}  // namespace hato::imap
