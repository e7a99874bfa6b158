// The HTTPS client: the requests Hato makes as a client of HTTP services,
// ACME (acme/client.h), MTA-STS policy fetches (outbound/mta_sts.h) and
// TLS-RPT reports to an https: rua (reports/send.h). The client side of the
// one HTTP stack: the response is parsed by http/response.h (pure, fuzzed)
// as the server side's requests are by http/request.h.
//
// One request per connection (HTTP/1.1, RFC 9112, "Connection: close"),
// always over TLS whose certificate must verify against the context's CAs
// and name the URL's host (RFC 9110 section 4.3.4, RFC 6125, through
// io::Connection::StartTlsClient). The host's addresses are tried in turn
// until one connects and completes the handshake; a request that was sent
// is never sent again to another address.
//
// Limits (ClientLimits, each with its error):
//   timeout         each step (connect, TLS, writing, each read) -> kTemporary
//   max_head_bytes  the status line and fields                   -> kTemporary
//   max_body_bytes  the decoded body                             -> kTooLarge
//   max_redirects   3xx followed (https: only, 303 becomes GET); 0 (the
//                   default): a 3xx is returned as is (RFC 8461 section 3.3
//                   and RFC 8555 section 6.1 want none followed)
// Thread-safety: a Client is immutable after construction; Send may run
// concurrently on the resolver's executor. SendBlocking builds its own
// event loop and may be called from any thread that may block.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "dns/resolver.h"
#include "http/request.h"
#include "http/response.h"
#include "io/asio.h"

namespace hato::http {

struct ClientRequest {
  std::string method = "GET";
  std::string url;  // https://host[:port]/path
  // Fields besides Host, User-Agent, Connection and Content-Length (which
  // the client writes), e.g. {"content-type", "application/jose+json"}.
  std::vector<Header> headers;
  std::string body;  // sent with a Content-Length when non-empty or a POST/PUT
};

struct ClientLimits {
  std::chrono::seconds timeout{30};
  size_t max_head_bytes = 16384;
  uint64_t max_body_bytes = 1 << 20;
  int max_redirects = 0;
};

struct ClientResponse {
  int status = 0;
  ResponseHead head;
  std::string body;  // decoded (no chunked coding)
  std::string url;   // the URL that answered (after any redirect followed)
  std::optional<std::string_view> Get(std::string_view lower_name) const {
    return head.Get(lower_name);
  }
};

// A TLS client context that verifies: the system's CAs plus `ca_file` (PEM,
// "" for none). kInvalid, naming `what` (the config key), when ca_file
// cannot be read.
Result<std::shared_ptr<asio::ssl::context>> VerifyingTlsContext(const std::string& ca_file,
                                                                std::string_view what);

class Client {
 public:
  // `resolver` finds the addresses of URL hosts that are not IP literals;
  // `verify_tls` is a verifying context (VerifyingTlsContext). Both must
  // outlive the client.
  Client(dns::Resolver* resolver, std::shared_ptr<asio::ssl::context> verify_tls)
      : resolver_(resolver), tls_(std::move(verify_tls)) {}

  // The response, whatever its status; an error when no response came
  // (kInvalid for a URL that is not https, kTemporary for DNS, connection,
  // TLS, timeout or a malformed reply, kTooLarge past max_body_bytes).
  awaitable<Result<ClientResponse>> Send(ClientRequest request, ClientLimits limits) const;

 private:
  awaitable<Result<ClientResponse>> SendOnce(const ClientRequest& request,
                                             const ClientLimits& limits) const;

  dns::Resolver* resolver_;
  std::shared_ptr<asio::ssl::context> tls_;
};

// For blocking callers (the report sender on the blocking pool, the CLI):
// one Send on an event loop of its own, with a resolver forwarding to
// `resolver` ("ip[@port]", "" for the system's) and the CAs of `ca_file`.
struct BlockingClientOptions {
  std::string resolver;
  std::string ca_file;
  std::string ca_file_key = "ca_file";  // the config key named in errors
};
Result<ClientResponse> SendBlocking(const BlockingClientOptions& options, ClientRequest request,
                                    ClientLimits limits);

}  // namespace hato::http
