// DKIM text formats (RFC 6376): the tag=value list (section 3.2), the
// DKIM-Signature header field (section 3.5) and the DNS key record (section
// 3.6.1, RFC 8463 section 4 for ed25519), and the canonicalization
// algorithms (section 3.4). Pure functions, no I/O, no crypto: fuzzed by
// fuzz/fuzz_dkim.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::msgauth {

// Limits on what a parser accepts from the network (named, see docs).
inline constexpr size_t kMaxTagListBytes = 16 * 1024;  // one DKIM-Signature or key record
inline constexpr size_t kMaxTags = 64;
inline constexpr size_t kMaxSignedHeaders = 128;  // names in h=

// One tag of a tag-list. `value` has its surrounding FWS removed; inner FWS is
// kept as written. begin/end delimit the value with its surrounding FWS (from
// just after '=' to just before ';' or the end): RFC 6376 section 3.7 deletes
// exactly that range of b= before hashing.
struct Tag {
  std::string name;
  std::string value;
  size_t begin = 0;
  size_t end = 0;
};

// RFC 6376 section 3.2. FWS is any run of SP, HTAB, CR, LF. Fails (kInvalid)
// on a syntax error, a duplicate tag (section 3.2: "MUST be treated as
// invalid") or past kMaxTags / kMaxTagListBytes.
Result<std::vector<Tag>> ParseTagList(std::string_view text);

// Removes every FWS character (for base64 values b=, bh=, p=).
std::string StripFws(std::string_view s);

enum class Canon { kSimple, kRelaxed };
enum class SigAlgorithm { kRsaSha256, kEd25519Sha256 };

std::string_view AlgorithmName(SigAlgorithm a);
std::string_view CanonName(Canon c);

// A parsed, validated DKIM-Signature (RFC 6376 section 3.5 and 6.1.1).
struct DkimSignature {
  SigAlgorithm algorithm = SigAlgorithm::kRsaSha256;
  std::string signature;  // b=, decoded
  std::string b_text;     // b= as written, FWS removed (for header.b, RFC 6008)
  std::string body_hash;  // bh=, decoded
  Canon header_canon = Canon::kSimple;
  Canon body_canon = Canon::kSimple;
  std::string domain;                   // d=, lower-cased
  std::vector<std::string> headers;     // h=, as written (compared case-insensitively)
  std::string identity;                 // i=, default "@" + d
  std::optional<uint64_t> body_length;  // l=
  std::string selector;                 // s=
  std::optional<uint64_t> timestamp;    // t=
  std::optional<uint64_t> expiration;   // x=
  size_t b_begin = 0, b_end = 0;        // range of b='s value in the parsed text
};

// Parses and validates the value of a DKIM-Signature field (after the colon).
// Errors are kInvalid with a reason (the verifier reports permerror, RFC 6376
// section 6.1.1): wrong v=, a missing required tag, an unknown or refused
// algorithm (rsa-sha1 is refused, RFC 8301 section 3.1), h= without From, an
// i= domain that is not d= or a subdomain of it, x= before t=.
Result<DkimSignature> ParseSignature(std::string_view value);

enum class KeyType { kRsa, kEd25519 };

// A parsed key record (RFC 6376 section 3.6.1).
struct DkimKey {
  KeyType type = KeyType::kRsa;  // k=, default rsa
  std::string public_key;        // p=, decoded: DER SubjectPublicKeyInfo (or RSAPublicKey)
                                 // for rsa, the raw 32 bytes for ed25519 (RFC 8463 4)
  bool revoked = false;          // p= empty (section 3.6.1: the key has been revoked)
  bool testing = false;          // t=y
  bool strict = false;           // t=s: i= must be exactly d= (no subdomain)
};

// Parses a key record. Unknown tags and flags are ignored (section 3.6.1);
// errors (kInvalid): syntax, v= present but not "DKIM1" or not first, h=
// without sha256, unknown k=, s= without "*" or "email", p= missing or not
// base64, an ed25519 key that is not 32 bytes.
Result<DkimKey> ParseKeyRecord(std::string_view text);

// Canonicalization (RFC 6376 section 3.4). `field` is one raw header field
// ("Name: value", folded lines included, final CRLF optional); the result
// ends in CRLF.
std::string CanonHeader(Canon c, std::string_view field);
// The canonical body (section 3.4.3 simple, 3.4.4 relaxed). Lines end in CRLF.
std::string CanonBody(Canon c, std::string_view body);

}  // namespace hato::msgauth
