// hato-sieve-cost: the CPU cost of the Sieve step of one delivery (issue 19),
// without the network, the writer or a loaded machine in the way: the work
// the SMTP server's one blocking-pool hop does at the end of DATA
// (src/smtp/server.cc Deliver: mime::Parse + Serialize, then sieve::Filter)
// for a message shaped like hato-smtp-load's (4 KiB, the trace fields an
// inbound delivery gets), against a real embedded store in a temporary
// directory, with and without bench/sieve_rules.sieve active.
//
// Usage: hato-sieve-cost SCRIPT [ITERATIONS]
// Prints one JSON line: ns per parse, per Filter without a script and per
// Filter with it (the median of five timed passes). Under valgrind
// (callgrind) ITERATIONS=1000 gives the instructions of each part.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mime/message.h"
#include "sieve/deliver.h"
#include "store/store.h"

namespace {

using hato::sieve::FilterInput;

std::string Message(int index) {
  std::string m = "Return-Path: <loadgen@hato-bench.example>\r\n";
  m += "Authentication-Results: mx.bench.test; spf=none smtp.mailfrom=hato-bench.example; "
       "dkim=none; dmarc=none header.from=hato-bench.example\r\n";
  m += "Received: from loadgen ([127.0.0.1])\r\n\tby mx.bench.test with ESMTP id 5f3a9c0d\r\n\t"
       "for <rcpt3@bench.test>; Thu, 3 Dec 2026 13:30:00 +0000\r\n";
  m += "From: Load Generator <loadgen@hato-bench.example>\r\n";
  m += "To: <rcpt3@bench.test>\r\n";
  m += "Subject: Benchmark message " + std::to_string(index) + " token hb0123456789abcdef-" +
       std::to_string(10000000 + index) + "\r\n";
  m += "Date: Thu, 03 Dec 2026 13:30:00 +0000\r\n";
  m += "Message-ID: <hb0123456789abcdef-" + std::to_string(10000000 + index) +
       "@hato-bench.test>\r\n";
  m += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n";
  m += "Content-Transfer-Encoding: 7bit\r\n\r\n";
  static const char* kWords[] = {"mail",  "server", "delivery", "filter", "message",
                                 "queue", "store",  "folder",   "rule",   "script"};
  size_t w = static_cast<size_t>(index);
  std::string line;
  while (m.size() < 4096 - 80) {
    line += kWords[w++ % 10];
    line += ' ';
    if (line.size() > 68) {
      m += line + "\r\n";
      line.clear();
    }
  }
  return m + "end\r\n";
}

template <class F>
double NsPerCall(int iterations, F f) {
  std::vector<double> passes;
  for (int pass = 0; pass < 5; ++pass) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) f(i);
    std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
    passes.push_back(took.count() / iterations);
  }
  std::sort(passes.begin(), passes.end());
  return passes[2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: hato-sieve-cost SCRIPT [ITERATIONS]\n");
    return 2;
  }
  std::ifstream in(argv[1]);
  std::stringstream text;
  text << in.rdbuf();
  int iterations = argc > 2 ? std::max(1, std::atoi(argv[2])) : 20000;
  auto dir =
      std::filesystem::temp_directory_path() / ("hato-sieve-cost." + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  int rc = 0;
  {
    auto store = hato::store::OpenEmbeddedStore(dir.string(), hato::store::StoreOptions{});
    if (!store) {
      std::fprintf(stderr, "store: %s\n", store.error().message.c_str());
      return 1;
    }
    hato::store::Store& s = **store;
    (void)s.AddDomain("bench.test");
    (void)s.AddAccount("plain@bench.test", "h");
    (void)s.AddAccount("rcpt3@bench.test", "h");
    int64_t plain = s.FindAccount("plain@bench.test")->id;
    int64_t filtered = s.FindAccount("rcpt3@bench.test")->id;
    if (!s.PutSieveScript(filtered, "rules", text.str()) ||
        !s.SetActiveSieveScript(filtered, "rules")) {
      std::fprintf(stderr, "cannot store the script\n");
      return 1;
    }
    std::vector<std::string> messages;
    for (int i = 0; i < 64; ++i) messages.push_back(Message(i));
    auto filter = [&](int64_t account, const std::string& rcpt, int i) {
      FilterInput fi;
      fi.content = messages[static_cast<size_t>(i) % messages.size()];
      fi.return_path = "loadgen@hato-bench.example";
      fi.accounts = {account};
      fi.rcpts = {rcpt};
      fi.now = 1796304600;
      return hato::sieve::Filter(s, fi);
    };
    auto check = filter(filtered, "rcpt3@bench.test", 0);
    if (check.filings.size() != 1 || check.filings[0].flags.empty()) {
      std::fprintf(stderr, "the script did not flag the message\n");
      rc = 1;
    }
    size_t sink = 0;
    double parse = NsPerCall(iterations, [&](int i) {
      auto tree = hato::mime::Parse(messages[static_cast<size_t>(i) % messages.size()]);
      sink += tree ? hato::mime::Serialize(*tree).size() : 0;
    });
    double none = NsPerCall(
        iterations, [&](int i) { sink += filter(plain, "plain@bench.test", i).filings.size(); });
    double sieve = NsPerCall(
        iterations, [&](int i) { sink += filter(filtered, "rcpt3@bench.test", i).filings.size(); });
    std::printf(
        "{\"iterations\": %d, \"parse_ns\": %.0f, \"filter_none_ns\": %.0f, "
        "\"filter_sieve_ns\": %.0f, \"sink\": %zu}\n",
        iterations, parse, none, sieve, sink % 2);
  }
  std::filesystem::remove_all(dir);
  return rc;
}
