#include "scan/client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>

#include "http/response.h"

namespace hato::scan {
namespace {

constexpr size_t kMaxResponseHead = 16 * 1024;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

int MillisLeft(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

Error Temporary(const std::string& what) { return Err(ErrorKind::kTemporary, what); }

// Waits until `fd` is ready for `events`; false at the deadline.
bool Wait(int fd, short events, Deadline deadline) {
  while (true) {
    int ms = MillisLeft(deadline);
    if (ms == 0) return false;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, ms);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

Result<int> ConnectOne(int family, const sockaddr* addr, socklen_t len, Deadline deadline) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Temporary(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, addr, len) != 0) {
    if (errno != EINPROGRESS) {
      int e = errno;
      ::close(fd);
      return Temporary(std::string("connect: ") + std::strerror(e));
    }
    if (!Wait(fd, POLLOUT, deadline)) {
      ::close(fd);
      return Temporary("connect: timed out");
    }
    int err = 0;
    socklen_t el = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0) {
      ::close(fd);
      return Temporary(std::string("connect: ") + std::strerror(err));
    }
  }
  return fd;
}

Result<int> Connect(const Endpoint& ep, Deadline deadline) {
  if (!ep.unix_path.empty()) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (ep.unix_path.size() >= sizeof sun.sun_path) return Temporary("socket path too long");
    std::memcpy(sun.sun_path, ep.unix_path.data(), ep.unix_path.size());
    return ConnectOne(AF_UNIX, reinterpret_cast<const sockaddr*>(&sun), sizeof sun, deadline);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(ep.host.c_str(), ep.port.c_str(), &hints, &res);
  if (rc != 0) return Temporary(std::string("resolve ") + ep.host + ": " + gai_strerror(rc));
  Error last = Temporary("no address");
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    Result<int> fd = ConnectOne(a->ai_family, a->ai_addr, a->ai_addrlen, deadline);
    if (fd) {
      ::freeaddrinfo(res);
      return fd;
    }
    last = fd.error();
  }
  ::freeaddrinfo(res);
  return last;
}

// Sends `request`, then reads until `complete(reply, eof)` is true.
Result<std::string> Exchange(const Endpoint& ep, std::string_view request, Deadline deadline,
                             const std::function<bool(std::string_view, bool)>& complete) {
  Result<int> fd_or = Connect(ep, deadline);
  if (!fd_or) return fd_or.error();
  Fd fd(*fd_or);
  size_t sent = 0;
  std::string reply;
  char buf[16384];
  bool eof = false;
  while (sent < request.size()) {
    if (!Wait(fd.get(), POLLOUT | POLLIN, deadline)) return Temporary("send: timed out");
    ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        // The peer may have answered early (a refusal): read it.
        ssize_t r = ::recv(fd.get(), buf, sizeof buf, 0);
        if (r > 0) reply.append(buf, static_cast<size_t>(r));
        if (r == 0) return Temporary("connection closed while sending");
        if (!reply.empty() && complete(reply, false)) return reply;
        continue;
      }
      // EPIPE/ECONNRESET: what it said before closing may still be read.
      break;
    }
    sent += static_cast<size_t>(n);
  }
  while (true) {
    if (complete(reply, eof)) return reply;
    if (eof) return Temporary("connection closed before a complete reply");
    if (reply.size() > kMaxReplyBytes) return Temporary("reply too large");
    if (!Wait(fd.get(), POLLIN, deadline)) return Temporary("timed out waiting for the reply");
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      if (!reply.empty()) {
        eof = true;
        continue;
      }
      return Temporary(std::string("recv: ") + std::strerror(errno));
    }
    if (n == 0) {
      eof = true;
      continue;
    }
    reply.append(buf, static_cast<size_t>(n));
  }
}

// One HTTP request; the complete response.
Result<http::ResponseResult> HttpExchange(const Endpoint& ep, std::string request,
                                          Deadline deadline) {
  http::ResponseResult parsed;
  auto complete = [&parsed](std::string_view bytes, bool eof) {
    parsed = http::ParseResponse(bytes, eof, kMaxResponseHead, kMaxReplyBytes);
    return parsed.verdict != http::Verdict::kNeedMore;
  };
  Result<std::string> raw = Exchange(ep, request, deadline, complete);
  if (!raw) return raw.error();
  if (parsed.verdict != http::Verdict::kComplete) {
    return Temporary("bad HTTP response: " +
                     (parsed.error.empty() ? std::string("too large") : parsed.error));
  }
  return parsed;
}

// The backoff of one scanner (kScannerBackoff): until when it is not asked.
class Backoff {
 public:
  bool Skip() const { return NowMs() < until_ms_.load(std::memory_order_relaxed); }
  void Failed() {
    until_ms_.store(NowMs() + std::chrono::milliseconds(kScannerBackoff).count(),
                    std::memory_order_relaxed);
  }
  void Worked() { until_ms_.store(0, std::memory_order_relaxed); }

 private:
  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  std::atomic<int64_t> until_ms_{0};
};

Backoff& RspamdBackoff() {
  static Backoff b;
  return b;
}
Backoff& ClamdBackoff() {
  static Backoff b;
  return b;
}

const char kNotAsked[] = "unscanned (not asked: failed in the last 10 s)";

}  // namespace

Result<Endpoint> ParseHttpUrl(std::string_view url) {
  if (url.substr(0, 7) != "http://") return Err(ErrorKind::kInvalid, "not an http:// URL");
  std::string_view hp = url.substr(7);
  while (!hp.empty() && hp.back() == '/') hp.remove_suffix(1);
  Result<Endpoint> ep = ParseSocketAddress(hp);
  if (!ep || !ep->unix_path.empty()) return Err(ErrorKind::kInvalid, "bad URL host:port");
  return ep;
}

Result<Endpoint> ParseSocketAddress(std::string_view address) {
  Endpoint ep;
  if (!address.empty() && address.front() == '/') {
    ep.unix_path = std::string(address);
    ep.host_port = "localhost";
    return ep;
  }
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == address.size()) {
    return Err(ErrorKind::kInvalid, "expected HOST:PORT");
  }
  std::string_view host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // [::1]
  }
  ep.host = std::string(host);
  ep.port = std::string(address.substr(colon + 1));
  ep.host_port = std::string(address);
  return ep;
}

Result<RspamdReply> RspamdCheck(const config::ScanConfig& cfg, const Envelope& env,
                                std::string_view content, Deadline deadline) {
  Result<Endpoint> ep = ParseHttpUrl(cfg.rspamd_url);
  if (!ep) return ep.error();
  std::string request = CheckRequestHead(ep->host_port, env, content.size());
  request += content;
  Result<http::ResponseResult> resp = HttpExchange(*ep, std::move(request), deadline);
  if (!resp) return resp.error();
  if (resp->head.status != 200) {
    return Temporary("rspamd answered HTTP " + std::to_string(resp->head.status));
  }
  Result<RspamdReply> reply = ParseCheckReply(resp->body);
  if (!reply) return Temporary(reply.error().message);
  return reply;
}

Result<ClamdReply> ClamdScan(const config::ScanConfig& cfg, std::string_view content,
                             Deadline deadline) {
  Result<Endpoint> ep = ParseSocketAddress(cfg.clamd);
  if (!ep) return ep.error();
  auto complete = [](std::string_view bytes, bool eof) {
    return eof || bytes.find('\0') != std::string_view::npos ||
           bytes.find('\n') != std::string_view::npos;
  };
  Result<std::string> raw = Exchange(*ep, InstreamRequest(content), deadline, complete);
  if (!raw) return raw.error();
  if (raw->empty()) return Temporary("clamd closed the connection without a reply");
  return ParseClamdReply(*raw);
}

Status RspamdLearn(const config::ScanConfig& cfg, bool spam, std::string_view content,
                   Deadline deadline) {
  Result<Endpoint> ep = ParseHttpUrl(cfg.rspamd_controller_url);
  if (!ep) return ep.error();
  std::string request = LearnRequestHead(ep->host_port, spam, cfg.rspamd_password, content.size());
  request += content;
  Result<http::ResponseResult> resp = HttpExchange(*ep, std::move(request), deadline);
  if (!resp) return resp.error();
  Result<bool> ok = ParseLearnReply(resp->head.status, resp->body);
  if (!ok) return ok.error();
  return Ok();
}

ScanOutcome ScanMessage(const config::ScanConfig& cfg, const Envelope& env,
                        std::string_view content) {
  ScanOutcome out;
  bool too_large = content.size() > cfg.max_scan_bytes;
  auto timeout = std::chrono::milliseconds(cfg.timeout_ms);
  if (!cfg.clamd.empty()) {
    if (too_large) {
      out.notes.virus = "unscanned (too large)";
    } else if (ClamdBackoff().Skip()) {
      out.notes.virus = kNotAsked;
    } else {
      Result<ClamdReply> r = ClamdScan(cfg, content, std::chrono::steady_clock::now() + timeout);
      if (!r) {
        ClamdBackoff().Failed();
        out.notes.virus = "unscanned (" + r.error().message + ")";
      } else if (r->kind == ClamdReply::Kind::kError) {
        out.notes.virus = "unscanned (clamd: " + r->text + ")";
      } else {
        ClamdBackoff().Worked();
        out.verdict.virus_scanned = true;
        out.verdict.virus_found = r->kind == ClamdReply::Kind::kFound;
        out.verdict.virus_name = r->name;
        out.notes.virus = out.verdict.virus_found ? "found" : "ok";
      }
    }
  }
  if (!cfg.rspamd_url.empty() && !out.verdict.virus_found) {
    if (too_large) {
      out.notes.spam = "unscanned (too large)";
    } else if (RspamdBackoff().Skip()) {
      out.notes.spam = kNotAsked;
    } else {
      Result<RspamdReply> r =
          RspamdCheck(cfg, env, content, std::chrono::steady_clock::now() + timeout);
      if (!r) {
        RspamdBackoff().Failed();
        out.notes.spam = "unscanned (" + r.error().message + ")";
      } else {
        RspamdBackoff().Worked();
        ApplySpam(cfg, *r, out.verdict);
        out.rspamd_seconds = r->time_real;
        out.notes.spam = "ok";
      }
    }
  }
  out.fields = ScanHeaderFields(out.verdict, out.notes);
  return out;
}

}  // namespace hato::scan
