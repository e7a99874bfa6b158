// POP3 server sessions (RFC 1939) with CAPA and response codes (RFC 2449),
// STLS (RFC 2595), AUTH PLAIN (RFC 5034, RFC 4616) and AUTH-RESP-CODE
// (RFC 3206): one coroutine per connection running the AUTHORIZATION /
// TRANSACTION / UPDATE state machine with one handler per command.
// Parsing lives in pop3/command.h; storage goes through store::Store. A
// session works on a snapshot of INBOX taken at login (message numbers stay
// fixed, RFC 1939 section 5); DELE only marks, and the marked messages are
// expunged (moved to the retention area) when QUIT enters the UPDATE state,
// with "+OK" sent only after the store committed that.
// Thread-safety: Serve may run concurrently on several threads; the
// maildrop locks are shared by every session of one Server.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>

#include "io/asio.h"
#include "server/services.h"

namespace hato::pop3 {

// The exclusive-access lock on a maildrop (RFC 1939 section 8): at most one
// POP3 session per account at a time. Thread-safe.
class MaildropLocks {
 public:
  // False when another session holds the account's maildrop.
  bool TryLock(int64_t account_id) {
    std::lock_guard lock(mu_);
    return locked_.insert(account_id).second;
  }
  void Unlock(int64_t account_id) {
    std::lock_guard lock(mu_);
    locked_.erase(account_id);
  }

 private:
  std::mutex mu_;
  std::set<int64_t> locked_;  // guarded by mu_
};

class Server {
 public:
  explicit Server(server::Services services) : services_(std::move(services)) {}
  // Serves one accepted connection until it closes.
  // With `implicit_tls` (POP3S, port 995, RFC 8314 section 3.3) the TLS
  // handshake comes before the greeting.
  awaitable<void> Serve(tcp::socket socket, bool implicit_tls = false);
  size_t live_sessions() const { return admission_.live(); }
  const server::Admission& admission() const { return admission_; }
  // Graceful stop: sessions waiting for a command get -ERR [SYS/TEMP] and
  // close (without UPDATE: nothing is deleted); busy ones after their command.
  void Shutdown() { registry_.StopAll(); }

 private:
  server::Services services_;
  server::Admission admission_;
  server::SessionRegistry registry_;
  MaildropLocks locks_;
};

}  // namespace hato::pop3
