#include "pop3/command.h"

#include "base/strings.h"

namespace hato::pop3 {
namespace {

struct VerbEntry {
  const char* name;
  Verb verb;
};

constexpr VerbEntry kVerbs[] = {
    {"USER", Verb::kUser}, {"PASS", Verb::kPass}, {"QUIT", Verb::kQuit}, {"STAT", Verb::kStat},
    {"LIST", Verb::kList}, {"RETR", Verb::kRetr}, {"DELE", Verb::kDele}, {"NOOP", Verb::kNoop},
    {"RSET", Verb::kRset}, {"TOP", Verb::kTop},   {"UIDL", Verb::kUidl}, {"CAPA", Verb::kCapa},
    {"STLS", Verb::kStls}, {"AUTH", Verb::kAuth}, {"APOP", Verb::kApop},
};

Result<uint64_t> MessageNumber(std::string_view w) {
  auto n = ParseUint(w);
  if (!n || *n == 0) return Err(ErrorKind::kInvalid, "invalid message number");
  return *n;
}

}  // namespace

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
  if (!found) return Err(ErrorKind::kNotFound, "unknown command");
  auto words = SplitWords(rest);
  switch (cmd.verb) {
    case Verb::kUser:
      if (words.size() != 1) return Err(ErrorKind::kInvalid, "usage: USER name");
      cmd.arg = std::string(words[0]);
      break;
    case Verb::kPass:
      // RFC 1939 section 7: the password may contain spaces; take the rest of the line.
      if (rest.empty()) return Err(ErrorKind::kInvalid, "usage: PASS password");
      cmd.arg = std::string(rest);
      break;
    case Verb::kAuth:
      if (words.size() > 2) return Err(ErrorKind::kInvalid, "usage: AUTH mechanism [initial]");
      if (!words.empty()) cmd.arg = AsciiUpper(words[0]);
      if (words.size() == 2) cmd.arg2 = std::string(words[1]);
      break;
    case Verb::kApop:
      if (words.size() != 2) return Err(ErrorKind::kInvalid, "usage: APOP name digest");
      cmd.arg = std::string(words[0]);
      cmd.arg2 = std::string(words[1]);
      break;
    case Verb::kList:
    case Verb::kUidl:
      if (words.size() > 1) return Err(ErrorKind::kInvalid, "too many arguments");
      if (words.size() == 1) {
        auto n = MessageNumber(words[0]);
        if (!n) return n.error();
        cmd.msg = *n;
      }
      break;
    case Verb::kRetr:
    case Verb::kDele: {
      if (words.size() != 1) return Err(ErrorKind::kInvalid, "usage: message number required");
      auto n = MessageNumber(words[0]);
      if (!n) return n.error();
      cmd.msg = *n;
      break;
    }
    case Verb::kTop: {
      if (words.size() != 2) return Err(ErrorKind::kInvalid, "usage: TOP msg lines");
      auto n = MessageNumber(words[0]);
      if (!n) return n.error();
      auto lines = ParseUint(words[1]);
      if (!lines) return Err(ErrorKind::kInvalid, "invalid line count");
      cmd.msg = *n;
      cmd.lines = *lines;
      break;
    }
    case Verb::kQuit:
    case Verb::kStat:
    case Verb::kNoop:
    case Verb::kRset:
    case Verb::kCapa:
    case Verb::kStls:
      if (!words.empty()) return Err(ErrorKind::kInvalid, "no arguments allowed");
      break;
  }
  return cmd;
}

}  // namespace hato::pop3
