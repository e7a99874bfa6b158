// Configuration: hato.toml parsed and validated into an immutable snapshot.
// A running server holds a std::shared_ptr<const Config>; SIGHUP parses a new
// one and swaps it in only when it is valid (the old one keeps serving).
// Every limit has a name here, a default, a key in hato.toml and a reply in
// the protocol that enforces it. Pure: fuzzed by fuzz/fuzz_config.cc.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::config {

struct Listen {  // "host:port"; empty = disabled
  std::string smtp;
  std::string submission;   // RFC 6409 with STARTTLS (587)
  std::string submissions;  // RFC 8314 implicit TLS (465)
  std::string imap;
  std::string imaps;  // IMAP over implicit TLS (RFC 8314 section 3.3); needs [tls]
  std::string pop3;
  std::string pop3s;  // POP3 over implicit TLS (RFC 8314 section 3.3, 995); needs [tls]
  std::string http;
  std::string https;        // HTTP over TLS (RFC 9110 section 4.2.2); needs [tls]
  std::string managesieve;  // ManageSieve (RFC 5804, 4190), STARTTLS when [tls] is set
};

struct SmtpLimits {
  size_t max_line_length = 2048;            // command line; 500 5.5.2 past it
  uint64_t max_message_size = 25ull << 20;  // SIZE and DATA/BDAT; 552 5.3.4 past it
  size_t max_recipients = 100;              // per transaction; 452 4.5.3 past it
  int max_errors = 20;                      // bad commands; 421 4.7.0 and close past it
  int idle_timeout_seconds = 300;           // RFC 5321 4.5.3.2: 421 4.4.2 on expiry
  int commit_timeout_seconds = 60;          // no 250 is sent later than this: 451 4.3.0
  // The whole of DATA, or of one BDAT chunk, must arrive within this, however
  // steadily a slow client trickles it: 421 4.4.2 and close past it.
  int data_timeout_seconds = 600;
  size_t max_connections = 1000;       // concurrent; 421 4.3.2 past it
  size_t max_connections_per_ip = 20;  // from one address; 421 4.7.0 past it
  // Each 5xx RCPT (unknown recipient, relay refused) counts toward max_errors
  // and is answered after this delay times the session's 5xx RCPTs so far
  // (capped at 30 s): recipient harvesting slows down, then is cut off.
  int bad_rcpt_delay_ms = 250;
};

struct Pop3Limits {
  int idle_timeout_seconds = 600;      // RFC 1939 section 3: at least 10 minutes
  size_t max_connections = 1000;       // -ERR [SYS/TEMP] past it
  size_t max_connections_per_ip = 20;  // -ERR [SYS/TEMP] past it
};

struct ImapLimits {
  int idle_timeout_seconds = 1800;          // RFC 3501 section 5.4: at least 30 minutes
  size_t max_connections = 5000;            // "* BYE [UNAVAILABLE]" past it
  size_t max_connections_per_ip = 50;       // "* BYE [UNAVAILABLE]" past it
  uint64_t max_message_size = 50ull << 20;  // APPEND literal (APPENDLIMIT); NO [TOOBIG]
  // A command, with its literals, must arrive within this once begun (a slow
  // client cannot hold a session byte by byte): "* BYE" and close past it.
  int command_timeout_seconds = 1800;
  // Literals before authentication (LOGIN, AUTHENTICATE): NO [TOOBIG] past it
  // (issue 11 item 2: large literals only for APPEND once authenticated).
  uint64_t max_preauth_literal = 8 * 1024;
  // Literals of authenticated commands other than APPEND: NO [TOOBIG] past it.
  uint64_t max_command_literal = 64 * 1024;
  // One SEARCH string (BODY, TEXT, HEADER, SUBJECT...): NO [LIMIT] past it.
  size_t max_search_string = 1024;
  // Searches that scan messages run on their own threads (never the pool
  // that serves logins, RCPT and RETR), at most this many per account at
  // once (NO [LIMIT] past it), each stopped after search_timeout_seconds
  // (NO [LIMIT]) or when its client goes away.
  size_t search_threads = 2;
  size_t max_searches_per_account = 1;
  int search_timeout_seconds = 60;
  // IMAP keywords (RFC 3501 flag-keyword): length in bytes, per message, and
  // distinct ones per mailbox; NO [LIMIT] past them.
  size_t max_keyword_length = 256;
  size_t max_keywords_per_message = 64;
  size_t max_keywords_per_mailbox = 1000;
  // Concurrent IMAP sessions of one account: NO [LIMIT] at login past it.
  size_t max_sessions_per_account = 100;
};

// The HTTP server (src/http/server.h): each limit's reply is named there.
struct HttpLimits {
  size_t max_header_bytes = 16384;        // request line + fields; 431 past it
  uint64_t max_body_bytes = 50ull << 20;  // request body (uploads); 413 past it
  size_t max_connections = 2000;          // open connections; 503 + Retry-After
  size_t max_connections_per_ip = 100;    // from one address; 503 + Retry-After
  size_t max_requests = 256;              // requests being handled; 503 + Retry-After
  size_t max_requests_per_ip = 32;        // from one address; 503 + Retry-After
  int request_timeout_seconds = 60;       // a started request must arrive whole; 408
  int idle_timeout_seconds = 120;         // keep-alive wait for the next request; 408
  int retry_after_seconds = 5;            // the Retry-After of a 503
  std::string static_dir;                 // files served under /static/; "" = none
};

// JMAP (RFC 8620 section 2, the core capability's limits), advertised in the
// session resource and enforced with the RFC's errors.
struct JmapLimits {
  size_t max_size_request = 10'000'000;    // request-level error "limit" past it
  size_t max_calls_in_request = 64;        // request-level error "limit"
  size_t max_concurrent_requests = 8;      // per account; "limit" (429 + Retry-After)
  size_t max_objects_in_get = 1000;        // method error requestTooLarge
  size_t max_objects_in_set = 1000;        // method error requestTooLarge
  uint64_t max_size_upload = 50ull << 20;  // 413 past it (also bounded by http.max_body_bytes)
  size_t max_concurrent_upload = 4;        // per account; 429 + Retry-After
  int push_ping_max_seconds = 300;         // EventSource ping interval cap (section 7.3)
};

struct AuthConfig {
  bool allow_plaintext_on_loopback = true;  // else plaintext passwords need TLS
  int penalty_base_ms = 250;                // first failed-login delay, doubled per failure
  int penalty_max_ms = 10000;               // cap of that delay
  // Password checks (Argon2) run on their own threads, with at most
  // max_pending_checks waiting; past it the login fails temporarily at once
  // (IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP], SMTP 454 4.7.0).
  size_t password_threads = 2;
  size_t max_pending_checks = 64;
  // hato user add|passwd (auth/password_policy.h): shorter passwords, and the
  // commonest ones, are refused.
  size_t min_password_length = 8;
  bool refuse_common_passwords = true;
  // Recent successful password checks remembered (auth/credential_cache.h);
  // 0 entries or 0 seconds: every login runs Argon2.
  int credential_cache_entries = 10000;
  int credential_cache_ttl_seconds = 300;
};

// Authenticated submission (RFC 6409) sending limits; 0 = unlimited.
struct SubmissionLimits {
  size_t max_messages_per_hour = 500;  // per account; 451 4.7.1 at MAIL past it
  size_t max_messages_per_day = 2000;  // per account; 451 4.7.1 at MAIL past it
};

// Remote delivery of the outbound queue (docs/architecture.md section 6).
struct OutboundConfig {
  std::string relay_host;  // "host:port" smarthost for all remote mail; "" = MX lookup
  // The smarthost's SMTP AUTH credentials (outbound/relay_auth.h): a file
  // "username:password", mode 0600; "" = no AUTH. With credentials the relay
  // must offer TLS and its certificate must verify (tls_ca_file helps).
  std::string relay_auth_file;
  // "starttls" (port 587 style, the default) or "implicit" (port 465, RFC 8314).
  std::string relay_tls = "starttls";
  std::string resolver;          // DNS resolver "ip" or "ip@port"; "" = /etc/resolv.conf
  int smtp_port = 25;            // port of remote MX hosts (only tests change it)
  size_t max_connections = 100;  // delivery connections in all
  size_t max_connections_per_destination = 10;  // per recipient domain (or relay)
  // Deliveries started per destination per minute (receivers that throttle
  // bulk senders); the rest wait in the queue. 0 = unlimited.
  size_t max_messages_per_minute_per_destination = 0;
  // Connection reuse (RFC 5321 section 4.1.4: several transactions in one
  // session): an SMTP session to an MX host carries at most this many
  // messages (1 = a connection per message), and waits idle for the next one
  // at most connection_idle_seconds (well below the 5-minute server timeout
  // of RFC 5321 section 4.5.3.2.7), in a cache of at most
  // max_idle_connections sessions, max_idle_connections_per_host per MX host.
  size_t max_messages_per_connection = 100;
  int connection_idle_seconds = 5;
  size_t max_idle_connections = 100;
  size_t max_idle_connections_per_host = 20;
  int retry_base_seconds = 300;       // first retry delay, doubled per attempt, with jitter
  int retry_max_seconds = 14400;      // cap of the retry delay
  int max_lifetime_seconds = 432000;  // 5 days, then a failure DSN (4.4.7)
  int delay_warning_seconds = 14400;  // delay DSN after this; 0 = none
  int connect_timeout_seconds = 30;
  int command_timeout_seconds = 300;  // RFC 5321 section 4.5.3.2
  bool starttls = true;               // opportunistic STARTTLS (RFC 7435)
  // Per recipient domain (lower-case): "none" | "may" | "encrypt" | "verify"
  // (outbound/tls_policy.h). Other domains: "may" ("none" without starttls).
  std::map<std::string, std::string> tls_policy;
  // PEM file of CAs trusted for "verify", besides the system's; "" = system only.
  std::string tls_ca_file;
  // MTA-STS (RFC 8461, outbound/mta_sts.h): honour the policies recipient
  // domains publish (TLS with a verified certificate, only their MX hosts).
  bool mta_sts = true;
  int mta_sts_port = 443;  // of the policy host (only tests change it)
  // DANE (RFC 7672, outbound/dane.h): TLSA records of MX hosts, when the MX
  // and address answers were DNSSEC-validated, decide the TLS of their
  // sessions (certificate matched, else deferred). The AD bit is trusted
  // from `resolver`, which must then be a validating resolver on loopback.
  bool dane = false;
  // SRS (outbound/srs.h): forwarded mail (a Sieve redirect) leaves with its
  // envelope sender rewritten into this domain, so SPF passes at the
  // destination; bounces to those addresses are checked and sent on to the
  // original sender. "" = the first local domain; "off" = keep the sender.
  std::string srs_domain;
};

// Inbound message authentication on the MX (docs/architecture.md, "Message
// authentication"): SPF, DKIM and DMARC, recorded in Authentication-Results.
struct MsgauthConfig {
  bool inbound_checks = true;
  // Check mail from loopback peers too (off: a local relay or script is
  // trusted and gets no checks; tests turn it on).
  bool check_loopback = false;
  // What a DMARC p=reject failure gets (RFC 7489 section 6.7): "reject" =
  // 550 5.7.1 at the end of DATA, "junk" = delivered to \Junk, "none" =
  // recorded only. p=quarantine goes to \Junk unless this is "none".
  std::string dmarc_reject = "reject";
  int dns_timeout_seconds = 5;     // per DNS query (libunbound, outbound.resolver)
  int check_timeout_seconds = 20;  // all DNS of one message; then temperror
  // The Public Suffix List for DMARC's organizational domains (Debian's
  // publicsuffix package); "" or a missing file: a small built-in table.
  std::string public_suffix_list = "/usr/share/publicsuffix/public_suffix_list.dat";
};

// Content scanners on the MX (issue 19, src/scan; docs/operations.md "Spam
// and virus checks"): rspamd over its HTTP protocol, clamd over INSTREAM.
// Each is off while its address is empty (the default).
struct ScanConfig {
  // rspamd's normal worker, "http://HOST:PORT" (e.g. http://127.0.0.1:11333).
  std::string rspamd_url;
  // rspamd's controller worker for Junk training (learnspam/learnham), e.g.
  // http://127.0.0.1:11334; "" = no training.
  std::string rspamd_controller_url;
  std::string rspamd_password;  // the controller's password, "" = none sent
  // clamd: "HOST:PORT" or the path of its Unix socket.
  std::string clamd;
  int timeout_ms = 5000;  // per scanner and message; then accepted unscanned
  // What rspamd's "reject" action and its "add header"/"rewrite subject"
  // actions do here: reject (550 5.7.1) | junk (\Junk) | mark (headers,
  // $Junk) | none. A score at or above reject_score / spam_score (when > 0)
  // counts as that action whatever rspamd said.
  std::string on_reject = "reject";
  std::string on_spam = "junk";
  double reject_score = 0;
  double spam_score = 0;
  // A larger message is passed unscanned (rspamd's and clamd's own limits
  // are of this order).
  uint64_t max_scan_bytes = 20 << 20;
  size_t learn_queue = 1000;  // Junk-training requests waiting; more are dropped
  bool enabled() const { return !rspamd_url.empty() || !clamd.empty(); }
};

// Users' Sieve scripts (issue 19, src/sieve; docs/operations.md "Sieve
// limits"): what a stored script may be and do. Checked when a script is
// stored (hato sieve put, ManageSieve PUTSCRIPT, JMAP SieveScript/set) and
// when it runs at delivery (a broken limit: INBOX and the error reported).
struct SieveConfig {
  uint64_t max_script_bytes = 64 * 1024;  // one script's text
  size_t max_scripts = 32;                // per account (the server's own jmap.* not counted)
  size_t max_nesting = 16;                // blocks and nested tests
  size_t max_nodes = 4096;                // commands, tests and arguments in a script
  size_t max_actions = 64;                // actions taken in one run
  size_t max_redirects = 4;               // redirect actions in one run (MAXREDIRECTS)
  size_t max_includes = 8;                // include depth (RFC 6609)
  size_t max_redirects_per_hour = 100;    // per account, over all its messages
};

// Mailing lists (issue 14, src/lists; docs/operations.md "Mailing lists").
// Per-list settings (hato list set) override the size, rate and DMARC ones.
struct ListsConfig {
  // Delivery connections list posts may hold in all; the rest of
  // outbound.max_connections stays free for person-to-person mail.
  size_t max_bulk_connections = 75;
  // Deliveries of list posts started per destination per minute, by
  // recipient domain (mobile carriers at their own rates); others: unlimited
  // (outbound.max_messages_per_minute_per_destination still applies).
  std::map<std::string, size_t> destination_rates;
  int confirm_ttl_hours = 72;                // join/leave confirmations and moderation tokens
  size_t max_join_requests_per_hour = 3;     // per address and list; more are ignored
  size_t max_join_requests_per_source = 20;  // per client IP and list per hour
  uint64_t max_message_size = 5 << 20;       // a larger post is refused (552 5.3.4)
  size_t max_posts_per_hour = 60;            // per list; more are held for moderation
  // DMARC mitigation (RFC 7489 section 6.6): "auto" rewrites From to the
  // list when the poster's domain publishes p=quarantine or p=reject;
  // "always"; "never".
  std::string dmarc_rewrite = "auto";
  // RFC 8058 one-click unsubscribe: the URL of this server's handler,
  // https://HOST/lists/unsubscribe; each member's copy then carries its own
  // List-Unsubscribe URL (a per-member token) and List-Unsubscribe-Post, and
  // is DKIM-signed per copy. "" = unsubscribe by mail only (LIST+leave@DOMAIN).
  std::string unsubscribe_url;
  // The DKIM keys that sign those per-copy signatures (msgauth::KeyChoice):
  // "key" (the list domain's key, as everything else), "ed25519" (its
  // Ed25519 key, RFC 8463: a twentieth of RSA-2048's CPU, but receivers that
  // do not verify ed25519-sha256 see the copy unsigned), "rsa+ed25519" (both
  // signatures). copy_dkim_domains overrides it per list domain.
  std::string copy_dkim = "key";
  std::map<std::string, std::string> copy_dkim_domains;  // lower-case domain -> choice
  // copy_dkim for the list domain `domain` (lower case).
  const std::string& CopyDkimFor(const std::string& domain) const {
    auto it = copy_dkim_domains.find(domain);
    return it == copy_dkim_domains.end() ? copy_dkim : it->second;
  }
  std::string archive_url;  // List-Archive base (RFC 2369); "" = none
};

// The web site (src/web, issue 13).
struct WebConfig {
  // The built webmail (scripts/build-web.sh), relative to the data dir;
  // "" = the folder web/ beside the hato binary (build/web after `make`).
  std::string root;
  int session_hours = 12;  // a web login lasts this long, then the login page again
  // Where the admin console's backups go (hato backup create DEST); "" =
  // DATA/backups.
  std::string backup_dir;
};

// TLS certificates by ACME (RFC 8555, src/acme/client.h): on while
// directory is set. The challenge is HTTP-01 (section 8.3), answered by the
// [listen] http server, which the CA reaches on port 80 of every name in
// domains; with [listen] http off and https on, TLS-ALPN-01 (RFC 8737) on
// the [listen] https server (port 443). The certificate is renewed
// renew_days before it expires and installed without a restart.
struct AcmeConfig {
  std::string directory;             // the CA's directory URL, e.g. Let's Encrypt's
  std::string contact;               // an e-mail address the CA may write to, or ""
  std::vector<std::string> domains;  // names on the certificate; [] = [server.hostname]
  std::string ca_file;               // extra CAs (PEM) trusted for the directory's HTTPS
  int renew_days = 30;  // order a new certificate when the current one has fewer days left
  int check_interval_seconds = 12 * 3600;  // how often the expiry is checked
  // External Account Binding (RFC 8555 7.3.4): the key identifier and the
  // base64url MAC key a CA that requires it gives; both or neither.
  std::string eab_kid;
  std::string eab_hmac_key;
};

// Delivery of subaddresses (RFC 5233): user+tag@domain reaches the account
// user@domain (smtp/server.cc) and, without an active Sieve script (which
// decides itself, its :detail test sees the tag), is filed into the folder
// "tag": "existing" = when the account has that folder, else INBOX;
// "create" = the folder is created when missing; "off" = always INBOX.
struct DeliveryConfig {
  std::string subaddress_folders = "existing";
};

// The MTA-STS policy this server publishes for every local domain (RFC 8461
// section 3.2), at https://mta-sts.DOMAIN/.well-known/mta-sts.txt on the
// [listen] http/https servers; `hato dns` prints the _mta-sts TXT record
// whose id changes whenever the policy text does.
struct MtaStsPublishConfig {
  std::string mode = "testing";  // "testing" | "enforce" | "none" | "off" (not served)
  int max_age_seconds = 604800;  // RFC 8461 3.2: at most 31557600
  std::vector<std::string> mx;   // MX patterns besides server.hostname ("*.example.org")
};

// Daily aggregate reports this server sends (src/reports): TLS-RPT (RFC
// 8460) about its outbound TLS sessions, to the rua of each recipient
// domain's _smtp._tls TXT; DMARC (RFC 7489 section 7.2) about inbound
// mail's DMARC results, to the rua of each author domain's _dmarc TXT.
// Results are recorded as they happen in DATA/reports/ and the previous UTC
// days' reports are sent at send_hour (or by `hato reports send`).
struct ReportsConfig {
  bool tls_rpt = true;
  bool dmarc = true;
  std::string from;      // the reports' sender; "" = postmaster@ the first local domain
  std::string org_name;  // the reporting organization; "" = server.hostname
  int send_hour = 1;     // UTC hour the previous days' reports go out
  int keep_days = 7;     // unsent recorded days older than this are dropped
  // A TLS-RPT report an https: rua refused (5xx, 408, 429) or never got
  // (RFC 8460 5.3) is posted again after this many seconds, doubling each
  // time, at most reports::kMaxPostAttempts times (reports/send.h).
  int post_retry_seconds = 1800;
  // DMARC failure reports (RFC 7489 7.3, reports/failure.h): off by default
  // (they carry message headers); at most this many per From domain an hour.
  bool dmarc_failure = false;
  int dmarc_failure_per_hour = 10;
};

// The server's log on stderr (the journal under systemd).
struct LogConfig {
  std::string format = "text";  // "text" (key=value) or "json" (one object per line)
  std::string level = "info";   // debug | info | warn | error
};

struct Config {
  std::string hostname = "localhost";
  // Per-address connection limits also for loopback clients (off: a local
  // proxy or test load shares one address).
  bool per_ip_limits_on_loopback = false;
  // Where postmaster@, abuse@ (every local domain) and RCPT TO:<postmaster>
  // go when no account or alias has that address: an account address, or ""
  // for the first account created (RFC 5321 4.5.1, RFC 2142).
  std::string postmaster;
  Listen listen;
  SmtpLimits smtp;
  Pop3Limits pop3;
  ImapLimits imap;
  HttpLimits http;
  JmapLimits jmap;
  AuthConfig auth;
  SubmissionLimits submission;
  OutboundConfig outbound;
  MsgauthConfig msgauth;
  ScanConfig scan;
  SieveConfig sieve;
  ListsConfig lists;
  LogConfig log;
  WebConfig web;
  AcmeConfig acme;
  DeliveryConfig delivery;
  MtaStsPublishConfig mta_sts;
  ReportsConfig reports;
  int retention_days = 30;  // expunged/deleted mail kept this long
  std::string tls_cert;     // PEM paths, relative to the data dir
  std::string tls_key;
  bool store_compress = true;
  size_t store_max_pending_writes = 10000;  // queued writes; past it 451 4.3.0 at once
  // Free space kept in reserve on the data volume; below it new mail is
  // refused with 452 4.3.1 (reads go on). 0 = twice smtp.max_message_size.
  uint64_t store_reserve_bytes = 0;
  // A commit slower than this means storage is struggling: new SMTP
  // transactions get 451 4.3.0 at once until commits are fast again.
  int store_slow_commit_ms = 1000;
  // Where mail is stored (issue 15): "embedded" (SQLite and segment files in
  // the data dir) or "postgres" (store_postgres: a libpq connection string or
  // URL, several hosts allowed, e.g. with target_session_attrs=read-write).
  std::string store_backend = "embedded";
  std::string store_postgres;
  size_t store_postgres_pool = 8;          // reader connections per node
  int store_statement_timeout_ms = 10000;  // per query; then a temporary error
  int store_connect_timeout_seconds = 5;   // per host
  // Sharding (issue 15, store/postgres/sharded.h): more PostgreSQL databases
  // besides store_postgres (which keeps the directory and is the shard
  // "main"), by name. New accounts are placed by store_placement
  // ("least-accounts" or "hash"); `hato account move` leaves the source copy
  // for store_move_retention_hours before deleting it.
  std::map<std::string, std::string> store_shards;
  std::string store_placement = "least-accounts";
  std::vector<std::string> store_closed_shards;  // get no new accounts (draining)
  int store_move_retention_hours = 168;
  // The Prometheus metrics endpoint, "host:port" (docs/operations.md); empty =
  // off. It has no authentication: bind it to loopback or a private network.
  std::string metrics_listen;
  // Client input held in memory (IMAP commands and literals, SMTP message
  // data) in all and per client address (server/budget.h); past either the
  // session is refused temporarily. 0 = no cap.
  uint64_t memory_budget_bytes = 512ull << 20;
  uint64_t memory_budget_per_ip_bytes = 128ull << 20;
  // A TLS handshake (implicit TLS and STARTTLS) must finish within this.
  int tls_handshake_timeout_seconds = 10;
  // Event loops the sessions are spread over (server/event_loops.h); 0 = one
  // per core (at least 2, at most 16). Applies at start. The default since
  // the integration suites ran clean under ThreadSanitizer with 2 loops
  // (scripts/tsan-suites.sh, issue 11 lesson (c)).
  int event_loops = 0;
  // Threads of the blocking pool (store reads, filters, message parsing for
  // every session; server/event_loops.h BlockingThreadsFor): 0 = 2 plus 2 per
  // event loop, at most 64. Applies at start.
  int blocking_threads = 0;
  uint64_t ReserveBytes() const {
    return store_reserve_bytes ? store_reserve_bytes : 2 * smtp.max_message_size;
  }
};

// Parses hato.toml text. Unknown keys, wrong types and out-of-range values are
// errors whose message names the key.
Result<Config> Parse(std::string_view toml_text);

// The documented default hato.toml written by `hato init`.
std::string DefaultText(std::string_view hostname);
// The same, with [store] backend = "postgres" and this connection string
// (hato init --postgres); "" = the embedded store.
std::string DefaultText(std::string_view hostname, std::string_view postgres);

}  // namespace hato::config
