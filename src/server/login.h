// Password logins for every protocol (POP3 USER/PASS and AUTH PLAIN, IMAP
// LOGIN and AUTHENTICATE PLAIN): the account lookup and the slow hash check
// run on the blocking pool; failures are answered only after the growing
// per-IP / per-(IP, account) penalty (auth/penalty.h), and an unknown account
// costs the same time as a wrong password.
#pragma once

#include <chrono>
#include <string>

#include "io/asio.h"
#include "server/services.h"

namespace hato::server {

enum class LoginOutcome { kOk, kBad, kTemporary };

struct LoginResult {
  LoginOutcome outcome = LoginOutcome::kBad;
  int64_t account_id = 0;
  std::string address;  // canonical (lower-cased)
  std::string error;    // for kTemporary: what failed, for the log
};

// The arguments are copied: the caller's strings need not outlive the call.
awaitable<LoginResult> CheckLogin(Services& svc, std::string ip, std::string user,
                                  std::string password, std::string protocol);

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
