// A DNSSEC-aware stub for DANE (RFC 7672 2.2): asks one validating
// resolver, over UDP (TCP when the answer is truncated, RFC 7766 5), and
// reports whether the answer was "secure" by its AD bit. Used by the
// outbound queue for the MX, address and TLSA lookups that decide DANE
// ([outbound] dane). libunbound cannot do this without a trust anchor of
// its own: it clears the AD bit of the resolver it forwards to.
//
// SECURITY: the AD bit is only as good as the path to the resolver (RFC 4035
// 4.9.3; RFC 6698 4.1): the queue accepts only a resolver on loopback.
// Thread-safety: use a SecureStub from its event loop only.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "base/result.h"
#include "io/asio.h"

namespace hato::dns {

struct SecureAnswer {
  bool secure = false;             // the AD bit: validated by the resolver
  bool nxdomain = false;           // the name does not exist
  std::vector<std::string> rdata;  // of the asked type; empty for NODATA
  std::string canonical;           // the end of the answer's CNAME chain (or the name)
};

// "ip" or "ip@port" (port 53 by default) with an IP on loopback
// (127.0.0.0/8, ::1); kInvalid otherwise.
Result<asio::ip::udp::endpoint> LoopbackResolver(std::string_view address);

class SecureStub {
 public:
  SecureStub(asio::any_io_executor executor, asio::ip::udp::endpoint server,
             std::chrono::seconds timeout)
      : ex_(std::move(executor)), server_(std::move(server)), timeout_(timeout) {}
  // Errors: kTemporary for SERVFAIL (also what a validating resolver answers
  // for a "bogus" answer), REFUSED, a timeout or a malformed answer.
  awaitable<Result<SecureAnswer>> Query(std::string name, uint16_t type);

 private:
  asio::any_io_executor ex_;
  asio::ip::udp::endpoint server_;
  std::chrono::seconds timeout_;
};

}  // namespace hato::dns
