// ManageSieve server sessions (RFC 5804): upload, list, activate and check
// the Sieve scripts an account runs at delivery (src/sieve). STARTTLS
// (section 2.2), AUTHENTICATE PLAIN (RFC 4616) through the shared login path
// and penalties (server/login.h), then the script commands, each a store
// operation run on the blocking pool. Parsing lives in managesieve/proto.h.
// Thread-safety: Serve may run concurrently on several threads.
#pragma once

#include "io/asio.h"
#include "server/services.h"

namespace hato::managesieve {

class Server {
 public:
  explicit Server(server::Services services) : services_(std::move(services)) {}
  // Serves one accepted connection until it closes.
  awaitable<void> Serve(tcp::socket socket);
  const server::Admission& admission() const { return admission_; }
  // Graceful stop: idle sessions get BYE and close.
  void Shutdown() { registry_.StopAll(); }

 private:
  server::Services services_;
  server::Admission admission_;
  server::SessionRegistry registry_;
};

}  // namespace hato::managesieve
