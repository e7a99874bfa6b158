// POP3 command parser (RFC 1939 section 3, RFC 2449 CAPA, RFC 2595 STLS,
// RFC 5034 AUTH). Pure: one line in (without CRLF), one Command out; fuzzed by
// fuzz/fuzz_pop3_command.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace hato::pop3 {

// RFC 2449 section 4: commands are at most 255 octets including CRLF...
inline constexpr size_t kMaxCommandLine = 255;
// ...but an AUTH continuation carries base64 and may be longer (RFC 5034 section 4).
inline constexpr size_t kMaxAuthLine = 8192;

enum class Verb {
  kUser,
  kPass,
  kQuit,
  kStat,
  kList,
  kRetr,
  kDele,
  kNoop,
  kRset,
  kTop,
  kUidl,
  kCapa,
  kStls,
  kAuth,
  kApop
};

struct Command {
  Verb verb = Verb::kNoop;
  std::string arg;              // USER name, PASS password, AUTH mechanism
  std::string arg2;             // AUTH initial response
  std::optional<uint64_t> msg;  // LIST/RETR/DELE/TOP/UIDL message number
  uint64_t lines = 0;           // TOP line count
};

// Errors: kNotFound for an unknown command, kInvalid for bad arguments.
Result<Command> ParseCommand(std::string_view line);

}  // namespace hato::pop3
