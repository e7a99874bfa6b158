// SPF records (RFC 7208 section 4.5, 4.6, 12) and macros (section 7): a pure
// parser, fuzzed by fuzz/fuzz_spf.cc. Evaluation is in spf.h.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "msgauth/ip.h"

namespace hato::msgauth {

inline constexpr size_t kMaxSpfRecordBytes = 4096;  // larger TXT records are refused
inline constexpr size_t kMaxSpfTerms = 128;
inline constexpr size_t kMaxDomainLength = 253;  // RFC 7208 section 4.3, 7.3

enum class SpfQualifier { kPass, kFail, kSoftFail, kNeutral };  // + - ~ ? (section 4.6.2)
enum class MechKind { kAll, kInclude, kA, kMx, kPtr, kIp4, kIp6, kExists };

struct Mechanism {
  SpfQualifier qualifier = SpfQualifier::kPass;
  MechKind kind = MechKind::kAll;
  std::string domain_spec;  // unexpanded macro-string; empty: the current <domain>
  IpAddress ip;             // ip4/ip6
  int cidr4 = 32;           // a, mx, ip4 (section 5.6)
  int cidr6 = 128;          // a, mx, ip6
};

struct SpfRecord {
  std::vector<Mechanism> mechanisms;
  std::optional<std::string> redirect;  // domain-spec of redirect= (section 6.1)
  std::optional<std::string> exp;       // domain-spec of exp= (section 6.2)
};

// "v=spf1" followed by SP or the end, case-insensitive (section 4.5).
bool IsSpfRecord(std::string_view txt);

// Parses a record that IsSpfRecord. Any syntax error, unknown mechanism, bad
// CIDR length or repeated redirect=/exp= is kInvalid (the result is
// permerror, section 4.6). Unknown modifiers are ignored (section 6) once
// their macro-string has been checked.
Result<SpfRecord> ParseSpfRecord(std::string_view txt);

// What the macro letters expand to (section 7.3).
struct MacroContext {
  std::string sender;         // s: <sender>, local-part@domain
  std::string local;          // l
  std::string sender_domain;  // o
  std::string domain;         // d: the current <domain>
  IpAddress ip;               // i, c, v
  std::string helo;           // h
  std::string receiver;       // r (exp only)
  int64_t now = 0;            // t (exp only)
  // p: the validated domain name of ip (section 7.3, 5.5), computed on first
  // use because it needs DNS lookups; "unknown" when not set.
  std::function<std::string()> validated_domain;
};

// Checks macro-string syntax (section 7.1). `exp` allows c, r, t.
bool ValidMacroString(std::string_view s, bool exp);
// Checks domain-spec syntax: a macro-string ending in "." toplabel ["."] or
// in a macro-expand (section 4.6.1, 7.1).
bool ValidDomainSpec(std::string_view s);

// Expands a macro-string. kInvalid on a syntax error (permerror).
Result<std::string> ExpandMacros(std::string_view s, const MacroContext& ctx, bool exp);

// A domain name shortened to kMaxDomainLength by dropping labels from the
// left (section 7.3), without a trailing dot.
std::string TruncateDomain(std::string_view d);

}  // namespace hato::msgauth
