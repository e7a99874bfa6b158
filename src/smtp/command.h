// SMTP command line parser (RFC 5321 section 4.1.1, with the parameters of
// RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 3030 CHUNKING).
// Pure: takes one command line without its CRLF and returns a Command or an
// error. Never touches a socket or the store; fuzzed by fuzz/fuzz_smtp_command.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "smtp/address.h"

namespace hato::smtp {

enum class Verb {
  kHelo,
  kEhlo,
  kMail,
  kRcpt,
  kData,
  kBdat,
  kRset,
  kNoop,
  kQuit,
  kVrfy,
  kExpn,
  kHelp,
  kStartTls,
  kAuth,
};

enum class BodyType { k7Bit, k8BitMime, kBinaryMime };

struct Command {
  Verb verb = Verb::kNoop;
  std::string arg;                  // HELO/EHLO domain, VRFY/HELP/AUTH text
  std::optional<Mailbox> path;      // MAIL (nullopt = null reverse-path) / RCPT
  std::optional<uint64_t> size;     // MAIL SIZE=
  BodyType body = BodyType::k7Bit;  // MAIL BODY=
  bool smtputf8 = false;            // MAIL SMTPUTF8
  uint64_t chunk_size = 0;          // BDAT size
  bool last_chunk = false;          // BDAT LAST
};

// Prefix of the error message for an unknown MAIL/RCPT parameter (555, RFC 5321
// section 4.1.1.11), as opposed to other syntax errors (501).
inline constexpr const char* kUnsupportedParameter = "parameter not supported";

// Errors carry kInvalid with a message fit for a 501 reply, or kNotFound for an
// unrecognised verb (500).
Result<Command> ParseCommand(std::string_view line);

const char* VerbName(Verb v);

}  // namespace hato::smtp
