// hato-imap-load: IMAP load generator for the Hato vs Dovecot benchmark (bench/imap_run.sh).
//
// Phase 1, prefill (not timed): for each of N users, logs in, creates Archive and Trash if
// missing, and APPENDs (LITERAL+) to INBOX until it holds M messages. The messages are
// deterministic (same bytes for every server): 2-50 KB, plain text, multipart/alternative and
// multipart/mixed with base64 attachments, varied senders, subjects, dates, Cc, threads. It
// then fetches FLAGS ENVELOPE BODYSTRUCTURE of the whole INBOX once, as a client's first sync.
// Phase 2, timed: C clients (client i is user i % N + 1) log in, SELECT INBOX and learn the
// UIDs (UID SEARCH ALL), all outside the timed window; then all start at the same moment and
// loop a weighted mix of commands (kMix below, documented in bench/README.md) for T seconds
// (or N operations in total), one command at a time per connection, no pipelining. Each
// operation's latency runs from writing the command to reading its tagged reply. Any tagged
// NO or BAD counts as an error of that command.
// The client tracks each session's message list from EXISTS / EXPUNGE / FETCH UID replies,
// so every command it sends is valid for the mailbox as the server has shown it.
// Single-threaded: Boost.Asio with C++20 coroutines. As in src/ (g++ 12 coroutine bugs),
// arguments of co_await calls are named variables and awaited results are stored before
// they are tested.
// STANDARDS: RFC 3501 (IMAP4rev1), RFC 2177 (IDLE), RFC 4315 (UIDPLUS), RFC 6851 (MOVE),
// RFC 7888 (LITERAL+).

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <random>
#include <set>
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
  int clients = 10;
  int seconds = 30;
  int ops = 0;  // > 0: stop after this many operations instead of after `seconds`
  int prefill = 0;
  int prefill_conns = 0;  // 0 = min(users, 8)
  int timeout_s = 3600;   // whole run, prefill included
  bool prefill_only = false;
  bool json = false;
  // "default": the mail client mix (kMix); "list": only LIST_VIEW, the IMAP
  // side of the JMAP list-view benchmark (bench/jmap_bench.sh); "login": only
  // SESSION, clients that log in again and again (issue 17's login load).
  std::string mix = "default";
};

[[noreturn]] void Usage(const char* msg) {
  std::fprintf(stderr,
               "error: %s\nusage: hato-imap-load --host H --port P --users N "
               "[--user-format 'bench%%d@bench.test'] --password W --clients C "
               "(--seconds T | --ops N) [--prefill M [--prefill-only]] [--prefill-conns K] "
               "[--timeout SEC] [--mix default|list|login] [--json]\n",
               msg);
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  bench::Flags flags;
  flags.ints = {{"--port", {&o.port, 1, 65535}},
                {"--users", {&o.users, 1, 100000}},
                {"--clients", {&o.clients, 1, 20000}},
                {"--seconds", {&o.seconds, 1, 86400}},
                {"--ops", {&o.ops, 1, 1 << 30}},
                {"--prefill", {&o.prefill, 0, 1000000}},
                {"--prefill-conns", {&o.prefill_conns, 1, 1000}},
                {"--timeout", {&o.timeout_s, 1, 86400}}};
  flags.strings = {{"--host", &o.host},
                   {"--user-format", &o.user_format},
                   {"--password", &o.password},
                   {"--mix", &o.mix}};
  flags.switches = {{"--json", &o.json}, {"--prefill-only", &o.prefill_only}};
  bench::ParseFlags(argc, argv, flags, Usage);
  if (o.mix != "default" && o.mix != "list" && o.mix != "login") {
    Usage("--mix must be default, list or login");
  }
  if (o.password.empty()) {
    Usage("--password is required");
  }
  size_t pct = o.user_format.find('%');
  if (pct == std::string::npos || o.user_format.compare(pct, 2, "%d") != 0 ||
      o.user_format.find('%', pct + 1) != std::string::npos) {
    Usage("--user-format must contain exactly one %d");
  }
  if (o.prefill_conns == 0) {
    o.prefill_conns = std::min(o.users, 8);
  }
  return o;
}

std::string UserName(const Options& o, int n) {  // n is 1-based
  size_t pct = o.user_format.find("%d");
  return o.user_format.substr(0, pct) + std::to_string(n) + o.user_format.substr(pct + 2);
}

using bench::Describe;

std::string Quote(std::string_view s) {  // IMAP quoted string (no CR/LF in our inputs)
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      q += '\\';
    }
    q += c;
  }
  return q + "\"";
}

// ---------------------------------------------------------------------------------------
// Deterministic "real-looking" messages. Generate(user, index) returns the same bytes on every
// run, so both servers are prefilled identically.

uint64_t SplitMix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() { return SplitMix(s_); }
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(Next() % n); }
  size_t Between(size_t lo, size_t hi) { return lo + Below(hi - lo + 1); }  // inclusive
  bool Chance(int percent) { return Below(100) < static_cast<size_t>(percent); }
  template <typename T, size_t N>
  const T& Pick(const T (&a)[N]) {
    return a[Below(N)];
  }

 private:
  uint64_t s_;
};

constexpr const char* kFirst[] = {
    "Alice",  "Bob",    "Carol",   "David",  "Erin",   "Frank",   "Grace",  "Heidi",
    "Ivan",   "Judy",   "Mallory", "Niaj",   "Olivia", "Peggy",   "Rupert", "Sybil",
    "Trent",  "Victor", "Walter",  "Yuki",   "Zoe",    "Amir",    "Bianca", "Chen",
    "Dmitri", "Elena",  "Fatima",  "Gustav", "Hana",   "Ines",    "Jonas",  "Kwame",
    "Lars",   "Maria",  "Nora",    "Oscar",  "Priya",  "Quentin", "Rosa",   "Sven"};
constexpr const char* kLast[] = {"Smith",    "Johnson", "Williams", "Brown",   "Garcia",
                                 "Miller",   "Davis",   "Martinez", "Lopez",   "Wilson",
                                 "Anderson", "Thomas",  "Moreau",   "Jackson", "Nakamura",
                                 "Kowalski", "Schmidt", "Rossi",    "Okafor",  "Haddad"};
constexpr const char* kDomains[] = {
    "example.com",           "example.org",      "mail.example.net", "corp.example.com",
    "lists.example.org",     "shop.example",     "bank.example",     "university.example.edu",
    "partner.example.co.uk", "news.example.com", "travel.example",   "support.example.io"};
constexpr const char* kTopics[] = {"Quarterly budget review",
                                   "Server migration plan",
                                   "Team offsite agenda",
                                   "Invoice for March",
                                   "Your order has shipped",
                                   "Release notes draft",
                                   "Meeting notes from Monday",
                                   "Security incident report",
                                   "Holiday schedule",
                                   "Project kickoff",
                                   "Contract renewal",
                                   "Customer feedback summary",
                                   "Weekly status update",
                                   "Travel itinerary",
                                   "Password reset request",
                                   "Board presentation slides",
                                   "Hiring plan for next year",
                                   "Database backup failed",
                                   "Lunch on Friday?",
                                   "Conference registration",
                                   "Design review comments",
                                   "Payment confirmation",
                                   "Newsletter: product updates",
                                   "Support ticket escalation",
                                   "Performance review timeline",
                                   "Office move logistics",
                                   "Marketing campaign results",
                                   "Vendor evaluation",
                                   "Training session recording",
                                   "Expense report approval",
                                   "Roadmap discussion",
                                   "Outage postmortem",
                                   "Shipping delay notice",
                                   "Tax documents",
                                   "Photos from the trip",
                                   "Reminder: dentist appointment",
                                   "Flight check-in open",
                                   "Draft agreement attached",
                                   "Invitation: product launch",
                                   "Quick question about the API"};
constexpr const char* kWords[] = {
    "the",      "quarterly", "report",    "meeting",  "please",   "review",   "attached",
    "schedule", "project",   "team",      "update",   "customer", "server",   "release",
    "budget",   "thanks",    "regards",   "we",       "will",     "should",   "could",
    "discuss",  "tomorrow",  "morning",   "after",    "lunch",    "numbers",  "look",
    "good",     "issue",     "fixed",     "deploy",   "staging",  "mail",     "delivery",
    "queue",    "latency",   "message",   "inbox",    "question", "answer",   "and",
    "or",       "with",      "for",       "from",     "about",    "this",     "that",
    "our",      "your",      "their",     "is",       "are",      "was",      "be",
    "a",        "an",        "to",        "of",       "in",       "on",       "at",
    "it",       "not",       "all",       "new",      "first",    "last",     "week",
    "month",    "year",      "plan",      "draft",    "final",    "version",  "notes",
    "agenda",   "call",      "office",    "travel",   "invoice",  "payment",  "order",
    "shipping", "support",   "ticket",    "feature",  "request",  "document", "summary",
    "contract", "approval",  "migration", "database", "backup",   "incident", "vendor"};
constexpr const char* kMailers[] = {"Mozilla Thunderbird 115.6", "Apple Mail (2.3731)",
                                    "Microsoft Outlook 16.0",    "Roundcube Webmail/1.6.5",
                                    "K-9 Mail for Android",      "Evolution 3.46.4"};
constexpr const char* kAttachments[][2] = {
    {"report.pdf", "application/pdf"},
    {"photo.jpg", "image/jpeg"},
    {"slides.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"data.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"invoice.pdf", "application/pdf"},
    {"diagram.png", "image/png"},
    {"archive.zip", "application/zip"},
    {"notes.txt", "text/plain"}};
// Words a SEARCH can look for: topic words (SUBJECT) and last names (FROM).
constexpr const char* kSubjectTerms[] = {"budget", "plan",    "report", "invoice", "update",
                                         "review", "meeting", "order",  "ticket",  "backup"};

class MessageGenerator {
 public:
  // Sizes: 70% 2-8 KB, 20% 8-20 KB, 10% 20-50 KB (those carry an attachment).
  static std::string Generate(int user, int index) {
    Rng r(0x48617430ull ^ (static_cast<uint64_t>(user) << 32) ^ static_cast<uint64_t>(index));
    r.Next();
    size_t size;
    int band = static_cast<int>(r.Below(100));
    if (band < 70) {
      size = r.Between(2048, 8192);
    } else if (band < 90) {
      size = r.Between(8192, 20480);
    } else {
      size = r.Between(20480, 51200);
    }
    std::string fn = r.Pick(kFirst), ln = r.Pick(kLast), dom = r.Pick(kDomains);
    std::string from_addr = Lower(fn) + "." + Lower(ln) + "@" + dom;
    std::string me = "bench" + std::to_string(user) + "@bench.test";
    std::string subject = r.Pick(kTopics);
    int kind = static_cast<int>(r.Below(100));
    bool reply = kind < 30, fwd = kind >= 30 && kind < 35;
    if (r.Chance(30)) {
      subject += " #" + std::to_string(1000 + r.Below(9000));
    }
    std::string subject_hdr = (reply ? "Re: " : fwd ? "Fwd: " : "") + subject;
    if (r.Chance(5)) {  // an RFC 2047 encoded word, as non-ASCII subjects arrive
      subject_hdr = "=?UTF-8?B?" + Base64("Caf\xc3\xa9 \xe2\x80\x94 " + subject_hdr) + "?=";
    }
    // Dates go back from 2024-06-01 by about 4 hours per message (repeating every 4000
    // messages, so also for the high indexes of the timed phase's APPENDs), with jitter.
    std::time_t t = 1717200000 - static_cast<std::time_t>(index % 4000) * 14400 -
                    static_cast<std::time_t>(r.Below(14400));
    std::string msgid = "<" + std::to_string(r.Next() % 1000000000000ull) + "." +
                        std::to_string(index) + "@" + dom + ">";

    std::string m;
    m.reserve(size + 1024);
    m += "Return-Path: <" + from_addr + ">\r\n";
    m += "Received: from mx" + std::to_string(r.Below(9) + 1) + "." + dom + " (mx." + dom +
         " [192.0.2." + std::to_string(r.Below(250) + 1) +
         "])\r\n\tby mail.bench.test with ESMTPS id " + Hex(r.Next()) + "\r\n\tfor <" + me + ">; " +
         Date(t + 5) + "\r\n";
    m += "Received: from [10.0." + std::to_string(r.Below(250)) + "." +
         std::to_string(r.Below(250)) + "] by mx." + dom + " with ESMTPSA; " + Date(t + 2) + "\r\n";
    m += "From: " + fn + " " + ln + " <" + from_addr + ">\r\n";
    m += "To: Bench User " + std::to_string(user) + " <" + me + ">\r\n";
    if (r.Chance(20)) {
      m += "Cc: ";
      size_t n = r.Between(1, 3);
      for (size_t i = 0; i < n; ++i) {
        std::string cf = r.Pick(kFirst), cl = r.Pick(kLast);
        m += (i ? ",\r\n " : "") + cf + " " + cl + " <" + Lower(cf) + "@" + r.Pick(kDomains) + ">";
      }
      m += "\r\n";
    }
    m += "Subject: " + subject_hdr + "\r\n";
    m += "Date: " + Date(t) + "\r\n";
    m += "Message-ID: " + msgid + "\r\n";
    if (reply) {
      std::string parent = "<" + Hex(r.Next()) + "@" + r.Pick(kDomains) + ">";
      m += "In-Reply-To: " + parent + "\r\nReferences: " + parent + "\r\n";
    }
    if (r.Chance(15)) {
      m += "List-Id: <announce." + dom + ">\r\nList-Unsubscribe: <mailto:leave@" + dom + ">\r\n";
    }
    m += "X-Mailer: " + std::string(r.Pick(kMailers)) + "\r\n";
    m += "MIME-Version: 1.0\r\n";

    std::string boundary = "=_b" + Hex(r.Next());
    bool attach = band >= 90 || r.Chance(10);
    bool alternative = !attach && r.Chance(28);
    size_t body_budget = size > m.size() + 400 ? size - m.size() - 400 : 600;
    if (attach) {
      size_t att = band >= 90 ? body_budget * 4 / 5 : std::min<size_t>(body_budget / 2, 3000);
      size_t text = body_budget > att ? body_budget - att : 300;
      const auto& a = kAttachments[r.Below(std::size(kAttachments))];
      m += "Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n\r\n";
      m += "This is a multi-part message in MIME format.\r\n";
      m += "--" + boundary + "\r\n";
      AppendTextPart(r, text, m);
      m += "--" + boundary + "\r\n";
      m += std::string("Content-Type: ") + a[1] + "; name=\"" + a[0] + "\"\r\n";
      m += std::string("Content-Disposition: attachment; filename=\"") + a[0] + "\"\r\n";
      m += "Content-Transfer-Encoding: base64\r\n\r\n";
      AppendBase64Blob(r, att * 3 / 4, m);
      m += "--" + boundary + "--\r\n";
    } else if (alternative) {
      m += "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n\r\n";
      m += "--" + boundary + "\r\n";
      std::string text = Paragraphs(r, body_budget * 2 / 5);
      m += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n";
      m += text;
      m += "--" + boundary + "\r\n";
      m += "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n";
      m += "<html><body>\r\n";
      size_t start = 0;
      while (start < text.size()) {  // the same text as HTML paragraphs
        size_t end = text.find("\r\n\r\n", start);
        if (end == std::string::npos) {
          end = text.size();
        }
        m += "<p>" + text.substr(start, end - start) + "</p>\r\n";
        start = end + 4;
      }
      m += "</body></html>\r\n";
      m += "--" + boundary + "--\r\n";
    } else {
      bool qp = r.Chance(15);
      m += "Content-Type: text/plain; charset=utf-8; format=flowed\r\n";
      m += std::string("Content-Transfer-Encoding: ") + (qp ? "quoted-printable" : "7bit") +
           "\r\n\r\n";
      std::string text = Paragraphs(r, body_budget);
      if (qp) {  // a few soft line breaks and encoded characters
        for (size_t p = 60; p < text.size(); p += 400) {
          if (text[p - 1] != '\r' && text[p - 1] != '\n' && text[p] != '\r' && text[p] != '\n') {
            text.insert(p, "=C3=A9=\r\n");
          }
        }
      }
      m += text;
      if (reply) {
        m += "\r\nOn " + Date(t - 7200) + ", someone wrote:\r\n";
        for (int i = 0; i < 6; ++i) {
          m += "> " + Sentence(r, 60) + "\r\n";
        }
      }
      m += "\r\n-- \r\n" + fn + " " + ln + "\r\n";
    }
    return m;
  }

 private:
  static std::string Lower(std::string s) {
    for (char& c : s) {
      if (c >= 'A' && c <= 'Z') {
        c = static_cast<char>(c - 'A' + 'a');
      }
    }
    return s;
  }
  static std::string Hex(uint64_t v) {
    char b[20];
    std::snprintf(b, sizeof b, "%016" PRIx64, v);
    return b;
  }
  static std::string Date(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char b[64];
    std::strftime(b, sizeof b, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return b;
  }
  static std::string Base64(std::string_view in) {
    static constexpr char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
      uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
      out += k[v >> 18];
      out += k[(v >> 12) & 63];
      out += k[(v >> 6) & 63];
      out += k[v & 63];
    }
    if (i + 1 == in.size()) {
      uint32_t v = uint8_t(in[i]) << 16;
      out += k[v >> 18];
      out += k[(v >> 12) & 63];
      out += "==";
    } else if (i + 2 == in.size()) {
      uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
      out += k[v >> 18];
      out += k[(v >> 12) & 63];
      out += k[(v >> 6) & 63];
      out += '=';
    }
    return out;
  }
  static void AppendBase64Blob(Rng& r, size_t bytes, std::string& m) {
    std::string raw(bytes, '\0');
    for (size_t i = 0; i < bytes; i += 8) {
      uint64_t v = r.Next();
      std::memcpy(raw.data() + i, &v, std::min<size_t>(8, bytes - i));
    }
    std::string b = Base64(raw);
    for (size_t i = 0; i < b.size(); i += 76) {
      m.append(b, i, 76);
      m += "\r\n";
    }
  }
  static std::string Sentence(Rng& r, size_t max) {
    std::string s;
    for (;;) {
      std::string w = r.Pick(kWords);
      if (s.empty()) {
        w[0] = static_cast<char>(w[0] - 'a' + 'A');
      }
      if (s.size() + w.size() + 2 > max) {
        break;
      }
      s += (s.empty() ? "" : " ") + w;
    }
    return s + ".";
  }
  // Word-wrapped paragraphs of about `bytes` bytes, CRLF line ends, no line starting with '.'.
  static std::string Paragraphs(Rng& r, size_t bytes) {
    std::string out, line;
    int sentences = 0;
    while (out.size() + line.size() < bytes) {
      std::string s = Sentence(r, 40 + r.Below(80));
      size_t p = 0;
      while (p < s.size()) {
        size_t sp = s.find(' ', p);
        if (sp == std::string::npos) {
          sp = s.size();
        }
        std::string_view w(s.data() + p, sp - p);
        if (!line.empty() && line.size() + 1 + w.size() > 72) {
          out += line;
          out += "\r\n";
          line.clear();
        }
        if (!line.empty()) {
          line += ' ';
        }
        line += w;
        p = sp + 1;
      }
      if (++sentences % 5 == 0) {
        out += line;
        out += "\r\n\r\n";
        line.clear();
      }
    }
    if (!line.empty()) {
      out += line;
      out += "\r\n";
    }
    return out;
  }
  static void AppendTextPart(Rng& r, size_t bytes, std::string& m) {
    m += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n";
    m += Paragraphs(r, bytes);
  }
};

// ---------------------------------------------------------------------------------------
// The command mix. Weights are percent of operations.

enum Op {
  kFetchFlags,
  kFetchEnv,
  kFetchBody,
  kStore,
  kSearch,
  kAppend,
  kCopy,
  kMove,
  kExpunge,
  kIdle,
  kListView,
  kSession,
  kNumOps
};
struct OpInfo {
  const char* name;  // report / JSON key
  int weight;
};
constexpr std::array<OpInfo, kNumOps> kMix = {{
    {"FETCH_FLAGS", 20},     // UID FETCH u1:u50 (FLAGS): a window of 50 messages
    {"FETCH_ENVELOPE", 15},  // UID FETCH u (ENVELOPE BODYSTRUCTURE)
    {"FETCH_BODY", 15},      // UID FETCH u (BODY.PEEK[])
    {"STORE", 15},           // UID STORE u +FLAGS/-FLAGS (\Seen) or (\Flagged)
    {"SEARCH", 10},          // UID SEARCH SUBJECT w | FROM name | UNSEEN
    {"APPEND", 8},           // APPEND INBOX {n+} a new message
    {"COPY", 7},             // UID COPY u Archive
    {"MOVE", 3},             // UID MOVE u[,u...] Trash
    {"EXPUNGE", 2},          // UID STORE u[,u...] +FLAGS.SILENT (\Deleted), UID EXPUNGE u[,u...]
    {"IDLE", 5},             // IDLE, wait for "+", DONE, wait for OK
    {"LIST_VIEW", 0},        // UID SEARCH ALL, then UID FETCH of its 50 highest UIDs
                             // (ENVELOPE): a list view; 100 with --mix list, else 0
    {"SESSION", 0},          // a new connection: LOGIN, SELECT INBOX, FETCH 1:10 (FLAGS),
                             // LOGOUT (kSessionCommands); 100 with --mix login, else 0
}};
// IMAP commands one SESSION sends (commands/s = SESSION/s x this).
constexpr int kSessionCommands = 4;
// The weights of a --mix.
std::array<int, kNumOps> MixWeights(const std::string& mix) {
  std::array<int, kNumOps> w{};
  for (int i = 0; i < kNumOps; ++i) {
    if (mix == "list") {
      w[i] = i == kListView ? 100 : 0;
    } else if (mix == "login") {
      w[i] = i == kSession ? 100 : 0;
    } else {
      w[i] = kMix[i].weight;
    }
  }
  return w;
}

struct OpStats {
  std::vector<double> latency_ms;
  int no = 0, bad = 0;
};

struct Response {  // one response; literal contents are replaced by ""
  std::string text;
  size_t literal_bytes = 0;
};

// A monotonic signal any number of coroutines can wait for.
class Event {
 public:
  explicit Event(const asio::any_io_executor& ex) : timer_(ex, Clock::time_point::max()) {}
  void Set() {
    set_ = true;
    timer_.cancel();
  }
  bool is_set() const { return set_; }
  awaitable<void> Wait() {
    boost::system::error_code ec;
    while (!set_) {
      auto token = asio::redirect_error(use_awaitable, ec);
      co_await timer_.async_wait(std::move(token));
    }
  }

 private:
  asio::steady_timer timer_;
  bool set_ = false;
};

// An IMAP client connection: buffered reader of responses (with literals), command tags, and
// the session's view of the selected mailbox (UID per sequence number, 0 = not yet known).
class ImapConn {
 public:
  ImapConn(tcp::socket& s, std::set<tcp::socket*>& registry) : sock_(s), registry_(registry) {
    registry_.insert(&sock_);
  }
  ~ImapConn() { registry_.erase(&sock_); }
  ImapConn(const ImapConn&) = delete;
  ImapConn& operator=(const ImapConn&) = delete;

  awaitable<void> Send(std::string_view data) {
    auto buf = asio::buffer(data.data(), data.size());
    co_await asio::async_write(sock_, buf, use_awaitable);
  }

  // Reads one response line, skipping literals (counted in literal_bytes).
  awaitable<void> Read(Response& r) {
    r.text.clear();
    r.literal_bytes = 0;
    for (;;) {
      size_t scanned = 0;  // bytes after pos_ already searched for CRLF
      size_t eol;
      for (;;) {
        eol = buf_.find("\r\n", pos_ + (scanned > 0 ? scanned - 1 : 0));
        if (eol != std::string::npos) {
          break;
        }
        scanned = buf_.size() - pos_;
        if (scanned > kMaxLine) {
          throw std::runtime_error("response line too long");
        }
        co_await Fill();
      }
      std::string_view line(buf_.data() + pos_, eol - pos_);
      size_t literal = 0;
      bool has_literal = false;
      size_t open = std::string_view::npos;
      if (!line.empty() && line.back() == '}') {
        open = line.rfind('{');
        if (open != std::string_view::npos && open + 2 < line.size()) {
          std::string_view digits = line.substr(open + 1, line.size() - open - 2);
          if (!digits.empty() && digits.back() == '+') {
            digits.remove_suffix(1);
          }
          has_literal = !digits.empty() && digits.size() < 12 &&
                        std::all_of(digits.begin(), digits.end(),
                                    [](char c) { return c >= '0' && c <= '9'; });
          if (has_literal) {
            literal = std::strtoull(std::string(digits).c_str(), nullptr, 10);
          }
        }
      }
      if (has_literal) {
        r.text.append(line.substr(0, open));
        r.text += "\"\"";
      } else {
        r.text.append(line);
      }
      pos_ = eol + 2;
      if (!has_literal) {
        co_return;
      }
      r.literal_bytes += literal;
      while (literal > 0) {
        size_t avail = buf_.size() - pos_;
        if (avail == 0) {
          co_await Fill();
          continue;
        }
        size_t take = std::min(avail, literal);
        pos_ += take;
        literal -= take;
      }
    }
  }

  std::string NextTag() {
    std::string t = "a";
    t += std::to_string(++tag_);
    return t;
  }

  // Sends `cmd` (no tag, no CRLF; may contain literal+ data) and reads to the tagged reply.
  // Returns the tagged line from its status word on ("OK ...", "NO ...", "BAD ...").
  awaitable<std::string> Command(std::string_view cmd, Response* last = nullptr) {
    std::string tag = NextTag();
    std::string line = tag + " " + std::string(cmd) + "\r\n";
    co_await Send(line);
    std::string status = co_await ReadTagged(tag, last);
    co_return status;
  }

  awaitable<std::string> ReadTagged(const std::string& tag, Response* last = nullptr) {
    Response r;
    for (;;) {
      co_await Read(r);
      if (r.text.size() > tag.size() && r.text.compare(0, tag.size(), tag) == 0 &&
          r.text[tag.size()] == ' ') {
        if (last != nullptr) {
          last->literal_bytes += r.literal_bytes;
        }
        co_return r.text.substr(tag.size() + 1);
      }
      if (last != nullptr) {
        last->literal_bytes += r.literal_bytes;
      }
      Untagged(r.text);
    }
  }

  // Reads until a continuation request ("+ ..."), handling untagged responses on the way.
  // Returns false if the tagged reply came instead (put in *status).
  awaitable<bool> ReadContinuation(const std::string& tag, std::string* status) {
    Response r;
    for (;;) {
      co_await Read(r);
      if (!r.text.empty() && r.text[0] == '+') {
        co_return true;
      }
      if (r.text.size() > tag.size() && r.text.compare(0, tag.size(), tag) == 0 &&
          r.text[tag.size()] == ' ') {
        *status = r.text.substr(tag.size() + 1);
        co_return false;
      }
      Untagged(r.text);
    }
  }

  // ---- the selected mailbox as this session knows it ----
  std::vector<uint32_t> uids;  // by sequence number - 1; 0 = UID not yet learnt
  std::vector<uint32_t> search_result;
  bool saw_search = false;

  // Index of the first message whose UID is unknown (they are always a tail: new messages).
  size_t KnownCount() const {
    size_t n = 0;
    while (n < uids.size() && uids[n] != 0) {
      ++n;
    }
    return n;
  }

 private:
  static constexpr size_t kMaxLine = 1 << 20;

  awaitable<void> Fill() {
    if (pos_ > 0 && pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    } else if (pos_ > kChunk) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    size_t old = buf_.size();
    buf_.resize(old + kChunk);
    auto b = asio::buffer(buf_.data() + old, kChunk);
    size_t n = 0;
    try {
      n = co_await sock_.async_read_some(b, use_awaitable);
    } catch (...) {
      buf_.resize(old);
      throw;
    }
    buf_.resize(old + n);
  }

  void Untagged(const std::string& t) {
    if (t.size() < 3 || t[0] != '*' || t[1] != ' ') {
      return;
    }
    const char* p = t.c_str() + 2;
    if (*p >= '0' && *p <= '9') {
      char* end = nullptr;
      unsigned long n = std::strtoul(p, &end, 10);
      std::string_view kw(end);
      if (kw.rfind(" EXISTS", 0) == 0) {
        if (n >= uids.size()) {
          uids.resize(n, 0);
        } else {  // cannot shrink through EXISTS (RFC 3501 7.3.1); keep the list as is
          ++anomalies_;
        }
      } else if (kw.rfind(" EXPUNGE", 0) == 0) {
        if (n >= 1 && n <= uids.size()) {
          uids.erase(uids.begin() + static_cast<long>(n - 1));
        } else {
          ++anomalies_;
        }
      } else if (kw.rfind(" FETCH", 0) == 0) {
        uint32_t uid = FetchUid(kw);
        if (uid != 0 && n >= 1 && n <= uids.size()) {
          uids[n - 1] = uid;
        }
      }
      return;
    }
    std::string_view rest(p);
    if (rest.rfind("SEARCH", 0) == 0) {
      saw_search = true;
      const char* q = p + 6;
      while (*q == ' ') {
        char* end = nullptr;
        unsigned long v = std::strtoul(q + 1, &end, 10);
        if (end == q + 1) {
          break;
        }
        search_result.push_back(static_cast<uint32_t>(v));
        q = end;
      }
    }
  }

  // The UID item at the top level of "FETCH (...)", or 0.
  static uint32_t FetchUid(std::string_view s) {
    int depth = 0;
    bool quoted = false;
    for (size_t i = 0; i < s.size(); ++i) {
      char c = s[i];
      if (quoted) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          quoted = false;
        }
        continue;
      }
      if (c == '"') {
        quoted = true;
      } else if (c == '(' || c == '[') {
        ++depth;
      } else if (c == ')' || c == ']') {
        --depth;
      } else if (depth == 1 && (c == 'U' || c == 'u') && (s[i - 1] == '(' || s[i - 1] == ' ') &&
                 s.size() > i + 4 &&
                 (s.compare(i, 4, "UID ") == 0 || s.compare(i, 4, "uid ") == 0)) {
        return static_cast<uint32_t>(
            std::strtoul(std::string(s.substr(i + 4, 12)).c_str(), nullptr, 10));
      }
    }
    return 0;
  }

  static constexpr size_t kChunk = 64 * 1024;
  tcp::socket& sock_;
  std::set<tcp::socket*>& registry_;
  std::string buf_;
  size_t pos_ = 0;
  uint64_t tag_ = 0;

 public:
  int anomalies_ = 0;  // EXISTS shrinking or EXPUNGE out of range (protocol errors)
};

bool IsOk(const std::string& status) { return status.rfind("OK", 0) == 0; }

class LoadRun {
 public:
  LoadRun(asio::io_context& io, const Options& o)
      : io_(io),
        opts_(o),
        ready_(io.get_executor()),
        done_(io.get_executor()),
        prefill_done_(io.get_executor()),
        deadline_(io) {
    for (int w : weights_) {
      total_weight_ += w;
    }
  }

  awaitable<void> Main() {
    tcp::resolver resolver(io_);
    const std::string service = std::to_string(opts_.port);
    auto eps = co_await resolver.async_resolve(opts_.host, service, use_awaitable);
    ep_ = *eps.begin();
    deadline_.expires_after(std::chrono::seconds(opts_.timeout_s));
    deadline_.async_wait([this](boost::system::error_code ec) {
      if (ec) {
        return;
      }
      timed_out_ = true;
      std::fprintf(stderr, "hato-imap-load: timeout after %d s\n", opts_.timeout_s);
      for (tcp::socket* s : registry_) {
        s->close();
      }
      prefill_done_.Set();
      ready_.Set();
      done_.Set();
    });

    // ---- prefill ----
    auto p0 = Clock::now();
    if (opts_.prefill > 0) {
      prefill_live_ = std::min(opts_.prefill_conns, opts_.users);
      for (int i = 0; i < prefill_live_; ++i) {
        asio::co_spawn(io_, PrefillWorker(), asio::detached);
      }
      co_await prefill_done_.Wait();
    }
    prefill_s_ = std::chrono::duration<double>(Clock::now() - p0).count();
    if (timed_out_) {
      co_return;
    }
    if (prefill_failed_ > 0) {
      throw std::runtime_error("prefill failed for " + std::to_string(prefill_failed_) +
                               " user(s)");
    }
    if (opts_.prefill_only) {
      deadline_.cancel();
      co_return;
    }

    // ---- timed phase ----
    live_ = waiting_ = opts_.clients;
    for (int i = 0; i < opts_.clients; ++i) {
      asio::co_spawn(io_, Client(i), asio::detached);
    }
    co_await done_.Wait();
    deadline_.cancel();
  }

  void Abort() { deadline_.cancel(); }

  int Report() {
    double elapsed = started_ ? std::chrono::duration<double>(last_done_ - start_).count() : 0.0;
    long total = 0, errors = io_errors_;
    for (const OpStats& s : stats_) {
      total += static_cast<long>(s.latency_ms.size());
      errors += s.no + s.bad;
    }
    double rate = elapsed > 0 ? static_cast<double>(total) / elapsed : 0.0;
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    std::sort(login_ms_.begin(), login_ms_.end());
    if (opts_.json) {
      std::printf(
          "{\"users\": %d, \"clients\": %d, \"prefill\": %d, \"prefill_appended\": %ld, "
          "\"prefill_bytes\": %ld, \"prefill_s\": %.3f, \"prefill_appends_per_s\": %.1f, "
          "\"elapsed_s\": %.3f, \"ops\": %ld, \"ops_per_s\": %.1f, \"errors\": %ld, "
          "\"io_errors\": %d, \"protocol_anomalies\": %d, \"clients_failed\": %d, "
          "\"login_select_p50_ms\": %.3f, \"login_select_p99_ms\": %.3f, "
          "\"inbox_start_avg\": %.1f, \"inbox_end_avg\": %.1f, \"fetched_bytes\": %ld, "
          "\"client_cpu_s\": %.3f, \"login_retries\": %ld, \"timed_out\": %s, "
          "\"session_commands\": %d, \"commands\": {",
          opts_.users, opts_.clients, opts_.prefill, prefill_appended_, prefill_bytes_, prefill_s_,
          prefill_s_ > 0 ? prefill_appended_ / prefill_s_ : 0.0, elapsed, total, rate, errors,
          io_errors_, anomalies_, clients_failed_, Pct(login_ms_, 0.5), Pct(login_ms_, 0.99),
          Avg(inbox_start_), Avg(inbox_end_), fetched_bytes_, cpu, login_retries_,
          timed_out_ ? "true" : "false", kSessionCommands);
      for (int i = 0; i < kNumOps; ++i) {
        OpStats& s = stats_[i];
        std::sort(s.latency_ms.begin(), s.latency_ms.end());
        std::printf(
            "%s\"%s\": {\"weight\": %d, \"count\": %zu, \"per_s\": %.1f, \"p50_ms\": %.3f, "
            "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"no\": %d, \"bad\": %d}",
            i ? ", " : "", kMix[i].name, weights_[i], s.latency_ms.size(),
            elapsed > 0 ? s.latency_ms.size() / elapsed : 0.0, Pct(s.latency_ms, 0.5),
            Pct(s.latency_ms, 0.99), s.latency_ms.empty() ? 0.0 : s.latency_ms.back(), s.no, s.bad);
      }
      std::printf("}, \"error_samples\": [");
      for (size_t i = 0; i < error_samples_.size(); ++i) {
        std::printf("%s%s", i ? ", " : "", JsonString(error_samples_[i]).c_str());
      }
      std::printf("]}\n");
    } else {
      std::printf("prefill          %ld messages appended (%ld bytes) in %.1f s\n",
                  prefill_appended_, prefill_bytes_, prefill_s_);
      std::printf(
          "clients          %d over %d users; login+select p50 %.1f ms p99 %.1f ms; %ld LOGIN "
          "retries after [UNAVAILABLE]\n",
          opts_.clients, opts_.users, Pct(login_ms_, 0.5), Pct(login_ms_, 0.99), login_retries_);
      std::printf("timed phase      %ld operations in %.3f s = %.1f ops/s\n", total, elapsed, rate);
      std::printf("errors           %ld (I/O %d, failed clients %d, anomalies %d)\n", errors,
                  io_errors_, clients_failed_, anomalies_);
      std::printf("INBOX size       %.1f at start, %.1f at end (average per client)\n",
                  Avg(inbox_start_), Avg(inbox_end_));
      std::printf("client CPU       %.2f s\n", cpu);
      std::printf("%-16s %6s %8s %8s %9s %9s %9s %5s %5s\n", "command", "weight", "count", "ops/s",
                  "p50 ms", "p99 ms", "max ms", "NO", "BAD");
      for (int i = 0; i < kNumOps; ++i) {
        OpStats& s = stats_[i];
        std::sort(s.latency_ms.begin(), s.latency_ms.end());
        std::printf("%-16s %5d%% %8zu %8.1f %9.3f %9.3f %9.3f %5d %5d\n", kMix[i].name, weights_[i],
                    s.latency_ms.size(), elapsed > 0 ? s.latency_ms.size() / elapsed : 0.0,
                    Pct(s.latency_ms, 0.5), Pct(s.latency_ms, 0.99),
                    s.latency_ms.empty() ? 0.0 : s.latency_ms.back(), s.no, s.bad);
      }
      for (const std::string& e : error_samples_) {
        std::printf("error: %s\n", e.c_str());
      }
    }
    if (opts_.prefill_only) {
      return timed_out_ ? 1 : 0;
    }
    return (errors > 0 || timed_out_ || clients_failed_ > 0 || total == 0) ? 1 : 0;
  }

 private:
  // ---- prefill ----
  awaitable<void> PrefillWorker() {
    while (!timed_out_ && next_prefill_user_ < opts_.users) {
      int user = ++next_prefill_user_;
      try {
        co_await Prefill(user);
      } catch (const std::exception& e) {
        ++prefill_failed_;
        Warn("prefill " + UserName(opts_, user) + ": " + Describe(e));
      }
    }
    if (--prefill_live_ == 0) {
      prefill_done_.Set();
    }
  }

  // Connects c's socket, reads the greeting and logs in as `user`.
  awaitable<void> Open(tcp::socket& sock, ImapConn& c, int user) {
    co_await sock.async_connect(ep_, use_awaitable);
    sock.set_option(tcp::no_delay(true));
    Response greeting;
    co_await c.Read(greeting);
    co_await Login(c, user);
  }

  awaitable<void> Prefill(int user) {
    tcp::socket sock(io_);
    ImapConn c(sock, registry_);
    co_await Open(sock, c, user);
    // Archive and Trash are the targets of COPY and MOVE; create them if the server has not.
    static constexpr const char* kBoxes[] = {"Archive", "Trash"};
    for (const char* box : kBoxes) {
      std::string cmd = std::string("STATUS ") + box + " (MESSAGES)";
      std::string st = co_await c.Command(cmd);
      if (!IsOk(st)) {
        std::string create = std::string("CREATE ") + box;
        std::string cs = co_await c.Command(create);
        if (!IsOk(cs)) {
          throw std::runtime_error(create + ": " + cs);
        }
      }
    }
    co_await Select(c);
    size_t have = c.uids.size();
    for (int i = static_cast<int>(have); i < opts_.prefill && !timed_out_; ++i) {
      std::string msg = MessageGenerator::Generate(user, i);
      Rng fr(static_cast<uint64_t>(user) * 1000003u + static_cast<uint64_t>(i));
      int f = static_cast<int>(fr.Below(100));
      const char* flags = f < 70 ? "(\\Seen) " : f < 75 ? "(\\Seen \\Flagged) " : "";
      std::string cmd =
          std::string("APPEND INBOX ") + flags + "{" + std::to_string(msg.size()) + "+}\r\n" + msg;
      std::string st = co_await c.Command(cmd);
      if (!IsOk(st)) {
        throw std::runtime_error("APPEND: " + st);
      }
      ++prefill_appended_;
      prefill_bytes_ += static_cast<long>(msg.size());
    }
    // A client's first sync: what a mail client fetches to list the folder.
    std::string sync = "UID FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)";
    std::string st = co_await c.Command(sync);
    if (!IsOk(st)) {
      throw std::runtime_error(sync + ": " + st);
    }
    std::string logout = "LOGOUT";
    co_await c.Command(logout);
  }

  // A refusal with [UNAVAILABLE] (the server's password checks per network
  // are bounded, and 50 clients from one address log in at once) is retried
  // after a growing pause, as a mail client would; anything else ends the client.
  static constexpr int kMaxLoginAttempts = 50;

  awaitable<void> Login(ImapConn& c, int user) {
    std::string cmd = "LOGIN " + Quote(UserName(opts_, user)) + " " + Quote(opts_.password);
    for (int attempt = 1;; ++attempt) {
      std::string st = co_await c.Command(cmd);
      if (IsOk(st)) co_return;
      if (st.find("[UNAVAILABLE]") == std::string::npos || attempt == kMaxLoginAttempts) {
        throw std::runtime_error("LOGIN " + UserName(opts_, user) + ": " + st);
      }
      ++login_retries_;
      asio::steady_timer pause(co_await asio::this_coro::executor);
      pause.expires_after(std::chrono::milliseconds(10 * attempt));
      co_await pause.async_wait(use_awaitable);
    }
  }

  // SELECT INBOX and learn every UID.
  awaitable<void> Select(ImapConn& c) {
    c.uids.clear();
    std::string sel = "SELECT INBOX";
    std::string st = co_await c.Command(sel);
    if (!IsOk(st)) {
      throw std::runtime_error("SELECT INBOX: " + st);
    }
    c.search_result.clear();
    c.saw_search = false;
    std::string search = "UID SEARCH ALL";
    st = co_await c.Command(search);
    if (!IsOk(st)) {
      throw std::runtime_error("UID SEARCH ALL: " + st);
    }
    std::vector<uint32_t> all = c.search_result;
    std::sort(all.begin(), all.end());
    if (all.size() == c.uids.size()) {
      c.uids = all;
    } else {  // changed in between: learn what we can, the rest stays unknown
      for (size_t i = 0; i < std::min(all.size(), c.uids.size()); ++i) {
        c.uids[i] = all[i];
      }
    }
  }

  // ---- timed phase ----
  awaitable<void> Client(int index) {
    tcp::socket sock(io_);
    ImapConn c(sock, registry_);
    bool waiting = true;
    int user = index % opts_.users + 1;
    int slot = index / opts_.users;  // this client's share of the user's deletions
    int slots = (opts_.clients - (user - 1) + opts_.users - 1) / opts_.users;
    Rng rng(0xC0FFEEull + static_cast<uint64_t>(index) * 7919u);
    int appended = 0, removed = 0, op_index = -1;
    try {
      auto t0 = Clock::now();
      co_await Open(sock, c, user);
      co_await Select(c);
      login_ms_.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      inbox_start_.push_back(static_cast<double>(c.uids.size()));
      waiting = false;
      if (--waiting_ == 0) {
        Start();
      }
      co_await ready_.Wait();

      while (!timed_out_ && KeepGoing()) {
        op_index = PickOp(rng);
        int next_append = opts_.prefill + 1000000 + index * 100000 + appended;
        auto t = Clock::now();
        Op op = static_cast<Op>(op_index);
        std::string status =
            co_await RunOp(c, op, rng, user, next_append, slot, slots, appended, removed);
        auto now = Clock::now();
        Record(op_index, status, std::chrono::duration<double, std::milli>(now - t).count());
        last_done_ = now;
        op_index = -1;
      }
      inbox_end_.push_back(static_cast<double>(c.uids.size()));
      anomalies_ += c.anomalies_;
      std::string logout = "LOGOUT";
      co_await c.Command(logout);
    } catch (const std::exception& e) {
      anomalies_ += c.anomalies_;
      if (op_index >= 0) {
        ++io_errors_;
      }
      if (waiting || op_index >= 0) {
        ++clients_failed_;
        if (!timed_out_) {
          Warn("client " + std::to_string(index) + " (" + UserName(opts_, user) + ")" +
               (op_index >= 0 ? std::string(" during ") + kMix[op_index].name : "") + ": " +
               Describe(e));
        }
      }
    }
    if (waiting && --waiting_ == 0) {
      Start();
    }
    if (--live_ == 0) {
      done_.Set();
    }
  }

  bool KeepGoing() {
    if (opts_.ops > 0) {
      return issued_++ < opts_.ops;
    }
    return Clock::now() < end_;
  }

  int PickOp(Rng& rng) const {
    int x = static_cast<int>(rng.Below(static_cast<size_t>(total_weight_)));
    for (int i = 0; i < kNumOps; ++i) {
      if (x < weights_[i]) {
        return i;
      }
      x -= weights_[i];
    }
    return 0;
  }

  // Runs one operation; returns the tagged status of the (last) command.
  awaitable<std::string> RunOp(ImapConn& c, Op op, Rng& rng, int user, int next_append, int slot,
                               int slots, int& appended, int& removed) {
    if (op == kSession) {
      co_return co_await Session(user);
    }
    size_t known = c.KnownCount();
    if (known == 0 && op != kSearch && op != kIdle && op != kListView) {
      op = c.uids.empty() ? kAppend : kFetchFlags;  // nothing to act on yet
    }
    auto uid_at = [&](size_t i) { return std::to_string(c.uids[i]); };
    std::string cmd, status;
    switch (op) {
      case kFetchFlags: {
        if (known < c.uids.size()) {  // learn the UIDs of new messages (a client's sync)
          uint32_t from = known > 0 ? c.uids[known - 1] + 1 : 1;
          cmd = "UID FETCH " + std::to_string(from) + ":* (FLAGS)";
        } else {
          size_t start = known > 50 ? rng.Below(known - 50 + 1) : 0;
          size_t end = std::min(known, start + 50) - 1;
          cmd = "UID FETCH " + uid_at(start) + ":" + uid_at(end) + " (FLAGS)";
        }
        break;
      }
      case kFetchEnv:
        cmd = "UID FETCH " + uid_at(rng.Below(known)) + " (ENVELOPE BODYSTRUCTURE)";
        break;
      case kFetchBody: {
        cmd = "UID FETCH " + uid_at(rng.Below(known)) + " (BODY.PEEK[])";
        Response got;
        status = co_await c.Command(cmd, &got);
        fetched_bytes_ += static_cast<long>(got.literal_bytes);
        co_return status;
      }
      case kStore: {
        static constexpr const char* kStores[] = {"+FLAGS (\\Seen)", "-FLAGS (\\Seen)",
                                                  "+FLAGS (\\Flagged)", "-FLAGS (\\Flagged)",
                                                  "+FLAGS (\\Seen)"};
        cmd = "UID STORE " + uid_at(rng.Below(known)) + " " + rng.Pick(kStores);
        break;
      }
      case kSearch: {
        size_t kind = rng.Below(3);
        if (kind == 0) {
          cmd = std::string("UID SEARCH SUBJECT ") + Quote(rng.Pick(kSubjectTerms));
        } else if (kind == 1) {
          cmd = std::string("UID SEARCH FROM ") + Quote(rng.Pick(kLast));
        } else {
          cmd = "UID SEARCH UNSEEN";
        }
        break;
      }
      case kAppend: {
        std::string msg = MessageGenerator::Generate(user, next_append);
        cmd = "APPEND INBOX {" + std::to_string(msg.size()) + "+}\r\n" + msg;
        status = co_await c.Command(cmd);
        if (IsOk(status)) {
          ++appended;
        }
        co_return status;
      }
      case kCopy:
        cmd = "UID COPY " + uid_at(rng.Below(known)) + " Archive";
        break;
      case kMove:
      case kExpunge: {
        // Remove as many messages as this client appended beyond what it removed (1-4), so
        // the INBOX keeps its size; only UIDs of this client's slot, so that two clients of
        // one user do not remove the same message.
        int want = std::clamp(appended - removed, 1, 4);
        std::string set;
        int got = 0;
        size_t at = rng.Below(known);
        for (size_t tries = 0; tries < known && got < want; ++tries, at = (at + 1) % known) {
          if (static_cast<int>(c.uids[at] % static_cast<uint32_t>(slots)) == slot) {
            set += (got++ ? "," : "") + uid_at(at);
          }
        }
        if (got == 0) {
          set = uid_at(at);
          got = 1;
        }
        if (op == kMove) {
          cmd = "UID MOVE " + set + " Trash";
        } else {
          std::string mark = "UID STORE " + set + " +FLAGS.SILENT (\\Deleted)";
          status = co_await c.Command(mark);
          if (!IsOk(status)) {
            co_return status;
          }
          cmd = "UID EXPUNGE " + set;
        }
        status = co_await c.Command(cmd);
        if (IsOk(status)) {
          removed += got;
        }
        co_return status;
      }
      case kIdle: {
        std::string tag = c.NextTag();
        std::string line = tag + " IDLE\r\n";
        co_await c.Send(line);
        bool cont = co_await c.ReadContinuation(tag, &status);
        if (!cont) {
          co_return status;
        }
        std::string done = "DONE\r\n";
        co_await c.Send(done);
        status = co_await c.ReadTagged(tag);
        co_return status;
      }
      case kListView: {
        // As the JMAP side (hato-jmap-load): the newest 50 of the INBOX with
        // what a list shows (ENVELOPE: date, from, subject), found by SEARCH.
        c.search_result.clear();
        c.saw_search = false;
        std::string search = "UID SEARCH ALL";
        status = co_await c.Command(search);
        if (!IsOk(status) || c.search_result.empty()) {
          co_return status;
        }
        std::vector<uint32_t> found = c.search_result;
        std::sort(found.begin(), found.end());
        size_t from = found.size() > 50 ? found.size() - 50 : 0;
        for (size_t i = from; i < found.size(); ++i) {
          cmd += (i > from ? "," : "") + std::to_string(found[i]);
        }
        cmd = "UID FETCH " + cmd + " (ENVELOPE)";
        break;
      }
      case kSession:
      case kNumOps:
        break;
    }
    status = co_await c.Command(cmd);
    co_return status;
  }

  // A client that logs in, looks at its INBOX and leaves, on a connection of its own: a
  // POP3-style poller or a phone reconnecting after a network change. The first status
  // that is not OK is the operation's status.
  awaitable<std::string> Session(int user) {
    tcp::socket sock(io_);
    ImapConn s(sock, registry_);
    co_await Open(sock, s, user);
    static constexpr const char* kWork[] = {"SELECT INBOX", "FETCH 1:10 (FLAGS)", "LOGOUT"};
    static_assert(std::size(kWork) + 1 == kSessionCommands);
    std::string status = "OK";
    for (const char* command : kWork) {
      std::string cmd = command;
      std::string st = co_await s.Command(cmd);
      if (!IsOk(st) && IsOk(status)) {
        status = st;
      }
    }
    anomalies_ += s.anomalies_;
    co_return status;
  }

  void Record(int op, const std::string& status, double ms) {
    OpStats& s = stats_[op];
    s.latency_ms.push_back(ms);
    if (status.rfind("NO", 0) == 0) {
      ++s.no;
    } else if (status.rfind("BAD", 0) == 0) {
      ++s.bad;
    } else if (IsOk(status)) {
      return;
    } else {
      ++s.bad;  // not a status at all
    }
    if (error_samples_.size() < 10) {
      error_samples_.push_back(std::string(kMix[op].name) + ": " + status);
    }
  }

  void Start() {
    start_ = last_done_ = Clock::now();
    end_ = start_ + std::chrono::seconds(opts_.seconds);
    started_ = true;
    ready_.Set();
  }

  void Warn(const std::string& msg) {
    if (++warnings_ <= 5) {
      std::fprintf(stderr, "hato-imap-load: %s\n", msg.c_str());
    }
    if (warnings_ == 5) {
      std::fprintf(stderr, "hato-imap-load: (further errors not shown)\n");
    }
    if (error_samples_.size() < 10) {
      error_samples_.push_back(msg);
    }
  }

  static double Pct(const std::vector<double>& v, double p) {  // v sorted
    if (v.empty()) {
      return 0.0;
    }
    size_t rank = static_cast<size_t>(p * static_cast<double>(v.size()) + 0.999999);
    return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
  }
  static double Avg(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) {
      s += x;
    }
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
  }
  static std::string JsonString(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') {
        o += '\\';
        o += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        o += ' ';
      } else {
        o += c;
      }
    }
    return o + "\"";
  }

  asio::io_context& io_;
  const Options& opts_;
  Event ready_, done_, prefill_done_;
  asio::steady_timer deadline_;
  std::set<tcp::socket*> registry_;  // open sockets, closed on timeout
  tcp::endpoint ep_;
  std::array<OpStats, kNumOps> stats_{};
  std::vector<double> login_ms_, inbox_start_, inbox_end_;
  std::vector<std::string> error_samples_;
  Clock::time_point start_, end_, last_done_;
  bool started_ = false, timed_out_ = false;
  std::array<int, kNumOps> weights_ = MixWeights(opts_.mix);
  int total_weight_ = 0;
  int live_ = 0, waiting_ = 0, warnings_ = 0, io_errors_ = 0, clients_failed_ = 0;
  int anomalies_ = 0, issued_ = 0;
  int next_prefill_user_ = 0, prefill_live_ = 0, prefill_failed_ = 0;
  long prefill_appended_ = 0, prefill_bytes_ = 0, fetched_bytes_ = 0, login_retries_ = 0;
  double prefill_s_ = 0;
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
      std::fprintf(stderr, "hato-imap-load: fatal: %s\n", Describe(ex).c_str());
    }
  });
  io.run();
  if (failed) {
    return 2;
  }
  return run.Report();
}
