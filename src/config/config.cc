#include "config/config.h"

#include <toml++/toml.h>

#include <cstdio>
#include <functional>
#include <map>
#include <sstream>

#include "base/strings.h"

namespace hato::config {
namespace {

// One handler per key: reads the node into the Config or returns an error.
using Setter = std::function<Status(const toml::node&, Config&)>;

Status WantString(const toml::node& n, const std::string& key, std::string& out) {
  auto v = n.value<std::string>();
  if (!v) return Err(ErrorKind::kInvalid, "config: " + key + " must be a string");
  out = *v;
  return Ok();
}

// lists.copy_dkim's values (msgauth::ParseKeyChoice).
bool ValidCopyDkim(std::string_view v) {
  return v == "key" || v == "ed25519" || v == "rsa+ed25519";
}

template <typename T>
Status WantInt(const toml::node& n, const std::string& key, int64_t lo, int64_t hi, T& out) {
  if (!n.is_integer()) return Err(ErrorKind::kInvalid, "config: " + key + " must be an integer");
  int64_t v = *n.value<int64_t>();
  if (v < lo || v > hi) {
    return Err(ErrorKind::kInvalid, "config: " + key + " must be between " + std::to_string(lo) +
                                        " and " + std::to_string(hi));
  }
  out = static_cast<T>(v);
  return Ok();
}

Status WantBool(const toml::node& n, const std::string& key, bool& out) {
  if (!n.is_boolean()) return Err(ErrorKind::kInvalid, "config: " + key + " must be true or false");
  out = *n.value<bool>();
  return Ok();
}

Status CheckHostPort(const std::string& key, const std::string& v) {
  if (v.empty()) return Ok();
  size_t colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == v.size()) {
    return Err(ErrorKind::kInvalid, "config: " + key + " must be host:port, got '" + v + "'");
  }
  for (size_t i = colon + 1; i < v.size(); ++i) {
    if (v[i] < '0' || v[i] > '9') {
      return Err(ErrorKind::kInvalid, "config: " + key + " has a bad port: '" + v + "'");
    }
  }
  return Ok();
}

Status WantScore(const toml::node& n, const std::string& key, double& out) {
  if (!n.is_number()) return Err(ErrorKind::kInvalid, "config: " + key + " must be a number");
  double v = *n.value<double>();
  if (!(v >= 0 && v <= 1000)) {
    return Err(ErrorKind::kInvalid, "config: " + key + " must be between 0 and 1000");
  }
  out = v;
  return Ok();
}

Status WantScanAction(const toml::node& n, const std::string& key, std::string& out) {
  if (auto st = WantString(n, key, out); !st) return st;
  if (out != "reject" && out != "junk" && out != "mark" && out != "none") {
    return Err(ErrorKind::kInvalid,
               "config: " + key + " must be \"reject\", \"junk\", \"mark\" or \"none\"");
  }
  return Ok();
}

Status WantHttpUrl(const toml::node& n, const std::string& key, std::string& out) {
  if (auto st = WantString(n, key, out); !st) return st;
  if (out.empty()) return Ok();
  if (out.rfind("http://", 0) != 0) {
    return Err(ErrorKind::kInvalid, "config: " + key + " must be http://HOST:PORT");
  }
  std::string hostport = out.substr(7);
  while (!hostport.empty() && hostport.back() == '/') hostport.pop_back();
  return CheckHostPort(key, hostport);
}

const std::map<std::string, Setter>& Setters() {
  constexpr int64_t kMaxInt = 1ll << 40;
  static const std::map<std::string, Setter> kSetters = {
      {"server.hostname",
       [](const toml::node& n, Config& c) { return WantString(n, "server.hostname", c.hostname); }},
      {"server.per_ip_limits_on_loopback",
       [](const toml::node& n, Config& c) {
         return WantBool(n, "server.per_ip_limits_on_loopback", c.per_ip_limits_on_loopback);
       }},
      {"server.postmaster",
       [](const toml::node& n, Config& c) -> Status {
         if (auto st = WantString(n, "server.postmaster", c.postmaster); !st) return st;
         size_t at = c.postmaster.find('@');
         if (!c.postmaster.empty() &&
             (at == 0 || at == std::string::npos || at + 1 == c.postmaster.size())) {
           return Err(ErrorKind::kInvalid,
                      "config: server.postmaster must be an address (user@domain) or \"\"");
         }
         return Ok();
       }},
      {"log.format",
       [](const toml::node& n, Config& c) -> Status {
         if (auto st = WantString(n, "log.format", c.log.format); !st) return st;
         if (c.log.format != "text" && c.log.format != "json") {
           return Err(ErrorKind::kInvalid, "config: log.format must be \"text\" or \"json\"");
         }
         return Ok();
       }},
      {"log.level",
       [](const toml::node& n, Config& c) -> Status {
         if (auto st = WantString(n, "log.level", c.log.level); !st) return st;
         const std::string& v = c.log.level;
         if (v != "debug" && v != "info" && v != "warn" && v != "error") {
           return Err(ErrorKind::kInvalid,
                      "config: log.level must be \"debug\", \"info\", \"warn\" or \"error\"");
         }
         return Ok();
       }},
      {"smtp.max_connections_per_ip",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "smtp.max_connections_per_ip", 0, 1000000,
                        c.smtp.max_connections_per_ip);
       }},
      {"pop3.max_connections_per_ip",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "pop3.max_connections_per_ip", 0, 1000000,
                        c.pop3.max_connections_per_ip);
       }},
      {"imap.max_connections_per_ip",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.max_connections_per_ip", 0, 1000000,
                        c.imap.max_connections_per_ip);
       }},
      {"listen.smtp",
       [](const toml::node& n, Config& c) {
         auto s = WantString(n, "listen.smtp", c.listen.smtp);
         return s ? CheckHostPort("listen.smtp", c.listen.smtp) : s;
       }},
      {"listen.submission",
       [](const toml::node& n, Config& c) {
         auto s = WantString(n, "listen.submission", c.listen.submission);
         return s ? CheckHostPort("listen.submission", c.listen.submission) : s;
       }},
      {"listen.submissions",
       [](const toml::node& n, Config& c) {
         auto s = WantString(n, "listen.submissions", c.listen.submissions);
         return s ? CheckHostPort("listen.submissions", c.listen.submissions) : s;
       }},
      {"submission.max_messages_per_hour",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "submission.max_messages_per_hour", 0, 10000000,
                        c.submission.max_messages_per_hour);
       }},
      {"submission.max_messages_per_day",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "submission.max_messages_per_day", 0, 100000000,
                        c.submission.max_messages_per_day);
       }},
      {"outbound.relay_host",
       [](const toml::node& n, Config& c) {
         auto s = WantString(n, "outbound.relay_host", c.outbound.relay_host);
         return s ? CheckHostPort("outbound.relay_host", c.outbound.relay_host) : s;
       }},
      {"outbound.relay_auth_file",
       [](const toml::node& n, Config& c) {
         return WantString(n, "outbound.relay_auth_file", c.outbound.relay_auth_file);
       }},
      {"outbound.relay_tls",
       [](const toml::node& n, Config& c) -> Status {
         auto s = WantString(n, "outbound.relay_tls", c.outbound.relay_tls);
         if (s && c.outbound.relay_tls != "starttls" && c.outbound.relay_tls != "implicit") {
           return Err(ErrorKind::kInvalid,
                      "config: outbound.relay_tls must be \"starttls\" or \"implicit\"");
         }
         return s;
       }},
      {"outbound.resolver",
       [](const toml::node& n, Config& c) {
         return WantString(n, "outbound.resolver", c.outbound.resolver);
       }},
      {"outbound.smtp_port",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.smtp_port", 1, 65535, c.outbound.smtp_port);
       }},
      {"outbound.max_connections",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.max_connections", 1, 100000, c.outbound.max_connections);
       }},
      {"outbound.max_connections_per_destination",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.max_connections_per_destination", 1, 10000,
                        c.outbound.max_connections_per_destination);
       }},
      {"outbound.max_messages_per_minute_per_destination",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.max_messages_per_minute_per_destination", 0, 1000000,
                        c.outbound.max_messages_per_minute_per_destination);
       }},
      {"outbound.max_messages_per_connection",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.max_messages_per_connection", 1, 100000,
                        c.outbound.max_messages_per_connection);
       }},
      {"outbound.connection_idle_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.connection_idle_seconds", 1, 240,
                        c.outbound.connection_idle_seconds);
       }},
      {"outbound.max_idle_connections",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.max_idle_connections", 0, 100000,
                        c.outbound.max_idle_connections);
       }},
      {"outbound.max_idle_connections_per_host",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.max_idle_connections_per_host", 0, 100000,
                        c.outbound.max_idle_connections_per_host);
       }},
      {"outbound.retry_base_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.retry_base_seconds", 1, 86400, c.outbound.retry_base_seconds);
       }},
      {"outbound.retry_max_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.retry_max_seconds", 1, 604800, c.outbound.retry_max_seconds);
       }},
      {"outbound.max_lifetime_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.max_lifetime_seconds", 1, 60 * 86400,
                        c.outbound.max_lifetime_seconds);
       }},
      {"outbound.delay_warning_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.delay_warning_seconds", 0, 60 * 86400,
                        c.outbound.delay_warning_seconds);
       }},
      {"outbound.connect_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.connect_timeout_seconds", 1, 600,
                        c.outbound.connect_timeout_seconds);
       }},
      {"outbound.command_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.command_timeout_seconds", 1, 3600,
                        c.outbound.command_timeout_seconds);
       }},
      {"outbound.starttls",
       [](const toml::node& n, Config& c) {
         return WantBool(n, "outbound.starttls", c.outbound.starttls);
       }},
      {"outbound.tls_policy",
       [](const toml::node& n, Config& c) -> Status {
         const toml::table* t = n.as_table();
         if (t == nullptr) {
           return Err(ErrorKind::kInvalid,
                      "config: outbound.tls_policy must be a table of domain = level");
         }
         for (const auto& [domain, level] : *t) {
           std::string key = "outbound.tls_policy." + std::string(domain.str());
           std::string v;
           if (auto st = WantString(level, key, v); !st) return st;
           if (v != "none" && v != "may" && v != "encrypt" && v != "verify") {
             return Err(ErrorKind::kInvalid,
                        "config: " + key + " must be \"none\", \"may\", \"encrypt\" or \"verify\"");
           }
           c.outbound.tls_policy[AsciiLower(domain.str())] = v;
         }
         return Ok();
       }},
      {"outbound.mta_sts",
       [](const toml::node& n, Config& c) {
         return WantBool(n, "outbound.mta_sts", c.outbound.mta_sts);
       }},
      {"outbound.dane",
       [](const toml::node& n, Config& c) {
         return WantBool(n, "outbound.dane", c.outbound.dane);
       }},
      {"outbound.srs_domain",
       [](const toml::node& n, Config& c) {
         return WantString(n, "outbound.srs_domain", c.outbound.srs_domain);
       }},
      {"outbound.mta_sts_port",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "outbound.mta_sts_port", 1, 65535, c.outbound.mta_sts_port);
       }},
      {"outbound.tls_ca_file",
       [](const toml::node& n, Config& c) {
         return WantString(n, "outbound.tls_ca_file", c.outbound.tls_ca_file);
       }},
      {"sieve.max_script_bytes",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "sieve.max_script_bytes", 64, 10485760, c.sieve.max_script_bytes);
       }},
      {"sieve.max_scripts",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "sieve.max_scripts", 1, 100000, c.sieve.max_scripts);
       }},
      {"sieve.max_nesting",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "sieve.max_nesting", 1, 256, c.sieve.max_nesting);
       }},
      {"sieve.max_nodes",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "sieve.max_nodes", 16, 1000000, c.sieve.max_nodes);
       }},
      {"sieve.max_actions",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "sieve.max_actions", 1, 10000, c.sieve.max_actions);
       }},
      {"sieve.max_redirects",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "sieve.max_redirects", 0, 1000, c.sieve.max_redirects);
       }},
      {"sieve.max_includes",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "sieve.max_includes", 0, 64, c.sieve.max_includes);
       }},
      {"sieve.max_redirects_per_hour",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "sieve.max_redirects_per_hour", 0, 1000000, c.sieve.max_redirects_per_hour);
       }},
      {"lists.max_bulk_connections",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "lists.max_bulk_connections", 1, 100000, c.lists.max_bulk_connections);
       }},
      {"lists.destination_rates",
       [](const toml::node& n, Config& c) -> Status {
         const toml::table* t = n.as_table();
         if (t == nullptr) {
           return Err(ErrorKind::kInvalid,
                      "config: lists.destination_rates must be a table of domain = per-minute");
         }
         for (const auto& [domain, v] : *t) {
           size_t rate = 0;
           std::string key = "lists.destination_rates." + std::string(domain.str());
           if (auto st = WantInt(v, key, 1, 1000000, rate); !st) return st;
           c.lists.destination_rates[AsciiLower(domain.str())] = rate;
         }
         return Ok();
       }},
      {"lists.confirm_ttl_hours",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "lists.confirm_ttl_hours", 1, 24 * 365, c.lists.confirm_ttl_hours);
       }},
      {"lists.max_join_requests_per_hour",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "lists.max_join_requests_per_hour", 1, 1000,
                        c.lists.max_join_requests_per_hour);
       }},
      {"lists.max_join_requests_per_source",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "lists.max_join_requests_per_source", 1, 1000000,
                        c.lists.max_join_requests_per_source);
       }},
      {"lists.max_message_size",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "lists.max_message_size", 1024, int64_t{1} << 40,
                        c.lists.max_message_size);
       }},
      {"lists.max_posts_per_hour",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "lists.max_posts_per_hour", 0, 1000000, c.lists.max_posts_per_hour);
       }},
      {"lists.dmarc_rewrite",
       [](const toml::node& n, Config& c) -> Status {
         auto s = WantString(n, "lists.dmarc_rewrite", c.lists.dmarc_rewrite);
         if (!s) return s;
         const std::string& v = c.lists.dmarc_rewrite;
         if (v != "auto" && v != "always" && v != "never") {
           return Err(ErrorKind::kInvalid,
                      "config: lists.dmarc_rewrite must be auto, always or never");
         }
         return Ok();
       }},
      {"lists.unsubscribe_url",
       [](const toml::node& n, Config& c) -> Status {
         auto s = WantString(n, "lists.unsubscribe_url", c.lists.unsubscribe_url);
         if (!s) return s;
         // RFC 8058 section 3.1 wants HTTPS; plain http only to a loopback
         // host (a test server).
         const std::string& u = c.lists.unsubscribe_url;
         bool loopback = u.rfind("http://127.0.0.1", 0) == 0 ||
                         u.rfind("http://localhost", 0) == 0 || u.rfind("http://[::1]", 0) == 0;
         if (!u.empty() && u.rfind("https://", 0) != 0 && !loopback) {
           return Err(ErrorKind::kInvalid,
                      "config: lists.unsubscribe_url must be an https:// URL (RFC 8058)");
         }
         return Ok();
       }},
      {"lists.copy_dkim",
       [](const toml::node& n, Config& c) -> Status {
         auto s = WantString(n, "lists.copy_dkim", c.lists.copy_dkim);
         if (!s) return s;
         if (!ValidCopyDkim(c.lists.copy_dkim)) {
           return Err(ErrorKind::kInvalid,
                      "config: lists.copy_dkim must be key, ed25519 or rsa+ed25519");
         }
         return Ok();
       }},
      {"lists.copy_dkim_domains",
       [](const toml::node& n, Config& c) -> Status {
         const toml::table* t = n.as_table();
         if (t == nullptr) {
           return Err(ErrorKind::kInvalid,
                      "config: lists.copy_dkim_domains must be a table of domain = choice");
         }
         for (const auto& [domain, v] : *t) {
           std::string key = "lists.copy_dkim_domains." + std::string(domain.str());
           std::string choice;
           if (auto st = WantString(v, key, choice); !st) return st;
           if (!ValidCopyDkim(choice)) {
             return Err(ErrorKind::kInvalid, "config: " + key + " must be key, ed25519 or rsa+ed25519");
           }
           c.lists.copy_dkim_domains[AsciiLower(domain.str())] = choice;
         }
         return Ok();
       }},
      {"lists.archive_url",
       [](const toml::node& n, Config& c) {
         return WantString(n, "lists.archive_url", c.lists.archive_url);
       }},
      {"msgauth.inbound_checks",
       [](const toml::node& n, Config& c) {
         return WantBool(n, "msgauth.inbound_checks", c.msgauth.inbound_checks);
       }},
      {"msgauth.check_loopback",
       [](const toml::node& n, Config& c) {
         return WantBool(n, "msgauth.check_loopback", c.msgauth.check_loopback);
       }},
      {"msgauth.dmarc_reject",
       [](const toml::node& n, Config& c) -> Status {
         auto s = WantString(n, "msgauth.dmarc_reject", c.msgauth.dmarc_reject);
         if (!s) return s;
         const std::string& v = c.msgauth.dmarc_reject;
         if (v != "reject" && v != "junk" && v != "none") {
           return Err(ErrorKind::kInvalid,
                      "config: msgauth.dmarc_reject must be \"reject\", \"junk\" or \"none\"");
         }
         return Ok();
       }},
      {"msgauth.public_suffix_list",
       [](const toml::node& n, Config& c) {
         return WantString(n, "msgauth.public_suffix_list", c.msgauth.public_suffix_list);
       }},
      {"msgauth.dns_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "msgauth.dns_timeout_seconds", 1, 60, c.msgauth.dns_timeout_seconds);
       }},
      {"msgauth.check_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "msgauth.check_timeout_seconds", 1, 300,
                        c.msgauth.check_timeout_seconds);
       }},
      {"scan.rspamd_url",
       [](const toml::node& n, Config& c) {
         return WantHttpUrl(n, "scan.rspamd_url", c.scan.rspamd_url);
       }},
      {"scan.rspamd_controller_url",
       [](const toml::node& n, Config& c) {
         return WantHttpUrl(n, "scan.rspamd_controller_url", c.scan.rspamd_controller_url);
       }},
      {"scan.rspamd_password",
       [](const toml::node& n, Config& c) {
         return WantString(n, "scan.rspamd_password", c.scan.rspamd_password);
       }},
      {"scan.clamd",
       [](const toml::node& n, Config& c) -> Status {
         if (auto st = WantString(n, "scan.clamd", c.scan.clamd); !st) return st;
         if (c.scan.clamd.empty() || c.scan.clamd.front() == '/') return Ok();
         return CheckHostPort("scan.clamd", c.scan.clamd);
       }},
      {"scan.timeout_ms",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "scan.timeout_ms", 10, 600000, c.scan.timeout_ms);
       }},
      {"scan.on_reject",
       [](const toml::node& n, Config& c) {
         return WantScanAction(n, "scan.on_reject", c.scan.on_reject);
       }},
      {"scan.on_spam",
       [](const toml::node& n, Config& c) {
         return WantScanAction(n, "scan.on_spam", c.scan.on_spam);
       }},
      {"scan.reject_score",
       [](const toml::node& n, Config& c) {
         return WantScore(n, "scan.reject_score", c.scan.reject_score);
       }},
      {"scan.spam_score",
       [](const toml::node& n, Config& c) {
         return WantScore(n, "scan.spam_score", c.scan.spam_score);
       }},
      {"scan.max_scan_bytes",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "scan.max_scan_bytes", 1024, kMaxInt, c.scan.max_scan_bytes);
       }},
      {"scan.learn_queue",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "scan.learn_queue", 1, 1000000, c.scan.learn_queue);
       }},
      {"listen.imap",
       [](const toml::node& n, Config& c) {
         auto s = WantString(n, "listen.imap", c.listen.imap);
         return s ? CheckHostPort("listen.imap", c.listen.imap) : s;
       }},
      {"listen.managesieve",
       [](const toml::node& n, Config& c) {
         auto s = WantString(n, "listen.managesieve", c.listen.managesieve);
         return s ? CheckHostPort("listen.managesieve", c.listen.managesieve) : s;
       }},
      {"listen.imaps",
       [](const toml::node& n, Config& c) {
         auto s = WantString(n, "listen.imaps", c.listen.imaps);
         return s ? CheckHostPort("listen.imaps", c.listen.imaps) : s;
       }},
      {"listen.pop3",
       [](const toml::node& n, Config& c) {
         auto s = WantString(n, "listen.pop3", c.listen.pop3);
         return s ? CheckHostPort("listen.pop3", c.listen.pop3) : s;
       }},
      {"listen.pop3s",
       [](const toml::node& n, Config& c) {
         auto s = WantString(n, "listen.pop3s", c.listen.pop3s);
         return s ? CheckHostPort("listen.pop3s", c.listen.pop3s) : s;
       }},
      {"listen.http",
       [](const toml::node& n, Config& c) {
         auto s = WantString(n, "listen.http", c.listen.http);
         return s ? CheckHostPort("listen.http", c.listen.http) : s;
       }},
      {"listen.https",
       [](const toml::node& n, Config& c) {
         auto s = WantString(n, "listen.https", c.listen.https);
         return s ? CheckHostPort("listen.https", c.listen.https) : s;
       }},
      {"http.max_header_bytes",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "http.max_header_bytes", 1024, 1 << 20, c.http.max_header_bytes);
       }},
      {"http.max_body_bytes",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "http.max_body_bytes", 1024, kMaxInt, c.http.max_body_bytes);
       }},
      {"http.max_connections",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "http.max_connections", 1, 1000000, c.http.max_connections);
       }},
      {"http.max_connections_per_ip",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "http.max_connections_per_ip", 1, 1000000,
                        c.http.max_connections_per_ip);
       }},
      {"http.max_requests",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "http.max_requests", 1, 1000000, c.http.max_requests);
       }},
      {"http.max_requests_per_ip",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "http.max_requests_per_ip", 1, 1000000, c.http.max_requests_per_ip);
       }},
      {"web.root",
       [](const toml::node& n, Config& c) { return WantString(n, "web.root", c.web.root); }},
      {"web.session_hours",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "web.session_hours", 1, 24 * 90, c.web.session_hours);
       }},
      {"web.backup_dir",
       [](const toml::node& n, Config& c) {
         return WantString(n, "web.backup_dir", c.web.backup_dir);
       }},
      {"http.request_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "http.request_timeout_seconds", 1, 3600,
                        c.http.request_timeout_seconds);
       }},
      {"http.idle_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "http.idle_timeout_seconds", 1, 86400, c.http.idle_timeout_seconds);
       }},
      {"jmap.max_size_request",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "jmap.max_size_request", 1024, kMaxInt, c.jmap.max_size_request);
       }},
      {"jmap.max_calls_in_request",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "jmap.max_calls_in_request", 1, 10000, c.jmap.max_calls_in_request);
       }},
      {"jmap.max_concurrent_requests",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "jmap.max_concurrent_requests", 1, 10000,
                        c.jmap.max_concurrent_requests);
       }},
      {"jmap.max_objects_in_get",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "jmap.max_objects_in_get", 1, 1000000, c.jmap.max_objects_in_get);
       }},
      {"jmap.max_objects_in_set",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "jmap.max_objects_in_set", 1, 1000000, c.jmap.max_objects_in_set);
       }},
      {"jmap.max_size_upload",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "jmap.max_size_upload", 1024, kMaxInt, c.jmap.max_size_upload);
       }},
      {"jmap.max_concurrent_upload",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "jmap.max_concurrent_upload", 1, 1000, c.jmap.max_concurrent_upload);
       }},
      {"jmap.push_ping_max_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "jmap.push_ping_max_seconds", 1, 3600, c.jmap.push_ping_max_seconds);
       }},
      {"http.static_dir",
       [](const toml::node& n, Config& c) {
         return WantString(n, "http.static_dir", c.http.static_dir);
       }},
      {"http.retry_after_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "http.retry_after_seconds", 1, 3600, c.http.retry_after_seconds);
       }},
      {"metrics.listen",
       [](const toml::node& n, Config& c) {
         auto s = WantString(n, "metrics.listen", c.metrics_listen);
         return s ? CheckHostPort("metrics.listen", c.metrics_listen) : s;
       }},
      {"smtp.max_line_length",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "smtp.max_line_length", 512, 65536, c.smtp.max_line_length);
       }},
      {"smtp.max_message_size",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "smtp.max_message_size", 1024, kMaxInt, c.smtp.max_message_size);
       }},
      {"smtp.max_recipients",
       [](const toml::node& n, Config& c) {
         // RFC 5321 section 4.5.3.1.8: at least 100 must be accepted.
         return WantInt(n, "smtp.max_recipients", 100, 100000, c.smtp.max_recipients);
       }},
      {"smtp.max_errors",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "smtp.max_errors", 1, 1000, c.smtp.max_errors);
       }},
      {"smtp.bad_rcpt_delay_ms",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "smtp.bad_rcpt_delay_ms", 0, 10000, c.smtp.bad_rcpt_delay_ms);
       }},
      {"smtp.idle_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "smtp.idle_timeout_seconds", 1, 86400, c.smtp.idle_timeout_seconds);
       }},
      {"smtp.commit_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "smtp.commit_timeout_seconds", 1, 3600, c.smtp.commit_timeout_seconds);
       }},
      {"smtp.data_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "smtp.data_timeout_seconds", 1, 86400, c.smtp.data_timeout_seconds);
       }},
      {"imap.command_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.command_timeout_seconds", 1, 86400,
                        c.imap.command_timeout_seconds);
       }},
      {"smtp.max_connections",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "smtp.max_connections", 1, 1000000, c.smtp.max_connections);
       }},
      {"pop3.idle_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "pop3.idle_timeout_seconds", 1, 86400, c.pop3.idle_timeout_seconds);
       }},
      {"pop3.max_connections",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "pop3.max_connections", 1, 1000000, c.pop3.max_connections);
       }},
      {"imap.idle_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.idle_timeout_seconds", 60, 86400, c.imap.idle_timeout_seconds);
       }},
      {"imap.max_connections",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.max_connections", 1, 1000000, c.imap.max_connections);
       }},
      {"imap.max_message_size",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.max_message_size", 1024, kMaxInt, c.imap.max_message_size);
       }},
      {"auth.allow_plaintext_on_loopback",
       [](const toml::node& n, Config& c) {
         return WantBool(n, "auth.allow_plaintext_on_loopback", c.auth.allow_plaintext_on_loopback);
       }},
      {"auth.min_password_length",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "auth.min_password_length", 1, 1024, c.auth.min_password_length);
       }},
      {"auth.refuse_common_passwords",
       [](const toml::node& n, Config& c) {
         return WantBool(n, "auth.refuse_common_passwords", c.auth.refuse_common_passwords);
       }},
      {"auth.penalty_base_ms",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "auth.penalty_base_ms", 0, 60000, c.auth.penalty_base_ms);
       }},
      {"auth.penalty_max_ms",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "auth.penalty_max_ms", 0, 600000, c.auth.penalty_max_ms);
       }},
      {"auth.credential_cache_entries",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "auth.credential_cache_entries", 0, 10000000,
                        c.auth.credential_cache_entries);
       }},
      {"auth.credential_cache_ttl_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "auth.credential_cache_ttl_seconds", 0, 86400,
                        c.auth.credential_cache_ttl_seconds);
       }},
      {"retention.days",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "retention.days", 0, 36500, c.retention_days);
       }},
      // [acme] (issue 18): certificates by ACME, src/acme/client.h.
      {"acme.directory",
       [](const toml::node& n, Config& c) -> Status {
         if (auto st = WantString(n, "acme.directory", c.acme.directory); !st) return st;
         if (!c.acme.directory.empty() && c.acme.directory.rfind("https://", 0) != 0) {
           return Err(ErrorKind::kInvalid, "config: acme.directory must be an https:// URL");
         }
         return Ok();
       }},
      {"acme.contact",
       [](const toml::node& n, Config& c) { return WantString(n, "acme.contact", c.acme.contact); }},
      {"acme.ca_file",
       [](const toml::node& n, Config& c) { return WantString(n, "acme.ca_file", c.acme.ca_file); }},
      {"acme.domains",
       [](const toml::node& n, Config& c) -> Status {
         const toml::array* a = n.as_array();
         if (a == nullptr) {
           return Err(ErrorKind::kInvalid, "config: acme.domains must be an array of names");
         }
         c.acme.domains.clear();
         for (const toml::node& e : *a) {
           auto v = e.value<std::string>();
           if (!v || v->empty() || v->find_first_of(" \t,:/\"\\") != std::string::npos) {
             return Err(ErrorKind::kInvalid, "config: acme.domains must be an array of names");
           }
           c.acme.domains.push_back(AsciiLower(*v));
         }
         return Ok();
       }},
      {"acme.eab_kid",
       [](const toml::node& n, Config& c) { return WantString(n, "acme.eab_kid", c.acme.eab_kid); }},
      {"acme.eab_hmac_key",
       [](const toml::node& n, Config& c) -> Status {
         std::string& v = c.acme.eab_hmac_key;
         if (auto st = WantString(n, "acme.eab_hmac_key", v); !st) return st;
         for (char ch : v) {
           bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '=';
           if (!ok) {
             return Err(ErrorKind::kInvalid,
                        "config: acme.eab_hmac_key must be base64url (as the CA gives it)");
           }
         }
         return Ok();
       }},
      {"acme.renew_days",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "acme.renew_days", 1, 36500, c.acme.renew_days);
       }},
      {"acme.check_interval_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "acme.check_interval_seconds", 1, 7 * 86400,
                        c.acme.check_interval_seconds);
       }},
      // [delivery] (issue 18): subaddress folders, RFC 5233.
      {"delivery.subaddress_folders",
       [](const toml::node& n, Config& c) -> Status {
         std::string& v = c.delivery.subaddress_folders;
         if (auto st = WantString(n, "delivery.subaddress_folders", v); !st) return st;
         if (v != "existing" && v != "create" && v != "off") {
           return Err(ErrorKind::kInvalid,
                      "config: delivery.subaddress_folders must be \"existing\", \"create\" or "
                      "\"off\"");
         }
         return Ok();
       }},
      // [mta_sts] (issue 18): the policy this server publishes, RFC 8461 3.2.
      {"mta_sts.mode",
       [](const toml::node& n, Config& c) -> Status {
         std::string& v = c.mta_sts.mode;
         if (auto st = WantString(n, "mta_sts.mode", v); !st) return st;
         if (v != "testing" && v != "enforce" && v != "none" && v != "off") {
           return Err(ErrorKind::kInvalid,
                      "config: mta_sts.mode must be \"testing\", \"enforce\", \"none\" or "
                      "\"off\"");
         }
         return Ok();
       }},
      {"mta_sts.max_age_seconds",
       [](const toml::node& n, Config& c) {
         // RFC 8461 3.2: max_age is at most 31557600 (one year).
         return WantInt(n, "mta_sts.max_age_seconds", 60, 31557600, c.mta_sts.max_age_seconds);
       }},
      {"mta_sts.mx",
       [](const toml::node& n, Config& c) -> Status {
         const toml::array* a = n.as_array();
         auto bad = [] {
           return Err(ErrorKind::kInvalid,
                      "config: mta_sts.mx must be an array of host names (\"*.\" allowed first)");
         };
         if (a == nullptr) return bad();
         c.mta_sts.mx.clear();
         for (const toml::node& e : *a) {
           auto v = e.value<std::string>();
           if (!v || v->empty() || v->find_first_of(" \t\r\n,:/\"\\") != std::string::npos) {
             return bad();
           }
           c.mta_sts.mx.push_back(AsciiLower(*v));
         }
         return Ok();
       }},
      // [reports] (issue 18): TLS-RPT (RFC 8460) and DMARC aggregate (RFC 7489 7.2).
      {"reports.tls_rpt",
       [](const toml::node& n, Config& c) {
         return WantBool(n, "reports.tls_rpt", c.reports.tls_rpt);
       }},
      {"reports.dmarc",
       [](const toml::node& n, Config& c) { return WantBool(n, "reports.dmarc", c.reports.dmarc); }},
      {"reports.from",
       [](const toml::node& n, Config& c) -> Status {
         if (auto st = WantString(n, "reports.from", c.reports.from); !st) return st;
         const std::string& v = c.reports.from;
         if (!v.empty() && (v.find('@') == std::string::npos ||
                            v.find_first_of(" \t\r\n<>") != std::string::npos)) {
           return Err(ErrorKind::kInvalid, "config: reports.from must be an address or \"\"");
         }
         return Ok();
       }},
      {"reports.org_name",
       [](const toml::node& n, Config& c) -> Status {
         if (auto st = WantString(n, "reports.org_name", c.reports.org_name); !st) return st;
         if (c.reports.org_name.find_first_of("\r\n") != std::string::npos) {
           return Err(ErrorKind::kInvalid, "config: reports.org_name must be one line");
         }
         return Ok();
       }},
      {"reports.send_hour",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "reports.send_hour", 0, 23, c.reports.send_hour);
       }},
      {"reports.dmarc_failure",
       [](const toml::node& n, Config& c) {
         return WantBool(n, "reports.dmarc_failure", c.reports.dmarc_failure);
       }},
      {"reports.dmarc_failure_per_hour",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "reports.dmarc_failure_per_hour", 1, 10000,
                        c.reports.dmarc_failure_per_hour);
       }},
      {"reports.keep_days",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "reports.keep_days", 1, 366, c.reports.keep_days);
       }},
      {"reports.post_retry_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "reports.post_retry_seconds", 1, 86400, c.reports.post_retry_seconds);
       }},
      {"tls.cert",
       [](const toml::node& n, Config& c) { return WantString(n, "tls.cert", c.tls_cert); }},
      {"tls.key",
       [](const toml::node& n, Config& c) { return WantString(n, "tls.key", c.tls_key); }},
      {"store.compress", [](const toml::node& n,
                            Config& c) { return WantBool(n, "store.compress", c.store_compress); }},
      {"store.reserve_bytes",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "store.reserve_bytes", 0, kMaxInt, c.store_reserve_bytes);
       }},
      {"store.slow_commit_ms",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "store.slow_commit_ms", 10, 3600000, c.store_slow_commit_ms);
       }},
      {"store.max_pending_writes",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "store.max_pending_writes", 1, 10000000, c.store_max_pending_writes);
       }},
      {"store.backend",
       [](const toml::node& n, Config& c) -> Status {
         if (auto st = WantString(n, "store.backend", c.store_backend); !st) return st;
         if (c.store_backend != "embedded" && c.store_backend != "postgres") {
           return Err(ErrorKind::kInvalid, "config: store.backend must be embedded or postgres");
         }
         return Ok();
       }},
      {"store.postgres",
       [](const toml::node& n, Config& c) {
         return WantString(n, "store.postgres", c.store_postgres);
       }},
      {"store.postgres_pool",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "store.postgres_pool", 1, 1000, c.store_postgres_pool);
       }},
      {"store.statement_timeout_ms",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "store.statement_timeout_ms", 100, 3600000,
                        c.store_statement_timeout_ms);
       }},
      {"store.shards",
       [](const toml::node& n, Config& c) -> Status {
         const toml::table* t = n.as_table();
         if (t == nullptr) {
           return Err(ErrorKind::kInvalid,
                      "config: store.shards must be a table of name = connection string");
         }
         for (const auto& [name, url] : *t) {
           std::string key = "store.shards." + std::string(name.str());
           std::string v;
           if (auto st = WantString(url, key, v); !st) return st;
           std::string shard(name.str());
           if (shard == "main" || shard.empty()) {
             return Err(ErrorKind::kInvalid, "config: " + key +
                                                 ": \"main\" is store.postgres itself; pick "
                                                 "another name");
           }
           c.store_shards[shard] = v;
         }
         return Ok();
       }},
      {"store.placement",
       [](const toml::node& n, Config& c) -> Status {
         if (auto st = WantString(n, "store.placement", c.store_placement); !st) return st;
         if (c.store_placement != "least-accounts" && c.store_placement != "hash") {
           return Err(ErrorKind::kInvalid,
                      "config: store.placement must be \"least-accounts\" or \"hash\"");
         }
         return Ok();
       }},
      {"store.closed_shards",
       [](const toml::node& n, Config& c) -> Status {
         const toml::array* a = n.as_array();
         if (a == nullptr) {
           return Err(ErrorKind::kInvalid, "config: store.closed_shards must be a list of names");
         }
         c.store_closed_shards.clear();
         for (const auto& v : *a) {
           std::string name;
           if (auto st = WantString(v, "store.closed_shards", name); !st) return st;
           c.store_closed_shards.push_back(name);
         }
         return Ok();
       }},
      {"store.move_retention_hours",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "store.move_retention_hours", 0, 24 * 365,
                        c.store_move_retention_hours);
       }},
      {"store.connect_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "store.connect_timeout_seconds", 1, 600,
                        c.store_connect_timeout_seconds);
       }},
      // Isolation and bounds (issue 11; docs/operations.md "Security model").
      {"imap.max_preauth_literal",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.max_preauth_literal", 64, 1 << 20, c.imap.max_preauth_literal);
       }},
      {"imap.max_command_literal",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.max_command_literal", 1024, 64 << 20, c.imap.max_command_literal);
       }},
      {"imap.max_search_string",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.max_search_string", 16, 1 << 20, c.imap.max_search_string);
       }},
      {"imap.search_threads",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.search_threads", 1, 256, c.imap.search_threads);
       }},
      {"imap.max_searches_per_account",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.max_searches_per_account", 1, 1000,
                        c.imap.max_searches_per_account);
       }},
      {"imap.search_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.search_timeout_seconds", 1, 3600, c.imap.search_timeout_seconds);
       }},
      {"imap.max_keyword_length",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.max_keyword_length", 1, 1000, c.imap.max_keyword_length);
       }},
      {"imap.max_keywords_per_message",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.max_keywords_per_message", 1, 10000,
                        c.imap.max_keywords_per_message);
       }},
      {"imap.max_keywords_per_mailbox",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.max_keywords_per_mailbox", 1, 1000000,
                        c.imap.max_keywords_per_mailbox);
       }},
      {"imap.max_sessions_per_account",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "imap.max_sessions_per_account", 1, 1000000,
                        c.imap.max_sessions_per_account);
       }},
      {"auth.password_threads",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "auth.password_threads", 1, 256, c.auth.password_threads);
       }},
      {"auth.max_pending_checks",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "auth.max_pending_checks", 1, 1000000, c.auth.max_pending_checks);
       }},
      {"server.memory_budget_bytes",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "server.memory_budget_bytes", 0, kMaxInt, c.memory_budget_bytes);
       }},
      {"server.memory_budget_per_ip_bytes",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "server.memory_budget_per_ip_bytes", 0, kMaxInt,
                        c.memory_budget_per_ip_bytes);
       }},
      {"server.event_loops",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "server.event_loops", 0, 256, c.event_loops);
       }},
      {"server.blocking_threads",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "server.blocking_threads", 0, 64, c.blocking_threads);
       }},
      {"server.tls_handshake_timeout_seconds",
       [](const toml::node& n, Config& c) {
         return WantInt(n, "server.tls_handshake_timeout_seconds", 1, 3600,
                        c.tls_handshake_timeout_seconds);
       }},
  };
  return kSetters;
}

}  // namespace

Result<Config> Parse(std::string_view toml_text) {
  toml::table root;
  try {
    root = toml::parse(toml_text);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << "config: line " << e.source().begin.line << ": " << e.description();
    return Err(ErrorKind::kInvalid, msg.str());
  }
  Config c;
  for (const auto& [section, node] : root) {
    std::string sec(section.str());
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      return Err(ErrorKind::kInvalid, "config: unknown key '" + sec + "' (expected a [section])");
    }
    for (const auto& [key, value] : *table) {
      std::string full = sec + "." + std::string(key.str());
      auto it = Setters().find(full);
      if (it == Setters().end())
        return Err(ErrorKind::kInvalid, "config: unknown key '" + full + "'");
      if (auto st = it->second(value, c); !st) return st.error();
    }
  }
  if (c.outbound.retry_max_seconds < c.outbound.retry_base_seconds) {
    return Err(ErrorKind::kInvalid,
               "config: outbound.retry_max_seconds is below outbound.retry_base_seconds");
  }
  if (c.acme.eab_kid.empty() != c.acme.eab_hmac_key.empty()) {
    // RFC 8555 7.3.4: the key identifier and its MAC key come as a pair.
    return Err(ErrorKind::kInvalid, "config: acme.eab_kid and acme.eab_hmac_key go together");
  }
  if (!c.outbound.relay_auth_file.empty() && c.outbound.relay_host.empty()) {
    return Err(ErrorKind::kInvalid,
               "config: outbound.relay_auth_file needs outbound.relay_host (the smarthost)");
  }
  if (c.store_backend == "postgres" && c.store_postgres.empty()) {
    return Err(ErrorKind::kInvalid,
               "config: store.backend = \"postgres\" needs store.postgres (a connection string)");
  }
  if (!c.store_shards.empty() && c.store_backend != "postgres") {
    return Err(ErrorKind::kInvalid,
               "config: store.shards needs store.backend = \"postgres\" (the directory)");
  }
  for (const auto& name : c.store_closed_shards) {
    if (name != "main" && c.store_shards.count(name) == 0) {
      return Err(ErrorKind::kInvalid,
                 "config: store.closed_shards names an unknown shard: " + name);
    }
  }
  if (c.auth.penalty_max_ms < c.auth.penalty_base_ms) {
    return Err(ErrorKind::kInvalid, "config: auth.penalty_max_ms is below auth.penalty_base_ms");
  }
  return c;
}

std::string DefaultText(std::string_view hostname) { return DefaultText(hostname, ""); }

namespace {
// A TOML basic string: quotes, backslashes and control characters escaped.
std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}
}  // namespace

std::string DefaultText(std::string_view hostname, std::string_view postgres) {
  Config d;
  std::ostringstream o;
  o << "# Hato configuration. Every key is optional; shown values are the defaults.\n"
    << "# Reload with SIGHUP (listener addresses take effect at restart).\n\n"
    << "[server]\nhostname = \"" << hostname << "\"   # used in greetings and Received\n"
    << "per_ip_limits_on_loopback = false   # per-address limits for 127.0.0.1/::1 too\n"
    << "memory_budget_bytes = " << d.memory_budget_bytes
    << "   # client input held in memory, in all; 0 = no cap\n"
    << "memory_budget_per_ip_bytes = " << d.memory_budget_per_ip_bytes
    << "   # ... per client address\n"
    << "tls_handshake_timeout_seconds = " << d.tls_handshake_timeout_seconds << "\n"
    << "event_loops = " << d.event_loops
    << "   # threads serving sessions; 0 = one per core (applies at restart)\n"
    << "blocking_threads = " << d.blocking_threads
    << "   # store reads and filters; 0 = 2 + 2 per event loop, at most 64\n\n"
    << "# Who gets mail for postmaster@ and abuse@ every local domain (unless an\n"
    << "# account or alias has that address): \"\" = the first account created.\n"
    << "postmaster = \"\"\n\n"
    << "[listen]   # host:port; an empty string disables the listener\n"
    << "smtp = \"0.0.0.0:25\"          # inbound MX (RFC 5321)\n"
    << "submission = \"0.0.0.0:587\"   # authenticated submission with STARTTLS (RFC 6409)\n"
    << "submissions = \"0.0.0.0:465\"  # authenticated submission, implicit TLS (RFC 8314)\n"
    << "imap = \"0.0.0.0:143\"\n"
    << "imaps = \"0.0.0.0:993\"         # IMAP over implicit TLS (RFC 8314)\n"
    << "pop3 = \"0.0.0.0:110\"\n"
    << "pop3s = \"0.0.0.0:995\"         # POP3 over implicit TLS (RFC 8314)\n"
    << "http = \"127.0.0.1:8080\"   # web, JMAP (RFC 8620); plaintext: keep it on loopback\n"
    << "https = \"\"                 # e.g. \"0.0.0.0:443\"; needs [tls]\n"
    << "managesieve = \"0.0.0.0:4190\"  # Sieve script upload (RFC 5804), STARTTLS with [tls]\n\n"
    << "[http]\n"
    << "max_header_bytes = " << d.http.max_header_bytes << "   # 431 past it\n"
    << "max_body_bytes = " << d.http.max_body_bytes << "   # uploads too; 413 past it\n"
    << "max_connections = " << d.http.max_connections << "   # 503 + Retry-After past it\n"
    << "max_connections_per_ip = " << d.http.max_connections_per_ip << "\n"
    << "max_requests = " << d.http.max_requests
    << "   # being handled at once; 503 + Retry-After past it\n"
    << "max_requests_per_ip = " << d.http.max_requests_per_ip << "\n"
    << "request_timeout_seconds = " << d.http.request_timeout_seconds << "   # 408 past it\n"
    << "idle_timeout_seconds = " << d.http.idle_timeout_seconds
    << "   # keep-alive; 408 and close past it\n"
    << "retry_after_seconds = " << d.http.retry_after_seconds << "\n"
    << "static_dir = \"\"   # files served under /static/ (relative to the data dir); \"\" = "
       "none\n\n"
    << "[web]   # the web site: webmail, the member's page, the admin console\n"
    << "root = \"\"   # the built site (relative to the data dir); \"\" = web/ beside the binary\n"
    << "session_hours = " << d.web.session_hours << "   # a web login lasts this long\n"
    << "backup_dir = \"\"   # the admin console's backups; \"\" = DATA/backups\n\n"
    << "[smtp]\n"
    << "max_line_length = " << d.smtp.max_line_length << "        # 500 5.5.2 past it\n"
    << "max_message_size = " << d.smtp.max_message_size << "  # bytes; 552 5.3.4 past it\n"
    << "max_recipients = " << d.smtp.max_recipients << "          # 452 4.5.3 past it\n"
    << "max_errors = " << d.smtp.max_errors << "               # 421 4.7.0 and close past it\n"
    << "bad_rcpt_delay_ms = " << d.smtp.bad_rcpt_delay_ms
    << "        # 5xx RCPT: counted as an error, answered after N x this\n"
    << "idle_timeout_seconds = " << d.smtp.idle_timeout_seconds << "    # 421 4.4.2 on expiry\n"
    << "commit_timeout_seconds = " << d.smtp.commit_timeout_seconds
    << "   # a slower store commit is answered 451 4.3.0\n"
    << "data_timeout_seconds = " << d.smtp.data_timeout_seconds
    << "   # all of DATA / a BDAT chunk; 421 4.4.2 past it\n"
    << "max_connections = " << d.smtp.max_connections << "        # 421 4.3.2 past it\n"
    << "max_connections_per_ip = " << d.smtp.max_connections_per_ip
    << "   # from one address; 421 4.7.0 past it\n\n"
    << "[pop3]\n"
    << "idle_timeout_seconds = " << d.pop3.idle_timeout_seconds << "\n"
    << "max_connections = " << d.pop3.max_connections << "        # -ERR [SYS/TEMP] past it\n"
    << "max_connections_per_ip = " << d.pop3.max_connections_per_ip << "\n\n"
    << "[imap]\n"
    << "idle_timeout_seconds = " << d.imap.idle_timeout_seconds
    << "   # RFC 3501: at least 30 min\n"
    << "max_connections = " << d.imap.max_connections << "        # * BYE [UNAVAILABLE] past it\n"
    << "max_connections_per_ip = " << d.imap.max_connections_per_ip << "\n"
    << "max_message_size = " << d.imap.max_message_size << "  # APPEND; NO [TOOBIG] past it\n"
    << "command_timeout_seconds = " << d.imap.command_timeout_seconds
    << "   # a command with its literals; * BYE past it\n"
    << "max_preauth_literal = " << d.imap.max_preauth_literal
    << "   # literals before login; NO [TOOBIG] past it\n"
    << "max_command_literal = " << d.imap.max_command_literal
    << "   # literals of commands other than APPEND\n"
    << "max_search_string = " << d.imap.max_search_string << "   # NO [LIMIT] past it\n"
    << "search_threads = " << d.imap.search_threads << "   # threads for message-scanning SEARCH\n"
    << "max_searches_per_account = " << d.imap.max_searches_per_account << "\n"
    << "search_timeout_seconds = " << d.imap.search_timeout_seconds << "\n"
    << "max_keyword_length = " << d.imap.max_keyword_length << "\n"
    << "max_keywords_per_message = " << d.imap.max_keywords_per_message << "\n"
    << "max_keywords_per_mailbox = " << d.imap.max_keywords_per_mailbox << "\n"
    << "max_sessions_per_account = " << d.imap.max_sessions_per_account << "\n\n"
    << "   # a command with its literals; * BYE past it\n\n"
    << "# JMAP (RFC 8620) limits, advertised in /.well-known/jmap and enforced.\n"
    << "[jmap]\n"
    << "max_size_request = " << d.jmap.max_size_request << "\n"
    << "max_calls_in_request = " << d.jmap.max_calls_in_request << "\n"
    << "max_concurrent_requests = " << d.jmap.max_concurrent_requests << "   # per account\n"
    << "max_objects_in_get = " << d.jmap.max_objects_in_get << "\n"
    << "max_objects_in_set = " << d.jmap.max_objects_in_set << "\n"
    << "max_size_upload = " << d.jmap.max_size_upload << "\n"
    << "max_concurrent_upload = " << d.jmap.max_concurrent_upload << "   # per account\n"
    << "push_ping_max_seconds = " << d.jmap.push_ping_max_seconds << "\n\n"
    << "[auth]\n"
    << "allow_plaintext_on_loopback = true   # else plaintext passwords need TLS\n"
    << "penalty_base_ms = " << d.auth.penalty_base_ms
    << "   # delay after a failed login, doubled per failure\n"
    << "penalty_max_ms = " << d.auth.penalty_max_ms << "\n"
    << "password_threads = " << d.auth.password_threads << "   # threads for password checks\n"
    << "max_pending_checks = " << d.auth.max_pending_checks
    << "   # waiting checks; past it logins fail temporarily\n"
    << "min_password_length = " << d.auth.min_password_length
    << "   # hato user add/passwd refuse shorter passwords\n"
    << "refuse_common_passwords = true   # ... and the commonest ones\n"
    << "# Successful password checks remembered as a keyed hash (0 = off; see\n"
    << "# docs/operations.md for the trade-off); cleared on SIGHUP.\n"
    << "credential_cache_entries = " << d.auth.credential_cache_entries << "\n"
    << "credential_cache_ttl_seconds = " << d.auth.credential_cache_ttl_seconds << "\n\n"
    << "# Sending limits per authenticated account; 0 = unlimited; 451 4.7.1 past them.\n"
    << "[submission]\n"
    << "max_messages_per_hour = " << d.submission.max_messages_per_hour << "\n"
    << "max_messages_per_day = " << d.submission.max_messages_per_day << "\n\n"
    << "# Delivery of submitted mail to other domains.\n"
    << "[outbound]\n"
    << "relay_host = \"\"   # host:port of a smarthost for all remote mail; \"\" = MX lookup\n"
    << "relay_auth_file = \"\"   # \"username:password\" file (mode 600) for the smarthost's AUTH\n"
    << "relay_tls = \"starttls\"   # or \"implicit\" (port 465); AUTH only over verified TLS\n"
    << "resolver = \"\"     # DNS resolver ip or ip@port; \"\" = /etc/resolv.conf (also for "
       "[msgauth])\n"
    << "max_connections = " << d.outbound.max_connections << "\n"
    << "max_connections_per_destination = " << d.outbound.max_connections_per_destination << "\n"
    << "max_messages_per_minute_per_destination = 0   # 0 = unlimited\n"
    << "# SMTP connection reuse: messages per connection (1 = no reuse), idle time,\n"
    << "# idle connections kept in all and per MX host.\n"
    << "max_messages_per_connection = " << d.outbound.max_messages_per_connection << "\n"
    << "connection_idle_seconds = " << d.outbound.connection_idle_seconds << "\n"
    << "max_idle_connections = " << d.outbound.max_idle_connections << "\n"
    << "max_idle_connections_per_host = " << d.outbound.max_idle_connections_per_host << "\n"
    << "retry_base_seconds = " << d.outbound.retry_base_seconds
    << "   # doubled per attempt, with jitter\n"
    << "retry_max_seconds = " << d.outbound.retry_max_seconds << "\n"
    << "max_lifetime_seconds = " << d.outbound.max_lifetime_seconds
    << "   # then the sender gets a failure report\n"
    << "delay_warning_seconds = " << d.outbound.delay_warning_seconds
    << "   # the sender gets a delay report; 0 = never\n"
    << "connect_timeout_seconds = " << d.outbound.connect_timeout_seconds << "\n"
    << "command_timeout_seconds = " << d.outbound.command_timeout_seconds << "\n"
    << "starttls = true   # opportunistic TLS to remote servers\n"
    << "# Mandatory TLS per recipient domain: none | may | encrypt | verify (the\n"
    << "# certificate must be trusted and name the MX host), e.g.\n"
    << "# tls_policy = { \"bank.example\" = \"verify\", \"partner.example\" = \"encrypt\" }\n"
    << "tls_policy = {}\n"
    << "tls_ca_file = \"\"   # extra CAs (PEM) for verify; the system's are always trusted\n"
    << "mta_sts = true   # honour recipients' MTA-STS policies (RFC 8461)\n"
    << "# DANE (RFC 7672): check MX certificates against DNSSEC-validated TLSA\n"
    << "# records; needs resolver = a validating resolver on loopback (unbound)\n"
    << "dane = false\n"
    << "# SRS for forwarded mail (Sieve redirect): \"\" = the first local domain, \"off\" = none\n"
    << "srs_domain = \"\"\n\n"
    << "# Inbound SPF, DKIM and DMARC checks on port 25 (Authentication-Results).\n"
    << "[msgauth]\n"
    << "inbound_checks = true\n"
    << "check_loopback = false   # also check mail from 127.0.0.1 / ::1\n"
    << "dmarc_reject = \"reject\"   # p=reject failures: reject | junk | none\n"
    << "dns_timeout_seconds = " << d.msgauth.dns_timeout_seconds << "   # per query\n"
    << "check_timeout_seconds = " << d.msgauth.check_timeout_seconds
    << "   # all lookups of one message, then temperror\n"
    << "public_suffix_list = \"" << d.msgauth.public_suffix_list
    << "\"   # for DMARC; read at start\n\n"
    << "# Spam and virus checks on port 25 (rspamd, clamd); each is off while its\n"
    << "# address is empty. Down or slow: mail is accepted unscanned (X-Hato-Scan).\n"
    << "[scan]\n"
    << "rspamd_url = \"\"              # e.g. \"http://127.0.0.1:11333\" (normal worker)\n"
    << "rspamd_controller_url = \"\"   # e.g. \"http://127.0.0.1:11334\": Junk moves train it\n"
    << "rspamd_password = \"\"         # the controller's password, if it has one\n"
    << "clamd = \"\"                   # \"127.0.0.1:3310\" or \"/run/clamav/clamd.ctl\"\n"
    << "timeout_ms = " << d.scan.timeout_ms << "   # per scanner and message\n"
    << "on_reject = \"reject\"   # rspamd action reject: reject | junk | mark | none\n"
    << "on_spam = \"junk\"       # rspamd add header / rewrite subject: the same choices\n"
    << "reject_score = 0   # > 0: this score or more counts as reject\n"
    << "spam_score = 0     # > 0: this score or more counts as spam\n"
    << "max_scan_bytes = " << d.scan.max_scan_bytes << "   # larger mail passes unscanned\n"
    << "learn_queue = " << d.scan.learn_queue
    << "   # training requests waiting; more are dropped\n\n"
    << "# Users' Sieve scripts (hato sieve, ManageSieve, JMAP): checked when stored and run.\n"
    << "[sieve]\n"
    << "max_script_bytes = " << d.sieve.max_script_bytes << "   # one script\n"
    << "max_scripts = " << d.sieve.max_scripts << "   # per account\n"
    << "max_nesting = " << d.sieve.max_nesting << "   # blocks and nested tests\n"
    << "max_nodes = " << d.sieve.max_nodes << "   # commands, tests and arguments\n"
    << "max_actions = " << d.sieve.max_actions << "   # actions in one run\n"
    << "max_redirects = " << d.sieve.max_redirects << "   # redirects in one run\n"
    << "max_includes = " << d.sieve.max_includes << "   # include depth\n"
    << "max_redirects_per_hour = " << d.sieve.max_redirects_per_hour << "   # per account\n\n"
    << "# Mailing lists (hato list; per-list settings override these).\n"
    << "[lists]\n"
    << "max_bulk_connections = " << d.lists.max_bulk_connections
    << "   # list deliveries at once; the rest of outbound.max_connections is kept free\n"
    << "# Per-minute delivery rate of list posts per recipient domain, e.g.\n"
    << "# destination_rates = { \"docomo.ne.jp\" = 600 }\n"
    << "destination_rates = {}\n"
    << "confirm_ttl_hours = " << d.lists.confirm_ttl_hours
    << "   # join/leave confirmations and moderation replies\n"
    << "max_join_requests_per_hour = " << d.lists.max_join_requests_per_hour
    << "   # per address and list\n"
    << "max_join_requests_per_source = " << d.lists.max_join_requests_per_source
    << "   # per client IP and list, per hour\n"
    << "max_message_size = " << d.lists.max_message_size << "   # 552 5.3.4 past it\n"
    << "max_posts_per_hour = " << d.lists.max_posts_per_hour
    << "   # per list; more are held for moderation (0 = unlimited)\n"
    << "dmarc_rewrite = \"auto\"   # From rewrite for p=quarantine/reject posters: auto | always | "
       "never\n"
    << "unsubscribe_url = \"\"   # RFC 8058 one-click: https://HOST/lists/unsubscribe (served "
       "by [listen] https); \"\" = by mail\n"
    << "# One-click copies are DKIM-signed per member by: key (the domain's key) | ed25519\n"
    << "# (its Ed25519 key, RFC 8463: far cheaper, unverified by receivers without ed25519) |\n"
    << "# rsa+ed25519 (both); per list domain: copy_dkim_domains = { \"big.example\" = \"ed25519\" "
       "}\n"
    << "copy_dkim = \"key\"\n"
    << "copy_dkim_domains = {}\n"
    << "archive_url = \"\"   # List-Archive base; \"\" = none\n\n"
    << "[retention]\ndays = " << d.retention_days
    << "   # expunged and deleted mail stays recoverable this long\n\n"
    << "[tls]   # paths relative to the data directory\ncert = \"tls/cert.pem\"\n"
    << "key = \"tls/key.pem\"\n\n"
    << "# Certificates by ACME (RFC 8555), e.g. directory =\n"
    << "# \"https://acme-v02.api.letsencrypt.org/directory\": the CA checks each name on\n"
    << "# port 80 ([listen] http must be reachable there); the certificate is kept in\n"
    << "# acme/certificate.pem, renewed renew_days before it expires and used without\n"
    << "# a restart. Until the first one arrives, [tls] is used.\n"
    << "[acme]\ndirectory = \"\"   # \"\" = off\n"
    << "contact = \"\"     # an e-mail address for the CA's notices\n"
    << "domains = []     # names on the certificate; [] = server.hostname\n"
    << "renew_days = 30\n"
    << "# External Account Binding (RFC 8555 7.3.4) for CAs that require it (ZeroSSL,\n"
    << "# Google): the key id and base64url MAC key from the CA's account page\n"
    << "eab_kid = \"\"\neab_hmac_key = \"\"\n\n"
    << "# user+tag@DOMAIN reaches user@DOMAIN (RFC 5233); without a Sieve script it is\n"
    << "# filed into the folder \"tag\": existing (if the folder exists, else INBOX) |\n"
    << "# create (created when missing) | off (always INBOX)\n"
    << "[delivery]\nsubaddress_folders = \"existing\"\n\n"
    << "# The MTA-STS policy served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt\n"
    << "# for each local domain (RFC 8461); `hato dns records DOMAIN` prints the\n"
    << "# _mta-sts TXT record, whose id changes with the policy. Start with testing.\n"
    << "[mta_sts]\nmode = \"testing\"   # testing | enforce | none | off (not served)\n"
    << "max_age_seconds = 604800\n"
    << "mx = []   # MX hosts besides server.hostname, e.g. [\"*.example.org\"]\n\n"
    << "# Daily aggregate reports: TLS-RPT (RFC 8460) on outbound TLS, to each\n"
    << "# recipient domain's _smtp._tls rua; DMARC (RFC 7489 7.2) on inbound mail,\n"
    << "# to each author domain's _dmarc rua. `hato reports send` sends them now.\n"
    << "[reports]\ntls_rpt = true\ndmarc = true\n"
    << "from = \"\"       # the reports' sender; \"\" = postmaster@ the first local domain\n"
    << "org_name = \"\"   # \"\" = server.hostname\n"
    << "send_hour = 1   # UTC hour the previous days' reports are sent\n"
    << "keep_days = 7   # recorded days not sent by then are dropped\n"
    << "# A TLS-RPT report an https: rua failed to take is posted again after this\n"
    << "# many seconds, doubling, up to 6 attempts in all (RFC 8460 5.3).\n"
    << "post_retry_seconds = 1800\n"
    << "# DMARC failure reports (RFC 7489 7.3) to a domain's ruf= as its fo= asks;\n"
    << "# off by default: each carries the header of a message received.\n"
    << "dmarc_failure = false\n"
    << "dmarc_failure_per_hour = 10   # at most this many per From domain an hour\n\n"
    << "[store]\ncompress = true            # zstd for bodies when it saves space\n"
    << "reserve_bytes = 0   # free space kept; below it 452 4.3.1 (0 = 2 x max_message_size)\n"
    << "slow_commit_ms = " << d.store_slow_commit_ms
    << "   # slower commits: new mail gets 451 4.3.0 at once\n"
    << "max_pending_writes = " << d.store_max_pending_writes
    << "   # queued writes past this get 451 4.3.0 at once\n"
    << "# Where mail is stored: \"embedded\" (this data dir) or \"postgres\" (then\n"
    << "# postgres is a libpq connection string; several hosts with\n"
    << "# target_session_attrs=read-write find the primary after a failover).\n"
    << "backend = " << (postgres.empty() ? "\"embedded\"" : "\"postgres\"") << "\n"
    << "postgres = " << TomlString(postgres) << "\n"
    << "postgres_pool = " << d.store_postgres_pool << "   # reader connections per node\n"
    << "statement_timeout_ms = " << d.store_statement_timeout_ms
    << "   # a slower query fails temporarily (451 4.3.0, NO, -ERR [SYS/TEMP])\n"
    << "connect_timeout_seconds = " << d.store_connect_timeout_seconds << "   # per host\n"
    << "# Sharding (postgres only): more databases by name in [store.shards]\n"
    << "# (name = \"postgresql://...\"); this one keeps the directory and is \"main\".\n"
    << "placement = \"" << d.store_placement
    << "\"   # where new accounts go: least-accounts | hash\n"
    << "closed_shards = []   # shards that get no new accounts (draining)\n"
    << "move_retention_hours = " << d.store_move_retention_hours
    << "   # hato account move keeps the source copy this long\n\n"
    << "# The log goes to stderr (the journal under systemd: no logrotate needed);\n"
    << "# one line per event, UTC timestamps.\n"
    << "[log]\nformat = \"text\"   # text (key=value) | json (one object per line)\n"
    << "level = \"info\"    # debug | info | warn | error\n\n"
    << "[metrics]\n"
    << "# Prometheus text format at http://LISTEN/metrics; no authentication, so\n"
    << "# loopback or a private network only. Empty: off.\n"
    << "listen = \"\"   # e.g. \"127.0.0.1:9100\"\n";
  return o.str();
}

}  // namespace hato::config
