// SMTP paths and mailboxes (RFC 5321 section 4.1.2, RFC 6531 section 3.3 for UTF-8).
// Pure parsing, no I/O: fuzzed by fuzz/fuzz_address.cc.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace hato::smtp {

// Named limits from RFC 5321 section 4.5.3.1.
inline constexpr size_t kMaxLocalPartLength = 64;
inline constexpr size_t kMaxDomainLength = 255;
inline constexpr size_t kMaxPathLength = 256;

struct Mailbox {
  std::string local;   // as written (quoted local parts keep their quotes)
  std::string domain;  // lower-cased when ASCII; address literals keep brackets

  std::string ToString() const { return local + "@" + domain; }
  bool operator==(const Mailbox&) const = default;
};

// Parses a bare Mailbox ("local@domain"). `allow_utf8` permits RFC 6531 UTF-8.
Result<Mailbox> ParseMailbox(std::string_view s, bool allow_utf8);

// Parses a Path "<...>" (with an optional, ignored source route, RFC 5321 section 4.1.2).
// When `allow_null` the null path "<>" yields std::nullopt (the null reverse-path).
Result<std::optional<Mailbox>> ParsePath(std::string_view s, bool allow_null, bool allow_utf8);

// The canonical key used to look up a local account: local part lower-cased
// (unless quoted), "@", domain lower-cased.
std::string AccountKey(const Mailbox& m);

}  // namespace hato::smtp
