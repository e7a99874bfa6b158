// SMTP client for outbound delivery (RFC 5321 section 3 and 4; RFC 3207
// STARTTLS, opportunistic per RFC 7435; RFC 3461 DSN parameters passed on
// when the server offers DSN). Sends one message to one server over an
// established TCP connection and reports, per recipient, the server's reply.
// The queue (src/outbound) decides what the replies mean for retries.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/asio.h"
#include "smtp/reply.h"

namespace hato::smtp {

struct ClientRecipient {
  std::string address;
  unsigned notify = 0;  // Notify bits; passed on only to a server that offers DSN
  std::string orcpt;
};

struct ClientEnvelope {
  std::string sender;  // "" = null reverse-path
  std::vector<ClientRecipient> recipients;
  std::string envid;
  bool ret_hdrs = false;
  bool smtputf8 = false;
  bool eight_bit = false;
};

struct ClientOptions {
  std::string helo;                         // our host name for EHLO
  std::string server;                       // the server's host name (TLS SNI, logs)
  std::shared_ptr<asio::ssl::context> tls;  // null: never STARTTLS
  // Mandatory TLS (a TLS policy, outbound/tls_policy.h): without STARTTLS the
  // exchange stops before MAIL with a 4.7.5 failure (the queue retries).
  bool require_tls = false;
  // Also verify the certificate: trusted by `tls`'s CAs and naming `server`.
  bool verify_tls = false;
  // A check of the TLS session right after the handshake (DANE, RFC 7672:
  // the queue matches the certificates against TLSA records): "" to go on,
  // else the reason to stop before EHLO (a 4.7.5 failure, retried later).
  std::function<std::string()> after_tls;
  // Implicit TLS from the first byte (RFC 8314, a smarthost on port 465)
  // instead of STARTTLS; needs `tls`.
  bool implicit_tls = false;
  // SMTP AUTH (RFC 4954) with PLAIN (RFC 4616) or LOGIN after EHLO, for an
  // authenticated smarthost; "" = no AUTH. Sent only over TLS: without it
  // the exchange stops before AUTH with a 4.7.5 failure.
  std::string auth_user;
  std::string auth_password;
  std::chrono::seconds command_timeout{300};  // RFC 5321 section 4.5.3.2 (5 minutes)
  std::chrono::seconds data_timeout{600};     // the final "." reply: 10 minutes
};

struct ClientResult {
  // The server answered the transaction (false: connection, greeting, EHLO
  // or MAIL failed, or the connection broke: try another server or later).
  bool transaction = false;
  Reply failure;                  // why, when !transaction or every recipient failed
  std::vector<Reply> rcpt;        // per recipient: the RCPT reply, or the DATA reply if RCPT passed
  bool tls = false;               // the message went over TLS
  bool remote_dsn = false;        // the server took our DSN parameters
  bool after_tls_failed = false;  // options.after_tls refused the session
};

// Runs the whole SMTP exchange on a connected socket and closes it.
awaitable<ClientResult> SendMail(tcp::socket socket, const ClientOptions& options,
                                 const ClientEnvelope& envelope, const std::string& content);

}  // namespace hato::smtp
