// Password logins for every protocol (POP3 USER/PASS and AUTH PLAIN, IMAP
// LOGIN and AUTHENTICATE PLAIN): the account lookup and the slow hash check
// run on the blocking pool; failures are answered only after the growing
// per-IP / per-(IP, account) penalty (auth/penalty.h), and an unknown account
// costs the same time as a wrong password. SCRAM-SHA-256 logins (RFC 7677)
// take the same penalties and log lines, split around the exchange.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "auth/scram.h"
#include "io/asio.h"
#include "server/services.h"

namespace hato::server {

enum class LoginOutcome { kOk, kBad, kTemporary };

struct LoginResult {
  LoginOutcome outcome = LoginOutcome::kBad;
  int64_t account_id = 0;
  std::string address;  // canonical (lower-cased)
  std::string error;    // for kTemporary: what failed, for the log
  // kOk: the account's session epoch read with the password (register the
  // session with AccountSessions under it).
  int64_t session_epoch = 0;
};

// The arguments are copied: the caller's strings need not outlive the call.
awaitable<LoginResult> CheckLogin(Services& svc, std::string ip, std::string user,
                                  std::string password, std::string protocol);

// SCRAM-SHA-256 (auth/scram.h): BeginScramLogin waits the pending penalty
// and looks the account's verifier up on the blocking pool; the session runs
// the exchange (ScramServer::ServerFirst with `verifier`, which may be
// nullopt); FinishScramLogin records the outcome like CheckLogin (penalty,
// log line; an account without a verifier is logged with the fix).
struct ScramAccount {
  LoginOutcome outcome = LoginOutcome::kBad;  // kTemporary: the lookup failed
  int64_t account_id = 0;
  std::string address;  // canonical (lower-cased)
  std::optional<auth::ScramVerifier> verifier;
  bool missing_verifier = false;  // a live account whose password predates SCRAM
  std::string error;              // for kTemporary
  int64_t session_epoch = 0;      // read with the verifier
};
awaitable<ScramAccount> BeginScramLogin(Services& svc, std::string ip, std::string user,
                                        std::string protocol);
// `proof_ok`: ScramServer::ReceiveClientFinal succeeded.
awaitable<LoginResult> FinishScramLogin(Services& svc, std::string ip, ScramAccount account,
                                        bool proof_ok, std::string protocol);

// An exchange begun with BeginScramLogin that ends before FinishScramLogin
// (cancelled, malformed, the client went away) counts as a failed login for
// the penalties and the log (issue 11), without waiting the penalty.
void AbandonScramLogin(Services& svc, const std::string& ip, const ScramAccount& account,
                       const std::string& protocol);

// Waits `d` on the current executor (no-op for zero).
awaitable<void> Sleep(std::chrono::milliseconds d);

// Admits a new connection of a protocol or writes `refusal` (a complete reply
// line without CRLF) and returns nullopt. Loopback clients are exempt from the
// per-address limit unless `per_ip_on_loopback`.
awaitable<std::optional<Admission::Ticket>> Admit(Admission& admission, tcp::socket& socket,
                                                  size_t total, size_t per_ip,
                                                  bool per_ip_on_loopback,
                                                  std::string refusal_total,
                                                  std::string refusal_ip);

}  // namespace hato::server
