#include "http/server.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "base/strings.h"
#include "http/auth.h"
#include "io/net.h"

namespace hato::http {

// g++ 12 coroutine bugs (io/net.cc): awaitables and their arguments are named
// variables, and awaited results are stored before they are tested.

Limits LimitsFrom(const config::Config& c) {
  Limits l;
  l.max_header_bytes = c.http.max_header_bytes;
  l.max_body_bytes = c.http.max_body_bytes;
  l.max_connections = c.http.max_connections;
  l.max_connections_per_ip = c.http.max_connections_per_ip;
  l.max_requests = c.http.max_requests;
  l.max_requests_per_ip = c.http.max_requests_per_ip;
  l.request_timeout_seconds = c.http.request_timeout_seconds;
  l.idle_timeout_seconds = c.http.idle_timeout_seconds;
  l.retry_after_seconds = c.http.retry_after_seconds;
  return l;
}

std::optional<std::string_view> Request::Get(std::string_view lower_name) const {
  for (const Header& h : headers)
    if (h.name == lower_name) return std::string_view(h.value);
  return std::nullopt;
}

std::optional<std::string> Request::Param(std::string_view name) const {
  for (auto& [k, v] : ParseQuery(query))
    if (k == name) return v;
  return std::nullopt;
}

std::optional<std::string> Request::Cookie(std::string_view name) const {
  for (const Header& h : headers) {
    if (h.name != "cookie") continue;
    std::string_view s = h.value;
    while (!s.empty()) {
      size_t semi = s.find(';');
      std::string_view pair = TrimSpaces(s.substr(0, semi));
      s = semi == std::string_view::npos ? std::string_view() : s.substr(semi + 1);
      size_t eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      if (pair.substr(0, eq) != name) continue;
      std::string_view v = pair.substr(eq + 1);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return std::string(v);
    }
  }
  return std::nullopt;
}

awaitable<bool> StreamWriter::Write(std::string_view data) {
  bool ok = co_await conn_.Write(data);
  co_return ok;
}

Response& Response::Set(std::string name, std::string value) {
  for (Header& h : headers) {
    if (EqualsIgnoreCase(h.name, name)) {
      h.value = std::move(value);
      return *this;
    }
  }
  headers.push_back(Header{std::move(name), std::move(value)});
  return *this;
}

Response Response::Text(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.Set("Content-Type", "text/plain; charset=utf-8");
  return r;
}

Response Response::Json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.Set("Content-Type", "application/json");
  return r;
}

void Router::Add(std::string method, std::string path, Handler handler, Access access) {
  routes_.push_back(Route{std::move(method), std::move(path), false, std::move(handler), access});
}

void Router::AddPrefix(std::string method, std::string prefix, Handler handler, Access access) {
  routes_.push_back(Route{std::move(method), std::move(prefix), true, std::move(handler), access});
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  Match m;
  auto method_ok = [&](const Route& r) {
    return r.method == "*" || r.method == method || (method == "HEAD" && r.method == "GET");
  };
  auto note_allow = [&](const Route& r) {
    std::string add = r.method == "GET" ? "GET, HEAD" : r.method;
    if (m.allow.find(add) == std::string::npos) m.allow += (m.allow.empty() ? "" : ", ") + add;
  };
  // Exact paths first.
  bool known = false;
  for (const Route& r : routes_) {
    if (r.prefix || r.path != path) continue;
    known = true;
    if (method_ok(r)) {
      m.route = &r;
      m.allow.clear();
      return m;
    }
    note_allow(r);
  }
  if (known) return m;
  // The longest matching prefix (with a route for the method).
  size_t best = 0;
  std::string allow;
  for (const Route& r : routes_) {
    if (!r.prefix || path.substr(0, r.path.size()) != r.path) continue;
    if (method_ok(r)) {
      if (!m.route || r.path.size() > best) {
        m.route = &r;
        best = r.path.size();
      }
    } else {
      note_allow(r);
    }
  }
  if (m.route) m.allow.clear();
  return m;
}

namespace {

constexpr size_t kLingerBytes = 1 << 20;

std::string HttpDate(std::time_t t) {  // IMF-fixdate (RFC 9110 section 5.6.7)
  char buf[64];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

bool HasHeader(const Response& r, std::string_view name) {
  for (const Header& h : r.headers)
    if (EqualsIgnoreCase(h.name, name)) return true;
  return false;
}

// The response head; Content-Length unless streamed.
std::string Head(const Response& r, bool keep_alive, bool streamed, uint64_t length) {
  std::string_view reason = ReasonPhrase(r.status);
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " +
                    std::string(reason.empty() ? "Status" : reason) + "\r\n";
  out += "Date: " + HttpDate(std::time(nullptr)) + "\r\n";
  for (const Header& h : r.headers) {
    // Values come from handlers; CR/LF would split the response.
    if (h.value.find_first_of("\r\n") != std::string::npos) continue;
    out += h.name + ": " + h.value + "\r\n";
  }
  if (!HasHeader(r, "x-content-type-options")) out += "X-Content-Type-Options: nosniff\r\n";
  if (!streamed && r.status != 304 && r.status != 204)
    out += "Content-Length: " + std::to_string(length) + "\r\n";
  if (streamed || !keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

Response Refusal(int status, const Limits& l, std::string text) {
  Response r = Response::Text(status, std::move(text));
  if (status == 503) r.Set("Retry-After", std::to_string(l.retry_after_seconds));
  return r;
}

Response Unauthorized(std::string text) {
  Response r = Response::Text(401, std::move(text));
  // RFC 9110 section 11.6.1; RFC 7617 (Basic), RFC 6750 (Bearer).
  r.Set("WWW-Authenticate", "Basic realm=\"hato\", charset=\"UTF-8\", Bearer realm=\"hato\"");
  return r;
}

}  // namespace

// One client connection: reads requests, runs their handlers, writes responses.
class Server::Connection : public server::SessionRegistry::Member {
 public:
  Connection(Server& s, tcp::socket socket, bool implicit_tls)
      : s_(s),
        conn_(std::move(socket), implicit_tls ? s.services_.tls : nullptr),
        implicit_tls_(implicit_tls) {}

  void RequestStop() override {
    stop_ = true;
    if (idle_) conn_.CancelReads();
    if (stream_) stream_->RequestStop();
  }

  awaitable<void> Run(Limits lim);

 private:
  // Reads until a whole head is buffered. nullopt: the connection is done
  // (a reply, if any, was written).
  awaitable<std::optional<RequestHead>> ReadHead(const Limits& lim);
  awaitable<bool> ReadBody(const Limits& lim, const RequestHead& head, std::string& body);
  awaitable<bool> Send(Response r, bool keep_alive, bool head_only);
  awaitable<Response> Dispatch(const Limits& lim, Request& req);

  Server& s_;
  io::Connection conn_;
  bool implicit_tls_;
  bool idle_ = false;
  bool stop_ = false;
  bool linger_ = false;  // an error reply closes: read what the client still sends first
  StreamWriter* stream_ = nullptr;
  std::chrono::steady_clock::time_point deadline_;
};

awaitable<std::optional<RequestHead>> Server::Connection::ReadHead(const Limits& lim) {
  using Clock = std::chrono::steady_clock;
  bool started = !conn_.buffer().empty();
  if (started) deadline_ = Clock::now() + std::chrono::seconds(lim.request_timeout_seconds);
  while (true) {
    if (!conn_.buffer().empty()) {
      HeadResult parsed = ParseRequestHead(conn_.buffer(), lim.max_header_bytes);
      if (parsed.verdict == Verdict::kComplete) {
        conn_.buffer().erase(0, parsed.consumed);
        co_return std::move(parsed.head);
      }
      if (parsed.verdict == Verdict::kTooLarge) {
        co_await Send(Refusal(431, lim, "request header fields too large\n"), false, false);
        co_return std::nullopt;
      }
      if (parsed.verdict == Verdict::kBad) {
        co_await Send(Response::Text(400, "bad request: " + parsed.error + "\n"), false, false);
        co_return std::nullopt;
      }
    }
    if (stop_ && conn_.buffer().empty()) co_return std::nullopt;
    std::chrono::seconds wait(lim.idle_timeout_seconds);
    if (started) {
      auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline_ - Clock::now());
      wait = std::max(std::chrono::seconds(1), left);
    }
    idle_ = !started;
    io::ReadStatus st = co_await conn_.ReadMore(wait);
    idle_ = false;
    if (st == io::ReadStatus::kTimeout) {
      co_await Send(Refusal(408, lim, "request timeout\n"), false, false);
      co_return std::nullopt;
    }
    if (st != io::ReadStatus::kOk) co_return std::nullopt;
    if (!started) {
      started = true;
      deadline_ = Clock::now() + std::chrono::seconds(lim.request_timeout_seconds);
    } else if (Clock::now() > deadline_) {
      co_await Send(Refusal(408, lim, "request timeout\n"), false, false);
      co_return std::nullopt;
    }
  }
}

awaitable<bool> Server::Connection::ReadBody(const Limits& lim, const RequestHead& head,
                                             std::string& body) {
  using Clock = std::chrono::steady_clock;
  std::string& buf = conn_.buffer();
  std::optional<ChunkedDecoder> chunked;
  if (head.chunked) chunked.emplace(lim.max_body_bytes);
  while (true) {
    if (chunked) {
      size_t used = chunked->Feed(buf, body);
      buf.erase(0, used);
      if (chunked->done()) co_return true;
      if (chunked->too_large()) {
        co_await Send(Refusal(413, lim, "request body too large\n"), false, false);
        co_return false;
      }
      if (chunked->failed()) {
        co_await Send(Response::Text(400, "bad chunked body\n"), false, false);
        co_return false;
      }
    } else {
      size_t want = static_cast<size_t>(head.content_length) - body.size();
      size_t take = std::min(want, buf.size());
      body.append(buf, 0, take);
      buf.erase(0, take);
      if (body.size() == head.content_length) co_return true;
    }
    auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline_ - Clock::now());
    if (left.count() <= 0) {
      co_await Send(Refusal(408, lim, "request timeout\n"), false, false);
      co_return false;
    }
    io::ReadStatus st = co_await conn_.ReadMore(left);
    if (st == io::ReadStatus::kTimeout) {
      co_await Send(Refusal(408, lim, "request timeout\n"), false, false);
      co_return false;
    }
    if (st != io::ReadStatus::kOk) co_return false;
  }
}

awaitable<bool> Server::Connection::Send(Response r, bool keep_alive, bool head_only) {
  bool streamed = static_cast<bool>(r.stream);
  if (!keep_alive && r.status >= 400) linger_ = true;
  std::string out = Head(r, keep_alive, streamed, r.body.size());
  if (!head_only && !streamed) out += r.body;
  bool ok = co_await conn_.Write(out);
  if (!ok || !streamed || head_only) co_return ok;
  StreamWriter writer(conn_);
  stream_ = &writer;
  if (stop_) writer.RequestStop();
  auto fn = std::move(r.stream);
  co_await fn(writer);
  stream_ = nullptr;
  co_return false;  // a streamed response ends the connection
}

awaitable<Response> Server::Connection::Dispatch(const Limits& lim, Request& req) {
  Router::Match m = s_.router_.Find(req.method, req.path);
  if (!m.route) {
    if (!m.allow.empty()) {
      Response r = Response::Text(405, "method not allowed\n");
      r.Set("Allow", m.allow);
      co_return r;
    }
    co_return Response::Text(404, "not found\n");
  }
  const Router::Route& route = *m.route;
  if (route.prefix) req.rest = req.path.substr(route.path.size());
  AuthOutcome auth = co_await Authenticate(s_.services_, req);
  switch (auth) {
    case AuthOutcome::kBad:
      co_return Unauthorized("authentication failed\n");
    case AuthOutcome::kInsecure:
      co_return Unauthorized("password authentication needs TLS\n");
    case AuthOutcome::kTemporary:
      co_return Refusal(503, lim, "authentication temporarily unavailable\n");
    case AuthOutcome::kNone:
    case AuthOutcome::kOk:
      break;
  }
  if (route.access == Access::kAccount && !req.account)
    co_return Unauthorized("authentication required\n");
  Response r = co_await route.handler(req);
  co_return r;
}

awaitable<void> Server::Connection::Run(Limits lim) {
  if (implicit_tls_) {
    bool ok = co_await conn_.StartTls(std::chrono::seconds(lim.request_timeout_seconds));
    if (!ok) co_return;
  }
  conn_.set_write_timeout(std::chrono::seconds(std::max(lim.idle_timeout_seconds, 30)));
  auto cfg = s_.services_.config->Get();
  size_t per_ip =
      (conn_.peer_is_loopback() && !cfg->per_ip_limits_on_loopback) ? 0 : lim.max_requests_per_ip;
  while (!stop_) {
    std::optional<RequestHead> head = co_await ReadHead(lim);
    if (!head) break;
    bool head_only = head->method == "HEAD";
    // A body announced past the limit is refused unread (RFC 9110 section 15.5.14).
    if (!head->chunked && head->content_length > lim.max_body_bytes) {
      co_await Send(Refusal(413, lim, "request body too large\n"), false, head_only);
      break;
    }
    bool has_body = head->chunked || head->content_length > 0;
    if (auto expect = head->Get("expect")) {
      if (!EqualsIgnoreCase(*expect, "100-continue")) {
        co_await Send(Response::Text(417, "expectation failed\n"), false, head_only);
        break;
      }
      if (has_body && head->minor_version == 1) {
        bool ok = co_await conn_.Write("HTTP/1.1 100 Continue\r\n\r\n");
        if (!ok) break;
      }
    }
    Request req;
    if (has_body) {
      bool ok = co_await ReadBody(lim, *head, req.body);
      if (!ok) break;
    }
    req.method = std::move(head->method);
    req.path = std::move(head->path);
    req.query = std::move(head->query);
    req.headers = std::move(head->headers);
    req.peer_ip = conn_.peer_ip();
    req.is_tls = conn_.is_tls();
    req.loopback = conn_.peer_is_loopback();
    bool keep_alive = head->keep_alive && !stop_;

    Response resp;
    std::optional<server::Admission::Ticket> ticket;
    auto verdict = s_.requests_.TryAdmit(req.peer_ip, lim.max_requests, per_ip, ticket);
    if (verdict != server::Admission::Verdict::kAdmitted) {
      resp = Refusal(503, lim,
                     verdict == server::Admission::Verdict::kTooMany
                         ? "too many requests in progress, try again later\n"
                         : "too many requests from your address in progress, try again later\n");
    } else {
      try {
        resp = co_await Dispatch(lim, req);
      } catch (const std::exception& e) {
        // A bug, caught at the request boundary: 500, and the connection goes on.
        spdlog::error("{}: {} {}: handler failed: {}", s_.name_, req.method, req.path, e.what());
        resp = Response::Text(500, "internal error\n");
      }
    }
    // A stream (EventSource) lasts long: it does not hold a request slot.
    if (resp.stream) ticket.reset();
    bool ok = co_await Send(std::move(resp), keep_alive, head_only);
    ticket.reset();
    if (!ok || !keep_alive) break;
  }
  if (linger_) {
    // Closing with unread input makes the kernel send RST, which can destroy
    // the error reply before the client reads it: drain a little first.
    size_t drained = 0;
    while (drained < kLingerBytes) {
      drained += conn_.buffer().size();
      conn_.buffer().clear();
      io::ReadStatus st = co_await conn_.ReadMore(std::chrono::seconds(1));
      if (st != io::ReadStatus::kOk) break;
    }
  }
  conn_.Close();
}

Server::Server(server::Services services, std::string name, const Router& router)
    : services_(std::move(services)), name_(std::move(name)), router_(router) {}

Server::~Server() = default;

void Server::Shutdown() { registry_.StopAll(); }

awaitable<void> Server::Serve(tcp::socket socket, bool implicit_tls) {
  auto cfg = services_.config->Get();
  Limits lim = LimitsFrom(*cfg);
  boost::system::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) co_return;
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped())
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  std::string ip = addr.to_string();
  size_t per_ip =
      (addr.is_loopback() && !cfg->per_ip_limits_on_loopback) ? 0 : lim.max_connections_per_ip;
  std::optional<server::Admission::Ticket> ticket;
  auto verdict = connections_.TryAdmit(ip, lim.max_connections, per_ip, ticket);
  if (verdict != server::Admission::Verdict::kAdmitted) {
    if (!implicit_tls) {
      // A short plaintext reply fits the socket buffer: no wait for the client.
      Response r = Refusal(503, lim, "too many connections, try again later\n");
      std::string out = Head(r, false, false, r.body.size()) + r.body;
      socket.non_blocking(true, ec);
      socket.write_some(asio::buffer(out), ec);
    }
    socket.close(ec);
    co_return;
  }
  Connection c(*this, std::move(socket), implicit_tls);
  server::SessionRegistry::Scope registered(registry_, &c);
  co_await c.Run(lim);
}

}  // namespace hato::http
