// hato-idle-rss: opens many authenticated IMAP IDLE connections and holds them, for the memory
// test of bench/imap_run.sh (server RSS per idle connection).
//
// Opens C connections, at most K of them logging in at a time; each reads the greeting, sends
// LOGIN, SELECT INBOX and IDLE, and waits for the "+" continuation. When every connection is
// idling (or has failed) it writes --ready-file, so that the caller can read the server's
// memory, and holds the connections until SIGUSR1/SIGTERM/SIGINT or --hold seconds. It then
// ends IDLE (DONE), LOGOUTs on every connection, counts the ones whose session was still alive,
// and prints a summary (JSON with --json). Raises its own open-file limit to the hard limit.
// Single-threaded: Boost.Asio with C++20 coroutines; as in src/ (g++ 12 coroutine bugs),
// arguments of co_await calls are named variables and awaited results are stored before
// they are tested.
// STANDARDS: RFC 3501 (IMAP4rev1), RFC 2177 (IDLE).

#include <sys/resource.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
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

struct Options {
  std::string host = "127.0.0.1";
  int port = 143;
  int users = 1;
  std::string user_format = "bench%d@bench.test";
  std::string password;
  int connections = 1000;
  int concurrency = 50;
  int hold_s = 600;
  int setup_timeout_s = 1800;
  std::string ready_file;
  bool json = false;
};

[[noreturn]] void Usage(const char* msg) {
  std::fprintf(stderr,
               "error: %s\nusage: hato-idle-rss --host H --port P --users N "
               "[--user-format 'bench%%d@bench.test'] --password W --connections C "
               "[--concurrency K] [--ready-file F] [--hold SEC] [--setup-timeout SEC] [--json]\n",
               msg);
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  bench::Flags flags;
  flags.ints = {{"--port", {&o.port, 1, 65535}},
                {"--users", {&o.users, 1, 1000000}},
                {"--connections", {&o.connections, 1, 1000000}},
                {"--concurrency", {&o.concurrency, 1, 1000000}},
                {"--hold", {&o.hold_s, 1, 1000000}},
                {"--setup-timeout", {&o.setup_timeout_s, 1, 1000000}}};
  flags.strings = {{"--host", &o.host},
                   {"--user-format", &o.user_format},
                   {"--password", &o.password},
                   {"--ready-file", &o.ready_file}};
  flags.switches = {{"--json", &o.json}};
  bench::ParseFlags(argc, argv, flags, Usage);
  if (o.password.empty()) {
    Usage("--password is required");
  }
  if (o.user_format.find("%d") == std::string::npos) {
    Usage("--user-format must contain %d");
  }
  return o;
}

using bench::Describe;

// A signal any number of coroutines can wait for; Notify() wakes the current waiters.
class Event {
 public:
  explicit Event(const asio::any_io_executor& ex) : timer_(ex, Clock::time_point::max()) {}
  void Set() {
    set_ = true;
    timer_.cancel();
  }
  void Notify() { timer_.cancel(); }
  bool is_set() const { return set_; }
  awaitable<void> WaitOnce() {  // until the next Notify() or Set()
    boost::system::error_code ec;
    auto token = asio::redirect_error(use_awaitable, ec);
    co_await timer_.async_wait(std::move(token));
  }
  awaitable<void> Wait() {
    while (!set_) {
      co_await WaitOnce();
    }
  }

 private:
  asio::steady_timer timer_;
  bool set_ = false;
};

// Line reader; these sessions never receive literals that matter (SELECT, IDLE, LOGOUT).
class Lines {
 public:
  explicit Lines(tcp::socket& s) : sock_(s) {}
  awaitable<std::string> Read() {
    auto dyn = asio::dynamic_buffer(buf_, 1 << 20);
    size_t n = co_await asio::async_read_until(sock_, dyn, "\r\n", use_awaitable);
    std::string line = buf_.substr(0, n - 2);
    buf_.erase(0, n);
    co_return line;
  }
  awaitable<void> Send(std::string_view s) {
    auto b = asio::buffer(s.data(), s.size());
    co_await asio::async_write(sock_, b, use_awaitable);
  }
  // Reads to the line tagged `tag`; returns it without the tag.
  awaitable<std::string> Tagged(const std::string& tag) {
    for (;;) {
      std::string line = co_await Read();
      if (line.size() > tag.size() && line.compare(0, tag.size(), tag) == 0 &&
          line[tag.size()] == ' ') {
        co_return line.substr(tag.size() + 1);
      }
    }
  }

 private:
  tcp::socket& sock_;
  std::string buf_;
};

class IdleRun {
 public:
  IdleRun(asio::io_context& io, const Options& o)
      : io_(io),
        opts_(o),
        slot_(io.get_executor()),
        all_set_up_(io.get_executor()),
        release_(io.get_executor()),
        all_closed_(io.get_executor()),
        signals_(io),
        hold_(io) {}

  awaitable<void> Main() {
    tcp::resolver resolver(io_);
    const std::string service = std::to_string(opts_.port);
    auto eps = co_await resolver.async_resolve(opts_.host, service, use_awaitable);
    ep_ = *eps.begin();
    signals_.add(SIGUSR1);
    signals_.add(SIGTERM);
    signals_.add(SIGINT);
    signals_.async_wait([this](boost::system::error_code ec, int) {
      if (!ec) {
        Release();
      }
    });
    hold_.expires_after(std::chrono::seconds(opts_.setup_timeout_s));
    hold_.async_wait([this](boost::system::error_code ec) {
      if (!ec) {
        std::fprintf(stderr, "hato-idle-rss: setup timeout after %d s\n", opts_.setup_timeout_s);
        setup_timed_out_ = true;
        Release();
      }
    });

    auto t0 = Clock::now();
    live_ = opts_.connections;
    for (int i = 0; i < opts_.connections && !release_.is_set(); ++i) {
      while (in_setup_ >= opts_.concurrency && !release_.is_set()) {
        co_await slot_.WaitOnce();
      }
      ++in_setup_;
      ++launched_;
      asio::co_spawn(io_, Connection(i), asio::detached);
    }
    while (set_up_ < launched_ && !release_.is_set()) {
      co_await all_set_up_.WaitOnce();
    }
    setup_s_ = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!release_.is_set()) {
      hold_.cancel();
      hold_.expires_after(std::chrono::seconds(opts_.hold_s));
      hold_.async_wait([this](boost::system::error_code ec) {
        if (!ec) {
          Release();
        }
      });
    }
    std::fprintf(stderr, "hato-idle-rss: %d of %d connections idling after %.1f s\n", idling_,
                 opts_.connections, setup_s_);
    if (!opts_.ready_file.empty()) {
      std::ofstream(opts_.ready_file) << idling_ << "\n";
    }
    co_await release_.Wait();
    live_ -= opts_.connections - launched_;  // never launched (released during setup)
    while (live_ > 0) {
      co_await all_closed_.WaitOnce();
    }
    hold_.cancel();
    signals_.cancel();
  }

  int Report() {
    std::sort(login_ms_.begin(), login_ms_.end());
    auto pct = [&](double p) {
      if (login_ms_.empty()) {
        return 0.0;
      }
      size_t rank = static_cast<size_t>(p * static_cast<double>(login_ms_.size()) + 0.999999);
      return login_ms_[std::clamp<size_t>(rank, 1, login_ms_.size()) - 1];
    };
    if (opts_.json) {
      std::printf(
          "{\"connections\": %d, \"idling\": %d, \"setup_failed\": %d, \"setup_s\": %.3f, "
          "\"setup_p50_ms\": %.3f, \"setup_p99_ms\": %.3f, \"done_ok\": %d, "
          "\"done_failed\": %d, \"setup_timed_out\": %s, \"first_error\": \"%s\"}\n",
          opts_.connections, idling_, setup_failed_, setup_s_, pct(0.5), pct(0.99), done_ok_,
          done_failed_, setup_timed_out_ ? "true" : "false", first_error_.c_str());
    } else {
      std::printf(
          "connections %d: %d idling, %d failed to set up (%.1f s; p50 %.1f ms, p99 %.1f "
          "ms); after the hold %d answered DONE+LOGOUT, %d did not%s%s\n",
          opts_.connections, idling_, setup_failed_, setup_s_, pct(0.5), pct(0.99), done_ok_,
          done_failed_, first_error_.empty() ? "" : "; first error: ", first_error_.c_str());
    }
    return (idling_ == opts_.connections && done_failed_ == 0) ? 0 : 1;
  }

 private:
  void Release() { release_.Set(); }

  awaitable<void> Connection(int i) {
    tcp::socket sock(io_);
    Lines c(sock);
    bool idling = false;
    int user = i % opts_.users + 1;
    size_t pct = opts_.user_format.find("%d");
    std::string name =
        opts_.user_format.substr(0, pct) + std::to_string(user) + opts_.user_format.substr(pct + 2);
    try {
      auto t0 = Clock::now();
      co_await sock.async_connect(ep_, use_awaitable);
      std::string greeting = co_await c.Read();
      if (greeting.rfind("* OK", 0) != 0) {
        throw std::runtime_error("greeting: " + greeting);
      }
      std::string login = "a1 LOGIN \"" + name + "\" \"" + opts_.password + "\"\r\n";
      co_await c.Send(login);
      std::string tag = "a1";
      std::string st = co_await c.Tagged(tag);
      if (st.rfind("OK", 0) != 0) {
        throw std::runtime_error("LOGIN " + name + ": " + st);
      }
      std::string select = "a2 SELECT INBOX\r\n";
      co_await c.Send(select);
      tag = "a2";
      st = co_await c.Tagged(tag);
      if (st.rfind("OK", 0) != 0) {
        throw std::runtime_error("SELECT: " + st);
      }
      std::string idle = "a3 IDLE\r\n";
      co_await c.Send(idle);
      for (;;) {
        std::string line = co_await c.Read();
        if (!line.empty() && line[0] == '+') {
          break;
        }
        if (line.rfind("a3 ", 0) == 0) {
          throw std::runtime_error("IDLE: " + line);
        }
      }
      idling = true;
      ++idling_;
      login_ms_.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    } catch (const std::exception& e) {
      ++setup_failed_;
      Error("connection " + std::to_string(i) + ": " + Describe(e));
    }
    --in_setup_;
    ++set_up_;
    slot_.Notify();
    all_set_up_.Notify();

    if (idling) {
      co_await release_.Wait();
      try {
        std::string done = "DONE\r\n";
        co_await c.Send(done);
        std::string tag = "a3";
        std::string st = co_await c.Tagged(tag);
        if (st.rfind("OK", 0) != 0) {
          throw std::runtime_error("IDLE/DONE: " + st);
        }
        std::string logout = "a4 LOGOUT\r\n";
        co_await c.Send(logout);
        tag = "a4";
        st = co_await c.Tagged(tag);
        ++done_ok_;
      } catch (const std::exception& e) {
        ++done_failed_;
        Error("connection " + std::to_string(i) + " after the hold: " + Describe(e));
      }
    }
    boost::system::error_code ignored;
    sock.close(ignored);
    if (--live_ == 0) {
      all_closed_.Notify();
    }
  }

  void Error(const std::string& msg) {
    if (first_error_.empty()) {
      for (char ch : msg) {
        first_error_ +=
            (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20) ? ' ' : ch;
      }
    }
    if (++errors_ <= 5) {
      std::fprintf(stderr, "hato-idle-rss: %s\n", msg.c_str());
    }
  }

  asio::io_context& io_;
  const Options& opts_;
  tcp::endpoint ep_;
  Event slot_, all_set_up_, release_, all_closed_;
  asio::signal_set signals_;
  asio::steady_timer hold_;
  std::vector<double> login_ms_;
  std::string first_error_;
  double setup_s_ = 0;
  bool setup_timed_out_ = false;
  int live_ = 0, in_setup_ = 0, set_up_ = 0, launched_ = 0, idling_ = 0, setup_failed_ = 0;
  int done_ok_ = 0, done_failed_ = 0, errors_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options opts = ParseArgs(argc, argv);
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  asio::io_context io(1);
  IdleRun run(io, opts);
  bool failed = false;
  asio::co_spawn(io, run.Main(), [&](const std::exception_ptr& e) {
    if (!e) {
      return;
    }
    failed = true;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "hato-idle-rss: fatal: %s\n", Describe(ex).c_str());
    }
    io.stop();
  });
  io.run();
  return failed ? 2 : run.Report();
}
