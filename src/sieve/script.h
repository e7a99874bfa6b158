// Sieve scripts (RFC 5228): the syntax tree and the pure parser. Bytes in,
// a tree or a located error out; no I/O. Fuzzed by fuzz/fuzz_sieve.cc.
//
// The parser knows the grammar only (RFC 5228 section 8); which commands,
// tests, tags and capabilities exist is checked by sieve::Check
// (interpret.h), so that a script can be validated before it is stored
// (hato sieve put/check, ManageSieve PUTSCRIPT/CHECKSCRIPT).
//
// SECURITY: scripts are written by users; every dimension is bounded by a
// named limit (Limits) and checked while parsing, before any allocation
// grows with the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::sieve {

struct Limits {
  size_t max_script_bytes = 64 * 1024;  // a stored script (ManageSieve PUTSCRIPT too)
  size_t max_nesting = 16;              // blocks and nested tests
  size_t max_nodes = 4096;              // commands + tests + arguments in a script
  size_t max_actions = 64;              // actions taken in one run (fileinto, redirect, ...)
  size_t max_redirects = 4;             // redirect actions in one run
  size_t max_includes = 8;              // include depth (RFC 6609)
  size_t max_variable_bytes = 4096;     // one variable's value (RFC 5229 section 3)
  size_t max_match_steps = 200000;      // wildcard matching work in one run
  bool operator==(const Limits&) const = default;
};

struct Test;

// One positional or tagged argument (RFC 5228 section 2.6).
struct Argument {
  enum class Kind { kTag, kNumber, kStrings };
  Kind kind = Kind::kStrings;
  std::string tag;                   // kTag: lower-cased, without ":"
  uint64_t number = 0;               // kNumber: with K/M/G applied
  std::vector<std::string> strings;  // kStrings: a string or a string list
  bool list = false;                 // kStrings written as "[...]"
};

struct Test {
  std::string name;  // lower-cased identifier
  std::vector<Argument> args;
  std::vector<Test> tests;  // not (1), anyof/allof (n)
  int line = 0;
};

struct Command {
  std::string name;  // lower-cased identifier
  std::vector<Argument> args;
  std::vector<Test> tests;     // if/elsif: exactly one test
  std::vector<Command> block;  // if/elsif/else
  bool has_block = false;
  int line = 0;
};

struct Script {
  std::vector<Command> commands;
};

// A parse error with its line (1-based) in the message, "line N: ...".
// kTooLarge for a broken limit, kInvalid for syntax.
Result<Script> Parse(std::string_view text, const Limits& limits = {});

}  // namespace hato::sieve
