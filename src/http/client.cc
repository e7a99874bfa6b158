#include "http/client.h"

#include <utility>

#include "base/strings.h"
#include "http/url.h"
#include "io/net.h"

namespace hato::http {
namespace {

Error Temp(const std::string& what) { return Err(ErrorKind::kTemporary, what); }

// Chunk framing may add to the decoded body; past this many raw bytes beyond
// head and body limits the reply is refused without parsing further.
constexpr size_t kMaxFramingBytes = 64 * 1024;

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// The target of a Location field (RFC 9110 section 10.2.2): an absolute
// https URL, or an absolute path on the same origin; nullopt otherwise.
std::optional<std::string> RedirectTarget(const HttpsUrl& from, std::string_view location) {
  location = TrimSpaces(location);
  if (location.size() > 1 && location[0] == '/' && location[1] != '/') {
    std::string url = "https://" + HostField(from) + std::string(location);
    if (ParseHttpsUrl(url)) return url;
    return std::nullopt;
  }
  if (ParseHttpsUrl(location)) return std::string(location);
  return std::nullopt;
}

}  // namespace

Result<std::shared_ptr<asio::ssl::context>> VerifyingTlsContext(const std::string& ca_file,
                                                                std::string_view what) {
  auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  boost::system::error_code ec;
  tls->set_default_verify_paths(ec);
  if (!ca_file.empty()) {
    tls->load_verify_file(ca_file, ec);
    if (ec) {
      return Err(ErrorKind::kInvalid, std::string(what) + " '" + ca_file + "': " + ec.message());
    }
  }
  return tls;
}

awaitable<Result<ClientResponse>> Client::Send(ClientRequest request, ClientLimits limits) const {
  for (int redirects = 0;; ++redirects) {
    auto r = co_await SendOnce(request, limits);
    if (!r || !IsRedirect(r->status) || redirects >= limits.max_redirects) co_return r;
    auto location = r->Get("location");
    auto from = ParseHttpsUrl(request.url);
    std::optional<std::string> next;
    if (location && from) next = RedirectTarget(*from, *location);
    if (!next) co_return r;  // nowhere (or not https) to go: the 3xx itself
    request.url = std::move(*next);
    // RFC 9110 section 15.4.4: after a 303 the target is fetched with GET.
    if (r->status == 303 && request.method != "GET" && request.method != "HEAD") {
      request.method = "GET";
      request.body.clear();
    }
  }
}

awaitable<Result<ClientResponse>> Client::SendOnce(const ClientRequest& request,
                                                   const ClientLimits& limits) const {
  auto u = ParseHttpsUrl(request.url);
  if (!u) co_return Err(ErrorKind::kInvalid, "not an https URL: '" + LogSafe(request.url) + "'");
  std::vector<std::string> addrs;
  boost::system::error_code ec;
  asio::ip::make_address(u->host, ec);
  if (!ec) {
    addrs.push_back(u->host);
  } else {
    auto found = co_await resolver_->LookupAddresses(u->host);
    if (!found) co_return Temp("cannot resolve " + u->host + ": " + found.error().message);
    addrs = std::move(*found);
  }
  std::string head = request.method + " " + u->path + " HTTP/1.1\r\nHost: " + HostField(*u) +
                     "\r\nUser-Agent: hato\r\nConnection: close\r\n";
  bool has_accept = false;
  for (const Header& h : request.headers) {
    has_accept = has_accept || AsciiLower(h.name) == "accept";
    head += h.name + ": " + h.value + "\r\n";
  }
  if (!has_accept) head += "Accept: */*\r\n";
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    head += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
  }
  head += "\r\n";
  const size_t max_raw = limits.max_head_bytes + 2 * limits.max_body_bytes + kMaxFramingBytes;
  std::string why = "no address for " + u->host;
  for (const std::string& ip : addrs) {
    std::optional<tcp::socket> socket = co_await io::Connect(ip, u->port, limits.timeout);
    if (!socket) {
      why = "cannot connect to " + u->host + "[" + ip + "]:" + std::to_string(u->port);
      continue;
    }
    io::Connection conn(std::move(*socket), tls_);
    conn.set_write_timeout(limits.timeout);
    if (!co_await conn.StartTlsClient(u->host, limits.timeout, /*verify=*/true)) {
      why = "TLS to " + u->host + "[" + ip + "] failed or its certificate does not verify";
      continue;
    }
    // From here the request may have reached the server: no other address.
    if (!co_await conn.Write(head) || !co_await conn.Write(request.body)) {
      co_return Temp("cannot send the request to " + u->host);
    }
    ResponseResult r;
    for (;;) {
      io::ReadStatus st = co_await conn.ReadMore(limits.timeout);
      if (st == io::ReadStatus::kTimeout) co_return Temp("no reply from " + u->host + " in time");
      bool eof = st != io::ReadStatus::kOk;
      r = ParseResponse(conn.buffer(), eof, limits.max_head_bytes, limits.max_body_bytes);
      if (r.verdict == Verdict::kNeedMore && conn.buffer().size() > max_raw) {
        r.verdict = Verdict::kTooLarge;
      }
      if (r.verdict != Verdict::kNeedMore || eof) break;
    }
    if (r.verdict == Verdict::kTooLarge) {
      co_return Err(ErrorKind::kTooLarge, "the reply of " + u->host + " is too large");
    }
    if (r.verdict != Verdict::kComplete) {
      co_return Temp("bad HTTP reply from " + u->host + " (" + LogSafe(r.error) + ")");
    }
    ClientResponse out;
    out.status = r.head.status;
    out.head = std::move(r.head);
    out.body = std::move(r.body);
    out.url = request.url;
    co_return out;
  }
  co_return Temp(why);
}

Result<ClientResponse> SendBlocking(const BlockingClientOptions& options, ClientRequest request,
                                    ClientLimits limits) {
  auto tls = VerifyingTlsContext(options.ca_file, options.ca_file_key);
  if (!tls) return tls.error();
  asio::io_context io;
  dns::ResolverOptions ro;
  ro.forward_to = options.resolver;
  ro.timeout_seconds = static_cast<int>(limits.timeout.count());
  auto resolver = dns::NewUnboundResolver(io.get_executor(), ro);
  if (!resolver) return resolver.error();
  Client client(resolver->get(), *tls);
  Result<ClientResponse> out = Temp("no answer from " + LogSafe(request.url) + " in time");
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        out = co_await client.Send(std::move(request), limits);
        io.stop();  // the resolver's descriptor watch would keep run() going
      },
      asio::detached);
  // Each step has its own timeout; redirects and DNS add a few more.
  io.run_for(limits.timeout * (4 + 2 * limits.max_redirects));
  return out;
}

}  // namespace hato::http
