// libFuzzer target for the hato.toml parser (src/config/config.h).
//
// Invariants:
//   * Parse never lets an exception escape (toml++ throws internally; Parse must
//     turn every failure into an error Result);
//   * errors are kInvalid with a message starting "config: ";
//   * on success every limit is within its documented range and
//     penalty_base_ms <= penalty_max_ms; listener addresses are empty or host:port;
//   * the parsed Config, written back as TOML, re-parses to an equal Config;
//   * DefaultText(h), for a hostname h taken from the input, parses to the
//     defaults with that hostname.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "config/config.h"
#include "fuzz_util.h"

namespace {

using hato::config::Config;

hato::Result<Config> ParseNoThrow(std::string_view text) {
  try {
    return hato::config::Parse(text);
  } catch (const std::exception& e) {
    hato::fuzz::Fail(__FILE__, __LINE__, "exception escaped config::Parse", std::string(text),
                     e.what());
  } catch (...) {
    hato::fuzz::Fail(__FILE__, __LINE__, "unknown exception escaped config::Parse",
                     std::string(text), "");
  }
}

// TOML basic string (toml.io v1.0.0, "String"): escape quote, backslash and controls.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string Bool(bool b) { return b ? "true" : "false"; }

std::string ToToml(const Config& c) {
  using std::to_string;
  std::string t;
  t += "[server]\nhostname = " + Quote(c.hostname) + "\n";
  t += "[listen]\nsmtp = " + Quote(c.listen.smtp) + "\nsubmission = " + Quote(c.listen.submission) +
       "\nimap = " + Quote(c.listen.imap) + "\npop3 = " + Quote(c.listen.pop3) +
       "\nhttp = " + Quote(c.listen.http) + "\nsubmissions = " + Quote(c.listen.submissions) + "\n";
  t += "[smtp]\nmax_line_length = " + to_string(c.smtp.max_line_length) +
       "\nmax_message_size = " + to_string(c.smtp.max_message_size) +
       "\nmax_recipients = " + to_string(c.smtp.max_recipients) +
       "\nmax_errors = " + to_string(c.smtp.max_errors) +
       "\nidle_timeout_seconds = " + to_string(c.smtp.idle_timeout_seconds) +
       "\ncommit_timeout_seconds = " + to_string(c.smtp.commit_timeout_seconds) +
       "\nmax_connections = " + to_string(c.smtp.max_connections) + "\n";
  t += "[pop3]\nidle_timeout_seconds = " + to_string(c.pop3.idle_timeout_seconds) +
       "\nmax_connections = " + to_string(c.pop3.max_connections) + "\n";
  t += "[auth]\nallow_plaintext_on_loopback = " + Bool(c.auth.allow_plaintext_on_loopback) +
       "\npenalty_base_ms = " + to_string(c.auth.penalty_base_ms) +
       "\npenalty_max_ms = " + to_string(c.auth.penalty_max_ms) + "\n";
  t += "[submission]\nmax_messages_per_hour = " + to_string(c.submission.max_messages_per_hour) +
       "\nmax_messages_per_day = " + to_string(c.submission.max_messages_per_day) + "\n";
  const auto& o = c.outbound;
  t += "[outbound]\nrelay_host = " + Quote(o.relay_host) + "\nresolver = " + Quote(o.resolver) +
       "\nsmtp_port = " + to_string(o.smtp_port) +
       "\nmax_connections = " + to_string(o.max_connections) +
       "\nmax_connections_per_destination = " + to_string(o.max_connections_per_destination) +
       "\nmax_messages_per_minute_per_destination = " +
       to_string(o.max_messages_per_minute_per_destination) +
       "\nretry_base_seconds = " + to_string(o.retry_base_seconds) +
       "\nretry_max_seconds = " + to_string(o.retry_max_seconds) +
       "\nmax_lifetime_seconds = " + to_string(o.max_lifetime_seconds) +
       "\ndelay_warning_seconds = " + to_string(o.delay_warning_seconds) +
       "\nconnect_timeout_seconds = " + to_string(o.connect_timeout_seconds) +
       "\ncommand_timeout_seconds = " + to_string(o.command_timeout_seconds) +
       "\nstarttls = " + Bool(o.starttls) + "\n";
  t += "[retention]\ndays = " + to_string(c.retention_days) + "\n";
  t += "[tls]\ncert = " + Quote(c.tls_cert) + "\nkey = " + Quote(c.tls_key) + "\n";
  t += "[store]\ncompress = " + Bool(c.store_compress) +
       "\nmax_pending_writes = " + to_string(c.store_max_pending_writes) + "\n";
  t += "[metrics]\nlisten = " + Quote(c.metrics_listen) + "\n";
  return t;
}

void CheckSame(const Config& a, const Config& b) {
  FUZZ_CHECK_EQ_STR(a.hostname, b.hostname);
  FUZZ_CHECK_EQ_STR(a.listen.smtp, b.listen.smtp);
  FUZZ_CHECK_EQ_STR(a.listen.submission, b.listen.submission);
  FUZZ_CHECK_EQ_STR(a.listen.imap, b.listen.imap);
  FUZZ_CHECK_EQ_STR(a.listen.pop3, b.listen.pop3);
  FUZZ_CHECK_EQ_STR(a.listen.http, b.listen.http);
  FUZZ_CHECK_EQ_STR(a.metrics_listen, b.metrics_listen);
  FUZZ_CHECK(a.smtp.max_line_length == b.smtp.max_line_length);
  FUZZ_CHECK(a.smtp.max_message_size == b.smtp.max_message_size);
  FUZZ_CHECK(a.smtp.max_recipients == b.smtp.max_recipients);
  FUZZ_CHECK(a.smtp.max_errors == b.smtp.max_errors);
  FUZZ_CHECK(a.smtp.idle_timeout_seconds == b.smtp.idle_timeout_seconds);
  FUZZ_CHECK(a.smtp.commit_timeout_seconds == b.smtp.commit_timeout_seconds);
  FUZZ_CHECK(a.smtp.max_connections == b.smtp.max_connections);
  FUZZ_CHECK(a.pop3.idle_timeout_seconds == b.pop3.idle_timeout_seconds);
  FUZZ_CHECK(a.pop3.max_connections == b.pop3.max_connections);
  FUZZ_CHECK(a.auth.allow_plaintext_on_loopback == b.auth.allow_plaintext_on_loopback);
  FUZZ_CHECK(a.auth.penalty_base_ms == b.auth.penalty_base_ms);
  FUZZ_CHECK(a.auth.penalty_max_ms == b.auth.penalty_max_ms);
  FUZZ_CHECK(a.retention_days == b.retention_days);
  FUZZ_CHECK_EQ_STR(a.tls_cert, b.tls_cert);
  FUZZ_CHECK_EQ_STR(a.tls_key, b.tls_key);
  FUZZ_CHECK(a.store_compress == b.store_compress);
  FUZZ_CHECK(a.store_max_pending_writes == b.store_max_pending_writes);
  FUZZ_CHECK_EQ_STR(a.listen.submissions, b.listen.submissions);
  FUZZ_CHECK(a.submission.max_messages_per_hour == b.submission.max_messages_per_hour);
  FUZZ_CHECK(a.submission.max_messages_per_day == b.submission.max_messages_per_day);
  FUZZ_CHECK_EQ_STR(a.outbound.relay_host, b.outbound.relay_host);
  FUZZ_CHECK_EQ_STR(a.outbound.resolver, b.outbound.resolver);
  FUZZ_CHECK(a.outbound.smtp_port == b.outbound.smtp_port);
  FUZZ_CHECK(a.outbound.max_connections == b.outbound.max_connections);
  FUZZ_CHECK(a.outbound.max_connections_per_destination ==
             b.outbound.max_connections_per_destination);
  FUZZ_CHECK(a.outbound.max_messages_per_minute_per_destination ==
             b.outbound.max_messages_per_minute_per_destination);
  FUZZ_CHECK(a.outbound.retry_base_seconds == b.outbound.retry_base_seconds);
  FUZZ_CHECK(a.outbound.retry_max_seconds == b.outbound.retry_max_seconds);
  FUZZ_CHECK(a.outbound.max_lifetime_seconds == b.outbound.max_lifetime_seconds);
  FUZZ_CHECK(a.outbound.delay_warning_seconds == b.outbound.delay_warning_seconds);
  FUZZ_CHECK(a.outbound.connect_timeout_seconds == b.outbound.connect_timeout_seconds);
  FUZZ_CHECK(a.outbound.command_timeout_seconds == b.outbound.command_timeout_seconds);
  FUZZ_CHECK(a.outbound.starttls == b.outbound.starttls);
}

bool HostPortOrEmpty(const std::string& v) {
  if (v.empty()) return true;
  size_t colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == v.size()) return false;
  return v.find_first_not_of("0123456789", colon + 1) == std::string::npos;
}

// The documented ranges (config.cc setters; config.h comments).
void CheckRanges(const Config& c) {
  FUZZ_CHECK(c.smtp.max_line_length >= 512 && c.smtp.max_line_length <= 65536);
  FUZZ_CHECK(c.outbound.retry_base_seconds >= 1 &&
             c.outbound.retry_base_seconds <= c.outbound.retry_max_seconds);
  FUZZ_CHECK(c.outbound.smtp_port >= 1 && c.outbound.smtp_port <= 65535);
  FUZZ_CHECK(HostPortOrEmpty(c.listen.submissions) && HostPortOrEmpty(c.outbound.relay_host));
  FUZZ_CHECK(c.smtp.max_message_size >= 1024 && c.smtp.max_message_size <= (1ull << 40));
  FUZZ_CHECK(c.smtp.max_recipients >= 100 && c.smtp.max_recipients <= 100000);
  FUZZ_CHECK(c.smtp.max_errors >= 1 && c.smtp.max_errors <= 1000);
  FUZZ_CHECK(c.smtp.idle_timeout_seconds >= 1 && c.smtp.idle_timeout_seconds <= 86400);
  FUZZ_CHECK(c.smtp.commit_timeout_seconds >= 1 && c.smtp.commit_timeout_seconds <= 3600);
  FUZZ_CHECK(c.smtp.max_connections >= 1 && c.smtp.max_connections <= 1000000);
  FUZZ_CHECK(c.pop3.idle_timeout_seconds >= 1 && c.pop3.idle_timeout_seconds <= 86400);
  FUZZ_CHECK(c.pop3.max_connections >= 1 && c.pop3.max_connections <= 1000000);
  FUZZ_CHECK(c.auth.penalty_base_ms >= 0 && c.auth.penalty_base_ms <= 60000);
  FUZZ_CHECK(c.auth.penalty_max_ms >= 0 && c.auth.penalty_max_ms <= 600000);
  FUZZ_CHECK(c.auth.penalty_base_ms <= c.auth.penalty_max_ms);
  FUZZ_CHECK(c.retention_days >= 0 && c.retention_days <= 36500);
  FUZZ_CHECK(c.store_max_pending_writes >= 1 && c.store_max_pending_writes <= 10000000);
  for (const std::string* l : {&c.listen.smtp, &c.listen.submission, &c.listen.imap, &c.listen.pop3,
                               &c.listen.http, &c.metrics_listen}) {
    FUZZ_CHECK(HostPortOrEmpty(*l));
  }
}

void CheckDefaultText(std::string_view in) {
  std::string host;
  for (char ch : in) {
    if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-') host += ch;
    if (host.size() == 64) break;
  }
  if (host.empty()) host = "mail.example.test";
  auto r = ParseNoThrow(hato::config::DefaultText(host));
  if (!r.ok()) {
    hato::fuzz::Fail(__FILE__, __LINE__, "DefaultText does not parse", host, r.error().message);
  }
  FUZZ_CHECK_EQ_STR(r->hostname, host);
  Config expected = *r;
  expected.hostname = "localhost";
  // The default text's listeners and TLS paths differ from the struct defaults on purpose.
  Config defaults;
  defaults.listen = expected.listen;
  defaults.tls_cert = expected.tls_cert;
  defaults.tls_key = expected.tls_key;
  CheckSame(expected, defaults);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = ParseNoThrow(text);
  if (!r.ok()) {
    FUZZ_CHECK(r.error().kind == hato::ErrorKind::kInvalid);
    FUZZ_CHECK(r.error().message.starts_with("config: "));
  } else {
    CheckRanges(*r);
    std::string canon = ToToml(*r);
    auto again = ParseNoThrow(canon);
    if (!again.ok()) {
      hato::fuzz::Fail(__FILE__, __LINE__, "canonical TOML does not re-parse", canon,
                       again.error().message);
    }
    CheckSame(*r, *again);
  }
  // Cheap enough to run on a small sample of inputs only.
  if (hato::fuzz::Hash(text) % 64 == 0) CheckDefaultText(text);
  return 0;
}
