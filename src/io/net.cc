#include "io/net.h"

#include <poll.h>
#include <zlib.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <shared_mutex>
#include <variant>

namespace hato::io {

std::shared_mutex& TlsContextLock() {
  static std::shared_mutex mu;
  return mu;
}

using namespace asio::experimental::awaitable_operators;  // NOLINT: operator|| for timeouts

// g++ 12 coroutine bugs: temporaries inside a co_await expression may be
// relocated without their move constructors, and an awaited value tested in
// place can corrupt the frame. So in every coroutine here and in the protocol
// sessions: build awaitables and their arguments as named variables, and
// store an awaited result in a variable before testing it.

namespace {
constexpr size_t kReadChunk = 16384;
}

Connection::Connection(tcp::socket socket, std::shared_ptr<asio::ssl::context> tls)
    : socket_(std::move(socket)), tls_ctx_(std::move(tls)) {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (!ec) {
    auto addr = ep.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
      addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    }
    peer_ip_ = addr.to_string();
    loopback_ = addr.is_loopback();
  }
  socket_.set_option(tcp::no_delay(true), ec);
  socket_.non_blocking(true, ec);  // ReadSomeWithTimeout reads only when readable
}

// Raw DEFLATE both ways (RFC 4978 section 3: no zlib header, windowBits
// -15), flushed with Z_SYNC_FLUSH after each write so the peer can read it.
struct Connection::Zlib {
  z_stream in{};
  z_stream out{};
  bool in_ok = false, out_ok = false;
  std::string pending;  // compressed input not inflated yet (past kMaxInflatePerRead)
  Zlib() {
    in_ok = inflateInit2(&in, -15) == Z_OK;
    out_ok =
        deflateInit2(&out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~Zlib() {
    if (in_ok) inflateEnd(&in);
    if (out_ok) deflateEnd(&out);
  }
  Zlib(const Zlib&) = delete;
  Zlib& operator=(const Zlib&) = delete;
};

Connection::~Connection() = default;

bool Connection::StartCompression() {
  if (zlib_) return false;
  auto z = std::make_unique<Zlib>();
  if (!z->in_ok || !z->out_ok) return false;
  zlib_ = std::move(z);
  return true;
}

bool Connection::InflateFrom(size_t from) {
  Zlib& z = *zlib_;
  z.pending.append(buffer_, from, std::string::npos);
  buffer_.resize(from);
  char chunk[16384];
  size_t used = 0, produced = 0;
  while (used < z.pending.size() && produced < kMaxInflatePerRead) {
    z.in.next_in = reinterpret_cast<Bytef*>(z.pending.data() + used);
    z.in.avail_in = static_cast<uInt>(z.pending.size() - used);
    z.in.next_out = reinterpret_cast<Bytef*>(chunk);
    z.in.avail_out = sizeof(chunk);
    int rc = inflate(&z.in, Z_SYNC_FLUSH);
    size_t got = sizeof(chunk) - z.in.avail_out;
    used = z.pending.size() - z.in.avail_in;
    buffer_.append(chunk, got);
    produced += got;
    if (rc == Z_BUF_ERROR && got == 0) break;           // needs more input
    if (rc != Z_OK && rc != Z_BUF_ERROR) return false;  // corrupt, or an end of stream
  }
  z.pending.erase(0, used);
  return true;
}

void Connection::Close() {
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

void Connection::CancelReads() {
  boost::system::error_code ec;
  socket_.cancel(ec);
}

bool Connection::lean_wait() const { return !tls_ && !(zlib_ && !zlib_->pending.empty()); }

awaitable<Connection::IdleWake> Connection::WaitIdle(asio::steady_timer& wake) {
  auto ready = socket_.async_wait(tcp::socket::wait_read, asio::deferred);
  auto expiry = wake.async_wait(asio::deferred);
  auto group = asio::experimental::make_parallel_group(std::move(ready), std::move(expiry));
  auto wait = group.async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
  // (completion order, the readiness wait's error, the timer's error)
  auto r = co_await std::move(wait);
  if (std::get<0>(r)[0] == 0) co_return IdleWake::kInput;
  bool cancelled = std::get<2>(r) == asio::error::operation_aborted;
  co_return cancelled ? IdleWake::kWoken : IdleWake::kTimeout;
}

awaitable<std::size_t> Connection::ReadSomeWithTimeout(std::chrono::seconds timeout,
                                                       ReadStatus& status) {
  // An idle connection must cost little memory (thousands sit in IMAP IDLE),
  // so no read buffer is held while waiting: plaintext waits for readability
  // and then reads into a per-thread scratch buffer. TLS keeps a buffer of its
  // own (OpenSSL holds per-connection buffers anyway).
  asio::steady_timer timer(socket_.get_executor());
  timer.expires_after(timeout);
  boost::system::error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  // The timer's cancellation must not throw: an exception per read is costly.
  boost::system::error_code timer_ec;
  auto timer_token = asio::redirect_error(asio::use_awaitable, timer_ec);
  auto expiry = timer.async_wait(timer_token);
  if (zlib_ && !zlib_->pending.empty()) {  // input held back by kMaxInflatePerRead
    size_t before = buffer_.size();
    if (!InflateFrom(before)) {
      status = ReadStatus::kError;
      co_return 0;
    }
    status = ReadStatus::kOk;
    co_return buffer_.size() - before;
  }
  std::variant<std::size_t, std::monostate> r;
  if (tls_) {
    if (!tls_chunk_) tls_chunk_ = std::make_unique<char[]>(kReadChunk);
    auto buffer = asio::buffer(tls_chunk_.get(), kReadChunk);
    auto read = tls_->async_read_some(buffer, token);
    r = co_await (std::move(read) || std::move(expiry));
  } else {
    auto ready = socket_.async_wait(tcp::socket::wait_read, token);
    std::variant<std::monostate, std::monostate> w =
        co_await (std::move(ready) || std::move(expiry));
    if (w.index() == 1) {
      r = std::monostate{};
    } else if (ec) {
      r = std::size_t{0};
    } else {
      thread_local char scratch[kReadChunk];
      std::size_t got = socket_.read_some(asio::buffer(scratch), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec.clear();  // spurious wake-up: report no data, the caller reads again
        got = 0;
      }
      if (!ec && got > 0) buffer_.append(scratch, got);
      r = got;
    }
  }
  if (r.index() == 1) {
    status = ReadStatus::kTimeout;
    co_return 0;
  }
  std::size_t n = std::get<0>(r);
  if (ec) {
    status = (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
                 ? ReadStatus::kEof
                 : ReadStatus::kError;
    co_return 0;
  }
  if (tls_) buffer_.append(tls_chunk_.get(), n);
  if (zlib_ && !InflateFrom(buffer_.size() - n)) {
    status = ReadStatus::kError;
    co_return 0;
  }
  status = ReadStatus::kOk;
  co_return n;
}

awaitable<ReadStatus> Connection::ReadMore(std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    ReadStatus status = ReadStatus::kOk;
    std::size_t n = co_await ReadSomeWithTimeout(timeout, status);
    if (status != ReadStatus::kOk || n > 0) co_return status;
    // A spurious readiness: wait again for what is left of the timeout.
    timeout = std::chrono::duration_cast<std::chrono::seconds>(deadline -
                                                               std::chrono::steady_clock::now());
    if (timeout.count() <= 0) co_return ReadStatus::kTimeout;
  }
}

awaitable<LineResult> Connection::ReadLine(size_t max, std::chrono::seconds timeout) {
  bool discarding = false;
  size_t scanned = 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    size_t lf = buffer_.find('\n', scanned);
    if (lf != std::string::npos) {
      if (discarding) {
        buffer_.erase(0, lf + 1);
        co_return LineResult{ReadStatus::kTooLong, {}};
      }
      size_t end = (lf > 0 && buffer_[lf - 1] == '\r') ? lf - 1 : lf;
      if (end > max) {
        buffer_.erase(0, lf + 1);
        co_return LineResult{ReadStatus::kTooLong, {}};
      }
      LineResult out{ReadStatus::kOk, buffer_.substr(0, end)};
      buffer_.erase(0, lf + 1);
      co_return out;
    }
    if (buffer_.size() > max + 1) {  // +1: a CR may still be followed by LF
      discarding = true;
      buffer_.clear();
    }
    scanned = buffer_.size();
    auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline -
                                                                 std::chrono::steady_clock::now());
    if (left.count() <= 0) co_return LineResult{ReadStatus::kTimeout, {}};
    ReadStatus st = ReadStatus::kOk;
    co_await ReadSomeWithTimeout(left, st);
    if (st != ReadStatus::kOk) co_return LineResult{st, {}};
  }
}

awaitable<bool> Connection::Write(std::string_view data) {
  std::string deflated;
  if (zlib_) {
    z_stream& z = zlib_->out;
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    char chunk[16384];
    do {
      z.next_out = reinterpret_cast<Bytef*>(chunk);
      z.avail_out = sizeof(chunk);
      if (deflate(&z, Z_SYNC_FLUSH) == Z_STREAM_ERROR) co_return false;
      deflated.append(chunk, sizeof(chunk) - z.avail_out);
    } while (z.avail_out == 0 || z.avail_in > 0);
    data = deflated;
  }
  boost::system::error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  auto buffer = asio::buffer(data);
  asio::steady_timer timer(socket_.get_executor());
  timer.expires_after(write_timeout_);
  boost::system::error_code timer_ec;
  auto timer_token = asio::redirect_error(asio::use_awaitable, timer_ec);
  auto expiry = timer.async_wait(timer_token);
  std::variant<std::size_t, std::monostate> r;
  if (tls_) {
    auto write = asio::async_write(*tls_, buffer, token);
    r = co_await (std::move(write) || std::move(expiry));
  } else {
    auto write = asio::async_write(socket_, buffer, token);
    r = co_await (std::move(write) || std::move(expiry));
  }
  co_return r.index() == 0 && !ec;
}

awaitable<bool> Connection::Flush() {
  if (out_.empty()) co_return true;
  std::string data;
  data.swap(out_);
  bool ok = co_await Write(data);
  co_return ok;
}

bool Connection::PeerGone() const {
  pollfd p{};
  p.fd = const_cast<tcp::socket&>(socket_).native_handle();
  p.events = POLLRDHUP;
  if (p.fd < 0) return true;
  if (::poll(&p, 1, 0) < 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

awaitable<bool> Connection::StartTls(std::chrono::seconds timeout) {
  bool ok = co_await Handshake(false, std::string(), timeout);
  co_return ok;
}

awaitable<bool> Connection::StartTlsClient(std::string sni, std::chrono::seconds timeout,
                                           bool verify) {
  bool ok = co_await Handshake(true, std::move(sni), timeout, verify);
  co_return ok;
}

awaitable<bool> Connection::Handshake(bool client, std::string sni, std::chrono::seconds timeout,
                                      bool verify) {
  if (!tls_ctx_ || tls_) co_return false;
  buffer_.clear();
  {
    // SSL_new reads the context, which a SIGHUP may be changing on another
    // thread (TlsContextLock).
    std::shared_lock lock(TlsContextLock());
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, *tls_ctx_);
  }
  if (client && !sni.empty()) SSL_set_tlsext_host_name(tls_->native_handle(), sni.c_str());
  if (client && verify) {
    if (sni.empty() || SSL_set1_host(tls_->native_handle(), sni.c_str()) != 1) co_return false;
    tls_->set_verify_mode(asio::ssl::verify_peer);
  }
  asio::steady_timer timer(socket_.get_executor());
  timer.expires_after(timeout);
  boost::system::error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  auto type = client ? asio::ssl::stream_base::client : asio::ssl::stream_base::server;
  auto handshake = tls_->async_handshake(type, token);
  boost::system::error_code timer_ec;
  auto timer_token = asio::redirect_error(asio::use_awaitable, timer_ec);
  auto expiry = timer.async_wait(timer_token);
  std::variant<std::monostate, std::monostate> r =
      co_await (std::move(handshake) || std::move(expiry));
  co_return r.index() == 0 && !ec;
}

awaitable<std::optional<tcp::socket>> Connect(std::string ip, int port,
                                              std::chrono::seconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(ip, ec);
  if (ec) co_return std::nullopt;
  tcp::endpoint ep(addr, static_cast<unsigned short>(port));
  tcp::socket socket(ex);
  asio::steady_timer timer(ex);
  timer.expires_after(timeout);
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  boost::system::error_code timer_ec;
  auto timer_token = asio::redirect_error(asio::use_awaitable, timer_ec);
  auto connect = socket.async_connect(ep, token);
  auto expiry = timer.async_wait(timer_token);
  std::variant<std::monostate, std::monostate> r =
      co_await (std::move(connect) || std::move(expiry));
  if (r.index() != 0 || ec) co_return std::nullopt;
  co_return std::optional<tcp::socket>(std::move(socket));
}

}  // namespace hato::io
