// libFuzzer target for the POP3 command-line parser (src/pop3/command.h).
//
// Invariants:
//   * ParseCommand returns (never crashes); kNotFound only for an unknown command,
//     kInvalid for bad arguments;
//   * the command word is case-insensitive: lower-casing it gives the same result;
//   * message numbers are >= 1 (RFC 1939 section 3); USER/APOP names are single
//     words; the AUTH mechanism is upper-cased; PASS keeps the rest of the line;
//   * a parsed command, written back in canonical form, re-parses to the same command.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "fuzz_util.h"
#include "pop3/command.h"

namespace {

using hato::ErrorKind;
using hato::pop3::Command;
using hato::pop3::Verb;

const char* Name(Verb v) {
  switch (v) {
    case Verb::kUser:
      return "USER";
    case Verb::kPass:
      return "PASS";
    case Verb::kQuit:
      return "QUIT";
    case Verb::kStat:
      return "STAT";
    case Verb::kList:
      return "LIST";
    case Verb::kRetr:
      return "RETR";
    case Verb::kDele:
      return "DELE";
    case Verb::kNoop:
      return "NOOP";
    case Verb::kRset:
      return "RSET";
    case Verb::kTop:
      return "TOP";
    case Verb::kUidl:
      return "UIDL";
    case Verb::kCapa:
      return "CAPA";
    case Verb::kStls:
      return "STLS";
    case Verb::kAuth:
      return "AUTH";
    case Verb::kApop:
      return "APOP";
  }
  return "?";
}

std::string Serialize(const Command& c) {
  std::string s = Name(c.verb);
  switch (c.verb) {
    case Verb::kUser:
    case Verb::kPass:
      s += " " + c.arg;
      break;
    case Verb::kAuth:
      if (!c.arg.empty()) s += " " + c.arg;
      if (!c.arg2.empty()) s += " " + c.arg2;
      break;
    case Verb::kApop:
      s += " " + c.arg + " " + c.arg2;
      break;
    case Verb::kList:
    case Verb::kUidl:
    case Verb::kRetr:
    case Verb::kDele:
      if (c.msg) s += " " + std::to_string(*c.msg);
      break;
    case Verb::kTop:
      s += " " + std::to_string(*c.msg) + " " + std::to_string(c.lines);
      break;
    default:
      break;
  }
  return s;
}

void CheckSame(const Command& a, const Command& b) {
  FUZZ_CHECK(a.verb == b.verb);
  FUZZ_CHECK_EQ_STR(a.arg, b.arg);
  FUZZ_CHECK_EQ_STR(a.arg2, b.arg2);
  FUZZ_CHECK(a.msg == b.msg);
  FUZZ_CHECK(a.lines == b.lines);
}

bool IsWord(std::string_view w) {
  return !w.empty() && w.find_first_of(" \t") == std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto r = hato::pop3::ParseCommand(line);

  size_t sp = line.find(' ');
  std::string lowered = hato::AsciiLower(line.substr(0, sp));
  if (sp != std::string_view::npos) lowered += line.substr(sp);
  auto l = hato::pop3::ParseCommand(lowered);
  FUZZ_CHECK(r.ok() == l.ok());
  if (!r.ok()) {
    FUZZ_CHECK(r.error().kind == ErrorKind::kInvalid || r.error().kind == ErrorKind::kNotFound);
    FUZZ_CHECK(r.error().kind == l.error().kind);
    FUZZ_CHECK_EQ_STR(r.error().message, l.error().message);
    return 0;
  }
  const Command& c = *r;
  CheckSame(c, *l);

  switch (c.verb) {
    case Verb::kUser:
      FUZZ_CHECK(IsWord(c.arg));
      break;
    case Verb::kPass:
      FUZZ_CHECK(!c.arg.empty());
      FUZZ_CHECK(line.ends_with(c.arg));
      break;
    case Verb::kApop:
      FUZZ_CHECK(IsWord(c.arg) && IsWord(c.arg2));
      break;
    case Verb::kAuth:
      FUZZ_CHECK(c.arg.empty() || IsWord(c.arg));
      FUZZ_CHECK(c.arg2.empty() || (IsWord(c.arg2) && !c.arg.empty()));
      FUZZ_CHECK_EQ_STR(c.arg, hato::AsciiUpper(c.arg));
      break;
    case Verb::kRetr:
    case Verb::kDele:
    case Verb::kTop:
      FUZZ_CHECK(c.msg.has_value());
      break;
    default:
      break;
  }
  if (c.msg) FUZZ_CHECK(*c.msg >= 1);
  if (c.verb != Verb::kTop) FUZZ_CHECK(c.lines == 0);

  std::string canon = Serialize(c);
  auto again = hato::pop3::ParseCommand(canon);
  if (!again.ok()) {
    hato::fuzz::Fail(__FILE__, __LINE__, "canonical form does not re-parse", canon,
                     again.error().message);
  }
  CheckSame(c, *again);
  return 0;
}
