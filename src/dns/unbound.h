// What both libunbound users (resolver.h on the event loop, blocking_lookup.h
// for message authentication) share: creating a context and reading its
// answers. Internal to src/dns.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "dns/message.h"  // the record types

struct ub_ctx;
struct ub_result;

namespace hato::dns {

// A context that forwards to `forward_to` ("ip" or "ip@port"; empty: the
// resolvers of /etc/resolv.conf) and resolves on its own thread, answers
// coming back through ub_fd (ub_process). kInvalid for a bad address.
Result<ub_ctx*> NewUnboundContext(const std::string& forward_to);

// What libunbound answered for one name and type.
struct UnboundAnswer {
  bool nxdomain = false;
  std::vector<std::string> rdata;  // uncompressed, one per record
  int ttl = 0;                     // seconds
};

// The answer of a resolve_async callback; frees `result`. SERVFAIL and
// other failures are kTemporary.
Result<UnboundAnswer> TakeAnswer(int err, ub_result* result);

}  // namespace hato::dns
