// hato-jmap-load: JMAP load generator for the list-view benchmark (issue 12;
// bench/jmap_bench.sh runs it beside hato-imap-load --mix list against Hato
// and Dovecot).
//
// Setup (not timed): one request learns the account, the INBOX and its
// totalEmails (Mailbox/query role inbox + Mailbox/get). Then C clients each
// open one keep-alive HTTP/1.1 connection to the API endpoint and, all
// starting at the same moment, loop for T seconds (or N operations in total)
// one request at a time, no pipelining:
//   Email/query (inMailbox INBOX, sort receivedAt descending, limit L)
//   + Email/get of "#ids" (from, subject, receivedAt, preview)
// A request's latency runs from writing it to reading the whole response.
// A response counts as an error unless it is 200 with min(L, totalEmails)
// Emails that each carry a preview. The Python client this replaces
// (bench/jmap_run.py) measured itself at ~1,000 requests/s.
// Single-threaded: Boost.Asio with C++20 coroutines. As in src/ (g++ 12
// coroutine bugs), arguments of co_await calls are named variables.
// STANDARDS: RFC 9110/9112 (HTTP/1.1, Content-Length bodies), RFC 7617
// (Basic), RFC 8620 section 3 (API requests), RFC 8621 section 4.4 (Email/query).

#include <sys/resource.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "flags.h"

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace bench = hato::bench;

namespace {

// Response bytes read past this are refused (a list view is a few hundred kB at most).
constexpr size_t kMaxResponseBytes = 64 << 20;
constexpr size_t kMaxErrorSamples = 10;

struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string user;
  std::string password;
  int clients = 50;
  int seconds = 30;
  int ops = 0;  // > 0: stop after this many requests instead of after `seconds`
  int limit = 50;
  int timeout_s = 3600;
  bool json = false;
};

[[noreturn]] void Usage(const char* msg) {
  std::fprintf(stderr,
               "error: %s\nusage: hato-jmap-load --host H --port P --user ADDRESS --password W "
               "[--clients C] (--seconds T | --ops N) [--limit L] [--timeout SEC] [--json]\n",
               msg);
  std::exit(2);
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  bench::Flags flags;
  flags.ints = {{"--port", {&o.port, 1, 65535}},       {"--clients", {&o.clients, 1, 20000}},
                {"--seconds", {&o.seconds, 1, 86400}}, {"--ops", {&o.ops, 1, 1 << 30}},
                {"--limit", {&o.limit, 1, 1000}},      {"--timeout", {&o.timeout_s, 1, 86400}}};
  flags.strings = {{"--host", &o.host}, {"--user", &o.user}, {"--password", &o.password}};
  flags.switches = {{"--json", &o.json}};
  bench::ParseFlags(argc, argv, flags, Usage);
  if (o.user.empty() || o.password.empty()) Usage("--user and --password are required");
  return o;
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// The string value of the first `"key":"..."` after `from` ("" if none).
// Enough for the ids this tool reads (no escapes in JMAP ids).
std::string JsonStringAfter(std::string_view text, std::string_view key, size_t from = 0) {
  std::string pattern = "\"" + std::string(key) + "\":";
  size_t at = text.find(pattern, from);
  if (at == std::string_view::npos) return {};
  size_t q = text.find('"', at + pattern.size());
  if (q == std::string_view::npos) return {};
  size_t end = text.find('"', q + 1);
  if (end == std::string_view::npos) return {};
  return std::string(text.substr(q + 1, end - q - 1));
}

long Count(std::string_view text, std::string_view needle) {
  long n = 0;
  for (size_t at = text.find(needle); at != std::string_view::npos;
       at = text.find(needle, at + needle.size()))
    ++n;
  return n;
}

double Pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct HttpResponse {
  int status = 0;
  std::string body;
};

// One keep-alive HTTP/1.1 connection: POSTs and reads Content-Length responses.
class HttpConn {
 public:
  explicit HttpConn(asio::io_context& io) : sock_(io) {}

  awaitable<void> Connect(const tcp::endpoint& ep) {
    buf_.clear();
    if (sock_.is_open()) {
      boost::system::error_code ignored;
      sock_.close(ignored);
    }
    co_await sock_.async_connect(ep, use_awaitable);
    sock_.set_option(tcp::no_delay(true));
  }

  awaitable<HttpResponse> Post(const std::string& request) {
    co_await asio::async_write(sock_, asio::buffer(request), use_awaitable);
    size_t head_end = 0;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) co_await ReadMore();
    HttpResponse r;
    std::string_view head(buf_.data(), head_end);
    if (head.size() < 12 || head.substr(0, 5) != "HTTP/") throw std::runtime_error("not HTTP");
    r.status = std::atoi(std::string(head.substr(9, 3)).c_str());
    size_t length = 0;
    bool has_length = false;
    size_t line = head.find("\r\n");
    while (line != std::string_view::npos) {
      size_t next = head.find("\r\n", line + 2);
      std::string_view h = head.substr(
          line + 2, next == std::string_view::npos ? std::string_view::npos : next - line - 2);
      size_t colon = h.find(':');
      if (colon != std::string_view::npos) {
        std::string name(h.substr(0, colon));
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (name == "content-length") {
          length = std::strtoull(std::string(h.substr(colon + 1)).c_str(), nullptr, 10);
          has_length = true;
        } else if (name == "transfer-encoding") {
          throw std::runtime_error("chunked responses are not read by this tool");
        }
      }
      line = next;
    }
    if (!has_length) throw std::runtime_error("response without Content-Length");
    if (length > kMaxResponseBytes) throw std::runtime_error("response too large");
    const size_t body_at = head_end + 4;
    while (buf_.size() < body_at + length) co_await ReadMore();
    r.body = buf_.substr(body_at, length);
    buf_.erase(0, body_at + length);
    co_return r;
  }

 private:
  // Reads into the end of buf_ (after a failure the connection is made
  // again, which clears it).
  awaitable<void> ReadMore() {
    constexpr size_t kChunk = 65536;
    const size_t had = buf_.size();
    buf_.resize(had + kChunk);
    auto b = asio::buffer(buf_.data() + had, kChunk);
    size_t n = co_await sock_.async_read_some(b, use_awaitable);
    buf_.resize(had + n);
    if (buf_.size() > kMaxResponseBytes + 65536) throw std::runtime_error("response too large");
  }

  tcp::socket sock_;
  std::string buf_;
};

std::string PostRequest(const Options& o, const std::string& body) {
  return "POST /jmap/api/ HTTP/1.1\r\nHost: " + o.host + "\r\nAuthorization: Basic " +
         Base64(o.user + ":" + o.password) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

class LoadRun {
 public:
  LoadRun(asio::io_context& io, Options o) : io_(io), opts_(std::move(o)), start_timer_(io) {}

  awaitable<void> Main() {
    tcp::resolver resolver(io_);
    const std::string service = std::to_string(opts_.port);
    auto eps = co_await resolver.async_resolve(opts_.host, service, use_awaitable);
    ep_ = *eps.begin();
    // Setup: the account, the INBOX and how many Emails it has.
    HttpConn setup(io_);
    co_await setup.Connect(ep_);
    std::string probe = PostRequest(
        opts_,
        R"({"using":["urn:ietf:params:jmap:core","urn:ietf:params:jmap:mail"],"methodCalls":[)"
        R"(["Mailbox/query",{"filter":{"role":"inbox"}},"m"],)"
        R"(["Mailbox/get",{"#ids":{"resultOf":"m","name":"Mailbox/query","path":"/ids"},)"
        R"("properties":["totalEmails"]},"g"]]})");
    HttpResponse r = co_await setup.Post(probe);
    account_ = JsonStringAfter(r.body, "accountId");
    size_t ids_at = r.body.find("\"ids\":");
    inbox_ = ids_at == std::string::npos ? "" : JsonStringAfter(r.body, "ids", ids_at);
    size_t total_at = r.body.find("\"totalEmails\":");
    if (r.status != 200 || account_.empty() || inbox_.empty() || total_at == std::string::npos) {
      std::fprintf(stderr, "hato-jmap-load: setup failed (HTTP %d): %.300s\n", r.status,
                   r.body.c_str());
      failed_ = true;
      io_.stop();
      co_return;
    }
    messages_ = std::strtol(r.body.c_str() + total_at + 14, nullptr, 10);
    expected_ = std::min<long>(opts_.limit, messages_);
    request_ = PostRequest(
        opts_,
        R"({"using":["urn:ietf:params:jmap:core","urn:ietf:params:jmap:mail"],"methodCalls":[)"
        R"(["Email/query",{"accountId":")" +
            account_ + R"(","filter":{"inMailbox":")" + inbox_ +
            R"("},"sort":[{"property":"receivedAt","isAscending":false}],"limit":)" +
            std::to_string(opts_.limit) +
            R"(},"q"],)"
            R"(["Email/get",{"accountId":")" +
            account_ +
            R"(","#ids":{"resultOf":"q","name":"Email/query","path":"/ids"},)"
            R"("properties":["from","subject","receivedAt","preview"]},"g"]]})");
    // Every client connects first; the timed phase starts when all have.
    start_timer_.expires_at(Clock::time_point::max());
    live_ = opts_.clients;
    waiting_ = opts_.clients;
    for (int i = 0; i < opts_.clients; ++i) asio::co_spawn(io_, Client(), asio::detached);
    co_return;
  }

  void Report() {
    if (failed_) return;
    double elapsed = std::chrono::duration<double>(last_done_ - start_).count();
    long ops = static_cast<long>(latency_ms_.size());
    double rate = elapsed > 0 ? static_cast<double>(ops) / elapsed : 0;
    double cpu = CpuSeconds();
    double p50 = Pct(latency_ms_, 0.5), p99 = Pct(latency_ms_, 0.99);
    double max = latency_ms_.empty() ? 0 : latency_ms_.back();
    if (opts_.json) {
      std::printf(
          "{\"messages\": %ld, \"clients\": %d, \"limit\": %d, \"ops\": %ld, \"seconds\": %.3f, "
          "\"ops_per_s\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, "
          "\"errors\": %ld, \"io_errors\": %ld, \"client_cpu_s\": %.2f, \"error_samples\": [",
          messages_, opts_.clients, opts_.limit, ops, elapsed, rate, p50, p99, max, errors_,
          io_errors_, cpu);
      for (size_t i = 0; i < samples_.size(); ++i) {
        std::string s;
        for (char c : samples_[i]) {
          if (c == '"' || c == '\\') s += '\\';
          s += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
        }
        std::printf("%s\"%s\"", i ? ", " : "", s.c_str());
      }
      std::printf("]}\n");
    } else {
      std::printf("INBOX            %ld Emails; %d clients, limit %d\n", messages_, opts_.clients,
                  opts_.limit);
      std::printf("timed phase      %ld requests in %.3f s = %.1f requests/s\n", ops, elapsed,
                  rate);
      std::printf("latency          p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", p50, p99, max);
      std::printf("errors           %ld (I/O %ld)\n", errors_, io_errors_);
      std::printf("client CPU       %.2f s\n", cpu);
      for (const auto& s : samples_) std::printf("error: %s\n", s.c_str());
    }
  }

  bool ok() const { return !failed_ && errors_ == 0 && io_errors_ == 0 && !latency_ms_.empty(); }

 private:
  bool KeepGoing() {
    if (opts_.ops > 0) return issued_++ < opts_.ops;
    return Clock::now() < end_;
  }

  void Sample(std::string what) {
    if (samples_.size() < kMaxErrorSamples) samples_.push_back(std::move(what));
  }

  awaitable<void> Client() {
    HttpConn c(io_);
    bool connected = false;
    try {
      co_await c.Connect(ep_);
      connected = true;
    } catch (const std::exception& e) {
      ++io_errors_;
      Sample(std::string("connect: ") + bench::Describe(e));
    }
    if (--waiting_ == 0) {
      start_ = last_done_ = Clock::now();
      end_ = start_ + std::chrono::seconds(opts_.seconds);
      start_timer_.cancel();
    } else {
      boost::system::error_code ec;
      auto token = asio::redirect_error(use_awaitable, ec);
      co_await start_timer_.async_wait(token);
    }
    while (connected && KeepGoing()) {
      auto t0 = Clock::now();
      bool reconnect = false;
      try {
        HttpResponse r = co_await c.Post(request_);
        auto t1 = Clock::now();
        latency_ms_.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        last_done_ = t1;
        long got = Count(r.body, "\"preview\":");
        if (r.status != 200 || got != expected_) {
          ++errors_;
          Sample("HTTP " + std::to_string(r.status) + ", " + std::to_string(got) + " of " +
                 std::to_string(expected_) + " Emails: " + r.body.substr(0, 200));
        }
      } catch (const std::exception& e) {
        ++io_errors_;
        Sample(bench::Describe(e));
        reconnect = true;
      }
      if (reconnect) {
        try {  // a new connection; the failed request is not timed
          co_await c.Connect(ep_);
        } catch (const std::exception& again) {
          Sample(std::string("reconnect: ") + bench::Describe(again));
          connected = false;
        }
      }
    }
    if (--live_ == 0) io_.stop();
  }

  asio::io_context& io_;
  Options opts_;
  tcp::endpoint ep_;
  std::string account_, inbox_, request_;
  long messages_ = 0, expected_ = 0;
  asio::steady_timer start_timer_;
  int live_ = 0, waiting_ = 0;
  long issued_ = 0, errors_ = 0, io_errors_ = 0;
  bool failed_ = false;
  Clock::time_point start_, end_, last_done_;
  std::vector<double> latency_ms_;
  std::vector<std::string> samples_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseOptions(argc, argv);
  // One socket per client and a few spare.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
      nofile.rlim_cur < static_cast<rlim_t>(o.clients) + 64) {
    nofile.rlim_cur = std::min<rlim_t>(nofile.rlim_max, static_cast<rlim_t>(o.clients) + 64);
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  asio::io_context io;
  LoadRun run(io, o);
  bool setup_failed = false;
  asio::co_spawn(io, run.Main(), [&](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "hato-jmap-load: setup: %s\n", bench::Describe(ex).c_str());
    }
    setup_failed = true;
    io.stop();
  });
  asio::steady_timer deadline(io);
  deadline.expires_after(std::chrono::seconds(o.timeout_s));
  deadline.async_wait([&](boost::system::error_code ec) {
    if (ec) return;
    std::fprintf(stderr, "hato-jmap-load: timeout after %d s\n", o.timeout_s);
    io.stop();
  });
  io.run();
  if (setup_failed) return 1;
  run.Report();
  return run.ok() ? 0 : 1;
}
