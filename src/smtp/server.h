// SMTP server sessions: inbound mail (MX, RFC 5321) and authenticated
// submission (RFC 6409 on 587 with STARTTLS, RFC 8314 implicit TLS on 465)
// share one state machine with one handler per command; the mode decides
// what differs (AUTH, relaying to remote domains, sender ownership, sending
// limits, Message-ID/Date, DSN parameters). Parsing lives in smtp/command.h
// and smtp/data_reader.h; storage goes through store::Store. A 250 after
// DATA/BDAT LAST is sent only once the store's group commit made the message
// durable: local copies and the outbound queue entry in one transaction.
#pragma once

#include "io/asio.h"
#include "server/services.h"

namespace hato::smtp {

enum class Mode {
  kMx,                     // port 25: local recipients only, no AUTH
  kSubmission,             // port 587: AUTH (after STARTTLS unless loopback), relays for its user
  kSubmissionImplicitTls,  // port 465: as 587, TLS from the first byte
};

class Server {
 public:
  explicit Server(server::Services services, Mode mode = Mode::kMx)
      : services_(std::move(services)), mode_(mode) {}
  // Serves one accepted connection until it closes.
  awaitable<void> Serve(tcp::socket socket);
  size_t live_sessions() const { return admission_.live(); }
  const server::Admission& admission() const { return admission_; }
  // Graceful stop: idle sessions get 421 and close now, busy ones after their transaction.
  void Shutdown() { registry_.StopAll(); }

 private:
  server::Services services_;
  Mode mode_;
  server::Admission admission_;
  server::SessionRegistry registry_;
};

}  // namespace hato::smtp
