// The ACME resources a client reads (RFC 8555 section 7.1): the directory,
// an order, an authorization with its challenges, and problem documents
// (RFC 7807, RFC 8555 section 6.7). Pure JSON parsing, fuzzed by
// fuzz/fuzz_acme.cc; anything the client relies on that is missing or of
// the wrong type is an error (kInvalid), unknown members are ignored.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::acme {

// Bounds on what a server may send us (a hostile or broken CA).
inline constexpr size_t kMaxResourceBytes = 64 * 1024;  // JSON resources
inline constexpr size_t kMaxChainBytes = 256 * 1024;    // the PEM chain
inline constexpr size_t kMaxAuthorizations = 100;       // per order (= names)
inline constexpr size_t kMaxTokenBytes = 256;

struct Directory {  // section 7.1.1
  std::string new_nonce;
  std::string new_account;
  std::string new_order;
  std::string revoke_cert;  // "" when the CA has none (section 7.6)
  std::string key_change;   // "" when the CA has none (section 7.3.5)
};
Result<Directory> ParseDirectory(std::string_view json);

struct Order {         // section 7.1.3
  std::string status;  // pending | ready | processing | valid | invalid
  std::vector<std::string> authorizations;
  std::string finalize;
  std::string certificate;  // once valid
  std::string error;        // the problem's detail, when invalid
};
Result<Order> ParseOrder(std::string_view json);

struct Challenge {  // section 8
  std::string type;
  std::string url;
  std::string token;
  std::string status;
  std::string error;  // detail of the challenge's error, if any
};
struct Authorization {     // section 7.1.4
  std::string status;      // pending | valid | invalid | deactivated | expired | revoked
  std::string identifier;  // the DNS name
  std::vector<Challenge> challenges;
  // The first challenge of this type, or nullptr.
  const Challenge* Find(std::string_view type) const;
};
Result<Authorization> ParseAuthorization(std::string_view json);

struct Problem {     // RFC 7807
  std::string type;  // e.g. urn:ietf:params:acme:error:badNonce
  std::string detail;
};
// A problem document, or nullopt when `json` is not one.
std::optional<Problem> ParseProblem(std::string_view json);

// A challenge token (section 8.3): base64url characters only, so that it can
// be a URL path segment and a map key without escaping; at least 22
// characters (128 bits, section 11.3).
bool IsValidToken(std::string_view token);

// The key authorization an HTTP-01 challenge answers with (section 8.1).
std::string KeyAuthorization(std::string_view token, std::string_view thumbprint);

}  // namespace hato::acme
