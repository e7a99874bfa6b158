// What both libunbound users (resolver.h on the event loop, blocking_lookup.h
// for message authentication) share: creating a context and reading its
// answers. Internal to src/dns.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

struct ub_ctx;
struct ub_result;

namespace hato::dns {

inline constexpr int kTypeA = 1;
inline constexpr int kTypeCname = 5;
inline constexpr int kTypePtr = 12;
inline constexpr int kTypeMx = 15;
inline constexpr int kTypeTxt = 16;
inline constexpr int kTypeAaaa = 28;
inline constexpr int kTypeSrv = 33;
inline constexpr int kClassIn = 1;

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
