// A client connection: plaintext or TLS, with bounded line reads and timeouts.
// Used by every protocol session; one coroutine uses a Connection at a time.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "io/asio.h"

namespace hato::io {

// How long one Write may wait for a client that does not read.
inline constexpr std::chrono::seconds kDefaultWriteTimeout{300};

// Guards the server TLS contexts against a change while connections are
// being set up on other event loops: taken shared around SSL_new (each
// connection then uses its own copy of the certificate), exclusively by the
// SIGHUP certificate reload (app/tls.h).
std::shared_mutex& TlsContextLock();

enum class ReadStatus { kOk, kEof, kTimeout, kTooLong, kError };

struct LineResult {
  ReadStatus status = ReadStatus::kOk;
  std::string line;  // without the line ending (CRLF, or a bare LF)
};

class Connection {
 public:
  Connection(tcp::socket socket, std::shared_ptr<asio::ssl::context> tls);
  ~Connection();

  // Reads one line of at most `max` bytes (line ending excluded). A longer
  // line is read to its end and discarded: kTooLong. The timeout covers the
  // whole line.
  awaitable<LineResult> ReadLine(size_t max, std::chrono::seconds timeout);
  // Reads more bytes into buffer() (at least one, unless EOF/timeout/error).
  awaitable<ReadStatus> ReadMore(std::chrono::seconds timeout);
  // Unconsumed input; protocol readers consume from its front.
  std::string& buffer() { return buffer_; }

  // Writes all of `data` within the write timeout, else fails (the session
  // then ends): a client that stops reading cannot hold a session, or the
  // output it has not taken, for ever.
  awaitable<bool> Write(std::string_view data);
  // Defaults to kDefaultWriteTimeout; sessions set their protocol's idle timeout.
  void set_write_timeout(std::chrono::seconds t) { write_timeout_ = t; }

  // Replies are queued and written by Flush(): a session flushes only before it
  // waits for input, so a batch of pipelined commands gets one write
  // (RFC 2920 for SMTP, RFC 2449 section 6.6 for POP3, RFC 3501 for IMAP).
  void QueueLine(std::string_view line) {
    out_.append(line);
    out_.append("\r\n");
  }
  std::string& output() { return out_; }
  awaitable<bool> Flush();

  // Server side TLS handshake. Discards any buffered plaintext first: input
  // pipelined behind STARTTLS/STLS must not be executed after the handshake
  // (the STARTTLS command-injection attack, CVE-2011-0411).
  awaitable<bool> StartTls(std::chrono::seconds timeout);
  // Client side TLS handshake for outbound delivery, with `sni` as the server
  // name. Without `verify` anything goes (opportunistic TLS, RFC 7435); with
  // it the certificate chain must verify against the context's trusted CAs
  // and name `sni` (RFC 6125 through OpenSSL's SSL_set1_host).
  awaitable<bool> StartTlsClient(std::string sni, std::chrono::seconds timeout,
                                 bool verify = false);
  // RFC 4978 (IMAP COMPRESS=DEFLATE): from now on input is inflated and
  // output deflated (raw DEFLATE, RFC 1951, inside TLS when there is TLS).
  // Inflated input is bounded per read (kMaxInflatePerRead), so a small
  // compressed burst cannot balloon the buffer. False if zlib fails to start.
  bool StartCompression();
  bool compressed() const { return zlib_ != nullptr; }
  static constexpr size_t kMaxInflatePerRead = 1u << 20;

  bool tls_available() const { return tls_ctx_ != nullptr; }
  bool is_tls() const { return tls_ != nullptr; }

  // Releases the memory of empty input and output buffers (a large FETCH
  // leaves megabytes of capacity behind); called before a long wait (IDLE).
  void Trim() {
    if (buffer_.empty()) std::string().swap(buffer_);
    if (out_.empty()) std::string().swap(out_);
  }

  // Whether the client has shut down its side or the connection failed,
  // without reading (Linux POLLRDHUP). For work that runs on another thread
  // while the session waits for it (a long SEARCH): it stops when the client
  // goes away. Safe from any thread.
  bool PeerGone() const;

  // Cancels a pending read (it completes with kError); used to stop idle sessions.
  void CancelReads();

  // What ended a WaitIdle.
  enum class IdleWake { kInput, kWoken, kTimeout };
  // Waits until the client sends something (or the connection fails, or
  // CancelReads), `wake` is cancelled (kWoken) or `wake` expires (kTimeout),
  // whichever comes first; then ReadMore reads what came. Holds no read
  // buffer and no coroutine per operand: one readiness wait and one timer
  // wait in a parallel group, a few hundred bytes, where `ReadMore(t) ||
  // timer` costs about 6 kB of coroutine frames per waiting session (issue
  // 17: memory per IMAP IDLE connection). Only when lean_wait(): a TLS
  // stream or held-back inflated input may have data a readiness wait would
  // not see.
  awaitable<IdleWake> WaitIdle(asio::steady_timer& wake);
  bool lean_wait() const;

  asio::any_io_executor executor() { return socket_.get_executor(); }
  const std::string& peer_ip() const { return peer_ip_; }
  bool peer_is_loopback() const { return loopback_; }
  void Close();

 private:
  awaitable<bool> Handshake(bool client, std::string sni, std::chrono::seconds timeout,
                            bool verify = false);
  awaitable<std::size_t> ReadSomeWithTimeout(std::chrono::seconds timeout, ReadStatus& status);

  struct Zlib;  // net.cc
  // Inflates what was appended to buffer_ from `from` on; false on a stream error.
  bool InflateFrom(size_t from);

  tcp::socket socket_;
  std::unique_ptr<Zlib> zlib_;
  std::shared_ptr<asio::ssl::context> tls_ctx_;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
  std::unique_ptr<char[]> tls_chunk_;  // read buffer, TLS only
  std::string buffer_;
  std::string out_;  // queued output
  std::chrono::seconds write_timeout_ = kDefaultWriteTimeout;
  std::string peer_ip_;
  bool loopback_ = false;
};

// Connects to ip:port within `timeout`; nullopt when it failed (outbound
// SMTP, MTA-STS policy fetches).
awaitable<std::optional<tcp::socket>> Connect(std::string ip, int port,
                                              std::chrono::seconds timeout);

}  // namespace hato::io
