// The HTTP/1.1 server (RFC 9110, RFC 9112) behind [listen] http / https and
// the metrics endpoint: one connection coroutine per client on io::Connection
// (plaintext or TLS), keep-alive, one request at a time per connection.
// Requests are parsed by http/request.h (pure, fuzzed); the Router maps
// method + path to a handler coroutine; the server owns limits, timeouts,
// authentication (http/auth.h) and the wire format of responses.
//
// Limits (config [http], each with its reply):
//   max_header_bytes          request line + fields     -> 431, close
//   max_body_bytes            request body               -> 413, close
//   max_connections(_per_ip)  open connections           -> 503 + Retry-After, close
//   max_requests(_per_ip)     requests being handled     -> 503 + Retry-After
//   request_timeout_seconds   a started request must arrive whole -> 408, close
//   idle_timeout_seconds      keep-alive wait for the next request -> 408, close
// Thread-safety: a Router is built before serving and then only read; a
// Server's counters are thread-safe; a connection lives on one executor.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/request.h"
#include "io/asio.h"
#include "server/services.h"

namespace hato::io {
class Connection;
}

namespace hato::http {

struct Limits {
  size_t max_header_bytes = 16384;
  uint64_t max_body_bytes = 50ull << 20;
  size_t max_connections = 2000;
  size_t max_connections_per_ip = 100;
  size_t max_requests = 256;
  size_t max_requests_per_ip = 32;
  int request_timeout_seconds = 60;
  int idle_timeout_seconds = 120;
  int retry_after_seconds = 5;
};
Limits LimitsFrom(const config::Config& c);

// The account a request is made for, after authentication.
struct Principal {
  int64_t account_id = 0;
  std::string address;
  std::string via;  // "basic", "bearer" or "cookie"
};

struct Request {
  std::string method;
  std::string path;   // percent-decoded
  std::string query;  // raw
  std::vector<Header> headers;
  std::string body;
  std::string peer_ip;
  bool is_tls = false;
  bool loopback = false;
  std::optional<Principal> account;
  // For a prefix route: the path after the prefix.
  std::string rest;

  std::optional<std::string_view> Get(std::string_view lower_name) const;
  // The first query parameter with this name, decoded.
  std::optional<std::string> Param(std::string_view name) const;
  // A cookie's value (RFC 6265 section 5.4), or nullopt.
  std::optional<std::string> Cookie(std::string_view name) const;
};

// Writes a streamed response body (EventSource, RFC 8620 section 7.3).
class StreamWriter {
 public:
  explicit StreamWriter(io::Connection& conn) : conn_(conn) {}
  // False once the client is gone; the stream should then return.
  awaitable<bool> Write(std::string_view data);
  // Set when the server stops gracefully; the stream should return soon.
  bool stop_requested() const { return stop_; }
  void RequestStop() { stop_ = true; }

 private:
  io::Connection& conn_;
  bool stop_ = false;
};

struct Response {
  int status = 200;
  std::vector<Header> headers;  // names as they are to be sent
  std::string body;
  // When set, the head is sent without Content-Length and this writes the
  // body until it returns; the connection is then closed.
  std::function<awaitable<void>(StreamWriter&)> stream;

  Response& Set(std::string name, std::string value);
  static Response Text(int status, std::string body);
  static Response Json(int status, std::string body);
};

using Handler = std::function<awaitable<Response>(Request&)>;

enum class Access {
  kPublic,   // no account needed (credentials sent are still checked)
  kAccount,  // 401 with WWW-Authenticate without a valid account
};

// Routes: method + exact path, or method + path prefix (the longest prefix
// wins; exact paths before prefixes). Method "*" matches any; a GET route
// also answers HEAD (body dropped). A path with a route but not for the
// method gets 405 with Allow.
class Router {
 public:
  void Add(std::string method, std::string path, Handler handler, Access access = Access::kPublic);
  void AddPrefix(std::string method, std::string prefix, Handler handler,
                 Access access = Access::kPublic);

  struct Route {
    std::string method;
    std::string path;
    bool prefix = false;
    Handler handler;
    Access access = Access::kPublic;
  };
  struct Match {
    const Route* route = nullptr;
    std::string allow;  // when route is null but the path is known: the methods it has
  };
  Match Find(std::string_view method, std::string_view path) const;

 private:
  std::vector<Route> routes_;
};

class Server {
 public:
  // `name` is for logs ("http", "https", "metrics"); the router must outlive the server.
  Server(server::Services services, std::string name, const Router& router);
  ~Server();
  // With `implicit_tls` the TLS handshake comes first (https).
  awaitable<void> Serve(tcp::socket socket, bool implicit_tls);
  size_t live_connections() const { return connections_.live(); }
  const server::Admission& admission() const { return connections_; }
  // Graceful stop: idle keep-alive connections close; streams are asked to end.
  void Shutdown();

 private:
  class Connection;
  server::Services services_;
  std::string name_;
  const Router& router_;
  server::Admission connections_;
  server::Admission requests_;
  server::SessionRegistry registry_;
};

}  // namespace hato::http
