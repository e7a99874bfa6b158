// libFuzzer target for the SMTP command-line parser (src/smtp/command.h) and the
// string helpers it relies on (src/base/strings.h).
//
// ParseCommand invariants:
//   * it returns (never crashes); an error is kNotFound only for an unknown verb;
//   * the verb is case-insensitive: lower-casing the verb word gives the same result;
//   * a parsed command, written back in canonical form, re-parses to the same command;
//   * MAIL/RCPT paths obey the RFC 5321 length limits, domains are lower-cased, and a
//     MAIL path without SMTPUTF8 is pure ASCII; RCPT always carries a path.
// String helper invariants (the input is also used as their argument):
//   * Base64Decode(Base64Encode(x)) == x, and a successful Base64Decode re-encodes to
//     something that decodes to the same bytes;
//   * IsValidUtf8 agrees with a table-driven RFC 3629 validator;
//   * ParseUint agrees with a reference decimal parser;
//   * SplitWords/TrimSpaces/AsciiLower/AsciiUpper/EqualsIgnoreCase are consistent.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "fuzz_util.h"
#include "smtp/command.h"

namespace {

using hato::ErrorKind;
using hato::fuzz::HasAsciiUpper;
using hato::fuzz::IsAscii;
using hato::smtp::BodyType;
using hato::smtp::Command;
using hato::smtp::Verb;

// The canonical text of a parsed command (what a well-behaved client would send).
std::string Serialize(const Command& c) {
  std::string s = hato::smtp::VerbName(c.verb);
  switch (c.verb) {
    case Verb::kHelo:
    case Verb::kEhlo:
      s += " " + c.arg;
      break;
    case Verb::kMail:
      s += " FROM:<" + (c.path ? c.path->ToString() : std::string()) + ">";
      if (c.size) s += " SIZE=" + std::to_string(*c.size);
      if (c.body == BodyType::k8BitMime) s += " BODY=8BITMIME";
      if (c.body == BodyType::kBinaryMime) s += " BODY=BINARYMIME";
      if (c.smtputf8) s += " SMTPUTF8";
      if (!c.ret.empty()) s += " RET=" + c.ret;
      if (!c.envid.empty()) s += " ENVID=" + hato::smtp::EncodeXtext(c.envid);
      if (c.auth_param) s += " AUTH=<>";
      break;
    case Verb::kRcpt:
      s += " TO:<" + (c.path ? c.path->ToString() : std::string()) + ">";
      if (c.notify) {
        std::string list;
        for (auto [bit, name] : {std::pair{hato::smtp::kNotifyNever, "NEVER"},
                                 {hato::smtp::kNotifySuccess, "SUCCESS"},
                                 {hato::smtp::kNotifyFailure, "FAILURE"},
                                 {hato::smtp::kNotifyDelay, "DELAY"}}) {
          if (c.notify & bit) list += std::string(list.empty() ? "" : ",") + name;
        }
        s += " NOTIFY=" + list;
      }
      if (!c.orcpt.empty()) {
        size_t semi = c.orcpt.find(';');
        s += " ORCPT=" + c.orcpt.substr(0, semi + 1) +
             hato::smtp::EncodeXtext(c.orcpt.substr(semi + 1));
      }
      break;
    case Verb::kBdat:
      s += " " + std::to_string(c.chunk_size);
      if (c.last_chunk) s += " LAST";
      break;
    case Verb::kBurl:
      s += " " + c.arg;
      if (c.last_chunk) s += " LAST";
      break;
    case Verb::kNoop:
    case Verb::kVrfy:
    case Verb::kExpn:
    case Verb::kHelp:
    case Verb::kAuth:
      if (!c.arg.empty()) s += " " + c.arg;
      break;
    case Verb::kData:
    case Verb::kRset:
    case Verb::kQuit:
    case Verb::kStartTls:
      break;
  }
  return s;
}

void CheckSameCommand(const Command& a, const Command& b) {
  FUZZ_CHECK(a.verb == b.verb);
  FUZZ_CHECK_EQ_STR(a.arg, b.arg);
  FUZZ_CHECK(a.path.has_value() == b.path.has_value());
  if (a.path) FUZZ_CHECK(*a.path == *b.path);
  FUZZ_CHECK(a.size == b.size);
  FUZZ_CHECK(a.body == b.body);
  FUZZ_CHECK(a.smtputf8 == b.smtputf8);
  FUZZ_CHECK(a.chunk_size == b.chunk_size);
  FUZZ_CHECK(a.last_chunk == b.last_chunk);
  // DSN parameters (RFC 3461) and MAIL AUTH= (RFC 4954).
  FUZZ_CHECK(a.dsn == b.dsn);
  FUZZ_CHECK(a.ret == b.ret);
  FUZZ_CHECK(a.envid == b.envid);
  FUZZ_CHECK(a.notify == b.notify);
  FUZZ_CHECK(a.orcpt == b.orcpt);
  FUZZ_CHECK(a.auth_param == b.auth_param);
}

void CheckSameResult(const hato::Result<Command>& a, const hato::Result<Command>& b) {
  FUZZ_CHECK(a.ok() == b.ok());
  if (a.ok()) {
    CheckSameCommand(*a, *b);
  } else {
    FUZZ_CHECK(a.error().kind == b.error().kind);
    FUZZ_CHECK_EQ_STR(a.error().message, b.error().message);
  }
}

void CheckCommand(std::string_view line) {
  auto r = hato::smtp::ParseCommand(line);
  if (!r.ok()) {
    FUZZ_CHECK(r.error().kind == ErrorKind::kInvalid || r.error().kind == ErrorKind::kNotFound);
    FUZZ_CHECK(!r.error().message.empty());
  }

  // The verb is case-insensitive.
  size_t sp = line.find(' ');
  std::string lowered = hato::AsciiLower(line.substr(0, sp));
  if (sp != std::string_view::npos) lowered += line.substr(sp);
  CheckSameResult(r, hato::smtp::ParseCommand(lowered));
  if (!r.ok()) return;

  const Command& c = *r;
  if (c.verb == Verb::kMail || c.verb == Verb::kRcpt) {
    if (c.verb == Verb::kRcpt) FUZZ_CHECK(c.path.has_value());
    if (c.path) {
      FUZZ_CHECK(!c.path->local.empty() && c.path->local.size() <= hato::smtp::kMaxLocalPartLength);
      FUZZ_CHECK(!c.path->domain.empty() && c.path->domain.size() <= hato::smtp::kMaxDomainLength);
      FUZZ_CHECK(!HasAsciiUpper(c.path->domain));
      if (c.verb == Verb::kMail && !c.smtputf8) FUZZ_CHECK(IsAscii(c.path->ToString()));
      FUZZ_CHECK(hato::IsValidUtf8(c.path->ToString()));
    }
  } else {
    FUZZ_CHECK(!c.path.has_value());
  }
  if (c.verb == Verb::kHelo || c.verb == Verb::kEhlo) {
    FUZZ_CHECK(!c.arg.empty() && c.arg.find_first_of(" \t") == std::string::npos);
  }
  FUZZ_CHECK(hato::TrimSpaces(c.arg).size() == c.arg.size());

  // Canonical form round trip.
  std::string canon = Serialize(c);
  auto again = hato::smtp::ParseCommand(canon);
  if (!again.ok()) {
    hato::fuzz::Fail(__FILE__, __LINE__, "canonical form does not re-parse", canon,
                     again.error().message);
  }
  CheckSameCommand(c, *again);
}

// RFC 3629 section 4 syntax, byte-range table form.
bool RefUtf8(std::string_view s) {
  size_t i = 0;
  auto in = [&](size_t k, unsigned lo, unsigned hi) {
    if (i + k >= s.size()) return false;
    auto c = static_cast<unsigned char>(s[i + k]);
    return c >= lo && c <= hi;
  };
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    if (c <= 0x7F) {
      n = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      if (!in(1, 0x80, 0xBF)) return false;
      n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
      if (!in(1, lo, hi) || !in(2, 0x80, 0xBF)) return false;
      n = 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
      if (!in(1, lo, hi) || !in(2, 0x80, 0xBF) || !in(3, 0x80, 0xBF)) return false;
      n = 4;
    } else {
      return false;
    }
    i += n;
  }
  return true;
}

// ParseUint also caps the text at 20 digits (as RFC 1870 SIZE's 1*20DIGIT), so
// "0000000000000000000001" (21 digits) is rejected although its value fits.
std::optional<uint64_t> RefParseUint(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  unsigned __int128 v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > UINT64_MAX) return std::nullopt;
  }
  return static_cast<uint64_t>(v);
}

void CheckStrings(std::string_view s) {
  // Base64.
  std::string enc = hato::Base64Encode(s);
  FUZZ_CHECK(enc.size() == (s.size() + 2) / 3 * 4);
  auto dec = hato::Base64Decode(enc);
  FUZZ_CHECK(dec.has_value());
  FUZZ_CHECK_EQ_STR(*dec, s);
  if (auto d = hato::Base64Decode(s)) {
    FUZZ_CHECK(s.size() % 4 == 0);
    size_t pad = s.ends_with("==") ? 2 : s.ends_with("=") ? 1 : 0;
    FUZZ_CHECK(d->size() == s.size() / 4 * 3 - pad);
    auto d2 = hato::Base64Decode(hato::Base64Encode(*d));
    FUZZ_CHECK(d2.has_value());
    FUZZ_CHECK_EQ_STR(*d2, *d);
  }

  // UTF-8 validation against the reference.
  FUZZ_CHECK(hato::IsValidUtf8(s) == RefUtf8(s));

  // Decimal numbers.
  FUZZ_CHECK(hato::ParseUint(s) == RefParseUint(s));

  // Words and case folding.
  std::string joined, stripped;
  for (std::string_view w : hato::SplitWords(s)) {
    FUZZ_CHECK(!w.empty() && w.find_first_of(" \t") == std::string_view::npos);
    joined += w;
  }
  for (char c : s) {
    if (c != ' ' && c != '\t') stripped += c;
  }
  FUZZ_CHECK_EQ_STR(joined, stripped);
  std::string_view t = hato::TrimSpaces(s);
  FUZZ_CHECK(s.find(t) != std::string_view::npos);
  if (!t.empty()) FUZZ_CHECK(t.front() != ' ' && t.front() != '\t');
  if (!t.empty()) FUZZ_CHECK(t.back() != ' ' && t.back() != '\t');
  std::string lo = hato::AsciiLower(s), up = hato::AsciiUpper(s);
  FUZZ_CHECK(lo.size() == s.size() && up.size() == s.size());
  FUZZ_CHECK(!HasAsciiUpper(lo));
  FUZZ_CHECK(hato::EqualsIgnoreCase(lo, up));
  FUZZ_CHECK(hato::StartsWithIgnoreCase(up, lo.substr(0, lo.size() / 2)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  CheckCommand(in);
  CheckStrings(in);
  return 0;
}
