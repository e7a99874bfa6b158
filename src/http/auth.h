// Who an HTTP request is made for: HTTP Basic with an account's address and
// password (RFC 7617; over TLS, or from loopback when
// [auth] allow_plaintext_on_loopback), a bearer token (RFC 6750) or the
// web UI's session cookie (kSessionCookie, a token of kind "session").
//
// Passwords go through the shared login path (server/login.h: the same
// penalties and log lines as IMAP and POP3). A verified Basic credential is
// remembered for kCredentialCacheSeconds (a changed password or removed
// account stops working for HTTP within that time) (keyed by an HMAC with a per-process
// key, never the password) so that a JMAP client sending Basic on every
// request does not pay an Argon2id hash each time.
//
// Tokens: "hato_" + 43 base64url characters (256 random bits); the store
// keeps only their SHA-256 (store::Store::AddToken), so a leaked database
// does not leak usable tokens. Thread-safe.
#pragma once

#include <string>

#include "base/result.h"
#include "http/server.h"
#include "io/asio.h"
#include "server/services.h"

namespace hato::http {

inline constexpr const char* kSessionCookie = "hato_session";
inline constexpr int kCredentialCacheSeconds = 60;
inline constexpr size_t kMaxCredentialCacheEntries = 10000;
inline constexpr size_t kMaxTokensPerAccount = 1000;

enum class AuthOutcome {
  kNone,       // no credentials sent
  kOk,         // req.account is set
  kBad,        // wrong credentials (answered 401 after the penalty)
  kInsecure,   // a password over plaintext from a non-loopback client
  kTemporary,  // the store failed (503)
};

// Checks the Authorization header, else the session cookie, and sets
// req.account. A bad cookie is kNone (the page may offer a login form); a
// cookie on an unsafe method from another site is ignored (CSRF).
awaitable<AuthOutcome> Authenticate(server::Services& svc, Request& req);

struct NewToken {
  int64_t id = 0;
  std::string token;  // shown once; only its hash is stored
};

// Creates a token for an account (blocking: call off the event loop).
// `kind`: "api" (bearer) or "session" (cookie); ttl_seconds 0 = no expiry.
Result<NewToken> CreateToken(store::Store& store, int64_t account_id, const std::string& kind,
                             const std::string& label, int64_t ttl_seconds);

// The stored form of a token (hex SHA-256).
std::string TokenHash(std::string_view token);

}  // namespace hato::http
