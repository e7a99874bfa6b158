// SMTP command line parser (RFC 5321 section 4.1.1, with the parameters of
// RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 3030 CHUNKING, RFC 4468 BURL,
// RFC 3461 DSN (RET, ENVID, NOTIFY, ORCPT) and RFC 4954 section 5 MAIL AUTH=).
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
  kBurl,  // RFC 4468 (submission)
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

// RFC 3461 section 4.1 NOTIFY values, as bits (0 = not given: the MTA's default).
enum Notify : unsigned {
  kNotifyNever = 1,
  kNotifySuccess = 2,
  kNotifyFailure = 4,
  kNotifyDelay = 8,
};

// Limits of RFC 3461 sections 4.2 and 4.4 (after xtext decoding).
inline constexpr size_t kMaxEnvidLength = 100;
inline constexpr size_t kMaxOrcptLength = 500;
// HELO/EHLO argument: a domain (at most 255 octets, RFC 5321 section
// 4.5.3.1.2) or an address literal; it is copied into Received.
inline constexpr size_t kMaxHeloLength = 255;

struct Command {
  Verb verb = Verb::kNoop;
  std::string arg;                  // HELO/EHLO domain, VRFY/HELP/AUTH text, BURL URL
  std::optional<Mailbox> path;      // MAIL (nullopt = null reverse-path) / RCPT
  std::optional<uint64_t> size;     // MAIL SIZE=
  BodyType body = BodyType::k7Bit;  // MAIL BODY=
  bool smtputf8 = false;            // MAIL SMTPUTF8
  uint64_t chunk_size = 0;          // BDAT size
  bool last_chunk = false;          // BDAT LAST, BURL LAST
  // DSN parameters (RFC 3461). The session refuses them unless it offers DSN.
  bool dsn = false;         // any of RET, ENVID, NOTIFY, ORCPT was given
  std::string ret;          // MAIL RET=: "FULL", "HDRS" or ""
  std::string envid;        // MAIL ENVID=, xtext-decoded
  unsigned notify = 0;      // RCPT NOTIFY=: Notify bits
  std::string orcpt;        // RCPT ORCPT=: "addr-type;address", xtext-decoded
  bool auth_param = false;  // MAIL AUTH= was given (RFC 4954 section 5; ignored)
};

// Decodes RFC 3461 section 4 xtext ("+" HEXCHAR HEXCHAR escapes); nullopt when malformed.
std::optional<std::string> DecodeXtext(std::string_view s);
// Encodes for xtext: '+', '=', and bytes outside 33..126 as "+XX".
std::string EncodeXtext(std::string_view s);

// Prefix of the error message for an unknown MAIL/RCPT parameter (555, RFC 5321
// section 4.1.1.11), as opposed to other syntax errors (501).
inline constexpr const char* kUnsupportedParameter = "parameter not supported";

// Errors carry kInvalid with a message fit for a 501 reply, or kNotFound for an
// unrecognised verb (500).
Result<Command> ParseCommand(std::string_view line);

const char* VerbName(Verb v);

}  // namespace hato::smtp
