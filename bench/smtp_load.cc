// hato-smtp-load: SMTP load generator for the Hato vs Postfix+Dovecot benchmark.
//
// Opens C connections (EHLO once each), then sends N messages in total over them, one
// MAIL/RCPT/DATA transaction at a time per connection, and records per message the time from
// writing the final "." to reading the reply. Any reply other than 250 counts as an error.
// With --pop3-port it then polls POP3 STAT every 20 ms until the mailbox holds all accepted
// messages (minus what it held before the run) to measure end-to-end throughput.
// Single-threaded: Boost.Asio with C++20 coroutines, so the client itself costs little CPU.
// As in src/ (g++ 12 coroutine bugs), arguments of co_await calls are named variables and
// awaited results are stored before they are tested.

#include <algorithm>
#include <boost/asio.hpp>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "flags.h"
#include "words.h"

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace bench = hato::bench;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 25;
  int connections = 10;
  int messages = 1000;
  int size = 4096;
  std::string rcpt;
  std::string from = "loadgen@hato-bench.test";
  int pop3_port = 0;
  std::string pop3_user;
  std::string pop3_pass;
  bool json = false;
  int timeout_s = 600;
  std::string auth_user;  // AUTH PLAIN after EHLO (submission) when set
  std::string auth_pass;
  int rcpt_domains = 0;  // > 0: message i goes to LOCAL@d<i % N>.DOMAIN of --rcpt
  int rcpt_users = 0;    // > 0: message i goes to LOCAL<i % N>@DOMAIN of --rcpt
};

std::string Base64(std::string_view in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) v |= static_cast<unsigned char>(in[i + 2]);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += i + 1 < in.size() ? k[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? k[v & 63] : '=';
  }
  return out;
}

[[noreturn]] void Usage(const char* msg) {
  std::fprintf(stderr,
               "error: %s\nusage: hato-smtp-load --host H --port P --connections C --messages N "
               "--size S --rcpt ADDR [--rcpt-domains N | --rcpt-users N] [--from ADDR] "
               "[--auth-user U --auth-pass W] "
               "[--pop3-port Q --pop3-user U --pop3-pass W] "
               "[--timeout SECONDS] [--json]\n",
               msg);
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  bench::Flags flags;
  flags.ints = {{"--port", {&o.port, 1, 65535}},
                {"--connections", {&o.connections, 1, 10000}},
                {"--messages", {&o.messages, 1, 1 << 30}},
                {"--size", {&o.size, 1, 100 << 20}},
                {"--pop3-port", {&o.pop3_port, 1, 65535}},
                {"--timeout", {&o.timeout_s, 1, 86400}},
                {"--rcpt-domains", {&o.rcpt_domains, 1, 1000000}},
                {"--rcpt-users", {&o.rcpt_users, 1, 1000000}}};
  flags.strings = {{"--host", &o.host},           {"--rcpt", &o.rcpt},
                   {"--from", &o.from},           {"--pop3-user", &o.pop3_user},
                   {"--pop3-pass", &o.pop3_pass}, {"--auth-user", &o.auth_user},
                   {"--auth-pass", &o.auth_pass}};
  flags.switches = {{"--json", &o.json}};
  bench::ParseFlags(argc, argv, flags, Usage);
  if (o.rcpt.empty()) {
    Usage("--rcpt is required");
  }
  if (o.pop3_port != 0 && o.pop3_user.empty()) {
    o.pop3_user = o.rcpt;
  }
  return o;
}

using bench::Describe;

// Builds message bodies: headers plus word-wrapped English-like text, `size` bytes in total
// (CRLF line endings, dot-stuffed, followed by the "." terminator which is not counted).
class MessageBuilder {
 public:
  MessageBuilder(const Options& o, uint64_t run_id) : opts_(o), run_id_(run_id) {
    char buf[64];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    date_ = buf;
  }

  void Build(int index, std::string& out) const {
    char token[48];
    std::snprintf(token, sizeof token, "hb%016" PRIx64 "-%08d", run_id_, index);
    out.clear();
    out += "From: Load Generator <" + opts_.from + ">\r\n";
    out += "To: <" + opts_.rcpt + ">\r\n";
    out += "Subject: Benchmark message " + std::to_string(index) + " token " + token + "\r\n";
    out += "Date: " + date_ + "\r\n";
    out += "Message-ID: <" + std::string(token) + "@hato-bench.test>\r\n";
    out += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n";
    out += "Content-Transfer-Encoding: 7bit\r\n\r\n";
    uint64_t seed = run_id_ ^ (static_cast<uint64_t>(index) * 0x9E3779B97F4A7C15ull);
    std::minstd_rand rng(static_cast<uint32_t>(seed ^ (seed >> 32)) | 1);
    const size_t target = static_cast<size_t>(opts_.size);
    bool sentence_start = true;
    std::string line;
    while (out.size() + 3 <= target) {  // room for at least one character and CRLF
      size_t limit = std::min<size_t>(72, target - out.size() - 2);
      line.clear();
      for (;;) {
        std::string word = bench::kWords[rng() % std::size(bench::kWords)];
        if (sentence_start) {
          word[0] = static_cast<char>(word[0] - 'a' + 'A');
        }
        sentence_start = rng() % 9 == 0;
        if (sentence_start) {
          word += '.';
        }
        if (!line.empty()) {
          word.insert(word.begin(), ' ');
        }
        if (line.size() + word.size() > limit) {
          if (line.empty()) {
            line = word.substr(0, limit);  // short final line
          }
          break;
        }
        line += word;
      }
      if (line[0] == '.') {
        out += '.';  // dot-stuffing (cannot happen with kWords, kept for safety)
      }
      out += line;
      out += "\r\n";
    }
    out += ".\r\n";
  }

 private:
  const Options& opts_;
  uint64_t run_id_;
  std::string date_;
};

// A one-shot signal any number of coroutines can wait for.
class Event {
 public:
  explicit Event(const asio::any_io_executor& ex) : timer_(ex, Clock::time_point::max()) {}
  void Set() {
    set_ = true;
    timer_.cancel();
  }
  awaitable<void> Wait() {
    boost::system::error_code ec;
    while (!set_) {
      co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }

 private:
  asio::steady_timer timer_;
  bool set_ = false;
};

// Line-oriented reply reader for SMTP (multi-line "250-...") and POP3 ("+OK"/"-ERR").
class Conn {
 public:
  Conn(tcp::socket& s, std::set<tcp::socket*>& registry) : sock_(s), registry_(registry) {
    registry_.insert(&sock_);
  }
  ~Conn() { registry_.erase(&sock_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  awaitable<void> Send(std::string_view data) {
    co_await asio::async_write(sock_, asio::buffer(data.data(), data.size()), use_awaitable);
  }
  awaitable<std::string> ReadLine() {
    size_t n = co_await asio::async_read_until(sock_, asio::dynamic_buffer(buf_, 65536), "\r\n",
                                               use_awaitable);
    std::string line = buf_.substr(0, n - 2);
    buf_.erase(0, n);
    co_return line;
  }
  // Returns the SMTP reply code (or 0 if malformed) after the last line of the reply.
  awaitable<int> SmtpReply() {
    for (;;) {
      std::string line = co_await ReadLine();
      if (line.size() >= 4 && line[3] == '-') {
        continue;
      }
      if (line.size() < 3) {
        co_return 0;
      }
      co_return std::atoi(line.substr(0, 3).c_str());
    }
  }
  awaitable<std::string> Pop3Ok() {
    std::string line = co_await ReadLine();
    if (line.rfind("+OK", 0) != 0) {
      throw std::runtime_error("POP3: " + line);
    }
    co_return line;
  }

 private:
  tcp::socket& sock_;
  std::set<tcp::socket*>& registry_;
  std::string buf_;
};

struct Stats {
  int next = 0;      // next message index to hand out
  int replied = 0;   // messages that got a final reply to DATA (250 or not)
  int accepted = 0;  // 250 replies to DATA
  int errors = 0;    // everything else: non-250 reply at any step, or a broken connection
  std::map<int, int> error_codes;  // reply code (0 = I/O error) -> count
  std::vector<double> latency_ms;
  Clock::time_point start, last_reply;
};

class LoadRun {
 public:
  LoadRun(asio::io_context& io, const Options& o)
      : io_(io),
        opts_(o),
        builder_(o, std::random_device{}() * 0x9E3779B97F4A7C15ull ^
                        static_cast<uint64_t>(std::time(nullptr))),
        ready_(io.get_executor()),
        done_(io.get_executor()),
        deadline_(io) {}

  awaitable<void> Main() {
    tcp::resolver resolver(io_);
    const std::string service = std::to_string(opts_.port);
    auto eps = co_await resolver.async_resolve(opts_.host, service, use_awaitable);
    smtp_ep_ = *eps.begin();
    pop3_ep_ = tcp::endpoint(smtp_ep_.address(), static_cast<uint16_t>(opts_.pop3_port));
    deadline_.expires_after(std::chrono::seconds(opts_.timeout_s));
    deadline_.async_wait([this](boost::system::error_code ec) {
      if (ec) {
        return;
      }
      timed_out_ = true;
      std::fprintf(stderr, "hato-smtp-load: timeout after %d s\n", opts_.timeout_s);
      for (tcp::socket* s : registry_) {
        s->close();
      }
      ready_.Set();
      done_.Set();
    });
    if (opts_.pop3_port != 0) {
      baseline_ = co_await Pop3Stat();
    }

    live_ = waiting_ = opts_.connections;
    for (int i = 0; i < opts_.connections; ++i) {
      asio::co_spawn(io_, Connection(), asio::detached);
    }
    co_await done_.Wait();
    stats_.errors += opts_.messages - stats_.next;  // never sent: every connection failed
    if (stats_.next < opts_.messages) {
      stats_.error_codes[0] += opts_.messages - stats_.next;
    }

    if (opts_.pop3_port != 0 && !timed_out_) {
      asio::steady_timer tick(io_);
      bool warned = false;
      while (!timed_out_) {
        try {
          ++polls_;
          long count = co_await Pop3Stat();
          if (count - baseline_ >= stats_.accepted) {
            e2e_ = Clock::now();
            break;
          }
        } catch (const std::exception& e) {  // retried until the deadline
          if (!warned && !timed_out_) {
            Warn("POP3: " + Describe(e));
          }
          warned = true;
        }
        tick.expires_after(std::chrono::milliseconds(20));
        co_await tick.async_wait(use_awaitable);
      }
    }
    deadline_.cancel();
  }

  void Abort() { deadline_.cancel(); }  // after Main() failed: let io_context.run() return

  int Report() {
    Stats& s = stats_;
    std::sort(s.latency_ms.begin(), s.latency_ms.end());
    auto pct = [&](double p) {
      if (s.latency_ms.empty()) {
        return 0.0;
      }
      size_t rank = static_cast<size_t>(p * static_cast<double>(s.latency_ms.size()) + 0.999999);
      return s.latency_ms[std::clamp<size_t>(rank, 1, s.latency_ms.size()) - 1];
    };
    double elapsed =
        s.replied > 0 ? std::chrono::duration<double>(s.last_reply - s.start).count() : 0.0;
    double rate = elapsed > 0 ? s.accepted / elapsed : 0.0;
    std::optional<double> e2e_s, e2e_rate;
    if (e2e_) {
      e2e_s = std::chrono::duration<double>(*e2e_ - s.start).count();
      e2e_rate = *e2e_s > 0 ? s.accepted / *e2e_s : 0.0;
    }
    double p50 = pct(0.50), p99 = pct(0.99), max = s.latency_ms.empty() ? 0 : s.latency_ms.back();
    std::string codes;
    for (auto [code, n] : s.error_codes) {
      if (opts_.json) {
        codes +=
            (codes.empty() ? "\"" : ", \"") + std::to_string(code) + "\": " + std::to_string(n);
      } else {
        codes += " " + std::to_string(code) + "x" + std::to_string(n);
      }
    }
    auto num = [](std::optional<double> v) {
      char b[32];
      if (!v) {
        return std::string("null");
      }
      std::snprintf(b, sizeof b, "%.3f", *v);
      return std::string(b);
    };
    if (opts_.json) {
      std::printf(
          "{\"messages\": %d, \"accepted\": %d, \"errors\": %d, \"error_codes\": {%s}, "
          "\"connections\": %d, \"size\": %d, \"elapsed_s\": %.3f, \"msgs_per_s\": %.1f, "
          "\"e2e_s\": %s, \"msgs_per_s_e2e\": %s, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
          "\"max_ms\": %.3f, \"pop3_polls\": %d, \"timed_out\": %s}\n",
          opts_.messages, s.accepted, s.errors, codes.c_str(), opts_.connections, opts_.size,
          elapsed, rate, num(e2e_s).c_str(), num(e2e_rate).c_str(), p50, p99, max, polls_,
          timed_out_ ? "true" : "false");
    } else {
      std::printf("messages            %d (%d connections, %d bytes)\n", opts_.messages,
                  opts_.connections, opts_.size);
      std::printf("errors              %d%s%s\n", s.errors,
                  codes.empty() ? "" : "  codes:", codes.c_str());
      std::printf("elapsed to last 250 %.3f s\n", elapsed);
      std::printf("msgs/s to 250       %.1f\n", rate);
      if (e2e_) {
        std::printf("msgs/s end-to-end   %.1f (%.3f s, %d POP3 polls)\n", *e2e_rate, *e2e_s,
                    polls_);
      } else {
        std::printf("msgs/s end-to-end   n/a\n");
      }
      std::printf("latency to 250 ms   p50 %.3f  p99 %.3f  max %.3f\n", p50, p99, max);
    }
    return (s.errors > 0 || timed_out_) ? 1 : 0;
  }

 private:
  awaitable<void> Connection() {
    tcp::socket sock(io_);
    Conn c(sock, registry_);
    bool waiting = true;
    int current = -1;  // message index in flight, if any
    try {
      co_await sock.async_connect(smtp_ep_, use_awaitable);
      sock.set_option(tcp::no_delay(true));
      int code = co_await c.SmtpReply();
      if (code != 220) {
        Throw("greeting", code);
      }
      co_await c.Send(kEhlo);
      code = co_await c.SmtpReply();
      if (code != 250) {
        Throw("EHLO", code);
      }
      if (!opts_.auth_user.empty()) {
        co_await c.Send(auth_cmd_);
        code = co_await c.SmtpReply();
        if (code != 235) {
          Throw("AUTH", code);
        }
      }
      // Start every connection at the same moment, after all are set up.
      waiting = false;
      if (--waiting_ == 0) {
        Start();
      }
      co_await ready_.Wait();

      std::string msg;
      while (!timed_out_ && stats_.next < opts_.messages) {
        current = stats_.next++;
        builder_.Build(current, msg);
        code = co_await Transaction(c, msg, current);
        current = -1;
        if (code != 250) {  // RSET in case the transaction is still open
          Error(code);
          co_await c.Send(kRset);
          co_await c.SmtpReply();
        }
      }
      co_await c.Send(kQuit);
      co_await c.SmtpReply();
    } catch (const std::exception& e) {
      if (current >= 0) {
        Error(0);
      }
      if (!timed_out_ && (current >= 0 || waiting)) {
        Warn(Describe(e));
      }
    }
    if (waiting && --waiting_ == 0) {
      Start();
    }
    if (--live_ == 0) {
      done_.Set();
    }
  }

  // One MAIL/RCPT/DATA transaction. Returns the first unexpected reply code, or the reply to
  // the message data (whose latency it records).
  awaitable<int> Transaction(Conn& c, const std::string& msg, int index) {
    co_await c.Send(mail_cmd_);
    int code = co_await c.SmtpReply();
    if (code != 250) {
      co_return code;
    }
    std::string rcpt = rcpt_cmd_;
    if (opts_.rcpt_domains > 0) {
      size_t at = opts_.rcpt.find('@');
      rcpt = "RCPT TO:<" + opts_.rcpt.substr(0, at + 1) + "d" +
             std::to_string(index % opts_.rcpt_domains) + "." + opts_.rcpt.substr(at + 1) + ">\r\n";
    } else if (opts_.rcpt_users > 0) {
      size_t at = opts_.rcpt.find('@');
      rcpt = "RCPT TO:<" + opts_.rcpt.substr(0, at) + std::to_string(index % opts_.rcpt_users) +
             opts_.rcpt.substr(at) + ">\r\n";
    }
    co_await c.Send(rcpt);
    code = co_await c.SmtpReply();
    if (code != 250 && code != 251) {
      co_return code;
    }
    co_await c.Send(kData);
    code = co_await c.SmtpReply();
    if (code != 354) {
      co_return code;
    }
    co_await c.Send(msg);
    auto t0 = Clock::now();
    code = co_await c.SmtpReply();
    stats_.last_reply = Clock::now();
    stats_.replied++;
    if (code == 250) {
      stats_.accepted++;
      stats_.latency_ms.push_back(
          std::chrono::duration<double, std::milli>(stats_.last_reply - t0).count());
    }
    co_return code;
  }

  awaitable<long> Pop3Stat() {
    tcp::socket sock(io_);
    Conn c(sock, registry_);
    co_await sock.async_connect(pop3_ep_, use_awaitable);
    co_await c.Pop3Ok();
    co_await c.Send(user_cmd_);
    co_await c.Pop3Ok();
    co_await c.Send(pass_cmd_);
    co_await c.Pop3Ok();
    co_await c.Send(kStat);
    std::string stat = co_await c.Pop3Ok();  // "+OK count octets"
    co_await c.Send(kQuit);
    co_await c.Pop3Ok();
    co_return std::strtol(stat.c_str() + 3, nullptr, 10);
  }

  void Start() {
    stats_.start = Clock::now();
    ready_.Set();
  }
  void Error(int code) {
    stats_.errors++;
    stats_.error_codes[code]++;
  }
  void Warn(const std::string& msg) {  // the first few problems only
    if (++warnings_ <= 5) {
      std::fprintf(stderr, "hato-smtp-load: %s\n", msg.c_str());
    }
    if (warnings_ == 5) {
      std::fprintf(stderr, "hato-smtp-load: (further errors not shown)\n");
    }
  }
  [[noreturn]] static void Throw(const char* step, int code) {
    throw std::runtime_error(std::string(step) + " failed with reply " + std::to_string(code));
  }

  static constexpr std::string_view kEhlo = "EHLO loadgen.hato-bench.test\r\n";
  static constexpr std::string_view kData = "DATA\r\n";
  static constexpr std::string_view kRset = "RSET\r\n";
  static constexpr std::string_view kStat = "STAT\r\n";
  static constexpr std::string_view kQuit = "QUIT\r\n";

  asio::io_context& io_;
  const Options& opts_;
  const std::string mail_cmd_ = "MAIL FROM:<" + opts_.from + ">\r\n";
  const std::string rcpt_cmd_ = "RCPT TO:<" + opts_.rcpt + ">\r\n";
  const std::string auth_cmd_ =
      "AUTH PLAIN " + Base64(std::string(1, '\0') + opts_.auth_user + '\0' + opts_.auth_pass) +
      "\r\n";
  const std::string user_cmd_ = "USER " + opts_.pop3_user + "\r\n";
  const std::string pass_cmd_ = "PASS " + opts_.pop3_pass + "\r\n";
  MessageBuilder builder_;
  Event ready_, done_;
  asio::steady_timer deadline_;
  std::set<tcp::socket*> registry_;  // open sockets, closed on timeout
  tcp::endpoint smtp_ep_, pop3_ep_;
  Stats stats_;
  int live_ = 0, waiting_ = 0, warnings_ = 0, polls_ = 0;
  long baseline_ = 0;
  bool timed_out_ = false;
  std::optional<Clock::time_point> e2e_;
};

}  // namespace

int main(int argc, char** argv) {
  Options opts = ParseArgs(argc, argv);
  asio::io_context io(1);
  LoadRun run(io, opts);
  bool failed = false;
  asio::co_spawn(io, run.Main(), [&](const std::exception_ptr& e) {
    if (!e) {
      return;
    }
    failed = true;
    run.Abort();
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "hato-smtp-load: fatal: %s\n", Describe(ex).c_str());
    }
  });
  io.run();
  if (failed) {
    return 2;
  }
  return run.Report();
}
