// libFuzzer target for the ACME resources (src/acme/messages.h): the
// directory, orders, authorizations, problem documents, challenge tokens
// and https URLs a CA sends (http/url.h).
//
//   * a parsed directory has its three URLs; an order its finalize URL and
//     at most kMaxAuthorizations authorizations;
//   * a valid token is base64url only (it becomes a URL path segment);
//   * a parsed URL's path starts with "/" and has no space or control
//     character, its port is 1..65535 and its host is not empty.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "acme/messages.h"
#include "fuzz_util.h"
#include "http/url.h"

namespace a = hato::acme;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto d = a::ParseDirectory(in)) {
    FUZZ_CHECK(!d->new_nonce.empty() && !d->new_account.empty() && !d->new_order.empty());
  }
  if (auto o = a::ParseOrder(in)) {
    FUZZ_CHECK(!o->finalize.empty() && !o->status.empty());
    FUZZ_CHECK(o->authorizations.size() <= a::kMaxAuthorizations);
  }
  if (auto z = a::ParseAuthorization(in)) {
    FUZZ_CHECK(!z->identifier.empty());
    if (const a::Challenge* c = z->Find("http-01")) FUZZ_CHECK(c->type == "http-01");
  }
  if (auto p = a::ParseProblem(in)) FUZZ_CHECK(!p->type.empty());
  if (a::IsValidToken(in)) {
    for (char c : in) FUZZ_CHECK(c != '/' && c != '.' && c != '%' && c != ' ');
  }
  if (auto u = hato::http::ParseHttpsUrl(in)) {
    FUZZ_CHECK(!u->host.empty() && u->port >= 1 && u->port <= 65535);
    FUZZ_CHECK(!u->path.empty() && u->path[0] == '/');
    for (char c : u->path) FUZZ_CHECK(static_cast<unsigned char>(c) > 0x20);
  }
  return 0;
}
