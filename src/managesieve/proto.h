// ManageSieve (RFC 5804) commands: the pure, incremental parser. Bytes in
// (what a session has buffered), one command or "need more input" out; no
// I/O. Fuzzed by fuzz/fuzz_managesieve.cc.
//
// Grammar (RFC 5804 section 4): command name atom, then arguments that are
// quoted strings ("..." with \" and \\), literals ({N+} or {N}, CRLF, N
// octets; the client's literals are non-synchronizing) or numbers, then CRLF.
//
// SECURITY: the line and every literal are bounded (max_line, max_literal)
// before anything is buffered beyond them.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::managesieve {

struct Limits {
  size_t max_line = 8192;          // one command line, literals excluded
  size_t max_literal = 64 * 1024;  // a script (sieve::Limits::max_script_bytes)
  size_t max_arguments = 4;
};

struct Command {
  std::string name;  // upper-cased
  std::vector<std::string> args;
  std::vector<bool> numbers;  // args[i] was a number
};

// Parses the command at the front of `input`. nullopt: incomplete (read
// more). On success *consumed is its length including the final CRLF. kInvalid
// for a syntax error and kTooLarge for a broken limit, with *consumed the bytes
// to drop (through the end of the bad line, when known; else everything).
Result<std::optional<Command>> Parse(std::string_view input, size_t* consumed,
                                     const Limits& limits = {});

// A string as a ManageSieve quoted string, or a literal when it cannot be one
// (CR, LF, NUL, long): for responses (RFC 5804 section 4, literal-s2c).
std::string Quote(std::string_view s);

}  // namespace hato::managesieve
