#include "dns/unbound.h"

#include <unbound.h>

namespace hato::dns {
namespace {
constexpr int kRcodeNxDomain = 3;
}  // namespace

Result<ub_ctx*> NewUnboundContext(const std::string& forward_to) {
  ub_ctx* ctx = ub_ctx_create();
  if (!ctx) return Err(ErrorKind::kInternal, "dns: cannot create the libunbound context");
  int rc = 0;
  if (!forward_to.empty()) {
    // A resolver on this host (a local cache, or the tests' DNS server)
    // must be allowed: libunbound refuses to query localhost by default.
    rc = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no");
    if (rc == 0) rc = ub_ctx_set_fwd(ctx, forward_to.c_str());
  } else {
    rc = ub_ctx_resolvconf(ctx, nullptr);
  }
  if (rc != 0) {
    ub_ctx_delete(ctx);
    return Err(ErrorKind::kInvalid, "dns: resolver '" + forward_to + "': " + ub_strerror(rc));
  }
  if ((rc = ub_ctx_async(ctx, 1)) != 0) {
    ub_ctx_delete(ctx);
    return Err(ErrorKind::kInternal, std::string("dns: ") + ub_strerror(rc));
  }
  return ctx;
}

Result<UnboundAnswer> TakeAnswer(int err, ub_result* result) {
  if (err != 0 || !result) {
    if (result) ub_resolve_free(result);
    return Err(ErrorKind::kTemporary, std::string("dns: ") + ub_strerror(err));
  }
  UnboundAnswer a;
  a.ttl = result->ttl;
  if (result->rcode == kRcodeNxDomain || result->nxdomain) {
    a.nxdomain = true;
  } else if (result->rcode != 0) {
    int rcode = result->rcode;
    ub_resolve_free(result);
    return Err(ErrorKind::kTemporary, "dns: server failure (rcode " + std::to_string(rcode) + ")");
  } else {
    for (int i = 0; result->havedata && result->data[i]; ++i) {
      a.rdata.emplace_back(result->data[i], static_cast<size_t>(result->len[i]));
    }
  }
  ub_resolve_free(result);
  return a;
}

}  // namespace hato::dns
