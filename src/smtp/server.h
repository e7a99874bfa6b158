// SMTP server sessions (RFC 5321) for inbound mail (MX): one coroutine per
// connection running a small state machine with one handler per command.
// Parsing lives in smtp/command.h and smtp/data_reader.h; storage goes
// through store::Store. A 250 after DATA/BDAT LAST is sent only once the
// store's group commit made the message durable.
#pragma once

#include "io/asio.h"
#include "server/services.h"

namespace hato::smtp {

class Server {
 public:
  explicit Server(server::Services services) : services_(std::move(services)) {}
  // Serves one accepted connection until it closes.
  awaitable<void> Serve(tcp::socket socket);
  size_t live_sessions() const { return admission_.live(); }
  const server::Admission& admission() const { return admission_; }
  // Graceful stop: idle sessions get 421 and close now, busy ones after their transaction.
  void Shutdown() { registry_.StopAll(); }

 private:
  server::Services services_;
  server::Admission admission_;
  server::SessionRegistry registry_;
};

}  // namespace hato::smtp
