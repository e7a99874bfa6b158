// SMTP client for outbound delivery (RFC 5321 section 3 and 4; RFC 3207
// STARTTLS, opportunistic per RFC 7435; RFC 3461 DSN parameters passed on
// when the server offers DSN). A ClientSession is one connection to one
// server: opened once (greeting, EHLO, STARTTLS, AUTH), then any number of
// mail transactions (MAIL, RCPT, DATA; RFC 5321 section 4.1.4 lets a client
// send several in one session), each reporting, per recipient, the server's
// reply to that transaction only. The queue (src/outbound) decides what the
// replies mean for retries, and keeps idle sessions for reuse.
// Thread-safety: a session is used by one coroutine at a time.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/asio.h"
#include "smtp/reply.h"

namespace hato::io {
class Connection;
}

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
  // A reused session was found closed (no reply to MAIL, or 421) before the
  // transaction began: nothing was taken; the caller tries a new session.
  bool stale = false;
};

class ClientSession {
 public:
  ClientSession(tcp::socket socket, ClientOptions options);
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // The greeting, EHLO (HELO for a server without ESMTP), STARTTLS,
  // options.after_tls and AUTH. False when the session cannot carry mail:
  // `result` then says why (failure, tls, after_tls_failed) and the
  // connection is closed.
  awaitable<bool> Open(ClientResult& result);
  // One mail transaction. `reused`: the session carried one before, so a
  // connection found closed at MAIL is `stale` rather than a failure. After
  // a refused MAIL, no accepted RCPT or a refused DATA the session sends
  // RSET (RFC 5321 section 4.1.1.5) and stays usable; a lost connection, a
  // timeout, a 421 (section 3.8) or a failed RSET closes it.
  // `next` (PIPELINING only): the envelope of the transaction that will
  // follow on this session (its content `next_size` bytes): its MAIL, RCPT
  // and DATA go with this one's final dot (RFC 2920 section 3.1), and the
  // next Send must be for it. Not given past the session's last transaction.
  awaitable<ClientResult> Send(const ClientEnvelope& envelope, const std::string& content,
                               const ClientEnvelope* next = nullptr, size_t next_size = 0);
  // The next transaction's group was sent with the last one's body: the
  // session must carry it (Send) before anything else; never kept idle.
  bool pipelined() const { return group_sent_; }
  // QUIT (section 4.1.1.10) and close; a closed session just stays closed.
  awaitable<void> Quit();

  // Open, between transactions, and not closed by the server meanwhile.
  bool usable() const;
  size_t transactions() const { return transactions_; }
  bool tls() const { return tls_; }

 private:
  void Close();
  awaitable<void> Reset();

  std::unique_ptr<io::Connection> conn_;
  ClientOptions options_;
  Extensions ext_;
  bool tls_ = false;
  bool open_ = false;
  size_t transactions_ = 0;  // MAIL commands sent
  bool group_sent_ = false;  // the next transaction's group went with the last body
};

}  // namespace hato::smtp
